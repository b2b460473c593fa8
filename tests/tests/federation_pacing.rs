//! Pacing of sends into conversations hosted elsewhere (`federation.pace_depth`,
//! `federation.pace_wait_ms`): a send is answered once the host's queue is short again, never
//! later than the wait bound, and at once when the host is down.

use std::time::{Duration, Instant};

use http::StatusCode;
use serde_json::json;
use tests::{Client, FakePeer, alice_in_a_hosted_group, eventually};

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

/// The status a send is answered with, within 10 s (`what` says why it should be).
async fn answered(send: tokio::task::JoinHandle<StatusCode>, what: &str) -> StatusCode {
    tokio::time::timeout(Duration::from_secs(10), send)
        .await
        .expect(what)
        .expect("the send task")
}

/// Waits until the host has received `n` submissions.
async fn host_receives(peer: &FakePeer, n: usize) {
    eventually(10, "the submissions at the host", || async {
        let got = peer
            .envelopes()
            .iter()
            .filter(|e| e["content"]["type"] == "submit")
            .count();
        (got == n).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_send_to_a_slow_host_is_answered_once_its_queue_is_short_again() {
    let (peer, _nodes, c, alice) =
        alice_in_a_hosted_group("retry_max_secs = 1\npace_depth = 1\npace_wait_ms = 60000").await;
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
    let second = answered(second, "answered once the host took the queue").await;
    assert_eq!(second, StatusCode::ACCEPTED);
    host_receives(&peer, 2).await;
}

#[tokio::test]
async fn a_paced_send_is_answered_after_the_wait_bound_even_if_the_host_stays_slow() {
    let (peer, _nodes, c, alice) =
        alice_in_a_hosted_group("retry_max_secs = 1\npace_depth = 1\npace_wait_ms = 300").await;
    peer.hold();
    assert_eq!(
        send(c.clone(), alice.clone(), "1", "one").await.unwrap(),
        StatusCode::ACCEPTED
    );
    let started = Instant::now();
    let second = send(c.clone(), alice.clone(), "2", "two");
    let second = answered(second, "answered after the wait bound").await;
    assert_eq!(second, StatusCode::ACCEPTED);
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "answered before the wait bound while the host held the queue: {:?}",
        started.elapsed()
    );
    // Accepted means queued: released, the host gets both.
    peer.release();
    host_receives(&peer, 2).await;
}

#[tokio::test]
async fn sends_to_a_host_that_is_down_are_answered_at_once() {
    let (peer, _nodes, c, alice) =
        alice_in_a_hosted_group("retry_max_secs = 1\npace_depth = 1\npace_wait_ms = 60000").await;
    peer.stop_listening();
    // Each answer comes within 10 s, far below the 60 s wait bound: nothing waits on a host
    // that is down (the envelopes stay queued for when it is back).
    for i in 0..4 {
        let status = send(c.clone(), alice.clone(), &i.to_string(), "queued");
        let status = answered(status, "answered without waiting for a host that is down").await;
        assert_eq!(status, StatusCode::ACCEPTED);
    }
}
