//! Calls to a remote community's host are idempotent (issue 23): the host applies a write
//! envelope at most once per (origin, envelope id) and answers a repeat as the same call; the
//! member's node counts the call in its user's disclosure log before sending, and when an
//! answer is lost sends the same envelope again a bounded number of times, on its clock.

use std::sync::Arc;

use bytes::Bytes;
use http::StatusCode;
use serde_json::{Value, json};
use tests::node::{COMMUNITY_RETRY_WAITS, Clock, ManualClock, Millis};
use tests::{Client, FakePeer, Relay, TestNode, eventually, federation_relayed, now_ms, phone};

const PATH: &str = "/_federation/v1/communities";

fn body(r: &tests::Reply) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

/// A public community owned by `t`'s user; its id.
async fn community(c: &Client, t: &str) -> String {
    let v = tests::setup::create_community(c, t, "夜跑", "", "public").await;
    v["id"].as_str().unwrap().to_string()
}

/// (author, text) of every post of `id`'s first page, as `t` sees it.
async fn feed(c: &Client, t: &str, id: &str) -> Vec<(String, String)> {
    let r = c
        .get(&format!("/api/v1/communities/{id}/posts"), Some(t))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", body(&r));
    r.json()["posts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["author"].as_str().unwrap().to_string(),
                p["text"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn pair(author: &str, text: &str) -> (String, String) {
    (author.to_string(), text.to_string())
}

/// The fake peer `f.test` sends `content` as community envelope `id` to the host `a.test`.
fn envelope(fake: &FakePeer, id: &str, content: Value) -> Bytes {
    let env = fake.envelope(id, "a.test", federation::Kind::Community, content);
    Bytes::from(env.to_json().unwrap())
}

async fn call(fake: &FakePeer, host: &TestNode, env: &Bytes) -> tests::Reply {
    fake.post(host, PATH, env.clone(), "a.test").await
}

#[tokio::test]
async fn a_repeated_community_envelope_is_answered_again_and_never_applied_twice() {
    let fake = FakePeer::start("f.test", "CN").await;
    let nodes = tests::federation_with(&[("a.test", "CN")], &[&fake], "").await;
    let a = nodes[0].client();
    let ann = a.user("ann", &phone(1)).await;
    let id = community(&a, &ann).await;
    let join = envelope(
        &fake,
        "j1",
        json!({"type": "join", "user": "fay@f.test", "community": id}),
    );
    let r = call(&fake, &nodes[0], &join).await;
    assert_eq!(r.status, StatusCode::OK, "{}", body(&r));
    assert_eq!(r.json(), json!({"status": "member"}));

    // The same signed envelope twice: one post, the same answer.
    let post = envelope(
        &fake,
        "p1",
        json!({"type": "post", "user": "fay@f.test", "community": id,
               "text": "第一圈", "visibility": null}),
    );
    let first = call(&fake, &nodes[0], &post).await;
    assert_eq!(first.status, StatusCode::OK, "{}", body(&first));
    let again = call(&fake, &nodes[0], &post).await;
    assert_eq!(again.status, StatusCode::OK, "{}", body(&again));
    assert_eq!(again.json(), first.json());
    assert_eq!(first.json()["text"], "第一圈");
    assert_eq!(feed(&a, &ann, &id).await, [pair("fay@f.test", "第一圈")]);
    // A comment, repeated alike; the post's repeat answers it as it is now, comment counted.
    let p = first.json()["id"].as_u64().unwrap();
    let comment = envelope(
        &fake,
        "c1",
        json!({"type": "comment", "user": "fay@f.test", "community": id, "post": p,
               "text": "加油", "parent": null}),
    );
    let made = call(&fake, &nodes[0], &comment).await;
    assert_eq!(made.status, StatusCode::OK, "{}", body(&made));
    let again = call(&fake, &nodes[0], &comment).await;
    assert_eq!(again.status, StatusCode::OK, "{}", body(&again));
    assert_eq!(again.json(), made.json());
    let r = a
        .get(
            &format!("/api/v1/communities/{id}/posts/{p}/comments"),
            Some(&ann),
        )
        .await;
    assert_eq!(
        r.json()["comments"].as_array().unwrap().len(),
        1,
        "{}",
        body(&r)
    );
    let r = call(&fake, &nodes[0], &post).await;
    assert_eq!(
        (r.json()["id"].as_u64(), r.json()["comments"].as_u64()),
        (Some(p), Some(1))
    );

    // Two copies at once: still one post, both answered alike.
    let second = envelope(
        &fake,
        "p2",
        json!({"type": "post", "user": "fay@f.test", "community": id,
               "text": "第二圈", "visibility": null}),
    );
    let (x, y) = tokio::join!(
        call(&fake, &nodes[0], &second),
        call(&fake, &nodes[0], &second)
    );
    assert_eq!(
        (x.status, y.status),
        (StatusCode::OK, StatusCode::OK),
        "{} {}",
        body(&x),
        body(&y)
    );
    assert_eq!(x.json(), y.json());
    assert_eq!(
        feed(&a, &ann, &id).await,
        [pair("fay@f.test", "第二圈"), pair("fay@f.test", "第一圈")]
    );

    // The id once more with another kind of call: refused, nothing applied.
    let reused = envelope(
        &fake,
        "p1",
        json!({"type": "leave", "user": "fay@f.test", "community": id}),
    );
    let r = call(&fake, &nodes[0], &reused).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", body(&r));
    let r = a
        .get(&format!("/api/v1/communities/{id}"), Some(&ann))
        .await;
    assert_eq!(r.json()["members"], 2, "fay is still a member");
    // The same kind with other content: not a repeat of that post either.
    let other = envelope(
        &fake,
        "p1",
        json!({"type": "post", "user": "fay@f.test", "community": id,
               "text": "换了内容", "visibility": null}),
    );
    let r = call(&fake, &nodes[0], &other).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", body(&r));
    assert_eq!(
        feed(&a, &ann, &id).await,
        [pair("fay@f.test", "第二圈"), pair("fay@f.test", "第一圈")]
    );

    // Removed since: the repeat says so, and makes nothing again.
    let r = a
        .call(
            "DELETE",
            &format!("/api/v1/communities/{id}/posts/{p}"),
            Some(&ann),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", body(&r));
    let r = call(&fake, &nodes[0], &post).await;
    assert_eq!(r.status, StatusCode::GONE, "{}", body(&r));
    assert_eq!(r.error_code(), "gone");
    assert_eq!(feed(&a, &ann, &id).await, [pair("fay@f.test", "第二圈")]);
}

#[tokio::test]
async fn a_repeated_moderate_envelope_is_applied_once_even_after_it_was_undone() {
    let fake = FakePeer::start("f.test", "CN").await;
    let nodes = tests::federation_with(&[("a.test", "CN")], &[&fake], "").await;
    let a = nodes[0].client();
    let ann = a.user("ann", &phone(1)).await;
    let bob = a.user("bob", &phone(2)).await;
    let id = community(&a, &ann).await;
    let join = envelope(
        &fake,
        "j1",
        json!({"type": "join", "user": "fay@f.test", "community": id}),
    );
    assert_eq!(call(&fake, &nodes[0], &join).await.status, StatusCode::OK);
    let r = tests::setup::join_community(&a, &bob, &id).await;
    assert_eq!(r.status, StatusCode::OK, "{}", body(&r));
    let moderate = |who: &str, action: &str| {
        let (a, ann, id) = (a.clone(), ann.clone(), id.clone());
        let body = json!({"address": who, "action": action});
        async move {
            a.call(
                "POST",
                &format!("/api/v1/communities/{id}/moderation"),
                Some(&ann),
                Some(&body),
            )
            .await
        }
    };
    assert_eq!(
        moderate("fay@f.test", "moderator").await.status,
        StatusCode::NO_CONTENT
    );

    // Fay bans bob; the same envelope again is answered alike and bans nobody twice.
    let ban = envelope(
        &fake,
        "m1",
        json!({"type": "moderate", "user": "fay@f.test", "community": id,
               "address": "bob@a.test", "action": "ban"}),
    );
    let first = call(&fake, &nodes[0], &ban).await;
    assert_eq!(first.status, StatusCode::OK, "{}", body(&first));
    assert_eq!(first.json(), json!({}));
    // Ann lifts the ban; the repeat still does not put it back.
    assert_eq!(
        moderate("bob@a.test", "unban").await.status,
        StatusCode::NO_CONTENT
    );
    let again = call(&fake, &nodes[0], &ban).await;
    assert_eq!(again.status, StatusCode::OK, "{}", body(&again));
    assert_eq!(again.json(), json!({}));
    let r = a
        .get(&format!("/api/v1/communities/{id}/log"), Some(&ann))
        .await;
    let actions: Vec<String> = r.json()["entries"]
        .as_array()
        .unwrap()
        .iter()
        .take(2)
        .map(|e| e["action"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(actions, ["unban", "ban"], "one ban, then its undoing");
    let r = a
        .get(&format!("/api/v1/communities/{id}/posts"), Some(&bob))
        .await;
    assert_eq!(r.status, StatusCode::OK, "bob is not banned again");
}

/// A manual clock at the real time.
fn manual_clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(Millis(now_ms())))
}

/// Runs `call` (a request to the member's node) while moving `clock` past each retry wait the
/// node starts, in order; the call's reply.
async fn with_retries(
    clock: &ManualClock,
    call: tokio::task::JoinHandle<tests::Reply>,
    retries: usize,
) -> tests::Reply {
    for wait in COMMUNITY_RETRY_WAITS.iter().take(retries) {
        let ms = wait.as_millis() as u64;
        let due = eventually(10, "the member's node waiting to send again", || async {
            let due = Millis(clock.now().0 + ms);
            clock.timers().contains(&due).then_some(due)
        })
        .await;
        clock.set(due);
    }
    call.await.unwrap()
}

/// `a.test` with Ann and her public community, `b.test` with Bob, whose node reaches
/// `a.test` through a relay; both on `clock`.
async fn bob_through_a_relay(
    clock: &Arc<ManualClock>,
) -> (
    Vec<TestNode>,
    Relay,
    (Client, String),
    (Client, String),
    String,
) {
    let (nodes, relay) = federation_relayed(
        &[("a.test", "CN"), ("b.test", "CN")],
        ("b.test", "a.test"),
        clock.clone(),
    )
    .await;
    let (a, b) = (nodes[0].client(), nodes[1].client());
    let ann = a.user("ann", &phone(1)).await;
    let bob = b.user("bob", &phone(2)).await;
    let id = community(&a, &ann).await;
    (nodes, relay, (a, ann), (b, bob), id)
}

fn bobs(
    b: &Client,
    bob: &str,
    method: &'static str,
    path: String,
    body: Option<Value>,
) -> tokio::task::JoinHandle<tests::Reply> {
    let (b, bob) = (b.clone(), bob.to_string());
    tokio::spawn(async move { b.call(method, &path, Some(&bob), body.as_ref()).await })
}

#[tokio::test]
async fn a_member_whose_answers_are_lost_names_the_host_and_the_host_holds_one_copy() {
    let clock = manual_clock();
    let (nodes, relay, (a, ann), (b, bob), id) = bob_through_a_relay(&clock).await;
    let remote = format!("{id}@a.test");

    // Bob's first call to the host: every answer lost.
    relay.lose_answers(1 + COMMUNITY_RETRY_WAITS.len());
    let join = bobs(
        &b,
        &bob,
        "POST",
        format!("/api/v1/communities/{remote}/join"),
        None,
    );
    let r = with_retries(&clock, join, COMMUNITY_RETRY_WAITS.len()).await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{}", body(&r));
    assert_eq!(
        relay.lost(),
        1 + COMMUNITY_RETRY_WAITS.len(),
        "sent, and sent again"
    );
    // The host has Bob's address, so Bob's log names it (and his erasure will ask it).
    let log = nodes[1].node().disclosures("bob").await.unwrap();
    assert!(
        log.iter()
            .any(|(peer, kind, _, n)| peer == "a.test" && kind == "community" && *n == 1),
        "{log:?}"
    );
    let r = a
        .get(&format!("/api/v1/communities/{id}"), Some(&ann))
        .await;
    assert_eq!(r.json()["members"], 2, "the host applied the join");

    // A post whose every answer is lost is there once, not once per attempt.
    relay.lose_answers(1 + COMMUNITY_RETRY_WAITS.len());
    let post = bobs(
        &b,
        &bob,
        "POST",
        format!("/api/v1/communities/{remote}/posts"),
        Some(json!({"text": "只发一次"})),
    );
    let r = with_retries(&clock, post, COMMUNITY_RETRY_WAITS.len()).await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{}", body(&r));
    assert_eq!(feed(&a, &ann, &id).await, [pair("bob@b.test", "只发一次")]);
}

#[tokio::test]
async fn the_members_node_sends_the_same_envelope_again_and_learns_the_one_post_it_made() {
    let clock = manual_clock();
    let (_nodes, relay, (a, ann), (b, bob), id) = bob_through_a_relay(&clock).await;
    let remote = format!("{id}@a.test");
    let r = tests::setup::join_community(&b, &bob, &remote).await;
    assert_eq!(r.status, StatusCode::OK, "{}", body(&r));

    // The first answer is lost; the host answers the same envelope sent again.
    relay.lose_answers(1);
    let post = bobs(
        &b,
        &bob,
        "POST",
        format!("/api/v1/communities/{remote}/posts"),
        Some(json!({"text": "第二次才听到"})),
    );
    let r = with_retries(&clock, post, 1).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", body(&r));
    assert_eq!(r.json()["text"], "第二次才听到");
    assert_eq!(r.json()["author"], "bob@b.test");
    assert_eq!(relay.lost(), 1);
    assert_eq!(
        feed(&a, &ann, &id).await,
        [pair("bob@b.test", "第二次才听到")]
    );
    let shown = feed(&b, &bob, &remote).await;
    assert_eq!(shown, [pair("bob@b.test", "第二次才听到")]);
    let p = r.json()["id"].as_u64().unwrap();
    let r = a
        .get(&format!("/api/v1/communities/{id}/posts/{p}"), Some(&ann))
        .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "the answer names the post the host made"
    );
}
