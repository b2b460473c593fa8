//! The rest of the privacy centre: notices, a minor's guardian consent, real-name
//! verification, the public page, and the data export.
//!
//! - `GET /api/v1/me/notices[?lang=zh|en]` — my notices (policy versions, incidents, answers,
//!   sign-ins), each with its code and parameters and worded in the asker's language.
//! - `POST /api/v1/me/guardian-consent` `{"guardian_name","guardian_contact","purposes"}`;
//!   `GET /api/v1/me/guardian-consent`.
//! - `POST /api/v1/me/real-name` `{"name","id_number"}`; `GET` and `DELETE` the same path.
//! - `PUT /api/v1/me/public-page` `{"enabled","phone","password"}`; `GET` the same path.
//! - `GET /api/v1/pages/{handle}` — a public page, without logging in.
//! - `POST /api/v1/me/export` starts an export; `GET /api/v1/me/export[?lang=zh|en]` downloads it.

use http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::body::Incoming;
use super::error::ApiError;
use super::json::{Body, Streamed, no_content, read_json, reply};
use super::lang::of_request;
use super::messages::{NoticeWire, notice_json};
use crate::export::Exporter;
use domain::accounts::{Accounts, Session};
use domain::privacy::{Minors, PrivacyError, PublicPage, RealName, RealNameView};
use storage::EventRecord;

impl From<PrivacyError> for ApiError {
    fn from(e: PrivacyError) -> Self {
        let text = e.to_string();
        match e {
            PrivacyError::Invalid { field, reason } => ApiError::invalid(field, &reason),
            PrivacyError::NotMinor => ApiError::new(StatusCode::CONFLICT, "not_a_minor", text),
            PrivacyError::WrongPhone => {
                ApiError::new(StatusCode::FORBIDDEN, "phone_mismatch", text)
            }
            PrivacyError::TooSoon { wait_secs, .. } => {
                let mut err = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "export_too_soon", text);
                err.retry_after = Some(wait_secs);
                err
            }
            PrivacyError::NotFound => ApiError::not_found("nothing here"),
            PrivacyError::Consent(c) => c.into(),
            PrivacyError::Account(a) => a.into(),
            PrivacyError::Store(s) => s.into(),
            other => {
                tracing::error!(error = %other, "privacy operation failed");
                ApiError::internal()
            }
        }
    }
}

/// `GET /api/v1/me/notices[?lang=zh|en]` → 200 `{"language","notices":[{"cursor","kind","code",
/// "params","title","text"}]}`, oldest first; `kind` is security, request, policy or incident;
/// `code` and `params` say what a notice the node wrote is (null and `{}` for an operator's
/// free text), `title` and `text` word it in `language` (`lang`, else `Accept-Language`).
pub async fn notices(
    accounts: &Accounts,
    session: &Session,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Result<Response<Body>, ApiError> {
    let lang = of_request(query, headers)?;
    let stored = accounts.notices(session.user).await?;
    #[derive(serde::Serialize)]
    struct Item<'a> {
        cursor: String,
        #[serde(flatten)]
        notice: NoticeWire<'a>,
    }
    let list: Vec<Item> = stored
        .iter()
        .filter_map(|(pos, n)| match n {
            EventRecord::Notice { kind, content } => Some(Item {
                cursor: pos.to_string(),
                notice: notice_json(kind.name(), content, lang),
            }),
            _ => None,
        })
        .collect();
    Ok(reply(
        StatusCode::OK,
        &json!({ "language": lang.code(), "notices": list }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GuardianBody {
    guardian_name: String,
    guardian_contact: String,
    purposes: Vec<String>,
}

fn guardian_json(g: &domain::privacy::Guardian) -> Value {
    json!({
        "guardian_name": g.name,
        "guardian_contact": g.contact,
        "purposes": g.purposes.iter().map(|p| p.name()).collect::<Vec<_>>(),
        "recorded": g.recorded.to_rfc3339(),
    })
}

/// `POST /api/v1/me/guardian-consent` `{"guardian_name","guardian_contact","purposes":[…]}` →
/// 201, the record; 409 `not_a_minor` unless my birthday makes me one; 422 naming the field.
/// Replaces an earlier record.
pub async fn record_guardian(
    minors: &Minors,
    session: &Session,
    req: Request<Incoming>,
    limit: usize,
) -> Result<Response<Body>, ApiError> {
    let b: GuardianBody = read_json(req, limit).await?;
    let g = minors
        .record_guardian(
            session.user,
            &b.guardian_name,
            &b.guardian_contact,
            &b.purposes,
        )
        .await?;
    Ok(reply(StatusCode::CREATED, &guardian_json(&g)))
}

/// `GET /api/v1/me/guardian-consent` → 200, the record, or 404 when there is none.
pub async fn guardian(minors: &Minors, session: &Session) -> Result<Response<Body>, ApiError> {
    match minors.guardian(session.user).await? {
        Some(g) => Ok(reply(StatusCode::OK, &guardian_json(&g))),
        None => Err(ApiError::not_found("no guardian consent is recorded")),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RealNameBody {
    name: String,
    id_number: String,
}

fn real_name_json(v: &RealNameView) -> Value {
    json!({"name": v.name, "id_number": v.id_number, "verified": v.verified.to_rfc3339()})
}

/// `POST /api/v1/me/real-name` `{"name","id_number"}` → 201 `{"name","id_number","verified"}`,
/// both masked; 403 `consent_required` without `real_name`; 422 naming the field.
pub async fn set_real_name(
    real_name: &RealName,
    session: &Session,
    req: Request<Incoming>,
    limit: usize,
) -> Result<Response<Body>, ApiError> {
    let b: RealNameBody = read_json(req, limit).await?;
    let v = real_name.set(session.user, &b.name, &b.id_number).await?;
    Ok(reply(StatusCode::CREATED, &real_name_json(&v)))
}

/// `GET /api/v1/me/real-name` → 200, masked; 404 when none is stored.
pub async fn real_name(
    real_name: &RealName,
    session: &Session,
) -> Result<Response<Body>, ApiError> {
    match real_name.get(session.user).await? {
        Some(v) => Ok(reply(StatusCode::OK, &real_name_json(&v))),
        None => Err(ApiError::not_found("no real name is stored")),
    }
}

/// `DELETE /api/v1/me/real-name` → 204; 404 when none is stored.
pub async fn delete_real_name(
    real_name: &RealName,
    session: &Session,
) -> Result<Response<Body>, ApiError> {
    if real_name.delete(session.user).await? {
        Ok(no_content())
    } else {
        Err(ApiError::not_found("no real name is stored"))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PageBody {
    enabled: bool,
    phone: Option<String>,
    password: Option<String>,
}

/// `PUT /api/v1/me/public-page` `{"enabled":true,"phone","password"}` turns my page on (403
/// `consent_required` without `public_page`, 401 for a wrong password, 403 `phone_mismatch`);
/// `{"enabled":false}` turns it off. → 200 `{"enabled","since"}`.
pub async fn set_page(
    page: &PublicPage,
    session: &Session,
    req: Request<Incoming>,
    limit: usize,
) -> Result<Response<Body>, ApiError> {
    let b: PageBody = read_json(req, limit).await?;
    if !b.enabled {
        page.disable(session.user).await?;
        return Ok(reply(
            StatusCode::OK,
            &json!({"enabled": false, "since": null}),
        ));
    }
    let (Some(phone), Some(password)) = (b.phone, b.password) else {
        return Err(ApiError::invalid(
            "phone",
            "turning the page on needs your phone number and password",
        ));
    };
    let since = page.enable(session.user, &phone, &password).await?;
    Ok(reply(
        StatusCode::OK,
        &json!({"enabled": true, "since": since.to_rfc3339()}),
    ))
}

/// `GET /api/v1/me/public-page` → 200 `{"enabled","since"}`.
pub async fn page_status(page: &PublicPage, session: &Session) -> Result<Response<Body>, ApiError> {
    let since = page.status(session.user).await?;
    Ok(reply(
        StatusCode::OK,
        &json!({"enabled": since.is_some(), "since": since.map(|t| t.to_rfc3339())}),
    ))
}

/// `GET /api/v1/pages/{handle}` (no login) → 200 `{"address","nickname","avatar","fields"}`
/// with the public fields only; 404 when there is no such page.
pub async fn public_page(
    page: &PublicPage,
    handle: &str,
    domain: &str,
) -> Result<Response<Body>, ApiError> {
    let v = page.view(handle).await.map_err(|e| match e {
        PrivacyError::NotFound => ApiError::not_found("no such public page"),
        other => other.into(),
    })?;
    let fields: serde_json::Map<String, Value> = v
        .fields
        .iter()
        .map(|(f, val)| (f.name().to_string(), json!(val)))
        .collect();
    Ok(reply(
        StatusCode::OK,
        &json!({
            "address": super::address(&v.handle, domain),
            "nickname": v.nickname,
            "avatar": v.avatar,
            "fields": fields,
        }),
    ))
}

/// `POST /api/v1/me/export` → 202 `{"status":"ready","requested","format"}`: the archive can
/// be downloaded with `GET /api/v1/me/export` from now on, for the configured interval. 429
/// `export_too_soon` (with `Retry-After`) within `privacy.export_interval_hours` of the last.
pub async fn start_export(
    exporter: &Exporter,
    session: &Session,
) -> Result<Response<Body>, ApiError> {
    let at = exporter.request(session.user).await?;
    Ok(reply(
        StatusCode::ACCEPTED,
        &json!({"status": "ready", "requested": at.to_rfc3339(), "format": crate::export::EXPORT_FORMAT}),
    ))
}

/// `GET /api/v1/me/export[?lang=zh|en]` → 200, the archive (`application/json`, streamed),
/// its notices worded in `lang` (else by `Accept-Language`); 404 `no_export` without a recent
/// `POST`.
pub async fn download_export(
    exporter: &Exporter,
    session: &Session,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Result<Response<Body>, ApiError> {
    let lang = of_request(query, headers)?;
    exporter.ready(session.user).await.map_err(|e| match e {
        PrivacyError::NotFound => ApiError::new(
            StatusCode::NOT_FOUND,
            "no_export",
            "no export is ready; start one with POST /api/v1/me/export",
        ),
        other => other.into(),
    })?;
    let (producer, rx) = exporter.archive(session.user, "user", lang);
    let mut r = Response::new(http_body_util::Either::Right(Streamed::new(producer, rx)));
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r.headers_mut().insert(
        CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"shanliao-export.json\""),
    );
    r.headers_mut()
        .insert("cache-control", HeaderValue::from_static("no-store"));
    Ok(r)
}
