//! `node-admin`: the operator's tool for a shanliao node. Parses arguments and runs the command
//! on the node's database through the node library (the same code the node runs).
//!
//! What exists: the audit log (`audit list`, `audit verify`), on a stopped node's data
//! directory. Talking to a running node over its Unix socket, retention, account deletion and
//! legal holds are not built yet; on a running node the tool says so and exits 3.
//!
//! Exit codes: 0 success; 1 the command ran and found a problem (a broken audit chain) or
//! failed; 2 bad arguments or no database; 3 the node is running.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use node::{AuditCheck, AuditRecord, Millis, Store, StoreError};
use serde_json::json;

/// The administration tool for a shanliao chat node.
#[derive(Parser)]
#[command(name = "node-admin", version)]
struct Args {
    /// The node's data directory (as `storage.data_dir` in its configuration).
    #[arg(long, default_value = "./data", global = true)]
    data_dir: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The tamper-evident audit log.
    Audit {
        #[command(subcommand)]
        what: AuditCommand,
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

async fn run(args: Args) -> ExitCode {
    let path = args.data_dir.join("node.redb");
    let store = match tokio::task::spawn_blocking(move || Store::open_existing(&path)).await {
        Ok(Ok(s)) => s,
        Ok(Err(StoreError::InUse(p))) => {
            return fail(
                3,
                format!(
                    "{p} is in use by a running node; stop the node first (working through a running \
                     node's socket is not built yet)"
                ),
            );
        }
        Ok(Err(StoreError::Missing(p))) => {
            return fail(2, format!("no database at {p} (check --data-dir)"));
        }
        Ok(Err(e)) => return fail(1, e),
        Err(e) => return fail(1, e),
    };
    let mut out = std::io::stdout().lock();
    let code = match args.command {
        Command::Audit {
            what: AuditCommand::List { since },
        } => {
            let since = match since
                .as_deref()
                .map(|s| node::parse_date(s).map(|d| d.start_millis()))
            {
                Some(None) => return fail(2, "--since must be a date YYYY-MM-DD"),
                Some(Some(m)) => Some(m),
                None => None,
            };
            match store.audit_entries(since).await {
                Ok(entries) => {
                    let _ = if args.json {
                        print_json(&mut out, &entries)
                    } else {
                        print_table(&mut out, &entries)
                    };
                    ExitCode::SUCCESS
                }
                Err(e) => fail(1, e),
            }
        }
        Command::Audit {
            what: AuditCommand::Verify,
        } => match store.verify_audit().await {
            Ok(AuditCheck::Intact { entries, head }) => {
                let head: String = head.iter().map(|b| format!("{b:02x}")).collect();
                let _ = if args.json {
                    writeln!(
                        out,
                        "{}",
                        json!({"intact": true, "entries": entries, "head": head})
                    )
                } else {
                    writeln!(out, "audit log intact: {entries} entries; head {head}")
                };
                ExitCode::SUCCESS
            }
            Ok(AuditCheck::Broken { at, reason }) => {
                if args.json {
                    let _ = writeln!(
                        out,
                        "{}",
                        json!({"intact": false, "at": at, "reason": reason})
                    );
                }
                fail(1, format!("audit log broken at entry {at}: {reason}"))
            }
            Err(e) => fail(1, e),
        },
    };
    drop(out);
    // Closing the store joins its writer thread: do it off the async threads.
    let _ = tokio::task::spawn_blocking(move || drop(store)).await;
    code
}

fn print_json(out: &mut impl Write, entries: &[AuditRecord]) -> std::io::Result<()> {
    let list: Vec<_> = entries
        .iter()
        .map(|r| {
            json!({"seq": r.seq, "at": r.entry.at.to_rfc3339(), "actor": r.entry.actor, "action": r.entry.action,
                   "target": r.entry.target, "detail": r.entry.detail})
        })
        .collect();
    writeln!(out, "{}", serde_json::Value::Array(list))
}

fn print_table(out: &mut impl Write, entries: &[AuditRecord]) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<6} {:<24} {:<6} {:<34} {:<19} DETAIL",
        "SEQ", "TIME", "ACTOR", "ACTION", "TARGET"
    )?;
    for r in entries {
        let e = &r.entry;
        writeln!(
            out,
            "{:<6} {:<24} {:<6} {:<34} {:<19} {}",
            r.seq,
            Millis::to_rfc3339(e.at),
            e.actor,
            e.action,
            e.target,
            e.detail
        )?;
    }
    Ok(())
}
