//! QR invites as stored (issue 22, 1.3.e): the invite (friend or group; its token sealed under
//! the owner's key and found by its SHA-256), its uses, and the join requests a group invite
//! leaves for its owner to answer. A join request made and answered is an event on the
//! owner's and the requester's streams, written in the same transaction.

use redb::WriteTransaction;

use super::catalog::*;
use super::codec::{Dec, Enc};
use super::kv;
use super::{Store, StoreError};
use primitives::time::Millis;

/// A step of a join request, as an event on the owner's and the requester's streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinAction {
    Requested,
    Accepted,
    Declined,
}

impl JoinAction {
    pub const ALL: [JoinAction; 3] = [
        JoinAction::Requested,
        JoinAction::Accepted,
        JoinAction::Declined,
    ];
    pub const fn name(self) -> &'static str {
        match self {
            JoinAction::Requested => "requested",
            JoinAction::Accepted => "accepted",
            JoinAction::Declined => "declined",
        }
    }
    pub fn code(self) -> u64 {
        self as u64
    }
}

/// Writes the join event of `j` for its owner (naming the requester) and its requester
/// (naming the owner), those of them who are local, at one new position. Returns the users
/// to wake and the position.
fn join_events(
    tx: &WriteTransaction,
    action: JoinAction,
    j: &JoinRecord,
) -> Result<Option<(Vec<u64>, u64)>, StoreError> {
    let to: Vec<(u64, u64)> = [(j.owner, j.requester), (j.requester, j.owner)]
        .into_iter()
        .filter(|(u, _)| u & REMOTE_USER_BIT == 0)
        .collect();
    if to.is_empty() {
        return Ok(None);
    }
    let pos = super::messaging::next_pos(tx)?;
    let mut t = tx.open_table(USERID_POS_EVENT)?;
    for (user, other) in &to {
        let e = super::messaging::EventRecord::Join {
            action,
            id: j.no,
            conversation: j.conversation.clone(),
            user: *other,
        };
        t.insert((*user, pos), e.encode().as_slice())?;
    }
    Ok(Some((to.iter().map(|(u, _)| *u).collect(), pos)))
}

/// An invite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InviteRecord {
    pub no: u64,
    pub owner: u64,
    /// The conversation id of a group invite; empty for a friend invite.
    pub conversation: String,
    /// The token, sealed under the owner's data key (so the owner can show the code again).
    pub token_sealed: Vec<u8>,
    /// SHA-256 of the token (its row in `invitehash_inviteno`).
    pub hash: [u8; 32],
    pub created: Millis,
    pub expires: Millis,
    pub max_uses: u64,
    pub uses: u64,
    pub revoked: bool,
    /// A group invite adds the redeemer at once instead of leaving a join request.
    pub auto_join: bool,
}

impl InviteRecord {
    pub fn is_group(&self) -> bool {
        !self.conversation.is_empty()
    }
    fn encode(&self) -> Vec<u8> {
        Enc::new(1)
            .u64(self.owner)
            .str(&self.conversation)
            .bytes(&self.token_sealed)
            .bytes(&self.hash)
            .u64(self.created.0)
            .u64(self.expires.0)
            .u64(self.max_uses)
            .u64(self.uses)
            .bool(self.revoked)
            .bool(self.auto_join)
            .finish()
    }
    fn decode(no: u64, b: &[u8]) -> Result<Self, StoreError> {
        let mut d = Dec::new(b, "invite", 1)?;
        let r = InviteRecord {
            no,
            owner: d.u64()?,
            conversation: d.string()?,
            token_sealed: d.bytes()?,
            hash: d
                .bytes()?
                .try_into()
                .map_err(|_| StoreError::Corrupt("invite"))?,
            created: Millis(d.u64()?),
            expires: Millis(d.u64()?),
            max_uses: d.u64()?,
            uses: d.u64()?,
            revoked: d.bool()?,
            auto_join: d.bool()?,
        };
        d.end()?;
        Ok(r)
    }
}

/// A join request just made by [`Store::use_invite`]: its number, and the users to wake and
/// the event position of its events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinMade {
    pub no: u64,
    pub notify: Option<(Vec<u64>, u64)>,
}

/// A pending request to join a group through an invite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinRecord {
    pub no: u64,
    pub owner: u64,
    pub requester: u64,
    pub invite: u64,
    pub conversation: String,
    pub at: Millis,
}

impl JoinRecord {
    fn encode(&self) -> Vec<u8> {
        Enc::new(1)
            .u64(self.requester)
            .u64(self.invite)
            .str(&self.conversation)
            .u64(self.at.0)
            .finish()
    }
    fn decode(owner: u64, no: u64, b: &[u8]) -> Result<Self, StoreError> {
        let mut d = Dec::new(b, "join request", 1)?;
        let r = JoinRecord {
            no,
            owner,
            requester: d.u64()?,
            invite: d.u64()?,
            conversation: d.string()?,
            at: Millis(d.u64()?),
        };
        d.end()?;
        Ok(r)
    }
}

/// Why an invite cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InviteRefusal {
    Unknown,
    Expired,
    Revoked,
    UsedUp,
    OwnInvite,
    /// A join request of this user for this group is already pending.
    Pending,
}

/// Invites and join requests of one user read or removed at a time.
const PAGE: usize = 256;

/// Removes the user's invites, and join requests they made or received (erasure), a page at
/// a time.
pub fn erase_invite_rows(tx: &impl kv::Write, user: u64) -> Result<(), StoreError> {
    loop {
        let nos = USERID_INVITENO.prefixed_page(tx, &user, None, PAGE)?;
        for ((_, no), ()) in &nos {
            if let Some(v) = INVITENO_INVITE.take(tx, no)? {
                INVITEHASH_INVITENO.remove(tx, &InviteRecord::decode(*no, &v)?.hash)?;
            }
            USERID_INVITENO.remove(tx, &(user, *no))?;
        }
        if nos.len() < PAGE {
            break;
        }
    }
    loop {
        let received = USERID_JOINNO_JOIN.prefixed_page(tx, &user, None, PAGE)?;
        for ((_, no), v) in &received {
            let requester = JoinRecord::decode(user, *no, v)?.requester;
            USERID_JOINNO_JOIN.remove(tx, &(user, *no))?;
            REQUESTER_USERID_JOINNO.remove(tx, &(requester, user, *no))?;
        }
        if received.len() < PAGE {
            break;
        }
    }
    loop {
        let made = REQUESTER_USERID_JOINNO.prefixed_page(tx, &user, None, PAGE)?;
        for ((_, owner, no), ()) in &made {
            USERID_JOINNO_JOIN.remove(tx, &(*owner, *no))?;
            REQUESTER_USERID_JOINNO.remove(tx, &(user, *owner, *no))?;
        }
        if made.len() < PAGE {
            break;
        }
    }
    Ok(())
}

fn get_invite(tx: &impl kv::Read, no: u64) -> Result<Option<InviteRecord>, StoreError> {
    INVITENO_INVITE
        .get(tx, &no)?
        .map(|v| InviteRecord::decode(no, &v))
        .transpose()
}

impl Store {
    /// Stores a new invite (its number is assigned here and returned).
    pub async fn create_invite(&self, mut rec: InviteRecord) -> Result<u64, StoreError> {
        rec.uses = 0;
        self.write(move |tx| {
            let no = super::take_numbers(tx, "next_invite", 1)?;
            let mut r = rec.clone();
            r.no = no;
            INVITENO_INVITE.insert(tx, &no, &r.encode())?;
            INVITEHASH_INVITENO.insert(tx, &r.hash, &no)?;
            USERID_INVITENO.insert(tx, &(r.owner, no), &())?;
            Ok(no)
        })
        .await
    }

    /// The user's invites, oldest first.
    pub async fn invites_of(&self, user: u64) -> Result<Vec<InviteRecord>, StoreError> {
        self.read(move |tx| {
            let mut out = Vec::new();
            for ((_, no), ()) in USERID_INVITENO.prefixed_in_pages(tx, &user, PAGE)? {
                out.extend(get_invite(tx, no)?);
            }
            Ok(out)
        })
        .await
    }

    /// The invite whose token has this SHA-256.
    pub async fn invite_by_hash(&self, hash: [u8; 32]) -> Result<Option<InviteRecord>, StoreError> {
        self.read(move |tx| {
            let Some(no) = INVITEHASH_INVITENO.get(tx, &hash)? else {
                return Ok(None);
            };
            get_invite(tx, no)
        })
        .await
    }

    /// Revokes the owner's invite; false if they have no such invite.
    pub async fn revoke_invite(&self, owner: u64, no: u64) -> Result<bool, StoreError> {
        self.write(move |tx| {
            let Some(mut r) = get_invite(tx, no)?.filter(|r| r.owner == owner) else {
                return Ok(false);
            };
            r.revoked = true;
            INVITENO_INVITE.insert(tx, &no, &r.encode())?;
            Ok(true)
        })
        .await
    }

    /// Takes one use of the invite with this token hash for `user`, if it can be used at
    /// `now`; for a group invite without auto-join, also leaves the join request and its
    /// events. Returns the invite as it was before (and the join request, with the users to
    /// wake and the event position).
    pub async fn use_invite(
        &self,
        hash: [u8; 32],
        user: u64,
        now: Millis,
    ) -> Result<Result<(InviteRecord, Option<JoinMade>), InviteRefusal>, StoreError> {
        self.write(move |tx| {
            let Some(no) = INVITEHASH_INVITENO.get(tx, &hash)? else {
                return Ok(Err(InviteRefusal::Unknown));
            };
            let Some(mut r) = get_invite(tx, no)? else {
                return Ok(Err(InviteRefusal::Unknown));
            };
            let refusal = if r.revoked {
                Some(InviteRefusal::Revoked)
            } else if r.expires <= now {
                Some(InviteRefusal::Expired)
            } else if r.uses >= r.max_uses {
                Some(InviteRefusal::UsedUp)
            } else if r.owner == user {
                Some(InviteRefusal::OwnInvite)
            } else {
                None
            };
            if let Some(why) = refusal {
                return Ok(Err(why));
            }
            let before = r.clone();
            let mut join = None;
            if r.is_group() && !r.auto_join {
                let mine = REQUESTER_USERID_JOINNO.prefixed_in_pages(tx, &(user, r.owner), PAGE)?;
                for ((_, _, jn), ()) in mine {
                    if let Some(v) = USERID_JOINNO_JOIN.get(tx, &(r.owner, jn))?
                        && JoinRecord::decode(r.owner, jn, &v)?.conversation == r.conversation
                    {
                        return Ok(Err(InviteRefusal::Pending));
                    }
                }
                let jn = super::take_numbers(tx, "next_join", 1)?;
                let j = JoinRecord {
                    no: jn,
                    owner: r.owner,
                    requester: user,
                    invite: no,
                    conversation: r.conversation.clone(),
                    at: now,
                };
                USERID_JOINNO_JOIN.insert(tx, &(r.owner, jn), &j.encode())?;
                REQUESTER_USERID_JOINNO.insert(tx, &(user, r.owner, jn), &())?;
                let notify = join_events(tx, JoinAction::Requested, &j)?;
                join = Some(JoinMade { no: jn, notify });
            }
            r.uses += 1;
            INVITENO_INVITE.insert(tx, &no, &r.encode())?;
            Ok(Ok((before, join)))
        })
        .await
    }

    /// Gives back a use taken by [`Store::use_invite`] when what it was for failed.
    pub async fn release_invite_use(&self, no: u64) -> Result<(), StoreError> {
        self.write(move |tx| {
            if let Some(mut r) = get_invite(tx, no)? {
                r.uses = r.uses.saturating_sub(1);
                INVITENO_INVITE.insert(tx, &no, &r.encode())?;
            }
            Ok(())
        })
        .await
    }

    /// Join requests waiting for `owner`, oldest first.
    pub async fn join_requests_for(&self, owner: u64) -> Result<Vec<JoinRecord>, StoreError> {
        self.read(move |tx| {
            USERID_JOINNO_JOIN
                .prefixed_in_pages(tx, &owner, PAGE)?
                .into_iter()
                .map(|((_, no), v)| JoinRecord::decode(owner, no, &v))
                .collect()
        })
        .await
    }

    /// Removes and returns the owner's join request `no`, answered (`accept`) with the
    /// answer's events in the same transaction (and the users to wake and their position).
    pub async fn take_join_request(
        &self,
        owner: u64,
        no: u64,
        accept: bool,
    ) -> Result<Option<(JoinRecord, Option<(Vec<u64>, u64)>)>, StoreError> {
        self.write(move |tx| {
            let Some(j) = USERID_JOINNO_JOIN
                .take(tx, &(owner, no))?
                .map(|v| JoinRecord::decode(owner, no, &v))
                .transpose()?
            else {
                return Ok(None);
            };
            REQUESTER_USERID_JOINNO.remove(tx, &(j.requester, owner, no))?;
            let action = match accept {
                true => JoinAction::Accepted,
                false => JoinAction::Declined,
            };
            let notify = join_events(tx, action, &j)?;
            Ok(Some((j, notify)))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::super::federation::Outgoing;
    use super::super::{NewRemoteUser, OutboundRecord};
    use super::*;

    /// A user of another node who redeemed a group invite here, then is erased by their node:
    /// their join request goes with their record (not only out of sight).
    #[tokio::test]
    async fn a_peer_erasing_its_user_removes_the_join_requests_they_left_here() {
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
        let owner = 2;
        store
            .create_invite(InviteRecord {
                no: 0,
                owner,
                conversation: "g1:b.example".into(),
                token_sealed: vec![3; 40],
                hash: [9; 32],
                created: Millis(1),
                expires: Millis(1_000_000),
                max_uses: 10,
                uses: 0,
                revoked: false,
                auto_join: false,
            })
            .await
            .unwrap();
        let (_, made) = store
            .use_invite([9; 32], remote, Millis(5))
            .await
            .unwrap()
            .unwrap();
        let made = made.expect("a join request");
        assert_eq!(
            made.notify.map(|n| n.0),
            Some(vec![owner]),
            "only the owner is local"
        );
        assert_eq!(store.join_requests_for(owner).await.unwrap().len(), 1);
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
        assert!(store.join_requests_for(owner).await.unwrap().is_empty());
    }
}
