//! Every policy version the node has had: the configured one (number 0) and each one the admin
//! published (1, 2, …), which is current on a given day, who accepted what, and the notice every
//! user gets when a version is published — before it takes effect (7.a, 7.b, 5.4, 1.8.2).
//!
//! **Invariant:** a version is published at least one day before its effective date, so every
//! user has its notice before it applies; a version that narrows rights pauses optional
//! processing (see `Consents::require`) only from that date and only for users who have not
//! accepted it or a later version.

use std::sync::{Arc, RwLock};

use super::{Lang, Policy};
use crate::hub::Hub;
use crate::time::Date;
use crate::time::{Millis, SharedClock};
use storage::{AuditEntry, EventRecord, PolicyVersionRecord, PrivacyRefusal, Store, StoreError};

/// Largest policy text accepted, per language.
pub const MAX_TEXT_BYTES: usize = 512 * 1024;

/// One version of the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// 0 for the configured version, then publication order.
    pub seq: u64,
    pub version: String,
    /// `None` for the configured version.
    pub published: Option<Millis>,
    pub effective: Date,
    pub narrows: bool,
    zh: String,
    en: Option<String>,
}

impl Version {
    /// The text in `lang`, or in Chinese (the authoritative text) when there is no translation;
    /// with the language actually served.
    pub fn text(&self, lang: Lang) -> (Lang, &str) {
        match (lang, &self.en) {
            (Lang::En, Some(en)) => (Lang::En, en),
            _ => (Lang::Zh, &self.zh),
        }
    }

    /// `current`, `upcoming` or `superseded`, relative to the version in effect.
    pub fn status(&self, current: &Version) -> &'static str {
        match self.seq.cmp(&current.seq) {
            std::cmp::Ordering::Equal => "current",
            std::cmp::Ordering::Greater => "upcoming",
            std::cmp::Ordering::Less => "superseded",
        }
    }

    pub fn languages(&self) -> Vec<Lang> {
        match self.en {
            Some(_) => vec![Lang::Zh, Lang::En],
            None => vec![Lang::Zh],
        }
    }

    fn from_record(r: PolicyVersionRecord) -> Version {
        Version {
            seq: r.seq,
            version: r.version,
            published: Some(r.published),
            effective: Date::of(r.effective),
            narrows: r.narrows,
            zh: r.zh,
            en: (!r.en.is_empty()).then_some(r.en),
        }
    }
}

/// What the admin publishes.
#[derive(Debug, Clone)]
pub struct Publication {
    pub version: String,
    pub effective: Date,
    pub narrows: bool,
    pub zh: String,
    pub en: Option<String>,
}

/// A user's standing with the policy.
#[derive(Debug, Clone)]
pub struct Standing {
    /// The newest version the user accepted, and when.
    pub accepted: (Arc<Version>, Millis),
    /// Current or upcoming versions newer than what the user accepted.
    pub pending: Vec<Arc<Version>>,
    /// The version in effect that narrows rights and pauses the user's optional processing.
    pub paused_by: Option<Arc<Version>>,
}

/// Errors of publishing and accepting.
#[derive(Debug, thiserror::Error)]
pub enum PolicyBookError {
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("version {0} exists already")]
    Exists(String),
    #[error("no policy version {0}")]
    Unknown(String),
    #[error("version {version} is older than the current one ({current}); accept the current one")]
    Outdated { version: String, current: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Handle to the versions; cheap to clone.
#[derive(Debug, Clone)]
pub struct PolicyBook {
    store: Store,
    clock: SharedClock,
    hub: Arc<Hub>,
    /// Every version in publication order; index 0 is the configured one.
    versions: Arc<RwLock<Vec<Arc<Version>>>>,
    /// Held while notice jobs run, so a publication and the maintenance loop's resumption
    /// never share one job (each reports the notices it left).
    notice_turn: Arc<tokio::sync::Mutex<()>>,
}

impl PolicyBook {
    /// The configured policy plus every published version in the store.
    pub async fn load(
        store: Store,
        clock: SharedClock,
        hub: Arc<Hub>,
        configured: &Policy,
    ) -> Result<PolicyBook, StoreError> {
        let mut versions = vec![Arc::new(Version {
            seq: 0,
            version: configured.version.clone(),
            published: None,
            effective: configured.effective,
            narrows: false,
            zh: configured.text(Lang::Zh).to_string(),
            en: Some(configured.text(Lang::En).to_string()),
        })];
        for r in store.policy_versions().await? {
            versions.push(Arc::new(Version::from_record(r)));
        }
        Ok(PolicyBook {
            store,
            clock,
            hub,
            versions: Arc::new(RwLock::new(versions)),
            notice_turn: Arc::default(),
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<Arc<Version>>> {
        self.versions.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Every version, oldest first.
    pub fn all(&self) -> Vec<Arc<Version>> {
        self.read().clone()
    }

    /// The version in effect now: the newest published one whose date has come, or the
    /// configured one.
    pub fn current(&self) -> Arc<Version> {
        let now = self.clock.now();
        let all = self.read();
        all.iter()
            .rev()
            .find(|v| v.seq == 0 || v.effective.start_millis() <= now)
            .cloned()
            .unwrap_or_else(|| all[0].clone())
    }

    /// Published versions whose date has not come yet.
    pub fn upcoming(&self) -> Vec<Arc<Version>> {
        let now = self.clock.now();
        self.read()
            .iter()
            .filter(|v| v.seq > 0 && v.effective.start_millis() > now)
            .cloned()
            .collect()
    }

    pub fn get(&self, version: &str) -> Option<Arc<Version>> {
        self.read().iter().find(|v| v.version == version).cloned()
    }

    /// Publishes a version and leaves every user a notice. Returns it and how many users were
    /// notified. The version and its notice job commit together; the notices follow in bounded
    /// batches (`storage::NOTICE_BATCH` users per write), and a publication an earlier stop cut
    /// short is finished first.
    pub async fn publish(&self, p: Publication) -> Result<(Arc<Version>, usize), PolicyBookError> {
        let invalid = |field, reason: &str| PolicyBookError::Invalid {
            field,
            reason: reason.into(),
        };
        if p.version.is_empty()
            || p.version.len() > 64
            || !p
                .version
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        {
            return Err(invalid(
                "version",
                "must be 1 to 64 letters, digits, dots, dashes or underscores",
            ));
        }
        if self.get(&p.version).is_some() {
            return Err(PolicyBookError::Exists(p.version));
        }
        let now = self.clock.now();
        if p.effective.start_millis() <= now {
            return Err(invalid(
                "effective",
                "must be a later day than today (UTC): users are told before a version applies",
            ));
        }
        // Versions take effect in the order they are published; otherwise a later publication
        // could make an earlier, not yet effective one current for a while, or never.
        if let Some(last) = self.read().last().filter(|v| v.effective > p.effective) {
            return Err(invalid(
                "effective",
                &format!(
                    "must not be before {} (the date of version {}, published earlier)",
                    last.effective, last.version
                ),
            ));
        }
        for (field, text) in [("text", Some(&p.zh)), ("en", p.en.as_ref())] {
            if let Some(t) = text {
                if t.trim().is_empty() {
                    return Err(invalid(field, "is empty"));
                }
                if t.len() > MAX_TEXT_BYTES {
                    return Err(invalid(field, "is larger than 512 KiB"));
                }
            }
        }
        let audit = AuditEntry {
            at: now,
            actor: "admin".into(),
            action: "policy.publish".into(),
            target: String::new(),
            subject: None,
            detail: format!(
                "version {} effective {}{}",
                p.version,
                p.effective,
                if p.narrows { " narrows rights" } else { "" }
            ),
        };
        let rec = PolicyVersionRecord {
            seq: 0,
            version: p.version.clone(),
            published: now,
            effective: p.effective.start_millis(),
            narrows: p.narrows,
            zh: p.zh,
            en: p.en.unwrap_or_default(),
        };
        let _turn = self.notice_turn.lock().await;
        self.resume_locked().await?;
        let notice = Self::notice_of(&rec.version, Date::of(rec.effective), rec.narrows);
        let (rec, job) = match self.store.publish_policy(rec, notice, audit).await? {
            Ok(done) => done,
            Err(PrivacyRefusal::VersionExists) => return Err(PolicyBookError::Exists(p.version)),
            Err(_) => {
                return Err(PolicyBookError::Store(StoreError::Corrupt(
                    "policy version",
                )));
            }
        };
        let version = Arc::new(Version::from_record(rec));
        self.versions
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(version.clone());
        let notified = self.run_notices(job).await?;
        Ok((version, notified))
    }

    /// Finishes every notice job a stop left unfinished (a publication's, or an admin's notice
    /// to all users), from where each got to: every live user it was for gets exactly one
    /// notice. Called at start and by the maintenance loop; returns the notices left.
    pub async fn resume_notices(&self) -> Result<usize, StoreError> {
        let _turn = self.notice_turn.lock().await;
        self.resume_locked().await
    }

    /// [`PolicyBook::resume_notices`], with the notice turn held.
    async fn resume_locked(&self) -> Result<usize, StoreError> {
        let mut left = 0;
        for job in self.store.notice_jobs().await? {
            left += self.run_notices(job).await?;
        }
        Ok(left)
    }

    /// Runs notice job `job` to its end, waking each user's streams after every batch.
    async fn run_notices(&self, job: u64) -> Result<usize, StoreError> {
        let mut count = 0;
        loop {
            let (notified, done) = self.store.notice_batch(job, storage::NOTICE_BATCH).await?;
            for (user, pos) in &notified {
                self.hub.publish(&[*user], *pos);
            }
            count += notified.len();
            if done {
                return Ok(count);
            }
        }
    }

    /// The notice telling a user about `v`.
    pub fn notice(v: &Version) -> EventRecord {
        Self::notice_of(&v.version, v.effective, v.narrows)
    }

    fn notice_of(version: &str, effective: Date, narrows: bool) -> EventRecord {
        crate::notices::policy(version, &effective.to_string(), narrows)
    }

    /// Records that `user` accepts `version`, which must be the current one or an upcoming one.
    pub async fn accept(&self, user: u64, version: &str) -> Result<Arc<Version>, PolicyBookError> {
        let v = self
            .get(version)
            .ok_or_else(|| PolicyBookError::Unknown(version.to_string()))?;
        let current = self.current();
        if v.seq < current.seq {
            return Err(PolicyBookError::Outdated {
                version: v.version.clone(),
                current: current.version.clone(),
            });
        }
        self.store
            .accept_policy(user, v.seq, v.version.clone(), self.clock.now())
            .await?;
        Ok(v)
    }

    /// Where `user` stands: what they accepted, what is pending, what pauses them.
    pub async fn standing(&self, user: u64) -> Result<Standing, PolicyBookError> {
        let accepted = self.store.policy_acceptances(user).await?;
        let all = self.all();
        let by_seq = |seq: u64| all.iter().find(|v| v.seq == seq).cloned();
        let (seq, at) = accepted.last().copied().unwrap_or((0, Millis(0)));
        let accepted_version = by_seq(seq).unwrap_or_else(|| all[0].clone());
        let current = self.current();
        let pending = all
            .iter()
            .filter(|v| v.seq > seq && (v.seq >= current.seq || v.narrows))
            .cloned()
            .collect();
        let paused_by = self
            .store
            .processing_paused(user, self.clock.now())
            .await?
            .and_then(by_seq);
        Ok(Standing {
            accepted: (accepted_version, at),
            pending,
            paused_by,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::time::{Clock, ManualClock};

    fn date(s: &str) -> Date {
        crate::time::parse_date(s).unwrap()
    }

    async fn book(clock: Arc<ManualClock>, dir: &std::path::Path) -> PolicyBook {
        let (store, _) = Store::open(&dir.join("n.redb"), |_| Ok(None)).unwrap();
        let configured = Policy::load(&Config::default()).unwrap();
        PolicyBook::load(store, clock, Arc::new(Hub::default()), &configured)
            .await
            .unwrap()
    }

    fn publication(v: &str, effective: &str, narrows: bool) -> Publication {
        Publication {
            version: v.into(),
            effective: date(effective),
            narrows,
            zh: "新的政策".into(),
            en: None,
        }
    }

    #[tokio::test]
    async fn a_published_version_becomes_current_on_its_date_and_survives_a_reload() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(date("2027-01-10").start_millis()));
        let b = book(clock.clone(), dir.path()).await;
        let configured = b.current();
        assert_eq!(configured.seq, 0);
        b.publish(publication("2027-02", "2027-02-01", false))
            .await
            .unwrap();
        assert_eq!(
            b.current().version,
            configured.version,
            "not before its date"
        );
        assert_eq!(b.upcoming().len(), 1);
        clock.set(Millis(date("2027-02-01").start_millis().0 + 1));
        assert_eq!(b.current().version, "2027-02");
        let current = b.current();
        let (_, text) = current.text(Lang::En);
        assert_eq!(
            text, "新的政策",
            "no translation: the Chinese text is served"
        );
        // The same versions after a restart.
        let store = b.store.clone();
        let again = PolicyBook::load(
            store,
            clock,
            Arc::new(Hub::default()),
            &Policy::load(&Config::default()).unwrap(),
        )
        .await
        .unwrap();
        assert_eq!(again.current().version, "2027-02");
        assert_eq!(again.all().len(), 2);
    }

    #[tokio::test]
    async fn publication_needs_a_later_day_a_new_name_and_text() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(date("2027-01-10").start_millis()));
        let b = book(clock, dir.path()).await;
        let err = |r: Result<_, PolicyBookError>| r.unwrap_err().to_string();
        assert!(err(b.publish(publication("v2", "2027-01-10", false)).await).contains("effective"));
        assert!(
            err(b
                .publish(publication("bad name", "2027-02-01", false))
                .await)
            .contains("version")
        );
        let mut empty = publication("v2", "2027-02-01", false);
        empty.zh = "  ".into();
        assert!(err(b.publish(empty).await).contains("text"));
        b.publish(publication("v2", "2027-02-01", true))
            .await
            .unwrap();
        assert!(
            err(b.publish(publication("v3", "2027-01-20", false)).await).contains("2027-02-01"),
            "not before an earlier publication's date"
        );
        assert!(matches!(
            b.publish(publication("v2", "2027-03-01", false)).await,
            Err(PolicyBookError::Exists(_))
        ));
        let configured = b.all()[0].version.clone();
        assert!(matches!(
            b.publish(publication(&configured, "2027-03-01", false))
                .await,
            Err(PolicyBookError::Exists(_))
        ));
    }

    fn new_account(id: u64) -> storage::NewAccount {
        storage::NewAccount {
            account: storage::AccountRecord {
                id,
                handle: format!("user{id}"),
                handle_index: [0; 32],
                handle_sealed: vec![],
                phone_sealed: vec![1],
                password_phc: "phc".into(),
                wrapped_key: vec![2],
                created: Millis(1),
                policy_version: "v".into(),
                policy_accepted: Millis(1),
            },
            phone_index: [id as u8; 32],
            profile_sealed: vec![3],
            policy_seq: 0,
        }
    }

    #[tokio::test]
    async fn a_publication_a_stop_cut_short_is_finished_at_start_and_before_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(date("2027-01-10").start_millis()));
        let b = book(clock.clone(), dir.path()).await;
        for id in 1..=3 {
            b.store.insert_account(new_account(id)).await.unwrap();
        }
        // What a stop after the first batch leaves: the version and its job, one user done.
        let rec = PolicyVersionRecord {
            seq: 0,
            version: "2027-02".into(),
            published: clock.now(),
            effective: date("2027-02-01").start_millis(),
            narrows: false,
            zh: "新的政策".into(),
            en: String::new(),
        };
        let notice = PolicyBook::notice_of("2027-02", date("2027-02-01"), false);
        let audit = AuditEntry {
            at: clock.now(),
            actor: "admin".into(),
            action: "policy.publish".into(),
            target: String::new(),
            subject: None,
            detail: String::new(),
        };
        let (_, job) = b
            .store
            .publish_policy(rec, notice, audit)
            .await
            .unwrap()
            .unwrap();
        let (done, _) = b.store.notice_batch(job, 1).await.unwrap();
        assert_eq!(done.len(), 1);
        // The node starts again.
        let hub = Arc::new(Hub::default());
        let again = PolicyBook::load(
            b.store.clone(),
            clock.clone(),
            hub.clone(),
            &Policy::load(&Config::default()).unwrap(),
        )
        .await
        .unwrap();
        assert_eq!(again.upcoming().len(), 1, "the version is there already");
        let woken = hub.subscribe(3);
        assert_eq!(again.resume_notices().await.unwrap(), 2, "the two left");
        assert!(woken.has_changed().unwrap(), "their streams are woken");
        assert_eq!(again.resume_notices().await.unwrap(), 0, "nothing twice");
        // Cut short again, then the next publication finishes it before its own.
        let (_, job) = again
            .store
            .publish_policy(
                PolicyVersionRecord {
                    seq: 0,
                    version: "2027-03".into(),
                    published: clock.now(),
                    effective: date("2027-03-01").start_millis(),
                    narrows: false,
                    zh: "新的政策".into(),
                    en: String::new(),
                },
                PolicyBook::notice_of("2027-03", date("2027-03-01"), false),
                AuditEntry {
                    at: clock.now(),
                    actor: "admin".into(),
                    action: "policy.publish".into(),
                    target: String::new(),
                    subject: None,
                    detail: String::new(),
                },
            )
            .await
            .unwrap()
            .unwrap();
        assert!(!again.store.notice_batch(job, 1).await.unwrap().1);
        let (_, notified) = again
            .publish(publication("2027-04", "2027-04-01", false))
            .await
            .unwrap();
        assert_eq!(notified, 3);
        for id in 1..=3 {
            assert_eq!(
                again.store.notices_of(id).await.unwrap().len(),
                3,
                "one notice per version for user {id}"
            );
        }
        assert!(again.store.notice_jobs().await.unwrap().is_empty());
    }
}
