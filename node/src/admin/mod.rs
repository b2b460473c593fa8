//! What `node-admin` does, as library code: the commands (`Request`), their results as JSON,
//! and the context they run in. The running node serves them on its admin socket
//! (`socket.rs`); with the node stopped, `node-admin` builds the same context on the database
//! file (`Context::offline`) and calls the same [`execute`].
//!
//! Every command that changes data or shows an admin personal data is written to the audit log.

mod backup;
mod ops;
mod retention;
mod socket;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub use backup::{
    archive_key, call as call_backup, drive as backup_drive, partial_path, restore,
    verify as verify_archive,
};
pub use ops::Runtime;
pub use retention::Retention;
pub use socket::{SOCKET_NAME, bind, call, call_export, call_reporting, serve};

use crate::accounts::Accounts;
use crate::config::Config;
use crate::consents::Consents;
use crate::crypto::MasterKey;
use crate::erasure::{Erasure, ErasureError, ErasureStatus};
use crate::http::Exporter;
use crate::hub::Hub;
use crate::policy::{Policy, PolicyBook, PolicyBookError, Publication};
use crate::privacy::{Finding, Minors, PrivacyError};
use crate::ratelimit::LoginLimiter;
use crate::requests::{RequestError, Requests};
use crate::time::{Millis, SharedClock};
use crate::wiring::wire;
use storage::{
    AuditCheck, AuditEntry, ERASED_PSEUDONYM, EventRecord, NoticeContent, NoticeKind, Store,
    StoreError,
};

/// One admin command, as it travels over the socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "kebab-case", deny_unknown_fields)]
#[non_exhaustive]
pub enum Request {
    UsersList,
    UsersShow {
        address: String,
    },
    UsersErase {
        address: String,
        reason: String,
    },
    ErasureStatus {
        address: String,
    },
    HoldSet {
        address: String,
        basis: String,
    },
    HoldClear {
        address: String,
    },
    HoldList,
    RetentionShow,
    RetentionRun {
        dry_run: bool,
    },
    AuditList {
        since: Option<u64>,
    },
    AuditVerify,
    RequestsList,
    RequestsShow {
        id: u64,
    },
    RequestsResolve {
        id: u64,
        answer: String,
    },
    PolicyPublish {
        version: String,
        effective: String,
        narrows_rights: bool,
        /// The Chinese (authoritative) text.
        text: String,
        /// An English translation, if any.
        en: Option<String>,
    },
    PolicyList,
    IncidentNotify {
        title: String,
        body: String,
        /// `None`: every user. Otherwise the lines of the users file (addresses or handles;
        /// blank lines and `#` comments skipped), so an error can name its line.
        users: Option<Vec<String>>,
    },
    MinorsList,
    MinorsPurge,
    /// Answered with a header line and then the archive itself (see `socket.rs`).
    UsersExport {
        address: String,
    },
    /// A snapshot of the whole database (or only its erasure records), answered with a header
    /// line and then frames (see `backup.rs`).
    Backup {
        kind: storage::ArchiveKind,
    },
    Status,
    PeersList,
    PeersShow {
        domain: String,
    },
    KeysList,
    /// A new federation signing key now; the old one stays published until it expires.
    KeysRotate,
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// Bad input (unknown user, malformed address, empty reason).
    #[error("{0}")]
    Invalid(String),
    /// The command ran and found a problem (a broken audit chain).
    #[error("{0}")]
    Problem(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Failed(String),
}

impl From<ErasureError> for AdminError {
    fn from(e: ErasureError) -> Self {
        match e {
            ErasureError::NoSuchUser => AdminError::Invalid("no such user".into()),
            ErasureError::NotScheduled => AdminError::Invalid("no erasure for this user".into()),
            ErasureError::Store(s) => AdminError::Store(s),
            other => AdminError::Failed(other.to_string()),
        }
    }
}

/// What the commands work with.
#[derive(Debug, Clone)]
pub struct Context {
    pub(crate) store: Store,
    pub(crate) accounts: Accounts,
    pub(crate) consents: Consents,
    pub(crate) erasure: Erasure,
    pub(crate) retention: Retention,
    pub(crate) requests: Requests,
    pub(crate) policy: PolicyBook,
    pub(crate) minors: Minors,
    pub(crate) exporter: Exporter,
    /// Wakes users' event streams when a command leaves them a notice.
    pub(crate) hub: Arc<Hub>,
    /// Seals backup archives.
    pub(crate) backup_key: crate::crypto::SecretKey,
    /// Seals a new signing key's seed (`keys rotate`).
    pub(crate) master: MasterKey,
    /// The node's signing keys: the running node's own set, so a rotation takes effect at once.
    pub(crate) node_keys: Arc<crate::signing::NodeKeys>,
    /// Peers' reachability: live on a running node, as last saved on a stopped one.
    pub(crate) reach: Arc<crate::federate::Reachability>,
    pub(crate) domain: String,
    pub(crate) clock: SharedClock,
    /// Start time, peers and database file, for `status` and `peers`.
    pub(crate) runtime: Runtime,
}

/// A context opened on a stopped node's files; closing it closes the database.
#[derive(Debug)]
pub struct Offline {
    pub context: Context,
    /// Tells the (idle) outbox it is shutting down.
    _stop: tokio::sync::watch::Sender<bool>,
}

/// Why an offline context could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    #[error("no database at {0} (check --data-dir or --config)")]
    Missing(String),
    #[error("{0} is in use by a running node")]
    InUse(String),
    #[error("{0}")]
    Other(String),
}

impl Context {
    /// Opens a stopped node's database with its configuration (the same services the node
    /// runs, without listening or delivering).
    pub async fn offline(config: &Config, clock: SharedClock) -> Result<Offline, OpenError> {
        let db = config.data_dir().join("node.redb");
        if !db.exists() {
            return Err(OpenError::Missing(db.display().to_string()));
        }
        let master = MasterKey::load_or_create(&config.master_key_path(), false)
            .map_err(|e| OpenError::Other(e.to_string()))?;
        let path = db.clone();
        let m = master.clone();
        let store = tokio::task::spawn_blocking(move || {
            Store::open(&path, |existing| match existing {
                Some(check) if m.verify_check_value(check) => Ok(None),
                _ => Err(StoreError::Db(
                    "the master key does not belong to this database".into(),
                )),
            })
        })
        .await
        .map_err(|e| OpenError::Other(e.to_string()))?
        .map_err(|e| match e {
            StoreError::InUse(p) => OpenError::InUse(p),
            other => OpenError::Other(other.to_string()),
        })?
        .0;
        let other = |e: String| OpenError::Other(e);
        let policy = Policy::load(config).map_err(|e| other(e.to_string()))?;
        // Offline nothing is delivered: the outbox only queues (the node delivers on start).
        let (stop, stopped) = tokio::sync::watch::channel(true);
        let s = wire(
            config,
            &store,
            &master,
            &clock,
            &policy,
            Arc::new(LoginLimiter::new(1, 1, clock.clone())),
            stopped,
        )
        .await
        .map_err(|e| other(e.to_string()))?;
        Ok(Offline {
            context: Context {
                store,
                accounts: s.accounts,
                consents: s.consents,
                erasure: s.erasure,
                retention: s.retention,
                requests: s.requests,
                policy: s.policy,
                minors: s.minors,
                exporter: s.exporter,
                hub: s.hub,
                backup_key: master.backup_key(),
                master: master.clone(),
                node_keys: s.node_keys,
                reach: s.reach,
                domain: config.server.domain.as_str().to_string(),
                clock,
                runtime: Runtime {
                    started: None,
                    peers: config.federation.peers.clone(),
                    db_file: db,
                    metrics: None,
                },
            },
            _stop: stop,
        })
    }

    /// The database handle (to close it off the async threads).
    pub fn store(&self) -> &Store {
        &self.store
    }

    fn audit(&self, action: &str, user: Option<u64>, detail: &str) -> AuditEntry {
        AuditEntry {
            at: self.clock.now(),
            actor: "admin".into(),
            action: action.into(),
            target: String::new(),
            detail: detail.into(),
            subject: user,
        }
    }

    /// A legal hold's basis: sealed under the user's key since schema 7 (`legacy`, the clear
    /// text of a hold set before, otherwise); `None` if it can no longer be read.
    async fn hold_basis(&self, user: u64, legacy: String) -> Result<Option<String>, AdminError> {
        let Some(sealed) = self.store.admin_note(user, storage::HOLD_BASIS).await? else {
            return Ok((!legacy.is_empty()).then_some(legacy));
        };
        self.accounts
            .open_note(user, storage::HOLD_BASIS, &sealed)
            .await
            .map_err(|e| AdminError::Failed(e.to_string()))
    }

    /// A local user's id from `handle@domain` (this node's) or a bare handle.
    async fn user(&self, address: &str) -> Result<u64, AdminError> {
        let handle = match address.rsplit_once('@') {
            Some((h, d)) if d == self.domain => h,
            Some(_) => {
                return Err(AdminError::Invalid(format!(
                    "{address} is not a user of this node ({})",
                    self.domain
                )));
            }
            None => address,
        };
        self.store
            .user_by_handle(handle.to_lowercase())
            .await?
            .ok_or_else(|| AdminError::Invalid(format!("no user {address} on this node")))
    }

    /// Like `user`, but also finds an account that has been erased (by its handle's hash).
    async fn user_or_erased(&self, address: &str) -> Result<u64, AdminError> {
        match self.user(address).await {
            Ok(u) => Ok(u),
            Err(e) => {
                let handle = address.rsplit_once('@').map_or(address, |(h, _)| h);
                let hash = self.accounts.erased_handle_hash(handle);
                self.store.erased_user(hash).await?.ok_or(e)
            }
        }
    }
}

fn status_json(s: &ErasureStatus) -> Value {
    json!({
        "phase": s.record.phase.name(),
        "requested": s.record.requested.to_rfc3339(),
        "due": s.record.due.to_rfc3339(),
        "by": s.record.by,
        "reason": s.reason,
        "finished": s.record.finished.map(|f| f.to_rfc3339()),
        "legal_hold": s.held,
        "peers": s.peers.iter().map(|(p, acked)| json!({"peer": p, "acknowledged": acked})).collect::<Vec<_>>(),
    })
}

/// Runs one command; the result is JSON (the CLI prints it as a table or as is).
pub async fn execute(ctx: &Context, req: Request) -> Result<Value, AdminError> {
    match req {
        Request::UsersList => {
            ctx.store
                .audit(ctx.audit("admin.users.list", None, ""))
                .await?;
            let holds = ctx.store.legal_holds().await?;
            let mut out = Vec::new();
            for a in ctx.store.accounts().await? {
                let erasure = ctx.store.erasure_of(a.id).await?;
                let status = match &erasure {
                    Some(e) if e.phase == storage::Phase::Scheduled => "deletion scheduled",
                    Some(_) => "erasing",
                    None => "active",
                };
                out.push(json!({
                    "address": format!("{}@{}", a.handle, ctx.domain),
                    "created": a.created.to_rfc3339(),
                    "status": status,
                    "legal_hold": holds.iter().any(|(u, _, _)| *u == a.id),
                }));
            }
            Ok(Value::Array(out))
        }
        Request::UsersShow { address } => {
            let user = ctx.user(&address).await?;
            let acct = ctx
                .store
                .account(user)
                .await?
                .ok_or_else(|| AdminError::Invalid("no such user".into()))?;
            let phone = ctx
                .accounts
                .masked_phone(user)
                .await
                .map_err(|e| AdminError::Failed(e.to_string()))?;
            let sessions = ctx.store.sessions_of(user).await?;
            let consents = ctx
                .consents
                .list(user)
                .await
                .map_err(|e| AdminError::Failed(e.to_string()))?;
            let erasure = match ctx.erasure.status(user).await {
                Ok(s) => status_json(&s),
                Err(_) => Value::Null,
            };
            let hold = ctx
                .store
                .legal_holds()
                .await?
                .into_iter()
                .find(|(u, _, _)| *u == user);
            let hold = match hold {
                Some((_, at, legacy)) => Some(
                    json!({"since": at.to_rfc3339(), "basis": ctx.hold_basis(user, legacy).await?}),
                ),
                None => None,
            };
            ctx.store
                .audit(ctx.audit("admin.users.show", Some(user), ""))
                .await?;
            Ok(json!({
                "address": format!("{}@{}", acct.handle, ctx.domain),
                "phone": phone,
                "created": acct.created.to_rfc3339(),
                "policy_version": acct.policy_version,
                "sessions": sessions.len(),
                "consents_granted": consents.iter().filter(|c| c.granted).map(|c| c.purpose.name()).collect::<Vec<_>>(),
                "deletion": erasure,
                "legal_hold": hold,
            }))
        }
        Request::UsersErase { address, reason } => erase(ctx, &address, &reason, None).await,
        Request::ErasureStatus { address } => {
            let user = ctx.user_or_erased(&address).await?;
            ctx.store
                .audit(ctx.audit("admin.users.erasure_status", Some(user), ""))
                .await?;
            Ok(status_json(&ctx.erasure.status(user).await?))
        }
        Request::HoldSet { address, basis } => {
            let basis = basis.trim().to_string();
            if basis.is_empty() || basis.len() > 500 {
                return Err(AdminError::Invalid(
                    "--basis must be 1 to 500 characters".into(),
                ));
            }
            let user = ctx.user(&address).await?;
            // Sealed under the user's key: a hold keeps their data, so the key lives as long.
            let sealed = ctx
                .accounts
                .seal_note(user, storage::HOLD_BASIS, &basis)
                .await
                .map_err(|e| AdminError::Failed(e.to_string()))?
                .ok_or_else(|| {
                    AdminError::Invalid(
                        "this user's erasure has begun: their data is already unreadable".into(),
                    )
                })?;
            ctx.store
                .set_legal_hold(
                    user,
                    sealed,
                    ctx.clock.now(),
                    ctx.audit("legal_hold.set", Some(user), ""),
                )
                .await?;
            Ok(json!({"address": address, "legal_hold": true}))
        }
        Request::HoldClear { address } => {
            let user = ctx.user(&address).await?;
            if !ctx
                .store
                .clear_legal_hold(user, ctx.audit("legal_hold.clear", Some(user), ""))
                .await?
            {
                return Err(AdminError::Invalid(format!("{address} has no legal hold")));
            }
            // An erasure it held back proceeds now.
            if ctx.store.erasure_of(user).await?.is_some() {
                ctx.erasure.run(user).await?;
            }
            Ok(json!({"address": address, "legal_hold": false}))
        }
        Request::HoldList => {
            ctx.store
                .audit(ctx.audit("admin.legal_hold.list", None, ""))
                .await?;
            let accounts = ctx.store.accounts().await?;
            let mut out = Vec::new();
            for (user, at, basis) in ctx.store.legal_holds().await? {
                let address = accounts
                    .iter()
                    .find(|a| a.id == user)
                    .map(|a| format!("{}@{}", a.handle, ctx.domain))
                    .unwrap_or_else(|| ERASED_PSEUDONYM.to_string());
                let basis = ctx.hold_basis(user, basis).await?;
                out.push(json!({"address": address, "since": at.to_rfc3339(), "basis": basis}));
            }
            Ok(Value::Array(out))
        }
        Request::RetentionShow => Ok(ctx.retention.schedule_json()),
        Request::RetentionRun { dry_run } => retention_run(ctx, dry_run, None).await,
        Request::AuditList { since } => {
            ctx.store
                .audit(ctx.audit("admin.audit.list", None, ""))
                .await?;
            let entries = ctx.store.audit_entries(since.map(Millis)).await?;
            Ok(Value::Array(
                entries
                    .iter()
                    .map(|r| {
                        json!({"seq": r.seq, "at": r.entry.at.to_rfc3339(), "actor": r.entry.actor,
                               "action": r.entry.action, "target": r.entry.target, "detail": r.entry.detail})
                    })
                    .collect(),
            ))
        }
        Request::RequestsList => {
            ctx.store
                .audit(ctx.audit("admin.requests.list", None, ""))
                .await?;
            let accounts = ctx.store.accounts().await?;
            let list = ctx.requests.all().await.map_err(request_error)?;
            Ok(Value::Array(
                list.iter()
                    .map(|r| {
                        let user = accounts
                            .iter()
                            .find(|a| a.id == r.user)
                            .map(|a| format!("{}@{}", a.handle, ctx.domain))
                            .unwrap_or_else(|| ERASED_PSEUDONYM.to_string());
                        json!({"id": r.id, "user": user, "kind": r.kind, "created": r.created.to_rfc3339(),
                               "status": if r.resolved.is_some() { "answered" } else { "open" }})
                    })
                    .collect(),
            ))
        }
        Request::RequestsShow { id } => {
            let r = ctx.requests.show(id).await.map_err(request_error)?;
            Ok(
                json!({"id": r.id, "kind": r.kind, "created": r.created.to_rfc3339(), "text": r.text,
                      "status": if r.resolved.is_some() { "answered" } else { "open" }, "answer": r.answer}),
            )
        }
        Request::RequestsResolve { id, answer } => {
            ctx.requests
                .resolve(id, &answer)
                .await
                .map_err(request_error)?;
            Ok(json!({"id": id, "status": "answered"}))
        }
        Request::PolicyPublish {
            version,
            effective,
            narrows_rights,
            text,
            en,
        } => {
            let effective = crate::time::parse_date(&effective).ok_or_else(|| {
                AdminError::Invalid(format!(
                    "--effective: `{effective}` is not a date YYYY-MM-DD"
                ))
            })?;
            let (v, notified) = ctx
                .policy
                .publish(Publication {
                    version,
                    effective,
                    narrows: narrows_rights,
                    zh: text,
                    en,
                })
                .await
                .map_err(|e| match e {
                    PolicyBookError::Store(s) => AdminError::Store(s),
                    other => AdminError::Invalid(other.to_string()),
                })?;
            Ok(json!({
                "version": v.version,
                "effective": v.effective.to_string(),
                "narrows_rights": v.narrows,
                "notified": notified,
            }))
        }
        Request::PolicyList => {
            let current = ctx.policy.current();
            Ok(Value::Array(
                ctx.policy
                    .all()
                    .iter()
                    .map(|v| {
                        json!({
                            "version": v.version,
                            "effective": v.effective.to_string(),
                            "published": v.published.map(|t| t.to_rfc3339()),
                            "narrows_rights": v.narrows,
                            "status": v.status(&current),
                        })
                    })
                    .collect(),
            ))
        }
        Request::IncidentNotify { title, body, users } => {
            let title = title.trim().to_string();
            if title.is_empty() || title.chars().count() > 200 {
                return Err(AdminError::Invalid(
                    "--title must be 1 to 200 characters".into(),
                ));
            }
            if body.trim().is_empty() || body.chars().count() > 10_000 {
                return Err(AdminError::Invalid(
                    "--body: the file must hold 1 to 10000 characters".into(),
                ));
            }
            let targets = match users {
                None => None,
                Some(lines) => {
                    let mut ids = Vec::new();
                    for (i, line) in lines.iter().enumerate() {
                        let line = line.trim();
                        if line.is_empty() || line.starts_with('#') {
                            continue;
                        }
                        let id = ctx.user(line).await.map_err(|e| {
                            AdminError::Invalid(format!("--users line {}: {e}", i + 1))
                        })?;
                        ids.push(id);
                    }
                    if ids.is_empty() {
                        return Err(AdminError::Invalid(
                            "--users: the file names no user".into(),
                        ));
                    }
                    ids.sort_unstable();
                    ids.dedup();
                    Some(ids)
                }
            };
            let scope = if targets.is_some() { "listed" } else { "all" };
            let notified = ctx
                .store
                .notify_users(
                    targets,
                    EventRecord::Notice {
                        kind: NoticeKind::Incident,
                        content: NoticeContent::Text {
                            title: title.clone(),
                            text: body.trim().to_string(),
                        },
                    },
                    ctx.audit("incident.notify", None, &format!("{scope} users: {title}")),
                )
                .await?;
            for (user, pos) in &notified {
                ctx.hub.publish(&[*user], *pos);
            }
            Ok(json!({"notified": notified.len()}))
        }
        Request::MinorsList => {
            let found = ctx.minors.findings().await.map_err(privacy_error)?;
            ctx.store
                .audit(ctx.audit("admin.minors.list", None, ""))
                .await?;
            Ok(Value::Array(
                found.iter().map(|f| finding_json(ctx, f)).collect(),
            ))
        }
        Request::MinorsPurge => {
            let purged = ctx.minors.purge().await.map_err(privacy_error)?;
            Ok(json!({
                "purged": purged.iter().map(|f| finding_json(ctx, f)).collect::<Vec<_>>(),
            }))
        }
        Request::UsersExport { .. } => Err(AdminError::Invalid(
            "users export streams an archive; use export_to".into(),
        )),
        Request::Status => ops::status(ctx).await,
        Request::PeersList => ops::peers(ctx).await,
        Request::PeersShow { domain } => ops::peer(ctx, &domain).await,
        Request::KeysList => ops::keys(ctx).await,
        Request::KeysRotate => ops::rotate(ctx).await,
        Request::Backup { .. } => Err(AdminError::Invalid(
            "backup streams an archive; use backup_drive".into(),
        )),
        Request::AuditVerify => match ctx.store.verify_audit().await? {
            AuditCheck::Intact { entries, head } => Ok(json!({
                "intact": true,
                "entries": entries,
                "head": head.iter().map(|b| format!("{b:02x}")).collect::<String>(),
            })),
            AuditCheck::Broken { at, reason } => Err(AdminError::Problem(format!(
                "audit log broken at entry {at}: {reason}"
            ))),
        },
    }
}

/// Progress of a long command: (done, total) in the command's own unit.
pub type Progress = tokio::sync::watch::Sender<(u64, u64)>;

/// Whether `req` reports progress ([`execute_reporting`]).
pub fn reports_progress(req: &Request) -> bool {
    matches!(
        req,
        Request::UsersErase { .. } | Request::RetentionRun { dry_run: false }
    )
}

/// Runs one command as [`execute`] does, telling `progress` how far a long one got: `users
/// erase` in erasure steps (of 6), `retention run` in rows removed (of those due).
pub async fn execute_reporting(
    ctx: &Context,
    req: Request,
    progress: &Progress,
) -> Result<Value, AdminError> {
    match req {
        Request::UsersErase { address, reason } => {
            erase(ctx, &address, &reason, Some(progress)).await
        }
        Request::RetentionRun { dry_run } => retention_run(ctx, dry_run, Some(progress)).await,
        other => execute(ctx, other).await,
    }
}

async fn retention_run(
    ctx: &Context,
    dry_run: bool,
    progress: Option<&Progress>,
) -> Result<Value, AdminError> {
    let counts = ctx
        .retention
        .run_reporting(dry_run, "admin", progress)
        .await?;
    Ok(json!({
        "dry_run": dry_run,
        "removed": retention::counts_json(&counts),
    }))
}

/// How many of an erasure's six steps are done at `phase`.
fn erasure_steps(phase: storage::Phase) -> u64 {
    use storage::Phase;
    match phase {
        Phase::Scheduled => 0,
        Phase::Begun => 1,
        Phase::PeersAsked => 2,
        Phase::RowsGone => 3,
        Phase::MembershipsGone => 4,
        Phase::MediaGone => 5,
        Phase::Done => 6,
    }
}

/// `users erase`: erases now; with `progress`, the erasure's record is read every 100 ms and
/// its step reported while the erasure runs.
async fn erase(
    ctx: &Context,
    address: &str,
    reason: &str,
    progress: Option<&Progress>,
) -> Result<Value, AdminError> {
    let reason = reason.trim();
    if reason.is_empty() || reason.len() > 500 {
        return Err(AdminError::Invalid(
            "--reason must be 1 to 500 characters".into(),
        ));
    }
    let user = ctx.user(address).await?;
    let work = ctx.erasure.erase_now(user, reason);
    let Some(progress) = progress else {
        return Ok(status_json(&work.await?));
    };
    let _ = progress.send((0, 6));
    tokio::pin!(work);
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(100));
    let s = loop {
        tokio::select! {
            done = &mut work => break done?,
            _ = tick.tick() => {
                if let Ok(Some(rec)) = ctx.store.erasure_of(user).await {
                    let _ = progress.send((erasure_steps(rec.phase), 6));
                }
            }
        }
    };
    let _ = progress.send((erasure_steps(s.record.phase), 6));
    Ok(status_json(&s))
}

fn finding_json(ctx: &Context, f: &Finding) -> Value {
    json!({
        "address": format!("{}@{}", f.handle, ctx.domain),
        "purposes": f.purposes.iter().map(|p| p.name()).collect::<Vec<_>>(),
        "fields": f.fields.iter().map(|x| x.name()).collect::<Vec<_>>(),
    })
}

fn privacy_error(e: PrivacyError) -> AdminError {
    match e {
        PrivacyError::Store(s) => AdminError::Store(s),
        PrivacyError::Invalid { .. } | PrivacyError::NotFound => AdminError::Invalid(e.to_string()),
        other => AdminError::Failed(other.to_string()),
    }
}

/// Exports `address`'s data (audited as the admin's), writing the archive's pieces to `sink`
/// as they are produced. Fails if the user is unknown or the archive could not be finished.
pub async fn export_to(
    ctx: &Context,
    address: &str,
    sink: &mut (impl tokio::io::AsyncWrite + Unpin),
) -> Result<(), AdminError> {
    use tokio::io::AsyncWriteExt;
    let user = ctx.user(address).await?;
    let (producer, mut rx) = ctx.exporter.archive(user, "admin", crate::policy::Lang::Zh);
    let consume = async {
        while let Some(chunk) = rx.recv().await {
            match chunk {
                Ok(b) => sink
                    .write_all(&b)
                    .await
                    .map_err(|e| AdminError::Failed(format!("writing the archive: {e}")))?,
                Err(e) => return Err(AdminError::Failed(format!("export stopped: {e}"))),
            }
        }
        sink.flush()
            .await
            .map_err(|e| AdminError::Failed(format!("writing the archive: {e}")))
    };
    let ((), done) = tokio::join!(producer, consume);
    done
}

fn request_error(e: RequestError) -> AdminError {
    match e {
        RequestError::Store(s) => AdminError::Store(s),
        RequestError::Crypto(c) => AdminError::Failed(c.to_string()),
        other => AdminError::Invalid(other.to_string()),
    }
}

/// The admin socket's path in a data directory.
pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SOCKET_NAME)
}
