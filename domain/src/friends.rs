//! `Friends`: friend requests (with an optional short note, sealed under the sender's data
//! key), accepting, declining, cancelling, removing a friendship, blocking and unblocking, and
//! the setting that decides who may open a direct conversation with a user (clause 1.3.a).
//! Every step is an event on the streams of the local users it concerns. The narrow checks
//! other areas use: [`Friends::are_friends`], [`Friends::blocked_either`],
//! [`Friends::friend_ids`].
//!
//! Across nodes (issue 22): a user of another node is known here by a remote id
//! (`REMOTE_USER_BIT`); a request to them, an answer to theirs, a cancel and a removal go to
//! their node as a signed `friend` envelope queued in the same transaction as the step, under
//! the residency rule (451 without `cross_border_transfer`, nothing written). A block stays
//! here; only the removal of the friendship it ends travels. No friend list ever crosses.
//!
//! A blocked user is never told: their requests are accepted and stay pending on their side
//! only, and their direct conversations and messages get the answer a user who lets only
//! friends message them gives everyone else.

use std::sync::Arc;

use federation::FriendContent;

use crate::accounts::Accounts;
use crate::crypto::{self, CryptoError, MasterKey, SecretKey};
use crate::federate::{Directory, FedError, Outbox};
use crate::hub::Hub;
use crate::time::{Millis, SharedClock};
use storage::{
    FriendNotify, FriendRequestRecord, NewFriendRequest, Outgoing, REMOTE_USER_BIT, Refusal,
    RequestLimits, RequestOutcome, RequestState, StepOutcome, Store, StoreError,
};

/// Longest note on a friend request, in characters.
pub const MAX_NOTE_CHARS: usize = 200;

/// The `[friends]` limits.
#[derive(Debug, Clone, Copy)]
pub struct FriendLimits {
    /// Pending requests one user may have sent at a time.
    pub max_pending: u64,
    /// Requests one user may send per UTC day.
    pub per_day: u64,
    /// How long a declined request cannot be sent again (ms).
    pub declined_cooldown_ms: u64,
}

/// Errors of the friends feature.
#[derive(Debug, thiserror::Error)]
pub enum FriendError {
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("no such request, friend or block")]
    NotFound,
    #[error("no such user")]
    NoSuchUser,
    /// The residency rule, a full queue or an unknown peer stopped it (nothing written).
    #[error("{}", crate::federate::refusal_text(.0))]
    Refused(Refusal),
    /// Looking the user up on their node failed.
    #[error(transparent)]
    Federation(#[from] FedError),
    #[error("you are friends already")]
    AlreadyFriends,
    #[error("you block this user; unblock them first")]
    YouBlock,
    #[error("a request between you is pending")]
    Pending,
    #[error("your last request was declined; it can be sent again after {until}")]
    RecentlyDeclined { until: String },
    #[error("too many of your requests are pending; wait for answers or cancel some")]
    TooManyPending,
    #[error("you have sent as many friend requests as a day allows")]
    DailyLimit { retry_after_secs: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

/// Who a friend request came from, from the viewer's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Incoming,
    Outgoing,
}

/// Another user as the lists show them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub address: String,
    pub nickname: String,
}

/// A friend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FriendView {
    pub id: u64,
    pub person: Person,
    pub since: Millis,
}

/// A pending request as one side sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestView {
    pub id: u64,
    pub direction: Direction,
    pub person: Person,
    pub note: Option<String>,
    pub created: Millis,
    pub state: RequestState,
}

/// A user I block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockView {
    pub id: u64,
    pub person: Person,
    pub since: Millis,
}

/// The opaque id of a request, friendship or block as clients see it (16 hex digits).
pub fn wire_id(id: u64) -> String {
    format!("{id:016x}")
}

/// Reads an id written by [`wire_id`]; `None` for anything else.
pub fn parse_id(s: &str) -> Option<u64> {
    if s.len() != 16 || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    u64::from_str_radix(s, 16).ok()
}

/// What a request's note is sealed with (under the sender's data key, local or remote).
pub fn note_aad(id: u64) -> Vec<u8> {
    format!("shanliao/friend-request/{id}/note").into_bytes()
}

fn random_id() -> Result<u64, CryptoError> {
    let mut b = [0u8; 8];
    crypto::random_bytes(&mut b)?;
    // Never 0, so a zero can never be mistaken for an id.
    Ok(u64::from_be_bytes(b).max(1))
}

/// The friends service.
#[derive(Debug, Clone)]
pub struct Friends {
    store: Store,
    master: MasterKey,
    accounts: Accounts,
    hub: Arc<Hub>,
    clock: SharedClock,
    domain: String,
    limits: FriendLimits,
    outbox: Outbox,
    directory: Directory,
}

fn is_remote(id: u64) -> bool {
    id & REMOTE_USER_BIT != 0
}

impl Friends {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Store,
        master: MasterKey,
        accounts: Accounts,
        hub: Arc<Hub>,
        clock: SharedClock,
        domain: String,
        limits: FriendLimits,
        outbox: Outbox,
        directory: Directory,
    ) -> Self {
        Friends {
            store,
            master,
            accounts,
            hub,
            clock,
            domain,
            limits,
            outbox,
            directory,
        }
    }

    /// Wakes the delivery of what a step queued.
    fn wake(&self, outgoing: &[Outgoing]) {
        let mut dests: Vec<String> = outgoing.iter().map(|o| o.dest.clone()).collect();
        dests.dedup();
        self.outbox.wake(&dests);
    }

    /// `user`'s own address.
    async fn address_of(&self, user: u64) -> Result<String, FriendError> {
        let p = self.person(user).await?.ok_or(FriendError::NoSuchUser)?;
        Ok(p.address)
    }

    /// The queue row of a `friend` envelope from local `user` to the node of remote `other`.
    async fn row_to(
        &self,
        user: u64,
        other: u64,
        content: FriendContent,
    ) -> Result<Outgoing, FriendError> {
        let address = self.address_of(other).await?;
        let dest = federation::address_domain(&address).ok_or(FriendError::NoSuchUser)?;
        let key = self.key_of(user).await?.ok_or(FriendError::NoSuchUser)?;
        self.outbox
            .friend_row(user, &key, dest, content)
            .await
            .map_err(FriendError::Refused)
    }

    fn publish(&self, notify: &[FriendNotify]) {
        for n in notify {
            self.hub.publish(&n.users, n.pos);
        }
    }

    /// The local id of the user at `address` (field `field` names it in errors).
    async fn resolve(&self, field: &'static str, address: &str) -> Result<u64, FriendError> {
        let (handle, domain) = address
            .rsplit_once('@')
            .filter(|(h, d)| !h.is_empty() && !d.is_empty())
            .ok_or_else(|| FriendError::Invalid {
                field,
                reason: "must be an address handle@domain".into(),
            })?;
        if domain != self.domain {
            if !federation::valid_address(address) {
                return Err(FriendError::Invalid {
                    field,
                    reason: "must be an address handle@domain".into(),
                });
            }
            return Ok(self.directory.resolve(address).await?);
        }
        self.store
            .user_by_handle(handle.to_string())
            .await?
            .ok_or(FriendError::NoSuchUser)
    }

    /// Like [`Friends::resolve`], but a user of another node is never asked about (a block
    /// must not reach their node): their record here is made if this node has none.
    async fn resolve_quietly(
        &self,
        field: &'static str,
        address: &str,
    ) -> Result<u64, FriendError> {
        match address.rsplit_once('@') {
            Some((_, d)) if d != self.domain && federation::valid_address(address) => {
                Ok(self.directory.ensure(address).await?.0)
            }
            _ => self.resolve(field, address).await,
        }
    }

    /// How `id` is shown: address and nickname (`None` once their account is gone).
    async fn person(&self, id: u64) -> Result<Option<Person>, FriendError> {
        if is_remote(id) {
            return Ok(self.directory.card(id).await?.map(|c| Person {
                address: c.address,
                nickname: c.nickname,
            }));
        }
        let card = self
            .accounts
            .card(id)
            .await
            .map_err(|_| FriendError::NoSuchUser)?;
        Ok(card.map(|c| Person {
            address: format!("{}@{}", c.handle, self.domain),
            nickname: c.nickname,
        }))
    }

    async fn key_of(&self, user: u64) -> Result<Option<SecretKey>, FriendError> {
        if is_remote(user) {
            let found = self.store.wrapped_keys(vec![user]).await?;
            return match found.into_iter().next() {
                Some((_, _, wrapped)) => Ok(Some(self.master.unwrap_data_key(user, &wrapped)?)),
                None => Ok(None),
            };
        }
        let Some(acct) = self.store.account(user).await? else {
            return Ok(None);
        };
        if acct.wrapped_key.is_empty() {
            return Ok(None);
        }
        Ok(Some(self.master.unwrap_data_key(user, &acct.wrapped_key)?))
    }

    /// Sends a friend request from `user` to `to` with an optional note.
    pub async fn request(
        &self,
        user: u64,
        to: &str,
        note: Option<&str>,
    ) -> Result<RequestView, FriendError> {
        let note = match note.map(str::trim).filter(|n| !n.is_empty()) {
            Some(n) => Some(
                crate::shown::text("note", n, 1, MAX_NOTE_CHARS).map_err(|e| {
                    FriendError::Invalid {
                        field: "note",
                        reason: e.to_string(),
                    }
                })?,
            ),
            None => None,
        };
        // A user of another region is not even looked up without consent to send there.
        if let Some((_, d)) = to.rsplit_once('@')
            && d != self.domain
            && federation::valid_address(to)
        {
            self.outbox
                .check_residency(user, &[d.to_string()])
                .await
                .map_err(FriendError::Refused)?;
        }
        let other = self.resolve("to", to).await?;
        if other == user {
            return Err(FriendError::Invalid {
                field: "to",
                reason: "you cannot send a friend request to yourself".into(),
            });
        }
        let id = random_id()?;
        let note_sealed = match &note {
            Some(n) => {
                let key = self.key_of(user).await?.ok_or(FriendError::NoSuchUser)?;
                key.seal(&note_aad(id), n.as_bytes())?
            }
            None => Vec::new(),
        };
        let outgoing = if is_remote(other) {
            let content = FriendContent::Request {
                from: self.address_of(user).await?,
                to: self.address_of(other).await?,
                note: note.clone(),
            };
            vec![self.row_to(user, other, content).await?]
        } else {
            Vec::new()
        };
        let now = self.clock.now();
        let outcome = self
            .store
            .send_friend_request(NewFriendRequest {
                id,
                from: user,
                to: other,
                note_sealed,
                now,
                limits: RequestLimits {
                    max_pending: self.limits.max_pending,
                    per_day: self.limits.per_day,
                    declined_cooldown_ms: self.limits.declined_cooldown_ms,
                },
                outgoing: outgoing.clone(),
            })
            .await?;
        match outcome {
            RequestOutcome::Sent(rec, notify) => {
                self.publish(&notify);
                self.wake(&outgoing);
                let person = self.person(other).await?.ok_or(FriendError::NoSuchUser)?;
                Ok(RequestView {
                    id: rec.id,
                    direction: Direction::Outgoing,
                    person,
                    note,
                    created: rec.created,
                    state: rec.state,
                })
            }
            RequestOutcome::AlreadyFriends => Err(FriendError::AlreadyFriends),
            RequestOutcome::YouBlock => Err(FriendError::YouBlock),
            RequestOutcome::Pending => Err(FriendError::Pending),
            RequestOutcome::RecentlyDeclined { until } => Err(FriendError::RecentlyDeclined {
                until: until.to_rfc3339(),
            }),
            RequestOutcome::TooManyPending => Err(FriendError::TooManyPending),
            RequestOutcome::DailyLimit { retry_at } => Err(FriendError::DailyLimit {
                retry_after_secs: retry_at.0.saturating_sub(now.0).div_ceil(1000).max(1),
            }),
        }
    }

    /// `user`'s pending requests, incoming and outgoing, oldest first. Requests from users
    /// `user` blocks are not among the incoming ones.
    pub async fn requests(&self, user: u64) -> Result<Vec<RequestView>, FriendError> {
        let mut out = Vec::new();
        for r in self.store.friend_requests_of(user).await? {
            if r.state != RequestState::Pending || (r.to == user && r.hidden) {
                continue;
            }
            if let Some(v) = self.view_request(user, &r).await? {
                out.push(v);
            }
        }
        Ok(out)
    }

    /// Every request `user` sent or received that the store still holds (pending and
    /// closed), for the export; incoming hidden ones left out.
    pub async fn request_history(&self, user: u64) -> Result<Vec<RequestView>, FriendError> {
        let mut out = Vec::new();
        for r in self.store.friend_requests_of(user).await? {
            if r.to == user && r.hidden {
                continue;
            }
            if let Some(v) = self.view_request(user, &r).await? {
                out.push(v);
            }
        }
        Ok(out)
    }

    async fn view_request(
        &self,
        user: u64,
        r: &FriendRequestRecord,
    ) -> Result<Option<RequestView>, FriendError> {
        let (direction, other) = if r.from == user {
            (Direction::Outgoing, r.to)
        } else {
            (Direction::Incoming, r.from)
        };
        let Some(person) = self.person(other).await? else {
            return Ok(None);
        };
        let note = if r.note_sealed.is_empty() {
            None
        } else {
            self.key_of(r.from)
                .await?
                .and_then(|k| k.open(&note_aad(r.id), &r.note_sealed).ok())
                .and_then(|b| String::from_utf8(b).ok())
        };
        Ok(Some(RequestView {
            id: r.id,
            direction,
            person,
            note,
            created: r.created,
            state: r.state,
        }))
    }

    /// The recipient accepts (`true`) or declines a request; accepting returns the friend.
    pub async fn answer(
        &self,
        user: u64,
        id: u64,
        accept: bool,
    ) -> Result<Option<FriendView>, FriendError> {
        let now = self.clock.now();
        let mut outgoing = Vec::new();
        if let Some(r) = self.store.friend_request(id).await?
            && r.to == user
            && r.state == RequestState::Pending
            && !r.hidden
            && is_remote(r.from)
        {
            let content = FriendContent::Answer {
                from: self.address_of(r.from).await?,
                to: self.address_of(user).await?,
                accept,
            };
            outgoing.push(self.row_to(user, r.from, content).await?);
        }
        match self
            .store
            .answer_friend_request(user, id, accept, now, outgoing.clone())
            .await?
        {
            StepOutcome::Done(r, notify) => {
                self.publish(&notify);
                self.wake(&outgoing);
                if !accept {
                    return Ok(None);
                }
                let person = self.person(r.from).await?.ok_or(FriendError::NotFound)?;
                Ok(Some(FriendView {
                    id: r.id,
                    person,
                    since: now,
                }))
            }
            StepOutcome::NotFound => Err(FriendError::NotFound),
        }
    }

    /// The sender withdraws a pending request.
    pub async fn cancel(&self, user: u64, id: u64) -> Result<(), FriendError> {
        let mut outgoing = Vec::new();
        if let Some(r) = self.store.friend_request(id).await?
            && r.from == user
            && r.state == RequestState::Pending
            && is_remote(r.to)
        {
            let content = FriendContent::Cancel {
                from: self.address_of(user).await?,
                to: self.address_of(r.to).await?,
            };
            outgoing.push(self.row_to(user, r.to, content).await?);
        }
        match self
            .store
            .cancel_friend_request(user, id, self.clock.now(), outgoing.clone())
            .await?
        {
            StepOutcome::Done(_, notify) => {
                self.publish(&notify);
                self.wake(&outgoing);
                Ok(())
            }
            StepOutcome::NotFound => Err(FriendError::NotFound),
        }
    }

    /// `user`'s friends.
    pub async fn list(&self, user: u64) -> Result<Vec<FriendView>, FriendError> {
        let mut out = Vec::new();
        for (f, since, link) in self.store.friends_of(user).await? {
            if let Some(person) = self.person(f).await? {
                out.push(FriendView {
                    id: link,
                    person,
                    since,
                });
            }
        }
        out.sort_by(|a, b| a.person.address.cmp(&b.person.address));
        Ok(out)
    }

    /// Ends the friendship with id `id` (either side may).
    pub async fn remove(&self, user: u64, id: u64) -> Result<(), FriendError> {
        let friend = self
            .store
            .friends_of(user)
            .await?
            .into_iter()
            .find(|(_, _, link)| *link == id)
            .map(|(f, _, _)| f);
        let mut outgoing = Vec::new();
        if let Some(f) = friend.filter(|f| is_remote(*f)) {
            let content = FriendContent::Remove {
                user: self.address_of(user).await?,
                friend: self.address_of(f).await?,
            };
            outgoing.push(self.row_to(user, f, content).await?);
        }
        match self
            .store
            .remove_friend(user, id, friend, outgoing.clone(), self.clock.now())
            .await?
        {
            Some((_, notify)) => {
                self.publish(&notify);
                self.wake(&outgoing);
                Ok(())
            }
            None => Err(FriendError::NotFound),
        }
    }

    /// `user` blocks the user at `address`; an existing block is returned as it is.
    pub async fn block(&self, user: u64, address: &str) -> Result<(BlockView, bool), FriendError> {
        let other = self.resolve_quietly("user", address).await?;
        if other == user {
            return Err(FriendError::Invalid {
                field: "user",
                reason: "you cannot block yourself".into(),
            });
        }
        let new_id = random_id()?;
        // The block itself is never told. The friendship it ends is, as a removal, and a
        // pending request of `user` it cancels, as a cancel — each only if it may go there
        // (otherwise it ends here only: a block must never fail on federation).
        let (mut on_unfriend, mut on_cancel) = (Vec::new(), Vec::new());
        if is_remote(other) {
            if self.store.are_friends(user, other).await? {
                let content = FriendContent::Remove {
                    user: self.address_of(user).await?,
                    friend: self.address_of(other).await?,
                };
                on_unfriend.extend(self.row_to(user, other, content).await.ok());
            }
            if self
                .store
                .pending_friend_request(user, other)
                .await?
                .is_some()
            {
                let content = FriendContent::Cancel {
                    from: self.address_of(user).await?,
                    to: self.address_of(other).await?,
                };
                on_cancel.extend(self.row_to(user, other, content).await.ok());
            }
        }
        let (id, since, notify) = self
            .store
            .block_user(
                user,
                other,
                new_id,
                self.clock.now(),
                on_unfriend.clone(),
                on_cancel.clone(),
            )
            .await?;
        self.publish(&notify);
        on_unfriend.extend(on_cancel);
        self.wake(&on_unfriend);
        let person = self.person(other).await?.ok_or(FriendError::NoSuchUser)?;
        Ok((BlockView { id, person, since }, id == new_id))
    }

    /// Lifts a block.
    pub async fn unblock(&self, user: u64, id: u64) -> Result<(), FriendError> {
        self.store
            .unblock_user(user, id)
            .await?
            .map(|_| ())
            .ok_or(FriendError::NotFound)
    }

    /// The users `user` blocks.
    pub async fn blocks(&self, user: u64) -> Result<Vec<BlockView>, FriendError> {
        let mut out = Vec::new();
        for (b, since, id) in self.store.blocks_of(user).await? {
            if let Some(person) = self.person(b).await? {
                out.push(BlockView { id, person, since });
            }
        }
        Ok(out)
    }

    /// Whether only friends may open a direct conversation with `user`.
    pub async fn friends_only(&self, user: u64) -> Result<bool, FriendError> {
        Ok(self.store.direct_messages_friends_only(user).await?)
    }

    pub async fn set_friends_only(&self, user: u64, friends_only: bool) -> Result<(), FriendError> {
        Ok(self.store.set_direct_messages(user, friends_only).await?)
    }

    /// Whether `a` and `b` are friends (for "friends" visibility, suggestions, posts).
    #[allow(
        dead_code,
        reason = "the narrow check other areas (discover, community) call"
    )]
    pub async fn are_friends(&self, a: u64, b: u64) -> Result<bool, FriendError> {
        Ok(self.store.are_friends(a, b).await?)
    }

    /// Whether either of `a` and `b` blocks the other.
    #[allow(
        dead_code,
        reason = "the narrow check other areas (discover, community) call"
    )]
    pub async fn blocked_either(&self, a: u64, b: u64) -> Result<bool, FriendError> {
        Ok(self.store.blocked_either(a, b).await?)
    }

    /// The local ids of `user`'s friends (for friends-of-friends suggestions and post
    /// visibility).
    #[allow(
        dead_code,
        reason = "the narrow check other areas (discover, community) call"
    )]
    pub async fn friend_ids(&self, user: u64) -> Result<Vec<u64>, FriendError> {
        Ok(self
            .store
            .friends_of(user)
            .await?
            .into_iter()
            .map(|(f, _, _)| f)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_ids_read_back_and_nothing_else_does() {
        for id in [1, 0xdead_beef, u64::MAX] {
            assert_eq!(parse_id(&wire_id(id)), Some(id));
        }
        assert_eq!(parse_id("DEADBEEFDEADBEEF"), None);
        assert_eq!(parse_id("123"), None);
        assert_eq!(parse_id("+00000000000000f"), None);
        assert_eq!(parse_id("00000000000000g0"), None);
    }
}
