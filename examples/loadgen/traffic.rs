//! What every workload's clients do: register and log in (`account`), send from closed-loop
//! senders (`send_phase`), follow event streams (`observe`), and keep the send and delivery
//! times of every message in a `Book`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use shanliao_client::events::{self, EventStream, Frame};
use shanliao_client::{Api, Connection, Endpoint, Registration};

use crate::Args;
use crate::progress::Progress;

/// Send-start times of messages in flight, by mark; and delivery latencies per phase.
#[derive(Default)]
pub struct Book {
    pub starts: Mutex<HashMap<String, (Instant, usize, &'static str)>>,
    pub delivered: Mutex<HashMap<&'static str, Vec<f64>>>,
    pub pairs: AtomicU64,
}

pub fn body_text(mark: &str, bytes: usize) -> String {
    let mut s = format!("{mark} ");
    while s.len() < bytes {
        s.push('x');
    }
    s
}

/// Registers and logs in `handle` (phone number `n`) over `conn`; returns the token.
pub async fn account(conn: &mut Connection, handle: &str, n: usize) -> Result<String> {
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

/// Sends `count` messages with `concurrency` closed-loop senders; message k from user k mod N.
#[allow(clippy::too_many_arguments)]
pub async fn send_phase(
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
pub async fn observe(mut ws: EventStream, me: String, book: Arc<Book>) {
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
