//! Registration, login and device sessions.
//!
//! - `POST /api/v1/accounts` — register.
//! - `POST /api/v1/sessions` — log in (new device session, bearer token).
//! - `DELETE /api/v1/sessions/current` — log out this device.
//! - `GET /api/v1/me/sessions` — list my devices.
//! - `DELETE /api/v1/me/sessions/{device_id}` — sign out one of my devices.

use std::net::SocketAddr;

use http::{Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::json;

use super::body::Incoming;
use super::error::ApiError;
use super::json::{Body, no_content, read_json, reply};
use domain::accounts::{self, Accounts, DeviceInfo, Registration, Session};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegisterBody {
    phone: String,
    handle: String,
    password: String,
    #[serde(default)]
    nickname: Option<String>,
    accept_policy: String,
}

/// `POST /api/v1/accounts` `{"phone","handle","password","nickname"?,"accept_policy"}`
/// → 201 `{"user":"handle@domain"}`; 409 for a taken handle or phone.
pub async fn register(
    accounts: &Accounts,
    domain: &str,
    req: Request<Incoming>,
    limit: usize,
) -> Result<Response<Body>, ApiError> {
    let b: RegisterBody = read_json(req, limit).await?;
    let handle = accounts
        .register(Registration {
            phone: b.phone,
            handle: b.handle,
            password: b.password,
            nickname: b.nickname,
            accept_policy: b.accept_policy,
        })
        .await?;
    Ok(reply(
        StatusCode::CREATED,
        &json!({ "user": super::address(&handle, domain) }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeviceBody {
    name: Option<String>,
    os: Option<String>,
    app_version: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    login: String,
    password: String,
    device: Option<DeviceBody>,
}

/// `POST /api/v1/sessions` `{"login","password","device":{"name","os","app_version"}?}`
/// → 201 `{"token","device_id"}`; 401 `bad_credentials` for any wrong credential; 429 with
/// `Retry-After` after repeated failures.
pub async fn login(
    accounts: &Accounts,
    req: Request<Incoming>,
    peer: SocketAddr,
    limit: usize,
) -> Result<Response<Body>, ApiError> {
    let b: LoginBody = read_json(req, limit).await?;
    if b.login.is_empty() || b.login.len() > 64 {
        return Err(ApiError::invalid(
            "login",
            "must be a handle or a phone number",
        ));
    }
    if b.password.len() > 1024 {
        return Err(ApiError::invalid("password", "is too long"));
    }
    let device = match b.device {
        None => DeviceInfo::default(),
        Some(d) => DeviceInfo {
            name: d
                .name
                .map(|s| accounts::validate_device_part("device.name", &s))
                .transpose()?,
            os: d
                .os
                .map(|s| accounts::validate_device_part("device.os", &s))
                .transpose()?,
            app_version: d
                .app_version
                .map(|s| accounts::validate_device_part("device.app_version", &s))
                .transpose()?,
        },
    };
    let (token, device_id) = accounts
        .login(&b.login, b.password, device, peer.ip())
        .await?;
    Ok(reply(
        StatusCode::CREATED,
        &json!({ "token": token.as_str(), "device_id": device_id }),
    ))
}

/// `DELETE /api/v1/sessions/current` → 204; the token stops working at once.
pub async fn logout(accounts: &Accounts, session: &Session) -> Result<Response<Body>, ApiError> {
    accounts
        .end_session(session.user, &session.device_id)
        .await?;
    Ok(no_content())
}

/// `GET /api/v1/me/sessions` → 200 `{"sessions":[{"device_id","current","device","created","last_seen"}]}`.
pub async fn list_sessions(
    accounts: &Accounts,
    session: &Session,
) -> Result<Response<Body>, ApiError> {
    let list = accounts.sessions(session.user).await?;
    let sessions: Vec<_> = list
        .into_iter()
        .map(|s| {
            json!({
                "device_id": s.device_id,
                "current": s.device_id == session.device_id,
                "device": {"name": s.device.name, "os": s.device.os, "app_version": s.device.app_version},
                "created": s.created.to_rfc3339(),
                "last_seen": s.last_seen.to_rfc3339(),
            })
        })
        .collect();
    Ok(reply(StatusCode::OK, &json!({ "sessions": sessions })))
}

/// `DELETE /api/v1/me/sessions/{device_id}` → 204; 404 if I have no such device.
pub async fn end_session(
    accounts: &Accounts,
    session: &Session,
    device_id: &str,
) -> Result<Response<Body>, ApiError> {
    accounts.end_session(session.user, device_id).await?;
    Ok(no_content())
}
