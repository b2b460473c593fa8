//! `--purge-fill`: old messages written straight into a stopped node's database, then
//! `node-admin retention run` purging them while senders keep chatting; sends per second
//! before and during the purge.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use anyhow::{Context, Result};
use serde_json::{Value, json};
use shanliao_client::{Api, NewConversation};

use crate::nodes::{NodeProc, endpoint};
use crate::progress::Progress;
use crate::report::stats;
use crate::traffic::{Book, account, send_phase};
use crate::{Args, progress};

/// Retention of `--purge-fill` old messages while C senders keep chatting.
pub async fn purge_under_load(args: &Args, deadline: Instant) -> Result<Value> {
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

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
