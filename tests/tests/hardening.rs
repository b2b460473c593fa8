//! Hardening (issue 19, remaining points): what a peer keeps of a remote user once that
//! user's node asked for their erasure — nothing readable in its database file, freed pages
//! included.

use http::StatusCode;
use serde_json::json;
use tests::{eventually, federation, phone};

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// A handle no table name, key or code string contains.
const HANDLE: &str = "zqxremotemarker";

#[tokio::test]
async fn a_peer_keeps_no_readable_address_of_a_remote_user_it_was_asked_to_erase() {
    let mut nodes = federation(&[("a.test", "CN"), ("b.test", "CN")], "").await;
    let (a, b) = (nodes[0].client(), nodes[1].client());
    let alice = a.user(HANDLE, &phone(1)).await;
    let bob = b.user("bob", &phone(2)).await;
    let conv = a
        .call(
            "POST",
            "/api/v1/conversations",
            Some(&alice),
            Some(&json!({"kind": "direct", "with": "bob@b.test"})),
        )
        .await;
    assert_eq!(conv.status, StatusCode::CREATED);
    let conv = conv.json()["id"].as_str().unwrap().to_string();
    let r = a
        .call(
            "POST",
            &format!("/api/v1/conversations/{conv}/messages"),
            Some(&alice),
            Some(&json!({"txn_id": "1", "body": {"type": "text", "text": "hello"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    eventually(10, "the message on bob's node", || async {
        (b.visible_texts(&bob, &conv).await == ["hello"]).then_some(())
    })
    .await;
    // While she is known, bob's node keeps her address sealed under her key there (the file
    // holds no clear copy, not even in a live row) and shows it from memory, also after a
    // restart.
    let address = format!("{HANDLE}@a.test");
    nodes[1].stop().await;
    let raw = std::fs::read(nodes[1].db_path()).unwrap();
    assert!(contains(&raw, "userid_remoteuser"), "the search works");
    assert!(!contains(&raw, HANDLE), "her address is stored in clear");
    nodes[1].start_again().await;
    let b = nodes[1].client();
    let shown = b
        .get(&format!("/api/v1/conversations/{conv}"), Some(&bob))
        .await
        .json();
    assert!(shown.to_string().contains(&address), "{shown}");

    assert_eq!(
        nodes[0].node().request_erasure(HANDLE).await.unwrap(),
        ["b.test"]
    );
    eventually(10, "bob's node acknowledged", || async {
        let s = nodes[0].node().erasure_status(HANDLE).await.unwrap();
        (s.len() == 1 && s[0].1).then_some(())
    })
    .await;

    // Right after the erasure, and after more writes, no page of bob's node's file holds her
    // handle readably (table names are in clear: the search works).
    nodes[1].stop().await;
    let raw = std::fs::read(nodes[1].db_path()).unwrap();
    assert!(contains(&raw, "userid_remoteuser"), "the search works");
    assert!(
        !contains(&raw, HANDLE),
        "her handle is readable on the peer"
    );
    nodes[1].start_again().await;
    let b = nodes[1].client();
    for i in 0..20 {
        b.user(&format!("later{i}"), &phone(100 + i)).await;
    }
    nodes[1].stop().await;
    let raw = std::fs::read(nodes[1].db_path()).unwrap();
    assert!(
        !contains(&raw, HANDLE),
        "her handle is readable after more writes"
    );
}

/// A remote handle no table name, key or code string contains.
const REMOTE: &str = "zqxackmarker";

#[tokio::test]
async fn the_acknowledgement_of_an_erasure_waiting_for_a_peer_that_is_down_holds_nothing_of_the_person()
 {
    let peer = tests::FakePeer::start("e.test", "CN").await;
    let mut nodes = Box::pin(tests::federation_with(&[("a.test", "CN")], &[&peer], "")).await;
    let c = nodes[0].client();
    let alice = c.user("alice", &phone(1)).await;
    let address = format!("{REMOTE}@e.test");
    // The peer's user owns a group alice is in: alice's node now knows them.
    let state = peer.group_state(
        "st",
        "a.test",
        "q1:e.test",
        "g",
        &address,
        &["alice@a.test"],
    );
    let txn = json!({"origin": "e.test", "envelopes": [serde_json::to_value(&state).unwrap()]});
    let r = peer
        .put(&nodes[0], "t1", &txn, "a.test", tests::now_ms(), &peer.key)
        .await;
    assert_eq!(r.json()["results"]["st"], json!({}));
    let shown = c
        .get("/api/v1/conversations/q1:e.test", Some(&alice))
        .await
        .json();
    assert!(shown.to_string().contains(&address), "{shown}");

    // The peer asks for its user's erasure, and goes down before the acknowledgement can
    // reach it: the acknowledgement waits in alice's node's queue.
    peer.unavailable(true);
    let erasure = peer.envelope(
        "er1",
        "a.test",
        federation::Kind::Erasure,
        json!({"user": address, "reference": "ref-1"}),
    );
    let txn = json!({"origin": "e.test", "envelopes": [serde_json::to_value(&erasure).unwrap()]});
    let r = peer
        .put(&nodes[0], "t2", &txn, "a.test", tests::now_ms(), &peer.key)
        .await;
    assert_eq!(r.json()["results"]["er1"], json!({}));
    nodes[0].stop().await;
    let raw = std::fs::read(nodes[0].db_path()).unwrap();
    assert!(contains(&raw, "dest_seq_outbound"), "the search works");
    assert!(
        !contains(&raw, REMOTE),
        "the erased user's handle is readable while the acknowledgement waits"
    );

    // Back up, the peer gets the acknowledgement it asked for, naming its user.
    peer.unavailable(false);
    nodes[0].start_again().await;
    let ack = eventually(20, "the acknowledgement", || async {
        peer.envelopes()
            .into_iter()
            .find(|e| e["kind"] == "erasure-ack")
    })
    .await;
    assert_eq!(
        ack["content"],
        json!({"user": address, "reference": "ref-1", "erasure": "er1"})
    );
}
