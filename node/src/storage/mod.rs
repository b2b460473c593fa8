//! The node's only database: one redb file, `node.redb`, in the data directory.
//!
//! `Store` is the narrow handle the rest of the node uses. Its methods are typed operations on
//! records; each runs on the blocking thread pool (redb is synchronous) and every write commits
//! with redb's immediate durability before it returns, so whatever the caller acknowledges is on
//! disk. Values holding personal content arrive here already sealed by `crypto`; this module
//! never sees a plaintext phone number or profile.
//!
//! **Invariant:** only this module (and its children) names redb types.

mod catalog;
mod codec;

pub(crate) use codec::{Dec, Enc};

use std::path::Path;
use std::sync::Arc;

use redb::{Database, ReadTransaction, ReadableDatabase, ReadableTable, WriteTransaction};

use crate::time::Millis;
use catalog::*;

/// The schema version this build writes. Raise it with a new entry in [`MIGRATIONS`].
pub const SCHEMA_VERSION: u32 = 1;

/// Steps from version N to N+1, applied in order inside one write transaction each.
/// `MIGRATIONS[i]` upgrades from version `i + 1`.
type Migration = fn(&WriteTransaction) -> Result<(), StoreError>;
const MIGRATIONS: &[Migration] = &[];

/// Errors of the storage layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("database: {0}")]
    Db(String),
    #[error("a stored {0} record is damaged")]
    Corrupt(&'static str),
    #[error("{0} is already taken")]
    Conflict(Conflict),
    #[error(
        "the database was written by a newer version (schema {found}, this build knows {known})"
    )]
    TooNew { found: u32, known: u32 },
    #[error("the storage worker stopped unexpectedly")]
    Worker,
}

/// Which unique value a write collided with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conflict {
    Handle,
    Phone,
    UserId,
}

impl std::fmt::Display for Conflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Conflict::Handle => "handle",
            Conflict::Phone => "phone number",
            Conflict::UserId => "user id",
        })
    }
}

macro_rules! db_err {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self { StoreError::Db(e.to_string()) }
        }
    )*};
}
db_err!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// A stored account.
#[derive(Debug, Clone)]
pub struct AccountRecord {
    pub id: u64,
    pub handle: String,
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
    fn encode(&self) -> Vec<u8> {
        Enc::new(1)
            .u64(self.id)
            .str(&self.handle)
            .bytes(&self.phone_sealed)
            .str(&self.password_phc)
            .bytes(&self.wrapped_key)
            .u64(self.created.0)
            .str(&self.policy_version)
            .u64(self.policy_accepted.0)
            .finish()
    }
    fn decode(b: &[u8]) -> Result<Self, StoreError> {
        let mut d = Dec::new(b, "account", 1)?;
        let r = AccountRecord {
            id: d.u64()?,
            handle: d.string()?,
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
    fn decode(token_hash: [u8; 32], b: &[u8]) -> Result<Self, StoreError> {
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
    fn encode(&self) -> Vec<u8> {
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

/// Handle to the node's database. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    db: Arc<Database>,
}

/// What [`Store::open`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opened {
    Created,
    Existing,
}

impl Store {
    /// Whether a database file already exists at `path`.
    pub fn exists(path: &Path) -> bool {
        path.exists()
    }

    /// Opens or creates the database file, brings its schema to [`SCHEMA_VERSION`] and checks
    /// (or on creation records) the master key's check value. Blocking: call before serving.
    pub fn open(
        path: &Path,
        key_check: impl FnOnce(Option<&[u8]>) -> Result<Option<Vec<u8>>, StoreError>,
    ) -> Result<(Store, Opened), StoreError> {
        let opened = if path.exists() {
            Opened::Existing
        } else {
            Opened::Created
        };
        let db = Database::create(path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => StoreError::Db(format!(
                "{} is already open in another process (is another node running on this \
                 data directory?)",
                path.display()
            )),
            other => other.into(),
        })?;
        let tx = db.begin_write()?;
        {
            let mut meta = tx.open_table(META)?;
            let version = match meta.get("schema_version")? {
                Some(v) => {
                    let b: [u8; 4] = v
                        .value()
                        .try_into()
                        .map_err(|_| StoreError::Corrupt("meta"))?;
                    u32::from_be_bytes(b)
                }
                None => SCHEMA_VERSION,
            };
            if version > SCHEMA_VERSION {
                return Err(StoreError::TooNew {
                    found: version,
                    known: SCHEMA_VERSION,
                });
            }
            let existing_check = meta.get("master_key_check")?.map(|v| v.value().to_vec());
            if let Some(new_check) = key_check(existing_check.as_deref())? {
                meta.insert("master_key_check", new_check.as_slice())?;
            }
            drop(meta);
            if version == 0 {
                return Err(StoreError::Corrupt("meta"));
            }
            for step in MIGRATIONS.iter().skip(version as usize - 1) {
                step(&tx)?;
            }
            let mut meta = tx.open_table(META)?;
            meta.insert("schema_version", SCHEMA_VERSION.to_be_bytes().as_slice())?;
        }
        create_tables(&tx)?;
        tx.commit()?;
        Ok((Store { db: Arc::new(db) }, opened))
    }

    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&ReadTransaction) -> Result<T, StoreError> + Send + 'static,
    {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || f(&db.begin_read()?))
            .await
            .map_err(|_| StoreError::Worker)?
    }

    /// Runs `f` in a write transaction and commits durably if it returns `Ok`; on `Err`
    /// nothing of it is kept.
    async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&WriteTransaction) -> Result<T, StoreError> + Send + 'static,
    {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || {
            let tx = db.begin_write()?;
            match f(&tx) {
                Ok(v) => {
                    tx.commit()?;
                    Ok(v)
                }
                Err(e) => {
                    tx.abort()?;
                    Err(e)
                }
            }
        })
        .await
        .map_err(|_| StoreError::Worker)?
    }

    /// Inserts a new account with its indexes and first profile, or reports which unique
    /// value is taken.
    pub async fn insert_account(&self, new: NewAccount) -> Result<(), StoreError> {
        self.write(move |tx| {
            let mut accounts = tx.open_table(USERID_ACCOUNT)?;
            let mut handles = tx.open_table(HANDLE_USERID)?;
            let mut phones = tx.open_table(PHONEINDEX_USERID)?;
            let id = new.account.id;
            if handles.get(new.account.handle.as_str())?.is_some() {
                return Err(StoreError::Conflict(Conflict::Handle));
            }
            if phones.get(&new.phone_index)?.is_some() {
                return Err(StoreError::Conflict(Conflict::Phone));
            }
            if accounts.get(id)?.is_some() {
                return Err(StoreError::Conflict(Conflict::UserId));
            }
            accounts.insert(id, new.account.encode().as_slice())?;
            handles.insert(new.account.handle.as_str(), id)?;
            phones.insert(&new.phone_index, id)?;
            tx.open_table(USERID_PROFILE)?
                .insert(id, new.profile_sealed.as_slice())?;
            Ok(())
        })
        .await
    }

    pub async fn account(&self, id: u64) -> Result<Option<AccountRecord>, StoreError> {
        self.read(move |tx| {
            let t = tx.open_table(USERID_ACCOUNT)?;
            t.get(id)?
                .map(|v| AccountRecord::decode(v.value()))
                .transpose()
        })
        .await
    }

    pub async fn user_by_handle(&self, handle: String) -> Result<Option<u64>, StoreError> {
        self.read(move |tx| {
            Ok(tx
                .open_table(HANDLE_USERID)?
                .get(handle.as_str())?
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

    /// Replaces a profile; false when the account does not exist.
    pub async fn put_profile(&self, id: u64, sealed: Vec<u8>) -> Result<bool, StoreError> {
        self.write(move |tx| {
            if tx.open_table(USERID_ACCOUNT)?.get(id)?.is_none() {
                return Ok(false);
            }
            tx.open_table(USERID_PROFILE)?
                .insert(id, sealed.as_slice())?;
            Ok(true)
        })
        .await
    }

    pub async fn insert_session(&self, s: SessionRecord) -> Result<(), StoreError> {
        self.write(move |tx| {
            tx.open_table(TOKENHASH_SESSION)?
                .insert(&s.token_hash, s.encode().as_slice())?;
            tx.open_table(USERID_DEVICEID_TOKENHASH)?
                .insert((s.user, s.device_id.as_str()), &s.token_hash)?;
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
    pub async fn delete_session(&self, user: u64, device_id: String) -> Result<bool, StoreError> {
        self.write(move |tx| {
            let mut index = tx.open_table(USERID_DEVICEID_TOKENHASH)?;
            let Some(hash) = index
                .remove((user, device_id.as_str()))?
                .map(|v| *v.value())
            else {
                return Ok(false);
            };
            tx.open_table(TOKENHASH_SESSION)?.remove(&hash)?;
            Ok(true)
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
            for row in tx
                .open_table(USERID_SEQ_CONSENTEVENT)?
                .range((user, 0)..=(user, u64::MAX))?
            {
                history.push(ConsentEvent::decode(row?.1.value())?);
            }
            Ok((latest, history))
        })
        .await
    }

    /// Whether `purpose` is currently granted by `user`.
    pub async fn consent_granted(
        &self,
        user: u64,
        purpose: &'static str,
    ) -> Result<bool, StoreError> {
        self.read(move |tx| {
            let t = tx.open_table(USERID_PURPOSE_CONSENT)?;
            let row = t.get((user, purpose))?;
            Ok(match row {
                Some(v) => ConsentEvent::decode(v.value())?.granted,
                None => false,
            })
        })
        .await
    }

    /// Records a decision if it changes the purpose's state. Returns true if it was recorded,
    /// false if the purpose was already in that state (nothing is written then).
    pub async fn record_consent(&self, user: u64, event: ConsentEvent) -> Result<bool, StoreError> {
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
            let mut history = tx.open_table(USERID_SEQ_CONSENTEVENT)?;
            let next = match history.range((user, 0)..=(user, u64::MAX))?.next_back() {
                Some(row) => row?.0.value().1 + 1,
                None => 0,
            };
            history.insert((user, next), encoded.as_slice())?;
            Ok(true)
        })
        .await
    }
}

/// Opens every catalog table once so read transactions never meet a missing table.
fn create_tables(tx: &WriteTransaction) -> Result<(), StoreError> {
    tx.open_table(META)?;
    tx.open_table(USERID_ACCOUNT)?;
    tx.open_table(HANDLE_USERID)?;
    tx.open_table(PHONEINDEX_USERID)?;
    tx.open_table(USERID_PROFILE)?;
    tx.open_table(TOKENHASH_SESSION)?;
    tx.open_table(USERID_DEVICEID_TOKENHASH)?;
    tx.open_table(USERID_PURPOSE_CONSENT)?;
    tx.open_table(USERID_SEQ_CONSENTEVENT)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(dir: &Path) -> Store {
        Store::open(&dir.join("node.redb"), |_| Ok(None)).unwrap().0
    }

    fn account(id: u64, handle: &str) -> NewAccount {
        NewAccount {
            account: AccountRecord {
                id,
                handle: handle.into(),
                phone_sealed: vec![1, 2, 3],
                password_phc: "phc".into(),
                wrapped_key: vec![4, 5],
                created: Millis(1),
                policy_version: "v1".into(),
                policy_accepted: Millis(1),
            },
            phone_index: [id as u8; 32],
            profile_sealed: vec![9],
        }
    }

    #[tokio::test]
    async fn unique_handle_phone_and_id_are_enforced_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path());
        s.insert_account(account(1, "alice")).await.unwrap();
        let e = s.insert_account(account(2, "alice")).await.unwrap_err();
        assert!(matches!(e, StoreError::Conflict(Conflict::Handle)));
        let mut same_phone = account(3, "bob");
        same_phone.phone_index = [1; 32];
        let e = s.insert_account(same_phone).await.unwrap_err();
        assert!(matches!(e, StoreError::Conflict(Conflict::Phone)));
        assert_eq!(
            s.user_by_handle("bob".into()).await.unwrap(),
            None,
            "nothing half-written"
        );
        let mut same_id = account(1, "carol");
        same_id.phone_index = [42; 32];
        let e = s.insert_account(same_id).await.unwrap_err();
        assert!(matches!(e, StoreError::Conflict(Conflict::UserId)));
        assert_eq!(s.account(1).await.unwrap().unwrap().handle, "alice");
    }

    #[tokio::test]
    async fn consent_history_records_only_changes_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path());
        let ev = |granted, at| ConsentEvent {
            purpose: "photos".into(),
            granted,
            at: Millis(at),
            policy_version: "v1".into(),
            device_id: "d".into(),
        };
        assert!(!s.consent_granted(7, "photos").await.unwrap());
        assert!(
            !s.record_consent(7, ev(false, 1)).await.unwrap(),
            "revoking the never-granted"
        );
        assert!(s.record_consent(7, ev(true, 2)).await.unwrap());
        assert!(!s.record_consent(7, ev(true, 3)).await.unwrap());
        assert!(s.record_consent(7, ev(false, 4)).await.unwrap());
        let (latest, history) = s.consents_of(7).await.unwrap();
        assert_eq!(latest, vec![ev(false, 4)]);
        assert_eq!(history, vec![ev(true, 2), ev(false, 4)]);
        assert!(
            s.consents_of(8).await.unwrap().1.is_empty(),
            "other users unaffected"
        );
    }

    #[tokio::test]
    async fn reopening_keeps_data_and_refuses_a_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = open(dir.path());
            s.insert_account(account(5, "eve")).await.unwrap();
        }
        let (s, opened) = Store::open(&dir.path().join("node.redb"), |_| Ok(None)).unwrap();
        assert_eq!(opened, Opened::Existing);
        assert_eq!(s.user_by_handle("eve".into()).await.unwrap(), Some(5));
        drop(s);
        {
            let db = Database::create(dir.path().join("node.redb")).unwrap();
            let tx = db.begin_write().unwrap();
            tx.open_table(META)
                .unwrap()
                .insert(
                    "schema_version",
                    (SCHEMA_VERSION + 1).to_be_bytes().as_slice(),
                )
                .unwrap();
            tx.commit().unwrap();
        }
        let e = Store::open(&dir.path().join("node.redb"), |_| Ok(None)).unwrap_err();
        assert!(matches!(e, StoreError::TooNew { .. }), "{e}");
    }
}
