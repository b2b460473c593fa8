//! Media across nodes (issue 25): a photo, voice message, video or file sent into a
//! conversation with members on other nodes travels as a reference in the envelope; each
//! receiving node fetches the bytes from the author's node (signed, in parts, resumable,
//! checked against the hash), keeps them sealed under the author's key there, and serves them
//! only to its members of the conversation; recall and the author's erasure remove every copy.

use std::sync::Arc;

use base64::Engine;
use http::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tests::node::{Clock, ManualClock, Millis};
use tests::setup::{send_media as send, upload_media as upload};
use tests::{Client, eventually, federation, phone};

use crate::media::{XMP_MARKER, contains, decode_jpeg, has_gps, jpeg_with_gps};

/// The (seq, media id) of the media messages of `conv` as `token` sees them on `c`, oldest
/// first; empty while the history cannot be read.
pub(crate) async fn media_in(c: &Client, token: &str, conv: &str) -> Vec<(u64, String)> {
    let r = c
        .get(
            &format!("/api/v1/conversations/{conv}/messages?limit=200"),
            Some(token),
        )
        .await;
    if r.status != StatusCode::OK {
        return Vec::new();
    }
    let mut v: Vec<(u64, String)> = r.json()["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| {
            Some((
                m["seq"].as_u64()?,
                m["body"]["media_id"].as_str()?.to_string(),
            ))
        })
        .collect();
    v.sort();
    v
}

pub(crate) async fn fetch(c: &Client, token: &str, id: &str) -> tests::Reply {
    c.get(&format!("/api/v1/media/{id}"), Some(token)).await
}

/// Bytes that do not compress or repeat: `n` of them.
pub(crate) fn noise(n: usize, seed: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(n + 32);
    let mut block: [u8; 32] = Sha256::digest([seed]).into();
    while out.len() < n {
        block = Sha256::digest(block).into();
        out.extend_from_slice(&block);
    }
    out.truncate(n);
    out
}

async fn consent(c: &Client, token: &str, purpose: &str, granted: bool) {
    let r = c.consent(token, purpose, granted).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
}

/// Whether `hay` contains any 64-byte window of `needle` taken every 4 KiB.
fn holds_any_of(hay: &[u8], needle: &[u8]) -> bool {
    needle
        .chunks(4096)
        .filter(|c| c.len() >= 64)
        .any(|c| hay.windows(64).any(|w| w == &c[..64]))
}

#[tokio::test]
async fn a_photo_with_gps_from_a_into_a_group_hosted_on_b_with_members_on_c_arrives_stripped_for_members_only_and_goes_on_recall_and_erasure()
 {
    let nodes = federation(
        &[
            ("a.test", "CN"),
            ("b.test", "CN"),
            ("c.test", "CN"),
            ("d.test", "EU"),
        ],
        "",
    )
    .await;
    let (a, b, c, d) = (
        nodes[0].client(),
        nodes[1].client(),
        nodes[2].client(),
        nodes[3].client(),
    );
    let alice = a.user("alice", &phone(1)).await;
    let bob = b.user("bob", &phone(2)).await;
    let carol = c.user("carol", &phone(3)).await;
    let eve = c.user("eve", &phone(4)).await;
    let dave = d.user("dave", &phone(5)).await;
    let r = b
        .call(
            "POST",
            "/api/v1/conversations",
            Some(&bob),
            Some(
                &json!({"kind": "group", "name": "g", "members": ["alice@a.test", "carol@c.test"]}),
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let group = r.json()["id"].as_str().unwrap().to_string();
    for (cl, t) in [(&a, &alice), (&c, &carol)] {
        eventually(10, "the group reached its members' nodes", || async {
            let r = cl
                .get(&format!("/api/v1/conversations/{group}"), Some(t))
                .await;
            (r.status == StatusCode::OK).then_some(())
        })
        .await;
    }

    // A photo carrying GPS, and a file of three parts.
    let original = jpeg_with_gps();
    assert!(has_gps(&original));
    let file = noise(600 * 1024, 1);
    let photo_id = upload(&a, &alice, "image/jpeg", original.clone()).await;
    let file_id = upload(&a, &alice, "application/octet-stream", file.clone()).await;
    // The photos purpose is needed as for a local conversation.
    let r = send(&a, &alice, &group, "p0", "image", &photo_id).await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    consent(&a, &alice, "photos", true).await;
    let r = send(&a, &alice, &group, "p1", "image", &photo_id).await;
    assert_eq!(
        r.status,
        StatusCode::ACCEPTED,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let r = send(&a, &alice, &group, "f1", "file", &file_id).await;
    assert_eq!(
        r.status,
        StatusCode::ACCEPTED,
        "{}",
        String::from_utf8_lossy(&r.body)
    );

    let stripped = fetch(&a, &alice, &photo_id).await.body.to_vec();
    assert!(!has_gps(&stripped) && !contains(&stripped, XMP_MARKER));
    let mut copies = Vec::new();
    for (cl, t) in [(&a, &alice), (&b, &bob), (&c, &carol)] {
        let ids = eventually(20, "both media served on every node", || async {
            let ids = media_in(cl, t, &group).await;
            if ids.len() != 2 {
                return None;
            }
            for (_, id) in &ids {
                if fetch(cl, t, id).await.status != StatusCode::OK {
                    return None;
                }
            }
            Some(ids)
        })
        .await;
        let photo = fetch(cl, t, &ids[0].1).await;
        assert_eq!(photo.headers["content-type"], "image/jpeg");
        assert_eq!(
            photo.body.to_vec(),
            stripped,
            "the same stripped bytes everywhere"
        );
        assert!(!has_gps(&photo.body) && !contains(&photo.body, XMP_MARKER));
        assert_eq!(
            decode_jpeg(&photo.body),
            decode_jpeg(&original),
            "same pixels"
        );
        assert_eq!(fetch(cl, t, &ids[1].1).await.body.to_vec(), file);
        copies.push(ids);
    }
    // Served only to members: not to Eve on Carol's node.
    for (_, id) in &copies[2] {
        assert_eq!(fetch(&c, &eve, id).await.status, StatusCode::NOT_FOUND);
    }
    // Each transfer is in Alice's disclosure log.
    eventually(10, "media transfers logged", || async {
        let log = nodes[0].node().disclosures("alice").await.unwrap();
        ["b.test", "c.test"]
            .iter()
            .all(|p| {
                log.iter()
                    .any(|(q, k, o, n)| q == p && k == "media" && o == "delivered" && *n == 2)
            })
            .then_some(())
    })
    .await;

    // Recall reaches the remote copies.
    let seq = copies[0][0].0;
    let r = a
        .call(
            "POST",
            &format!("/api/v1/conversations/{group}/messages/{seq}/recall"),
            Some(&alice),
            None,
        )
        .await;
    assert!(
        r.status.is_success(),
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    // (Polled by the history: a download racing the removal may be cut short.)
    for (i, (cl, t)) in [(&b, &bob), (&c, &carol)].into_iter().enumerate() {
        eventually(10, "the recall applied", || async {
            (media_in(cl, t, &group).await.len() == 1).then_some(())
        })
        .await;
        let id = &copies[i + 1][0].1;
        assert_eq!(
            fetch(cl, t, id).await.status,
            StatusCode::NOT_FOUND,
            "the copy is gone"
        );
        assert_eq!(
            fetch(cl, t, &copies[i + 1][1].1).await.status,
            StatusCode::OK
        );
    }
    for n in &nodes[1..3] {
        assert_eq!(
            n.node().stored_media_chunks().await.unwrap(),
            3,
            "the file's three parts"
        );
    }

    // Toward a node of another region without consent: 451 naming it, nothing queued.
    consent(&d, &dave, "cross_border_transfer", true).await;
    consent(&a, &alice, "cross_border_transfer", true).await;
    let r = a
        .call(
            "POST",
            "/api/v1/conversations",
            Some(&alice),
            Some(&json!({"kind": "direct", "with": "dave@d.test"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let with_dave = r.json()["id"].as_str().unwrap().to_string();
    consent(&a, &alice, "cross_border_transfer", false).await;
    let r = send(&a, &alice, &with_dave, "d1", "image", &photo_id).await;
    assert_eq!(r.status, StatusCode::UNAVAILABLE_FOR_LEGAL_REASONS);
    let msg = r.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(msg.contains("d.test") && msg.contains("EU"), "{msg}");
    assert_eq!(
        media_in(&a, &alice, &with_dave).await,
        vec![],
        "nothing stored"
    );
    let log = nodes[0].node().disclosures("alice").await.unwrap();
    assert!(
        !log.iter()
            .any(|(p, k, _, _)| p == "d.test" && k != "membership"),
        "{log:?}"
    );

    // The author's erasure destroys every copy: gone from every node, not in its file.
    nodes[0].node().request_erasure("alice").await.unwrap();
    for (i, n) in nodes[1..3].iter().enumerate() {
        eventually(10, "no chunk left", || async {
            (n.node().stored_media_chunks().await.unwrap() == 0).then_some(())
        })
        .await;
        assert_eq!(n.node().pending_media_fetches().await.unwrap(), 0);
        let (cl, t) = [(&b, &bob), (&c, &carol)][i];
        assert_eq!(
            fetch(cl, t, &copies[i + 1][1].1).await.status,
            StatusCode::NOT_FOUND
        );
        let raw = std::fs::read(n.db_path()).unwrap();
        assert!(!holds_any_of(&raw, &file) && !holds_any_of(&raw, &stripped));
    }
}

#[tokio::test]
async fn a_fetch_cut_off_by_its_origin_resumes_after_the_origin_and_the_fetching_node_restart() {
    // At most 8 requests a minute from one address: the fetch of a 12-part file stops part way.
    let mut nodes = federation(
        &[("a.test", "CN"), ("b.test", "CN")],
        "[rate_limit]\nfederation_per_minute = 8\n",
    )
    .await;
    let (a, b) = (nodes[0].client(), nodes[1].client());
    let alice = a.user("alice", &phone(1)).await;
    let bob = b.user("bob", &phone(2)).await;
    let conv = a.direct(&alice, "bob@b.test").await;
    let file = noise(11 * 256 * 1024 + 1000, 2);
    let id = upload(&a, &alice, "application/octet-stream", file.clone()).await;
    let r = send(&a, &alice, &conv, "f1", "file", &id).await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let copy = eventually(10, "the message on bob's node", || async {
        media_in(&b, &bob, &conv).await.pop().map(|m| m.1)
    })
    .await;
    // Not complete: a member is told it is arriving and when to ask again; anyone else
    // learns nothing of it.
    let r = fetch(&b, &bob, &copy).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "not complete");
    assert_eq!(r.json()["error"]["code"], "media_arriving");
    assert_eq!(r.headers["retry-after"], "2");
    let dan = b.user("dan", &phone(3)).await;
    assert_eq!(fetch(&b, &dan, &copy).await.status, StatusCode::NOT_FOUND);
    assert_eq!(nodes[1].node().pending_media_fetches().await.unwrap(), 1);

    // The origin goes down; the fetching node restarts meanwhile; then the origin returns.
    nodes[0].stop().await;
    nodes[1].stop().await;
    nodes[1].start_again().await;
    assert_eq!(
        nodes[1].node().pending_media_fetches().await.unwrap(),
        1,
        "kept across a restart"
    );
    // Back without the limit, so the rest comes at once.
    nodes[0].config.rate_limit.disable_all();
    nodes[0].start_again().await;
    let got = eventually(60, "the file once the origin is back", || async {
        let r = fetch(&b, &bob, &copy).await;
        (r.status == StatusCode::OK).then_some(r)
    })
    .await;
    assert_eq!(got.body.to_vec(), file);
    assert_eq!(nodes[1].node().pending_media_fetches().await.unwrap(), 0);
}

/// A `hosted` message from the fake host `e.test` relaying eve@e.test's file `media`.
pub(crate) fn hosted_file(peer: &tests::FakePeer, n: u64, media: Value) -> Value {
    let submission = peer.envelope(
        &format!("s{n}"),
        "e.test",
        federation::Kind::Message,
        json!({"type": "submit", "conversation": "q1:e.test",
               "message_id": format!("{n:032x}"), "sender": "eve@e.test",
               "ts": tests::now_ms(), "body": {"type": "media", "kind": "file", "media": media}}),
    );
    let env = peer.envelope(
        &format!("h{n}"),
        "a.test",
        federation::Kind::Message,
        json!({"type": "hosted", "conversation": "q1:e.test", "seq": n,
               "submission": serde_json::to_value(&submission).unwrap()}),
    );
    serde_json::to_value(&env).unwrap()
}

pub(crate) fn reference(id: &str, bytes: &[u8]) -> Value {
    json!({"origin": "e.test", "id": id, "size": bytes.len(),
           "content_type": "application/octet-stream",
           "sha256": base64::engine::general_purpose::STANDARD_NO_PAD.encode(Sha256::digest(bytes))})
}

#[tokio::test]
async fn media_whose_bytes_do_not_match_the_reference_is_refused_and_nothing_of_it_is_kept() {
    let (peer, nodes, a, alice) = tests::alice_in_a_hosted_group("").await;
    let good = noise(300 * 1024, 3);
    let served = noise(300 * 1024, 4);
    peer.serve_media("forged", served.clone());
    peer.serve_media("good", good.clone());
    // The origin serves other bytes than the reference's hash names.
    let claimed = noise(300 * 1024, 5);
    let txn = json!({"origin": "e.test", "envelopes": [
        hosted_file(&peer, 1, reference("forged", &claimed)),
        hosted_file(&peer, 2, reference("good", &good)),
    ]});
    let r = peer
        .put(&nodes[0], "m1", &txn, "a.test", tests::now_ms(), &peer.key)
        .await;
    assert_eq!(
        r.json()["results"],
        json!({"h1": {}, "h2": {}}),
        "{}",
        r.json()
    );
    let conv = "q1:e.test";
    let ids = eventually(10, "both messages", || async {
        let ids = media_in(&a, &alice, conv).await;
        (ids.len() == 2).then_some(ids)
    })
    .await;
    eventually(10, "both fetches over", || async {
        (nodes[0].node().pending_media_fetches().await.unwrap() == 0).then_some(())
    })
    .await;
    assert!(
        peer.media_requests()
            .iter()
            .any(|p| p == "/_federation/v1/media/forged/1"),
        "the forged media was fetched in full: {:?}",
        peer.media_requests()
    );
    assert_eq!(
        fetch(&a, &alice, &ids[0].1).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(fetch(&a, &alice, &ids[1].1).await.body.to_vec(), good);
    let raw = std::fs::read(nodes[0].db_path()).unwrap();
    assert!(!holds_any_of(&raw, &served));
}

/// Waits until `peer` has had `requests` media requests and the fetch waits on `clock`: its one
/// timer, which must end between `lo` and `hi` ms from now. Returns that timer's deadline.
async fn fetch_backs_off(
    clock: &ManualClock,
    peer: &tests::FakePeer,
    requests: usize,
    (lo, hi): (u64, u64),
) -> Millis {
    let due = eventually(
        10,
        &format!("backing off after request {requests}"),
        || async {
            let timers = clock.timers();
            (peer.media_requests().len() == requests && timers.len() == 1).then(|| timers[0])
        },
    )
    .await;
    let wait = due.0 - clock.now().0;
    assert!(
        (lo..=hi).contains(&wait),
        "after request {requests}: a wait of {wait} ms, not {lo}–{hi}"
    );
    // The clock stays: nothing is tried again meanwhile.
    assert_eq!(
        peer.media_requests().len(),
        requests,
        "retried before its wait"
    );
    due
}

#[tokio::test]
async fn a_fetch_the_origin_fails_is_retried_only_once_its_backoff_has_passed_on_the_clock() {
    let clock = Arc::new(ManualClock::new(Millis(tests::now_ms())));
    let (peer, nodes, a, alice) =
        tests::alice_in_a_hosted_group_on("", "retry_max_secs = 4", clock.clone()).await;
    // Two parts; the origin answers 503 to both for now.
    let file = noise(300 * 1024, 6);
    peer.serve_media_partly("later", file.clone(), 0);
    let txn = json!({"origin": "e.test", "envelopes": [hosted_file(&peer, 1, reference("later", &file))]});
    let r = peer
        .put(&nodes[0], "m1", &txn, "a.test", tests::now_ms(), &peer.key)
        .await;
    assert_eq!(r.json()["results"], json!({"h1": {}}), "{}", r.json());
    let ids = eventually(10, "the message", || async {
        let ids = media_in(&a, &alice, "q1:e.test").await;
        (!ids.is_empty()).then_some(ids)
    })
    .await;

    // The delivery backoff (docs/PROTOCOL.md): 1 s, 2 s, 4 s, … up to retry_max_secs, each wait
    // drawn from its upper half. Each retry comes once the clock reaches its wait.
    let mut due = Millis(0);
    for (request, window) in [
        (1, (500, 1000)),
        (2, (1000, 2000)),
        (3, (2000, 4000)),
        (4, (2000, 4000)),
    ] {
        due = fetch_backs_off(&clock, &peer, request, window).await;
        if request < 4 {
            clock.set(due);
        }
    }
    // The origin serves the first part now: fetched, the second fails, and the backoff starts
    // again from 1 s (a part that arrived resets it).
    peer.serve_media_partly("later", file.clone(), 1);
    clock.set(due);
    let due = fetch_backs_off(&clock, &peer, 6, (500, 1000)).await;
    // All of it: the last part comes at the next attempt, and the copy is complete.
    peer.serve_media("later", file.clone());
    clock.set(due);
    let got = eventually(10, "the file once its last part came", || async {
        let r = fetch(&a, &alice, &ids[0].1).await;
        (r.status == StatusCode::OK).then_some(r)
    })
    .await;
    assert_eq!(got.body.to_vec(), file);
    let parts: Vec<String> = peer.media_requests();
    let part = |n: u32| format!("/_federation/v1/media/later/{n}");
    assert_eq!(
        parts,
        [
            part(0),
            part(0),
            part(0),
            part(0),
            part(0),
            part(1),
            part(1)
        ],
        "each part asked for again only after a failure"
    );
}

/// `GET path` on `node`, signed as `peer` (for this node).
pub(crate) async fn signed_get(
    peer: &tests::FakePeer,
    node: &tests::TestNode,
    path: &str,
) -> tests::Reply {
    let auth = federation::sign_request(
        &peer.key,
        "GET",
        path,
        "e.test",
        "a.test",
        tests::now_ms(),
        b"",
    );
    let req = http::Request::builder()
        .method(http::Method::GET)
        .uri(path)
        .header("host", "localhost")
        .header("authorization", auth)
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    node.client().send(req).await
}

#[tokio::test]
async fn only_a_peer_holding_a_message_that_refers_to_a_media_may_fetch_it() {
    let (peer, nodes, a, alice) = tests::alice_in_a_hosted_group("").await;
    let bob = a.user("bob", &phone(2)).await;
    let local = a.direct(&alice, "bob@a.test").await;
    let bytes = noise(1000, 6);
    let id = upload(&a, &alice, "application/octet-stream", bytes.clone()).await;
    assert_eq!(
        send(&a, &alice, &local, "l1", "file", &id).await.status,
        StatusCode::CREATED
    );
    assert_eq!(fetch(&a, &bob, &id).await.body.to_vec(), bytes);
    let path = format!("/_federation/v1/media/{id}/0");
    // Sent only between users of this node: no peer may fetch it.
    let r = signed_get(&peer, &nodes[0], &path).await;
    assert_eq!(
        r.status,
        StatusCode::NOT_FOUND,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    // Sent into the group e.test hosts: e.test may.
    let r = send(&a, &alice, "q1:e.test", "g1", "file", &id).await;
    assert_eq!(
        r.status,
        StatusCode::ACCEPTED,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let r = signed_get(&peer, &nodes[0], &path).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body.to_vec(), bytes);
    // What the envelope said of it, once the host has it (202 said queued, not delivered).
    let submission = eventually(10, "the submission at the host", || async {
        peer.envelopes()
            .into_iter()
            .find(|e| e["kind"] == "message")
    })
    .await;
    let media = &submission["content"]["body"]["media"];
    assert_eq!(media["origin"], "a.test");
    assert_eq!(media["id"], id.as_str());
    assert_eq!(media["size"], bytes.len());
    assert_eq!(
        media["sha256"],
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(Sha256::digest(&bytes))
    );
    // A part past the end, another id, an unsigned request.
    let r = signed_get(&peer, &nodes[0], &format!("/_federation/v1/media/{id}/1")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = signed_get(&peer, &nodes[0], "/_federation/v1/media/nope/0").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = a.get(&path, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}
