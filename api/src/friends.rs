//! Friends, friend requests, blocks and the who-may-message-me setting (clause 1.3.a).
//! Addresses travel in bodies only; paths carry opaque ids (16 hex digits).
//!
//! - `GET /api/v1/friends` → 200 `{"friends":[friend]}`; `DELETE /api/v1/friends/{id}` → 204.
//! - `GET /api/v1/friends/requests` → 200 `{"requests":[request]}` (pending, both directions);
//!   `POST` `{"to","note"?}` → 201 request; `POST …/{id}/accept` → 200 friend;
//!   `POST …/{id}/decline` → 204; `DELETE …/{id}` (the sender cancels) → 204.
//! - `GET /api/v1/blocks` → 200 `{"blocks":[block]}`; `POST` `{"user"}` → 201 block (200 if
//!   already blocked); `DELETE /api/v1/blocks/{id}` → 204.
//! - `GET`/`PUT /api/v1/me/direct-messages` `{"direct_messages":"anyone"|"friends"}`.

use http::{Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::body::Incoming;
use super::error::ApiError;
use super::json::{Body, no_content, read_json, reply};
use domain::accounts::Session;
use domain::friends::{
    BlockView, Direction, FriendError, FriendView, Friends, RequestView, parse_id, wire_id,
};

fn friend_json(f: &FriendView) -> Value {
    json!({
        "id": wire_id(f.id),
        "user": f.person.address,
        "nickname": f.person.nickname,
        "since": f.since.to_rfc3339(),
    })
}

fn request_json(r: &RequestView) -> Value {
    json!({
        "id": wire_id(r.id),
        "direction": match r.direction {
            Direction::Incoming => "incoming",
            Direction::Outgoing => "outgoing",
        },
        "user": r.person.address,
        "nickname": r.person.nickname,
        "note": r.note,
        "created": r.created.to_rfc3339(),
        "state": r.state.name(),
    })
}

fn block_json(b: &BlockView) -> Value {
    json!({
        "id": wire_id(b.id),
        "user": b.person.address,
        "nickname": b.person.nickname,
        "since": b.since.to_rfc3339(),
    })
}

fn id(s: &str) -> Result<u64, ApiError> {
    parse_id(s).ok_or_else(|| ApiError::not_found("no such request, friend or block"))
}

pub async fn list(f: &Friends, session: &Session) -> Result<Response<Body>, ApiError> {
    let list: Vec<Value> = f
        .list(session.user)
        .await?
        .iter()
        .map(friend_json)
        .collect();
    Ok(reply(StatusCode::OK, &json!({ "friends": list })))
}

pub async fn remove(f: &Friends, session: &Session, raw: &str) -> Result<Response<Body>, ApiError> {
    f.remove(session.user, id(raw)?).await?;
    Ok(no_content())
}

pub async fn requests(f: &Friends, session: &Session) -> Result<Response<Body>, ApiError> {
    let list: Vec<Value> = f
        .requests(session.user)
        .await?
        .iter()
        .map(request_json)
        .collect();
    Ok(reply(StatusCode::OK, &json!({ "requests": list })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestBody {
    to: String,
    #[serde(default)]
    note: Option<String>,
}

pub async fn send(
    f: &Friends,
    session: &Session,
    req: Request<Incoming>,
    limit: usize,
) -> Result<Response<Body>, ApiError> {
    let b: RequestBody = read_json(req, limit).await?;
    let r = f.request(session.user, &b.to, b.note.as_deref()).await?;
    Ok(reply(StatusCode::CREATED, &request_json(&r)))
}

pub async fn accept(f: &Friends, session: &Session, raw: &str) -> Result<Response<Body>, ApiError> {
    match f.answer(session.user, id(raw)?, true).await? {
        Some(friend) => Ok(reply(StatusCode::OK, &friend_json(&friend))),
        None => Err(ApiError::internal()),
    }
}

pub async fn decline(
    f: &Friends,
    session: &Session,
    raw: &str,
) -> Result<Response<Body>, ApiError> {
    f.answer(session.user, id(raw)?, false).await?;
    Ok(no_content())
}

pub async fn cancel(f: &Friends, session: &Session, raw: &str) -> Result<Response<Body>, ApiError> {
    f.cancel(session.user, id(raw)?).await?;
    Ok(no_content())
}

pub async fn blocks(f: &Friends, session: &Session) -> Result<Response<Body>, ApiError> {
    let list: Vec<Value> = f
        .blocks(session.user)
        .await?
        .iter()
        .map(block_json)
        .collect();
    Ok(reply(StatusCode::OK, &json!({ "blocks": list })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BlockBody {
    user: String,
}

pub async fn block(
    f: &Friends,
    session: &Session,
    req: Request<Incoming>,
    limit: usize,
) -> Result<Response<Body>, ApiError> {
    let b: BlockBody = read_json(req, limit).await?;
    let (view, created) = f.block(session.user, &b.user).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(reply(status, &block_json(&view)))
}

pub async fn unblock(
    f: &Friends,
    session: &Session,
    raw: &str,
) -> Result<Response<Body>, ApiError> {
    f.unblock(session.user, id(raw)?).await?;
    Ok(no_content())
}

fn setting_json(friends_only: bool) -> Value {
    json!({"direct_messages": if friends_only { "friends" } else { "anyone" }})
}

pub async fn direct_messages(f: &Friends, session: &Session) -> Result<Response<Body>, ApiError> {
    Ok(reply(
        StatusCode::OK,
        &setting_json(f.friends_only(session.user).await?),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingBody {
    direct_messages: String,
}

pub async fn set_direct_messages(
    f: &Friends,
    session: &Session,
    req: Request<Incoming>,
    limit: usize,
) -> Result<Response<Body>, ApiError> {
    let b: SettingBody = read_json(req, limit).await?;
    let friends_only = match b.direct_messages.as_str() {
        "anyone" => false,
        "friends" => true,
        _ => {
            return Err(ApiError::invalid(
                "direct_messages",
                "must be anyone or friends",
            ));
        }
    };
    f.set_friends_only(session.user, friends_only).await?;
    Ok(reply(StatusCode::OK, &setting_json(friends_only)))
}

impl From<FriendError> for ApiError {
    fn from(e: FriendError) -> Self {
        let text = e.to_string();
        match e {
            FriendError::Invalid { field, reason } => ApiError::invalid(field, &reason),
            FriendError::NotFound => ApiError::not_found(text),
            FriendError::NoSuchUser => ApiError::not_found(text),
            FriendError::Refused(r) => r.into(),
            FriendError::Federation(f) => f.into(),
            FriendError::AlreadyFriends => {
                ApiError::new(StatusCode::CONFLICT, "already_friends", text)
            }
            FriendError::YouBlock => ApiError::new(StatusCode::CONFLICT, "blocked_by_you", text),
            FriendError::Pending => ApiError::new(StatusCode::CONFLICT, "request_pending", text),
            FriendError::RecentlyDeclined { .. } => {
                ApiError::new(StatusCode::CONFLICT, "recently_declined", text)
            }
            FriendError::TooManyPending => {
                ApiError::new(StatusCode::CONFLICT, "too_many_pending", text)
            }
            FriendError::DailyLimit { retry_after_secs } => ApiError {
                retry_after: Some(retry_after_secs),
                ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, "daily_limit", text)
            },
            FriendError::Store(s) => s.into(),
            other => {
                tracing::error!(error = %other, "friends operation failed");
                ApiError::internal()
            }
        }
    }
}
