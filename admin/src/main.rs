//! `node-admin`: the operator's tool for a shanliao node. Parses arguments, then runs the
//! command through the node library: on a running node over its admin socket
//! (`<data_dir>/admin.sock`, mode 0600), on a stopped node directly on its database file. Both
//! run the same code (`node::admin_execute`); the tool says which mode it is in (on stderr).
//!
//! Exit codes: 0 success; 1 the command failed, or ran and found a problem (a broken audit
//! chain); 2 bad arguments, an unknown user, or no database; 3 the node is running but its
//! admin socket does not answer.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use node::{AdminContext, AdminError, AdminRequest, Config, OpenError, SystemClock};
use serde_json::Value;

/// The administration tool for a shanliao chat node.
#[derive(Parser)]
#[command(name = "node-admin", version)]
struct Args {
    /// The node's data directory (as `storage.data_dir` in its configuration).
    #[arg(long, default_value = "./data", global = true)]
    data_dir: PathBuf,
    /// The node's configuration file: with the node stopped, the tool needs it for the domain,
    /// peers, retention schedule and cooling-off period (without it: the built-in defaults).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Accounts on this node.
    Users {
        #[command(subcommand)]
        what: UsersCommand,
    },
    /// Legal holds: while one is set, neither retention nor erasure removes the user's data.
    LegalHold {
        #[command(subcommand)]
        what: HoldCommand,
    },
    /// The retention schedule (`[retention]` in the configuration).
    Retention {
        #[command(subcommand)]
        what: RetentionCommand,
    },
    /// The tamper-evident audit log.
    Audit {
        #[command(subcommand)]
        what: AuditCommand,
    },
    /// Users' requests and complaints.
    Requests {
        #[command(subcommand)]
        what: RequestsCommand,
    },
    /// Privacy policy versions.
    Policy {
        #[command(subcommand)]
        what: PolicyCommand,
    },
    /// Security incident notices to users.
    Incident {
        #[command(subcommand)]
        what: IncidentCommand,
    },
    /// Minors holding optional data without their guardian's consent.
    Minors {
        #[command(subcommand)]
        what: MinorsCommand,
    },
    /// The node at a glance: version, uptime, users, database size, queues, last retention run.
    Status,
    /// The federation peers: region, address, envelopes waiting.
    Peers {
        #[command(subcommand)]
        what: PeersCommand,
    },
    /// The node's federation signing keys (ids and validity), and rotating them.
    Keys {
        #[command(subcommand)]
        what: KeysCommand,
    },
    /// The configuration file (`--config`).
    Config {
        #[command(subcommand)]
        what: ConfigCommand,
    },
    /// Write an encrypted snapshot of the whole node to FILE (mode 0600), while it runs or
    /// stopped; or check one (`backup verify`); or write only the erasure records
    /// (`backup ledger`).
    #[command(args_conflicts_with_subcommands = true)]
    Backup {
        #[command(subcommand)]
        what: Option<BackupCommand>,
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Restore a backup into an empty data directory (`--data-dir`, or the one `--config`
    /// names). Users erased after the backup was taken are erased again before it is usable.
    #[command(group(clap::ArgGroup::new("later").required(true).args(["erasures", "no_later_erasures"])))]
    Restore {
        file: PathBuf,
        /// A later backup or erasure ledger of the same node (`backup ledger`): its erasures
        /// are re-applied.
        #[arg(long, value_name = "FILE")]
        erasures: Option<PathBuf>,
        /// Say that no user was erased since the backup was taken (nothing to re-apply).
        #[arg(long)]
        no_later_erasures: bool,
    },
}

#[derive(Subcommand)]
enum PeersCommand {
    List,
    Show { domain: String },
}

#[derive(Subcommand)]
enum KeysCommand {
    List,
    /// Sign with a new key from now on; the old one stays published until it expires, so
    /// what it signed still verifies at peers. Works on a running node.
    Rotate,
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Check the file as the node would read it: the first problem with its key and line.
    Check,
}

#[derive(Subcommand)]
enum BackupCommand {
    /// Read FILE through, checking every chunk, table count and the final hash.
    Verify { file: PathBuf },
    /// Write only the erasure records (which users were erased, when; no personal data) to
    /// FILE, for `restore --erasures`.
    Ledger {
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Publish a new version; every user gets a notice now. FILE is the Chinese text.
    Publish {
        file: PathBuf,
        #[arg(long)]
        version: String,
        /// The day it takes effect (YYYY-MM-DD, UTC); must be after today.
        #[arg(long)]
        effective: String,
        /// The version narrows users' rights: from its date, optional processing pauses for
        /// each user until they accept it.
        #[arg(long)]
        narrows_rights: bool,
        /// An English translation.
        #[arg(long, value_name = "FILE")]
        en: Option<PathBuf>,
    },
    /// Every version and its status.
    List,
}

#[derive(Subcommand)]
enum IncidentCommand {
    /// Leave an in-app notice for the affected users (recorded in the audit log).
    #[command(group(clap::ArgGroup::new("who").required(true).args(["all", "users"])))]
    Notify {
        #[arg(long)]
        title: String,
        /// A file holding the notice's text.
        #[arg(long, value_name = "FILE")]
        body: PathBuf,
        /// Every user of the node.
        #[arg(long)]
        all: bool,
        /// A file with one address (or handle) per line.
        #[arg(long, value_name = "FILE")]
        users: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum MinorsCommand {
    /// Minors with granted purposes or optional profile data their guardian has not agreed to.
    List,
    /// Erase that data: revoke those purposes (deleting what was derived for them) and clear
    /// those profile fields. Audited per user.
    Purge,
}

#[derive(Subcommand)]
enum RequestsCommand {
    /// Every request, without its text.
    List,
    /// One request with its text (audited).
    Show { id: u64 },
    /// Answer a request; the user gets a notice and sees the answer.
    Resolve {
        id: u64,
        #[arg(long)]
        answer: String,
    },
}

#[derive(Subcommand)]
enum UsersCommand {
    /// Every account, with its status.
    List,
    /// One account (the phone number masked). Recorded in the audit log.
    Show { address: String },
    /// Erase an account now: its data key first, then every row; peers that received its
    /// data are asked to erase it too. Waits while a legal hold is set.
    Erase {
        address: String,
        /// Why (recorded in the audit log; no personal data).
        #[arg(long)]
        reason: String,
    },
    /// Where an erasure stands, and which peers have acknowledged it.
    ErasureStatus { address: String },
    /// Write everything the node holds about a user to FILE (created with mode 0600; audited).
    Export {
        address: String,
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum HoldCommand {
    Set {
        address: String,
        /// The legal basis (recorded; not shown to the user).
        #[arg(long)]
        basis: String,
    },
    Clear {
        address: String,
    },
    List,
}

#[derive(Subcommand)]
enum RetentionCommand {
    /// Print the effective schedule.
    Show,
    /// Apply it now, and report what was removed per category.
    Run {
        /// Only count what would be removed.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// List entries, oldest first.
    List {
        /// Only entries from this date on (YYYY-MM-DD, UTC).
        #[arg(long)]
        since: Option<String>,
    },
    /// Check the hash chain and print its head (record the head elsewhere to detect a rewrite).
    Verify,
}

fn fail(code: u8, message: impl std::fmt::Display) -> ExitCode {
    eprintln!("node-admin: {message}");
    ExitCode::from(code)
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(1, format!("cannot start: {e}")),
    };
    runtime.block_on(run(args))
}

/// A UTF-8 text file of at most `max` bytes, or a message naming the option.
fn text_file(option: &str, path: &std::path::Path, max: usize) -> Result<String, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{option} {}: {e}", path.display()))?;
    if meta.len() > max as u64 {
        return Err(format!(
            "{option} {}: larger than {max} bytes",
            path.display()
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("{option} {}: {e}", path.display()))?;
    String::from_utf8(bytes).map_err(|_| format!("{option} {}: not UTF-8 text", path.display()))
}

fn request(command: Command) -> Result<AdminRequest, String> {
    Ok(match command {
        Command::Policy { what } => match what {
            PolicyCommand::Publish {
                file,
                version,
                effective,
                narrows_rights,
                en,
            } => AdminRequest::PolicyPublish {
                version,
                effective,
                narrows_rights,
                text: text_file("FILE", &file, node::POLICY_MAX_BYTES)?,
                en: en
                    .map(|p| text_file("--en", &p, node::POLICY_MAX_BYTES))
                    .transpose()?,
            },
            PolicyCommand::List => AdminRequest::PolicyList,
        },
        Command::Incident {
            what:
                IncidentCommand::Notify {
                    title,
                    body,
                    all: _,
                    users,
                },
        } => AdminRequest::IncidentNotify {
            title,
            body: text_file("--body", &body, 64 * 1024)?,
            users: users
                .map(|p| text_file("--users", &p, 1 << 20))
                .transpose()?
                .map(|t| t.lines().map(str::to_string).collect()),
        },
        Command::Backup { .. } | Command::Restore { .. } | Command::Config { .. } => {
            return Err("this command does not run as one request".into());
        }
        Command::Status => AdminRequest::Status,
        Command::Peers { what } => match what {
            PeersCommand::List => AdminRequest::PeersList,
            PeersCommand::Show { domain } => AdminRequest::PeersShow { domain },
        },
        Command::Keys { what } => match what {
            KeysCommand::List => AdminRequest::KeysList,
            KeysCommand::Rotate => AdminRequest::KeysRotate,
        },
        Command::Minors { what } => match what {
            MinorsCommand::List => AdminRequest::MinorsList,
            MinorsCommand::Purge => AdminRequest::MinorsPurge,
        },
        Command::Users { what } => match what {
            UsersCommand::List => AdminRequest::UsersList,
            UsersCommand::Show { address } => AdminRequest::UsersShow { address },
            UsersCommand::Erase { address, reason } => AdminRequest::UsersErase { address, reason },
            UsersCommand::ErasureStatus { address } => AdminRequest::ErasureStatus { address },
            UsersCommand::Export { address, .. } => AdminRequest::UsersExport { address },
        },
        Command::LegalHold { what } => match what {
            HoldCommand::Set { address, basis } => AdminRequest::HoldSet { address, basis },
            HoldCommand::Clear { address } => AdminRequest::HoldClear { address },
            HoldCommand::List => AdminRequest::HoldList,
        },
        Command::Retention { what } => match what {
            RetentionCommand::Show => AdminRequest::RetentionShow,
            RetentionCommand::Run { dry_run } => AdminRequest::RetentionRun { dry_run },
        },
        Command::Requests { what } => match what {
            RequestsCommand::List => AdminRequest::RequestsList,
            RequestsCommand::Show { id } => AdminRequest::RequestsShow { id },
            RequestsCommand::Resolve { id, answer } => AdminRequest::RequestsResolve { id, answer },
        },
        Command::Audit { what } => match what {
            AuditCommand::List { since } => {
                let since = match since {
                    None => None,
                    Some(s) => Some(
                        node::parse_date(&s)
                            .ok_or("--since must be a date YYYY-MM-DD")?
                            .start_millis()
                            .0,
                    ),
                };
                AdminRequest::AuditList { since }
            }
            AuditCommand::Verify => AdminRequest::AuditVerify,
        },
    })
}

async fn run(args: Args) -> ExitCode {
    if let Command::Config {
        what: ConfigCommand::Check,
    } = &args.command
    {
        let Some(path) = &args.config else {
            return fail(2, "config check needs --config FILE");
        };
        return match Config::load(path) {
            Ok(c) => finish(
                Ok(serde_json::json!({
                    "config": path.display().to_string(),
                    "valid": true,
                    "domain": c.server.domain.as_str(),
                    "data_dir": c.data_dir().display().to_string(),
                    "peers": c.federation.peers.len(),
                })),
                args.json,
            ),
            Err(e) => fail(2, e),
        };
    }
    let config = match &args.config {
        Some(p) => match Config::load(p) {
            Ok(c) => c,
            Err(e) => return fail(2, e),
        },
        None => {
            let text = format!(
                "[storage]\ndata_dir = {}\n",
                toml_string(&args.data_dir.display().to_string())
            );
            match Config::parse(&text, "--data-dir") {
                Ok(c) => c,
                Err(e) => return fail(2, e),
            }
        }
    };
    if let Command::Users {
        what: UsersCommand::Export { address, out },
    } = &args.command
    {
        return export(&config, address, out, args.json).await;
    }
    match &args.command {
        Command::Backup { what: None, out } => {
            let Some(out) = out else {
                return fail(2, "backup needs --out FILE (or: backup verify FILE)");
            };
            return backup(&config, node::ArchiveKind::Backup, out, args.json).await;
        }
        Command::Backup {
            what: Some(BackupCommand::Ledger { out }),
            ..
        } => return backup(&config, node::ArchiveKind::ErasureLedger, out, args.json).await,
        Command::Backup {
            what: Some(BackupCommand::Verify { file }),
            ..
        } => {
            let outcome = node::archive_key(&config).and_then(|k| node::verify_archive(file, &k));
            return finish(outcome, args.json);
        }
        Command::Restore {
            file,
            erasures,
            no_later_erasures: _,
        } => {
            let bar = Bar::new("restore", "rows", args.json);
            let shown = bar.clone();
            let progress = Box::new(move |d, t| shown.set(d, t));
            let outcome = node::restore(
                &config,
                file,
                erasures.as_deref(),
                Arc::new(SystemClock),
                progress,
            )
            .await;
            bar.clear();
            return finish(outcome, args.json);
        }
        _ => {}
    }
    let req = match request(args.command) {
        Ok(r) => r,
        Err(e) => return fail(2, e),
    };
    let bar = if node::admin_reports_progress(&req) {
        match &req {
            AdminRequest::UsersErase { .. } => Bar::new("erasing", "steps", args.json),
            _ => Bar::new("retention", "rows", args.json),
        }
    } else {
        Bar::none()
    };
    let socket = node::socket_path(config.data_dir());
    let outcome = match node::admin_call_reporting(&socket, &req, |d, t| bar.set(d, t)).await {
        Ok(Some(result)) => {
            say_running(&socket);
            result
        }
        Ok(None) => match AdminContext::offline(&config, Arc::new(SystemClock)).await {
            Ok(offline) => {
                say_stopped(&config);
                let (tx, mut rx) = tokio::sync::watch::channel((0u64, 0u64));
                let result = {
                    let work = node::admin_execute_reporting(&offline.context, req, &tx);
                    tokio::pin!(work);
                    loop {
                        tokio::select! {
                            done = &mut work => break done,
                            Ok(()) = rx.changed() => {
                                let (d, t) = *rx.borrow_and_update();
                                bar.set(d, t);
                            }
                        }
                    }
                };
                let store = offline.context.store().clone();
                drop(offline);
                // Closing the store joins its writer thread: do it off the async threads.
                let _ = tokio::task::spawn_blocking(move || drop(store)).await;
                result
            }
            Err(OpenError::Missing(p)) => {
                bar.clear();
                return fail(
                    2,
                    format!("no database at {p} (check --data-dir or --config)"),
                );
            }
            Err(OpenError::InUse(p)) => {
                bar.clear();
                return fail(
                    3,
                    format!(
                        "{p} is in use by a running node, but its admin socket {} does not answer",
                        socket.display()
                    ),
                );
            }
            Err(e) => {
                bar.clear();
                return fail(1, e);
            }
        },
        Err(e) => {
            bar.clear();
            return fail(
                3,
                format!("the admin socket {} does not answer: {e}", socket.display()),
            );
        }
    };
    bar.clear();
    finish(outcome, args.json)
}

/// Prints a command's result (JSON or a table) and gives its exit code.
fn finish(outcome: Result<Value, AdminError>, json: bool) -> ExitCode {
    match outcome {
        Ok(v) => {
            let mut out = std::io::stdout().lock();
            let _ = if json {
                writeln!(out, "{v}")
            } else {
                render(&mut out, &v)
            };
            ExitCode::SUCCESS
        }
        Err(AdminError::Invalid(m)) => fail(2, m),
        Err(e) => fail(1, e),
    }
}

/// `<out>.partial`, created new with mode 0600, where an archive is written until it is whole.
fn create_partial(out: &std::path::Path) -> Result<(PathBuf, std::fs::File), ExitCode> {
    use std::os::unix::fs::OpenOptionsExt;
    let partial = node::partial_path(out);
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&partial)
    {
        Ok(f) => Ok((partial, f)),
        Err(e) => Err(fail(2, format!("--out {}: {e}", partial.display()))),
    }
}

/// `users export`: the archive goes to `<out>.partial` (mode 0600) and is renamed to `out` only
/// once it is complete and on disk, so a failed export never leaves a file that looks whole.
async fn export(config: &Config, address: &str, out: &std::path::Path, json: bool) -> ExitCode {
    if out.exists() {
        return fail(2, format!("--out {}: the file exists", out.display()));
    }
    let (partial, file) = match create_partial(out) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let socket = node::socket_path(config.data_dir());
    // The archive's size is not known before it is finished: the bytes received so far.
    let bar = Bar::bytes("exporting", json);
    let mut sync_file = file.try_clone();
    let result: Result<(), AdminError> =
        match node::admin_call_export(&socket, address, |b| match &mut sync_file {
            Ok(f) => {
                bar.add(b.len() as u64);
                f.write_all(b)
            }
            Err(e) => Err(std::io::Error::new(e.kind(), e.to_string())),
        })
        .await
        {
            Ok(Some(r)) => {
                say_running(&socket);
                r
            }
            Ok(None) => match AdminContext::offline(config, Arc::new(SystemClock)).await {
                Ok(offline) => {
                    say_stopped(config);
                    let r = match file.try_clone() {
                        Ok(f) => {
                            let mut f = tokio::fs::File::from_std(f);
                            node::admin_export_to(&offline.context, address, &mut f).await
                        }
                        Err(e) => Err(AdminError::Failed(format!("{}: {e}", partial.display()))),
                    };
                    let store = offline.context.store().clone();
                    drop(offline);
                    let _ = tokio::task::spawn_blocking(move || drop(store)).await;
                    r
                }
                Err(e) => Err(AdminError::Failed(e.to_string())),
            },
            Err(e) => Err(AdminError::Failed(format!(
                "the admin socket {} does not answer: {e}",
                socket.display()
            ))),
        };
    bar.clear();
    let finished = result.and_then(|()| {
        file.sync_all()
            .map_err(|e| AdminError::Failed(format!("writing {}: {e}", partial.display())))?;
        if !archive_is_complete(&partial) {
            return Err(AdminError::Failed("the export was cut short".into()));
        }
        std::fs::rename(&partial, out)
            .map_err(|e| AdminError::Failed(format!("--out {}: {e}", out.display())))
    });
    match finished {
        Ok(()) => {
            let size = std::fs::metadata(out).map(|m| m.len()).unwrap_or(0);
            let _ = writeln!(
                std::io::stdout().lock(),
                "wrote {size} bytes to {}",
                out.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            match e {
                AdminError::Invalid(m) => fail(2, m),
                other => fail(1, other),
            }
        }
    }
}

/// A progress bar on stderr for long work reporting (done, total) — drawn by `indicatif`, only
/// when stderr is a terminal and the output is not `--json`.
#[derive(Clone)]
struct Bar(Option<indicatif::ProgressBar>);

impl Bar {
    fn none() -> Bar {
        Bar(None)
    }

    fn shown(json: bool) -> bool {
        !json && std::io::stderr().is_terminal()
    }

    /// A bar of `unit`s done out of a total.
    fn new(what: &'static str, unit: &'static str, json: bool) -> Bar {
        if !Bar::shown(json) {
            return Bar::none();
        }
        let template = format!("{{msg}} [{{bar:30}}] {{percent:>3}}% {{pos}}/{{len}} {unit}");
        let style = indicatif::ProgressStyle::with_template(&template)
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("#>-");
        let b = indicatif::ProgressBar::new(0).with_style(style);
        b.set_message(what);
        Bar(Some(b))
    }

    /// A counter of bytes for work whose total is not known.
    fn bytes(what: &'static str, json: bool) -> Bar {
        if !Bar::shown(json) {
            return Bar::none();
        }
        let style =
            indicatif::ProgressStyle::with_template("{spinner} {msg} {bytes} ({bytes_per_sec})")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner());
        let b = indicatif::ProgressBar::new_spinner().with_style(style);
        b.set_message(what);
        b.enable_steady_tick(std::time::Duration::from_millis(200));
        Bar(Some(b))
    }

    fn set(&self, done: u64, total: u64) {
        if let Some(b) = &self.0 {
            b.set_length(total.max(done));
            b.set_position(done);
        }
    }

    fn add(&self, n: u64) {
        if let Some(b) = &self.0 {
            b.inc(n);
        }
    }

    fn clear(&self) {
        if let Some(b) = &self.0 {
            b.finish_and_clear();
        }
    }
}

/// `backup --out` / `backup ledger --out`: the archive goes to `<out>.partial` (mode 0600),
/// is read back and checked in full, and only then renamed to `out`.
async fn backup(
    config: &Config,
    kind: node::ArchiveKind,
    out: &std::path::Path,
    json: bool,
) -> ExitCode {
    if out.exists() {
        return fail(2, format!("--out {}: the file exists", out.display()));
    }
    // The key is needed to check the archive afterwards: fail before any work without it.
    let key = match node::archive_key(config) {
        Ok(k) => k,
        Err(e) => return fail(2, e),
    };
    let (partial, file) = match create_partial(out) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let mut writer = std::io::BufWriter::with_capacity(256 * 1024, file);
    let bar = Bar::new("backup", "rows", json);
    let socket = node::socket_path(config.data_dir());
    let called =
        node::call_backup(&socket, kind, |b| writer.write_all(b), |d, t| bar.set(d, t)).await;
    let result = match called {
        Ok(Some(r)) => {
            say_running(&socket);
            r
        }
        Ok(None) => match AdminContext::offline(config, Arc::new(SystemClock)).await {
            Ok(offline) => {
                say_stopped(config);
                let r = node::backup_drive(
                    &offline.context,
                    kind,
                    |b| writer.write_all(b),
                    |d, t| bar.set(d, t),
                )
                .await;
                let store = offline.context.store().clone();
                drop(offline);
                let _ = tokio::task::spawn_blocking(move || drop(store)).await;
                r
            }
            Err(OpenError::Missing(p)) => Err(AdminError::Invalid(format!(
                "no database at {p} (check --data-dir or --config)"
            ))),
            Err(e) => Err(AdminError::Failed(e.to_string())),
        },
        Err(e) => Err(AdminError::Failed(format!(
            "the admin socket {} does not answer: {e}",
            socket.display()
        ))),
    };
    bar.clear();
    let finished = result.and_then(|mut v| {
        let file = writer
            .into_inner()
            .map_err(|e| AdminError::Failed(format!("writing {}: {e}", partial.display())))?;
        file.sync_all()
            .map_err(|e| AdminError::Failed(format!("writing {}: {e}", partial.display())))?;
        let checked = node::verify_archive(&partial, &key)?;
        std::fs::rename(&partial, out)
            .map_err(|e| AdminError::Failed(format!("--out {}: {e}", out.display())))?;
        if let Some(m) = v.as_object_mut() {
            m.insert("file".into(), Value::String(out.display().to_string()));
            m.insert(
                "bytes".into(),
                std::fs::metadata(out).map(|m| m.len()).unwrap_or(0).into(),
            );
            m.insert("created".into(), checked["created"].clone());
            m.insert("verified".into(), Value::Bool(true));
        }
        Ok(v)
    });
    if finished.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    finish(finished, json)
}

/// Whether the archive ends as a finished one does.
fn archive_is_complete(path: &std::path::Path) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    const END: &[u8] = b",\"complete\":true}\n";
    let Ok(mut f) = std::fs::File::open(path) else {
        return false;
    };
    let mut tail = [0u8; END.len()];
    f.seek(SeekFrom::End(-(END.len() as i64))).is_ok()
        && f.read_exact(&mut tail).is_ok()
        && tail == END
}

fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// How many terminal columns `s` takes (a Chinese character takes two).
fn width(s: &str) -> usize {
    unicode_width::UnicodeWidthStr::width(s)
}

fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(cell).collect::<Vec<_>>().join(","),
        Value::Object(_) => v.to_string(),
        other => other.to_string(),
    }
}

/// A human table: a list of objects as columns, an object as `key: value` lines; the audit
/// verification as one sentence.
fn render(out: &mut impl Write, v: &Value) -> std::io::Result<()> {
    if let (Some(true), Some(n), Some(head)) = (
        v.get("intact").and_then(Value::as_bool),
        v.get("entries"),
        v.get("head").and_then(Value::as_str),
    ) {
        return writeln!(out, "audit log intact: {n} entries; head {head}");
    }
    // A command that changed something says what, in a sentence, before the details.
    if let Some(Value::String(summary)) = v.get("summary") {
        writeln!(out, "{summary}")?;
        if let Value::Object(m) = v {
            let mut rest = m.clone();
            rest.remove("summary");
            return render(out, &Value::Object(rest));
        }
    }
    match v {
        Value::Array(rows) => {
            let mut cols: Vec<String> = Vec::new();
            for r in rows {
                if let Value::Object(m) = r {
                    for k in m.keys() {
                        if !cols.contains(k) {
                            cols.push(k.clone());
                        }
                    }
                }
            }
            if cols.is_empty() {
                cols.push("(none)".into());
            }
            // The audit list keeps its historical column order.
            if cols.contains(&"seq".to_string()) {
                cols = ["seq", "at", "actor", "action", "target", "detail"]
                    .iter()
                    .map(|s| s.to_string())
                    .collect();
            }
            let cells: Vec<Vec<String>> = rows
                .iter()
                .map(|r| cols.iter().map(|c| cell(&r[c.as_str()])).collect())
                .collect();
            let widths: Vec<usize> = cols
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    cells
                        .iter()
                        .map(|r| width(&r[i]))
                        .chain([width(c)])
                        .max()
                        .unwrap_or(0)
                })
                .collect();
            let line = |items: Vec<String>| {
                items
                    .iter()
                    .zip(&widths)
                    .map(|(s, w)| format!("{s}{}", " ".repeat(w - width(s))))
                    .collect::<Vec<_>>()
                    .join("  ")
                    .trim_end()
                    .to_string()
            };
            writeln!(
                out,
                "{}",
                line(cols.iter().map(|c| c.to_uppercase()).collect())
            )?;
            for r in cells {
                writeln!(out, "{}", line(r))?;
            }
            Ok(())
        }
        Value::Object(m) => {
            for (k, v) in m {
                match v {
                    Value::Array(items)
                        if items.iter().all(Value::is_object) && !items.is_empty() =>
                    {
                        writeln!(out, "{k}:")?;
                        render(out, v)?;
                    }
                    Value::Object(_) => {
                        writeln!(out, "{k}:")?;
                        render(out, v)?;
                    }
                    other => writeln!(out, "{k}: {}", cell(other))?,
                }
            }
            Ok(())
        }
        other => writeln!(out, "{}", cell(other)),
    }
}

/// Tells (on stderr) that the running node answers through its socket.
fn say_running(socket: &std::path::Path) {
    eprintln!("node-admin: node running; via {}", socket.display());
}

/// Tells (on stderr) that no node answers and the tool works on its files itself.
fn say_stopped(config: &Config) {
    eprintln!(
        "node-admin: node stopped; working on {}",
        config.data_dir().join(node::DB_FILE).display()
    );
}
