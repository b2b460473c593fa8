//! Conversations and their members.
//!
//! - `POST /api/v1/conversations` — open a direct conversation or create a group.
//! - `GET /api/v1/conversations` — mine, most recently active first.
//! - `GET /api/v1/conversations/{id}` — one, with its members (address, nickname, avatar, role).
//! - `PATCH /api/v1/conversations/{id}` — rename, make public or private.
//! - `POST /api/v1/conversations/{id}/members` — invite (or join a public group oneself).
//! - `DELETE /api/v1/conversations/{id}/members/{address}` — remove (oneself: leave).
//! - `PATCH /api/v1/conversations/{id}/members/{address}` — make admin or member.
//! - `POST /api/v1/conversations/{id}/owner` — transfer ownership.
//! - `PUT /api/v1/conversations/{id}/read` — mark read up to a message.
//!
//! Non-members get 404 on every route, as if the conversation did not exist.

use http::{Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::body::Incoming;
use super::error::ApiError;
use super::json::{Body, no_content, read_json, reply};
use domain::accounts::{Accounts, Session};
use domain::federate::Directory;
use domain::messaging::{
    Body as MessageBody, ConversationActivity, ConversationView, Messaging, PREVIEW_CHARS,
};
use storage::REMOTE_USER_BIT;
use storage::{ConvKind, Role};

pub fn role_name(r: Role) -> &'static str {
    match r {
        Role::Owner => "owner",
        Role::Admin => "admin",
        Role::Member => "member",
    }
}

fn summary(v: &ConversationView, me: &str) -> Value {
    let mut o = json!({
        "id": v.id,
        "kind": if v.kind == ConvKind::Group { "group" } else { "direct" },
        "public": v.public,
        "role": role_name(v.my_role),
        "last_seq": v.last_seq,
        "last_activity": v.last_activity.to_rfc3339(),
        "created": v.created.to_rfc3339(),
        "member_count": v.members.len(),
    });
    if v.kind == ConvKind::Group {
        o["name"] = json!(v.name);
    } else {
        // `null` once the other member's account is erased: their address is gone with them.
        o["with"] = v
            .members
            .iter()
            .find(|m| m.as_str() != me)
            .map_or(Value::Null, |m| json!(m));
    }
    o
}

/// An optional field that, when given, must have a value: `null` is refused (400
/// `invalid_request`) as it is for every other field, instead of passing for "absent".
fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    kind: String,
    #[serde(default, deserialize_with = "present")]
    with: Option<String>,
    #[serde(default, deserialize_with = "present")]
    name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    members: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    public: Option<bool>,
}

/// `POST /api/v1/conversations` `{"kind":"direct","with":"bob@domain"}` or
/// `{"kind":"group","name","members":[addresses],"public"?}` → 201 `{"id",…}` (200 with the
/// existing one for a second direct conversation with the same person).
pub async fn create(
    messaging: &Messaging,
    session: &Session,
    me: &str,
    req: Request<Incoming>,
    limit: usize,
) -> Result<Response<Body>, ApiError> {
    let b: CreateBody = read_json(req, limit).await?;
    match b.kind.as_str() {
        "direct" => {
            if b.name.is_some() || b.members.is_some() || b.public.is_some() {
                return Err(ApiError::invalid(
                    "kind",
                    "a direct conversation takes only `with`",
                ));
            }
            let with = b.with.ok_or_else(|| {
                ApiError::invalid("with", "is required for a direct conversation")
            })?;
            let (view, created) = messaging.create_direct(session.user, &with).await?;
            let status = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            Ok(reply(status, &summary(&view, me)))
        }
        "group" => {
            if b.with.is_some() {
                return Err(ApiError::invalid(
                    "with",
                    "is for direct conversations; use members",
                ));
            }
            let name = b
                .name
                .ok_or_else(|| ApiError::invalid("name", "is required for a group"))?;
            let members = b.members.unwrap_or_default();
            let view = messaging
                .create_group(session.user, &name, b.public.unwrap_or(false), &members)
                .await?;
            Ok(reply(StatusCode::CREATED, &summary(&view, me)))
        }
        _ => Err(ApiError::invalid("kind", "must be direct or group")),
    }
}

/// `GET /api/v1/conversations` → 200 `{"conversations":[…]}`, each with `read_seq`, `unread`
/// and `last_message` as the session's device sees them.
pub async fn list(
    messaging: &Messaging,
    session: &Session,
    me: &str,
) -> Result<Response<Body>, ApiError> {
    let all = messaging.list_with_activity(session).await?;
    Ok(reply(
        StatusCode::OK,
        &json!({ "conversations": all.iter().map(|(v, a)| {
            let mut o = summary(v, me);
            o["read_seq"] = json!(a.read_seq);
            o["unread"] = json!(a.unread);
            o["last_message"] = last_message(a);
            o
        }).collect::<Vec<_>>() }),
    ))
}

/// The last message as a list shows it: who, when, what kind, and for text its first
/// [`PREVIEW_CHARS`] characters (a file's name for a file); `null` if there is none.
fn last_message(a: &ConversationActivity) -> Value {
    let Some(m) = &a.last else {
        return Value::Null;
    };
    let (kind, preview) = match &m.body {
        None => ("recalled", None),
        Some(MessageBody::Text(t)) => (
            "text",
            Some(t.chars().take(PREVIEW_CHARS).collect::<String>()),
        ),
        Some(MessageBody::Media { kind, name, .. }) => (
            kind.name(),
            name.as_ref()
                .map(|n| n.chars().take(PREVIEW_CHARS).collect()),
        ),
    };
    json!({
        "seq": m.seq,
        "ts": m.ts.0,
        "sender": m.sender,
        "kind": kind,
        "preview": preview,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadBody {
    seq: u64,
}

/// `PUT /api/v1/conversations/{id}/read` `{"seq"}` → 200 `{"read_seq"}`: the read position
/// moves up to `seq` (clamped to the last message; never back).
pub async fn mark_read(
    messaging: &Messaging,
    session: &Session,
    id: &str,
    req: Request<Incoming>,
    limit: usize,
) -> Result<Response<Body>, ApiError> {
    let b: ReadBody = read_json(req, limit).await?;
    let read_seq = messaging.mark_read(session.user, id, b.seq).await?;
    Ok(reply(StatusCode::OK, &json!({ "read_seq": read_seq })))
}

/// `GET /api/v1/conversations/{id}` → 200 with `members`: address, nickname, avatar and role of
/// each — never phone numbers or other profile fields (2.3.b).
pub async fn get(
    messaging: &Messaging,
    accounts: &Accounts,
    directory: &Directory,
    session: &Session,
    me: &str,
    id: &str,
) -> Result<Response<Body>, ApiError> {
    let (view, members) = messaging.get(session.user, id).await?;
    let mut list = Vec::new();
    for (user, role) in members {
        if user & REMOTE_USER_BIT != 0 {
            if let Some(p) = directory.card(user).await? {
                list.push(json!({
                    "user": p.address,
                    "nickname": p.nickname,
                    "avatar": p.avatar,
                    "role": role_name(role),
                }));
            }
        } else if let Some(card) = accounts.card(user).await? {
            list.push(json!({
                "user": messaging.address(&card.handle),
                "nickname": card.nickname,
                "avatar": card.avatar.as_ref().map(domain::profile::Avatar::shown),
                "role": role_name(role),
            }));
        }
    }
    let mut v = summary(&view, me);
    v["members"] = Value::Array(list);
    Ok(reply(StatusCode::OK, &v))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    #[serde(default, deserialize_with = "present")]
    name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    public: Option<bool>,
}

/// `PATCH /api/v1/conversations/{id}` `{"name"?, "public"?}` → 204.
pub async fn update(
    messaging: &Messaging,
    session: &Session,
    id: &str,
    req: Request<Incoming>,
    limit: usize,
) -> Result<Response<Body>, ApiError> {
    let b: UpdateBody = read_json(req, limit).await?;
    messaging.update(session.user, id, b.name, b.public).await?;
    Ok(no_content())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserBody {
    user: String,
}

/// `POST /api/v1/conversations/{id}/members` `{"user": address}` → 204.
pub async fn invite(
    messaging: &Messaging,
    session: &Session,
    id: &str,
    req: Request<Incoming>,
    limit: usize,
) -> Result<Response<Body>, ApiError> {
    let b: UserBody = read_json(req, limit).await?;
    messaging.invite(session.user, id, &b.user).await?;
    Ok(no_content())
}

/// `DELETE /api/v1/conversations/{id}/members/{address}` → 204.
pub async fn remove(
    messaging: &Messaging,
    session: &Session,
    id: &str,
    address: &str,
) -> Result<Response<Body>, ApiError> {
    messaging.remove(session.user, id, address).await?;
    Ok(no_content())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleBody {
    role: String,
}

/// `PATCH /api/v1/conversations/{id}/members/{address}` `{"role":"admin"|"member"}` → 204.
pub async fn set_role(
    messaging: &Messaging,
    session: &Session,
    id: &str,
    address: &str,
    req: Request<Incoming>,
    limit: usize,
) -> Result<Response<Body>, ApiError> {
    let b: RoleBody = read_json(req, limit).await?;
    let role = match b.role.as_str() {
        "admin" => Role::Admin,
        "member" => Role::Member,
        _ => return Err(ApiError::invalid("role", "must be admin or member")),
    };
    messaging.set_role(session.user, id, address, role).await?;
    Ok(no_content())
}

/// `POST /api/v1/conversations/{id}/owner` `{"user": address}` → 204; the old owner becomes admin.
pub async fn transfer(
    messaging: &Messaging,
    session: &Session,
    id: &str,
    req: Request<Incoming>,
    limit: usize,
) -> Result<Response<Body>, ApiError> {
    let b: UserBody = read_json(req, limit).await?;
    messaging.transfer(session.user, id, &b.user).await?;
    Ok(no_content())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::parse_json;

    #[test]
    fn a_null_boolean_or_name_is_refused_not_taken_for_absent() {
        for body in [
            r#"{"public":null}"#,
            r#"{"name":null}"#,
            r#"{"name":"x","public":null}"#,
        ] {
            let e = parse_json::<UpdateBody>(body.as_bytes())
                .err()
                .unwrap_or_else(|| panic!("{body} accepted"));
            assert_eq!(
                (e.status, e.code),
                (StatusCode::BAD_REQUEST, "invalid_request")
            );
        }
        for body in [
            r#"{"kind":"group","name":"g","public":null}"#,
            r#"{"kind":"direct","with":"bob@localhost","members":null}"#,
        ] {
            let e = parse_json::<CreateBody>(body.as_bytes())
                .err()
                .unwrap_or_else(|| panic!("{body} accepted"));
            assert_eq!(
                (e.status, e.code),
                (StatusCode::BAD_REQUEST, "invalid_request")
            );
        }
        let b: UpdateBody = parse_json(br#"{"public":false}"#).unwrap();
        assert_eq!((b.name, b.public), (None, Some(false)));
        let b: UpdateBody = parse_json(b"{}").unwrap();
        assert_eq!((b.name, b.public), (None, None));
    }
}
