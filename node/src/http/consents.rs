//! My consents, purpose by purpose.
//!
//! - `GET /api/v1/me/consents` — every purpose with its state and history.
//! - `PUT /api/v1/me/consents/{purpose}` — grant or revoke one purpose.

use http::{Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::body::Incoming;
use super::error::ApiError;
use super::json::{Body, read_json, reply};
use crate::accounts::Session;
use crate::consents::{Consents, Purpose, PurposeState};
use crate::privacy::Minors;

fn state_json(s: &PurposeState) -> Value {
    json!({
        "purpose": s.purpose.name(),
        "description": s.purpose.description(),
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

/// `GET /api/v1/me/consents` → 200 `{"consents":[{"purpose","description","sensitive","granted","since","history":[{"granted","at","policy_version","device_id"}]}]}`.
pub async fn list(consents: &Consents, session: &Session) -> Result<Response<Body>, ApiError> {
    let all = consents.list(session.user).await?;
    Ok(reply(
        StatusCode::OK,
        &json!({ "consents": all.iter().map(state_json).collect::<Vec<_>>() }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PutBody {
    granted: bool,
}

/// `PUT /api/v1/me/consents/{purpose}` `{"granted": true|false}` → 200, that purpose's state;
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
    Ok(reply(StatusCode::OK, &state_json(&state)))
}
