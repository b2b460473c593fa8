//! `Erasure`: account deletion. A user asks with their password and gets a cooling-off period
//! (their account is locked except for cancelling); an admin erases at once with a reason. When
//! due, the erasure runs in bounded, idempotent steps (see `storage::erasure`): the data key is
//! destroyed first, every peer that received the user's data is asked to erase it, then the
//! user's rows go and what they wrote becomes tombstones. A legal hold pauses it; a restart
//! resumes it.

use crate::accounts::{AccountError, Accounts};
use crate::federate::Outbox;
use crate::time::{Millis, SharedClock};
use storage::{AuditEntry, ErasureRecord, Phase, Step, Store, StoreError};

/// Rows one erasure step touches at most, so chat traffic keeps flowing during a large one.
pub const STEP_ROWS: usize = 2000;

/// Errors of account deletion.
#[derive(Debug, thiserror::Error)]
pub enum ErasureError {
    #[error("no such user")]
    NoSuchUser,
    #[error("no deletion is scheduled")]
    NotScheduled,
    #[error("the erasure has already started and cannot be cancelled")]
    Started,
    #[error(transparent)]
    Account(#[from] AccountError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("asking peers to erase: {0}")]
    Peers(String),
    /// Only in the node's own tests: the erasure stopped where a crash could stop it.
    #[cfg(any(test, feature = "test-support"))]
    #[error("stopped by a test between two commits")]
    Crashed,
}

/// Where an erasure stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErasureStatus {
    pub record: ErasureRecord,
    /// Why: the user asked, or the admin's reason while the user's key exists (`None` after).
    pub reason: Option<String>,
    pub held: bool,
    /// Each peer asked, and whether it acknowledged.
    pub peers: Vec<(String, bool)>,
}

/// The account-deletion service.
#[derive(Debug, Clone)]
pub struct Erasure {
    store: Store,
    accounts: Accounts,
    outbox: Outbox,
    clock: SharedClock,
    domain: String,
    cooling_off_ms: u64,
    /// Only in the node's own tests: after how many more commits the erasure stops as if the
    /// node had crashed (0: never). Compiled out of every other build.
    #[cfg(any(test, feature = "test-support"))]
    crash_after: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Erasure {
    pub fn new(
        store: Store,
        accounts: Accounts,
        outbox: Outbox,
        clock: SharedClock,
        domain: String,
        cooling_off_ms: u64,
    ) -> Self {
        Erasure {
            store,
            accounts,
            outbox,
            clock,
            domain,
            cooling_off_ms,
            #[cfg(any(test, feature = "test-support"))]
            crash_after: Default::default(),
        }
    }

    /// Makes the erasure stop, as a crash would, after `commits` more of its commits (the
    /// node's crash-window test, `node/src/erasure_resume.rs`).
    #[cfg(any(test, feature = "test-support"))]
    pub fn crash_after(&self, commits: usize) {
        self.crash_after
            .store(commits, std::sync::atomic::Ordering::SeqCst);
    }

    /// A point between two of the erasure's commits, where a crash could stop it. The node's
    /// own tests stop the erasure here (`crash_after`); in every other build it does nothing.
    fn committed(&self) -> Result<(), ErasureError> {
        #[cfg(any(test, feature = "test-support"))]
        {
            use std::sync::atomic::Ordering;
            let left = self
                .crash_after
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
            if left == Ok(1) {
                return Err(ErasureError::Crashed);
            }
        }
        Ok(())
    }

    fn audit(&self, actor: &str, action: &str, user: u64, detail: &str) -> AuditEntry {
        AuditEntry {
            at: self.clock.now(),
            actor: actor.into(),
            action: action.into(),
            target: String::new(),
            subject: Some(user),
            detail: detail.into(),
        }
    }

    /// The user asks for their account to be deleted: re-authenticated by password, then
    /// scheduled after the cooling-off period. Returns when it is due (the existing date if it
    /// was asked before).
    pub async fn request(&self, user: u64, password: &str) -> Result<Millis, ErasureError> {
        self.accounts.check_password(user, password).await?;
        let now = self.clock.now();
        let due = Millis(now.0 + self.cooling_off_ms);
        let rec = ErasureRecord {
            requested: now,
            due,
            by: "user".into(),
            reason: "the user asked".into(),
            phase: Phase::Scheduled,
            cursor: (0, 0),
            finished: None,
        };
        let audit = self.audit(
            "user",
            "erasure.request",
            user,
            &format!("due {}", due.to_rfc3339()),
        );
        self.store.schedule_erasure(user, rec, audit, None).await?;
        self.accounts.forget_user(user);
        Ok(self.store.erasure_of(user).await?.map_or(due, |r| r.due))
    }

    /// The user cancels within the cooling-off period.
    pub async fn cancel(&self, user: u64) -> Result<(), ErasureError> {
        let audit = self.audit("user", "erasure.cancel", user, "");
        if self.store.cancel_erasure(user, audit).await? {
            self.accounts.forget_user(user);
            return Ok(());
        }
        match self.store.erasure_of(user).await? {
            Some(_) => Err(ErasureError::Started),
            None => Err(ErasureError::NotScheduled),
        }
    }

    /// An admin erases a user now (a pending request becomes due now). Runs it to the end
    /// unless a legal hold stops it; returns where it stands.
    pub async fn erase_now(&self, user: u64, reason: &str) -> Result<ErasureStatus, ErasureError> {
        let now = self.clock.now();
        let rec = ErasureRecord {
            requested: now,
            due: now,
            by: "admin".into(),
            // The admin's words are sealed under the user's key (`userid_note_adminnote`):
            // they may name the person, and go with the key at the erasure's first step. The
            // record, kept after the account, and the audit log hold no free text.
            reason: String::new(),
            phase: Phase::Scheduled,
            cursor: (0, 0),
            finished: None,
        };
        let sealed = self
            .accounts
            .seal_note(user, storage::ERASURE_REASON, reason)
            .await?;
        let audit = self.audit("admin", "erasure.request", user, "");
        if !self
            .store
            .schedule_erasure(user, rec, audit, sealed)
            .await?
        {
            self.store.make_erasure_due(user, now).await?;
        }
        self.run(user).await?;
        self.status(user).await
    }

    /// Runs `user`'s erasure as far as it can go now: to the end, or until a legal hold or the
    /// due date stops it. Safe to call again at any point (after a crash, too).
    pub async fn run(&self, user: u64) -> Result<Step, ErasureError> {
        let handle = match self.store.account(user).await? {
            Some(a) => a.handle,
            None => String::new(),
        };
        // Peers are asked before the first step, which destroys the sealed handle: the clear
        // handle lives only in memory, so a restart after that step could no longer name the
        // user to them. Asking is durable (queued) and asked once; a held or not-yet-due
        // erasure asks no one.
        if !handle.is_empty()
            && self.store.erasure_may_begin(user, self.clock.now()).await?
            && self.outbox.erasure_asked(user).await.is_empty()
        {
            self.ask_peers(user, &handle).await?;
            self.committed()?;
        }
        // Read while the key exists: the first step removes this one row of the phone index
        // (and the one the account recorded, `userid_phoneindex`, which needs no key).
        let phone_index = match self.accounts.phone_index_of(user).await {
            Ok(ix) => ix,
            Err(e) => {
                tracing::warn!(error = %e, "an erasing user's phone index could not be read");
                None
            }
        };
        loop {
            let done = self.audit("node", "erasure.done", user, "");
            // The first step deletes the sessions and the data key in one commit: run through
            // `dropping_sessions`, so no cached session is let in after it (it used to be, until
            // `forget_user` below, and read an account with no key: a 500).
            let step = self
                .accounts
                .dropping_sessions(
                    user,
                    self.store
                        .erasure_step(user, self.clock.now(), STEP_ROWS, phone_index, done),
                )
                .await?;
            self.committed()?;
            match step {
                Step::Progress(Phase::Begun) => {
                    self.accounts.forget_user(user);
                    // Asked above already. An empty handle here means the account was not
                    // live when this run started (a restart after this step, or an erasure
                    // begun by an earlier build); it cannot name the user any more.
                    if !handle.is_empty() && self.outbox.erasure_asked(user).await.is_empty() {
                        self.ask_peers(user, &handle).await?;
                        self.committed()?;
                    }
                    self.store.erasure_peers_asked(user).await?;
                    self.committed()?;
                }
                Step::Progress(Phase::Done) => {
                    tracing::info!("an account erasure finished");
                    return Ok(step);
                }
                Step::Progress(_) => {}
                other => return Ok(other),
            }
        }
    }

    /// Queues an erasure request to every peer that received `user`'s data.
    async fn ask_peers(&self, user: u64, handle: &str) -> Result<(), ErasureError> {
        let address = format!("{handle}@{}", self.domain);
        self.outbox
            .request_erasure(user, &address)
            .await
            .map_err(|r| ErasureError::Peers(crate::federate::refusal_text(&r)))?;
        Ok(())
    }

    /// Runs every erasure that is due (called by the node's maintenance loop and at start).
    pub async fn run_due(&self) -> Result<usize, ErasureError> {
        let mut n = 0;
        for user in self.store.due_erasures(self.clock.now()).await? {
            if let Step::Progress(Phase::Done) = self.run(user).await? {
                n += 1;
            }
        }
        Ok(n)
    }

    /// Where `user`'s erasure stands.
    pub async fn status(&self, user: u64) -> Result<ErasureStatus, ErasureError> {
        let record = self
            .store
            .erasure_of(user)
            .await?
            .ok_or(ErasureError::NotScheduled)?;
        let held = self
            .store
            .legal_holds()
            .await?
            .iter()
            .any(|(u, _, _)| *u == user);
        let peers = self
            .store
            .erasure_status(user)
            .await?
            .into_iter()
            .map(|(p, _, ack)| (p, ack.is_some()))
            .collect();
        let reason = match self.store.admin_note(user, storage::ERASURE_REASON).await? {
            Some(sealed) => {
                self.accounts
                    .open_note(user, storage::ERASURE_REASON, &sealed)
                    .await?
            }
            // The user's own request, or one recorded before the reason was sealed.
            None => (!record.reason.is_empty()).then(|| record.reason.clone()),
        };
        Ok(ErasureStatus {
            record,
            reason,
            held,
            peers,
        })
    }
}
