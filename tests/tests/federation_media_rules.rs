//! Media across nodes, the rules around the transfer (issue 25): a receiving node's published
//! size limit is applied by the sender before anything is queued, and retention reaches the
//! copies fetched from other nodes and the fetches still unfinished.

use http::StatusCode;
use serde_json::json;
use tests::{Client, eventually, federation, phone, setup};

use crate::federation_media::{fetch, hosted_file, media_in, noise, reference};

async fn upload(c: &Client, token: &str, body: Vec<u8>) -> String {
    setup::upload_media(c, token, "application/octet-stream", body).await
}

async fn send_file(c: &Client, token: &str, conv: &str, txn: &str, media: &str) -> tests::Reply {
    setup::send_media(c, token, conv, txn, "file", media).await
}

/// How many messages `token` sees in `conv` on `c`.
async fn message_count(c: &Client, token: &str, conv: &str) -> usize {
    let r = c
        .get(
            &format!("/api/v1/conversations/{conv}/messages?limit=200"),
            Some(token),
        )
        .await;
    if r.status != StatusCode::OK {
        return 0;
    }
    r.json()["messages"].as_array().map_or(0, Vec::len)
}

/// Messages of `handle` on `n` counted in their disclosure log toward `peer`.
async fn disclosed(n: &tests::TestNode, handle: &str, peer: &str) -> u64 {
    n.node()
        .disclosures(handle)
        .await
        .unwrap()
        .iter()
        .filter(|(p, kind, _, _)| p == peer && kind == "message")
        .map(|(_, _, _, count)| count)
        .sum()
}

#[tokio::test]
async fn media_larger_than_the_receiving_node_publishes_it_takes_is_refused_at_send_naming_it_and_nothing_is_queued()
 {
    let mut nodes = federation(&[("a.test", "CN"), ("b.test", "CN")], "").await;
    // b.test takes media of at most 64 KiB (and says so in its key document).
    nodes[1].stop().await;
    nodes[1].config.media.max_bytes.0 = 64 * 1024;
    nodes[1].start_again().await;
    let (a, b) = (nodes[0].client(), nodes[1].client());
    let keys = b.get("/_federation/v1/keys", None).await;
    assert_eq!(
        keys.json()["limits"],
        json!({"media_max_bytes": 64 * 1024}),
        "{}",
        keys.json()
    );
    let alice = a.user("alice", &phone(1)).await;
    let bob = b.user("bob", &phone(2)).await;
    let conv = a.direct(&alice, "bob@b.test").await;
    let before = disclosed(&nodes[0], "alice", "b.test").await;

    let big = upload(&a, &alice, vec![7u8; 64 * 1024 + 1]).await;
    let r = send_file(&a, &alice, &conv, "big", &big).await;
    assert_eq!(
        r.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(r.json()["error"]["code"], "too_large_for_peer");
    let message = r.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(message.contains("b.test"), "{message}");
    assert_eq!(message_count(&a, &alice, &conv).await, 0, "nothing stored");
    assert_eq!(
        disclosed(&nodes[0], "alice", "b.test").await,
        before,
        "nothing queued for b.test"
    );

    // What fits goes, and arrives.
    let small = upload(&a, &alice, vec![8u8; 64 * 1024]).await;
    let r = send_file(&a, &alice, &conv, "small", &small).await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    eventually(10, "the small file on bob's node", || async {
        (message_count(&b, &bob, &conv).await == 1).then_some(())
    })
    .await;
    assert_eq!(message_count(&a, &alice, &conv).await, 1);
}

const DAY_MS: u64 = 24 * 3600 * 1000;

#[tokio::test]
async fn retention_removes_copies_fetched_from_other_nodes_and_unfinished_fetches_past_their_days()
{
    let clock = std::sync::Arc::new(node::ManualClock::new(node::Millis(tests::now_ms())));
    let (peer, nodes, a, alice) =
        tests::alice_in_a_hosted_group_on("[retention]\nmedia_max_days = 10\n", "", clock.clone())
            .await;
    let done = noise(300 * 1024, 11);
    peer.serve_media("done", done.clone());
    // Two parts; the second is never served, so its fetch stays unfinished with one part kept.
    peer.serve_media_partly("stuck", noise(300 * 1024, 12), 1);
    let txn = json!({"origin": "e.test", "envelopes": [
        hosted_file(&peer, 1, reference("done", &done)),
        hosted_file(&peer, 2, reference("stuck", &noise(300 * 1024, 12))),
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
    eventually(
        10,
        "the first copy complete, the second part way",
        || async {
            let ok = fetch(&a, &alice, &ids[0].1).await.status == StatusCode::OK;
            let parts = nodes[0].node().stored_media_chunks().await.unwrap();
            // Two parts of the copy, one of the unfinished fetch.
            (ok && parts == 3).then_some(())
        },
    )
    .await;
    assert_eq!(nodes[0].node().pending_media_fetches().await.unwrap(), 1);

    clock.advance_ms(5 * DAY_MS);
    let run = nodes[0]
        .admin(node::AdminRequest::RetentionRun { dry_run: false })
        .await;
    assert_eq!(run["removed"]["media"], 0, "{run}");
    assert_eq!(fetch(&a, &alice, &ids[0].1).await.body.to_vec(), done);
    assert_eq!(nodes[0].node().pending_media_fetches().await.unwrap(), 1);

    clock.advance_ms(6 * DAY_MS);
    let dry = nodes[0]
        .admin(node::AdminRequest::RetentionRun { dry_run: true })
        .await;
    assert_eq!(dry["removed"]["media"], 2, "{dry}");
    let run = nodes[0]
        .admin(node::AdminRequest::RetentionRun { dry_run: false })
        .await;
    assert_eq!(run["removed"]["media"], 2, "{run}");
    assert_eq!(
        fetch(&a, &alice, &ids[0].1).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(nodes[0].node().pending_media_fetches().await.unwrap(), 0);
    assert_eq!(nodes[0].node().stored_media_chunks().await.unwrap(), 0);
}
