//! The behaviour log's edge (policy 1.4.1, 1.8.1): which community calls are behaviour events,
//! suggested communities, and sharing a post.
//!
//! - After a community call has succeeded, [`noticed`] hands the behaviour log what it was:
//!   joining (or asking to join) a community is a follow, `PUT …/favourite` a favourite,
//!   reading one post or the first page of its comments a view. The log keeps it only with
//!   `personalisation`; a failure to keep it never fails the call.
//! - `GET /api/v1/communities/suggested?limit=N` (1–20, 10 by default) → 200
//!   `{"communities":[Community…]}`: public communities I am not in, ranked from my behaviour;
//!   empty without `personalisation`.
//! - `POST /api/v1/communities/{id}/posts/{post}/share` → 204: I shared a post (the client
//!   copied its link); recorded as a share with `personalisation`, 404 for a post I may not
//!   see.

use http::{Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::json;

use super::body::Incoming;
use super::communities::{Op, community_json};
use super::error::ApiError;
use super::json::{self, Body, no_content, reply};
use super::query::{Params, Whole, read};
use domain::accounts::Session;
use domain::behaviour::{Behaviour, BehaviourError, Event};
use domain::community::{Communities, parse_community_id};

/// `?limit=N`.
#[derive(Debug, Deserialize)]
pub struct SuggestedQuery {
    limit: Option<Whole<1, 20>>,
}

impl Params for SuggestedQuery {
    fn expects(_: &str) -> &'static str {
        "must be 1 to 20"
    }
}

/// The event a successful community call was, if any.
fn event_of(op: Op, params: &[String], query: Option<&str>, status: StatusCode) -> Option<Event> {
    let community = parse_community_id(params.first()?)?;
    let post = || params.get(1).and_then(|p| p.parse::<u64>().ok());
    match op {
        Op::Join if status.is_success() => Some(Event::Follow { community }),
        Op::Favourite => Some(Event::Favourite {
            community,
            post: post()?,
        }),
        Op::Post => Some(Event::View {
            community,
            post: post()?,
        }),
        // Opening a post's comments is reading it; the following pages are not again.
        Op::Comments
            if !form_urlencoded::parse(query.unwrap_or("").as_bytes())
                .any(|(k, v)| k == "after" && v != "0") =>
        {
            Some(Event::View {
                community,
                post: post()?,
            })
        }
        _ => None,
    }
}

/// Hands the behaviour log what a successful community call was (see the module's notes).
pub async fn noticed(
    b: &Behaviour,
    session: &Session,
    op: Op,
    params: &[String],
    query: Option<&str>,
    status: StatusCode,
) {
    if !status.is_success() {
        return;
    }
    if let Some(e) = event_of(op, params, query, status)
        && let Err(err) = b.record(session.user, e).await
    {
        tracing::warn!(error = %err, kind = e.kind(), "a behaviour event was not kept");
    }
}

pub async fn suggested(
    b: &Behaviour,
    communities: &Communities,
    session: &Session,
    query: Option<&str>,
) -> Result<Response<Body>, ApiError> {
    let q: SuggestedQuery = read(query)?;
    let limit = q.limit.map_or(10, |w| w.0) as usize;
    let mut out = Vec::new();
    for n in b.suggested(session.user, limit).await? {
        // Read as I may see it now; one gone or closed since is left out.
        match communities
            .get(session.user, &domain::community::community_id(n))
            .await
        {
            Ok(c) if c.public && c.role.is_none() && c.pending.is_none() => {
                out.push(community_json(&c))
            }
            Ok(_) | Err(domain::community::CommunityError::NotFound) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(reply(StatusCode::OK, &json!({ "communities": out })))
}

pub async fn share(
    b: &Behaviour,
    communities: &Communities,
    session: &Session,
    id: &str,
    post: &str,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    json::discard(req);
    let not_found = || ApiError::not_found("no such community, post or comment");
    let community = parse_community_id(id).ok_or_else(not_found)?;
    let post = (!post.is_empty() && post.len() <= 20 && post.bytes().all(|c| c.is_ascii_digit()))
        .then(|| post.parse::<u64>().ok())
        .flatten()
        .filter(|p| *p > 0)
        .ok_or_else(not_found)?;
    // Only a post I may see can be shared (404 otherwise, as for reading it).
    communities.one_post(session.user, id, post).await?;
    b.record(session.user, Event::Share { community, post })
        .await?;
    Ok(no_content())
}

impl From<BehaviourError> for ApiError {
    fn from(e: BehaviourError) -> Self {
        match e {
            BehaviourError::Store(s) => s.into(),
            BehaviourError::Consent(c) => c.into(),
            other => {
                tracing::error!(error = %other, "the behaviour log failed");
                ApiError::internal()
            }
        }
    }
}
