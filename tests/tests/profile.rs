//! Profiles: editing, per-field visibility, and what other users may see (never a phone number).

use http::StatusCode;
use serde_json::json;
use tests::{TestNode, phone};

#[tokio::test]
async fn own_profile_shows_everything_with_visibility() {
    let n = TestNode::start().await;
    let c = n.client();
    let t = c.user("alice", &phone(1)).await;
    let me = c.get("/api/v1/me", Some(&t)).await.json();
    assert_eq!(me["user"], "alice@localhost");
    assert_eq!(me["phone"], phone(1));
    assert_eq!(me["nickname"], "Nick alice");
    assert_eq!(me["avatar"], serde_json::Value::Null);
    assert_eq!(
        me["profile"],
        json!({}),
        "no optional data collected at registration"
    );

    let r = c
        .call(
            "PATCH",
            "/api/v1/me",
            Some(&t),
            Some(&json!({
                "nickname": "小爱",
                "bio": {"value": "hello"},
                "region": {"value": "Hangzhou", "visibility": "public"},
                "education": {"value": "Zhejiang University", "visibility": "friends"},
                "birthday": {"value": "2001-02-03", "visibility": "private"},
            })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let me = r.json();
    assert_eq!(me["nickname"], "小爱");
    assert_eq!(
        me["profile"]["bio"],
        json!({"value": "hello", "visibility": "private"}),
        "private by default"
    );
    assert_eq!(me["profile"]["region"]["visibility"], "public");
    assert_eq!(c.get("/api/v1/me", Some(&t)).await.json(), me, "stored");

    // Making education private and removing the bio.
    let me = c
        .call(
            "PATCH",
            "/api/v1/me",
            Some(&t),
            Some(&json!({"education": {"visibility": "private"}, "bio": null, "avatar": null})),
        )
        .await
        .json();
    assert_eq!(
        me["profile"]["education"],
        json!({"value": "Zhejiang University", "visibility": "private"})
    );
    assert!(me["profile"].get("bio").is_none());
    assert_eq!(me["avatar"], serde_json::Value::Null);
}

#[tokio::test]
async fn others_see_nickname_avatar_and_public_fields_only() {
    let n = TestNode::start().await;
    let c = n.client();
    let alice = c.user("alice", &phone(1)).await;
    let bob = c.user("bob", &phone(2)).await;
    c.call(
        "PATCH",
        "/api/v1/me",
        Some(&alice),
        Some(&json!({
            "gender": {"value": "female", "visibility": "public"},
            "education": {"value": "ZJU", "visibility": "friends"},
            "bio": {"value": "secret", "visibility": "private"},
        })),
    )
    .await;
    let r = c.get("/api/v1/users/alice@localhost", Some(&bob)).await;
    assert_eq!(r.status, StatusCode::OK);
    let v = r.json();
    assert_eq!(
        v,
        json!({"user": "alice@localhost", "nickname": "Nick alice", "avatar": null, "profile": {"gender": "female"}})
    );
    let raw = String::from_utf8_lossy(&r.body);
    assert!(!raw.contains(&phone(1)) && !raw.contains("secret") && !raw.contains("ZJU"));

    // Percent-encoded addresses work too; the owner sees all of their own fields.
    let own = c
        .get("/api/v1/users/alice%40localhost", Some(&alice))
        .await
        .json();
    assert_eq!(own["profile"].as_object().unwrap().len(), 3);

    let r = c.get("/api/v1/users/nobody@localhost", Some(&bob)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // A node that is not a peer is never asked.
    let r = c.get("/api/v1/users/alice@other.example", Some(&bob)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.error_code(), "not_a_peer");
    let r = c.get("/api/v1/users/no-at-sign", Some(&bob)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = c.get("/api/v1/users/alice@localhost", None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn invalid_patches_name_the_field_and_change_nothing() {
    let n = TestNode::start().await;
    let c = n.client();
    let t = c.user("carol", &phone(3)).await;
    let before = c.get("/api/v1/me", Some(&t)).await.json();
    let cases = [
        (json!({"nickname": ""}), "nickname"),
        (json!({"nickname": 5}), "nickname"),
        (json!({"birthday": {"value": "2099-01-01"}}), "birthday"),
        (json!({"birthday": {"value": "1990-02-30"}}), "birthday"),
        (json!({"bio": {"value": "x".repeat(501)}}), "bio"),
        (
            json!({"gender": {"visibility": "everyone", "value": "f"}}),
            "gender",
        ),
        (json!({"region": {"visibility": "public"}}), "region"),
        (json!({"region": "Hangzhou"}), "region"),
        (json!({"region": {"value": "H", "colour": "red"}}), "region"),
        (json!({"avatar": 7}), "avatar"),
        // An avatar is an uploaded image now, not a free-form reference.
        (json!({"avatar": "https://example.invalid/a.png"}), "avatar"),
        (json!({"avatar": "no-such-media"}), "avatar"),
        (
            json!({"nickname": "ok", "phone": "+8613900000009"}),
            "phone",
        ),
        (json!({}), "nothing"),
    ];
    for (body, field) in cases {
        let r = c.call("PATCH", "/api/v1/me", Some(&t), Some(&body)).await;
        assert!(
            r.status == StatusCode::UNPROCESSABLE_ENTITY || r.status == StatusCode::BAD_REQUEST,
            "{body}: {}",
            r.status
        );
        let msg = r.json()["error"]["message"].as_str().unwrap().to_string();
        assert!(msg.contains(field), "{body}: {msg}");
    }
    let r = c
        .raw(
            "PATCH",
            "/api/v1/me",
            Some(&t),
            "application/json",
            b"not json".to_vec(),
        )
        .await;
    assert_eq!(r.error_code(), "bad_json");
    assert_eq!(
        c.get("/api/v1/me", Some(&t)).await.json(),
        before,
        "nothing changed"
    );
}
