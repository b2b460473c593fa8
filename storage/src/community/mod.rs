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
//!
//! The parts, one job each: this file holds the records and their encoding, what writes take
//! and answer, and the lookups every part shares; `visibility.rs` the rule and the reads that
//! apply it (also for media and search); `communities.rs` communities and membership;
//! `moderation.rs` moderators' actions and the log; `posts.rs`, `comments.rs`,
//! `favourites.rs` and `feeds.rs` what their names say; `fanout.rs` the job that writes a new
//! post's or comment's events after its commit; `erasure.rs` the erasure step and the
//! revocation of places; `export.rs` what the export reads; `retention.rs` community retention.
//!
//! The tables are behind the key-value seam (`kv`, since schema 12): this code takes
//! `&impl kv::Read` / `&impl kv::Write` for them (redb's transaction only where it also writes
//! a typed table: events, search changes, META counters), and reads a community's, post's or
//! user's rows a bounded page at a time.

mod comments;
mod communities;
mod erasure;
mod export;
mod fanout;
mod favourites;
mod feeds;
mod moderation;
mod posts;
mod retention;
mod visibility;

pub use erasure::{drop_places, erase_step};
pub use fanout::{Announced, FANOUT_BATCH, Tell};
pub use visibility::{Facts, communities_read_r, may_see, media_visible, posts_seen_r};

use std::ops::Bound;

use redb::WriteTransaction;

use super::StoreError;
use super::catalog::*;
use super::codec::{Dec, Enc};
use super::kv;
use primitives::time::Millis;

/// Rows of one community, post or user read at a time (the tables are behind the key-value
/// seam since schema 12: every read names its limit).
const PAGE: usize = 256;

/// Opens every table of this module (so read transactions never meet a missing one).
pub fn create_tables(tx: &WriteTransaction) -> Result<(), StoreError> {
    for name in [
        COMMUNITYNO_COMMUNITY.name(),
        COMMUNITYNO_USERID_MEMBER.name(),
        USERID_COMMUNITYNO.name(),
        COMMUNITYNO_USERID_PENDING.name(),
        COMMUNITYNO_USERID_BAN.name(),
        COMMUNITYNO_SEQ_MODLOG.name(),
        POSTNO_POST.name(),
        COMMUNITYNO_POSTNO.name(),
        USERID_POSTNO.name(),
        POSTNO_COMMENTNO_COMMENT.name(),
        USERID_COMMENTNO.name(),
        USERID_POSTNO_FAVOURITE.name(),
        POSTNO_USERID_FAVOURITE.name(),
        MEDIAID_COMMUNITYNO_POSTNO.name(),
        FANOUTNO_JOB.name(),
    ] {
        tx.open_table(kv::redb_def(name))?;
    }
    Ok(())
}

/// Hands the rows of `table` from `start` to `end`, in `order`, to `each` until it answers
/// false or none is left, reading [`PAGE`] rows at a time: every read bounded, and nothing
/// held open between them, so `each` may read and write (the rows it was handed included).
/// In a write, callers bound the range to one community's, post's or user's rows; the walks
/// of a whole table (what retention finds due, the fan-out jobs left) are reads.
fn each_row<K: kv::Key + Clone, V: kv::Value>(
    tx: &impl kv::Read,
    table: kv::Table<K, V>,
    start: Bound<K>,
    end: Bound<K>,
    order: kv::Order,
    mut each: impl FnMut(K, V) -> Result<bool, StoreError>,
) -> Result<(), StoreError> {
    let (mut start, mut end) = (start, end);
    loop {
        let rows = table.range(tx, start.as_ref(), end.as_ref(), order, PAGE)?;
        let full = rows.len() >= PAGE;
        let mut last = None;
        for (k, v) in rows {
            last = Some(k.clone());
            if !each(k, v)? {
                return Ok(());
            }
        }
        match (last, full) {
            (Some(k), true) => match order {
                kv::Order::Ascending => start = Bound::Excluded(k),
                kv::Order::Descending => end = Bound::Excluded(k),
            },
            _ => return Ok(()),
        }
    }
}

/// A range of (u64, u64) keys, as its two bounds.
type Span2 = (Bound<(u64, u64)>, Bound<(u64, u64)>);

/// The (first, second) key range of every row of a (u64, u64)-keyed table under `first`.
fn under(first: u64) -> Span2 {
    (
        Bound::Included((first, 0)),
        Bound::Included((first, u64::MAX)),
    )
}

/// How many rows of a (u64, u64)-keyed table are under `first` (a community's members, a
/// post's comments), counted a page at a time.
fn count_under<V: kv::Value>(
    tx: &impl kv::Read,
    table: kv::Table<(u64, u64), V>,
    first: u64,
) -> Result<u64, StoreError> {
    let mut n = 0;
    let (start, end) = under(first);
    each_row(tx, table, start, end, kv::Order::Ascending, |_, _| {
        n += 1;
        Ok(true)
    })?;
    Ok(n)
}

/// Removes every row of a (u64, u64)-keyed table under `first` (one post's comments or
/// favourites), a page at a time, handing each to `each` before it goes.
fn remove_under<V: kv::Value>(
    tx: &impl kv::Write,
    table: kv::Table<(u64, u64), V>,
    first: u64,
    mut each: impl FnMut((u64, u64), V) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    loop {
        let rows = table.prefixed_page(tx, &first, None, PAGE)?;
        let done = rows.len() < PAGE;
        for (k, v) in rows {
            table.remove(tx, &k)?;
            each(k, v)?;
        }
        if done {
            return Ok(());
        }
    }
}

/// Whether any row of a (u64, u64)-keyed table is under `first`.
fn any_under<V: kv::Value>(
    tx: &impl kv::Read,
    table: kv::Table<(u64, u64), V>,
    first: u64,
) -> Result<bool, StoreError> {
    Ok(!table
        .prefixed(tx, &first, kv::Order::Ascending, 1)?
        .is_empty())
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
    pub(crate) fn encode(&self) -> Vec<u8> {
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
    pub(crate) fn encode(&self) -> Vec<u8> {
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
    /// The action named `s` (as [`ModAction::name`] gives it).
    pub fn parse(s: &str) -> Option<ModAction> {
        ModAction::ALL.into_iter().find(|a| a.name() == s)
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

// ---- Lookups every part shares -----------------------------------------------------------

fn role_of(tx: &impl kv::Read, c: u64, u: u64) -> Result<Option<CommunityRole>, StoreError> {
    COMMUNITYNO_USERID_MEMBER
        .get(tx, &(c, u))?
        .map(|(role, _)| CommunityRole::from_code(role))
        .transpose()
}

fn get_community(tx: &impl kv::Read, c: u64) -> Result<Option<CommunityRecord>, StoreError> {
    COMMUNITYNO_COMMUNITY
        .get(tx, &c)?
        .map(|v| CommunityRecord::decode(c, &v))
        .transpose()
}

fn get_post(tx: &impl kv::Read, p: u64) -> Result<Option<PostRecord>, StoreError> {
    POSTNO_POST
        .get(tx, &p)?
        .map(|v| PostRecord::decode(p, &v))
        .transpose()
}

fn get_comment(tx: &impl kv::Read, p: u64, id: u64) -> Result<Option<CommentRecord>, StoreError> {
    POSTNO_COMMENTNO_COMMENT
        .get(tx, &(p, id))?
        .map(|v| CommentRecord::decode(p, id, &v))
        .transpose()
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn seal(id: u64) -> Result<(Vec<u8>, Vec<u8>), StoreError> {
        Ok((id.to_be_bytes().to_vec(), Vec::new()))
    }

    /// The paged walks visit every row of a prefix past a page, in either order, and stop
    /// when told; a prefix's removal takes every page.
    #[test]
    fn paged_walks_cover_a_prefix_past_one_page() {
        let dir = tempfile::tempdir().unwrap();
        let db = redb::Database::create(dir.path().join("t.redb")).unwrap();
        let tx = db.begin_write().unwrap();
        let n = (PAGE * 2 + 7) as u64;
        for i in 1..=n {
            COMMUNITYNO_POSTNO.insert(&tx, &(5, i), &()).unwrap();
        }
        COMMUNITYNO_POSTNO.insert(&tx, &(4, 1), &()).unwrap();
        COMMUNITYNO_POSTNO.insert(&tx, &(6, 1), &()).unwrap();
        assert_eq!(count_under(&tx, COMMUNITYNO_POSTNO, 5).unwrap(), n);
        for order in [kv::Order::Ascending, kv::Order::Descending] {
            let mut seen = Vec::new();
            let (start, end) = under(5);
            each_row(&tx, COMMUNITYNO_POSTNO, start, end, order, |(_, p), ()| {
                seen.push(p);
                Ok(true)
            })
            .unwrap();
            let mut all: Vec<u64> = (1..=n).collect();
            if order == kv::Order::Descending {
                all.reverse();
            }
            assert_eq!(seen, all, "{order:?}");
        }
        let mut first = Vec::new();
        each_row(
            &tx,
            COMMUNITYNO_POSTNO,
            Bound::Included((5, 0)),
            Bound::Excluded((5, 300)),
            kv::Order::Descending,
            |(_, p), ()| {
                first.push(p);
                Ok(first.len() < 3)
            },
        )
        .unwrap();
        assert_eq!(
            first,
            [299, 298, 297],
            "newest first below the bound, then stop"
        );
        let mut gone = 0;
        remove_under(&tx, COMMUNITYNO_POSTNO, 5, |_, ()| {
            gone += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(gone, n);
        assert!(!any_under(&tx, COMMUNITYNO_POSTNO, 5).unwrap());
        assert!(any_under(&tx, COMMUNITYNO_POSTNO, 4).unwrap());
        assert!(any_under(&tx, COMMUNITYNO_POSTNO, 6).unwrap());
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
