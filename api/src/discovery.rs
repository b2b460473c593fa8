//! Suggestions, nearby people and invites (issue 22). Phone hashes and cells travel only in
//! bodies, never in a URL.
//!
//! - `GET|PUT /api/v1/me/discovery` `{"findable_by_phone"}`: be matched by others' contacts.
//! - `POST /api/v1/me/contacts` `{"hashes":[hex SHA-256("shanliao-contact/v1:"+E.164)]}` →
//!   `{"checked","matched","quota_left"}`; `DELETE` forgets every match.
//! - `GET /api/v1/me/suggestions?limit=&cursor=` → `{"suggestions":[{"address","nickname",
//!   "avatar","reasons":[{"kind":"contact"|"education"|"mutual_friends","count"?}]}],"next"}`;
//!   `POST /api/v1/me/suggestions/dismissed` `{"address"}` → 204.
//! - `PUT /api/v1/me/location` `{"cell"}` → `{"cell","expires"}`; `GET` the same or
//!   `{"cell":null}`; `DELETE` → 204. `GET /api/v1/nearby` → `{"people":[{"address",
//!   "nickname","avatar","band"}]}`.
//! - `POST /api/v1/invites` `{"kind":"friend"|"group","conversation"?,"expires_in_hours",
//!   "max_uses","auto_join"}` → 201 invite; `GET /api/v1/invites`; `DELETE
//!   /api/v1/invites/{id}`; `POST /api/v1/invites/redeem` `{"link"}` →
//!   `{"result":"friend_requested","address"}` or `{"result":"joined"|"requested","conversation"}`.
//! - `GET /api/v1/me/join-requests`; `POST /api/v1/me/join-requests/{id}` `{"accept"}` → 204.

use http::{Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::body::Incoming;
use super::error::ApiError;
use super::json::{Body, no_content, read_json, reply};
use super::query::{Params, Whole, read};
use domain::accounts::Session;
use domain::discovery::{Discovery, DiscoveryError, InviteKind, InviteView, NewInvite, Redeemed};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsBody {
    findable_by_phone: bool,
}

pub async fn settings(d: &Discovery, s: &Session) -> Result<Response<Body>, ApiError> {
    let on = d.findable(s.user).await?;
    Ok(reply(StatusCode::OK, &json!({"findable_by_phone": on})))
}

pub async fn put_settings(
    d: &Discovery,
    s: &Session,
    req: Request<Incoming>,
    limit: usize,
) -> Result<Response<Body>, ApiError> {
    let b: SettingsBody = read_json(req, limit).await?;
    let on = d.set_findable(s.user, b.findable_by_phone).await?;
    Ok(reply(StatusCode::OK, &json!({"findable_by_phone": on})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ContactsBody {
    hashes: Vec<String>,
}

pub async fn upload(
    d: &Discovery,
    s: &Session,
    req: Request<Incoming>,
    limit: usize,
) -> Result<Response<Body>, ApiError> {
    let b: ContactsBody = read_json(req, limit).await?;
    let o = d.upload_contacts(s.user, &b.hashes).await?;
    Ok(reply(
        StatusCode::OK,
        &json!({"checked": b.hashes.len(), "matched": o.matched, "quota_left": o.quota_left}),
    ))
}

pub async fn forget(d: &Discovery, s: &Session) -> Result<Response<Body>, ApiError> {
    d.forget_contacts(s.user).await?;
    Ok(no_content())
}

/// The query of a page of suggestions.
#[derive(Debug, serde::Deserialize)]
pub struct SuggestionsQuery {
    limit: Option<Whole<1, 50>>,
    cursor: Option<Whole<0, 1_000_000>>,
}

impl Params for SuggestionsQuery {
    fn expects(name: &str) -> &'static str {
        match name {
            "limit" => "must be a whole number from 1 to 50",
            _ => "must be a cursor from a previous page",
        }
    }
}

pub async fn suggestions(
    d: &Discovery,
    s: &Session,
    query: Option<&str>,
) -> Result<Response<Body>, ApiError> {
    let q: SuggestionsQuery = read(query)?;
    let page = d
        .suggestions(
            s.user,
            q.cursor.map_or(0, |w| w.0) as usize,
            q.limit.map_or(20, |w| w.0) as usize,
        )
        .await?;
    let items: Vec<Value> = page
        .items
        .iter()
        .map(|x| {
            let mut reasons = Vec::new();
            if x.contact {
                reasons.push(json!({"kind": "contact"}));
            }
            if x.mutual_friends > 0 {
                reasons.push(json!({"kind": "mutual_friends", "count": x.mutual_friends}));
            }
            if x.education {
                reasons.push(json!({"kind": "education"}));
            }
            json!({"address": x.address, "nickname": x.nickname, "avatar": x.avatar, "reasons": reasons})
        })
        .collect();
    Ok(reply(
        StatusCode::OK,
        &json!({"suggestions": items, "next": page.next.map(|n| n.to_string())}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddressBody {
    address: String,
}

pub async fn dismiss(
    d: &Discovery,
    s: &Session,
    req: Request<Incoming>,
    limit: usize,
) -> Result<Response<Body>, ApiError> {
    let b: AddressBody = read_json(req, limit).await?;
    d.dismiss(s.user, &b.address).await?;
    Ok(no_content())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CellBody {
    cell: String,
}

pub async fn put_location(
    d: &Discovery,
    s: &Session,
    req: Request<Incoming>,
    limit: usize,
) -> Result<Response<Body>, ApiError> {
    let b: CellBody = read_json(req, limit).await?;
    let expires = d.set_location(s.user, &b.cell).await?;
    Ok(reply(
        StatusCode::OK,
        &json!({"cell": b.cell, "expires": expires.to_rfc3339()}),
    ))
}

pub async fn location(d: &Discovery, s: &Session) -> Result<Response<Body>, ApiError> {
    let body = match d.location(s.user).await? {
        Some((cell, expires)) => json!({"cell": cell, "expires": expires.to_rfc3339()}),
        None => json!({"cell": null, "expires": null}),
    };
    Ok(reply(StatusCode::OK, &body))
}

pub async fn clear_location(d: &Discovery, s: &Session) -> Result<Response<Body>, ApiError> {
    d.clear_location(s.user).await?;
    Ok(no_content())
}

pub async fn nearby(d: &Discovery, s: &Session) -> Result<Response<Body>, ApiError> {
    let people: Vec<Value> = d
        .nearby(s.user)
        .await?
        .iter()
        .map(|p| {
            json!({"address": p.address, "nickname": p.nickname, "avatar": p.avatar, "band": p.band.name()})
        })
        .collect();
    Ok(reply(StatusCode::OK, &json!({ "people": people })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InviteBody {
    kind: String,
    #[serde(default)]
    conversation: Option<String>,
    #[serde(default = "default_hours")]
    expires_in_hours: u64,
    #[serde(default = "default_uses")]
    max_uses: u64,
    #[serde(default)]
    auto_join: bool,
}

fn default_hours() -> u64 {
    168
}
fn default_uses() -> u64 {
    10
}

fn invite_json(v: &InviteView) -> Value {
    let (kind, conversation) = match &v.kind {
        InviteKind::Group(c) => ("group", Some(c)),
        InviteKind::Friend => ("friend", None),
    };
    json!({
        "id": v.id.to_string(),
        "kind": kind,
        "conversation": conversation,
        "link": v.link,
        "qr_svg": v.qr_svg,
        "created": v.created.to_rfc3339(),
        "expires": v.expires.to_rfc3339(),
        "max_uses": v.max_uses,
        "uses": v.uses,
        "revoked": v.revoked,
        "auto_join": v.auto_join,
    })
}

pub async fn create_invite(
    d: &Discovery,
    s: &Session,
    req: Request<Incoming>,
    limit: usize,
) -> Result<Response<Body>, ApiError> {
    let b: InviteBody = read_json(req, limit).await?;
    let kind = match (b.kind.as_str(), b.conversation) {
        ("friend", None) => InviteKind::Friend,
        ("group", Some(c)) => InviteKind::Group(c),
        ("friend", Some(_)) => {
            return Err(ApiError::invalid(
                "conversation",
                "is for group invites only",
            ));
        }
        ("group", None) => return Err(ApiError::invalid("conversation", "is required")),
        _ => return Err(ApiError::invalid("kind", "must be friend or group")),
    };
    let v = d
        .create_invite(
            s.user,
            NewInvite {
                kind,
                hours: b.expires_in_hours,
                max_uses: b.max_uses,
                auto_join: b.auto_join,
            },
        )
        .await?;
    Ok(reply(StatusCode::CREATED, &invite_json(&v)))
}

pub async fn invites(d: &Discovery, s: &Session) -> Result<Response<Body>, ApiError> {
    let list: Vec<Value> = d.invites(s.user).await?.iter().map(invite_json).collect();
    Ok(reply(StatusCode::OK, &json!({ "invites": list })))
}

fn number(id: &str, what: &str) -> Result<u64, ApiError> {
    id.parse::<u64>()
        .ok()
        .filter(|_| !id.starts_with('+') && !id.starts_with('0'))
        .ok_or_else(|| ApiError::not_found(format!("no such {what}")))
}

pub async fn revoke_invite(
    d: &Discovery,
    s: &Session,
    id: &str,
) -> Result<Response<Body>, ApiError> {
    d.revoke_invite(s.user, number(id, "invite")?).await?;
    Ok(no_content())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RedeemBody {
    link: String,
}

pub async fn redeem(
    d: &Discovery,
    s: &Session,
    req: Request<Incoming>,
    limit: usize,
) -> Result<Response<Body>, ApiError> {
    let b: RedeemBody = read_json(req, limit).await?;
    let body = match d.redeem(s.user, &b.link).await? {
        Redeemed::FriendRequested { address } => {
            json!({"result": "friend_requested", "address": address})
        }
        Redeemed::Joined { conversation } => {
            json!({"result": "joined", "conversation": conversation})
        }
        Redeemed::Requested { conversation } => {
            json!({"result": "requested", "conversation": conversation})
        }
    };
    Ok(reply(StatusCode::OK, &body))
}

pub async fn join_requests(d: &Discovery, s: &Session) -> Result<Response<Body>, ApiError> {
    let list: Vec<Value> = d
        .join_requests(s.user)
        .await?
        .iter()
        .map(|j| {
            json!({"id": j.id.to_string(), "requester": j.requester, "nickname": j.nickname,
                "conversation": j.conversation, "at": j.at.to_rfc3339()})
        })
        .collect();
    Ok(reply(StatusCode::OK, &json!({ "join_requests": list })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AnswerBody {
    accept: bool,
}

pub async fn answer_join(
    d: &Discovery,
    s: &Session,
    id: &str,
    req: Request<Incoming>,
    limit: usize,
) -> Result<Response<Body>, ApiError> {
    let id = number(id, "join request")?;
    let b: AnswerBody = read_json(req, limit).await?;
    d.answer_join(s.user, id, b.accept).await?;
    Ok(no_content())
}

impl From<DiscoveryError> for ApiError {
    fn from(e: DiscoveryError) -> Self {
        let text = e.to_string();
        match e {
            DiscoveryError::Invalid { field, reason } => ApiError::invalid(field, &reason),
            DiscoveryError::NoSuchUser => ApiError::not_found("no such user"),
            DiscoveryError::NoSuchInvite => ApiError::not_found("no such invite"),
            DiscoveryError::NoSuchJoinRequest => ApiError::not_found("no such join request"),
            DiscoveryError::InviteUnusable(_) => {
                ApiError::new(StatusCode::GONE, "invite_unusable", text)
            }
            DiscoveryError::Forbidden(m) => ApiError::new(StatusCode::FORBIDDEN, "forbidden", m),
            DiscoveryError::Quota(_) | DiscoveryError::RateLimited(_) => {
                let mut a = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", text);
                a.retry_after = Some(match e {
                    DiscoveryError::RateLimited(s) => s,
                    _ => 86_400,
                });
                a
            }
            DiscoveryError::NoLocation => ApiError::new(StatusCode::CONFLICT, "no_location", text),
            DiscoveryError::ImplausibleJump => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "implausible_jump", text)
            }
            DiscoveryError::Consent(c) => c.into(),
            DiscoveryError::Messaging(m) => m.into(),
            DiscoveryError::Friends(f) => f.into(),
            DiscoveryError::Federation(f) => f.into(),
            DiscoveryError::Store(s) => s.into(),
            other => {
                tracing::error!(error = %other, "discovery failed");
                ApiError::internal()
            }
        }
    }
}
