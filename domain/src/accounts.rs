//! Accounts: registration with exactly the necessary data (phone, handle, password, plus the
//! nickname shown to others and the accepted policy version), login with rate limiting,
//! bearer-token sessions per device, and the profile with per-field visibility.
//!
//! Personal fields are sealed here under the user's data key (itself wrapped by the master
//! key) before they reach `storage`. Password hashing runs on the node's `HashPool`, a fixed
//! set of threads, so a login flood cannot exhaust memory (each hash takes 7 MiB).

use std::net::IpAddr;
use std::sync::Arc;

use crate::crypto::{self, CryptoError, MasterKey, SecretKey, Token};
use crate::hash_pool::{HashPool, PoolError};
use crate::hub::Hub;
use crate::policy::PolicyBook;
use crate::profile::{self, Profile, ProfileError, ProfilePatch, Viewer};
use crate::ratelimit::{Locked, LoginLimiter};
use crate::time::{Millis, SharedClock};
use storage::{AccountRecord, Conflict, NewAccount, SessionRecord, Store, StoreError};

/// Errors of account operations.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("this {0} is already registered")]
    Taken(Conflict),
    #[error("the policy version accepted is not the current one ({current})")]
    PolicyNotAccepted { current: String },
    /// One answer for every cause: unknown login, wrong password.
    #[error("login or password is incorrect")]
    BadCredentials,
    #[error("too many failed logins; try again in {} seconds", .0.retry_after_secs)]
    Locked(Locked),
    #[error("the token is missing, invalid or has been revoked")]
    Unauthorized,
    #[error("no such user")]
    NoSuchUser,
    #[error("no such device")]
    NoSuchDevice,
    #[error(transparent)]
    Profile(#[from] ProfileError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error("the server is shutting down")]
    ShuttingDown,
    /// Too many password checks are waiting already; retry after this many seconds.
    #[error("the server is busy checking passwords; try again in {0} seconds")]
    Busy(u64),
}

/// What a client sends to register, before validation.
#[derive(Debug, Clone)]
pub struct Registration {
    pub phone: String,
    pub handle: String,
    pub password: String,
    /// Optional (only phone, handle and password are needed to have an account): without one
    /// the nickname is the handle until the user sets another.
    pub nickname: Option<String>,
    pub accept_policy: String,
}

/// The client's own description of a device; every part optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceInfo {
    pub name: Option<String>,
    pub os: Option<String>,
    pub app_version: Option<String>,
}

/// An authenticated request's identity.
#[derive(Debug, Clone)]
pub struct Session {
    pub user: u64,
    pub handle: String,
    /// The user's data key, wrapped by the master key (useless without it): lets the send path
    /// seal a message without reading the account again.
    pub wrapped_key: Vec<u8>,
    pub device_id: String,
    pub policy_version: String,
    /// When the account's erasure is due, if the user asked for it: until then the account is
    /// locked except for cancelling.
    pub deletion_due: Option<Millis>,
}

/// A session as listed to its owner.
#[derive(Debug, Clone)]
pub struct DeviceSession {
    pub device_id: String,
    pub device: DeviceInfo,
    pub created: Millis,
    pub last_seen: Millis,
}

/// What every member of a conversation sees of a user: address, nickname, avatar.
#[derive(Debug, Clone)]
pub struct Card {
    pub handle: String,
    pub nickname: String,
    pub avatar: Option<profile::Avatar>,
}

/// The owner's view of their account.
#[derive(Debug, Clone)]
pub struct OwnAccount {
    pub handle: String,
    pub phone: String,
    pub created: Millis,
    pub policy_version: String,
    pub profile: Profile,
}

/// Another user's profile, reduced to what the viewer may see.
#[derive(Debug, Clone)]
pub struct PublicView {
    pub handle: String,
    pub nickname: String,
    pub avatar: Option<String>,
    pub fields: Vec<(profile::Field, String)>,
}

/// Most sessions kept in memory; past it the cache is emptied and refills.
const SESSION_CACHE_MAX: usize = 100_000;

/// Most unknown token hashes remembered; past it they are forgotten and refill.
const MISS_CACHE_MAX: usize = 50_000;

/// Authenticated sessions kept in memory, so a request costs no store reads. An entry goes in
/// the same call that deletes its session; `epoch` counts deletions, and a lookup that missed
/// caches its result only if no session was deleted while it read the store (otherwise a
/// concurrent logout could be undone by a stale insert).
///
/// `misses` holds hashes of well-formed tokens the store did not know (or whose account is
/// gone), so a client retrying a revoked token costs no read after the first. Remembering a
/// miss is always right: a token is random and only handed out after its session is
/// committed, and a deleted session never comes back.
#[derive(Debug, Default)]
struct SessionCache {
    entries: std::collections::HashMap<[u8; 32], (Session, Millis)>,
    misses: std::collections::HashSet<[u8; 32]>,
    epoch: u64,
    /// Users whose sessions a running store step may be deleting
    /// ([`Accounts::dropping_sessions`]): their sessions are neither used from the cache nor
    /// cached, nor let in from the store, until it returns.
    dropping: std::collections::HashSet<u64>,
}

impl SessionCache {
    fn remember_miss(&mut self, hash: [u8; 32]) {
        if self.misses.len() >= MISS_CACHE_MAX {
            self.misses.clear();
        }
        self.misses.insert(hash);
    }
}

/// How often a session's `last_seen` is rewritten at most.
const TOUCH_INTERVAL_MS: u64 = 5 * 60 * 1000;

/// The account service: a narrow set of handles, shared by the HTTP handlers.
#[derive(Debug, Clone)]
pub struct Accounts {
    store: Store,
    master: MasterKey,
    phone_index: SecretKey,
    clock: SharedClock,
    limiter: Arc<LoginLimiter>,
    hashing: Arc<HashPool>,
    policy: PolicyBook,
    hub: Arc<Hub>,
    cache: Arc<std::sync::Mutex<SessionCache>>,
}

impl Accounts {
    pub fn new(
        store: Store,
        master: MasterKey,
        clock: SharedClock,
        limiter: Arc<LoginLimiter>,
        hashing: Arc<HashPool>,
        policy: PolicyBook,
        hub: Arc<Hub>,
    ) -> Self {
        let phone_index = master.phone_index_key();
        Accounts {
            store,
            master,
            phone_index,
            clock,
            limiter,
            hashing,
            policy,
            hub,
            cache: Default::default(),
        }
    }

    async fn with_hash_slot<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, AccountError> {
        self.hashing.run(f).await.map_err(|e| match e {
            PoolError::Gone => AccountError::ShuttingDown,
            PoolError::Full => AccountError::Busy(crate::hash_pool::FULL_RETRY_AFTER_SECS),
        })
    }

    /// Replaces a hash made with older parameters, now that the password is known to be right.
    /// A hash changed meanwhile (or an account erased meanwhile) is left as it is.
    async fn rehash(&self, user: u64, old: String, password: String) -> Result<(), AccountError> {
        let new = self
            .with_hash_slot(move || crypto::hash_password(&password))
            .await??;
        self.store.replace_password_hash(user, old, new).await?;
        Ok(())
    }

    fn data_key(&self, acct: &AccountRecord) -> Result<SecretKey, AccountError> {
        Ok(self.master.unwrap_data_key(acct.id, &acct.wrapped_key)?)
    }

    /// Registers a new account; returns its handle.
    pub async fn register(&self, r: Registration) -> Result<String, AccountError> {
        let phone = validate_phone(&r.phone)?;
        let handle = validate_handle(&r.handle)?;
        validate_password(&r.password)?;
        let nickname = match &r.nickname {
            Some(n) => profile::nickname(n).map_err(|e| AccountError::Invalid {
                field: "nickname",
                reason: e.reason,
            })?,
            None => handle.clone(),
        };
        let policy = self.policy.current();
        if r.accept_policy != policy.version {
            return Err(AccountError::PolicyNotAccepted {
                current: policy.version.clone(),
            });
        }
        let phone_index = self.phone_index.blind_index(phone.as_bytes());
        // Cheap duplicate checks first, so a taken handle does not cost a password hash.
        if self.store.user_by_handle(handle.clone()).await?.is_some()
            || self
                .store
                .handle_erased(self.erased_handle_hash(&handle))
                .await?
        {
            return Err(AccountError::Taken(Conflict::Handle));
        }
        if self.store.user_by_phone_index(phone_index).await?.is_some() {
            return Err(AccountError::Taken(Conflict::Phone));
        }
        let password = r.password;
        let phc = self
            .with_hash_slot(move || crypto::hash_password(&password))
            .await??;
        let now = self.clock.now();
        let data_key = SecretKey::generate()?;
        let profile = Profile::new(nickname);
        // A random 64-bit id: reveals neither the number of users nor the order they joined.
        // On the (astronomically unlikely) collision, draw again.
        for _ in 0..4 {
            let mut idb = [0u8; 8];
            crypto::random_bytes(&mut idb)?;
            // The top bit is kept clear: it marks users of other nodes (`REMOTE_USER_BIT`).
            let id = u64::from_be_bytes(idb) & !storage::REMOTE_USER_BIT;
            let new = NewAccount {
                account: AccountRecord {
                    id,
                    handle: handle.clone(),
                    handle_index: [0; 32], // made by the store from `handle`
                    handle_sealed: data_key.seal(&aad(b"handle", id), handle.as_bytes())?,
                    phone_sealed: data_key.seal(&aad(b"phone", id), phone.as_bytes())?,
                    password_phc: phc.clone(),
                    wrapped_key: self.master.wrap_data_key(id, &data_key)?,
                    created: now,
                    policy_version: policy.version.clone(),
                    policy_accepted: now,
                },
                phone_index,
                profile_sealed: data_key.seal(&aad(b"profile", id), &profile.encode())?,
                policy_seq: policy.seq,
            };
            match self.store.insert_account(new).await {
                Ok(()) => {
                    // Versions already announced but not in effect yet: the newcomer is told too.
                    for v in self.policy.upcoming() {
                        self.store.notify_user(id, PolicyBook::notice(&v)).await?;
                    }
                    return Ok(handle);
                }
                Err(StoreError::Conflict(Conflict::UserId)) => continue,
                Err(StoreError::Conflict(c)) => return Err(AccountError::Taken(c)),
                Err(e) => return Err(e.into()),
            }
        }
        Err(AccountError::Store(StoreError::Conflict(Conflict::UserId)))
    }

    /// Checks a login (handle or phone) and password; on success opens a session for a new
    /// device and returns its token and device id.
    pub async fn login(
        &self,
        login: &str,
        password: String,
        device: DeviceInfo,
        client: IpAddr,
    ) -> Result<(Token, String), AccountError> {
        self.limiter
            .check(login, client)
            .map_err(AccountError::Locked)?;
        let user = if login.starts_with('+') {
            match validate_phone(login) {
                Ok(p) => {
                    self.store
                        .user_by_phone_index(self.phone_index.blind_index(p.as_bytes()))
                        .await?
                }
                Err(_) => None,
            }
        } else {
            self.store.user_by_handle(login.to_string()).await?
        };
        let account = match user {
            Some(id) => self.store.account(id).await?,
            None => None,
        };
        let phc = account.as_ref().map(|a| a.password_phc.clone());
        let (ok, password) = self
            .with_hash_slot(move || (crypto::verify_password(&password, phc.as_deref()), password))
            .await?;
        let Some(account) = account.filter(|_| ok) else {
            self.limiter.failed(login, client);
            return Err(AccountError::BadCredentials);
        };
        self.limiter.succeeded(login, client);
        if crypto::needs_rehash(&account.password_phc) {
            match self
                .rehash(account.id, account.password_phc.clone(), password)
                .await
            {
                // The password was right: a full hash queue only puts the upgrade off to a
                // later login instead of refusing this one.
                Ok(()) | Err(AccountError::Busy(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let key = self.data_key(&account)?;
        let token = Token::generate()?;
        let device_id = crypto::random_id(12)?;
        let now = self.clock.now();
        let device_sealed = if device == DeviceInfo::default() {
            Vec::new()
        } else {
            key.seal(&aad(b"device", account.id), &encode_device(&device))?
        };
        self.store
            .insert_session(SessionRecord {
                token_hash: Token::hash_of(token.as_str()),
                user: account.id,
                device_id: device_id.clone(),
                created: now,
                last_seen: now,
                device_sealed,
            })
            .await?;
        // Tell the account's other devices, so a sign-in the user did not make stands out.
        let pos = self
            .store
            .notify_user(account.id, crate::notices::sign_in(now))
            .await?;
        self.hub.publish(&[account.id], pos);
        Ok((token, device_id))
    }

    /// Whether resolving `token` would read the store: it is well formed and neither a cached
    /// session nor a token already known to be unknown. (The HTTP layer counts such lookups
    /// against the client's rate limit.)
    pub fn lookup_needed(&self, token: &str) -> bool {
        if !Token::is_well_formed(token) {
            return false;
        }
        let hash = Token::hash_of(token);
        let cache = self.lock_cache();
        !cache.entries.contains_key(&hash) && !cache.misses.contains(&hash)
    }

    /// Resolves a bearer token to its session: no store read for a token of the wrong shape,
    /// a cached session or a token already found unknown; otherwise one read.
    pub async fn authenticate(&self, token: &str) -> Result<Session, AccountError> {
        if !Token::is_well_formed(token) {
            return Err(AccountError::Unauthorized);
        }
        let hash = Token::hash_of(token);
        let now = self.clock.now();
        // Decide under the lock, await after it: a guard must not live across an await.
        let cached = {
            let mut cache = self.lock_cache();
            if cache.misses.contains(&hash) {
                return Err(AccountError::Unauthorized);
            }
            let cache = &mut *cache;
            match cache.entries.get_mut(&hash) {
                Some((session, _)) if cache.dropping.contains(&session.user) => {
                    return Err(AccountError::Unauthorized);
                }
                Some((session, touched)) => {
                    let stale = now.saturating_sub(*touched) >= TOUCH_INTERVAL_MS;
                    if stale {
                        *touched = now;
                    }
                    Ok((session.clone(), stale))
                }
                None => Err(cache.epoch),
            }
        };
        let epoch = match cached {
            Ok((session, stale)) => {
                if stale {
                    self.store.touch_session(hash, now).await?;
                }
                return Ok(session);
            }
            Err(epoch) => epoch,
        };
        let found = self
            .store
            .session_lookup(hash)
            .await?
            .filter(|l| !l.account.wrapped_key.is_empty());
        let Some(l) = found else {
            self.lock_cache().remember_miss(hash);
            return Err(AccountError::Unauthorized);
        };
        if now.saturating_sub(l.session.last_seen) >= TOUCH_INTERVAL_MS {
            self.store.touch_session(hash, now).await?;
        }
        let session = Session {
            user: l.session.user,
            handle: l.account.handle,
            wrapped_key: l.account.wrapped_key,
            device_id: l.session.device_id,
            policy_version: l.account.policy_version,
            deletion_due: l.deletion_due,
        };
        {
            let mut cache = self.lock_cache();
            if cache.dropping.contains(&session.user) {
                return Err(AccountError::Unauthorized);
            }
            if cache.epoch == epoch {
                if cache.entries.len() >= SESSION_CACHE_MAX {
                    cache.entries.clear();
                }
                cache.entries.insert(hash, (session.clone(), now));
            }
        }
        Ok(session)
    }

    /// The keyed hash an erased account's handle is kept as.
    pub fn erased_handle_hash(&self, handle: &str) -> [u8; 32] {
        // The handle index and the erased-handle hash are one keyed hash (`HandleBook`).
        self.store.handles().index(handle)
    }

    /// Loads the handle index key and every live account's handle (opened with its data
    /// key) into the store's in-memory [`storage::HandleBook`]. Called once, while the
    /// node's services are wired, before any lookup by handle.
    pub async fn load_handles(&self) -> Result<(), AccountError> {
        let mut handles = Vec::new();
        for a in self.store.accounts().await? {
            if a.wrapped_key.is_empty() {
                continue; // being erased: the key, and with it the handle, is gone
            }
            let key = self.data_key(&a)?;
            let clear = key.open(&aad(b"handle", a.id), &a.handle_sealed)?;
            let handle = String::from_utf8(clear).map_err(|_| StoreError::Corrupt("account"))?;
            handles.push((a.id, handle));
        }
        self.store
            .handles()
            .load(self.master.erased_handle_key(), handles);
        Ok(())
    }

    /// An admin's free text about `user` (`note` names it), sealed under the user's data key;
    /// `None` once the key is gone (the erasure has begun).
    pub async fn seal_note(
        &self,
        user: u64,
        note: &str,
        text: &str,
    ) -> Result<Option<Vec<u8>>, AccountError> {
        match self.store.account(user).await? {
            Some(a) if !a.wrapped_key.is_empty() => Ok(Some(
                self.data_key(&a)?
                    .seal(&aad(note.as_bytes(), user), text.as_bytes())?,
            )),
            _ => Ok(None),
        }
    }

    /// The text of a note sealed by [`Accounts::seal_note`]; `None` once the key is gone.
    pub async fn open_note(
        &self,
        user: u64,
        note: &str,
        sealed: &[u8],
    ) -> Result<Option<String>, AccountError> {
        match self.store.account(user).await? {
            Some(a) if !a.wrapped_key.is_empty() => {
                let clear = self
                    .data_key(&a)?
                    .open(&aad(note.as_bytes(), user), sealed)?;
                Ok(Some(
                    String::from_utf8(clear).map_err(|_| StoreError::Corrupt("admin note"))?,
                ))
            }
            _ => Ok(None),
        }
    }

    /// Checks `user`'s password (the same work whether or not the account exists).
    pub async fn check_password(&self, user: u64, password: &str) -> Result<(), AccountError> {
        let phc = self
            .store
            .account(user)
            .await?
            .map(|a| a.password_phc)
            .filter(|p| !p.is_empty());
        let password = password.to_string();
        if self
            .with_hash_slot(move || crypto::verify_password(&password, phc.as_deref()))
            .await?
        {
            Ok(())
        } else {
            Err(AccountError::BadCredentials)
        }
    }

    /// The user's phone number masked for an admin: `+86 138****0000` (country code, first
    /// three and last four digits). `None` if the account or its key is gone.
    pub async fn masked_phone(&self, user: u64) -> Result<Option<String>, AccountError> {
        let Some(acct) = self.store.account(user).await? else {
            return Ok(None);
        };
        if acct.wrapped_key.is_empty() {
            return Ok(None);
        }
        let key = self.data_key(&acct)?;
        let phone = String::from_utf8(key.open(&aad(b"phone", user), &acct.phone_sealed)?)
            .map_err(|_| AccountError::Crypto(CryptoError::Unseal))?;
        Ok(Some(mask_phone(&phone)))
    }

    /// The blind index of the user's phone number, which finds their account by phone; `None`
    /// if the account or its key is gone. Erasure removes exactly that row, not a scan for it.
    pub async fn phone_index_of(&self, user: u64) -> Result<Option<[u8; 32]>, AccountError> {
        let Some(acct) = self.store.account(user).await? else {
            return Ok(None);
        };
        if acct.wrapped_key.is_empty() {
            return Ok(None);
        }
        let key = self.data_key(&acct)?;
        let phone = key.open(&aad(b"phone", user), &acct.phone_sealed)?;
        Ok(Some(self.phone_index.blind_index(&phone)))
    }

    /// Forgets every cached session of `user` (their account changed: erasure scheduled,
    /// cancelled or begun), so the next request reads the store again.
    pub fn forget_user(&self, user: u64) {
        let mut cache = self.lock_cache();
        cache.epoch += 1;
        cache.entries.retain(|_, (s, _)| s.user != user);
        self.master.forget(user);
    }

    /// Runs `step`, a store write that may delete every session of `user` and destroy their
    /// data key in one commit (an erasure's first step), without a request ever being let in
    /// on a session of theirs that the commit deleted: from the start of this call until it
    /// returns, their sessions are refused (cached or not) and none is cached, and every
    /// cached one is removed before it returns — so the sessions leave the cache in the same
    /// call that deletes them, as [`Accounts::end_session`] requires. While it runs, a request
    /// of the user is answered 401 even just before the commit: the erasure is due by then.
    pub async fn dropping_sessions<T, E>(
        &self,
        user: u64,
        step: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        /// Ends the refusal even if the step's future is dropped half-way.
        struct Dropping<'a>(&'a Accounts, u64);
        impl Drop for Dropping<'_> {
            fn drop(&mut self) {
                let mut cache = self.0.lock_cache();
                cache.epoch += 1;
                let user = self.1;
                cache.entries.retain(|_, (s, _)| s.user != user);
                cache.dropping.remove(&user);
            }
        }
        {
            let mut cache = self.lock_cache();
            cache.epoch += 1;
            cache.dropping.insert(user);
        }
        let _guard = Dropping(self, user);
        step.await
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, SessionCache> {
        // Entries are whole values: a panic elsewhere cannot leave one half-written.
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Ends a session (logout of this device, or of another of the user's devices).
    pub async fn end_session(&self, user: u64, device_id: &str) -> Result<(), AccountError> {
        // Bump the epoch first, so a lookup already reading the store cannot re-cache it.
        self.lock_cache().epoch += 1;
        let deleted = self
            .store
            .delete_session(user, device_id.to_string())
            .await?;
        let removed = {
            let mut cache = self.lock_cache();
            cache.epoch += 1;
            deleted.map(|hash| cache.entries.remove(&hash))
        };
        match removed {
            Some(_) => Ok(()),
            None => Err(AccountError::NoSuchDevice),
        }
    }

    pub async fn sessions(&self, user: u64) -> Result<Vec<DeviceSession>, AccountError> {
        let acct = self
            .store
            .account(user)
            .await?
            .ok_or(AccountError::NoSuchUser)?;
        let key = self.data_key(&acct)?;
        let mut out = Vec::new();
        for s in self.store.sessions_of(user).await? {
            let device = if s.device_sealed.is_empty() {
                DeviceInfo::default()
            } else {
                decode_device(&key.open(&aad(b"device", user), &s.device_sealed)?)?
            };
            out.push(DeviceSession {
                device_id: s.device_id,
                device,
                created: s.created,
                last_seen: s.last_seen,
            });
        }
        out.sort_by_key(|s| s.created);
        Ok(out)
    }

    async fn load_profile(
        &self,
        acct: &AccountRecord,
        key: &SecretKey,
    ) -> Result<Profile, AccountError> {
        let sealed = self
            .store
            .profile(acct.id)
            .await?
            .ok_or(StoreError::Corrupt("profile"))?;
        Ok(Profile::decode(
            &key.open(&aad(b"profile", acct.id), &sealed)?,
        )?)
    }

    /// A user's account, unwrapped data key and opened profile; `None` if there is no account.
    async fn account_with_profile(
        &self,
        user: u64,
    ) -> Result<Option<(AccountRecord, SecretKey, Profile)>, AccountError> {
        let Some(acct) = self.store.account(user).await? else {
            return Ok(None);
        };
        // An account whose erasure has begun has no key any more: it is gone to everyone.
        if acct.wrapped_key.is_empty() {
            return Ok(None);
        }
        let key = self.data_key(&acct)?;
        let profile = self.load_profile(&acct, &key).await?;
        Ok(Some((acct, key, profile)))
    }

    /// The owner's view of what is loaded already.
    fn own_view(
        acct: AccountRecord,
        key: &SecretKey,
        profile: Profile,
    ) -> Result<OwnAccount, AccountError> {
        let phone = key.open(&aad(b"phone", acct.id), &acct.phone_sealed)?;
        Ok(OwnAccount {
            phone: String::from_utf8(phone).map_err(|_| StoreError::Corrupt("account"))?,
            handle: acct.handle,
            created: acct.created,
            policy_version: acct.policy_version,
            profile,
        })
    }

    /// The user's notices, oldest first: (pos, notice).
    pub async fn notices(
        &self,
        user: u64,
    ) -> Result<Vec<(u64, storage::EventRecord)>, AccountError> {
        Ok(self.store.notices_of(user).await?)
    }

    /// Seals `plain` under `user`'s data key, bound to `kind` and the user.
    pub async fn seal_personal(
        &self,
        user: u64,
        kind: &[u8],
        plain: &[u8],
    ) -> Result<Vec<u8>, AccountError> {
        let key = self.live_key(user).await?;
        Ok(key.seal(&aad(kind, user), plain)?)
    }

    /// Opens what [`Accounts::seal_personal`] sealed.
    pub async fn open_personal(
        &self,
        user: u64,
        kind: &[u8],
        sealed: &[u8],
    ) -> Result<Vec<u8>, AccountError> {
        let key = self.live_key(user).await?;
        Ok(key.open(&aad(kind, user), sealed)?)
    }

    async fn live_key(&self, user: u64) -> Result<SecretKey, AccountError> {
        let acct = self
            .store
            .account(user)
            .await?
            .filter(|a| !a.wrapped_key.is_empty())
            .ok_or(AccountError::NoSuchUser)?;
        self.data_key(&acct)
    }

    /// The owner's full view.
    pub async fn own(&self, user: u64) -> Result<OwnAccount, AccountError> {
        let (acct, key, profile) = self
            .account_with_profile(user)
            .await?
            .ok_or(AccountError::NoSuchUser)?;
        Self::own_view(acct, &key, profile)
    }

    /// Applies a validated patch to the user's profile.
    pub async fn update_profile(
        &self,
        user: u64,
        patch: ProfilePatch,
    ) -> Result<OwnAccount, AccountError> {
        Ok(self
            .update_profile_pushed(user, patch, |_, _| Ok(Vec::new()))
            .await?
            .0)
    }

    /// [`Accounts::update_profile`], queueing in the same transaction the envelopes `push`
    /// builds from the user's data key and new card when the nickname or avatar changed (the
    /// only parts of a profile other nodes hold). Returns the peers whose queues grew.
    pub async fn update_profile_pushed(
        &self,
        user: u64,
        patch: ProfilePatch,
        push: impl FnOnce(&SecretKey, &Card) -> Result<Vec<storage::Outgoing>, storage::Refusal>,
    ) -> Result<(OwnAccount, Vec<String>), AccountError> {
        let (acct, key, mut profile) = self
            .account_with_profile(user)
            .await?
            .ok_or(AccountError::NoSuchUser)?;
        let before = (profile.nickname.clone(), profile.avatar.clone());
        profile.apply(patch)?;
        let rows = if before != (profile.nickname.clone(), profile.avatar.clone()) {
            push(
                &key,
                &Card {
                    handle: acct.handle.clone(),
                    nickname: profile.nickname.clone(),
                    avatar: profile.avatar.clone(),
                },
            )
            .map_err(|r| AccountError::Store(StoreError::Refused(r)))?
        } else {
            Vec::new()
        };
        let sealed = key.seal(&aad(b"profile", user), &profile.encode())?;
        let avatar = profile
            .avatar
            .as_ref()
            .and_then(|a| a.media())
            .map(str::to_string);
        // A public education is a suggestion source; any other visibility is not (1.3.c).
        let education = match profile.fields.get(&profile::Field::Education) {
            Some((value, profile::Visibility::Public)) => Some(crate::discovery::education_index(
                &self.master.education_index_key(),
                value,
            )),
            _ => None,
        };
        let peers = self
            .store
            .put_profile_queued(user, sealed, education, avatar, rows, self.clock.now())
            .await?
            .ok_or(AccountError::NoSuchUser)?;
        Ok((Self::own_view(acct, &key, profile)?, peers))
    }

    /// A user's card (handle, nickname, avatar); `None` if the account is gone.
    pub async fn card(&self, user: u64) -> Result<Option<Card>, AccountError> {
        let Some((acct, _, profile)) = self.account_with_profile(user).await? else {
            return Ok(None);
        };
        Ok(Some(Card {
            handle: acct.handle,
            nickname: profile.nickname,
            avatar: profile.avatar,
        }))
    }

    /// Another local user's profile as `viewer` may see it.
    pub async fn view(&self, viewer: u64, handle: &str) -> Result<PublicView, AccountError> {
        self.view_by(Some(viewer), handle).await
    }

    /// [`Accounts::view`] for a viewer who may be no one this node knows (`None`: sees what
    /// the public sees). A viewer may be a remote user's local id: their friendship with a
    /// local user is stored like any other.
    pub async fn view_by(
        &self,
        viewer: Option<u64>,
        handle: &str,
    ) -> Result<PublicView, AccountError> {
        let id = self
            .store
            .user_by_handle(handle.to_string())
            .await?
            .ok_or(AccountError::NoSuchUser)?;
        let (acct, _, profile) = self
            .account_with_profile(id)
            .await?
            .ok_or(AccountError::NoSuchUser)?;
        // "friends" fields for friends only; a blocked user is never a friend (blocking ends
        // the friendship), so they see what the public sees.
        let relation = if viewer == Some(id) {
            Viewer::Owner
        } else if let Some(viewer) = viewer
            && self.store.are_friends(viewer, id).await?
        {
            Viewer::Friend
        } else {
            Viewer::Other
        };
        Ok(PublicView {
            fields: profile
                .visible_fields(relation)
                .into_iter()
                .map(|(f, v)| (f, v.to_string()))
                .collect(),
            handle: acct.handle,
            nickname: profile.nickname,
            avatar: profile.avatar.as_ref().map(|a| a.shown().to_string()),
        })
    }

    pub fn now(&self) -> Millis {
        self.clock.now()
    }
}

/// Associated data binding a sealed field to its kind and owner.
/// `+8613800000000` → `+86 138****0000`.
pub fn mask_phone(e164: &str) -> String {
    let (cc, national) = match phonenumber::parse(None, e164) {
        Ok(p) => (
            p.code().value().to_string(),
            p.national().value().to_string(),
        ),
        Err(_) => (String::new(), e164.trim_start_matches('+').to_string()),
    };
    let n = national.chars().count();
    let head: String = national.chars().take(3.min(n)).collect();
    let tail: String = national.chars().skip(n.saturating_sub(4)).collect();
    format!("+{cc} {head}****{tail}")
}

fn aad(kind: &[u8], user: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(kind.len() + 9);
    v.extend_from_slice(kind);
    v.push(b'/');
    v.extend_from_slice(&user.to_be_bytes());
    v
}

fn encode_device(d: &DeviceInfo) -> Vec<u8> {
    use storage::Enc;
    let opt = |e: Enc, v: &Option<String>| match v {
        Some(s) => e.bool(true).str(s),
        None => e.bool(false),
    };
    let e = opt(Enc::new(1), &d.name);
    let e = opt(e, &d.os);
    opt(e, &d.app_version).finish()
}

fn decode_device(b: &[u8]) -> Result<DeviceInfo, StoreError> {
    let mut d = storage::Dec::new(b, "device", 1)?;
    let opt = |d: &mut storage::Dec<'_>| -> Result<Option<String>, StoreError> {
        if d.bool()? {
            Ok(Some(d.string()?))
        } else {
            Ok(None)
        }
    };
    let info = DeviceInfo {
        name: opt(&mut d)?,
        os: opt(&mut d)?,
        app_version: opt(&mut d)?,
    };
    d.end()?;
    Ok(info)
}

/// Checks a phone number: strict E.164 (`+` and 8–15 digits, no spaces) that is a valid
/// number in its country's numbering plan. Returns it unchanged.
pub fn validate_phone(s: &str) -> Result<String, AccountError> {
    let invalid = |reason: &str| AccountError::Invalid {
        field: "phone",
        reason: reason.to_string(),
    };
    let digits = s
        .strip_prefix('+')
        .ok_or_else(|| invalid("must be in E.164 form, such as +8613800138000"))?;
    if !(8..=15).contains(&digits.len())
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || digits.starts_with('0')
    {
        return Err(invalid(
            "must be in E.164 form: '+' then 8 to 15 digits, no spaces",
        ));
    }
    let parsed = phonenumber::parse(None, s).map_err(|_| invalid("is not a phone number"))?;
    if !phonenumber::is_valid(&parsed) {
        return Err(invalid(
            "is not a valid number in its country's numbering plan",
        ));
    }
    let formatted = parsed.format().mode(phonenumber::Mode::E164).to_string();
    if formatted != s {
        return Err(invalid("must be in E.164 form, such as +8613800138000"));
    }
    Ok(formatted)
}

/// Checks a handle: 3–32 of `[a-z0-9._-]`.
pub fn validate_handle(s: &str) -> Result<String, AccountError> {
    let ok = (3..=32).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if ok {
        Ok(s.to_string())
    } else {
        Err(AccountError::Invalid {
            field: "handle",
            reason: "must be 3 to 32 of a-z, 0-9, '.', '_', '-'".into(),
        })
    }
}

/// Checks a password: 8–128 characters.
pub fn validate_password(s: &str) -> Result<(), AccountError> {
    let n = s.chars().count();
    if (8..=128).contains(&n) {
        Ok(())
    } else {
        Err(AccountError::Invalid {
            field: "password",
            reason: "must be 8 to 128 characters".into(),
        })
    }
}

/// Checks one part of a device description (1–64 characters).
pub fn validate_device_part(field: &'static str, s: &str) -> Result<String, AccountError> {
    profile::text(field, s, 1, 64).map_err(|e| AccountError::Invalid {
        field,
        reason: e.reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_must_be_valid_e164() {
        assert_eq!(validate_phone("+8613800138000").unwrap(), "+8613800138000");
        assert!(validate_phone("+14155552671").is_ok());
        for bad in [
            "8613800138000",
            "+86 138 0013 8000",
            "+861380013800a",
            "+0123456789",
            "+1234",
            "+999999999999",
            "",
            "+",
        ] {
            assert!(validate_phone(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn handle_and_password_rules() {
        assert!(validate_handle("li.wei_2-x").is_ok());
        for bad in ["ab", "Alice", "a b", "ali@ce", &"a".repeat(33), "名字名字"] {
            assert!(validate_handle(bad).is_err(), "{bad}");
        }
        assert!(validate_password("12345678").is_ok());
        assert!(
            validate_password("密码密码密码密码").is_ok(),
            "characters, not bytes"
        );
        assert!(validate_password("1234567").is_err());
        assert!(validate_password(&"x".repeat(129)).is_err());
    }

    /// An account service on a fresh store, with one registered user signed in.
    async fn service(dir: &std::path::Path) -> (Accounts, Store, Token) {
        service_with(dir, Arc::new(HashPool::start(1, 4).unwrap())).await
    }

    async fn service_with(dir: &std::path::Path, pool: Arc<HashPool>) -> (Accounts, Store, Token) {
        let (store, _) = Store::open(&dir.join("n.redb"), |_| Ok(None)).unwrap();
        let clock: SharedClock = Arc::new(crate::time::ManualClock::new(Millis(1_800_000_000_000)));
        let hub = Arc::new(Hub::default());
        let configured = crate::policy::Policy::load(&crate::config::Config::default()).unwrap();
        let policy = PolicyBook::load(store.clone(), clock.clone(), hub.clone(), &configured)
            .await
            .unwrap();
        let accounts = Accounts::new(
            store.clone(),
            MasterKey::from_key(SecretKey::generate().unwrap()),
            clock.clone(),
            Arc::new(LoginLimiter::new(5, 900, clock)),
            pool,
            policy.clone(),
            hub,
        );
        accounts
            .register(Registration {
                phone: "+8613800138000".into(),
                handle: "lin".into(),
                password: "password-lin".into(),
                nickname: Some("Lin".into()),
                accept_policy: policy.current().version.clone(),
            })
            .await
            .unwrap();
        let (token, _) = sign_in(&accounts).await.unwrap();
        (accounts, store, token)
    }

    /// Lin signs in from loopback.
    async fn sign_in(accounts: &Accounts) -> Result<(Token, String), AccountError> {
        accounts
            .login(
                "lin",
                "password-lin".into(),
                DeviceInfo::default(),
                IpAddr::from([127, 0, 0, 1]),
            )
            .await
    }

    /// Store reads `f` costs.
    async fn reads<T>(store: &Store, f: impl Future<Output = T>) -> (T, u64) {
        let before = store.read_count();
        let out = f.await;
        (out, store.read_count() - before)
    }

    #[tokio::test]
    async fn a_cached_session_is_never_let_in_once_a_step_dropping_it_has_begun() {
        let dir = tempfile::tempdir().unwrap();
        let (accounts, store, token) = service(dir.path()).await;
        let session = accounts.authenticate(token.as_str()).await.unwrap();
        assert!(!accounts.lookup_needed(token.as_str()), "cached");
        let (user, device) = (session.user, session.device_id.clone());
        // The step commits (the session is deleted), then — before the call returns — a
        // request comes in on the cached session, exactly the order that let one in before.
        let during = accounts
            .dropping_sessions(user, async {
                store.delete_session(user, device).await?;
                Ok::<_, AccountError>(accounts.authenticate(token.as_str()).await)
            })
            .await
            .unwrap();
        assert!(
            matches!(during, Err(AccountError::Unauthorized)),
            "{during:?}"
        );
        assert!(matches!(
            accounts.authenticate(token.as_str()).await,
            Err(AccountError::Unauthorized)
        ));
        // Another session of the user works again once the step is over.
        let (again, _) = sign_in(&accounts).await.unwrap();
        assert!(accounts.authenticate(again.as_str()).await.is_ok());
    }

    #[tokio::test]
    async fn an_unknown_token_costs_one_read_once_and_then_none() {
        let dir = tempfile::tempdir().unwrap();
        let (accounts, store, _) = service(dir.path()).await;
        let unknown = Token::generate().unwrap();
        assert!(accounts.lookup_needed(unknown.as_str()));
        let (r, n) = reads(&store, accounts.authenticate(unknown.as_str())).await;
        assert!(matches!(r, Err(AccountError::Unauthorized)));
        assert_eq!(n, 1, "one read to find it unknown");
        assert!(!accounts.lookup_needed(unknown.as_str()));
        for _ in 0..3 {
            let (r, n) = reads(&store, accounts.authenticate(unknown.as_str())).await;
            assert!(matches!(r, Err(AccountError::Unauthorized)));
            assert_eq!(n, 0, "known to be unknown");
        }
    }

    #[tokio::test]
    async fn a_token_of_the_wrong_shape_costs_no_read() {
        let dir = tempfile::tempdir().unwrap();
        let (accounts, store, token) = service(dir.path()).await;
        let real = token.as_str();
        let mut wrong_char = real.to_string();
        wrong_char.replace_range(0..1, "!");
        for bad in [
            String::new(),
            "garbage".to_string(),
            "A".repeat(42),
            "A".repeat(44),
            wrong_char,
            format!("{}=", &real[..42]),
        ] {
            assert!(!accounts.lookup_needed(&bad), "{bad}");
            let (r, n) = reads(&store, accounts.authenticate(&bad)).await;
            assert!(matches!(r, Err(AccountError::Unauthorized)), "{bad}");
            assert_eq!(n, 0, "{bad}");
        }
    }

    #[tokio::test]
    async fn a_session_costs_one_read_on_first_use_and_none_after() {
        let dir = tempfile::tempdir().unwrap();
        let (accounts, store, token) = service(dir.path()).await;
        assert!(accounts.lookup_needed(token.as_str()));
        let (s, n) = reads(&store, accounts.authenticate(token.as_str())).await;
        assert_eq!(s.unwrap().handle, "lin");
        assert_eq!(n, 1, "session, account and erasure in one read");
        let (s, n) = reads(&store, accounts.authenticate(token.as_str())).await;
        assert_eq!(s.unwrap().handle, "lin");
        assert_eq!(n, 0);
        assert!(!accounts.lookup_needed(token.as_str()));
        // Signed out: refused, and then known to be unknown.
        let s = accounts.authenticate(token.as_str()).await.unwrap();
        accounts.end_session(s.user, &s.device_id).await.unwrap();
        let (r, n) = reads(&store, accounts.authenticate(token.as_str())).await;
        assert!(matches!(r, Err(AccountError::Unauthorized)));
        assert_eq!(n, 1);
        let (r, n) = reads(&store, accounts.authenticate(token.as_str())).await;
        assert!(matches!(r, Err(AccountError::Unauthorized)));
        assert_eq!(n, 0);
    }

    #[tokio::test]
    async fn a_login_finding_the_hash_queue_full_is_refused_busy_at_once() {
        let dir = tempfile::tempdir().unwrap();
        // One hashing thread, nobody may wait for it.
        let pool = Arc::new(HashPool::start(1, 0).unwrap());
        let (accounts, _, _) = service_with(dir.path(), pool.clone()).await;
        let (started, is_running) = std::sync::mpsc::channel::<()>();
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let busy = tokio::spawn({
            let pool = pool.clone();
            async move {
                pool.run(move || {
                    let _ = started.send(());
                    let _ = wait.recv_timeout(std::time::Duration::from_secs(10));
                })
                .await
            }
        });
        tokio::task::spawn_blocking(move || is_running.recv().unwrap())
            .await
            .unwrap();
        let r = sign_in(&accounts).await;
        let Err(AccountError::Busy(secs)) = r else {
            panic!("not refused busy: {r:?}");
        };
        assert!(secs >= 1);
        release.send(()).unwrap();
        busy.await.unwrap().unwrap();
        assert!(sign_in(&accounts).await.is_ok());
    }

    #[test]
    fn device_description_round_trips() {
        let d = DeviceInfo {
            name: Some("Pixel".into()),
            os: None,
            app_version: Some("1.2".into()),
        };
        assert_eq!(decode_device(&encode_device(&d)).unwrap(), d);
    }
}
