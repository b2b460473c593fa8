//! The privacy policy and its versions, readable before registering (5.4, 7.b), and each user's
//! acceptance (7.a).
//!
//! - `GET /api/v1/policy[?lang=zh|en]` — the version in effect (without `lang`, in the
//!   language `Accept-Language` prefers, as every endpoint that answers in words; `lang.rs`).
//! - `GET /api/v1/policy/versions` — every version, oldest first, without texts.
//! - `GET /api/v1/policy/versions/{version}[?lang=zh|en]` — one version with its text.
//! - `GET /api/v1/me/policy` — what I accepted, what is pending, whether I am paused.
//! - `POST /api/v1/me/policy/accept` `{"version"}` — accept the current or an upcoming version.

use http::{HeaderMap, Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::body::Incoming;
use super::error::ApiError;
use super::json::{Body, read_json, reply};
use super::lang::of_request as lang_of;
use domain::accounts::{Accounts, Session};
use domain::policy::{Lang, PolicyBook, Version};

fn summary(v: &Version, current: &Version) -> Value {
    json!({
        "version": v.version,
        "effective": v.effective.to_string(),
        "published": v.published.map(|t| t.to_rfc3339()),
        "narrows_rights": v.narrows,
        "status": v.status(current),
        "languages": v.languages().iter().map(|l| l.code()).collect::<Vec<_>>(),
    })
}

fn with_text(v: &Version, current: &Version, lang: Lang) -> Value {
    let mut o = summary(v, current);
    let (served, text) = v.text(lang);
    o["language"] = json!(served.code());
    o["text"] = json!(text);
    o
}

/// `GET /api/v1/policy[?lang=zh|en]` → `{"version","effective","published","narrows_rights",
/// "status","languages","language","text"}`. In `lang`, else by `Accept-Language`, else
/// Chinese (`lang.rs`); a version without an English text is served in Chinese (`language`
/// says which).
pub fn get(
    book: &PolicyBook,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Result<Response<Body>, ApiError> {
    let lang = lang_of(query, headers)?;
    let current = book.current();
    Ok(reply(StatusCode::OK, &with_text(&current, &current, lang)))
}

/// `GET /api/v1/policy/versions` → `{"versions":[{"version","effective","published",
/// "narrows_rights","status","languages"}]}`, oldest first.
pub fn versions(book: &PolicyBook) -> Response<Body> {
    let current = book.current();
    let list: Vec<Value> = book.all().iter().map(|v| summary(v, &current)).collect();
    reply(StatusCode::OK, &json!({ "versions": list }))
}

/// `GET /api/v1/policy/versions/{version}[?lang=zh|en]` → one version with its text, in the
/// language chosen as for `GET /api/v1/policy`; 404 `unknown_version`.
pub fn version(
    book: &PolicyBook,
    name: &str,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Result<Response<Body>, ApiError> {
    let lang = lang_of(query, headers)?;
    let v = book.get(name).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_version",
            "no such policy version; GET /api/v1/policy/versions lists them",
        )
    })?;
    Ok(reply(StatusCode::OK, &with_text(&v, &book.current(), lang)))
}

/// `GET /api/v1/me/policy` → `{"accepted":{"version","at"},"pending":[summary…],
/// "optional_processing_paused":bool,"paused_by":version|null}`.
pub async fn mine(book: &PolicyBook, session: &Session) -> Result<Response<Body>, ApiError> {
    let s = book.standing(session.user).await?;
    let current = book.current();
    Ok(reply(
        StatusCode::OK,
        &json!({
            "accepted": {
                "version": s.accepted.0.version,
                "at": (s.accepted.1.0 > 0).then(|| s.accepted.1.to_rfc3339()),
            },
            "pending": s.pending.iter().map(|v| summary(v, &current)).collect::<Vec<_>>(),
            "optional_processing_paused": s.paused_by.is_some(),
            "paused_by": s.paused_by.as_ref().map(|v| v.version.clone()),
        }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AcceptBody {
    version: String,
}

/// `POST /api/v1/me/policy/accept` `{"version"}` → 200 `{"accepted":{"version","at"}}`; 404
/// `unknown_version`; 409 `outdated_version` for a version older than the current one.
pub async fn accept(
    book: &PolicyBook,
    accounts: &Accounts,
    session: &Session,
    req: Request<Incoming>,
    limit: usize,
) -> Result<Response<Body>, ApiError> {
    let b: AcceptBody = read_json(req, limit).await?;
    let v = book.accept(session.user, &b.version).await?;
    // Cached sessions carry the accepted version (consent decisions record it).
    accounts.forget_user(session.user);
    Ok(reply(
        StatusCode::OK,
        &json!({"accepted": {"version": v.version, "at": accounts.now().to_rfc3339()}}),
    ))
}
