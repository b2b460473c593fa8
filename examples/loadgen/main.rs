//! `loadgen`: the group-chat workload of `shared/bench/synapse` run against a shanliao node.
//!
//! It starts `chat-node` itself (on 127.0.0.1, a fresh temporary data directory), so it can read
//! the server's peak memory and CPU from `/proc`; then: setup (N users, one group, S observers
//! holding WebSocket event streams), warm-up W messages, load M messages from C closed-loop
//! senders (message k from user k mod N), a quiet-room probe of P messages one at a time, and a
//! bounded wait for every observer to have every message. It prints a table, or JSON with
//! `--json`; a terminal sees a progress bar while messages are sent (`progress`). With
//! `--runs N` it repeats the workload against fresh nodes and adds each figure's median and
//! range (`summary`). It speaks to the node through `shanliao-client`, one keep-alive connection
//! per sender. Only loopback is ever contacted, and every loop is bounded. The other modes
//! (`--federation`, `--purge-fill`, `--idle-ws`, `--federated-photo` in `media`) each start the
//! nodes they need and report JSON.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use futures_util::StreamExt;
use serde_json::{Value, json};
use shanliao_client::events::{self, EventStream, Frame};
use shanliao_client::{Api, ClientError, Connection, Endpoint, NewConversation, Registration};

mod jpeg;
mod media;
mod progress;
mod summary;
mod tap;

use progress::Progress;

/// Every simulated user connects from loopback: the per-client request limits would measure
/// themselves, not the node.
const NO_RATE_LIMITS: &str = "[rate_limit]\nregister_per_hour = 0\nlogin_per_minute = 0\n\
     public_per_minute = 0\nfederation_per_minute = 0\ntoken_lookups_per_minute = 0\n";

#[derive(Parser, Debug, Clone)]
#[command(
    name = "loadgen",
    about = "Group-chat load against a shanliao node (the Synapse harness's workload)"
)]
struct Args {
    /// The chat-node binary to start.
    #[arg(long, default_value = "target/release/chat-node")]
    node_bin: PathBuf,
    /// Users (N).
    #[arg(short = 'N', long, default_value_t = 20)]
    users: usize,
    /// Observers holding event streams (S), users 0..S-1.
    #[arg(short = 'S', long, default_value_t = 4)]
    observers: usize,
    /// Warm-up messages (W), not measured.
    #[arg(short = 'W', long, default_value_t = 100)]
    warmup: usize,
    /// Load-phase messages (M).
    #[arg(short = 'M', long, default_value_t = 1000)]
    messages: usize,
    /// Concurrent closed-loop senders (C).
    #[arg(short = 'C', long, default_value_t = 10)]
    concurrency: usize,
    /// Quiet-room probe messages (P).
    #[arg(short = 'P', long, default_value_t = 50)]
    probe: usize,
    /// Milliseconds between probe messages.
    #[arg(long, default_value_t = 200)]
    probe_interval_ms: u64,
    /// Bytes in each message body.
    #[arg(long, default_value_t = 64)]
    body_bytes: usize,
    /// The heavy profile: M = 100000, C = 64 (other values as given).
    #[arg(long)]
    heavy: bool,
    /// Before the workload, measure a null-request baseline: C keep-alive connections doing
    /// GET /health in a closed loop for this many seconds (0: skip).
    #[arg(long, default_value_t = 0)]
    null_secs: u64,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Give up on a run after this many seconds.
    #[arg(long, default_value_t = 600)]
    hard_timeout_s: u64,
    /// Run the chosen workload this many times, each against a fresh node, and report every
    /// run and a summary: each figure's median, minimum and maximum (1 to 99).
    #[arg(long, default_value_t = 1)]
    runs: usize,
    /// Retention under load instead of the chat workload: store this many messages, all past
    /// `retention.messages_max_days`, then send with C senders while `node-admin retention
    /// run` purges them, and report sends/s before and during the purge (0: off).
    #[arg(long, default_value_t = 0)]
    purge_fill: usize,
    /// Federation: the senders are users of node A, the group is hosted on node B, S observers
    /// on each node; reports accepted msg/s at A and delivery latency on both nodes.
    #[arg(long)]
    federation: bool,
    /// With --federation: the nodes' `federation.pace_depth` (envelopes a peer's queue may hold
    /// before a send's answer waits; 0: no pacing). Without it the node's default applies.
    #[arg(long)]
    pace_depth: Option<u64>,
    /// Idle event streams: open this many WebSockets (spread over the N users), hold them, and
    /// report the server's memory per connection (0: off).
    #[arg(long, default_value_t = 0)]
    idle_ws: usize,
    /// One photo of this many bytes (a generated JPEG) sent into a group hosted on b.test with
    /// members on a.test (the sender), b.test and c.test; reports per node the time until it
    /// serves the photo, its CPU and its bytes on the wire (0: off).
    #[arg(long, default_value_t = 0)]
    federated_photo: usize,
    /// The node-admin binary (for --purge-fill).
    #[arg(long, default_value = "target/release/node-admin")]
    admin_bin: PathBuf,
}

impl Args {
    /// Whether the workload is the group chat (reported as a table), not one of the special
    /// modes (`--federation`, `--purge-fill`, `--idle-ws`, `--federated-photo`, which report
    /// JSON).
    fn chat(&self) -> bool {
        !(self.federation || self.purge_fill > 0 || self.idle_ws > 0 || self.federated_photo > 0)
    }
}

/// A database file's size two ways (see [`NodeProc::db_bytes`]).
#[derive(Debug, Clone, Copy, Default)]
struct DbBytes {
    length: u64,
    allocated: u64,
}

/// A running node started by the load generator.
struct NodeProc {
    child: Child,
    port: u16,
    pid: u32,
    dir: tempfile::TempDir,
    cert: PathBuf,
}

impl NodeProc {
    fn start(bin: &Path) -> Result<NodeProc> {
        Self::start_in(bin, tempfile::tempdir()?, "")
    }

    /// Starts a node on `dir` (reused if it has data), with `extra` configuration.
    fn start_in(bin: &Path, dir: tempfile::TempDir, extra: &str) -> Result<NodeProc> {
        let text = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[storage]\ndata_dir = \"{}\"\n[log]\nlevel = \"warn\"\n{NO_RATE_LIMITS}{extra}",
            dir.path().join("data").display()
        );
        let cert = dir.path().join("data/tls/cert.pem");
        Self::start_config(bin, dir, &text, cert)
    }

    /// Starts a node with exactly this configuration text.
    fn start_config(
        bin: &Path,
        dir: tempfile::TempDir,
        text: &str,
        cert: PathBuf,
    ) -> Result<NodeProc> {
        let config = dir.path().join("node.toml");
        std::fs::write(&config, text)?;
        let mut child = Command::new(bin)
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| {
                format!(
                    "starting {} (build it with cargo build --release)",
                    bin.display()
                )
            })?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().context("stdout")?).read_line(&mut line)?;
        let port = line
            .rsplit(':')
            .next()
            .and_then(|p| p.trim().trim_end_matches(')').parse().ok())
            .with_context(|| format!("unexpected first line from chat-node: {line:?}"))?;
        let pid = child.id();
        Ok(NodeProc {
            child,
            port,
            pid,
            dir,
            cert,
        })
    }

    fn cert(&self) -> PathBuf {
        self.cert.clone()
    }

    /// The database file's length, and the bytes the file system has allocated to it. They
    /// differ when redb grows the file: it extends the length ahead of use (doubling while the
    /// file is small), and the extension is a hole that takes no disk until pages are written.
    fn db_bytes(&self) -> DbBytes {
        std::fs::metadata(self.dir.path().join("data/node.redb"))
            .map(|m| DbBytes {
                length: m.len(),
                allocated: m.blocks() * 512,
            })
            .unwrap_or_default()
    }

    fn status_kib(&self, key: &str) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap_or_default();
        s.lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    /// User + system CPU seconds used so far.
    fn cpu_secs(&self) -> f64 {
        cpu_secs_of(&self.pid.to_string())
    }

    fn stop(&mut self) -> Result<()> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        for _ in 0..200 {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.child.kill()?;
        bail!("chat-node did not stop within 10 s of SIGTERM")
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// User + system CPU seconds used so far by process `pid` (`self`: this one).
fn cpu_secs_of(pid: &str) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = s.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    ticks / clock_ticks()
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// The node at `port` on loopback, trusting its certificate `cert`.
fn endpoint(port: u16, cert: &Path) -> Result<Endpoint> {
    Ok(Endpoint::new(
        std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        cert,
    )?)
}

/// Send-start times of messages in flight, by mark; and delivery latencies per phase.
#[derive(Default)]
struct Book {
    starts: Mutex<HashMap<String, (Instant, usize, &'static str)>>,
    delivered: Mutex<HashMap<&'static str, Vec<f64>>>,
    pairs: AtomicU64,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn stats(mut v: Vec<f64>) -> Value {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    json!({"n": v.len(), "p50_ms": percentile(&v, 50.0), "p95_ms": percentile(&v, 95.0), "p99_ms": percentile(&v, 99.0),
           "max_ms": v.last().copied().unwrap_or(f64::NAN)})
}

fn body_text(mark: &str, bytes: usize) -> String {
    let mut s = format!("{mark} ");
    while s.len() < bytes {
        s.push('x');
    }
    s
}

#[tokio::main]
async fn main() -> Result<()> {
    let mut args = Args::parse();
    if args.heavy {
        args.messages = 100_000;
        args.concurrency = 64;
    }
    if args.users < 2 || args.observers == 0 || args.observers > args.users || args.concurrency == 0
    {
        bail!("need at least 2 users, 1 to N observers and 1 sender");
    }
    if !(1..=99).contains(&args.runs) {
        bail!("--runs must be between 1 and 99, not {}", args.runs);
    }
    let photo = if args.federated_photo > 0 {
        progress(&args, "generating the photo");
        Some(jpeg::photo_of_size(args.federated_photo, 1)?)
    } else {
        None
    };
    let mut reports = Vec::with_capacity(args.runs);
    for i in 0..args.runs {
        if args.runs > 1 {
            progress(&args, &format!("run {} of {}", i + 1, args.runs));
        }
        reports.push(
            one_run(&args, photo.as_ref())
                .await
                .with_context(|| format!("run {}", i + 1))?,
        );
    }
    let report = if reports.len() == 1 {
        reports.remove(0)
    } else {
        let summary = summary::summarize(&reports).unwrap_or(Value::Null);
        json!({"runs": reports, "summary": summary})
    };
    if args.json || !args.chat() {
        writeln!(
            std::io::stdout(),
            "{}",
            serde_json::to_string_pretty(&report)?
        )?;
    } else if let Some(runs) = report.get("runs").and_then(Value::as_array) {
        for (i, run) in runs.iter().enumerate() {
            writeln!(std::io::stdout(), "\nrun {}", i + 1)?;
            print_table(run);
        }
        writeln!(
            std::io::stdout(),
            "\nmedian (min-max) of {} runs",
            runs.len()
        )?;
        print_table(&report["summary"]);
    } else {
        print_table(&report);
    }
    Ok(())
}

/// One run of the chosen workload against fresh nodes; its report.
async fn one_run(args: &Args, photo: Option<&jpeg::Photo>) -> Result<Value> {
    let deadline = Instant::now() + Duration::from_secs(args.hard_timeout_s);
    let limit = Duration::from_secs(args.hard_timeout_s);
    if !args.chat() {
        let work = async {
            if let Some(photo) = photo {
                media::federated_photo(args, photo).await
            } else if args.federation {
                federation_load(args, deadline).await
            } else if args.idle_ws > 0 {
                idle_websockets(args).await
            } else {
                purge_under_load(args, deadline).await
            }
        };
        return tokio::time::timeout(limit, work)
            .await
            .context("hard timeout")?;
    }
    let mut node = NodeProc::start(&args.node_bin)?;
    let result = tokio::time::timeout(limit, run(args, &node, deadline)).await;
    let (db_end, rss) = (
        node.db_bytes(),
        (node.status_kib("VmHWM:"), node.status_kib("VmRSS:")),
    );
    node.stop()?;
    let mut report = result.context("hard timeout")??;
    report["server"]["peak_rss_kib"] = json!(rss.0);
    report["server"]["rss_at_end_kib"] = json!(rss.1);
    report["disk"]["db_bytes_end"] = json!(db_end.length);
    report["disk"]["db_allocated_bytes_end"] = json!(db_end.allocated);
    let sent = report["disk"]["messages_after_setup"]
        .as_u64()
        .unwrap_or(1)
        .max(1) as f64;
    let per_message = |end: u64, key: &str| {
        end.saturating_sub(report["disk"][key].as_u64().unwrap_or(0)) as f64 / sent
    };
    let length = per_message(db_end.length, "db_bytes_after_setup");
    let allocated = per_message(db_end.allocated, "db_allocated_bytes_after_setup");
    report["disk"]["bytes_per_message"] = json!(length);
    report["disk"]["allocated_bytes_per_message"] = json!(allocated);
    Ok(report)
}

/// Retention of `--purge-fill` old messages while C senders keep chatting.
async fn purge_under_load(args: &Args, deadline: Instant) -> Result<Value> {
    let retention = "[retention]\nmessages_max_days = 1\ninterval_secs = 86400\n";
    // First start creates the data directory, key and database; then the old messages go in
    // through the node library while the node is stopped.
    let mut first = NodeProc::start_in(&args.node_bin, tempfile::tempdir()?, retention)?;
    first.stop()?;
    let dir = std::mem::replace(&mut first.dir, tempfile::tempdir()?);
    drop(first);
    let db = dir.path().join("data/node.redb");
    progress(args, "filling old messages");
    let fill_started = Instant::now();
    let store = node::Store::open_existing(&db)?;
    let old = node::Millis(now_ms() - 3 * 86_400_000);
    store
        .create_conversation(node::NewConversation {
            id: "old:localhost".into(),
            no: 1,
            kind: node::ConvKind::Direct,
            name: String::new(),
            public: false,
            creator: 1,
            others: vec![2],
            now: old,
            fanout: None,
        })
        .await?
        .map_err(|r| anyhow::anyhow!("{r:?}"))?;
    let body = vec![7u8; 100];
    let bar = Progress::start("fill", args.purge_fill as u64);
    let filled = bar.counter();
    let fill = async {
        for wave in 0..args.purge_fill.div_ceil(20_000) {
            let mut tasks = tokio::task::JoinSet::new();
            for i in 0..20_000.min(args.purge_fill - wave * 20_000) {
                let (store, body) = (store.clone(), body.clone());
                let k = wave * 20_000 + i;
                tasks.spawn(async move {
                    store
                        .send_message(node::NewMessage {
                            author: 1 + (k as u64 & 1),
                            device_id: "fill".into(),
                            txn_id: format!("f{k}"),
                            conv_id: "old:localhost".into(),
                            id: [0; 16],
                            ts: old,
                            body_sealed: body,
                            media: None,
                            hosted_here: true,
                            fanout: None,
                        })
                        .await
                });
            }
            while let Some(r) = tasks.join_next().await {
                r??;
                filled.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok::<_, anyhow::Error>(())
    };
    let outcome = fill.await;
    bar.finish().await;
    outcome?;
    tokio::task::spawn_blocking(move || drop(store)).await?;
    let fill_secs = fill_started.elapsed().as_secs_f64();
    // Start-up with the messages stored: from spawning to the "serving" line.
    let started = Instant::now();
    let mut node = NodeProc::start_in(&args.node_bin, dir, retention)?;
    let startup_secs = started.elapsed().as_secs_f64();
    let net = endpoint(node.port, &node.cert())?;
    let mut setup = net.connection().await?;
    let tokens = vec![
        account(&mut setup, "load0", 0).await?,
        account(&mut setup, "load1", 1).await?,
    ];
    let room = setup
        .create_conversation(
            &tokens[0],
            &NewConversation::Direct {
                with: "load1@localhost",
            },
        )
        .await
        .context("create the conversation")?;
    let book = Arc::new(Book::default());
    let quick = Args {
        users: 2,
        ..args.clone()
    };
    let (n, _, t) = send_phase(
        &quick,
        &net,
        &tokens,
        &room,
        &book,
        "baseline",
        args.messages,
        args.concurrency,
        deadline,
    )
    .await?;
    let baseline = n as f64 / t.as_secs_f64();
    // The purge runs through the admin socket while the senders go on.
    let admin_bin = args.admin_bin.clone();
    let data = node.dir.path().join("data");
    let purge_started = Instant::now();
    let purge = tokio::task::spawn_blocking(move || {
        Command::new(admin_bin)
            .args(["--json", "--data-dir"])
            .arg(data)
            .args(["retention", "run"])
            .output()
    });
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut sent = 0u64;
    let mut lat = Vec::new();
    let during_started = Instant::now();
    let mut round = 0;
    let mut purge = Some(purge);
    let mut purge_out = None;
    while !done.load(Ordering::Relaxed) && Instant::now() < deadline {
        round += 1;
        let (k, l, _) = send_phase(
            &quick,
            &net,
            &tokens,
            &room,
            &book,
            if round % 2 == 0 { "during" } else { "purging" },
            args.concurrency * 20,
            args.concurrency,
            deadline,
        )
        .await?;
        sent += k;
        lat.extend(l);
        if purge.as_ref().is_some_and(|p| p.is_finished())
            && let Some(p) = purge.take()
        {
            purge_out = Some(p.await??);
            done.store(true, Ordering::Relaxed);
        }
    }
    let during_secs = during_started.elapsed().as_secs_f64();
    let purge_secs = purge_started.elapsed().as_secs_f64();
    let out = purge_out.context("the purge did not finish before the deadline")?;
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    node.stop()?;
    let purged = answer["removed"]["messages"].as_u64().unwrap_or(0);
    Ok(json!({
        "filled_messages": args.purge_fill,
        "fill_secs": fill_secs,
        "startup_secs_with_fill": startup_secs,
        "purged_messages": purged,
        "purge_secs": purge_secs,
        "purged_per_sec": purged as f64 / purge_secs,
        "sends_per_sec_before": baseline,
        "sends_per_sec_during_purge": sent as f64 / during_secs,
        "send_latency_ms_during_purge": stats(lat),
        "concurrency": args.concurrency,
        "admin_exit": out.status.code(),
    }))
}

/// Registers and logs in `handle` (phone number `n`) over `conn`; returns the token.
async fn account(conn: &mut Connection, handle: &str, n: usize) -> Result<String> {
    let phone = format!("+86139{:08}", n);
    let form = Registration {
        phone: &phone,
        handle,
        password: "load-password",
        nickname: handle,
        accept_policy: "2026-11-29",
    };
    conn.register(&form)
        .await
        .with_context(|| format!("register {handle}"))?;
    let session = conn
        .login(handle, "load-password")
        .await
        .with_context(|| format!("login {handle}"))?;
    Ok(session.token)
}

/// `--idle-ws`: the server's resident memory per idle event stream. RSS is read after setup
/// (users registered and logged in, allocator settled) and again with every stream open and
/// quiet for a few seconds; the difference over the count is the cost of one connection (TLS
/// state, HTTP upgrade, WebSocket, the session's feed subscription).
async fn idle_websockets(args: &Args) -> Result<Value> {
    let dir = tempfile::tempdir()?;
    let extra = format!(
        "[http]\nmax_connections = {}\nidle_timeout_ms = 3600000\n",
        args.idle_ws + 1_000
    );
    let mut node = NodeProc::start_in(&args.node_bin, dir, &extra)?;
    let net = endpoint(node.port, &node.cert())?;
    let mut setup = net.connection().await?;
    let mut tokens = Vec::new();
    for u in 0..args.users {
        tokens.push(account(&mut setup, &format!("idle{u}"), u).await?);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = node.status_kib("VmRSS:");
    let started = Instant::now();
    let mut streams = Vec::with_capacity(args.idle_ws);
    let opening = Arc::new(tokio::sync::Semaphore::new(64));
    let mut pending = tokio::task::JoinSet::new();
    for i in 0..args.idle_ws {
        let (net, token, opening) = (
            net.clone(),
            tokens[i % tokens.len()].clone(),
            opening.clone(),
        );
        pending.spawn(async move {
            let _slot = opening.acquire_owned().await?;
            Ok::<_, anyhow::Error>(net.events(Some(&token), None).await?)
        });
        if i % 1_000 == 999 {
            progress(args, &format!("{} streams asked for", i + 1));
        }
    }
    while let Some(done) = pending.join_next().await {
        streams.push(done??);
    }
    let connect_secs = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after = node.status_kib("VmRSS:");
    let peak = node.status_kib("VmHWM:");
    // Read what is waiting (the sign-in notice): a stream that then has nothing to read is
    // open and idle; one the server closed reads its end.
    let mut open = 0;
    for ws in &mut streams {
        loop {
            match futures_util::FutureExt::now_or_never(ws.next()) {
                None => {
                    open += 1;
                    break;
                }
                Some(Some(Ok(m))) if !m.is_close() => continue,
                Some(_) => break,
            }
        }
    }
    let asked = streams.len();
    drop(streams);
    node.stop()?;
    let per = after.saturating_sub(before) as f64 / asked.max(1) as f64;
    Ok(json!({
        "mode": "idle_websockets",
        "connections": asked,
        "still_open": open,
        "connect_secs": connect_secs,
        "server": {
            "rss_before_kib": before,
            "rss_with_streams_kib": after,
            "peak_rss_kib": peak,
            "kib_per_connection": per,
        },
    }))
}

/// Messages from node A's users into a group hosted on node B.
async fn federation_load(args: &Args, deadline: Instant) -> Result<Value> {
    let mut prepared = Vec::new();
    for domain in ["a.test", "b.test"] {
        let dir = tempfile::tempdir()?;
        let out = Command::new(&args.node_bin)
            .args(["dev-cert", "--domain", domain, "--out"])
            .arg(dir.path().join("tls"))
            .output()?;
        if !out.status.success() {
            bail!("dev-cert: {}", String::from_utf8_lossy(&out.stderr));
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        prepared.push((dir, domain, port));
    }
    let mut nodes = Vec::new();
    let texts: Vec<String> = (0..2)
        .map(|i| {
            let (dir, domain, port) = &prepared[i];
            let (odir, odomain, oport) = &prepared[1 - i];
            format!(
                "[server]\ndomain = \"{domain}\"\nlisten = \"127.0.0.1:{port}\"\n\
                 [storage]\ndata_dir = \"{d}/data\"\n\
                 [tls]\ncert_file = \"{d}/tls/cert.pem\"\nkey_file = \"{d}/tls/key.pem\"\n\
                 [log]\nlevel = \"warn\"\n{NO_RATE_LIMITS}{pace}\
                 [[federation.peers]]\ndomain = \"{odomain}\"\nurl = \"https://127.0.0.1:{oport}\"\n\
                 region = \"CN\"\nca_file = \"{od}/tls/cert.pem\"\n",
                d = dir.path().display(),
                od = odir.path().display(),
                pace = args
                    .pace_depth
                    .map(|n| format!("[federation]\npace_depth = {n}\n"))
                    .unwrap_or_default(),
            )
        })
        .collect();
    for ((dir, _, _), text) in prepared.into_iter().zip(texts) {
        let cert = dir.path().join("tls/cert.pem");
        nodes.push(NodeProc::start_config(&args.node_bin, dir, &text, cert)?);
    }
    let (na, nb) = (
        endpoint(nodes[0].port, &nodes[0].cert())?,
        endpoint(nodes[1].port, &nodes[1].cert())?,
    );
    progress(args, "setup: users on both nodes, a group hosted on b.test");
    let (mut ca, mut cb) = (na.connection().await?, nb.connection().await?);
    let mut senders = Vec::new();
    for i in 0..args.users {
        senders.push(account(&mut ca, &format!("load{i}"), i).await?);
    }
    let host = account(&mut cb, "host", 1000).await?;
    let mut b_observers = Vec::new();
    for i in 0..args.observers {
        b_observers.push(account(&mut cb, &format!("obs{i}"), 2000 + i).await?);
    }
    let mut members: Vec<String> = (0..args.users).map(|i| format!("load{i}@a.test")).collect();
    members.extend((0..args.observers).map(|i| format!("obs{i}@b.test")));
    let mut c = nb.connection().await?;
    let room = c
        .create_conversation(
            &host,
            &NewConversation::Group {
                name: "fed",
                members: &members,
            },
        )
        .await
        .context("create group")?;
    let mut ca = na.connection().await?;
    let mut ready = false;
    for _ in 0..200 {
        match ca.conversation(&senders[0], &room).await {
            Ok(_) => {
                ready = true;
                break;
            }
            // Not on a.test yet.
            Err(ClientError::Status { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if !ready {
        bail!("the group did not reach a.test");
    }
    let book = Arc::new(Book::default());
    let mut observers = Vec::new();
    for (net, tokens, name, domain) in [
        (&na, &senders[..args.observers], "load", "a.test"),
        (&nb, &b_observers[..], "obs", "b.test"),
    ] {
        for (i, token) in tokens.iter().enumerate() {
            let ws = net.events(Some(token), None).await?;
            observers.push(tokio::spawn(observe(
                ws,
                format!("{name}{i}@{domain}"),
                book.clone(),
            )));
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    send_phase(
        args,
        &na,
        &senders,
        &room,
        &book,
        "warmup",
        args.warmup,
        args.concurrency,
        deadline,
    )
    .await?;
    let cpu0 = (nodes[0].cpu_secs(), nodes[1].cpu_secs());
    let (n, lat, t) = send_phase(
        args,
        &na,
        &senders,
        &room,
        &book,
        "load",
        args.messages,
        args.concurrency,
        deadline,
    )
    .await?;
    // Every observer but the sender gets every message: wait for them (bounded).
    let per_message = |k: usize| args.observers * 2 - usize::from(k % args.users < args.observers);
    let expected: u64 = (0..args.warmup)
        .chain(0..args.messages)
        .map(per_message)
        .sum::<usize>() as u64;
    let wait_until = Instant::now() + Duration::from_secs(60);
    while book.pairs.load(Ordering::Relaxed) < expected && Instant::now() < wait_until {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let cpu1 = (nodes[0].cpu_secs(), nodes[1].cpu_secs());
    let delivered = book
        .delivered
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get("load")
        .cloned()
        .unwrap_or_default();
    for o in &observers {
        o.abort();
    }
    let rss = (nodes[0].status_kib("VmHWM:"), nodes[1].status_kib("VmHWM:"));
    for node in nodes.iter_mut() {
        node.stop()?;
    }
    Ok(json!({
        "profile": {"N": args.users, "S_per_node": args.observers, "W": args.warmup, "M": args.messages, "C": args.concurrency, "pace_depth": args.pace_depth},
        "accepted_msgs_per_sec_at_a": n as f64 / t.as_secs_f64(),
        "send_latency_ms": stats(lat),
        "delivery_latency_ms": stats(delivered),
        "delivered_pairs": book.pairs.load(Ordering::Relaxed),
        "expected_pairs": expected,
        "cpu_secs_during_load": {"a": cpu1.0 - cpu0.0, "b": cpu1.1 - cpu0.1},
        "peak_rss_kib": {"a": rss.0, "b": rss.1},
    }))
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

async fn run(args: &Args, node: &NodeProc, deadline: Instant) -> Result<Value> {
    let net = endpoint(node.port, &node.cert())?;
    let mut setup = net.connection().await?;
    let mut tokens = Vec::new();
    progress(args, "setup: registering users");
    for i in 0..args.users {
        let token = account(&mut setup, &format!("load{i}"), i).await?;
        // Keep history, as Synapse does, so disk figures compare like with like.
        setup.set_consent(&token, "cloud_sync", true).await?;
        tokens.push(token);
    }
    let members: Vec<String> = (1..args.users)
        .map(|i| format!("load{i}@localhost"))
        .collect();
    let room = setup
        .create_conversation(
            &tokens[0],
            &NewConversation::Group {
                name: "load",
                members: &members,
            },
        )
        .await
        .context("create group")?;

    let null_rps = if args.null_secs > 0 {
        progress(args, "null-request baseline");
        Some(null_baseline(&net, args.concurrency, Duration::from_secs(args.null_secs)).await?)
    } else {
        None
    };

    let book = Arc::new(Book::default());
    let mut observers = Vec::new();
    for (i, token) in tokens.iter().enumerate().take(args.observers) {
        let ws = net.events(Some(token), None).await?;
        let book = book.clone();
        let me = format!("load{i}@localhost");
        observers.push(tokio::spawn(observe(ws, me, book)));
    }

    let db_after_setup = node.db_bytes();
    progress(args, "warm-up");
    send_phase(
        args,
        &net,
        &tokens,
        &room,
        &book,
        "warmup",
        args.warmup,
        args.concurrency,
        deadline,
    )
    .await?;

    progress(args, "load");
    let (cpu0, own0) = (node.cpu_secs(), cpu_secs_of("self"));
    let (accepted, send_lat, elapsed) = send_phase(
        args,
        &net,
        &tokens,
        &room,
        &book,
        "load",
        args.messages,
        args.concurrency,
        deadline,
    )
    .await?;
    let cpu_load = node.cpu_secs() - cpu0;
    let own_load = cpu_secs_of("self") - own0;

    progress(args, "probe");
    let mut probe_conn = net.connection().await?;
    for p in 0..args.probe {
        let mark = format!("p{p}");
        let sender = p % args.users;
        book.starts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(mark.clone(), (Instant::now(), sender, "probe"));
        probe_conn
            .send_text(
                &tokens[sender],
                &room,
                &mark,
                &body_text(&mark, args.body_bytes),
            )
            .await
            .with_context(|| format!("send {mark}"))?;
        tokio::time::sleep(Duration::from_millis(args.probe_interval_ms)).await;
    }

    // Wait (bounded) for every observer to have every message.
    let total = args.warmup + args.messages + args.probe;
    let expected: u64 = (0..total)
        .map(|k| {
            let sender = k % args.users;
            (0..args.observers).filter(|o| *o != sender).count() as u64
        })
        .sum();
    let wait_until = Instant::now() + Duration::from_secs(10);
    while book.pairs.load(Ordering::Relaxed) < expected && Instant::now() < wait_until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for o in &observers {
        o.abort();
    }
    let delivered = book
        .delivered
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let rate = accepted as f64 / elapsed.as_secs_f64();
    Ok(json!({
        "workload": {"users": args.users, "observers": args.observers, "warmup": args.warmup, "messages": args.messages,
                     "concurrency": args.concurrency, "probe": args.probe, "probe_interval_ms": args.probe_interval_ms,
                     "body_bytes": args.body_bytes},
        "accepted": accepted,
        "accept_per_s": rate,
        "null_requests_per_s": null_rps,
        "accept_share_of_null": null_rps.map(|n| rate / n),
        "send_latency": stats(send_lat),
        "delivery_load": stats(delivered.get("load").cloned().unwrap_or_default()),
        "delivery_probe": stats(delivered.get("probe").cloned().unwrap_or_default()),
        "delivered_pairs": book.pairs.load(Ordering::Relaxed),
        "expected_pairs": expected,
        "server": {"cpu_s_load": cpu_load, "cpu_ms_per_message": cpu_load * 1000.0 / accepted.max(1) as f64},
        "loadgen": {"cpu_s_load": own_load, "cpu_ms_per_message": own_load * 1000.0 / accepted.max(1) as f64},
        "disk": {
            "db_bytes_after_setup": db_after_setup.length,
            "db_allocated_bytes_after_setup": db_after_setup.allocated,
            "messages_after_setup": total,
        },
    }))
}

/// GET /health from `concurrency` keep-alive connections in a closed loop for `span`.
async fn null_baseline(net: &Endpoint, concurrency: usize, span: Duration) -> Result<f64> {
    let end = Instant::now() + span;
    let done = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (net, done) = (net.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let mut conn = net.connection().await?;
            while Instant::now() < end {
                conn.health().await.context("health")?;
                done.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / span.as_secs_f64())
}

/// Sends `count` messages with `concurrency` closed-loop senders; message k from user k mod N.
#[allow(clippy::too_many_arguments)]
async fn send_phase(
    args: &Args,
    net: &Endpoint,
    tokens: &[String],
    room: &str,
    book: &Arc<Book>,
    phase: &'static str,
    count: usize,
    concurrency: usize,
    deadline: Instant,
) -> Result<(u64, Vec<f64>, Duration)> {
    let next = Arc::new(AtomicU64::new(0));
    let bar = Progress::start(phase, count as u64);
    let first_start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (net, tokens, room, book, next, answered) = (
            net.clone(),
            tokens.to_vec(),
            room.to_string(),
            book.clone(),
            next.clone(),
            bar.counter(),
        );
        let (users, body_bytes) = (args.users, args.body_bytes);
        tasks.push(tokio::spawn(async move {
            let mut conn = net.connection().await?;
            let mut lat = Vec::new();
            loop {
                let k = next.fetch_add(1, Ordering::Relaxed) as usize;
                if k >= count || Instant::now() > deadline {
                    return Ok::<_, anyhow::Error>(lat);
                }
                let mark = format!("{}{k}", &phase[..1]);
                let sender = k % users;
                let t0 = Instant::now();
                book.starts
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(mark.clone(), (t0, sender, phase));
                // 201, or 202: queued for the node hosting the conversation (federation).
                conn.send_text(&tokens[sender], &room, &mark, &body_text(&mark, body_bytes))
                    .await
                    .with_context(|| format!("send {mark}"))?;
                lat.push(t0.elapsed().as_secs_f64() * 1000.0);
                answered.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let mut all = Vec::new();
    let mut failed = None;
    for t in tasks {
        match t.await? {
            Ok(lat) => all.extend(lat),
            Err(e) => failed = failed.or(Some(e)),
        }
    }
    let elapsed = first_start.elapsed();
    bar.finish().await;
    if let Some(e) = failed {
        return Err(e);
    }
    Ok((all.len() as u64, all, elapsed))
}

/// One observer: records the delivery latency of every message from someone else.
async fn observe(mut ws: EventStream, me: String, book: Arc<Book>) {
    let mut since_ack = 0;
    while let Ok(t) = events::next_text(&mut ws).await {
        let Ok(e) = Frame::parse(t.as_str()) else {
            continue;
        };
        let now = Instant::now();
        let Some(m) = e.message.filter(|_| e.kind == "message") else {
            continue;
        };
        if m.sender == me.as_str() {
            continue;
        }
        let text = m.body.and_then(|b| b.text);
        let Some(mark) = text.as_deref().and_then(|t| t.split(' ').next()) else {
            continue;
        };
        let entry = book
            .starts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(mark)
            .copied();
        if let Some((t0, _, phase)) = entry {
            book.delivered
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(phase)
                .or_default()
                .push((now - t0).as_secs_f64() * 1000.0);
            book.pairs.fetch_add(1, Ordering::Relaxed);
        }
        since_ack += 1;
        if since_ack >= 200 {
            since_ack = 0;
            let _ = events::ack(&mut ws, &e.cursor).await;
        }
    }
}

fn progress(args: &Args, what: &str) {
    if !args.json {
        eprintln!("{what}");
    }
}

/// A figure for the table: a number, or a summary's median with its range.
fn figure(v: &Value) -> String {
    let number = |v: &Value| match (v.as_u64(), v.as_f64()) {
        (Some(n), _) => n.to_string(),
        (None, Some(x)) if x.fract() == 0.0 && x.abs() < 1e15 => format!("{x:.0}"),
        (None, Some(x)) => format!("{x:.2}"),
        (None, None) => "-".into(),
    };
    match v.get("median") {
        Some(m) => format!(
            "{} ({}-{})",
            number(m),
            number(&v["min"]),
            number(&v["max"])
        ),
        None => number(v),
    }
}

fn print_table(r: &Value) {
    let mut out = std::io::stdout().lock();
    let f = figure;
    let _ = writeln!(out, "\nworkload         {}", r["workload"]);
    let _ = writeln!(
        out,
        "accepted         {} messages, {} msg/s",
        f(&r["accepted"]),
        f(&r["accept_per_s"])
    );
    if !r["null_requests_per_s"].is_null() {
        let _ = writeln!(
            out,
            "null requests    {} req/s, accepted / null = {}",
            f(&r["null_requests_per_s"]),
            f(&r["accept_share_of_null"])
        );
    }
    for (name, key) in [
        ("send latency", "send_latency"),
        ("delivery (load)", "delivery_load"),
        ("delivery (probe)", "delivery_probe"),
    ] {
        let s = &r[key];
        let _ = writeln!(
            out,
            "{name:<17}p50 {} ms  p95 {} ms  p99 {} ms  max {} ms  (n={})",
            f(&s["p50_ms"]),
            f(&s["p95_ms"]),
            f(&s["p99_ms"]),
            f(&s["max_ms"]),
            f(&s["n"])
        );
    }
    let _ = writeln!(
        out,
        "delivered pairs  {} / {}",
        f(&r["delivered_pairs"]),
        f(&r["expected_pairs"])
    );
    let _ = writeln!(
        out,
        "server           peak RSS {} KiB, CPU {} ms/message (load generator {} ms/message)",
        f(&r["server"]["peak_rss_kib"]),
        f(&r["server"]["cpu_ms_per_message"]),
        f(&r["loadgen"]["cpu_ms_per_message"])
    );
    let _ = writeln!(
        out,
        "disk             {} bytes/message by file length, {} allocated on disk",
        f(&r["disk"]["bytes_per_message"]),
        f(&r["disk"]["allocated_bytes_per_message"])
    );
}
