//! The route table: every route of the client API and the federation API, one line each, with
//! who may call it. It is the one source of three things: what `dispatch` (in `http/mod.rs`)
//! calls — a handler id from the enums below, matched exhaustively there, so a route without a
//! handler does not compile; whether a route needs a session (and whether an account waiting
//! for its erasure may still use it); and the paths of the OpenAPI document, which a test
//! compares with this table in both directions (method, path and `security`).
//!
//! It also finds the route of a request: 404 for an unknown path, 405 (with the `Allow`
//! methods) for a known path with another method.
//!
//! **Does not know:** what a handler does, JSON shapes, or the store.

use http::{Method, StatusCode};

use super::communities::Op;
use super::error::ApiError;
use super::throttle::Group;

/// A route's method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Verb {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Verb {
    pub fn as_str(self) -> &'static str {
        match self {
            Get => "GET",
            Post => "POST",
            Put => "PUT",
            Patch => "PATCH",
            Delete => "DELETE",
        }
    }
}

/// Who may call a route, as the OpenAPI document states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Auth {
    /// Anyone (`security: []`).
    None,
    /// A session's bearer token (`security: [{"bearer": []}]`).
    Session,
    /// A bearer token, or — where a browser cannot set the header — the WebSocket's first
    /// frame (`security: [{"bearer": []}, {}]`).
    SessionOrFirstFrame,
    /// Another node, by signed requests: the federation API, outside the client API's document.
    Peer,
}

/// Whether an account waiting for its erasure may use a session route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Erasing {
    /// Refused with 403 `account_pending_deletion` (most routes).
    Locked,
    /// Still open: cancelling, reading who it is, taking its data with it, signing out.
    Open,
}

/// A route's caller and handler. The handler id's type says how the caller is authenticated,
/// so a handler can only be reached the way its route says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Call {
    /// Anyone, counted against the per-client limit of the group, if any.
    Anyone(Option<Group>, Public),
    /// A session.
    Session(Erasing, Signed),
    /// The event stream (WebSocket): a bearer header, or the first frame.
    Events,
    /// Another node (counted against the federation group's limit).
    Peer(Federation),
}

/// Handlers anyone may call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Public {
    Health,
    Ready,
    OpenApi,
    Policy,
    PolicyVersions,
    PolicyVersion,
    Page,
    Register,
    Login,
}

/// Handlers of the federation API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Federation {
    Keys,
    Transaction,
    User,
    UserAs,
    MediaPart,
    RedeemInvite,
    /// A remote member's call to a community hosted here (issue 23).
    Community,
}

/// Handlers that need a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Signed {
    Logout,
    Me,
    PatchMe,
    Sessions,
    EndSession,
    RequestDeletion,
    CancelDeletion,
    FileRequest,
    Requests,
    MyPolicy,
    AcceptPolicy,
    Notices,
    RecordGuardian,
    Guardian,
    SetRealName,
    RealName,
    DeleteRealName,
    SetPage,
    PageStatus,
    StartExport,
    DownloadExport,
    Consents,
    PutConsent,
    ViewUser,
    CreateConversation,
    Conversations,
    Conversation,
    UpdateConversation,
    Invite,
    RemoveMember,
    SetRole,
    TransferOwner,
    Send,
    History,
    Clear,
    Hide,
    Recall,
    Sync,
    Upload,
    Download,
    Friends,
    RemoveFriend,
    FriendRequests,
    SendFriendRequest,
    AcceptFriend,
    DeclineFriend,
    CancelFriendRequest,
    Blocks,
    Block,
    Unblock,
    DirectMessages,
    SetDirectMessages,
    MarkRead,
    Community(Op),
    Search,
    RecentSearches,
    ClearSearches,
    /// Behaviour log (issue 23).
    SuggestedCommunities,
    SharePost,
    DiscoverySettings,
    PutDiscoverySettings,
    UploadContacts,
    ForgetContacts,
    Suggestions,
    DismissSuggestion,
    PutLocation,
    Location,
    ClearLocation,
    Nearby,
    CreateInvite,
    Invites,
    RevokeInvite,
    RedeemInvite,
    JoinRequests,
    AnswerJoin,
}

/// One route: method, path pattern (`{name}` is one path segment, percent-decoded), and its
/// caller and handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Route {
    pub method: Verb,
    pub pattern: &'static str,
    pub call: Call,
}

impl Route {
    /// The method as HTTP spells it.
    pub fn method(&self) -> &'static str {
        self.method.as_str()
    }

    /// Who may call it.
    pub fn auth(&self) -> Auth {
        match self.call {
            Call::Anyone(..) => Auth::None,
            Call::Session(..) => Auth::Session,
            Call::Events => Auth::SessionOrFirstFrame,
            Call::Peer(_) => Auth::Peer,
        }
    }

    /// The per-client limit it counts against, if any.
    pub fn limit(&self) -> Option<Group> {
        match self.call {
            Call::Anyone(group, _) => group,
            Call::Peer(_) => Some(Group::Federation),
            Call::Session(..) | Call::Events => None,
        }
    }

    /// Whether its handler reads a query string; every other route reads its query as taking
    /// no parameters (any name is 400).
    pub fn reads_query(&self) -> bool {
        match self.call {
            Call::Anyone(_, h) => matches!(h, Public::Policy | Public::PolicyVersion),
            Call::Session(_, Signed::Community(op)) => op.reads_query(),
            Call::Session(_, h) => {
                matches!(
                    h,
                    Signed::History
                        | Signed::Sync
                        | Signed::Suggestions
                        | Signed::SuggestedCommunities
                        | Signed::Consents
                        | Signed::PutConsent
                        | Signed::Notices
                        | Signed::DownloadExport
                )
            }
            Call::Events => true,
            Call::Peer(_) => false,
        }
    }
}

const fn anyone(method: Verb, pattern: &'static str, limit: Group, h: Public) -> Route {
    let call = Call::Anyone(Some(limit), h);
    Route {
        method,
        pattern,
        call,
    }
}
const fn unlimited(method: Verb, pattern: &'static str, h: Public) -> Route {
    let call = Call::Anyone(None, h);
    Route {
        method,
        pattern,
        call,
    }
}
const fn session(method: Verb, pattern: &'static str, h: Signed) -> Route {
    let call = Call::Session(Erasing::Locked, h);
    Route {
        method,
        pattern,
        call,
    }
}
/// A session route an account waiting for its erasure may still use.
const fn erasing(method: Verb, pattern: &'static str, h: Signed) -> Route {
    let call = Call::Session(Erasing::Open, h);
    Route {
        method,
        pattern,
        call,
    }
}
const fn community(method: Verb, pattern: &'static str, op: Op) -> Route {
    session(method, pattern, Signed::Community(op))
}
const fn peer(method: Verb, pattern: &'static str, h: Federation) -> Route {
    let call = Call::Peer(h);
    Route {
        method,
        pattern,
        call,
    }
}

use Group::{Login as LoginLimit, Public as PublicLimit, Register as RegisterLimit};
use Signed as S;
use Verb::{Delete, Get, Patch, Post, Put};

/// Every route. Add one line per route (and its handler's arm in `dispatch`); the OpenAPI
/// document must list the same client routes with the same authentication (a test enforces it).
#[rustfmt::skip]
pub const ROUTES: &[Route] = &[
    unlimited(Get, "/health", Public::Health),
    unlimited(Get, "/health/ready", Public::Ready),
    anyone(Get, "/api/v1/openapi.json", PublicLimit, Public::OpenApi),
    anyone(Get, "/api/v1/policy", PublicLimit, Public::Policy),
    anyone(Get, "/api/v1/policy/versions", PublicLimit, Public::PolicyVersions),
    anyone(Get, "/api/v1/policy/versions/{version}", PublicLimit, Public::PolicyVersion),
    anyone(Get, "/api/v1/pages/{handle}", PublicLimit, Public::Page),
    anyone(Post, "/api/v1/accounts", RegisterLimit, Public::Register),
    anyone(Post, "/api/v1/sessions", LoginLimit, Public::Login),
    erasing(Delete, "/api/v1/sessions/current", S::Logout),
    erasing(Get, "/api/v1/me", S::Me),
    session(Patch, "/api/v1/me", S::PatchMe),
    session(Get, "/api/v1/me/sessions", S::Sessions),
    session(Delete, "/api/v1/me/sessions/{device_id}", S::EndSession),
    erasing(Post, "/api/v1/me/deletion", S::RequestDeletion),
    erasing(Delete, "/api/v1/me/deletion", S::CancelDeletion),
    session(Post, "/api/v1/me/requests", S::FileRequest),
    session(Get, "/api/v1/me/requests", S::Requests),
    session(Get, "/api/v1/me/policy", S::MyPolicy),
    session(Post, "/api/v1/me/policy/accept", S::AcceptPolicy),
    session(Get, "/api/v1/me/notices", S::Notices),
    session(Post, "/api/v1/me/guardian-consent", S::RecordGuardian),
    session(Get, "/api/v1/me/guardian-consent", S::Guardian),
    session(Post, "/api/v1/me/real-name", S::SetRealName),
    session(Get, "/api/v1/me/real-name", S::RealName),
    session(Delete, "/api/v1/me/real-name", S::DeleteRealName),
    session(Put, "/api/v1/me/public-page", S::SetPage),
    session(Get, "/api/v1/me/public-page", S::PageStatus),
    erasing(Post, "/api/v1/me/export", S::StartExport),
    erasing(Get, "/api/v1/me/export", S::DownloadExport),
    session(Get, "/api/v1/me/consents", S::Consents),
    session(Put, "/api/v1/me/consents/{purpose}", S::PutConsent),
    session(Get, "/api/v1/users/{address}", S::ViewUser),
    session(Post, "/api/v1/conversations", S::CreateConversation),
    session(Get, "/api/v1/conversations", S::Conversations),
    session(Get, "/api/v1/conversations/{id}", S::Conversation),
    session(Patch, "/api/v1/conversations/{id}", S::UpdateConversation),
    session(Post, "/api/v1/conversations/{id}/members", S::Invite),
    session(Delete, "/api/v1/conversations/{id}/members/{address}", S::RemoveMember),
    session(Patch, "/api/v1/conversations/{id}/members/{address}", S::SetRole),
    session(Post, "/api/v1/conversations/{id}/owner", S::TransferOwner),
    session(Post, "/api/v1/conversations/{id}/messages", S::Send),
    session(Get, "/api/v1/conversations/{id}/messages", S::History),
    session(Delete, "/api/v1/conversations/{id}/messages", S::Clear),
    session(Delete, "/api/v1/conversations/{id}/messages/{seq}", S::Hide),
    session(Post, "/api/v1/conversations/{id}/messages/{seq}/recall", S::Recall),
    session(Get, "/api/v1/sync", S::Sync),
    Route { method: Get, pattern: "/api/v1/events", call: Call::Events },
    session(Post, "/api/v1/media", S::Upload),
    session(Get, "/api/v1/media/{id}", S::Download),
    // Friends (issue 22).
    session(Get, "/api/v1/friends", S::Friends),
    session(Delete, "/api/v1/friends/{id}", S::RemoveFriend),
    session(Get, "/api/v1/friends/requests", S::FriendRequests),
    session(Post, "/api/v1/friends/requests", S::SendFriendRequest),
    session(Post, "/api/v1/friends/requests/{id}/accept", S::AcceptFriend),
    session(Post, "/api/v1/friends/requests/{id}/decline", S::DeclineFriend),
    session(Delete, "/api/v1/friends/requests/{id}", S::CancelFriendRequest),
    session(Get, "/api/v1/blocks", S::Blocks),
    session(Post, "/api/v1/blocks", S::Block),
    session(Delete, "/api/v1/blocks/{id}", S::Unblock),
    session(Get, "/api/v1/me/direct-messages", S::DirectMessages),
    session(Put, "/api/v1/me/direct-messages", S::SetDirectMessages),
    // web client (issue 21)
    session(Put, "/api/v1/conversations/{id}/read", S::MarkRead),
    // Communities (小组). The literal paths come before `{id}`, which is 16 hex digits.
    community(Get, "/api/v1/communities", Op::Browse),
    community(Post, "/api/v1/communities", Op::Create),
    community(Get, "/api/v1/communities/mine", Op::Mine),
    community(Get, "/api/v1/communities/feed", Op::MyFeed),
    community(Get, "/api/v1/communities/favourites", Op::Favourites),
    // Behaviour log (issue 23): before `{id}`, which would take the literal.
    session(Get, "/api/v1/communities/suggested", S::SuggestedCommunities),
    community(Get, "/api/v1/communities/{id}", Op::Get),
    community(Patch, "/api/v1/communities/{id}", Op::Update),
    community(Post, "/api/v1/communities/{id}/join", Op::Join),
    community(Post, "/api/v1/communities/{id}/leave", Op::Leave),
    community(Get, "/api/v1/communities/{id}/members", Op::Members),
    community(Post, "/api/v1/communities/{id}/moderation", Op::Moderate),
    community(Get, "/api/v1/communities/{id}/log", Op::Log),
    community(Get, "/api/v1/communities/{id}/posts", Op::Posts),
    community(Post, "/api/v1/communities/{id}/posts", Op::NewPost),
    community(Get, "/api/v1/communities/{id}/posts/{post}", Op::Post),
    community(Patch, "/api/v1/communities/{id}/posts/{post}", Op::EditPost),
    community(Delete, "/api/v1/communities/{id}/posts/{post}", Op::DeletePost),
    community(Get, "/api/v1/communities/{id}/posts/{post}/comments", Op::Comments),
    community(Post, "/api/v1/communities/{id}/posts/{post}/comments", Op::NewComment),
    community(Patch, "/api/v1/communities/{id}/posts/{post}/comments/{comment}", Op::EditComment),
    community(Delete, "/api/v1/communities/{id}/posts/{post}/comments/{comment}", Op::DeleteComment),
    community(Put, "/api/v1/communities/{id}/posts/{post}/favourite", Op::Favourite),
    community(Delete, "/api/v1/communities/{id}/posts/{post}/favourite", Op::Unfavourite),
    community(Get, "/api/v1/communities/{id}/posts/{post}/media/{media}", Op::PostMedia),
    // Behaviour log (issue 23).
    session(Post, "/api/v1/communities/{id}/posts/{post}/share", S::SharePost),
    // Search (issue 23)
    session(Post, "/api/v1/search", S::Search),
    session(Get, "/api/v1/me/searches", S::RecentSearches),
    session(Delete, "/api/v1/me/searches", S::ClearSearches),
    // Discovery: suggestions, nearby people, invites (issue 22).
    session(Get, "/api/v1/me/discovery", S::DiscoverySettings),
    session(Put, "/api/v1/me/discovery", S::PutDiscoverySettings),
    session(Post, "/api/v1/me/contacts", S::UploadContacts),
    session(Delete, "/api/v1/me/contacts", S::ForgetContacts),
    session(Get, "/api/v1/me/suggestions", S::Suggestions),
    session(Post, "/api/v1/me/suggestions/dismissed", S::DismissSuggestion),
    session(Put, "/api/v1/me/location", S::PutLocation),
    session(Get, "/api/v1/me/location", S::Location),
    session(Delete, "/api/v1/me/location", S::ClearLocation),
    session(Get, "/api/v1/nearby", S::Nearby),
    session(Post, "/api/v1/invites", S::CreateInvite),
    session(Get, "/api/v1/invites", S::Invites),
    session(Delete, "/api/v1/invites/{id}", S::RevokeInvite),
    session(Post, "/api/v1/invites/redeem", S::RedeemInvite),
    session(Get, "/api/v1/me/join-requests", S::JoinRequests),
    session(Post, "/api/v1/me/join-requests/{id}", S::AnswerJoin),
    // The federation API (between nodes; docs/PROTOCOL.md).
    peer(Get, "/_federation/v1/keys", Federation::Keys),
    peer(Put, "/_federation/v1/transactions/{txn_id}", Federation::Transaction),
    peer(Get, "/_federation/v1/users/{handle}", Federation::User),
    peer(Get, "/_federation/v1/users/{handle}/as/{viewer}", Federation::UserAs),
    peer(Get, "/_federation/v1/media/{id}/{part}", Federation::MediaPart),
    peer(Post, "/_federation/v1/invites/redeem", Federation::RedeemInvite),
    peer(Post, "/_federation/v1/communities", Federation::Community),
];

/// A matched request's path parameters, in pattern order.
pub type Params = Vec<String>;

/// Finds the route for `method` and `path`: 404 for an unknown path, 405 for a known path with
/// another method.
pub fn find(method: &Method, path: &str) -> Result<(&'static Route, Params), ApiError> {
    let mut path_matched = false;
    let depth = path.bytes().filter(|b| *b == b'/').count();
    for route in ROUTES {
        // Cheap filters first: most patterns differ in depth or in their first literal bytes.
        if route.pattern.bytes().filter(|b| *b == b'/').count() != depth {
            continue;
        }
        if let Some(params) = match_pattern(route.pattern, path) {
            if route.method().eq_ignore_ascii_case(method.as_str()) {
                return Ok((route, params));
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

/// The `Allow` header's value for a known path: every method it has a route for.
pub fn allowed(path: &str) -> String {
    let depth = path.bytes().filter(|b| *b == b'/').count();
    let mut methods: Vec<&str> = ROUTES
        .iter()
        .filter(|r| r.pattern.bytes().filter(|b| *b == b'/').count() == depth)
        .filter(|r| match_pattern(r.pattern, path).is_some())
        .map(Route::method)
        .collect();
    methods.sort_unstable();
    methods.dedup();
    methods.join(", ")
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

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet, HashSet};

    use super::*;

    #[test]
    fn routes_match_parameters_and_refuse_wrong_methods() {
        let (r, p) = find(&Method::DELETE, "/api/v1/me/sessions/abc").unwrap();
        assert_eq!(
            (r.pattern, r.call, p),
            (
                "/api/v1/me/sessions/{device_id}",
                Call::Session(Erasing::Locked, Signed::EndSession),
                vec!["abc".to_string()]
            )
        );
        let (_, p) = find(&Method::GET, "/api/v1/users/alice%40localhost").unwrap();
        assert_eq!(p, vec!["alice@localhost".to_string()]);
        let (r, _) = find(&Method::GET, "/api/v1/communities/mine").unwrap();
        assert_eq!(
            r.call,
            Call::Session(Erasing::Locked, Signed::Community(Op::Mine))
        );
        assert_eq!(
            find(&Method::POST, "/api/v1/me").unwrap_err().status,
            StatusCode::METHOD_NOT_ALLOWED
        );
        for path in [
            "/api/v1/nothing",
            "/api/v1/users/",
            "/api/v1/users/%zz",
            "/api/v1/me/",
        ] {
            assert_eq!(
                find(&Method::GET, path).unwrap_err().status,
                StatusCode::NOT_FOUND,
                "{path}"
            );
        }
    }

    #[test]
    fn allow_lists_every_method_of_the_path() {
        assert_eq!(allowed("/api/v1/me"), "GET, PATCH");
        assert_eq!(
            allowed("/api/v1/conversations/abc/messages"),
            "DELETE, GET, POST"
        );
        assert_eq!(allowed("/api/v1/me/sessions/dev1"), "DELETE");
        assert_eq!(allowed("/_federation/v1/keys"), "GET");
    }

    #[test]
    fn each_route_is_listed_once_with_its_own_handler() {
        let mut routes = HashSet::new();
        let mut calls = HashSet::new();
        for r in ROUTES {
            assert!(routes.insert((r.method, r.pattern)), "{r:?} twice");
            assert!(calls.insert(r.call), "{:?} serves two routes", r.call);
            assert!(r.pattern.starts_with('/'), "{r:?}");
            assert!(
                r.pattern.matches('{').count() <= 4,
                "{r:?}: at most 4 parameters"
            );
        }
    }

    #[test]
    fn anonymous_routes_count_against_their_groups_limit() {
        let limit = |m: &Method, p: &str| find(m, p).unwrap().0.limit();
        assert_eq!(
            limit(&Method::POST, "/api/v1/accounts"),
            Some(Group::Register)
        );
        assert_eq!(limit(&Method::POST, "/api/v1/sessions"), Some(Group::Login));
        assert_eq!(limit(&Method::GET, "/api/v1/pages/a"), Some(Group::Public));
        assert_eq!(
            limit(&Method::PUT, "/_federation/v1/transactions/t"),
            Some(Group::Federation)
        );
        assert_eq!(limit(&Method::GET, "/health"), None);
        assert_eq!(limit(&Method::GET, "/api/v1/me"), None);
        // Every anonymous route but the health checks is limited.
        for r in ROUTES.iter().filter(|r| r.auth() == Auth::None) {
            assert_eq!(
                r.limit().is_none(),
                r.pattern.starts_with("/health"),
                "{r:?}"
            );
        }
    }

    #[test]
    fn only_the_federation_api_is_called_by_peers() {
        for r in ROUTES {
            assert_eq!(
                r.pattern.starts_with("/_federation/"),
                r.auth() == Auth::Peer,
                "{r:?}"
            );
        }
    }

    #[test]
    fn an_account_waiting_for_erasure_keeps_only_what_lets_it_leave() {
        let open: BTreeSet<_> = ROUTES
            .iter()
            .filter(|r| matches!(r.call, Call::Session(Erasing::Open, _)))
            .map(|r| (r.method(), r.pattern))
            .collect();
        let expected: BTreeSet<_> = [
            ("POST", "/api/v1/me/deletion"),
            ("DELETE", "/api/v1/me/deletion"),
            ("GET", "/api/v1/me"),
            ("POST", "/api/v1/me/export"),
            ("GET", "/api/v1/me/export"),
            ("DELETE", "/api/v1/sessions/current"),
        ]
        .into_iter()
        .collect();
        assert_eq!(open, expected);
    }

    /// What the OpenAPI document says a route needs, from its `security`.
    fn documented_auth(op: &serde_json::Value) -> Result<Auth, String> {
        let bearer = serde_json::json!({"bearer": []});
        let anyone = serde_json::json!({});
        match op.get("security").and_then(|s| s.as_array()) {
            Some(s) if s.is_empty() => Ok(Auth::None),
            Some(s) if s == std::slice::from_ref(&bearer) => Ok(Auth::Session),
            Some(s) if s == &[bearer, anyone] => Ok(Auth::SessionOrFirstFrame),
            other => Err(format!("security {other:?} is not one the table knows")),
        }
    }

    /// The client routes and their authentication as the document states them.
    fn documented(doc: &str) -> BTreeMap<(String, String), Result<Auth, String>> {
        let doc: serde_json::Value = serde_json::from_str(doc).unwrap();
        let mut out = BTreeMap::new();
        for (path, ops) in doc["paths"].as_object().unwrap() {
            for (method, op) in ops.as_object().unwrap() {
                if method == "parameters" {
                    continue;
                }
                out.insert((method.to_uppercase(), path.clone()), documented_auth(op));
            }
        }
        out
    }

    /// Differences between the table and the document: undocumented routes, documented routes
    /// the table lacks, and authentication stated otherwise than the table says.
    fn disagreements(doc: &str) -> Vec<String> {
        let mut documented = documented(doc);
        let mut out = Vec::new();
        for r in ROUTES.iter().filter(|r| r.auth() != Auth::Peer) {
            match documented.remove(&(r.method().to_string(), r.pattern.to_string())) {
                None => out.push(format!("{} {} is not documented", r.method(), r.pattern)),
                Some(Ok(auth)) if auth == r.auth() => {}
                Some(said) => out.push(format!(
                    "{} {}: the document says {said:?}, the table {:?}",
                    r.method(),
                    r.pattern,
                    r.auth()
                )),
            }
        }
        for (method, path) in documented.keys() {
            out.push(format!("{method} {path} is documented but not served"));
        }
        out
    }

    #[test]
    fn the_openapi_document_lists_exactly_the_tables_client_routes_and_their_authentication() {
        let errors = disagreements(super::super::openapi::OPENAPI_JSON);
        assert!(errors.is_empty(), "{}", errors.join("\n"));
    }

    #[test]
    fn the_openapi_check_catches_a_missing_an_extra_and_a_wrongly_secured_route() {
        let mut doc: serde_json::Value =
            serde_json::from_str(super::super::openapi::OPENAPI_JSON).unwrap();
        let paths = doc["paths"].as_object_mut().unwrap();
        paths["/api/v1/me"].as_object_mut().unwrap().remove("patch");
        paths["/api/v1/nearby"]["post"] = serde_json::json!({"security": []});
        paths["/api/v1/policy"]["get"]["security"] = serde_json::json!([{"bearer": []}]);
        paths["/api/v1/conversations"]["get"]["security"] = serde_json::json!([]);
        paths["/api/v1/sync"]["get"]
            .as_object_mut()
            .unwrap()
            .remove("security");
        let mut errors = disagreements(&doc.to_string());
        errors.sort();
        assert_eq!(errors.len(), 5, "{errors:#?}");
        let has = |s: &str| errors.iter().any(|e| e.contains(s));
        assert!(has("PATCH /api/v1/me is not documented"), "{errors:#?}");
        assert!(has("POST /api/v1/nearby is documented but not served"));
        assert!(has("GET /api/v1/policy: the document says Ok(Session)"));
        assert!(has("GET /api/v1/conversations: the document says Ok(None)"));
        assert!(has("GET /api/v1/sync: the document says Err"));
    }

    /// A route whose handler reads a query documents its parameters, and one whose handler
    /// reads none documents none (its query is refused by name).
    #[test]
    fn routes_that_read_a_query_are_the_ones_documenting_query_parameters() {
        let doc: serde_json::Value =
            serde_json::from_str(super::super::openapi::OPENAPI_JSON).unwrap();
        for r in ROUTES.iter().filter(|r| r.auth() != Auth::Peer) {
            let op = &doc["paths"][r.pattern][r.method().to_lowercase()];
            let in_query = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|p| p["in"] == "query");
            assert_eq!(in_query, r.reads_query(), "{} {}", r.method(), r.pattern);
        }
    }
}
