//! Conversation writes that arrive from other nodes, each applied at most once: an envelope's
//! (origin, id) is recorded in `origin_envid_seen` in the same transaction that applies it, so
//! a repeat finds it and changes nothing.
//!
//! As *host* of a conversation this node accepts members' messages, recalls and changes from
//! their nodes, sequences them and fans them out (`accept_submission`, `host_change`,
//! `host_recall`). As a *replica* it takes the host's word for order and membership
//! (`apply_hosted_message`, `sync_replica`, `apply_hosted_recall`).

use std::collections::HashSet;

use redb::{ReadableTable, WriteTransaction};

use super::batch::NewRow;
use super::catalog::*;
use super::federation::{Fanout, Outgoing, enqueue, run_fanout};
use super::messaging::{
    ConvKind, ConversationRecord, ConversationState, EventRecord, MemberAction, MemberRecord,
    MessageRecord, Mutation, Notify, Recalled, Role, add_member, change_in, load_state_w, next_pos,
    put_event, recall_in,
};
use super::{Refusal, Store, StoreError};
use primitives::time::Millis;

/// What became of one envelope from another node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound<T> {
    Applied(T),
    /// Applied before (same origin and envelope id): nothing done.
    Duplicate,
    /// Refused for good; the reason goes back to the sender.
    Rejected(String),
    /// Not applied now (a queue is full); the sender should retry later.
    Busy(String),
}

/// A member's message sent to this node as the conversation's host.
#[derive(Debug, Clone)]
pub struct Submission {
    pub origin: String,
    pub envelope_id: String,
    pub conv_id: String,
    /// The sender's local id (a remote user's id).
    pub author: u64,
    pub msg_id: [u8; 16],
    pub ts: Millis,
    pub body_sealed: Vec<u8>,
    pub fanout: Option<Fanout>,
    /// The media the message refers to (issue 25).
    pub media: Option<super::IncomingMedia>,
}

/// A conversation's state as its host announces it.
#[derive(Debug, Clone)]
pub struct ReplicaState {
    pub origin: String,
    pub envelope_id: String,
    pub conv_id: String,
    /// The local number to use if this node has no copy yet.
    pub new_no: u64,
    pub kind: ConvKind,
    pub name: String,
    pub public: bool,
    pub members: Vec<(u64, Role)>,
    pub actor: u64,
    pub now: Millis,
}

fn seen(tx: &WriteTransaction, origin: &str, id: &str) -> Result<bool, StoreError> {
    Ok(tx
        .open_table(ORIGIN_ENVID_SEEN)?
        .get((origin, id))?
        .is_some())
}

pub fn mark_seen(
    tx: &WriteTransaction,
    origin: &str,
    id: &str,
    now: Millis,
) -> Result<(), StoreError> {
    let before = tx
        .open_table(ORIGIN_ENVID_SEEN)?
        .insert((origin, id), now.0)?
        .map(|v| v.value());
    let mut by_time = tx.open_table(MS_ORIGIN_ENVID_SEEN)?;
    if let Some(at) = before {
        by_time.remove((at, origin, id))?;
    }
    by_time.insert((now.0, origin, id), ())?;
    Ok(())
}

fn conv_no(tx: &WriteTransaction, id: &str) -> Result<Option<u64>, StoreError> {
    Ok(tx.open_table(CONVID_CONVNO)?.get(id)?.map(|v| v.value()))
}

/// A conversation this node holds, with its members, by public id.
fn state_of(tx: &WriteTransaction, id: &str) -> Result<Option<ConversationState>, StoreError> {
    match conv_no(tx, id)? {
        Some(no) => load_state_w(tx, no),
        None => Ok(None),
    }
}

fn no_such_conversation<T>() -> Inbound<T> {
    Inbound::Rejected("no such conversation".into())
}

fn refusal_to_inbound<T>(r: Refusal) -> Inbound<T> {
    match r {
        Refusal::QueueFull { peer } => Inbound::Busy(format!("the queue to {peer} is full")),
        Refusal::Residency { peer, region } => Inbound::Rejected(format!(
            "a member has not consented to transfers to {peer} (region {region})"
        )),
        Refusal::UnknownPeer { peer } => Inbound::Rejected(format!("{peer} is not a peer")),
        Refusal::TooLargeForPeer { peer, limit } => {
            Inbound::Rejected(format!("{peer} takes media of at most {limit} bytes"))
        }
        Refusal::Internal(m) | Refusal::Unsupported(m) => Inbound::Rejected(m),
    }
}

impl Store {
    /// As host: sequences a member's message sent by their node and fans it out.
    pub async fn accept_submission(&self, s: Submission) -> Result<Inbound<Notify>, StoreError> {
        super::or_refused(
            self.write_message(move |tx, w| {
                if seen(tx, &s.origin, &s.envelope_id)? {
                    return Ok(Inbound::Duplicate);
                }
                let Some(state) = w.state_of(tx, &s.conv_id)? else {
                    return Ok(no_such_conversation());
                };
                let no = state.conversation.no;
                if state.member(s.author).is_none() {
                    return Ok(Inbound::Rejected("the sender is not a member".into()));
                }
                if let Some(m) = &s.media {
                    super::fedmedia::note_incoming_media(tx, no, m)?;
                }
                let row = NewRow {
                    id: s.msg_id,
                    author: s.author,
                    ts: s.ts,
                    body_sealed: &s.body_sealed,
                    media: s.media.as_ref().map(|m| m.local_id.as_str()),
                };
                let (seq, pos, state) = w.store_message(tx, no, row)?;
                let events = [EventRecord::Message { seq }];
                let fanout = s.fanout.as_ref();
                let conv = &state.conversation;
                let peers = run_fanout(tx, fanout, conv, &state.members, &[], &events, s.ts)?;
                mark_seen(tx, &s.origin, &s.envelope_id, s.ts)?;
                Ok(Inbound::Applied(Notify {
                    users: state.members.iter().map(|m| m.user).collect(),
                    pos,
                    peers,
                }))
            })
            .await,
            refusal_to_inbound,
        )
    }

    /// As host: a change (invite, remove, leave, role, rename…) asked for by a member's node,
    /// decided by the same rules as a local member's change.
    #[allow(clippy::too_many_arguments)]
    pub async fn host_change<F>(
        &self,
        origin: String,
        envelope_id: String,
        conv_id: String,
        actor: u64,
        now: Millis,
        decide: F,
        fanout: Option<Fanout>,
    ) -> Result<Inbound<Notify>, StoreError>
    where
        F: Fn(&ConversationState) -> Result<Vec<Mutation>, String> + Send + 'static,
    {
        super::or_refused(
            self.write(move |tx| {
                if seen(tx, &origin, &envelope_id)? {
                    return Ok(Inbound::Duplicate);
                }
                let Some(no) = conv_no(tx, &conv_id)? else {
                    return Ok(no_such_conversation());
                };
                match change_in(tx, no, actor, now, &decide, fanout.as_ref())? {
                    Ok(n) => {
                        mark_seen(tx, &origin, &envelope_id, now)?;
                        Ok(Inbound::Applied(n))
                    }
                    Err(rule) => Ok(Inbound::Rejected(rule)),
                }
            })
            .await,
            refusal_to_inbound,
        )
    }

    /// As host: a recall asked for by the author's node.
    #[allow(clippy::too_many_arguments)]
    pub async fn host_recall(
        &self,
        origin: String,
        envelope_id: String,
        conv_id: String,
        author: u64,
        seq: u64,
        now: Millis,
        window_ms: u64,
        fanout: Option<Fanout>,
    ) -> Result<Inbound<Notify>, StoreError> {
        super::or_refused(
            self.write(move |tx| {
                if seen(tx, &origin, &envelope_id)? {
                    return Ok(Inbound::Duplicate);
                }
                let Some(no) = conv_no(tx, &conv_id)? else {
                    return Ok(no_such_conversation());
                };
                let out =
                    match recall_in(tx, author, no, seq, now, window_ms, true, fanout.as_ref())? {
                        Recalled::Done(n) => Inbound::Applied(n),
                        Recalled::Refused(r) => return Ok(refusal_to_inbound(r)),
                        Recalled::NotMember => {
                            Inbound::Rejected("the sender is not a member".into())
                        }
                        Recalled::NoSuchMessage => Inbound::Rejected("no such message".into()),
                        Recalled::NotAuthor => {
                            Inbound::Rejected("only the author may recall".into())
                        }
                        Recalled::TooLate => {
                            Inbound::Rejected("the recall window has passed".into())
                        }
                    };
                mark_seen(tx, &origin, &envelope_id, now)?;
                Ok(out)
            })
            .await,
            refusal_to_inbound,
        )
    }

    /// As replica: a message as sequenced by the conversation's host.
    #[allow(clippy::too_many_arguments)]
    pub async fn apply_hosted_message(
        &self,
        origin: String,
        envelope_id: String,
        conv_id: String,
        seq: u64,
        author: u64,
        msg_id: [u8; 16],
        ts: Millis,
        body_sealed: Vec<u8>,
        media: Option<super::IncomingMedia>,
        now: Millis,
    ) -> Result<Inbound<Notify>, StoreError> {
        self.write_message(move |tx, w| {
            if seen(tx, &origin, &envelope_id)? {
                return Ok(Inbound::Duplicate);
            }
            let Some(state) = w.state_of(tx, &conv_id)? else {
                return Ok(no_such_conversation());
            };
            let no = state.conversation.no;
            if state.member(author).is_none() {
                return Ok(Inbound::Rejected("the sender is not a member".into()));
            }
            let users = state.members.iter().map(|m| m.user).collect();
            mark_seen(tx, &origin, &envelope_id, now)?;
            if w.has_message(no, seq)? {
                return Ok(Inbound::Duplicate);
            }
            if let Some(m) = &media {
                super::fedmedia::note_incoming_media(tx, no, m)?;
            }
            let row = NewRow {
                id: msg_id,
                author,
                ts,
                body_sealed: &body_sealed,
                media: media.as_ref().map(|m| m.local_id.as_str()),
            };
            let pos = w.put_message(tx, no, seq, row)?;
            Ok(Inbound::Applied(Notify {
                users,
                pos,
                peers: Vec::new(),
            }))
        })
        .await
    }

    /// As replica: a recall applied by the host.
    pub async fn apply_hosted_recall(
        &self,
        origin: String,
        envelope_id: String,
        conv_id: String,
        seq: u64,
        now: Millis,
    ) -> Result<Inbound<Notify>, StoreError> {
        self.write(move |tx| {
            if seen(tx, &origin, &envelope_id)? {
                return Ok(Inbound::Duplicate);
            }
            let Some(state) = state_of(tx, &conv_id)? else {
                return Ok(no_such_conversation());
            };
            let no = state.conversation.no;
            mark_seen(tx, &origin, &envelope_id, now)?;
            let mut messages = tx.open_table(CONVNO_SEQ_MESSAGE)?;
            let found = messages
                .get((no, seq))?
                .map(|v| MessageRecord::decode(seq, v.value()));
            let Some(mut msg) = found.transpose()? else {
                return Ok(Inbound::Duplicate);
            };
            if msg.recalled {
                return Ok(Inbound::Duplicate);
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
            put_event(tx, no, pos, &EventRecord::Recall { seq })?;
            Ok(Inbound::Applied(Notify {
                users: state.members.iter().map(|m| m.user).collect(),
                pos,
                peers: Vec::new(),
            }))
        })
        .await
    }

    /// As replica: takes the host's membership, name and visibility, creating the local copy
    /// of the conversation when new, with one event per difference.
    pub async fn sync_replica(&self, r: ReplicaState) -> Result<Inbound<Notify>, StoreError> {
        self.write(move |tx| {
            if seen(tx, &r.origin, &r.envelope_id)? {
                return Ok(Inbound::Duplicate);
            }
            let no = match conv_no(tx, &r.conv_id)? {
                Some(no) => no,
                None => {
                    let mut no = r.new_no;
                    while tx.open_table(CONVNO_CONVERSATION)?.get(no)?.is_some() {
                        no = no.wrapping_add(1);
                    }
                    let rec = ConversationRecord {
                        no,
                        id: r.conv_id.clone(),
                        kind: r.kind,
                        name: r.name.clone(),
                        public: r.public,
                        created: r.now,
                        last_seq: 0,
                        last_activity: r.now,
                    };
                    tx.open_table(CONVNO_CONVERSATION)?
                        .insert(no, rec.encode().as_slice())?;
                    tx.open_table(CONVID_CONVNO)?
                        .insert(r.conv_id.as_str(), no)?;
                    if r.kind == ConvKind::Direct
                        && let [(a, _), (b, _)] = r.members.as_slice()
                    {
                        tx.open_table(USERPAIR_CONVNO)?
                            .insert(((*a).min(*b), (*a).max(*b)), no)?;
                    }
                    no
                }
            };
            let state = load_state_w(tx, no)?.ok_or(StoreError::Corrupt("conversation"))?;
            let mut conv = state.conversation.clone();
            let mut users: HashSet<u64> = state.members.iter().map(|m| m.user).collect();
            let mut pos = 0;
            let actor = r.actor;
            let event = |tx: &WriteTransaction, ev: EventRecord| -> Result<u64, StoreError> {
                let p = next_pos(tx)?;
                put_event(tx, no, p, &ev)?;
                Ok(p)
            };
            for m in &state.members {
                if !r.members.iter().any(|(u, _)| *u == m.user) {
                    let action = if m.user == actor {
                        MemberAction::Left
                    } else {
                        MemberAction::Removed
                    };
                    tx.open_table(CONVNO_USERID_MEMBER)?.remove((no, m.user))?;
                    tx.open_table(USERID_CONVNO)?.remove((m.user, no))?;
                    super::reading::forget_read(tx, m.user, no)?;
                    let ev = EventRecord::Member {
                        action,
                        user: m.user,
                        actor,
                        role: m.role,
                    };
                    pos = event(tx, ev.clone())?;
                    tx.open_table(USERID_POS_EVENT)?
                        .insert((m.user, pos), ev.encode().as_slice())?;
                }
            }
            for &(user, role) in &r.members {
                match state.member(user) {
                    None => {
                        pos = next_pos(tx)?;
                        let m = MemberRecord {
                            user,
                            role,
                            joined: r.now,
                        };
                        add_member(tx, no, m, pos)?;
                        let action = if user == actor {
                            MemberAction::Joined
                        } else {
                            MemberAction::Invited
                        };
                        let ev = EventRecord::Member {
                            action,
                            user,
                            actor,
                            role,
                        };
                        put_event(tx, no, pos, &ev)?;
                        users.insert(user);
                    }
                    Some(m) if m.role != role => {
                        let rec = MemberRecord { role, ..*m };
                        tx.open_table(CONVNO_USERID_MEMBER)?
                            .insert((no, user), rec.encode().as_slice())?;
                        pos = event(
                            tx,
                            EventRecord::Member {
                                action: MemberAction::RoleChanged,
                                user,
                                actor,
                                role,
                            },
                        )?;
                    }
                    Some(_) => {}
                }
            }
            if conv.name != r.name {
                conv.name = r.name.clone();
                pos = event(
                    tx,
                    EventRecord::Renamed {
                        name: r.name.clone(),
                        actor,
                    },
                )?;
            }
            if conv.public != r.public {
                conv.public = r.public;
                pos = event(
                    tx,
                    EventRecord::Visibility {
                        public: r.public,
                        actor,
                    },
                )?;
            }
            conv.last_activity = r.now;
            tx.open_table(CONVNO_CONVERSATION)?
                .insert(no, conv.encode().as_slice())?;
            mark_seen(tx, &r.origin, &r.envelope_id, r.now)?;
            Ok(Inbound::Applied(Notify {
                users: users.into_iter().collect(),
                pos,
                peers: Vec::new(),
            }))
        })
        .await
    }

    /// A peer asks this node to erase everything it holds that one of the peer's users wrote:
    /// their data key goes first (every sealed copy becomes unreadable), then their record,
    /// memberships and queued relays; their messages stay only as empty tombstones. `ack` is
    /// queued in the same transaction.
    pub async fn erase_remote_user(
        &self,
        origin: String,
        envelope_id: String,
        address: String,
        ack: Outgoing,
        now: Millis,
    ) -> Result<Inbound<Notify>, StoreError> {
        let index = self.handles().index(&address);
        let (answer, erased) = self
            .write(move |tx| {
                if seen(tx, &origin, &envelope_id)? {
                    return Ok((Inbound::Duplicate, None));
                }
                let id = tx
                    .open_table(REMOTEINDEX_USERID)?
                    .remove(&index)?
                    .map(|v| v.value());
                let (mut users, mut pos) = (Vec::new(), 0);
                if let Some(id) = id {
                    (users, pos) = erase_remote_rows(tx, id, now)?;
                }
                let peers = enqueue(tx, std::slice::from_ref(&ack), now)?;
                mark_seen(tx, &origin, &envelope_id, now)?;
                Ok((Inbound::Applied(Notify { users, pos, peers }), id))
            })
            .await?;
        // Their address leaves memory once the record (and the key sealing it) is gone.
        if let Some(id) = erased {
            self.handles().remove(id);
        }
        Ok(answer)
    }

    /// Erases the remote user `id` again, as [`Store::erase_remote_user`] did when their node
    /// asked (a restore re-applies it to an older backup that still holds them). Their entry
    /// in `remoteindex_userid` is found by key: the one `userid_remoteindex` recorded, else
    /// the keyed hash of their address as the handle book holds it. Returns whether they
    /// were there.
    pub async fn erase_remote_id(&self, id: u64, now: Millis) -> Result<bool, StoreError> {
        let from_book = self.handles().get(id).map(|a| self.handles().index(&a));
        let found = self
            .write(move |tx| {
                if tx.open_table(USERID_REMOTEUSER)?.get(id)?.is_none() {
                    return Ok(false);
                }
                let recorded = USERID_REMOTEINDEX.get(tx, &id)?;
                let mut index = tx.open_table(REMOTEINDEX_USERID)?;
                let keys = recorded.iter().map(Vec::as_slice);
                for ix in keys.chain(from_book.as_ref().map(|i| &i[..])) {
                    let ix: &[u8; 32] = ix
                        .try_into()
                        .map_err(|_| StoreError::Corrupt("remote index"))?;
                    if index.get(ix)?.is_some_and(|v| v.value() == id) {
                        index.remove(ix)?;
                    }
                }
                drop(index);
                erase_remote_rows(tx, id, now)?;
                Ok(true)
            })
            .await?;
        if found {
            self.handles().remove(id);
        }
        Ok(found)
    }

    /// A peer acknowledges that it erased one of this node's users: `ack` is the digest of its
    /// content, which must be the one recorded with the request.
    pub async fn erasure_acknowledged(
        &self,
        origin: String,
        envelope_id: String,
        user: u64,
        ack: [u8; 32],
        now: Millis,
    ) -> Result<Inbound<()>, StoreError> {
        self.write(move |tx| {
            if seen(tx, &origin, &envelope_id)? {
                return Ok(Inbound::Duplicate);
            }
            let key = (user, origin.clone());
            let Some((requested, _)) = USERID_PEER_ERASURE.get(tx, &key)? else {
                return Ok(Inbound::Rejected(
                    "no erasure was asked of you for this user".into(),
                ));
            };
            // Every field must match what was asked (requests from before schema 5 recorded
            // no expectation and are matched by reference and peer, as they were then).
            let expected = USERID_PEER_ERASUREACK.get(tx, &key)?;
            if expected.is_some_and(|e| e != ack) {
                return Ok(Inbound::Rejected(
                    "the acknowledgement's user, reference or erasure id does not match the erasure asked of you".into(),
                ));
            }
            USERID_PEER_ERASURE.insert(tx, &key, &(requested, now.0))?;
            mark_seen(tx, &origin, &envelope_id, now)?;
            Ok(Inbound::Applied(()))
        })
        .await
    }
}

/// Everything this node holds of the remote user `id` but their index entry (the record of its
/// key goes, though): their record (and
/// the data key sealing what they wrote) first, their media copies, their messages (left as
/// empty tombstones), memberships, friendships, community posts, comments and favourites, and
/// queued relays; and the record that they
/// were erased (`remoteid_erased`, for restores). Returns the local users to notify and the
/// last event position.
fn erase_remote_rows(
    tx: &WriteTransaction,
    id: u64,
    now: Millis,
) -> Result<(Vec<u64>, u64), StoreError> {
    tx.open_table(USERID_REMOTEUSER)?.remove(id)?;
    USERID_REMOTEINDEX.remove(tx, &id)?;
    super::fedmedia::drop_remote_media_of(tx, id)?;
    super::erasure::messages(tx, id, (0, 0), usize::MAX)?;
    let (users, pos) = super::erasure::leave_everywhere(tx, id)?;
    // Friendships and requests with this node's users end with them (friends).
    if !super::friends::erase_friend_rows(tx, id, &mut { usize::MAX })? {
        return Err(StoreError::Corrupt("a remote user's friend rows"));
    }
    // And the join requests they left through this node's invites.
    super::invites::erase_invite_rows(tx, id)?;
    // Their posts, comments, favourites and memberships in communities hosted here (issue 23),
    // in one go: a remote member's share of a community is what they wrote through it.
    let mut cursor = (0, 0);
    if !super::community::erase_step(tx, id, usize::MAX, &mut cursor)? {
        return Err(StoreError::Corrupt("a remote member's community rows"));
    }
    // What waits in the outbound queue sealed under their key (this node relaying what they
    // wrote) is unreadable once their record, with the key, is gone above: the delivery
    // worker drops each such envelope when it reaches it, so no scan of every peer's queue
    // happens here.
    tx.open_table(REMOTEID_ERASED)?.insert(id, now.0)?;
    Ok((users, pos))
}
