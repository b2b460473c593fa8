//! Friends as stored: friend requests (note sealed under the sender's key), friendships and
//! blocks (each kept from both ends), the who-may-message-me setting and the daily request
//! count; every step writes a friend event for the local users it concerns in the same
//! transaction. Also the narrow checks other areas use inside or outside a transaction
//! (`are_friends`, `blocked_either`, `direct_refused`) and the erasure and retention of these
//! rows.

use redb::{ReadTransaction, ReadableTable, WriteTransaction};

use super::catalog::*;
use super::codec::{Dec, Enc};
use super::federation::{Outgoing, enqueue};
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

fn get_request(
    t: &impl ReadableTable<u64, &'static [u8]>,
    id: u64,
) -> Result<Option<FriendRequestRecord>, StoreError> {
    t.get(id)?
        .map(|v| FriendRequestRecord::decode(id, v.value()))
        .transpose()
}

fn put_request(tx: &WriteTransaction, r: &FriendRequestRecord) -> Result<(), StoreError> {
    tx.open_table(FRIENDREQID_REQUEST)?
        .insert(r.id, r.encode().as_slice())?;
    if r.state != RequestState::Pending {
        tx.open_table(MS_FRIENDREQID_CLOSED)?
            .insert((r.closed.0, r.id), ())?;
    }
    Ok(())
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

fn friends_w(tx: &WriteTransaction, a: u64, b: u64) -> Result<Option<(u64, u64)>, StoreError> {
    Ok(tx
        .open_table(USERID_USERID_FRIEND)?
        .get((a, b))?
        .map(|v| v.value()))
}

fn blocks_w(tx: &WriteTransaction, a: u64, b: u64) -> Result<bool, StoreError> {
    Ok(tx.open_table(USERID_USERID_BLOCK)?.get((a, b))?.is_some())
}

/// The pending request from `from` to `to`, if any.
fn pending_w(
    tx: &WriteTransaction,
    from: u64,
    to: u64,
) -> Result<Option<FriendRequestRecord>, StoreError> {
    let Some(id) = tx
        .open_table(USERPAIR_FRIENDREQID)?
        .get((from, to))?
        .map(|v| v.value())
    else {
        return Ok(None);
    };
    let r = get_request(&tx.open_table(FRIENDREQID_REQUEST)?, id)?;
    Ok(r.filter(|r| r.state == RequestState::Pending))
}

/// Closes a pending request with `state` at `now`.
fn close(
    tx: &WriteTransaction,
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
    let mut t = tx.open_table(USERID_USERID_FRIEND)?;
    t.remove((a, b))?;
    t.remove((b, a))?;
    drop(t);
    events(tx, FriendAction::Removed, link, &[(a, b), (b, a)])
}

/// Whether `a` and `b` are friends, inside a read transaction.
pub fn are_friends_r(tx: &ReadTransaction, a: u64, b: u64) -> Result<bool, StoreError> {
    Ok(tx.open_table(USERID_USERID_FRIEND)?.get((a, b))?.is_some())
}

/// Whether `a` may not open a direct conversation with `b`, or write in one with them:
/// refused while either blocks the other, or when `b` lets only friends message them and `a`
/// is not one. The two refusals look alike to `a`.
fn refused(
    blocks: &impl ReadableTable<(u64, u64), (u64, u64)>,
    setting: &impl ReadableTable<u64, u8>,
    friends: &impl ReadableTable<(u64, u64), (u64, u64)>,
    a: u64,
    b: u64,
) -> Result<bool, StoreError> {
    if blocks.get((a, b))?.is_some() || blocks.get((b, a))?.is_some() {
        return Ok(true);
    }
    let friends_only = setting.get(b)?.is_some_and(|v| v.value() == 1);
    Ok(friends_only && friends.get((a, b))?.is_none())
}

/// [`refused`] inside a write transaction (the send path).
pub fn direct_refused(tx: &WriteTransaction, a: u64, b: u64) -> Result<bool, StoreError> {
    refused(
        &tx.open_table(USERID_USERID_BLOCK)?,
        &tx.open_table(USERID_DIRECTMESSAGES)?,
        &tx.open_table(USERID_USERID_FRIEND)?,
        a,
        b,
    )
}

/// Erasure: every friendship, request, block, setting and count naming `user`, from both
/// ends. Bounded by the user's own rows; idempotent.
pub fn erase_friend_rows(tx: &WriteTransaction, user: u64) -> Result<(), StoreError> {
    let friends: Vec<u64> = tx
        .open_table(USERID_USERID_FRIEND)?
        .range((user, 0)..=(user, u64::MAX))?
        .map(|r| r.map(|(k, _)| k.value().1))
        .collect::<Result<_, _>>()?;
    {
        let mut t = tx.open_table(USERID_USERID_FRIEND)?;
        for f in &friends {
            t.remove((user, *f))?;
            t.remove((*f, user))?;
        }
    }
    let requests: Vec<u64> = tx
        .open_table(USERID_FRIENDREQID)?
        .range((user, 0)..=(user, u64::MAX))?
        .map(|r| r.map(|(k, _)| k.value().1))
        .collect::<Result<_, _>>()?;
    for id in requests {
        remove_request(tx, id)?;
    }
    let blocked: Vec<u64> = tx
        .open_table(USERID_USERID_BLOCK)?
        .range((user, 0)..=(user, u64::MAX))?
        .map(|r| r.map(|(k, _)| k.value().1))
        .collect::<Result<_, _>>()?;
    let blockers: Vec<u64> = tx
        .open_table(USERID_USERID_BLOCKEDBY)?
        .range((user, 0)..=(user, u64::MAX))?
        .map(|r| r.map(|(k, _)| k.value().1))
        .collect::<Result<_, _>>()?;
    {
        let mut blocks = tx.open_table(USERID_USERID_BLOCK)?;
        let mut by = tx.open_table(USERID_USERID_BLOCKEDBY)?;
        for b in blocked {
            blocks.remove((user, b))?;
            by.remove((b, user))?;
        }
        for b in blockers {
            blocks.remove((b, user))?;
            by.remove((user, b))?;
        }
    }
    tx.open_table(USERID_DIRECTMESSAGES)?.remove(user)?;
    tx.open_table(USERID_FRIENDQUOTA)?.remove(user)?;
    Ok(())
}

/// Removes a request and every index row of it.
fn remove_request(tx: &WriteTransaction, id: u64) -> Result<(), StoreError> {
    let Some(r) = get_request(&tx.open_table(FRIENDREQID_REQUEST)?, id)? else {
        return Ok(());
    };
    tx.open_table(FRIENDREQID_REQUEST)?.remove(id)?;
    let mut idx = tx.open_table(USERID_FRIENDREQID)?;
    idx.remove((r.from, id))?;
    idx.remove((r.to, id))?;
    drop(idx);
    let mut pair = tx.open_table(USERPAIR_FRIENDREQID)?;
    if pair.get((r.from, r.to))?.is_some_and(|v| v.value() == id) {
        pair.remove((r.from, r.to))?;
    }
    drop(pair);
    if r.state != RequestState::Pending {
        tx.open_table(MS_FRIENDREQID_CLOSED)?
            .remove((r.closed.0, id))?;
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
            let last = tx
                .open_table(USERPAIR_FRIENDREQID)?
                .get((from, to))?
                .map(|v| v.value());
            if let Some(last) = last
                && let Some(r) = get_request(&tx.open_table(FRIENDREQID_REQUEST)?, last)?
                && r.state == RequestState::Declined
                && r.closed.0 + n.limits.declined_cooldown_ms > now.0
            {
                return Ok(RequestOutcome::RecentlyDeclined {
                    until: Millis(r.closed.0 + n.limits.declined_cooldown_ms),
                });
            }
            let mine: Vec<u64> = tx
                .open_table(USERID_FRIENDREQID)?
                .range((from, 0)..=(from, u64::MAX))?
                .map(|r| r.map(|(k, _)| k.value().1))
                .collect::<Result<_, _>>()?;
            let all = tx.open_table(FRIENDREQID_REQUEST)?;
            let mut pending = 0;
            for id in mine {
                if get_request(&all, id)?
                    .is_some_and(|r| r.from == from && r.state == RequestState::Pending)
                {
                    pending += 1;
                }
            }
            drop(all);
            if pending >= n.limits.max_pending {
                return Ok(RequestOutcome::TooManyPending);
            }
            let day = now.0 / DAY_MS;
            let sent_today = match tx.open_table(USERID_FRIENDQUOTA)?.get(from)? {
                Some(v) if v.value().0 == day => v.value().1,
                _ => 0,
            };
            if sent_today >= n.limits.per_day {
                return Ok(RequestOutcome::DailyLimit {
                    retry_at: Millis((day + 1) * DAY_MS),
                });
            }
            tx.open_table(USERID_FRIENDQUOTA)?
                .insert(from, (day, sent_today + 1))?;
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
            if tx.open_table(FRIENDREQID_REQUEST)?.get(n.id)?.is_some() {
                return Err(StoreError::Corrupt("friend request id reused"));
            }
            put_request(tx, &r)?;
            let mut idx = tx.open_table(USERID_FRIENDREQID)?;
            idx.insert((from, n.id), ())?;
            idx.insert((to, n.id), ())?;
            drop(idx);
            tx.open_table(USERPAIR_FRIENDREQID)?
                .insert((from, to), n.id)?;
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
            let Some(r) = get_request(&tx.open_table(FRIENDREQID_REQUEST)?, id)? else {
                return Ok(StepOutcome::NotFound);
            };
            if r.to != user || r.state != RequestState::Pending || r.hidden {
                return Ok(StepOutcome::NotFound);
            }
            let (from, to) = (r.from, r.to);
            let (state, action) = if accept {
                let mut t = tx.open_table(USERID_USERID_FRIEND)?;
                t.insert((from, to), (now.0, id))?;
                t.insert((to, from), (now.0, id))?;
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
            let Some(r) = get_request(&tx.open_table(FRIENDREQID_REQUEST)?, id)? else {
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
            let mut found = None;
            for row in tx
                .open_table(USERID_USERID_FRIEND)?
                .range((user, 0)..=(user, u64::MAX))?
            {
                let (k, v) = row?;
                if v.value().1 == link {
                    found = Some(k.value().1);
                    break;
                }
            }
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
            if let Some(v) = tx.open_table(USERID_USERID_BLOCK)?.get((user, other))? {
                let (since, id) = v.value();
                return Ok((id, Millis(since), Vec::new()));
            }
            tx.open_table(USERID_USERID_BLOCK)?
                .insert((user, other), (now.0, id))?;
            tx.open_table(USERID_USERID_BLOCKEDBY)?
                .insert((other, user), ())?;
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
            let mut found = None;
            for row in tx
                .open_table(USERID_USERID_BLOCK)?
                .range((user, 0)..=(user, u64::MAX))?
            {
                let (k, v) = row?;
                if v.value().1 == id {
                    found = Some(k.value().1);
                    break;
                }
            }
            if let Some(other) = found {
                tx.open_table(USERID_USERID_BLOCK)?.remove((user, other))?;
                tx.open_table(USERID_USERID_BLOCKEDBY)?
                    .remove((other, user))?;
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
            let mut t = tx.open_table(USERID_DIRECTMESSAGES)?;
            if friends_only {
                t.insert(user, 1)?;
            } else {
                t.remove(user)?;
            }
            Ok(())
        })
        .await
    }

    /// Whether only friends may open a direct conversation with `user`.
    pub async fn direct_messages_friends_only(&self, user: u64) -> Result<bool, StoreError> {
        self.read(move |tx| {
            Ok(tx
                .open_table(USERID_DIRECTMESSAGES)?
                .get(user)?
                .is_some_and(|v| v.value() == 1))
        })
        .await
    }

    /// A user's friends: (friend, since, friendship id), by friend id.
    pub async fn friends_of(&self, user: u64) -> Result<Vec<(u64, Millis, u64)>, StoreError> {
        self.read(move |tx| {
            let mut out = Vec::new();
            for row in tx
                .open_table(USERID_USERID_FRIEND)?
                .range((user, 0)..=(user, u64::MAX))?
            {
                let (k, v) = row?;
                let (since, link) = v.value();
                out.push((k.value().1, Millis(since), link));
            }
            Ok(out)
        })
        .await
    }

    /// Whether `a` may not open a direct conversation with `b` (see [`direct_refused`]).
    pub async fn direct_refused(&self, a: u64, b: u64) -> Result<bool, StoreError> {
        self.read(move |tx| {
            refused(
                &tx.open_table(USERID_USERID_BLOCK)?,
                &tx.open_table(USERID_DIRECTMESSAGES)?,
                &tx.open_table(USERID_USERID_FRIEND)?,
                a,
                b,
            )
        })
        .await
    }

    /// Whether `a` and `b` are friends.
    pub async fn are_friends(&self, a: u64, b: u64) -> Result<bool, StoreError> {
        self.read(move |tx| are_friends_r(tx, a, b)).await
    }

    /// Whether either of `a` and `b` blocks the other.
    pub async fn blocked_either(&self, a: u64, b: u64) -> Result<bool, StoreError> {
        self.read(move |tx| {
            let t = tx.open_table(USERID_USERID_BLOCK)?;
            Ok(t.get((a, b))?.is_some() || t.get((b, a))?.is_some())
        })
        .await
    }

    /// The users `user` blocks: (blocked, since, block id).
    pub async fn blocks_of(&self, user: u64) -> Result<Vec<(u64, Millis, u64)>, StoreError> {
        self.read(move |tx| {
            let mut out = Vec::new();
            for row in tx
                .open_table(USERID_USERID_BLOCK)?
                .range((user, 0)..=(user, u64::MAX))?
            {
                let (k, v) = row?;
                let (since, id) = v.value();
                out.push((k.value().1, Millis(since), id));
            }
            Ok(out)
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
            let all = tx.open_table(FRIENDREQID_REQUEST)?;
            let mut out = Vec::new();
            for row in tx
                .open_table(USERID_FRIENDREQID)?
                .range((user, 0)..=(user, u64::MAX))?
            {
                let id = row?.0.value().1;
                out.extend(get_request(&all, id)?);
            }
            out.sort_by_key(|r| (r.created, r.id));
            Ok(out)
        })
        .await
    }

    /// One request by id.
    pub async fn friend_request(&self, id: u64) -> Result<Option<FriendRequestRecord>, StoreError> {
        self.read(move |tx| get_request(&tx.open_table(FRIENDREQID_REQUEST)?, id))
            .await
    }

    /// The pending request from `from` to `to`, if any (federation names requests by pair).
    pub async fn pending_friend_request(
        &self,
        from: u64,
        to: u64,
    ) -> Result<Option<FriendRequestRecord>, StoreError> {
        self.read(move |tx| {
            let Some(id) = tx
                .open_table(USERPAIR_FRIENDREQID)?
                .get((from, to))?
                .map(|v| v.value())
            else {
                return Ok(None);
            };
            let r = get_request(&tx.open_table(FRIENDREQID_REQUEST)?, id)?;
            Ok(r.filter(|r| r.state == RequestState::Pending))
        })
        .await
    }

    /// Retention: removes up to `limit` requests closed before `cutoff`; returns how many.
    pub async fn prune_friend_requests(
        &self,
        cutoff: Millis,
        limit: usize,
    ) -> Result<usize, StoreError> {
        self.write(move |tx| {
            let due: Vec<u64> = tx
                .open_table(MS_FRIENDREQID_CLOSED)?
                .range((0, 0)..(cutoff.0, 0))?
                .take(limit)
                .map(|r| r.map(|(k, _)| k.value().1))
                .collect::<Result<_, _>>()?;
            for id in &due {
                remove_request(tx, *id)?;
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

        for _ in 0..2 {
            store.write(|tx| erase_friend_rows(tx, 1)).await.unwrap();
        }
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
                n += tx.open_table(FRIENDREQID_REQUEST)?.iter()?.count();
                n += tx.open_table(USERPAIR_FRIENDREQID)?.iter()?.count();
                n += tx.open_table(MS_FRIENDREQID_CLOSED)?.iter()?.count();
                n += tx.open_table(USERID_USERID_BLOCKEDBY)?.iter()?.count();
                n += tx.open_table(USERID_FRIENDQUOTA)?.iter()?.count();
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
