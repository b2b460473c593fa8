//! Media across nodes (issue 25): the fetch jobs of media that messages from other nodes refer
//! to (`mediaid_fetch`), the parts fetched so far, the finished copy (a media record owned by
//! the remote author, sealed under their key here), and whether a peer may fetch a local
//! user's media (it must hold a message referring to it).

use redb::{ReadableTable, ReadableTableMetadata, WriteTransaction};

use super::catalog::*;
use super::codec::{Dec, Enc};
use super::kv;
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
    queue_fetch(tx, id, job)
}

/// Queues the fetch of remote media `id` unless its copy is here or being fetched already;
/// whether it queued one.
pub(crate) fn queue_fetch(
    tx: &WriteTransaction,
    id: &str,
    job: &FetchJob,
) -> Result<bool, StoreError> {
    if tx.open_table(MEDIAID_MEDIA)?.get(id)?.is_some() {
        return Ok(false);
    }
    let key = id.to_string();
    if MEDIAID_FETCH.get(tx, &key)?.is_some() {
        return Ok(false);
    }
    MEDIAID_FETCH.insert(tx, &key, &job.encode())?;
    AUTHOR_MEDIAID_FETCH.insert(tx, &(job.author, key), &())?;
    Ok(true)
}

/// Removes fetch job `id` with its author index row; the job, if there was one.
fn take_fetch(tx: &WriteTransaction, id: &str) -> Result<Option<FetchJob>, StoreError> {
    let Some(job) = MEDIAID_FETCH
        .take(tx, &id.to_string())?
        .map(|v| FetchJob::decode(&v))
        .transpose()?
    else {
        return Ok(None);
    };
    AUTHOR_MEDIAID_FETCH.remove(tx, &(job.author, id.to_string()))?;
    Ok(Some(job))
}

/// Removes a fetch job and every part stored for it.
fn drop_fetch(tx: &WriteTransaction, id: &str) -> Result<(), StoreError> {
    take_fetch(tx, id)?;
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
    // Their fetches, found by the author index (a page at a time).
    let ids: Vec<String> = AUTHOR_MEDIAID_FETCH
        .prefixed_in_pages(tx, &author, PAGE)?
        .into_iter()
        .map(|((_, id), ())| id)
        .collect();
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

/// Removes the copy (or the fetch) of remote media `id` once nothing here shows it any more:
/// no message, no community post and no avatar (a removed post of a member of another node).
/// Local media is left alone: it is its owner's.
pub(crate) fn drop_copy_if_unused(tx: &WriteTransaction, id: &str) -> Result<(), StoreError> {
    let remote = match tx.open_table(MEDIAID_MEDIA)?.get(id)? {
        Some(v) => MediaRecord::decode(v.value())?.owner & REMOTE_USER_BIT != 0,
        None => MEDIAID_FETCH.get(tx, &id.to_string())?.is_some(),
    };
    if !remote
        || tx
            .open_table(MEDIAID_CONVNO)?
            .range((id, 0)..=(id, u64::MAX))?
            .next()
            .is_some()
        || !MEDIAID_COMMUNITYNO_POSTNO
            .prefixed(tx, &id.to_string(), kv::Order::Ascending, 1)?
            .is_empty()
        || MEDIAID_AVATAR.get(tx, &id.to_string())?.is_some()
    {
        return Ok(());
    }
    drop_remote_copy(tx, id)
}

/// Removes every offer of local media `id` to a peer (the media is being removed), a page at
/// a time.
pub(crate) fn drop_offers(tx: &WriteTransaction, id: &str) -> Result<(), StoreError> {
    MEDIAID_PEER_OFFERED.remove_all_prefixed(tx, &id.to_string(), PAGE)
}

impl Store {
    /// Lets peer `host` fetch `owner`'s media `ids` (files of a post the owner makes in a
    /// community `host` hosts), recorded at `now`. False, recording nothing, when any of them
    /// is not a file `owner` uploaded here.
    pub async fn offer_media(
        &self,
        owner: u64,
        ids: Vec<String>,
        host: String,
        now: Millis,
    ) -> Result<bool, StoreError> {
        self.write(move |tx| {
            let mine = tx.open_table(USERID_MEDIAID)?;
            for id in &ids {
                if mine.get((owner, id.as_str()))?.is_none() {
                    return Ok(false);
                }
            }
            drop(mine);
            for id in &ids {
                MEDIAID_PEER_OFFERED.insert(tx, &(id.clone(), host.clone()), &now.0)?;
            }
            Ok(true)
        })
        .await
    }

    /// The peers media `id` is offered to (for tests of its removal).
    pub async fn media_offers(&self, id: String) -> Result<Vec<String>, StoreError> {
        self.read(move |tx| {
            Ok(MEDIAID_PEER_OFFERED
                .prefixed_in_pages(tx, &id, PAGE)?
                .into_iter()
                .map(|((_, peer), _)| peer)
                .collect())
        })
        .await
    }

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

    /// Whether media `id` is being fetched from another node and `viewer` will see it once it
    /// is here: a member of a conversation a message referring to it was sent in, or someone
    /// who may see a community post showing it.
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
            // A file of a post by a member of another node, shown to whoever sees the post.
            crate::community::media_visible(tx, id, viewer)
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
            let Some(job) = take_fetch(tx, &id)? else {
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
                // Posted by its owner in a community the peer hosts.
                if MEDIAID_PEER_OFFERED
                    .get(tx, &(id.clone(), host.clone()))?
                    .is_some()
                {
                    return Ok(Some((rec, None)));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PostVisibility;
    use crate::community::tests::seal;

    fn open(dir: &std::path::Path) -> Store {
        Store::open(&dir.join("node.redb"), |_| Ok(None)).unwrap().0
    }

    fn record(owner: u64) -> MediaRecord {
        MediaRecord {
            owner,
            content_type: "application/octet-stream".into(),
            size: 3,
            created: Millis(1),
            chunks: 1,
        }
    }

    #[tokio::test]
    async fn a_peer_may_fetch_only_the_files_offered_to_it_and_the_offer_goes_with_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path());
        let (ann, bob) = (1, 2);
        for (id, owner) in [("f1", ann), ("f2", ann), ("g1", bob)] {
            assert!(
                s.put_media(id.into(), record(owner), vec![vec![0; 3]], 1 << 20)
                    .await
                    .unwrap()
            );
        }
        // Not hers, or not a file at all: nothing is offered.
        for ids in [vec!["f1", "g1"], vec!["nothing"]] {
            let ids = ids.into_iter().map(String::from).collect();
            assert!(
                !s.offer_media(ann, ids, "h.test".into(), Millis(5))
                    .await
                    .unwrap()
            );
        }
        assert!(s.media_offers("f1".into()).await.unwrap().is_empty());
        assert!(
            s.offer_media(ann, vec!["f1".into()], "h.test".into(), Millis(5))
                .await
                .unwrap()
        );
        let fetchable = |id: &'static str, peer: &'static str| {
            let s = s.clone();
            async move {
                s.media_for_peer(id.into(), peer.into())
                    .await
                    .unwrap()
                    .is_some()
            }
        };
        assert!(fetchable("f1", "h.test").await);
        assert!(!fetchable("f1", "x.test").await, "only the host it went to");
        assert!(!fetchable("f2", "h.test").await, "only the file offered");
        // Her erasure removes the offers with her files.
        s.write(move |tx| crate::erasure::media(tx, ann, usize::MAX))
            .await
            .unwrap();
        assert!(s.media_offers("f1".into()).await.unwrap().is_empty());
        assert!(!fetchable("f1", "h.test").await);
        assert!(!fetchable("g1", "h.test").await);
    }

    #[tokio::test]
    async fn a_remote_authors_erasure_finds_their_fetches_by_key_and_leaves_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path());
        let (gone, stays) = (REMOTE_USER_BIT | 4, REMOTE_USER_BIT | 5);
        let job = |author: u64, n: u8| FetchJob {
            origin: "b.test".into(),
            remote_id: format!("r{n}"),
            size: 3,
            content_type: "image/png".into(),
            sha256: [n; 32],
            author,
            next: 0,
            created: Millis(1),
        };
        s.write(move |tx| {
            for (id, author, n) in [("g1", gone, 1), ("s1", stays, 2), ("g2", gone, 3)] {
                assert!(queue_fetch(tx, id, &job(author, n))?);
            }
            // Queued once: a second reference to the same media adds nothing.
            assert!(!queue_fetch(tx, "g1", &job(gone, 1))?);
            Ok(())
        })
        .await
        .unwrap();
        s.write(move |tx| drop_remote_media_of(tx, gone))
            .await
            .unwrap();
        let left: Vec<String> = s
            .fetch_jobs()
            .await
            .unwrap()
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        assert_eq!(left, ["s1"]);
        let index = s
            .read(|tx| AUTHOR_MEDIAID_FETCH.page(tx, None, 10))
            .await
            .unwrap();
        assert_eq!(index, vec![((stays, "s1".to_string()), ())]);
        // A finished fetch leaves no index row behind.
        assert!(s.finish_fetch("s1".into()).await.unwrap());
        let index = s
            .read(|tx| AUTHOR_MEDIAID_FETCH.page(tx, None, 10))
            .await
            .unwrap();
        assert!(index.is_empty());
    }

    #[tokio::test]
    async fn a_remote_members_file_arrives_for_those_who_see_the_post_and_goes_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path());
        let (owner, member, outsider) = (1, 2, 3);
        let remote = REMOTE_USER_BIT | 9;
        let now = Millis(10);
        assert!(
            s.create_community(8, "open".into(), String::new(), None, true, owner, now)
                .await
                .unwrap()
        );
        for u in [member, remote] {
            s.join_community(8, u, now, None).await.unwrap().unwrap();
        }
        let job = FetchJob {
            origin: "b.test".into(),
            remote_id: "r1".into(),
            size: 3,
            content_type: "image/png".into(),
            sha256: [1; 32],
            author: remote,
            next: 0,
            created: now,
        };
        let (p, _) = s
            .create_post(
                8,
                remote,
                PostVisibility::Members,
                vec!["copy".into()],
                vec![("copy".into(), job)],
                now,
                None,
                seal,
            )
            .await
            .unwrap()
            .unwrap();
        assert!(s.fetch_job("copy".into()).await.unwrap().is_some());
        assert!(s.media_arriving("copy".into(), member).await.unwrap());
        assert!(
            !s.media_arriving("copy".into(), outsider).await.unwrap(),
            "a post for members is not shown to others"
        );
        // The post goes: its copy's fetch goes with it.
        s.delete_post(8, p, remote, now, None)
            .await
            .unwrap()
            .unwrap();
        assert!(s.fetch_job("copy".into()).await.unwrap().is_none());
        assert!(!s.media_arriving("copy".into(), member).await.unwrap());
    }
}
