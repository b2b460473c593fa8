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

fn request(command: Command) -> Result<AdminRequest, String> {
    Ok(match command {
        Command::Users { what } => match what {
            UsersCommand::List => AdminRequest::UsersList,
            UsersCommand::Show { address } => AdminRequest::UsersShow { address },
            UsersCommand::Erase { address, reason } => AdminRequest::UsersErase { address, reason },
            UsersCommand::ErasureStatus { address } => AdminRequest::ErasureStatus { address },
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

/// Shows that long work is going on, on a terminal only.
fn progress(what: &'static str) -> Option<tokio::task::JoinHandle<()>> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    Some(tokio::spawn(async move {
        let start = std::time::Instant::now();
        let frames = ['|', '/', '-', '\\'];
        for i in 0usize.. {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            eprint!(
                "\r{} {what}… {}s ",
                frames[i % 4],
                start.elapsed().as_secs()
            );
        }
    }))
}

async fn run(args: Args) -> ExitCode {
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
    let req = match request(args.command) {
        Ok(r) => r,
        Err(e) => return fail(2, e),
    };
    let long = matches!(
        req,
        AdminRequest::UsersErase { .. } | AdminRequest::RetentionRun { .. }
    );
    let socket = node::socket_path(config.data_dir());
    let spinner = if long { progress("working") } else { None };
    let outcome = match node::admin_call(&socket, &req).await {
        Ok(Some(result)) => {
            eprintln!("node-admin: node running; via {}", socket.display());
            result
        }
        Ok(None) => match AdminContext::offline(&config, Arc::new(SystemClock)).await {
            Ok(offline) => {
                eprintln!(
                    "node-admin: node stopped; working on {}",
                    config.data_dir().join("node.redb").display()
                );
                let result = node::admin_execute(&offline.context, req).await;
                let store = offline.context.store().clone();
                drop(offline);
                // Closing the store joins its writer thread: do it off the async threads.
                let _ = tokio::task::spawn_blocking(move || drop(store)).await;
                result
            }
            Err(OpenError::Missing(p)) => {
                return fail(
                    2,
                    format!("no database at {p} (check --data-dir or --config)"),
                );
            }
            Err(OpenError::InUse(p)) => {
                return fail(
                    3,
                    format!(
                        "{p} is in use by a running node, but its admin socket {} does not answer",
                        socket.display()
                    ),
                );
            }
            Err(e) => return fail(1, e),
        },
        Err(e) => {
            return fail(
                3,
                format!("the admin socket {} does not answer: {e}", socket.display()),
            );
        }
    };
    if let Some(s) = spinner {
        s.abort();
        eprint!("\r\x1b[K");
    }
    match outcome {
        Ok(v) => {
            let mut out = std::io::stdout().lock();
            let _ = if args.json {
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
                        .map(|r| r[i].chars().count())
                        .chain([c.len()])
                        .max()
                        .unwrap_or(0)
                })
                .collect();
            let line = |items: Vec<String>| {
                items
                    .iter()
                    .zip(&widths)
                    .map(|(s, w)| format!("{s:<w$}"))
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
