//! Suggestion sources as stored (issue 22): the findable-by-phone setting and its contact
//! index, contact matches with expiry and the daily quota, the public-education index,
//! dismissals, and the one read that gathers a user's candidates. Also what revocation and
//! erasure remove of all of it (with `nearby.rs` and `invites.rs`).
//!
//! **Invariant:** an uploaded contact is only ever looked up; neither it nor its index is
//! written. Only matches are kept.
//!
//! **Boundary:** these tables are behind the key-value seam (schema 11): what only touches
//! them takes `&impl kv::Read` / `&impl kv::Write`, and every range names a user's (or an
//! education index's) prefix and a limit; what must visit all of one user's rows does it
//! [`PAGE`] rows at a time.

use std::ops::Bound;

use redb::ReadableTable;

use super::catalog::*;
use super::codec::{Dec, Enc};
use super::kv::{self, Order};
use super::privacy::{purpose_active, purpose_status_in};
use super::{PurposeStatus, Store, StoreError};
use primitives::time::Millis;

/// Most friends of the user, and of each friend, a suggestion read walks.
const FRIENDS_FAN: usize = 5_000;

/// Most candidates one education value contributes (a popular school would otherwise make
/// every suggestion read scan all its pupils).
const EDUCATION_FAN: usize = 2_000;

/// Rows one range of a user's matches, day counts or dismissals reads at most.
const PAGE: usize = 256;

/// A user's discovery settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiscoverySettings {
    /// Others' uploaded contacts may match this user's phone number (off by default).
    pub findable_by_phone: bool,
}

fn decode_settings(b: &[u8]) -> Result<(DiscoverySettings, [u8; 32]), StoreError> {
    let mut d = Dec::new(b, "discovery", 1)?;
    let findable = d.bool()?;
    let index: [u8; 32] = d
        .bytes()?
        .try_into()
        .map_err(|_| StoreError::Corrupt("discovery"))?;
    d.end()?;
    Ok((
        DiscoverySettings {
            findable_by_phone: findable,
        },
        index,
    ))
}

/// Why a contact upload was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadRefusal {
    /// `contacts_matching` is not (or no longer) granted.
    NotGranted,
    /// The day's quota of distinct numbers would be exceeded; how many are left.
    Quota { left: u64 },
}

/// What a contact upload found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadOutcome {
    pub matched: usize,
    pub quota_left: u64,
}

/// Why a user is a candidate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sources {
    pub contact: bool,
    pub education: bool,
    /// Friends in common (a count only).
    pub mutual: usize,
}

fn day(at: Millis) -> u64 {
    at.0 / 86_400_000
}

/// Removes every row `(user, other)` of `table` and its reverse `(other, user)` of
/// `reverse`, [`PAGE`] rows per read (each read starts at the user's first row left).
fn remove_pairs<V: kv::Value, W: kv::Value>(
    tx: &impl kv::Write,
    table: kv::Table<(u64, u64), V>,
    reverse: kv::Table<(u64, u64), W>,
    user: u64,
) -> Result<(), StoreError> {
    loop {
        let rows = table.prefixed_page(tx, &user, None, PAGE)?;
        for ((_, other), _) in &rows {
            table.remove(tx, &(user, *other))?;
            reverse.remove(tx, &(*other, user))?;
        }
        if rows.len() < PAGE {
            return Ok(());
        }
    }
}

/// How many rows of `table` under `user` hold a value `counts` accepts, read [`PAGE`] rows
/// at a time.
fn count_rows<V: kv::Value>(
    tx: &impl kv::Read,
    table: kv::Table<(u64, u64), V>,
    user: u64,
    counts: impl Fn(&V) -> bool,
) -> Result<usize, StoreError> {
    let mut n = 0;
    let mut after = None;
    loop {
        let rows = table.prefixed_page(tx, &user, after.as_ref(), PAGE)?;
        n += rows.iter().filter(|(_, v)| counts(v)).count();
        if rows.len() < PAGE {
            return Ok(n);
        }
        after = rows.last().map(|(k, _)| *k);
    }
}

/// Deletes every contact match of `user`'s uploads (revoking `contacts_matching`).
pub fn drop_matches(tx: &impl kv::Write, user: u64) -> Result<(), StoreError> {
    remove_pairs(tx, USERID_MATCHED_EXPIRY, MATCHED_USERID, user)
}

/// Removes `user` from every suggestion source and every other user's matches and
/// dismissals, and their own settings, quota and dismissals (erasure). Bounded by the rows
/// naming the user, read a page at a time.
pub fn erase_discovery_rows(tx: &impl kv::Write, user: u64) -> Result<(), StoreError> {
    drop_matches(tx, user)?;
    // Matches others made of this user.
    remove_pairs(tx, MATCHED_USERID, USERID_MATCHED_EXPIRY, user)?;
    let gone = USERID_DISCOVERY
        .take(tx, &user)?
        .map(|v| decode_settings(&v))
        .transpose()?;
    if let Some((_, index)) = gone {
        CONTACTINDEX_USERID.remove(tx, &index)?;
    }
    USERID_DAY_CONTACTS.remove_all_prefixed(tx, &user, PAGE)?;
    set_education_in(tx, user, None)?;
    remove_pairs(tx, USERID_DISMISSED, DISMISSED_USERID, user)?;
    // Others' dismissals of this user.
    remove_pairs(tx, DISMISSED_USERID, USERID_DISMISSED, user)?;
    super::nearby::drop_cell(tx, user)?;
    super::invites::erase_invite_rows(tx, user)?;
    Ok(())
}

/// Points `user`'s education entry at `index` (or removes it).
pub fn set_education_in(
    tx: &impl kv::Write,
    user: u64,
    index: Option<[u8; 32]>,
) -> Result<(), StoreError> {
    let old = USERID_EDUINDEX.get(tx, &user)?;
    if old == index {
        return Ok(());
    }
    if let Some(old) = old {
        EDUINDEX_USERID.remove(tx, &(old, user))?;
        USERID_EDUINDEX.remove(tx, &user)?;
    }
    if let Some(new) = index {
        EDUINDEX_USERID.insert(tx, &(new, user), &())?;
        USERID_EDUINDEX.insert(tx, &user, &new)?;
    }
    Ok(())
}

impl Store {
    /// The user's discovery settings (defaults when never set).
    pub async fn discovery_settings(&self, user: u64) -> Result<DiscoverySettings, StoreError> {
        self.read(move |tx| {
            Ok(match USERID_DISCOVERY.get(tx, &user)? {
                Some(v) => decode_settings(&v)?.0,
                None => DiscoverySettings::default(),
            })
        })
        .await
    }

    /// Sets whether `user` is findable by phone number: `index` is the contact index of their
    /// own phone (written while findable, removed when not). False if the account is gone.
    pub async fn set_findable(
        &self,
        user: u64,
        findable: bool,
        index: [u8; 32],
    ) -> Result<bool, StoreError> {
        self.write(move |tx| {
            if tx.open_table(USERID_ACCOUNT)?.get(user)?.is_none() {
                return Ok(false);
            }
            if let Some(v) = USERID_DISCOVERY.get(tx, &user)? {
                let (_, old) = decode_settings(&v)?;
                CONTACTINDEX_USERID.remove(tx, &old)?;
            }
            if findable {
                CONTACTINDEX_USERID.insert(tx, &index, &user)?;
            }
            let rec = Enc::new(1).bool(findable).bytes(&index).finish();
            USERID_DISCOVERY.insert(tx, &user, &rec)?;
            Ok(true)
        })
        .await
    }

    /// Matches an upload of contact indexes (already deduplicated) for `user`: counts them
    /// against the day's quota, keeps a match (until `expires`) for each findable user found,
    /// and writes nothing else about the upload. Checks `contacts_matching` in the same
    /// transaction, so a revocation recorded meanwhile wins.
    pub async fn match_contacts(
        &self,
        user: u64,
        indexes: Vec<[u8; 32]>,
        quota: u64,
        now: Millis,
        expires: Millis,
    ) -> Result<Result<UploadOutcome, UploadRefusal>, StoreError> {
        self.write(move |tx| {
            if !purpose_active(tx, user, "contacts_matching", now)? {
                return Ok(Err(UploadRefusal::NotGranted));
            }
            let today = day(now);
            let used = USERID_DAY_CONTACTS.get(tx, &(user, today))?.unwrap_or(0);
            let n = indexes.len() as u64;
            if used + n > quota {
                return Ok(Err(UploadRefusal::Quota {
                    left: quota.saturating_sub(used),
                }));
            }
            // Earlier days' counts are no longer needed.
            loop {
                let earlier = USERID_DAY_CONTACTS.range(
                    tx,
                    Bound::Included(&(user, 0)),
                    Bound::Excluded(&(user, today)),
                    Order::Ascending,
                    PAGE,
                )?;
                for (k, _) in &earlier {
                    USERID_DAY_CONTACTS.remove(tx, k)?;
                }
                if earlier.len() < PAGE {
                    break;
                }
            }
            USERID_DAY_CONTACTS.insert(tx, &(user, today), &(used + n))?;
            // Expired matches of this user go now, read a page at a time.
            let mut after = None;
            loop {
                let page = USERID_MATCHED_EXPIRY.prefixed_page(tx, &user, after.as_ref(), PAGE)?;
                for ((_, m), expiry) in &page {
                    if *expiry <= now.0 {
                        USERID_MATCHED_EXPIRY.remove(tx, &(user, *m))?;
                        MATCHED_USERID.remove(tx, &(*m, user))?;
                    }
                }
                if page.len() < PAGE {
                    break;
                }
                after = page.last().map(|(k, _)| *k);
            }
            let mut matched = 0;
            for index in &indexes {
                if let Some(m) = CONTACTINDEX_USERID.get(tx, index)?
                    && m != user
                {
                    USERID_MATCHED_EXPIRY.insert(tx, &(user, m), &expires.0)?;
                    MATCHED_USERID.insert(tx, &(m, user), &())?;
                    matched += 1;
                }
            }
            Ok(Ok(UploadOutcome {
                matched,
                quota_left: quota - used - n,
            }))
        })
        .await
    }

    /// Deletes the user's contact matches ("forget my contacts").
    pub async fn forget_matches(&self, user: u64) -> Result<(), StoreError> {
        self.write(move |tx| drop_matches(tx, user)).await
    }

    /// Dismisses `other` from `user`'s suggestions, for good.
    pub async fn dismiss(&self, user: u64, other: u64, now: Millis) -> Result<(), StoreError> {
        self.write(move |tx| {
            USERID_DISMISSED.insert(tx, &(user, other), &now.0)?;
            DISMISSED_USERID.insert(tx, &(other, user), &())?;
            Ok(())
        })
        .await
    }

    /// Number of users `user` dismissed (for the export).
    pub async fn dismissed_count(&self, user: u64) -> Result<usize, StoreError> {
        self.read(move |tx| count_rows(tx, USERID_DISMISSED, user, |_| true))
            .await
    }

    /// Number of current contact matches of `user`'s uploads (for the export).
    pub async fn match_count(&self, user: u64, now: Millis) -> Result<usize, StoreError> {
        self.read(move |tx| count_rows(tx, USERID_MATCHED_EXPIRY, user, |exp| *exp > now.0))
            .await
    }

    /// Every candidate suggestion for `user` with its sources: current contact matches whose
    /// user is still findable by phone, users sharing the user's public education, and
    /// friends of friends (with the number of friends in common). Each candidate is a local
    /// user who grants `be_recommended`, is not `user`, not already a friend, blocked by
    /// neither side, and was not dismissed. Ordered by user id.
    pub async fn suggestion_candidates(
        &self,
        user: u64,
        now: Millis,
    ) -> Result<Vec<(u64, Sources)>, StoreError> {
        self.read(move |tx| {
            let mut found: std::collections::BTreeMap<u64, Sources> = Default::default();
            for ((_, m), expiry) in USERID_MATCHED_EXPIRY.prefixed_in_pages(tx, &user, PAGE)? {
                if expiry > now.0 {
                    found.entry(m).or_default().contact = true;
                }
            }
            if let Some(index) = USERID_EDUINDEX.get(tx, &user)? {
                for ((_, other), ()) in
                    EDUINDEX_USERID.prefixed(tx, &index, Order::Ascending, EDUCATION_FAN)?
                {
                    found.entry(other).or_default().education = true;
                }
            }
            let friends_of = |u: u64| -> Result<Vec<u64>, StoreError> {
                Ok(USERID_USERID_FRIEND
                    .prefixed(tx, &u, Order::Ascending, FRIENDS_FAN)?
                    .into_iter()
                    .map(|((_, f), _)| f)
                    .collect())
            };
            let mine: std::collections::BTreeSet<u64> = friends_of(user)?.into_iter().collect();
            for f in &mine {
                for g in friends_of(*f)? {
                    if g & REMOTE_USER_BIT == 0 {
                        found.entry(g).or_default().mutual += 1;
                    }
                }
            }
            found.retain(|cand, _| !mine.contains(cand) && *cand & REMOTE_USER_BIT == 0);
            found.remove(&user);
            let consents = tx.open_table(USERID_PURPOSE_CONSENT)?;
            let mut out = Vec::with_capacity(found.len());
            for (cand, mut sources) in found {
                if USERID_DISMISSED.get(tx, &(user, cand))?.is_some()
                    || USERID_USERID_BLOCK.get(tx, &(user, cand))?.is_some()
                    || USERID_USERID_BLOCKEDBY.get(tx, &(user, cand))?.is_some()
                {
                    continue;
                }
                if purpose_status_in(&consents, tx, cand, "be_recommended", now)?
                    != PurposeStatus::Granted
                {
                    continue;
                }
                if sources.contact {
                    // The matched user's own choice decides, also after the match was made.
                    let findable = match USERID_DISCOVERY.get(tx, &cand)? {
                        Some(v) => decode_settings(&v)?.0.findable_by_phone,
                        None => false,
                    };
                    sources.contact = findable;
                }
                out.push((cand, sources));
            }
            Ok(out)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ConsentEvent;

    const DAY_MS: u64 = 86_400_000;

    fn open(dir: &std::path::Path) -> Store {
        Store::open(&dir.join("n.redb"), |_| Ok(None)).unwrap().0
    }

    /// How many rows each discovery table of pairs holds, as the file sees it.
    async fn rows(s: &Store) -> [u64; 5] {
        s.read(|tx| {
            Ok([
                kv::rows_in(tx, USERID_MATCHED_EXPIRY.name())?,
                kv::rows_in(tx, MATCHED_USERID.name())?,
                kv::rows_in(tx, USERID_DAY_CONTACTS.name())?,
                kv::rows_in(tx, USERID_DISMISSED.name())?,
                kv::rows_in(tx, DISMISSED_USERID.name())?,
            ])
        })
        .await
        .unwrap()
    }

    /// More rows name the user than one page holds, from both ends of every pair: the
    /// erasure removes them all, page by page, and nobody else's.
    #[tokio::test]
    async fn erasure_removes_every_row_naming_the_user_over_several_pages() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path());
        let n = 2 * PAGE as u64 + 3;
        s.write(move |tx| {
            for o in 10..10 + n {
                USERID_MATCHED_EXPIRY.insert(tx, &(1, o), &9)?;
                MATCHED_USERID.insert(tx, &(o, 1), &())?;
                USERID_MATCHED_EXPIRY.insert(tx, &(o, 1), &9)?;
                MATCHED_USERID.insert(tx, &(1, o), &())?;
                USERID_DISMISSED.insert(tx, &(1, o), &5)?;
                DISMISSED_USERID.insert(tx, &(o, 1), &())?;
                USERID_DISMISSED.insert(tx, &(o, 1), &5)?;
                DISMISSED_USERID.insert(tx, &(1, o), &())?;
                USERID_DAY_CONTACTS.insert(tx, &(1, o), &1)?;
            }
            // User 2's own rows, about user 3.
            USERID_MATCHED_EXPIRY.insert(tx, &(2, 3), &9)?;
            MATCHED_USERID.insert(tx, &(3, 2), &())?;
            USERID_DISMISSED.insert(tx, &(2, 3), &5)?;
            DISMISSED_USERID.insert(tx, &(3, 2), &())?;
            USERID_DAY_CONTACTS.insert(tx, &(2, 0), &1)?;
            set_education_in(tx, 1, Some([4; 32]))?;
            Ok(())
        })
        .await
        .unwrap();
        assert_eq!(s.dismissed_count(1).await.unwrap(), n as usize);
        assert_eq!(s.match_count(1, Millis(8)).await.unwrap(), n as usize);
        assert_eq!(s.match_count(1, Millis(9)).await.unwrap(), 0, "expired");
        s.write(|tx| erase_discovery_rows(tx, 1)).await.unwrap();
        assert_eq!(
            rows(&s).await,
            [1, 1, 1, 1, 1],
            "only user 2's rows are left"
        );
        assert_eq!(s.dismissed_count(2).await.unwrap(), 1);
        assert_eq!(s.match_count(2, Millis(8)).await.unwrap(), 1);
        let education = s
            .read(|tx| {
                Ok((
                    USERID_EDUINDEX.get(tx, &1)?,
                    EDUINDEX_USERID.prefixed(tx, &[4u8; 32], Order::Ascending, 10)?,
                ))
            })
            .await
            .unwrap();
        assert_eq!(education, (None, vec![]));
    }

    /// An upload removes the user's expired matches and earlier days' counts however many
    /// pages they take, and keeps the rest.
    #[tokio::test]
    async fn an_upload_sweeps_expired_matches_and_old_days_over_several_pages() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path());
        let now = Millis(1_000 * DAY_MS);
        let granted = ConsentEvent {
            purpose: "contacts_matching".into(),
            granted: true,
            at: Millis(1),
            policy_version: "v1".into(),
            device_id: "d".into(),
        };
        assert!(s.record_consent(1, granted, None).await.unwrap());
        let n = 2 * PAGE as u64 + 3;
        s.write(move |tx| {
            for o in 10..10 + 2 * n {
                // Every other match has expired.
                let expiry = if o % 2 == 0 { now.0 } else { now.0 + 1 };
                USERID_MATCHED_EXPIRY.insert(tx, &(1, o), &expiry)?;
                MATCHED_USERID.insert(tx, &(o, 1), &())?;
            }
            for d in 0..n {
                USERID_DAY_CONTACTS.insert(tx, &(1, d), &1)?;
            }
            USERID_DAY_CONTACTS.insert(tx, &(1, day(now)), &2)?;
            Ok(())
        })
        .await
        .unwrap();
        let out = s
            .match_contacts(1, vec![[7; 32]], 10, now, Millis(now.0 + 5))
            .await
            .unwrap();
        assert_eq!(
            out,
            Ok(UploadOutcome {
                matched: 0,
                quota_left: 7
            })
        );
        assert_eq!(
            rows(&s).await[..3],
            [n, n, 1],
            "half the matches, today only"
        );
        assert_eq!(s.match_count(1, now).await.unwrap(), n as usize);
        let today = s
            .read(move |tx| USERID_DAY_CONTACTS.get(tx, &(1, day(now))))
            .await
            .unwrap();
        assert_eq!(today, Some(3));
    }
}
