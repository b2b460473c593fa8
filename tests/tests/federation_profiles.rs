//! Profiles follow their owners across nodes (issue 25): a new nickname or avatar is pushed,
//! signed, to every peer that holds the user and applied there, under the residency rule;
//! nothing else of a profile crosses.

use http::StatusCode;
use serde_json::{Value, json};
use tests::{Client, eventually, federation, phone};

async fn patch_me(c: &Client, token: &str, body: Value) {
    let r = c
        .call("PATCH", "/api/v1/me", Some(token), Some(&body))
        .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
}

/// The member `user` of `conv` as `token` sees it on `c`.
async fn member(c: &Client, token: &str, conv: &str, user: &str) -> Value {
    let v = c
        .get(&format!("/api/v1/conversations/{conv}"), Some(token))
        .await
        .json();
    v["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["user"] == user)
        .cloned()
        .unwrap_or_else(|| panic!("{user} not in {v}"))
}

async fn direct(c: &Client, token: &str, with: &str) -> String {
    let r = c
        .call(
            "POST",
            "/api/v1/conversations",
            Some(token),
            Some(&json!({"kind": "direct", "with": with})),
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

async fn consent(c: &Client, token: &str, granted: bool) {
    let r = c.consent(token, "cross_border_transfer", granted).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
}

#[tokio::test]
async fn a_nickname_or_avatar_change_reaches_every_peer_holding_the_user_within_the_residency_rule()
{
    let nodes = federation(&[("a.test", "CN"), ("b.test", "CN"), ("c.test", "EU")], "").await;
    let (a, b, c) = (nodes[0].client(), nodes[1].client(), nodes[2].client());
    let alice = a.user("alice", &phone(1)).await;
    let bob = b.user("bob", &phone(2)).await;
    let carol = c.user("carol", &phone(3)).await;
    consent(&c, &carol, true).await;
    consent(&a, &alice, true).await;
    let with_bob = direct(&a, &alice, "bob@b.test").await;
    let with_carol = direct(&a, &alice, "carol@c.test").await;
    eventually(10, "both peers hold alice", || async {
        let on_b = b
            .get(&format!("/api/v1/conversations/{with_bob}"), Some(&bob))
            .await;
        let on_c = c
            .get(&format!("/api/v1/conversations/{with_carol}"), Some(&carol))
            .await;
        (on_b.status == StatusCode::OK && on_c.status == StatusCode::OK).then_some(())
    })
    .await;
    assert_eq!(
        member(&b, &bob, &with_bob, "alice@a.test").await["nickname"],
        "alice"
    );

    // Alice withdraws her consent to transfers abroad, then changes her nickname and avatar:
    // the CN peer gets both; the EU peer nothing (its copy stays as it was).
    consent(&a, &alice, false).await;
    let r = a.consent(&alice, "photos", true).await;
    assert_eq!(r.status, StatusCode::OK);
    let image = a
        .raw(
            "POST",
            "/api/v1/media",
            Some(&alice),
            "image/jpeg",
            crate::media::jpeg_with_gps(),
        )
        .await
        .json()["media_id"]
        .as_str()
        .unwrap()
        .to_string();
    patch_me(&a, &alice, json!({"nickname": "Alice Two", "avatar": image, "bio": {"value": "private bio", "visibility": "public"}})).await;
    eventually(10, "b.test shows the new nickname", || async {
        let m = member(&b, &bob, &with_bob, "alice@a.test").await;
        (m["nickname"] == "Alice Two").then_some(m)
    })
    .await;
    let m = member(&b, &bob, &with_bob, "alice@a.test").await;
    assert!(
        m["avatar"].is_string() && m["avatar"] != image.as_str(),
        "b.test's copy of the image: {m}"
    );
    let log = nodes[0].node().disclosures("alice").await.unwrap();
    let profiles = |peer: &str| {
        log.iter()
            .filter(|(p, k, _, _)| p == peer && k == "profile")
            .map(|(_, _, o, n)| (o.clone(), *n))
            .collect::<Vec<_>>()
    };
    eventually(10, "a.test recorded the delivery", || async {
        let log = nodes[0].node().disclosures("alice").await.unwrap();
        log.iter()
            .any(|(p, k, o, _)| p == "b.test" && k == "profile" && o == "delivered")
            .then_some(())
    })
    .await;
    assert_eq!(profiles("c.test"), vec![], "nothing queued for the EU peer");
    let m = member(&c, &carol, &with_carol, "alice@a.test").await;
    assert_eq!(m["nickname"], "alice", "{m}");
    assert_eq!(m["avatar"], json!(null), "{m}");
    // The bio never crosses: not in what b.test shows, not in b.test's file.
    let v = b.get("/api/v1/conversations", Some(&bob)).await;
    assert!(!String::from_utf8_lossy(&v.body).contains("private bio"));

    // A change of other fields only pushes nothing; clearing the avatar does push.
    patch_me(&a, &alice, json!({"bio": null})).await;
    patch_me(&a, &alice, json!({"avatar": null})).await;
    eventually(10, "b.test drops the avatar", || async {
        let m = member(&b, &bob, &with_bob, "alice@a.test").await;
        m["avatar"].is_null().then_some(())
    })
    .await;
    let delivered = eventually(10, "two profile deliveries", || async {
        let log = nodes[0].node().disclosures("alice").await.unwrap();
        log.iter()
            .find(|(p, k, o, _)| p == "b.test" && k == "profile" && o == "delivered")
            .map(|(_, _, _, n)| *n)
            .filter(|n| *n >= 2)
    })
    .await;
    assert_eq!(
        delivered, 2,
        "one push per nickname or avatar change, none for the bio"
    );
    assert_eq!(
        member(&b, &bob, &with_bob, "alice@a.test").await["nickname"],
        "Alice Two"
    );

    // With consent again, the EU peer is brought up to date by the next change.
    consent(&a, &alice, true).await;
    patch_me(&a, &alice, json!({"nickname": "Alice Three"})).await;
    eventually(10, "c.test shows the new nickname", || async {
        let m = member(&c, &carol, &with_carol, "alice@a.test").await;
        (m["nickname"] == "Alice Three").then_some(())
    })
    .await;
    eventually(10, "b.test shows it too", || async {
        let m = member(&b, &bob, &with_bob, "alice@a.test").await;
        (m["nickname"] == "Alice Three").then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_new_nickname_reaches_the_nodes_of_a_group_hosted_elsewhere_that_got_the_user_only_by_relay()
 {
    let nodes = federation(&[("a.test", "CN"), ("b.test", "CN"), ("c.test", "CN")], "").await;
    let (a, b, c) = (nodes[0].client(), nodes[1].client(), nodes[2].client());
    let alice = a.user("alice", &phone(1)).await;
    let bob = b.user("bob", &phone(2)).await;
    let carol = c.user("carol", &phone(3)).await;
    let r = b
        .call(
            "POST",
            "/api/v1/conversations",
            Some(&bob),
            Some(
                &json!({"kind": "group", "name": "g", "members": ["alice@a.test", "carol@c.test"]}),
            ),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let group = r.json()["id"].as_str().unwrap().to_string();
    eventually(10, "the group reached a.test and c.test", || async {
        let on_a = a
            .get(&format!("/api/v1/conversations/{group}"), Some(&alice))
            .await;
        let on_c = c
            .get(&format!("/api/v1/conversations/{group}"), Some(&carol))
            .await;
        (on_a.status == StatusCode::OK && on_c.status == StatusCode::OK).then_some(())
    })
    .await;
    assert_eq!(
        member(&c, &carol, &group, "alice@a.test").await["nickname"],
        "alice"
    );

    patch_me(&a, &alice, json!({"nickname": "Alice Two"})).await;
    for (client, token) in [(&b, &bob), (&c, &carol)] {
        eventually(10, "the new nickname is shown", || async {
            let m = member(client, token, &group, "alice@a.test").await;
            (m["nickname"] == "Alice Two").then_some(())
        })
        .await;
    }
    for peer in ["b.test", "c.test"] {
        eventually(10, "a.test logged the delivery", || async {
            let log = nodes[0].node().disclosures("alice").await.unwrap();
            log.iter()
                .any(|(p, k, o, _)| p == peer && k == "profile" && o == "delivered")
                .then_some(())
        })
        .await;
    }
}
