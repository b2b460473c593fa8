//! The post fan-out job: a new post's or comment's events are queued with it
//! (`queue_fanout`) and written after its commit by [`Store::fan_out_step`], a bounded batch of
//! members per transaction, to those who may see it.

use std::ops::Bound;

use redb::WriteTransaction;

use super::visibility::{Facts, are_friends, may_see};
use super::{CommunityRecord, CommunityRole, PostRecord, PostVisibility, Wake};
use super::{get_community, get_post};
use crate::catalog::*;
use crate::codec::{Dec, Enc};
use crate::kv;
use crate::messaging::{EventRecord, next_pos};
use crate::{Store, StoreError};
use primitives::time::Millis;

/// Members read in one fan-out transaction.
pub const FANOUT_BATCH: usize = 256;

/// Queues the events of a new post (`comment` 0) or comment, to be written after the commit by
/// [`Store::fan_out_step`] in bounded transactions — never by reading every member in the
/// write that stores the post. Returns the job's number.
pub(super) fn queue_fanout(
    tx: &WriteTransaction,
    c: u64,
    post: u64,
    comment: u64,
) -> Result<u64, StoreError> {
    let job = crate::take_numbers(tx, "next_fanout", 1)?;
    FANOUTNO_JOB.insert(tx, &job, &(c, post, comment, 0))?;
    Ok(job)
}

/// What one fan-out step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announced {
    /// This node's members who may see the post, each given an event at `pos` (0: none).
    pub users: Vec<u64>,
    pub pos: u64,
    /// The members of other nodes who may see it, whose nodes are still to be told (no event
    /// here: they have no session on this node); recorded by the step until
    /// [`Store::enqueue_told`] queues the envelopes.
    pub tell: Option<Tell>,
}

/// Nodes owed a `community-event`: the members of other nodes one fan-out step found who may
/// see a new post (`comment` 0) or comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tell {
    /// (fan-out job, first member of its batch): the record's key.
    pub key: (u64, u64),
    pub community: u64,
    pub post: u64,
    pub comment: u64,
    pub author: u64,
    pub members: Vec<u64>,
}

impl Tell {
    fn encode(&self) -> Vec<u8> {
        let mut e = Enc::new(1)
            .u64(self.community)
            .u64(self.post)
            .u64(self.comment)
            .u64(self.author)
            .u64(self.members.len() as u64);
        for m in &self.members {
            e = e.u64(*m);
        }
        e.finish()
    }

    fn decode(key: (u64, u64), b: &[u8]) -> Result<Self, StoreError> {
        let mut d = Dec::new(b, "fan-out tell", 1)?;
        let (community, post, comment, author) = (d.u64()?, d.u64()?, d.u64()?, d.u64()?);
        let n = d.u64()?;
        // Each member is 8 bytes: a count larger than the record is damage, not an allocation.
        if n > (b.len() / 8) as u64 {
            return Err(StoreError::Corrupt("fan-out tell"));
        }
        let members = (0..n).map(|_| d.u64()).collect::<Result<_, _>>()?;
        d.end()?;
        Ok(Tell {
            key,
            community,
            post,
            comment,
            author,
            members,
        })
    }
}

/// Of the members from `from` on (at most `batch`), those who may see `post`: this node's
/// each given an event at one new position, and those of other nodes. Returns (users, pos),
/// the others, and the next member to read (None: done).
fn announce_batch(
    tx: &WriteTransaction,
    community: &CommunityRecord,
    post: &PostRecord,
    comment: u64,
    from: u64,
    batch: usize,
) -> Result<(Wake, Vec<u64>, Option<u64>), StoreError> {
    let members: Vec<(u64, CommunityRole)> = COMMUNITYNO_USERID_MEMBER
        .range(
            tx,
            Bound::Included(&(community.id, from)),
            Bound::Included(&(community.id, u64::MAX)),
            kv::Order::Ascending,
            batch.max(1),
        )?
        .into_iter()
        .map(|((_, u), (role, _))| Ok((u, CommunityRole::from_code(role)?)))
        .collect::<Result<_, StoreError>>()?;
    let next = if members.len() < batch.max(1) {
        None
    } else {
        members.last().and_then(|(u, _)| u.checked_add(1))
    };
    let mut users = Vec::new();
    let mut remote = Vec::new();
    for (u, role) in members {
        let f = Facts {
            community_public: community.public,
            role: Some(role),
            banned: false,
            is_author: u == post.author,
            friends: post.visibility == PostVisibility::Friends
                && u != post.author
                && are_friends(tx, post.author, u)?,
        };
        if !may_see(post.visibility, &f) {
            continue;
        }
        if u & REMOTE_USER_BIT == 0 {
            users.push(u);
        } else {
            remote.push(u);
        }
    }
    if users.is_empty() {
        return Ok(((users, 0), remote, next));
    }
    let pos = next_pos(tx)?;
    let ev = EventRecord::Community {
        community: community.id,
        post: post.id,
        comment,
    }
    .encode();
    let mut events = tx.open_table(USERID_POS_EVENT)?;
    for u in &users {
        events.insert((*u, pos), ev.as_slice())?;
    }
    Ok(((users, pos), remote, next))
}

impl Store {
    /// Writes the next batch (at most `batch` members) of fan-out job `job`'s events in one
    /// transaction. Returns what it did, or None once the job is done (or its post is gone);
    /// each step reads on from where the last one stopped.
    pub async fn fan_out_step(
        &self,
        job: u64,
        batch: usize,
    ) -> Result<Option<Announced>, StoreError> {
        self.write(move |tx| {
            let Some((c, p, comment, from)) = FANOUTNO_JOB.get(tx, &job)? else {
                return Ok(None);
            };
            let found = match (get_community(tx, c)?, get_post(tx, p)?) {
                (Some(community), Some(post)) if post.community == c => Some((community, post)),
                _ => None,
            };
            let Some((community, post)) = found else {
                FANOUTNO_JOB.remove(tx, &job)?;
                return Ok(None);
            };
            let ((users, pos), remote, next) =
                announce_batch(tx, &community, &post, comment, from, batch)?;
            match next {
                Some(n) => {
                    FANOUTNO_JOB.insert(tx, &job, &(c, p, comment, n))?;
                }
                None => {
                    FANOUTNO_JOB.remove(tx, &job)?;
                }
            }
            // Owed in the same commit as the cursor moving past them.
            let tell = (!remote.is_empty()).then_some(Tell {
                key: (job, from),
                community: c,
                post: p,
                comment,
                author: post.author,
                members: remote,
            });
            if let Some(t) = &tell {
                FANOUTNO_FROM_TELL.insert(tx, &t.key, &t.encode())?;
            }
            Ok(Some(Announced { users, pos, tell }))
        })
        .await
    }

    /// Queues `outgoing` (the `community-event` envelopes of `tell`, perhaps none: a node that
    /// may not be told) and forgets that they were owed, in one commit. Returns the peers
    /// whose queue grew.
    pub async fn enqueue_told(
        &self,
        outgoing: Vec<crate::Outgoing>,
        tell: (u64, u64),
        now: Millis,
    ) -> Result<Vec<String>, StoreError> {
        self.write(move |tx| {
            FANOUTNO_FROM_TELL.remove(tx, &tell)?;
            crate::federation::enqueue(tx, &outgoing, now)
        })
        .await
    }

    /// The tells still owed (left by a stop between a fan-out step and the queueing of its
    /// envelopes), read a page at a time.
    pub async fn owed_tells(&self) -> Result<Vec<Tell>, StoreError> {
        self.read(|tx| {
            let mut out = Vec::new();
            super::each_row(
                tx,
                FANOUTNO_FROM_TELL,
                Bound::Unbounded,
                Bound::Unbounded,
                kv::Order::Ascending,
                |key, v| {
                    out.push(Tell::decode(key, &v)?);
                    Ok(true)
                },
            )?;
            Ok(out)
        })
        .await
    }

    /// Fan-out jobs not finished (left by a stop between a post's commit and its events),
    /// read a page at a time.
    pub async fn fan_out_jobs(&self) -> Result<Vec<u64>, StoreError> {
        self.read(|tx| {
            let mut out = Vec::new();
            super::each_row(
                tx,
                FANOUTNO_JOB,
                Bound::Unbounded,
                Bound::Unbounded,
                kv::Order::Ascending,
                |job, _| {
                    out.push(job);
                    Ok(true)
                },
            )?;
            Ok(out)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::community::tests::seal;
    use primitives::time::Millis;

    /// A post's events are written after it, a bounded batch of members per transaction, to
    /// every member who may see it; a job a stop cut short is still listed, to be finished.
    #[tokio::test]
    async fn a_posts_events_reach_every_member_in_bounded_batches_after_the_post() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(&dir.path().join("n.redb"), |_| Ok(None)).unwrap();
        let now = Millis(10);
        assert!(
            store
                .create_community(7, "big".into(), String::new(), None, true, 1, now)
                .await
                .unwrap()
        );
        for m in 2..=7 {
            store
                .join_community(7, m, now, None)
                .await
                .unwrap()
                .unwrap();
        }
        let (_, job) = store
            .create_post(
                7,
                1,
                PostVisibility::Members,
                Vec::new(),
                Vec::new(),
                now,
                None,
                seal,
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            store.fan_out_jobs().await.unwrap(),
            [job],
            "queued with the post"
        );
        let mut woken = Vec::new();
        let mut steps = 0;
        while let Some(Announced { users, pos, .. }) = store.fan_out_step(job, 2).await.unwrap() {
            assert!(users.len() <= 2, "one batch at most: {users:?}");
            assert!(users.is_empty() || pos > 0);
            woken.extend(users);
            steps += 1;
            assert!(steps < 10, "the job ends");
        }
        woken.sort_unstable();
        assert_eq!(woken, (1..=7).collect::<Vec<u64>>());
        assert!(steps >= 4, "seven members in batches of two: {steps}");
        assert!(store.fan_out_jobs().await.unwrap().is_empty());
        assert_eq!(store.fan_out_step(job, 2).await.unwrap(), None);
    }

    #[test]
    fn a_tell_round_trips_and_a_damaged_one_is_an_error() {
        let t = Tell {
            key: (3, 4),
            community: 7,
            post: 8,
            comment: 0,
            author: 1,
            members: vec![REMOTE_USER_BIT | 5, REMOTE_USER_BIT | 6],
        };
        let b = t.encode();
        assert_eq!(Tell::decode((3, 4), &b).unwrap(), t);
        assert!(
            Tell::decode((3, 4), &b[..b.len() - 1]).is_err(),
            "cut short"
        );
        let mut long = b.clone();
        long.push(0);
        assert!(Tell::decode((3, 4), &long).is_err(), "trailing bytes");
        let mut huge = b[..33].to_vec();
        huge.extend_from_slice(&u64::MAX.to_be_bytes());
        assert!(
            Tell::decode((3, 4), &huge).is_err(),
            "a count past the record"
        );
    }

    /// Members of other nodes a step finds are owed a tell from that step's commit until the
    /// write that queues their envelopes: a stop in between leaves it to be found at start.
    #[tokio::test]
    async fn the_nodes_a_step_finds_stay_owed_until_their_envelopes_are_queued() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(&dir.path().join("n.redb"), |_| Ok(None)).unwrap();
        let now = Millis(10);
        let (far, farther) = (REMOTE_USER_BIT | 5, REMOTE_USER_BIT | 6);
        assert!(
            store
                .create_community(7, "c".into(), String::new(), None, true, 1, now)
                .await
                .unwrap()
        );
        for m in [2, far, farther] {
            store
                .join_community(7, m, now, None)
                .await
                .unwrap()
                .unwrap();
        }
        let post = |author| {
            let store = store.clone();
            async move {
                store
                    .create_post(
                        7,
                        author,
                        PostVisibility::Members,
                        Vec::new(),
                        Vec::new(),
                        now,
                        None,
                        seal,
                    )
                    .await
                    .unwrap()
                    .unwrap()
            }
        };
        let (p, job) = post(1).await;
        let a = store.fan_out_step(job, 2).await.unwrap().unwrap();
        assert_eq!(a.users, [1, 2]);
        assert_eq!(a.tell, None, "no member of another node in this batch");
        let a = store.fan_out_step(job, 2).await.unwrap().unwrap();
        let tell = a.tell.expect("two members of other nodes");
        assert_eq!(
            (tell.community, tell.post, tell.comment, tell.author),
            (7, p, 0, 1)
        );
        assert_eq!(tell.members, [far, farther]);
        // A full batch: one more (empty) step finds the end.
        let a = store.fan_out_step(job, 2).await.unwrap().unwrap();
        assert_eq!((a.users.len(), a.tell), (0, None));
        assert_eq!(store.fan_out_step(job, 2).await.unwrap(), None);
        // The job is done, the tell still owed: what a start finds.
        assert!(store.fan_out_jobs().await.unwrap().is_empty());
        assert_eq!(
            store.owed_tells().await.unwrap(),
            std::slice::from_ref(&tell)
        );
        // Queued (here: no node may be told), it is owed no more.
        store.enqueue_told(Vec::new(), tell.key, now).await.unwrap();
        assert!(store.owed_tells().await.unwrap().is_empty());
    }
}
