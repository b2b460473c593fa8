//! QR invites (1.3.e): a user makes an invite to be their friend, or to a group they own or
//! administer, with an expiry and a use limit, revocable; it is a short link
//! (`https://<domain>/#/invite/<token>`, and `/<handle>` after it for a friend invite: the token
//! stays in the fragment, so it never reaches a server log) and the same link as a QR code
//! (SVG). Redeeming a friend invite sends a friend request through the friends domain (the
//! owner still accepts); a group invite leaves a join request for the owner, or — only if the
//! owner chose so when making it — adds the redeemer at once. An invite of another node is
//! redeemed through the link's domain (`Directory::redeem_invite`): that node checks the token
//! and takes the use; this node answers the same for a peer's user (`redeem_for_peer`).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use super::{Discovery, DiscoveryError};
use crate::messaging::MessagingError;
use crate::time::Millis;
use storage::{InviteRecord, InviteRefusal, JoinRecord, Role};

/// Longest an invite may last, in hours (30 days).
pub const MAX_HOURS: u64 = 720;
/// Most uses an invite may allow.
pub const MAX_USES: u64 = 1_000;
/// Most live invites per user.
const MAX_LIVE: usize = 50;

/// What an invite leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InviteKind {
    /// Becoming the owner's friend.
    Friend,
    /// Joining the group with this conversation id.
    Group(String),
}

/// A request to make an invite.
#[derive(Debug, Clone)]
pub struct NewInvite {
    pub kind: InviteKind,
    pub hours: u64,
    pub max_uses: u64,
    /// Add redeemers at once instead of asking the owner each time.
    pub auto_join: bool,
}

/// An invite as its owner sees it.
#[derive(Debug, Clone)]
pub struct InviteView {
    pub id: u64,
    pub kind: InviteKind,
    pub link: Option<String>,
    pub qr_svg: Option<String>,
    pub created: Millis,
    pub expires: Millis,
    pub max_uses: u64,
    pub uses: u64,
    pub revoked: bool,
    pub auto_join: bool,
}

/// What redeeming did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redeemed {
    /// A friend request went to the invite's owner.
    FriendRequested { address: String },
    /// Added to the group.
    Joined { conversation: String },
    /// A join request waits for the owner.
    Requested { conversation: String },
}

/// A join request as the group invite's owner sees it.
#[derive(Debug, Clone)]
pub struct JoinView {
    pub id: u64,
    pub requester: String,
    pub nickname: String,
    pub conversation: String,
    pub at: Millis,
}

fn token_aad(no: u64) -> Vec<u8> {
    format!("shanliao/invite/{no}/token").into_bytes()
}

fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The QR code of a link, as SVG.
pub fn qr_svg(link: &str) -> Result<String, DiscoveryError> {
    let code = qrcode::QrCode::new(link.as_bytes()).map_err(|_| DiscoveryError::Invalid {
        field: "link",
        reason: "is too long for a QR code".into(),
    })?;
    Ok(code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(240, 240)
        .quiet_zone(true)
        .build())
}

impl Discovery {
    fn link(&self, token: &str, friend_of: Option<&str>) -> String {
        match friend_of {
            Some(handle) => format!("https://{}/#/invite/{token}/{handle}", self.domain),
            None => format!("https://{}/#/invite/{token}", self.domain),
        }
    }

    /// Splits what the user pasted or scanned into (domain, token, handle of a friend invite):
    /// a full link or a bare token (this node's).
    fn parse_link<'a>(
        &'a self,
        s: &'a str,
    ) -> Result<(&'a str, &'a str, Option<&'a str>), DiscoveryError> {
        let invalid = || DiscoveryError::Invalid {
            field: "link",
            reason: "must be an invite link (https://<domain>/#/invite/<token>) or its token"
                .into(),
        };
        let s = s.trim();
        let (domain, token) = match s.strip_prefix("https://") {
            Some(rest) => rest.split_once("/#/invite/").ok_or_else(invalid)?,
            None => (self.domain.as_str(), s),
        };
        let (token, handle) = match token.split_once('/') {
            Some((t, h)) => (t, Some(h)),
            None => (token, None),
        };
        if handle.is_some_and(|h| {
            h.is_empty()
                || h.len() > 32
                || !h
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        }) {
            return Err(invalid());
        }
        if token.len() != 22
            || !token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            || domain.is_empty()
            || domain.len() > 253
        {
            return Err(invalid());
        }
        Ok((domain, token, handle))
    }

    /// Makes an invite; only the owner or an admin of a group may invite to it.
    pub async fn create_invite(
        &self,
        owner: u64,
        new: NewInvite,
    ) -> Result<InviteView, DiscoveryError> {
        if !(1..=MAX_HOURS).contains(&new.hours) {
            return Err(DiscoveryError::Invalid {
                field: "expires_in_hours",
                reason: format!("must be 1 to {MAX_HOURS}"),
            });
        }
        if !(1..=MAX_USES).contains(&new.max_uses) {
            return Err(DiscoveryError::Invalid {
                field: "max_uses",
                reason: format!("must be 1 to {MAX_USES}"),
            });
        }
        let now = self.clock.now();
        let conversation = match &new.kind {
            InviteKind::Friend => {
                if new.auto_join {
                    return Err(DiscoveryError::Invalid {
                        field: "auto_join",
                        reason: "is for group invites: a friend request is always answered".into(),
                    });
                }
                String::new()
            }
            InviteKind::Group(conversation) => {
                self.may_invite_to(owner, conversation).await?;
                conversation.clone()
            }
        };
        let live = self
            .store
            .invites_of(owner)
            .await?
            .iter()
            .filter(|r| !r.revoked && r.expires > now && r.uses < r.max_uses)
            .count();
        if live >= MAX_LIVE {
            return Err(DiscoveryError::Forbidden(
                "you have 50 live invites; revoke one first",
            ));
        }
        let mut raw = [0u8; 16];
        crate::crypto::random_bytes(&mut raw)?;
        let token = URL_SAFE_NO_PAD.encode(raw);
        let key = self.key_of(owner).await?;
        // The token is sealed bound to its owner (the number is assigned by the store).
        let mut rec = InviteRecord {
            no: 0,
            owner,
            conversation,
            token_sealed: Vec::new(),
            hash: hash(&token),
            created: now,
            expires: Millis(now.0 + new.hours * 3_600_000),
            max_uses: new.max_uses,
            uses: 0,
            revoked: false,
            auto_join: new.auto_join,
        };
        rec.token_sealed = key.seal(&token_aad(owner), token.as_bytes())?;
        let no = self.store.create_invite(rec.clone()).await?;
        rec.no = no;
        self.view(&rec, Some(token)).await
    }

    /// Whether `owner` owns or administers the group `conversation`.
    async fn may_invite_to(&self, owner: u64, conversation: &str) -> Result<(), DiscoveryError> {
        let (view, members) = self.messaging.get(owner, conversation).await?;
        if view.kind != storage::ConvKind::Group {
            return Err(DiscoveryError::Invalid {
                field: "conversation",
                reason: "must be a group".into(),
            });
        }
        if !members
            .iter()
            .any(|(u, r)| *u == owner && matches!(r, Role::Owner | Role::Admin))
        {
            return Err(DiscoveryError::Forbidden(
                "only the group's owner and admins make invites to it",
            ));
        }
        Ok(())
    }

    async fn view(
        &self,
        r: &InviteRecord,
        token: Option<String>,
    ) -> Result<InviteView, DiscoveryError> {
        let handle = match r.is_group() {
            true => None,
            false => self
                .accounts
                .card(r.owner)
                .await
                .map_err(|_| DiscoveryError::NoSuchUser)?
                .map(|c| c.handle),
        };
        let link = token.map(|t| self.link(&t, handle.as_deref()));
        let qr_svg = link.as_deref().map(qr_svg).transpose()?;
        Ok(InviteView {
            id: r.no,
            kind: match r.is_group() {
                true => InviteKind::Group(r.conversation.clone()),
                false => InviteKind::Friend,
            },
            link,
            qr_svg,
            created: r.created,
            expires: r.expires,
            max_uses: r.max_uses,
            uses: r.uses,
            revoked: r.revoked,
            auto_join: r.auto_join,
        })
    }

    /// The user's invites with their links and codes, newest first.
    pub async fn invites(&self, owner: u64) -> Result<Vec<InviteView>, DiscoveryError> {
        let key = self.key_of(owner).await?;
        let mut out = Vec::new();
        for r in self.store.invites_of(owner).await?.iter().rev() {
            let token = key
                .open(&token_aad(owner), &r.token_sealed)
                .ok()
                .and_then(|b| String::from_utf8(b).ok());
            out.push(self.view(r, token).await?);
        }
        Ok(out)
    }

    /// Revokes one of the user's invites.
    pub async fn revoke_invite(&self, owner: u64, id: u64) -> Result<(), DiscoveryError> {
        if self.store.revoke_invite(owner, id).await? {
            Ok(())
        } else {
            Err(DiscoveryError::NoSuchInvite)
        }
    }

    /// Redeems an invite link (or token) for `user`.
    pub async fn redeem(&self, user: u64, link: &str) -> Result<Redeemed, DiscoveryError> {
        let (domain, token, _) = self.parse_link(link)?;
        if domain != self.domain {
            return self.redeem_abroad(user, domain, token).await;
        }
        self.use_token(user, token, false).await
    }

    /// An invite of another node, redeemed through the link's domain: that node checks the
    /// token and takes the use (a group invite leaves the join request there, for its owner
    /// to answer); a friend invite's request is then sent from here like any other, and its
    /// owner still answers.
    async fn redeem_abroad(
        &self,
        user: u64,
        domain: &str,
        token: &str,
    ) -> Result<Redeemed, DiscoveryError> {
        let (address, _, _) = self.card(user).await?.ok_or(DiscoveryError::NoSuchUser)?;
        use crate::federate::RemoteRedeem as R;
        match self
            .directory
            .redeem_invite(user, &address, domain, token)
            .await?
        {
            R::Friend { owner } => {
                self.friends.request(user, &owner, None).await?;
                Ok(Redeemed::FriendRequested { address: owner })
            }
            R::Requested { conversation } => Ok(Redeemed::Requested { conversation }),
            R::Joined { conversation } => Ok(Redeemed::Joined { conversation }),
            R::Unknown => Err(DiscoveryError::NoSuchInvite),
            R::Unusable => Err(DiscoveryError::InviteUnusable(
                "cannot be used: it has expired, was revoked or used up, or you redeemed it already",
            )),
        }
    }

    /// Redeems one of this node's invites for `redeemer`, a user of the peer `origin` that
    /// signed the request (`POST /_federation/v1/invites/redeem`): the same checks and uses
    /// as for a local user; a friend invite names its owner (the request comes from the
    /// redeemer's node).
    pub async fn redeem_for_peer(
        &self,
        origin: &str,
        token: &str,
        redeemer: &str,
    ) -> Result<Redeemed, DiscoveryError> {
        if !federation::valid_address(redeemer)
            || federation::address_domain(redeemer) != Some(origin)
        {
            return Err(DiscoveryError::Invalid {
                field: "redeemer",
                reason: "must be a user of the requesting node".into(),
            });
        }
        if token.len() != 22
            || !token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(DiscoveryError::NoSuchInvite);
        }
        // Their node is asked for their nickname the first time (as for a friend request), so
        // the owner sees who asks; if it does not answer, the handle stands in.
        let id = match self.directory.resolve(redeemer).await {
            Ok(id) => id,
            Err(_) => self.directory.ensure(redeemer).await?.0,
        };
        self.use_token(id, token, true).await
    }

    /// Takes a use of this node's invite `token` for `user` and does what it leads to. For a
    /// redeemer of another node (`abroad`) a friend invite only names its owner.
    async fn use_token(
        &self,
        user: u64,
        token: &str,
        abroad: bool,
    ) -> Result<Redeemed, DiscoveryError> {
        let now = self.clock.now();
        let (invite, join) = match self.store.use_invite(hash(token), user, now).await? {
            Ok(found) => found,
            Err(InviteRefusal::Unknown) => return Err(DiscoveryError::NoSuchInvite),
            Err(InviteRefusal::Expired) => {
                return Err(DiscoveryError::InviteUnusable("has expired"));
            }
            Err(InviteRefusal::Revoked) => {
                return Err(DiscoveryError::InviteUnusable("was revoked"));
            }
            Err(InviteRefusal::UsedUp) => {
                return Err(DiscoveryError::InviteUnusable("has been used up"));
            }
            Err(InviteRefusal::OwnInvite) => {
                return Err(DiscoveryError::InviteUnusable("is your own"));
            }
            Err(InviteRefusal::Pending) => {
                return Err(DiscoveryError::InviteUnusable(
                    "was redeemed by you already; the owner has yet to answer",
                ));
            }
        };
        if !invite.is_group() {
            let (address, _, _) = self
                .card(invite.owner)
                .await?
                .ok_or(DiscoveryError::NoSuchInvite)?;
            if abroad {
                return Ok(Redeemed::FriendRequested { address });
            }
            return match self.friends.request(user, &address, None).await {
                Ok(_) => Ok(Redeemed::FriendRequested { address }),
                Err(e) => {
                    self.store.release_invite_use(invite.no).await?;
                    Err(e.into())
                }
            };
        }
        let conversation = invite.conversation.clone();
        if let Some(made) = join {
            if let Some((users, pos)) = made.notify {
                self.hub.publish(&users, pos);
            }
            return Ok(Redeemed::Requested { conversation });
        }
        match self.add_member(invite.owner, &conversation, user).await {
            Ok(()) => Ok(Redeemed::Joined { conversation }),
            Err(e) => {
                self.store.release_invite_use(invite.no).await?;
                Err(e)
            }
        }
    }

    async fn add_member(
        &self,
        owner: u64,
        conversation: &str,
        user: u64,
    ) -> Result<(), DiscoveryError> {
        let (address, _, _) = self.card(user).await?.ok_or(DiscoveryError::NoSuchUser)?;
        Ok(self.messaging.invite(owner, conversation, &address).await?)
    }

    /// Join requests waiting for the user's answer.
    pub async fn join_requests(&self, owner: u64) -> Result<Vec<JoinView>, DiscoveryError> {
        let mut out = Vec::new();
        for j in self.store.join_requests_for(owner).await? {
            if let Some((requester, nickname, _)) = self.card(j.requester).await? {
                out.push(JoinView {
                    id: j.no,
                    requester,
                    nickname,
                    conversation: j.conversation,
                    at: j.at,
                });
            }
        }
        Ok(out)
    }

    /// Accepts (adds the requester to the group) or declines a join request.
    pub async fn answer_join(
        &self,
        owner: u64,
        id: u64,
        accept: bool,
    ) -> Result<(), DiscoveryError> {
        let j: JoinRecord = self
            .store
            .join_requests_for(owner)
            .await?
            .into_iter()
            .find(|j| j.no == id)
            .ok_or(DiscoveryError::NoSuchJoinRequest)?;
        // Added first: a refusal (a full group, a requester who left meanwhile) keeps the
        // request for another answer.
        if accept {
            match self.add_member(owner, &j.conversation, j.requester).await {
                Ok(()) => {}
                // Joined meanwhile (another invite): the request is answered all the same.
                Err(DiscoveryError::Messaging(MessagingError::Conflict("already a member"))) => {}
                Err(e) => return Err(e),
            }
        }
        if let Some((_, Some((users, pos)))) =
            self.store.take_join_request(owner, id, accept).await?
        {
            self.hub.publish(&users, pos);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_qr_code_is_an_svg_document() {
        let svg = qr_svg("https://chat.example/#/invite/AAAAAAAAAAAAAAAAAAAAAA").unwrap();
        assert!(svg.starts_with("<?xml"));
        assert!(svg.contains("<svg"));
    }
}
