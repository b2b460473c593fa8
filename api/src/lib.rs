//! The client API over HTTPS: the route table, dispatch, authentication of bearer tokens, and
//! one file per group of endpoints. Handlers convert wire JSON to domain types and back; the
//! domain never sees HTTP. Also every other JSON document the node writes for people in the
//! API's shapes: the data export (`export.rs`), and the Prometheus metrics (`metrics.rs`).
//!
//! **Boundary:** this is the only crate that knows HTTP paths, status codes and the JSON shapes
//! of the client API; it reaches storage only through the domain's handles and the record
//! types they return.

mod accounts;
mod behaviour;
mod body;
mod communities;
mod consents;
mod conversations;
mod deletion;
mod discovery;
mod error;
mod events;
pub mod export;
mod federation;
mod friends;
mod health;
mod json;
mod lang;
mod me;
mod media;
mod messages;
pub mod metrics;
mod openapi;
mod policy;
mod privacy;
mod proxy;
mod query;
mod requests;
mod routes;
mod search;
mod throttle;
mod web;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use body::Incoming;
use http::{Method, Request, Response, StatusCode};

pub use body::wrap as wrap_body;
use communities::{export_comment, export_post};
pub use error::ApiError;
pub use events::Sessions;
pub use export::Exporter;
pub use health::Readiness;
pub use json::{Body, BodyPace};
use messages::message_json;
pub use openapi::OPENAPI_JSON;
pub use routes::{Auth, ROUTES, Route};
pub use throttle::Throttle;
pub use web::WebApp;

use domain::accounts::{Accounts, Session};
use domain::consents::Consents;
use domain::erasure::Erasure;
use domain::federate::Inbox;
use domain::media::Media;
use domain::messaging::Messaging;
use domain::policy::PolicyBook;
use domain::privacy::{Minors, PublicPage, RealName};
use routes::{Call, Erasing, Federation, Params, Public, Signed};

/// What the handlers need, each as its own narrow handle.
#[derive(Debug)]
pub struct Api {
    pub accounts: Accounts,
    pub consents: Consents,
    /// Requests from peers (`/_federation/v1/…`).
    pub inbox: Inbox,
    pub erasure: Erasure,
    pub requests: domain::requests::Requests,
    pub messaging: Messaging,
    pub media: Media,
    pub policy: PolicyBook,
    pub minors: Minors,
    pub real_name: RealName,
    pub page: PublicPage,
    pub exporter: Exporter,
    pub friends: domain::friends::Friends,
    /// Communities (小组).
    pub communities: domain::community::Communities,
    /// Calls from partner nodes' users to the communities this node hosts (issue 23).
    pub community_host: domain::federate::CommunityHost,
    pub search: domain::search::Search,
    /// The behaviour log and suggested communities (issue 23).
    pub behaviour: domain::behaviour::Behaviour,
    /// Suggestions, nearby people, invites (issue 22).
    pub discovery: domain::discovery::Discovery,
    pub domain: String,
    pub max_body: usize,
    /// WebSocket sessions, awaited by the server at shutdown.
    pub sessions: Sessions,
    /// The node's self-signed key document, for its current key set.
    pub key_document: domain::signing::Published,
    /// Users of other nodes; pushes local profile changes to peers (issue 25).
    pub directory: domain::federate::Directory,
    /// Flips to true when the node shuts down; long polls and event streams end.
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    /// Per-client limits on requests made without an account.
    pub throttle: Throttle,
    /// The web client served at `/` and `/app/…` (outside the JSON API).
    pub web: WebApp,
    /// Proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: domain::config::TrustedProxies,
    /// Request counts and latencies (aggregates only).
    pub metrics: metrics::Metrics,
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
    let (route, params) = match head.and_then(|()| routes::find(req.method(), req.uri().path())) {
        Ok(found) => found,
        Err(e) => {
            let mut r = json::error_reply(&e);
            if e.status == StatusCode::METHOD_NOT_ALLOWED
                && let Ok(v) = http::HeaderValue::from_str(&routes::allowed(req.uri().path()))
            {
                r.headers_mut().insert(http::header::ALLOW, v);
            }
            let (m, status) = (metric_method(&method), r.status().as_u16());
            api.metrics
                .request(m, metrics::UNMATCHED, status, started.elapsed());
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
    api.metrics.request(
        metric_method(&method),
        route.pattern,
        status,
        started.elapsed(),
    );
    // Route patterns only: a concrete path can contain an address or device id.
    tracing::debug!(
        method = %method,
        route = route.pattern,
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

/// The method as a metrics label: one of the route table's, or `other` (never the client's text).
fn metric_method(method: &Method) -> &'static str {
    ["GET", "POST", "PUT", "PATCH", "DELETE"]
        .into_iter()
        .find(|m| *m == method.as_str())
        .unwrap_or("other")
}

/// Calls the route's handler: its per-client limit and the write admission first, then the
/// caller's authentication as the route table says.
async fn dispatch(
    api: &Api,
    route: &'static Route,
    params: Params,
    req: Request<Incoming>,
    peer: SocketAddr,
) -> Result<Response<Body>, ApiError> {
    if let Some(group) = route.limit() {
        api.throttle.check(group, peer.ip())?;
    }
    if req.method() != Method::GET {
        api.readiness.admit_write()?;
    }
    match route.call {
        Call::Anyone(_, h) => {
            let req = no_query(route, req)?;
            public(api, h, params, req, peer).await
        }
        Call::Peer(h) => {
            let req = no_query(route, req)?;
            federation(api, h, params, req).await
        }
        Call::Events => {
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
        Call::Session(erasing, h) => {
            let session = match authenticate(api, &req, peer).await {
                Ok(s) => s,
                Err(e) => {
                    json::discard(req);
                    return Err(e);
                }
            };
            // An account waiting for its erasure is locked except for what lets it leave.
            if let (Some(due), Erasing::Locked) = (session.deletion_due, erasing) {
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
            let req = no_query(route, req)?;
            signed(api, h, params, req, session).await
        }
    }
}

/// Refuses any query parameter on a route whose handler reads none (by the one query rule).
fn no_query(route: &Route, req: Request<Incoming>) -> Result<Request<Incoming>, ApiError> {
    if !route.reads_query()
        && let Err(e) = query::read::<query::NoParams>(req.uri().query())
    {
        json::discard(req);
        return Err(e);
    }
    Ok(req)
}

/// The `n`th path parameter (the route's pattern has it, or the route did not match).
fn param(params: &Params, n: usize) -> &str {
    params.get(n).map_or("", String::as_str)
}

async fn public(
    api: &Api,
    h: Public,
    params: Params,
    req: Request<Incoming>,
    peer: SocketAddr,
) -> Result<Response<Body>, ApiError> {
    let q = req.uri().query();
    match h {
        Public::Health => Ok(health::get(&api.domain, &api.readiness).await),
        Public::Ready => Ok(health::ready(&api.readiness).await),
        Public::OpenApi => Ok(openapi::get()),
        Public::Policy => policy::get(&api.policy, q, req.headers()),
        Public::PolicyVersions => Ok(policy::versions(&api.policy)),
        Public::PolicyVersion => policy::version(&api.policy, param(&params, 0), q, req.headers()),
        Public::Page => privacy::public_page(&api.page, param(&params, 0), &api.domain).await,
        Public::Register => accounts::register(&api.accounts, &api.domain, req, api.max_body).await,
        Public::Login => accounts::login(&api.accounts, req, peer, api.max_body).await,
    }
}

async fn federation(
    api: &Api,
    h: Federation,
    params: Params,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let (first, second) = (param(&params, 0), param(&params, 1));
    match h {
        Federation::Keys => Ok(federation::keys(&api.key_document)),
        Federation::Transaction => federation::transaction(&api.inbox, first, req).await,
        Federation::User => federation::user(&api.inbox, first, req).await,
        Federation::UserAs => federation::user_as(&api.inbox, first, second, req).await,
        Federation::MediaPart => federation::media_part(&api.inbox, first, second, req).await,
        Federation::RedeemInvite => {
            federation::redeem_invite(&api.inbox, &api.discovery, req).await
        }
        Federation::Community => federation::community(&api.inbox, &api.community_host, req).await,
    }
}

async fn signed(
    api: &Api,
    h: Signed,
    params: Params,
    req: Request<Incoming>,
    session: Session,
) -> Result<Response<Body>, ApiError> {
    let me = address(&session.handle, &api.domain);
    let (id, second) = (param(&params, 0), param(&params, 1));
    let (m, b, s) = (&api.messaging, api.max_body, &session);
    let q = req.uri().query().map(str::to_string);
    let q = q.as_deref();
    let (d, f) = (&api.discovery, &api.friends);
    match h {
        Signed::CreateConversation => conversations::create(m, s, &me, req, b).await,
        Signed::Conversations => conversations::list(m, s, &me).await,
        Signed::Conversation => {
            conversations::get(m, &api.accounts, api.inbox.directory(), s, &me, id).await
        }
        Signed::UpdateConversation => conversations::update(m, s, id, req, b).await,
        Signed::Invite => conversations::invite(m, s, id, req, b).await,
        Signed::RemoveMember => conversations::remove(m, s, id, second).await,
        Signed::SetRole => conversations::set_role(m, s, id, second, req, b).await,
        Signed::TransferOwner => conversations::transfer(m, s, id, req, b).await,
        Signed::Send => messages::send(m, s, id, req, b).await,
        Signed::History => messages::list(m, s, id, q).await,
        Signed::Clear => messages::clear(m, s, id).await,
        Signed::Hide => messages::hide(m, s, id, second).await,
        Signed::Recall => messages::recall(m, s, id, second).await,
        Signed::Sync => events::sync(m, s, q, req.headers(), api.shutdown.clone()).await,
        Signed::MarkRead => conversations::mark_read(m, s, id, req, b).await,
        Signed::Upload => media::upload(&api.media, s, req).await,
        Signed::Download => media::download(&api.media, s, id).await,
        Signed::Logout => accounts::logout(&api.accounts, s).await,
        Signed::Sessions => accounts::list_sessions(&api.accounts, s).await,
        Signed::EndSession => accounts::end_session(&api.accounts, s, id).await,
        Signed::Me => me::get(&api.accounts, s, &api.domain).await,
        Signed::PatchMe => me::patch(&api.accounts, &api.directory, s, &api.domain, req, b).await,
        Signed::ViewUser => me::view_user(&api.accounts, &api.inbox, s, &api.domain, id).await,
        Signed::RequestDeletion => deletion::request(&api.erasure, s, req, b).await,
        Signed::CancelDeletion => deletion::cancel(&api.erasure, s).await,
        Signed::FileRequest => requests::file(&api.requests, s, req, b).await,
        Signed::Requests => requests::list(&api.requests, s).await,
        Signed::Search => search::search(&api.search, s, req, b).await,
        Signed::RecentSearches => search::recent(&api.search, s).await,
        Signed::ClearSearches => search::clear(&api.search, s).await,
        Signed::Consents => consents::list(&api.consents, &api.policy, s, q, req.headers()).await,
        Signed::PutConsent => consents::put(&api.consents, &api.minors, s, id, req, b).await,
        Signed::MyPolicy => policy::mine(&api.policy, s).await,
        Signed::AcceptPolicy => policy::accept(&api.policy, &api.accounts, s, req, b).await,
        Signed::Notices => privacy::notices(&api.accounts, s, q, req.headers()).await,
        Signed::RecordGuardian => privacy::record_guardian(&api.minors, s, req, b).await,
        Signed::Guardian => privacy::guardian(&api.minors, s).await,
        Signed::SetRealName => privacy::set_real_name(&api.real_name, s, req, b).await,
        Signed::RealName => privacy::real_name(&api.real_name, s).await,
        Signed::DeleteRealName => privacy::delete_real_name(&api.real_name, s).await,
        Signed::SetPage => privacy::set_page(&api.page, s, req, b).await,
        Signed::PageStatus => privacy::page_status(&api.page, s).await,
        Signed::StartExport => privacy::start_export(&api.exporter, s).await,
        Signed::DownloadExport => {
            privacy::download_export(&api.exporter, s, q, req.headers()).await
        }
        // Friends (issue 22).
        Signed::Friends => friends::list(f, s).await,
        Signed::RemoveFriend => friends::remove(f, s, id).await,
        Signed::FriendRequests => friends::requests(f, s).await,
        Signed::SendFriendRequest => friends::send(f, s, req, b).await,
        Signed::AcceptFriend => friends::accept(f, s, id).await,
        Signed::DeclineFriend => friends::decline(f, s, id).await,
        Signed::CancelFriendRequest => friends::cancel(f, s, id).await,
        Signed::Blocks => friends::blocks(f, s).await,
        Signed::Block => friends::block(f, s, req, b).await,
        Signed::Unblock => friends::unblock(f, s, id).await,
        Signed::DirectMessages => friends::direct_messages(f, s).await,
        Signed::SetDirectMessages => friends::set_direct_messages(f, s, req, b).await,
        Signed::Community(op) => {
            let r = communities::route(&api.communities, s, op, &params, q, req, b).await;
            if let Ok(ok) = &r {
                behaviour::noticed(&api.behaviour, s, op, &params, q, ok.status()).await;
            }
            r
        }
        Signed::SuggestedCommunities => {
            behaviour::suggested(&api.behaviour, &api.communities, s, q).await
        }
        Signed::SharePost => {
            behaviour::share(&api.behaviour, &api.communities, s, id, second, req).await
        }
        // Discovery (issue 22).
        Signed::DiscoverySettings => discovery::settings(d, s).await,
        Signed::PutDiscoverySettings => discovery::put_settings(d, s, req, b).await,
        Signed::UploadContacts => discovery::upload(d, s, req, b).await,
        Signed::ForgetContacts => discovery::forget(d, s).await,
        Signed::Suggestions => discovery::suggestions(d, s, q).await,
        Signed::DismissSuggestion => discovery::dismiss(d, s, req, b).await,
        Signed::PutLocation => discovery::put_location(d, s, req, b).await,
        Signed::Location => discovery::location(d, s).await,
        Signed::ClearLocation => discovery::clear_location(d, s).await,
        Signed::Nearby => discovery::nearby(d, s).await,
        Signed::CreateInvite => discovery::create_invite(d, s, req, b).await,
        Signed::Invites => discovery::invites(d, s).await,
        Signed::RevokeInvite => discovery::revoke_invite(d, s, id).await,
        Signed::RedeemInvite => discovery::redeem(d, s, req, b).await,
        Signed::JoinRequests => discovery::join_requests(d, s).await,
        Signed::AnswerJoin => discovery::answer_join(d, s, id, req, b).await,
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
