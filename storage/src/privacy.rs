//! Privacy-centre records: published policy versions and who accepted which; the check that
//! pauses optional processing for a user who has not accepted a version narrowing their rights;
//! notices to many users at once (to every user as a job of bounded batches that a stop
//! leaves resumable, `noticeno_job`); a minor's guardian consent; a verified real name; the public
//! page switch; and the export rate limit.
//!
//! **Boundary:** these tables are behind the key-value seam (schema 13): what only touches
//! them takes `&impl kv::Read` / `&impl kv::Write` (the purpose check also reads the typed
//! consents table), and every range names its limit; what visits all policy versions or all
//! of one user's acceptances does it [`PAGE`] rows at a time.

use std::ops::Bound;

use redb::{ReadableTable, WriteTransaction};

use super::accounts::update_account;
use super::catalog::*;
use super::codec::{Dec, Enc};
use super::kv::{self, Order};
use super::messaging::{EventRecord, next_pos};
use super::{AccountRecord, AuditEntry, ConsentEvent, Store, StoreError, append_audit};
use primitives::time::Millis;

/// Rows read at a time from the tables behind the key-value seam (since schema 13: every
/// read names its limit): policy versions, narrowing versions, a user's acceptances.
const PAGE: usize = 256;

/// A published policy version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyVersionRecord {
    /// Publication number, from 1 (0 is the configured policy).
    pub seq: u64,
    pub version: String,
    pub published: Millis,
    /// The start (00:00 UTC) of the day it takes effect.
    pub effective: Millis,
    pub narrows: bool,
    pub zh: String,
    /// Empty when no English text was published.
    pub en: String,
}

impl PolicyVersionRecord {
    fn encode(&self) -> Vec<u8> {
        Enc::new(1)
            .str(&self.version)
            .u64(self.published.0)
            .u64(self.effective.0)
            .bool(self.narrows)
            .str(&self.zh)
            .str(&self.en)
            .finish()
    }
    fn decode(seq: u64, b: &[u8]) -> Result<Self, StoreError> {
        let mut d = Dec::new(b, "policy version", 1)?;
        let r = PolicyVersionRecord {
            seq,
            version: d.string()?,
            published: Millis(d.u64()?),
            effective: Millis(d.u64()?),
            narrows: d.bool()?,
            zh: d.string()?,
            en: d.string()?,
        };
        d.end()?;
        Ok(r)
    }
}

/// A minor's guardian consent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardianRecord {
    pub recorded: Millis,
    /// The purposes the guardian agreed to, by name.
    pub purposes: Vec<String>,
    /// The guardian's name and contact, sealed under the user's data key.
    pub sealed: Vec<u8>,
}

impl GuardianRecord {
    fn encode(&self) -> Vec<u8> {
        let mut e = Enc::new(1)
            .u64(self.recorded.0)
            .u64(self.purposes.len() as u64);
        for p in &self.purposes {
            e = e.str(p);
        }
        e.bytes(&self.sealed).finish()
    }
    fn decode(b: &[u8]) -> Result<Self, StoreError> {
        let mut d = Dec::new(b, "guardian consent", 1)?;
        let recorded = Millis(d.u64()?);
        let n = d.u64()?.min(64);
        let purposes = (0..n).map(|_| d.string()).collect::<Result<_, _>>()?;
        let r = GuardianRecord {
            recorded,
            purposes,
            sealed: d.bytes()?,
        };
        d.end()?;
        Ok(r)
    }

    /// Whether the guardian agreed to `purpose`.
    pub fn covers(&self, purpose: &str) -> bool {
        self.purposes.iter().any(|p| p == purpose)
    }
}

/// Whether a user may be processed for a purpose right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PurposeStatus {
    Granted,
    NotGranted,
    /// Granted, but paused: the policy version with this publication number narrows the user's
    /// rights, is in effect, and the user has not accepted it.
    Paused {
        seq: u64,
    },
}

/// The first version in effect at `now` that narrows rights and that `user` has not accepted
/// (nor any later version), if any. The user's highest acceptance is one row; the narrowing
/// versions after it are read a page at a time (they are few: one per publication).
pub fn paused_by(
    tx: &(impl kv::Read + ?Sized),
    user: u64,
    now: Millis,
) -> Result<Option<u64>, StoreError> {
    let agreed = match USERID_POLICYSEQ_ACCEPTED
        .prefixed(tx, &user, Order::Descending, 1)?
        .first()
    {
        Some(((_, seq), _)) => *seq,
        None => 0,
    };
    let mut after = agreed;
    loop {
        let rows = POLICYSEQ_NARROWING.page(tx, Some(&after), PAGE)?;
        for (seq, effective) in &rows {
            if *effective <= now.0 {
                return Ok(Some(*seq));
            }
        }
        match rows.last() {
            Some((seq, _)) if rows.len() == PAGE => after = *seq,
            _ => return Ok(None),
        }
    }
}

/// Whether `user`'s latest decision on `purpose` is a grant (paused or not).
pub fn granted(
    consents: &impl ReadableTable<(u64, &'static str), &'static [u8]>,
    user: u64,
    purpose: &str,
) -> Result<bool, StoreError> {
    match consents.get((user, purpose))? {
        Some(v) => ConsentEvent::decode_granted(v.value()),
        None => Ok(false),
    }
}

/// Whether `user` may be processed for `purpose` at `now`: the one definition every check
/// uses, in a read or a write transaction, given the consents table it reads and the
/// transaction (for the acceptances and narrowing versions behind the key-value seam).
pub fn purpose_status_in(
    consents: &impl ReadableTable<(u64, &'static str), &'static [u8]>,
    tx: &(impl kv::Read + ?Sized),
    user: u64,
    purpose: &str,
    now: Millis,
) -> Result<PurposeStatus, StoreError> {
    if !granted(consents, user, purpose)? {
        return Ok(PurposeStatus::NotGranted);
    }
    Ok(match paused_by(tx, user, now)? {
        Some(seq) => PurposeStatus::Paused { seq },
        None => PurposeStatus::Granted,
    })
}

/// Whether `user` grants `purpose` and it is not paused, inside a write transaction.
pub fn purpose_active(
    tx: &WriteTransaction,
    user: u64,
    purpose: &str,
    now: Millis,
) -> Result<bool, StoreError> {
    let status = purpose_status_in(
        &tx.open_table(USERID_PURPOSE_CONSENT)?,
        tx,
        user,
        purpose,
        now,
    )?;
    Ok(status == PurposeStatus::Granted)
}

/// Accounts one notice batch visits (one write each).
pub const NOTICE_BATCH: usize = 500;

/// A notice being left for every live account, a batch at a time (`noticeno_job`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct NoticeJob {
    /// The encoded [`EventRecord`].
    notice: Vec<u8>,
    /// Accounts created after this are left out (they were not there when it was published).
    until: Millis,
    /// The last user id done.
    after: Option<u64>,
}

impl NoticeJob {
    fn encode(&self) -> Vec<u8> {
        Enc::new(1)
            .bytes(&self.notice)
            .u64(self.until.0)
            .bool(self.after.is_some())
            .u64(self.after.unwrap_or(0))
            .finish()
    }
    fn decode(b: &[u8]) -> Result<Self, StoreError> {
        let mut d = Dec::new(b, "notice job", 1)?;
        let notice = d.bytes()?;
        let until = Millis(d.u64()?);
        let some = d.bool()?;
        let after = d.u64()?;
        d.end()?;
        Ok(NoticeJob {
            notice,
            until,
            after: some.then_some(after),
        })
    }
}

/// Records a job leaving `notice` for every account live and created by `until`; its number.
fn start_notice_job(
    tx: &WriteTransaction,
    notice: &EventRecord,
    until: Millis,
) -> Result<u64, StoreError> {
    let job = super::take_numbers(tx, "next_notice_job", 1)?;
    let rec = NoticeJob {
        notice: notice.encode(),
        until,
        after: None,
    };
    NOTICENO_JOB.insert(tx, &job, &rec.encode())?;
    Ok(job)
}

/// The next batch of notice job `job`: the accounts after its cursor, at most `limit` of them;
/// the live ones created by its time get the notice, and the cursor moves past them in the same
/// transaction (so each gets exactly one). Returns (user, pos) per notice and whether the job
/// is done (then removed; also when there is no such job).
fn notice_batch(
    tx: &WriteTransaction,
    job: u64,
    limit: usize,
) -> Result<(Vec<(u64, u64)>, bool), StoreError> {
    let Some(bytes) = NOTICENO_JOB.get(tx, &job)? else {
        return Ok((Vec::new(), true));
    };
    let mut rec = NoticeJob::decode(&bytes)?;
    let start = rec.after.map_or(Bound::Unbounded, Bound::Excluded);
    let mut visited = 0;
    let mut users = Vec::new();
    for row in tx
        .open_table(USERID_ACCOUNT)?
        .range::<u64>((start, Bound::Unbounded))?
        .take(limit)
    {
        let (k, v) = row?;
        visited += 1;
        rec.after = Some(k.value());
        let a = AccountRecord::decode(v.value())?;
        // Not in the middle of an erasure, and there when the notice was published.
        if !a.wrapped_key.is_empty() && a.created <= rec.until {
            users.push(k.value());
        }
    }
    let notified = leave_notices(tx, &users, &rec.notice)?;
    let done = visited < limit;
    if done {
        NOTICENO_JOB.remove(tx, &job)?;
    } else {
        NOTICENO_JOB.insert(tx, &job, &rec.encode())?;
    }
    Ok((notified, done))
}

/// Leaves the encoded `notice` for each user; returns (user, pos) for the live events.
fn leave_notices(
    tx: &WriteTransaction,
    users: &[u64],
    notice: &[u8],
) -> Result<Vec<(u64, u64)>, StoreError> {
    let mut events = tx.open_table(USERID_POS_EVENT)?;
    let mut out = Vec::with_capacity(users.len());
    for &u in users {
        let pos = next_pos(tx)?;
        events.insert((u, pos), notice)?;
        out.push((u, pos));
    }
    Ok(out)
}

/// Why a privacy-centre write was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrivacyRefusal {
    /// A version with that name exists already.
    VersionExists,
    /// The purpose this needs is not granted (or is paused).
    NotGranted,
    /// Too soon after the last export; the next is allowed at this time.
    TooSoon(Millis),
}

impl Store {
    /// Every published version, in publication order.
    pub async fn policy_versions(&self) -> Result<Vec<PolicyVersionRecord>, StoreError> {
        self.read(|tx| {
            let mut out = Vec::new();
            let mut after = None;
            loop {
                let rows = POLICYSEQ_VERSION.page(tx, after.as_ref(), PAGE)?;
                for (seq, v) in &rows {
                    out.push(PolicyVersionRecord::decode(*seq, v)?);
                }
                match rows.last() {
                    Some((seq, _)) if rows.len() == PAGE => after = Some(*seq),
                    _ => return Ok(out),
                }
            }
        })
        .await
    }

    /// Publishes a version (its `seq` is assigned here) with `audit`, and records the job that
    /// leaves `notice` for every live user (created by its publication time), in one
    /// transaction. The notices follow in bounded batches ([`Store::notice_batch`]); what pauses
    /// a user's processing is the version's own row, so it holds before their notice is there.
    /// Returns the record and the notice job's number.
    pub async fn publish_policy(
        &self,
        rec: PolicyVersionRecord,
        notice: EventRecord,
        audit: AuditEntry,
    ) -> Result<Result<(PolicyVersionRecord, u64), PrivacyRefusal>, StoreError> {
        self.write(move |tx| {
            // Versions are few (one per publication), unlike users: every one is read, a page
            // at a time, for a name already taken.
            let mut after = None;
            loop {
                let rows = POLICYSEQ_VERSION.page(tx, after.as_ref(), PAGE)?;
                for (seq, v) in &rows {
                    if PolicyVersionRecord::decode(*seq, v)?.version == rec.version {
                        return Ok(Err(PrivacyRefusal::VersionExists));
                    }
                }
                match rows.last() {
                    Some((seq, _)) if rows.len() == PAGE => after = Some(*seq),
                    _ => break,
                }
            }
            let seq = super::take_numbers(tx, "next_policy", 1)?;
            let rec = PolicyVersionRecord { seq, ..rec.clone() };
            POLICYSEQ_VERSION.insert(tx, &seq, &rec.encode())?;
            if rec.narrows {
                POLICYSEQ_NARROWING.insert(tx, &seq, &rec.effective.0)?;
            }
            let job = start_notice_job(tx, &notice, rec.published)?;
            append_audit(tx, audit.clone())?;
            Ok(Ok((rec, job)))
        })
        .await
    }

    /// Runs the next batch (at most `limit` accounts, one write) of notice job `job`. Returns
    /// (user, pos) per notice left and whether the job is done.
    pub async fn notice_batch(
        &self,
        job: u64,
        limit: usize,
    ) -> Result<(Vec<(u64, u64)>, bool), StoreError> {
        self.write(move |tx| notice_batch(tx, job, limit.max(1)))
            .await
    }

    /// The notice jobs not yet done, oldest first.
    pub async fn notice_jobs(&self) -> Result<Vec<u64>, StoreError> {
        self.read(|tx| {
            let mut out: Vec<u64> = Vec::new();
            loop {
                let page = NOTICENO_JOB.page(tx, out.last(), 64)?;
                if page.is_empty() {
                    return Ok(out);
                }
                out.extend(page.into_iter().map(|(job, _)| job));
            }
        })
        .await
    }

    /// Runs notice job `job` to its end, batch after batch; (user, pos) per notice.
    async fn run_notice_job(&self, job: u64) -> Result<Vec<(u64, u64)>, StoreError> {
        let mut out = Vec::new();
        loop {
            let (notified, done) = self.notice_batch(job, NOTICE_BATCH).await?;
            out.extend(notified);
            if done {
                return Ok(out);
            }
        }
    }

    /// Records that `user` accepted version `seq` (named `version`) at `now`; the account then
    /// names it as its accepted policy.
    pub async fn accept_policy(
        &self,
        user: u64,
        seq: u64,
        version: String,
        now: Millis,
    ) -> Result<bool, StoreError> {
        self.write(move |tx| {
            let found = update_account(tx, user, |a| {
                a.policy_version = version.clone();
                a.policy_accepted = now;
                true
            })?;
            if !found {
                return Ok(false);
            }
            if USERID_POLICYSEQ_ACCEPTED.get(tx, &(user, seq))?.is_none() {
                USERID_POLICYSEQ_ACCEPTED.insert(tx, &(user, seq), &now.0)?;
            }
            Ok(true)
        })
        .await
    }

    /// Every version `user` accepted: (publication number, when), in order.
    pub async fn policy_acceptances(&self, user: u64) -> Result<Vec<(u64, Millis)>, StoreError> {
        self.read(move |tx| {
            Ok(USERID_POLICYSEQ_ACCEPTED
                .prefixed_in_pages(tx, &user, PAGE)?
                .into_iter()
                .map(|((_, seq), at)| (seq, Millis(at)))
                .collect())
        })
        .await
    }

    /// Whether `user` may be processed for `purpose` at `now`.
    pub async fn purpose_status(
        &self,
        user: u64,
        purpose: &'static str,
        now: Millis,
    ) -> Result<PurposeStatus, StoreError> {
        self.read(move |tx| {
            purpose_status_in(
                &tx.open_table(USERID_PURPOSE_CONSENT)?,
                tx,
                user,
                purpose,
                now,
            )
        })
        .await
    }

    /// The version pausing `user`'s optional processing at `now`, if any.
    pub async fn processing_paused(
        &self,
        user: u64,
        now: Millis,
    ) -> Result<Option<u64>, StoreError> {
        self.read(move |tx| paused_by(tx, user, now)).await
    }

    /// Leaves `notice` for `users` (every live account when `None`; unknown ids are skipped),
    /// with `audit`. Listed users get theirs in one transaction, each found by key; every live
    /// account's come from a notice job in bounded batches (one left unfinished by a stop is
    /// finished at the next start). Returns (user, pos) per notice.
    pub async fn notify_users(
        &self,
        users: Option<Vec<u64>>,
        notice: EventRecord,
        audit: AuditEntry,
    ) -> Result<Vec<(u64, u64)>, StoreError> {
        let Some(list) = users else {
            let job = self
                .write(move |tx| {
                    let job = start_notice_job(tx, &notice, audit.at)?;
                    append_audit(tx, audit.clone())?;
                    Ok(job)
                })
                .await?;
            return self.run_notice_job(job).await;
        };
        self.write(move |tx| {
            let mut live = Vec::with_capacity(list.len());
            {
                let accounts = tx.open_table(USERID_ACCOUNT)?;
                for &u in &list {
                    if let Some(v) = accounts.get(u)?
                        && !AccountRecord::decode(v.value())?.wrapped_key.is_empty()
                    {
                        live.push(u);
                    }
                }
            }
            let out = leave_notices(tx, &live, &notice.encode())?;
            append_audit(tx, audit.clone())?;
            Ok(out)
        })
        .await
    }

    /// A user's notices, oldest first: (pos, notice).
    pub async fn notices_of(&self, user: u64) -> Result<Vec<(u64, EventRecord)>, StoreError> {
        self.read(move |tx| {
            let mut out = Vec::new();
            for row in tx
                .open_table(USERID_POS_EVENT)?
                .range((user, 0)..=(user, u64::MAX))?
            {
                let (k, v) = row?;
                let e = EventRecord::decode(v.value())?;
                if matches!(e, EventRecord::Notice { .. }) {
                    out.push((k.value().1, e));
                }
            }
            Ok(out)
        })
        .await
    }

    /// Records (or replaces) a minor's guardian consent.
    pub async fn set_guardian(&self, user: u64, rec: GuardianRecord) -> Result<(), StoreError> {
        self.write(move |tx| {
            USERID_GUARDIAN.insert(tx, &user, &rec.encode())?;
            Ok(())
        })
        .await
    }

    pub async fn guardian_of(&self, user: u64) -> Result<Option<GuardianRecord>, StoreError> {
        self.read(move |tx| {
            USERID_GUARDIAN
                .get(tx, &user)?
                .map(|v| GuardianRecord::decode(&v))
                .transpose()
        })
        .await
    }

    /// Stores a verified real name, only while `real_name` is granted and not paused (checked
    /// in the same transaction, so a concurrent revocation cannot leave it behind).
    pub async fn set_real_name(
        &self,
        user: u64,
        sealed: Vec<u8>,
        now: Millis,
    ) -> Result<Result<(), PrivacyRefusal>, StoreError> {
        self.write(move |tx| {
            if !purpose_active(tx, user, "real_name", now)? {
                return Ok(Err(PrivacyRefusal::NotGranted));
            }
            USERID_REALNAME.insert(tx, &user, &(now.0, kv::Var(sealed.clone())))?;
            Ok(Ok(()))
        })
        .await
    }

    /// The stored real name: (verified, sealed name and number).
    pub async fn real_name_of(&self, user: u64) -> Result<Option<(Millis, Vec<u8>)>, StoreError> {
        self.read(move |tx| {
            Ok(USERID_REALNAME
                .get(tx, &user)?
                .map(|(at, sealed)| (Millis(at), sealed.0)))
        })
        .await
    }

    /// Deletes the stored real name; false if there was none.
    pub async fn delete_real_name(&self, user: u64) -> Result<bool, StoreError> {
        self.write(move |tx| USERID_REALNAME.remove(tx, &user))
            .await
    }

    /// Turns the public page on (only while `public_page` is granted and not paused, checked
    /// in the same transaction) or off.
    pub async fn set_public_page(
        &self,
        user: u64,
        enabled: bool,
        now: Millis,
    ) -> Result<Result<(), PrivacyRefusal>, StoreError> {
        self.write(move |tx| {
            if !enabled {
                USERID_PUBLICPAGE.remove(tx, &user)?;
                return Ok(Ok(()));
            }
            if !purpose_active(tx, user, "public_page", now)? {
                return Ok(Err(PrivacyRefusal::NotGranted));
            }
            if USERID_PUBLICPAGE.get(tx, &user)?.is_none() {
                USERID_PUBLICPAGE.insert(tx, &user, &now.0)?;
            }
            Ok(Ok(()))
        })
        .await
    }

    /// When the user's public page was enabled, if it is.
    pub async fn public_page_of(&self, user: u64) -> Result<Option<Millis>, StoreError> {
        self.user_time(USERID_PUBLICPAGE, user).await
    }

    /// The time a user id maps to in `table`, if any.
    async fn user_time(
        &self,
        table: kv::Table<u64, u64>,
        user: u64,
    ) -> Result<Option<Millis>, StoreError> {
        self.read(move |tx| Ok(table.get(tx, &user)?.map(Millis)))
            .await
    }

    /// Takes the user's export slot: allowed if the last export was at least `interval_ms`
    /// ago (or never), and then recorded at `now`.
    pub async fn take_export_slot(
        &self,
        user: u64,
        now: Millis,
        interval_ms: u64,
    ) -> Result<Result<(), PrivacyRefusal>, StoreError> {
        self.write(move |tx| {
            if let Some(last) = USERID_EXPORT.get(tx, &user)?
                && now.0 < last.saturating_add(interval_ms)
            {
                return Ok(Err(PrivacyRefusal::TooSoon(Millis(last + interval_ms))));
            }
            USERID_EXPORT.insert(tx, &user, &now.0)?;
            Ok(Ok(()))
        })
        .await
    }

    /// When the user last asked for an export.
    pub async fn last_export(&self, user: u64) -> Result<Option<Millis>, StoreError> {
        self.user_time(USERID_EXPORT, user).await
    }
}

impl Store {
    /// The media a user owns: (id, description), in id order.
    pub async fn media_of(
        &self,
        user: u64,
    ) -> Result<Vec<(String, super::MediaRecord)>, StoreError> {
        self.read(move |tx| {
            let media = tx.open_table(MEDIAID_MEDIA)?;
            let mut out = Vec::new();
            for row in tx.open_table(USERID_MEDIAID)?.range((user, "")..)? {
                let (k, _) = row?;
                let (owner, id) = k.value();
                if owner != user {
                    break;
                }
                if let Some(v) = media.get(id)? {
                    out.push((id.to_string(), super::MediaRecord::decode(v.value())?));
                }
            }
            Ok(out)
        })
        .await
    }
}

/// The privacy-centre rows of one user, removed with the account's first erasure step (the
/// sealed ones are unreadable once the data key is gone; this removes them outright). Their
/// acceptances go a page at a time, all in this step: at most one per published version.
pub fn erase_privacy_rows(tx: &impl kv::Write, user: u64) -> Result<(), StoreError> {
    USERID_GUARDIAN.remove(tx, &user)?;
    USERID_REALNAME.remove(tx, &user)?;
    USERID_PUBLICPAGE.remove(tx, &user)?;
    USERID_EXPORT.remove(tx, &user)?;
    USERID_POLICYSEQ_ACCEPTED.remove_all_prefixed(tx, &user, PAGE)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(dir: &std::path::Path) -> Store {
        Store::open(&dir.join("node.redb"), |_| Ok(None)).unwrap().0
    }

    fn version(name: &str, effective: u64, narrows: bool) -> PolicyVersionRecord {
        PolicyVersionRecord {
            seq: 0,
            version: name.into(),
            published: Millis(1),
            effective: Millis(effective),
            narrows,
            zh: "文本".into(),
            en: String::new(),
        }
    }

    fn audit() -> AuditEntry {
        AuditEntry {
            at: Millis(1),
            actor: "admin".into(),
            action: "policy.publish".into(),
            target: String::new(),
            subject: None,
            detail: String::new(),
        }
    }

    fn notice() -> EventRecord {
        EventRecord::Notice {
            kind: super::super::NoticeKind::Policy,
            content: super::super::NoticeContent::Text {
                title: "t".into(),
                text: "x".into(),
            },
        }
    }

    /// The narrowing versions after a user's acceptance are read a page at a time: one past
    /// the first page still pauses them, and accepting it lifts the pause.
    #[tokio::test]
    async fn a_narrowing_version_past_a_page_still_pauses() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path());
        let last = PAGE as u64 + 10;
        s.write(move |tx| {
            // Every version narrows, all but the last from a date still to come.
            for seq in 1..=last {
                let from = if seq == last { 5 } else { 1_000 };
                POLICYSEQ_NARROWING.insert(tx, &seq, &from)?;
            }
            USERID_POLICYSEQ_ACCEPTED.insert(tx, &(1, 0), &1)?;
            USERID_POLICYSEQ_ACCEPTED.insert(tx, &(2, last), &6)?;
            Ok(())
        })
        .await
        .unwrap();
        assert_eq!(s.processing_paused(1, Millis(5)).await.unwrap(), Some(last));
        assert_eq!(s.processing_paused(1, Millis(4)).await.unwrap(), None);
        assert_eq!(s.processing_paused(2, Millis(2_000)).await.unwrap(), None);
        assert_eq!(
            s.processing_paused(1, Millis(1_000)).await.unwrap(),
            Some(1),
            "the first in effect"
        );
    }

    #[tokio::test]
    async fn a_narrowing_version_pauses_only_from_its_date_and_until_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path());
        s.insert_account(super::super::tests::account(7, "seven"))
            .await
            .unwrap();
        s.record_consent(
            7,
            ConsentEvent {
                purpose: "photos".into(),
                granted: true,
                at: Millis(1),
                policy_version: "v0".into(),
                device_id: "d".into(),
            },
            None,
        )
        .await
        .unwrap();
        let (wider, _) = s
            .publish_policy(version("v1", 100, false), notice(), audit())
            .await
            .unwrap()
            .unwrap();
        let (narrower, _) = s
            .publish_policy(version("v2", 200, true), notice(), audit())
            .await
            .unwrap()
            .unwrap();
        assert_eq!((wider.seq, narrower.seq), (1, 2));
        assert_eq!(
            s.publish_policy(version("v2", 300, false), notice(), audit())
                .await
                .unwrap(),
            Err(PrivacyRefusal::VersionExists)
        );
        let at = |t| s.purpose_status(7, "photos", Millis(t));
        assert_eq!(at(199).await.unwrap(), PurposeStatus::Granted);
        assert_eq!(at(200).await.unwrap(), PurposeStatus::Paused { seq: 2 });
        assert_eq!(
            s.purpose_status(7, "camera", Millis(200)).await.unwrap(),
            PurposeStatus::NotGranted
        );
        // Accepting only the wider, older version changes nothing; accepting v2 lifts it.
        s.accept_policy(7, 1, "v1".into(), Millis(150))
            .await
            .unwrap();
        assert_eq!(at(250).await.unwrap(), PurposeStatus::Paused { seq: 2 });
        s.accept_policy(7, 2, "v2".into(), Millis(260))
            .await
            .unwrap();
        assert_eq!(at(270).await.unwrap(), PurposeStatus::Granted);
    }

    #[tokio::test]
    async fn a_publication_cut_short_leaves_each_live_user_exactly_one_notice_when_resumed() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path());
        let mut users = Vec::new();
        for n in 1..=5u64 {
            let mut a = super::super::tests::account(n, &format!("u{n}"));
            a.account.created = Millis(1);
            s.insert_account(a).await.unwrap();
            users.push(n);
        }
        // One in the middle of an erasure (no key) is left out, as before.
        update(&s, 4, |a| a.wrapped_key.clear()).await;
        s.record_consent(
            2,
            ConsentEvent {
                purpose: "photos".into(),
                granted: true,
                at: Millis(1),
                policy_version: "v0".into(),
                device_id: "d".into(),
            },
            None,
        )
        .await
        .unwrap();
        let mut v = version("v1", 200, true);
        v.published = Millis(10);
        let (rec, job) = s
            .publish_policy(v, notice(), audit())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(s.notice_jobs().await.unwrap(), vec![job]);
        // Before any notice is there, the version already pauses who has not accepted it.
        assert_eq!(
            s.purpose_status(2, "photos", Millis(200)).await.unwrap(),
            PurposeStatus::Paused { seq: rec.seq }
        );
        let (first, done) = s.notice_batch(job, 2).await.unwrap();
        assert!(!done);
        assert_eq!(first.iter().map(|(u, _)| *u).collect::<Vec<_>>(), [1, 2]);
        // A newcomer after the publication gets theirs at registration, not from the job.
        let mut late = super::super::tests::account(6, "late");
        late.account.created = Millis(11);
        s.insert_account(late).await.unwrap();
        // Stopped here: the job is taken up again after the store opens.
        drop(s);
        let s = open(dir.path());
        assert_eq!(s.notice_jobs().await.unwrap(), vec![job]);
        let mut batches = 0;
        loop {
            batches += 1;
            assert!(batches < 10);
            if s.notice_batch(job, 2).await.unwrap().1 {
                break;
            }
        }
        assert!(
            s.notice_jobs().await.unwrap().is_empty(),
            "done and removed"
        );
        assert!(
            s.notice_batch(job, 2).await.unwrap().1,
            "a finished job is done"
        );
        for u in 1..=6u64 {
            let want = usize::from([1, 2, 3, 5].contains(&u));
            assert_eq!(s.notices_of(u).await.unwrap().len(), want, "user {u}");
        }
    }

    async fn update(s: &Store, user: u64, f: fn(&mut AccountRecord)) {
        s.write(move |tx| {
            update_account(tx, user, |a| {
                f(a);
                true
            })
        })
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn a_notice_to_listed_users_reaches_only_the_live_ones_named() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path());
        for n in 1..=3u64 {
            s.insert_account(super::super::tests::account(n, &format!("u{n}")))
                .await
                .unwrap();
        }
        update(&s, 3, |a| a.wrapped_key.clear()).await;
        let out = s
            .notify_users(Some(vec![2, 3, 9]), notice(), audit())
            .await
            .unwrap();
        assert_eq!(out.iter().map(|(u, _)| *u).collect::<Vec<_>>(), [2]);
        let all = s.notify_users(None, notice(), audit()).await.unwrap();
        assert_eq!(all.iter().map(|(u, _)| *u).collect::<Vec<_>>(), [1, 2]);
        assert!(s.notice_jobs().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn the_export_slot_opens_again_only_after_the_interval() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path());
        assert_eq!(
            s.take_export_slot(1, Millis(1_000), 500).await.unwrap(),
            Ok(())
        );
        assert_eq!(
            s.take_export_slot(1, Millis(1_499), 500).await.unwrap(),
            Err(PrivacyRefusal::TooSoon(Millis(1_500)))
        );
        assert_eq!(
            s.take_export_slot(2, Millis(1_499), 500).await.unwrap(),
            Ok(())
        );
        assert_eq!(
            s.take_export_slot(1, Millis(1_500), 500).await.unwrap(),
            Ok(())
        );
    }
}
