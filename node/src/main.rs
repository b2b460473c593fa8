//! `chat-node`: parses arguments, loads the configuration, sets up logging (text or JSON lines,
//! the level re-read from the configuration file on SIGHUP) and runs the node until SIGINT or
//! SIGTERM. Exit codes: 0 clean stop, 1 the node failed, 2 bad arguments or
//! configuration.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use mimalloc::MiMalloc;
use node::{Config, SystemClock};

/// mimalloc returns freed memory to the system; glibc's per-thread arenas kept hundreds of
/// MiB of it under load. It is built without transparent huge pages (`no_thp`): with them a
/// few touched bytes made 2 MiB resident, which doubled peak RSS for no measurable speed. And
/// it is mimalloc 2 (`v2`), which gives freed memory back after 10 ms where mimalloc 3 waits a
/// second: the default profile's peak RSS 38.5-39.0 -> 34.7-35.2 MiB (docs/PERFORMANCE.md).
#[global_allocator]
static ALLOCATOR: MiMalloc = MiMalloc;

#[derive(Parser)]
#[command(
    name = "chat-node",
    version,
    about = "A self-hostable, federated chat node"
)]
struct Args {
    /// Configuration file (TOML). Without it the built-in defaults apply.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Print the full, documented default configuration and exit.
    #[arg(long)]
    print_default_config: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Validate a configuration file and exit (0 valid, 2 invalid).
    CheckConfig {
        /// The file to check.
        file: PathBuf,
    },
    /// Write a self-signed development certificate for DOMAIN (cert.pem, key.pem) into DIR,
    /// for trying federation between test nodes; production uses real certificates.
    DevCert {
        /// The node's domain (`server.domain`).
        #[arg(long)]
        domain: String,
        /// The directory to write into (created if missing).
        #[arg(long)]
        out: PathBuf,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.print_default_config {
        let _ = std::io::stdout().write_all(node::DEFAULT_CONFIG_TOML.as_bytes());
        return ExitCode::SUCCESS;
    }
    if let Some(Command::CheckConfig { file }) = args.command {
        return match Config::load(&file).and_then(|c| c.check_files()) {
            Ok(_) => {
                let _ = writeln!(std::io::stdout(), "{}: valid", file.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("chat-node: {e}");
                ExitCode::from(2)
            }
        };
    }
    if let Some(Command::DevCert { domain, out }) = &args.command {
        if !federation::valid_domain(domain) {
            eprintln!("chat-node: --domain `{domain}` is not a lower-case DNS name");
            return ExitCode::from(2);
        }
        return match node::write_dev_cert(out, domain) {
            Ok(f) => {
                let _ = writeln!(
                    std::io::stdout(),
                    "wrote {} and {}",
                    f.cert.display(),
                    f.key.display()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("chat-node: {e}");
                ExitCode::from(1)
            }
        };
    }
    let config = match &args.config {
        Some(path) => match Config::load(path) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("chat-node: {e}");
                return ExitCode::from(2);
            }
        },
        None => Config::default(),
    };
    let log_level = init_logging(&config);
    // redb reads and password hashes run on the blocking pool; its default of 512 threads let
    // a busy node grow to hundreds of threads, each holding allocator and stack memory.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .max_blocking_threads(32)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("chat-node: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let signal = {
        let _inside = runtime.enter();
        if let Some(path) = args.config.clone() {
            reload_level_on_hangup(path, log_level);
        }
        shutdown_signal()
    };
    let result = runtime.block_on(node::run(config, Arc::new(SystemClock), signal, |n| {
        let _ = writeln!(
            std::io::stdout(),
            "chat-node serving {} (listening on {})",
            n.url(),
            n.local_addr()
        );
        let _ = std::io::stdout().flush();
    }));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chat-node: {e}");
            ExitCode::from(1)
        }
    }
}

/// Changes the log level of a running node (`None`: `RUST_LOG` is set and wins).
type LevelHandle = Option<
    tracing_subscriber::reload::Handle<tracing_subscriber::EnvFilter, tracing_subscriber::Registry>,
>;

fn init_logging(config: &Config) -> LevelHandle {
    use std::io::IsTerminal;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let from_env = tracing_subscriber::EnvFilter::try_from_default_env().ok();
    let overridden = from_env.is_some();
    let filter = from_env.unwrap_or_else(|| level_filter(config));
    let (filter, handle) = tracing_subscriber::reload::Layer::new(filter);
    let json = config.log.format == node::LogFormat::Json;
    // JSON: one object a line with the level, target, message and the event's fields; the
    // same events as the text form, so equally free of personal data.
    let json_layer = json.then(|| {
        tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
    });
    let text_layer = (!json).then(|| {
        tracing_subscriber::fmt::layer()
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(std::io::stderr)
    });
    tracing_subscriber::registry()
        .with(filter)
        .with(json_layer)
        .with(text_layer)
        .init();
    (!overridden).then_some(handle)
}

fn level_filter(config: &Config) -> tracing_subscriber::EnvFilter {
    tracing_subscriber::EnvFilter::new(config.log.level.0.as_str().to_lowercase())
}

/// On each SIGHUP, re-reads `log.level` from the configuration file at `path` and applies it.
/// Only the level changes; everything else in the file takes effect at the next start. A file
/// that no longer parses is reported and the level kept. Call inside the runtime.
fn reload_level_on_hangup(path: PathBuf, handle: LevelHandle) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hangup) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot install the SIGHUP handler; the log level is fixed until restart");
        return;
    };
    tokio::spawn(async move {
        while hangup.recv().await.is_some() {
            let Some(handle) = &handle else {
                tracing::warn!("SIGHUP: RUST_LOG is set and decides the log level; unchanged");
                continue;
            };
            match Config::load(&path) {
                Ok(c) => match handle.reload(level_filter(&c)) {
                    Ok(()) => tracing::warn!(level = %c.log.level.0, "SIGHUP: log level set"),
                    Err(e) => tracing::error!(error = %e, "SIGHUP: cannot change the log level"),
                },
                Err(e) => {
                    tracing::error!(error = %e, "SIGHUP: configuration not re-read; log level unchanged")
                }
            }
        }
    });
}

/// Completes on the first SIGINT or SIGTERM.
/// Installs the SIGINT/SIGTERM handlers now (before the node announces itself, so a signal
/// sent right after the "serving" line is never the default, fatal one) and returns a future
/// that completes on the first of them. Call inside the runtime.
fn shutdown_signal() -> impl Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let handlers = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    );
    async move {
        let (Ok(mut term), Ok(mut int)) = handlers else {
            eprintln!("chat-node: cannot install signal handlers; stop the node with SIGKILL");
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }
}
