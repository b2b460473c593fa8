//! The behaviour log (policy 1.4.1, 1.8.1): a user's follows, favourites, views and shares of
//! communities and posts, kept only while `personalisation` is granted, under the user's
//! behaviour pseudonym (never their id), each event sealed by the caller under the user's data
//! key — and the read that turns the communities a user showed interest in into suggested
//! public communities they are not in.

use std::collections::{HashMap, HashSet};
use std::ops::Bound;

use redb::WriteTransaction;

use super::kv::{self, Order};

#[cfg(test)]
use super::Joined;
use super::catalog::*;
use super::{Store, StoreError};
use primitives::time::Millis;

/// Most events kept per user; the oldest go as new ones arrive.
pub const MAX_EVENTS_PER_USER: usize = 500;
/// Interest communities read for suggestions, most weighty first.
const INTEREST_COMMUNITIES: usize = 20;
/// Members of one interest community whose other communities are counted.
const MEMBERS_READ: usize = 200;
/// Communities of one such member that are counted.
const THEIR_COMMUNITIES: usize = 50;
/// How much more a community the user showed interest in itself counts than one its members
/// are also in.
const DIRECT: u64 = 10;

/// The behaviour pseudonym of `user` under their pseudonym key.
fn pseudonym(key: &[u8; 32], user: u64) -> u64 {
    let mut msg = b"behaviour-log".to_vec();
    msg.extend_from_slice(&user.to_be_bytes());
    let h = primitives::crypto::hmac_sha256(key, &msg);
    u64::from_be_bytes(h[..8].try_into().unwrap_or([0; 8]))
}

/// The (time, number) of pseudonym `p`'s events, oldest first. A user has at most
/// [`MAX_EVENTS_PER_USER`] (one more while a new one is being added), so the read is bounded.
fn rows_of(tx: &impl kv::Read, p: u64) -> Result<Vec<(u64, u64)>, StoreError> {
    Ok(PSEUDONYM_MS_N_BEHAVIOUR
        .prefixed(tx, &p, Order::Ascending, MAX_EVENTS_PER_USER + 1)?
        .into_iter()
        .map(|((_, at, n), _)| (at, n))
        .collect())
}

fn remove_row(tx: &impl kv::Write, p: u64, at: u64, n: u64) -> Result<(), StoreError> {
    PSEUDONYM_MS_N_BEHAVIOUR.remove(tx, &(p, at, n))?;
    MS_PSEUDONYM_N_BEHAVIOUR.remove(tx, &(at, p, n))?;
    Ok(())
}

/// Removes every behaviour event of `user`: at revocation of `personalisation` and at
/// erasure (before the pseudonym key goes, while the rows can still be found).
pub fn erase_behaviour(tx: &WriteTransaction, user: u64) -> Result<u64, StoreError> {
    let Some(key) = super::search::pseudonym_key_w(tx, user, false)? else {
        return Ok(0);
    };
    let p = pseudonym(&key, user);
    let rows = rows_of(tx, p)?;
    for (at, n) in &rows {
        remove_row(tx, p, *at, *n)?;
    }
    Ok(rows.len() as u64)
}

impl Store {
    /// Records one behaviour event of `user` (sealed by the caller) if, in this transaction,
    /// `personalisation` is granted; drops their events past [`MAX_EVENTS_PER_USER`] and those
    /// older than `cutoff`. Returns whether it was recorded.
    pub async fn log_behaviour(
        &self,
        user: u64,
        at: Millis,
        sealed: Vec<u8>,
        cutoff: Millis,
    ) -> Result<bool, StoreError> {
        self.write(move |tx| {
            if !super::privacy::granted(
                &tx.open_table(USERID_PURPOSE_CONSENT)?,
                user,
                "personalisation",
            )? {
                return Ok(false);
            }
            let Some(key) = super::search::pseudonym_key_w(tx, user, true)? else {
                return Ok(false);
            };
            let p = pseudonym(&key, user);
            let mut rows = rows_of(tx, p)?;
            // Several events in one millisecond are numbered within it.
            let n = rows
                .iter()
                .filter(|(t, _)| *t == at.0)
                .map(|(_, n)| n + 1)
                .max()
                .unwrap_or(0);
            PSEUDONYM_MS_N_BEHAVIOUR.insert(tx, &(p, at.0, n), &sealed)?;
            MS_PSEUDONYM_N_BEHAVIOUR.insert(tx, &(at.0, p, n), &())?;
            rows.push((at.0, n));
            rows.sort_unstable();
            let excess = rows.len().saturating_sub(MAX_EVENTS_PER_USER);
            for (i, (t, k)) in rows.iter().enumerate() {
                if i < excess || *t < cutoff.0 {
                    remove_row(tx, p, *t, *k)?;
                }
            }
            Ok(true)
        })
        .await
    }

    /// `user`'s behaviour events (time, sealed event), newest first, none older than `cutoff`.
    pub async fn behaviour_log(
        &self,
        user: u64,
        cutoff: Millis,
    ) -> Result<Vec<(Millis, Vec<u8>)>, StoreError> {
        self.read(move |tx| {
            let Some(k) = USERID_PSEUDONYMKEY.get(tx, &user)? else {
                return Ok(Vec::new());
            };
            let p = pseudonym(&k, user);
            Ok(PSEUDONYM_MS_N_BEHAVIOUR
                .range(
                    tx,
                    Bound::Included(&(p, cutoff.0, 0)),
                    Bound::Included(&(p, u64::MAX, u64::MAX)),
                    Order::Descending,
                    MAX_EVENTS_PER_USER,
                )?
                .into_iter()
                .map(|((_, at, _), sealed)| (Millis(at), sealed))
                .collect())
        })
        .await
    }

    /// How many behaviour events are stored, for everyone (rows of both tables): what a
    /// check of the database file (an operator's, a test's) sees.
    pub async fn behaviour_rows(&self) -> Result<(u64, u64), StoreError> {
        self.read(|tx| {
            Ok((
                kv::rows_in(tx, PSEUDONYM_MS_N_BEHAVIOUR.name())?,
                kv::rows_in(tx, MS_PSEUDONYM_N_BEHAVIOUR.name())?,
            ))
        })
        .await
    }

    /// Removes up to `batch` behaviour events older than `cutoff` (retention); how many.
    pub async fn prune_behaviour_log(
        &self,
        cutoff: Millis,
        batch: usize,
    ) -> Result<u64, StoreError> {
        self.write(move |tx| {
            let due = MS_PSEUDONYM_N_BEHAVIOUR.range(
                tx,
                Bound::Unbounded,
                Bound::Excluded(&(cutoff.0, 0, 0)),
                Order::Ascending,
                batch,
            )?;
            for ((t, p, n), ()) in &due {
                remove_row(tx, *p, *t, *n)?;
            }
            Ok(due.len() as u64)
        })
        .await
    }

    /// Public communities to suggest to `user`, best first, at most `limit`, from the
    /// communities they showed interest in (`interest`: community number and weight): such a
    /// community itself if they are not in it, and the communities that its members are also
    /// in. Never one they are in, asked to join or were invited to, banned from, or a private
    /// one.
    pub async fn suggest_communities(
        &self,
        user: u64,
        interest: Vec<(u64, u64)>,
        limit: usize,
    ) -> Result<Vec<u64>, StoreError> {
        self.read(move |tx| {
            let mut interest = interest;
            interest.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            interest.truncate(INTEREST_COMMUNITIES);
            let mine: HashSet<u64> = USERID_COMMUNITYNO
                .prefixed_in_pages(tx, &user, 256)?
                .into_iter()
                .map(|((_, c), _)| c)
                .collect();
            let mut scores: HashMap<u64, u64> = HashMap::new();
            for (c, w) in &interest {
                // Whose members count: a community the user may read — public, or theirs
                // (asking to join a private one shows them nothing of its members).
                let readable = match COMMUNITYNO_COMMUNITY.get(tx, c)? {
                    Some(v) => {
                        mine.contains(c) || super::community::decode_community(*c, &v)?.public
                    }
                    None => false,
                };
                if !readable {
                    continue;
                }
                *scores.entry(*c).or_default() += w * DIRECT;
                let members =
                    COMMUNITYNO_USERID_MEMBER.prefixed(tx, c, Order::Ascending, MEMBERS_READ)?;
                for ((_, m), _) in members {
                    if m == user {
                        continue;
                    }
                    let theirs =
                        USERID_COMMUNITYNO.prefixed(tx, &m, Order::Ascending, THEIR_COMMUNITIES)?;
                    for ((_, other), _) in theirs {
                        if other != *c {
                            *scores.entry(other).or_default() += w;
                        }
                    }
                }
            }
            let mut ranked: Vec<(u64, u64)> = Vec::new();
            for (c, score) in scores {
                if mine.contains(&c)
                    || COMMUNITYNO_USERID_BAN.get(tx, &(c, user))?.is_some()
                    || COMMUNITYNO_USERID_PENDING.get(tx, &(c, user))?.is_some()
                {
                    continue;
                }
                let Some(v) = COMMUNITYNO_COMMUNITY.get(tx, &c)? else {
                    continue;
                };
                if super::community::decode_community(c, &v)?.public {
                    ranked.push((c, score));
                }
            }
            ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            Ok(ranked.into_iter().take(limit).map(|(c, _)| c).collect())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ConsentEvent;

    fn open(dir: &std::path::Path) -> Store {
        Store::open(&dir.join("node.redb"), |_| Ok(None)).unwrap().0
    }

    fn consent(granted: bool) -> ConsentEvent {
        ConsentEvent {
            purpose: "personalisation".into(),
            granted,
            at: Millis(1),
            policy_version: "v1".into(),
            device_id: "d".into(),
        }
    }

    async fn rows(s: &Store) -> (u64, u64) {
        s.behaviour_rows().await.unwrap()
    }

    #[tokio::test]
    async fn events_are_kept_only_with_personalisation_and_revoking_deletes_them() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path());
        s.insert_account(crate::tests::account(1, "alice"))
            .await
            .unwrap();
        assert!(
            !s.log_behaviour(1, Millis(10), vec![1], Millis(0))
                .await
                .unwrap()
        );
        assert_eq!(rows(&s).await, (0, 0), "nothing without the purpose");
        s.record_consent(1, consent(true), None).await.unwrap();
        for (t, b) in [(10, 1), (10, 2), (20, 3)] {
            assert!(
                s.log_behaviour(1, Millis(t), vec![b], Millis(0))
                    .await
                    .unwrap()
            );
        }
        let log = s.behaviour_log(1, Millis(0)).await.unwrap();
        assert_eq!(
            log,
            vec![
                (Millis(20), vec![3]),
                (Millis(10), vec![2]),
                (Millis(10), vec![1])
            ],
            "two events in one millisecond are both kept"
        );
        assert_eq!(s.prune_behaviour_log(Millis(15), 10).await.unwrap(), 2);
        assert_eq!(s.behaviour_log(1, Millis(0)).await.unwrap().len(), 1);
        s.record_consent(1, consent(false), None).await.unwrap();
        assert!(s.behaviour_log(1, Millis(0)).await.unwrap().is_empty());
        assert_eq!(
            rows(&s).await,
            (0, 0),
            "both tables are emptied at revocation"
        );
    }

    #[tokio::test]
    async fn a_user_keeps_at_most_the_newest_events() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path());
        s.insert_account(crate::tests::account(1, "alice"))
            .await
            .unwrap();
        s.record_consent(1, consent(true), None).await.unwrap();
        for t in 0..(MAX_EVENTS_PER_USER as u64 + 5) {
            s.log_behaviour(1, Millis(100 + t), vec![0], Millis(0))
                .await
                .unwrap();
        }
        let log = s.behaviour_log(1, Millis(0)).await.unwrap();
        assert_eq!(log.len(), MAX_EVENTS_PER_USER);
        assert_eq!(log.last().unwrap().0, Millis(105), "the oldest went");
        assert_eq!(rows(&s).await.1, MAX_EVENTS_PER_USER as u64);
    }

    #[tokio::test]
    async fn the_first_erasure_step_removes_the_behaviour_log_before_its_key_goes() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path());
        for (u, h) in [(1, "alice"), (2, "bob")] {
            s.insert_account(crate::tests::account(u, h)).await.unwrap();
            s.record_consent(u, consent(true), None).await.unwrap();
            s.log_behaviour(u, Millis(10), vec![u as u8], Millis(0))
                .await
                .unwrap();
        }
        crate::tests::begin_erasure(&s, 1).await;
        assert_eq!(rows(&s).await, (1, 1), "only bob's event is left");
        assert_eq!(s.behaviour_log(2, Millis(0)).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn suggestions_are_public_communities_not_mine_and_never_from_a_private_ones_members() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path());
        let make = |id: u64, public: bool, owner: u64| {
            let s = s.clone();
            async move {
                assert!(
                    s.create_community(
                        id,
                        format!("c{id}"),
                        String::new(),
                        None,
                        public,
                        owner,
                        Millis(1)
                    )
                    .await
                    .unwrap()
                );
            }
        };
        // 10 public and 20 private, both owned by 2, who is also in 11 and 12; the user 1
        // asked to join 20 and is in 13.
        make(10, true, 2).await;
        make(11, true, 2).await;
        make(20, false, 2).await;
        make(21, true, 3).await;
        make(12, false, 3).await;
        make(13, true, 3).await;
        s.join_community(21, 2, Millis(2), None)
            .await
            .unwrap()
            .unwrap();
        s.join_community(13, 1, Millis(2), None)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            s.join_community(20, 1, Millis(2), None)
                .await
                .unwrap()
                .unwrap(),
            Joined::Requested
        );
        let got = s
            .suggest_communities(1, vec![(10, 3), (20, 50), (13, 1)], 10)
            .await
            .unwrap();
        // 10 itself first; 11 and 21 through 2, a member of 10, and 21 also through 3, the
        // owner of 13 (so ahead); 12 is private, 13 mine, and 20's members count for nothing
        // (not readable by the user, nor suggested).
        assert_eq!(got, [10, 21, 11]);
        assert!(
            s.suggest_communities(1, vec![(20, 50)], 10)
                .await
                .unwrap()
                .is_empty()
        );
    }
}
