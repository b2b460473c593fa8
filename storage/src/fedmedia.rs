//! Media across nodes (issue 25): the fetch jobs of media that messages from other nodes refer
//! to (`mediaid_fetch`), the parts fetched so far, the finished copy (a media record owned by
//! the remote author, sealed under their key here), and whether a peer may fetch a local
//! user's media (it must hold a message referring to it).

use redb::{ReadableTable, ReadableTableMetadata, WriteTransaction};

use super::catalog::*;
use super::codec::{Dec, Enc};
use super::messaging::{ConversationRecord, MediaRecord};
use super::{Store, StoreError};

/// Rows read at a time where fetch jobs are visited in pages.
const PAGE: usize = 256;
use primitives::time::Millis;

/// Media a message from another node refers to, being fetched from its origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchJob {
    /// The node holding the bytes.
    pub origin: String,
    /// The origin's id of the media.
    pub remote_id: String,
    pub size: u64,
    pub content_type: String,
    /// SHA-256 the bytes must have.
    pub sha256: [u8; 32],
    /// The remote author (owner of the copy here; their key seals it).
    pub author: u64,
    /// The next part to fetch (the ones before are stored).
    pub next: u32,
    /// When the message arrived.
    pub created: Millis,
}

impl FetchJob {
    pub fn encode(&self) -> Vec<u8> {
        Enc::new(1)
            .str(&self.origin)
            .str(&self.remote_id)
            .u64(self.size)
            .str(&self.content_type)
            .bytes(&self.sha256)
            .u64(self.author)
            .u64(u64::from(self.next))
            .u64(self.created.0)
            .finish()
    }
    pub fn decode(b: &[u8]) -> Result<Self, StoreError> {
        let mut d = Dec::new(b, "fetch job", 1)?;
        let j = FetchJob {
            origin: d.string()?,
            remote_id: d.string()?,
            size: d.u64()?,
            content_type: d.string()?,
            sha256: d
                .bytes()?
                .try_into()
                .map_err(|_| StoreError::Corrupt("fetch job"))?,
            author: d.u64()?,
            next: u32::try_from(d.u64()?).map_err(|_| StoreError::Corrupt("fetch job"))?,
            created: Millis(d.u64()?),
        };
        d.end()?;
        Ok(j)
    }

    /// Parts in all.
    pub fn parts(&self) -> u32 {
        self.size.div_ceil(federation::MEDIA_PART) as u32
    }
}

/// The media of a message arriving from another node: its local id and, when this node does
/// not hold the bytes yet, the job that fetches them.
#[derive(Debug, Clone)]
pub struct IncomingMedia {
    pub local_id: String,
    /// None when the media is this node's own (its user's message coming back from the host).
    pub job: Option<FetchJob>,
}

/// Records, in a message write, that conversation `no` refers to the media (so its members may
/// see it) and queues its fetch unless the copy exists or is being fetched already. Returns
/// whether a fetch was queued.
pub fn note_incoming_media(
    tx: &WriteTransaction,
    no: u64,
    media: &IncomingMedia,
) -> Result<bool, StoreError> {
    let id = media.local_id.as_str();
    tx.open_table(MEDIAID_CONVNO)?.insert((id, no), ())?;
    let Some(job) = &media.job else {
        return Ok(false);
    };
    if tx.open_table(MEDIAID_MEDIA)?.get(id)?.is_some() {
        return Ok(false);
    }
    let key = id.to_string();
    if MEDIAID_FETCH.get(tx, &key)?.is_some() {
        return Ok(false);
    }
    MEDIAID_FETCH.insert(tx, &key, &job.encode())?;
    Ok(true)
}

/// Removes a fetch job and every part stored for it.
fn drop_fetch(tx: &WriteTransaction, id: &str) -> Result<(), StoreError> {
    MEDIAID_FETCH.remove(tx, &id.to_string())?;
    tx.open_table(MEDIAID_CHUNKNO_CHUNK)?
        .retain_in((id, 0)..=(id, u32::MAX), |_, _| false)?;
    Ok(())
}

/// Removes an unfinished fetch past its retention time, every part stored for it and the
/// record of which conversations refer to it (as retention does for a copy). False if the
/// fetch is not there (finished or removed meanwhile).
pub fn drop_unfinished_fetch(tx: &WriteTransaction, id: &str) -> Result<bool, StoreError> {
    if MEDIAID_FETCH.get(tx, &id.to_string())?.is_none() {
        return Ok(false);
    }
    drop_fetch(tx, id)?;
    tx.open_table(MEDIAID_CONVNO)?
        .retain_in((id, 0)..=(id, u64::MAX), |_, _| false)?;
    Ok(true)
}

/// Removes the copies and fetch jobs of media by remote user `author` (their erasure here).
pub fn drop_remote_media_of(tx: &WriteTransaction, author: u64) -> Result<(), StoreError> {
    // The fetches are not indexed by author: they are read a page at a time (fetches in
    // progress are few, each gone once its media is here).
    let mut ids = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let rows = MEDIAID_FETCH.page(tx, after.as_ref(), PAGE)?;
        let done = rows.len() < PAGE;
        for (k, v) in &rows {
            if FetchJob::decode(v)?.author == author {
                ids.push(k.clone());
            }
        }
        after = rows.last().map(|(k, _)| k.clone());
        if done {
            break;
        }
    }
    for id in &ids {
        drop_fetch(tx, id)?;
        tx.open_table(MEDIAID_CONVNO)?
            .retain_in((id.as_str(), 0)..=(id.as_str(), u64::MAX), |_, _| false)?;
    }
    super::erasure::media(tx, author, usize::MAX)?;
    Ok(())
}

/// Removes the copy (or the fetch) of remote media `id` (its message was recalled).
pub fn drop_remote_copy(tx: &WriteTransaction, id: &str) -> Result<(), StoreError> {
    drop_fetch(tx, id)?;
    let owner = tx
        .open_table(MEDIAID_MEDIA)?
        .remove(id)?
        .map(|v| MediaRecord::decode(v.value()))
        .transpose()?
        .map(|r| r.owner);
    if let Some(owner) = owner {
        tx.open_table(USERID_MEDIAID)?.remove((owner, id))?;
    }
    tx.open_table(MEDIAID_CHUNKNO_CHUNK)?
        .retain_in((id, 0)..=(id, u32::MAX), |_, _| false)?;
    tx.open_table(MEDIAID_CONVNO)?
        .retain_in((id, 0)..=(id, u64::MAX), |_, _| false)?;
    Ok(())
}

impl Store {
    /// Every fetch still to do (to resume them at start).
    pub async fn fetch_jobs(&self) -> Result<Vec<(String, FetchJob)>, StoreError> {
        self.read(|tx| {
            let mut out: Vec<(String, FetchJob)> = Vec::new();
            loop {
                let rows = MEDIAID_FETCH.page(tx, out.last().map(|(k, _)| k), PAGE)?;
                let done = rows.len() < PAGE;
                for (k, v) in rows {
                    let job = FetchJob::decode(&v)?;
                    out.push((k, job));
                }
                if done {
                    return Ok(out);
                }
            }
        })
        .await
    }

    /// One fetch job, if it is still to do.
    pub async fn fetch_job(&self, id: String) -> Result<Option<FetchJob>, StoreError> {
        self.read(move |tx| {
            MEDIAID_FETCH
                .get(tx, &id)?
                .map(|v| FetchJob::decode(&v))
                .transpose()
        })
        .await
    }

    /// Whether media `id` is being fetched from another node and `viewer` is a member of a
    /// conversation a message referring to it was sent in (so they will see it once here).
    pub async fn media_arriving(&self, id: String, viewer: u64) -> Result<bool, StoreError> {
        self.read(move |tx| {
            if MEDIAID_FETCH.get(tx, &id)?.is_none() {
                return Ok(false);
            }
            let id = id.as_str();
            let members = tx.open_table(CONVNO_USERID_MEMBER)?;
            for row in tx
                .open_table(MEDIAID_CONVNO)?
                .range((id, 0)..=(id, u64::MAX))?
            {
                if members.get((row?.0.value().1, viewer))?.is_some() {
                    return Ok(true);
                }
            }
            Ok(false)
        })
        .await
    }

    /// Stores part `no` (sealed) of a fetch and moves the job on, in one transaction; false if
    /// the job is gone (its message recalled, its author erased) or has moved on already.
    pub async fn put_fetched_part(
        &self,
        id: String,
        no: u32,
        sealed: Vec<u8>,
    ) -> Result<bool, StoreError> {
        self.write(move |tx| {
            let Some(mut job) = MEDIAID_FETCH
                .get(tx, &id)?
                .map(|v| FetchJob::decode(&v))
                .transpose()?
            else {
                return Ok(false);
            };
            if job.next != no {
                return Ok(false);
            }
            job.next = no + 1;
            MEDIAID_FETCH.insert(tx, &id, &job.encode())?;
            tx.open_table(MEDIAID_CHUNKNO_CHUNK)?
                .insert((id.as_str(), no), sealed.as_slice())?;
            Ok(true)
        })
        .await
    }

    /// A fetch whose bytes matched: the copy becomes media owned by the remote author, visible
    /// to the members of the conversations it was sent in. False if the job is gone.
    pub async fn finish_fetch(&self, id: String) -> Result<bool, StoreError> {
        self.write(move |tx| {
            let Some(job) = MEDIAID_FETCH
                .take(tx, &id)?
                .map(|v| FetchJob::decode(&v))
                .transpose()?
            else {
                return Ok(false);
            };
            let rec = MediaRecord {
                owner: job.author,
                content_type: job.content_type.clone(),
                size: job.size,
                // Retention counts a copy's age from when its message arrived, like local
                // media from its upload, however long the fetch took.
                created: job.created,
                chunks: job.parts(),
            };
            tx.open_table(MEDIAID_MEDIA)?
                .insert(id.as_str(), rec.encode().as_slice())?;
            tx.open_table(USERID_MEDIAID)?
                .insert((job.author, id.as_str()), job.size)?;
            Ok(true)
        })
        .await
    }

    /// A fetch that failed for good (the bytes did not match, the origin refused): the job and
    /// every part stored for it are removed; nothing of it stays.
    pub async fn abandon_fetch(&self, id: String) -> Result<(), StoreError> {
        self.write(move |tx| drop_fetch(tx, &id)).await
    }

    /// How many media chunks this node stores (any owner), for tests of removal.
    pub async fn media_chunk_count(&self) -> Result<u64, StoreError> {
        self.read(|tx| Ok(tx.open_table(MEDIAID_CHUNKNO_CHUNK)?.len()?))
            .await
    }

    /// A local user's media `id` if peer `peer` holds a message referring to it: it was sent in
    /// a conversation that `peer` hosts or that has a member on `peer`. Remote members'
    /// addresses are read through [`Store::remote_users`] (the one place that knows where they
    /// are kept).
    pub async fn media_for_peer(
        &self,
        id: String,
        peer: String,
    ) -> Result<Option<MediaRecord>, StoreError> {
        let host = peer.clone();
        let found = self
            .read(move |tx| {
                let Some(rec) = tx
                    .open_table(MEDIAID_MEDIA)?
                    .get(id.as_str())?
                    .map(|v| MediaRecord::decode(v.value()))
                    .transpose()?
                else {
                    return Ok(None);
                };
                if rec.owner & REMOTE_USER_BIT != 0 {
                    return Ok(None);
                }
                let convs = tx.open_table(CONVNO_CONVERSATION)?;
                let members = tx.open_table(CONVNO_USERID_MEMBER)?;
                let mut remote = Vec::new();
                for row in tx
                    .open_table(MEDIAID_CONVNO)?
                    .range((id.as_str(), 0)..=(id.as_str(), u64::MAX))?
                {
                    let no = row?.0.value().1;
                    let Some(conv) = convs.get(no)? else { continue };
                    let conv = ConversationRecord::decode(no, conv.value())?;
                    if federation::conversation_host(&conv.id) == Some(host.as_str()) {
                        return Ok(Some((rec, None)));
                    }
                    for m in members.range((no, REMOTE_USER_BIT)..=(no, u64::MAX))? {
                        remote.push(m?.0.value().1);
                    }
                }
                remote.sort_unstable();
                remote.dedup();
                Ok(Some((rec, Some(remote))))
            })
            .await?;
        let Some((rec, remote)) = found else {
            return Ok(None);
        };
        let Some(remote) = remote else {
            return Ok(Some(rec));
        };
        let holds = self
            .remote_users(remote)
            .await?
            .iter()
            .any(|(_, r)| federation::address_domain(&r.address) == Some(peer.as_str()));
        Ok(holds.then_some(rec))
    }
}
