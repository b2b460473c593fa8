//! Realtime delivery: the WebSocket event stream and the long-poll sync, across users and
//! devices; reconnecting with the last cursor misses nothing and repeats nothing.

use std::sync::Arc;
use std::time::Duration;

use futures_util::SinkExt;
use http::StatusCode;
use serde_json::json;
use tests::node::{Clock, ManualClock, Millis};
use tests::{Client, Reply, TestNode, eventually, next_of, now_ms, phone};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn messages_arrive_live_on_every_members_devices() {
    let n = TestNode::start().await;
    let c = n.client();
    let alice = c.user("alice", &phone(1)).await;
    let bob = c.user("bob", &phone(2)).await;
    let (bob2, _) = c.login("bob").await;
    let id = c.direct(&alice, "bob@localhost").await;
    let mut w_alice = c.ws(Some(&alice), None).await;
    let mut w_bob = c.ws(Some(&bob), None).await;
    let mut w_bob2 = c.ws(Some(&bob2), None).await;

    let sent = c.say(&alice, &id, "live-1", "hi bob").await;
    for ws in [&mut w_bob, &mut w_bob2, &mut w_alice] {
        let e = next_of(ws, "message").await;
        assert_eq!(e["conversation"], id.as_str());
        assert_eq!(e["message"]["seq"], sent["seq"]);
        assert_eq!(e["message"]["sender"], "alice@localhost");
        assert_eq!(
            e["message"]["body"],
            json!({"type": "text", "text": "hi bob"})
        );
        assert!(e["cursor"].as_str().unwrap().parse::<u64>().is_ok());
    }

    // A recall reaches everyone as an event too.
    c.call(
        "POST",
        &format!("/api/v1/conversations/{id}/messages/1/recall"),
        Some(&alice),
        None,
    )
    .await;
    let e = next_of(&mut w_bob, "recall").await;
    assert_eq!(e["seq"], 1);
}

#[tokio::test]
async fn membership_changes_and_removal_are_events() {
    let n = TestNode::start().await;
    let c = n.client();
    let owner = c.user("owner", &phone(1)).await;
    let member = c.user("member", &phone(2)).await;
    let r = c
        .call(
            "POST",
            "/api/v1/conversations",
            Some(&owner),
            Some(&json!({"kind": "group", "name": "G", "members": ["member@localhost"]})),
        )
        .await;
    let g = r.json()["id"].as_str().unwrap().to_string();
    let mut w = c.ws(Some(&member), None).await;
    let e = next_of(&mut w, "membership").await;
    assert_eq!(e["action"], "invited");
    assert_eq!(e["user"], "member@localhost");
    assert_eq!(e["actor"], "owner@localhost");
    c.call(
        "PATCH",
        &format!("/api/v1/conversations/{g}"),
        Some(&owner),
        Some(&json!({"name": "G2"})),
    )
    .await;
    let e = next_of(&mut w, "renamed").await;
    assert_eq!(e["name"], "G2");
    c.call(
        "DELETE",
        &format!("/api/v1/conversations/{g}/members/member@localhost"),
        Some(&owner),
        None,
    )
    .await;
    let e = next_of(&mut w, "membership").await;
    assert_eq!(e["action"], "removed", "the removed member hears of it");
    c.say(&owner, &g, "after", "not for you").await;
    // Nothing after removal: the next message the removed member hears is one sent later.
    let dm = c.direct(&owner, "member@localhost").await;
    c.say(&owner, &dm, "marker", "for you").await;
    assert_eq!(
        next_of(&mut w, "message").await["message"]["body"]["text"],
        "for you",
        "nothing after removal"
    );
}

#[tokio::test]
async fn reconnecting_with_the_last_cursor_misses_nothing_and_repeats_nothing() {
    let n = TestNode::start().await;
    let c = n.client();
    let a = c.user("senda", &phone(1)).await;
    let b = c.user("recvb", &phone(2)).await;
    let id = c.direct(&a, "recvb@localhost").await;
    let mut w = c.ws(Some(&b), None).await;
    c.say(&a, &id, "1", "m1").await;
    let e1 = next_of(&mut w, "message").await;
    let cursor = e1["cursor"].as_str().unwrap().to_string();
    drop(w);
    // While b is away:
    c.say(&a, &id, "2", "m2").await;
    c.say(&a, &id, "3", "m3").await;
    let mut w = c.ws(Some(&b), Some(&cursor)).await;
    let mut got = Vec::new();
    for _ in 0..2 {
        got.push(
            next_of(&mut w, "message").await["message"]["body"]["text"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    assert_eq!(got, ["m2", "m3"]);
    // m1 is not sent again: the next message is one said after the reconnection.
    c.say(&a, &id, "4", "m4").await;
    assert_eq!(
        next_of(&mut w, "message").await["message"]["body"]["text"],
        "m4",
        "m1 is not sent again"
    );

    // The same through long-poll from that cursor.
    let r = c
        .get(&format!("/api/v1/sync?since={cursor}&timeout=0"), Some(&b))
        .await
        .json();
    let texts: Vec<_> = r["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "message")
        .map(|e| e["message"]["body"]["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(texts, ["m2", "m3", "m4"]);
    let next = r["cursor"].as_str().unwrap();
    let r = c
        .get(&format!("/api/v1/sync?since={next}&timeout=0"), Some(&b))
        .await
        .json();
    assert_eq!(r["events"], json!([]));
}

/// A long poll by `token` from `since`, waiting at most `ms`, answered on its own task.
fn long_poll(c: &Client, token: &str, since: &str, ms: u64) -> JoinHandle<Reply> {
    let (c, token, path) = (
        c.clone(),
        token.to_string(),
        format!("/api/v1/sync?since={since}&timeout={ms}"),
    );
    tokio::spawn(async move { c.get(&path, Some(&token)).await })
}

/// Waits until a long poll waits on `clock` for `ms` from now: it has read, found nothing, and
/// started its timeout (a timer of exactly that length).
async fn poll_waits(clock: &ManualClock, ms: u64) {
    eventually(10, "a long poll waiting on its timeout", || async {
        let due = Millis(clock.now().0 + ms);
        clock.timers().contains(&due).then_some(())
    })
    .await;
}

/// The answer of a long poll's task, within 10 s (`what` says why it should come).
async fn answer(poll: JoinHandle<Reply>, what: &str) -> Reply {
    let r = tokio::time::timeout(Duration::from_secs(10), poll)
        .await
        .expect(what)
        .expect("the poll's task");
    assert_eq!(r.status, StatusCode::OK);
    r
}

#[tokio::test]
async fn long_poll_waits_for_the_next_event_or_its_timeout_on_the_clock() {
    let clock = Arc::new(ManualClock::new(Millis(now_ms())));
    let n = TestNode::start_manual("", clock.clone()).await;
    let c = n.client();
    let a = c.user("polla", &phone(1)).await;
    let b = c.user("pollb", &phone(2)).await;
    let id = c.direct(&a, "pollb@localhost").await;
    let head = c.get("/api/v1/sync?timeout=0", Some(&b)).await.json()["cursor"]
        .as_str()
        .unwrap()
        .to_string();
    let waiting = long_poll(&c, &b, &head, 20_000);
    // It has found nothing and waits on the clock, which stays: only an event can end it now.
    poll_waits(&clock, 20_000).await;
    assert!(!waiting.is_finished(), "it waits");
    c.say(&a, &id, "1", "wake up").await;
    let r = answer(waiting, "woken by the message").await.json();
    let events = r["events"].as_array().unwrap().clone();
    assert!(
        events
            .iter()
            .any(|e| e["message"]["body"]["text"] == "wake up")
    );

    // Nothing more comes: the poll answers, with nothing and the same cursor, once the clock
    // reaches its timeout.
    let cursor = r["cursor"].as_str().unwrap().to_string();
    let waiting = long_poll(&c, &b, &cursor, 5_000);
    poll_waits(&clock, 5_000).await;
    assert!(!waiting.is_finished(), "it waits for its timeout");
    clock.advance_ms(5_000);
    let r = answer(waiting, "answered at its timeout").await.json();
    assert_eq!(r["events"], json!([]));
    assert_eq!(r["cursor"], cursor.as_str());

    let r = c.get("/api/v1/sync?since=abc", Some(&b)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = c.get("/api/v1/sync?timeout=999999", Some(&b)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = c.get("/api/v1/sync", None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_websocket_can_authenticate_with_its_first_frame_and_is_refused_without() {
    let n = TestNode::start().await;
    let c = n.client();
    let a = c.user("framea", &phone(1)).await;
    let b = c.user("frameb", &phone(2)).await;
    let id = c.direct(&a, "frameb@localhost").await;
    let mut w = c.ws(None, None).await;
    w.send(Message::Text(
        json!({"type": "auth", "token": b}).to_string().into(),
    ))
    .await
    .unwrap();
    c.say(&a, &id, "1", "by frame").await;
    assert_eq!(
        next_of(&mut w, "message").await["message"]["body"]["text"],
        "by frame"
    );

    let mut bad = c.ws(None, None).await;
    bad.send(Message::Text(
        json!({"type": "auth", "token": "nope"}).to_string().into(),
    ))
    .await
    .unwrap();
    use futures_util::StreamExt;
    let frame = tokio::time::timeout(Duration::from_secs(5), bad.next())
        .await
        .unwrap();
    assert!(
        matches!(frame, Some(Ok(Message::Close(_))) | None | Some(Err(_))),
        "{frame:?}"
    );

    // A plain GET (no upgrade) is told to use a WebSocket.
    let r = c.get("/api/v1/events", Some(&b)).await;
    assert_eq!(r.status, StatusCode::UPGRADE_REQUIRED);
}

#[tokio::test]
async fn a_new_sign_in_notifies_the_accounts_other_devices() {
    let n = TestNode::start().await;
    let c = n.client();
    let t = c.user("watch", &phone(1)).await;
    let mut w = c.ws(Some(&t), None).await;
    c.login("watch").await;
    let e = next_of(&mut w, "notice").await;
    assert_eq!(e["code"], "sign_in.new_device", "{e}");
    assert!(e["text"].as_str().unwrap().contains("有新设备于"), "{e}");
}
