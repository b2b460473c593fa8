//! The client API over HTTPS: the route table, dispatch, authentication of bearer tokens, and
//! one file per group of endpoints. Handlers convert wire JSON to domain types and back; the
//! domain modules never see HTTP.
//!
//! **Boundary:** this is the only module that knows HTTP paths and JSON shapes of the client API.

mod accounts;
mod communities;
mod consents;
mod conversations;
mod deletion;
mod discovery;
mod error;
mod events;
mod federation;
mod friends;
mod health;
mod json;
mod me;
mod media;
mod messages;
mod openapi;
mod policy;
mod privacy;
mod proxy;
mod query;
mod requests;
mod search;
mod throttle;
mod web;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;

pub(crate) use communities::{export_comment, export_post};
pub use error::ApiError;
pub use events::Sessions;
pub use health::Readiness;
pub use json::{Body, BodyPace};
pub(crate) use messages::message_json;
pub use throttle::Throttle;
pub use web::WebApp;

use crate::accounts::{Accounts, Session};
use crate::consents::Consents;
use crate::erasure::Erasure;
use crate::federate::Inbox;
use crate::media::Media;
use crate::messaging::Messaging;
use crate::policy::PolicyBook;
use crate::privacy::{Exporter, Minors, PublicPage, RealName};

/// Every route of the client API: method, path pattern (`{name}` is one path segment).
/// The OpenAPI document must list exactly these (a test enforces it).
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/health"),
    ("GET", "/health/ready"),
    ("GET", "/api/v1/openapi.json"),
    ("GET", "/api/v1/policy"),
    ("GET", "/api/v1/policy/versions"),
    ("GET", "/api/v1/policy/versions/{version}"),
    ("GET", "/api/v1/pages/{handle}"),
    ("POST", "/api/v1/accounts"),
    ("POST", "/api/v1/sessions"),
    ("DELETE", "/api/v1/sessions/current"),
    ("GET", "/api/v1/me"),
    ("PATCH", "/api/v1/me"),
    ("GET", "/api/v1/me/sessions"),
    ("DELETE", "/api/v1/me/sessions/{device_id}"),
    ("POST", "/api/v1/me/deletion"),
    ("DELETE", "/api/v1/me/deletion"),
    ("POST", "/api/v1/me/requests"),
    ("GET", "/api/v1/me/requests"),
    ("GET", "/api/v1/me/policy"),
    ("POST", "/api/v1/me/policy/accept"),
    ("GET", "/api/v1/me/notices"),
    ("POST", "/api/v1/me/guardian-consent"),
    ("GET", "/api/v1/me/guardian-consent"),
    ("POST", "/api/v1/me/real-name"),
    ("GET", "/api/v1/me/real-name"),
    ("DELETE", "/api/v1/me/real-name"),
    ("PUT", "/api/v1/me/public-page"),
    ("GET", "/api/v1/me/public-page"),
    ("POST", "/api/v1/me/export"),
    ("GET", "/api/v1/me/export"),
    ("GET", "/api/v1/me/consents"),
    ("PUT", "/api/v1/me/consents/{purpose}"),
    ("GET", "/api/v1/users/{address}"),
    ("POST", "/api/v1/conversations"),
    ("GET", "/api/v1/conversations"),
    ("GET", "/api/v1/conversations/{id}"),
    ("PATCH", "/api/v1/conversations/{id}"),
    ("POST", "/api/v1/conversations/{id}/members"),
    ("DELETE", "/api/v1/conversations/{id}/members/{address}"),
    ("PATCH", "/api/v1/conversations/{id}/members/{address}"),
    ("POST", "/api/v1/conversations/{id}/owner"),
    ("POST", "/api/v1/conversations/{id}/messages"),
    ("GET", "/api/v1/conversations/{id}/messages"),
    ("DELETE", "/api/v1/conversations/{id}/messages"),
    ("DELETE", "/api/v1/conversations/{id}/messages/{seq}"),
    ("POST", "/api/v1/conversations/{id}/messages/{seq}/recall"),
    ("GET", "/api/v1/sync"),
    ("GET", "/api/v1/events"),
    ("POST", "/api/v1/media"),
    ("GET", "/api/v1/media/{id}"),
    // Friends (issue 22).
    ("GET", "/api/v1/friends"),
    ("DELETE", "/api/v1/friends/{id}"),
    ("GET", "/api/v1/friends/requests"),
    ("POST", "/api/v1/friends/requests"),
    ("POST", "/api/v1/friends/requests/{id}/accept"),
    ("POST", "/api/v1/friends/requests/{id}/decline"),
    ("DELETE", "/api/v1/friends/requests/{id}"),
    ("GET", "/api/v1/blocks"),
    ("POST", "/api/v1/blocks"),
    ("DELETE", "/api/v1/blocks/{id}"),
    ("GET", "/api/v1/me/direct-messages"),
    ("PUT", "/api/v1/me/direct-messages"),
    // web client (issue 21)
    ("PUT", "/api/v1/conversations/{id}/read"),
    // Communities (小组). The literal paths come before `{id}`, which is 16 hex digits.
    ("GET", "/api/v1/communities"),
    ("POST", "/api/v1/communities"),
    ("GET", "/api/v1/communities/mine"),
    ("GET", "/api/v1/communities/feed"),
    ("GET", "/api/v1/communities/favourites"),
    ("GET", "/api/v1/communities/{id}"),
    ("PATCH", "/api/v1/communities/{id}"),
    ("POST", "/api/v1/communities/{id}/join"),
    ("POST", "/api/v1/communities/{id}/leave"),
    ("GET", "/api/v1/communities/{id}/members"),
    ("POST", "/api/v1/communities/{id}/moderation"),
    ("GET", "/api/v1/communities/{id}/log"),
    ("GET", "/api/v1/communities/{id}/posts"),
    ("POST", "/api/v1/communities/{id}/posts"),
    ("GET", "/api/v1/communities/{id}/posts/{post}"),
    ("PATCH", "/api/v1/communities/{id}/posts/{post}"),
    ("DELETE", "/api/v1/communities/{id}/posts/{post}"),
    ("GET", "/api/v1/communities/{id}/posts/{post}/comments"),
    ("POST", "/api/v1/communities/{id}/posts/{post}/comments"),
    (
        "PATCH",
        "/api/v1/communities/{id}/posts/{post}/comments/{comment}",
    ),
    (
        "DELETE",
        "/api/v1/communities/{id}/posts/{post}/comments/{comment}",
    ),
    ("PUT", "/api/v1/communities/{id}/posts/{post}/favourite"),
    ("DELETE", "/api/v1/communities/{id}/posts/{post}/favourite"),
    // Search (issue 23)
    ("POST", "/api/v1/search"),
    ("GET", "/api/v1/me/searches"),
    ("DELETE", "/api/v1/me/searches"),
    // Discovery: suggestions, nearby people, invites (issue 22).
    ("GET", "/api/v1/me/discovery"),
    ("PUT", "/api/v1/me/discovery"),
    ("POST", "/api/v1/me/contacts"),
    ("DELETE", "/api/v1/me/contacts"),
    ("GET", "/api/v1/me/suggestions"),
    ("POST", "/api/v1/me/suggestions/dismissed"),
    ("PUT", "/api/v1/me/location"),
    ("GET", "/api/v1/me/location"),
    ("DELETE", "/api/v1/me/location"),
    ("GET", "/api/v1/nearby"),
    ("POST", "/api/v1/invites"),
    ("GET", "/api/v1/invites"),
    ("DELETE", "/api/v1/invites/{id}"),
    ("POST", "/api/v1/invites/redeem"),
    ("GET", "/api/v1/me/join-requests"),
    ("POST", "/api/v1/me/join-requests/{id}"),
];

/// Routes of the federation API (between nodes), outside the client API's document.
pub const FEDERATION_ROUTES: &[(&str, &str)] = &[
    ("GET", "/_federation/v1/keys"),
    ("PUT", "/_federation/v1/transactions/{txn_id}"),
    ("GET", "/_federation/v1/users/{handle}"),
    ("GET", "/_federation/v1/media/{id}/{part}"),
];

/// What the handlers need, each as its own narrow handle.
#[derive(Debug)]
pub struct Api {
    pub accounts: Accounts,
    pub consents: Consents,
    /// Requests from peers (`/_federation/v1/…`).
    pub inbox: Inbox,
    pub erasure: Erasure,
    pub requests: crate::requests::Requests,
    pub messaging: Messaging,
    pub media: Media,
    pub policy: PolicyBook,
    pub minors: Minors,
    pub real_name: RealName,
    pub page: PublicPage,
    pub exporter: Exporter,
    pub friends: crate::friends::Friends,
    /// Communities (小组).
    pub communities: crate::community::Communities,
    pub search: crate::search::Search,
    /// Suggestions, nearby people, invites (issue 22).
    pub discovery: crate::discovery::Discovery,
    pub domain: String,
    pub max_body: usize,
    /// WebSocket sessions, awaited by the server at shutdown.
    pub sessions: Sessions,
    /// The node's self-signed key document, made once at start.
    pub key_document: bytes::Bytes,
    /// Users of other nodes; pushes local profile changes to peers (issue 25).
    pub directory: crate::federate::Directory,
    /// Flips to true when the node shuts down; long polls and event streams end.
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    /// Per-client limits on requests made without an account.
    pub throttle: Throttle,
    /// The web client served at `/` and `/app/…` (outside the JSON API).
    pub web: WebApp,
    /// Proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: crate::config::TrustedProxies,
    /// Request counts and latencies (aggregates only).
    pub metrics: crate::metrics::Metrics,
    /// What `/health` and `/health/ready` check.
    pub readiness: Readiness,
}

/// The connection-limit slot of the connection a request came on; whoever takes over the
/// socket (the WebSocket task) keeps it until the socket closes.
#[derive(Debug, Clone)]
pub struct ConnectionSlot {
    _permit: Arc<tokio::sync::OwnedSemaphorePermit>,
}

impl ConnectionSlot {
    pub fn new(permit: Arc<tokio::sync::OwnedSemaphorePermit>) -> Self {
        ConnectionSlot { _permit: permit }
    }
}

/// A matched request's path parameters, in pattern order.
type Params = Vec<String>;

/// Longest request target (path and query) the node serves; longer ones get 414. (hyper
/// itself answers 414 without a body beyond 65534 bytes, before the node sees the request.)
pub const MAX_URI_BYTES: usize = 8 * 1024;

/// Headers the node reads one value of: a request carrying two of one is refused rather than
/// having one of them silently win (a proxy and the node could each pick a different one).
const SINGLE_HEADERS: &[http::header::HeaderName] = &[
    http::header::AUTHORIZATION,
    http::header::CONTENT_TYPE,
    http::header::SEC_WEBSOCKET_KEY,
    http::header::SEC_WEBSOCKET_VERSION,
];

/// Handles one request; never fails (errors become JSON error answers).
pub async fn handle(api: Arc<Api>, req: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
    let started = Instant::now();
    let method = req.method().clone();
    let peer = proxy::client_addr(&api.trusted_proxies, peer, req.headers());
    let head = check_head(&req);
    // The web client's pages and assets, outside the JSON API (after the checks every request
    // gets).
    if head.is_ok()
        && let Some(page) = api.web.serve(&req)
    {
        json::discard(req);
        return page;
    }
    let (route, params) = match head.and_then(|()| route(req.method(), req.uri().path())) {
        Ok(found) => found,
        Err(e) => {
            let mut r = json::error_reply(&e);
            if e.status == StatusCode::METHOD_NOT_ALLOWED
                && let Ok(v) = http::HeaderValue::from_str(&allowed(req.uri().path()))
            {
                r.headers_mut().insert(http::header::ALLOW, v);
            }
            let (m, status) = (metric_method(&method), r.status().as_u16());
            api.metrics
                .request(m, crate::metrics::UNMATCHED, status, started.elapsed());
            json::discard(req);
            return r;
        }
    };
    let result = dispatch(&api, route, params, req, peer).await;
    let response = match result {
        Ok(r) => r,
        Err(e) => json::error_reply(&e),
    };
    let status = response.status().as_u16();
    api.metrics
        .request(metric_method(&method), route, status, started.elapsed());
    // Route patterns only: a concrete path can contain an address or device id.
    tracing::debug!(
        method = %method,
        route,
        status = response.status().as_u16(),
        micros = started.elapsed().as_micros() as u64,
        "request"
    );
    response
}

/// What the node refuses before routing: an over-long target (414) and a header the node reads
/// one value of sent twice (400).
fn check_head<B>(req: &Request<B>) -> Result<(), ApiError> {
    let target = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    if target > MAX_URI_BYTES {
        return Err(ApiError::new(
            StatusCode::URI_TOO_LONG,
            "uri_too_long",
            format!("the request target is longer than {MAX_URI_BYTES} bytes"),
        ));
    }
    for name in SINGLE_HEADERS {
        if req.headers().get_all(name).iter().nth(1).is_some() {
            return Err(ApiError::bad_request(
                "duplicate_header",
                format!("send one {name} header, not several"),
            ));
        }
    }
    Ok(())
}

/// The `Allow` header's value for a known path: every method it has a route for.
fn allowed(path: &str) -> String {
    let depth = path.bytes().filter(|b| *b == b'/').count();
    let mut methods: Vec<&str> = ROUTES
        .iter()
        .chain(FEDERATION_ROUTES)
        .filter(|(_, p)| p.bytes().filter(|b| *b == b'/').count() == depth)
        .filter(|(_, p)| match_pattern(p, path).is_some())
        .map(|(m, _)| *m)
        .collect();
    methods.sort_unstable();
    methods.dedup();
    methods.join(", ")
}

/// The method as a metrics label: one of the route table's, or `other` (never the client's text).
fn metric_method(method: &Method) -> &'static str {
    ["GET", "POST", "PUT", "PATCH", "DELETE"]
        .into_iter()
        .find(|m| *m == method.as_str())
        .unwrap_or("other")
}

/// Finds the route for `method` and `path`: 404 for an unknown path, 405 for a known path with
/// another method.
fn route(method: &Method, path: &str) -> Result<(&'static str, Params), ApiError> {
    let mut path_matched = false;
    let depth = path.bytes().filter(|b| *b == b'/').count();
    for (m, pattern) in ROUTES.iter().chain(FEDERATION_ROUTES) {
        // Cheap filters first: most patterns differ in depth or in their first literal bytes.
        if pattern.bytes().filter(|b| *b == b'/').count() != depth {
            continue;
        }
        if let Some(params) = match_pattern(pattern, path) {
            if m.eq_ignore_ascii_case(method.as_str()) {
                return Ok((pattern, params));
            }
            path_matched = true;
        }
    }
    if path_matched {
        Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("{method} is not allowed here"),
        ))
    } else {
        Err(ApiError::not_found("no such endpoint"))
    }
}

/// Matches `path` against `pattern` segment by segment (same depth assumed by the caller);
/// decodes the parameters only once every literal segment has matched.
fn match_pattern(pattern: &str, path: &str) -> Option<Params> {
    let mut raw: [&str; 4] = [""; 4];
    let mut n = 0;
    for (pp, ss) in pattern.split('/').zip(path.split('/')) {
        if pp.starts_with('{') {
            *raw.get_mut(n)? = ss;
            n += 1;
        } else if pp != ss {
            return None;
        }
    }
    let mut params = Vec::with_capacity(n);
    for ss in &raw[..n] {
        let decoded = percent_decode(ss)?;
        if decoded.is_empty() {
            return None;
        }
        params.push(decoded);
    }
    Some(params)
}

/// Decodes `%XX` escapes; `None` for bad escapes or non-UTF-8 results.
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

async fn dispatch(
    api: &Api,
    route: &'static str,
    params: Params,
    req: Request<Incoming>,
    peer: SocketAddr,
) -> Result<Response<Body>, ApiError> {
    let method = req.method().clone();
    if let Some(group) = throttle::Group::of(method.as_str(), route) {
        api.throttle.check(group, peer.ip())?;
    }
    if method != Method::GET {
        api.readiness.admit_write()?;
    }
    match (method.as_str(), route) {
        ("GET", "/health") => Ok(health::get(&api.domain, &api.readiness).await),
        ("GET", "/health/ready") => Ok(health::ready(&api.readiness).await),
        ("GET", "/api/v1/openapi.json") => Ok(openapi::get()),
        ("GET", "/_federation/v1/keys") => Ok(federation::keys(&api.key_document)),
        ("PUT", "/_federation/v1/transactions/{txn_id}") => {
            let txn = params.first().cloned().unwrap_or_default();
            federation::transaction(&api.inbox, &txn, req).await
        }
        ("GET", "/_federation/v1/users/{handle}") => {
            let handle = params.first().cloned().unwrap_or_default();
            federation::user(&api.inbox, &handle, req).await
        }
        ("GET", "/_federation/v1/media/{id}/{part}") => {
            let id = params.first().cloned().unwrap_or_default();
            let part = params.get(1).cloned().unwrap_or_default();
            federation::media_part(&api.inbox, &id, &part, req).await
        }
        ("GET", "/api/v1/policy") => policy::get(&api.policy, req.uri().query()),
        ("GET", "/api/v1/policy/versions") => Ok(policy::versions(&api.policy)),
        ("GET", "/api/v1/policy/versions/{version}") => {
            let v = params.first().cloned().unwrap_or_default();
            policy::version(&api.policy, &v, req.uri().query())
        }
        ("GET", "/api/v1/pages/{handle}") => {
            let h = params.first().cloned().unwrap_or_default();
            privacy::public_page(&api.page, &h, &api.domain).await
        }
        ("POST", "/api/v1/accounts") => {
            accounts::register(&api.accounts, &api.domain, req, api.max_body).await
        }
        ("POST", "/api/v1/sessions") => {
            accounts::login(&api.accounts, req, peer, api.max_body).await
        }
        ("GET", "/api/v1/events") => {
            // Browsers cannot set headers on a WebSocket: without the header, the first frame
            // authenticates instead.
            let session = match req.headers().contains_key(http::header::AUTHORIZATION) {
                true => Some(authenticate(api, &req, peer).await?),
                false => {
                    // The first frame's token will be looked up: count it like one.
                    api.throttle
                        .check(throttle::Group::TokenLookup, peer.ip())?;
                    None
                }
            };
            events::upgrade(
                api.metrics.websocket(),
                api.messaging.clone(),
                api.accounts.clone(),
                session,
                req,
                &api.sessions,
                api.shutdown.clone(),
            )
        }
        _ => {
            let session = match authenticate(api, &req, peer).await {
                Ok(s) => s,
                Err(e) => {
                    json::discard(req);
                    return Err(e);
                }
            };
            dispatch_authenticated(api, route, params, req, session).await
        }
    }
}

async fn dispatch_authenticated(
    api: &Api,
    route: &'static str,
    mut params: Params,
    req: Request<Incoming>,
    session: Session,
) -> Result<Response<Body>, ApiError> {
    let me = address(&session.handle, &api.domain);
    // An account waiting for its erasure is locked except for cancelling (and reading who it
    // is, taking its data with it, and signing out).
    if let Some(due) = session.deletion_due {
        let open = matches!(
            (req.method().as_str(), route),
            ("POST" | "DELETE", "/api/v1/me/deletion")
                | ("GET", "/api/v1/me")
                | ("POST" | "GET", "/api/v1/me/export")
                | ("DELETE", "/api/v1/sessions/current")
        );
        if !open {
            json::discard(req);
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "account_pending_deletion",
                format!(
                    "this account will be erased at {}; until then it is locked (DELETE /api/v1/me/deletion cancels)",
                    due.to_rfc3339()
                ),
            ));
        }
    }
    let id = params.first().cloned().unwrap_or_default();
    let second = params.get(1).cloned().unwrap_or_default();
    let mut param = || params.pop().unwrap_or_default();
    let (m, b, q) = (
        &api.messaging,
        api.max_body,
        req.uri().query().map(str::to_string),
    );
    match (req.method().as_str(), route) {
        ("POST", "/api/v1/conversations") => conversations::create(m, &session, &me, req, b).await,
        ("GET", "/api/v1/conversations") => conversations::list(m, &session, &me).await,
        ("GET", "/api/v1/conversations/{id}") => {
            conversations::get(m, &api.accounts, api.inbox.directory(), &session, &me, &id).await
        }
        ("PATCH", "/api/v1/conversations/{id}") => {
            conversations::update(m, &session, &id, req, b).await
        }
        ("POST", "/api/v1/conversations/{id}/members") => {
            conversations::invite(m, &session, &id, req, b).await
        }
        ("DELETE", "/api/v1/conversations/{id}/members/{address}") => {
            conversations::remove(m, &session, &id, &second).await
        }
        ("PATCH", "/api/v1/conversations/{id}/members/{address}") => {
            conversations::set_role(m, &session, &id, &second, req, b).await
        }
        ("POST", "/api/v1/conversations/{id}/owner") => {
            conversations::transfer(m, &session, &id, req, b).await
        }
        ("POST", "/api/v1/conversations/{id}/messages") => {
            messages::send(m, &session, &id, req, b).await
        }
        ("GET", "/api/v1/conversations/{id}/messages") => {
            messages::list(m, &session, &id, q.as_deref()).await
        }
        ("DELETE", "/api/v1/conversations/{id}/messages") => {
            messages::clear(m, &session, &id).await
        }
        ("DELETE", "/api/v1/conversations/{id}/messages/{seq}") => {
            messages::hide(m, &session, &id, &second).await
        }
        ("POST", "/api/v1/conversations/{id}/messages/{seq}/recall") => {
            messages::recall(m, &session, &id, &second).await
        }
        ("GET", "/api/v1/sync") => {
            events::sync(m, &session, q.as_deref(), api.shutdown.clone()).await
        }
        ("POST", "/api/v1/media") => media::upload(&api.media, &session, req).await,
        ("GET", "/api/v1/media/{id}") => media::download(&api.media, &session, &id).await,
        ("DELETE", "/api/v1/sessions/current") => accounts::logout(&api.accounts, &session).await,
        ("GET", "/api/v1/me/sessions") => accounts::list_sessions(&api.accounts, &session).await,
        ("DELETE", "/api/v1/me/sessions/{device_id}") => {
            accounts::end_session(&api.accounts, &session, &param()).await
        }
        ("GET", "/api/v1/me") => me::get(&api.accounts, &session, &api.domain).await,
        ("PATCH", "/api/v1/me") => {
            me::patch(
                &api.accounts,
                &api.directory,
                &session,
                &api.domain,
                req,
                api.max_body,
            )
            .await
        }
        ("GET", "/api/v1/users/{address}") => {
            me::view_user(&api.accounts, &api.inbox, &session, &api.domain, &param()).await
        }
        ("POST", "/api/v1/me/deletion") => {
            deletion::request(&api.erasure, &session, req, api.max_body).await
        }
        ("DELETE", "/api/v1/me/deletion") => deletion::cancel(&api.erasure, &session).await,
        ("POST", "/api/v1/me/requests") => {
            requests::file(&api.requests, &session, req, api.max_body).await
        }
        ("GET", "/api/v1/me/requests") => requests::list(&api.requests, &session).await,
        ("POST", "/api/v1/search") => search::search(&api.search, &session, req, b).await,
        ("GET", "/api/v1/me/searches") => search::recent(&api.search, &session).await,
        ("DELETE", "/api/v1/me/searches") => search::clear(&api.search, &session).await,
        ("GET", "/api/v1/me/consents") => consents::list(&api.consents, &session).await,
        ("PUT", "/api/v1/me/consents/{purpose}") => {
            consents::put(&api.consents, &api.minors, &session, &param(), req, b).await
        }
        ("GET", "/api/v1/me/policy") => policy::mine(&api.policy, &session).await,
        ("POST", "/api/v1/me/policy/accept") => {
            policy::accept(&api.policy, &api.accounts, &session, req, b).await
        }
        ("GET", "/api/v1/me/notices") => privacy::notices(&api.accounts, &session).await,
        ("POST", "/api/v1/me/guardian-consent") => {
            privacy::record_guardian(&api.minors, &session, req, b).await
        }
        ("GET", "/api/v1/me/guardian-consent") => privacy::guardian(&api.minors, &session).await,
        ("POST", "/api/v1/me/real-name") => {
            privacy::set_real_name(&api.real_name, &session, req, b).await
        }
        ("GET", "/api/v1/me/real-name") => privacy::real_name(&api.real_name, &session).await,
        ("DELETE", "/api/v1/me/real-name") => {
            privacy::delete_real_name(&api.real_name, &session).await
        }
        ("PUT", "/api/v1/me/public-page") => privacy::set_page(&api.page, &session, req, b).await,
        ("GET", "/api/v1/me/public-page") => privacy::page_status(&api.page, &session).await,
        ("POST", "/api/v1/me/export") => privacy::start_export(&api.exporter, &session).await,
        ("GET", "/api/v1/me/export") => privacy::download_export(&api.exporter, &session).await,
        // Friends (issue 22).
        ("GET", "/api/v1/friends") => friends::list(&api.friends, &session).await,
        ("DELETE", "/api/v1/friends/{id}") => friends::remove(&api.friends, &session, &id).await,
        ("GET", "/api/v1/friends/requests") => friends::requests(&api.friends, &session).await,
        ("POST", "/api/v1/friends/requests") => friends::send(&api.friends, &session, req, b).await,
        ("POST", "/api/v1/friends/requests/{id}/accept") => {
            friends::accept(&api.friends, &session, &id).await
        }
        ("POST", "/api/v1/friends/requests/{id}/decline") => {
            friends::decline(&api.friends, &session, &id).await
        }
        ("DELETE", "/api/v1/friends/requests/{id}") => {
            friends::cancel(&api.friends, &session, &id).await
        }
        ("GET", "/api/v1/blocks") => friends::blocks(&api.friends, &session).await,
        ("POST", "/api/v1/blocks") => friends::block(&api.friends, &session, req, b).await,
        ("DELETE", "/api/v1/blocks/{id}") => friends::unblock(&api.friends, &session, &id).await,
        ("GET", "/api/v1/me/direct-messages") => {
            friends::direct_messages(&api.friends, &session).await
        }
        ("PUT", "/api/v1/me/direct-messages") => {
            friends::set_direct_messages(&api.friends, &session, req, b).await
        }
        ("PUT", "/api/v1/conversations/{id}/read") => {
            conversations::mark_read(m, &session, &id, req, b).await
        }
        (_, r) if r.starts_with("/api/v1/communities") => {
            let method = req.method().clone();
            communities::route(
                &api.communities,
                &session,
                &method,
                route,
                &params,
                q.as_deref(),
                req,
                b,
            )
            .await
        }
        // Discovery (issue 22).
        ("GET", "/api/v1/me/discovery") => discovery::settings(&api.discovery, &session).await,
        ("PUT", "/api/v1/me/discovery") => {
            discovery::put_settings(&api.discovery, &session, req, b).await
        }
        ("POST", "/api/v1/me/contacts") => {
            discovery::upload(&api.discovery, &session, req, b).await
        }
        ("DELETE", "/api/v1/me/contacts") => discovery::forget(&api.discovery, &session).await,
        ("GET", "/api/v1/me/suggestions") => {
            discovery::suggestions(&api.discovery, &session, q.as_deref()).await
        }
        ("POST", "/api/v1/me/suggestions/dismissed") => {
            discovery::dismiss(&api.discovery, &session, req, b).await
        }
        ("PUT", "/api/v1/me/location") => {
            discovery::put_location(&api.discovery, &session, req, b).await
        }
        ("GET", "/api/v1/me/location") => discovery::location(&api.discovery, &session).await,
        ("DELETE", "/api/v1/me/location") => {
            discovery::clear_location(&api.discovery, &session).await
        }
        ("GET", "/api/v1/nearby") => discovery::nearby(&api.discovery, &session).await,
        ("POST", "/api/v1/invites") => {
            discovery::create_invite(&api.discovery, &session, req, b).await
        }
        ("GET", "/api/v1/invites") => discovery::invites(&api.discovery, &session).await,
        ("DELETE", "/api/v1/invites/{id}") => {
            discovery::revoke_invite(&api.discovery, &session, &id).await
        }
        ("POST", "/api/v1/invites/redeem") => {
            discovery::redeem(&api.discovery, &session, req, b).await
        }
        ("GET", "/api/v1/me/join-requests") => {
            discovery::join_requests(&api.discovery, &session).await
        }
        ("POST", "/api/v1/me/join-requests/{id}") => {
            discovery::answer_join(&api.discovery, &session, &id, req, b).await
        }
        _ => Err(ApiError::internal()),
    }
}

/// Resolves `Authorization: Bearer <token>` to a session. A token the store must be asked
/// about counts against the client's token-lookup limit.
async fn authenticate(
    api: &Api,
    req: &Request<Incoming>,
    peer: SocketAddr,
) -> Result<Session, ApiError> {
    let accounts = &api.accounts;
    let header = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .ok_or_else(|| {
            ApiError::unauthorized(
                "missing_token",
                "send Authorization: Bearer <token> (POST /api/v1/sessions)",
            )
        })?;
    // The scheme is case-insensitive (RFC 9110 §11.1).
    let token = header
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("Bearer"))
        .map(|(_, token)| token.trim())
        .filter(|token| !token.is_empty())
        .ok_or_else(|| {
            ApiError::unauthorized(
                "invalid_token",
                "the Authorization header must be `Bearer <token>`",
            )
        })?;
    if accounts.lookup_needed(token) {
        api.throttle
            .check(throttle::Group::TokenLookup, peer.ip())?;
    }
    Ok(accounts.authenticate(token).await?)
}

/// `handle@domain` for a local user.
pub fn address(handle: &str, domain: &str) -> String {
    format!("{handle}@{domain}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_match_parameters_and_refuse_wrong_methods() {
        let (r, p) = route(&Method::DELETE, "/api/v1/me/sessions/abc").unwrap();
        assert_eq!(
            (r, p),
            ("/api/v1/me/sessions/{device_id}", vec!["abc".to_string()])
        );
        let (_, p) = route(&Method::GET, "/api/v1/users/alice%40localhost").unwrap();
        assert_eq!(p, vec!["alice@localhost".to_string()]);
        assert_eq!(
            route(&Method::POST, "/api/v1/me").unwrap_err().status,
            StatusCode::METHOD_NOT_ALLOWED
        );
        assert_eq!(
            route(&Method::GET, "/api/v1/nothing").unwrap_err().status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            route(&Method::GET, "/api/v1/users/").unwrap_err().status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            route(&Method::GET, "/api/v1/users/%zz").unwrap_err().status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            route(&Method::GET, "/api/v1/me/").unwrap_err().status,
            StatusCode::NOT_FOUND
        );
    }

    #[test]
    fn allow_lists_every_method_of_the_path() {
        assert_eq!(allowed("/api/v1/me"), "GET, PATCH");
        assert_eq!(
            allowed("/api/v1/conversations/abc/messages"),
            "DELETE, GET, POST"
        );
        assert_eq!(allowed("/api/v1/me/sessions/dev1"), "DELETE");
    }
}
