//! Friends on one node: requests (note, accept, decline, cancel), friendships and removal, the
//! limits, events on both sides' streams, blocks (never shown to the blocked user), the
//! who-may-message-me setting, "friends" profile visibility, erasure and the export.

use std::sync::Arc;

use http::StatusCode;
use node::{ManualClock, Millis};
use serde_json::{Value, json};
use tests::{Client, TestNode, eventually, next_event, next_of, now_ms, phone};

async fn ask(c: &Client, token: &str, to: &str, note: Option<&str>) -> tests::Reply {
    let body = match note {
        Some(n) => json!({"to": to, "note": n}),
        None => json!({"to": to}),
    };
    c.call("POST", "/api/v1/friends/requests", Some(token), Some(&body))
        .await
}

async fn requests(c: &Client, token: &str) -> Vec<Value> {
    let r = c.get("/api/v1/friends/requests", Some(token)).await;
    assert_eq!(r.status, StatusCode::OK);
    r.json()["requests"].as_array().expect("requests").clone()
}

async fn friends(c: &Client, token: &str) -> Vec<String> {
    let r = c.get("/api/v1/friends", Some(token)).await;
    assert_eq!(r.status, StatusCode::OK);
    r.json()["friends"]
        .as_array()
        .expect("friends")
        .iter()
        .map(|f| f["user"].as_str().expect("user").to_string())
        .collect()
}

/// The actions of every friend event on `token`'s stream so far.
async fn friend_events(c: &Client, token: &str) -> Vec<String> {
    let r = c.get("/api/v1/sync?since=0&timeout=0", Some(token)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json());
    r.json()["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["type"] == "friend")
        .map(|e| e["action"].as_str().expect("action").to_string())
        .collect()
}

/// Alice asks Bob, Bob accepts; returns the friendship id.
async fn befriend(c: &Client, a: &str, b: &str, b_addr: &str) -> String {
    let r = ask(c, a, b_addr, None).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json());
    let id = r.json()["id"].as_str().expect("id").to_string();
    let r = c
        .call(
            "POST",
            &format!("/api/v1/friends/requests/{id}/accept"),
            Some(b),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json());
    r.json()["id"].as_str().expect("id").to_string()
}

async fn open_direct(c: &Client, token: &str, with: &str) -> tests::Reply {
    c.call(
        "POST",
        "/api/v1/conversations",
        Some(token),
        Some(&json!({"kind": "direct", "with": with})),
    )
    .await
}

#[tokio::test]
async fn an_accepted_request_makes_friends_on_both_sides_and_each_step_is_an_event() {
    let n = TestNode::start().await;
    let c = n.client();
    let alice = c.user("alice", &phone(1)).await;
    let bob = c.user("bob", &phone(2)).await;
    let mut ws_a = c.ws(Some(&alice), None).await;
    let mut ws_b = c.ws(Some(&bob), None).await;

    let r = ask(&c, &alice, "bob@localhost", Some("  我是爱丽丝  ")).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let sent = r.json();
    assert_eq!(sent["direction"], "outgoing");
    assert_eq!(sent["user"], "bob@localhost");
    assert_eq!(sent["note"], "我是爱丽丝", "trimmed");
    assert_eq!(sent["state"], "pending");
    let id = sent["id"].as_str().unwrap().to_string();

    let e = next_of(&mut ws_a, "friend").await;
    assert_eq!(
        (&e["action"], &e["user"], &e["id"]),
        (&json!("requested"), &json!("bob@localhost"), &json!(id))
    );
    let e = next_of(&mut ws_b, "friend").await;
    assert_eq!(
        (&e["action"], &e["user"]),
        (&json!("requested"), &json!("alice@localhost"))
    );

    let incoming = requests(&c, &bob).await;
    assert_eq!(incoming.len(), 1);
    assert_eq!(incoming[0]["direction"], "incoming");
    assert_eq!(incoming[0]["user"], "alice@localhost");
    assert_eq!(
        incoming[0]["note"], "我是爱丽丝",
        "the recipient reads the note"
    );
    assert_eq!(requests(&c, &alice).await[0]["direction"], "outgoing");

    // Only the recipient accepts.
    let path = format!("/api/v1/friends/requests/{id}/accept");
    assert_eq!(
        c.call("POST", &path, Some(&alice), None).await.status,
        StatusCode::NOT_FOUND
    );
    let r = c.call("POST", &path, Some(&bob), None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["user"], "alice@localhost");
    for ws in [&mut ws_a, &mut ws_b] {
        assert_eq!(next_of(ws, "friend").await["action"], "accepted");
    }
    assert_eq!(friends(&c, &alice).await, ["bob@localhost"]);
    assert_eq!(friends(&c, &bob).await, ["alice@localhost"]);
    assert!(requests(&c, &bob).await.is_empty(), "no longer pending");
    assert_eq!(
        c.call("POST", &path, Some(&bob), None).await.status,
        StatusCode::NOT_FOUND,
        "answered once"
    );
    assert_eq!(
        ask(&c, &alice, "bob@localhost", None).await.error_code(),
        "already_friends"
    );

    // Either side removes.
    let link = c.get("/api/v1/friends", Some(&bob)).await.json()["friends"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = c
        .call(
            "DELETE",
            &format!("/api/v1/friends/{link}"),
            Some(&bob),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    for ws in [&mut ws_a, &mut ws_b] {
        assert_eq!(next_of(ws, "friend").await["action"], "removed");
    }
    assert!(friends(&c, &alice).await.is_empty());
    assert!(friends(&c, &bob).await.is_empty());
    let r = c
        .call(
            "DELETE",
            &format!("/api/v1/friends/{link}"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_declined_request_cannot_be_sent_again_until_the_configured_days_pass() {
    let clock = Arc::new(ManualClock::new(Millis(now_ms())));
    let n = TestNode::start_manual("[friends]\ndeclined_resend_days = 2\n", clock.clone()).await;
    let c = n.client();
    let alice = c.user("alice", &phone(1)).await;
    let bob = c.user("bob", &phone(2)).await;
    let mut ws_a = c.ws(Some(&alice), None).await;

    let id = ask(&c, &alice, "bob@localhost", None).await.json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        ask(&c, &bob, "alice@localhost", None).await.error_code(),
        "request_pending",
        "one pending request per pair, either way"
    );
    let r = c
        .call(
            "POST",
            &format!("/api/v1/friends/requests/{id}/decline"),
            Some(&bob),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(next_of(&mut ws_a, "friend").await["action"], "requested");
    assert_eq!(next_of(&mut ws_a, "friend").await["action"], "declined");
    assert!(requests(&c, &alice).await.is_empty());

    assert_eq!(
        ask(&c, &alice, "bob@localhost", None).await.error_code(),
        "recently_declined"
    );
    clock.advance_ms(2 * 86_400_000 - 60_000);
    assert_eq!(
        ask(&c, &alice, "bob@localhost", None).await.error_code(),
        "recently_declined"
    );
    clock.advance_ms(120_000);
    let r = ask(&c, &alice, "bob@localhost", None).await;
    assert_eq!(r.status, StatusCode::CREATED, "after the cool-down");

    // The sender cancels; only the sender can.
    let id = r.json()["id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/friends/requests/{id}");
    assert_eq!(
        c.call("DELETE", &path, Some(&bob), None).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        c.call("DELETE", &path, Some(&alice), None).await.status,
        StatusCode::NO_CONTENT
    );
    assert!(requests(&c, &bob).await.is_empty());
    let r = ask(&c, &alice, "bob@localhost", None).await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "a cancelled request has no cool-down"
    );
}

#[tokio::test]
async fn pending_and_daily_limits_hold_and_the_daily_one_says_when_to_retry() {
    let clock = Arc::new(ManualClock::new(Millis(now_ms())));
    let n = TestNode::start_manual(
        "[friends]\nmax_pending_outgoing = 2\nrequests_per_day = 3\n",
        clock.clone(),
    )
    .await;
    let c = n.client();
    let alice = c.user("alice", &phone(1)).await;
    for (i, h) in ["bob", "carol", "dave", "erin"].iter().enumerate() {
        c.register(h, &phone(i as u32 + 2)).await;
    }
    assert_eq!(
        ask(&c, &alice, "bob@localhost", None).await.status,
        StatusCode::CREATED
    );
    let second = ask(&c, &alice, "carol@localhost", None).await.json();
    assert_eq!(
        ask(&c, &alice, "dave@localhost", None).await.error_code(),
        "too_many_pending"
    );
    let id = second["id"].as_str().unwrap();
    c.call(
        "DELETE",
        &format!("/api/v1/friends/requests/{id}"),
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(
        ask(&c, &alice, "dave@localhost", None).await.status,
        StatusCode::CREATED
    );
    let pending: Vec<String> = requests(&c, &alice)
        .await
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    for id in &pending {
        c.call(
            "DELETE",
            &format!("/api/v1/friends/requests/{id}"),
            Some(&alice),
            None,
        )
        .await;
    }
    // Three sent today; the fourth waits for tomorrow.
    let r = ask(&c, &alice, "erin@localhost", None).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.error_code(), "daily_limit");
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=86_400).contains(&retry), "{retry}");
    clock.advance_ms(retry * 1000);
    assert_eq!(
        ask(&c, &alice, "erin@localhost", None).await.status,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn bad_requests_are_refused_with_the_field_named() {
    let n = TestNode::start().await;
    let c = n.client();
    let alice = c.user("alice", &phone(1)).await;
    c.register("bob", &phone(2)).await;
    let code = |r: tests::Reply| (r.status, r.error_code());
    assert_eq!(
        code(ask(&c, &alice, "alice@localhost", None).await),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_field".into())
    );
    assert_eq!(
        code(ask(&c, &alice, "bob", None).await),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_field".into())
    );
    assert_eq!(
        code(ask(&c, &alice, "nobody@localhost", None).await),
        (StatusCode::NOT_FOUND, "not_found".into())
    );
    assert_eq!(
        code(ask(&c, &alice, "bob@localhost", Some("hi\u{202e}there")).await),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_field".into()),
        "a bidi control in the note"
    );
    let long = "长".repeat(201);
    assert_eq!(
        code(ask(&c, &alice, "bob@localhost", Some(&long)).await),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_field".into())
    );
    assert_eq!(
        code(ask(&c, &alice, "bob@elsewhere.example", None).await),
        (StatusCode::FORBIDDEN, "not_a_peer".into()),
        "a node this one does not federate with"
    );
    let r = c
        .call(
            "POST",
            "/api/v1/friends/requests",
            Some(&alice),
            Some(&json!({"to": "bob@localhost", "extra": 1})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    for path in [
        "/api/v1/friends/requests/zz/accept",
        "/api/v1/friends/requests/00000000000000ff/decline",
    ] {
        assert_eq!(
            c.call("POST", path, Some(&alice), None).await.status,
            StatusCode::NOT_FOUND
        );
    }
    assert_eq!(
        c.call(
            "DELETE",
            "/api/v1/blocks/0000000000000001",
            Some(&alice),
            None
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    let r = c
        .call(
            "PUT",
            "/api/v1/me/direct-messages",
            Some(&alice),
            Some(&json!({"direct_messages": "nobody"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(requests(&c, &alice).await.is_empty(), "nothing stored");
}

#[tokio::test]
async fn friends_visibility_shows_a_field_to_friends_and_to_nobody_else() {
    let n = TestNode::start().await;
    let c = n.client();
    let alice = c.user("alice", &phone(1)).await;
    let bob = c.user("bob", &phone(2)).await;
    let carol = c.user("carol", &phone(3)).await;
    c.call(
        "PATCH",
        "/api/v1/me",
        Some(&alice),
        Some(&json!({
            "region": {"value": "Hangzhou", "visibility": "public"},
            "education": {"value": "ZJU", "visibility": "friends"},
            "bio": {"value": "secret", "visibility": "private"},
        })),
    )
    .await;
    let seen = |token: String| {
        let c = c.clone();
        async move {
            c.get("/api/v1/users/alice@localhost", Some(&token))
                .await
                .json()["profile"]
                .clone()
        }
    };
    assert_eq!(
        seen(bob.clone()).await,
        json!({"region": "Hangzhou"}),
        "not yet a friend"
    );
    let link = befriend(&c, &alice, &bob, "bob@localhost").await;
    assert_eq!(
        seen(bob.clone()).await,
        json!({"region": "Hangzhou", "education": "ZJU"})
    );
    assert_eq!(seen(carol.clone()).await, json!({"region": "Hangzhou"}));
    c.call(
        "DELETE",
        &format!("/api/v1/friends/{link}"),
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(
        seen(bob).await,
        json!({"region": "Hangzhou"}),
        "no longer a friend"
    );
}

#[tokio::test]
async fn a_blocked_user_is_not_told_and_gets_the_answers_anyone_refused_gets() {
    let n = TestNode::start().await;
    let c = n.client();
    let alice = c.user("alice", &phone(1)).await;
    let bob = c.user("bob", &phone(2)).await;
    let carol = c.user("carol", &phone(3)).await;
    c.call(
        "PATCH",
        "/api/v1/me",
        Some(&alice),
        Some(&json!({"education": {"value": "ZJU", "visibility": "friends"}})),
    )
    .await;
    befriend(&c, &alice, &bob, "bob@localhost").await;
    let conv = c.direct(&bob, "alice@localhost").await;
    c.say(&bob, &conv, "b1", "hi alice").await;
    let cursor = c
        .get("/api/v1/sync?since=0&timeout=0", Some(&bob))
        .await
        .json()["cursor"]
        .as_str()
        .unwrap()
        .to_string();
    let mut ws_b = c.ws(Some(&bob), Some(&cursor)).await;

    let r = c
        .call(
            "POST",
            "/api/v1/blocks",
            Some(&alice),
            Some(&json!({"user": "bob@localhost"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let block = r.json()["id"].as_str().unwrap().to_string();
    let again = c
        .call(
            "POST",
            "/api/v1/blocks",
            Some(&alice),
            Some(&json!({"user": "bob@localhost"})),
        )
        .await;
    assert_eq!(
        (again.status, again.json()["id"].clone()),
        (StatusCode::OK, json!(block))
    );
    let listed = c.get("/api/v1/blocks", Some(&alice)).await.json();
    assert_eq!(listed["blocks"][0]["user"], "bob@localhost");

    // The friendship ends like any removal; that is all Bob hears.
    assert_eq!(next_of(&mut ws_b, "friend").await["action"], "removed");
    // Nothing else reaches Bob: the next event on his stream is of what Carol sends him after
    // the block.
    let marker = c.direct(&carol, "bob@localhost").await;
    c.say(&carol, &marker, "c1", "hi bob").await;
    let e = next_event(&mut ws_b).await;
    assert_eq!(
        e["conversation"],
        json!(marker),
        "nothing else reaches Bob: {e}"
    );
    assert!(friends(&c, &alice).await.is_empty());
    assert!(friends(&c, &bob).await.is_empty());
    let blocks_of_bob = c.get("/api/v1/blocks", Some(&bob)).await.json();
    assert_eq!(blocks_of_bob["blocks"], json!([]), "Bob sees no block");

    // His request is taken as any other, stays pending on his side, never reaches Alice.
    let r = ask(&c, &bob, "alice@localhost", Some("again?")).await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(requests(&c, &bob).await.len(), 1);
    assert!(requests(&c, &alice).await.is_empty());
    assert_eq!(
        friend_events(&c, &alice).await,
        ["requested", "accepted", "removed"],
        "no event of it for Alice"
    );

    // No more than the public sees of her profile.
    let p = c
        .get("/api/v1/users/alice@localhost", Some(&bob))
        .await
        .json();
    assert_eq!(p["profile"], json!({}));

    // Writing to her, or opening a conversation, gets what a friends-only user answers
    // a stranger.
    let r = c
        .call(
            "POST",
            &format!("/api/v1/conversations/{conv}/messages"),
            Some(&bob),
            Some(&json!({"txn_id": "b2", "body": {"type": "text", "text": "hello?"}})),
        )
        .await;
    let blocked_answer = (r.status, r.json()["error"].clone());
    assert_eq!(blocked_answer.0, StatusCode::FORBIDDEN);
    assert_eq!(c.texts(&alice, &conv).await, ["hi alice"], "nothing stored");
    c.call(
        "PUT",
        "/api/v1/me/direct-messages",
        Some(&alice),
        Some(&json!({"direct_messages": "friends"})),
    )
    .await;
    let stranger = open_direct(&c, &carol, "alice@localhost").await;
    assert_eq!(
        (stranger.status, stranger.json()["error"].clone()),
        blocked_answer,
        "the block looks like a friends-only setting"
    );
    c.call(
        "PUT",
        "/api/v1/me/direct-messages",
        Some(&alice),
        Some(&json!({"direct_messages": "anyone"})),
    )
    .await;
    let r = open_direct(&c, &bob, "alice@localhost").await;
    assert_eq!((r.status, r.json()["error"].clone()), blocked_answer);
    assert!(
        open_direct(&c, &carol, "alice@localhost")
            .await
            .status
            .is_success()
    );

    // Unblocking lets him write again; his hidden request stays his to cancel.
    let r = c
        .call(
            "DELETE",
            &format!("/api/v1/blocks/{block}"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(
        c.get("/api/v1/blocks", Some(&alice)).await.json()["blocks"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    c.say(&bob, &conv, "b3", "back").await;
    assert!(requests(&c, &alice).await.is_empty());
}

#[tokio::test]
async fn blocking_cancels_my_request_and_hides_theirs() {
    let n = TestNode::start().await;
    let c = n.client();
    let alice = c.user("alice", &phone(1)).await;
    let bob = c.user("bob", &phone(2)).await;
    let carol = c.user("carol", &phone(3)).await;
    ask(&c, &alice, "bob@localhost", None).await;
    ask(&c, &carol, "alice@localhost", None).await;
    for who in ["bob@localhost", "carol@localhost"] {
        let r = c
            .call(
                "POST",
                "/api/v1/blocks",
                Some(&alice),
                Some(&json!({"user": who})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
    }
    assert!(
        requests(&c, &alice).await.is_empty(),
        "both gone from my side"
    );
    assert!(
        requests(&c, &bob).await.is_empty(),
        "my request to Bob is cancelled"
    );
    let theirs = requests(&c, &carol).await;
    assert_eq!(theirs.len(), 1, "Carol's still looks pending to her");
    assert_eq!(theirs[0]["state"], "pending");
    assert_eq!(
        ask(&c, &alice, "bob@localhost", None).await.error_code(),
        "blocked_by_you"
    );
}

#[tokio::test]
async fn friends_only_direct_messages_let_friends_in_and_keep_others_out() {
    let n = TestNode::start().await;
    let c = n.client();
    let alice = c.user("alice", &phone(1)).await;
    let bob = c.user("bob", &phone(2)).await;
    let carol = c.user("carol", &phone(3)).await;
    assert_eq!(
        c.get("/api/v1/me/direct-messages", Some(&alice))
            .await
            .json(),
        json!({"direct_messages": "anyone"})
    );
    let conv = c.direct(&carol, "alice@localhost").await;
    let r = c
        .call(
            "PUT",
            "/api/v1/me/direct-messages",
            Some(&alice),
            Some(&json!({"direct_messages": "friends"})),
        )
        .await;
    assert_eq!(r.json(), json!({"direct_messages": "friends"}));
    befriend(&c, &bob, &alice, "alice@localhost").await;
    assert!(
        open_direct(&c, &bob, "alice@localhost")
            .await
            .status
            .is_success()
    );
    let r = open_direct(&c, &carol, "alice@localhost").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.error_code(), "not_accepting_messages");
    let r = c
        .call(
            "POST",
            &format!("/api/v1/conversations/{conv}/messages"),
            Some(&carol),
            Some(&json!({"txn_id": "c1", "body": {"type": "text", "text": "hi"}})),
        )
        .await;
    assert_eq!(
        r.error_code(),
        "not_accepting_messages",
        "nor in an existing one"
    );
    // Alice herself may still write to Carol, whose setting is `anyone`.
    c.say(&alice, &conv, "a1", "hello carol").await;
}

#[tokio::test]
async fn erasure_removes_the_user_from_every_friend_list_and_request() {
    let n = TestNode::start_toml(
        "[accounts]\ndeletion_cooling_off_days = 0\n[retention]\ninterval_secs = 1\n",
    )
    .await;
    let c = n.client();
    let alice = c.user("alice", &phone(1)).await;
    let bob = c.user("bob", &phone(2)).await;
    let carol = c.user("carol", &phone(3)).await;
    befriend(&c, &alice, &bob, "bob@localhost").await;
    ask(&c, &alice, "carol@localhost", Some("note")).await;
    c.call(
        "POST",
        "/api/v1/blocks",
        Some(&carol),
        Some(&json!({"user": "alice@localhost"})),
    )
    .await;
    let r = c
        .call(
            "POST",
            "/api/v1/me/deletion",
            Some(&alice),
            Some(&json!({"password": "password-alice"})),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.json());
    eventually(10, "the erasure", || async {
        (c.get("/api/v1/me", Some(&alice)).await.status == StatusCode::UNAUTHORIZED).then_some(())
    })
    .await;
    eventually(10, "the friend rows to go", || async {
        (friends(&c, &bob).await.is_empty()).then_some(())
    })
    .await;
    assert!(requests(&c, &carol).await.is_empty());
    assert_eq!(
        c.get("/api/v1/blocks", Some(&carol)).await.json()["blocks"],
        json!([])
    );
    assert!(
        friend_events(&c, &bob)
            .await
            .contains(&"accepted".to_string()),
        "earlier events stay on Bob's stream"
    );
}

async fn export(c: &Client, token: &str) -> Value {
    let r = c.call("POST", "/api/v1/me/export", Some(token), None).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.json());
    let r = c.get("/api/v1/me/export", Some(token)).await;
    assert_eq!(r.status, StatusCode::OK);
    let a = r.json();
    assert_eq!(a["complete"], true);
    a
}

#[tokio::test]
async fn the_export_holds_my_friends_requests_and_blocks_and_closed_requests_expire() {
    let clock = Arc::new(ManualClock::new(Millis(now_ms())));
    let n = TestNode::start_manual(
        "[friends]\ndeclined_resend_days = 1\nclosed_requests_days = 2\n\
         [privacy]\nexport_interval_hours = 0\n[retention]\ninterval_secs = 1\n",
        clock.clone(),
    )
    .await;
    let c = n.client();
    let alice = c.user("alice", &phone(1)).await;
    let bob = c.user("bob", &phone(2)).await;
    c.register("carol", &phone(3)).await;
    let dave = c.user("dave", &phone(4)).await;
    befriend(&c, &alice, &bob, "bob@localhost").await;
    ask(&c, &alice, "carol@localhost", Some("hello carol")).await;
    let id = ask(&c, &dave, "alice@localhost", Some("from dave"))
        .await
        .json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    c.call(
        "POST",
        &format!("/api/v1/friends/requests/{id}/decline"),
        Some(&alice),
        None,
    )
    .await;
    c.call(
        "POST",
        "/api/v1/blocks",
        Some(&alice),
        Some(&json!({"user": "dave@localhost"})),
    )
    .await;
    c.call(
        "PUT",
        "/api/v1/me/direct-messages",
        Some(&alice),
        Some(&json!({"direct_messages": "friends"})),
    )
    .await;

    let a = export(&c, &alice).await;
    assert_eq!(a["friends"][0]["user"], "bob@localhost");
    let mut reqs: Vec<(String, String, Value, String)> = a["friend_requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["direction"].as_str().unwrap().into(),
                r["user"].as_str().unwrap().into(),
                r["note"].clone(),
                r["state"].as_str().unwrap().into(),
            )
        })
        .collect();
    // Sent at the same instant of the test's clock: compared in the order of the person.
    reqs.sort_by(|a, b| a.1.cmp(&b.1));
    assert_eq!(
        reqs,
        [
            (
                "outgoing".into(),
                "bob@localhost".into(),
                Value::Null,
                "accepted".into()
            ),
            (
                "outgoing".into(),
                "carol@localhost".into(),
                json!("hello carol"),
                "pending".into()
            ),
            (
                "incoming".into(),
                "dave@localhost".into(),
                json!("from dave"),
                "declined".into()
            ),
        ]
    );
    assert_eq!(a["blocks"][0]["user"], "dave@localhost");
    assert_eq!(a["direct_messages"], "friends");
    let d = export(&c, &dave).await;
    assert_eq!(d["blocks"], json!([]), "who blocks me is never shown");
    assert_eq!(d["friend_requests"][0]["state"], "declined");

    // Closed requests go after `closed_requests_days`; the pending one stays.
    clock.advance_ms(3 * 86_400_000);
    eventually(10, "retention of closed requests", || async {
        let a = export(&c, &alice).await;
        (a["friend_requests"].as_array().unwrap().len() == 1).then_some(a)
    })
    .await;
    assert_eq!(requests(&c, &alice).await[0]["user"], "carol@localhost");
    assert_eq!(
        friends(&c, &alice).await,
        ["bob@localhost"],
        "friendships stay"
    );
}
