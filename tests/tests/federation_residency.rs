//! The residency rule across nodes (clause 3.1) and erasure that reaches peers (5.3.c).

use http::StatusCode;
use serde_json::json;
use tests::{Client, eventually, federation, next_of, phone};

async fn consent(c: &Client, token: &str, granted: bool) {
    let r = c
        .call(
            "PUT",
            "/api/v1/me/consents/cross_border_transfer",
            Some(token),
            Some(&json!({ "granted": granted })),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
}

async fn post(c: &Client, token: &str, conv: &str, txn: &str, text: &str) -> StatusCode {
    c.call(
        "POST",
        &format!("/api/v1/conversations/{conv}/messages"),
        Some(token),
        Some(&json!({"txn_id": txn, "body": {"type": "text", "text": text}})),
    )
    .await
    .status
}

#[tokio::test]
async fn data_crosses_to_another_region_only_with_consent_and_stops_when_it_is_revoked() {
    let nodes = federation(&[("a.test", "CN"), ("b.test", "EU")], "").await;
    let (a, b) = (nodes[0].client(), nodes[1].client());
    let alice = a.user("alice", &phone(1)).await;
    let bob = b.user("bob", &phone(2)).await;

    // Bob's node does not send his profile to a CN node without his consent.
    let r = a.get("/api/v1/users/bob@b.test", Some(&alice)).await;
    assert_eq!(r.status, StatusCode::UNAVAILABLE_FOR_LEGAL_REASONS);
    assert_eq!(
        r.error_code(),
        "recipient_residency",
        "his consent, not hers"
    );
    consent(&b, &bob, true).await;
    assert_eq!(
        a.get("/api/v1/users/bob@b.test", Some(&alice)).await.status,
        StatusCode::OK
    );

    // Alice has not consented: 451 naming the peer and its region, nothing stored.
    let create = json!({"kind": "direct", "with": "bob@b.test"});
    let r = a
        .call("POST", "/api/v1/conversations", Some(&alice), Some(&create))
        .await;
    assert_eq!(r.status, StatusCode::UNAVAILABLE_FOR_LEGAL_REASONS);
    let msg = r.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(msg.contains("b.test") && msg.contains("EU"), "{msg}");
    let list = a.get("/api/v1/conversations", Some(&alice)).await.json();
    assert_eq!(list["conversations"], json!([]), "nothing stored: {list}");

    // With consent it works, both ways.
    consent(&a, &alice, true).await;
    let r = a
        .call("POST", "/api/v1/conversations", Some(&alice), Some(&create))
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let conv = r.json()["id"].as_str().unwrap().to_string();
    let mut bob_ws = b.ws(Some(&bob), None).await;
    assert_eq!(
        post(&a, &alice, &conv, "1", "allowed").await,
        StatusCode::CREATED
    );
    assert_eq!(
        next_of(&mut bob_ws, "message").await["message"]["body"]["text"],
        "allowed"
    );

    // Revoked: the next send is refused at once and nothing reaches Bob.
    consent(&a, &alice, false).await;
    assert_eq!(
        post(&a, &alice, &conv, "2", "not allowed").await,
        StatusCode::UNAVAILABLE_FOR_LEGAL_REASONS
    );
    assert!(
        a.visible_texts(&alice, &conv).await == ["allowed"],
        "not stored either"
    );
    // Nothing crossed: once a.test holds nothing for b.test (every envelope answered), nothing
    // more can arrive, and Bob's node has only the allowed message.
    eventually(10, "a.test's queue for b.test emptied", || async {
        (nodes[0].node().queued_for("b.test").await.unwrap() == 0).then_some(())
    })
    .await;
    assert_eq!(b.visible_texts(&bob, &conv).await, ["allowed"]);
}

#[tokio::test]
async fn an_erasure_request_reaches_every_peer_that_received_the_users_data_and_is_acknowledged() {
    let nodes = federation(&[("a.test", "CN"), ("b.test", "CN"), ("c.test", "CN")], "").await;
    let (a, b, c) = (nodes[0].client(), nodes[1].client(), nodes[2].client());
    let alice = a.user("alice", &phone(1)).await;
    let bob = b.user("bob", &phone(2)).await;
    let carol = c.user("carol", &phone(3)).await;
    let group = a
        .call(
            "POST",
            "/api/v1/conversations",
            Some(&alice),
            Some(&json!({"kind": "group", "name": "g", "members": ["bob@b.test", "carol@c.test"]})),
        )
        .await
        .json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        post(&a, &alice, &group, "1", "secret of alice").await,
        StatusCode::CREATED
    );
    // Bob's node learns of the group from the host's membership envelope; he writes once it has.
    eventually(10, "the group on bob's node", || async {
        let list = b.get("/api/v1/conversations", Some(&bob)).await.json();
        list["conversations"]
            .as_array()?
            .iter()
            .any(|c| c["id"] == group.as_str())
            .then_some(())
    })
    .await;
    assert_eq!(
        post(&b, &bob, &group, "1", "bob here").await,
        StatusCode::ACCEPTED
    );
    for (cl, t) in [(&b, &bob), (&c, &carol)] {
        eventually(10, "both messages", || async {
            (cl.visible_texts(t, &group).await == ["secret of alice", "bob here"]).then_some(())
        })
        .await;
    }

    let mut asked = nodes[0].node().request_erasure("alice").await.unwrap();
    asked.sort();
    assert_eq!(asked, ["b.test", "c.test"]);
    eventually(10, "every peer acknowledged", || async {
        let s = nodes[0].node().erasure_status("alice").await.unwrap();
        (s.len() == 2 && s.iter().all(|(_, acked)| *acked)).then_some(())
    })
    .await;
    // On the peers nothing of hers is readable any more; Bob's own message stays.
    for (cl, t) in [(&b, &bob), (&c, &carol)] {
        assert_eq!(cl.visible_texts(t, &group).await, ["bob here"]);
        let r = cl
            .get(&format!("/api/v1/conversations/{group}"), Some(t))
            .await
            .json();
        assert!(!r.to_string().contains("alice@a.test"), "{r}");
    }
}

#[tokio::test]
async fn the_disclosure_log_counts_what_was_delivered_and_what_was_queued_then_dropped_apart() {
    // Alice is in a group that e.test (EU) hosts; she consents to data going abroad.
    let (peer, nodes, a, alice) =
        tests::alice_in_a_group_hosted_in("EU", "retry_max_secs = 1").await;
    consent(&a, &alice, true).await;
    let log = || async { nodes[0].node().disclosures("alice").await.unwrap() };
    let row = |outcome: &str, count: u64| {
        (
            "e.test".to_string(),
            "message".to_string(),
            outcome.to_string(),
            count,
        )
    };

    // Queued is not yet disclosed: the log counts the message once the host answered for it.
    assert_eq!(
        post(&a, &alice, "q1:e.test", "1", "delivered").await,
        StatusCode::ACCEPTED
    );
    eventually(10, "the delivery in the log", || async {
        (log().await == [row("delivered", 1)]).then_some(())
    })
    .await;

    // The host goes down; a message waits for it; alice revokes her consent, so the queued
    // envelope is dropped without ever being taken — and logged as dropped, not delivered.
    peer.unavailable(true);
    assert_eq!(
        post(&a, &alice, "q1:e.test", "2", "never sent").await,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        log().await,
        [row("delivered", 1)],
        "waiting is not disclosed"
    );
    consent(&a, &alice, false).await;
    eventually(10, "the drop in the log", || async {
        (log().await == [row("delivered", 1), row("dropped", 1)]).then_some(())
    })
    .await;
    assert_eq!(
        peer.envelopes().len(),
        1,
        "only the first message reached the host"
    );

    let r = a
        .call("POST", "/api/v1/me/export", Some(&alice), None)
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let archive = a.get("/api/v1/me/export", Some(&alice)).await.json();
    let entries: Vec<(String, String, u64)> = archive["disclosures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            assert_eq!(d["peer"], "e.test");
            (
                d["kind"].as_str().unwrap().to_string(),
                d["outcome"].as_str().unwrap().to_string(),
                d["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        entries,
        [
            ("message".to_string(), "delivered".to_string(), 1),
            ("message".to_string(), "dropped".to_string(), 1)
        ]
    );
}

#[tokio::test]
async fn the_other_persons_missing_consent_has_a_451_code_of_its_own_and_granting_mine_does_not_help()
 {
    let nodes = federation(&[("a.test", "CN"), ("b.test", "EU")], "").await;
    let (a, b) = (nodes[0].client(), nodes[1].client());
    let alice = a.user("alice", &phone(1)).await;
    let bob = b.user("bob", &phone(2)).await;
    let create = json!({"kind": "direct", "with": "bob@b.test"});
    let start = || a.call("POST", "/api/v1/conversations", Some(&alice), Some(&create));

    // Alice has consented; Bob has not: his node withholds him, whatever she grants.
    consent(&a, &alice, true).await;
    let r = start().await;
    assert_eq!(
        (r.status, r.error_code()),
        (
            StatusCode::UNAVAILABLE_FOR_LEGAL_REASONS,
            "recipient_residency".to_string()
        )
    );
    let msg = r.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(
        msg.contains("b.test") && msg.contains("your own consent does not change that"),
        "{msg}"
    );
    assert!(!msg.contains("bob"), "the message names no one: {msg}");
    let group = json!({"kind": "group", "name": "g", "members": ["bob@b.test"]});
    let r = a
        .call("POST", "/api/v1/conversations", Some(&alice), Some(&group))
        .await;
    assert_eq!(r.error_code(), "recipient_residency");

    // Bob consents, Alice revokes: now it is hers, with the code that says so.
    consent(&b, &bob, true).await;
    consent(&a, &alice, false).await;
    let r = start().await;
    assert_eq!(
        (r.status, r.error_code()),
        (
            StatusCode::UNAVAILABLE_FOR_LEGAL_REASONS,
            "residency".to_string()
        )
    );
    consent(&a, &alice, true).await;
    assert_eq!(start().await.status, StatusCode::CREATED);
}
