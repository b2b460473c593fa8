//! `--federated-photo`: one photo into a group with members on three nodes. Node b.test hosts
//! the group; its members are alice on a.test (the sender), bob on b.test and carol on c.test.
//! Alice uploads a generated JPEG ([`crate::jpeg`]) and sends it as a photo; each member then
//! polls its own node (history every 25 ms until the message is there, then the media endpoint
//! until it answers 200 with the very bytes a.test stored), and the run reports, per node, the
//! time from the send to "servable", the CPU the node used (user + system, `/proc/<pid>/stat`)
//! and the bytes it sent and received on the wire. Those are counted by [`crate::tap`] relays:
//! every node reaches each peer, and the load generator reaches every node, through a relay of
//! its own, so the federation bytes (node to node) and the client bytes (the upload, the polls,
//! one full download per member) are told apart. `/proc/<pid>/io`'s storage writes are reported
//! beside them. The members' polling costs the nodes CPU as well; its cost per request is
//! measured before the send, and the CPU less the polls' estimated share is reported too.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::{Value, json};
use shanliao_client::{
    Api, ClientError, Connection, Endpoint, NewConversation, Transport, raw_request,
};

use crate::jpeg::Photo;
use crate::nodes::{NO_RATE_LIMITS, NodeProc, cpu_secs_of, endpoint};
use crate::tap::Tap;
use crate::traffic::account;
use crate::{Args, progress};

const DOMAINS: [&str; 3] = ["a.test", "b.test", "c.test"];
const HANDLES: [&str; 3] = ["alice", "bob", "carol"];
/// How long a node may take to serve the photo before the run fails.
const SERVABLE_WITHIN: Duration = Duration::from_secs(180);
/// Quiet time after the last node serves it, before the "after" figures are read: the
/// acknowledgements and disclosure records that follow a transfer are part of its cost.
const SETTLE: Duration = Duration::from_secs(1);
/// Polls (each a history page and a media request) whose CPU is measured before the send.
const CALIBRATION_POLLS: usize = 200;

/// What one node has cost so far.
#[derive(Clone, Copy)]
struct Cost {
    cpu_secs: f64,
    io: ProcIo,
}

/// Counters of `/proc/<pid>/io`. (Its `rchar`/`wchar` are left out: they count `read` and
/// `write` calls on files and sockets alike but not `recvmsg`, so they measure neither the
/// network nor the disk.)
#[derive(Clone, Copy, Default)]
struct ProcIo {
    /// Bytes the process caused to be written to storage.
    write_bytes: u64,
    /// Bytes it caused to be read from storage (not from the page cache).
    read_bytes: u64,
}

fn proc_io(pid: u32) -> ProcIo {
    let text = std::fs::read_to_string(format!("/proc/{pid}/io")).unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    ProcIo {
        write_bytes: field("write_bytes:"),
        read_bytes: field("read_bytes:"),
    }
}

/// The three nodes, the relays in front of them, and the load generator's endpoints.
struct Federation {
    nodes: Vec<NodeProc>,
    /// `peer_taps[i][j]`: node i's way to node j (none for i == j).
    peer_taps: Vec<Vec<Option<Tap>>>,
    /// The load generator's way to node j.
    client_taps: Vec<Tap>,
    nets: Vec<Endpoint>,
}

impl Federation {
    async fn start(bin: &Path) -> Result<Federation> {
        let mut prepared = Vec::new();
        for domain in DOMAINS {
            let dir = tempfile::tempdir()?;
            let out = Command::new(bin)
                .args(["dev-cert", "--domain", domain, "--out"])
                .arg(dir.path().join("tls"))
                .output()
                .with_context(|| format!("running {}", bin.display()))?;
            if !out.status.success() {
                bail!("dev-cert: {}", String::from_utf8_lossy(&out.stderr));
            }
            let port = std::net::TcpListener::bind("127.0.0.1:0")?
                .local_addr()?
                .port();
            prepared.push((dir, port));
        }
        let addr = |j: usize| std::net::SocketAddr::from(([127, 0, 0, 1], prepared[j].1));
        let mut peer_taps = Vec::new();
        for i in 0..DOMAINS.len() {
            let mut row = Vec::new();
            for j in 0..DOMAINS.len() {
                row.push(if i == j {
                    None
                } else {
                    Some(Tap::start(addr(j)).await?)
                });
            }
            peer_taps.push(row);
        }
        let mut client_taps = Vec::new();
        for j in 0..DOMAINS.len() {
            client_taps.push(Tap::start(addr(j)).await?);
        }
        let mut texts = Vec::new();
        for (i, (dir, port)) in prepared.iter().enumerate() {
            let mut text = format!(
                "[server]\ndomain = \"{domain}\"\nlisten = \"127.0.0.1:{port}\"\n\
                 [storage]\ndata_dir = \"{d}/data\"\n\
                 [tls]\ncert_file = \"{d}/tls/cert.pem\"\nkey_file = \"{d}/tls/key.pem\"\n\
                 [log]\nlevel = \"warn\"\n{NO_RATE_LIMITS}",
                domain = DOMAINS[i],
                d = dir.path().display(),
            );
            for (j, tap) in peer_taps[i].iter().enumerate() {
                if let Some(tap) = tap {
                    text.push_str(&format!(
                        "[[federation.peers]]\ndomain = \"{}\"\nurl = \"https://127.0.0.1:{}\"\n\
                         region = \"CN\"\nca_file = \"{}/tls/cert.pem\"\n",
                        DOMAINS[j],
                        tap.port,
                        prepared[j].0.path().display()
                    ));
                }
            }
            texts.push(text);
        }
        let mut procs = Vec::new();
        for ((dir, _), text) in prepared.into_iter().zip(texts) {
            let cert = dir.path().join("tls/cert.pem");
            procs.push(NodeProc::start_config(bin, dir, &text, cert)?);
        }
        let mut nets = Vec::new();
        for (j, tap) in client_taps.iter().enumerate() {
            nets.push(endpoint(tap.port, &procs[j].cert())?);
        }
        Ok(Federation {
            nodes: procs,
            peer_taps,
            client_taps,
            nets,
        })
    }

    fn costs(&self) -> Vec<Cost> {
        self.nodes
            .iter()
            .map(|n| Cost {
                cpu_secs: cpu_secs_of(&n.pid.to_string()),
                io: proc_io(n.pid),
            })
            .collect()
    }

    /// Per node: (federation bytes sent, received; client bytes sent, received) so far.
    fn wire(&self) -> Vec<[u64; 4]> {
        (0..DOMAINS.len())
            .map(|k| {
                let (mut sent, mut received) = (0, 0);
                for (i, row) in self.peer_taps.iter().enumerate() {
                    for (j, tap) in row.iter().enumerate() {
                        let Some(tap) = tap else { continue };
                        let (to_server, from_server) = tap.counts.get();
                        if i == k {
                            // k called j: k sent the requests and received the answers.
                            sent += to_server;
                            received += from_server;
                        } else if j == k {
                            sent += from_server;
                            received += to_server;
                        }
                    }
                }
                let (to_node, from_node) = self.client_taps[k].counts.get();
                [sent, received, from_node, to_node]
            })
            .collect()
    }
}

/// One run: the report of a photo's way to three nodes.
pub async fn federated_photo(args: &Args, photo: &Photo) -> Result<Value> {
    let mut fed = Federation::start(&args.node_bin).await?;
    let result = measure(args, &fed, photo).await;
    for node in fed.nodes.iter_mut() {
        node.stop()?;
    }
    result
}

async fn measure(args: &Args, fed: &Federation, photo: &Photo) -> Result<Value> {
    progress(
        args,
        "setup: alice@a.test, bob@b.test (hosts the group), carol@c.test",
    );
    let mut conns = Vec::new();
    let mut tokens = Vec::new();
    for (j, handle) in HANDLES.iter().enumerate() {
        let mut c = fed.nets[j].connection().await?;
        tokens.push(account(&mut c, handle, 3000 + j).await?);
        conns.push(c);
    }
    let members = vec!["alice@a.test".to_string(), "carol@c.test".to_string()];
    let group = conns[1]
        .create_conversation(
            &tokens[1],
            &NewConversation::Group {
                name: "photos",
                members: &members,
            },
        )
        .await
        .context("create group")?;
    for j in [0, 2] {
        let mut there = false;
        for _ in 0..400 {
            match conns[j].conversation(&tokens[j], &group).await {
                Ok(_) => {
                    there = true;
                    break;
                }
                Err(ClientError::Status { .. }) => {}
                Err(e) => return Err(e.into()),
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        if !there {
            bail!("the group did not reach {}", DOMAINS[j]);
        }
    }
    conns[0]
        .set_consent(&tokens[0], "photos", true)
        .await
        .context("grant photos")?;

    let started = Instant::now();
    let req = raw_request(
        conns[0].host(),
        Method::POST,
        "/api/v1/media",
        Some(&tokens[0]),
        Some("image/jpeg"),
        Bytes::from(photo.bytes.clone()),
    )?;
    let up = conns[0]
        .send(req)
        .await?
        .expect_status(&[StatusCode::CREATED])
        .context("upload")?;
    let upload_ms = ms(started.elapsed());
    let media_id = up.json()?["media_id"]
        .as_str()
        .context("an upload answer without media_id")?
        .to_string();
    let stored = get(
        &mut conns[0],
        &tokens[0],
        &format!("/api/v1/media/{media_id}"),
    )
    .await?;
    if stored.status != StatusCode::OK {
        bail!("a.test does not serve the upload: {}", stored.status);
    }
    let stored = stored.body;
    // The members poll their nodes while the photo travels, and that costs the nodes CPU too:
    // measured here, before the send, with the same requests (a history page, and media that
    // is not there yet), so it can be told apart from the photo's own cost.
    let mut poll_cpu_ms = [0.0; 3];
    for (j, conn) in conns.iter_mut().enumerate() {
        let before = cpu_secs_of(&fed.nodes[j].pid.to_string());
        for _ in 0..CALIBRATION_POLLS {
            let page = format!("/api/v1/conversations/{group}/messages?limit=20");
            get(conn, &tokens[j], &page).await?;
            get(conn, &tokens[j], "/api/v1/media/AAAAAAAAAAAAAAAAAAAAAAAA").await?;
        }
        let spent = cpu_secs_of(&fed.nodes[j].pid.to_string()) - before;
        poll_cpu_ms[j] = spent * 1000.0 / (2 * CALIBRATION_POLLS) as f64;
    }
    // Nothing should be travelling now: let the nodes go quiet before the "before" figures.
    tokio::time::sleep(SETTLE).await;

    let (cost0, wire0) = (fed.costs(), fed.wire());
    let sent_at = Instant::now();
    let body = json!({"txn_id": "photo-1", "body": {"type": "image", "media_id": media_id}});
    let path = format!("/api/v1/conversations/{group}/messages");
    let sent = conns[0]
        .call(Method::POST, &path, Some(&tokens[0]), Some(&body))
        .await?;
    let send_status = sent.status.as_u16();
    let send_ms = ms(sent_at.elapsed());
    if !matches!(sent.status, StatusCode::CREATED | StatusCode::ACCEPTED) {
        bail!("the photo was refused: {} {}", sent.status, sent.text());
    }
    let mut waits = tokio::task::JoinSet::new();
    for (j, conn) in conns.into_iter().enumerate() {
        let (token, group, stored) = (tokens[j].clone(), group.clone(), stored.clone());
        waits.spawn(async move {
            let r = servable(conn, &token, &group, &stored, sent_at).await;
            (j, r)
        });
    }
    let (mut servable_ms, mut download_ms, mut polls) = ([0.0; 3], [0.0; 3], [0; 3]);
    while let Some(done) = waits.join_next().await {
        let (j, r) = done?;
        let w = r.with_context(|| format!("on {}", DOMAINS[j]))?;
        (servable_ms[j], download_ms[j], polls[j]) = (ms(w.until), ms(w.download), w.polls);
    }
    let all_ms = servable_ms.iter().copied().fold(0.0, f64::max);
    tokio::time::sleep(SETTLE).await;
    let (cost1, wire1) = (fed.costs(), fed.wire());

    let mut per_node = serde_json::Map::new();
    for j in 0..DOMAINS.len() {
        let d = |k: usize| wire1[j][k].saturating_sub(wire0[j][k]);
        let cpu_ms = (cost1[j].cpu_secs - cost0[j].cpu_secs) * 1000.0;
        let polls_cpu_ms = polls[j] as f64 * poll_cpu_ms[j];
        per_node.insert(
            DOMAINS[j].to_string(),
            json!({
                "servable_ms": servable_ms[j],
                "last_download_ms": download_ms[j],
                "cpu_ms": cpu_ms,
                "polls": polls[j],
                "polls_cpu_ms_estimate": polls_cpu_ms,
                "cpu_ms_less_polls": cpu_ms - polls_cpu_ms,
                "federation_bytes_sent": d(0),
                "federation_bytes_received": d(1),
                "client_bytes_sent": d(2),
                "client_bytes_received": d(3),
                "storage_write_bytes": cost1[j].io.write_bytes.saturating_sub(cost0[j].io.write_bytes),
                "storage_read_bytes": cost1[j].io.read_bytes.saturating_sub(cost0[j].io.read_bytes),
            }),
        );
    }
    Ok(json!({
        "mode": "federated_photo",
        "node_bin": args.node_bin.display().to_string(),
        "photo": {
            "width": photo.width,
            "height": photo.height,
            "uploaded_bytes": photo.bytes.len(),
            "stored_bytes": stored.len(),
        },
        "upload_ms": upload_ms,
        "send_status": send_status,
        "send_answer_ms": send_ms,
        "servable_everywhere_ms": all_ms,
        "nodes": per_node,
    }))
}

/// How a member's wait for the photo went.
struct Wait {
    /// From the send until the node served the photo.
    until: Duration,
    /// The successful download alone (the node's serving, the transfer, and this process's
    /// TLS decryption of it).
    download: Duration,
    /// Requests made before that one.
    polls: u64,
}

/// Waits until `token`'s user sees a photo in `group` on this node and the node serves it
/// with exactly `stored`.
async fn servable(
    mut conn: Connection,
    token: &str,
    group: &str,
    stored: &Bytes,
    sent_at: Instant,
) -> Result<Wait> {
    let history = format!("/api/v1/conversations/{group}/messages?limit=20");
    let mut media = None;
    let mut polls = 0;
    while sent_at.elapsed() < SERVABLE_WITHIN {
        let id = match &media {
            Some(id) => Some(id),
            None => {
                let r = get(&mut conn, token, &history).await?;
                polls += 1;
                if r.status == StatusCode::OK {
                    media = first_media(&r.json()?);
                }
                media.as_ref()
            }
        };
        if let Some(id) = id {
            let asked = Instant::now();
            let r = get(&mut conn, token, &format!("/api/v1/media/{id}")).await?;
            if r.status == StatusCode::OK {
                if r.body != *stored {
                    bail!(
                        "served {} bytes that are not the stored {}",
                        r.body.len(),
                        stored.len()
                    );
                }
                return Ok(Wait {
                    until: sent_at.elapsed(),
                    download: asked.elapsed(),
                    polls,
                });
            }
            polls += 1;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    bail!("not servable within {} s", SERVABLE_WITHIN.as_secs())
}

/// The media id of the first image message of a history page.
fn first_media(page: &Value) -> Option<String> {
    page["messages"].as_array()?.iter().find_map(|m| {
        (m["body"]["type"] == "image")
            .then(|| m["body"]["media_id"].as_str().map(str::to_string))
            .flatten()
    })
}

async fn get(conn: &mut Connection, token: &str, path: &str) -> Result<shanliao_client::Reply> {
    Ok(conn.call(Method::GET, path, Some(token), None).await?)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_image_of_a_history_page_is_found_and_other_kinds_are_passed_over() {
        let page = json!({"messages": [
            {"body": {"type": "text", "text": "hi"}},
            {"body": {"type": "file", "media_id": "f1"}},
            {"body": {"type": "image", "media_id": "m1"}},
            {"body": {"type": "image", "media_id": "m0"}},
        ]});
        assert_eq!(first_media(&page).as_deref(), Some("m1"));
        assert_eq!(first_media(&json!({"messages": []})), None);
        assert_eq!(first_media(&json!({"error": {}})), None);
    }
}
