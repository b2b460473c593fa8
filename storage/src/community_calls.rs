//! Remote users' calls to communities hosted here, as remembered by the host (issue 23): each
//! write call (`join`, `leave`, `post`, `comment`, `favourite`, and the edits and deletions
//! of posts and comments) by (origin domain, envelope id), with what it became — so a
//! repeated envelope (its member's node retrying after an answer was lost) is answered again
//! instead of applied again.
//!
//! A call is recorded, with its outcome, by the write that applies it ([`record_call`], at the
//! end of each of those writes in `community/`), so the call and its effect reach the disk in
//! one commit or not at all: a crash can lose both, never split them. A call refused is not
//! recorded, so a repeat is judged afresh. (Builds before this one claimed a call in a transaction of its own before
//! applying it; a claim they left unsettled reads as [`CallOutcome::Pending`], and its
//! repeats are refused as of unknown outcome.)
//!
//! Rows hold ids and numbers only — the origin's domain, the envelope's random id, the kind of
//! call, the numbers of the post or comment made — never the user, their address or what they
//! wrote, so nothing here links a remote user once their node's erasure has removed their
//! posts and comments. Each row lives as long as its envelope could be accepted at all (its
//! `ts` plus `federation::MAX_ENVELOPE_AGE_MS`; older envelopes are refused as stale before
//! this table is read) and is pruned after, in bounded batches through the expiry index.

use std::ops::Bound;

use super::catalog::{
    CallRow, EXPIRY_ORIGIN_ENVID_COMMUNITYCALL, ORIGIN_ENVID_CALLDIGEST, ORIGIN_ENVID_COMMUNITYCALL,
};
use super::kv;
use super::{Store, StoreError};
use primitives::time::Millis;

/// The write calls remembered. An edit remembers the post or comment it changed; a deletion
/// is [`CallOutcome::Done`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    Join,
    Leave,
    Post,
    Comment,
    Favourite,
    EditPost,
    DeletePost,
    EditComment,
    DeleteComment,
    Moderate,
}

impl CallKind {
    const ALL: [CallKind; 10] = [
        CallKind::Join,
        CallKind::Leave,
        CallKind::Post,
        CallKind::Comment,
        CallKind::Favourite,
        CallKind::EditPost,
        CallKind::DeletePost,
        CallKind::EditComment,
        CallKind::DeleteComment,
        CallKind::Moderate,
    ];

    fn code(self) -> u8 {
        match self {
            CallKind::Join => 1,
            CallKind::Leave => 2,
            CallKind::Post => 3,
            CallKind::Comment => 4,
            CallKind::Favourite => 5,
            CallKind::EditPost => 6,
            CallKind::DeletePost => 7,
            CallKind::EditComment => 8,
            CallKind::DeleteComment => 9,
            CallKind::Moderate => 10,
        }
    }

    fn of_code(c: u8) -> Result<CallKind, StoreError> {
        CallKind::ALL
            .into_iter()
            .find(|k| k.code() == c)
            .ok_or(StoreError::Corrupt("community call"))
    }
}

/// What a remembered call became.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOutcome {
    /// Claimed by an earlier build and never settled: its outcome is unknown.
    Pending,
    /// Applied; the answer carries nothing (`leave`, `favourite`).
    Done,
    /// A `join`: a member now (true), or a request left (false).
    Joined(bool),
    /// A `post`: the post's number.
    Post(u64),
    /// A `comment`: (the post's number, the comment's number).
    Comment(u64, u64),
}

impl CallOutcome {
    /// (code, first number, second number).
    fn encode(self) -> (u8, u64, u64) {
        match self {
            CallOutcome::Pending => (0, 0, 0),
            CallOutcome::Done => (1, 0, 0),
            CallOutcome::Joined(true) => (2, 0, 0),
            CallOutcome::Joined(false) => (3, 0, 0),
            CallOutcome::Post(p) => (4, p, 0),
            CallOutcome::Comment(p, c) => (5, p, c),
        }
    }

    fn decode(code: u8, a: u64, b: u64) -> Result<CallOutcome, StoreError> {
        Ok(match code {
            0 => CallOutcome::Pending,
            1 => CallOutcome::Done,
            2 => CallOutcome::Joined(true),
            3 => CallOutcome::Joined(false),
            4 => CallOutcome::Post(a),
            5 => CallOutcome::Comment(a, b),
            _ => return Err(StoreError::Corrupt("community call")),
        })
    }
}

/// One remembered call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommunityCall {
    /// When its envelope stops being accepted, and the row may go.
    pub expires: Millis,
    pub kind: CallKind,
    pub outcome: CallOutcome,
    /// SHA-256 of its content, which a repeat must have too (None: recorded before schema 15).
    pub digest: Option<[u8; 32]>,
}

fn row(call: &CommunityCall) -> CallRow {
    let (code, a, b) = call.outcome.encode();
    (call.expires.0, call.kind.code(), code, a, b)
}

fn decode(
    (expires, kind, code, a, b): CallRow,
    digest: Option<Vec<u8>>,
) -> Result<CommunityCall, StoreError> {
    let digest = digest
        .map(|d| <[u8; 32]>::try_from(d.as_slice()))
        .transpose()
        .map_err(|_| StoreError::Corrupt("community call digest"))?;
    Ok(CommunityCall {
        expires: Millis(expires),
        kind: CallKind::of_code(kind)?,
        outcome: CallOutcome::decode(code, a, b)?,
        digest,
    })
}

fn key(origin: &str, id: &str) -> (String, String) {
    (origin.to_string(), id.to_string())
}

fn get_w(tx: &impl kv::Read, origin: &str, id: &str) -> Result<Option<CommunityCall>, StoreError> {
    let k = key(origin, id);
    let Some(row) = ORIGIN_ENVID_COMMUNITYCALL.get(tx, &k)? else {
        return Ok(None);
    };
    decode(row, ORIGIN_ENVID_CALLDIGEST.get(tx, &k)?).map(Some)
}

fn put_w(
    tx: &impl kv::Write,
    origin: &str,
    id: &str,
    call: &CommunityCall,
) -> Result<(), StoreError> {
    ORIGIN_ENVID_COMMUNITYCALL.insert(tx, &key(origin, id), &row(call))?;
    if let Some(d) = call.digest {
        ORIGIN_ENVID_CALLDIGEST.insert(tx, &key(origin, id), &d.to_vec())?;
    }
    let (origin, id) = key(origin, id);
    EXPIRY_ORIGIN_ENVID_COMMUNITYCALL.insert(tx, &(call.expires.0, origin, id), &())?;
    Ok(())
}

fn remove_w(tx: &impl kv::Write, origin: &str, id: &str) -> Result<bool, StoreError> {
    let gone = ORIGIN_ENVID_COMMUNITYCALL.take(tx, &key(origin, id))?;
    ORIGIN_ENVID_CALLDIGEST.remove(tx, &key(origin, id))?;
    if let Some((expires, ..)) = gone {
        let (origin, id) = key(origin, id);
        EXPIRY_ORIGIN_ENVID_COMMUNITYCALL.remove(tx, &(expires, origin, id))?;
    }
    Ok(gone.is_some())
}

/// A remote user's write call, as the write that applies it records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteCall {
    pub origin: String,
    /// The envelope's id.
    pub id: String,
    pub kind: CallKind,
    /// When its envelope stops being accepted, and the row may go.
    pub expires: Millis,
    /// SHA-256 of the call's content (the envelope's `content`, canonical JSON).
    pub digest: [u8; 32],
}

/// The end of a write that applies `call`: when it was applied (not refused), records what it
/// became — `outcome` of its result — in the same transaction. A call recorded already fails
/// the whole write, which is rolled back: it was applied before (the host lets one copy of a
/// call in at a time, so only a second process could get here).
pub(crate) fn record_call<T, E>(
    tx: &impl kv::Write,
    call: Option<&RemoteCall>,
    applied: Result<T, E>,
    outcome: impl FnOnce(&T) -> CallOutcome,
) -> Result<Result<T, E>, StoreError> {
    if let (Some(call), Ok(done)) = (call, &applied) {
        if get_w(tx, &call.origin, &call.id)?.is_some() {
            return Err(StoreError::Db("a community call was applied twice".into()));
        }
        let row = CommunityCall {
            expires: call.expires,
            kind: call.kind,
            outcome: outcome(done),
            digest: Some(call.digest),
        };
        put_w(tx, &call.origin, &call.id, &row)?;
    }
    Ok(applied)
}

impl Store {
    /// Call `id` from `origin` as remembered, if it was applied (and not pruned since).
    pub async fn community_call(
        &self,
        origin: String,
        id: String,
    ) -> Result<Option<CommunityCall>, StoreError> {
        self.read(move |tx| get_w(tx, &origin, &id)).await
    }

    /// Removes up to `limit` calls whose envelopes expired before `now` (oldest first); how
    /// many. Run again while it returns `limit`: each batch starts where the index does, so a
    /// stopped pruning resumes by itself.
    pub async fn prune_community_calls(
        &self,
        now: Millis,
        limit: usize,
    ) -> Result<usize, StoreError> {
        self.write(move |tx| {
            let before = (now.0, String::new(), String::new());
            let due = EXPIRY_ORIGIN_ENVID_COMMUNITYCALL.range(
                tx,
                Bound::Unbounded,
                Bound::Excluded(&before),
                kv::Order::Ascending,
                limit,
            )?;
            for (k, ()) in &due {
                let (_, origin, id) = k;
                remove_w(tx, origin, id)?;
                // An index row without its call goes too, so pruning moves on.
                EXPIRY_ORIGIN_ENVID_COMMUNITYCALL.remove(tx, k)?;
            }
            Ok(due.len())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PostVisibility;

    fn open() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = Store::open(&dir.path().join("n.redb"), |_| Ok(None)).unwrap();
        (dir, s)
    }

    fn call(id: &str, kind: CallKind) -> Option<RemoteCall> {
        Some(RemoteCall {
            origin: "b.test".into(),
            id: id.into(),
            kind,
            expires: Millis(100),
            digest: [1; 32],
        })
    }

    async fn known(s: &Store, id: &str) -> Option<CallOutcome> {
        let c = s
            .community_call("b.test".into(), id.into())
            .await
            .unwrap()?;
        assert_eq!(c.expires, Millis(100));
        Some(c.outcome)
    }

    fn seal_post(id: u64) -> Result<(Vec<u8>, Vec<u8>), StoreError> {
        Ok((id.to_be_bytes().to_vec(), Vec::new()))
    }

    /// Every row of both tables, in key order.
    async fn rows(s: &Store) -> (Vec<((String, String), CallRow)>, Vec<(u64, String, String)>) {
        s.read(|tx| {
            let calls = ORIGIN_ENVID_COMMUNITYCALL.page(tx, None, 100)?;
            let index = EXPIRY_ORIGIN_ENVID_COMMUNITYCALL
                .page(tx, None, 100)?
                .into_iter()
                .map(|(k, ())| k)
                .collect();
            Ok((calls, index))
        })
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn each_applying_write_records_its_call_with_what_it_became() {
        let (_d, s) = open();
        let (owner, remote) = (1, 2 | (1 << 63));
        let now = Millis(10);
        s.create_community(7, "open".into(), String::new(), None, true, owner, now)
            .await
            .unwrap();
        let joined = s.join_community(7, remote, now, call("j", CallKind::Join));
        assert_eq!(joined.await.unwrap().unwrap(), crate::Joined::Member);
        assert_eq!(known(&s, "j").await, Some(CallOutcome::Joined(true)));
        let (p, _) = s
            .create_post(
                7,
                remote,
                PostVisibility::Members,
                Vec::new(),
                Vec::new(),
                now,
                call("p", CallKind::Post),
                seal_post,
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(known(&s, "p").await, Some(CallOutcome::Post(p)));
        let (c, _) = s
            .create_comment(
                7,
                p,
                remote,
                0,
                0,
                now,
                call("c", CallKind::Comment),
                |id| Ok(id.to_be_bytes().to_vec()),
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(known(&s, "c").await, Some(CallOutcome::Comment(p, c)));
        s.set_favourite(7, p, remote, true, now, call("f", CallKind::Favourite))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(known(&s, "f").await, Some(CallOutcome::Done));
        s.leave_community(7, remote, call("l", CallKind::Leave))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(known(&s, "l").await, Some(CallOutcome::Done));
        // A local user's write records nothing.
        s.create_post(
            7,
            owner,
            PostVisibility::Members,
            Vec::new(),
            Vec::new(),
            now,
            None,
            seal_post,
        )
        .await
        .unwrap()
        .unwrap();
        let (calls, index) = rows(&s).await;
        assert_eq!(calls.len(), 5);
        assert_eq!(index.len(), 5);
        // The same id from another origin is another call.
        assert_eq!(
            s.community_call("c.test".into(), "p".into()).await.unwrap(),
            None
        );
    }

    #[tokio::test]
    async fn a_refused_call_is_not_recorded_and_a_recorded_one_is_not_applied_again() {
        let (_d, s) = open();
        let now = Millis(10);
        let refused = s.join_community(7, 2, now, call("j", CallKind::Join));
        assert!(refused.await.unwrap().is_err(), "no such community");
        assert_eq!(known(&s, "j").await, None, "judged afresh next time");
        s.create_community(7, "open".into(), String::new(), None, true, 1, now)
            .await
            .unwrap();
        s.join_community(7, 2, now, call("j", CallKind::Join))
            .await
            .unwrap()
            .unwrap();
        let post = |id| {
            s.create_post(
                7,
                2,
                PostVisibility::Public,
                Vec::new(),
                Vec::new(),
                now,
                call(id, CallKind::Post),
                seal_post,
            )
        };
        let (p, _) = post("p").await.unwrap().unwrap();
        let again = post("p").await;
        assert!(matches!(again, Err(StoreError::Db(_))), "{again:?}");
        assert_eq!(known(&s, "p").await, Some(CallOutcome::Post(p)));
        let (next, _) = post("p2").await.unwrap().unwrap();
        assert_eq!(
            next,
            p + 1,
            "the second apply was rolled back, its number too"
        );
    }

    #[tokio::test]
    async fn pruning_removes_expired_calls_oldest_first_in_bounded_batches() {
        let (_d, s) = open();
        for (id, at) in [("late", 900), ("a", 10), ("b", 20), ("c", 30), ("now", 500)] {
            s.write(move |tx| {
                let row = CommunityCall {
                    expires: Millis(at),
                    kind: CallKind::Favourite,
                    outcome: CallOutcome::Done,
                    digest: Some([at as u8; 32]),
                };
                put_w(tx, "b.test", id, &row)
            })
            .await
            .unwrap();
        }
        assert_eq!(s.prune_community_calls(Millis(500), 2).await.unwrap(), 2);
        let (calls, index) = rows(&s).await;
        let ids: Vec<&str> = calls.iter().map(|((_, i), _)| i.as_str()).collect();
        assert_eq!(ids, ["c", "late", "now"], "the two oldest went first");
        assert_eq!(index.len(), 3);
        // The next batch goes on where that one stopped; a call expiring at `now` stays.
        assert_eq!(s.prune_community_calls(Millis(500), 2).await.unwrap(), 1);
        assert_eq!(s.prune_community_calls(Millis(500), 2).await.unwrap(), 0);
        let (calls, index) = rows(&s).await;
        let ids: Vec<&str> = calls.iter().map(|((_, i), _)| i.as_str()).collect();
        assert_eq!(ids, ["late", "now"]);
        assert_eq!(
            index.iter().map(|(at, ..)| *at).collect::<Vec<_>>(),
            [500, 900]
        );
        // Their digests go with them; the others' stay, as recorded.
        let digests = s
            .read(|tx| ORIGIN_ENVID_CALLDIGEST.page(tx, None, 100))
            .await
            .unwrap();
        let ids: Vec<&str> = digests.iter().map(|((_, i), _)| i.as_str()).collect();
        assert_eq!(ids, ["late", "now"]);
        let late = s
            .community_call("b.test".into(), "late".into())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(late.digest, Some([(900 % 256) as u8; 32]));
    }

    #[test]
    fn outcomes_round_trip_and_an_unknown_code_is_damage() {
        for o in [
            CallOutcome::Pending,
            CallOutcome::Done,
            CallOutcome::Joined(true),
            CallOutcome::Joined(false),
            CallOutcome::Post(7),
            CallOutcome::Comment(3, 9),
        ] {
            let (code, a, b) = o.encode();
            assert_eq!(CallOutcome::decode(code, a, b).unwrap(), o);
        }
        assert!(CallOutcome::decode(9, 0, 0).is_err());
        assert!(CallKind::of_code(0).is_err());
    }
}
