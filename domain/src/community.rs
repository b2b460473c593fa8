//! `Communities`: communities (小组, 1.3.3.a–c) — creating and finding them, joining (public at
//! once; private by invitation or a moderator's approval), roles and moderation with the
//! community's own log, posts with text and media (the same purposes as messages: photos,
//! microphone, camera, by the media's sniffed type), a place label only with `precise_location`,
//! comments one level deep with quotes by reference, favourites, and feeds paged by number.
//!
//! Post and comment texts and places are sealed under their author's data key, so erasing the
//! author shreds every copy; who may see a post is decided by one rule,
//! `storage::community::may_see`, inside the read that lists it (search checks its hits with
//! the same rule, through `Store::posts_seen_by` and `Store::communities_read_by`).
//!
//! Across nodes (issue 23): a community is hosted by its node. A community of another node is
//! named `<id>@<host>`; reading it, joining it, posting, commenting and favouriting in it go
//! to the host through `federate::CommunityClient` (residency first). On the host, a remote
//! user is known by a remote id whose shadow data key seals what they write, so every rule
//! here (bans, moderation, visibility) applies to them as to a local user.

mod merged_feed;
mod post_media;

pub use merged_feed::{Across, FeedCursor, MAX_CURSOR_LEN};
pub use post_media::{MediaPart, PostMediaReader};

use std::collections::HashMap;
use std::sync::Arc;

use crate::consents::{ConsentError, Consents, Purpose};
use crate::crypto::{self, CryptoError, MasterKey, SecretKey};
use crate::federate::{CallError, CommunityClient};
use crate::hub::Hub;
use crate::media::sniff::Class;
use crate::messaging::MediaKind;
use crate::time::{Millis, SharedClock};
use storage::{
    CommentRecord, CommunityEdit, CommunityFacts, CommunityRefusal, CommunityRole, Dec, Enc,
    FANOUT_BATCH, Joined, MemberRow, ModLogRecord, Moderation, PostEdit, PostRecord,
    PostVisibility, REMOTE_USER_BIT, RemoteCall, RemoteMembership, Store, StoreError,
};

/// Longest community name, in characters.
pub const MAX_NAME_CHARS: usize = 40;
/// How long "my communities" waits for the hosts of those of other nodes.
pub const REMOTE_LIST_WAIT: std::time::Duration = std::time::Duration::from_secs(3);
/// Longest description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 500;
/// Longest post text, in characters.
pub const MAX_POST_CHARS: usize = 10_000;
/// Longest comment, in characters.
pub const MAX_COMMENT_CHARS: usize = 2_000;
/// Longest place label, in characters.
pub const MAX_PLACE_CHARS: usize = 60;
/// Most media items on one post.
pub const MAX_POST_MEDIA: usize = 9;

/// A community's id on the wire: its random number as 16 hex digits.
pub fn community_id(n: u64) -> String {
    format!("{n:016x}")
}

/// The number of a wire community id; None for anything else.
pub fn parse_community_id(s: &str) -> Option<u64> {
    if s.len() != 16 || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    u64::from_str_radix(s, 16).ok().filter(|n| *n != 0)
}

/// Errors of communities.
#[derive(Debug, thiserror::Error)]
pub enum CommunityError {
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    /// No such community, post or comment, or one the user may not see: the same answer.
    #[error("no such community, post or comment")]
    NotFound,
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0}")]
    Conflict(&'static str),
    #[error("you are banned from this community")]
    Banned,
    /// A file of a post by a member of another node, still being fetched from their node.
    #[error("this file is still arriving from the node it was posted from")]
    Arriving,
    #[error(transparent)]
    Consent(#[from] ConsentError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// A call to the host of a community of another node failed or was refused there.
    #[error(transparent)]
    Remote(#[from] CallError),
}

impl From<CommunityRefusal> for CommunityError {
    fn from(r: CommunityRefusal) -> Self {
        match r {
            CommunityRefusal::NotFound => CommunityError::NotFound,
            CommunityRefusal::Forbidden(m) => CommunityError::Forbidden(m),
            CommunityRefusal::Conflict(m) => CommunityError::Conflict(m),
            CommunityRefusal::Banned => CommunityError::Banned,
        }
    }
}

/// The copies a post by a member of another node needs brought here: (the local id of each
/// copy, the job that fetches it from the member's node).
pub type Fetches = Vec<(String, storage::FetchJob)>;

fn invalid(field: &'static str, reason: impl Into<String>) -> CommunityError {
    CommunityError::Invalid {
        field,
        reason: reason.into(),
    }
}

/// A community of another node as its member's node last knew it (see
/// [`CommunityView::reachable`]).
fn last_known(m: RemoteMembership) -> CommunityView {
    CommunityView {
        name: if m.name.is_empty() {
            m.address.clone()
        } else {
            m.name
        },
        id: m.address,
        description: String::new(),
        avatar: None,
        public: false,
        owner: None,
        created: m.joined,
        role: None,
        pending: None,
        members: 0,
        reachable: false,
    }
}

/// A community as one user sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommunityView {
    pub id: String,
    pub name: String,
    pub description: String,
    pub avatar: Option<String>,
    pub public: bool,
    pub owner: Option<String>,
    pub created: Millis,
    pub role: Option<CommunityRole>,
    pub pending: Option<&'static str>,
    pub members: u64,
    /// False only in [`Communities::mine`], for a community of another node whose host did not
    /// answer in time: then only `id` and `name` (as the host last told it) are known, and the
    /// rest are placeholders (no role, nothing pending, no members, `created` the time the user
    /// joined).
    pub reachable: bool,
}

/// One media item of a post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostMedia {
    pub kind: MediaKind,
    pub media_id: String,
    pub name: Option<String>,
}

/// A post as a viewer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostView {
    pub id: u64,
    pub community: String,
    pub author: String,
    pub created: Millis,
    pub edited: Option<Millis>,
    pub visibility: PostVisibility,
    pub text: String,
    pub media: Vec<PostMedia>,
    pub place: Option<String>,
    pub comments: u64,
    pub favourite: bool,
}

/// A quoted comment: its text while it exists (read from the original each time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuoteView {
    pub comment: u64,
    /// (author, text); None once the quoted comment is gone.
    pub shown: Option<(String, String)>,
}

/// A comment as a viewer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommentView {
    pub id: u64,
    pub post: u64,
    pub author: String,
    pub parent: Option<u64>,
    pub quote: Option<QuoteView>,
    pub created: Millis,
    pub edited: Option<Millis>,
    pub text: String,
}

/// A member, request, invitation or ban, for the members list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberView {
    pub address: String,
    pub role: Option<CommunityRole>,
    pub pending: Option<&'static str>,
    pub since: Millis,
}

/// A moderation log entry with users named (None: erased since).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogView {
    pub record: ModLogRecord,
    pub actor: Option<String>,
    pub target: Option<String>,
}

/// What a new post holds, as the client sent it.
#[derive(Debug, Clone, Default)]
pub struct NewPost {
    pub text: String,
    pub media: Vec<PostMedia>,
    pub visibility: Option<String>,
    pub place: Option<String>,
}

/// An author's change: `None` keeps what is there; `place: Some(None)` removes the place.
#[derive(Debug, Clone, Default)]
pub struct PostChange {
    pub text: Option<String>,
    pub media: Option<Vec<PostMedia>>,
    pub visibility: Option<String>,
    pub place: Option<Option<String>>,
}

/// A settings change.
#[derive(Debug, Clone, Default)]
pub struct SettingsChange {
    pub name: Option<String>,
    pub description: Option<String>,
    pub avatar: Option<Option<String>>,
    pub visibility: Option<String>,
}

/// The plaintext of a post body: its text and media.
struct Body {
    text: String,
    media: Vec<PostMedia>,
}

impl Body {
    fn encode(&self) -> Vec<u8> {
        let mut e = Enc::new(1).str(&self.text).u64(self.media.len() as u64);
        for m in &self.media {
            e = e.str(m.kind.name()).str(&m.media_id);
            e = match &m.name {
                Some(n) => e.bool(true).str(n),
                None => e.bool(false),
            };
        }
        e.finish()
    }
    fn decode(b: &[u8]) -> Result<Body, StoreError> {
        let mut d = Dec::new(b, "post body", 1)?;
        let text = d.string()?;
        let n = d.u64()?;
        let mut media = Vec::new();
        for _ in 0..n.min(MAX_POST_MEDIA as u64) {
            let kind = MediaKind::parse(&d.string()?).ok_or(StoreError::Corrupt("post body"))?;
            let media_id = d.string()?;
            let name = if d.bool()? { Some(d.string()?) } else { None };
            media.push(PostMedia {
                kind,
                media_id,
                name,
            });
        }
        d.end()?;
        Ok(Body { text, media })
    }
}

/// The text of a post, opened with its author's data key (search indexes it).
pub fn post_text(key: &SecretKey, post: &PostRecord) -> Result<String, CommunityError> {
    Ok(Body::decode(&key.open(&post_aad(post.id, "body"), &post.body_sealed)?)?.text)
}

/// The text of a comment, opened with its author's data key (search indexes it).
pub fn comment_text(key: &SecretKey, c: &CommentRecord) -> Result<String, CommunityError> {
    String::from_utf8(key.open(&comment_aad(c.id), &c.text_sealed)?)
        .map_err(|_| StoreError::Corrupt("comment").into())
}

fn post_aad(id: u64, part: &str) -> Vec<u8> {
    format!("shanliao/community/post/{id}/{part}").into_bytes()
}

fn comment_aad(id: u64) -> Vec<u8> {
    format!("shanliao/community/comment/{id}/text").into_bytes()
}

fn seal_err(_: CryptoError) -> StoreError {
    StoreError::Corrupt("community seal")
}

/// Text that is the author's own content: trimmed, `max` characters at most, no control
/// characters but line breaks and tabs.
fn content(field: &'static str, t: &str, max: usize) -> Result<String, CommunityError> {
    let t = t.trim();
    if t.chars().count() > max {
        return Err(invalid(field, format!("must be at most {max} characters")));
    }
    if t.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(invalid(field, "must not hold control characters"));
    }
    Ok(t.to_string())
}

fn shown(field: &'static str, t: &str, min: usize, max: usize) -> Result<String, CommunityError> {
    crate::shown::text(field, t, min, max).map_err(|e| invalid(field, e.reason))
}

fn visibility(v: &str) -> Result<PostVisibility, CommunityError> {
    PostVisibility::parse(v)
        .ok_or_else(|| invalid("visibility", "must be members, friends or public"))
}

/// The communities service.
#[derive(Debug, Clone)]
pub struct Communities {
    store: Store,
    master: MasterKey,
    consents: Consents,
    hub: Arc<Hub>,
    clock: SharedClock,
    domain: String,
    remote: CommunityClient,
}

impl Communities {
    pub fn new(
        store: Store,
        master: MasterKey,
        consents: Consents,
        hub: Arc<Hub>,
        clock: SharedClock,
        domain: String,
        remote: CommunityClient,
    ) -> Self {
        Communities {
            store,
            master,
            consents,
            hub,
            clock,
            domain,
            remote,
        }
    }

    /// (id, host) when `id` names a community of another node (`<id>@<host>`).
    fn remote_of(&self, id: &str) -> Option<(String, String)> {
        crate::federate::parse_community_address(id).filter(|(_, host)| !self.remote.is_own(host))
    }

    fn wake(&self, (users, pos): (Vec<u64>, u64)) {
        if !users.is_empty() {
            self.hub.publish(&users, pos);
        }
    }

    /// Writes a new post's or comment's events, a bounded batch of members per transaction,
    /// waking each batch's users as it commits and telling the nodes of its members of other
    /// nodes who may see it (after that commit, best effort).
    async fn fan_out(&self, job: u64) -> Result<(), StoreError> {
        let mut author_crosses = None;
        while let Some(a) = self.store.fan_out_step(job, FANOUT_BATCH).await? {
            self.wake((a.users, a.pos));
            let Some(tell) = a.tell else {
                continue;
            };
            // Whether what the author wrote may go to a node of another region, asked once.
            let crosses = match author_crosses {
                Some(c) => c,
                None => {
                    let c = self.author_crosses(tell.author).await;
                    author_crosses = Some(c);
                    c
                }
            };
            self.remote.tell_member_nodes(tell, crosses).await;
        }
        Ok(())
    }

    /// Whether what `author` wrote may go to a node of another region: their
    /// `cross_border_transfer`, or an author who is not of this node.
    async fn author_crosses(&self, author: u64) -> bool {
        author & REMOTE_USER_BIT != 0
            || self
                .consents
                .require(author, Purpose::CrossBorderTransfer)
                .await
                .is_ok()
    }

    /// Finishes the fan-out of posts and comments stored before a stop cut it short, and
    /// tells the nodes a step had found but a stop kept from being told.
    pub async fn resume_fan_out(&self) -> Result<(), StoreError> {
        for tell in self.store.owed_tells().await? {
            let crosses = self.author_crosses(tell.author).await;
            self.remote.tell_member_nodes(tell, crosses).await;
        }
        for job in self.store.fan_out_jobs().await? {
            self.fan_out(job).await?;
        }
        Ok(())
    }

    /// (address, data key) of each user that still has a key.
    async fn people(
        &self,
        users: Vec<u64>,
    ) -> Result<HashMap<u64, (String, Option<SecretKey>)>, CommunityError> {
        let mut users = users;
        users.sort_unstable();
        users.dedup();
        let mut out = HashMap::new();
        for (u, handle, wrapped) in self.store.wrapped_keys(users).await? {
            let address = if handle.contains('@') {
                handle
            } else {
                format!("{handle}@{}", self.domain)
            };
            let key = self.master.unwrap_data_key(u, &wrapped).ok();
            out.insert(u, (address, key));
        }
        Ok(out)
    }

    async fn resolve(&self, field: &'static str, address: &str) -> Result<u64, CommunityError> {
        let (handle, domain) = address
            .rsplit_once('@')
            .ok_or_else(|| invalid(field, "must be an address handle@domain"))?;
        if domain != self.domain {
            // A member from a partner node is known here by the id their calls made.
            return self
                .store
                .remote_user_id(address.to_string())
                .await?
                .ok_or_else(|| invalid(field, "no such user known to this node"));
        }
        self.store
            .user_by_handle(handle.to_string())
            .await?
            .ok_or_else(|| invalid(field, "no such user on this node"))
    }

    fn id(s: &str) -> Result<u64, CommunityError> {
        parse_community_id(s).ok_or(CommunityError::NotFound)
    }

    async fn view(&self, f: CommunityFacts) -> Result<CommunityView, CommunityError> {
        Ok(self.views(vec![f]).await?.remove(0))
    }

    async fn views(&self, list: Vec<CommunityFacts>) -> Result<Vec<CommunityView>, CommunityError> {
        let people = self
            .people(list.iter().map(|f| f.community.owner).collect())
            .await?;
        Ok(list
            .into_iter()
            .map(|f| CommunityView {
                id: community_id(f.community.id),
                owner: people.get(&f.community.owner).map(|p| p.0.clone()),
                name: f.community.name,
                description: f.community.description,
                avatar: f.community.avatar,
                public: f.community.public,
                created: f.community.created,
                role: f.role,
                pending: f.pending,
                members: f.members,
                reachable: true,
            })
            .collect())
    }

    /// Checks an avatar: media the user uploaded that is an image.
    async fn avatar(&self, user: u64, media: &str) -> Result<(), CommunityError> {
        let t = self
            .store
            .media_type(media.to_string(), user)
            .await?
            .ok_or_else(|| invalid("avatar", "is not media you uploaded"))?;
        if Class::of(&t) != Class::Image {
            return Err(invalid("avatar", "must be an image"));
        }
        self.consents.require(user, Purpose::Photos).await?;
        Ok(())
    }

    /// Creates a community owned by `user`.
    pub async fn create(
        &self,
        user: u64,
        name: &str,
        description: &str,
        avatar: Option<&str>,
        visibility: &str,
    ) -> Result<CommunityView, CommunityError> {
        let name = shown("name", name, 1, MAX_NAME_CHARS)?;
        let description = content("description", description, MAX_DESCRIPTION_CHARS)?;
        let public = match visibility {
            "public" => true,
            "private" => false,
            _ => return Err(invalid("visibility", "must be public or private")),
        };
        if let Some(a) = avatar {
            self.avatar(user, a).await?;
        }
        let now = self.clock.now();
        for _ in 0..4 {
            let mut b = [0u8; 8];
            crypto::random_bytes(&mut b)?;
            let id = u64::from_be_bytes(b);
            if self
                .store
                .create_community(
                    id,
                    name.clone(),
                    description.clone(),
                    avatar.map(str::to_string),
                    public,
                    user,
                    now,
                )
                .await?
            {
                let f = self
                    .store
                    .community_for(id, user)
                    .await?
                    .ok_or(CommunityError::NotFound)?;
                return self.view(f).await;
            }
        }
        Err(StoreError::Corrupt("community numbers").into())
    }

    /// A community `user` may know of.
    pub async fn get(&self, user: u64, id: &str) -> Result<CommunityView, CommunityError> {
        if let Some((c, host)) = self.remote_of(id) {
            let me = self.address_of(user).await?;
            return Ok(self.remote.get(user, me, &c, &host).await?);
        }
        let f = self
            .store
            .community_for(Self::id(id)?, user)
            .await?
            .ok_or(CommunityError::NotFound)?;
        self.view(f).await
    }

    /// Public communities, optionally those whose name or description holds `q`.
    pub async fn browse(
        &self,
        user: u64,
        q: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<CommunityView>, CommunityError> {
        let after = match after {
            Some(a) => {
                parse_community_id(a).ok_or_else(|| invalid("after", "must be a community id"))?
            }
            None => 0,
        };
        let q = q
            .map(str::trim)
            .filter(|q| !q.is_empty())
            .map(str::to_string);
        let list = self.store.public_communities(user, q, after, limit).await?;
        self.views(list).await
    }

    /// The communities `user` is a member of (or asked to join, for those of other nodes):
    /// this node's, then those of other nodes as their hosts show them now, asked of all hosts
    /// at once. A host that does not answer within [`REMOTE_LIST_WAIT`] leaves its community
    /// listed as last known ([`CommunityView::reachable`] false); one that says the user is no
    /// longer a member (refused, banned) leaves it out.
    pub async fn mine(&self, user: u64) -> Result<Vec<CommunityView>, CommunityError> {
        let list = self.store.communities_of(user).await?;
        let mut views = self.views(list).await?;
        let remote = self.store.remote_communities(user).await?;
        if remote.is_empty() {
            return Ok(views);
        }
        let me = self.address_of(user).await?;
        let asked = remote
            .into_iter()
            .map(|m| self.remote_listed(user, me.clone(), m));
        views.extend(
            futures_util::future::join_all(asked)
                .await
                .into_iter()
                .flatten(),
        );
        Ok(views)
    }

    /// [`Communities::mine`] as this node knows it, asking no host: those of other nodes as
    /// last known (for the export).
    pub async fn mine_here(&self, user: u64) -> Result<Vec<CommunityView>, CommunityError> {
        let list = self.store.communities_of(user).await?;
        let mut views = self.views(list).await?;
        let remote = self.store.remote_communities(user).await?;
        views.extend(remote.into_iter().map(last_known));
        Ok(views)
    }

    /// How `user`'s community of another node shows in [`Communities::mine`], if at all.
    async fn remote_listed(
        &self,
        user: u64,
        me: String,
        m: RemoteMembership,
    ) -> Option<CommunityView> {
        let (c, host) = self.remote_of(&m.address)?;
        let last_known = last_known(m);
        let wait = self.clock.sleep(REMOTE_LIST_WAIT);
        let answer = tokio::select! {
            r = self.remote.get(user, me, &c, &host) => r,
            _ = wait => return Some(last_known),
        };
        match answer {
            Ok(v) if v.role.is_some() || matches!(v.pending, Some("asked" | "invited")) => {
                // Kept as last known, for when the host does not answer.
                if v.name != last_known.name
                    && let Err(e) = self
                        .store
                        .rename_remote_community(user, last_known.id.clone(), v.name.clone())
                        .await
                {
                    tracing::warn!(error = %e, "a community of another node kept its old name");
                }
                Some(v)
            }
            // The host says they are not a member (any more): refused, banned, or the
            // community is gone. The note goes, so it stops counting toward the limit.
            Ok(_)
            | Err(CallError::Host {
                status: 403 | 404 | 410,
                ..
            }) => {
                if let Err(e) = self
                    .store
                    .forget_remote_community(user, last_known.id)
                    .await
                {
                    tracing::warn!(error = %e, "a community of another node was not forgotten");
                }
                None
            }
            Err(_) => Some(last_known),
        }
    }

    /// The owner changes name, description, avatar or visibility.
    pub async fn update(
        &self,
        user: u64,
        id: &str,
        change: SettingsChange,
    ) -> Result<CommunityView, CommunityError> {
        let c = Self::id(id)?;
        let mut edit = CommunityEdit::default();
        if let Some(n) = &change.name {
            edit.name = Some(shown("name", n, 1, MAX_NAME_CHARS)?);
        }
        if let Some(d) = &change.description {
            edit.description = Some(content("description", d, MAX_DESCRIPTION_CHARS)?);
        }
        if let Some(v) = &change.visibility {
            edit.public = Some(match v.as_str() {
                "public" => true,
                "private" => false,
                _ => return Err(invalid("visibility", "must be public or private")),
            });
        }
        if let Some(a) = &change.avatar {
            if let Some(m) = a {
                // Only a member may learn the community exists before being told it is not theirs.
                self.get(user, id).await?;
                self.avatar(user, m).await?;
            }
            edit.avatar = Some(a.clone());
        }
        self.store
            .update_community(c, user, edit, self.clock.now())
            .await??;
        self.get(user, id).await
    }

    /// Joins (public), accepts an invitation, or asks to join (private). True when a member now.
    pub async fn join(&self, user: u64, id: &str) -> Result<bool, CommunityError> {
        self.join_with(user, id, None).await
    }

    /// [`Communities::join`], recording a remote user's `call` with what it became.
    pub(crate) async fn join_with(
        &self,
        user: u64,
        id: &str,
        call: Option<RemoteCall>,
    ) -> Result<bool, CommunityError> {
        if let Some((c, host)) = self.remote_of(id) {
            return self.join_remote(user, id, &c, &host).await;
        }
        let c = Self::id(id)?;
        let r = self
            .store
            .join_community(c, user, self.clock.now(), call)
            .await??;
        Ok(r == Joined::Member)
    }

    /// Joins community `c` of `host` (its address `id`) through the host, and notes it among
    /// the user's communities with the name the host gives it.
    async fn join_remote(
        &self,
        user: u64,
        id: &str,
        c: &str,
        host: &str,
    ) -> Result<bool, CommunityError> {
        if !self
            .store
            .remote_community_room(user, id.to_string())
            .await?
        {
            return Err(CommunityError::Conflict(
                "you belong to as many communities of other nodes as one may",
            ));
        }
        let me = self.address_of(user).await?;
        let member = self.remote.join(user, me.clone(), c, host).await?;
        // The name is for listing only: without it the community is listed by its address.
        let name = match self.remote.get(user, me, c, host).await {
            Ok(v) => v.name,
            Err(_) => String::new(),
        };
        self.store
            .note_remote_community(user, id.to_string(), name, self.clock.now())
            .await?;
        Ok(member)
    }

    pub async fn leave(&self, user: u64, id: &str) -> Result<(), CommunityError> {
        self.leave_with(user, id, None).await
    }

    /// [`Communities::leave`], recording a remote user's `call`.
    pub(crate) async fn leave_with(
        &self,
        user: u64,
        id: &str,
        call: Option<RemoteCall>,
    ) -> Result<(), CommunityError> {
        if let Some((c, host)) = self.remote_of(id) {
            let me = self.address_of(user).await?;
            self.remote.leave(user, me, &c, &host).await?;
            self.store
                .forget_remote_community(user, id.to_string())
                .await?;
            return Ok(());
        }
        Ok(self
            .store
            .leave_community(Self::id(id)?, user, call)
            .await??)
    }

    /// A moderator's action on the user at `address`.
    pub async fn moderate(
        &self,
        user: u64,
        id: &str,
        address: &str,
        action: &str,
    ) -> Result<(), CommunityError> {
        if let Some((c, host)) = self.remote_of(id) {
            if !federation::valid_address(address) {
                return Err(invalid("address", "must be an address handle@domain"));
            }
            let me = self.address_of(user).await?;
            return Ok(self
                .remote
                .moderate(
                    user,
                    me,
                    (&c, &host),
                    address.to_string(),
                    action.to_string(),
                )
                .await?);
        }
        self.moderate_with(user, id, address, action, None).await
    }

    /// [`Communities::moderate`] in a community here, recording a remote moderator's `call`.
    pub(crate) async fn moderate_with(
        &self,
        user: u64,
        id: &str,
        address: &str,
        action: &str,
        call: Option<RemoteCall>,
    ) -> Result<(), CommunityError> {
        let c = Self::id(id)?;
        // A non-member learns nothing, not even whether the address exists.
        self.get(user, id).await?;
        let target = self.resolve("address", address).await?;
        let m = match action {
            "admit" => Moderation::Admit(target),
            "reject" => Moderation::Reject(target),
            "remove" => Moderation::RemoveMember(target),
            "ban" => Moderation::Ban(target),
            "unban" => Moderation::Unban(target),
            "moderator" => Moderation::SetRole(target, CommunityRole::Moderator),
            "member" => Moderation::SetRole(target, CommunityRole::Member),
            _ => {
                return Err(invalid(
                    "action",
                    "must be admit, reject, remove, ban, unban, moderator or member",
                ));
            }
        };
        Ok(self
            .store
            .moderate(c, user, m, self.clock.now(), call)
            .await??)
    }

    /// Members (and, for moderators, requests, invitations and bans).
    pub async fn members(&self, user: u64, id: &str) -> Result<Vec<MemberView>, CommunityError> {
        if let Some((c, host)) = self.remote_of(id) {
            let me = self.address_of(user).await?;
            return Ok(self.remote.members(user, me, (&c, &host)).await?);
        }
        let rows: Vec<MemberRow> = self
            .store
            .community_members(Self::id(id)?, user)
            .await?
            .ok_or(CommunityError::NotFound)?;
        let people = self.people(rows.iter().map(|r| r.user).collect()).await?;
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                Some(MemberView {
                    address: people.get(&r.user)?.0.clone(),
                    role: r.role,
                    pending: r.pending,
                    since: r.since,
                })
            })
            .collect())
    }

    /// The moderation log, newest first (moderators only; others get NotFound or Forbidden).
    pub async fn log(
        &self,
        user: u64,
        id: &str,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<LogView>, CommunityError> {
        if let Some((c, host)) = self.remote_of(id) {
            let me = self.address_of(user).await?;
            return Ok(self
                .remote
                .log(user, me, (&c, &host), before, limit)
                .await?);
        }
        let c = Self::id(id)?;
        let Some(entries) = self
            .store
            .moderation_log(c, user, before.unwrap_or(u64::MAX), limit)
            .await?
        else {
            self.get(user, id).await?;
            return Err(CommunityError::Forbidden(
                "only the community's moderators read its log",
            ));
        };
        let people = self
            .people(entries.iter().flat_map(|e| [e.actor, e.target]).collect())
            .await?;
        let name = |u: u64| {
            (u != 0)
                .then(|| people.get(&u).map(|p| p.0.clone()))
                .flatten()
        };
        Ok(entries
            .into_iter()
            .map(|record| LogView {
                actor: name(record.actor),
                target: name(record.target),
                record,
            })
            .collect())
    }

    /// Checks media items: each uploaded by `user`, of a kind that fits it, with the purpose
    /// its sniffed type needs granted now.
    async fn check_media(&self, user: u64, media: &[PostMedia]) -> Result<(), CommunityError> {
        if media.len() > MAX_POST_MEDIA {
            return Err(invalid("media", format!("at most {MAX_POST_MEDIA} items")));
        }
        for m in media {
            if let Some(n) = &m.name {
                shown("media.name", n, 1, 255)?;
            }
            let t = self
                .store
                .media_type(m.media_id.clone(), user)
                .await?
                .ok_or_else(|| invalid("media.media_id", "is not media you uploaded"))?;
            let purpose = m
                .kind
                .purpose(Class::of(&t))
                .map_err(|reason| invalid("media.type", reason))?;
            if let Some(p) = purpose {
                self.consents.require(user, p).await?;
            }
        }
        Ok(())
    }

    /// A place label: only with `precise_location` granted now.
    async fn place(&self, user: u64, place: &str) -> Result<String, CommunityError> {
        let place = shown("place", place, 1, MAX_PLACE_CHARS)?;
        self.consents
            .require(user, Purpose::PreciseLocation)
            .await?;
        Ok(place)
    }

    async fn key(&self, user: u64) -> Result<SecretKey, CommunityError> {
        if user & REMOTE_USER_BIT != 0 {
            // A member from a partner node: their shadow key here (erasure destroys it).
            let (_, _, wrapped) = self
                .store
                .wrapped_keys(vec![user])
                .await?
                .into_iter()
                .next()
                .ok_or(CommunityError::NotFound)?;
            return Ok(self.master.unwrap_data_key(user, &wrapped)?);
        }
        let acct = self
            .store
            .account(user)
            .await?
            .ok_or(CommunityError::NotFound)?;
        Ok(self.master.unwrap_data_key(user, &acct.wrapped_key)?)
    }

    /// Posts in community `id`.
    pub async fn post(
        &self,
        user: u64,
        id: &str,
        new: NewPost,
    ) -> Result<PostView, CommunityError> {
        if let Some((c, host)) = self.remote_of(id) {
            if new.place.is_some() {
                return Err(invalid(
                    "place",
                    "a post in a community of another node shows no place",
                ));
            }
            let text = content("text", &new.text, MAX_POST_CHARS)?;
            if text.is_empty() && new.media.is_empty() {
                return Err(invalid("text", "a post needs text or media"));
            }
            if let Some(v) = &new.visibility {
                visibility(v)?;
            }
            // The files stay here: the host is told where they are and fetches them.
            self.check_media(user, &new.media).await?;
            let mut media = Vec::with_capacity(new.media.len());
            for m in &new.media {
                let r = crate::media::reference(
                    &self.store,
                    &self.master,
                    user,
                    &m.media_id,
                    &self.domain,
                )
                .await
                .map_err(|e| match e {
                    // Removed since check_media saw it.
                    crate::media::MediaError::NotFound => {
                        invalid("media.media_id", "is not media you uploaded")
                    }
                    e => post_media::media_error(e),
                })?;
                media.push(federation::NewPostMedia {
                    kind: m.kind.name().to_string(),
                    name: m.name.clone(),
                    media: r,
                });
            }
            let me = self.address_of(user).await?;
            return Ok(self
                .remote
                .post(user, me, (&c, &host), text, new.visibility, media)
                .await?);
        }
        let p = self.add_post(user, id, new, Vec::new(), None).await?;
        self.one_post(user, id, p).await
    }

    /// Posts in community `id` of this node; the new post's number, once it and its events
    /// are committed (a call from another node's user answers from it: `federate::community`).
    /// The media of a local user's post are files they uploaded here; those of a member of
    /// another node are copies still to fetch (`fetches`, checked by the host's side of the
    /// call and queued with the post).
    pub async fn add_post(
        &self,
        user: u64,
        id: &str,
        new: NewPost,
        fetches: Fetches,
        call: Option<RemoteCall>,
    ) -> Result<u64, CommunityError> {
        let c = Self::id(id)?;
        let text = content("text", &new.text, MAX_POST_CHARS)?;
        if text.is_empty() && new.media.is_empty() {
            return Err(invalid("text", "a post needs text or media"));
        }
        let vis = match &new.visibility {
            Some(v) => visibility(v)?,
            None => PostVisibility::Members,
        };
        // Learn nothing about the media of a community one may not see.
        self.get(user, id).await?;
        if user & REMOTE_USER_BIT == 0 {
            self.check_media(user, &new.media).await?;
        } else if new.media.len() != fetches.len() {
            return Err(invalid("media", "each file of a remote post is fetched"));
        }
        let place = match &new.place {
            Some(p) => Some(self.place(user, p).await?),
            None => None,
        };
        let key = self.key(user).await?;
        let body = Body {
            text,
            media: new.media.clone(),
        }
        .encode();
        let media_ids = new.media.iter().map(|m| m.media_id.clone()).collect();
        let (p, job) = self
            .store
            .create_post(
                c,
                user,
                vis,
                media_ids,
                fetches,
                self.clock.now(),
                call,
                move |id| {
                    let b = key.seal(&post_aad(id, "body"), &body).map_err(seal_err)?;
                    let pl = match &place {
                        Some(pl) => key
                            .seal(&post_aad(id, "place"), pl.as_bytes())
                            .map_err(seal_err)?,
                        None => Vec::new(),
                    };
                    Ok((b, pl))
                },
            )
            .await??;
        self.fan_out(job).await?;
        Ok(p)
    }

    /// One post `user` may see.
    pub async fn one_post(&self, user: u64, id: &str, p: u64) -> Result<PostView, CommunityError> {
        let (post, n) = self
            .store
            .post_for(Self::id(id)?, p, user)
            .await?
            .ok_or(CommunityError::NotFound)?;
        self.open_posts(user, vec![(post, n)])
            .await?
            .pop()
            .ok_or(CommunityError::NotFound)
    }

    async fn open_posts(
        &self,
        viewer: u64,
        posts: Vec<(PostRecord, u64)>,
    ) -> Result<Vec<PostView>, CommunityError> {
        let people = self
            .people(posts.iter().map(|(p, _)| p.author).collect())
            .await?;
        let favoured = self
            .store
            .favoured(viewer, posts.iter().map(|(p, _)| p.id).collect())
            .await?;
        let mut out = Vec::with_capacity(posts.len());
        for (p, comments) in posts {
            let Some((author, Some(key))) = people.get(&p.author) else {
                continue;
            };
            let body = Body::decode(&key.open(&post_aad(p.id, "body"), &p.body_sealed)?)?;
            let place = if p.place_sealed.is_empty() {
                None
            } else {
                Some(
                    String::from_utf8(key.open(&post_aad(p.id, "place"), &p.place_sealed)?)
                        .map_err(|_| StoreError::Corrupt("post place"))?,
                )
            };
            out.push(PostView {
                id: p.id,
                community: community_id(p.community),
                author: author.clone(),
                created: p.created,
                edited: p.edited,
                visibility: p.visibility,
                text: body.text,
                media: body.media,
                place,
                comments,
                favourite: favoured.contains(&p.id),
            });
        }
        Ok(out)
    }

    /// The author changes their post.
    pub async fn edit_post(
        &self,
        user: u64,
        id: &str,
        p: u64,
        change: PostChange,
    ) -> Result<PostView, CommunityError> {
        if let Some((c, host)) = self.remote_of(id) {
            if change.media.is_some() {
                return Err(invalid(
                    "media",
                    "the files of a post in a community of another node stay as posted",
                ));
            }
            if matches!(change.place, Some(Some(_))) {
                return Err(invalid(
                    "place",
                    "a post in a community of another node shows no place",
                ));
            }
            let text = change
                .text
                .ok_or_else(|| invalid("text", "is needed to edit a post of another node"))?;
            let text = content("text", &text, MAX_POST_CHARS)?;
            if text.is_empty() {
                return Err(invalid("text", "must not be empty"));
            }
            if let Some(v) = &change.visibility {
                visibility(v)?;
            }
            let me = self.address_of(user).await?;
            return Ok(self
                .remote
                .edit_post(user, me, (&c, &host), p, text, change.visibility)
                .await?);
        }
        self.edit_post_with(user, id, p, change, None).await
    }

    /// [`Communities::edit_post`] of a post here, recording a remote user's `call`.
    pub(crate) async fn edit_post_with(
        &self,
        user: u64,
        id: &str,
        p: u64,
        change: PostChange,
        call: Option<RemoteCall>,
    ) -> Result<PostView, CommunityError> {
        let c = Self::id(id)?;
        let current = self.one_post(user, id, p).await?;
        let text = match &change.text {
            Some(t) => content("text", t, MAX_POST_CHARS)?,
            None => current.text.clone(),
        };
        let media = match &change.media {
            Some(m) => {
                self.check_media(user, m).await?;
                m.clone()
            }
            None => current.media.clone(),
        };
        if text.is_empty() && media.is_empty() {
            return Err(invalid("text", "a post needs text or media"));
        }
        let vis = change.visibility.as_deref().map(visibility).transpose()?;
        let key = self.key(user).await?;
        let place_sealed = match &change.place {
            None => None,
            Some(None) => Some(Vec::new()),
            Some(Some(pl)) => {
                let pl = self.place(user, pl).await?;
                Some(key.seal(&post_aad(p, "place"), pl.as_bytes())?)
            }
        };
        let body_sealed = key.seal(
            &post_aad(p, "body"),
            &Body {
                text,
                media: media.clone(),
            }
            .encode(),
        )?;
        let edit = PostEdit {
            body_sealed: Some(body_sealed),
            media: change
                .media
                .as_ref()
                .map(|m| m.iter().map(|x| x.media_id.clone()).collect()),
            visibility: vis,
            place_sealed,
        };
        self.store
            .edit_post(c, p, user, edit, self.clock.now(), call)
            .await??;
        self.one_post(user, id, p).await
    }

    async fn address_of(&self, user: u64) -> Result<String, CommunityError> {
        self.people(vec![user])
            .await?
            .remove(&user)
            .map(|p| p.0)
            .ok_or(CommunityError::NotFound)
    }

    /// Deletes a post: its author, or a moderator (logged).
    pub async fn delete_post(&self, user: u64, id: &str, p: u64) -> Result<(), CommunityError> {
        if let Some((c, host)) = self.remote_of(id) {
            let me = self.address_of(user).await?;
            return Ok(self.remote.delete_post(user, me, (&c, &host), p).await?);
        }
        self.delete_post_with(user, id, p, None).await
    }

    /// [`Communities::delete_post`] of a post here, recording a remote user's `call`.
    pub(crate) async fn delete_post_with(
        &self,
        user: u64,
        id: &str,
        p: u64,
        call: Option<RemoteCall>,
    ) -> Result<(), CommunityError> {
        let c = Self::id(id)?;
        self.one_post(user, id, p).await?;
        Ok(self
            .store
            .delete_post(c, p, user, self.clock.now(), call)
            .await??)
    }

    /// A page of community `id`'s posts, newest first, numbered below `before`.
    pub async fn feed(
        &self,
        user: u64,
        id: &str,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<PostView>, CommunityError> {
        if let Some((c, host)) = self.remote_of(id) {
            let me = self.address_of(user).await?;
            return Ok(self
                .remote
                .feed(user, me, (&c, &host), before, limit)
                .await?);
        }
        let posts = self
            .store
            .community_posts(Self::id(id)?, user, before.unwrap_or(u64::MAX), limit)
            .await?
            .ok_or(CommunityError::NotFound)?;
        self.open_posts(user, posts).await
    }

    /// A page of posts across my communities.
    pub async fn my_feed(
        &self,
        user: u64,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<PostView>, CommunityError> {
        let posts = self
            .store
            .my_feed(user, before.unwrap_or(u64::MAX), limit)
            .await?;
        self.open_posts(user, posts).await
    }

    /// My favourites I may still see, newest post first.
    pub async fn favourites(
        &self,
        user: u64,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<PostView>, CommunityError> {
        let posts = self
            .store
            .favourites(user, before.unwrap_or(u64::MAX), limit, None)
            .await?;
        self.open_posts(user, posts).await
    }

    /// My favourites in community `id` of this node (for a member of another node, who keeps
    /// theirs with the host), newest post first.
    pub(crate) async fn favourites_in(
        &self,
        user: u64,
        id: &str,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<PostView>, CommunityError> {
        let c = Self::id(id)?;
        let posts = self
            .store
            .favourites(user, before.unwrap_or(u64::MAX), limit, Some(c))
            .await?;
        self.open_posts(user, posts).await
    }

    pub async fn set_favourite(
        &self,
        user: u64,
        id: &str,
        p: u64,
        on: bool,
    ) -> Result<(), CommunityError> {
        self.set_favourite_with(user, id, p, on, None).await
    }

    /// [`Communities::set_favourite`], recording a remote user's `call`.
    pub(crate) async fn set_favourite_with(
        &self,
        user: u64,
        id: &str,
        p: u64,
        on: bool,
        call: Option<RemoteCall>,
    ) -> Result<(), CommunityError> {
        if let Some((c, host)) = self.remote_of(id) {
            let me = self.address_of(user).await?;
            return Ok(self.remote.favourite(user, me, (&c, &host), p, on).await?);
        }
        Ok(self
            .store
            .set_favourite(Self::id(id)?, p, user, on, self.clock.now(), call)
            .await??)
    }

    /// Comments on a post, oldest first, numbered above `after`.
    pub async fn comments(
        &self,
        user: u64,
        id: &str,
        p: u64,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<CommentView>, CommunityError> {
        if let Some((c, host)) = self.remote_of(id) {
            let me = self.address_of(user).await?;
            return Ok(self
                .remote
                .comments(user, me, (&c, &host), p, after, limit)
                .await?);
        }
        let list = self
            .store
            .post_comments(Self::id(id)?, p, user, after.unwrap_or(0), limit)
            .await?
            .ok_or(CommunityError::NotFound)?;
        let mut quoted: Vec<u64> = list.iter().map(|c| c.quote).filter(|q| *q != 0).collect();
        quoted.sort_unstable();
        quoted.dedup();
        let quotes = self.store.comments_by_id(p, quoted).await?;
        let people = self
            .people(
                list.iter()
                    .map(|c| c.author)
                    .chain(quotes.iter().map(|c| c.author))
                    .collect(),
            )
            .await?;
        let open = |c: &CommentRecord| -> Option<(String, String)> {
            let (author, key) = people.get(&c.author)?;
            let plain = key
                .as_ref()?
                .open(&comment_aad(c.id), &c.text_sealed)
                .ok()?;
            Some((author.clone(), String::from_utf8(plain).ok()?))
        };
        let mut out = Vec::with_capacity(list.len());
        for c in &list {
            let Some((author, text)) = open(c) else {
                continue;
            };
            let quote = (c.quote != 0).then(|| QuoteView {
                comment: c.quote,
                shown: quotes.iter().find(|q| q.id == c.quote).and_then(&open),
            });
            out.push(CommentView {
                id: c.id,
                post: p,
                author,
                parent: (c.parent != 0).then_some(c.parent),
                quote,
                created: c.created,
                edited: c.edited,
                text,
            });
        }
        Ok(out)
    }

    /// Comments on a post (replying to a top-level comment, quoting one, or neither).
    pub async fn comment(
        &self,
        user: u64,
        id: &str,
        p: u64,
        text: &str,
        parent: Option<u64>,
        quote: Option<u64>,
    ) -> Result<CommentView, CommunityError> {
        if let Some((c, host)) = self.remote_of(id) {
            if quote.is_some() {
                return Err(invalid(
                    "quote",
                    "quotes are not sent to another node's community",
                ));
            }
            let text = content("text", text, MAX_COMMENT_CHARS)?;
            if text.is_empty() {
                return Err(invalid("text", "must not be empty"));
            }
            let me = self.address_of(user).await?;
            return Ok(self
                .remote
                .comment(user, me, (&c, &host), p, text, parent)
                .await?);
        }
        let cid = self
            .add_comment(user, id, p, text, parent, quote, None)
            .await?;
        self.one_comment(user, id, p, cid).await
    }

    /// Comments on post `p` in community `id` of this node; the new comment's number, once it
    /// and its events are committed.
    #[allow(clippy::too_many_arguments)]
    pub async fn add_comment(
        &self,
        user: u64,
        id: &str,
        p: u64,
        text: &str,
        parent: Option<u64>,
        quote: Option<u64>,
        call: Option<RemoteCall>,
    ) -> Result<u64, CommunityError> {
        let c = Self::id(id)?;
        let text = content("text", text, MAX_COMMENT_CHARS)?;
        if text.is_empty() {
            return Err(invalid("text", "must not be empty"));
        }
        let key = self.key(user).await?;
        let sealed_text = text.clone();
        let (cid, job) = self
            .store
            .create_comment(
                c,
                p,
                user,
                parent.unwrap_or(0),
                quote.unwrap_or(0),
                self.clock.now(),
                call,
                move |cid| {
                    key.seal(&comment_aad(cid), sealed_text.as_bytes())
                        .map_err(seal_err)
                },
            )
            .await??;
        self.fan_out(job).await?;
        Ok(cid)
    }

    /// Comment `comment` on post `p`, as `user` may see it now.
    pub async fn one_comment(
        &self,
        user: u64,
        id: &str,
        p: u64,
        comment: u64,
    ) -> Result<CommentView, CommunityError> {
        self.comments(user, id, p, Some(comment.saturating_sub(1)), 1)
            .await?
            .pop()
            .filter(|v| v.id == comment)
            .ok_or(CommunityError::NotFound)
    }

    /// The author changes a comment's text.
    pub async fn edit_comment(
        &self,
        user: u64,
        id: &str,
        p: u64,
        comment: u64,
        text: &str,
    ) -> Result<CommentView, CommunityError> {
        let text = content("text", text, MAX_COMMENT_CHARS)?;
        if text.is_empty() {
            return Err(invalid("text", "must not be empty"));
        }
        if let Some((c, host)) = self.remote_of(id) {
            let me = self.address_of(user).await?;
            return Ok(self
                .remote
                .edit_comment(user, me, (&c, &host), (p, comment), text)
                .await?);
        }
        self.edit_comment_with(user, id, (p, comment), &text, None)
            .await
    }

    /// [`Communities::edit_comment`] of a comment here, recording a remote user's `call`.
    pub(crate) async fn edit_comment_with(
        &self,
        user: u64,
        id: &str,
        (p, comment): (u64, u64),
        text: &str,
        call: Option<RemoteCall>,
    ) -> Result<CommentView, CommunityError> {
        let c = Self::id(id)?;
        self.one_post(user, id, p).await?;
        let sealed = self
            .key(user)
            .await?
            .seal(&comment_aad(comment), text.as_bytes())?;
        self.store
            .edit_comment(c, p, comment, user, sealed, self.clock.now(), call)
            .await??;
        self.comments(user, id, p, Some(comment - 1), 1)
            .await?
            .pop()
            .filter(|v| v.id == comment)
            .ok_or(CommunityError::NotFound)
    }

    /// Deletes a comment: its author, or a moderator (logged).
    pub async fn delete_comment(
        &self,
        user: u64,
        id: &str,
        p: u64,
        comment: u64,
    ) -> Result<(), CommunityError> {
        if let Some((c, host)) = self.remote_of(id) {
            let me = self.address_of(user).await?;
            return Ok(self
                .remote
                .delete_comment(user, me, (&c, &host), (p, comment))
                .await?);
        }
        self.delete_comment_with(user, id, (p, comment), None).await
    }

    /// [`Communities::delete_comment`] of a comment here, recording a remote user's `call`.
    pub(crate) async fn delete_comment_with(
        &self,
        user: u64,
        id: &str,
        (p, comment): (u64, u64),
        call: Option<RemoteCall>,
    ) -> Result<(), CommunityError> {
        let c = Self::id(id)?;
        self.one_post(user, id, p).await?;
        Ok(self
            .store
            .delete_comment(c, p, comment, user, self.clock.now(), call)
            .await??)
    }

    /// For the export: the user's posts and comments (opened) and favourites.
    #[allow(clippy::type_complexity)]
    pub async fn own_data(
        &self,
        user: u64,
    ) -> Result<(Vec<PostView>, Vec<CommentView>, Vec<(u64, String, Millis)>), CommunityError> {
        let (posts, comments, favs) = self.store.community_data_of(user).await?;
        let posts = self
            .open_posts(user, posts.into_iter().map(|p| (p, 0)).collect())
            .await?;
        let me = self.address_of(user).await?;
        let key = self.key(user).await?;
        let mut cs = Vec::with_capacity(comments.len());
        for c in comments {
            let text = String::from_utf8(key.open(&comment_aad(c.id), &c.text_sealed)?)
                .map_err(|_| StoreError::Corrupt("comment"))?;
            cs.push(CommentView {
                id: c.id,
                post: c.post,
                author: me.clone(),
                parent: (c.parent != 0).then_some(c.parent),
                quote: (c.quote != 0).then_some(QuoteView {
                    comment: c.quote,
                    shown: None,
                }),
                created: c.created,
                edited: c.edited,
                text,
            });
        }
        let favs = favs
            .into_iter()
            .map(|(p, c, at)| (p, community_id(c), at))
            .collect();
        Ok((posts, cs, favs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn community_ids_are_sixteen_hex_digits() {
        assert_eq!(community_id(0xab), "00000000000000ab");
        assert_eq!(parse_community_id("00000000000000ab"), Some(0xab));
        assert_eq!(parse_community_id("00000000000000AB"), None);
        assert_eq!(parse_community_id("ab"), None);
        assert_eq!(parse_community_id("0000000000000000"), None);
    }

    #[test]
    fn post_bodies_round_trip() {
        let b = Body {
            text: "南京市长江大桥".into(),
            media: vec![PostMedia {
                kind: MediaKind::Image,
                media_id: "m".into(),
                name: Some("a.png".into()),
            }],
        };
        let d = Body::decode(&b.encode()).unwrap();
        assert_eq!((d.text, d.media), (b.text, b.media));
    }

    #[test]
    fn content_refuses_control_characters_and_long_text() {
        assert!(content("text", "a\u{7}b", 10).is_err());
        assert_eq!(content("text", " a\nb ", 10).unwrap(), "a\nb");
        assert!(content("text", "abc", 2).is_err());
    }
}
