//! Communities (小组) under `/api/v1/communities…`: finding and creating communities, joining
//! and leaving, members and moderation with the community's log, posts, comments, favourites
//! and feeds. Community ids are 16 hex digits; post and comment ids are integers. A community,
//! post or comment the user may not see is 404, the same as one that does not exist.
//!
//! Shapes (the OpenAPI document has them in full): `Community`, `Post`, `Comment`,
//! `CommunityMember`, `ModerationEntry`; pages are `{"posts":[…],"next":N|null}`, where `next`
//! is the `before` of the following page.

use http::{Request, Response, StatusCode};
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};

use super::body::Incoming;
use super::error::ApiError;
use super::json::{self, Body, no_content, read_json, reply};
use super::query::{Params, Whole, read};
use domain::accounts::Session;
use domain::community::{
    Across, CommentView, Communities, CommunityError, CommunityView, FeedCursor, LogView,
    MemberView, NewPost, PostChange, PostMedia, PostView, SettingsChange,
};
use domain::messaging::MediaKind;

/// Page sizes: 1 to this, 20 by default.
const MAX_PAGE: u64 = 100;
const DEFAULT_PAGE: u64 = 20;

/// `Some(None)` for an explicit null, `None` for an absent field.
fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    name: String,
    #[serde(default)]
    description: String,
    avatar: Option<String>,
    visibility: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    name: Option<String>,
    description: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    avatar: Option<Option<String>>,
    visibility: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ModerationBody {
    address: String,
    action: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MediaBody {
    #[serde(rename = "type")]
    kind: String,
    media_id: String,
    name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PostBody {
    #[serde(default)]
    text: String,
    #[serde(default)]
    media: Vec<MediaBody>,
    visibility: Option<String>,
    place: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PostPatch {
    text: Option<String>,
    media: Option<Vec<MediaBody>>,
    visibility: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    place: Option<Option<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CommentBody {
    text: String,
    parent: Option<u64>,
    quote: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CommentPatch {
    text: String,
}

fn media(list: Vec<MediaBody>) -> Result<Vec<PostMedia>, ApiError> {
    list.into_iter()
        .map(|m| {
            Ok(PostMedia {
                kind: MediaKind::parse(&m.kind).ok_or_else(|| {
                    ApiError::invalid("media.type", "must be image, voice, video or file")
                })?,
                media_id: m.media_id,
                name: m.name,
            })
        })
        .collect()
}

pub(super) fn community_json(c: &CommunityView) -> Value {
    json!({
        "id": c.id,
        "name": c.name,
        "description": c.description,
        "avatar": c.avatar,
        "visibility": if c.public { "public" } else { "private" },
        "owner": c.owner,
        "created": c.created.to_rfc3339(),
        "role": c.role.map(|r| r.name()),
        "pending": c.pending,
        "members": c.members,
        "reachable": c.reachable,
    })
}

fn post_json(p: &PostView) -> Value {
    json!({
        "id": p.id,
        "community": p.community,
        "author": p.author,
        "created": p.created.to_rfc3339(),
        "edited": p.edited.map(|t| t.to_rfc3339()),
        "visibility": p.visibility.name(),
        "text": p.text,
        "media": p.media.iter().map(|m| json!({
            "type": m.kind.name(), "media_id": m.media_id, "name": m.name,
        })).collect::<Vec<_>>(),
        "place": p.place,
        "comments": p.comments,
        "favourite": p.favourite,
    })
}

/// The export's shape of a post (the same as the API's).
pub fn export_post(p: &PostView) -> Value {
    post_json(p)
}

/// The export's shape of a comment (the same as the API's).
pub fn export_comment(c: &CommentView) -> Value {
    comment_json(c)
}

fn comment_json(c: &CommentView) -> Value {
    json!({
        "id": c.id,
        "post": c.post,
        "author": c.author,
        "parent": c.parent,
        "quote": c.quote.as_ref().map(|q| json!({
            "comment": q.comment,
            "author": q.shown.as_ref().map(|s| s.0.clone()),
            "text": q.shown.as_ref().map(|s| s.1.clone()),
        })),
        "created": c.created.to_rfc3339(),
        "edited": c.edited.map(|t| t.to_rfc3339()),
        "text": c.text,
    })
}

fn member_json(m: &MemberView) -> Value {
    json!({
        "address": m.address,
        "role": m.role.map(|r| r.name()),
        "status": m.pending.unwrap_or("member"),
        "since": m.since.to_rfc3339(),
    })
}

fn log_json(e: &LogView) -> Value {
    let r = &e.record;
    json!({
        "seq": r.seq,
        "at": r.at.to_rfc3339(),
        "actor": e.actor,
        "action": r.action.name(),
        "target": e.target,
        "post": (r.post != 0).then_some(r.post),
        "comment": (r.comment != 0).then_some(r.comment),
        "role": r.role.map(|x| x.name()),
    })
}

fn page(posts: &[PostView], limit: u64) -> Value {
    let next = (posts.len() as u64 >= limit)
        .then(|| posts.last().map(|p| p.id))
        .flatten();
    json!({
        "posts": posts.iter().map(post_json).collect::<Vec<_>>(),
        "next": next,
    })
}

fn number(s: &str) -> Result<u64, ApiError> {
    (!s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse::<u64>().ok())
        .flatten()
        .filter(|n| *n > 0)
        .ok_or_else(|| ApiError::not_found("no such community, post or comment"))
}

/// A page size: 1 to [`MAX_PAGE`], [`DEFAULT_PAGE`] by default.
type Limit = Option<Whole<1, MAX_PAGE>>;
const LIMIT_REASON: &str = "must be 1 to 100";

fn limit(l: Limit) -> u64 {
    l.map_or(DEFAULT_PAGE, |w| w.0)
}

/// `GET /api/v1/communities?q=TEXT&after=CURSOR&limit=N`.
#[derive(Debug, Deserialize)]
pub struct BrowseQuery {
    q: Option<String>,
    after: Option<String>,
    limit: Limit,
}

impl Params for BrowseQuery {
    fn expects(name: &str) -> &'static str {
        match name {
            "limit" => LIMIT_REASON,
            _ => "must be text",
        }
    }
}

/// A page of posts or log entries, newest first: `?before=N&limit=N`.
#[derive(Debug, Deserialize)]
pub struct PageQuery {
    before: Option<Whole<1>>,
    limit: Limit,
}

impl Params for PageQuery {
    fn expects(name: &str) -> &'static str {
        match name {
            "limit" => LIMIT_REASON,
            _ => "must be a post or entry number",
        }
    }
}

// A feed cursor fits in a request target with the path around it.
const _: () = assert!(domain::community::MAX_CURSOR_LEN + 64 < crate::MAX_URI_BYTES);

/// A page of my feed: `?cursor=C&limit=N` across nodes, or `?before=N&limit=N` of this node's
/// communities only.
#[derive(Debug, Deserialize)]
pub struct FeedQuery {
    before: Option<Whole<1>>,
    cursor: Option<String>,
    limit: Limit,
}

impl Params for FeedQuery {
    fn expects(name: &str) -> &'static str {
        match name {
            "limit" => LIMIT_REASON,
            "cursor" => "must be the cursor of an earlier page",
            _ => "must be a post number",
        }
    }
}

/// A page of comments, oldest first: `?after=N&limit=N`.
#[derive(Debug, Deserialize)]
pub struct CommentsQuery {
    after: Option<Whole>,
    limit: Limit,
}

impl Params for CommentsQuery {
    fn expects(name: &str) -> &'static str {
        match name {
            "limit" => LIMIT_REASON,
            _ => "must be a comment number",
        }
    }
}

/// The community routes, one per row of the route table (`http/mod.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Browse,
    Create,
    Mine,
    MyFeed,
    Favourites,
    Get,
    Update,
    Join,
    Leave,
    Members,
    Moderate,
    Log,
    Posts,
    NewPost,
    Post,
    EditPost,
    DeletePost,
    Comments,
    NewComment,
    EditComment,
    DeleteComment,
    Favourite,
    Unfavourite,
    PostMedia,
}

impl Op {
    /// Whether the route reads a query string (the others take none).
    pub fn reads_query(self) -> bool {
        matches!(
            self,
            Op::Browse | Op::MyFeed | Op::Favourites | Op::Log | Op::Posts | Op::Comments
        )
    }
}

/// A page of my feed or my favourites: across nodes by `cursor`, or this node's alone by
/// `before` (as before partner nodes' communities were in them).
async fn across_page(
    c: &Communities,
    user: u64,
    list: Across,
    q: FeedQuery,
) -> Result<Response<Body>, ApiError> {
    let n = limit(q.limit);
    if let Some(before) = q.before {
        if q.cursor.is_some() {
            return Err(ApiError::invalid(
                "cursor",
                "goes without `before`: one pages across nodes, the other this node only",
            ));
        }
        let posts = match list {
            Across::Feed => c.my_feed(user, Some(before.0), n as usize).await?,
            Across::Favourites => c.favourites(user, Some(before.0), n as usize).await?,
        };
        return Ok(reply(StatusCode::OK, &page(&posts, n)));
    }
    let cursor =
        match q.cursor.as_deref() {
            None => None,
            Some(s) => Some(FeedCursor::parse(s).ok_or_else(|| {
                ApiError::invalid("cursor", "must be the cursor of an earlier page")
            })?),
        };
    let (posts, next) = c.across(user, list, cursor, n as usize).await?;
    // `next` pages this node's posts only: given while no post of another node is in.
    let local = posts.iter().all(|p| !p.community.contains('@'));
    let mut v = page(&posts, n);
    if !local {
        v["next"] = Value::Null;
    }
    v["cursor"] = next.map(|c| c.encode()).into();
    Ok(reply(StatusCode::OK, &v))
}

/// Answers every `/api/v1/communities…` route.
pub async fn route(
    c: &Communities,
    session: &Session,
    op: Op,
    params: &[String],
    query: Option<&str>,
    req: Request<Incoming>,
    max_body: usize,
) -> Result<Response<Body>, ApiError> {
    let user = session.user;
    let id = params.first().map(String::as_str).unwrap_or("");
    let post = || number(params.get(1).map(String::as_str).unwrap_or(""));
    let comment = || number(params.get(2).map(String::as_str).unwrap_or(""));
    match op {
        Op::Browse => {
            let q: BrowseQuery = read(query)?;
            if q.q.as_ref().is_some_and(|s| s.chars().count() > 100) {
                return Err(ApiError::invalid("q", "must be at most 100 characters"));
            }
            let list = c
                .browse(
                    user,
                    q.q.as_deref(),
                    q.after.as_deref(),
                    limit(q.limit) as usize,
                )
                .await?;
            Ok(reply(
                StatusCode::OK,
                &json!({"communities": list.iter().map(community_json).collect::<Vec<_>>()}),
            ))
        }
        Op::Create => {
            let b: CreateBody = read_json(req, max_body).await?;
            let v = c
                .create(
                    user,
                    &b.name,
                    &b.description,
                    b.avatar.as_deref(),
                    &b.visibility,
                )
                .await?;
            Ok(reply(StatusCode::CREATED, &community_json(&v)))
        }
        Op::Mine => {
            let list = c.mine(user).await?;
            Ok(reply(
                StatusCode::OK,
                &json!({"communities": list.iter().map(community_json).collect::<Vec<_>>()}),
            ))
        }
        Op::MyFeed => across_page(c, user, Across::Feed, read(query)?).await,
        Op::Favourites => across_page(c, user, Across::Favourites, read(query)?).await,
        Op::Get => Ok(reply(
            StatusCode::OK,
            &community_json(&c.get(user, id).await?),
        )),
        Op::Update => {
            let b: UpdateBody = read_json(req, max_body).await?;
            let v = c
                .update(
                    user,
                    id,
                    SettingsChange {
                        name: b.name,
                        description: b.description,
                        avatar: b.avatar,
                        visibility: b.visibility,
                    },
                )
                .await?;
            Ok(reply(StatusCode::OK, &community_json(&v)))
        }
        Op::Join => {
            json::discard(req);
            let member = c.join(user, id).await?;
            Ok(reply(
                if member {
                    StatusCode::OK
                } else {
                    StatusCode::ACCEPTED
                },
                &json!({"status": if member { "member" } else { "asked" }}),
            ))
        }
        Op::Leave => {
            json::discard(req);
            c.leave(user, id).await?;
            Ok(no_content())
        }
        Op::Members => {
            let list = c.members(user, id).await?;
            Ok(reply(
                StatusCode::OK,
                &json!({"members": list.iter().map(member_json).collect::<Vec<_>>()}),
            ))
        }
        Op::Moderate => {
            let b: ModerationBody = read_json(req, max_body).await?;
            c.moderate(user, id, &b.address, &b.action).await?;
            Ok(no_content())
        }
        Op::Log => {
            let q: PageQuery = read(query)?;
            let n = limit(q.limit);
            let entries = c.log(user, id, q.before.map(|w| w.0), n as usize).await?;
            let next = (entries.len() as u64 >= n)
                .then(|| entries.last().map(|e| e.record.seq))
                .flatten();
            Ok(reply(
                StatusCode::OK,
                &json!({"entries": entries.iter().map(log_json).collect::<Vec<_>>(), "next": next}),
            ))
        }
        Op::Posts => {
            let q: PageQuery = read(query)?;
            let n = limit(q.limit);
            let posts = c.feed(user, id, q.before.map(|w| w.0), n as usize).await?;
            Ok(reply(StatusCode::OK, &page(&posts, n)))
        }
        Op::NewPost => {
            let b: PostBody = read_json(req, max_body).await?;
            let v = c
                .post(
                    user,
                    id,
                    NewPost {
                        text: b.text,
                        media: media(b.media)?,
                        visibility: b.visibility,
                        place: b.place,
                    },
                )
                .await?;
            Ok(reply(StatusCode::CREATED, &post_json(&v)))
        }
        Op::Post => Ok(reply(
            StatusCode::OK,
            &post_json(&c.one_post(user, id, post()?).await?),
        )),
        Op::EditPost => {
            let p = post()?;
            let b: PostPatch = read_json(req, max_body).await?;
            let change = PostChange {
                text: b.text,
                media: b.media.map(media).transpose()?,
                visibility: b.visibility,
                place: b.place,
            };
            Ok(reply(
                StatusCode::OK,
                &post_json(&c.edit_post(user, id, p, change).await?),
            ))
        }
        Op::DeletePost => {
            c.delete_post(user, id, post()?).await?;
            Ok(no_content())
        }
        Op::Comments => {
            let q: CommentsQuery = read(query)?;
            let n = limit(q.limit);
            let after = q.after.map(|w| w.0);
            let list = c.comments(user, id, post()?, after, n as usize).await?;
            let next = (list.len() as u64 >= n)
                .then(|| list.last().map(|x| x.id))
                .flatten();
            Ok(reply(
                StatusCode::OK,
                &json!({"comments": list.iter().map(comment_json).collect::<Vec<_>>(), "next": next}),
            ))
        }
        Op::NewComment => {
            let p = post()?;
            let b: CommentBody = read_json(req, max_body).await?;
            let v = c.comment(user, id, p, &b.text, b.parent, b.quote).await?;
            Ok(reply(StatusCode::CREATED, &comment_json(&v)))
        }
        Op::EditComment => {
            let (p, n) = (post()?, comment()?);
            let b: CommentPatch = read_json(req, max_body).await?;
            let v = c.edit_comment(user, id, p, n, &b.text).await?;
            Ok(reply(StatusCode::OK, &comment_json(&v)))
        }
        Op::DeleteComment => {
            c.delete_comment(user, id, post()?, comment()?).await?;
            Ok(no_content())
        }
        Op::Favourite => {
            json::discard(req);
            c.set_favourite(user, id, post()?, true).await?;
            Ok(no_content())
        }
        Op::Unfavourite => {
            c.set_favourite(user, id, post()?, false).await?;
            Ok(no_content())
        }
        Op::PostMedia => {
            let media = params.get(2).map(String::as_str).unwrap_or("");
            let r = c.post_media(user, id, post()?, media).await?;
            let (t, size) = (r.content_type.clone(), r.size);
            Ok(super::media::streamed(&t, size, r))
        }
    }
}

/// A refusal from the host of a community of another node, as this node answers its client:
/// the host's own refusals keep their status and code; anything else from it is 502.
fn remote_error(e: domain::federate::CallError) -> ApiError {
    use domain::federate::CallError;
    match e {
        CallError::Refused(r) => r.into(),
        CallError::Federation(f) => f.into(),
        CallError::Host {
            status,
            code,
            message,
        } => {
            let (status, code) = match (status, code.as_str()) {
                // 410: a repeat of this call (its first answer lost) found its post or
                // comment removed since.
                (404 | 410, _) => (StatusCode::NOT_FOUND, "not_found"),
                (403, "banned") => (StatusCode::FORBIDDEN, "banned"),
                (403, "forbidden") => (StatusCode::FORBIDDEN, "forbidden"),
                (409, _) => (StatusCode::CONFLICT, "conflict"),
                (503, "media_arriving") => return arriving(message),
                (422, _) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_field"),
                _ => {
                    return ApiError::new(
                        StatusCode::BAD_GATEWAY,
                        "peer_refused",
                        format!("the community's host answered {status}"),
                    );
                }
            };
            ApiError::new(status, code, message)
        }
    }
}

/// 503 `media_arriving`: a file still being fetched from another node; ask again after
/// `Retry-After`.
fn arriving(message: String) -> ApiError {
    let mut e = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "media_arriving", message);
    e.retry_after = Some(super::media::ARRIVING_RETRY_SECS);
    e
}

impl From<CommunityError> for ApiError {
    fn from(e: CommunityError) -> Self {
        match e {
            CommunityError::Invalid { field, reason } => ApiError::invalid(field, &reason),
            CommunityError::NotFound => ApiError::not_found(e.to_string()),
            CommunityError::Forbidden(m) => ApiError::new(StatusCode::FORBIDDEN, "forbidden", m),
            CommunityError::Banned => ApiError::new(StatusCode::FORBIDDEN, "banned", e.to_string()),
            CommunityError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "conflict", m),
            CommunityError::Arriving => arriving(e.to_string()),
            CommunityError::Consent(c) => c.into(),
            CommunityError::Store(s) => s.into(),
            CommunityError::Remote(r) => remote_error(r),
            other => {
                tracing::error!(error = %other, "community handling failed");
                ApiError::internal()
            }
        }
    }
}
