//! Conversations and messages over HTTPS: direct and group chat between several users and
//! devices, group roles, authorisation, ordering under concurrent senders, idempotent retries,
//! recall, per-user deletion, and cloud history off, on and revoked.

use std::sync::Arc;

use http::StatusCode;
use serde_json::{Value, json};
use tests::{TestNode, node, phone};

async fn group(
    c: &tests::Client,
    token: &str,
    name: &str,
    members: &[&str],
    public: bool,
) -> String {
    let r = c
        .call(
            "POST",
            "/api/v1/conversations",
            Some(token),
            Some(&json!({"kind": "group", "name": name, "members": members, "public": public})),
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

async fn cloud(c: &tests::Client, token: &str, on: bool) {
    let r = c
        .call(
            "PUT",
            "/api/v1/me/consents/cloud_sync",
            Some(token),
            Some(&json!({"granted": on})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn direct_conversation_both_ways_and_a_second_open_returns_the_same_one() {
    let n = TestNode::start().await;
    let c = n.client();
    let alice = c.user("alice", &phone(1)).await;
    let bob = c.user("bob", &phone(2)).await;
    let r = c
        .call(
            "POST",
            "/api/v1/conversations",
            Some(&alice),
            Some(&json!({"kind": "direct", "with": "bob@localhost"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let conv = r.json();
    let id = conv["id"].as_str().unwrap().to_string();
    assert!(
        id.ends_with(":localhost"),
        "the id carries the host's domain: {id}"
    );
    assert_eq!(conv["with"], "bob@localhost");
    let again = c
        .call(
            "POST",
            "/api/v1/conversations",
            Some(&bob),
            Some(&json!({"kind": "direct", "with": "alice@localhost"})),
        )
        .await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.json()["id"], id.as_str());

    let sent = c.say(&alice, &id, "t1", "hello bob").await;
    assert_eq!(sent["seq"], 1);
    assert!(sent["ts"].as_u64().unwrap() > 0);
    c.say(&bob, &id, "t1", "hello alice").await;
    assert_eq!(c.texts(&alice, &id).await, ["hello bob", "hello alice"]);
    assert_eq!(c.texts(&bob, &id).await, ["hello bob", "hello alice"]);

    let list = c.get("/api/v1/conversations", Some(&bob)).await.json();
    assert_eq!(list["conversations"][0]["id"], id.as_str());
    assert_eq!(list["conversations"][0]["last_seq"], 2);
    let r = c
        .call(
            "POST",
            "/api/v1/conversations",
            Some(&alice),
            Some(&json!({"kind": "direct", "with": "alice@localhost"})),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "not with oneself"
    );
    let r = c
        .call(
            "POST",
            "/api/v1/conversations",
            Some(&alice),
            Some(&json!({"kind": "direct", "with": "zed@localhost"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "unknown user");
}

#[tokio::test]
async fn group_roles_invite_remove_leave_rename_and_transfer() {
    let n = TestNode::start().await;
    let c = n.client();
    let owner = c.user("owner", &phone(1)).await;
    let m1 = c.user("mem1", &phone(2)).await;
    let m2 = c.user("mem2", &phone(3)).await;
    let out = c.user("outsider", &phone(4)).await;
    let g = group(&c, &owner, "Team", &["mem1@localhost"], false).await;

    // A plain member cannot invite to a private group; the owner can.
    let r = c
        .call(
            "POST",
            &format!("/api/v1/conversations/{g}/members"),
            Some(&m1),
            Some(&json!({"user": "mem2@localhost"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = c
        .call(
            "POST",
            &format!("/api/v1/conversations/{g}/members"),
            Some(&owner),
            Some(&json!({"user": "mem2@localhost"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = c
        .call(
            "POST",
            &format!("/api/v1/conversations/{g}/members"),
            Some(&owner),
            Some(&json!({"user": "mem2@localhost"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "already a member");

    // Promote mem1; an admin renames and removes a plain member; a member cannot rename.
    let r = c
        .call(
            "PATCH",
            &format!("/api/v1/conversations/{g}/members/mem1@localhost"),
            Some(&owner),
            Some(&json!({"role": "admin"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = c
        .call(
            "PATCH",
            &format!("/api/v1/conversations/{g}"),
            Some(&m2),
            Some(&json!({"name": "Mine"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = c
        .call(
            "PATCH",
            &format!("/api/v1/conversations/{g}"),
            Some(&m1),
            Some(&json!({"name": "Renamed"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = c
        .call(
            "DELETE",
            &format!("/api/v1/conversations/{g}/members/mem2@localhost"),
            Some(&m1),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        c.get(&format!("/api/v1/conversations/{g}"), Some(&m2))
            .await
            .status,
        StatusCode::NOT_FOUND,
        "removed member"
    );
    let r = c.say(&m1, &g, "x", "after removal").await;
    assert_eq!(r["seq"], 1);
    let r = c
        .get(&format!("/api/v1/conversations/{g}/messages"), Some(&m2))
        .await;
    assert_eq!(
        r.status,
        StatusCode::NOT_FOUND,
        "a removed member reads nothing more"
    );

    // The owner may not leave before transferring; after transferring, may.
    let r = c
        .call(
            "DELETE",
            &format!("/api/v1/conversations/{g}/members/owner@localhost"),
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let r = c
        .call(
            "POST",
            &format!("/api/v1/conversations/{g}/owner"),
            Some(&owner),
            Some(&json!({"user": "mem1@localhost"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let detail = c
        .get(&format!("/api/v1/conversations/{g}"), Some(&m1))
        .await
        .json();
    assert_eq!(detail["name"], "Renamed");
    assert_eq!(detail["role"], "owner");
    let r = c
        .call(
            "DELETE",
            &format!("/api/v1/conversations/{g}/members/owner@localhost"),
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::NO_CONTENT,
        "now the former owner can leave"
    );

    // The outsider sees nothing of a private group, and cannot join it.
    let r = c
        .call(
            "POST",
            &format!("/api/v1/conversations/{g}/members"),
            Some(&out),
            Some(&json!({"user": "outsider@localhost"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn public_group_members_see_each_others_nickname_and_avatar_only() {
    let n = TestNode::start().await;
    let c = n.client();
    let a = c.user("pa1", &phone(1)).await;
    let b = c.user("pb1", &phone(2)).await;
    let avatar = c
        .raw(
            "POST",
            "/api/v1/media",
            Some(&b),
            "image/jpeg",
            crate::media::jpeg_with_gps(),
        )
        .await
        .json()["media_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(c.consent(&b, "photos", true).await.status, StatusCode::OK);
    let r = c
        .call(
            "PATCH",
            "/api/v1/me",
            Some(&b),
            Some(
                &json!({"bio": {"value": "SecretBio", "visibility": "friends"}, "avatar": avatar}),
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let g = group(&c, &a, "Open", &[], true).await;
    let r = c
        .call(
            "POST",
            &format!("/api/v1/conversations/{g}/members"),
            Some(&b),
            Some(&json!({"user": "pb1@localhost"})),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::NO_CONTENT,
        "anyone may join a public group"
    );
    let r = c.get(&format!("/api/v1/conversations/{g}"), Some(&a)).await;
    let members = r.json()["members"].as_array().unwrap().clone();
    assert_eq!(members.len(), 2);
    let pb = members
        .iter()
        .find(|m| m["user"] == "pb1@localhost")
        .unwrap();
    assert_eq!(
        pb,
        &json!({"user": "pb1@localhost", "nickname": "Nick pb1", "avatar": avatar, "role": "member"})
    );
    let raw = String::from_utf8_lossy(&r.body);
    assert!(!raw.contains("SecretBio") && !raw.contains(&phone(2)));
}

#[tokio::test]
async fn non_members_get_404_on_every_conversation_route() {
    let n = TestNode::start().await;
    let c = n.client();
    let a = c.user("ma1", &phone(1)).await;
    c.register("mb1", &phone(2)).await;
    let x = c.user("mx1", &phone(3)).await;
    let id = c.direct(&a, "mb1@localhost").await;
    c.say(&a, &id, "t", "private").await;
    let base = format!("/api/v1/conversations/{id}");
    let calls: Vec<(&str, String, Option<Value>)> = vec![
        ("GET", base.clone(), None),
        ("PATCH", base.clone(), Some(json!({"name": "x"}))),
        (
            "POST",
            format!("{base}/members"),
            Some(json!({"user": "mx1@localhost"})),
        ),
        ("DELETE", format!("{base}/members/ma1@localhost"), None),
        (
            "PATCH",
            format!("{base}/members/ma1@localhost"),
            Some(json!({"role": "admin"})),
        ),
        (
            "POST",
            format!("{base}/owner"),
            Some(json!({"user": "mx1@localhost"})),
        ),
        (
            "POST",
            format!("{base}/messages"),
            Some(json!({"txn_id": "z", "body": {"type": "text", "text": "hi"}})),
        ),
        ("GET", format!("{base}/messages"), None),
        ("DELETE", format!("{base}/messages"), None),
        ("DELETE", format!("{base}/messages/1"), None),
        ("POST", format!("{base}/messages/1/recall"), None),
    ];
    for (method, path, body) in &calls {
        let r = c.call(method, path, Some(&x), body.as_ref()).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{method} {path}");
    }
    let unknown = "/api/v1/conversations/nothing:localhost";
    assert_eq!(
        c.get(unknown, Some(&x)).await.json(),
        c.get(&base, Some(&x)).await.json(),
        "no existence leak"
    );
    assert_eq!(c.texts(&a, &id).await, ["private"], "nothing changed");
}

#[tokio::test]
async fn concurrent_senders_get_gap_free_increasing_seqs() {
    let n = TestNode::start().await;
    let c = n.client();
    let mut tokens = Vec::new();
    for i in 0..5 {
        tokens.push(c.user(&format!("snd{i}"), &phone(10 + i)).await);
    }
    let members: Vec<String> = (1..5).map(|i| format!("snd{i}@localhost")).collect();
    let members: Vec<&str> = members.iter().map(String::as_str).collect();
    let g = group(&c, &tokens[0], "Busy", &members, false).await;
    let mut handles = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        for k in 0..20 {
            let (c, t, g) = (c.clone(), t.clone(), g.clone());
            handles.push(tokio::spawn(async move {
                c.say(&t, &g, &format!("t{k}"), &format!("{i}-{k}")).await["seq"]
                    .as_u64()
                    .unwrap()
            }));
        }
    }
    let mut seqs = Vec::new();
    for h in handles {
        seqs.push(h.await.unwrap());
    }
    seqs.sort_unstable();
    assert_eq!(
        seqs,
        (1..=100).collect::<Vec<_>>(),
        "every seq once, no gaps"
    );
    let page = c
        .get(
            &format!("/api/v1/conversations/{g}/messages?after=0&limit=200"),
            Some(&tokens[1]),
        )
        .await
        .json();
    let got: Vec<u64> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(got, (1..=100).collect::<Vec<_>>(), "history in seq order");
}

#[tokio::test]
async fn a_retried_txn_id_returns_the_original_answer_and_stores_nothing() {
    let n = TestNode::start().await;
    let c = n.client();
    let a = c.user("ra1", &phone(1)).await;
    c.register("rb1", &phone(2)).await;
    let id = c.direct(&a, "rb1@localhost").await;
    let first = c.say(&a, &id, "retry-1", "once").await;
    let second = c.say(&a, &id, "retry-1", "once").await;
    assert_eq!(first, second);
    assert_eq!(c.texts(&a, &id).await, ["once"]);
    // The same txn id from another device is another message.
    let (other_device, _) = c.login("ra1").await;
    let third = c.say(&other_device, &id, "retry-1", "twice").await;
    assert_eq!(third["seq"], 2);
}

#[tokio::test]
async fn bad_message_bodies_are_refused() {
    let n = TestNode::start().await;
    let c = n.client();
    let a = c.user("ba1", &phone(1)).await;
    c.register("bb1", &phone(2)).await;
    let id = c.direct(&a, "bb1@localhost").await;
    let path = format!("/api/v1/conversations/{id}/messages");
    let cases = [
        json!({"txn_id": "1", "body": {"type": "text", "text": ""}}),
        json!({"txn_id": "1", "body": {"type": "text", "text": "x".repeat(16 * 1024 + 1)}}),
        json!({"txn_id": "1", "body": {"type": "sticker"}}),
        json!({"txn_id": "has space", "body": {"type": "text", "text": "x"}}),
        json!({"txn_id": "1", "body": {"type": "file"}}),
        json!({"txn_id": "1", "body": {"type": "file", "media_id": "not-mine"}}),
        json!({"txn_id": "1", "body": {"type": "text", "text": "x", "media_id": "m"}}),
    ];
    for body in cases {
        let r = c.call("POST", &path, Some(&a), Some(&body)).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    }
    let r = c
        .call(
            "POST",
            &path,
            Some(&a),
            Some(&json!({"body": {"type": "text", "text": "x"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "missing txn_id");
    assert!(c.texts(&a, &id).await.is_empty());
}

#[tokio::test]
async fn recall_works_for_the_author_within_the_window_only() {
    let clock = Arc::new(node::ManualClock::new(node::Millis(1_800_000_000_000)));
    let n = TestNode::start_manual("", clock.clone()).await;
    let c = n.client();
    let a = c.user("ca1", &phone(1)).await;
    let b = c.user("cb1", &phone(2)).await;
    let id = c.direct(&a, "cb1@localhost").await;
    c.say(&a, &id, "1", "oops").await;
    c.say(&a, &id, "2", "fine").await;
    let r = c
        .call(
            "POST",
            &format!("/api/v1/conversations/{id}/messages/1/recall"),
            Some(&b),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "not the author");
    clock.advance_ms(119_000);
    let r = c
        .call(
            "POST",
            &format!("/api/v1/conversations/{id}/messages/1/recall"),
            Some(&a),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let page = c
        .get(&format!("/api/v1/conversations/{id}/messages"), Some(&b))
        .await
        .json();
    let recalled = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["seq"] == 1)
        .unwrap()
        .clone();
    assert_eq!(recalled["recalled"], true);
    assert_eq!(recalled["body"], Value::Null, "a tombstone for everyone");
    clock.advance_ms(2_000);
    let r = c
        .call(
            "POST",
            &format!("/api/v1/conversations/{id}/messages/2/recall"),
            Some(&a),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.error_code(), "recall_window_passed");
    let r = c
        .call(
            "POST",
            &format!("/api/v1/conversations/{id}/messages/1/recall"),
            Some(&a),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "already recalled");
    let r = c
        .call(
            "POST",
            &format!("/api/v1/conversations/{id}/messages/9/recall"),
            Some(&a),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn deleting_from_my_view_leaves_the_other_partys_copy() {
    let n = TestNode::start().await;
    let c = n.client();
    let a = c.user("da1", &phone(1)).await;
    let b = c.user("db1", &phone(2)).await;
    let id = c.direct(&a, "db1@localhost").await;
    for (t, s) in [("1", "one"), ("2", "two"), ("3", "three")] {
        c.say(&a, &id, t, s).await;
    }
    let r = c
        .call(
            "DELETE",
            &format!("/api/v1/conversations/{id}/messages/2"),
            Some(&b),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(c.texts(&b, &id).await, ["one", "three"]);
    assert_eq!(c.texts(&a, &id).await, ["one", "two", "three"]);
    let r = c
        .call(
            "DELETE",
            &format!("/api/v1/conversations/{id}/messages"),
            Some(&a),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(c.texts(&a, &id).await.is_empty());
    assert_eq!(c.texts(&b, &id).await, ["one", "three"]);
    c.say(&b, &id, "4", "four").await;
    assert_eq!(
        c.texts(&a, &id).await,
        ["four"],
        "new messages still arrive"
    );
}

#[tokio::test]
async fn without_cloud_sync_a_later_device_sees_no_old_history_and_with_it_every_device_does() {
    let n = TestNode::start().await;
    let c = n.client();
    let a = c.user("ha1", &phone(1)).await;
    let b = c.user("hb1", &phone(2)).await;
    let id = c.direct(&a, "hb1@localhost").await;
    c.say(&a, &id, "1", "before").await;
    let (b_later, _) = c.login("hb1").await;
    assert!(
        c.texts(&b_later, &id).await.is_empty(),
        "store-and-forward: no old history on a new device"
    );
    assert_eq!(
        c.texts(&b, &id).await,
        ["before"],
        "the device that was there still has it"
    );

    // Once every device of b has received it, it leaves b's view.
    let s1 = c.get("/api/v1/sync?timeout=0", Some(&b)).await.json();
    let cur = s1["cursor"].as_str().unwrap().to_string();
    c.get(&format!("/api/v1/sync?since={cur}&timeout=0"), Some(&b))
        .await;
    c.get(
        &format!("/api/v1/sync?since={cur}&timeout=0"),
        Some(&b_later),
    )
    .await;
    assert!(
        c.texts(&b, &id).await.is_empty(),
        "delivered to all b's devices: gone from b's view"
    );

    // With cloud history, a new device sees everything kept since.
    cloud(&c, &a, true).await;
    c.say(&b, &id, "2", "kept").await;
    let (a_later, _) = c.login("ha1").await;
    assert_eq!(
        c.texts(&a_later, &id).await,
        ["before", "kept"],
        "a's cloud history on a new device"
    );
}

#[tokio::test]
async fn revoking_cloud_sync_deletes_my_history_but_not_the_other_partys() {
    let n = TestNode::start().await;
    let c = n.client();
    let a = c.user("va1", &phone(1)).await;
    let b = c.user("vb1", &phone(2)).await;
    cloud(&c, &a, true).await;
    cloud(&c, &b, true).await;
    let id = c.direct(&a, "vb1@localhost").await;
    c.say(&a, &id, "1", "m1").await;
    c.say(&b, &id, "1", "m2").await;
    cloud(&c, &a, false).await;
    assert!(
        c.texts(&a, &id).await.is_empty(),
        "a's stored history is gone"
    );
    let (a2, _) = c.login("va1").await;
    assert!(c.texts(&a2, &id).await.is_empty());
    assert_eq!(c.texts(&b, &id).await, ["m1", "m2"], "b's copy is b's");
    c.say(&b, &id, "2", "m3").await;
    assert_eq!(
        c.texts(&a, &id).await,
        ["m3"],
        "messaging keeps working after revocation"
    );
}

#[tokio::test]
async fn a_group_name_that_impersonates_is_refused_naming_the_field() {
    let n = TestNode::start().await;
    let c = n.client();
    let ann = c.user("ann", &phone(1)).await;
    c.user("ben", &phone(2)).await;
    for name in [
        "team\u{202e}nimda",
        "\u{200b}",
        "g\u{ffff}",
        "\u{feff}staff",
    ] {
        let r = c
            .call(
                "POST",
                "/api/v1/conversations",
                Some(&ann),
                Some(&json!({"kind": "group", "name": name, "members": ["ben@localhost"]})),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{name:?}");
        let message = r.json()["error"]["message"].as_str().unwrap().to_string();
        assert!(message.starts_with("name"), "{name:?}: {message}");
    }
    // NFC: the decomposed spelling is stored as the composed one.
    let r = c
        .call(
            "POST",
            "/api/v1/conversations",
            Some(&ann),
            Some(&json!({"kind": "group", "name": "Cafe\u{301}", "members": ["ben@localhost"]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let id = r.json()["id"].as_str().unwrap().to_string();
    let shown = c
        .get(&format!("/api/v1/conversations/{id}"), Some(&ann))
        .await
        .json();
    assert_eq!(shown["name"], "Café", "{shown}");
}
