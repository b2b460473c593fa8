//! Users' requests and complaints to the admin (clause 5.5.1) as stored records.

use redb::ReadableTable;

use super::catalog::*;
use super::codec::{Dec, Enc};
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
            tx.open_table(REQUESTID_REQUEST)?
                .insert(id, rec.encode().as_slice())?;
            tx.open_table(USERID_REQUESTID)?.insert((user, id), ())?;
            Ok(id)
        })
        .await
    }

    /// A user's requests, oldest first.
    pub async fn requests_of(&self, user: u64) -> Result<Vec<RequestRecord>, StoreError> {
        self.read(move |tx| {
            let all = tx.open_table(REQUESTID_REQUEST)?;
            let mut out = Vec::new();
            for row in tx
                .open_table(USERID_REQUESTID)?
                .range((user, 0)..=(user, u64::MAX))?
            {
                let id = row?.0.value().1;
                if let Some(v) = all.get(id)? {
                    out.push(RequestRecord::decode(id, v.value())?);
                }
            }
            Ok(out)
        })
        .await
    }

    /// Every request, oldest first.
    pub async fn all_requests(&self) -> Result<Vec<RequestRecord>, StoreError> {
        self.read(|tx| {
            let mut out = Vec::new();
            for row in tx.open_table(REQUESTID_REQUEST)?.iter()? {
                let (k, v) = row?;
                out.push(RequestRecord::decode(k.value(), v.value())?);
            }
            Ok(out)
        })
        .await
    }

    pub async fn request(&self, id: u64) -> Result<Option<RequestRecord>, StoreError> {
        self.read(move |tx| {
            tx.open_table(REQUESTID_REQUEST)?
                .get(id)?
                .map(|v| RequestRecord::decode(id, v.value()))
                .transpose()
        })
        .await
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
            let mut t = tx.open_table(REQUESTID_REQUEST)?;
            let found = t.get(id)?.map(|v| RequestRecord::decode(id, v.value()));
            let Some(mut rec) = found.transpose()? else {
                return Ok(None);
            };
            if rec.resolved.is_some() {
                return Ok(None);
            }
            rec.answer_sealed = answer_sealed.clone();
            rec.resolved = Some(now);
            t.insert(id, rec.encode().as_slice())?;
            drop(t);
            let pos = next_pos(tx)?;
            tx.open_table(USERID_POS_EVENT)?
                .insert((rec.user, pos), notice.as_slice())?;
            super::append_audit(tx, audit.clone())?;
            Ok(Some((rec.user, pos)))
        })
        .await
    }
}
