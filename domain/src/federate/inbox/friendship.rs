//! `Inbox::friend`: applies a `friend` envelope from a peer (issue 22) — a request from one
//! of its users to one of this node's, the answer to a request this node's user sent, a
//! cancel, a removal. The user who acts must belong to the origin, the other to this node.
//! Requests and friendships are found by their pair of users. Repeats are harmless: a
//! request already pending, or an answer, cancel or removal that finds nothing left to
//! change, is answered as applied.

use federation::{Envelope, FriendContent, address_domain};

use super::{Inbox, Rejection, reject};
use storage::{NewFriendRequest, RequestOutcome, StepOutcome};

/// Longest note a peer may send, in characters (as for a local request).
const MAX_NOTE_CHARS: usize = crate::friends::MAX_NOTE_CHARS;

impl Inbox {
    /// This node's user at `address`; refused when the address is not of this node.
    async fn local_user(&self, address: &str) -> Result<u64, Rejection> {
        if address_domain(address) != Some(self.peers.own_domain()) {
            return Err(reject("not_local", "the other user is not of this node"));
        }
        let handle = address.rsplit_once('@').map_or("", |(h, _)| h);
        self.store
            .user_by_handle(handle.to_string())
            .await?
            .ok_or_else(|| reject("no_such_user", "no such user"))
    }

    fn publish(&self, notify: &[storage::FriendNotify]) {
        for n in notify {
            self.hub.publish(&n.users, n.pos);
        }
    }

    pub(super) async fn friend(&self, env: &Envelope, c: FriendContent) -> Result<(), Rejection> {
        let now = self.clock.now();
        match c {
            FriendContent::Request { from, to, note } => {
                self.own_user_of(env, &from)?;
                let recipient = self.local_user(&to).await?;
                let note = match note {
                    Some(n) => Some(
                        crate::shown::text("note", &n, 1, MAX_NOTE_CHARS)
                            .map_err(|e| reject("invalid", format!("note: {e}")))?,
                    ),
                    None => None,
                };
                let (sender, key) = self.directory.ensure(&from).await?;
                // The request names no nickname: ask the sender's node for it (and the avatar)
                // before the request is stored, so the recipient sees who asks from the first
                // moment. Best effort: without it the handle is shown, and later changes are
                // pushed as for any peer.
                if let Err(e) = self.directory.lookup(&from).await {
                    tracing::debug!(error = %e, "looking up a friend request's sender failed");
                }
                let mut b = [0u8; 8];
                crate::crypto::random_bytes(&mut b)?;
                let id = u64::from_be_bytes(b).max(1);
                let note_sealed = match &note {
                    Some(n) => key.seal(&crate::friends::note_aad(id), n.as_bytes())?,
                    None => Vec::new(),
                };
                let outcome = self
                    .store
                    .send_friend_request(NewFriendRequest {
                        id,
                        from: sender,
                        to: recipient,
                        note_sealed,
                        now,
                        limits: self.limits.friend_requests,
                        outgoing: Vec::new(),
                    })
                    .await?;
                match outcome {
                    RequestOutcome::Sent(_, notify) => {
                        self.publish(&notify);
                        Ok(())
                    }
                    // Already so (a repeat, or both asked each other at once).
                    RequestOutcome::Pending | RequestOutcome::AlreadyFriends => Ok(()),
                    RequestOutcome::RecentlyDeclined { .. } => Err(reject(
                        "recently_declined",
                        "the last request was declined; it cannot be sent again yet",
                    )),
                    RequestOutcome::TooManyPending | RequestOutcome::DailyLimit { .. } => Err(
                        reject("limit", "this user has sent too many friend requests here"),
                    ),
                    RequestOutcome::YouBlock => Err(reject("refused", "not applicable")),
                }
            }
            FriendContent::Answer { from, to, accept } => {
                self.own_user_of(env, &to)?;
                let sender = self.local_user(&from).await?;
                let Some(recipient) = self.store.remote_user_id(to).await? else {
                    return Ok(());
                };
                let Some(r) = self.store.pending_friend_request(sender, recipient).await? else {
                    return Ok(());
                };
                if let StepOutcome::Done(_, notify) = self
                    .store
                    .answer_friend_request(recipient, r.id, accept, now, Vec::new())
                    .await?
                {
                    self.publish(&notify);
                }
                Ok(())
            }
            FriendContent::Cancel { from, to } => {
                self.own_user_of(env, &from)?;
                let recipient = self.local_user(&to).await?;
                let Some(sender) = self.store.remote_user_id(from).await? else {
                    return Ok(());
                };
                let Some(r) = self.store.pending_friend_request(sender, recipient).await? else {
                    return Ok(());
                };
                if let StepOutcome::Done(_, notify) = self
                    .store
                    .cancel_friend_request(sender, r.id, now, Vec::new())
                    .await?
                {
                    self.publish(&notify);
                }
                Ok(())
            }
            FriendContent::Remove { user, friend } => {
                self.own_user_of(env, &user)?;
                let local = self.local_user(&friend).await?;
                let Some(remote) = self.store.remote_user_id(user).await? else {
                    return Ok(());
                };
                let link = self
                    .store
                    .friends_of(remote)
                    .await?
                    .into_iter()
                    .find(|(f, _, _)| *f == local)
                    .map(|(_, _, link)| link);
                if let Some(link) = link
                    && let Some((_, notify)) = self
                        .store
                        .remove_friend(remote, link, None, Vec::new(), now)
                        .await?
                {
                    self.publish(&notify);
                }
                Ok(())
            }
        }
    }
}
