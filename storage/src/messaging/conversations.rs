//! Conversations and membership: creating a conversation with its first members, finding and
//! reading conversations, and applying the domain's mutations (joins, removals, roles, name,
//! visibility) with one event each, also for changes other nodes request ([`change_in`]).

use std::collections::HashSet;

use redb::{ReadableTable, WriteTransaction};

use super::{
    ConvKind, ConversationRecord, ConversationState, EventRecord, MemberAction, MemberRecord,
    Mutation, Notify, Role, add_member, load_state_r, load_state_w, next_pos, put_event,
};
use crate::catalog::*;
use crate::federation::{Fanout, Refusal, run_fanout};
use crate::{Store, StoreError};
use primitives::time::Millis;

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
        crate::or_refused(
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
                    return Err(StoreError::Conflict(crate::Conflict::UserId));
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
        crate::or_refused(
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
                crate::reading::forget_read(tx, user, no)?;
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
