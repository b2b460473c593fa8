//! Chat across nodes: real nodes on loopback, each with its own domain, signing key and
//! certificate, federating over HTTPS with signed transactions.

use std::sync::Arc;

use http::StatusCode;
use serde_json::{Value, json};
use tests::node::{Clock, ManualClock, Millis};
use tests::{Client, eventually, federation, next_of, now_ms, phone};

/// POST a text and return the status and body (201 on the host, 202 when forwarded).
async fn post(c: &Client, token: &str, conv: &str, txn: &str, text: &str) -> (StatusCode, Value) {
    let r = c
        .call(
            "POST",
            &format!("/api/v1/conversations/{conv}/messages"),
            Some(token),
            Some(&json!({"txn_id": txn, "body": {"type": "text", "text": text}})),
        )
        .await;
    let v = if r.body.is_empty() {
        json!(null)
    } else {
        r.json()
    };
    (r.status, v)
}

/// Waits until `token`'s history of `conv` on `c` is exactly `want`.
async fn history_becomes(c: &Client, token: &str, conv: &str, want: &[&str]) {
    eventually(10, &format!("history {want:?}"), || async {
        (c.visible_texts(token, conv).await == want).then_some(())
    })
    .await
}

/// The next message event on `ws` whose text is `text`, skipping others.
async fn message_with(ws: &mut tests::Ws, text: &str) -> Value {
    loop {
        let e = next_of(ws, "message").await;
        if e["message"]["body"]["text"] == text {
            return e;
        }
    }
}

async fn create_direct(c: &Client, token: &str, with: &str) -> (StatusCode, Value) {
    let r = c
        .call(
            "POST",
            "/api/v1/conversations",
            Some(token),
            Some(&json!({"kind": "direct", "with": with})),
        )
        .await;
    (r.status, r.json())
}

#[tokio::test]
async fn direct_messages_flow_both_ways_between_two_nodes_with_live_events() {
    let nodes = federation(&[("a.test", "CN"), ("b.test", "CN")], "").await;
    let (a, b) = (nodes[0].client(), nodes[1].client());
    let alice = a.user("alice", &phone(1)).await;
    let bob = b.user("bob", &phone(2)).await;
    let mut bob_ws = b.ws(Some(&bob), None).await;
    let mut alice_ws = a.ws(Some(&alice), None).await;

    // Looking up a remote user asks their node: nickname and avatar, nothing else.
    let r = a.get("/api/v1/users/bob@b.test", Some(&alice)).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let v = r.json();
    assert_eq!(v["user"], "bob@b.test");
    assert_eq!(v["nickname"], "Nick bob");
    assert_eq!(v["profile"], json!({}));
    assert!(!String::from_utf8_lossy(&r.body).contains(&phone(2)[3..]));

    let (status, conv) = create_direct(&a, &alice, "bob@b.test").await;
    assert_eq!(status, StatusCode::CREATED, "{conv}");
    let id = conv["id"].as_str().unwrap().to_string();
    assert!(
        id.ends_with(":a.test"),
        "hosted by the creator's node: {id}"
    );

    let (status, sent) = post(&a, &alice, &id, "t1", "hello bob").await;
    assert_eq!(status, StatusCode::CREATED, "{sent}");
    let e = next_of(&mut bob_ws, "message").await;
    assert_eq!(e["conversation"], id.as_str());
    assert_eq!(e["message"]["sender"], "alice@a.test");
    assert_eq!(e["message"]["body"]["text"], "hello bob");
    assert_eq!(e["message"]["seq"], 1);
    history_becomes(&b, &bob, &id, &["hello bob"]).await;

    // Bob answers from his node: queued for the host (202), ordered there, seen on both.
    let (status, v) = post(&b, &bob, &id, "r1", "hi alice").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["pending"], true);
    let e = message_with(&mut alice_ws, "hi alice").await;
    assert_eq!(e["message"]["sender"], "bob@b.test");
    assert_eq!(e["message"]["seq"], 2);
    let e = message_with(&mut bob_ws, "hi alice").await;
    assert_eq!(e["message"]["seq"], 2);
    history_becomes(&a, &alice, &id, &["hello bob", "hi alice"]).await;
    history_becomes(&b, &bob, &id, &["hello bob", "hi alice"]).await;

    // The same txn id again is the same pending answer, and nothing more arrives.
    let (status, _) = post(&b, &bob, &id, "r1", "hi alice").await;
    assert_eq!(status, StatusCode::ACCEPTED);

    // Bob opening a direct conversation with Alice finds the existing one.
    let (status, again) = create_direct(&b, &bob, "alice@a.test").await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["id"], id.as_str());
    assert_eq!(again["with"], "alice@a.test");
    let one = b
        .get(&format!("/api/v1/conversations/{id}"), Some(&bob))
        .await
        .json();
    let members: Vec<(&str, &str)> = one["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["user"].as_str().unwrap(), m["nickname"].as_str().unwrap()))
        .collect();
    assert!(members.contains(&("bob@b.test", "Nick bob")), "{one}");
    assert!(members.iter().any(|(u, _)| *u == "alice@a.test"), "{one}");
    history_becomes(&a, &alice, &id, &["hello bob", "hi alice"]).await;

    // Bob recalls his message from his node: the host checks author and window, and every
    // copy becomes a tombstone.
    let r = b
        .call(
            "POST",
            &format!("/api/v1/conversations/{id}/messages/2/recall"),
            Some(&bob),
            None,
        )
        .await;
    assert!(
        r.status.is_success(),
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(next_of(&mut alice_ws, "recall").await["seq"], 2);
    history_becomes(&a, &alice, &id, &["hello bob", "<recalled>"]).await;
    history_becomes(&b, &bob, &id, &["hello bob", "<recalled>"]).await;
    // Bob may not recall Alice's message: refused on his node already.
    let r = b
        .call(
            "POST",
            &format!("/api/v1/conversations/{id}/messages/1/recall"),
            Some(&bob),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    history_becomes(&a, &alice, &id, &["hello bob", "<recalled>"]).await;
    drop(nodes);
}

async fn create_group(c: &Client, token: &str, name: &str, members: &[&str]) -> String {
    let r = c
        .call(
            "POST",
            "/api/v1/conversations",
            Some(token),
            Some(&json!({"kind": "group", "name": name, "members": members})),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    r.json()["id"].as_str().unwrap().to_string()
}

/// The member addresses of `conv` as `token` sees them on `c`, sorted.
async fn members_of(c: &Client, token: &str, conv: &str) -> Vec<String> {
    let r = c
        .get(&format!("/api/v1/conversations/{conv}"), Some(token))
        .await;
    if r.status != StatusCode::OK {
        return Vec::new();
    }
    let mut v: Vec<String> = r.json()["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["user"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn a_group_spans_three_nodes_with_live_events_everywhere() {
    let nodes = federation(&[("a.test", "CN"), ("b.test", "CN"), ("c.test", "CN")], "").await;
    let (a, b, c) = (nodes[0].client(), nodes[1].client(), nodes[2].client());
    let alice = a.user("alice", &phone(1)).await;
    let amy = a.user("amy", &phone(2)).await;
    let bob = b.user("bob", &phone(3)).await;
    let carol = c.user("carol", &phone(4)).await;
    let mut ws = [
        a.ws(Some(&amy), None).await,
        b.ws(Some(&bob), None).await,
        c.ws(Some(&carol), None).await,
    ];

    let id = create_group(
        &a,
        &alice,
        "three nodes",
        &["amy@a.test", "bob@b.test", "carol@c.test"],
    )
    .await;
    let everyone = ["alice@a.test", "amy@a.test", "bob@b.test", "carol@c.test"];
    for (client, token) in [(&b, &bob), (&c, &carol)] {
        eventually(10, "the group on every node", || async {
            (members_of(client, token, &id).await == everyone).then_some(())
        })
        .await;
    }

    // Each node's user writes; every other node's user sees it live, in the host's order.
    assert_eq!(
        post(&a, &alice, &id, "1", "from a").await.0,
        StatusCode::CREATED
    );
    assert_eq!(
        post(&b, &bob, &id, "1", "from b").await.0,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        post(&c, &carol, &id, "1", "from c").await.0,
        StatusCode::ACCEPTED
    );
    for w in ws.iter_mut() {
        for text in ["from a", "from b", "from c"] {
            let e = message_with(w, text).await;
            assert_eq!(e["conversation"], id.as_str());
        }
    }
    let a_order = {
        history_becomes(&a, &alice, &id, &["from a", "from b", "from c"]).await;
        vec!["from a", "from b", "from c"]
    };
    for (client, token) in [(&b, &bob), (&c, &carol)] {
        history_becomes(client, token, &id, &a_order).await;
    }

    // Carol leaves from her node: the host applies it and every node hears of it.
    let r = c
        .call(
            "DELETE",
            &format!("/api/v1/conversations/{id}/members/carol@c.test"),
            Some(&carol),
            None,
        )
        .await;
    assert!(
        r.status.is_success(),
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let three = ["alice@a.test", "amy@a.test", "bob@b.test"];
    eventually(10, "carol gone on the host", || async {
        (members_of(&a, &alice, &id).await == three).then_some(())
    })
    .await;
    eventually(10, "carol gone on b", || async {
        (members_of(&b, &bob, &id).await == three).then_some(())
    })
    .await;
    eventually(10, "carol no longer a member on c", || async {
        let r = c
            .get(&format!("/api/v1/conversations/{id}"), Some(&carol))
            .await;
        (r.status == StatusCode::NOT_FOUND).then_some(())
    })
    .await;
    // What is said after she left does not reach her node's copy.
    assert_eq!(
        post(&a, &alice, &id, "2", "after").await.0,
        StatusCode::CREATED
    );
    history_becomes(&b, &bob, &id, &["from a", "from b", "from c", "after"]).await;
}

#[tokio::test]
async fn messages_wait_for_a_peer_that_is_down_and_arrive_once_even_across_a_sender_restart() {
    let mut nodes = federation(&[("a.test", "CN"), ("b.test", "CN")], "").await;
    let a = nodes[0].client();
    let alice = a.user("alice", &phone(1)).await;
    let bob = nodes[1].client().user("bob", &phone(2)).await;
    let id = create_direct(&a, &alice, "bob@b.test").await.1["id"]
        .as_str()
        .unwrap()
        .to_string();
    history_becomes(&nodes[1].client(), &bob, &id, &[]).await;
    // Bob's node applying the conversation is not yet a.test taking it off its queue (which
    // would otherwise still count against queue_max): wait for a.test to record the delivery.
    eventually(10, "a.test recorded the delivery", || async {
        let log = nodes[0].node().disclosures("alice").await.unwrap();
        log.iter()
            .any(|(p, k, o, _)| p == "b.test" && k == "membership" && o == "delivered")
            .then_some(())
    })
    .await;

    nodes[1].stop().await;
    for i in 0..3 {
        let (status, _) = post(&a, &alice, &id, &format!("t{i}"), &format!("queued {i}")).await;
        assert_eq!(
            status,
            StatusCode::CREATED,
            "accepted while the peer is down"
        );
    }
    // The sender restarts with the queue still full: nothing is lost.
    nodes[0].restart_in_place().await;
    let a = nodes[0].client();
    let alice = a.login("alice").await.0;
    assert_eq!(
        post(&a, &alice, &id, "t3", "queued 3").await.0,
        StatusCode::CREATED
    );

    nodes[1].start_again().await;
    let b = nodes[1].client();
    let bob = b.login("bob").await.0;
    let want = ["queued 0", "queued 1", "queued 2", "queued 3"];
    history_becomes(&b, &bob, &id, &want).await;
    // And exactly once: once nothing is left in a.test's queue for b.test (every envelope was
    // answered), nothing more can arrive; b.test holds four, in order, with seqs 1..=4.
    eventually(10, "a.test's queue for b.test emptied", || async {
        (nodes[0].node().queued_for("b.test").await.unwrap() == 0).then_some(())
    })
    .await;
    assert_eq!(b.visible_texts(&bob, &id).await, want);
    let r = b
        .get(
            &format!("/api/v1/conversations/{id}/messages?limit=50"),
            Some(&bob),
        )
        .await
        .json();
    let mut seqs: Vec<u64> = r["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect();
    seqs.sort();
    assert_eq!(seqs, vec![1, 2, 3, 4]);
}

#[tokio::test]
async fn a_full_peer_queue_refuses_new_sends_and_a_returning_peer_cuts_the_backoff_short() {
    // Long backoff, tiny queue; both nodes on a clock that moves only when this test says.
    let clock = Arc::new(ManualClock::new(Millis(now_ms())));
    let mut nodes = tests::federation_on(
        &[("a.test", "CN"), ("b.test", "CN")],
        &[],
        "",
        "retry_max_secs = 120\nqueue_max = 3",
        clock.clone(),
    )
    .await;
    let a = nodes[0].client();
    let alice = a.user("alice", &phone(1)).await;
    let bob = nodes[1].client().user("bob", &phone(2)).await;
    let id = create_direct(&a, &alice, "bob@b.test").await.1["id"]
        .as_str()
        .unwrap()
        .to_string();
    history_becomes(&nodes[1].client(), &bob, &id, &[]).await;
    // Bob's node applying the conversation is not yet a.test taking it off its queue (which
    // would otherwise still count against queue_max): wait for a.test to record the delivery.
    eventually(10, "a.test recorded the delivery", || async {
        let log = nodes[0].node().disclosures("alice").await.unwrap();
        log.iter()
            .any(|(p, k, o, _)| p == "b.test" && k == "membership" && o == "delivered")
            .then_some(())
    })
    .await;

    nodes[1].stop().await;
    for i in 0..3 {
        let (status, _) = post(&a, &alice, &id, &format!("q{i}"), &format!("m{i}")).await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let r = a
        .call(
            "POST",
            &format!("/api/v1/conversations/{id}/messages"),
            Some(&alice),
            Some(&json!({"txn_id": "q3", "body": {"type": "text", "text": "one too many"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.error_code(), "peer_queue_full");
    assert!(r.headers.contains_key("retry-after"));
    // Refused means not stored either.
    assert_eq!(
        a.get(
            &format!("/api/v1/conversations/{id}/messages"),
            Some(&alice)
        )
        .await
        .json()["messages"]
            .as_array()
            .unwrap()
            .len(),
        3
    );

    // Let the sender back off (waits of at most 1, 2, 4, 8, 16 s): after each failed attempt,
    // move the clock past that attempt's longest wait, so the next attempt fails too.
    let failures = || nodes[0].node().delivery_failures("b.test");
    for attempt in 1..=5u32 {
        eventually(10, &format!("failed attempt {attempt}"), || async {
            (failures() >= u64::from(attempt)).then_some(())
        })
        .await;
        if attempt < 5 {
            clock.advance_ms(1000 << (attempt - 1));
        }
    }
    // Now it waits at least 8 s on the clock, which stays where it is from here on.
    let waits = clock.timers();
    assert!(
        waits.iter().any(|t| t.saturating_sub(clock.now()) >= 8_000),
        "backing off for at least 8 s: {waits:?}"
    );
    // Bring the peer back and have it contact the sender: delivery follows without the clock
    // moving at all, so the wait was cut short rather than run out.
    nodes[1].start_again().await;
    let b = nodes[1].client();
    let bob = b.login("bob").await.0;
    let r = b.get("/api/v1/users/alice@a.test", Some(&bob)).await;
    assert_eq!(r.status, StatusCode::OK);
    history_becomes(&b, &bob, &id, &["m0", "m1", "m2"]).await;
    eventually(10, "a.test's queue for b.test emptied", || async {
        (nodes[0].node().queued_for("b.test").await.unwrap() == 0).then_some(())
    })
    .await;
}
