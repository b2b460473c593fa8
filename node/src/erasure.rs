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
#[non_exhaustive]
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
    #[cfg(test)]
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
    #[cfg(test)]
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
            #[cfg(test)]
            crash_after: Default::default(),
        }
    }

    /// A point between two of the erasure's commits, where a crash could stop it. The node's
    /// own tests stop the erasure here (`crash_after`); in every other build it does nothing.
    fn committed(&self) -> Result<(), ErasureError> {
        #[cfg(test)]
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
                        .erasure_step(user, self.clock.now(), STEP_ROWS, done),
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::accounts::Registration;
    use crate::admin::{Context, Offline};
    use crate::config::Config;
    use crate::time::{Clock, ManualClock, Millis};

    const PEERS: [&str; 2] = ["b.test", "c.test"];

    fn config(dir: &std::path::Path) -> Config {
        let mut text = format!(
            "[server]\ndomain = \"a.test\"\nlisten = \"127.0.0.1:0\"\n\
             [storage]\ndata_dir = \"{}\"\n[accounts]\ndeletion_cooling_off_days = 1\n",
            dir.display()
        );
        for p in PEERS {
            // Never reached: nothing is delivered offline.
            text.push_str(&format!(
                "[[federation.peers]]\ndomain = \"{p}\"\nurl = \"https://127.0.0.1:9\"\n\
                 region = \"CN\"\n"
            ));
        }
        Config::parse(&text, "test").expect("config")
    }

    /// Closes an offline context's database (off the async threads, as the node does).
    async fn close(offline: Offline) {
        let store = offline.context.store().clone();
        drop(offline);
        tokio::task::spawn_blocking(move || drop(store))
            .await
            .expect("closed");
    }

    /// How many envelopes wait for each peer.
    async fn queued(ctx: &Context) -> Vec<(String, u64)> {
        ctx.store().outbound_counts().await.expect("counts")
    }

    /// For every point between two of an erasure's commits: a node stopped there either has not
    /// begun the erasure (the account is whole, no peer asked) or has asked every peer that
    /// received the user's data — and, started again, finishes it having asked each exactly once.
    #[tokio::test]
    async fn an_erasure_stopped_at_any_commit_has_not_begun_or_asks_every_peer_when_resumed() {
        let mut crashed_at = Vec::new();
        for crash_after in 1..50 {
            let dir = tempfile::tempdir().expect("dir");
            let config = config(dir.path());
            let clock = Arc::new(ManualClock::new(Millis(1_700_000_000_000)));
            // The data directory as a node leaves it.
            let node = crate::Node::start(config.clone(), clock.clone())
                .await
                .expect("node");
            node.shutdown().await;

            let offline = Context::offline(&config, clock.clone())
                .await
                .expect("open");
            let ctx = &offline.context;
            let version = ctx.policy.current().version.clone();
            ctx.accounts
                .register(Registration {
                    phone: "+8613800000001".into(),
                    handle: "gone".into(),
                    password: "password-gone".into(),
                    nickname: None,
                    accept_policy: version,
                })
                .await
                .expect("registered");
            let user = ctx
                .store()
                .user_by_handle("gone".into())
                .await
                .unwrap()
                .expect("user");
            for p in PEERS {
                ctx.store()
                    .record_transfer(user, p.into(), "message", clock.now())
                    .await
                    .unwrap();
            }
            ctx.erasure
                .request(user, "password-gone")
                .await
                .expect("asked");
            clock.advance_ms(25 * 3600 * 1000);

            ctx.erasure.crash_after.store(crash_after, Ordering::SeqCst);
            let first = ctx.erasure.run(user).await;
            let crashed = matches!(first, Err(ErasureError::Crashed));
            if !crashed {
                assert_eq!(first.expect("ran"), Step::Progress(Phase::Done));
            }
            let phase = ctx.erasure.status(user).await.unwrap().record.phase;
            let asked = ctx.erasure.status(user).await.unwrap().peers;
            if phase == Phase::Scheduled {
                assert!(asked.is_empty() || asked.len() == PEERS.len(), "{asked:?}");
            } else {
                assert_eq!(
                    asked.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>(),
                    PEERS,
                    "begun ({phase:?}) after {crash_after} commits without every peer asked"
                );
            }
            close(offline).await;

            // Started again: the erasure resumes and ends with each peer asked once.
            let offline = Context::offline(&config, clock.clone())
                .await
                .expect("reopen");
            let ctx = &offline.context;
            let due = ctx.store().due_erasures(clock.now()).await.unwrap();
            let unfinished = phase != Phase::Done;
            assert_eq!(
                due,
                if unfinished { vec![user] } else { vec![] },
                "after {crash_after}"
            );
            assert_eq!(
                ctx.erasure.run_due().await.unwrap(),
                due.len(),
                "after {crash_after}"
            );
            let status = ctx.erasure.status(user).await.unwrap();
            assert_eq!(status.record.phase, Phase::Done, "after {crash_after}");
            assert_eq!(
                status
                    .peers
                    .iter()
                    .map(|(p, _)| p.as_str())
                    .collect::<Vec<_>>(),
                PEERS
            );
            assert_eq!(
                queued(ctx).await,
                PEERS.map(|p| (p.to_string(), 1)),
                "one erasure request for each peer, after {crash_after}"
            );
            close(offline).await;
            if !crashed {
                break;
            }
            crashed_at.push((crash_after, phase));
        }
        // The erasure was stopped before its first step and after it, not only at the end.
        assert!(
            crashed_at.iter().any(|(_, p)| *p == Phase::Scheduled),
            "{crashed_at:?}"
        );
        assert!(
            crashed_at.iter().any(|(_, p)| *p == Phase::Begun),
            "{crashed_at:?}"
        );
        assert!(crashed_at.len() >= 4, "{crashed_at:?}");
    }
}
