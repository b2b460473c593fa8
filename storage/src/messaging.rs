//! Conversations, members, messages and events as stored records, and the `Store` operations
//! on them.
//!
//! Ordering: every event gets a node-wide position `pos` (META `next_pos`), and every message
//! a gap-free `seq` within its conversation; both are assigned inside the writer's transaction,
//! so they follow commit order exactly.
//!
//! Views and store-and-forward: a user's *floor* is the pos at or below which their history is
//! gone from their view. Without `cloud_sync` it advances to the oldest position all their
//! devices have acknowledged; revoking `cloud_sync` moves it to now; with `cloud_sync` it stays.
//! A device of a user without `cloud_sync` also sees nothing from before it logged in. A message
//! is purged from disk once every member's floor has passed it.

use std::collections::{BTreeMap, HashSet};

use redb::{ReadOnlyTable, ReadTransaction, ReadableTable, WriteTransaction};

use super::batch::NewRow;
use super::catalog::*;
use super::codec::{Dec, Enc};
use super::federation::{Fanout, Refusal, run_fanout};
use super::{Store, StoreError};
use primitives::time::Millis;

/// Direct (two people) or group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConvKind {
    Direct,
    Group,
}

/// A member's role in a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Owner,
    Admin,
    Member,
}

impl Role {
    fn code(self) -> u64 {
        match self {
            Role::Owner => 0,
            Role::Admin => 1,
            Role::Member => 2,
        }
    }
    fn from_code(c: u64) -> Result<Role, StoreError> {
        match c {
            0 => Ok(Role::Owner),
            1 => Ok(Role::Admin),
            2 => Ok(Role::Member),
            _ => Err(StoreError::Corrupt("member")),
        }
    }
}

/// A stored conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationRecord {
    pub no: u64,
    pub id: String,
    pub kind: ConvKind,
    pub name: String,
    pub public: bool,
    pub created: Millis,
    /// The seq of the latest message (0 before the first).
    pub last_seq: u64,
    pub last_activity: Millis,
}

impl ConversationRecord {
    pub fn encode(&self) -> Vec<u8> {
        Enc::new(1)
            .str(&self.id)
            .bool(self.kind == ConvKind::Group)
            .str(&self.name)
            .bool(self.public)
            .u64(self.created.0)
            .u64(self.last_seq)
            .u64(self.last_activity.0)
            .finish()
    }
    pub fn decode(no: u64, b: &[u8]) -> Result<Self, StoreError> {
        let mut d = Dec::new(b, "conversation", 1)?;
        let r = ConversationRecord {
            no,
            id: d.string()?,
            kind: if d.bool()? {
                ConvKind::Group
            } else {
                ConvKind::Direct
            },
            name: d.string()?,
            public: d.bool()?,
            created: Millis(d.u64()?),
            last_seq: d.u64()?,
            last_activity: Millis(d.u64()?),
        };
        d.end()?;
        Ok(r)
    }
}

/// A member of a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberRecord {
    pub user: u64,
    pub role: Role,
    pub joined: Millis,
}

impl MemberRecord {
    pub fn encode(&self) -> Vec<u8> {
        Enc::new(1)
            .u64(self.role.code())
            .u64(self.joined.0)
            .finish()
    }
    pub fn decode(user: u64, b: &[u8]) -> Result<Self, StoreError> {
        let mut d = Dec::new(b, "member", 1)?;
        let r = MemberRecord {
            user,
            role: Role::from_code(d.u64()?)?,
            joined: Millis(d.u64()?),
        };
        d.end()?;
        Ok(r)
    }
}

/// A stored message. A recalled message keeps its row as a tombstone with an empty body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRecord {
    pub seq: u64,
    pub pos: u64,
    /// Random id, also bound into the body's sealing.
    pub id: [u8; 16],
    pub author: u64,
    pub ts: Millis,
    pub body_sealed: Vec<u8>,
    pub recalled: bool,
    /// The media the message refers to, if any.
    pub media: Option<String>,
}

impl MessageRecord {
    pub fn encode(&self) -> Vec<u8> {
        let e = Enc::new(1)
            .u64(self.pos)
            .bytes(&self.id)
            .u64(self.author)
            .u64(self.ts.0)
            .bytes(&self.body_sealed)
            .bool(self.recalled);
        match &self.media {
            Some(m) => e.bool(true).str(m),
            None => e.bool(false),
        }
        .finish()
    }
    pub fn decode(seq: u64, b: &[u8]) -> Result<Self, StoreError> {
        let mut d = Dec::new(b, "message", 1)?;
        let pos = d.u64()?;
        let id: [u8; 16] = d
            .bytes()?
            .try_into()
            .map_err(|_| StoreError::Corrupt("message"))?;
        let r = MessageRecord {
            seq,
            pos,
            id,
            author: d.u64()?,
            ts: Millis(d.u64()?),
            body_sealed: d.bytes()?,
            recalled: d.bool()?,
            media: if d.bool()? { Some(d.string()?) } else { None },
        };
        d.end()?;
        Ok(r)
    }
}

/// What a membership event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberAction {
    Joined,
    Invited,
    Left,
    Removed,
    RoleChanged,
}

impl MemberAction {
    const ALL: [MemberAction; 5] = [
        MemberAction::Joined,
        MemberAction::Invited,
        MemberAction::Left,
        MemberAction::Removed,
        MemberAction::RoleChanged,
    ];
    fn code(self) -> u64 {
        MemberAction::ALL
            .iter()
            .position(|a| *a == self)
            .unwrap_or(0) as u64
    }
}

/// One event in a conversation (or for one user).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventRecord {
    Message {
        seq: u64,
    },
    Recall {
        seq: u64,
    },
    Member {
        action: MemberAction,
        user: u64,
        actor: u64,
        role: Role,
    },
    Renamed {
        name: String,
        actor: u64,
    },
    Visibility {
        public: bool,
        actor: u64,
    },
    /// A notice from the node to one user.
    Notice {
        kind: NoticeKind,
        content: NoticeContent,
    },
    /// A friends step (`storage/friends.rs`) for one user: `id` is the request's (or the
    /// friendship's) id, `user` the other person.
    Friend {
        action: super::FriendAction,
        id: u64,
        user: u64,
    },
    /// A new post (`comment` 0) or comment in a community, for a member who may see it
    /// (numbers only: the client fetches what it may read).
    Community {
        community: u64,
        post: u64,
        comment: u64,
    },
    /// A join request's step (`storage/invites.rs`) for its owner or requester: `id` is the
    /// request's number (the owner's), `user` the other person.
    Join {
        action: super::JoinAction,
        id: u64,
        conversation: String,
        user: u64,
    },
}

/// What a notice says: an operator's own words, or a code with parameters that the reader's
/// language puts into words when the notice is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoticeContent {
    /// Free text: what an operator wrote (`incident notify`), or a notice the node wrote
    /// before its notices had codes.
    Text { title: String, text: String },
    /// Written by the node: a stable code and its named parameters, in order.
    Coded {
        code: String,
        params: Vec<(String, String)>,
    },
}

/// What a notice is about, so a client can show each kind its own way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeKind {
    /// A sign-in on another device.
    Security,
    /// A request to the admin was answered.
    Request,
    /// A new privacy policy version was published.
    Policy,
    /// A security incident that affects the user.
    Incident,
}

impl NoticeKind {
    const ALL: [NoticeKind; 4] = [
        NoticeKind::Security,
        NoticeKind::Request,
        NoticeKind::Policy,
        NoticeKind::Incident,
    ];
    pub const fn name(self) -> &'static str {
        match self {
            NoticeKind::Security => "security",
            NoticeKind::Request => "request",
            NoticeKind::Policy => "policy",
            NoticeKind::Incident => "incident",
        }
    }
    fn code(self) -> u64 {
        self as u64
    }
    fn from_code(c: u64) -> Result<Self, StoreError> {
        NoticeKind::ALL
            .get(c as usize)
            .copied()
            .ok_or(StoreError::Corrupt("event"))
    }
}

impl EventRecord {
    pub fn encode(&self) -> Vec<u8> {
        let e = Enc::new(1);
        match self {
            EventRecord::Message { seq } => e.u64(0).u64(*seq),
            EventRecord::Recall { seq } => e.u64(1).u64(*seq),
            EventRecord::Member {
                action,
                user,
                actor,
                role,
            } => e
                .u64(2)
                .u64(action.code())
                .u64(*user)
                .u64(*actor)
                .u64(role.code()),
            EventRecord::Renamed { name, actor } => e.u64(3).str(name).u64(*actor),
            EventRecord::Visibility { public, actor } => e.u64(4).bool(*public).u64(*actor),
            EventRecord::Notice {
                kind,
                content: NoticeContent::Text { title, text },
            } => e.u64(6).u64(kind.code()).str(title).str(text),
            EventRecord::Notice {
                kind,
                content: NoticeContent::Coded { code, params },
            } => params.iter().fold(
                e.u64(9).u64(kind.code()).str(code).u64(params.len() as u64),
                |e, (name, value)| e.str(name).str(value),
            ),
            EventRecord::Friend { action, id, user } => {
                e.u64(7).u64(action.code()).u64(*id).u64(*user)
            }
            EventRecord::Community {
                community,
                post,
                comment,
            } => e.u64(8).u64(*community).u64(*post).u64(*comment),
            EventRecord::Join {
                action,
                id,
                conversation,
                user,
            } => e
                .u64(10)
                .u64(action.code())
                .u64(*id)
                .str(conversation)
                .u64(*user),
        }
        .finish()
    }
    pub fn decode(b: &[u8]) -> Result<Self, StoreError> {
        let mut d = Dec::new(b, "event", 1)?;
        let r = match d.u64()? {
            0 => EventRecord::Message { seq: d.u64()? },
            1 => EventRecord::Recall { seq: d.u64()? },
            2 => EventRecord::Member {
                action: *MemberAction::ALL
                    .get(d.u64()? as usize)
                    .ok_or(StoreError::Corrupt("event"))?,
                user: d.u64()?,
                actor: d.u64()?,
                role: Role::from_code(d.u64()?)?,
            },
            3 => EventRecord::Renamed {
                name: d.string()?,
                actor: d.u64()?,
            },
            4 => EventRecord::Visibility {
                public: d.bool()?,
                actor: d.u64()?,
            },
            // Notices written before they had a kind and a title.
            5 => EventRecord::Notice {
                kind: NoticeKind::Security,
                content: NoticeContent::Text {
                    title: String::new(),
                    text: d.string()?,
                },
            },
            6 => EventRecord::Notice {
                kind: NoticeKind::from_code(d.u64()?)?,
                content: NoticeContent::Text {
                    title: d.string()?,
                    text: d.string()?,
                },
            },
            9 => {
                let kind = NoticeKind::from_code(d.u64()?)?;
                let code = d.string()?;
                let n = d.u64()?;
                // Each parameter takes at least two bytes: a count beyond that is corrupt.
                if n > b.len() as u64 {
                    return Err(StoreError::Corrupt("event"));
                }
                let mut params = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    params.push((d.string()?, d.string()?));
                }
                EventRecord::Notice {
                    kind,
                    content: NoticeContent::Coded { code, params },
                }
            }
            7 => EventRecord::Friend {
                action: *super::FriendAction::ALL
                    .get(d.u64()? as usize)
                    .ok_or(StoreError::Corrupt("event"))?,
                id: d.u64()?,
                user: d.u64()?,
            },
            8 => EventRecord::Community {
                community: d.u64()?,
                post: d.u64()?,
                comment: d.u64()?,
            },
            10 => EventRecord::Join {
                action: *super::JoinAction::ALL
                    .get(d.u64()? as usize)
                    .ok_or(StoreError::Corrupt("event"))?,
                id: d.u64()?,
                conversation: d.string()?,
                user: d.u64()?,
            },
            _ => return Err(StoreError::Corrupt("event")),
        };
        d.end()?;
        Ok(r)
    }
}

/// A stored media object's description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaRecord {
    pub owner: u64,
    pub content_type: String,
    pub size: u64,
    pub created: Millis,
    pub chunks: u32,
}

impl MediaRecord {
    pub fn encode(&self) -> Vec<u8> {
        Enc::new(1)
            .u64(self.owner)
            .str(&self.content_type)
            .u64(self.size)
            .u64(self.created.0)
            .u64(u64::from(self.chunks))
            .finish()
    }
    pub fn decode(b: &[u8]) -> Result<Self, StoreError> {
        let mut d = Dec::new(b, "media", 1)?;
        let r = MediaRecord {
            owner: d.u64()?,
            content_type: d.string()?,
            size: d.u64()?,
            created: Millis(d.u64()?),
            chunks: u32::try_from(d.u64()?).map_err(|_| StoreError::Corrupt("media"))?,
        };
        d.end()?;
        Ok(r)
    }
}

/// A change to a conversation, decided by the domain and applied atomically here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mutation {
    Add {
        user: u64,
        role: Role,
        action: MemberAction,
    },
    Remove {
        user: u64,
        action: MemberAction,
    },
    SetRole {
        user: u64,
        role: Role,
    },
    Rename(String),
    SetPublic(bool),
}

/// A conversation with its members, as the domain's rules see it.
#[derive(Debug, Clone)]
pub struct ConversationState {
    pub conversation: ConversationRecord,
    pub members: Vec<MemberRecord>,
}

impl ConversationState {
    pub fn member(&self, user: u64) -> Option<&MemberRecord> {
        self.members.iter().find(|m| m.user == user)
    }
}

/// After a write that others should hear of: who to wake, and up to which pos.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Notify {
    pub users: Vec<u64>,
    pub pos: u64,
    /// Peers whose outbound queues grew.
    pub peers: Vec<String>,
}

/// A conversation to create.
#[derive(Debug, Clone)]
pub struct NewConversation {
    /// Public id, `<random>:<domain>`.
    pub id: String,
    /// Internal number (random).
    pub no: u64,
    pub kind: ConvKind,
    pub name: String,
    pub public: bool,
    pub creator: u64,
    /// Everyone else to add (for a direct conversation, exactly the other person).
    pub others: Vec<u64>,
    pub now: Millis,
    pub fanout: Option<Fanout>,
}

/// A message to store.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub author: u64,
    pub device_id: String,
    pub txn_id: String,
    pub conv_id: String,
    pub id: [u8; 16],
    pub ts: Millis,
    pub body_sealed: Vec<u8>,
    pub media: Option<String>,
    /// False when another node hosts the conversation: nothing is stored here, the message
    /// goes to the host (through `fanout`), which sequences it and sends it back.
    pub hosted_here: bool,
    pub fanout: Option<Fanout>,
}

/// The outcome of storing a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// Stored now.
    New {
        seq: u64,
        ts: Millis,
        notify: Notify,
    },
    /// The same device sent this txn id before: the original answer, nothing stored (seq 0:
    /// it went to the conversation's host node).
    Repeat { seq: u64, ts: Millis },
    /// Queued for the host node of the conversation.
    Forwarded { ts: Millis, notify: Notify },
    /// The fan-out refused: nothing stored or queued.
    Refused(Refusal),
    /// The author is not a member (or the conversation does not exist).
    NotMember,
    /// The media is not the author's.
    MediaNotOwned,
    /// A direct conversation whose other member does not take messages from the author
    /// (a block either way, or friends only): nothing stored.
    NotAccepting,
}

/// The outcome of a recall.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recalled {
    Done(Notify),
    Refused(Refusal),
    NotMember,
    NoSuchMessage,
    NotAuthor,
    TooLate,
}

/// One event as a user sees it, with what is needed to render it.
#[derive(Debug, Clone)]
pub struct EventView {
    pub pos: u64,
    /// The conversation's public id (`None` for a notice).
    pub conv_id: Option<String>,
    pub event: EventRecord,
    /// For message and recall events: the message (tombstone if recalled).
    pub message: Option<MessageRecord>,
}

/// Which view of a conversation's history a device has.
#[derive(Debug, Clone, Copy)]
struct ViewFloor {
    floor: u64,
}

pub fn next_pos(tx: &WriteTransaction) -> Result<u64, StoreError> {
    super::take_numbers(tx, "next_pos", 1)
}

/// The highest pos assigned so far (0 if none).
pub(super) fn last_pos(
    meta: &impl ReadableTable<&'static str, &'static [u8]>,
) -> Result<u64, StoreError> {
    Ok(super::read_number(meta, "next_pos")?.saturating_sub(1))
}

/// A conversation and its members, read from whichever transaction's tables.
fn load_state(
    convs: &impl ReadableTable<u64, &'static [u8]>,
    members_t: &impl ReadableTable<(u64, u64), &'static [u8]>,
    conv: u64,
) -> Result<Option<ConversationState>, StoreError> {
    let Some(rec) = convs.get(conv)? else {
        return Ok(None);
    };
    let conversation = ConversationRecord::decode(conv, rec.value())?;
    let mut members = Vec::new();
    for row in members_t.range((conv, 0)..=(conv, u64::MAX))? {
        let (k, v) = row?;
        members.push(MemberRecord::decode(k.value().1, v.value())?);
    }
    Ok(Some(ConversationState {
        conversation,
        members,
    }))
}

pub fn load_state_w(
    tx: &WriteTransaction,
    conv: u64,
) -> Result<Option<ConversationState>, StoreError> {
    load_state(
        &tx.open_table(CONVNO_CONVERSATION)?,
        &tx.open_table(CONVNO_USERID_MEMBER)?,
        conv,
    )
}

/// A media object's description if `viewer` owns it or is a member of a conversation it was
/// sent in.
fn visible_media(
    tx: &ReadTransaction,
    id: &str,
    viewer: u64,
) -> Result<Option<MediaRecord>, StoreError> {
    let Some(rec) = tx
        .open_table(MEDIAID_MEDIA)?
        .get(id)?
        .map(|v| MediaRecord::decode(v.value()))
        .transpose()?
    else {
        return Ok(None);
    };
    if rec.owner == viewer {
        return Ok(Some(rec));
    }
    let members = tx.open_table(CONVNO_USERID_MEMBER)?;
    for row in tx
        .open_table(MEDIAID_CONVNO)?
        .range((id, 0)..=(id, u64::MAX))?
    {
        let (k, _) = row?;
        if members.get((k.value().1, viewer))?.is_some() {
            return Ok(Some(rec));
        }
    }
    // Shown in a community post or as a community's avatar the viewer may see.
    if super::community::media_visible(tx, id, viewer)? {
        return Ok(Some(rec));
    }
    // A user's avatar: for anyone with an account here, as their profile is.
    if super::avatars::visible(tx, id, viewer)? {
        return Ok(Some(rec));
    }
    Ok(None)
}

fn load_state_r(tx: &ReadTransaction, conv: u64) -> Result<Option<ConversationState>, StoreError> {
    load_state(
        &tx.open_table(CONVNO_CONVERSATION)?,
        &tx.open_table(CONVNO_USERID_MEMBER)?,
        conv,
    )
}

pub fn put_event(
    tx: &WriteTransaction,
    conv: u64,
    pos: u64,
    e: &EventRecord,
) -> Result<(), StoreError> {
    tx.open_table(CONVNO_POS_EVENT)?
        .insert((conv, pos), e.encode().as_slice())?;
    Ok(())
}

pub fn add_member(
    tx: &WriteTransaction,
    conv: u64,
    m: MemberRecord,
    pos: u64,
) -> Result<(), StoreError> {
    tx.open_table(CONVNO_USERID_MEMBER)?
        .insert((conv, m.user), m.encode().as_slice())?;
    tx.open_table(USERID_CONVNO)?.insert((m.user, conv), pos)?;
    Ok(())
}

/// Which messages of a conversation to read: seq < `before` newest first, or seq > `after`
/// oldest first; at most `limit`.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    pub before: Option<u64>,
    pub after: Option<u64>,
    pub limit: usize,
}

impl Store {
    /// Creates a conversation with its first members and their join events. `id` must be
    /// new (random); a direct conversation between two users who already have one returns the
    /// existing one instead (second value false).
    pub async fn create_conversation(
        &self,
        c: NewConversation,
    ) -> Result<Result<(ConversationRecord, bool, Notify), Refusal>, StoreError> {
        let NewConversation {
            id,
            no,
            kind,
            name,
            public,
            creator,
            others,
            now,
            fanout,
        } = c;
        super::or_refused(
            self.write(move |tx| {
                if kind == ConvKind::Direct {
                    let other = *others.first().ok_or(StoreError::Corrupt("direct"))?;
                    let pair = (creator.min(other), creator.max(other));
                    if let Some(existing) = tx
                        .open_table(USERPAIR_CONVNO)?
                        .get(pair)?
                        .map(|v| v.value())
                    {
                        let state =
                            load_state_w(tx, existing)?.ok_or(StoreError::Corrupt("direct"))?;
                        return Ok(Ok((state.conversation, false, Notify::default())));
                    }
                    tx.open_table(USERPAIR_CONVNO)?.insert(pair, no)?;
                }
                if tx.open_table(CONVNO_CONVERSATION)?.get(no)?.is_some()
                    || tx.open_table(CONVID_CONVNO)?.get(id.as_str())?.is_some()
                {
                    return Err(StoreError::Conflict(super::Conflict::UserId));
                }
                let rec = ConversationRecord {
                    no,
                    id: id.clone(),
                    kind,
                    name: name.clone(),
                    public,
                    created: now,
                    last_seq: 0,
                    last_activity: now,
                };
                tx.open_table(CONVNO_CONVERSATION)?
                    .insert(no, rec.encode().as_slice())?;
                tx.open_table(CONVID_CONVNO)?.insert(id.as_str(), no)?;
                let mut users = vec![creator];
                let creator_role = if kind == ConvKind::Group {
                    Role::Owner
                } else {
                    Role::Member
                };
                let mut pos = next_pos(tx)?;
                let mut members = vec![MemberRecord {
                    user: creator,
                    role: creator_role,
                    joined: now,
                }];
                add_member(tx, no, members[0], pos)?;
                let mut events = vec![EventRecord::Member {
                    action: MemberAction::Joined,
                    user: creator,
                    actor: creator,
                    role: creator_role,
                }];
                put_event(tx, no, pos, &events[0])?;
                for &u in &others {
                    if users.contains(&u) {
                        continue;
                    }
                    pos = next_pos(tx)?;
                    let m = MemberRecord {
                        user: u,
                        role: Role::Member,
                        joined: now,
                    };
                    add_member(tx, no, m, pos)?;
                    members.push(m);
                    let ev = EventRecord::Member {
                        action: MemberAction::Invited,
                        user: u,
                        actor: creator,
                        role: Role::Member,
                    };
                    put_event(tx, no, pos, &ev)?;
                    events.push(ev);
                    users.push(u);
                }
                let peers = run_fanout(tx, fanout.as_ref(), &rec, &members, &[], &events, now)?;
                Ok(Ok((rec, true, Notify { users, pos, peers })))
            })
            .await,
            Err,
        )
    }

    /// The conversation behind a public id, if it exists.
    pub async fn conversation_no(&self, id: String) -> Result<Option<u64>, StoreError> {
        self.read(move |tx| {
            Ok(tx
                .open_table(CONVID_CONVNO)?
                .get(id.as_str())?
                .map(|v| v.value()))
        })
        .await
    }

    /// A conversation and its members.
    pub async fn conversation_state(
        &self,
        no: u64,
    ) -> Result<Option<ConversationState>, StoreError> {
        self.read(move |tx| load_state_r(tx, no)).await
    }

    /// The conversations `user` is a member of.
    pub async fn conversations_of(&self, user: u64) -> Result<Vec<ConversationState>, StoreError> {
        self.read(move |tx| {
            let mut out = Vec::new();
            for row in tx
                .open_table(USERID_CONVNO)?
                .range((user, 0)..=(user, u64::MAX))?
            {
                let (k, _) = row?;
                if let Some(s) = load_state_r(tx, k.value().1)? {
                    out.push(s);
                }
            }
            Ok(out)
        })
        .await
    }

    /// Applies the mutations `decide` returns for the conversation's current state, with one
    /// event each, atomically. `decide` sees the state inside the write transaction.
    pub async fn change_conversation<E, F>(
        &self,
        no: u64,
        actor: u64,
        now: Millis,
        decide: F,
        fanout: Option<Fanout>,
    ) -> Result<Result<Notify, E>, StoreError>
    where
        E: Send + From<Refusal> + 'static,
        F: Fn(&ConversationState) -> Result<Vec<Mutation>, E> + Send + 'static,
    {
        super::or_refused(
            self.write(move |tx| change_in(tx, no, actor, now, &decide, fanout.as_ref()))
                .await,
            |r| Err(E::from(r)),
        )
    }
}

/// The body of [`Store::change_conversation`], shared with changes requested by other nodes.
/// A refused fan-out is `StoreError::Refused` (the write is rolled back); `E` is only what
/// `decide` refuses.
pub fn change_in<E, F>(
    tx: &WriteTransaction,
    no: u64,
    actor: u64,
    now: Millis,
    decide: &F,
    fanout: Option<&Fanout>,
) -> Result<Result<Notify, E>, StoreError>
where
    F: Fn(&ConversationState) -> Result<Vec<Mutation>, E>,
{
    let Some(state) = load_state_w(tx, no)? else {
        return Err(StoreError::Corrupt("conversation"));
    };
    let mutations = match decide(&state) {
        Ok(m) => m,
        Err(e) => return Ok(Err(e)),
    };
    let mut events = Vec::new();
    let mut removed = Vec::new();
    let mut notify: HashSet<u64> = state.members.iter().map(|m| m.user).collect();
    let mut conv = state.conversation.clone();
    let mut pos = 0;
    for m in mutations {
        pos = next_pos(tx)?;
        let ev = match m {
            Mutation::Add { user, role, action } => {
                add_member(
                    tx,
                    no,
                    MemberRecord {
                        user,
                        role,
                        joined: now,
                    },
                    pos,
                )?;
                notify.insert(user);
                EventRecord::Member {
                    action,
                    user,
                    actor,
                    role,
                }
            }
            Mutation::Remove { user, action } => {
                let role = state.member(user).map_or(Role::Member, |m| m.role);
                tx.open_table(CONVNO_USERID_MEMBER)?.remove((no, user))?;
                tx.open_table(USERID_CONVNO)?.remove((user, no))?;
                super::reading::forget_read(tx, user, no)?;
                if let Some(m) = state.member(user) {
                    removed.push(*m);
                }
                let ev = EventRecord::Member {
                    action,
                    user,
                    actor,
                    role,
                };
                // The removed user no longer reads the conversation; tell them directly.
                tx.open_table(USERID_POS_EVENT)?
                    .insert((user, pos), ev.encode().as_slice())?;
                ev
            }
            Mutation::SetRole { user, role } => {
                let mut members = tx.open_table(CONVNO_USERID_MEMBER)?;
                let existing = members
                    .get((no, user))?
                    .map(|v| MemberRecord::decode(user, v.value()));
                let Some(mut rec) = existing.transpose()? else {
                    continue;
                };
                rec.role = role;
                members.insert((no, user), rec.encode().as_slice())?;
                EventRecord::Member {
                    action: MemberAction::RoleChanged,
                    user,
                    actor,
                    role,
                }
            }
            Mutation::Rename(name) => {
                conv.name = name.clone();
                EventRecord::Renamed { name, actor }
            }
            Mutation::SetPublic(public) => {
                conv.public = public;
                EventRecord::Visibility { public, actor }
            }
        };
        put_event(tx, no, pos, &ev)?;
        events.push(ev);
    }
    conv.last_activity = now;
    tx.open_table(CONVNO_CONVERSATION)?
        .insert(no, conv.encode().as_slice())?;
    let after = load_state_w(tx, no)?.ok_or(StoreError::Corrupt("conversation"))?;
    let peers = run_fanout(tx, fanout, &conv, &after.members, &removed, &events, now)?;
    Ok(Ok(Notify {
        users: notify.into_iter().collect(),
        pos,
        peers,
    }))
}

impl Store {
    /// Stores a message idempotently (per author device and txn id), assigning seq and pos.
    pub async fn send_message(&self, m: NewMessage) -> Result<Sent, StoreError> {
        super::or_refused(
            self.write_message(move |tx, w| {
                let key = (m.author, m.device_id.as_str(), m.txn_id.as_str());
                if let Some((_, seq, ts, _)) = w.sent(key)? {
                    return Ok(Sent::Repeat {
                        seq,
                        ts: Millis(ts),
                    });
                }
                let Some(state) = w.state_of(tx, &m.conv_id)? else {
                    return Ok(Sent::NotMember);
                };
                let no = state.conversation.no;
                if state.member(m.author).is_none() {
                    return Ok(Sent::NotMember);
                }
                if state.conversation.kind == ConvKind::Direct
                    && let Some(other) = state.members.iter().find(|x| x.user != m.author)
                    && super::friends::direct_refused(tx, m.author, other.user)?
                {
                    return Ok(Sent::NotAccepting);
                }
                if let Some(media) = &m.media {
                    let owned = tx
                        .open_table(USERID_MEDIAID)?
                        .get((m.author, media.as_str()))?
                        .is_some();
                    if !owned {
                        return Ok(Sent::MediaNotOwned);
                    }
                    // Also when another node hosts it: the host and the nodes of its members
                    // may then fetch the media from here (`Store::media_for_peer`).
                    tx.open_table(MEDIAID_CONVNO)?
                        .insert((media.as_str(), no), ())?;
                }
                if !m.hosted_here {
                    let probe = [EventRecord::Message { seq: 0 }];
                    let peers = run_fanout(
                        tx,
                        m.fanout.as_ref(),
                        &state.conversation,
                        &state.members,
                        &[],
                        &probe,
                        m.ts,
                    )?;
                    w.record_sent(key, (no, 0, m.ts.0, 0))?;
                    return Ok(Sent::Forwarded {
                        ts: m.ts,
                        notify: Notify {
                            users: Vec::new(),
                            pos: 0,
                            peers,
                        },
                    });
                }
                let row = NewRow {
                    id: m.id,
                    author: m.author,
                    ts: m.ts,
                    body_sealed: &m.body_sealed,
                    media: m.media.as_deref(),
                };
                let (seq, pos, state) = w.store_message(tx, no, row)?;
                let events = [EventRecord::Message { seq }];
                let peers = run_fanout(
                    tx,
                    m.fanout.as_ref(),
                    &state.conversation,
                    &state.members,
                    &[],
                    &events,
                    m.ts,
                )?;
                let users = state.members.iter().map(|x| x.user).collect();
                w.record_sent(key, (no, seq, m.ts.0, pos))?;
                Ok(Sent::New {
                    seq,
                    ts: m.ts,
                    notify: Notify { users, pos, peers },
                })
            })
            .await,
            Sent::Refused,
        )
    }

    /// Recalls a message for everyone: only its author, only within `window_ms` of sending.
    /// When another node hosts the conversation (`hosted_here` false) the checks run on this
    /// node's copy and the request goes to the host through `fanout`; nothing changes here
    /// until the host's answer arrives.
    #[allow(clippy::too_many_arguments)]
    pub async fn recall_message(
        &self,
        user: u64,
        no: u64,
        seq: u64,
        now: Millis,
        window_ms: u64,
        hosted_here: bool,
        fanout: Option<Fanout>,
    ) -> Result<Recalled, StoreError> {
        self.write(move |tx| {
            recall_in(
                tx,
                user,
                no,
                seq,
                now,
                window_ms,
                hosted_here,
                fanout.as_ref(),
            )
        })
        .await
    }

    /// Deletes one message from `user`'s own view. False if not a member or no such message.
    /// `None` if the user is not a member; `Some(false)` if there is no such message.
    pub async fn hide_message(
        &self,
        user: u64,
        no: u64,
        seq: u64,
    ) -> Result<Option<bool>, StoreError> {
        self.write(move |tx| {
            if tx
                .open_table(CONVNO_USERID_MEMBER)?
                .get((no, user))?
                .is_none()
            {
                return Ok(None);
            }
            if tx.open_table(CONVNO_SEQ_MESSAGE)?.get((no, seq))?.is_none() {
                return Ok(Some(false));
            }
            tx.open_table(USERID_CONVNO_SEQ_HIDDEN)?
                .insert((user, no, seq), ())?;
            Ok(Some(true))
        })
        .await
    }

    /// Deletes every message so far from `user`'s own view of the conversation.
    pub async fn clear_conversation(&self, user: u64, no: u64) -> Result<bool, StoreError> {
        self.write(move |tx| {
            if tx
                .open_table(CONVNO_USERID_MEMBER)?
                .get((no, user))?
                .is_none()
            {
                return Ok(false);
            }
            let upto = last_pos(&tx.open_table(META)?)?;
            tx.open_table(USERID_CONVNO_CLEARED)?
                .insert((user, no), upto)?;
            let mut hidden = tx.open_table(USERID_CONVNO_SEQ_HIDDEN)?;
            hidden.retain_in((user, no, 0)..=(user, no, u64::MAX), |_, _| false)?;
            Ok(true)
        })
        .await
    }

    /// Starts a device's cursor at the current position (called at login): a device of a user
    /// without cloud history sees nothing from before it existed.
    pub fn init_device_cursor(
        tx: &WriteTransaction,
        user: u64,
        device: &str,
    ) -> Result<(), StoreError> {
        let now = last_pos(&tx.open_table(META)?)?;
        tx.open_table(USERID_DEVICEID_CURSOR)?
            .insert((user, device), (now, now))?;
        Ok(())
    }

    /// Events for one device after `since`, oldest first, at most `limit`; the cursor to
    /// continue from; and the handle (or address) and wrapped key of every user the events name,
    /// read in the same transaction (one store hop per wake-up of an event stream). Applies the
    /// device's view floor, the user's cleared and hidden messages.
    pub async fn events_since(
        &self,
        user: u64,
        device: String,
        since: Option<u64>,
        limit: usize,
        now: Millis,
    ) -> Result<Feed, StoreError> {
        let book = self.handles.clone();
        self.read(move |tx| {
            let meta = tx.open_table(META)?;
            let head = last_pos(&meta)?;
            let cursors = tx.open_table(USERID_DEVICEID_CURSOR)?;
            let (start, acked) = cursors
                .get((user, device.as_str()))?
                .map_or((head, head), |v| v.value());
            let view = device_floor(tx, user, start, now)?;
            let from = since.unwrap_or(acked).max(view.floor);
            let mut found: BTreeMap<u64, EventView> = BTreeMap::new();
            let convs = tx.open_table(USERID_CONVNO)?;
            let events = tx.open_table(CONVNO_POS_EVENT)?;
            let conv_ids = tx.open_table(CONVNO_CONVERSATION)?;
            let cleared_t = tx.open_table(USERID_CONVNO_CLEARED)?;
            let shown = Shown {
                hidden: tx.open_table(USERID_CONVNO_SEQ_HIDDEN)?,
                messages: tx.open_table(CONVNO_SEQ_MESSAGE)?,
            };
            for row in convs.range((user, 0)..=(user, u64::MAX))? {
                let (k, joined_pos) = row?;
                let no = k.value().1;
                let cleared = cleared_t.get((user, no))?.map_or(0, |v| v.value());
                let lower = from.max(cleared).max(joined_pos.value().saturating_sub(1));
                let Some(conv) = conv_ids
                    .get(no)?
                    .map(|v| ConversationRecord::decode(no, v.value()))
                    .transpose()?
                else {
                    continue;
                };
                for ev in events.range((no, lower + 1)..=(no, u64::MAX))?.take(limit) {
                    let (k, v) = ev?;
                    let pos = k.value().1;
                    if let Some(view) =
                        shown.view(user, no, &conv.id, pos, EventRecord::decode(v.value())?)?
                    {
                        found.insert(pos, view);
                    }
                }
                while found.len() > limit {
                    found.pop_last();
                }
            }
            for ev in tx
                .open_table(USERID_POS_EVENT)?
                .range((user, from + 1)..=(user, u64::MAX))?
                .take(limit)
            {
                let (k, v) = ev?;
                let pos = k.value().1;
                found.insert(
                    pos,
                    EventView {
                        pos,
                        conv_id: None,
                        event: EventRecord::decode(v.value())?,
                        message: None,
                    },
                );
            }
            let full = found.len() >= limit;
            let out: Vec<EventView> = found.into_values().take(limit).collect();
            let cursor = match out.last() {
                Some(e) if full => e.pos,
                _ => head.max(from),
            };
            let mut named = Vec::new();
            for e in &out {
                match &e.event {
                    EventRecord::Member { user, actor, .. } => named.extend([*user, *actor]),
                    EventRecord::Renamed { actor, .. } | EventRecord::Visibility { actor, .. } => {
                        named.push(*actor)
                    }
                    EventRecord::Friend { user, .. } | EventRecord::Join { user, .. } => {
                        named.push(*user)
                    }
                    _ => {}
                }
                if let Some(m) = &e.message {
                    named.push(m.author);
                }
            }
            named.sort_unstable();
            named.dedup();
            Ok(Feed {
                people: keys_of(tx, &book, named)?,
                events: out,
                cursor,
            })
        })
        .await
    }

    /// A page of one conversation's messages as one of `user`'s devices sees them, or
    /// (`device` `None`) as kept for the user: everything above their floor. `None` if the
    /// user is not a member.
    pub async fn messages(
        &self,
        user: u64,
        device: Option<String>,
        no: u64,
        page: Page,
        now: Millis,
    ) -> Result<Option<Vec<MessageRecord>>, StoreError> {
        let Page {
            before,
            after,
            limit,
        } = page;
        self.read(move |tx| {
            if tx
                .open_table(CONVNO_USERID_MEMBER)?
                .get((no, user))?
                .is_none()
            {
                return Ok(None);
            }
            let lower_pos = view_lower_pos(tx, user, device.as_deref(), no, now)?;
            let hidden = tx.open_table(USERID_CONVNO_SEQ_HIDDEN)?;
            let messages = tx.open_table(CONVNO_SEQ_MESSAGE)?;
            let mut out = Vec::new();
            let visible = |rec: &MessageRecord| -> Result<bool, StoreError> {
                Ok(rec.pos > lower_pos && hidden.get((user, no, rec.seq))?.is_none())
            };
            match after {
                Some(a) => {
                    for row in messages.range((no, a.saturating_add(1))..=(no, u64::MAX))? {
                        let (k, v) = row?;
                        let rec = MessageRecord::decode(k.value().1, v.value())?;
                        if visible(&rec)? {
                            out.push(rec);
                            if out.len() >= limit {
                                break;
                            }
                        }
                    }
                }
                None => {
                    let upper = before.unwrap_or(u64::MAX).max(1) - 1;
                    for row in messages.range((no, 1)..=(no, upper))?.rev() {
                        let (k, v) = row?;
                        let rec = MessageRecord::decode(k.value().1, v.value())?;
                        if rec.pos <= lower_pos {
                            break; // everything older is below the floor too
                        }
                        if visible(&rec)? {
                            out.push(rec);
                            if out.len() >= limit {
                                break;
                            }
                        }
                    }
                }
            }
            out.truncate(limit);
            Ok(Some(out))
        })
        .await
    }

    /// Records that a device has everything up to `cursor`, and moves the user's floor if
    /// they keep no cloud history.
    pub async fn acknowledge(
        &self,
        user: u64,
        device: String,
        cursor: u64,
    ) -> Result<(), StoreError> {
        self.write(move |tx| {
            let head = last_pos(&tx.open_table(META)?)?;
            let cursor = cursor.min(head);
            let mut cursors = tx.open_table(USERID_DEVICEID_CURSOR)?;
            let Some((start, acked)) = cursors.get((user, device.as_str()))?.map(|v| v.value())
            else {
                return Ok(());
            };
            if cursor <= acked {
                return Ok(());
            }
            cursors.insert((user, device.as_str()), (start, cursor))?;
            let mut oldest = u64::MAX;
            for row in cursors.range((user, "")..)? {
                let (k, v) = row?;
                if k.value().0 != user {
                    break;
                }
                oldest = oldest.min(v.value().1);
            }
            drop(cursors);
            if !super::privacy::granted(
                &tx.open_table(USERID_PURPOSE_CONSENT)?,
                user,
                "cloud_sync",
            )? && oldest != u64::MAX
            {
                let mut floors = tx.open_table(USERID_FLOOR)?;
                let floor = floors.get(user)?.map_or(0, |v| v.value());
                if oldest > floor {
                    floors.insert(user, oldest)?;
                }
            }
            Ok(())
        })
        .await
    }

    /// Forgets a device whose session ended: its cursor (so it no longer holds back the
    /// user's floor) and its sent-txn ids (a retry needs the device's token, which is gone).
    pub fn forget_device(tx: &WriteTransaction, user: u64, device: &str) -> Result<(), StoreError> {
        tx.open_table(USERID_DEVICEID_CURSOR)?
            .remove((user, device))?;
        super::sentlog::flush(tx)?;
        let mut sent = tx.open_table(USERID_DEVICEID_TXNID_SENT)?;
        let mut keys = Vec::new();
        for row in sent.range((user, device, "")..)? {
            let (k, _) = row?;
            let (u, d, t) = k.value();
            if u != user || d != device {
                break;
            }
            keys.push(t.to_string());
        }
        for t in keys {
            sent.remove((user, device, t.as_str()))?;
        }
        Ok(())
    }

    /// Moves the user's floor to now (their stored history leaves their view) and purges, in
    /// the same transaction, every message of their conversations no member still needs.
    pub fn drop_history(tx: &WriteTransaction, user: u64) -> Result<(), StoreError> {
        let head = last_pos(&tx.open_table(META)?)?;
        tx.open_table(USERID_FLOOR)?.insert(user, head)?;
        let convs: Vec<u64> = tx
            .open_table(USERID_CONVNO)?
            .range((user, 0)..=(user, u64::MAX))?
            .map(|r| r.map(|(k, _)| k.value().1))
            .collect::<Result<_, _>>()?;
        for no in convs {
            purge_conversation(tx, no)?;
        }
        Ok(())
    }

    /// Purges, in every conversation, the messages every member's floor has passed. Returns
    /// how many messages were removed. Run in the background by the node.
    pub async fn purge_delivered(&self) -> Result<u64, StoreError> {
        self.write(|tx| {
            let convs: Vec<u64> = tx
                .open_table(CONVNO_CONVERSATION)?
                .iter()?
                .map(|r| r.map(|(k, _)| k.value()))
                .collect::<Result<_, _>>()?;
            let mut removed = 0;
            for no in convs {
                removed += purge_conversation(tx, no)?;
            }
            Ok(removed)
        })
        .await
    }

    /// How many messages are stored in a conversation (tombstones included).
    #[cfg(any(test, feature = "test-support"))]
    pub async fn stored_messages(&self, no: u64) -> Result<u64, StoreError> {
        self.read(move |tx| {
            Ok(tx
                .open_table(CONVNO_SEQ_MESSAGE)?
                .range((no, 0)..=(no, u64::MAX))?
                .count() as u64)
        })
        .await
    }

    /// Adds a notice (an [`EventRecord::Notice`]) for one user and returns its pos.
    pub async fn notify_user(&self, user: u64, notice: EventRecord) -> Result<u64, StoreError> {
        self.write(move |tx| {
            let pos = next_pos(tx)?;
            tx.open_table(USERID_POS_EVENT)?
                .insert((user, pos), notice.encode().as_slice())?;
            Ok(pos)
        })
        .await
    }

    /// Stores a media object: its description and its sealed chunks, within the owner's quota.
    /// Returns false (storing nothing) if it would exceed `quota` bytes.
    pub async fn put_media(
        &self,
        id: String,
        rec: MediaRecord,
        chunks: Vec<Vec<u8>>,
        quota: u64,
    ) -> Result<bool, StoreError> {
        self.write(move |tx| {
            let mut used = 0;
            for row in tx.open_table(USERID_MEDIAID)?.range((rec.owner, "")..)? {
                let (k, v) = row?;
                if k.value().0 != rec.owner {
                    break;
                }
                used += v.value();
            }
            if used + rec.size > quota {
                return Ok(false);
            }
            tx.open_table(MEDIAID_MEDIA)?
                .insert(id.as_str(), rec.encode().as_slice())?;
            tx.open_table(USERID_MEDIAID)?
                .insert((rec.owner, id.as_str()), rec.size)?;
            let mut t = tx.open_table(MEDIAID_CHUNKNO_CHUNK)?;
            for (i, c) in chunks.iter().enumerate() {
                t.insert((id.as_str(), i as u32), c.as_slice())?;
            }
            Ok(true)
        })
        .await
    }

    /// The stored (sniffed) content type of a media object `owner` uploaded; None if there is
    /// no such media or it is someone else's.
    pub async fn media_type(&self, id: String, owner: u64) -> Result<Option<String>, StoreError> {
        self.read(move |tx| {
            let Some(v) = tx.open_table(MEDIAID_MEDIA)?.get(id.as_str())? else {
                return Ok(None);
            };
            let rec = MediaRecord::decode(v.value())?;
            Ok((rec.owner == owner).then_some(rec.content_type))
        })
        .await
    }

    /// A media object's description, if `viewer` owns it or is a member of a conversation it was
    /// sent in; its chunks are read one at a time with [`Store::media_chunk`].
    pub async fn media_head(
        &self,
        id: String,
        viewer: u64,
    ) -> Result<Option<MediaRecord>, StoreError> {
        self.read(move |tx| visible_media(tx, &id, viewer)).await
    }

    /// One sealed chunk of a media object; None if it is gone (removed since its head was read).
    pub async fn media_chunk(&self, id: String, no: u32) -> Result<Option<Vec<u8>>, StoreError> {
        self.read(move |tx| {
            Ok(tx
                .open_table(MEDIAID_CHUNKNO_CHUNK)?
                .get((id.as_str(), no))?
                .map(|v| v.value().to_vec()))
        })
        .await
    }

    /// The wrapped data keys of several users (for opening their messages), by user id, with
    /// each user's handle (local users) or full address (users of other nodes). Users that
    /// no longer exist are left out.
    pub async fn wrapped_keys(
        &self,
        users: Vec<u64>,
    ) -> Result<Vec<(u64, String, Vec<u8>)>, StoreError> {
        let book = self.handles.clone();
        self.read(move |tx| keys_of(tx, &book, users)).await
    }
}

/// A device's events with everything needed to show them.
#[derive(Debug)]
pub struct Feed {
    pub events: Vec<EventView>,
    /// The cursor to continue from.
    pub cursor: u64,
    /// (user, handle or address, wrapped data key) of every user the events name who still has
    /// a key.
    pub people: Vec<(u64, String, Vec<u8>)>,
}

/// (user, handle or address, wrapped key) of each user that still has a key.
fn keys_of(
    tx: &ReadTransaction,
    book: &super::HandleBook,
    users: Vec<u64>,
) -> Result<Vec<(u64, String, Vec<u8>)>, StoreError> {
    let t = tx.open_table(USERID_ACCOUNT)?;
    let remote = tx.open_table(USERID_REMOTEUSER)?;
    let mut out = Vec::new();
    for u in users {
        if u & REMOTE_USER_BIT != 0 {
            if let Some(v) = remote.get(u)? {
                let r = super::RemoteUserRecord::decode_named(u, v.value(), book)?;
                out.push((u, r.address, r.wrapped_key));
            }
        } else if let Some(v) = t.get(u)? {
            let a = super::AccountRecord::decode(v.value())?;
            // An account being erased has no key: nothing of theirs is shown.
            if !a.wrapped_key.is_empty() {
                out.push((u, book.get(u).unwrap_or_default(), a.wrapped_key));
            }
        }
    }
    Ok(out)
}

/// The pos at or below which one of `user`'s devices (or, `device` `None`, the history kept
/// for the user) sees none of conversation `no`'s messages: the device's view floor, what the
/// user cleared, and the position before they joined.
pub(super) fn view_lower_pos(
    tx: &ReadTransaction,
    user: u64,
    device: Option<&str>,
    no: u64,
    now: Millis,
) -> Result<u64, StoreError> {
    let floor = view_floor(tx, user, device, now)?;
    history_lower(tx, user, no, floor)
}

/// The pos at or below which a device sees nothing: the user's floor, and for a user without
/// cloud history also the device's start. Cloud history paused by a policy version the user
/// has yet to accept (7.a) counts as none here: older history is not synced to the device,
/// yet nothing is deleted (the floor only rises on acknowledgement when it is revoked).
fn device_floor(
    tx: &ReadTransaction,
    user: u64,
    start: u64,
    now: Millis,
) -> Result<ViewFloor, StoreError> {
    let floor = tx
        .open_table(USERID_FLOOR)?
        .get(user)?
        .map_or(0, |v| v.value());
    let cloud = super::privacy::purpose_status_in(
        &tx.open_table(USERID_PURPOSE_CONSENT)?,
        &tx.open_table(USERID_POLICYSEQ_ACCEPTED)?,
        &tx.open_table(POLICYSEQ_NARROWING)?,
        user,
        "cloud_sync",
        now,
    )? == super::PurposeStatus::Granted;
    Ok(ViewFloor {
        floor: if cloud { floor } else { floor.max(start) },
    })
}

/// The pos at or below which a device of `user` (or, `device` `None`, what is kept for the
/// user) sees nothing of any conversation: [`device_floor`] from the device's start. Shared by
/// history pages and search, so both show exactly the same history.
pub(super) fn view_floor(
    tx: &ReadTransaction,
    user: u64,
    device: Option<&str>,
    now: Millis,
) -> Result<u64, StoreError> {
    let head = last_pos(&tx.open_table(META)?)?;
    let start = match device {
        Some(d) => tx
            .open_table(USERID_DEVICEID_CURSOR)?
            .get((user, d))?
            .map_or(head, |v| v.value().0),
        None => 0,
    };
    Ok(device_floor(tx, user, start, now)?.floor)
}

/// The pos at or below which `user` sees nothing of conversation `no`, given their
/// [`view_floor`]: also what they cleared and what came before they joined.
pub(super) fn history_lower(
    tx: &ReadTransaction,
    user: u64,
    no: u64,
    floor: u64,
) -> Result<u64, StoreError> {
    let cleared = tx
        .open_table(USERID_CONVNO_CLEARED)?
        .get((user, no))?
        .map_or(0, |v| v.value());
    let joined = tx
        .open_table(USERID_CONVNO)?
        .get((user, no))?
        .map_or(0, |v| v.value());
    Ok(floor.max(cleared).max(joined.saturating_sub(1)))
}

/// The tables that decide how a conversation event looks to one user, opened once per read.
struct Shown {
    hidden: ReadOnlyTable<(u64, u64, u64), ()>,
    messages: ReadOnlyTable<(u64, u64), &'static [u8]>,
}

impl Shown {
    /// The event as `user` sees it, or `None` if it is hidden from them.
    fn view(
        &self,
        user: u64,
        no: u64,
        conv_id: &str,
        pos: u64,
        event: EventRecord,
    ) -> Result<Option<EventView>, StoreError> {
        let seq = match &event {
            EventRecord::Message { seq } | EventRecord::Recall { seq } => Some(*seq),
            _ => None,
        };
        let message = match seq {
            Some(seq) => {
                if self.hidden.get((user, no, seq))?.is_some() {
                    return Ok(None);
                }
                match self.messages.get((no, seq))? {
                    Some(v) => Some(MessageRecord::decode(seq, v.value())?),
                    None => return Ok(None), // purged
                }
            }
            None => None,
        };
        Ok(Some(EventView {
            pos,
            conv_id: Some(conv_id.to_string()),
            event,
            message,
        }))
    }
}

/// The body of [`Store::recall_message`], shared with recalls requested by other nodes.
#[allow(clippy::too_many_arguments)]
pub fn recall_in(
    tx: &WriteTransaction,
    user: u64,
    no: u64,
    seq: u64,
    now: Millis,
    window_ms: u64,
    hosted_here: bool,
    fanout: Option<&Fanout>,
) -> Result<Recalled, StoreError> {
    let Some(state) = load_state_w(tx, no)? else {
        return Ok(Recalled::NotMember);
    };
    if state.member(user).is_none() {
        return Ok(Recalled::NotMember);
    }
    let mut messages = tx.open_table(CONVNO_SEQ_MESSAGE)?;
    let found = messages
        .get((no, seq))?
        .map(|v| MessageRecord::decode(seq, v.value()));
    let Some(mut msg) = found.transpose()? else {
        return Ok(Recalled::NoSuchMessage);
    };
    if msg.recalled {
        return Ok(Recalled::NoSuchMessage);
    }
    if msg.author != user {
        return Ok(Recalled::NotAuthor);
    }
    if now.saturating_sub(msg.ts) > window_ms {
        return Ok(Recalled::TooLate);
    }
    let events = [EventRecord::Recall { seq }];
    let members = &state.members;
    let peers = run_fanout(tx, fanout, &state.conversation, members, &[], &events, now)?;
    if !hosted_here {
        return Ok(Recalled::Done(Notify {
            users: Vec::new(),
            pos: 0,
            peers,
        }));
    }
    msg.recalled = true;
    msg.body_sealed.clear();
    messages.insert((no, seq), msg.encode().as_slice())?;
    drop(messages);
    if let Some(id) = &msg.media
        && msg.author & REMOTE_USER_BIT != 0
    {
        super::fedmedia::drop_remote_copy(tx, id)?;
    }
    let pos = next_pos(tx)?;
    put_event(tx, no, pos, &events[0])?;
    Ok(Recalled::Done(Notify {
        users: state.members.iter().map(|m| m.user).collect(),
        pos,
        peers,
    }))
}

/// Removes the messages (and events) of one conversation that every member's floor has passed.
fn purge_conversation(tx: &WriteTransaction, no: u64) -> Result<u64, StoreError> {
    let floors = tx.open_table(USERID_FLOOR)?;
    let mut bound = u64::MAX;
    for row in tx
        .open_table(CONVNO_USERID_MEMBER)?
        .range((no, 0)..=(no, u64::MAX))?
    {
        let (k, _) = row?;
        let user = k.value().1;
        // Users of other nodes hold nothing back: their copies went into the outbound queue
        // (sealed separately) in the same transaction that stored the message.
        if user & REMOTE_USER_BIT != 0 {
            continue;
        }
        bound = bound.min(floors.get(user)?.map_or(0, |v| v.value()));
    }
    drop(floors);
    if bound == 0 || bound == u64::MAX {
        return Ok(0);
    }
    let mut messages = tx.open_table(CONVNO_SEQ_MESSAGE)?;
    let mut gone = Vec::new();
    for row in messages.range((no, 0)..=(no, u64::MAX))? {
        let (k, v) = row?;
        let rec = MessageRecord::decode(k.value().1, v.value())?;
        if rec.pos > bound {
            break;
        }
        gone.push(rec.seq);
    }
    for seq in &gone {
        messages.remove((no, *seq))?;
    }
    drop(messages);
    let mut events = tx.open_table(CONVNO_POS_EVENT)?;
    events.retain_in((no, 0)..=(no, bound), |_, v| {
        // Keep membership and other non-message events; message events go with their message.
        !matches!(
            EventRecord::decode(v),
            Ok(EventRecord::Message { .. } | EventRecord::Recall { .. })
        )
    })?;
    Ok(gone.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ConsentEvent, SessionRecord};

    #[test]
    fn a_coded_notice_keeps_its_code_and_parameters_in_order_and_free_text_stays_text() {
        for content in [
            NoticeContent::Coded {
                code: "sign_in.new_device".into(),
                params: vec![
                    ("at".into(), "2026-12-03T10:00:00Z".into()),
                    ("b".into(), String::new()),
                ],
            },
            NoticeContent::Coded {
                code: "x".into(),
                params: vec![],
            },
            NoticeContent::Text {
                title: "Maintenance".into(),
                text: "Tonight.".into(),
            },
        ] {
            let e = EventRecord::Notice {
                kind: NoticeKind::Request,
                content,
            };
            assert_eq!(EventRecord::decode(&e.encode()).unwrap(), e);
        }
    }

    #[test]
    fn notices_stored_before_codes_still_read_as_their_text() {
        // Tag 6, as written before coded notices: kind, title, text.
        let old = Enc::new(1)
            .u64(6)
            .u64(NoticeKind::Policy.code())
            .str("Privacy policy v2")
            .str("Read it.")
            .finish();
        assert_eq!(
            EventRecord::decode(&old).unwrap(),
            EventRecord::Notice {
                kind: NoticeKind::Policy,
                content: NoticeContent::Text {
                    title: "Privacy policy v2".into(),
                    text: "Read it.".into(),
                },
            }
        );
    }

    #[test]
    fn a_coded_notice_claiming_more_parameters_than_bytes_is_corrupt() {
        let bad = Enc::new(1).u64(9).u64(0).str("c").u64(u64::MAX).finish();
        assert!(matches!(
            EventRecord::decode(&bad),
            Err(StoreError::Corrupt("event"))
        ));
    }

    async fn setup() -> (tempfile::TempDir, Store, u64) {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(&dir.path().join("n.redb"), |_| Ok(None)).unwrap();
        for (user, device) in [(1u64, "a1"), (2, "b1")] {
            store
                .insert_session(SessionRecord {
                    token_hash: [user as u8; 32],
                    user,
                    device_id: device.into(),
                    created: Millis(0),
                    last_seen: Millis(0),
                    device_sealed: vec![],
                })
                .await
                .unwrap();
        }
        let (conv, created, _) = store
            .create_conversation(crate::tests::conversation(
                "c:localhost",
                77,
                ConvKind::Direct,
                vec![2],
            ))
            .await
            .unwrap()
            .unwrap();
        assert!(created);
        (dir, store, conv.no)
    }

    async fn send(store: &Store, n: u64) {
        let sent = store
            .send_message(NewMessage {
                author: 1,
                device_id: "a1".into(),
                txn_id: format!("t{n}"),
                conv_id: "c:localhost".into(),
                id: [n as u8; 16],
                ts: Millis(10 + n),
                body_sealed: vec![1, 2, 3],
                media: None,
                hosted_here: true,
                fanout: None,
            })
            .await
            .unwrap();
        assert!(matches!(sent, Sent::New { .. }), "{sent:?}");
    }

    /// Sends txn id "t1" again, with other content: the answer is the first send's.
    async fn assert_repeat_of_t1(store: &Store) {
        let again = store
            .send_message(NewMessage {
                author: 1,
                device_id: "a1".into(),
                txn_id: "t1".into(),
                conv_id: "c:localhost".into(),
                id: [9; 16],
                ts: Millis(99),
                body_sealed: vec![9],
                media: None,
                hosted_here: true,
                fanout: None,
            })
            .await
            .unwrap();
        assert_eq!(
            again,
            Sent::Repeat {
                seq: 1,
                ts: Millis(11)
            }
        );
    }

    async fn head(store: &Store, user: u64, device: &str) -> u64 {
        store
            .events_since(user, device.into(), None, 1000, Millis(0))
            .await
            .unwrap()
            .cursor
    }

    async fn set_cloud(store: &Store, user: u64, granted: bool) {
        let e = ConsentEvent {
            purpose: "cloud_sync".into(),
            granted,
            at: Millis(5),
            policy_version: "v".into(),
            device_id: "d".into(),
        };
        store.record_consent(user, e, None).await.unwrap();
    }

    #[tokio::test]
    async fn without_cloud_history_messages_leave_disk_once_every_device_has_them() {
        let (_d, store, no) = setup().await;
        for n in 1..=3 {
            send(&store, n).await;
        }
        assert_eq!(
            store.purge_delivered().await.unwrap(),
            0,
            "nobody has received them yet"
        );
        let top = head(&store, 1, "a1").await;
        store.acknowledge(1, "a1".into(), top).await.unwrap();
        assert_eq!(
            store.purge_delivered().await.unwrap(),
            0,
            "the other member has not"
        );
        store.acknowledge(2, "b1".into(), top).await.unwrap();
        assert_eq!(store.purge_delivered().await.unwrap(), 3);
        assert_eq!(store.stored_messages(no).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn a_member_with_cloud_history_keeps_messages_until_revoking_it() {
        let (_d, store, no) = setup().await;
        set_cloud(&store, 2, true).await;
        for n in 1..=2 {
            send(&store, n).await;
        }
        let top = head(&store, 1, "a1").await;
        store.acknowledge(1, "a1".into(), top).await.unwrap();
        store.acknowledge(2, "b1".into(), top).await.unwrap();
        assert_eq!(
            store.purge_delivered().await.unwrap(),
            0,
            "kept for the cloud member"
        );
        assert_eq!(store.stored_messages(no).await.unwrap(), 2);
        let page = store
            .messages(
                2,
                Some("b1".into()),
                no,
                Page {
                    before: None,
                    after: None,
                    limit: 10,
                },
                Millis(0),
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(page.len(), 2, "the cloud member still sees them");
        set_cloud(&store, 2, false).await;
        assert_eq!(
            store.stored_messages(no).await.unwrap(),
            0,
            "revocation purges at once"
        );
        let page = store
            .messages(
                2,
                Some("b1".into()),
                no,
                Page {
                    before: None,
                    after: None,
                    limit: 10,
                },
                Millis(0),
            )
            .await
            .unwrap()
            .unwrap();
        assert!(page.is_empty());
    }

    #[tokio::test]
    async fn ending_a_session_forgets_the_devices_txn_ids_and_cursor() {
        let (_d, store, _) = setup().await;
        send(&store, 1).await;
        use super::super::sentlog::tests::sends_of;
        assert_eq!(sends_of(&store, 1).await, 1, "the send is recorded");
        assert!(
            store
                .delete_session(1, "a1".into())
                .await
                .unwrap()
                .is_some()
        );
        assert_eq!(sends_of(&store, 1).await, 0);
        let cursors = store
            .read(|tx| {
                Ok(tx
                    .open_table(USERID_DEVICEID_CURSOR)?
                    .get((1u64, "a1"))?
                    .is_some())
            })
            .await
            .unwrap();
        assert!(!cursors);
    }

    #[tokio::test]
    async fn a_send_retried_after_a_restart_is_a_repeat() {
        let (dir, store, _) = setup().await;
        send(&store, 1).await;
        drop(store);
        let (store, _) = Store::open(&dir.path().join("n.redb"), |_| Ok(None)).unwrap();
        assert_repeat_of_t1(&store).await;
    }

    #[tokio::test]
    async fn repeated_txn_ids_store_once_and_seq_has_no_gaps() {
        let (_d, store, no) = setup().await;
        send(&store, 1).await;
        assert_repeat_of_t1(&store).await;
        send(&store, 2).await;
        let page = store
            .messages(
                1,
                Some("a1".into()),
                no,
                Page {
                    before: None,
                    after: Some(0),
                    limit: 10,
                },
                Millis(0),
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(page.iter().map(|m| m.seq).collect::<Vec<_>>(), vec![1, 2]);
    }
}
