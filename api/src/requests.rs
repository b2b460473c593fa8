//! Requests and complaints to the node's admin (clause 5.5.1).
//!
//! - `POST /api/v1/me/requests` `{"kind","text"}` → 201 `{"id","status":"open"}`; kinds:
//!   access, correction, deletion, complaint, other; text 1–4000 characters.
//! - `GET /api/v1/me/requests` → 200 `{"requests":[{"id","kind","text","created","status",
//!   "answer","resolved"}]}`, oldest first.

use http::{Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::json;

use super::body::Incoming;
use super::error::ApiError;
use super::json::{Body, read_json, reply};
use domain::accounts::Session;
use domain::requests::{RequestError, Requests};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileBody {
    kind: String,
    text: String,
}

pub async fn file(
    requests: &Requests,
    session: &Session,
    req: Request<Incoming>,
    limit: usize,
) -> Result<Response<Body>, ApiError> {
    let b: FileBody = read_json(req, limit).await?;
    let id = requests.file(session.user, &b.kind, &b.text).await?;
    Ok(reply(
        StatusCode::CREATED,
        &json!({"id": id, "status": "open"}),
    ))
}

pub async fn list(requests: &Requests, session: &Session) -> Result<Response<Body>, ApiError> {
    let list: Vec<_> = requests
        .own(session.user)
        .await?
        .into_iter()
        .map(|r| {
            json!({
                "id": r.id,
                "kind": r.kind,
                "text": r.text,
                "created": r.created.to_rfc3339(),
                "status": if r.resolved.is_some() { "answered" } else { "open" },
                "answer": r.answer,
                "resolved": r.resolved.map(|m| m.to_rfc3339()),
            })
        })
        .collect();
    Ok(reply(StatusCode::OK, &json!({ "requests": list })))
}

impl From<RequestError> for ApiError {
    fn from(e: RequestError) -> Self {
        match e {
            RequestError::Invalid { field, reason } => ApiError::invalid(field, &reason),
            RequestError::NotFound => ApiError::not_found("no such request"),
            RequestError::Answered => {
                ApiError::new(StatusCode::CONFLICT, "answered", e.to_string())
            }
            RequestError::Store(s) => s.into(),
            other => {
                tracing::error!(error = %other, "request handling failed");
                ApiError::internal()
            }
        }
    }
}
