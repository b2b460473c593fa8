//! Suggestion sources as stored (issue 22): the findable-by-phone setting and its contact
//! index, contact matches with expiry and the daily quota, the public-education index,
//! dismissals, and the one read that gathers a user's candidates. Also what revocation and
//! erasure remove of all of it (with `nearby.rs` and `invites.rs`).
//!
//! **Invariant:** an uploaded contact is only ever looked up; neither it nor its index is
//! written. Only matches are kept.

use redb::{ReadableTable, WriteTransaction};

use super::catalog::*;
use super::codec::{Dec, Enc};
use super::kv;
use super::privacy::{purpose_active, purpose_status_in};
use super::{PurposeStatus, Store, StoreError};
use primitives::time::Millis;

/// Most friends of the user, and of each friend, a suggestion read walks.
const FRIENDS_FAN: usize = 5_000;

/// Most candidates one education value contributes (a popular school would otherwise make
/// every suggestion read scan all its pupils).
const EDUCATION_FAN: usize = 2_000;

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

/// Deletes every contact match of `user`'s uploads (revoking `contacts_matching`).
pub fn drop_matches(tx: &WriteTransaction, user: u64) -> Result<(), StoreError> {
    let matched: Vec<u64> = tx
        .open_table(USERID_MATCHED_EXPIRY)?
        .range((user, 0)..=(user, u64::MAX))?
        .map(|r| r.map(|(k, _)| k.value().1))
        .collect::<Result<_, _>>()?;
    let mut fwd = tx.open_table(USERID_MATCHED_EXPIRY)?;
    let mut rev = tx.open_table(MATCHED_USERID)?;
    for m in matched {
        fwd.remove((user, m))?;
        rev.remove((m, user))?;
    }
    Ok(())
}

/// Removes `user` from every suggestion source and every other user's matches and
/// dismissals, and their own settings, quota and dismissals (erasure). Bounded by the rows
/// naming the user.
pub fn erase_discovery_rows(tx: &WriteTransaction, user: u64) -> Result<(), StoreError> {
    drop_matches(tx, user)?;
    // Matches others made of this user.
    let by: Vec<u64> = tx
        .open_table(MATCHED_USERID)?
        .range((user, 0)..=(user, u64::MAX))?
        .map(|r| r.map(|(k, _)| k.value().1))
        .collect::<Result<_, _>>()?;
    for o in by {
        tx.open_table(USERID_MATCHED_EXPIRY)?.remove((o, user))?;
        tx.open_table(MATCHED_USERID)?.remove((user, o))?;
    }
    let gone = tx
        .open_table(USERID_DISCOVERY)?
        .remove(user)?
        .map(|v| decode_settings(v.value()))
        .transpose()?;
    if let Some((_, index)) = gone {
        tx.open_table(CONTACTINDEX_USERID)?.remove(&index)?;
    }
    {
        let mut t = tx.open_table(USERID_DAY_CONTACTS)?;
        t.retain_in((user, 0)..=(user, u64::MAX), |_, _| false)?;
    }
    set_education_in(tx, user, None)?;
    let dismissed: Vec<u64> = tx
        .open_table(USERID_DISMISSED)?
        .range((user, 0)..=(user, u64::MAX))?
        .map(|r| r.map(|(k, _)| k.value().1))
        .collect::<Result<_, _>>()?;
    for d in dismissed {
        tx.open_table(USERID_DISMISSED)?.remove((user, d))?;
        tx.open_table(DISMISSED_USERID)?.remove((d, user))?;
    }
    let dismissers: Vec<u64> = tx
        .open_table(DISMISSED_USERID)?
        .range((user, 0)..=(user, u64::MAX))?
        .map(|r| r.map(|(k, _)| k.value().1))
        .collect::<Result<_, _>>()?;
    for o in dismissers {
        tx.open_table(USERID_DISMISSED)?.remove((o, user))?;
        tx.open_table(DISMISSED_USERID)?.remove((user, o))?;
    }
    super::nearby::drop_cell(tx, user)?;
    super::invites::erase_invite_rows(tx, user)?;
    Ok(())
}

/// Points `user`'s education entry at `index` (or removes it).
pub fn set_education_in(
    tx: &WriteTransaction,
    user: u64,
    index: Option<[u8; 32]>,
) -> Result<(), StoreError> {
    let mut by_user = tx.open_table(USERID_EDUINDEX)?;
    let old = by_user.get(user)?.map(|v| *v.value());
    if old == index {
        return Ok(());
    }
    let mut by_index = tx.open_table(EDUINDEX_USERID)?;
    if let Some(old) = old {
        by_index.remove((&old, user))?;
        by_user.remove(user)?;
    }
    if let Some(new) = index {
        by_index.insert((&new, user), ())?;
        by_user.insert(user, &new)?;
    }
    Ok(())
}

impl Store {
    /// The user's discovery settings (defaults when never set).
    pub async fn discovery_settings(&self, user: u64) -> Result<DiscoverySettings, StoreError> {
        self.read(move |tx| {
            Ok(match tx.open_table(USERID_DISCOVERY)?.get(user)? {
                Some(v) => decode_settings(v.value())?.0,
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
            let mut settings = tx.open_table(USERID_DISCOVERY)?;
            let mut contacts = tx.open_table(CONTACTINDEX_USERID)?;
            if let Some(v) = settings.get(user)? {
                let (_, old) = decode_settings(v.value())?;
                contacts.remove(&old)?;
            }
            if findable {
                contacts.insert(&index, user)?;
            }
            let rec = Enc::new(1).bool(findable).bytes(&index).finish();
            settings.insert(user, rec.as_slice())?;
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
            let mut counts = tx.open_table(USERID_DAY_CONTACTS)?;
            let used = counts.get((user, today))?.map_or(0, |v| v.value());
            let n = indexes.len() as u64;
            if used + n > quota {
                return Ok(Err(UploadRefusal::Quota {
                    left: quota.saturating_sub(used),
                }));
            }
            // Earlier days' counts are no longer needed.
            counts.retain_in((user, 0)..(user, today), |_, _| false)?;
            counts.insert((user, today), used + n)?;
            drop(counts);
            let contacts = tx.open_table(CONTACTINDEX_USERID)?;
            let mut fwd = tx.open_table(USERID_MATCHED_EXPIRY)?;
            let mut rev = tx.open_table(MATCHED_USERID)?;
            // Expired matches of this user go now.
            let expired: Vec<u64> = fwd
                .range((user, 0)..=(user, u64::MAX))?
                .filter_map(|r| match r {
                    Ok((k, v)) if v.value() <= now.0 => Some(Ok(k.value().1)),
                    Ok(_) => None,
                    Err(e) => Some(Err(e)),
                })
                .collect::<Result<_, _>>()?;
            for m in expired {
                fwd.remove((user, m))?;
                rev.remove((m, user))?;
            }
            let mut matched = 0;
            for index in &indexes {
                if let Some(m) = contacts.get(index)?.map(|v| v.value())
                    && m != user
                {
                    fwd.insert((user, m), expires.0)?;
                    rev.insert((m, user), ())?;
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
            tx.open_table(USERID_DISMISSED)?
                .insert((user, other), now.0)?;
            tx.open_table(DISMISSED_USERID)?.insert((other, user), ())?;
            Ok(())
        })
        .await
    }

    /// Number of users `user` dismissed (for the export).
    pub async fn dismissed_count(&self, user: u64) -> Result<usize, StoreError> {
        self.read(move |tx| {
            Ok(tx
                .open_table(USERID_DISMISSED)?
                .range((user, 0)..=(user, u64::MAX))?
                .count())
        })
        .await
    }

    /// Number of current contact matches of `user`'s uploads (for the export).
    pub async fn match_count(&self, user: u64, now: Millis) -> Result<usize, StoreError> {
        self.read(move |tx| {
            let mut n = 0;
            for r in tx
                .open_table(USERID_MATCHED_EXPIRY)?
                .range((user, 0)..=(user, u64::MAX))?
            {
                if r?.1.value() > now.0 {
                    n += 1;
                }
            }
            Ok(n)
        })
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
            for r in tx
                .open_table(USERID_MATCHED_EXPIRY)?
                .range((user, 0)..=(user, u64::MAX))?
            {
                let (k, v) = r?;
                if v.value() > now.0 {
                    found.entry(k.value().1).or_default().contact = true;
                }
            }
            if let Some(index) = tx
                .open_table(USERID_EDUINDEX)?
                .get(user)?
                .map(|v| *v.value())
            {
                for r in tx
                    .open_table(EDUINDEX_USERID)?
                    .range((&index, 0)..=(&index, u64::MAX))?
                    .take(EDUCATION_FAN)
                {
                    found.entry(r?.0.value().1).or_default().education = true;
                }
            }
            let friends_of = |u: u64| -> Result<Vec<u64>, StoreError> {
                Ok(USERID_USERID_FRIEND
                    .prefixed(tx, &u, kv::Order::Ascending, FRIENDS_FAN)?
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
            let settings = tx.open_table(USERID_DISCOVERY)?;
            let dismissed = tx.open_table(USERID_DISMISSED)?;
            let consents = tx.open_table(USERID_PURPOSE_CONSENT)?;
            let accepted = tx.open_table(USERID_POLICYSEQ_ACCEPTED)?;
            let narrowing = tx.open_table(POLICYSEQ_NARROWING)?;
            let mut out = Vec::with_capacity(found.len());
            for (cand, mut sources) in found {
                if dismissed.get((user, cand))?.is_some()
                    || USERID_USERID_BLOCK.get(tx, &(user, cand))?.is_some()
                    || USERID_USERID_BLOCKEDBY.get(tx, &(user, cand))?.is_some()
                {
                    continue;
                }
                if purpose_status_in(
                    &consents,
                    &accepted,
                    &narrowing,
                    cand,
                    "be_recommended",
                    now,
                )? != PurposeStatus::Granted
                {
                    continue;
                }
                if sources.contact {
                    // The matched user's own choice decides, also after the match was made.
                    let findable = match settings.get(cand)? {
                        Some(v) => decode_settings(v.value())?.0.findable_by_phone,
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
