//! Set-up that several black-box test files repeat before their first assertion: friends,
//! communities with members and posts, media uploaded and sent in a message. Each helper
//! panics (naming the answer) unless the node gives the status of success.

use http::StatusCode;
use serde_json::{Value, json};

use crate::{Client, Reply};

fn shown(r: &Reply) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

/// Makes the users of tokens `a` and `b` friends: `a` asks `b_addr` (b's address), `b`
/// accepts.
pub async fn befriend(c: &Client, a: &str, b: &str, b_addr: &str) {
    let r = c
        .call(
            "POST",
            "/api/v1/friends/requests",
            Some(a),
            Some(&json!({ "to": b_addr })),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", shown(&r));
    let id = r.json()["id"].as_str().expect("request id").to_string();
    let r = c
        .call(
            "POST",
            &format!("/api/v1/friends/requests/{id}/accept"),
            Some(b),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", shown(&r));
}

/// Creates a community owned by `t`'s user; the 201 body.
pub async fn create_community(
    c: &Client,
    t: &str,
    name: &str,
    description: &str,
    visibility: &str,
) -> Value {
    let r = c
        .call(
            "POST",
            "/api/v1/communities",
            Some(t),
            Some(&json!({"name": name, "description": description, "visibility": visibility})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", shown(&r));
    r.json()
}

/// `t`'s user asks to join community `id`; the reply (joined, or a request left).
pub async fn join_community(c: &Client, t: &str, id: &str) -> Reply {
    c.call(
        "POST",
        &format!("/api/v1/communities/{id}/join"),
        Some(t),
        None,
    )
    .await
}

/// A moderator's `action` on `address` in community `id`; the reply.
pub async fn moderate_community(
    c: &Client,
    t: &str,
    id: &str,
    address: &str,
    action: &str,
) -> Reply {
    c.call(
        "POST",
        &format!("/api/v1/communities/{id}/moderation"),
        Some(t),
        Some(&json!({"address": address, "action": action})),
    )
    .await
}

/// Posts `post` (a JSON body) in community `id`; the reply.
pub async fn community_post(c: &Client, t: &str, id: &str, post: &Value) -> Reply {
    c.call(
        "POST",
        &format!("/api/v1/communities/{id}/posts"),
        Some(t),
        Some(post),
    )
    .await
}

/// Posts `text` with `visibility` in community `id`; the post's number.
pub async fn post_text(c: &Client, t: &str, id: &str, text: &str, visibility: &str) -> u64 {
    let r = community_post(c, t, id, &json!({"text": text, "visibility": visibility})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", shown(&r));
    r.json()["id"].as_u64().expect("post id")
}

/// Uploads `body` as media of type `content_type`; its media id.
pub async fn upload_media(c: &Client, token: &str, content_type: &str, body: Vec<u8>) -> String {
    let r = c
        .raw("POST", "/api/v1/media", Some(token), content_type, body)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", shown(&r));
    r.json()["media_id"].as_str().expect("media id").to_string()
}

/// Sends media `media` into `conv` as a message of type `kind` (`image`, `file`, …); the
/// reply, whatever its status.
pub async fn send_media(
    c: &Client,
    token: &str,
    conv: &str,
    txn: &str,
    kind: &str,
    media: &str,
) -> Reply {
    c.call(
        "POST",
        &format!("/api/v1/conversations/{conv}/messages"),
        Some(token),
        Some(&json!({"txn_id": txn, "body": {"type": kind, "media_id": media}})),
    )
    .await
}
