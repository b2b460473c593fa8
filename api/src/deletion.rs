//! Account deletion by the user.
//!
//! - `POST /api/v1/me/deletion` `{"password"}` → 202 `{"due"}`: re-authenticates, then
//!   schedules the erasure of the account after the cooling-off period; 401 wrong password.
//!   Until then the account is locked except for cancelling (403 `account_pending_deletion`).
//! - `DELETE /api/v1/me/deletion` → 204: cancels within the cooling-off period; 404 nothing to
//!   cancel; 409 the erasure has started.

use http::{Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::json;

use super::body::Incoming;
use super::error::ApiError;
use super::json::{Body, no_content, read_json, reply};
use domain::accounts::Session;
use domain::erasure::{Erasure, ErasureError};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeletionBody {
    password: String,
}

pub async fn request(
    erasure: &Erasure,
    session: &Session,
    req: Request<Incoming>,
    limit: usize,
) -> Result<Response<Body>, ApiError> {
    let b: DeletionBody = read_json(req, limit).await?;
    let due = erasure.request(session.user, &b.password).await?;
    Ok(reply(
        StatusCode::ACCEPTED,
        &json!({"due": due.to_rfc3339()}),
    ))
}

pub async fn cancel(erasure: &Erasure, session: &Session) -> Result<Response<Body>, ApiError> {
    erasure.cancel(session.user).await?;
    Ok(no_content())
}

impl From<ErasureError> for ApiError {
    fn from(e: ErasureError) -> Self {
        match e {
            ErasureError::NoSuchUser => ApiError::not_found("no such user"),
            ErasureError::NotScheduled => ApiError::not_found("no deletion is scheduled"),
            ErasureError::Started => {
                ApiError::new(StatusCode::CONFLICT, "erasure_started", e.to_string())
            }
            ErasureError::Account(a) => a.into(),
            ErasureError::Store(s) => s.into(),
            other => {
                tracing::error!(error = %other, "account erasure failed");
                ApiError::internal()
            }
        }
    }
}
