//! Remote users' calls to communities hosted here, as remembered by the host (issue 23): each
//! write call (`join`, `leave`, `post`, `comment`, `favourite`) by (origin domain, envelope
//! id), with what it became — so a repeated envelope (its member's node retrying after an
//! answer was lost) is answered again instead of applied again.
//!
//! A call is *claimed* before it is applied (a deferred write: it reaches the disk with the
//! apply's own durable commit at the latest, and a crash before that loses both) and
//! *settled* with its outcome once applied (durable, before the host answers). A claim that
//! was never settled — the host stopped, or failed, between applying and settling — stays a
//! claim: its repeats are refused as of unknown outcome, never applied. A call refused before
//! anything was applied is forgotten, so a repeat is judged afresh.
//!
//! Rows hold ids and numbers only — the origin's domain, the envelope's random id, the kind of
//! call, the numbers of the post or comment made — never the user, their address or what they
//! wrote, so nothing here links a remote user once their node's erasure has removed their
//! posts and comments. Each row lives as long as its envelope could be accepted at all (its
//! `ts` plus `federation::MAX_ENVELOPE_AGE_MS`; older envelopes are refused as stale before
//! this table is read) and is pruned after, in bounded batches through the expiry index.

use redb::{ReadableTable, WriteTransaction};

use super::catalog::{CallRow, EXPIRY_ORIGIN_ENVID_COMMUNITYCALL, ORIGIN_ENVID_COMMUNITYCALL};
use super::{Store, StoreError};
use primitives::time::Millis;

/// The write calls remembered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    Join,
    Leave,
    Post,
    Comment,
    Favourite,
}

impl CallKind {
    const ALL: [CallKind; 5] = [
        CallKind::Join,
        CallKind::Leave,
        CallKind::Post,
        CallKind::Comment,
        CallKind::Favourite,
    ];

    fn code(self) -> u8 {
        match self {
            CallKind::Join => 1,
            CallKind::Leave => 2,
            CallKind::Post => 3,
            CallKind::Comment => 4,
            CallKind::Favourite => 5,
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
    /// Claimed, not settled: being applied now, or its outcome is unknown.
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
}

fn row(call: &CommunityCall) -> CallRow {
    let (code, a, b) = call.outcome.encode();
    (call.expires.0, call.kind.code(), code, a, b)
}

fn decode((expires, kind, code, a, b): CallRow) -> Result<CommunityCall, StoreError> {
    Ok(CommunityCall {
        expires: Millis(expires),
        kind: CallKind::of_code(kind)?,
        outcome: CallOutcome::decode(code, a, b)?,
    })
}

fn get_w(
    tx: &WriteTransaction,
    origin: &str,
    id: &str,
) -> Result<Option<CommunityCall>, StoreError> {
    tx.open_table(ORIGIN_ENVID_COMMUNITYCALL)?
        .get((origin, id))?
        .map(|v| decode(v.value()))
        .transpose()
}

fn put_w(
    tx: &WriteTransaction,
    origin: &str,
    id: &str,
    call: &CommunityCall,
) -> Result<(), StoreError> {
    tx.open_table(ORIGIN_ENVID_COMMUNITYCALL)?
        .insert((origin, id), row(call))?;
    tx.open_table(EXPIRY_ORIGIN_ENVID_COMMUNITYCALL)?
        .insert((call.expires.0, origin, id), ())?;
    Ok(())
}

fn remove_w(tx: &WriteTransaction, origin: &str, id: &str) -> Result<bool, StoreError> {
    let gone = tx
        .open_table(ORIGIN_ENVID_COMMUNITYCALL)?
        .remove((origin, id))?
        .map(|v| v.value());
    if let Some((expires, ..)) = gone {
        tx.open_table(EXPIRY_ORIGIN_ENVID_COMMUNITYCALL)?
            .remove((expires, origin, id))?;
    }
    Ok(gone.is_some())
}

impl Store {
    /// Claims call `id` from `origin` (of `kind`, remembered until `expires`) unless it is
    /// already remembered: `None` when claimed now (the caller applies it, then settles or
    /// forgets it), else the call as remembered (the caller answers from it). A deferred write:
    /// the apply's durable commit, which follows it, takes it to the disk.
    pub async fn claim_community_call(
        &self,
        origin: String,
        id: String,
        kind: CallKind,
        expires: Millis,
    ) -> Result<Option<CommunityCall>, StoreError> {
        self.write_deferred(move |tx| {
            if let Some(known) = get_w(tx, &origin, &id)? {
                return Ok(Some(known));
            }
            let call = CommunityCall {
                expires,
                kind,
                outcome: CallOutcome::Pending,
            };
            put_w(tx, &origin, &id, &call)?;
            Ok(None)
        })
        .await
    }

    /// Records what the claimed call `id` from `origin` became (durably: the host answers
    /// after this). A call not claimed (pruned meanwhile) is not written.
    pub async fn settle_community_call(
        &self,
        origin: String,
        id: String,
        outcome: CallOutcome,
    ) -> Result<(), StoreError> {
        self.write(move |tx| {
            if let Some(mut call) = get_w(tx, &origin, &id)? {
                call.outcome = outcome;
                put_w(tx, &origin, &id, &call)?;
            }
            Ok(())
        })
        .await
    }

    /// Forgets the claimed call `id` from `origin`: it was refused before anything was applied,
    /// so a repeat is judged afresh.
    pub async fn forget_community_call(
        &self,
        origin: String,
        id: String,
    ) -> Result<(), StoreError> {
        self.write(move |tx| remove_w(tx, &origin, &id).map(|_| ()))
            .await
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
            let due: Vec<(String, String)> = tx
                .open_table(EXPIRY_ORIGIN_ENVID_COMMUNITYCALL)?
                .range(..(now.0, "", ""))?
                .take(limit)
                .map(|r| {
                    r.map(|(k, _)| {
                        let (_, origin, id) = k.value();
                        (origin.to_string(), id.to_string())
                    })
                })
                .collect::<Result<_, _>>()?;
            for (origin, id) in &due {
                remove_w(tx, origin, id)?;
            }
            Ok(due.len())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = Store::open(&dir.path().join("n.redb"), |_| Ok(None)).unwrap();
        (dir, s)
    }

    async fn claim(s: &Store, id: &str, kind: CallKind, expires: u64) -> Option<CommunityCall> {
        s.claim_community_call("b.test".into(), id.into(), kind, Millis(expires))
            .await
            .unwrap()
    }

    /// Every row of both tables, in key order.
    async fn rows(s: &Store) -> (Vec<((String, String), CallRow)>, Vec<(u64, String, String)>) {
        s.read(|tx| {
            let mut calls = Vec::new();
            for r in tx.open_table(ORIGIN_ENVID_COMMUNITYCALL)?.iter()? {
                let (k, v) = r?;
                let (o, i) = k.value();
                calls.push(((o.to_string(), i.to_string()), v.value()));
            }
            let mut index = Vec::new();
            for r in tx.open_table(EXPIRY_ORIGIN_ENVID_COMMUNITYCALL)?.iter()? {
                let k = r?.0;
                let (at, o, i) = k.value();
                index.push((at, o.to_string(), i.to_string()));
            }
            Ok((calls, index))
        })
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn a_call_is_claimed_once_and_its_repeats_get_what_it_became() {
        let (_d, s) = open();
        assert_eq!(claim(&s, "e1", CallKind::Post, 100).await, None, "claimed");
        let pending = CommunityCall {
            expires: Millis(100),
            kind: CallKind::Post,
            outcome: CallOutcome::Pending,
        };
        assert_eq!(
            claim(&s, "e1", CallKind::Post, 100).await,
            Some(pending),
            "a repeat before it is settled finds the claim"
        );
        s.settle_community_call("b.test".into(), "e1".into(), CallOutcome::Post(7))
            .await
            .unwrap();
        assert_eq!(
            claim(&s, "e1", CallKind::Post, 100).await,
            Some(CommunityCall {
                outcome: CallOutcome::Post(7),
                ..pending
            })
        );
        // The same id from another origin is another call.
        let other = s
            .claim_community_call("c.test".into(), "e1".into(), CallKind::Join, Millis(100))
            .await
            .unwrap();
        assert_eq!(other, None);
        for outcome in [
            CallOutcome::Done,
            CallOutcome::Joined(true),
            CallOutcome::Joined(false),
            CallOutcome::Comment(3, 9),
        ] {
            s.settle_community_call("c.test".into(), "e1".into(), outcome)
                .await
                .unwrap();
            let back = s
                .claim_community_call("c.test".into(), "e1".into(), CallKind::Join, Millis(1))
                .await
                .unwrap()
                .unwrap();
            assert_eq!((back.outcome, back.expires), (outcome, Millis(100)));
        }
        let (calls, index) = rows(&s).await;
        assert_eq!(calls.len(), 2);
        assert_eq!(
            index,
            [
                (100, "b.test".to_string(), "e1".to_string()),
                (100, "c.test".to_string(), "e1".to_string())
            ]
        );
    }

    #[tokio::test]
    async fn a_forgotten_claim_is_judged_afresh_and_an_unclaimed_call_is_not_settled() {
        let (_d, s) = open();
        assert_eq!(claim(&s, "e1", CallKind::Comment, 50).await, None);
        s.forget_community_call("b.test".into(), "e1".into())
            .await
            .unwrap();
        assert_eq!(rows(&s).await, (vec![], vec![]), "both rows went");
        assert_eq!(claim(&s, "e1", CallKind::Comment, 50).await, None);
        s.settle_community_call("b.test".into(), "e2".into(), CallOutcome::Done)
            .await
            .unwrap();
        assert_eq!(rows(&s).await.0.len(), 1, "e2 was never claimed");
    }

    #[tokio::test]
    async fn pruning_removes_expired_calls_oldest_first_in_bounded_batches() {
        let (_d, s) = open();
        for (id, at) in [("late", 900), ("a", 10), ("b", 20), ("c", 30), ("now", 500)] {
            assert_eq!(claim(&s, id, CallKind::Favourite, at).await, None);
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
        // A pruned call is claimed afresh (only an envelope too old to be accepted could ask).
        assert_eq!(claim(&s, "a", CallKind::Favourite, 10).await, None);
    }
}
