//! Communities across nodes (issue 23). A community is hosted by its node, like a group: a
//! user of a partner node reads and writes it *through the host*. Their node sends a signed
//! `community` envelope as the body of a signed `POST /_federation/v1/communities` and the
//! host answers at once (nothing is queued: the host commits before it answers, and the
//! member's client learns the outcome from that answer).
//!
//! - [`CommunityClient`] is the member's side: residency first (451 without
//!   `cross_border_transfer` toward another region, nothing sent), then one `community` line
//!   in the user's disclosure log — before anything is sent, since the bytes may reach the
//!   host even when no answer comes back; it is what makes the user's erasure reach the host
//!   — then the call. When no answer comes (connection refused, reset, timed out), the *same*
//!   envelope is sent again, at most [`RETRY_WAITS`]`.len()` more times after short waits on
//!   the node's clock; any answer the host gives, whatever its status, is final. The whole
//!   call, retries included, ends after `federation.community_call_timeout_ms`.
//! - [`CommunityHost`] is the host's side: it checks the envelope (origin, destination, time,
//!   signature, that the user belongs to the origin), knows the user by a remote id whose
//!   shadow key seals what they write here, applies the community's rules to them as to a
//!   local user (bans and moderation included), and leaves out of its answer what its own
//!   users wrote when their data may not go to the requester's region. A write call (`join`,
//!   `leave`, `post`, `comment`, `favourite`, and editing or deleting a post or comment) is
//!   applied at most once per (origin, envelope id): the write that applies it records it with what it became, in the same commit, and a
//!   repeat — also one arriving while the first is applied (`call_turns.rs`) —
//!   is answered from that, as the post or comment is now (`storage/community_calls.rs`). The
//!   apply runs as a task of its own, so a member that hangs up does not cut it short.
//!
//! The answers' wire shapes are the `Wire*` types here.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use federation::{
    CommunityContent, Envelope, Kind, MAX_ENVELOPE_AGE_MS, NewPostMedia, address_domain,
};
use http::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::call_turns::Turns;
use super::peers::Peer;
use super::{Directory, FedError, Fetcher, Outbox, Peers};
use crate::community::{
    CommentView, Communities, CommunityError, CommunityView, Fetches, LogView, MemberView, NewPost,
    PostChange, PostMedia, PostView, QuoteView,
};
use crate::consents::{Consents, Purpose};
use crate::media::sniff::Class;
use crate::messaging::MediaKind;
use crate::time::{Millis, SharedClock};
use storage::{
    CallKind, CallOutcome, CommunityCall, CommunityRole, ModAction, ModLogRecord, PostVisibility,
    Refusal, RemoteCall, Store, StoreError,
};

/// The path the calls go to.
pub const PATH: &str = "/_federation/v1/communities";
/// How long the member's node waits before sending a call's envelope again when no answer
/// came: one wait per retry.
pub const RETRY_WAITS: [Duration; 2] = [Duration::from_millis(250), Duration::from_secs(1)];
/// Expired calls the host forgets per transaction, and transactions per pruning run.
const PRUNE_BATCH: usize = 512;
const PRUNE_BATCHES: usize = 64;
/// Largest answer or request body, in bytes.
pub const MAX_BODY: usize = 1024 * 1024;
/// Longest error message kept from a host's answer, in characters.
const MAX_HOST_MESSAGE: usize = 300;

/// A community as the host shows it to a remote user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireCommunity {
    pub id: String,
    pub name: String,
    pub description: String,
    pub public: bool,
    pub owner: Option<String>,
    pub created: u64,
    pub role: Option<String>,
    pub pending: Option<String>,
    pub members: u64,
}

/// A post as the host shows it to a remote user: its text and the media it shows (read with
/// `post-media`), never its place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WirePost {
    pub id: u64,
    pub author: String,
    pub created: u64,
    pub edited: Option<u64>,
    pub visibility: String,
    pub text: String,
    pub comments: u64,
    pub favourite: bool,
    /// Left out when there is none, so that a text-only post reads as it did before media
    /// crossed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub media: Vec<WirePostMedia>,
}

/// One media item a post shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WirePostMedia {
    #[serde(rename = "type")]
    pub kind: String,
    pub media_id: String,
    pub name: Option<String>,
}

/// A member, request, invitation or ban as the host shows it (the answer to `members`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireMember {
    pub address: String,
    pub role: Option<String>,
    /// `member`, or `asked`, `invited`, `banned`.
    pub status: String,
    pub since: u64,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireMembers {
    members: Vec<WireMember>,
}

/// A moderation log entry as the host shows it (the answer to `log`): users by address,
/// `null` when erased or kept back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireLogEntry {
    pub seq: u64,
    pub at: u64,
    pub actor: Option<String>,
    pub action: String,
    pub target: Option<String>,
    pub post: Option<u64>,
    pub comment: Option<u64>,
    pub role: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireLog {
    entries: Vec<WireLogEntry>,
}

/// One part of a post's media (the answer to `post-media`): `data` is the part's bytes in
/// standard base64.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireMediaPart {
    pub content_type: String,
    pub size: u64,
    pub parts: u32,
    pub data: String,
}

/// A comment as the host shows it to a remote user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireComment {
    pub id: u64,
    pub post: u64,
    pub author: String,
    pub parent: Option<u64>,
    pub created: u64,
    pub edited: Option<u64>,
    pub text: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireJoined {
    status: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WirePosts {
    posts: Vec<WirePost>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireComments {
    comments: Vec<WireComment>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireDone {}

#[derive(Debug, Deserialize)]
struct WireErrorBody {
    error: WireError,
}

#[derive(Debug, Deserialize)]
struct WireError {
    code: String,
    message: String,
}

/// A community address `<16 hex digits>@<host domain>` split into (id, host); `None` for
/// anything else.
pub fn parse_address(s: &str) -> Option<(String, String)> {
    let (id, host) = s.split_once('@')?;
    crate::community::parse_community_id(id)?;
    federation::valid_domain(host).then(|| (id.to_string(), host.to_string()))
}

fn millis(t: Millis) -> u64 {
    t.0
}

impl WireCommunity {
    fn of(v: &CommunityView) -> Self {
        WireCommunity {
            id: v.id.clone(),
            name: v.name.clone(),
            description: v.description.clone(),
            public: v.public,
            owner: v.owner.clone(),
            created: millis(v.created),
            role: v.role.map(|r| r.name().to_string()),
            pending: v.pending.map(str::to_string),
            members: v.members,
        }
    }

    fn view(self, host: &str) -> Result<CommunityView, FedError> {
        let bad = |m: &str| FedError::Invalid(format!("{host} answered a bad community: {m}"));
        Ok(CommunityView {
            id: format!("{}@{host}", self.id),
            name: crate::shown::text("name", &self.name, 1, crate::community::MAX_NAME_CHARS)
                .map_err(|_| bad("name"))?,
            description: self.description,
            avatar: None,
            public: self.public,
            owner: self.owner.filter(|o| federation::valid_address(o)),
            created: Millis(self.created),
            role: match self.role.as_deref() {
                None => None,
                Some(r) => Some(CommunityRole::parse(r).ok_or_else(|| bad("role"))?),
            },
            pending: match self.pending.as_deref() {
                None => None,
                Some("asked") => Some("asked"),
                Some("invited") => Some("invited"),
                Some("banned") => Some("banned"),
                Some(_) => return Err(bad("pending")),
            },
            members: self.members,
            reachable: true,
        })
    }
}

impl WirePost {
    fn of(p: &PostView) -> Self {
        WirePost {
            id: p.id,
            author: p.author.clone(),
            created: millis(p.created),
            edited: p.edited.map(millis),
            visibility: p.visibility.name().to_string(),
            text: p.text.clone(),
            comments: p.comments,
            favourite: p.favourite,
            media: p
                .media
                .iter()
                .map(|m| WirePostMedia {
                    kind: m.kind.name().to_string(),
                    media_id: m.media_id.clone(),
                    name: m.name.clone(),
                })
                .collect(),
        }
    }

    fn view(self, community: &str, host: &str) -> Result<PostView, FedError> {
        let bad = |m: &str| FedError::Invalid(format!("{host} answered a bad post: {m}"));
        if !federation::valid_address(&self.author) {
            return Err(bad("author"));
        }
        if self.text.chars().count() > crate::community::MAX_POST_CHARS {
            return Err(bad("text"));
        }
        if self.media.len() > crate::community::MAX_POST_MEDIA {
            return Err(bad("media"));
        }
        let media = self
            .media
            .into_iter()
            .map(|m| {
                let kind = MediaKind::parse(&m.kind).ok_or_else(|| bad("media type"))?;
                if !federation::valid_media_id(&m.media_id) {
                    return Err(bad("media id"));
                }
                let name = m
                    .name
                    .map(|n| {
                        crate::shown::text("media.name", &n, 1, 255).map_err(|_| bad("media name"))
                    })
                    .transpose()?;
                Ok(PostMedia {
                    kind,
                    media_id: m.media_id,
                    name,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(PostView {
            id: self.id,
            community: community.to_string(),
            author: self.author,
            created: Millis(self.created),
            edited: self.edited.map(Millis),
            visibility: PostVisibility::parse(&self.visibility).ok_or_else(|| bad("visibility"))?,
            text: self.text,
            media,
            place: None,
            comments: self.comments,
            favourite: self.favourite,
        })
    }
}

impl WireComment {
    fn of(c: &CommentView) -> Self {
        WireComment {
            id: c.id,
            post: c.post,
            author: c.author.clone(),
            parent: c.parent,
            created: millis(c.created),
            edited: c.edited.map(millis),
            text: c.text.clone(),
        }
    }

    fn view(self, host: &str) -> Result<CommentView, FedError> {
        let bad = |m: &str| FedError::Invalid(format!("{host} answered a bad comment: {m}"));
        if !federation::valid_address(&self.author) {
            return Err(bad("author"));
        }
        if self.text.chars().count() > crate::community::MAX_COMMENT_CHARS {
            return Err(bad("text"));
        }
        Ok(CommentView {
            id: self.id,
            post: self.post,
            author: self.author,
            parent: self.parent,
            quote: None::<QuoteView>,
            created: Millis(self.created),
            edited: self.edited.map(Millis),
            text: self.text,
        })
    }
}

impl WireMember {
    fn of(m: &MemberView) -> Self {
        WireMember {
            address: m.address.clone(),
            role: m.role.map(|r| r.name().to_string()),
            status: m.pending.unwrap_or("member").to_string(),
            since: millis(m.since),
        }
    }

    fn view(self, host: &str) -> Result<MemberView, FedError> {
        let bad = |m: &str| FedError::Invalid(format!("{host} answered a bad member: {m}"));
        if !federation::valid_address(&self.address) {
            return Err(bad("address"));
        }
        Ok(MemberView {
            address: self.address,
            role: match self.role.as_deref() {
                None => None,
                Some(r) => Some(CommunityRole::parse(r).ok_or_else(|| bad("role"))?),
            },
            pending: match self.status.as_str() {
                "member" => None,
                "asked" => Some("asked"),
                "invited" => Some("invited"),
                "banned" => Some("banned"),
                _ => return Err(bad("status")),
            },
            since: Millis(self.since),
        })
    }
}

impl WireLogEntry {
    fn of(e: &LogView) -> Self {
        let r = &e.record;
        WireLogEntry {
            seq: r.seq,
            at: millis(r.at),
            actor: e.actor.clone(),
            action: r.action.name().to_string(),
            target: e.target.clone(),
            post: (r.post != 0).then_some(r.post),
            comment: (r.comment != 0).then_some(r.comment),
            role: r.role.map(|x| x.name().to_string()),
        }
    }

    fn view(self, host: &str) -> Result<LogView, FedError> {
        let bad = |m: &str| FedError::Invalid(format!("{host} answered a bad log entry: {m}"));
        let who = |a: Option<String>| match a {
            Some(a) if federation::valid_address(&a) => Ok(Some(a)),
            Some(_) => Err(bad("address")),
            None => Ok(None),
        };
        Ok(LogView {
            record: ModLogRecord {
                seq: self.seq,
                at: Millis(self.at),
                // The host's ids mean nothing here: the entry names people by address.
                actor: 0,
                action: ModAction::parse(&self.action).ok_or_else(|| bad("action"))?,
                target: 0,
                post: self.post.unwrap_or(0),
                comment: self.comment.unwrap_or(0),
                role: match self.role.as_deref() {
                    None => None,
                    Some(r) => Some(CommunityRole::parse(r).ok_or_else(|| bad("role"))?),
                },
            },
            actor: who(self.actor)?,
            target: who(self.target)?,
        })
    }
}

// ---- The member's side ----------------------------------------------------------------------

/// Why a call to a community's host failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The residency rule (or an unknown peer) stopped it before anything was sent.
    #[error("{}", super::refusal_text(.0))]
    Refused(Refusal),
    /// The host could not be reached, or answered something unreadable.
    #[error(transparent)]
    Federation(#[from] FedError),
    /// The host refused: its status and code, and its words (for people).
    #[error("{message}")]
    Host {
        status: u16,
        code: String,
        message: String,
    },
}

/// A member node's calls to the hosts of communities its users read or write remotely.
#[derive(Debug, Clone)]
pub struct CommunityClient {
    peers: Arc<Peers>,
    outbox: Outbox,
    store: Store,
    clock: SharedClock,
    /// The longest one call may take, retries included (`federation.community_call_timeout_ms`).
    deadline: Duration,
}

impl CommunityClient {
    pub fn new(
        peers: Arc<Peers>,
        outbox: Outbox,
        store: Store,
        clock: SharedClock,
        deadline: Duration,
    ) -> Self {
        CommunityClient {
            peers,
            outbox,
            store,
            clock,
            deadline,
        }
    }

    /// Tells the nodes of `tell`'s members (users of other nodes who may see it) of a new post
    /// (`comment` 0) or comment in a community here: one queued `community-event` per node and
    /// at most [`federation::MAX_EVENT_MEMBERS`] of its users, queued in the commit that
    /// forgets the tell was owed (the fan-out step recorded it in its own). A node of another
    /// region is told only when the author's data may go there (`author_crosses`: their
    /// `cross_border_transfer`, or an author who is not of this node), as a read there would
    /// show the post. A failure to queue is logged and the tell stays owed, for the next start.
    pub async fn tell_member_nodes(&self, tell: storage::Tell, author_crosses: bool) {
        let (community, post, comment) = (tell.community, tell.post, tell.comment);
        let people = match self.store.wrapped_keys(tell.members).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "members of other nodes were not told of a post");
                return;
            }
        };
        let mut by_node: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for (_, address, _) in people {
            if let Some(d) = address_domain(&address) {
                by_node.entry(d.to_string()).or_default().push(address);
            }
        }
        let mut rows = Vec::new();
        for (dest, addresses) in by_node {
            let told = match self.peers.get(&dest) {
                Ok(peer) => author_crosses || self.peers.foreign_region(&peer).is_none(),
                Err(_) => false,
            };
            if !told {
                continue;
            }
            for chunk in addresses.chunks(federation::MAX_EVENT_MEMBERS) {
                let content = federation::CommunityEventContent {
                    community: crate::community::community_id(community),
                    post,
                    comment: (comment != 0).then_some(comment),
                    members: chunk.to_vec(),
                };
                match self.outbox.community_event_row(&dest, content) {
                    Ok(row) => rows.push(row),
                    Err(r) => tracing::info!(
                        peer = %dest,
                        reason = %super::refusal_text(&r),
                        "a community event was not queued"
                    ),
                }
            }
        }
        let grown: Vec<String> = rows.iter().map(|r| r.dest.clone()).collect();
        match self
            .store
            .enqueue_told(rows, tell.key, self.clock.now())
            .await
        {
            Ok(_) => self.outbox.wake(&grown),
            Err(e) => tracing::warn!(error = %e, "community events were not queued"),
        }
    }

    /// Whether `host` is this node (its communities are local).
    pub fn is_own(&self, host: &str) -> bool {
        host == self.peers.own_domain()
    }

    /// Sends `content` for local user `user` to `host` and reads the answer as `T`.
    async fn call<T: DeserializeOwned>(
        &self,
        user: u64,
        host: &str,
        content: CommunityContent,
    ) -> Result<T, CallError> {
        // Residency before anything leaves: a peer of another region needs the user's consent.
        self.outbox
            .check_residency(user, &[host.to_string()])
            .await
            .map_err(CallError::Refused)?;
        let peer = self.peers.get(host).map_err(FedError::from)?;
        let env = self
            .outbox
            .envelope(host, Kind::Community, json!(content))
            .map_err(CallError::Refused)?;
        let body = env
            .to_json()
            .map_err(|e| FedError::Invalid(format!("envelope: {e}")))?;
        // The request (the user's address and what they ask or write) may reach the host even
        // if no answer comes back: counted before it is sent, so that the user's erasure is
        // asked of the host too.
        self.store
            .record_transfer(user, host.to_string(), "community", self.clock.now())
            .await
            .map_err(FedError::from)?;
        let (status, answer) = self.send(&peer, Bytes::from(body)).await?;
        let bad = |m: String| FedError::Invalid(format!("{host} answered badly: {m}"));
        if status != StatusCode::OK {
            let e: WireErrorBody = federation::parse_json(&answer)
                .ok()
                .and_then(|v| serde_json::from_value(v).ok())
                .ok_or_else(|| {
                    FedError::Peer(super::PeerError::Status {
                        peer: host.to_string(),
                        status: status.as_u16(),
                    })
                })?;
            return Err(CallError::Host {
                status: status.as_u16(),
                code: e.error.code.chars().take(40).collect(),
                message: e.error.message.chars().take(MAX_HOST_MESSAGE).collect(),
            });
        }
        let v = federation::parse_json(&answer).map_err(|e| bad(e.to_string()))?;
        Ok(serde_json::from_value(v).map_err(|e| bad(e.to_string()))?)
    }

    /// [`CommunityClient::call`] for a write answered with a post: the post as shown here.
    async fn post_call(
        &self,
        user: u64,
        (id, host): (&str, &str),
        c: CommunityContent,
    ) -> Result<PostView, CallError> {
        let p: WirePost = self.call(user, host, c).await?;
        Ok(p.view(&format!("{id}@{host}"), host)?)
    }

    /// [`CommunityClient::call`] for a read answered with a page of posts: at most `limit`,
    /// as shown here.
    async fn page_call(
        &self,
        user: u64,
        (id, host): (&str, &str),
        c: CommunityContent,
        limit: usize,
    ) -> Result<Vec<PostView>, CallError> {
        let page: WirePosts = self.call(user, host, c).await?;
        let shown = format!("{id}@{host}");
        page.posts
            .into_iter()
            .take(limit)
            .map(|p| p.view(&shown, host).map_err(CallError::from))
            .collect()
    }

    /// [`CommunityClient::call`] for a write answered with a comment.
    async fn comment_call(
        &self,
        user: u64,
        host: &str,
        c: CommunityContent,
    ) -> Result<CommentView, CallError> {
        let c: WireComment = self.call(user, host, c).await?;
        Ok(c.view(host)?)
    }

    /// [`CommunityClient::call`] for a write answered with `{}`.
    async fn done_call(&self, user: u64, host: &str, c: CommunityContent) -> Result<(), CallError> {
        let _: WireDone = self.call(user, host, c).await?;
        Ok(())
    }

    /// Sends one envelope to the host and returns its answer, sending the same envelope again
    /// after each of [`RETRY_WAITS`] while no answer comes (the host answers a repeat as the
    /// same call). An answer is never sent again, whatever its status.
    async fn send(&self, peer: &Peer, body: Bytes) -> Result<(StatusCode, Bytes), FedError> {
        let attempts = async {
            let mut waits = RETRY_WAITS.iter();
            loop {
                match self
                    .peers
                    .request(peer, Method::POST, PATH, body.clone())
                    .await
                {
                    Ok(answer) => return Ok(answer),
                    Err(e) => match waits.next() {
                        Some(wait) => self.clock.sleep(*wait).await,
                        None => return Err(e.into()),
                    },
                }
            }
        };
        // A host that takes the connection and then says nothing would otherwise hold the
        // user for every attempt's connect and request timeouts in turn.
        tokio::select! {
            answer = attempts => answer,
            () = self.clock.sleep(self.deadline) => Err(super::PeerError::Unreachable {
                peer: peer.domain.clone(),
                reason: format!("no answer within {} ms", self.deadline.as_millis()),
            }
            .into()),
        }
    }

    pub async fn get(
        &self,
        user: u64,
        address: String,
        id: &str,
        host: &str,
    ) -> Result<CommunityView, CallError> {
        let c = CommunityContent::Get {
            user: address,
            community: id.to_string(),
        };
        Ok(self
            .call::<WireCommunity>(user, host, c)
            .await?
            .view(host)?)
    }

    /// True when `user` is a member now, false when they asked (a private community).
    pub async fn join(
        &self,
        user: u64,
        address: String,
        id: &str,
        host: &str,
    ) -> Result<bool, CallError> {
        let c = CommunityContent::Join {
            user: address,
            community: id.to_string(),
        };
        let j: WireJoined = self.call(user, host, c).await?;
        match j.status.as_str() {
            "member" => Ok(true),
            "asked" => Ok(false),
            _ => Err(FedError::Invalid(format!("{host} answered a bad join")).into()),
        }
    }

    pub async fn leave(
        &self,
        user: u64,
        address: String,
        id: &str,
        host: &str,
    ) -> Result<(), CallError> {
        let c = CommunityContent::Leave {
            user: address,
            community: id.to_string(),
        };
        self.done_call(user, host, c).await
    }

    pub async fn feed(
        &self,
        user: u64,
        address: String,
        (id, host): (&str, &str),
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<PostView>, CallError> {
        let c = CommunityContent::Feed {
            user: address,
            community: id.to_string(),
            before,
            limit: limit as u64,
        };
        self.page_call(user, (id, host), c, limit).await
    }

    /// A page of `user`'s favourites in community `id` of `host`, newest post first.
    pub async fn favourites(
        &self,
        user: u64,
        address: String,
        (id, host): (&str, &str),
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<PostView>, CallError> {
        let c = CommunityContent::Favourites {
            user: address,
            community: id.to_string(),
            before,
            limit: limit as u64,
        };
        self.page_call(user, (id, host), c, limit).await
    }

    pub async fn post(
        &self,
        user: u64,
        address: String,
        (id, host): (&str, &str),
        text: String,
        visibility: Option<String>,
        media: Vec<NewPostMedia>,
    ) -> Result<PostView, CallError> {
        if !media.is_empty() {
            // The host may fetch the files from here once it has the post: allowed before the
            // call, and only where the user's data may go.
            self.outbox
                .check_residency(user, &[host.to_string()])
                .await
                .map_err(CallError::Refused)?;
            let ids = media.iter().map(|m| m.media.id.clone()).collect();
            let offered = self
                .store
                .offer_media(user, ids, host.to_string(), self.clock.now())
                .await
                .map_err(FedError::from)?;
            if !offered {
                // Removed (by retention) since the caller checked it.
                return Err(FedError::NoSuchMedia.into());
            }
        }
        let c = CommunityContent::Post {
            user: address,
            community: id.to_string(),
            text,
            visibility,
            media,
        };
        self.post_call(user, (id, host), c).await
    }

    pub async fn comments(
        &self,
        user: u64,
        address: String,
        (id, host): (&str, &str),
        post: u64,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<CommentView>, CallError> {
        let c = CommunityContent::Comments {
            user: address,
            community: id.to_string(),
            post,
            after,
            limit: limit as u64,
        };
        let page: WireComments = self.call(user, host, c).await?;
        page.comments
            .into_iter()
            .take(limit)
            .map(|c| c.view(host).map_err(CallError::from))
            .collect()
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn comment(
        &self,
        user: u64,
        address: String,
        (id, host): (&str, &str),
        post: u64,
        text: String,
        parent: Option<u64>,
    ) -> Result<CommentView, CallError> {
        let c = CommunityContent::Comment {
            user: address,
            community: id.to_string(),
            post,
            text,
            parent,
        };
        self.comment_call(user, host, c).await
    }

    pub async fn favourite(
        &self,
        user: u64,
        address: String,
        (id, host): (&str, &str),
        post: u64,
        on: bool,
    ) -> Result<(), CallError> {
        let c = CommunityContent::Favourite {
            user: address,
            community: id.to_string(),
            post,
            on,
        };
        self.done_call(user, host, c).await
    }

    /// The author's new text (and visibility, when given) for their post; the post as it is.
    #[allow(clippy::too_many_arguments)]
    pub async fn edit_post(
        &self,
        user: u64,
        address: String,
        (id, host): (&str, &str),
        post: u64,
        text: String,
        visibility: Option<String>,
    ) -> Result<PostView, CallError> {
        let c = CommunityContent::EditPost {
            user: address,
            community: id.to_string(),
            post,
            text,
            visibility,
        };
        self.post_call(user, (id, host), c).await
    }

    /// The members (and for a moderator the requests, invitations and bans), as the host
    /// shows them.
    pub async fn members(
        &self,
        user: u64,
        address: String,
        (id, host): (&str, &str),
    ) -> Result<Vec<MemberView>, CallError> {
        let c = CommunityContent::Members {
            user: address,
            community: id.to_string(),
        };
        let list: WireMembers = self.call(user, host, c).await?;
        list.members
            .into_iter()
            .map(|m| m.view(host).map_err(CallError::from))
            .collect()
    }

    /// A page of the moderation log (moderators only), newest first.
    pub async fn log(
        &self,
        user: u64,
        address: String,
        (id, host): (&str, &str),
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<LogView>, CallError> {
        let c = CommunityContent::Log {
            user: address,
            community: id.to_string(),
            before,
            limit: limit as u64,
        };
        let log: WireLog = self.call(user, host, c).await?;
        log.entries
            .into_iter()
            .take(limit)
            .map(|e| e.view(host).map_err(CallError::from))
            .collect()
    }

    /// A moderator's `action` on the member at `target`, through the host.
    pub async fn moderate(
        &self,
        user: u64,
        address: String,
        (id, host): (&str, &str),
        target: String,
        action: String,
    ) -> Result<(), CallError> {
        let c = CommunityContent::Moderate {
            user: address,
            community: id.to_string(),
            address: target,
            action,
        };
        self.done_call(user, host, c).await
    }

    /// Part `part` of media `media` of post `post`, as the host gives it (checked by the caller
    /// against what it asked: `community::post_media`).
    pub async fn post_media(
        &self,
        user: u64,
        address: String,
        (id, host): (&str, &str),
        post: u64,
        media: String,
        part: u32,
    ) -> Result<WireMediaPart, CallError> {
        let c = CommunityContent::PostMedia {
            user: address,
            community: id.to_string(),
            post,
            media,
            part,
        };
        self.call(user, host, c).await
    }

    pub async fn delete_post(
        &self,
        user: u64,
        address: String,
        (id, host): (&str, &str),
        post: u64,
    ) -> Result<(), CallError> {
        let c = CommunityContent::DeletePost {
            user: address,
            community: id.to_string(),
            post,
        };
        self.done_call(user, host, c).await
    }

    /// The author's new text for their comment; the comment as it is.
    pub async fn edit_comment(
        &self,
        user: u64,
        address: String,
        (id, host): (&str, &str),
        (post, comment): (u64, u64),
        text: String,
    ) -> Result<CommentView, CallError> {
        let c = CommunityContent::EditComment {
            user: address,
            community: id.to_string(),
            post,
            comment,
            text,
        };
        self.comment_call(user, host, c).await
    }

    pub async fn delete_comment(
        &self,
        user: u64,
        address: String,
        (id, host): (&str, &str),
        (post, comment): (u64, u64),
    ) -> Result<(), CallError> {
        let c = CommunityContent::DeleteComment {
            user: address,
            community: id.to_string(),
            post,
            comment,
        };
        self.done_call(user, host, c).await
    }
}

// ---- The host's side ------------------------------------------------------------------------

/// Why the host did not apply a call.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error(transparent)]
    Federation(#[from] FedError),
    #[error(transparent)]
    Community(#[from] CommunityError),
    /// The envelope's id came before with another call (another kind, or other content: 409).
    #[error("this envelope id was already used for another call")]
    Reused,
    /// A repeat of a call begun before whose outcome this host does not know: it stopped or
    /// failed while applying it (409). The call is not applied again.
    #[error(
        "this envelope's call was begun before and whether it was applied is not known here; look before trying again"
    )]
    Unknown,
    /// A repeat of a call whose post or comment has since been removed (410).
    #[error("the post or comment this envelope's call made has since been removed")]
    Removed,
}

/// SHA-256 of a call's content as canonical JSON: what a repeat of its envelope id must match.
fn content_digest(content: &serde_json::Value) -> Result<[u8; 32], FedError> {
    use sha2::Digest;
    let text = federation::canonical_json(content)
        .map_err(|e| FedError::Invalid(format!("content: {e}")))?;
    Ok(sha2::Sha256::digest(text.as_bytes()).into())
}

/// The kind of a write call, `None` for a read (`get`, `feed`, `comments`: nothing to apply
/// twice, nothing remembered).
fn write_kind(c: &CommunityContent) -> Option<CallKind> {
    match c {
        CommunityContent::Join { .. } => Some(CallKind::Join),
        CommunityContent::Leave { .. } => Some(CallKind::Leave),
        CommunityContent::Post { .. } => Some(CallKind::Post),
        CommunityContent::Comment { .. } => Some(CallKind::Comment),
        CommunityContent::Favourite { .. } => Some(CallKind::Favourite),
        CommunityContent::EditPost { .. } => Some(CallKind::EditPost),
        CommunityContent::DeletePost { .. } => Some(CallKind::DeletePost),
        CommunityContent::EditComment { .. } => Some(CallKind::EditComment),
        CommunityContent::DeleteComment { .. } => Some(CallKind::DeleteComment),
        CommunityContent::Moderate { .. } => Some(CallKind::Moderate),
        CommunityContent::Get { .. }
        | CommunityContent::Feed { .. }
        | CommunityContent::Favourites { .. }
        | CommunityContent::Comments { .. }
        | CommunityContent::PostMedia { .. }
        | CommunityContent::Members { .. }
        | CommunityContent::Log { .. } => None,
    }
}

/// The host's answers to remote users' calls.
#[derive(Debug, Clone)]
pub struct CommunityHost {
    communities: Communities,
    directory: Directory,
    peers: Arc<Peers>,
    consents: Consents,
    store: Store,
    clock: SharedClock,
    turns: Turns,
    /// Brings here the files members of other nodes post.
    fetcher: Fetcher,
    /// The largest file this node takes (`media.max_bytes`).
    max_media_bytes: u64,
}

impl CommunityHost {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        communities: Communities,
        directory: Directory,
        peers: Arc<Peers>,
        consents: Consents,
        store: Store,
        clock: SharedClock,
        fetcher: Fetcher,
        max_media_bytes: u64,
    ) -> Self {
        CommunityHost {
            communities,
            directory,
            peers,
            consents,
            store,
            clock,
            turns: Turns::default(),
            fetcher,
            max_media_bytes,
        }
    }

    /// The files of a new post by `user`, a member of node `origin`: checked (held by that
    /// node, within this node's limit, of a type its kind allows), as the post shows them
    /// (each the local id of its copy) and the fetches that bring them here.
    fn incoming_media(
        &self,
        origin: &str,
        user: u64,
        media: &[NewPostMedia],
    ) -> Result<(Vec<PostMedia>, Fetches), HostError> {
        if media.len() > crate::community::MAX_POST_MEDIA {
            return Err(CommunityError::Invalid {
                field: "media",
                reason: format!("at most {} items", crate::community::MAX_POST_MEDIA),
            }
            .into());
        }
        let now = self.clock.now();
        let mut shown = Vec::with_capacity(media.len());
        let mut fetches = Vec::with_capacity(media.len());
        for m in media {
            let bad = |f: &str| FedError::Invalid(format!("post media: {f}"));
            let kind = MediaKind::parse(&m.kind).ok_or_else(|| bad("type"))?;
            let name = match &m.name {
                Some(n) => {
                    Some(crate::shown::text("media.name", n, 1, 255).map_err(|_| bad("name"))?)
                }
                None => None,
            };
            let sha256 = super::media_ref::check(&m.media, origin, self.max_media_bytes).map_err(
                |e| match e {
                    super::media_ref::RefError::Malformed(_) => HostError::from(bad(&e.reason())),
                    super::media_ref::RefError::TooLarge(_) => CommunityError::Invalid {
                        field: "media",
                        reason: e.reason(),
                    }
                    .into(),
                },
            )?;
            kind.purpose(Class::of(&m.media.content_type))
                .map_err(|reason| CommunityError::Invalid {
                    field: "media.type",
                    reason,
                })?;
            let local = super::media_ref::remote_media_id(origin, &m.media.id);
            fetches.push((
                local.clone(),
                super::media_ref::fetch_job(&m.media, sha256, user, now),
            ));
            shown.push(PostMedia {
                kind,
                media_id: local,
                name,
            });
        }
        Ok((shown, fetches))
    }

    /// Checks the envelope in `body` from the authenticated `origin` and applies it; the
    /// answer's JSON.
    pub async fn answer(&self, origin: &str, body: &[u8]) -> Result<serde_json::Value, HostError> {
        let bad = |m: String| FedError::Invalid(m);
        let value = federation::parse_json(body).map_err(|e| bad(e.to_string()))?;
        let env = Envelope::from_value(value).map_err(|e| bad(e.to_string()))?;
        if env.origin != origin {
            return Err(bad("the envelope's origin is not the signed request's".into()).into());
        }
        if env.destination != self.peers.own_domain() {
            return Err(FedError::Forbidden("addressed to another node".into()).into());
        }
        if env.kind != Kind::Community {
            return Err(bad("the envelope's kind must be community".into()).into());
        }
        if !env.fresh_at(self.clock.now().0) {
            return Err(bad("the envelope's ts is outside the accepted window".into()).into());
        }
        super::inbox::verify_envelope(&self.peers, &env).await?;
        let content: CommunityContent =
            serde_json::from_value(env.content.clone()).map_err(|e| bad(e.to_string()))?;
        let address = content.user().to_string();
        if !federation::valid_address(&address) || address_domain(&address) != Some(origin) {
            return Err(FedError::Forbidden(
                "the user is not a user of the envelope's origin".into(),
            )
            .into());
        }
        if crate::community::parse_community_id(content.community()).is_none() {
            return Err(CommunityError::NotFound.into());
        }
        let (user, _) = self.directory.ensure(&address).await?;
        let Some(kind) = write_kind(&content) else {
            return self.read(origin, user, content).await;
        };
        // A write: in a task of its own, so that a member hanging up (its answer lost) does not
        // stop it between applying and settling.
        let host = self.clone();
        let expires = Millis(env.ts.saturating_add(MAX_ENVELOPE_AGE_MS));
        let digest = content_digest(&env.content)?;
        let (origin, id) = (origin.to_string(), env.id);
        tokio::spawn(async move {
            let call = RemoteCall {
                origin,
                id,
                kind,
                expires,
                digest,
            };
            host.write_once(call, user, content).await
        })
        .await
        // Only a panic ends the task otherwise: answered as an internal failure.
        .map_err(|_| FedError::Store(StoreError::Worker))?
    }

    /// Answers a read call.
    async fn read(
        &self,
        origin: &str,
        user: u64,
        content: CommunityContent,
    ) -> Result<serde_json::Value, HostError> {
        let c = &self.communities;
        let foreign = self.foreign(origin)?;
        Ok(match content {
            CommunityContent::Get { community, .. } => {
                let mut v = c.get(user, &community).await?;
                if let Some(o) = v.owner.clone()
                    && !self.releases(foreign, &o, &mut HashMap::new()).await?
                {
                    v.owner = None;
                }
                json!(WireCommunity::of(&v))
            }
            CommunityContent::Feed {
                community,
                before,
                limit,
                ..
            } => {
                let posts = c
                    .feed(user, &community, before, limit.clamp(1, 100) as usize)
                    .await?;
                let posts = self.keep(foreign, posts, |p| &p.author).await?;
                self.count(origin, posts.iter().map(|p| p.author.as_str()))
                    .await?;
                json!(WirePosts {
                    posts: posts.iter().map(WirePost::of).collect()
                })
            }
            CommunityContent::Favourites {
                community,
                before,
                limit,
                ..
            } => {
                let posts = c
                    .favourites_in(user, &community, before, limit.clamp(1, 100) as usize)
                    .await?;
                let posts = self.keep(foreign, posts, |p| &p.author).await?;
                self.count(origin, posts.iter().map(|p| p.author.as_str()))
                    .await?;
                json!(WirePosts {
                    posts: posts.iter().map(WirePost::of).collect()
                })
            }
            CommunityContent::Comments {
                community,
                post,
                after,
                limit,
                ..
            } => {
                let list = c
                    .comments(user, &community, post, after, limit.clamp(1, 100) as usize)
                    .await?;
                let list = self.keep(foreign, list, |x| &x.author).await?;
                self.count(origin, list.iter().map(|x| x.author.as_str()))
                    .await?;
                json!(WireComments {
                    comments: list.iter().map(WireComment::of).collect()
                })
            }
            CommunityContent::PostMedia {
                community,
                post,
                media,
                part,
                ..
            } => {
                let (author, p) = c
                    .post_media_part(user, &community, post, &media, part)
                    .await?;
                // Kept back as the post itself would be.
                if !self.releases(foreign, &author, &mut HashMap::new()).await? {
                    return Err(CommunityError::NotFound.into());
                }
                // Counted once, when the last part leaves.
                if part + 1 == p.parts {
                    self.count(origin, std::iter::once(author.as_str())).await?;
                }
                use base64::Engine;
                json!(WireMediaPart {
                    content_type: p.content_type,
                    size: p.size,
                    parts: p.parts,
                    data: base64::engine::general_purpose::STANDARD.encode(&p.bytes),
                })
            }
            CommunityContent::Members { community, .. } => {
                let list = c.members(user, &community).await?;
                let list = self.keep(foreign, list, |m| &m.address).await?;
                self.count(origin, list.iter().map(|m| m.address.as_str()))
                    .await?;
                json!(WireMembers {
                    members: list.iter().map(WireMember::of).collect()
                })
            }
            CommunityContent::Log {
                community,
                before,
                limit,
                ..
            } => {
                let mut entries = c
                    .log(user, &community, before, limit.clamp(1, 100) as usize)
                    .await?;
                // Who may not be named toward that region is left unnamed.
                let mut seen = HashMap::new();
                let named: Vec<String> = entries
                    .iter()
                    .flat_map(|e| [e.actor.clone(), e.target.clone()])
                    .flatten()
                    .collect();
                for a in named {
                    self.releases(foreign, &a, &mut seen).await?;
                }
                let hidden = |a: &Option<String>| {
                    a.as_ref()
                        .is_some_and(|a| seen.get(a.as_str()) == Some(&false))
                };
                for e in &mut entries {
                    if hidden(&e.actor) {
                        e.actor = None;
                    }
                    if hidden(&e.target) {
                        e.target = None;
                    }
                }
                let shown: Vec<String> = entries
                    .iter()
                    .flat_map(|e| [e.actor.clone(), e.target.clone()])
                    .flatten()
                    .collect();
                self.count(origin, shown.iter().map(String::as_str)).await?;
                json!(WireLog {
                    entries: entries.iter().map(WireLogEntry::of).collect()
                })
            }
            CommunityContent::Moderate { .. }
            | CommunityContent::Join { .. }
            | CommunityContent::Leave { .. }
            | CommunityContent::Post { .. }
            | CommunityContent::Comment { .. }
            | CommunityContent::Favourite { .. }
            | CommunityContent::EditPost { .. }
            | CommunityContent::DeletePost { .. }
            | CommunityContent::EditComment { .. }
            | CommunityContent::DeleteComment { .. } => {
                return Err(FedError::Invalid("not a read call".into()).into());
            }
        })
    }

    /// Applies write call `id` from `origin` unless it was applied before, and answers it from
    /// what it became — the first time and for every repeat alike.
    async fn write_once(
        &self,
        call: RemoteCall,
        user: u64,
        content: CommunityContent,
    ) -> Result<serde_json::Value, HostError> {
        let _turn = self.turns.enter(&call.origin, &call.id).await;
        let known = self
            .store
            .community_call(call.origin.clone(), call.id.clone())
            .await
            .map_err(FedError::from)?;
        let origin = call.origin.clone();
        let outcome = match known {
            Some(CommunityCall { kind: k, .. }) if k != call.kind => {
                return Err(HostError::Reused);
            }
            // The same id with other content: not a repeat of that call.
            Some(CommunityCall {
                digest: Some(d), ..
            }) if d != call.digest => return Err(HostError::Reused),
            Some(known) => known.outcome,
            None => self.apply(user, &content, call).await?,
        };
        // The files of a new post, fetched from the member's node (again after a repeat: a
        // fetch already running or done is left alone).
        if let CommunityContent::Post { media, .. } = &content {
            for m in media {
                self.fetcher
                    .fetch(super::media_ref::remote_media_id(&origin, &m.media.id));
            }
        }
        self.answer_of(user, &content, outcome).await
    }

    /// Applies write call `call` for `user`, recorded with what it became by the write that
    /// applies it; what it became.
    async fn apply(
        &self,
        user: u64,
        content: &CommunityContent,
        call: RemoteCall,
    ) -> Result<CallOutcome, HostError> {
        let c = &self.communities;
        let origin = call.origin.clone();
        let call = Some(call);
        Ok(match content.clone() {
            CommunityContent::Join { community, .. } => {
                CallOutcome::Joined(c.join_with(user, &community, call).await?)
            }
            CommunityContent::Leave { community, .. } => {
                c.leave_with(user, &community, call).await?;
                CallOutcome::Done
            }
            CommunityContent::Post {
                community,
                text,
                visibility,
                media,
                ..
            } => {
                let (media, fetches) = self.incoming_media(&origin, user, &media)?;
                let new = NewPost {
                    text,
                    media,
                    visibility,
                    place: None,
                };
                CallOutcome::Post(c.add_post(user, &community, new, fetches, call).await?)
            }
            CommunityContent::Comment {
                community,
                post,
                text,
                parent,
                ..
            } => {
                let made = c
                    .add_comment(user, &community, post, &text, parent, None, call)
                    .await?;
                CallOutcome::Comment(post, made)
            }
            CommunityContent::Favourite {
                community,
                post,
                on,
                ..
            } => {
                c.set_favourite_with(user, &community, post, on, call)
                    .await?;
                CallOutcome::Done
            }
            CommunityContent::EditPost {
                community,
                post,
                text,
                visibility,
                ..
            } => {
                let change = PostChange {
                    text: Some(text),
                    media: None,
                    visibility,
                    place: None,
                };
                c.edit_post_with(user, &community, post, change, call)
                    .await?;
                CallOutcome::Post(post)
            }
            CommunityContent::DeletePost {
                community, post, ..
            } => {
                c.delete_post_with(user, &community, post, call).await?;
                CallOutcome::Done
            }
            CommunityContent::EditComment {
                community,
                post,
                comment,
                text,
                ..
            } => {
                c.edit_comment_with(user, &community, (post, comment), &text, call)
                    .await?;
                CallOutcome::Comment(post, comment)
            }
            CommunityContent::DeleteComment {
                community,
                post,
                comment,
                ..
            } => {
                c.delete_comment_with(user, &community, (post, comment), call)
                    .await?;
                CallOutcome::Done
            }
            CommunityContent::Moderate {
                community,
                address,
                action,
                ..
            } => {
                c.moderate_with(user, &community, &address, &action, call)
                    .await?;
                CallOutcome::Done
            }
            CommunityContent::Get { .. }
            | CommunityContent::Feed { .. }
            | CommunityContent::Favourites { .. }
            | CommunityContent::Comments { .. }
            | CommunityContent::PostMedia { .. }
            | CommunityContent::Members { .. }
            | CommunityContent::Log { .. } => {
                return Err(CommunityError::Conflict("not a write call").into());
            }
        })
    }

    /// The answer to a write call that became `outcome`: a post or comment as `user` sees it
    /// now ([`HostError::Removed`] once it is gone).
    async fn answer_of(
        &self,
        user: u64,
        content: &CommunityContent,
        outcome: CallOutcome,
    ) -> Result<serde_json::Value, HostError> {
        let c = &self.communities;
        let gone = |e: CommunityError| match e {
            CommunityError::NotFound => HostError::Removed,
            other => other.into(),
        };
        Ok(match outcome {
            CallOutcome::Pending => return Err(HostError::Unknown),
            CallOutcome::Done => json!(WireDone {}),
            CallOutcome::Joined(member) => json!(WireJoined {
                status: if member { "member" } else { "asked" }.into()
            }),
            CallOutcome::Post(p) => {
                let v = c
                    .one_post(user, content.community(), p)
                    .await
                    .map_err(gone)?;
                json!(WirePost::of(&v))
            }
            CallOutcome::Comment(p, made) => {
                let v = c
                    .one_comment(user, content.community(), p, made)
                    .await
                    .map_err(gone)?;
                json!(WireComment::of(&v))
            }
        })
    }

    /// Forgets the calls whose envelopes are too old to be accepted any more, in bounded
    /// batches (the node's maintenance step); how many.
    pub async fn forget_expired_calls(&self) -> Result<usize, StoreError> {
        let now = self.clock.now();
        let mut total = 0;
        for _ in 0..PRUNE_BATCHES {
            let n = self.store.prune_community_calls(now, PRUNE_BATCH).await?;
            total += n;
            if n < PRUNE_BATCH {
                break;
            }
        }
        Ok(total)
    }

    /// Whether `origin` is of another region than this node (or of none known).
    fn foreign(&self, origin: &str) -> Result<bool, FedError> {
        let peer = self.peers.get(origin)?;
        Ok(self.peers.foreign_region(&peer).is_some())
    }

    /// Whether what `address` wrote may go to the peer: always when the peer is of this
    /// node's region or `address` is not of this node; otherwise only with that user's
    /// `cross_border_transfer`. `seen` remembers the answers per address.
    async fn releases(
        &self,
        foreign: bool,
        address: &str,
        seen: &mut HashMap<String, bool>,
    ) -> Result<bool, FedError> {
        if !foreign {
            return Ok(true);
        }
        let Some(handle) = address.strip_suffix(&format!("@{}", self.peers.own_domain())) else {
            return Ok(true);
        };
        if let Some(ok) = seen.get(address) {
            return Ok(*ok);
        }
        let ok = match self.store.user_by_handle(handle.to_string()).await? {
            Some(id) => self
                .consents
                .require(id, Purpose::CrossBorderTransfer)
                .await
                .is_ok(),
            None => false,
        };
        seen.insert(address.to_string(), ok);
        Ok(ok)
    }

    /// `list` without what the peer may not receive (see [`CommunityHost::releases`]).
    async fn keep<T>(
        &self,
        foreign: bool,
        list: Vec<T>,
        author: impl Fn(&T) -> &str,
    ) -> Result<Vec<T>, FedError> {
        let mut seen = HashMap::new();
        let mut out = Vec::with_capacity(list.len());
        for x in list {
            if self.releases(foreign, author(&x), &mut seen).await? {
                out.push(x);
            }
        }
        Ok(out)
    }

    /// One `community` line in the disclosure log of each of this node's users whose posts or
    /// comments an answer carries to `origin`.
    async fn count<'a>(
        &self,
        origin: &str,
        authors: impl Iterator<Item = &'a str>,
    ) -> Result<(), FedError> {
        let own = format!("@{}", self.peers.own_domain());
        let mut handles: Vec<&str> = authors
            .filter_map(|a| a.strip_suffix(own.as_str()))
            .collect();
        handles.sort_unstable();
        handles.dedup();
        for h in handles {
            if let Some(id) = self.store.user_by_handle(h.to_string()).await? {
                self.store
                    .record_transfer(id, origin.to_string(), "community", self.clock.now())
                    .await?;
            }
        }
        Ok(())
    }
}
