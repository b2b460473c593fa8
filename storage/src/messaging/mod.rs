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
//!
//! The parts, one job each: this file holds the records every part shares (conversations,
//! members, messages), the mutations and state the domain's rules work on, and the position
//! counter and low-level writes; `events.rs` the event records and notices; `conversations.rs`
//! conversations and membership; `send.rs` sending; `recall.rs` recall and deletion from one's
//! own view; `feed.rs` a device's event feed; `history.rs` history pages and floors;
//! `cursors.rs` device cursors and acknowledgement; `purge.rs` purging; `media.rs` media.

mod conversations;
mod cursors;
mod events;
mod feed;
mod history;
mod media;
mod purge;
mod recall;
mod send;

pub use conversations::{NewConversation, change_in};
pub use events::{EventRecord, MemberAction, NoticeContent, NoticeKind};
pub use history::Page;
pub(super) use history::{Hidden, history_lower, view_floor, view_lower_pos};
pub use media::MediaRecord;
pub(super) use recall::erase_own_view;
pub use recall::{Recalled, recall_in};
pub use send::{NewMessage, Sent};

use redb::{ReadTransaction, ReadableTable, WriteTransaction};

use super::StoreError;
use super::catalog::*;
use super::codec::{Dec, Enc};
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SessionRecord, Store};

    pub(super) async fn setup() -> (tempfile::TempDir, Store, u64) {
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

    pub(super) async fn send(store: &Store, n: u64) {
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
}
