//! `Directory`: users of other nodes. Looking one up asks their node
//! (`GET /_federation/v1/users/{handle}`, answered with a `profile` envelope signed by that
//! node: nickname and avatar; `…/as/{viewer}` on behalf of a local user adds the optional
//! fields that user may see, shown and never kept), checks the signature, and keeps a local record
//! with an id and a data key of its own (so what they write here is sealed like a local
//! user's writing, and erasing them here is destroying that key). Also serves this node's
//! users to peers' lookups, under the residency rule. A user's avatar image travels as a
//! reference and is fetched into a copy here (`avatar`, `fetch`).

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use federation::{Envelope, Kind, ProfileContent};
use http::{Method, StatusCode};
use serde_json::json;

use super::FedError;
use super::outbox::Outbox;
use super::peers::Peers;
use crate::accounts::Accounts;
use crate::consents::{Consents, Purpose};
use crate::crypto::{self, MasterKey, SecretKey};
use crate::profile::{Avatar, Field};
use crate::time::SharedClock;
use storage::{Dec, Enc, NewRemoteUser, Refusal, Store};

/// A remote user as a local client sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteProfile {
    pub address: String,
    pub nickname: String,
    /// What clients are given: for an image, the id of the copy here (`GET /api/v1/media/…`).
    pub avatar: Option<String>,
}

/// What a peer answered to redeeming one of its invites for a local user
/// ([`Directory::redeem_invite`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteRedeem {
    /// A friend invite of `owner` (a user of that peer): the friend request is this node's
    /// to send.
    Friend { owner: String },
    /// A join request waits for the group's owner there.
    Requested { conversation: String },
    /// The group's owner chose to let redeemers in at once: added.
    Joined { conversation: String },
    /// No such invite.
    Unknown,
    /// Expired, revoked, used up, or already redeemed by this user and unanswered.
    Unusable,
}

/// The body of `POST /_federation/v1/invites/redeem`.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedeemWire {
    pub token: String,
    pub redeemer: String,
}

/// Its answer (200).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(tag = "result", rename_all = "snake_case", deny_unknown_fields)]
pub enum RedeemAnswerWire {
    Friend { owner: String },
    Requested { conversation: String },
    Joined { conversation: String },
}

/// Users of other nodes.
#[derive(Debug, Clone)]
pub struct Directory {
    store: Store,
    master: MasterKey,
    peers: Arc<Peers>,
    outbox: Outbox,
    accounts: Accounts,
    consents: Consents,
    clock: SharedClock,
    /// The largest avatar image taken from another node (`media.max_bytes`).
    max_media_bytes: u64,
    /// Starts the fetch of a remote user's new avatar image; attached once the fetcher runs
    /// (a fetch queued before waits for `Fetcher::resume`).
    fetcher: Arc<OnceLock<super::Fetcher>>,
}

fn profile_aad(id: u64) -> Vec<u8> {
    let mut v = b"shanliao/remote-profile/".to_vec();
    v.extend_from_slice(&id.to_be_bytes());
    v
}

/// What a remote user's address is sealed with, under their data key here.
fn address_aad(id: u64) -> Vec<u8> {
    let mut v = b"shanliao/remote-address/".to_vec();
    v.extend_from_slice(&id.to_be_bytes());
    v
}

/// Remote users converted from schema 6 per write at start.
const CONVERT_BATCH: usize = 500;

/// Loads every remote user's address (opened with their data key) into the store's in-memory
/// [`storage::HandleBook`], converting rows of schema 6 (address in clear) to sealed
/// ones first. Called once while the node is wired, after the handles are loaded (it needs
/// their index key) and before anything is served.
pub async fn load_addresses(store: &Store, master: &MasterKey) -> Result<(), FedError> {
    let mut convert = Vec::new();
    let mut loaded = Vec::new();
    for (id, rec) in store.all_remote_users().await? {
        let key = master.unwrap_data_key(id, &rec.wrapped_key)?;
        if rec.address_sealed.is_empty() {
            let sealed = key.seal(&address_aad(id), rec.address.as_bytes())?;
            convert.push((id, rec.address.clone(), sealed));
            loaded.push((id, rec.address));
        } else {
            let clear = key.open(&address_aad(id), &rec.address_sealed)?;
            let address = String::from_utf8(clear)
                .map_err(|_| FedError::Invalid("a stored remote address is damaged".into()))?;
            loaded.push((id, address));
        }
    }
    // A write per batch; a start cut short converts the rest next time (they still lack
    // their sealed address), and the clear rows no record names are emptied after.
    for batch in convert.chunks(CONVERT_BATCH) {
        store.seal_remote_addresses(batch.to_vec()).await?;
    }
    while store.drop_schema6_addresses(CONVERT_BATCH).await? == CONVERT_BATCH {}
    let book = store.handles();
    for (id, address) in loaded {
        book.insert(id, address);
    }
    Ok(())
}

/// Checks the optional fields a peer answered for a viewer: known names, values as this node
/// would accept them from its own users (so what is shown here follows the same rules).
fn read_fields(
    fields: &BTreeMap<String, String>,
    today: crate::time::Millis,
) -> Result<Vec<(Field, String)>, String> {
    fields
        .iter()
        .map(|(name, value)| {
            let f: Field = name.parse().map_err(|()| format!("`{name}` is unknown"))?;
            let v = f.validate(value, today).map_err(|e| e.to_string())?;
            Ok((f, v))
        })
        .collect()
}

impl Directory {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Store,
        master: MasterKey,
        peers: Arc<Peers>,
        outbox: Outbox,
        accounts: Accounts,
        consents: Consents,
        clock: SharedClock,
        max_media_bytes: u64,
    ) -> Self {
        Directory {
            store,
            master,
            peers,
            outbox,
            accounts,
            consents,
            clock,
            max_media_bytes,
            fetcher: Arc::default(),
        }
    }

    /// Hands the directory the media fetcher, for remote users' avatar images.
    pub fn attach_fetcher(&self, fetcher: super::Fetcher) {
        let _ = self.fetcher.set(fetcher);
    }

    /// Checks that local user `user` may show media `id` as their avatar (an image they
    /// uploaded, `photos` granted).
    pub async fn check_avatar(&self, user: u64, id: &str) -> Result<(), super::AvatarError> {
        super::avatar::check(&self.store, &self.consents, user, id).await
    }

    /// The local id and data key of a remote user, creating their record when new. Does not
    /// ask their node (used for users named by a peer in what it sends).
    pub async fn ensure(&self, address: &str) -> Result<(u64, SecretKey), FedError> {
        if !federation::valid_address(address) {
            return Err(FedError::Invalid(format!("`{address}` is not an address")));
        }
        let existing = self.store.remote_user_id(address.to_string()).await?;
        let id = match existing {
            Some(id) => id,
            None => {
                let mut b = [0u8; 8];
                crypto::random_bytes(&mut b)?;
                let id = u64::from_be_bytes(b) | storage::REMOTE_USER_BIT;
                let key = SecretKey::generate()?;
                self.store
                    .ensure_remote_user(NewRemoteUser {
                        address: address.to_string(),
                        id,
                        wrapped_key: self.master.wrap_data_key(id, &key)?,
                        address_sealed: key.seal(&address_aad(id), address.as_bytes())?,
                        now: self.clock.now(),
                    })
                    .await?
            }
        };
        let rec = self
            .store
            .remote_users(vec![id])
            .await?
            .into_iter()
            .next()
            .ok_or(FedError::Invalid("remote user vanished".into()))?;
        Ok((id, self.master.unwrap_data_key(id, &rec.1.wrapped_key)?))
    }

    /// The local id of a user of another node, asking their node the first time (so a
    /// conversation is never opened with someone who does not exist).
    pub async fn resolve(&self, address: &str) -> Result<u64, FedError> {
        if let Some(id) = self.store.remote_user_id(address.to_string()).await? {
            return Ok(id);
        }
        self.lookup(address).await?;
        self.store
            .remote_user_id(address.to_string())
            .await?
            .ok_or(FedError::NoSuchUser)
    }

    /// Asks the user's node for their nickname and avatar, and keeps them.
    pub async fn lookup(&self, address: &str) -> Result<RemoteProfile, FedError> {
        Ok(self.lookup_as(address, None).await?.0)
    }

    /// [`Directory::lookup`] on behalf of the local user `viewer` (their handle): the answer
    /// also carries the optional fields their node lets that viewer see (checked here, shown,
    /// never stored). Without a viewer there are none.
    pub async fn lookup_as(
        &self,
        address: &str,
        viewer: Option<&str>,
    ) -> Result<(RemoteProfile, Vec<(Field, String)>), FedError> {
        let (handle, domain) = address
            .split_once('@')
            .filter(|_| federation::valid_address(address))
            .ok_or_else(|| FedError::Invalid("must be handle@domain".into()))?;
        let peer = self.peers.get(domain)?;
        let path = match viewer {
            Some(v) => format!("/_federation/v1/users/{handle}/as/{v}"),
            None => format!("/_federation/v1/users/{handle}"),
        };
        let (status, body) = self
            .peers
            .request(&peer, Method::GET, &path, Bytes::new())
            .await?;
        match status {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => return Err(FedError::NoSuchUser),
            StatusCode::UNAVAILABLE_FOR_LEGAL_REASONS => {
                return Err(FedError::PeerResidency {
                    peer: domain.to_string(),
                });
            }
            s => {
                return Err(FedError::Peer(super::PeerError::Status {
                    peer: domain.to_string(),
                    status: s.as_u16(),
                }));
            }
        }
        let bad = |m: &str| FedError::Invalid(format!("{domain} answered a bad profile: {m}"));
        let value = federation::parse_json(&body).map_err(|e| bad(&e.to_string()))?;
        let env = Envelope::from_value(value).map_err(|e| bad(&e.to_string()))?;
        if env.origin != domain
            || env.kind != Kind::Profile
            || env.destination != self.peers.own_domain()
        {
            return Err(bad("wrong origin, destination or kind"));
        }
        if !env.fresh_at(self.clock.now().0) {
            return Err(bad("its time is outside the accepted window"));
        }
        super::inbox::verify_envelope(&self.peers, &env).await?;
        let p: ProfileContent =
            serde_json::from_value(env.content.clone()).map_err(|e| bad(&e.to_string()))?;
        if p.user != address {
            return Err(bad("another user"));
        }
        let fields = match (&p.fields, viewer) {
            (None, None) => Vec::new(),
            (Some(f), Some(_)) => {
                read_fields(f, self.clock.now()).map_err(|e| bad(&format!("field {e}")))?
            }
            _ => return Err(bad("fields only and always in an answer for a viewer")),
        };
        let (id, key) = self.ensure(address).await?;
        let avatar = self.keep_profile(id, &key, &p).await?;
        Ok((
            RemoteProfile {
                address: p.user,
                nickname: p.nickname,
                avatar: avatar.as_ref().map(|a| a.shown().to_string()),
            },
            fields,
        ))
    }

    /// The optional fields of local user `handle` that `viewer` of node `requester` may see
    /// (see [`Directory::serve`]).
    async fn fields_for(
        &self,
        requester: &str,
        handle: &str,
        viewer: &str,
    ) -> Result<BTreeMap<String, String>, FedError> {
        let address = format!("{viewer}@{requester}");
        // Only a user this node already knows can be a friend: an unknown viewer is not
        // recorded (a lookup leaves no trace of who asked beyond the disclosure log).
        let known = match federation::valid_address(&address) {
            true => self.store.remote_user_id(address).await?,
            false => None,
        };
        let view = self
            .accounts
            .view_by(known, handle)
            .await
            .map_err(|e| match e {
                crate::accounts::AccountError::NoSuchUser => FedError::NoSuchUser,
                e => FedError::Invalid(e.to_string()),
            })?;
        Ok(view
            .fields
            .into_iter()
            .map(|(f, v)| (f.name().to_string(), v))
            .collect())
    }

    /// Redeems an invite of node `domain` for local user `user` (address `redeemer`):
    /// `POST /_federation/v1/invites/redeem` with the token and the redeemer's address, a
    /// signed request answered once the peer has committed what it did. The redeemer's
    /// address leaves this node, so the residency rule applies (a peer of another region
    /// needs their `cross_border_transfer`; checked before anything is sent) and the
    /// disclosure log counts it (kind `invite`).
    pub async fn redeem_invite(
        &self,
        user: u64,
        redeemer: &str,
        domain: &str,
        token: &str,
    ) -> Result<RemoteRedeem, FedError> {
        let peer = self.peers.get(domain)?;
        if let Some(region) = self.peers.foreign_region(&peer)
            && self
                .consents
                .require(user, Purpose::CrossBorderTransfer)
                .await
                .is_err()
        {
            return Err(FedError::Refused(Refusal::Residency {
                peer: domain.to_string(),
                region,
            }));
        }
        let body = serde_json::to_vec(&RedeemWire {
            token: token.to_string(),
            redeemer: redeemer.to_string(),
        })
        .map_err(|e| FedError::Invalid(e.to_string()))?;
        let (status, answer) = self
            .peers
            .request(
                &peer,
                Method::POST,
                "/_federation/v1/invites/redeem",
                Bytes::from(body),
            )
            .await?;
        // Sent and answered: the address reached the peer, whatever it made of it.
        self.store
            .record_transfer(user, domain.to_string(), "invite", self.clock.now())
            .await?;
        match status {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => return Ok(RemoteRedeem::Unknown),
            StatusCode::GONE => return Ok(RemoteRedeem::Unusable),
            StatusCode::UNAVAILABLE_FOR_LEGAL_REASONS => {
                return Err(FedError::PeerResidency {
                    peer: domain.to_string(),
                });
            }
            s => {
                return Err(FedError::Peer(super::PeerError::Status {
                    peer: domain.to_string(),
                    status: s.as_u16(),
                }));
            }
        }
        let bad = |m: &str| FedError::Invalid(format!("{domain} answered a bad redemption: {m}"));
        let value = federation::parse_json(&answer).map_err(|e| bad(&e.to_string()))?;
        let a: RedeemAnswerWire = serde_json::from_value(value).map_err(|e| bad(&e.to_string()))?;
        let theirs = |address: &str| federation::address_domain(address) == Some(domain);
        Ok(match a {
            RedeemAnswerWire::Friend { owner }
                if federation::valid_address(&owner) && theirs(&owner) =>
            {
                RemoteRedeem::Friend { owner }
            }
            RedeemAnswerWire::Requested { conversation }
                if federation::conversation_host(&conversation) == Some(domain) =>
            {
                RemoteRedeem::Requested { conversation }
            }
            RedeemAnswerWire::Joined { conversation }
                if federation::conversation_host(&conversation) == Some(domain) =>
            {
                RemoteRedeem::Joined { conversation }
            }
            _ => return Err(bad("a user or group not of its own")),
        })
    }

    /// Stores a remote user's nickname and avatar, sealed under their key here (version 2: the
    /// avatar's kind, 0 none, 1 old reference, 2 image, then its text). A new avatar image
    /// replaces the copy of the old one and is fetched from their node. Returns the avatar as
    /// this node shows it.
    pub async fn keep_profile(
        &self,
        id: u64,
        key: &SecretKey,
        p: &ProfileContent,
    ) -> Result<Option<Avatar>, FedError> {
        let now = self.clock.now();
        let (avatar, fetch) = super::avatar::incoming(p, id, self.max_media_bytes, now)?;
        let plain = match &avatar {
            None => Enc::new(2).str(&p.nickname).u64(0),
            Some(Avatar::Legacy(a)) => Enc::new(2).str(&p.nickname).u64(1).str(a),
            Some(Avatar::Media(a)) => Enc::new(2).str(&p.nickname).u64(2).str(a),
        }
        .finish();
        let sealed = key.seal(&profile_aad(id), &plain)?;
        let queued = self
            .store
            .set_remote_profile(id, sealed, fetch, now)
            .await?;
        if let (Some(media), Some(f)) = (queued, self.fetcher.get()) {
            f.fetch(media);
        }
        Ok(avatar)
    }

    /// A remote user's address, nickname and avatar as last received (the nickname is the
    /// handle until their node has told this one). `None` if this node does not know them.
    pub async fn card(&self, id: u64) -> Result<Option<RemoteProfile>, FedError> {
        let Some((_, rec)) = self.store.remote_users(vec![id]).await?.into_iter().next() else {
            return Ok(None);
        };
        let handle = rec
            .address
            .rsplit_once('@')
            .map_or("", |(h, _)| h)
            .to_string();
        if rec.profile_sealed.is_empty() {
            return Ok(Some(RemoteProfile {
                address: rec.address,
                nickname: handle,
                avatar: None,
            }));
        }
        let key = self.master.unwrap_data_key(id, &rec.wrapped_key)?;
        let plain = key.open(&profile_aad(id), &rec.profile_sealed)?;
        let v1 = plain.first() == Some(&1);
        let mut d = Dec::new(&plain, "remote profile", if v1 { 1 } else { 2 })?;
        let nickname = d.string()?;
        let avatar = if v1 {
            // Kept before avatars were images: the reference as it came.
            if d.bool()? { Some(d.string()?) } else { None }
        } else {
            match d.u64()? {
                0 => None,
                1 | 2 => Some(d.string()?),
                _ => return Err(storage::StoreError::Corrupt("remote profile").into()),
            }
        };
        d.end()?;
        Ok(Some(RemoteProfile {
            address: rec.address,
            nickname,
            avatar,
        }))
    }

    /// Changes local user `user`'s profile; a new nickname or avatar is pushed, in the same
    /// transaction, to every peer that holds the user and may receive it
    /// ([`Outbox::profile_push`]), where it replaces what that peer shows.
    pub async fn update_own_profile(
        &self,
        user: u64,
        patch: crate::profile::ProfilePatch,
    ) -> Result<crate::accounts::OwnAccount, crate::accounts::AccountError> {
        let push =
            self.outbox.profile_push(user).await.map_err(|r| {
                crate::accounts::AccountError::Store(storage::StoreError::Refused(r))
            })?;
        // The reference to the avatar image the profile will show, read and hashed before the
        // write (the push carries it; `wire` leaves it out if the avatar changed meanwhile).
        let after = match &patch.avatar {
            Some(a) => a.clone(),
            None => self.accounts.card(user).await?.and_then(|c| c.avatar),
        };
        let image = super::avatar::reference(
            &self.store,
            &self.master,
            user,
            after.as_ref(),
            self.peers.own_domain(),
        )
        .await
        .map_err(|e| match e {
            crate::media::MediaError::Store(e) => crate::accounts::AccountError::Store(e),
            _ => crate::accounts::AccountError::Invalid {
                field: "avatar",
                reason: "is not media you uploaded".into(),
            },
        })?;
        let (own, woken) = self
            .accounts
            .update_profile_pushed(user, patch, |key, card| {
                push.rows(key, card, image.as_ref())
            })
            .await?;
        self.outbox.wake(&woken);
        Ok(own)
    }

    /// Answers a peer's lookup of local user `handle`: a signed `profile` envelope. Refused
    /// (residency) when the peer is in another region and the user has not consented.
    ///
    /// With `viewer` (the handle of a user of `requester`, which signed the request: all it
    /// vouches for is "this user of mine asks") the answer also carries the optional fields
    /// that viewer may see: the public ones, and the "friends" ones exactly when this node
    /// holds a friendship between the two. Nothing the requester says about the friendship is
    /// believed; a viewer this node does not know sees what the public sees.
    pub async fn serve(
        &self,
        requester: &str,
        handle: &str,
        viewer: Option<&str>,
    ) -> Result<Envelope, FedError> {
        let id = self
            .store
            .user_by_handle(handle.to_string())
            .await?
            .ok_or(FedError::NoSuchUser)?;
        let card = self
            .accounts
            .card(id)
            .await
            .map_err(|e| FedError::Invalid(e.to_string()))?
            .ok_or(FedError::NoSuchUser)?;
        let peer = self.peers.get(requester)?;
        if let Some(region) = self.peers.foreign_region(&peer)
            && self
                .consents
                .require(id, Purpose::CrossBorderTransfer)
                .await
                .is_err()
        {
            return Err(FedError::Refused(Refusal::Residency {
                peer: requester.to_string(),
                region,
            }));
        }
        let image = super::avatar::reference(
            &self.store,
            &self.master,
            id,
            card.avatar.as_ref(),
            self.peers.own_domain(),
        )
        .await
        .map_err(|e| FedError::Invalid(e.to_string()))?;
        let (avatar, avatar_media) = super::avatar::wire(card.avatar.as_ref(), image.as_ref());
        let fields = match viewer {
            None => None,
            Some(viewer) => Some(self.fields_for(requester, &card.handle, viewer).await?),
        };
        let env = self
            .outbox
            .envelope(
                requester,
                Kind::Profile,
                json!(ProfileContent {
                    user: format!("{}@{}", card.handle, self.peers.own_domain()),
                    nickname: card.nickname,
                    avatar,
                    avatar_media,
                    fields,
                }),
            )
            .map_err(FedError::Refused)?;
        self.store
            .record_transfer(id, requester.to_string(), "profile", self.clock.now())
            .await?;
        Ok(env)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use storage::RemoteUserRecord;

    #[test]
    fn a_peers_fields_are_read_by_this_nodes_own_rules() {
        let today = crate::time::Millis(1_764_400_000_000);
        let ok: BTreeMap<String, String> = [
            ("region".to_string(), " 杭州 ".to_string()),
            ("birthday".to_string(), "2001-02-03".to_string()),
        ]
        .into();
        assert_eq!(
            read_fields(&ok, today).unwrap(),
            vec![
                (Field::Birthday, "2001-02-03".to_string()),
                (Field::Region, "杭州".to_string())
            ]
        );
        let unknown: BTreeMap<String, String> = [("phone".to_string(), "1".to_string())].into();
        assert!(read_fields(&unknown, today).is_err());
        let future: BTreeMap<String, String> =
            [("birthday".to_string(), "2999-01-01".to_string())].into();
        assert!(read_fields(&future, today).is_err());
        let long: BTreeMap<String, String> = [("gender".to_string(), "x".repeat(33))].into();
        assert!(read_fields(&long, today).is_err());
    }

    /// A schema 6 remote user (address in clear in the record and in `remoteaddr_userid`) is
    /// converted when the node loads addresses: sealed, indexed by keyed hash, clear row gone.
    #[tokio::test]
    async fn schema_6_remote_users_are_sealed_and_indexed_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(&dir.path().join("n.redb"), |_| Ok(None)).unwrap();
        let master = MasterKey::from_key(SecretKey::generate().unwrap());
        store.handles().load(master.erased_handle_key(), Vec::new());
        let id = 7 | storage::REMOTE_USER_BIT;
        let key = SecretKey::generate().unwrap();
        let wrapped = master.wrap_data_key(id, &key).unwrap();
        let v1 = Enc::new(1)
            .str("rita@b.test")
            .bytes(&wrapped)
            .bytes(&[])
            .u64(5)
            .finish();
        store.put_schema6_remote_user(id, "rita@b.test", v1).await;
        assert_eq!(
            store.remote_user_id("rita@b.test".into()).await.unwrap(),
            None
        );

        load_addresses(&store, &master).await.unwrap();
        assert_eq!(
            store.remote_user_id("rita@b.test".into()).await.unwrap(),
            Some(id)
        );
        let (_, rec): (u64, RemoteUserRecord) = store.all_remote_users().await.unwrap().remove(0);
        assert_eq!(rec.address, "", "not stored in clear any more");
        assert_eq!(
            key.open(&address_aad(id), &rec.address_sealed).unwrap(),
            b"rita@b.test"
        );
        assert_eq!(store.schema6_remote_addresses().await, 0);
        let named = store.remote_users(vec![id]).await.unwrap();
        assert_eq!(named[0].1.address, "rita@b.test", "from memory");
    }
}
