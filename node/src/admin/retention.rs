//! `Retention`: the node's retention schedule (`[retention]`), applied in bounded batches by the
//! node's maintenance loop and by `node-admin retention run`, sparing users under legal hold,
//! and audited.

use serde_json::{Value, json};

use crate::accounts::Accounts;
use crate::config::RetentionConfig;
use crate::time::{Millis, SharedClock};
use storage::{AuditEntry, Counts, Cutoffs, Resume, Store, StoreError};

/// Rows scanned per category in one write batch.
pub const BATCH_ROWS: usize = 500;

const DAY_MS: u64 = 24 * 3600 * 1000;

/// The retention service.
#[derive(Debug, Clone)]
pub struct Retention {
    store: Store,
    /// Present in the running node: sessions signed out must leave its session cache too.
    accounts: Option<Accounts>,
    clock: SharedClock,
    config: RetentionConfig,
    /// Days answered and cancelled friend requests are kept (`friends.closed_requests_days`;
    /// 0 until [`Retention::with_friend_requests`] sets it: kept).
    friend_requests_days: u64,
}

pub(crate) fn counts_json(c: &Counts) -> Value {
    json!({
        "messages": c.messages,
        "undelivered": c.undelivered,
        "media": c.media,
        "sessions": c.sessions,
        "security_logs": c.security_logs,
        "federation_seen": c.federation_seen,
        "txn_ids": c.txn_ids,
        "community_posts": c.community_posts,
        "community_comments": c.community_comments,
        "community_log": c.community_log,
    })
}

impl Retention {
    pub fn new(
        store: Store,
        accounts: Option<Accounts>,
        clock: SharedClock,
        config: RetentionConfig,
    ) -> Self {
        Retention {
            store,
            accounts,
            clock,
            config,
            friend_requests_days: 0,
        }
    }

    /// Also removes friend requests closed more than `days` ago on each run (issue 22).
    pub fn with_friend_requests(mut self, days: u64) -> Self {
        self.friend_requests_days = days;
        self
    }

    /// The times before which each category goes, now.
    pub fn cutoffs(&self, now: Millis) -> Cutoffs {
        let before = |days: u64| (days > 0).then(|| Millis(now.0.saturating_sub(days * DAY_MS)));
        let c = &self.config;
        Cutoffs {
            messages: before(c.messages_max_days.get()),
            undelivered: before(c.undelivered_max_days.get()),
            media: before(c.media_max_days.get()),
            sessions: before(c.sessions_inactive_days.get()),
            // The minimum is enforced by the configuration (max ≥ min, or no max).
            security_logs: before(c.security_logs_max_days.get()),
            federation_seen: before(c.federation_seen_days.get()),
            txn_ids: before(c.txn_ids_days.get()),
        }
    }

    /// The cut-offs of communities' posts, comments and moderation log, now.
    fn community_cutoffs(&self, now: Millis) -> (Option<Millis>, Option<Millis>, Option<Millis>) {
        let before = |days: u64| (days > 0).then(|| Millis(now.0.saturating_sub(days * DAY_MS)));
        let c = &self.config;
        (
            before(c.community_posts_max_days.get()),
            before(c.community_comments_max_days.get()),
            before(c.community_log_max_days.get()),
        )
    }

    /// The effective schedule.
    pub fn schedule_json(&self) -> Value {
        let c = &self.config;
        let days = |d: u64| if d == 0 { Value::Null } else { json!(d) };
        json!({
            "interval_secs": c.interval_secs.get(),
            "categories": [
                {"category": "messages", "max_days": days(c.messages_max_days.get()), "min_days": null},
                {"category": "undelivered", "max_days": days(c.undelivered_max_days.get()), "min_days": null},
                {"category": "media", "max_days": days(c.media_max_days.get()), "min_days": null},
                {"category": "sessions", "max_days": days(c.sessions_inactive_days.get()), "min_days": null},
                {"category": "security_logs", "max_days": days(c.security_logs_max_days.get()),
                 "min_days": days(c.security_logs_min_days.get())},
                {"category": "federation_seen", "max_days": days(c.federation_seen_days.get()), "min_days": null},
                {"category": "txn_ids", "max_days": days(c.txn_ids_days.get()), "min_days": null},
                {"category": "community_posts", "max_days": days(c.community_posts_max_days.get()), "min_days": null},
                {"category": "community_comments", "max_days": days(c.community_comments_max_days.get()), "min_days": null},
                {"category": "community_log", "max_days": days(c.community_log_max_days.get()), "min_days": null},
            ],
        })
    }

    /// Applies the schedule now (or with `dry_run`, counts what it would remove), and records
    /// the run in the audit log.
    pub async fn run(&self, dry_run: bool, actor: &str) -> Result<Counts, StoreError> {
        self.run_reporting(dry_run, actor, None).await
    }

    /// [`Retention::run`], telling `progress` (rows removed, rows due in all) after each batch;
    /// with `progress`, what is due is counted first (one more read of the tables).
    pub async fn run_reporting(
        &self,
        dry_run: bool,
        actor: &str,
        progress: Option<&tokio::sync::watch::Sender<(u64, u64)>>,
    ) -> Result<Counts, StoreError> {
        let now = self.clock.now();
        let cut = self.cutoffs(now);
        let community = self.community_cutoffs(now);
        if dry_run || progress.is_some() {
            let mut c = self.store.retention_count(cut).await?;
            let (p, m, l) = self
                .store
                .community_retention(community.0, community.1, community.2, usize::MAX, true)
                .await?;
            (c.community_posts, c.community_comments, c.community_log) = (p, m, l);
            if dry_run {
                return Ok(c);
            }
            if let Some(tx) = progress {
                let _ = tx.send((0, c.total()));
            }
        }
        let due = progress.map_or(0, |tx| tx.borrow().1);
        let report = |done: &Counts| {
            if let Some(tx) = progress {
                // Rows that fell due since the count (or friend requests, not counted) can make
                // the removed rows outrun it; the bar then shows them as the total.
                let d = done.total();
                let _ = tx.send((d, due.max(d)));
            }
        };
        let mut total = Counts::default();
        let mut from = Resume::start();
        loop {
            let (counts, users, next) = self.store.retention_batch(cut, from, BATCH_ROWS).await?;
            total.add(&counts);
            report(&total);
            if let Some(a) = &self.accounts {
                for u in users {
                    a.forget_user(u);
                }
            }
            match next {
                Some(n) => from = n,
                None => break,
            }
            // Leave the writer to chat traffic for a moment between batches.
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        if self.friend_requests_days > 0 {
            let cutoff = Millis(now.0.saturating_sub(self.friend_requests_days * DAY_MS));
            while self.store.prune_friend_requests(cutoff, BATCH_ROWS).await? >= BATCH_ROWS {
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            }
        }
        // Communities, in batches of their own until a batch removes fewer than it may.
        loop {
            let (p, m, l) = self
                .store
                .community_retention(community.0, community.1, community.2, BATCH_ROWS, false)
                .await?;
            total.community_posts += p;
            total.community_comments += m;
            total.community_log += l;
            report(&total);
            if p < BATCH_ROWS as u64 && m < BATCH_ROWS as u64 && l < BATCH_ROWS as u64 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        let audit = (total.total() > 0 || actor == "admin").then(|| AuditEntry {
                    at: now,
                    actor: actor.into(),
                    action: "retention.run".into(),
                    target: String::new(),
            subject: None,
                    detail: format!(
                        "messages {} undelivered {} media {} sessions {} security_logs {} federation_seen {} txn_ids {} community_posts {} community_comments {} community_log {}",
                        total.messages,
                        total.undelivered,
                        total.media,
                        total.sessions,
                        total.security_logs,
                        total.federation_seen,
                        total.txn_ids,
                        total.community_posts,
                        total.community_comments,
                        total.community_log
                    ),
                });
        self.store.retention_ran(now, audit).await?;
        Ok(total)
    }
}
