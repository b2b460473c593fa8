//! My consents, purpose by purpose, each with the node's words for it (title and description)
//! in the language the request asks for (`?lang=zh|en`, else `Accept-Language`; `lang.rs`).
//!
//! - `GET /api/v1/me/consents` — every purpose with its state and history, the words' language
//!   and the policy version in effect that they go with.
//! - `PUT /api/v1/me/consents/{purpose}` — grant or revoke one purpose.

use http::{HeaderMap, Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::body::Incoming;
use super::error::ApiError;
use super::json::{Body, read_json, reply};
use domain::accounts::Session;
use domain::consents::{Consents, Purpose, PurposeState};
use domain::policy::{Lang, PolicyBook};
use domain::privacy::Minors;

use super::lang::of_request as lang_of;

fn state_json(s: &PurposeState, lang: Lang) -> Value {
    let words = s.purpose.words(lang);
    json!({
        "purpose": s.purpose.name(),
        "title": words.title,
        "description": words.description,
        "sensitive": s.purpose.sensitive(),
        "granted": s.granted,
        "since": s.since.map(|t| t.to_rfc3339()),
        "history": s.history.iter().map(|d| json!({
            "granted": d.granted,
            "at": d.at.to_rfc3339(),
            "policy_version": d.policy_version,
            "device_id": d.device_id,
        })).collect::<Vec<_>>(),
    })
}

/// `GET /api/v1/me/consents[?lang=zh|en]` → 200 `{"language","policy_version","consents":[{"purpose",
/// "title","description","sensitive","granted","since","history":[{"granted","at",
/// "policy_version","device_id"}]}]}`: the words in `language`, as they go with the policy
/// version in effect. 422 for a `lang` the node does not have.
pub async fn list(
    consents: &Consents,
    policy: &PolicyBook,
    session: &Session,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Result<Response<Body>, ApiError> {
    let lang = lang_of(query, headers)?;
    let all = consents.list(session.user).await?;
    Ok(reply(
        StatusCode::OK,
        &json!({
            "language": lang.code(),
            "policy_version": policy.current().version,
            "consents": all.iter().map(|s| state_json(s, lang)).collect::<Vec<_>>(),
        }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PutBody {
    granted: bool,
}

/// `PUT /api/v1/me/consents/{purpose}[?lang=zh|en]` `{"granted": true|false}` → 200, that
/// purpose's state (its words chosen as for the list);
/// 404 `unknown_purpose` for a name not in the list; 403 `guardian_consent_required` when a
/// minor grants a purpose their guardian has not agreed to. The decision is recorded with the time,
/// the policy version the user accepted, and this device.
pub async fn put(
    consents: &Consents,
    minors: &Minors,
    session: &Session,
    purpose: &str,
    req: Request<Incoming>,
    limit: usize,
) -> Result<Response<Body>, ApiError> {
    let lang = lang_of(req.uri().query(), req.headers())?;
    let purpose: Purpose = purpose.parse().map_err(|_| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_purpose",
            "no such purpose; GET /api/v1/me/consents lists them",
        )
    })?;
    let b: PutBody = read_json(req, limit).await?;
    // Only a grant needs to know whether the user is a minor (6.a).
    let minor = b.granted && minors.is_minor(session.user).await?;
    let state = consents
        .set(
            session.user,
            purpose,
            b.granted,
            minor,
            &session.policy_version,
            &session.device_id,
        )
        .await?;
    Ok(reply(StatusCode::OK, &state_json(&state, lang)))
}
