//! Accounts, device sessions and the consent ledger as stored records, and the `Store`
//! operations on them.
//!
//! A handle is never written in clear: the account record holds it sealed under the user's
//! data key, and `handleindex_userid` finds an account by HMAC(handle key, handle). The
//! [`HandleBook`] keeps the clear handles of live accounts in memory only (filled when the
//! node starts, by whoever holds the master key), for the lookups that run inside storage
//! transactions. So once an erasure has removed the record and the key, no page of the file
//! (freed pages included) holds the handle readably.

use std::collections::HashMap;
use std::sync::{OnceLock, RwLock};

use redb::{ReadableTable, WriteTransaction};

use super::catalog::*;
use super::codec::{Dec, Enc};
use super::kv::Order;
use super::{Conflict, Store, StoreError};
use primitives::time::Millis;

/// Rows of a user's consent history read at a time (behind the key-value seam since schema
/// 13: every read names its limit).
const CONSENT_PAGE: usize = 256;

/// Removes at most `budget` rows of `user`'s consent history (erasure), taking what it
/// removed from the budget; true when none is left.
pub fn erase_consent_history(
    tx: &impl super::kv::Write,
    user: u64,
    budget: &mut usize,
) -> Result<bool, StoreError> {
    USERID_SEQ_CONSENTEVENT.remove_prefixed_within(tx, &user, budget)
}

/// The clear handles of live local accounts and the addresses of known users of other nodes
/// (ids with [`REMOTE_USER_BIT`]; schema 7), in memory only, and the key their index is made
/// with. Shared by the `Store` (lookups by handle, names inside transactions) and the fan-out.
#[derive(Debug, Default)]
pub struct HandleBook {
    key: OnceLock<primitives::crypto::SecretKey>,
    names: RwLock<HashMap<u64, String>>,
}

impl HandleBook {
    /// Sets the index key (once, when the node's services are wired) and the handles of the
    /// accounts already stored.
    pub fn load(&self, key: primitives::crypto::SecretKey, handles: Vec<(u64, String)>) {
        let _ = self.key.set(key);
        let mut names = self.names.write().unwrap_or_else(|p| p.into_inner());
        names.extend(handles);
    }

    /// The blind index of `handle`: what the handle table and the erased-handle table are
    /// keyed by.
    pub fn index(&self, handle: &str) -> [u8; 32] {
        self.key().blind_index(handle.to_lowercase().as_bytes())
    }

    fn key(&self) -> &primitives::crypto::SecretKey {
        // A store opened without the node's wiring (unit tests, a tool reading a file) gets a
        // key of its own: lookups by handle then find nothing that was indexed by the node.
        self.key.get_or_init(|| {
            primitives::crypto::SecretKey::generate()
                .unwrap_or_else(|_| unreachable!("the OS random source failed"))
        })
    }

    /// The handle of a live local account, if known.
    pub fn get(&self, user: u64) -> Option<String> {
        self.names
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&user)
            .cloned()
    }

    pub fn insert(&self, user: u64, handle: String) {
        self.names
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(user, handle);
    }

    pub fn remove(&self, user: u64) {
        self.names
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&user);
    }

    /// Fills `a.handle` from memory (it is not stored in clear).
    pub fn fill(&self, mut a: AccountRecord) -> AccountRecord {
        if let Some(h) = self.get(a.id) {
            a.handle = h;
        }
        a
    }
}

/// A stored account.
#[derive(Debug, Clone)]
pub struct AccountRecord {
    pub id: u64,
    /// The handle in clear: from the [`HandleBook`], never stored; empty once the account is
    /// being erased and the node restarted since.
    pub handle: String,
    /// HMAC(handle key, handle): the key of `handleindex_userid`, and of `handlehash_erased`
    /// once the account is erased.
    pub handle_index: [u8; 32],
    /// The handle, sealed under the user's data key.
    pub handle_sealed: Vec<u8>,
    /// The E.164 phone number, sealed under the user's data key.
    pub phone_sealed: Vec<u8>,
    /// argon2id PHC string.
    pub password_phc: String,
    /// The user's data key, wrapped by the master key.
    pub wrapped_key: Vec<u8>,
    pub created: Millis,
    pub policy_version: String,
    pub policy_accepted: Millis,
}

impl AccountRecord {
    pub fn encode(&self) -> Vec<u8> {
        Enc::new(2)
            .u64(self.id)
            .bytes(&self.handle_index)
            .bytes(&self.handle_sealed)
            .bytes(&self.phone_sealed)
            .str(&self.password_phc)
            .bytes(&self.wrapped_key)
            .u64(self.created.0)
            .str(&self.policy_version)
            .u64(self.policy_accepted.0)
            .finish()
    }
    pub fn decode(b: &[u8]) -> Result<Self, StoreError> {
        let mut d = Dec::new(b, "account", 2)?;
        let r = AccountRecord {
            id: d.u64()?,
            handle: String::new(),
            handle_index: d
                .bytes()?
                .try_into()
                .map_err(|_| StoreError::Corrupt("account"))?,
            handle_sealed: d.bytes()?,
            phone_sealed: d.bytes()?,
            password_phc: d.string()?,
            wrapped_key: d.bytes()?,
            created: Millis(d.u64()?),
            policy_version: d.string()?,
            policy_accepted: Millis(d.u64()?),
        };
        d.end()?;
        Ok(r)
    }
}

/// A new account and its first profile, written together.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub account: AccountRecord,
    pub phone_index: [u8; 32],
    pub profile_sealed: Vec<u8>,
    /// Publication number of the policy version accepted at registration (0: the configured).
    pub policy_seq: u64,
}

/// A logged-in device.
#[derive(Debug, Clone)]
pub struct SessionRecord {
    pub token_hash: [u8; 32],
    pub user: u64,
    pub device_id: String,
    pub created: Millis,
    pub last_seen: Millis,
    /// The client's description of the device (name, OS, app version), sealed under the
    /// user's data key; empty when the client sent none.
    pub device_sealed: Vec<u8>,
}

impl SessionRecord {
    fn encode(&self) -> Vec<u8> {
        Enc::new(1)
            .u64(self.user)
            .str(&self.device_id)
            .u64(self.created.0)
            .u64(self.last_seen.0)
            .bytes(&self.device_sealed)
            .finish()
    }
    pub fn decode(token_hash: [u8; 32], b: &[u8]) -> Result<Self, StoreError> {
        let mut d = Dec::new(b, "session", 1)?;
        let r = SessionRecord {
            token_hash,
            user: d.u64()?,
            device_id: d.string()?,
            created: Millis(d.u64()?),
            last_seen: Millis(d.u64()?),
            device_sealed: d.bytes()?,
        };
        d.end()?;
        Ok(r)
    }
}

/// What authenticating a bearer token needs, read in one transaction.
#[derive(Debug, Clone)]
pub struct SessionLookup {
    pub session: SessionRecord,
    pub account: AccountRecord,
    /// When the account's erasure is due, if the user asked for it.
    pub deletion_due: Option<Millis>,
}

/// One grant or revocation of a purpose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentEvent {
    pub purpose: String,
    pub granted: bool,
    pub at: Millis,
    /// The policy version the user had accepted when deciding.
    pub policy_version: String,
    /// The device the decision came from.
    pub device_id: String,
}

impl ConsentEvent {
    /// Only the `granted` flag of an encoded event.
    pub fn decode_granted(b: &[u8]) -> Result<bool, StoreError> {
        Ok(Self::decode(b)?.granted)
    }

    pub(super) fn encode(&self) -> Vec<u8> {
        Enc::new(1)
            .str(&self.purpose)
            .bool(self.granted)
            .u64(self.at.0)
            .str(&self.policy_version)
            .str(&self.device_id)
            .finish()
    }
    fn decode(b: &[u8]) -> Result<Self, StoreError> {
        let mut d = Dec::new(b, "consent", 1)?;
        let r = ConsentEvent {
            purpose: d.string()?,
            granted: d.bool()?,
            at: Millis(d.u64()?),
            policy_version: d.string()?,
            device_id: d.string()?,
        };
        d.end()?;
        Ok(r)
    }
}

/// Reads `id`'s account in `tx` and writes it back if `change` edited it (returned true).
/// False when there is no such account or `change` declined.
pub(super) fn update_account(
    tx: &WriteTransaction,
    id: u64,
    change: impl FnOnce(&mut AccountRecord) -> bool,
) -> Result<bool, StoreError> {
    let mut accounts = tx.open_table(USERID_ACCOUNT)?;
    let Some(mut acct) = accounts
        .get(id)?
        .map(|v| AccountRecord::decode(v.value()))
        .transpose()?
    else {
        return Ok(false);
    };
    if !change(&mut acct) {
        return Ok(false);
    }
    accounts.insert(id, acct.encode().as_slice())?;
    Ok(true)
}

impl Store {
    /// Inserts a new account with its indexes and first profile, or reports which unique
    /// value is taken.
    /// `new.account.handle_index` is made here, from `handle`.
    pub async fn insert_account(&self, mut new: NewAccount) -> Result<(), StoreError> {
        new.account.handle_index = self.handles.index(&new.account.handle);
        let (id, handle) = (new.account.id, new.account.handle.clone());
        // Known to the book before the row commits, so every reader the commit wakes (the
        // search indexer reads the new account at once) finds the handle; taken back if the
        // write fails. An id already in the book is a live account: the write refuses it.
        let fresh = self.handles.get(id).is_none();
        if fresh {
            self.handles.insert(id, handle.clone());
        }
        let written = self
            .write(move |tx| {
                let mut accounts = tx.open_table(USERID_ACCOUNT)?;
                let mut handles = tx.open_table(HANDLEINDEX_USERID)?;
                let mut phones = tx.open_table(PHONEINDEX_USERID)?;
                let id = new.account.id;
                if handles.get(&new.account.handle_index)?.is_some()
                    || HANDLEHASH_ERASED
                        .get(tx, &new.account.handle_index)?
                        .is_some()
                {
                    return Err(StoreError::Conflict(Conflict::Handle));
                }
                if phones.get(&new.phone_index)?.is_some() {
                    return Err(StoreError::Conflict(Conflict::Phone));
                }
                if accounts.get(id)?.is_some() {
                    return Err(StoreError::Conflict(Conflict::UserId));
                }
                accounts.insert(id, new.account.encode().as_slice())?;
                handles.insert(&new.account.handle_index, id)?;
                phones.insert(&new.phone_index, id)?;
                drop(phones);
                USERID_PHONEINDEX.insert(tx, &id, &new.phone_index.to_vec())?;
                tx.open_table(USERID_PROFILE)?
                    .insert(id, new.profile_sealed.as_slice())?;
                USERID_POLICYSEQ_ACCEPTED.insert(
                    tx,
                    &(id, new.policy_seq),
                    &new.account.policy_accepted.0,
                )?;
                super::search::note_change(tx, super::SearchChange::Person(id))?;
                Ok(())
            })
            .await;
        if written.is_err() && fresh {
            self.handles.remove(id);
        }
        written?;
        self.handles.insert(id, handle);
        Ok(())
    }

    pub async fn account(&self, id: u64) -> Result<Option<AccountRecord>, StoreError> {
        let book = self.handles.clone();
        self.read(move |tx| {
            let t = tx.open_table(USERID_ACCOUNT)?;
            t.get(id)?
                .map(|v| AccountRecord::decode(v.value()).map(|a| book.fill(a)))
                .transpose()
        })
        .await
    }

    /// The handles' book (clear handles of live accounts, in memory).
    pub fn handles(&self) -> std::sync::Arc<HandleBook> {
        self.handles.clone()
    }

    /// Replaces an account's password hash if it is still `expected`; false (and nothing
    /// written) when the account is gone or its hash changed meanwhile.
    pub async fn replace_password_hash(
        &self,
        id: u64,
        expected: String,
        new: String,
    ) -> Result<bool, StoreError> {
        self.write(move |tx| {
            update_account(tx, id, |a| {
                let still = a.password_phc == expected;
                if still {
                    a.password_phc = new.clone();
                }
                still
            })
        })
        .await
    }

    pub async fn user_by_handle(&self, handle: String) -> Result<Option<u64>, StoreError> {
        let index = self.handles.index(&handle);
        self.read(move |tx| {
            Ok(tx
                .open_table(HANDLEINDEX_USERID)?
                .get(&index)?
                .map(|v| v.value()))
        })
        .await
    }

    pub async fn user_by_phone_index(&self, index: [u8; 32]) -> Result<Option<u64>, StoreError> {
        self.read(move |tx| {
            Ok(tx
                .open_table(PHONEINDEX_USERID)?
                .get(&index)?
                .map(|v| v.value()))
        })
        .await
    }

    pub async fn profile(&self, id: u64) -> Result<Option<Vec<u8>>, StoreError> {
        self.read(move |tx| {
            Ok(tx
                .open_table(USERID_PROFILE)?
                .get(id)?
                .map(|v| v.value().to_vec()))
        })
        .await
    }

    /// Stores a profile, its education index (`Some` only for a public education, a suggestion
    /// source, 1.3.c), the media id of its avatar image (`None`: no image) and queues
    /// `outgoing` (its nickname and avatar pushed to peers) in one transaction; None if the
    /// account is gone. Returns the peers whose queues grew.
    pub async fn put_profile_queued(
        &self,
        id: u64,
        sealed: Vec<u8>,
        education: Option<[u8; 32]>,
        avatar: Option<String>,
        outgoing: Vec<super::Outgoing>,
        now: Millis,
    ) -> Result<Option<Vec<String>>, StoreError> {
        self.write(move |tx| {
            if tx.open_table(USERID_ACCOUNT)?.get(id)?.is_none() {
                return Ok(None);
            }
            tx.open_table(USERID_PROFILE)?
                .insert(id, sealed.as_slice())?;
            super::search::note_change(tx, super::SearchChange::Person(id))?;
            super::discovery::set_education_in(tx, id, education)?;
            super::avatars::set(tx, id, avatar.as_deref())?;
            Ok(Some(super::federation::enqueue(tx, &outgoing, now)?))
        })
        .await
    }

    pub async fn insert_session(&self, s: SessionRecord) -> Result<(), StoreError> {
        self.write(move |tx| {
            tx.open_table(TOKENHASH_SESSION)?
                .insert(&s.token_hash, s.encode().as_slice())?;
            tx.open_table(USERID_DEVICEID_TOKENHASH)?
                .insert((s.user, s.device_id.as_str()), &s.token_hash)?;
            Store::init_device_cursor(tx, s.user, &s.device_id)?;
            Ok(())
        })
        .await
    }

    pub async fn session(&self, token_hash: [u8; 32]) -> Result<Option<SessionRecord>, StoreError> {
        self.read(move |tx| {
            let t = tx.open_table(TOKENHASH_SESSION)?;
            t.get(&token_hash)?
                .map(|v| SessionRecord::decode(token_hash, v.value()))
                .transpose()
        })
        .await
    }

    /// The session with this token hash, its account and pending erasure, in one read (one
    /// blocking-pool job); `None` if there is no such session or its account is gone.
    pub async fn session_lookup(
        &self,
        token_hash: [u8; 32],
    ) -> Result<Option<SessionLookup>, StoreError> {
        let book = self.handles.clone();
        self.read(move |tx| {
            let Some(session) = tx
                .open_table(TOKENHASH_SESSION)?
                .get(&token_hash)?
                .map(|v| SessionRecord::decode(token_hash, v.value()))
                .transpose()?
            else {
                return Ok(None);
            };
            let Some(account) = tx
                .open_table(USERID_ACCOUNT)?
                .get(session.user)?
                .map(|v| AccountRecord::decode(v.value()).map(|a| book.fill(a)))
                .transpose()?
            else {
                return Ok(None);
            };
            let deletion_due = USERID_ERASURE
                .get(tx, &session.user)?
                .map(|v| super::erasure::ErasureRecord::decode(&v))
                .transpose()?
                .map(|e| e.due);
            Ok(Some(SessionLookup {
                session,
                account,
                deletion_due,
            }))
        })
        .await
    }

    /// Records that a session was used at `at`.
    pub async fn touch_session(&self, token_hash: [u8; 32], at: Millis) -> Result<(), StoreError> {
        self.write(move |tx| {
            let mut t = tx.open_table(TOKENHASH_SESSION)?;
            let found = t
                .get(&token_hash)?
                .map(|v| SessionRecord::decode(token_hash, v.value()));
            if let Some(mut s) = found.transpose()? {
                s.last_seen = at;
                t.insert(&token_hash, s.encode().as_slice())?;
            }
            Ok(())
        })
        .await
    }

    pub async fn sessions_of(&self, user: u64) -> Result<Vec<SessionRecord>, StoreError> {
        self.read(move |tx| {
            let index = tx.open_table(USERID_DEVICEID_TOKENHASH)?;
            let sessions = tx.open_table(TOKENHASH_SESSION)?;
            let mut out = Vec::new();
            for row in index.range((user, "")..)? {
                let (k, v) = row?;
                if k.value().0 != user {
                    break;
                }
                let hash = *v.value();
                if let Some(s) = sessions.get(&hash)? {
                    out.push(SessionRecord::decode(hash, s.value())?);
                }
            }
            Ok(out)
        })
        .await
    }

    /// Ends one of a user's sessions; false when the user has no such device.
    /// Returns the deleted session's token hash.
    pub async fn delete_session(
        &self,
        user: u64,
        device_id: String,
    ) -> Result<Option<[u8; 32]>, StoreError> {
        self.write(move |tx| {
            let mut index = tx.open_table(USERID_DEVICEID_TOKENHASH)?;
            let Some(hash) = index
                .remove((user, device_id.as_str()))?
                .map(|v| *v.value())
            else {
                return Ok(None);
            };
            tx.open_table(TOKENHASH_SESSION)?.remove(&hash)?;
            Store::forget_device(tx, user, &device_id)?;
            Ok(Some(hash))
        })
        .await
    }

    /// The latest decision per purpose, and the full history in order.
    pub async fn consents_of(
        &self,
        user: u64,
    ) -> Result<(Vec<ConsentEvent>, Vec<ConsentEvent>), StoreError> {
        self.read(move |tx| {
            let mut latest = Vec::new();
            for row in tx.open_table(USERID_PURPOSE_CONSENT)?.range((user, "")..)? {
                let (k, v) = row?;
                if k.value().0 != user {
                    break;
                }
                latest.push(ConsentEvent::decode(v.value())?);
            }
            let mut history = Vec::new();
            for (_, v) in USERID_SEQ_CONSENTEVENT.prefixed_in_pages(tx, &user, CONSENT_PAGE)? {
                history.push(ConsentEvent::decode(&v)?);
            }
            Ok((latest, history))
        })
        .await
    }

    /// Records a decision if it changes the purpose's state. Returns true if it was recorded,
    /// false if the purpose was already in that state (nothing is written then).
    /// `audit`, when given, is appended to the audit log in the same transaction if the
    /// decision is recorded.
    pub async fn record_consent(
        &self,
        user: u64,
        event: ConsentEvent,
        audit: Option<super::AuditEntry>,
    ) -> Result<bool, StoreError> {
        self.write(move |tx| {
            let mut latest = tx.open_table(USERID_PURPOSE_CONSENT)?;
            let current = match latest.get((user, event.purpose.as_str()))? {
                Some(v) => ConsentEvent::decode(v.value())?.granted,
                None => false,
            };
            if current == event.granted {
                return Ok(false);
            }
            let encoded = event.encode();
            latest.insert((user, event.purpose.as_str()), encoded.as_slice())?;
            drop(latest);
            let next = match USERID_SEQ_CONSENTEVENT
                .prefixed(tx, &user, Order::Descending, 1)?
                .first()
            {
                Some(((_, seq), _)) => seq + 1,
                None => 0,
            };
            USERID_SEQ_CONSENTEVENT.insert(tx, &(user, next), &encoded)?;
            if event.purpose == "cloud_sync" && !event.granted {
                // Revoking cloud history deletes what is kept for this user, now.
                Store::drop_history(tx, user)?;
            }
            // What was derived for a purpose goes with its revocation (G2.e).
            if !event.granted {
                match event.purpose.as_str() {
                    "real_name" => {
                        USERID_REALNAME.remove(tx, &user)?;
                    }
                    "public_page" => {
                        USERID_PUBLICPAGE.remove(tx, &user)?;
                    }
                    "personalisation" => {
                        super::search::erase_logs(tx, user)?;
                        super::behaviour::erase_behaviour(tx, user)?;
                    }
                    // Discovery (issue 22): contact matches and the last cell.
                    "contacts_matching" => super::discovery::drop_matches(tx, user)?,
                    "precise_location" => {
                        super::nearby::drop_cell(tx, user)?;
                    }
                    _ => {}
                }
            }
            // Communities: a post's place needs precise_location (1.3.3.c).
            if !event.granted && event.purpose == "precise_location" {
                super::community::drop_places(tx, user)?;
            }
            if let Some(a) = &audit {
                super::append_audit(tx, a.clone())?;
            }
            Ok(true)
        })
        .await
    }
}
