//! My profile, and other users' profiles as I may see them.
//!
//! - `GET /api/v1/me` — my account and full profile with each field's visibility.
//! - `PATCH /api/v1/me` — change nickname, avatar, optional fields and their visibility.
//! - `GET /api/v1/users/{address}` — another user, reduced to what I may see.

use http::{Request, Response, StatusCode};
use serde_json::{Map, Value, json};

use super::body::Incoming;
use super::error::ApiError;
use super::json::{Body, read_json, reply};
use domain::accounts::{Accounts, OwnAccount, Session};
use domain::federate::Inbox;
use domain::profile::{self, Field, FieldChange, ProfilePatch, Visibility};

fn own_json(a: &OwnAccount, domain: &str) -> Value {
    let mut fields = Map::new();
    for (f, (v, vis)) in &a.profile.fields {
        fields.insert(
            f.name().into(),
            json!({"value": v, "visibility": vis.name()}),
        );
    }
    json!({
        "user": super::address(&a.handle, domain),
        "handle": a.handle,
        "phone": a.phone,
        "nickname": a.profile.nickname,
        "avatar": a.profile.avatar.as_ref().map(profile::Avatar::shown),
        "profile": fields,
        "created": a.created.to_rfc3339(),
        "policy_version": a.policy_version,
    })
}

/// `GET /api/v1/me` → 200 `{"user","handle","phone","nickname","avatar","profile":{field:{"value","visibility"}},"created","policy_version"}`.
pub async fn get(
    accounts: &Accounts,
    session: &Session,
    domain: &str,
) -> Result<Response<Body>, ApiError> {
    let a = accounts.own(session.user).await?;
    Ok(reply(StatusCode::OK, &own_json(&a, domain)))
}

/// `PATCH /api/v1/me` with any of: `"nickname": "…"`, `"avatar": "<media id>" | null` (an
/// image the user uploaded, `photos` granted; 422 otherwise), and for each
/// optional field (`gender`, `birthday`, `region`, `education`, `bio`) either `null` (remove it)
/// or `{"value": "…", "visibility": "public"|"friends"|"private"}` (either key may be left out).
/// → 200, the same body as `GET /api/v1/me`. Nothing changes unless every part is valid. A new
/// nickname or avatar is pushed to the peers that hold the user (`Directory::update_own_profile`).
pub async fn patch(
    accounts: &Accounts,
    directory: &domain::federate::Directory,
    session: &Session,
    domain: &str,
    req: Request<Incoming>,
    limit: usize,
) -> Result<Response<Body>, ApiError> {
    let body: Map<String, Value> = read_json(req, limit).await?;
    let patch = parse_patch(body, accounts.now())?;
    if let Some(Some(profile::Avatar::Media(id))) = &patch.avatar {
        directory
            .check_avatar(session.user, id)
            .await
            .map_err(|e| match e {
                domain::federate::AvatarError::Invalid(reason) => {
                    ApiError::invalid("avatar", reason)
                }
                domain::federate::AvatarError::Consent(e) => e.into(),
                domain::federate::AvatarError::Store(e) => e.into(),
            })?;
    }
    let a = directory.update_own_profile(session.user, patch).await?;
    Ok(reply(StatusCode::OK, &own_json(&a, domain)))
}

fn parse_patch(
    body: Map<String, Value>,
    now: domain::time::Millis,
) -> Result<ProfilePatch, ApiError> {
    if body.is_empty() {
        return Err(ApiError::bad_request(
            "invalid_request",
            "the body names nothing to change",
        ));
    }
    let mut patch = ProfilePatch::default();
    let invalid = |e: profile::ProfileError| ApiError::invalid(&e.field, &e.reason);
    for (key, value) in body {
        match key.as_str() {
            "nickname" => {
                let s = value
                    .as_str()
                    .ok_or_else(|| ApiError::invalid("nickname", "must be a string"))?;
                patch.nickname = Some(profile::nickname(s).map_err(invalid)?);
            }
            "avatar" => {
                patch.avatar = Some(match value {
                    Value::Null => None,
                    Value::String(s) => Some(profile::avatar(&s).map_err(invalid)?),
                    _ => return Err(ApiError::invalid("avatar", "must be a string or null")),
                });
            }
            other => {
                let field: Field = other.parse().map_err(|()| {
                    ApiError::bad_request(
                        "invalid_request",
                        format!(
                            "unknown field `{other}`; expected nickname, avatar, gender, birthday, region, education or bio"
                        ),
                    )
                })?;
                patch
                    .fields
                    .push((field, parse_field_change(field, value, now)?));
            }
        }
    }
    Ok(patch)
}

fn parse_field_change(
    field: Field,
    value: Value,
    now: domain::time::Millis,
) -> Result<FieldChange, ApiError> {
    let name = field.name();
    let obj = match value {
        Value::Null => return Ok(FieldChange::Clear),
        Value::Object(o) => o,
        _ => {
            return Err(ApiError::invalid(
                name,
                "must be null or {\"value\", \"visibility\"}",
            ));
        }
    };
    let mut value = None;
    let mut visibility = None;
    for (k, v) in obj {
        match k.as_str() {
            "value" => {
                let s = v
                    .as_str()
                    .ok_or_else(|| ApiError::invalid(name, "value must be a string"))?;
                value = Some(
                    field
                        .validate(s, now)
                        .map_err(|e| ApiError::invalid(&e.field, &e.reason))?,
                );
            }
            "visibility" => {
                let s = v
                    .as_str()
                    .ok_or_else(|| ApiError::invalid(name, "visibility must be a string"))?;
                visibility = Some(s.parse::<Visibility>().map_err(|_| {
                    ApiError::invalid(name, "visibility must be public, friends or private")
                })?);
            }
            _ => {
                return Err(ApiError::invalid(
                    name,
                    &format!("unknown key `{k}`; expected value, visibility"),
                ));
            }
        }
    }
    if value.is_none() && visibility.is_none() {
        return Err(ApiError::invalid(
            name,
            "give a value, a visibility, or null to remove it",
        ));
    }
    Ok(FieldChange::Set { value, visibility })
}

/// `GET /api/v1/users/{address}` → 200 `{"user","nickname","avatar","profile":{field: value}}`
/// with only the fields visible to the caller; 404 for an unknown user. For a user of a peer
/// node, their node is asked: nickname and avatar only (`profile` empty); 403 not a peer,
/// 451 their node withholds it (residency), 502 their node cannot be reached. Phone numbers are
/// never shown to other users.
pub async fn view_user(
    accounts: &Accounts,
    inbox: &Inbox,
    session: &Session,
    domain: &str,
    address: &str,
) -> Result<Response<Body>, ApiError> {
    let (handle, user_domain) = address
        .rsplit_once('@')
        .ok_or_else(|| ApiError::invalid("address", "must be handle@domain"))?;
    if user_domain != domain {
        // A user of another node: asked of their node on behalf of this user, which answers
        // nickname, avatar and the optional fields it lets them see (public ones, and
        // "friends" ones if it holds their friendship).
        let own = accounts
            .card(session.user)
            .await?
            .ok_or(domain::accounts::AccountError::NoSuchUser)?;
        let (p, shown) = inbox
            .directory()
            .lookup_as(address, Some(&own.handle))
            .await?;
        let mut fields = Map::new();
        for (f, value) in shown {
            fields.insert(f.name().into(), Value::String(value));
        }
        return Ok(reply(
            StatusCode::OK,
            &json!({
                "user": p.address,
                "nickname": p.nickname,
                "avatar": p.avatar,
                "profile": fields,
            }),
        ));
    }
    let v = accounts.view(session.user, handle).await?;
    let mut fields = Map::new();
    for (f, value) in v.fields {
        fields.insert(f.name().into(), Value::String(value));
    }
    Ok(reply(
        StatusCode::OK,
        &json!({
            "user": super::address(&v.handle, domain),
            "nickname": v.nickname,
            "avatar": v.avatar,
            "profile": fields,
        }),
    ))
}
