//! The federation API between nodes (see `docs/PROTOCOL.md`).
//!
//! - `GET /_federation/v1/keys` — the node's key document: current and expired signing keys,
//!   self-signed. No authentication.
//! - `PUT /_federation/v1/transactions/{txn_id}` — a batch of envelopes from a peer, signed
//!   request → 200 `{"results":{id: {} | {"error":{code,message},"retry":bool}}}`; 401 bad or
//!   missing signature, stale timestamp or unknown key; 403 not a peer or not addressed to this
//!   node; 409 the id was used with another body; 413 too many envelopes or bytes.
//! - `GET /_federation/v1/users/{handle}` — a local user's nickname and avatar as a signed
//!   `profile` envelope, signed request → 200; 404 unknown; 451 the residency rule forbids it.
//! - `GET /_federation/v1/users/{handle}/as/{viewer}` — the same on behalf of `viewer`, a user
//!   of the signing node: the envelope adds the optional fields that viewer may see.
//! - `POST /_federation/v1/invites/redeem` — redeems one of this node's invites for a user of
//!   the signing peer (see `docs/PROTOCOL.md`, invites).
//! - `GET /_federation/v1/media/{id}/{part}` — one part of a local user's media, signed
//!   request from a peer holding a message that refers to it → 200 the bytes; 404 otherwise.
//! - `POST /_federation/v1/communities` — a remote user's call to a community hosted here: the
//!   body is a signed `community` envelope, signed request → 200 the answer; the community's
//!   refusals as for a local user (403 `banned`/`forbidden`, 404, 409, 422). A repeated
//!   envelope (same origin and id) is the same call: answered again, not applied again (409
//!   `conflict` if the id came with another kind of call, 409 `outcome_unknown` if the host
//!   cannot tell whether it was applied, 410 `gone` if what it made has since been removed).

use bytes::Bytes;
use federation::MAX_TXN_BYTES;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Request, Response, StatusCode};

use super::body::Incoming;
use super::error::ApiError;
use super::json::{Body, read_body};
use domain::discovery::Redeemed;
use domain::federate::{Inbox, RedeemAnswerWire, RedeemWire};

/// `GET /_federation/v1/keys` → 200, the key document of the node's current key set (500 if
/// it cannot be signed, which start-up already checked).
pub fn keys(document: &domain::signing::Published) -> Response<Body> {
    match document.bytes() {
        Ok(b) => json_bytes(StatusCode::OK, b),
        Err(e) => {
            tracing::error!(error = %e, "the key document could not be made");
            json_bytes(
                StatusCode::INTERNAL_SERVER_ERROR,
                Bytes::from_static(
                    br#"{"error":{"code":"internal","message":"the key document could not be made"}}"#,
                ),
            )
        }
    }
}

fn json_bytes(status: StatusCode, body: Bytes) -> Response<Body> {
    let mut r = Response::new(super::json::full(body));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// The request's method, path and `Authorization` value, for checking its signature.
fn signed_parts(req: &Request<Incoming>) -> (String, String, Option<String>) {
    (
        req.method().as_str().to_string(),
        req.uri().path().to_string(),
        req.headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
    )
}

/// `PUT /_federation/v1/transactions/{txn_id}`.
pub async fn transaction(
    inbox: &Inbox,
    txn_id: &str,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    // Checks that need no key come first, so a request that fails them costs no key fetch.
    if !federation::valid_txn_id(txn_id) {
        return Err(domain::federate::FedError::Invalid(
            "transaction id must be 1 to 64 of A-Z a-z 0-9 . _ -".into(),
        )
        .into());
    }
    let (method, path, auth) = signed_parts(&req);
    let bytes = read_body(req, MAX_TXN_BYTES).await?;
    let origin = inbox
        .authenticate(auth.as_deref(), &method, &path, &bytes)
        .await?;
    let answer = inbox.transaction(&origin, txn_id, &bytes).await?;
    Ok(json_bytes(StatusCode::OK, Bytes::from(answer)))
}

/// `GET /_federation/v1/users/{handle}`.
pub async fn user(
    inbox: &Inbox,
    handle: &str,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    // A handle no address can have names no user: answered before any key is fetched.
    if !federation::valid_address(&format!("{handle}@x")) {
        return Err(domain::federate::FedError::NoSuchUser.into());
    }
    let (method, path, auth) = signed_parts(&req);
    let origin = inbox
        .authenticate(auth.as_deref(), &method, &path, b"")
        .await?;
    let env = inbox.profile(&origin, handle, None).await?;
    Ok(json_bytes(StatusCode::OK, env))
}

/// `GET /_federation/v1/users/{handle}/as/{viewer}`: the lookup on behalf of `viewer`, a user
/// of the signing origin; the answer adds the optional fields that viewer may see.
pub async fn user_as(
    inbox: &Inbox,
    handle: &str,
    viewer: &str,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    if !federation::valid_address(&format!("{handle}@x")) {
        return Err(domain::federate::FedError::NoSuchUser.into());
    }
    if !federation::valid_address(&format!("{viewer}@x")) {
        return Err(
            domain::federate::FedError::Invalid("viewer must be a user's handle".into()).into(),
        );
    }
    let (method, path, auth) = signed_parts(&req);
    let origin = inbox
        .authenticate(auth.as_deref(), &method, &path, b"")
        .await?;
    let env = inbox.profile(&origin, handle, Some(viewer)).await?;
    Ok(json_bytes(StatusCode::OK, env))
}

/// Largest body of an invite redemption.
const MAX_REDEEM_BYTES: usize = 4 * 1024;

/// `POST /_federation/v1/invites/redeem` `{"token","redeemer"}` → 200
/// `{"result":"friend","owner"}` | `{"result":"requested"|"joined","conversation"}`, once
/// committed; 404 no such invite; 410 it cannot be used; 400 a redeemer not of the origin.
pub async fn redeem_invite(
    inbox: &Inbox,
    discovery: &domain::discovery::Discovery,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let (method, path, auth) = signed_parts(&req);
    let bytes = read_body(req, MAX_REDEEM_BYTES).await?;
    let origin = inbox
        .authenticate(auth.as_deref(), &method, &path, &bytes)
        .await?;
    let bad = |m: String| ApiError::from(domain::federate::FedError::Invalid(m));
    let value = federation::parse_json(&bytes).map_err(|e| bad(e.to_string()))?;
    let b: RedeemWire = serde_json::from_value(value).map_err(|e| bad(e.to_string()))?;
    let answer = match discovery
        .redeem_for_peer(&origin, &b.token, &b.redeemer)
        .await?
    {
        Redeemed::FriendRequested { address } => RedeemAnswerWire::Friend { owner: address },
        Redeemed::Requested { conversation } => RedeemAnswerWire::Requested { conversation },
        Redeemed::Joined { conversation } => RedeemAnswerWire::Joined { conversation },
    };
    let out = serde_json::to_vec(&answer).map_err(|e| bad(e.to_string()))?;
    Ok(json_bytes(StatusCode::OK, Bytes::from(out)))
}

/// `POST /_federation/v1/communities` → 200 with the call's answer.
pub async fn community(
    inbox: &Inbox,
    host: &domain::federate::CommunityHost,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let (method, path, auth) = signed_parts(&req);
    let bytes = read_body(req, domain::federate::COMMUNITY_MAX_BODY).await?;
    let origin = inbox
        .authenticate(auth.as_deref(), &method, &path, &bytes)
        .await?;
    let answer = host.answer(&origin, &bytes).await.map_err(|e| {
        use domain::federate::HostError;
        let text = e.to_string();
        match e {
            HostError::Federation(f) => ApiError::from(f),
            HostError::Community(c) => ApiError::from(c),
            HostError::Reused => ApiError::new(StatusCode::CONFLICT, "conflict", text),
            HostError::Unknown => ApiError::new(StatusCode::CONFLICT, "outcome_unknown", text),
            HostError::Removed => ApiError::new(StatusCode::GONE, "gone", text),
        }
    })?;
    Ok(super::json::reply(StatusCode::OK, &answer))
}

/// `GET /_federation/v1/media/{id}/{part}` → 200 `application/octet-stream`.
pub async fn media_part(
    inbox: &Inbox,
    id: &str,
    part: &str,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    // An id no media can have names none: answered before any key is fetched.
    if !federation::valid_media_id(id) {
        return Err(domain::federate::FedError::NoSuchMedia.into());
    }
    let (method, path, auth) = signed_parts(&req);
    let origin = inbox
        .authenticate(auth.as_deref(), &method, &path, b"")
        .await?;
    let bytes = inbox.media_part(&origin, id, part).await?;
    let mut r = Response::new(super::json::full(bytes));
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    Ok(r)
}
