//! `Discovery`: the ways of finding people of issue 22 other than the friend graph —
//! suggestions (`suggestions.rs`: contacts matching, shared public education, dismissals),
//! nearby people (`nearby.rs`) and QR invites (`invites.rs`). This file holds the handle, its
//! settings and its errors. Nothing here is federated: suggestions and nearby cells stay on
//! the node; an invite to a user of another node is redeemed through the link's domain.

mod invites;
mod nearby;
mod suggestions;

use std::sync::Arc;

pub use invites::{InviteKind, InviteView, NewInvite, Redeemed};
pub use suggestions::education_index;

use crate::accounts::Accounts;
use crate::consents::{ConsentError, Consents};
use crate::crypto::{CryptoError, MasterKey, SecretKey};
use crate::messaging::{Messaging, MessagingError};
use crate::time::SharedClock;
use storage::{Store, StoreError};

/// Errors of discovery.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("no such user")]
    NoSuchUser,
    #[error("no such invite")]
    NoSuchInvite,
    #[error("this invite {0}")]
    InviteUnusable(&'static str),
    #[error("no such join request")]
    NoSuchJoinRequest,
    #[error("{0}")]
    Forbidden(&'static str),
    /// The day's quota of distinct contact numbers is used up (how many are left).
    #[error("the daily quota of contact numbers is used up; {0} are left today")]
    Quota(u64),
    /// Too many requests of this kind; seconds until the next is allowed.
    #[error("too many requests; try again in {0} s")]
    RateLimited(u64),
    #[error("your location is not set, or has expired: share it first")]
    NoLocation,
    #[error("this location is too far from the last one for the time since")]
    ImplausibleJump,
    #[error(transparent)]
    Consent(#[from] ConsentError),
    #[error(transparent)]
    Messaging(#[from] MessagingError),
    #[error(transparent)]
    Friends(#[from] crate::friends::FriendError),
    #[error(transparent)]
    Federation(#[from] crate::federate::FedError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

/// The discovery service (a narrow set of handles behind one pointer, cloned into the HTTP
/// layer and the purge loop).
#[derive(Debug, Clone)]
pub struct Discovery(Arc<Handles>);

impl std::ops::Deref for Discovery {
    type Target = Handles;
    fn deref(&self) -> &Handles {
        &self.0
    }
}

/// What [`Discovery`] holds.
#[derive(Debug)]
pub struct Handles {
    store: Store,
    master: MasterKey,
    accounts: Accounts,
    consents: Consents,
    messaging: Messaging,
    friends: crate::friends::Friends,
    hub: Arc<crate::hub::Hub>,
    directory: crate::federate::Directory,
    clock: SharedClock,
    domain: String,
    contacts_key: SecretKey,
    cell_key: SecretKey,
    limits: nearby::Limits,
}

impl Discovery {
    #[expect(
        clippy::too_many_arguments,
        reason = "one narrow handle per service it uses, built once in wiring"
    )]
    pub fn new(
        store: Store,
        master: MasterKey,
        accounts: Accounts,
        consents: Consents,
        messaging: Messaging,
        friends: crate::friends::Friends,
        hub: Arc<crate::hub::Hub>,
        directory: crate::federate::Directory,
        clock: SharedClock,
        domain: String,
    ) -> Self {
        Discovery(Arc::new(Handles {
            contacts_key: master.contacts_index_key(),
            cell_key: master.cell_index_key(),
            store,
            master,
            accounts,
            consents,
            messaging,
            friends,
            hub,
            directory,
            clock,
            domain,
            limits: Default::default(),
        }))
    }

    fn data_key(&self, user: u64, wrapped: &[u8]) -> Result<SecretKey, DiscoveryError> {
        if wrapped.is_empty() {
            return Err(DiscoveryError::NoSuchUser);
        }
        Ok(self.master.unwrap_data_key(user, wrapped)?)
    }

    async fn key_of(&self, user: u64) -> Result<SecretKey, DiscoveryError> {
        let acct = self
            .store
            .account(user)
            .await?
            .ok_or(DiscoveryError::NoSuchUser)?;
        self.data_key(user, &acct.wrapped_key)
    }

    /// `handle@domain` of a user (local, or of another node: as last heard), with nickname
    /// and avatar; `None` if gone.
    async fn card(
        &self,
        user: u64,
    ) -> Result<Option<(String, String, Option<String>)>, DiscoveryError> {
        if user & storage::REMOTE_USER_BIT != 0 {
            return Ok(self
                .directory
                .card(user)
                .await?
                .map(|p| (p.address, p.nickname, p.avatar)));
        }
        Ok(self
            .accounts
            .card(user)
            .await
            .map_err(|_| DiscoveryError::NoSuchUser)?
            .map(|c| {
                (
                    format!("{}@{}", c.handle, self.domain),
                    c.nickname,
                    c.avatar.as_ref().map(|a| a.shown().to_string()),
                )
            }))
    }

    /// The user's discovery data for the export (`docs/EXPORT.md`): their setting, how many
    /// contact matches and dismissals they have (not whom: the matches come from their own
    /// upload, and are only counted), their current cell, their invites and the join
    /// requests waiting for them. Never anything others uploaded.
    pub async fn export(&self, user: u64) -> Result<serde_json::Value, DiscoveryError> {
        let now = self.clock.now();
        let invites: Vec<_> = self
            .invites(user)
            .await?
            .into_iter()
            .map(|v| {
                let (kind, conversation) = match v.kind {
                    InviteKind::Group(c) => ("group", Some(c)),
                    InviteKind::Friend => ("friend", None),
                };
                serde_json::json!({
                    "id": v.id.to_string(), "kind": kind, "conversation": conversation,
                    "link": v.link, "created": v.created.to_rfc3339(),
                    "expires": v.expires.to_rfc3339(), "max_uses": v.max_uses, "uses": v.uses,
                    "revoked": v.revoked, "auto_join": v.auto_join,
                })
            })
            .collect();
        let joins: Vec<_> = self
            .join_requests(user)
            .await?
            .into_iter()
            .map(|j| {
                serde_json::json!({"id": j.id.to_string(), "requester": j.requester,
                    "conversation": j.conversation, "at": j.at.to_rfc3339()})
            })
            .collect();
        Ok(serde_json::json!({
            "findable_by_phone": self.findable(user).await?,
            "contact_matches": self.store.match_count(user, now).await?,
            "dismissed": self.store.dismissed_count(user).await?,
            "location": self.location(user).await?.map(|(cell, expires)| serde_json::json!({
                "cell": cell, "expires": expires.to_rfc3339(),
            })),
            "invites": invites,
            "join_requests": joins,
        }))
    }

    /// The local user an address names.
    async fn local_user(&self, field: &'static str, address: &str) -> Result<u64, DiscoveryError> {
        let handle = address
            .strip_suffix(&format!("@{}", self.domain))
            .ok_or_else(|| DiscoveryError::Invalid {
                field,
                reason: "must be the address of a user of this node".into(),
            })?;
        self.store
            .user_by_handle(handle.to_string())
            .await?
            .ok_or(DiscoveryError::NoSuchUser)
    }
}
