//! `--federation`: node A's users send into a group hosted on node B, with observers on both;
//! accepted messages per second at A, delivery latency on both nodes, their CPU and memory.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use shanliao_client::{Api, ClientError, NewConversation};

use crate::nodes::{NO_RATE_LIMITS, NodeProc, endpoint};
use crate::report::stats;
use crate::traffic::{Book, account, observe, send_phase};
use crate::{Args, progress};

/// Messages from node A's users into a group hosted on node B.
pub async fn federation_load(args: &Args, deadline: Instant) -> Result<Value> {
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
