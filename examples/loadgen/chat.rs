//! The group-chat workload (`shared/bench/synapse`'s): N users in one group, S observers on
//! event streams, warm-up, load from C closed-loop senders, a quiet-room probe, and the wait for
//! every delivery; before it, optionally, the null-request baseline.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::{Value, json};
use shanliao_client::{Api, Endpoint, NewConversation};

use crate::nodes::{NodeProc, cpu_secs_of, endpoint};
use crate::report::stats;
use crate::traffic::{Book, account, body_text, observe, send_phase};
use crate::{Args, progress};

pub async fn run(args: &Args, node: &NodeProc, deadline: Instant) -> Result<Value> {
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
