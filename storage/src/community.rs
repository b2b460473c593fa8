//! Communities (小组) as stored: communities, members, join requests and invitations, bans,
//! each community's moderation log, posts, comments, favourites and the media they carry — and
//! the one rule of who may see a post ([`may_see`]), applied inside the transaction that reads.
//!
//! Post and comment texts (and a post's place label) are sealed under their author's data key
//! by the domain before they reach here; this module stores ids, roles, times and visibility
//! codes in clear. Quotes are references to the quoted comment, never a copy of its text, so a
//! quoted comment that is removed (or whose author is erased) is gone from every quote.
//!
//! Ids: a community's number is random (knowing it means having been told of it, so a private
//! community cannot be found by trying numbers); posts and comments are numbered from META
//! counters (`next_post`, `next_comment`), increasing with time, so feeds page by number.

use std::collections::BTreeMap;

use redb::{ReadTransaction, ReadableTable, WriteTransaction};

use super::catalog::*;
use super::codec::{Dec, Enc};
use super::messaging::{EventRecord, next_pos};
use super::search::{SearchChange, Seen, note_change};
use super::{Store, StoreError};
use primitives::time::Millis;

/// Opens every table of this module (so read transactions never meet a missing one).
pub fn create_tables(tx: &WriteTransaction) -> Result<(), StoreError> {
    tx.open_table(COMMUNITYNO_COMMUNITY)?;
    tx.open_table(COMMUNITYNO_USERID_MEMBER)?;
    tx.open_table(USERID_COMMUNITYNO)?;
    tx.open_table(COMMUNITYNO_USERID_PENDING)?;
    tx.open_table(COMMUNITYNO_USERID_BAN)?;
    tx.open_table(COMMUNITYNO_SEQ_MODLOG)?;
    tx.open_table(POSTNO_POST)?;
    tx.open_table(COMMUNITYNO_POSTNO)?;
    tx.open_table(USERID_POSTNO)?;
    tx.open_table(POSTNO_COMMENTNO_COMMENT)?;
    tx.open_table(USERID_COMMENTNO)?;
    tx.open_table(USERID_POSTNO_FAVOURITE)?;
    tx.open_table(POSTNO_USERID_FAVOURITE)?;
    tx.open_table(MEDIAID_COMMUNITYNO_POSTNO)?;
    tx.open_table(FANOUTNO_JOB)?;
    Ok(())
}

// ---- Records ------------------------------------------------------------------------------

/// A member's role in a community.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CommunityRole {
    Member,
    Moderator,
    Owner,
}

impl CommunityRole {
    pub const fn name(self) -> &'static str {
        match self {
            CommunityRole::Member => "member",
            CommunityRole::Moderator => "moderator",
            CommunityRole::Owner => "owner",
        }
    }
    /// The role named `s` (as [`CommunityRole::name`] writes it).
    pub fn parse(s: &str) -> Option<Self> {
        [
            CommunityRole::Member,
            CommunityRole::Moderator,
            CommunityRole::Owner,
        ]
        .into_iter()
        .find(|r| r.name() == s)
    }
    fn code(self) -> u64 {
        self as u64
    }
    fn from_code(c: u64) -> Result<Self, StoreError> {
        [
            CommunityRole::Member,
            CommunityRole::Moderator,
            CommunityRole::Owner,
        ]
        .into_iter()
        .find(|r| r.code() == c)
        .ok_or(StoreError::Corrupt("community member"))
    }
    pub fn moderates(self) -> bool {
        self >= CommunityRole::Moderator
    }
}

/// Who may see a post.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostVisibility {
    /// The community's members.
    Members,
    /// The author's friends (among those who can read the community).
    Friends,
    /// Everyone who can read the community (anyone on the node, for a public one).
    Public,
}

impl PostVisibility {
    pub const ALL: [PostVisibility; 3] = [
        PostVisibility::Members,
        PostVisibility::Friends,
        PostVisibility::Public,
    ];
    pub const fn name(self) -> &'static str {
        match self {
            PostVisibility::Members => "members",
            PostVisibility::Friends => "friends",
            PostVisibility::Public => "public",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.name() == s)
    }
    fn code(self) -> u64 {
        self as u64
    }
    fn from_code(c: u64) -> Result<Self, StoreError> {
        Self::ALL
            .into_iter()
            .find(|v| v.code() == c)
            .ok_or(StoreError::Corrupt("post"))
    }
}

/// A community.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommunityRecord {
    pub id: u64,
    pub name: String,
    pub description: String,
    pub avatar: Option<String>,
    pub public: bool,
    pub owner: u64,
    pub created: Millis,
}

impl CommunityRecord {
    fn encode(&self) -> Vec<u8> {
        Enc::new(1)
            .str(&self.name)
            .str(&self.description)
            .str(self.avatar.as_deref().unwrap_or(""))
            .bool(self.public)
            .u64(self.owner)
            .u64(self.created.0)
            .finish()
    }
    fn decode(id: u64, b: &[u8]) -> Result<Self, StoreError> {
        let mut d = Dec::new(b, "community", 1)?;
        let r = CommunityRecord {
            id,
            name: d.string()?,
            description: d.string()?,
            avatar: Some(d.string()?).filter(|a| !a.is_empty()),
            public: d.bool()?,
            owner: d.u64()?,
            created: Millis(d.u64()?),
        };
        d.end()?;
        Ok(r)
    }
}

/// A post. `body_sealed` holds its text and media list, `place_sealed` the place label the
/// author chose to show (empty: none), both sealed under the author's data key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostRecord {
    pub id: u64,
    pub community: u64,
    pub author: u64,
    pub created: Millis,
    pub edited: Option<Millis>,
    pub visibility: PostVisibility,
    pub body_sealed: Vec<u8>,
    pub place_sealed: Vec<u8>,
    /// The media ids the body names (kept in clear for who may fetch them).
    pub media: Vec<String>,
}

impl PostRecord {
    fn encode(&self) -> Vec<u8> {
        let mut e = Enc::new(1)
            .u64(self.community)
            .u64(self.author)
            .u64(self.created.0)
            .u64(self.edited.map_or(0, |m| m.0))
            .u64(self.visibility.code())
            .bytes(&self.body_sealed)
            .bytes(&self.place_sealed)
            .u64(self.media.len() as u64);
        for m in &self.media {
            e = e.str(m);
        }
        e.finish()
    }
    fn decode(id: u64, b: &[u8]) -> Result<Self, StoreError> {
        let mut d = Dec::new(b, "post", 1)?;
        let community = d.u64()?;
        let author = d.u64()?;
        let created = Millis(d.u64()?);
        let edited = match d.u64()? {
            0 => None,
            t => Some(Millis(t)),
        };
        let visibility = PostVisibility::from_code(d.u64()?)?;
        let body_sealed = d.bytes()?;
        let place_sealed = d.bytes()?;
        let n = d.u64()?;
        let mut media = Vec::new();
        for _ in 0..n.min(64) {
            media.push(d.string()?);
        }
        d.end()?;
        Ok(PostRecord {
            id,
            community,
            author,
            created,
            edited,
            visibility,
            body_sealed,
            place_sealed,
            media,
        })
    }
}

/// A comment: on the post (`parent` 0) or a reply to a top-level comment (one level).
/// `quote` names a comment of the same post it quotes (0: none) — a reference, never a copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommentRecord {
    pub id: u64,
    pub post: u64,
    pub author: u64,
    pub parent: u64,
    pub quote: u64,
    pub created: Millis,
    pub edited: Option<Millis>,
    pub text_sealed: Vec<u8>,
}

impl CommentRecord {
    fn encode(&self) -> Vec<u8> {
        Enc::new(1)
            .u64(self.author)
            .u64(self.parent)
            .u64(self.quote)
            .u64(self.created.0)
            .u64(self.edited.map_or(0, |m| m.0))
            .bytes(&self.text_sealed)
            .finish()
    }
    fn decode(post: u64, id: u64, b: &[u8]) -> Result<Self, StoreError> {
        let mut d = Dec::new(b, "comment", 1)?;
        let r = CommentRecord {
            id,
            post,
            author: d.u64()?,
            parent: d.u64()?,
            quote: d.u64()?,
            created: Millis(d.u64()?),
            edited: match d.u64()? {
                0 => None,
                t => Some(Millis(t)),
            },
            text_sealed: d.bytes()?,
        };
        d.end()?;
        Ok(r)
    }
}

/// What a moderation log entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModAction {
    Update,
    Invite,
    Approve,
    Reject,
    RemoveMember,
    Ban,
    Unban,
    SetRole,
    RemovePost,
    RemoveComment,
}

impl ModAction {
    const ALL: [ModAction; 10] = [
        ModAction::Update,
        ModAction::Invite,
        ModAction::Approve,
        ModAction::Reject,
        ModAction::RemoveMember,
        ModAction::Ban,
        ModAction::Unban,
        ModAction::SetRole,
        ModAction::RemovePost,
        ModAction::RemoveComment,
    ];
    pub const fn name(self) -> &'static str {
        match self {
            ModAction::Update => "update",
            ModAction::Invite => "invite",
            ModAction::Approve => "approve",
            ModAction::Reject => "reject",
            ModAction::RemoveMember => "remove_member",
            ModAction::Ban => "ban",
            ModAction::Unban => "unban",
            ModAction::SetRole => "set_role",
            ModAction::RemovePost => "remove_post",
            ModAction::RemoveComment => "remove_comment",
        }
    }
    fn code(self) -> u64 {
        self as u64
    }
}

/// One moderation log entry. Users are named by id (0 once erased); no text of a post or
/// comment is kept, only its number and its author.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModLogRecord {
    pub seq: u64,
    pub at: Millis,
    pub actor: u64,
    pub action: ModAction,
    /// The member acted on (for a post or comment: its author); 0 for none.
    pub target: u64,
    pub post: u64,
    pub comment: u64,
    /// For `set_role`: the new role.
    pub role: Option<CommunityRole>,
}

impl ModLogRecord {
    fn encode(&self) -> Vec<u8> {
        Enc::new(1)
            .u64(self.at.0)
            .u64(self.actor)
            .u64(self.action.code())
            .u64(self.target)
            .u64(self.post)
            .u64(self.comment)
            .u64(self.role.map_or(u64::MAX, |r| r.code()))
            .finish()
    }
    fn decode(seq: u64, b: &[u8]) -> Result<Self, StoreError> {
        let mut d = Dec::new(b, "moderation log entry", 1)?;
        let r = ModLogRecord {
            seq,
            at: Millis(d.u64()?),
            actor: d.u64()?,
            action: *ModAction::ALL
                .get(d.u64()? as usize)
                .ok_or(StoreError::Corrupt("moderation log entry"))?,
            target: d.u64()?,
            post: d.u64()?,
            comment: d.u64()?,
            role: match d.u64()? {
                u64::MAX => None,
                c => Some(CommunityRole::from_code(c)?),
            },
        };
        d.end()?;
        Ok(r)
    }
}

// ---- The visibility rule ------------------------------------------------------------------

/// What decides whether a viewer may see a post, gathered in one transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts {
    pub community_public: bool,
    pub role: Option<CommunityRole>,
    pub banned: bool,
    pub is_author: bool,
    pub friends: bool,
}

/// Whether a viewer may see a post: its author always; a banned viewer never; nobody outside a
/// private community; "public" posts everyone who can read the community, "members" posts the
/// members, "friends" posts only the author's friends among those who can read it. The
/// community's moderators see every post but friends-only ones (they moderate what the
/// community can see).
pub fn may_see(visibility: PostVisibility, f: &Facts) -> bool {
    if f.is_author {
        return true;
    }
    if f.banned {
        return false;
    }
    let reader = f.role.is_some() || f.community_public;
    if !reader {
        return false;
    }
    match visibility {
        PostVisibility::Public => true,
        PostVisibility::Members => f.role.is_some(),
        PostVisibility::Friends => f.friends,
    }
}

/// Whether `a` and `b` are friends (the friend graph of `storage/friends.rs`).
fn are_friends(tx: &ReadTransaction, a: u64, b: u64) -> Result<bool, StoreError> {
    super::friends::are_friends_r(tx, a, b)
}

/// [`are_friends`] inside a write transaction.
fn are_friends_w(tx: &WriteTransaction, a: u64, b: u64) -> Result<bool, StoreError> {
    Ok(tx.open_table(USERID_USERID_FRIEND)?.get((a, b))?.is_some())
}

fn role_of(
    t: &impl ReadableTable<(u64, u64), (u64, u64)>,
    c: u64,
    u: u64,
) -> Result<Option<CommunityRole>, StoreError> {
    t.get((c, u))?
        .map(|v| CommunityRole::from_code(v.value().0))
        .transpose()
}

/// Facts about a viewer and a community, read in `tx`.
fn facts_r(
    tx: &ReadTransaction,
    community: &CommunityRecord,
    viewer: u64,
) -> Result<Facts, StoreError> {
    Ok(Facts {
        community_public: community.public,
        role: role_of(
            &tx.open_table(COMMUNITYNO_USERID_MEMBER)?,
            community.id,
            viewer,
        )?,
        banned: tx
            .open_table(COMMUNITYNO_USERID_BAN)?
            .get((community.id, viewer))?
            .is_some(),
        is_author: false,
        friends: false,
    })
}

/// Whether `viewer` may see `post`, given the facts about its community.
fn sees_r(
    tx: &ReadTransaction,
    base: &Facts,
    post: &PostRecord,
    viewer: u64,
) -> Result<bool, StoreError> {
    let mut f = *base;
    f.is_author = post.author == viewer;
    if post.visibility == PostVisibility::Friends && !f.is_author {
        f.friends = are_friends(tx, post.author, viewer)?;
    }
    Ok(may_see(post.visibility, &f))
}

fn get_community_r(tx: &ReadTransaction, c: u64) -> Result<Option<CommunityRecord>, StoreError> {
    tx.open_table(COMMUNITYNO_COMMUNITY)?
        .get(c)?
        .map(|v| CommunityRecord::decode(c, v.value()))
        .transpose()
}

fn get_community_w(tx: &WriteTransaction, c: u64) -> Result<Option<CommunityRecord>, StoreError> {
    tx.open_table(COMMUNITYNO_COMMUNITY)?
        .get(c)?
        .map(|v| CommunityRecord::decode(c, v.value()))
        .transpose()
}

fn get_post_r(tx: &ReadTransaction, p: u64) -> Result<Option<PostRecord>, StoreError> {
    tx.open_table(POSTNO_POST)?
        .get(p)?
        .map(|v| PostRecord::decode(p, v.value()))
        .transpose()
}

fn get_post_w(tx: &WriteTransaction, p: u64) -> Result<Option<PostRecord>, StoreError> {
    tx.open_table(POSTNO_POST)?
        .get(p)?
        .map(|v| PostRecord::decode(p, v.value()))
        .transpose()
}

fn role_w(tx: &WriteTransaction, c: u64, u: u64) -> Result<Option<CommunityRole>, StoreError> {
    role_of(&tx.open_table(COMMUNITYNO_USERID_MEMBER)?, c, u)
}

/// Whether `media` is shown in a community post or as an avatar that `viewer` may see.
pub fn media_visible(tx: &ReadTransaction, media: &str, viewer: u64) -> Result<bool, StoreError> {
    let refs: Vec<(u64, u64)> = tx
        .open_table(MEDIAID_COMMUNITYNO_POSTNO)?
        .range((media, 0, 0)..=(media, u64::MAX, u64::MAX))?
        .map(|r| r.map(|(k, _)| (k.value().1, k.value().2)))
        .collect::<Result<_, _>>()?;
    for (c, p) in refs {
        let Some(community) = get_community_r(tx, c)? else {
            continue;
        };
        let facts = facts_r(tx, &community, viewer)?;
        let ok = if p == 0 {
            community.public || facts.role.is_some()
        } else {
            match get_post_r(tx, p)? {
                Some(post) => sees_r(tx, &facts, &post, viewer)?,
                None => false,
            }
        };
        if ok {
            return Ok(true);
        }
    }
    Ok(false)
}

// ---- For search ---------------------------------------------------------------------------

pub fn decode_post(id: u64, b: &[u8]) -> Result<PostRecord, StoreError> {
    PostRecord::decode(id, b)
}

pub fn decode_community(id: u64, b: &[u8]) -> Result<CommunityRecord, StoreError> {
    CommunityRecord::decode(id, b)
}

pub fn decode_comment(post: u64, id: u64, b: &[u8]) -> Result<CommentRecord, StoreError> {
    CommentRecord::decode(post, id, b)
}

pub fn role_from_code(c: u64) -> Result<CommunityRole, StoreError> {
    CommunityRole::from_code(c)
}

/// Each of `posts` as `viewer` may see it, by [`may_see`] with facts read in `tx`.
pub fn posts_seen_r(
    tx: &ReadTransaction,
    viewer: u64,
    posts: &[u64],
) -> Result<Vec<Seen<PostRecord>>, StoreError> {
    let mut out = Vec::with_capacity(posts.len());
    let mut facts: BTreeMap<u64, Option<Facts>> = BTreeMap::new();
    for p in posts {
        let Some(post) = get_post_r(tx, *p)? else {
            out.push(Seen::Gone);
            continue;
        };
        let f = match facts.get(&post.community) {
            Some(f) => *f,
            None => {
                let f = get_community_r(tx, post.community)?
                    .map(|c| facts_r(tx, &c, viewer))
                    .transpose()?;
                facts.insert(post.community, f);
                f
            }
        };
        out.push(match f {
            None => Seen::Gone,
            Some(f) if sees_r(tx, &f, &post, viewer)? => Seen::Shown(post),
            Some(_) => Seen::Hidden,
        });
    }
    Ok(out)
}

/// Each of `communities` as `viewer` may read it: a public one unless they are banned from
/// it, a private one only as a member (what `community_posts` lets them read).
pub fn communities_read_r(
    tx: &ReadTransaction,
    viewer: u64,
    communities: &[u64],
) -> Result<Vec<Seen<CommunityRecord>>, StoreError> {
    let mut out = Vec::with_capacity(communities.len());
    for c in communities {
        let Some(rec) = get_community_r(tx, *c)? else {
            out.push(Seen::Gone);
            continue;
        };
        let f = facts_r(tx, &rec, viewer)?;
        out.push(if (rec.public || f.role.is_some()) && !f.banned {
            Seen::Shown(rec)
        } else {
            Seen::Hidden
        });
    }
    Ok(out)
}

// ---- Writes' helpers ----------------------------------------------------------------------

fn log(tx: &WriteTransaction, c: u64, mut entry: ModLogRecord) -> Result<(), StoreError> {
    let mut t = tx.open_table(COMMUNITYNO_SEQ_MODLOG)?;
    let seq = match t.range((c, 0)..=(c, u64::MAX))?.next_back() {
        Some(row) => row?.0.value().1 + 1,
        None => 1,
    };
    entry.seq = seq;
    t.insert((c, seq), entry.encode().as_slice())?;
    Ok(())
}

/// Whether `removal.actor` may remove what `removal.target` wrote in community `c`: its author
/// may, silently; a moderator may, and `removal` goes into the community's log; any other
/// member is refused with `forbidden`, and a non-member is told nothing exists.
fn author_or_moderator(
    tx: &WriteTransaction,
    c: u64,
    removal: ModLogRecord,
    forbidden: &'static str,
) -> Result<Result<(), CommunityRefusal>, StoreError> {
    if removal.actor == removal.target {
        return Ok(Ok(()));
    }
    match role_w(tx, c, removal.actor)? {
        Some(r) if r.moderates() => {
            log(tx, c, removal)?;
            Ok(Ok(()))
        }
        Some(_) => Ok(Err(CommunityRefusal::Forbidden(forbidden))),
        None => Ok(Err(CommunityRefusal::NotFound)),
    }
}

fn entry(at: Millis, actor: u64, action: ModAction, target: u64) -> ModLogRecord {
    ModLogRecord {
        seq: 0,
        at,
        actor,
        action,
        target,
        post: 0,
        comment: 0,
        role: None,
    }
}

fn add_member(
    tx: &WriteTransaction,
    c: u64,
    u: u64,
    role: CommunityRole,
    now: Millis,
) -> Result<(), StoreError> {
    tx.open_table(COMMUNITYNO_USERID_MEMBER)?
        .insert((c, u), (role.code(), now.0))?;
    tx.open_table(USERID_COMMUNITYNO)?
        .insert((u, c), role.code())?;
    tx.open_table(COMMUNITYNO_USERID_PENDING)?.remove((c, u))?;
    Ok(())
}

fn remove_member(tx: &WriteTransaction, c: u64, u: u64) -> Result<bool, StoreError> {
    let had = tx
        .open_table(COMMUNITYNO_USERID_MEMBER)?
        .remove((c, u))?
        .is_some();
    tx.open_table(USERID_COMMUNITYNO)?.remove((u, c))?;
    Ok(had)
}

/// Removes a post with its comments, favourites and media references.
fn remove_post(tx: &WriteTransaction, post: &PostRecord) -> Result<(), StoreError> {
    tx.open_table(POSTNO_POST)?.remove(post.id)?;
    note_change(tx, SearchChange::Post(post.id))?;
    tx.open_table(COMMUNITYNO_POSTNO)?
        .remove((post.community, post.id))?;
    tx.open_table(USERID_POSTNO)?
        .remove((post.author, post.id))?;
    let comments: Vec<(u64, u64)> = {
        let t = tx.open_table(POSTNO_COMMENTNO_COMMENT)?;
        let mut out = Vec::new();
        for row in t.range((post.id, 0)..=(post.id, u64::MAX))? {
            let (k, v) = row?;
            let c = CommentRecord::decode(post.id, k.value().1, v.value())?;
            out.push((c.author, c.id));
        }
        out
    };
    {
        let mut by_user = tx.open_table(USERID_COMMENTNO)?;
        for (author, id) in &comments {
            by_user.remove((*author, *id))?;
        }
    }
    tx.open_table(POSTNO_COMMENTNO_COMMENT)?
        .retain_in((post.id, 0)..=(post.id, u64::MAX), |_, _| false)?;
    let fans: Vec<u64> = tx
        .open_table(POSTNO_USERID_FAVOURITE)?
        .range((post.id, 0)..=(post.id, u64::MAX))?
        .map(|r| r.map(|(k, _)| k.value().1))
        .collect::<Result<_, _>>()?;
    {
        let mut favs = tx.open_table(USERID_POSTNO_FAVOURITE)?;
        for u in &fans {
            favs.remove((*u, post.id))?;
        }
    }
    tx.open_table(POSTNO_USERID_FAVOURITE)?
        .retain_in((post.id, 0)..=(post.id, u64::MAX), |_, _| false)?;
    let mut refs = tx.open_table(MEDIAID_COMMUNITYNO_POSTNO)?;
    for m in &post.media {
        refs.remove((m.as_str(), post.community, post.id))?;
    }
    Ok(())
}

/// Removes one comment; a top-level comment takes its replies with it. Quotes of it stay
/// references to a comment that is gone.
fn remove_comment(tx: &WriteTransaction, c: &CommentRecord) -> Result<u64, StoreError> {
    let mut gone = vec![(c.author, c.id)];
    if c.parent == 0 {
        let t = tx.open_table(POSTNO_COMMENTNO_COMMENT)?;
        for row in t.range((c.post, c.id + 1)..=(c.post, u64::MAX))? {
            let (k, v) = row?;
            let r = CommentRecord::decode(c.post, k.value().1, v.value())?;
            if r.parent == c.id {
                gone.push((r.author, r.id));
            }
        }
    }
    // Search indexes comments by their post: the post's comments are read again.
    note_change(tx, SearchChange::Post(c.post))?;
    let mut t = tx.open_table(POSTNO_COMMENTNO_COMMENT)?;
    let mut by_user = tx.open_table(USERID_COMMENTNO)?;
    for (author, id) in &gone {
        t.remove((c.post, *id))?;
        by_user.remove((*author, *id))?;
    }
    Ok(gone.len() as u64)
}

/// Members read in one fan-out transaction.
pub const FANOUT_BATCH: usize = 256;

/// Queues the events of a new post (`comment` 0) or comment, to be written after the commit by
/// [`Store::fan_out_step`] in bounded transactions — never by reading every member in the
/// write that stores the post. Returns the job's number.
fn queue_fanout(tx: &WriteTransaction, c: u64, post: u64, comment: u64) -> Result<u64, StoreError> {
    let job = super::take_numbers(tx, "next_fanout", 1)?;
    tx.open_table(FANOUTNO_JOB)?
        .insert(job, (c, post, comment, 0))?;
    Ok(job)
}

/// Of the members from `from` on (at most `batch`), those who may see `post`, each given an
/// event at one new position. Returns (users, pos) and the next member to read (None: done).
fn announce_batch(
    tx: &WriteTransaction,
    community: &CommunityRecord,
    post: &PostRecord,
    comment: u64,
    from: u64,
    batch: usize,
) -> Result<(Wake, Option<u64>), StoreError> {
    let members: Vec<(u64, CommunityRole)> = {
        let t = tx.open_table(COMMUNITYNO_USERID_MEMBER)?;
        let mut out = Vec::new();
        for row in t
            .range((community.id, from)..=(community.id, u64::MAX))?
            .take(batch.max(1))
        {
            let (k, v) = row?;
            out.push((k.value().1, CommunityRole::from_code(v.value().0)?));
        }
        out
    };
    let next = if members.len() < batch.max(1) {
        None
    } else {
        members.last().and_then(|(u, _)| u.checked_add(1))
    };
    let mut users = Vec::new();
    for (u, role) in members {
        let f = Facts {
            community_public: community.public,
            role: Some(role),
            banned: false,
            is_author: u == post.author,
            friends: post.visibility == PostVisibility::Friends
                && u != post.author
                && are_friends_w(tx, post.author, u)?,
        };
        if may_see(post.visibility, &f) {
            users.push(u);
        }
    }
    if users.is_empty() {
        return Ok(((users, 0), next));
    }
    let pos = next_pos(tx)?;
    let ev = EventRecord::Community {
        community: community.id,
        post: post.id,
        comment,
    }
    .encode();
    let mut events = tx.open_table(USERID_POS_EVENT)?;
    for u in &users {
        events.insert((*u, pos), ev.as_slice())?;
    }
    Ok(((users, pos), next))
}

// ---- Inputs and outcomes ------------------------------------------------------------------

/// Why a community write was refused (decided inside its transaction).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommunityRefusal {
    /// No such community, post or comment, or not one the actor may see.
    NotFound,
    /// The actor's role does not allow it.
    Forbidden(&'static str),
    /// The state does not allow it (e.g. the owner leaving, banning the owner).
    Conflict(&'static str),
    /// The actor is banned from the community.
    Banned,
}

/// What a join did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Joined {
    Member,
    Requested,
}

/// An author's change to a post: `None` keeps what is there.
#[derive(Debug, Clone)]
pub struct PostEdit {
    pub body_sealed: Option<Vec<u8>>,
    pub media: Option<Vec<String>>,
    pub visibility: Option<PostVisibility>,
    /// `Some(empty)` removes the place.
    pub place_sealed: Option<Vec<u8>>,
}

/// A settings change by the owner: `None` keeps what is there.
#[derive(Debug, Clone, Default)]
pub struct CommunityEdit {
    pub name: Option<String>,
    pub description: Option<String>,
    /// `Some(None)` removes the avatar.
    pub avatar: Option<Option<String>>,
    pub public: Option<bool>,
}

/// A moderator's action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moderation {
    /// Invite a user (private) or approve their request.
    Admit(u64),
    /// Turn down a request or withdraw an invitation.
    Reject(u64),
    RemoveMember(u64),
    Ban(u64),
    Unban(u64),
    /// Owner only: make a member a moderator or a moderator a member.
    SetRole(u64, CommunityRole),
}

/// Who to wake after a write: users and the event position.
pub type Wake = (Vec<u64>, u64);

/// A community with what one viewer needs to know about it.
#[derive(Debug, Clone)]
pub struct CommunityFacts {
    pub community: CommunityRecord,
    pub role: Option<CommunityRole>,
    /// "asked" or "invited" while a request or invitation is open.
    pub pending: Option<&'static str>,
    pub banned: bool,
    pub members: u64,
}

/// A member or a pending request, for the members list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRow {
    pub user: u64,
    pub role: Option<CommunityRole>,
    pub pending: Option<&'static str>,
    pub since: Millis,
}

fn pending_name(kind: u64) -> &'static str {
    if kind == 1 { "invited" } else { "asked" }
}

fn community_facts_r(
    tx: &ReadTransaction,
    community: CommunityRecord,
    viewer: u64,
) -> Result<CommunityFacts, StoreError> {
    let f = facts_r(tx, &community, viewer)?;
    let pending = tx
        .open_table(COMMUNITYNO_USERID_PENDING)?
        .get((community.id, viewer))?
        .map(|v| pending_name(v.value().0));
    let members = tx
        .open_table(COMMUNITYNO_USERID_MEMBER)?
        .range((community.id, 0)..=(community.id, u64::MAX))?
        .count() as u64;
    Ok(CommunityFacts {
        community,
        role: f.role,
        pending,
        banned: f.banned,
        members,
    })
}

/// Whether `viewer` can see that the community exists: public ones everyone, private ones their
/// members and those invited or asking.
fn knows(c: &CommunityFacts) -> bool {
    c.community.public || c.role.is_some() || c.pending.is_some()
}

impl Store {
    /// Creates community `id` (a random number: knowing it is being told of it) owned by
    /// `owner`; false if the number is taken.
    #[allow(clippy::too_many_arguments)]
    pub async fn create_community(
        &self,
        id: u64,
        name: String,
        description: String,
        avatar: Option<String>,
        public: bool,
        owner: u64,
        now: Millis,
    ) -> Result<bool, StoreError> {
        self.write(move |tx| {
            if id == 0 || get_community_w(tx, id)?.is_some() {
                return Ok(false);
            }
            let rec = CommunityRecord {
                id,
                name: name.clone(),
                description: description.clone(),
                avatar: avatar.clone(),
                public,
                owner,
                created: now,
            };
            tx.open_table(COMMUNITYNO_COMMUNITY)?
                .insert(id, rec.encode().as_slice())?;
            add_member(tx, id, owner, CommunityRole::Owner, now)?;
            if let Some(a) = &avatar {
                tx.open_table(MEDIAID_COMMUNITYNO_POSTNO)?
                    .insert((a.as_str(), id, 0), ())?;
            }
            note_change(tx, SearchChange::Community(id))?;
            Ok(true)
        })
        .await
    }

    /// A community as `viewer` sees it; None if it does not exist or `viewer` may not know of
    /// it (a private community they are not a member of, invited to or asking to join).
    pub async fn community_for(
        &self,
        c: u64,
        viewer: u64,
    ) -> Result<Option<CommunityFacts>, StoreError> {
        self.read(move |tx| {
            let Some(rec) = get_community_r(tx, c)? else {
                return Ok(None);
            };
            let f = community_facts_r(tx, rec, viewer)?;
            Ok(knows(&f).then_some(f))
        })
        .await
    }

    /// Public communities with a number above `after` whose name or description contains
    /// `q` (case-insensitive; every one without `q`), at most `limit`, in number order.
    pub async fn public_communities(
        &self,
        viewer: u64,
        q: Option<String>,
        after: u64,
        limit: usize,
    ) -> Result<Vec<CommunityFacts>, StoreError> {
        self.read(move |tx| {
            let q = q.map(|q| q.to_lowercase());
            let mut out = Vec::new();
            for row in tx
                .open_table(COMMUNITYNO_COMMUNITY)?
                .range(after.saturating_add(1)..)?
            {
                let (k, v) = row?;
                let rec = CommunityRecord::decode(k.value(), v.value())?;
                if !rec.public {
                    continue;
                }
                if let Some(q) = &q
                    && !rec.name.to_lowercase().contains(q.as_str())
                    && !rec.description.to_lowercase().contains(q.as_str())
                {
                    continue;
                }
                out.push(community_facts_r(tx, rec, viewer)?);
                if out.len() >= limit {
                    break;
                }
            }
            Ok(out)
        })
        .await
    }

    /// The communities `user` is a member of, in number order.
    pub async fn communities_of(&self, user: u64) -> Result<Vec<CommunityFacts>, StoreError> {
        self.read(move |tx| {
            let ids: Vec<u64> = tx
                .open_table(USERID_COMMUNITYNO)?
                .range((user, 0)..=(user, u64::MAX))?
                .map(|r| r.map(|(k, _)| k.value().1))
                .collect::<Result<_, _>>()?;
            let mut out = Vec::new();
            for c in ids {
                if let Some(rec) = get_community_r(tx, c)? {
                    out.push(community_facts_r(tx, rec, user)?);
                }
            }
            Ok(out)
        })
        .await
    }

    /// The owner changes the settings (logged).
    pub async fn update_community(
        &self,
        c: u64,
        actor: u64,
        edit: CommunityEdit,
        now: Millis,
    ) -> Result<Result<(), CommunityRefusal>, StoreError> {
        self.write(move |tx| {
            let Some(mut rec) = get_community_w(tx, c)? else {
                return Ok(Err(CommunityRefusal::NotFound));
            };
            match role_w(tx, c, actor)? {
                Some(CommunityRole::Owner) => {}
                Some(_) => {
                    return Ok(Err(CommunityRefusal::Forbidden(
                        "only the owner changes the community's settings",
                    )));
                }
                None => return Ok(Err(CommunityRefusal::NotFound)),
            }
            if let Some(n) = &edit.name {
                rec.name = n.clone();
            }
            if let Some(d) = &edit.description {
                rec.description = d.clone();
            }
            if let Some(p) = edit.public {
                rec.public = p;
            }
            if let Some(a) = &edit.avatar {
                let mut refs = tx.open_table(MEDIAID_COMMUNITYNO_POSTNO)?;
                if let Some(old) = &rec.avatar {
                    refs.remove((old.as_str(), c, 0))?;
                }
                if let Some(new) = a {
                    refs.insert((new.as_str(), c, 0), ())?;
                }
                rec.avatar = a.clone();
            }
            tx.open_table(COMMUNITYNO_COMMUNITY)?
                .insert(c, rec.encode().as_slice())?;
            note_change(tx, SearchChange::Community(c))?;
            log(tx, c, entry(now, actor, ModAction::Update, 0))?;
            Ok(Ok(()))
        })
        .await
    }

    /// `user` joins: a public community at once, a private one when invited (otherwise the
    /// request waits for a moderator).
    pub async fn join_community(
        &self,
        c: u64,
        user: u64,
        now: Millis,
    ) -> Result<Result<Joined, CommunityRefusal>, StoreError> {
        self.write(move |tx| {
            let Some(rec) = get_community_w(tx, c)? else {
                return Ok(Err(CommunityRefusal::NotFound));
            };
            if role_w(tx, c, user)?.is_some() {
                return Ok(Ok(Joined::Member));
            }
            let pending = tx
                .open_table(COMMUNITYNO_USERID_PENDING)?
                .get((c, user))?
                .map(|v| v.value().0);
            if tx
                .open_table(COMMUNITYNO_USERID_BAN)?
                .get((c, user))?
                .is_some()
            {
                return Ok(Err(CommunityRefusal::Banned));
            }
            if rec.public || pending == Some(1) {
                add_member(tx, c, user, CommunityRole::Member, now)?;
                Ok(Ok(Joined::Member))
            } else {
                tx.open_table(COMMUNITYNO_USERID_PENDING)?
                    .insert((c, user), (0, now.0, 0))?;
                Ok(Ok(Joined::Requested))
            }
        })
        .await
    }

    /// `user` leaves (or withdraws their request). The owner cannot leave.
    pub async fn leave_community(
        &self,
        c: u64,
        user: u64,
    ) -> Result<Result<(), CommunityRefusal>, StoreError> {
        self.write(move |tx| {
            if get_community_w(tx, c)?.is_none() {
                return Ok(Err(CommunityRefusal::NotFound));
            }
            match role_w(tx, c, user)? {
                Some(CommunityRole::Owner) => Ok(Err(CommunityRefusal::Conflict(
                    "the owner cannot leave the community",
                ))),
                Some(_) => {
                    remove_member(tx, c, user)?;
                    Ok(Ok(()))
                }
                None => {
                    let had = tx
                        .open_table(COMMUNITYNO_USERID_PENDING)?
                        .remove((c, user))?
                        .is_some();
                    Ok(if had {
                        Ok(())
                    } else {
                        Err(CommunityRefusal::NotFound)
                    })
                }
            }
        })
        .await
    }

    /// A moderator's action on a member, logged in the community's log.
    pub async fn moderate(
        &self,
        c: u64,
        actor: u64,
        action: Moderation,
        now: Millis,
    ) -> Result<Result<(), CommunityRefusal>, StoreError> {
        self.write(move |tx| {
            let Some(_rec) = get_community_w(tx, c)? else {
                return Ok(Err(CommunityRefusal::NotFound));
            };
            let Some(mine) = role_w(tx, c, actor)? else {
                return Ok(Err(CommunityRefusal::NotFound));
            };
            if !mine.moderates() {
                return Ok(Err(CommunityRefusal::Forbidden(
                    "only the community's moderators do this",
                )));
            }
            let target = match action {
                Moderation::Admit(u)
                | Moderation::Reject(u)
                | Moderation::RemoveMember(u)
                | Moderation::Ban(u)
                | Moderation::Unban(u)
                | Moderation::SetRole(u, _) => u,
            };
            let theirs = role_w(tx, c, target)?;
            // Nobody acts on someone of their own rank or above (the owner on themselves).
            if let Some(r) = theirs
                && r >= mine
                && !matches!(action, Moderation::Admit(_))
            {
                return Ok(Err(CommunityRefusal::Forbidden(
                    "moderators act on members; only the owner acts on moderators",
                )));
            }
            let mut e = entry(now, actor, ModAction::Update, target);
            match action {
                Moderation::Admit(u) => {
                    if theirs.is_some() {
                        return Ok(Ok(()));
                    }
                    if tx
                        .open_table(COMMUNITYNO_USERID_BAN)?
                        .get((c, u))?
                        .is_some()
                    {
                        return Ok(Err(CommunityRefusal::Conflict(
                            "the user is banned; unban them first",
                        )));
                    }
                    let asked = tx
                        .open_table(COMMUNITYNO_USERID_PENDING)?
                        .get((c, u))?
                        .map(|v| v.value().0);
                    match asked {
                        Some(0) => {
                            add_member(tx, c, u, CommunityRole::Member, now)?;
                            e.action = ModAction::Approve;
                        }
                        Some(_) => return Ok(Ok(())),
                        None => {
                            tx.open_table(COMMUNITYNO_USERID_PENDING)?
                                .insert((c, u), (1, now.0, actor))?;
                            e.action = ModAction::Invite;
                        }
                    }
                }
                Moderation::Reject(u) => {
                    if tx
                        .open_table(COMMUNITYNO_USERID_PENDING)?
                        .remove((c, u))?
                        .is_none()
                    {
                        return Ok(Err(CommunityRefusal::NotFound));
                    }
                    e.action = ModAction::Reject;
                }
                Moderation::RemoveMember(u) => {
                    if !remove_member(tx, c, u)? {
                        return Ok(Err(CommunityRefusal::NotFound));
                    }
                    e.action = ModAction::RemoveMember;
                }
                Moderation::Ban(u) => {
                    if u == actor {
                        return Ok(Err(CommunityRefusal::Conflict("you cannot ban yourself")));
                    }
                    remove_member(tx, c, u)?;
                    tx.open_table(COMMUNITYNO_USERID_PENDING)?.remove((c, u))?;
                    tx.open_table(COMMUNITYNO_USERID_BAN)?
                        .insert((c, u), (now.0, actor))?;
                    e.action = ModAction::Ban;
                }
                Moderation::Unban(u) => {
                    if tx
                        .open_table(COMMUNITYNO_USERID_BAN)?
                        .remove((c, u))?
                        .is_none()
                    {
                        return Ok(Err(CommunityRefusal::NotFound));
                    }
                    e.action = ModAction::Unban;
                }
                Moderation::SetRole(u, role) => {
                    if mine != CommunityRole::Owner {
                        return Ok(Err(CommunityRefusal::Forbidden(
                            "only the owner appoints moderators",
                        )));
                    }
                    if theirs.is_none() {
                        return Ok(Err(CommunityRefusal::NotFound));
                    }
                    if role == CommunityRole::Owner {
                        return Ok(Err(CommunityRefusal::Conflict("a community has one owner")));
                    }
                    add_member(tx, c, u, role, now)?;
                    e.action = ModAction::SetRole;
                    e.role = Some(role);
                }
            }
            log(tx, c, e)?;
            Ok(Ok(()))
        })
        .await
    }

    /// Members (with roles), then pending requests and invitations, then (for moderators)
    /// bans as role None with pending "banned". None if `viewer` is not a member.
    pub async fn community_members(
        &self,
        c: u64,
        viewer: u64,
    ) -> Result<Option<Vec<MemberRow>>, StoreError> {
        self.read(move |tx| {
            let t = tx.open_table(COMMUNITYNO_USERID_MEMBER)?;
            let Some(mine) = role_of(&t, c, viewer)? else {
                return Ok(None);
            };
            let mut out = Vec::new();
            for row in t.range((c, 0)..=(c, u64::MAX))? {
                let (k, v) = row?;
                let (role, joined) = v.value();
                out.push(MemberRow {
                    user: k.value().1,
                    role: Some(CommunityRole::from_code(role)?),
                    pending: None,
                    since: Millis(joined),
                });
            }
            if mine.moderates() {
                for row in tx
                    .open_table(COMMUNITYNO_USERID_PENDING)?
                    .range((c, 0)..=(c, u64::MAX))?
                {
                    let (k, v) = row?;
                    let (kind, at, _) = v.value();
                    out.push(MemberRow {
                        user: k.value().1,
                        role: None,
                        pending: Some(pending_name(kind)),
                        since: Millis(at),
                    });
                }
                for row in tx
                    .open_table(COMMUNITYNO_USERID_BAN)?
                    .range((c, 0)..=(c, u64::MAX))?
                {
                    let (k, v) = row?;
                    out.push(MemberRow {
                        user: k.value().1,
                        role: None,
                        pending: Some("banned"),
                        since: Millis(v.value().0),
                    });
                }
            }
            Ok(Some(out))
        })
        .await
    }

    /// The moderation log, newest first, below `before`; None unless `viewer` moderates.
    pub async fn moderation_log(
        &self,
        c: u64,
        viewer: u64,
        before: u64,
        limit: usize,
    ) -> Result<Option<Vec<ModLogRecord>>, StoreError> {
        self.read(move |tx| {
            match role_of(&tx.open_table(COMMUNITYNO_USERID_MEMBER)?, c, viewer)? {
                Some(r) if r.moderates() => {}
                _ => return Ok(None),
            }
            let mut out = Vec::new();
            for row in tx
                .open_table(COMMUNITYNO_SEQ_MODLOG)?
                .range((c, 0)..(c, before))?
                .rev()
                .take(limit)
            {
                let (k, v) = row?;
                out.push(ModLogRecord::decode(k.value().1, v.value())?);
            }
            Ok(Some(out))
        })
        .await
    }

    /// Writes the next batch (at most `batch` members) of fan-out job `job`'s events in one
    /// transaction. Returns the users woken and their position, or None once the job is done
    /// (or its post is gone); each step reads on from where the last one stopped.
    pub async fn fan_out_step(&self, job: u64, batch: usize) -> Result<Option<Wake>, StoreError> {
        self.write(move |tx| {
            let Some((c, p, comment, from)) =
                tx.open_table(FANOUTNO_JOB)?.get(job)?.map(|v| v.value())
            else {
                return Ok(None);
            };
            let found = match (get_community_w(tx, c)?, get_post_w(tx, p)?) {
                (Some(community), Some(post)) if post.community == c => Some((community, post)),
                _ => None,
            };
            let Some((community, post)) = found else {
                tx.open_table(FANOUTNO_JOB)?.remove(job)?;
                return Ok(None);
            };
            let (wake, next) = announce_batch(tx, &community, &post, comment, from, batch)?;
            match next {
                Some(n) => {
                    tx.open_table(FANOUTNO_JOB)?
                        .insert(job, (c, p, comment, n))?;
                }
                None => {
                    tx.open_table(FANOUTNO_JOB)?.remove(job)?;
                }
            }
            Ok(Some(wake))
        })
        .await
    }

    /// Fan-out jobs not finished (left by a stop between a post's commit and its events).
    pub async fn fan_out_jobs(&self) -> Result<Vec<u64>, StoreError> {
        self.read(|tx| {
            tx.open_table(FANOUTNO_JOB)?
                .iter()?
                .map(|r| r.map(|(k, _)| k.value()).map_err(StoreError::from))
                .collect()
        })
        .await
    }

    /// Stores a new post by a member; `seal(id)` seals body and place under the author's
    /// key for the number assigned. Media must be the author's (checked by the domain).
    /// Returns the post's number and its fan-out job (see [`Store::fan_out_step`]).
    #[allow(clippy::too_many_arguments)]
    pub async fn create_post(
        &self,
        c: u64,
        author: u64,
        visibility: PostVisibility,
        media: Vec<String>,
        now: Millis,
        seal: impl Fn(u64) -> Result<(Vec<u8>, Vec<u8>), StoreError> + Send + 'static,
    ) -> Result<Result<(u64, u64), CommunityRefusal>, StoreError> {
        self.write(move |tx| {
            let Some(community) = get_community_w(tx, c)? else {
                return Ok(Err(CommunityRefusal::NotFound));
            };
            if tx
                .open_table(COMMUNITYNO_USERID_BAN)?
                .get((c, author))?
                .is_some()
            {
                return Ok(Err(CommunityRefusal::Banned));
            }
            if role_w(tx, c, author)?.is_none() {
                return Ok(Err(if community.public {
                    CommunityRefusal::Forbidden("join the community to post in it")
                } else {
                    CommunityRefusal::NotFound
                }));
            }
            let id = super::take_numbers(tx, "next_post", 1)?;
            let (body_sealed, place_sealed) = seal(id)?;
            let post = PostRecord {
                id,
                community: c,
                author,
                created: now,
                edited: None,
                visibility,
                body_sealed,
                place_sealed,
                media: media.clone(),
            };
            tx.open_table(POSTNO_POST)?
                .insert(id, post.encode().as_slice())?;
            note_change(tx, SearchChange::Post(id))?;
            tx.open_table(COMMUNITYNO_POSTNO)?.insert((c, id), ())?;
            tx.open_table(USERID_POSTNO)?.insert((author, id), ())?;
            {
                let mut refs = tx.open_table(MEDIAID_COMMUNITYNO_POSTNO)?;
                for m in &media {
                    refs.insert((m.as_str(), c, id), ())?;
                }
            }
            Ok(Ok((id, queue_fanout(tx, community.id, id, 0)?)))
        })
        .await
    }

    /// One post if `viewer` may see it (and it is in community `c`).
    pub async fn post_for(
        &self,
        c: u64,
        p: u64,
        viewer: u64,
    ) -> Result<Option<(PostRecord, u64)>, StoreError> {
        self.read(move |tx| {
            let Some(post) = get_post_r(tx, p)? else {
                return Ok(None);
            };
            if post.community != c {
                return Ok(None);
            }
            let Some(community) = get_community_r(tx, c)? else {
                return Ok(None);
            };
            let facts = facts_r(tx, &community, viewer)?;
            if !sees_r(tx, &facts, &post, viewer)? {
                return Ok(None);
            }
            let comments = tx
                .open_table(POSTNO_COMMENTNO_COMMENT)?
                .range((p, 0)..=(p, u64::MAX))?
                .count() as u64;
            Ok(Some((post, comments)))
        })
        .await
    }

    /// The author edits their post (body, media, visibility, place).
    pub async fn edit_post(
        &self,
        c: u64,
        p: u64,
        author: u64,
        edit: PostEdit,
        now: Millis,
    ) -> Result<Result<(), CommunityRefusal>, StoreError> {
        self.write(move |tx| {
            let Some(mut post) = get_post_w(tx, p)?.filter(|x| x.community == c) else {
                return Ok(Err(CommunityRefusal::NotFound));
            };
            if post.author != author {
                return Ok(Err(CommunityRefusal::Forbidden(
                    "only its author edits a post",
                )));
            }
            if let Some(b) = &edit.body_sealed {
                post.body_sealed = b.clone();
            }
            if let Some(v) = edit.visibility {
                post.visibility = v;
            }
            if let Some(pl) = &edit.place_sealed {
                post.place_sealed = pl.clone();
            }
            if let Some(m) = &edit.media {
                let mut refs = tx.open_table(MEDIAID_COMMUNITYNO_POSTNO)?;
                for old in &post.media {
                    refs.remove((old.as_str(), c, p))?;
                }
                for new in m {
                    refs.insert((new.as_str(), c, p), ())?;
                }
                post.media = m.clone();
            }
            post.edited = Some(now);
            tx.open_table(POSTNO_POST)?
                .insert(p, post.encode().as_slice())?;
            note_change(tx, SearchChange::Post(p))?;
            Ok(Ok(()))
        })
        .await
    }

    /// Deletes a post: by its author, or removed by a moderator (logged). Its comments,
    /// favourites and media references go with it.
    pub async fn delete_post(
        &self,
        c: u64,
        p: u64,
        actor: u64,
        now: Millis,
    ) -> Result<Result<(), CommunityRefusal>, StoreError> {
        self.write(move |tx| {
            let Some(post) = get_post_w(tx, p)?.filter(|x| x.community == c) else {
                return Ok(Err(CommunityRefusal::NotFound));
            };
            let mut e = entry(now, actor, ModAction::RemovePost, post.author);
            e.post = p;
            if let Err(refused) =
                author_or_moderator(tx, c, e, "only its author or a moderator deletes a post")?
            {
                return Ok(Err(refused));
            }
            remove_post(tx, &post)?;
            Ok(Ok(()))
        })
        .await
    }

    /// Posts of community `c` that `viewer` may see, newest first, numbered below `before`.
    /// None if `viewer` may not read the community at all.
    pub async fn community_posts(
        &self,
        c: u64,
        viewer: u64,
        before: u64,
        limit: usize,
    ) -> Result<Option<Vec<(PostRecord, u64)>>, StoreError> {
        self.read(move |tx| {
            let Some(community) = get_community_r(tx, c)? else {
                return Ok(None);
            };
            let facts = facts_r(tx, &community, viewer)?;
            if !(community.public || facts.role.is_some()) || facts.banned {
                return Ok(None);
            }
            Ok(Some(page_of(
                tx,
                &[(community, facts)],
                viewer,
                before,
                limit,
            )?))
        })
        .await
    }

    /// Posts across every community `viewer` is a member of, newest first, below `before`.
    pub async fn my_feed(
        &self,
        viewer: u64,
        before: u64,
        limit: usize,
    ) -> Result<Vec<(PostRecord, u64)>, StoreError> {
        self.read(move |tx| {
            let ids: Vec<u64> = tx
                .open_table(USERID_COMMUNITYNO)?
                .range((viewer, 0)..=(viewer, u64::MAX))?
                .map(|r| r.map(|(k, _)| k.value().1))
                .collect::<Result<_, _>>()?;
            let mut sources = Vec::new();
            for c in ids {
                if let Some(community) = get_community_r(tx, c)? {
                    let f = facts_r(tx, &community, viewer)?;
                    sources.push((community, f));
                }
            }
            page_of(tx, &sources, viewer, before, limit)
        })
        .await
    }

    /// Comments of a post `viewer` may see, oldest first, numbered above `after`.
    pub async fn post_comments(
        &self,
        c: u64,
        p: u64,
        viewer: u64,
        after: u64,
        limit: usize,
    ) -> Result<Option<Vec<CommentRecord>>, StoreError> {
        self.read(move |tx| {
            let Some(post) = get_post_r(tx, p)?.filter(|x| x.community == c) else {
                return Ok(None);
            };
            let Some(community) = get_community_r(tx, c)? else {
                return Ok(None);
            };
            let facts = facts_r(tx, &community, viewer)?;
            if !sees_r(tx, &facts, &post, viewer)? {
                return Ok(None);
            }
            let mut out = Vec::new();
            for row in tx
                .open_table(POSTNO_COMMENTNO_COMMENT)?
                .range((p, after.saturating_add(1))..=(p, u64::MAX))?
                .take(limit)
            {
                let (k, v) = row?;
                out.push(CommentRecord::decode(p, k.value().1, v.value())?);
            }
            Ok(Some(out))
        })
        .await
    }

    /// The comments of post `p` among `ids` that still exist (for quotes).
    pub async fn comments_by_id(
        &self,
        p: u64,
        ids: Vec<u64>,
    ) -> Result<Vec<CommentRecord>, StoreError> {
        self.read(move |tx| {
            let t = tx.open_table(POSTNO_COMMENTNO_COMMENT)?;
            let mut out = Vec::new();
            for id in ids {
                if let Some(v) = t.get((p, id))? {
                    out.push(CommentRecord::decode(p, id, v.value())?);
                }
            }
            Ok(out)
        })
        .await
    }

    /// Adds a comment by someone who may see the post and is a member (or, in a public
    /// community, anyone not banned). `seal(id)` seals the text. Returns the comment's number
    /// and its fan-out job (see [`Store::fan_out_step`]).
    #[allow(clippy::too_many_arguments)]
    pub async fn create_comment(
        &self,
        c: u64,
        p: u64,
        author: u64,
        parent: u64,
        quote: u64,
        now: Millis,
        seal: impl Fn(u64) -> Result<Vec<u8>, StoreError> + Send + 'static,
    ) -> Result<Result<(u64, u64), CommunityRefusal>, StoreError> {
        self.write(move |tx| {
            let Some(post) = get_post_w(tx, p)?.filter(|x| x.community == c) else {
                return Ok(Err(CommunityRefusal::NotFound));
            };
            let Some(community) = get_community_w(tx, c)? else {
                return Ok(Err(CommunityRefusal::NotFound));
            };
            let banned = tx
                .open_table(COMMUNITYNO_USERID_BAN)?
                .get((c, author))?
                .is_some();
            let role = role_w(tx, c, author)?;
            let f = Facts {
                community_public: community.public,
                role,
                banned,
                is_author: post.author == author,
                friends: post.visibility == PostVisibility::Friends
                    && post.author != author
                    && are_friends_w(tx, post.author, author)?,
            };
            if !may_see(post.visibility, &f) {
                return Ok(Err(CommunityRefusal::NotFound));
            }
            if banned {
                return Ok(Err(CommunityRefusal::Banned));
            }
            if role.is_none() {
                return Ok(Err(CommunityRefusal::Forbidden(
                    "join the community to comment",
                )));
            }
            {
                let t = tx.open_table(POSTNO_COMMENTNO_COMMENT)?;
                if parent != 0 {
                    let Some(v) = t.get((p, parent))? else {
                        return Ok(Err(CommunityRefusal::Conflict(
                            "the comment replied to is not on this post",
                        )));
                    };
                    if CommentRecord::decode(p, parent, v.value())?.parent != 0 {
                        return Ok(Err(CommunityRefusal::Conflict(
                            "replies are one level deep: reply to the top-level comment",
                        )));
                    }
                }
                if quote != 0 && t.get((p, quote))?.is_none() {
                    return Ok(Err(CommunityRefusal::Conflict(
                        "the comment quoted is not on this post",
                    )));
                }
            }
            let id = super::take_numbers(tx, "next_comment", 1)?;
            let rec = CommentRecord {
                id,
                post: p,
                author,
                parent,
                quote,
                created: now,
                edited: None,
                text_sealed: seal(id)?,
            };
            tx.open_table(POSTNO_COMMENTNO_COMMENT)?
                .insert((p, id), rec.encode().as_slice())?;
            tx.open_table(USERID_COMMENTNO)?.insert((author, id), p)?;
            note_change(tx, SearchChange::Post(p))?;
            Ok(Ok((id, queue_fanout(tx, community.id, post.id, id)?)))
        })
        .await
    }

    /// The author edits a comment's text.
    pub async fn edit_comment(
        &self,
        c: u64,
        p: u64,
        id: u64,
        author: u64,
        text_sealed: Vec<u8>,
        now: Millis,
    ) -> Result<Result<(), CommunityRefusal>, StoreError> {
        self.write(move |tx| {
            if get_post_w(tx, p)?.filter(|x| x.community == c).is_none() {
                return Ok(Err(CommunityRefusal::NotFound));
            }
            let mut t = tx.open_table(POSTNO_COMMENTNO_COMMENT)?;
            let found = t
                .get((p, id))?
                .map(|v| CommentRecord::decode(p, id, v.value()));
            let Some(mut rec) = found.transpose()? else {
                return Ok(Err(CommunityRefusal::NotFound));
            };
            if rec.author != author {
                return Ok(Err(CommunityRefusal::Forbidden(
                    "only its author edits a comment",
                )));
            }
            rec.text_sealed = text_sealed.clone();
            rec.edited = Some(now);
            t.insert((p, id), rec.encode().as_slice())?;
            note_change(tx, SearchChange::Post(p))?;
            Ok(Ok(()))
        })
        .await
    }

    /// Deletes a comment: by its author, or removed by a moderator (logged).
    pub async fn delete_comment(
        &self,
        c: u64,
        p: u64,
        id: u64,
        actor: u64,
        now: Millis,
    ) -> Result<Result<(), CommunityRefusal>, StoreError> {
        self.write(move |tx| {
            if get_post_w(tx, p)?.filter(|x| x.community == c).is_none() {
                return Ok(Err(CommunityRefusal::NotFound));
            }
            let found = tx
                .open_table(POSTNO_COMMENTNO_COMMENT)?
                .get((p, id))?
                .map(|v| CommentRecord::decode(p, id, v.value()));
            let Some(rec) = found.transpose()? else {
                return Ok(Err(CommunityRefusal::NotFound));
            };
            let mut e = entry(now, actor, ModAction::RemoveComment, rec.author);
            e.post = p;
            e.comment = id;
            if let Err(refused) =
                author_or_moderator(tx, c, e, "only its author or a moderator deletes a comment")?
            {
                return Ok(Err(refused));
            }
            remove_comment(tx, &rec)?;
            Ok(Ok(()))
        })
        .await
    }

    /// Adds (`on`) or removes a favourite. Adding needs the post to be visible to `user`.
    pub async fn set_favourite(
        &self,
        c: u64,
        p: u64,
        user: u64,
        on: bool,
        now: Millis,
    ) -> Result<Result<(), CommunityRefusal>, StoreError> {
        self.write(move |tx| {
            if !on {
                tx.open_table(USERID_POSTNO_FAVOURITE)?.remove((user, p))?;
                tx.open_table(POSTNO_USERID_FAVOURITE)?.remove((p, user))?;
                return Ok(Ok(()));
            }
            let Some(post) = get_post_w(tx, p)?.filter(|x| x.community == c) else {
                return Ok(Err(CommunityRefusal::NotFound));
            };
            let Some(community) = get_community_w(tx, c)? else {
                return Ok(Err(CommunityRefusal::NotFound));
            };
            let f = Facts {
                community_public: community.public,
                role: role_w(tx, c, user)?,
                banned: tx
                    .open_table(COMMUNITYNO_USERID_BAN)?
                    .get((c, user))?
                    .is_some(),
                is_author: post.author == user,
                friends: post.visibility == PostVisibility::Friends
                    && post.author != user
                    && are_friends_w(tx, post.author, user)?,
            };
            if !may_see(post.visibility, &f) {
                return Ok(Err(CommunityRefusal::NotFound));
            }
            tx.open_table(USERID_POSTNO_FAVOURITE)?
                .insert((user, p), now.0)?;
            tx.open_table(POSTNO_USERID_FAVOURITE)?
                .insert((p, user), ())?;
            Ok(Ok(()))
        })
        .await
    }

    /// `user`'s favourites that they may still see, newest post first, below `before`.
    pub async fn favourites(
        &self,
        user: u64,
        before: u64,
        limit: usize,
    ) -> Result<Vec<(PostRecord, u64)>, StoreError> {
        self.read(move |tx| {
            let mut out = Vec::new();
            for row in tx
                .open_table(USERID_POSTNO_FAVOURITE)?
                .range((user, 0)..(user, before))?
                .rev()
            {
                let p = row?.0.value().1;
                let Some(post) = get_post_r(tx, p)? else {
                    continue;
                };
                let Some(community) = get_community_r(tx, post.community)? else {
                    continue;
                };
                let facts = facts_r(tx, &community, user)?;
                if sees_r(tx, &facts, &post, user)? {
                    let n = comment_count(tx, p)?;
                    out.push((post, n));
                    if out.len() >= limit {
                        break;
                    }
                }
            }
            Ok(out)
        })
        .await
    }

    /// Which of `posts` `user` has favoured.
    pub async fn favoured(&self, user: u64, posts: Vec<u64>) -> Result<Vec<u64>, StoreError> {
        self.read(move |tx| {
            let t = tx.open_table(USERID_POSTNO_FAVOURITE)?;
            let mut out = Vec::new();
            for p in posts {
                if t.get((user, p))?.is_some() {
                    out.push(p);
                }
            }
            Ok(out)
        })
        .await
    }

    /// Of `posts`, the ones `viewer` may see (for search results and other listings).
    pub async fn visible_posts(
        &self,
        viewer: u64,
        posts: Vec<u64>,
    ) -> Result<Vec<u64>, StoreError> {
        self.read(move |tx| {
            Ok(posts_seen_r(tx, viewer, &posts)?
                .into_iter()
                .zip(&posts)
                .filter(|(s, _)| matches!(s, Seen::Shown(_)))
                .map(|(_, p)| *p)
                .collect())
        })
        .await
    }

    /// Every post and comment `user` wrote, and their favourites as (post, community, time)
    /// (for the export).
    #[allow(clippy::type_complexity)]
    pub async fn community_data_of(
        &self,
        user: u64,
    ) -> Result<(Vec<PostRecord>, Vec<CommentRecord>, Vec<(u64, u64, Millis)>), StoreError> {
        self.read(move |tx| {
            let mut posts = Vec::new();
            for row in tx
                .open_table(USERID_POSTNO)?
                .range((user, 0)..=(user, u64::MAX))?
            {
                let p = row?.0.value().1;
                if let Some(post) = get_post_r(tx, p)? {
                    posts.push(post);
                }
            }
            let mut comments = Vec::new();
            let t = tx.open_table(POSTNO_COMMENTNO_COMMENT)?;
            for row in tx
                .open_table(USERID_COMMENTNO)?
                .range((user, 0)..=(user, u64::MAX))?
            {
                let (k, v) = row?;
                let (id, p) = (k.value().1, v.value());
                if let Some(v) = t.get((p, id))? {
                    comments.push(CommentRecord::decode(p, id, v.value())?);
                }
            }
            let mut favs = Vec::new();
            for row in tx
                .open_table(USERID_POSTNO_FAVOURITE)?
                .range((user, 0)..=(user, u64::MAX))?
            {
                let (k, v) = row?;
                let p = k.value().1;
                if let Some(post) = get_post_r(tx, p)? {
                    favs.push((p, post.community, Millis(v.value())));
                }
            }
            Ok((posts, comments, favs))
        })
        .await
    }

    /// Retention of communities: removes up to `limit` posts (with their comments) created
    /// before `posts`, comments before `comments`, and moderation log entries before `log`,
    /// sparing authors under legal hold. Returns what went (posts, comments, log entries);
    /// fewer than `limit` of each means that category is done. With `dry_run`, counts in a
    /// read snapshot and changes nothing.
    pub async fn community_retention(
        &self,
        posts: Option<Millis>,
        comments: Option<Millis>,
        log_before: Option<Millis>,
        limit: usize,
        dry_run: bool,
    ) -> Result<(u64, u64, u64), StoreError> {
        if dry_run {
            return self
                .read(move |tx| count_due(tx, posts, comments, log_before))
                .await;
        }
        self.write(move |tx| {
            let held: std::collections::HashSet<u64> = tx
                .open_table(USERID_LEGALHOLD)?
                .iter()?
                .map(|r| r.map(|(k, _)| k.value()))
                .collect::<Result<_, _>>()?;
            let mut counts = (0, 0, 0);
            if let Some(cut) = posts {
                let due: Vec<PostRecord> = {
                    let mut out = Vec::new();
                    // Numbers increase with time: the oldest come first.
                    for row in tx.open_table(POSTNO_POST)?.iter()? {
                        let (k, v) = row?;
                        let post = PostRecord::decode(k.value(), v.value())?;
                        if post.created >= cut {
                            break;
                        }
                        if !held.contains(&post.author) {
                            out.push(post);
                            if out.len() >= limit {
                                break;
                            }
                        }
                    }
                    out
                };
                for post in &due {
                    remove_post(tx, post)?;
                }
                counts.0 = due.len() as u64;
            }
            if let Some(cut) = comments {
                let due: Vec<CommentRecord> = {
                    let mut out = Vec::new();
                    for row in tx.open_table(POSTNO_COMMENTNO_COMMENT)?.iter()? {
                        let (k, v) = row?;
                        let (p, id) = k.value();
                        let rec = CommentRecord::decode(p, id, v.value())?;
                        if rec.created < cut && !held.contains(&rec.author) {
                            out.push(rec);
                            if out.len() >= limit {
                                break;
                            }
                        }
                    }
                    out
                };
                let mut t = tx.open_table(POSTNO_COMMENTNO_COMMENT)?;
                let mut by_user = tx.open_table(USERID_COMMENTNO)?;
                for rec in &due {
                    t.remove((rec.post, rec.id))?;
                    by_user.remove((rec.author, rec.id))?;
                }
                counts.1 = due.len() as u64;
            }
            if let Some(cut) = log_before {
                let mut t = tx.open_table(COMMUNITYNO_SEQ_MODLOG)?;
                let due: Vec<(u64, u64)> = {
                    let mut out = Vec::new();
                    for row in t.iter()? {
                        let (k, v) = row?;
                        let (c, seq) = k.value();
                        if ModLogRecord::decode(seq, v.value())?.at < cut {
                            out.push((c, seq));
                            if out.len() >= limit {
                                break;
                            }
                        }
                    }
                    out
                };
                for key in &due {
                    t.remove(*key)?;
                }
                counts.2 = due.len() as u64;
            }
            Ok(counts)
        })
        .await
    }
}

/// What community retention would remove now (posts, comments not on those posts, log).
fn count_due(
    tx: &ReadTransaction,
    posts: Option<Millis>,
    comments: Option<Millis>,
    log_before: Option<Millis>,
) -> Result<(u64, u64, u64), StoreError> {
    let held: std::collections::HashSet<u64> = tx
        .open_table(USERID_LEGALHOLD)?
        .iter()?
        .map(|r| r.map(|(k, _)| k.value()))
        .collect::<Result<_, _>>()?;
    let mut counts = (0, 0, 0);
    let mut gone = std::collections::HashSet::new();
    if let Some(cut) = posts {
        for row in tx.open_table(POSTNO_POST)?.iter()? {
            let (k, v) = row?;
            let post = PostRecord::decode(k.value(), v.value())?;
            if post.created >= cut {
                break;
            }
            if !held.contains(&post.author) {
                gone.insert(post.id);
                counts.0 += 1;
            }
        }
    }
    if let Some(cut) = comments {
        for row in tx.open_table(POSTNO_COMMENTNO_COMMENT)?.iter()? {
            let (k, v) = row?;
            let (p, id) = k.value();
            let rec = CommentRecord::decode(p, id, v.value())?;
            if rec.created < cut && !held.contains(&rec.author) && !gone.contains(&p) {
                counts.1 += 1;
            }
        }
    }
    if let Some(cut) = log_before {
        for row in tx.open_table(COMMUNITYNO_SEQ_MODLOG)?.iter()? {
            let (k, v) = row?;
            if ModLogRecord::decode(k.value().1, v.value())?.at < cut {
                counts.2 += 1;
            }
        }
    }
    Ok(counts)
}

fn comment_count(tx: &ReadTransaction, p: u64) -> Result<u64, StoreError> {
    Ok(tx
        .open_table(POSTNO_COMMENTNO_COMMENT)?
        .range((p, 0)..=(p, u64::MAX))?
        .count() as u64)
}

/// The newest `limit` posts below `before` across `sources` that `viewer` may see, with their
/// comment counts. Each community contributes at most `limit` candidates it reads newest first.
fn page_of(
    tx: &ReadTransaction,
    sources: &[(CommunityRecord, Facts)],
    viewer: u64,
    before: u64,
    limit: usize,
) -> Result<Vec<(PostRecord, u64)>, StoreError> {
    let index = tx.open_table(COMMUNITYNO_POSTNO)?;
    let mut found: BTreeMap<u64, PostRecord> = BTreeMap::new();
    for (community, facts) in sources {
        if facts.banned {
            continue;
        }
        let mut taken = 0;
        for row in index
            .range((community.id, 0)..(community.id, before))?
            .rev()
        {
            let p = row?.0.value().1;
            // Older than everything already kept in a full page: nothing further here helps.
            if found.len() >= limit && found.keys().next().is_some_and(|k| p < *k) {
                break;
            }
            let Some(post) = get_post_r(tx, p)? else {
                continue;
            };
            if sees_r(tx, facts, &post, viewer)? {
                found.insert(p, post);
                taken += 1;
                while found.len() > limit {
                    found.pop_first();
                }
                if taken >= limit {
                    break;
                }
            }
        }
    }
    let mut out = Vec::with_capacity(found.len());
    for (p, post) in found.into_iter().rev() {
        out.push((post, comment_count(tx, p)?));
    }
    Ok(out)
}

// ---- Erasure and revocation ---------------------------------------------------------------

/// One bounded, resumable step of erasing `user` from communities. `batch` bounds the rows a
/// step removes or rewrites (and the moderation-log entries it reads); `cursor` is where the
/// last part — the scan of every community for the user's requests, bans and the log entries
/// naming them — goes on from, kept in the erasure record between steps ((0, 0) to begin).
/// In order: their posts (each with its comments and favourites), their comments elsewhere (a
/// top-level one with its replies), their favourites, their memberships (an owner's community
/// passes to its longest-serving moderator, else member; one left with no member is removed
/// with everything in it, a batch at a time), then the scan, where log entries naming them
/// lose the name. The parts before the scan show their own progress (the rows left); a step
/// cut short by a crash leaves nothing half-done, and the next one starts where it stopped.
/// True when nothing is left.
pub fn erase_step(
    tx: &WriteTransaction,
    user: u64,
    batch: usize,
    cursor: &mut (u64, u64),
) -> Result<bool, StoreError> {
    let mut budget = batch.max(1);
    let posts: Vec<u64> = tx
        .open_table(USERID_POSTNO)?
        .range((user, 0)..=(user, u64::MAX))?
        .take(budget)
        .map(|r| r.map(|(k, _)| k.value().1))
        .collect::<Result<_, _>>()?;
    for p in &posts {
        match get_post_w(tx, *p)? {
            Some(post) => {
                if !remove_post_within(tx, &post, &mut budget)? {
                    return Ok(false);
                }
            }
            None => {
                tx.open_table(USERID_POSTNO)?.remove((user, *p))?;
                budget = budget.saturating_sub(1);
            }
        }
        if budget == 0 {
            return Ok(false);
        }
    }
    let comments: Vec<(u64, u64)> = tx
        .open_table(USERID_COMMENTNO)?
        .range((user, 0)..=(user, u64::MAX))?
        .take(budget)
        .map(|r| r.map(|(k, v)| (k.value().1, v.value())))
        .collect::<Result<_, _>>()?;
    for (id, p) in &comments {
        let found = tx
            .open_table(POSTNO_COMMENTNO_COMMENT)?
            .get((*p, *id))?
            .map(|v| CommentRecord::decode(*p, *id, v.value()));
        match found.transpose()? {
            Some(rec) => {
                if !remove_comment_within(tx, &rec, &mut budget)? {
                    return Ok(false);
                }
            }
            None => {
                tx.open_table(USERID_COMMENTNO)?.remove((user, *id))?;
                budget = budget.saturating_sub(1);
            }
        }
        if budget == 0 {
            return Ok(false);
        }
    }
    let favs: Vec<u64> = tx
        .open_table(USERID_POSTNO_FAVOURITE)?
        .range((user, 0)..=(user, u64::MAX))?
        .take(budget)
        .map(|r| r.map(|(k, _)| k.value().1))
        .collect::<Result<_, _>>()?;
    for p in &favs {
        tx.open_table(POSTNO_USERID_FAVOURITE)?.remove((*p, user))?;
        tx.open_table(USERID_POSTNO_FAVOURITE)?.remove((user, *p))?;
        budget -= 1;
    }
    if budget == 0 {
        return Ok(false);
    }
    let mine: Vec<(u64, u64)> = tx
        .open_table(USERID_COMMUNITYNO)?
        .range((user, 0)..=(user, u64::MAX))?
        .take(budget)
        .map(|r| r.map(|(k, v)| (k.value().1, v.value())))
        .collect::<Result<_, _>>()?;
    for (c, role) in mine {
        if role == CommunityRole::Owner.code() {
            if !hand_over(tx, c, user, &mut budget)? {
                return Ok(false);
            }
        } else {
            remove_member(tx, c, user)?;
            budget = budget.saturating_sub(1);
        }
        if budget == 0 {
            return Ok(false);
        }
    }
    scan_communities(tx, user, &mut budget, cursor)
}

/// The last part of [`erase_step`]: from `cursor`, every community loses the user's request
/// and ban, and its log entries naming them lose the name. True at the end.
fn scan_communities(
    tx: &WriteTransaction,
    user: u64,
    budget: &mut usize,
    cursor: &mut (u64, u64),
) -> Result<bool, StoreError> {
    loop {
        let next = tx
            .open_table(COMMUNITYNO_COMMUNITY)?
            .range(cursor.0..)?
            .next()
            .transpose()?
            .map(|(k, _)| k.value());
        let Some(c) = next else {
            return Ok(true);
        };
        if c != cursor.0 {
            *cursor = (c, 0);
        }
        if cursor.1 == 0 {
            tx.open_table(COMMUNITYNO_USERID_PENDING)?
                .remove((c, user))?;
            tx.open_table(COMMUNITYNO_USERID_BAN)?.remove((c, user))?;
            cursor.1 = 1;
            *budget = budget.saturating_sub(1);
        }
        let mut log = tx.open_table(COMMUNITYNO_SEQ_MODLOG)?;
        let mut entries = Vec::new();
        for row in log.range((c, cursor.1)..=(c, u64::MAX))?.take(*budget) {
            let (k, v) = row?;
            entries.push(ModLogRecord::decode(k.value().1, v.value())?);
        }
        let read = entries.len();
        for mut r in entries {
            cursor.1 = r.seq.saturating_add(1);
            if r.actor == user || r.target == user {
                if r.actor == user {
                    r.actor = 0;
                }
                if r.target == user {
                    r.target = 0;
                }
                log.insert((c, r.seq), r.encode().as_slice())?;
            }
        }
        *budget = budget.saturating_sub(read);
        let more = log.range((c, cursor.1)..=(c, u64::MAX))?.next().is_some();
        if more {
            return Ok(false);
        }
        match c.checked_add(1) {
            Some(n) => *cursor = (n, 0),
            None => return Ok(true),
        }
        if *budget == 0 {
            return Ok(false);
        }
    }
}

/// Removes up to `budget` rows of a post's comments and favourites, then the post itself (its
/// indexes and media references with it); true once the post is gone.
fn remove_post_within(
    tx: &WriteTransaction,
    post: &PostRecord,
    budget: &mut usize,
) -> Result<bool, StoreError> {
    let comments: Vec<(u64, u64)> = {
        let t = tx.open_table(POSTNO_COMMENTNO_COMMENT)?;
        let mut out = Vec::new();
        for row in t.range((post.id, 0)..=(post.id, u64::MAX))?.take(*budget) {
            let (k, v) = row?;
            let c = CommentRecord::decode(post.id, k.value().1, v.value())?;
            out.push((c.author, c.id));
        }
        out
    };
    {
        let mut t = tx.open_table(POSTNO_COMMENTNO_COMMENT)?;
        let mut by_user = tx.open_table(USERID_COMMENTNO)?;
        for (author, id) in &comments {
            t.remove((post.id, *id))?;
            by_user.remove((*author, *id))?;
        }
    }
    *budget = budget.saturating_sub(comments.len());
    let fans: Vec<u64> = tx
        .open_table(POSTNO_USERID_FAVOURITE)?
        .range((post.id, 0)..=(post.id, u64::MAX))?
        .take(*budget)
        .map(|r| r.map(|(k, _)| k.value().1))
        .collect::<Result<_, _>>()?;
    {
        let mut favs = tx.open_table(USERID_POSTNO_FAVOURITE)?;
        let mut by_post = tx.open_table(POSTNO_USERID_FAVOURITE)?;
        for u in &fans {
            favs.remove((*u, post.id))?;
            by_post.remove((post.id, *u))?;
        }
    }
    *budget = budget.saturating_sub(fans.len());
    let left = tx
        .open_table(POSTNO_COMMENTNO_COMMENT)?
        .range((post.id, 0)..=(post.id, u64::MAX))?
        .next()
        .is_some()
        || tx
            .open_table(POSTNO_USERID_FAVOURITE)?
            .range((post.id, 0)..=(post.id, u64::MAX))?
            .next()
            .is_some();
    if left || *budget == 0 {
        return Ok(false);
    }
    remove_post(tx, post)?;
    *budget -= 1;
    Ok(true)
}

/// Removes up to `budget` replies of a top-level comment, then the comment; true once gone.
fn remove_comment_within(
    tx: &WriteTransaction,
    c: &CommentRecord,
    budget: &mut usize,
) -> Result<bool, StoreError> {
    if c.parent == 0 {
        let replies: Vec<(u64, u64)> = {
            let t = tx.open_table(POSTNO_COMMENTNO_COMMENT)?;
            let mut out = Vec::new();
            for row in t.range((c.post, c.id + 1)..=(c.post, u64::MAX))? {
                if out.len() >= *budget {
                    break;
                }
                let (k, v) = row?;
                let r = CommentRecord::decode(c.post, k.value().1, v.value())?;
                if r.parent == c.id {
                    out.push((r.author, r.id));
                }
            }
            out
        };
        let full = replies.len() >= *budget;
        {
            let mut t = tx.open_table(POSTNO_COMMENTNO_COMMENT)?;
            let mut by_user = tx.open_table(USERID_COMMENTNO)?;
            for (author, id) in &replies {
                t.remove((c.post, *id))?;
                by_user.remove((*author, *id))?;
            }
        }
        *budget = budget.saturating_sub(replies.len());
        if full {
            return Ok(false);
        }
    }
    tx.open_table(POSTNO_COMMENTNO_COMMENT)?
        .remove((c.post, c.id))?;
    tx.open_table(USERID_COMMENTNO)?.remove((c.author, c.id))?;
    *budget = budget.saturating_sub(1);
    Ok(true)
}

/// The owner `user` leaves community `c`: it passes to its longest-serving moderator, else
/// member; with no other member it is removed with whatever is still in it, up to `budget`
/// rows a step (the owner's membership stays until the community is gone, so the next step
/// finds it again). True once the owner is out.
fn hand_over(
    tx: &WriteTransaction,
    c: u64,
    user: u64,
    budget: &mut usize,
) -> Result<bool, StoreError> {
    let heir = {
        let t = tx.open_table(COMMUNITYNO_USERID_MEMBER)?;
        let mut best: Option<(CommunityRole, std::cmp::Reverse<u64>, u64)> = None;
        for row in t.range((c, 0)..=(c, u64::MAX))? {
            let (k, v) = row?;
            let u = k.value().1;
            if u == user {
                continue;
            }
            let (role, joined) = v.value();
            let cand = (
                CommunityRole::from_code(role)?,
                std::cmp::Reverse(joined),
                u,
            );
            if best.as_ref().is_none_or(|b| (cand.0, cand.1) > (b.0, b.1)) {
                best = Some(cand);
            }
        }
        best.map(|(_, std::cmp::Reverse(joined), u)| (u, joined))
    };
    let Some(mut rec) = get_community_w(tx, c)? else {
        remove_member(tx, c, user)?;
        *budget = budget.saturating_sub(1);
        return Ok(true);
    };
    if let Some((u, joined)) = heir {
        remove_member(tx, c, user)?;
        add_member(tx, c, u, CommunityRole::Owner, Millis(joined))?;
        rec.owner = u;
        tx.open_table(COMMUNITYNO_COMMUNITY)?
            .insert(c, rec.encode().as_slice())?;
        *budget = budget.saturating_sub(2);
        return Ok(true);
    }
    // Nobody is left: the community goes, a batch at a time.
    let posts: Vec<u64> = tx
        .open_table(COMMUNITYNO_POSTNO)?
        .range((c, 0)..=(c, u64::MAX))?
        .take(*budget)
        .map(|r| r.map(|(k, _)| k.value().1))
        .collect::<Result<_, _>>()?;
    for p in posts {
        match get_post_w(tx, p)? {
            Some(post) => {
                if !remove_post_within(tx, &post, budget)? {
                    return Ok(false);
                }
            }
            None => {
                tx.open_table(COMMUNITYNO_POSTNO)?.remove((c, p))?;
                *budget = budget.saturating_sub(1);
            }
        }
        if *budget == 0 {
            return Ok(false);
        }
    }
    if tx
        .open_table(COMMUNITYNO_POSTNO)?
        .range((c, 0)..=(c, u64::MAX))?
        .next()
        .is_some()
    {
        return Ok(false);
    }
    if !drain(tx, COMMUNITYNO_SEQ_MODLOG, c, budget)?
        || !drain(tx, COMMUNITYNO_USERID_PENDING, c, budget)?
        || !drain(tx, COMMUNITYNO_USERID_BAN, c, budget)?
    {
        return Ok(false);
    }
    if let Some(a) = &rec.avatar {
        tx.open_table(MEDIAID_COMMUNITYNO_POSTNO)?
            .remove((a.as_str(), c, 0))?;
    }
    tx.open_table(COMMUNITYNO_COMMUNITY)?.remove(c)?;
    note_change(tx, SearchChange::Community(c))?;
    remove_member(tx, c, user)?;
    *budget = budget.saturating_sub(1);
    Ok(true)
}

/// Removes up to `budget` of community `c`'s rows of `table` (keyed (community, …)); true once
/// none is left.
fn drain<V: redb::Value + 'static>(
    tx: &WriteTransaction,
    table: redb::TableDefinition<'static, (u64, u64), V>,
    c: u64,
    budget: &mut usize,
) -> Result<bool, StoreError> {
    let mut t = tx.open_table(table)?;
    let keys: Vec<(u64, u64)> = t
        .range((c, 0)..=(c, u64::MAX))?
        .take(*budget)
        .map(|r| r.map(|(k, _)| k.value()))
        .collect::<Result<_, _>>()?;
    for k in &keys {
        t.remove(*k)?;
    }
    *budget = budget.saturating_sub(keys.len());
    Ok(t.range((c, 0)..=(c, u64::MAX))?.next().is_none())
}

/// Revoking `precise_location` removes the place of every post of `user`, in the transaction
/// that records the revocation.
pub fn drop_places(tx: &WriteTransaction, user: u64) -> Result<(), StoreError> {
    let posts: Vec<u64> = tx
        .open_table(USERID_POSTNO)?
        .range((user, 0)..=(user, u64::MAX))?
        .map(|r| r.map(|(k, _)| k.value().1))
        .collect::<Result<_, _>>()?;
    let mut t = tx.open_table(POSTNO_POST)?;
    for p in posts {
        let found = t.get(p)?.map(|v| PostRecord::decode(p, v.value()));
        if let Some(mut post) = found.transpose()?
            && !post.place_sealed.is_empty()
        {
            post.place_sealed.clear();
            t.insert(p, post.encode().as_slice())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(public: bool, role: Option<CommunityRole>) -> Facts {
        Facts {
            community_public: public,
            role,
            banned: false,
            is_author: false,
            friends: false,
        }
    }

    #[test]
    fn who_may_see_a_post() {
        use CommunityRole::*;
        use PostVisibility::*;
        // Public community: anyone sees public posts, members see members' posts.
        assert!(may_see(Public, &facts(true, None)));
        assert!(!may_see(Members, &facts(true, None)));
        assert!(may_see(Members, &facts(true, Some(Member))));
        // Private community: nobody outside sees anything, public posts included.
        assert!(!may_see(Public, &facts(false, None)));
        assert!(may_see(Public, &facts(false, Some(Member))));
        // Friends only: friends, and not moderators or other members.
        assert!(!may_see(Friends, &facts(true, Some(Moderator))));
        assert!(!may_see(Friends, &facts(true, Some(Member))));
        let mut f = facts(true, Some(Member));
        f.friends = true;
        assert!(may_see(Friends, &f));
        // Friends outside a private community still see nothing.
        let mut f = facts(false, None);
        f.friends = true;
        assert!(!may_see(Friends, &f));
        // The author always; a banned viewer never.
        let mut f = facts(false, None);
        f.is_author = true;
        assert!(may_see(Friends, &f));
        let mut f = facts(true, Some(Member));
        f.banned = true;
        assert!(!may_see(Public, &f));
    }

    fn seal(id: u64) -> Result<(Vec<u8>, Vec<u8>), StoreError> {
        Ok((id.to_be_bytes().to_vec(), Vec::new()))
    }

    /// A post's events are written after it, a bounded batch of members per transaction, to
    /// every member who may see it; a job a stop cut short is still listed, to be finished.
    #[tokio::test]
    async fn a_posts_events_reach_every_member_in_bounded_batches_after_the_post() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(&dir.path().join("n.redb"), |_| Ok(None)).unwrap();
        let now = Millis(10);
        assert!(
            store
                .create_community(7, "big".into(), String::new(), None, true, 1, now)
                .await
                .unwrap()
        );
        for m in 2..=7 {
            store.join_community(7, m, now).await.unwrap().unwrap();
        }
        let (_, job) = store
            .create_post(7, 1, PostVisibility::Members, Vec::new(), now, seal)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            store.fan_out_jobs().await.unwrap(),
            [job],
            "queued with the post"
        );
        let mut woken = Vec::new();
        let mut steps = 0;
        while let Some((users, pos)) = store.fan_out_step(job, 2).await.unwrap() {
            assert!(users.len() <= 2, "one batch at most: {users:?}");
            assert!(users.is_empty() || pos > 0);
            woken.extend(users);
            steps += 1;
            assert!(steps < 10, "the job ends");
        }
        woken.sort_unstable();
        assert_eq!(woken, (1..=7).collect::<Vec<u64>>());
        assert!(steps >= 4, "seven members in batches of two: {steps}");
        assert!(store.fan_out_jobs().await.unwrap().is_empty());
        assert_eq!(store.fan_out_step(job, 2).await.unwrap(), None);
    }

    #[tokio::test]
    async fn visible_posts_keeps_only_what_the_viewer_may_see() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(&dir.path().join("n.redb"), |_| Ok(None)).unwrap();
        let (owner, member, outsider) = (1, 2, 3);
        let now = Millis(10);
        assert!(
            store
                .create_community(7, "open".into(), String::new(), None, true, owner, now)
                .await
                .unwrap()
        );
        assert!(
            store
                .create_community(8, "closed".into(), String::new(), None, false, owner, now)
                .await
                .unwrap()
        );
        assert!(
            !store
                .create_community(8, "again".into(), String::new(), None, true, owner, now)
                .await
                .unwrap(),
            "a number is taken once"
        );
        store.join_community(7, member, now).await.unwrap().unwrap();
        let mut posts = Vec::new();
        for (c, vis) in [
            (7, PostVisibility::Public),
            (7, PostVisibility::Members),
            (7, PostVisibility::Friends),
            (8, PostVisibility::Public),
        ] {
            let (p, _) = store
                .create_post(c, owner, vis, Vec::new(), now, seal)
                .await
                .unwrap()
                .unwrap();
            posts.push(p);
        }
        let all = posts.clone();
        assert_eq!(store.visible_posts(owner, all.clone()).await.unwrap(), all);
        assert_eq!(
            store.visible_posts(member, all.clone()).await.unwrap(),
            posts[..2].to_vec()
        );
        assert_eq!(
            store.visible_posts(outsider, all.clone()).await.unwrap(),
            posts[..1].to_vec()
        );
        // Numbers of nothing are dropped, not refused.
        assert!(
            store
                .visible_posts(outsider, vec![999])
                .await
                .unwrap()
                .is_empty()
        );
    }

    /// (posts, comments, favourites) stored, and whether user `u` is named in any log entry.
    async fn census(store: &Store, u: u64) -> (u64, u64, u64, bool) {
        store
            .read(move |tx| {
                use redb::ReadableTableMetadata;
                let mut named = false;
                for row in tx.open_table(COMMUNITYNO_SEQ_MODLOG)?.iter()? {
                    let (k, v) = row?;
                    let r = ModLogRecord::decode(k.value().1, v.value())?;
                    named |= r.actor == u || r.target == u;
                }
                Ok((
                    tx.open_table(POSTNO_POST)?.len()?,
                    tx.open_table(POSTNO_COMMENTNO_COMMENT)?.len()?,
                    tx.open_table(USERID_POSTNO_FAVOURITE)?.len()?,
                    named,
                ))
            })
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn erasing_from_communities_goes_in_bounded_steps_that_resume_where_they_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(&dir.path().join("n.redb"), |_| Ok(None)).unwrap();
        let (gone, ann, cal) = (1, 2, 3);
        let now = Millis(10);
        let mk = |id, owner| {
            let store = store.clone();
            async move {
                assert!(
                    store
                        .create_community(id, "c".into(), String::new(), None, true, owner, now)
                        .await
                        .unwrap()
                );
            }
        };
        // 7: hers with ann as member (passes to ann); 8: hers alone (removed); 9: cal's, where
        // she was banned (the ban and the log's naming of her go).
        mk(7, gone).await;
        mk(8, gone).await;
        mk(9, cal).await;
        store.join_community(7, ann, now).await.unwrap().unwrap();
        store.join_community(9, gone, now).await.unwrap().unwrap();
        store
            .moderate(9, cal, Moderation::Ban(gone), now)
            .await
            .unwrap()
            .unwrap();
        for _ in 0..6 {
            let (p, _) = store
                .create_post(7, gone, PostVisibility::Public, Vec::new(), now, seal)
                .await
                .unwrap()
                .unwrap();
            for _ in 0..2 {
                store
                    .create_comment(7, p, ann, 0, 0, now, |id| Ok(id.to_be_bytes().to_vec()))
                    .await
                    .unwrap()
                    .unwrap();
            }
            store
                .set_favourite(7, p, ann, true, now)
                .await
                .unwrap()
                .unwrap();
        }
        for _ in 0..5 {
            store
                .create_post(8, gone, PostVisibility::Public, Vec::new(), now, seal)
                .await
                .unwrap()
                .unwrap();
        }
        let (kept, _) = store
            .create_post(7, ann, PostVisibility::Public, Vec::new(), now, seal)
            .await
            .unwrap()
            .unwrap();
        let top = store
            .create_comment(7, kept, gone, 0, 0, now, |id| Ok(id.to_be_bytes().to_vec()))
            .await
            .unwrap()
            .unwrap()
            .0;
        for _ in 0..3 {
            store
                .create_comment(7, kept, ann, top, 0, now, |id| {
                    Ok(id.to_be_bytes().to_vec())
                })
                .await
                .unwrap()
                .unwrap();
        }
        assert_eq!(census(&store, gone).await, (12, 16, 6, true));

        let batch = 4;
        let mut cursor = (0, 0);
        let mut steps = 0;
        let mut before = census(&store, gone).await;
        loop {
            steps += 1;
            assert!(steps < 100, "the steps end");
            let c0 = cursor;
            // Each step is its own transaction: stopping between two loses nothing.
            let (done, c1) = store
                .write(move |tx| {
                    let mut c = c0;
                    Ok((erase_step(tx, gone, batch, &mut c)?, c))
                })
                .await
                .unwrap();
            cursor = c1;
            let after = census(&store, gone).await;
            let removed = (before.0 - after.0) + (before.1 - after.1) + (before.2 - after.2);
            assert!(removed <= batch as u64, "step {steps} removed {removed}");
            before = after;
            if done {
                break;
            }
        }
        assert!(steps >= 9, "{steps} steps for 33 rows in batches of 4");
        // Only ann's post is left, with no comment (hers went with the reply thread).
        assert_eq!(census(&store, gone).await, (1, 0, 0, false));
        let c7 = store.community_for(7, ann).await.unwrap().unwrap();
        assert_eq!(
            (c7.community.owner, c7.role),
            (ann, Some(CommunityRole::Owner))
        );
        assert!(store.community_for(8, ann).await.unwrap().is_none());
        let banned = store
            .read(move |tx| {
                Ok(tx
                    .open_table(COMMUNITYNO_USERID_BAN)?
                    .get((9, gone))?
                    .is_some())
            })
            .await
            .unwrap();
        assert!(!banned);
        assert!(store.communities_of(gone).await.unwrap().is_empty());
    }

    #[test]
    fn records_round_trip() {
        let p = PostRecord {
            id: 7,
            community: 3,
            author: 9,
            created: Millis(5),
            edited: Some(Millis(6)),
            visibility: PostVisibility::Friends,
            body_sealed: vec![1, 2],
            place_sealed: vec![],
            media: vec!["m1".into(), "m2".into()],
        };
        assert_eq!(PostRecord::decode(7, &p.encode()).unwrap(), p);
        let c = CommentRecord {
            id: 4,
            post: 7,
            author: 9,
            parent: 2,
            quote: 3,
            created: Millis(8),
            edited: None,
            text_sealed: vec![5],
        };
        assert_eq!(CommentRecord::decode(7, 4, &c.encode()).unwrap(), c);
        let l = ModLogRecord {
            seq: 2,
            at: Millis(1),
            actor: 1,
            action: ModAction::SetRole,
            target: 2,
            post: 0,
            comment: 0,
            role: Some(CommunityRole::Moderator),
        };
        assert_eq!(ModLogRecord::decode(2, &l.encode()).unwrap(), l);
    }
}
