//! Friends as stored: friend requests (note sealed under the sender's key), friendships and
//! blocks (each kept from both ends), the who-may-message-me setting and the daily request
//! count; every step writes a friend event for the local users it concerns in the same
//! transaction. Also the narrow checks other areas use inside or outside a transaction
//! (`are_friends`, `blocked_either`, `direct_refused`) and the erasure and retention of these
//! rows.

use std::ops::Bound;

use redb::WriteTransaction;

use super::catalog::*;
use super::codec::{Dec, Enc};
use super::federation::{Outgoing, enqueue};
use super::kv;
use super::messaging::{EventRecord, next_pos};
use super::{Store, StoreError};
use primitives::time::Millis;

/// What became of a friend request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestState {
    Pending,
    Accepted,
    Declined,
    Cancelled,
}

impl RequestState {
    const ALL: [RequestState; 4] = [
        RequestState::Pending,
        RequestState::Accepted,
        RequestState::Declined,
        RequestState::Cancelled,
    ];
    pub const fn name(self) -> &'static str {
        match self {
            RequestState::Pending => "pending",
            RequestState::Accepted => "accepted",
            RequestState::Declined => "declined",
            RequestState::Cancelled => "cancelled",
        }
    }
}

/// A step of the friends feature, as an event on a user's stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FriendAction {
    /// A request was sent (to the recipient: received).
    Requested,
    Accepted,
    Declined,
    /// The sender withdrew the request (or it left the recipient's list).
    Cancelled,
    /// A friendship ended.
    Removed,
}

impl FriendAction {
    pub const ALL: [FriendAction; 5] = [
        FriendAction::Requested,
        FriendAction::Accepted,
        FriendAction::Declined,
        FriendAction::Cancelled,
        FriendAction::Removed,
    ];
    pub const fn name(self) -> &'static str {
        match self {
            FriendAction::Requested => "requested",
            FriendAction::Accepted => "accepted",
            FriendAction::Declined => "declined",
            FriendAction::Cancelled => "cancelled",
            FriendAction::Removed => "removed",
        }
    }
    pub fn code(self) -> u64 {
        self as u64
    }
}

/// One friend request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FriendRequestRecord {
    pub id: u64,
    pub from: u64,
    pub to: u64,
    /// Sealed under the sender's data key; empty when the request has no note.
    pub note_sealed: Vec<u8>,
    pub created: Millis,
    pub state: RequestState,
    /// When it was answered or cancelled (0 while pending).
    pub closed: Millis,
    /// The recipient had blocked the sender when it was sent (or blocked them since): the
    /// recipient never sees it, the sender sees it pending like any unanswered request.
    pub hidden: bool,
}

impl FriendRequestRecord {
    fn encode(&self) -> Vec<u8> {
        Enc::new(1)
            .u64(self.from)
            .u64(self.to)
            .bytes(&self.note_sealed)
            .u64(self.created.0)
            .u64(self.state as u64)
            .u64(self.closed.0)
            .bool(self.hidden)
            .finish()
    }
    fn decode(id: u64, b: &[u8]) -> Result<Self, StoreError> {
        let mut d = Dec::new(b, "friend request", 1)?;
        let r = FriendRequestRecord {
            id,
            from: d.u64()?,
            to: d.u64()?,
            note_sealed: d.bytes()?,
            created: Millis(d.u64()?),
            state: *RequestState::ALL
                .get(d.u64()? as usize)
                .ok_or(StoreError::Corrupt("friend request"))?,
            closed: Millis(d.u64()?),
            hidden: d.bool()?,
        };
        d.end()?;
        Ok(r)
    }
}

/// The limits a new request is checked against.
#[derive(Debug, Clone, Copy)]
pub struct RequestLimits {
    pub max_pending: u64,
    pub per_day: u64,
    pub declined_cooldown_ms: u64,
}

/// A request to store; the note is sealed already (empty: none).
#[derive(Debug)]
pub struct NewFriendRequest {
    pub id: u64,
    pub from: u64,
    pub to: u64,
    pub note_sealed: Vec<u8>,
    pub now: Millis,
    pub limits: RequestLimits,
    /// Envelopes to queue with the request (to the recipient's node when they are remote).
    pub outgoing: Vec<Outgoing>,
}

/// Local users to wake and the event position written for them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FriendNotify {
    pub users: Vec<u64>,
    pub pos: u64,
}

/// What sending a request came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestOutcome {
    Sent(FriendRequestRecord, Vec<FriendNotify>),
    AlreadyFriends,
    /// The sender blocks the recipient.
    YouBlock,
    /// A request between the two is pending (either direction).
    Pending,
    RecentlyDeclined {
        until: Millis,
    },
    TooManyPending,
    DailyLimit {
        retry_at: Millis,
    },
}

/// What answering, cancelling or removing came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepOutcome {
    Done(FriendRequestRecord, Vec<FriendNotify>),
    NotFound,
}

const DAY_MS: u64 = 86_400_000;

/// Rows of one user's friendships, blocks or requests read at a time.
const PAGE: usize = 256;

fn get_request(tx: &impl kv::Read, id: u64) -> Result<Option<FriendRequestRecord>, StoreError> {
    FRIENDREQID_REQUEST
        .get(tx, &id)?
        .map(|v| FriendRequestRecord::decode(id, &v))
        .transpose()
}

fn put_request(tx: &impl kv::Write, r: &FriendRequestRecord) -> Result<(), StoreError> {
    FRIENDREQID_REQUEST.insert(tx, &r.id, &r.encode())?;
    if r.state != RequestState::Pending {
        MS_FRIENDREQID_CLOSED.insert(tx, &(r.closed.0, r.id), &())?;
    }
    Ok(())
}

/// The second components of every key of `table` under `user` (their friends, the users
/// they block, their requests), read a page at a time.
fn others_of<V: kv::Value>(
    tx: &impl kv::Read,
    table: kv::Table<(u64, u64), V>,
    user: u64,
) -> Result<Vec<(u64, V)>, StoreError> {
    Ok(table
        .prefixed_in_pages(tx, &user, PAGE)?
        .into_iter()
        .map(|((_, other), v)| (other, v))
        .collect())
}

/// Writes one friend event for each local user in `to` (user, the other person named), all
/// at one new position.
fn events(
    tx: &WriteTransaction,
    action: FriendAction,
    id: u64,
    to: &[(u64, u64)],
) -> Result<Option<FriendNotify>, StoreError> {
    let local: Vec<(u64, u64)> = to
        .iter()
        .copied()
        .filter(|(u, _)| u & REMOTE_USER_BIT == 0)
        .collect();
    if local.is_empty() {
        return Ok(None);
    }
    let pos = next_pos(tx)?;
    let mut t = tx.open_table(USERID_POS_EVENT)?;
    for (user, other) in &local {
        let e = EventRecord::Friend {
            action,
            id,
            user: *other,
        };
        t.insert((*user, pos), e.encode().as_slice())?;
    }
    Ok(Some(FriendNotify {
        users: local.iter().map(|(u, _)| *u).collect(),
        pos,
    }))
}

fn friends_w(tx: &impl kv::Read, a: u64, b: u64) -> Result<Option<(u64, u64)>, StoreError> {
    USERID_USERID_FRIEND.get(tx, &(a, b))
}

fn blocks_w(tx: &impl kv::Read, a: u64, b: u64) -> Result<bool, StoreError> {
    Ok(USERID_USERID_BLOCK.get(tx, &(a, b))?.is_some())
}

/// The pending request from `from` to `to`, if any.
fn pending_w(
    tx: &impl kv::Read,
    from: u64,
    to: u64,
) -> Result<Option<FriendRequestRecord>, StoreError> {
    let Some(id) = USERPAIR_FRIENDREQID.get(tx, &(from, to))? else {
        return Ok(None);
    };
    let r = get_request(tx, id)?;
    Ok(r.filter(|r| r.state == RequestState::Pending))
}

/// Closes a pending request with `state` at `now`.
fn close(
    tx: &impl kv::Write,
    mut r: FriendRequestRecord,
    state: RequestState,
    now: Millis,
) -> Result<FriendRequestRecord, StoreError> {
    r.state = state;
    r.closed = now;
    put_request(tx, &r)?;
    Ok(r)
}

/// Ends the friendship of `a` and `b` if there is one; events to both.
fn unfriend(tx: &WriteTransaction, a: u64, b: u64) -> Result<Option<FriendNotify>, StoreError> {
    let Some((_, link)) = friends_w(tx, a, b)? else {
        return Ok(None);
    };
    USERID_USERID_FRIEND.remove(tx, &(a, b))?;
    USERID_USERID_FRIEND.remove(tx, &(b, a))?;
    events(tx, FriendAction::Removed, link, &[(a, b), (b, a)])
}

/// Whether `a` and `b` are friends, inside a read or write transaction.
pub fn are_friends(tx: &impl kv::Read, a: u64, b: u64) -> Result<bool, StoreError> {
    Ok(USERID_USERID_FRIEND.get(tx, &(a, b))?.is_some())
}

/// Whether `a` may not open a direct conversation with `b`, or write in one with them:
/// refused while either blocks the other, or when `b` lets only friends message them and `a`
/// is not one. The two refusals look alike to `a`. Inside a read or write transaction (the
/// send path).
pub fn direct_refused(tx: &impl kv::Read, a: u64, b: u64) -> Result<bool, StoreError> {
    if blocks_w(tx, a, b)? || blocks_w(tx, b, a)? {
        return Ok(true);
    }
    let friends_only = USERID_DIRECTMESSAGES.get(tx, &b)? == Some(1);
    Ok(friends_only && !are_friends(tx, a, b)?)
}

/// Erasure: every friendship, request, block, setting and count naming `user`, from both
/// ends — at most `budget` of the user's friendships, requests and blocks (taken from the
/// budget), so a step's work is bounded; true when none is left, and a later call goes on
/// where this one stopped. Idempotent.
pub fn erase_friend_rows(
    tx: &impl kv::Write,
    user: u64,
    budget: &mut usize,
) -> Result<bool, StoreError> {
    /// Takes a page of at most `budget` rows from `budget`; whether it was the last.
    fn taken<T>(rows: &[T], budget: &mut usize) -> bool {
        let last = rows.len() < *budget;
        *budget -= rows.len();
        last
    }
    let friends = USERID_USERID_FRIEND.prefixed_page(tx, &user, None, *budget)?;
    for ((_, f), _) in &friends {
        USERID_USERID_FRIEND.remove(tx, &(user, *f))?;
        USERID_USERID_FRIEND.remove(tx, &(*f, user))?;
    }
    if !taken(&friends, budget) {
        return Ok(false);
    }
    let requests = USERID_FRIENDREQID.prefixed_page(tx, &user, None, *budget)?;
    for ((_, id), _) in &requests {
        remove_request(tx, *id)?;
        // A request whose record is gone leaves no index row behind either.
        USERID_FRIENDREQID.remove(tx, &(user, *id))?;
    }
    if !taken(&requests, budget) {
        return Ok(false);
    }
    let blocked = USERID_USERID_BLOCK.prefixed_page(tx, &user, None, *budget)?;
    for ((_, b), _) in &blocked {
        USERID_USERID_BLOCK.remove(tx, &(user, *b))?;
        USERID_USERID_BLOCKEDBY.remove(tx, &(*b, user))?;
    }
    if !taken(&blocked, budget) {
        return Ok(false);
    }
    let blockers = USERID_USERID_BLOCKEDBY.prefixed_page(tx, &user, None, *budget)?;
    for ((_, b), _) in &blockers {
        USERID_USERID_BLOCK.remove(tx, &(*b, user))?;
        USERID_USERID_BLOCKEDBY.remove(tx, &(user, *b))?;
    }
    if !taken(&blockers, budget) {
        return Ok(false);
    }
    USERID_DIRECTMESSAGES.remove(tx, &user)?;
    USERID_FRIENDQUOTA.remove(tx, &user)?;
    Ok(true)
}

/// Removes a request and every index row of it.
fn remove_request(tx: &impl kv::Write, id: u64) -> Result<(), StoreError> {
    let Some(r) = get_request(tx, id)? else {
        return Ok(());
    };
    FRIENDREQID_REQUEST.remove(tx, &id)?;
    USERID_FRIENDREQID.remove(tx, &(r.from, id))?;
    USERID_FRIENDREQID.remove(tx, &(r.to, id))?;
    if USERPAIR_FRIENDREQID.get(tx, &(r.from, r.to))? == Some(id) {
        USERPAIR_FRIENDREQID.remove(tx, &(r.from, r.to))?;
    }
    if r.state != RequestState::Pending {
        MS_FRIENDREQID_CLOSED.remove(tx, &(r.closed.0, id))?;
    }
    Ok(())
}

impl Store {
    /// Stores a new friend request after every limit check, in one transaction. A request to
    /// someone who blocks the sender is stored hidden (`hidden`) and told to nobody but the
    /// sender, so its answer is the same as any other.
    pub async fn send_friend_request(
        &self,
        n: NewFriendRequest,
    ) -> Result<RequestOutcome, StoreError> {
        self.write(move |tx| {
            let (from, to, now) = (n.from, n.to, n.now);
            if friends_w(tx, from, to)?.is_some() {
                return Ok(RequestOutcome::AlreadyFriends);
            }
            if blocks_w(tx, from, to)? {
                return Ok(RequestOutcome::YouBlock);
            }
            if pending_w(tx, from, to)?.is_some() {
                return Ok(RequestOutcome::Pending);
            }
            if pending_w(tx, to, from)?.is_some_and(|r| !r.hidden) {
                return Ok(RequestOutcome::Pending);
            }
            let last = USERPAIR_FRIENDREQID.get(tx, &(from, to))?;
            if let Some(last) = last
                && let Some(r) = get_request(tx, last)?
                && r.state == RequestState::Declined
                && r.closed.0 + n.limits.declined_cooldown_ms > now.0
            {
                return Ok(RequestOutcome::RecentlyDeclined {
                    until: Millis(r.closed.0 + n.limits.declined_cooldown_ms),
                });
            }
            let mut pending = 0;
            for (id, ()) in others_of(tx, USERID_FRIENDREQID, from)? {
                if get_request(tx, id)?
                    .is_some_and(|r| r.from == from && r.state == RequestState::Pending)
                {
                    pending += 1;
                }
            }
            if pending >= n.limits.max_pending {
                return Ok(RequestOutcome::TooManyPending);
            }
            let day = now.0 / DAY_MS;
            let sent_today = match USERID_FRIENDQUOTA.get(tx, &from)? {
                Some((d, n)) if d == day => n,
                _ => 0,
            };
            if sent_today >= n.limits.per_day {
                return Ok(RequestOutcome::DailyLimit {
                    retry_at: Millis((day + 1) * DAY_MS),
                });
            }
            USERID_FRIENDQUOTA.insert(tx, &from, &(day, sent_today + 1))?;
            let hidden = blocks_w(tx, to, from)?;
            let r = FriendRequestRecord {
                id: n.id,
                from,
                to,
                note_sealed: n.note_sealed.clone(),
                created: now,
                state: RequestState::Pending,
                closed: Millis(0),
                hidden,
            };
            if FRIENDREQID_REQUEST.get(tx, &n.id)?.is_some() {
                return Err(StoreError::Corrupt("friend request id reused"));
            }
            put_request(tx, &r)?;
            USERID_FRIENDREQID.insert(tx, &(from, n.id), &())?;
            USERID_FRIENDREQID.insert(tx, &(to, n.id), &())?;
            USERPAIR_FRIENDREQID.insert(tx, &(from, to), &n.id)?;
            let told: &[(u64, u64)] = if hidden {
                &[(from, to)]
            } else {
                &[(from, to), (to, from)]
            };
            let notify = events(tx, FriendAction::Requested, n.id, told)?;
            enqueue(tx, &n.outgoing, now)?;
            Ok(RequestOutcome::Sent(r, notify.into_iter().collect()))
        })
        .await
    }

    /// The recipient accepts or declines a pending request they can see; `outgoing` (the
    /// answer to the sender's node) is queued with it.
    pub async fn answer_friend_request(
        &self,
        user: u64,
        id: u64,
        accept: bool,
        now: Millis,
        outgoing: Vec<Outgoing>,
    ) -> Result<StepOutcome, StoreError> {
        self.write(move |tx| {
            let Some(r) = get_request(tx, id)? else {
                return Ok(StepOutcome::NotFound);
            };
            if r.to != user || r.state != RequestState::Pending || r.hidden {
                return Ok(StepOutcome::NotFound);
            }
            let (from, to) = (r.from, r.to);
            let (state, action) = if accept {
                USERID_USERID_FRIEND.insert(tx, &(from, to), &(now.0, id))?;
                USERID_USERID_FRIEND.insert(tx, &(to, from), &(now.0, id))?;
                (RequestState::Accepted, FriendAction::Accepted)
            } else {
                (RequestState::Declined, FriendAction::Declined)
            };
            let r = close(tx, r, state, now)?;
            let notify = events(tx, action, id, &[(from, to), (to, from)])?;
            enqueue(tx, &outgoing, now)?;
            Ok(StepOutcome::Done(r, notify.into_iter().collect()))
        })
        .await
    }

    /// The sender withdraws a pending request; `outgoing` is queued with it.
    pub async fn cancel_friend_request(
        &self,
        user: u64,
        id: u64,
        now: Millis,
        outgoing: Vec<Outgoing>,
    ) -> Result<StepOutcome, StoreError> {
        self.write(move |tx| {
            let Some(r) = get_request(tx, id)? else {
                return Ok(StepOutcome::NotFound);
            };
            if r.from != user || r.state != RequestState::Pending {
                return Ok(StepOutcome::NotFound);
            }
            let (from, to, hidden) = (r.from, r.to, r.hidden);
            let r = close(tx, r, RequestState::Cancelled, now)?;
            let told: &[(u64, u64)] = if hidden {
                &[(from, to)]
            } else {
                &[(from, to), (to, from)]
            };
            let notify = events(tx, FriendAction::Cancelled, id, told)?;
            enqueue(tx, &outgoing, now)?;
            Ok(StepOutcome::Done(r, notify.into_iter().collect()))
        })
        .await
    }

    /// Ends `user`'s friendship with id `link`; `None` if they have no such friend. Returns
    /// the former friend. `outgoing` (the removal for a remote friend's node) is queued only
    /// when the friendship it names is the one found.
    pub async fn remove_friend(
        &self,
        user: u64,
        link: u64,
        friend: Option<u64>,
        outgoing: Vec<Outgoing>,
        now: Millis,
    ) -> Result<Option<(u64, Vec<FriendNotify>)>, StoreError> {
        self.write(move |tx| {
            let found = others_of(tx, USERID_USERID_FRIEND, user)?
                .into_iter()
                .find(|(_, (_, l))| *l == link)
                .map(|(other, _)| other);
            let Some(other) = found else {
                return Ok(None);
            };
            let notify = unfriend(tx, user, other)?;
            if friend == Some(other) {
                enqueue(tx, &outgoing, now)?;
            } else if !outgoing.is_empty() {
                return Err(StoreError::Corrupt("friendship changed under its removal"));
            }
            Ok(Some((other, notify.into_iter().collect())))
        })
        .await
    }

    /// `user` blocks `other` (`id` names the new block; an existing block keeps its own).
    /// In the same transaction: the friendship ends (both told, as any removal), `user`'s
    /// pending request to them is cancelled, and theirs to `user` leaves `user`'s list while
    /// staying pending on their side. Returns the block's id. For a remote `other`, the block
    /// itself is never told; `on_unfriend` (a removal) is queued only if a friendship ended,
    /// `on_cancel` only if `user`'s own pending request to them was cancelled.
    pub async fn block_user(
        &self,
        user: u64,
        other: u64,
        id: u64,
        now: Millis,
        on_unfriend: Vec<Outgoing>,
        on_cancel: Vec<Outgoing>,
    ) -> Result<(u64, Millis, Vec<FriendNotify>), StoreError> {
        self.write(move |tx| {
            if let Some((since, id)) = USERID_USERID_BLOCK.get(tx, &(user, other))? {
                return Ok((id, Millis(since), Vec::new()));
            }
            USERID_USERID_BLOCK.insert(tx, &(user, other), &(now.0, id))?;
            USERID_USERID_BLOCKEDBY.insert(tx, &(other, user), &())?;
            let mut notify = Vec::new();
            if let Some(n) = unfriend(tx, user, other)? {
                notify.push(n);
                enqueue(tx, &on_unfriend, now)?;
            }
            if let Some(r) = pending_w(tx, user, other)? {
                enqueue(tx, &on_cancel, now)?;
                let (rid, hidden) = (r.id, r.hidden);
                close(tx, r, RequestState::Cancelled, now)?;
                let told: &[(u64, u64)] = if hidden {
                    &[(user, other)]
                } else {
                    &[(user, other), (other, user)]
                };
                notify.extend(events(tx, FriendAction::Cancelled, rid, told)?);
            }
            if let Some(mut r) = pending_w(tx, other, user)?
                && !r.hidden
            {
                r.hidden = true;
                let rid = r.id;
                put_request(tx, &r)?;
                notify.extend(events(tx, FriendAction::Cancelled, rid, &[(user, other)])?);
            }
            Ok((id, now, notify))
        })
        .await
    }

    /// Removes `user`'s block with id `id`; `None` if there is none. Returns who was blocked.
    pub async fn unblock_user(&self, user: u64, id: u64) -> Result<Option<u64>, StoreError> {
        self.write(move |tx| {
            let found = others_of(tx, USERID_USERID_BLOCK, user)?
                .into_iter()
                .find(|(_, (_, b))| *b == id)
                .map(|(other, _)| other);
            if let Some(other) = found {
                USERID_USERID_BLOCK.remove(tx, &(user, other))?;
                USERID_USERID_BLOCKEDBY.remove(tx, &(other, user))?;
            }
            Ok(found)
        })
        .await
    }

    /// Sets who may open a direct conversation with `user` (`friends_only`).
    pub async fn set_direct_messages(
        &self,
        user: u64,
        friends_only: bool,
    ) -> Result<(), StoreError> {
        self.write(move |tx| {
            if friends_only {
                USERID_DIRECTMESSAGES.insert(tx, &user, &1)?;
            } else {
                USERID_DIRECTMESSAGES.remove(tx, &user)?;
            }
            Ok(())
        })
        .await
    }

    /// Whether only friends may open a direct conversation with `user`.
    pub async fn direct_messages_friends_only(&self, user: u64) -> Result<bool, StoreError> {
        self.read(move |tx| Ok(USERID_DIRECTMESSAGES.get(tx, &user)? == Some(1)))
            .await
    }

    /// A user's friends: (friend, since, friendship id), by friend id.
    pub async fn friends_of(&self, user: u64) -> Result<Vec<(u64, Millis, u64)>, StoreError> {
        self.read(move |tx| {
            Ok(others_of(tx, USERID_USERID_FRIEND, user)?
                .into_iter()
                .map(|(friend, (since, link))| (friend, Millis(since), link))
                .collect())
        })
        .await
    }

    /// Whether `a` may not open a direct conversation with `b` (see [`direct_refused`]).
    pub async fn direct_refused(&self, a: u64, b: u64) -> Result<bool, StoreError> {
        self.read(move |tx| direct_refused(tx, a, b)).await
    }

    /// Whether `a` and `b` are friends.
    pub async fn are_friends(&self, a: u64, b: u64) -> Result<bool, StoreError> {
        self.read(move |tx| are_friends(tx, a, b)).await
    }

    /// Whether either of `a` and `b` blocks the other.
    pub async fn blocked_either(&self, a: u64, b: u64) -> Result<bool, StoreError> {
        self.read(move |tx| Ok(blocks_w(tx, a, b)? || blocks_w(tx, b, a)?))
            .await
    }

    /// The users `user` blocks: (blocked, since, block id).
    pub async fn blocks_of(&self, user: u64) -> Result<Vec<(u64, Millis, u64)>, StoreError> {
        self.read(move |tx| {
            Ok(others_of(tx, USERID_USERID_BLOCK, user)?
                .into_iter()
                .map(|(blocked, (since, id))| (blocked, Millis(since), id))
                .collect())
        })
        .await
    }

    /// Every request `user` sent or received (closed ones until retention removes them),
    /// oldest first. Hidden requests are included; the caller leaves them out of the
    /// recipient's view.
    pub async fn friend_requests_of(
        &self,
        user: u64,
    ) -> Result<Vec<FriendRequestRecord>, StoreError> {
        self.read(move |tx| {
            let mut out = Vec::new();
            for (id, ()) in others_of(tx, USERID_FRIENDREQID, user)? {
                out.extend(get_request(tx, id)?);
            }
            out.sort_by_key(|r| (r.created, r.id));
            Ok(out)
        })
        .await
    }

    /// One request by id.
    pub async fn friend_request(&self, id: u64) -> Result<Option<FriendRequestRecord>, StoreError> {
        self.read(move |tx| get_request(tx, id)).await
    }

    /// The pending request from `from` to `to`, if any (federation names requests by pair).
    pub async fn pending_friend_request(
        &self,
        from: u64,
        to: u64,
    ) -> Result<Option<FriendRequestRecord>, StoreError> {
        self.read(move |tx| pending_w(tx, from, to)).await
    }

    /// Retention: removes up to `limit` requests closed before `cutoff`; returns how many.
    pub async fn prune_friend_requests(
        &self,
        cutoff: Millis,
        limit: usize,
    ) -> Result<usize, StoreError> {
        self.write(move |tx| {
            let due = MS_FRIENDREQID_CLOSED.range(
                tx,
                Bound::Unbounded,
                Bound::Excluded(&(cutoff.0, 0)),
                kv::Order::Ascending,
                limit,
            )?;
            for ((closed, id), ()) in &due {
                remove_request(tx, *id)?;
                // An index row whose request is gone goes too, so pruning moves on.
                MS_FRIENDREQID_CLOSED.remove(tx, &(*closed, *id))?;
            }
            Ok(due.len())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: RequestLimits = RequestLimits {
        max_pending: 10,
        per_day: 10,
        declined_cooldown_ms: 0,
    };

    async fn ask(store: &Store, id: u64, from: u64, to: u64) -> RequestOutcome {
        store
            .send_friend_request(NewFriendRequest {
                id,
                from,
                to,
                note_sealed: vec![9; 24],
                now: Millis(10),
                limits: LIMITS,
                outgoing: Vec::new(),
            })
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn erasing_a_user_removes_every_friend_row_naming_them_from_both_ends() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(&dir.path().join("n.redb"), |_| Ok(None)).unwrap();
        assert!(matches!(
            ask(&store, 100, 1, 2).await,
            RequestOutcome::Sent(..)
        ));
        store
            .answer_friend_request(2, 100, true, Millis(11), Vec::new())
            .await
            .unwrap();
        assert!(matches!(
            ask(&store, 101, 1, 3).await,
            RequestOutcome::Sent(..)
        ));
        assert!(matches!(
            ask(&store, 102, 6, 1).await,
            RequestOutcome::Sent(..)
        ));
        store
            .block_user(4, 1, 200, Millis(12), Vec::new(), Vec::new())
            .await
            .unwrap();
        store
            .block_user(1, 5, 201, Millis(12), Vec::new(), Vec::new())
            .await
            .unwrap();
        store.set_direct_messages(1, true).await.unwrap();
        assert!(store.are_friends(2, 1).await.unwrap());

        // Two rows a call: six rows name user 1, so a call stops with some left and the next
        // goes on where it stopped; once done, another call changes nothing.
        let step = || store.write(|tx| erase_friend_rows(tx, 1, &mut 2));
        let mut calls = 1;
        while !step().await.unwrap() {
            calls += 1;
            assert!(calls < 10, "each call goes on where the last stopped");
        }
        assert!(calls >= 3, "bounded: {calls} calls");
        assert!(step().await.unwrap(), "idempotent");
        assert!(!store.are_friends(2, 1).await.unwrap());
        assert!(store.friends_of(2).await.unwrap().is_empty());
        for other in [2, 3, 6] {
            assert!(store.friend_requests_of(other).await.unwrap().is_empty());
        }
        assert!(store.blocks_of(4).await.unwrap().is_empty());
        assert!(!store.blocked_either(1, 5).await.unwrap());
        assert!(!store.direct_messages_friends_only(1).await.unwrap());
        let left = store
            .read(|tx| {
                let mut n = 0;
                n += FRIENDREQID_REQUEST.page(tx, None, 100)?.len();
                n += USERPAIR_FRIENDREQID.page(tx, None, 100)?.len();
                n += MS_FRIENDREQID_CLOSED.page(tx, None, 100)?.len();
                n += USERID_USERID_BLOCKEDBY.page(tx, None, 100)?.len();
                n += USERID_FRIENDQUOTA.page(tx, None, 100)?.len();
                Ok(n)
            })
            .await
            .unwrap();
        // Users 6's quota row is theirs (they sent a request), the rest named user 1.
        assert_eq!(left, 1, "only user 6's own daily count is left");
    }

    #[tokio::test]
    async fn a_request_to_someone_who_blocks_the_sender_is_stored_hidden_and_cannot_be_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(&dir.path().join("n.redb"), |_| Ok(None)).unwrap();
        store
            .block_user(2, 1, 200, Millis(1), Vec::new(), Vec::new())
            .await
            .unwrap();
        let RequestOutcome::Sent(r, notify) = ask(&store, 100, 1, 2).await else {
            panic!("sent");
        };
        assert!(r.hidden);
        assert_eq!(notify[0].users, [1], "only the sender hears of it");
        assert_eq!(
            store
                .answer_friend_request(2, 100, true, Millis(2), Vec::new())
                .await
                .unwrap(),
            StepOutcome::NotFound
        );
        assert!(!store.are_friends(1, 2).await.unwrap());
    }

    #[tokio::test]
    async fn a_peer_erasing_its_user_ends_their_friendships_and_requests_here() {
        use super::super::{NewRemoteUser, OutboundRecord};
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(&dir.path().join("n.redb"), |_| Ok(None)).unwrap();
        let remote = store
            .ensure_remote_user(NewRemoteUser {
                address: "alice@a.example".into(),
                id: 7,
                wrapped_key: vec![1; 40],
                address_sealed: vec![2; 40],
                now: Millis(1),
            })
            .await
            .unwrap();
        assert!(matches!(
            ask(&store, 100, remote, 2).await,
            RequestOutcome::Sent(..)
        ));
        store
            .answer_friend_request(2, 100, true, Millis(11), Vec::new())
            .await
            .unwrap();
        assert!(matches!(
            ask(&store, 101, 3, remote).await,
            RequestOutcome::Sent(..)
        ));
        assert!(store.are_friends(2, remote).await.unwrap());
        let ack = Outgoing {
            dest: "a.example".into(),
            record: OutboundRecord {
                sealer: 0,
                subject: 0,
                payload: vec![0; 8],
                transfers: Vec::new(),
            },
            transfers: Vec::new(),
        };
        store
            .erase_remote_user(
                "a.example".into(),
                "e1".into(),
                "alice@a.example".into(),
                ack,
                Millis(20),
            )
            .await
            .unwrap();
        assert!(!store.are_friends(2, remote).await.unwrap());
        assert!(store.friends_of(2).await.unwrap().is_empty());
        assert!(store.friend_requests_of(3).await.unwrap().is_empty());
    }
}
