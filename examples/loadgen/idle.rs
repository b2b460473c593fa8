//! `--idle-ws`: many idle event streams held open, and the server's memory per connection.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::nodes::{NodeProc, endpoint};
use crate::traffic::account;
use crate::{Args, progress};

/// `--idle-ws`: the server's resident memory per idle event stream. RSS is read after setup
/// (users registered and logged in, allocator settled) and again with every stream open and
/// quiet for a few seconds; the difference over the count is the cost of one connection (TLS
/// state, HTTP upgrade, WebSocket, the session's feed subscription).
pub async fn idle_websockets(args: &Args) -> Result<Value> {
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
