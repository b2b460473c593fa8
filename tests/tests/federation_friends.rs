//! Friends across nodes (issue 22): requests, answers, cancels and removals travel as signed
//! `friend` envelopes, each an event on both sides' streams, under the residency rule and
//! counted in the disclosure log; a block stays local but ends the friendship everywhere; an
//! erased user leaves their friends' lists on the other node.

use http::StatusCode;
use node::AdminRequest;
use serde_json::{Value, json};
use tests::{Client, eventually, federation, phone};

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

async fn friend_id(c: &Client, token: &str, user: &str) -> String {
    let r = c.get("/api/v1/friends", Some(token)).await;
    r.json()["friends"]
        .as_array()
        .expect("friends")
        .iter()
        .find(|f| f["user"] == user)
        .and_then(|f| f["id"].as_str())
        .unwrap_or_else(|| panic!("{user} is not a friend"))
        .to_string()
}

/// (action, user) of every friend event on `token`'s stream so far.
async fn friend_events(c: &Client, token: &str) -> Vec<(String, String)> {
    let r = c.get("/api/v1/sync?since=0&timeout=0", Some(token)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json());
    r.json()["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["type"] == "friend")
        .map(|e| {
            (
                e["action"].as_str().expect("action").to_string(),
                e["user"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// Waits until `token`'s incoming request from `from` shows on `c`; returns it.
async fn incoming(c: &Client, token: &str, from: &str) -> Value {
    eventually(10, "the request arrived", || async {
        requests(c, token)
            .await
            .into_iter()
            .find(|r| r["direction"] == "incoming" && r["user"] == from)
    })
    .await
}

async fn answer(c: &Client, token: &str, id: &str, verb: &str) -> tests::Reply {
    c.call(
        "POST",
        &format!("/api/v1/friends/requests/{id}/{verb}"),
        Some(token),
        None,
    )
    .await
}

async fn consent(c: &Client, token: &str, granted: bool) {
    let r = c.consent(token, "cross_border_transfer", granted).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json());
}

/// Alice (on `a`) asks Bob (on `b`), Bob accepts; both see the friendship.
async fn befriend(a: &Client, alice: &str, b: &Client, bob: &str, from: &str, to: &str) {
    let r = ask(a, alice, to, None).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json());
    let req = incoming(b, bob, from).await;
    let r = answer(b, bob, req["id"].as_str().unwrap(), "accept").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json());
    eventually(10, "the sender sees the friendship", || async {
        (friends(a, alice).await == [to]).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_request_to_another_node_is_accepted_and_removed_with_events_on_both_sides() {
    let nodes = federation(&[("a.test", "CN"), ("b.test", "CN")], "").await;
    let (a, b) = (nodes[0].client(), nodes[1].client());
    let alice = a.user("alice", &phone(1)).await;
    let bob = b.user("bob", &phone(2)).await;

    let r = ask(&a, &alice, "bob@b.test", Some("我们在会上见过")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json());
    assert_eq!(r.json()["user"], "bob@b.test");
    assert_eq!(r.json()["direction"], "outgoing");
    let req = incoming(&b, &bob, "alice@a.test").await;
    assert_eq!(req["note"], "我们在会上见过", "the note crosses: {req}");
    assert_eq!(
        req["nickname"], "Nick alice",
        "bob's node asked alice's for her nickname"
    );
    assert_eq!(
        friend_events(&b, &bob).await,
        [("requested".to_string(), "alice@a.test".to_string())]
    );

    // Bob accepts: friends on both nodes, each side told.
    let r = answer(&b, &bob, req["id"].as_str().unwrap(), "accept").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json());
    assert_eq!(r.json()["user"], "alice@a.test");
    assert_eq!(friends(&b, &bob).await, ["alice@a.test"]);
    eventually(10, "alice's node learns of the answer", || async {
        (friends(&a, &alice).await == ["bob@b.test"]).then_some(())
    })
    .await;
    assert!(requests(&a, &alice).await.is_empty());
    let on_a: Vec<String> = friend_events(&a, &alice)
        .await
        .into_iter()
        .map(|(a, _)| a)
        .collect();
    assert_eq!(on_a, ["requested", "accepted"]);

    // Both steps are in the disclosure logs of whose data they carried.
    eventually(10, "both deliveries are logged", || async {
        let la = nodes[0].node().disclosures("alice").await.unwrap();
        let lb = nodes[1].node().disclosures("bob").await.unwrap();
        let has = |l: &[(String, String, String, u64)], peer: &str| {
            l.iter()
                .any(|(p, k, o, n)| p == peer && k == "friend" && o == "delivered" && *n == 1)
        };
        (has(&la, "b.test") && has(&lb, "a.test")).then_some(())
    })
    .await;

    // Alice removes Bob: gone on both sides, Bob told.
    let id = friend_id(&a, &alice, "bob@b.test").await;
    let r = a
        .call(
            "DELETE",
            &format!("/api/v1/friends/{id}"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(friends(&a, &alice).await.is_empty());
    eventually(10, "bob's node learns of the removal", || async {
        friends(&b, &bob).await.is_empty().then_some(())
    })
    .await;
    let last = friend_events(&b, &bob).await.pop().unwrap();
    assert_eq!(last, ("removed".to_string(), "alice@a.test".to_string()));
}

#[tokio::test]
async fn a_declined_request_cannot_be_sent_again_at_once_and_a_cancel_reaches_the_recipient() {
    let nodes = federation(&[("a.test", "CN"), ("b.test", "CN")], "").await;
    let (a, b) = (nodes[0].client(), nodes[1].client());
    let alice = a.user("alice", &phone(1)).await;
    let carol = a.user("carol", &phone(3)).await;
    let bob = b.user("bob", &phone(2)).await;

    assert_eq!(
        ask(&a, &alice, "bob@b.test", None).await.status,
        StatusCode::CREATED
    );
    let req = incoming(&b, &bob, "alice@a.test").await;
    let r = answer(&b, &bob, req["id"].as_str().unwrap(), "decline").await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    eventually(10, "alice's request is closed", || async {
        requests(&a, &alice).await.is_empty().then_some(())
    })
    .await;
    let last = friend_events(&a, &alice).await.pop().unwrap();
    assert_eq!(last, ("declined".to_string(), "bob@b.test".to_string()));
    let r = ask(&a, &alice, "bob@b.test", None).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.error_code(), "recently_declined");
    assert!(friends(&b, &bob).await.is_empty());

    // Carol asks, then withdraws: Bob's incoming request goes away.
    let r = ask(&a, &carol, "bob@b.test", None).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let sent = r.json()["id"].as_str().unwrap().to_string();
    incoming(&b, &bob, "carol@a.test").await;
    let r = a
        .call(
            "DELETE",
            &format!("/api/v1/friends/requests/{sent}"),
            Some(&carol),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    eventually(10, "the cancel reached bob's node", || async {
        requests(&b, &bob).await.is_empty().then_some(())
    })
    .await;
    let last = friend_events(&b, &bob).await.pop().unwrap();
    assert_eq!(last, ("cancelled".to_string(), "carol@a.test".to_string()));
}

#[tokio::test]
async fn a_request_to_another_region_needs_consent_to_cross_border_transfer() {
    let nodes = federation(&[("a.test", "CN"), ("c.test", "EU")], "").await;
    let (a, c) = (nodes[0].client(), nodes[1].client());
    let alice = a.user("alice", &phone(1)).await;
    let bob = c.user("bob", &phone(2)).await;
    consent(&c, &bob, true).await;

    let r = ask(&a, &alice, "bob@c.test", Some("hello")).await;
    assert_eq!(r.status, StatusCode::UNAVAILABLE_FOR_LEGAL_REASONS);
    assert_eq!(r.error_code(), "residency");
    let msg = r.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(msg.contains("c.test") && msg.contains("EU"), "{msg}");
    assert!(requests(&a, &alice).await.is_empty(), "nothing stored");
    assert!(
        nodes[0]
            .node()
            .disclosures("alice")
            .await
            .unwrap()
            .is_empty(),
        "nothing queued"
    );

    consent(&a, &alice, true).await;
    let r = ask(&a, &alice, "bob@c.test", Some("hello")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json());
    let req = incoming(&c, &bob, "alice@a.test").await;
    assert_eq!(req["note"], "hello");

    // Alice withdraws her consent: her cancel may not go there either, and nothing changes.
    consent(&a, &alice, false).await;
    let id = r.json()["id"].as_str().unwrap().to_string();
    let r = a
        .call(
            "DELETE",
            &format!("/api/v1/friends/requests/{id}"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAVAILABLE_FOR_LEGAL_REASONS);
    assert_eq!(requests(&a, &alice).await.len(), 1, "still pending");
}

#[tokio::test]
async fn blocking_a_remote_friend_ends_the_friendship_on_both_nodes_and_hides_their_next_request() {
    let nodes = federation(&[("a.test", "CN"), ("b.test", "CN")], "").await;
    let (a, b) = (nodes[0].client(), nodes[1].client());
    let alice = a.user("alice", &phone(1)).await;
    let bob = b.user("bob", &phone(2)).await;
    befriend(&a, &alice, &b, &bob, "alice@a.test", "bob@b.test").await;

    let r = b
        .call(
            "POST",
            "/api/v1/blocks",
            Some(&bob),
            Some(&json!({"user": "alice@a.test"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json());
    assert!(friends(&b, &bob).await.is_empty());
    eventually(10, "the removal reached alice's node", || async {
        friends(&a, &alice).await.is_empty().then_some(())
    })
    .await;
    // She hears of a removal, never of a block.
    let last = friend_events(&a, &alice).await.pop().unwrap();
    assert_eq!(last, ("removed".to_string(), "bob@b.test".to_string()));

    // Her next request looks sent to her; Bob never sees it.
    let r = ask(&a, &alice, "bob@b.test", None).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json());
    eventually(10, "bob's node took the request", || async {
        let log = nodes[0].node().disclosures("alice").await.unwrap();
        log.iter()
            .any(|(p, k, o, n)| p == "b.test" && k == "friend" && o == "delivered" && *n == 2)
            .then_some(())
    })
    .await;
    assert!(requests(&b, &bob).await.is_empty(), "hidden from bob");
    assert_eq!(requests(&a, &alice).await.len(), 1, "pending for alice");
}

#[tokio::test]
async fn an_erased_user_leaves_the_friend_lists_of_their_friends_on_other_nodes() {
    let nodes = federation(&[("a.test", "CN"), ("b.test", "CN")], "").await;
    let (a, b) = (nodes[0].client(), nodes[1].client());
    let alice = a.user("alice", &phone(1)).await;
    let dave = a.user("dave", &phone(4)).await;
    let bob = b.user("bob", &phone(2)).await;
    let carol = b.user("carol", &phone(3)).await;
    // Alice asked Bob (her node sent her data); Dave was asked by Carol (his answer did).
    befriend(&a, &alice, &b, &bob, "alice@a.test", "bob@b.test").await;
    befriend(&b, &carol, &a, &dave, "carol@b.test", "dave@a.test").await;
    assert_eq!(friends(&b, &bob).await, ["alice@a.test"]);
    eventually(10, "carol's node learns of the answer", || async {
        (friends(&b, &carol).await == ["dave@a.test"]).then_some(())
    })
    .await;

    for who in ["alice@a.test", "dave@a.test"] {
        nodes[0]
            .admin(AdminRequest::UsersErase {
                address: who.into(),
                reason: "test".into(),
            })
            .await;
    }
    eventually(10, "both left their friends' lists on b.test", || async {
        (friends(&b, &bob).await.is_empty() && friends(&b, &carol).await.is_empty()).then_some(())
    })
    .await;
    assert!(requests(&b, &bob).await.is_empty());
}

/// The optional fields `token` sees on `address`'s profile, through `c`.
async fn shown_fields(c: &Client, token: &str, address: &str) -> Value {
    let r = c
        .get(&format!("/api/v1/users/{address}"), Some(token))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json());
    r.json()["profile"].clone()
}

/// `GET path` on `node`, signed by `peer`'s key as `origin`.
async fn signed_get(
    node: &tests::TestNode,
    peer: &tests::FakePeer,
    origin: &str,
    path: &str,
) -> tests::Reply {
    let auth = federation::sign_request(
        &peer.key,
        "GET",
        path,
        origin,
        "b.test",
        tests::now_ms(),
        b"",
    );
    let req = http::Request::builder()
        .method(http::Method::GET)
        .uri(path)
        .header("host", "localhost")
        .header("authorization", auth)
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    node.client().send(req).await
}

#[tokio::test]
async fn friends_fields_reach_a_friend_on_another_node_only_while_friends() {
    let fake = tests::FakePeer::start("e.test", "CN").await;
    let nodes = tests::federation_with(&[("a.test", "CN"), ("b.test", "CN")], &[&fake], "").await;
    let (a, b) = (nodes[0].client(), nodes[1].client());
    let alice = a.user("alice", &phone(1)).await;
    let carol = a.user("carol", &phone(3)).await;
    let bob = b.user("bob", &phone(2)).await;
    let r = b
        .call(
            "PATCH",
            "/api/v1/me",
            Some(&bob),
            Some(&json!({
                "region": {"value": "Hangzhou", "visibility": "public"},
                "education": {"value": "Zhejiang University", "visibility": "friends"},
                "birthday": {"value": "2001-02-03", "visibility": "private"},
            })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json());
    let public = json!({"region": "Hangzhou"});
    let as_friend = json!({"region": "Hangzhou", "education": "Zhejiang University"});

    // Before any friendship, alice sees what the public sees.
    assert_eq!(shown_fields(&a, &alice, "bob@b.test").await, public);
    befriend(&a, &alice, &b, &bob, "alice@a.test", "bob@b.test").await;
    assert_eq!(shown_fields(&a, &alice, "bob@b.test").await, as_friend);
    // Carol, on the same node but no friend of bob's, does not.
    assert_eq!(shown_fields(&a, &carol, "bob@b.test").await, public);

    // Another peer naming alice as its viewer names its own alice@e.test, no friend of bob's;
    // a.test's name without a.test's key is refused outright.
    let r = signed_get(
        &nodes[1],
        &fake,
        "e.test",
        "/_federation/v1/users/bob/as/alice",
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let env = r.json();
    assert_eq!(env["kind"], "profile");
    assert_eq!(env["content"]["fields"], public, "{env}");
    let r = signed_get(
        &nodes[1],
        &fake,
        "a.test",
        "/_federation/v1/users/bob/as/alice",
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // Every answer is counted in bob's disclosure log.
    let log = nodes[1].node().disclosures("bob").await.unwrap();
    assert!(
        log.iter()
            .any(|(p, k, _, _)| p == "a.test" && k == "profile"),
        "{log:?}"
    );

    // Once bob ends the friendship, alice is back to the public fields.
    let id = friend_id(&b, &bob, "alice@a.test").await;
    let r = b
        .call("DELETE", &format!("/api/v1/friends/{id}"), Some(&bob), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    eventually(10, "alice's node learns of the removal", || async {
        friends(&a, &alice).await.is_empty().then_some(())
    })
    .await;
    assert_eq!(shown_fields(&a, &alice, "bob@b.test").await, public);
}

async fn redeem(c: &Client, token: &str, link: &str) -> tests::Reply {
    c.call(
        "POST",
        "/api/v1/invites/redeem",
        Some(token),
        Some(&json!({ "link": link })),
    )
    .await
}

async fn make_invite(c: &Client, token: &str, body: Value) -> (String, String) {
    let r = c
        .call("POST", "/api/v1/invites", Some(token), Some(&body))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json());
    let v = r.json();
    (
        v["id"].as_str().unwrap().to_string(),
        v["link"].as_str().unwrap().to_string(),
    )
}

/// How many times invite `id` of `token`'s has been used.
async fn uses(c: &Client, token: &str, id: &str) -> u64 {
    let r = c.get("/api/v1/invites", Some(token)).await;
    r.json()["invites"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["id"] == id)
        .and_then(|v| v["uses"].as_u64())
        .unwrap()
}

#[tokio::test]
async fn an_invite_of_another_node_is_redeemed_there_under_the_residency_rule_and_its_owner_decides()
 {
    let nodes = federation(&[("a.test", "CN"), ("b.test", "EU")], "").await;
    let (a, b) = (nodes[0].client(), nodes[1].client());
    let alice = a.user("alice", &phone(1)).await;
    let bob = b.user("bob", &phone(2)).await;
    consent(&b, &bob, true).await;
    let r = b
        .call(
            "POST",
            "/api/v1/conversations",
            Some(&bob),
            Some(&json!({"kind": "group", "name": "Hiking", "members": [], "public": false})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json());
    let conv = r.json()["id"].as_str().unwrap().to_string();
    let (group_id, group_link) =
        make_invite(&b, &bob, json!({"kind": "group", "conversation": conv})).await;
    assert!(
        group_link.starts_with("https://b.test/#/invite/"),
        "{group_link}"
    );

    // Without alice's consent her address does not leave for the EU node: 451, nothing used.
    let r = redeem(&a, &alice, &group_link).await;
    assert_eq!(
        r.status,
        StatusCode::UNAVAILABLE_FOR_LEGAL_REASONS,
        "{}",
        r.json()
    );
    assert_eq!(uses(&b, &bob, &group_id).await, 0);

    // With it: b.test takes the use and leaves a join request for bob, an event on his stream.
    consent(&a, &alice, true).await;
    let r = redeem(&a, &alice, &group_link).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json());
    assert_eq!(
        r.json(),
        json!({"result": "requested", "conversation": conv})
    );
    assert_eq!(uses(&b, &bob, &group_id).await, 1);
    let r = redeem(&a, &alice, &group_link).await;
    assert_eq!(r.status, StatusCode::GONE, "once: {}", r.json());
    let joins = b.get("/api/v1/me/join-requests", Some(&bob)).await.json();
    let join = &joins["join_requests"][0];
    assert_eq!(join["requester"], "alice@a.test", "{joins}");
    let sync = b
        .get("/api/v1/sync?since=0&timeout=0", Some(&bob))
        .await
        .json();
    assert!(
        sync["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["type"] == "join" && e["user"] == "alice@a.test"),
        "{sync}"
    );
    let log = nodes[0].node().disclosures("alice").await.unwrap();
    assert!(
        log.iter()
            .any(|(p, k, _, _)| p == "b.test" && k == "invite"),
        "{log:?}"
    );

    // Bob lets her in; she is a member on both nodes.
    let r = b
        .call(
            "POST",
            &format!("/api/v1/me/join-requests/{}", join["id"].as_str().unwrap()),
            Some(&bob),
            Some(&json!({"accept": true})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.json());
    eventually(10, "alice's node holds the group", || async {
        let r = a
            .get(&format!("/api/v1/conversations/{conv}"), Some(&alice))
            .await;
        (r.status == StatusCode::OK).then_some(())
    })
    .await;

    // A friend invite: the request goes from a.test to bob, who still answers.
    let (friend_id, friend_link) = make_invite(&b, &bob, json!({"kind": "friend"})).await;
    let r = redeem(&a, &alice, &friend_link).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json());
    assert_eq!(
        r.json(),
        json!({"result": "friend_requested", "address": "bob@b.test"})
    );
    assert_eq!(
        uses(&b, &bob, &friend_id).await,
        1,
        "the use is taken on b.test"
    );
    let req = incoming(&b, &bob, "alice@a.test").await;
    assert!(
        friends(&b, &bob).await.is_empty(),
        "not friends before bob answers"
    );
    let r = answer(&b, &bob, req["id"].as_str().unwrap(), "accept").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json());
    eventually(10, "alice's node learns of the answer", || async {
        (friends(&a, &alice).await == ["bob@b.test"]).then_some(())
    })
    .await;

    // A token b.test never made is unknown there.
    let forged = format!("https://b.test/#/invite/{}", "A".repeat(22));
    let r = redeem(&a, &alice, &forged).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.json());

    // A redeemer erased on their node leaves no join request behind on the link's.
    let carol = a.user("carol", &phone(3)).await;
    consent(&a, &carol, true).await;
    let r = redeem(&a, &carol, &group_link).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json());
    let joins = b.get("/api/v1/me/join-requests", Some(&bob)).await.json();
    assert_eq!(
        joins["join_requests"][0]["requester"], "carol@a.test",
        "{joins}"
    );
    nodes[0]
        .admin(AdminRequest::UsersErase {
            address: "carol@a.test".into(),
            reason: "test".into(),
        })
        .await;
    eventually(10, "carol's join request is gone on b.test", || async {
        let joins = b.get("/api/v1/me/join-requests", Some(&bob)).await.json();
        joins["join_requests"]
            .as_array()
            .unwrap()
            .is_empty()
            .then_some(())
    })
    .await;
}
