//! Messages in a conversation, and the JSON shape of messages and events shared with the
//! event stream.
//!
//! - `POST /api/v1/conversations/{id}/messages` — send (idempotent per device and `txn_id`).
//! - `GET /api/v1/conversations/{id}/messages?before=&after=&limit=` — a page of history.
//! - `DELETE /api/v1/conversations/{id}/messages` — delete all of it from my view.
//! - `DELETE /api/v1/conversations/{id}/messages/{seq}` — delete one from my view.
//! - `POST /api/v1/conversations/{id}/messages/{seq}/recall` — recall for everyone (author, in time).

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use serde::Deserialize;
use serde_json::{Value, json};

use super::conversations::role_name;
use super::error::ApiError;
use super::json::{Body, no_content, read_json, reply};
use crate::accounts::Session;
use crate::messaging::{self, Event, MediaKind, MessageView, Messaging, SendOutcome};
use crate::storage::MemberAction;

/// A message body as JSON.
pub fn body_json(b: &messaging::Body) -> Value {
    match b {
        messaging::Body::Text(t) => json!({"type": "text", "text": t}),
        messaging::Body::Media {
            kind,
            media_id,
            name,
        } => {
            let mut v = json!({"type": kind.name(), "media_id": media_id});
            if let Some(n) = name {
                v["name"] = json!(n);
            }
            v
        }
    }
}

/// A message as JSON: a recalled one has `"recalled": true` and a null body.
pub fn message_json(m: &MessageView) -> Value {
    json!({
        "id": m.id,
        "seq": m.seq,
        "ts": m.ts.0,
        "sender": m.sender,
        "recalled": m.body.is_none(),
        "body": m.body.as_ref().map(body_json),
    })
}

fn action_name(a: MemberAction) -> &'static str {
    match a {
        MemberAction::Joined => "joined",
        MemberAction::Invited => "invited",
        MemberAction::Left => "left",
        MemberAction::Removed => "removed",
        MemberAction::RoleChanged => "role_changed",
    }
}

/// An event as JSON, with its cursor.
pub fn event_json(cursor: u64, e: &Event) -> Value {
    let mut v = match e {
        Event::Message {
            conversation,
            message,
        } => {
            json!({"type": "message", "conversation": conversation, "message": message_json(message)})
        }
        Event::Recall { conversation, seq } => {
            json!({"type": "recall", "conversation": conversation, "seq": seq})
        }
        Event::Membership {
            conversation,
            action,
            user,
            actor,
            role,
        } => json!({
            "type": "membership", "conversation": conversation, "action": action_name(*action),
            "user": user, "actor": actor, "role": role_name(*role),
        }),
        Event::Renamed {
            conversation,
            name,
            actor,
        } => {
            json!({"type": "renamed", "conversation": conversation, "name": name, "actor": actor})
        }
        Event::Visibility {
            conversation,
            public,
            actor,
        } => {
            json!({"type": "visibility", "conversation": conversation, "public": public, "actor": actor})
        }
        Event::Notice { kind, title, text } => {
            json!({"type": "notice", "kind": kind, "title": title, "text": text})
        }
    };
    v["cursor"] = json!(cursor.to_string());
    v
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendBody {
    txn_id: String,
    body: WireBody,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireBody {
    #[serde(rename = "type")]
    kind: String,
    text: Option<String>,
    media_id: Option<String>,
    name: Option<String>,
}

fn parse_body(b: WireBody) -> Result<messaging::Body, ApiError> {
    if b.kind == "text" {
        if b.media_id.is_some() || b.name.is_some() {
            return Err(ApiError::invalid("body", "a text body has only `text`"));
        }
        let text = b
            .text
            .ok_or_else(|| ApiError::invalid("body.text", "is required"))?;
        return Ok(messaging::Body::Text(text));
    }
    let kind = MediaKind::parse(&b.kind).ok_or_else(|| {
        ApiError::invalid("body.type", "must be text, image, voice, video or file")
    })?;
    if b.text.is_some() {
        return Err(ApiError::invalid("body.text", "is only for text bodies"));
    }
    let media_id = b
        .media_id
        .ok_or_else(|| ApiError::invalid("body.media_id", "is required (POST /api/v1/media)"))?;
    if media_id.is_empty() || media_id.len() > 64 {
        return Err(ApiError::invalid("body.media_id", "is not a media id"));
    }
    let name = b
        .name
        .map(|n| {
            crate::profile::text("body.name", &n, 1, 255)
                .map_err(|e| ApiError::invalid(&e.field, &e.reason))
        })
        .transpose()?;
    if name.is_some() && kind != MediaKind::File {
        return Err(ApiError::invalid("body.name", "is only for files"));
    }
    Ok(messaging::Body::Media {
        kind,
        media_id,
        name,
    })
}

/// `POST /api/v1/conversations/{id}/messages` `{"txn_id","body":{"type":"text","text"} |
/// {"type":"image"|"voice"|"video"|"file","media_id","name"?}}` → 201 `{"id","seq","ts"}` once
/// durably stored; the same `txn_id` from the same device → the same answer, stored once.
/// Image, voice and video need the photos, microphone and camera purposes (403 otherwise).
/// In a conversation another node hosts, the message is durably queued for that node and the
/// answer is 202 `{"pending":true,"ts"}`: it arrives, with its seq, as an event once the host
/// has ordered it. 451 when the message would reach a peer in another region without the
/// sender's `cross_border_transfer` consent (nothing stored or queued).
pub async fn send(
    messaging: &Messaging,
    session: &Session,
    id: &str,
    req: Request<Incoming>,
    limit: usize,
) -> Result<Response<Body>, ApiError> {
    let b: SendBody = read_json(req, limit).await?;
    let body = parse_body(b.body)?;
    match messaging.send(session, id, &b.txn_id, body).await? {
        SendOutcome::Stored { id, seq, ts } => Ok(reply(
            StatusCode::CREATED,
            &json!({"id": id, "seq": seq, "ts": ts.0}),
        )),
        SendOutcome::Forwarded { ts } => Ok(reply(
            StatusCode::ACCEPTED,
            &json!({"pending": true, "ts": ts.0}),
        )),
    }
}

fn query_u64(query: Option<&str>, allowed: &[&str]) -> Result<Vec<(String, u64)>, ApiError> {
    let mut out = Vec::new();
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if !allowed.contains(&k) {
            return Err(ApiError::bad_request(
                "invalid_request",
                format!("unknown query parameter `{k}`"),
            ));
        }
        let n = v.parse::<u64>().map_err(|_| {
            ApiError::invalid(
                allowed
                    .iter()
                    .find(|a| **a == k)
                    .copied()
                    .unwrap_or("query"),
                "must be a whole number",
            )
        })?;
        out.push((k.to_string(), n));
    }
    Ok(out)
}

/// `GET /api/v1/conversations/{id}/messages?before=SEQ&after=SEQ&limit=N` → 200
/// `{"messages":[…]}`: newest first (before `before` if given), or with `after` oldest first.
/// `limit` 1–200, default 50.
pub async fn list(
    messaging: &Messaging,
    session: &Session,
    id: &str,
    query: Option<&str>,
) -> Result<Response<Body>, ApiError> {
    let q = query_u64(query, &["before", "after", "limit"])?;
    let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| *v);
    let limit = get("limit").unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::invalid("limit", "must be 1 to 200"));
    }
    if get("before").is_some() && get("after").is_some() {
        return Err(ApiError::invalid(
            "before",
            "give before or after, not both",
        ));
    }
    let page = messaging
        .history(session, id, get("before"), get("after"), limit as usize)
        .await?;
    Ok(reply(
        StatusCode::OK,
        &json!({"messages": page.iter().map(message_json).collect::<Vec<_>>()}),
    ))
}

/// `DELETE /api/v1/conversations/{id}/messages` → 204: every message so far leaves my view.
pub async fn clear(
    messaging: &Messaging,
    session: &Session,
    id: &str,
) -> Result<Response<Body>, ApiError> {
    messaging.clear(session.user, id).await?;
    Ok(no_content())
}

fn seq(s: &str) -> Result<u64, ApiError> {
    s.parse()
        .map_err(|_| ApiError::not_found("no such message"))
}

/// `DELETE /api/v1/conversations/{id}/messages/{seq}` → 204: the message leaves my view.
pub async fn hide(
    messaging: &Messaging,
    session: &Session,
    id: &str,
    s: &str,
) -> Result<Response<Body>, ApiError> {
    messaging.hide(session.user, id, seq(s)?).await?;
    Ok(no_content())
}

/// `POST /api/v1/conversations/{id}/messages/{seq}/recall` → 204: a tombstone for everyone;
/// 403 if not the author or the recall window has passed.
pub async fn recall(
    messaging: &Messaging,
    session: &Session,
    id: &str,
    s: &str,
) -> Result<Response<Body>, ApiError> {
    messaging.recall(session.user, id, seq(s)?).await?;
    Ok(no_content())
}
