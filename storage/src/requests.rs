//! Users' requests and complaints to the admin (clause 5.5.1) as stored records.

use super::catalog::*;
use super::codec::{Dec, Enc};
use super::kv;
use super::messaging::{EventRecord, next_pos};
use super::{Store, StoreError};
use primitives::time::Millis;

/// One request. `text_sealed` and `answer_sealed` are sealed under the user's data key (they
/// may hold personal data); the kind is one of a fixed list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    pub id: u64,
    pub user: u64,
    pub kind: String,
    pub text_sealed: Vec<u8>,
    pub created: Millis,
    /// Empty while open.
    pub answer_sealed: Vec<u8>,
    pub resolved: Option<Millis>,
}

impl RequestRecord {
    fn encode(&self) -> Vec<u8> {
        Enc::new(1)
            .u64(self.user)
            .str(&self.kind)
            .bytes(&self.text_sealed)
            .u64(self.created.0)
            .bytes(&self.answer_sealed)
            .u64(self.resolved.map_or(0, |m| m.0))
            .finish()
    }
    fn decode(id: u64, b: &[u8]) -> Result<Self, StoreError> {
        let mut d = Dec::new(b, "request", 1)?;
        let r = RequestRecord {
            id,
            user: d.u64()?,
            kind: d.string()?,
            text_sealed: d.bytes()?,
            created: Millis(d.u64()?),
            answer_sealed: d.bytes()?,
            resolved: match d.u64()? {
                0 => None,
                t => Some(Millis(t)),
            },
        };
        d.end()?;
        Ok(r)
    }
}

/// Requests read at a time.
const PAGE: usize = 256;

fn get_request(tx: &impl kv::Read, id: u64) -> Result<Option<RequestRecord>, StoreError> {
    REQUESTID_REQUEST
        .get(tx, &id)?
        .map(|v| RequestRecord::decode(id, &v))
        .transpose()
}

/// Removes at most `budget` requests of `user` (erasure), taking what it removed from the
/// budget; true when none is left.
pub(crate) fn erase_requests(
    tx: &impl kv::Write,
    user: u64,
    budget: &mut usize,
) -> Result<bool, StoreError> {
    let ids = USERID_REQUESTID.prefixed_page(tx, &user, None, *budget)?;
    for ((_, id), ()) in &ids {
        REQUESTID_REQUEST.remove(tx, id)?;
        USERID_REQUESTID.remove(tx, &(user, *id))?;
    }
    let done = ids.len() < *budget;
    *budget -= ids.len();
    Ok(done)
}

impl Store {
    /// Files a new request; `seal` seals its text under the user's key, bound to the id this
    /// assigns. Returns the id.
    pub async fn file_request(
        &self,
        user: u64,
        kind: String,
        created: Millis,
        seal: impl Fn(u64) -> Result<Vec<u8>, StoreError> + Send + 'static,
    ) -> Result<u64, StoreError> {
        self.write(move |tx| {
            let id = super::take_numbers(tx, "next_request", 1)?;
            let rec = RequestRecord {
                id,
                user,
                kind: kind.clone(),
                text_sealed: seal(id)?,
                created,
                answer_sealed: Vec::new(),
                resolved: None,
            };
            REQUESTID_REQUEST.insert(tx, &id, &rec.encode())?;
            USERID_REQUESTID.insert(tx, &(user, id), &())?;
            Ok(id)
        })
        .await
    }

    /// A user's requests, oldest first.
    pub async fn requests_of(&self, user: u64) -> Result<Vec<RequestRecord>, StoreError> {
        self.read(move |tx| {
            let mut out = Vec::new();
            for ((_, id), ()) in USERID_REQUESTID.prefixed_in_pages(tx, &user, PAGE)? {
                out.extend(get_request(tx, id)?);
            }
            Ok(out)
        })
        .await
    }

    /// Every request, oldest first: read [`PAGE`] at a time, in one read transaction.
    pub async fn all_requests(&self) -> Result<Vec<RequestRecord>, StoreError> {
        self.read(|tx| {
            let mut out: Vec<RequestRecord> = Vec::new();
            loop {
                let after = out.last().map(|r| r.id);
                let page = REQUESTID_REQUEST.page(tx, after.as_ref(), PAGE)?;
                let done = page.len() < PAGE;
                for (id, v) in page {
                    out.push(RequestRecord::decode(id, &v)?);
                }
                if done {
                    return Ok(out);
                }
            }
        })
        .await
    }

    pub async fn request(&self, id: u64) -> Result<Option<RequestRecord>, StoreError> {
        self.read(move |tx| get_request(tx, id)).await
    }

    /// Records the answer and leaves the user `notice` (the caller's words for "request `id`
    /// answered"), with `audit`, in one transaction. None if there is no such open request.
    pub async fn resolve_request(
        &self,
        id: u64,
        answer_sealed: Vec<u8>,
        now: Millis,
        notice: EventRecord,
        audit: super::AuditEntry,
    ) -> Result<Option<(u64, u64)>, StoreError> {
        let notice = notice.encode();
        self.write(move |tx| {
            let Some(mut rec) = get_request(tx, id)? else {
                return Ok(None);
            };
            if rec.resolved.is_some() {
                return Ok(None);
            }
            rec.answer_sealed = answer_sealed.clone();
            rec.resolved = Some(now);
            REQUESTID_REQUEST.insert(tx, &id, &rec.encode())?;
            let pos = next_pos(tx)?;
            tx.open_table(USERID_POS_EVENT)?
                .insert((rec.user, pos), notice.as_slice())?;
            super::append_audit(tx, audit.clone())?;
            Ok(Some((rec.user, pos)))
        })
        .await
    }
}
