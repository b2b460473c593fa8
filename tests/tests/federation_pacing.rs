//! Pacing of sends into conversations hosted elsewhere (`federation.pace_depth`,
//! `federation.pace_wait_ms`): a send is answered once the host's queue is short again, never
//! later than the wait bound, and at once when the host is down. The node runs on a manual
//! clock, so the wait bound passes only when a test moves it.

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use serde_json::json;
use tests::node::{Clock, ManualClock, Millis};
use tests::{Client, FakePeer, TestNode, alice_in_a_hosted_group_on, eventually, now_ms};

/// A manual clock at the real time (the fake host signs with the real time).
fn manual_clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(Millis(now_ms())))
}

/// Alice in the group hosted by the fake host `e.test`, her node on `clock`.
async fn alice_in_a_group_on(
    keys: &str,
    clock: &Arc<ManualClock>,
) -> (FakePeer, Vec<TestNode>, Client, String) {
    alice_in_a_hosted_group_on("", keys, clock.clone()).await
}

/// Waits until a timer ending `ms` from now runs on `clock`: a send waiting for pacing.
async fn pacing_waits(clock: &ManualClock, ms: u64) {
    eventually(10, "a send waiting on the pacing bound", || async {
        let due = Millis(clock.now().0 + ms);
        clock.timers().contains(&due).then_some(())
    })
    .await;
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
    let clock = manual_clock();
    let (peer, _nodes, c, alice) = alice_in_a_group_on(
        "retry_max_secs = 1\npace_depth = 1\npace_wait_ms = 60000",
        &clock,
    )
    .await;
    peer.hold();
    // The first envelope fits within the depth: answered at once, then held at the host.
    let first = send(c.clone(), alice.clone(), "1", "one").await.unwrap();
    assert_eq!(first, StatusCode::ACCEPTED);
    // The second makes two waiting for the host: its answer waits, on the 60 s bound, which
    // does not pass (the clock stays).
    let second = send(c.clone(), alice.clone(), "2", "two");
    pacing_waits(&clock, 60_000).await;
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
    let clock = manual_clock();
    let (peer, _nodes, c, alice) = alice_in_a_group_on(
        "retry_max_secs = 1\npace_depth = 1\npace_wait_ms = 300",
        &clock,
    )
    .await;
    peer.hold();
    assert_eq!(
        send(c.clone(), alice.clone(), "1", "one").await.unwrap(),
        StatusCode::ACCEPTED
    );
    // The second send waits on a timer due exactly at the 300 ms bound …
    let second = send(c.clone(), alice.clone(), "2", "two");
    pacing_waits(&clock, 300).await;
    clock.advance_ms(299);
    assert!(
        !second.is_finished(),
        "answered before the wait bound while the host held the queue"
    );
    // … and is answered once the clock reaches it, the host still holding the queue.
    clock.advance_ms(1);
    let second = answered(second, "answered after the wait bound").await;
    assert_eq!(second, StatusCode::ACCEPTED);
    // Accepted means queued: released, the host gets both.
    peer.release();
    host_receives(&peer, 2).await;
}

#[tokio::test]
async fn sends_to_a_host_that_is_down_are_answered_at_once() {
    let clock = manual_clock();
    let (peer, _nodes, c, alice) = alice_in_a_group_on(
        "retry_max_secs = 1\npace_depth = 1\npace_wait_ms = 60000",
        &clock,
    )
    .await;
    peer.stop_listening();
    // Each is answered though the clock never reaches the 60 s wait bound: nothing waits on
    // a host that is down (the envelopes stay queued for when it is back).
    for i in 0..4 {
        let status = send(c.clone(), alice.clone(), &i.to_string(), "queued");
        let status = answered(status, "answered without waiting for a host that is down").await;
        assert_eq!(status, StatusCode::ACCEPTED);
    }
}
