//! Pacing of sends into conversations hosted elsewhere (`federation.pace_depth`,
//! `federation.pace_wait_ms`): a send is answered once the host's queue is short again, never
//! later than the wait bound, and at once when the host is down.

use std::time::{Duration, Instant};

use federation::Kind;
use http::StatusCode;
use serde_json::json;
use tests::{Client, FakePeer, TestNode, eventually, federation_tuned, now_ms, phone};

/// A node `a.test` peered with `peer` and the given `[federation]` keys, and its user alice,
/// member of the group `q1:e.test` that the peer hosts.
async fn alice_in_a_group_hosted_by(peer: &FakePeer, keys: &str) -> (Vec<TestNode>, String) {
    let nodes = federation_tuned(&[("a.test", "CN")], &[peer], "", keys).await;
    let c = nodes[0].client();
    let alice = c.user("alice", &phone(1)).await;
    let state = peer.envelope(
        "st",
        "a.test",
        Kind::Membership,
        json!({"type": "state", "conversation": "q1:e.test", "kind": "group", "name": "g",
               "public": false, "actor": "eve@e.test",
               "members": [{"user": "eve@e.test", "role": "owner"},
                           {"user": "alice@a.test", "role": "member"}]}),
    );
    let txn = json!({"origin": "e.test", "envelopes": [serde_json::to_value(&state).unwrap()]});
    let r = peer
        .put(&nodes[0], "t1", &txn, "a.test", now_ms(), &peer.key)
        .await;
    assert_eq!(r.json()["results"]["st"], json!({}));
    (nodes, alice)
}

/// Alice's send of `text` into the hosted group, answered with its status.
fn send(c: Client, alice: String, txn: &str, text: &str) -> tokio::task::JoinHandle<StatusCode> {
    let body = json!({"txn_id": txn, "body": {"type": "text", "text": text}});
    tokio::spawn(async move {
        c.call(
            "POST",
            "/api/v1/conversations/q1:e.test/messages",
            Some(&alice),
            Some(&body),
        )
        .await
        .status
    })
}

fn submissions(peer: &FakePeer) -> usize {
    peer.envelopes()
        .iter()
        .filter(|e| e["content"]["type"] == "submit")
        .count()
}

#[tokio::test]
async fn a_send_to_a_slow_host_is_answered_once_its_queue_is_short_again() {
    let peer = FakePeer::start("e.test", "CN").await;
    let (nodes, alice) = alice_in_a_group_hosted_by(
        &peer,
        "retry_max_secs = 1\npace_depth = 1\npace_wait_ms = 60000",
    )
    .await;
    let c = nodes[0].client();
    peer.hold();
    // The first envelope fits within the depth: answered at once, then held at the host.
    let first = send(c.clone(), alice.clone(), "1", "one").await.unwrap();
    assert_eq!(first, StatusCode::ACCEPTED);
    // The second makes two waiting for the host: its answer waits.
    let second = send(c.clone(), alice.clone(), "2", "two");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !second.is_finished(),
        "answered while two envelopes waited for a host that takes one"
    );
    // The host takes the first transaction: the queue is short again, and the send is answered.
    peer.release();
    let second = tokio::time::timeout(Duration::from_secs(10), second)
        .await
        .expect("answered once the host took the queue")
        .unwrap();
    assert_eq!(second, StatusCode::ACCEPTED);
    eventually(10, "both submissions at the host", || async {
        (submissions(&peer) == 2).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_paced_send_is_answered_after_the_wait_bound_even_if_the_host_stays_slow() {
    let peer = FakePeer::start("e.test", "CN").await;
    let (nodes, alice) = alice_in_a_group_hosted_by(
        &peer,
        "retry_max_secs = 1\npace_depth = 1\npace_wait_ms = 300",
    )
    .await;
    let c = nodes[0].client();
    peer.hold();
    assert_eq!(
        send(c.clone(), alice.clone(), "1", "one").await.unwrap(),
        StatusCode::ACCEPTED
    );
    let started = Instant::now();
    let second = tokio::time::timeout(
        Duration::from_secs(10),
        send(c.clone(), alice.clone(), "2", "two"),
    )
    .await
    .expect("answered after the wait bound")
    .unwrap();
    assert_eq!(second, StatusCode::ACCEPTED);
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "answered before the wait bound while the host held the queue: {:?}",
        started.elapsed()
    );
    // Accepted means queued: released, the host gets both.
    peer.release();
    eventually(10, "both submissions at the host", || async {
        (submissions(&peer) == 2).then_some(())
    })
    .await;
}

#[tokio::test]
async fn sends_to_a_host_that_is_down_are_answered_at_once() {
    let peer = FakePeer::start("e.test", "CN").await;
    let (nodes, alice) = alice_in_a_group_hosted_by(
        &peer,
        "retry_max_secs = 1\npace_depth = 1\npace_wait_ms = 60000",
    )
    .await;
    let c = nodes[0].client();
    peer.stop_listening();
    // Each answer comes within 10 s, far below the 60 s wait bound: nothing waits on a host
    // that is down (the envelopes stay queued for when it is back).
    for i in 0..4 {
        let status = tokio::time::timeout(
            Duration::from_secs(10),
            send(c.clone(), alice.clone(), &i.to_string(), "queued"),
        )
        .await
        .expect("answered without waiting for a host that is down")
        .unwrap();
        assert_eq!(status, StatusCode::ACCEPTED);
    }
}
