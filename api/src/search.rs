//! Search and recent searches (policy 1.5, 1.4.1, 1.8.1).
//!
//! - `POST /api/v1/search` `{"query","scopes"?,"limit"?,"cursor"?}` → 200 with one section per
//!   scope asked (`people`, `groups`, `communities`, `posts`, `comments`, `messages`; all by
//!   default), each
//!   `{"items":[…],"next"}`. The query travels in the body, never in the URL (it is personal
//!   data). Highlights are [start, end) offsets in Unicode code points of the text they follow.
//!   `logged` says whether the search went into the user's recent searches (only with
//!   `personalisation`).
//! - `GET /api/v1/me/searches` → 200 `{"searches":[{"query","at"}]}`, newest first.
//! - `DELETE /api/v1/me/searches` → 200 `{"removed"}`.

use http::{Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::body::Incoming;
use super::error::ApiError;
use super::json::{Body, read_json, reply};
use domain::accounts::Session;
use domain::search::{Page, Search, SearchError, Spans};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchBody {
    query: String,
    scopes: Option<Vec<String>>,
    limit: Option<u64>,
    cursor: Option<String>,
}

fn spans(s: &Spans) -> Value {
    s.iter().map(|(a, b)| json!([a, b])).collect()
}

fn page<T>(p: Page<T>, f: impl Fn(T) -> Value) -> Value {
    json!({
        "items": p.items.into_iter().map(f).collect::<Vec<_>>(),
        "next": p.next,
    })
}

pub async fn search(
    search: &Search,
    session: &Session,
    req: Request<Incoming>,
    limit: usize,
) -> Result<Response<Body>, ApiError> {
    let b: SearchBody = read_json(req, limit).await?;
    let r = Search::validate(&b.query, b.scopes, b.limit, b.cursor)?;
    let res = search.search(session, r).await?;
    let mut out = serde_json::Map::new();
    if let Some(p) = res.people {
        out.insert(
            "people".into(),
            page(p, |h| {
                json!({
                    "address": h.handle,
                    "nickname": h.nickname,
                    "address_highlights": spans(&h.handle_spans),
                    "nickname_highlights": spans(&h.nickname_spans),
                })
            }),
        );
    }
    if let Some(p) = res.groups {
        out.insert(
            "groups".into(),
            page(p, |g| {
                json!({
                    "id": g.id,
                    "name": g.name,
                    "public": g.public,
                    "member": g.member,
                    "highlights": spans(&g.spans),
                })
            }),
        );
    }
    if let Some(p) = res.communities {
        out.insert(
            "communities".into(),
            page(p, |c| {
                json!({
                    "id": c.id,
                    "name": c.name,
                    "highlights": spans(&c.name_spans),
                    "description": c.description,
                    "description_highlights": spans(&c.description_spans),
                    "visibility": if c.public { "public" } else { "private" },
                    "member": c.member,
                })
            }),
        );
    }
    if let Some(p) = res.posts {
        out.insert(
            "posts".into(),
            page(p, |h| {
                json!({
                    "community": h.community,
                    "community_name": h.community_name,
                    "id": h.post,
                    "author": h.author,
                    "created": h.created.to_rfc3339(),
                    "snippet": h.snippet,
                    "highlights": spans(&h.spans),
                })
            }),
        );
    }
    if let Some(p) = res.comments {
        out.insert(
            "comments".into(),
            page(p, |h| {
                json!({
                    "community": h.community,
                    "community_name": h.community_name,
                    "post": h.post,
                    "id": h.comment,
                    "author": h.author,
                    "created": h.created.to_rfc3339(),
                    "snippet": h.snippet,
                    "highlights": spans(&h.spans),
                })
            }),
        );
    }
    if let Some(p) = res.messages {
        out.insert(
            "messages".into(),
            page(p, |m| {
                json!({
                    "conversation": m.conversation,
                    "id": format!("{}/{}", m.conversation, m.seq),
                    "seq": m.seq,
                    "ts": m.ts.0,
                    "sender": m.sender,
                    "snippet": m.snippet,
                    "highlights": spans(&m.spans),
                })
            }),
        );
    }
    out.insert("logged".into(), json!(res.logged));
    Ok(reply(StatusCode::OK, &Value::Object(out)))
}

pub async fn recent(search: &Search, session: &Session) -> Result<Response<Body>, ApiError> {
    let list: Vec<Value> = search
        .recent(session.user)
        .await?
        .into_iter()
        .map(|(at, q)| json!({"query": q, "at": at.to_rfc3339()}))
        .collect();
    Ok(reply(StatusCode::OK, &json!({ "searches": list })))
}

pub async fn clear(search: &Search, session: &Session) -> Result<Response<Body>, ApiError> {
    let removed = search.clear_recent(session.user).await?;
    Ok(reply(StatusCode::OK, &json!({ "removed": removed })))
}

impl From<SearchError> for ApiError {
    fn from(e: SearchError) -> Self {
        match e {
            SearchError::Invalid { field, reason } => ApiError::invalid(field, &reason),
            SearchError::Store(s) => s.into(),
            SearchError::Accounts(a) => a.into(),
            SearchError::Consent(c) => c.into(),
            SearchError::Messaging(m) => m.into(),
            other => {
                tracing::error!(error = %other, "search failed");
                ApiError::internal()
            }
        }
    }
}
