//! The conversation list's unread counts and last messages (web client, issue 21): counted on
//! the node per device view, moved by "mark read", kept across restarts and in the export.

use http::StatusCode;
use serde_json::{Value, json};
use tests::{TestNode, phone};

/// The listed conversation `id` as `token` sees it.
async fn listed(c: &tests::Client, token: &str, id: &str) -> Value {
    let r = c.get("/api/v1/conversations", Some(token)).await;
    assert_eq!(r.status, StatusCode::OK);
    r.json()["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("{id} not listed"))
}

async fn mark_read(c: &tests::Client, token: &str, id: &str, body: Value) -> tests::Reply {
    c.call(
        "PUT",
        &format!("/api/v1/conversations/{id}/read"),
        Some(token),
        Some(&body),
    )
    .await
}

#[tokio::test]
async fn the_list_counts_what_others_sent_after_my_read_position_and_shows_the_last_message() {
    let n = TestNode::start().await;
    let c = n.client();
    let alice = c.user("alice", &phone(1)).await;
    let bob = c.user("bob", &phone(2)).await;
    let _carol = c.user("carol", &phone(3)).await;
    let id = c.direct(&alice, "bob@localhost").await;
    let other = c.direct(&bob, "carol@localhost").await;
    for (i, t) in ["one", "two", "three"].iter().enumerate() {
        c.say(&alice, &id, &format!("t{i}"), t).await;
    }
    let b = listed(&c, &bob, &id).await;
    assert_eq!(
        (b["unread"].as_u64(), b["read_seq"].as_u64()),
        (Some(3), Some(0))
    );
    assert_eq!(b["last_message"]["kind"], "text");
    assert_eq!(b["last_message"]["preview"], "three");
    assert_eq!(b["last_message"]["seq"], 3);
    assert_eq!(b["last_message"]["sender"], "alice@localhost");
    assert_eq!(
        listed(&c, &alice, &id).await["unread"],
        0,
        "my own messages are not unread to me"
    );
    assert_eq!(listed(&c, &bob, &other).await["last_message"], Value::Null);
    let order = |v: Value| -> Vec<String> {
        v["conversations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        order(c.get("/api/v1/conversations", Some(&bob)).await.json()),
        [id.clone(), other.clone()],
        "the one with the latest activity first"
    );

    let r = mark_read(&c, &bob, &id, json!({"seq": 2})).await;
    assert_eq!(
        (r.status, r.json()["read_seq"].as_u64()),
        (StatusCode::OK, Some(2))
    );
    assert_eq!(listed(&c, &bob, &id).await["unread"], 1);
    let r = mark_read(&c, &bob, &id, json!({"seq": 1})).await;
    assert_eq!(r.json()["read_seq"], 2, "a read position never moves back");
    let r = mark_read(&c, &bob, &id, json!({"seq": 999})).await;
    assert_eq!(r.json()["read_seq"], 3, "nor past the last message");
    let b = listed(&c, &bob, &id).await;
    assert_eq!(
        (b["unread"].as_u64(), b["read_seq"].as_u64()),
        (Some(0), Some(3))
    );
    assert_eq!(
        listed(&c, &alice, &id).await["read_seq"],
        0,
        "each member has their own"
    );

    c.say(&alice, &id, "t9", "four").await;
    assert_eq!(listed(&c, &bob, &id).await["unread"], 1);
    c.say(&carol_token(&c).await, &other, "c1", "hi bob").await;
    assert_eq!(
        order(c.get("/api/v1/conversations", Some(&bob)).await.json()),
        [other, id],
        "a new message moves its conversation up"
    );
}

async fn carol_token(c: &tests::Client) -> String {
    c.login("carol").await.0
}

#[tokio::test]
async fn the_last_message_and_count_are_what_this_device_may_see() {
    let n = TestNode::start().await;
    let c = n.client();
    let alice = c.user("alice", &phone(1)).await;
    let bob = c.user("bob", &phone(2)).await;
    let id = c.direct(&alice, "bob@localhost").await;
    let long = "长".repeat(150);
    c.say(&alice, &id, "t1", &long).await;
    c.say(&alice, &id, "t2", "second").await;
    let b = listed(&c, &bob, &id).await;
    assert_eq!(b["last_message"]["preview"], "second");
    assert_eq!(b["unread"], 2);

    // Deleted from bob's view: the one before it is his last message, and it is not counted.
    let r = c
        .call(
            "DELETE",
            &format!("/api/v1/conversations/{id}/messages/2"),
            Some(&bob),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let b = listed(&c, &bob, &id).await;
    assert_eq!(b["unread"], 1);
    assert_eq!(b["last_message"]["seq"], 1);
    assert_eq!(
        b["last_message"]["preview"].as_str().unwrap(),
        "长".repeat(100),
        "a preview holds the first 100 characters"
    );
    assert_eq!(
        listed(&c, &alice, &id).await["last_message"]["preview"],
        "second",
        "only from his"
    );

    // Recalled: still the last message, without its words.
    let r = c
        .call(
            "POST",
            &format!("/api/v1/conversations/{id}/messages/2/recall"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let a = listed(&c, &alice, &id).await;
    assert_eq!(a["last_message"]["kind"], "recalled");
    assert_eq!(a["last_message"]["preview"], Value::Null);

    // A new device of bob's without cloud history sees nothing from before it signed in.
    let (fresh, _) = c.login("bob").await;
    let f = listed(&c, &fresh, &id).await;
    assert_eq!(
        (f["unread"].as_u64(), &f["last_message"]),
        (Some(0), &Value::Null)
    );

    // Cleared: nothing left to show or count.
    let r = c
        .call(
            "DELETE",
            &format!("/api/v1/conversations/{id}/messages"),
            Some(&bob),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let b = listed(&c, &bob, &id).await;
    assert_eq!(
        (b["unread"].as_u64(), &b["last_message"]),
        (Some(0), &Value::Null)
    );
}

#[tokio::test]
async fn marking_read_is_refused_to_non_members_and_for_a_malformed_seq() {
    let n = TestNode::start().await;
    let c = n.client();
    let alice = c.user("alice", &phone(1)).await;
    let _bob = c.user("bob", &phone(2)).await;
    let eve = c.user("eve01", &phone(3)).await;
    let id = c.direct(&alice, "bob@localhost").await;
    c.say(&alice, &id, "t1", "x").await;
    let r = mark_read(&c, &eve, &id, json!({"seq": 1})).await;
    assert_eq!(
        (r.status, r.error_code()),
        (StatusCode::NOT_FOUND, "not_found".into())
    );
    let r = mark_read(&c, &alice, "nosuch:localhost", json!({"seq": 1})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    for body in [
        json!({}),
        json!({"seq": -1}),
        json!({"seq": "1"}),
        json!({"seq": 1.5}),
        json!({"seq": null}),
        json!({"seq": 1, "more": true}),
    ] {
        let r = mark_read(&c, &alice, &id, body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}");
    }
}

#[tokio::test]
async fn a_read_position_survives_a_restart_and_is_in_the_export() {
    let mut n = TestNode::start().await;
    let c = n.client();
    let alice = c.user("alice", &phone(1)).await;
    let bob = c.user("bob", &phone(2)).await;
    let id = c.direct(&alice, "bob@localhost").await;
    for i in 0..3 {
        c.say(&alice, &id, &format!("t{i}"), "hello").await;
    }
    assert_eq!(
        mark_read(&c, &bob, &id, json!({"seq": 2})).await.status,
        StatusCode::OK
    );
    n.restart().await;
    let c = n.client();
    let b = listed(&c, &bob, &id).await;
    assert_eq!(
        (b["unread"].as_u64(), b["read_seq"].as_u64()),
        (Some(1), Some(2))
    );

    let r = c.call("POST", "/api/v1/me/export", Some(&bob), None).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let archive = c.get("/api/v1/me/export", Some(&bob)).await.json();
    let conv = archive["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == id.as_str())
        .cloned()
        .unwrap();
    assert_eq!(conv["read_up_to"], 2);
}
