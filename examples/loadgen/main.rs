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
//!
//! This file reads the arguments and hands them to `runs`, which runs the chosen workload
//! (`--runs` times) and prints the report. The workloads: `chat` (the group chat, also
//! `--heavy`), `federation`, `idle` (`--idle-ws`), `purge` (`--purge-fill`) and `media`
//! (`--federated-photo`); what their clients share (accounts, senders, observers) is in
//! `traffic`, starting and measuring nodes in `nodes`, figures and the table in `report`.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Parser;

mod chat;
mod federation;
mod idle;
mod jpeg;
mod media;
mod nodes;
mod progress;
mod purge;
mod report;
mod runs;
mod summary;
mod tap;
mod traffic;

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
    runs::run(args).await
}

fn progress(args: &Args, what: &str) {
    if !args.json {
        eprintln!("{what}");
    }
}
