//! The node's federation signing keys: created on first start, kept in the database with their
//! seeds sealed by the master key, and rotated — at start when the current one nears its end,
//! or at once by `node-admin keys rotate` on a running node. Keys no longer signing (rotated
//! out or expired) stay published, so what they signed while valid can still be checked.

use std::sync::{Arc, RwLock};

use bytes::Bytes;
use federation::{KeyDocument, KeyId, NodeKey, PublicKey};

use crate::crypto::{self, CryptoError, MasterKey};
use crate::time::Millis;
use storage::{NodeKeyRecord, Store, StoreError};

/// How long a new key is valid.
pub const VALIDITY_MS: u64 = 365 * 24 * 3600 * 1000;
/// A new key is made when the current one has less than this left.
pub const RENEW_BEFORE_MS: u64 = 30 * 24 * 3600 * 1000;

/// Errors of key management.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error("node key: {0}")]
    Store(#[from] StoreError),
    #[error("node key: {0}")]
    Crypto(#[from] CryptoError),
    #[error("node key {0} is damaged")]
    Damaged(String),
    #[error("node key document: {0}")]
    Document(String),
}

/// The keys at one moment: the one the node signs with, and the others it still publishes.
#[derive(Debug)]
struct KeySet {
    current: Arc<NodeKey>,
    others: Vec<PublicKey>,
    /// The serialized key document, made on first request for a domain and dropped when the
    /// set changes.
    published: Option<(String, Bytes)>,
}

/// The node's keys. Shared by everything that signs or checks; a rotation swaps the set.
#[derive(Debug)]
pub struct NodeKeys {
    set: RwLock<KeySet>,
    /// Held across a rotation's store write, so two rotations do not interleave.
    rotating: tokio::sync::Mutex<()>,
}

/// What a rotation did.
#[derive(Debug, Clone)]
pub struct Rotation {
    /// The new signing key, and when it was created.
    pub new: PublicKey,
    pub created: Millis,
    /// The key it replaces: still published, and valid until its `valid_until`.
    pub previous: PublicKey,
}

/// Makes a new key valid from `now` and stores it (seed sealed by `master`), durably.
async fn create_key(
    store: &Store,
    master: &MasterKey,
    now: Millis,
) -> Result<NodeKey, SigningError> {
    let mut b = [0u8; 4];
    crypto::random_bytes(&mut b)?;
    let id = format!(
        "ed25519:{}",
        b.iter().map(|x| format!("{x:02x}")).collect::<String>()
    );
    let key_id = KeyId::parse(&id).map_err(|_| SigningError::Damaged(id.clone()))?;
    let key = NodeKey::generate(key_id, now.0 + VALIDITY_MS).map_err(|_| CryptoError::Random)?;
    store
        .insert_node_key(NodeKeyRecord {
            id: id.clone(),
            seed_sealed: master.seal_node_seed(&id, &key.seed())?,
            created: now,
            valid_until: Millis(key.valid_until),
        })
        .await?;
    Ok(key)
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}

impl NodeKeys {
    /// Loads the keys, making (and storing) a new one if none has more than
    /// [`RENEW_BEFORE_MS`] of validity left. The key valid longest signs.
    pub async fn load_or_create(
        store: &Store,
        master: &MasterKey,
        now: Millis,
    ) -> Result<NodeKeys, SigningError> {
        let mut keys = Vec::new();
        for rec in store.node_keys().await? {
            let id = KeyId::parse(&rec.id).map_err(|_| SigningError::Damaged(rec.id.clone()))?;
            let seed = master.open_node_seed(&rec.id, &rec.seed_sealed)?;
            keys.push(NodeKey::from_seed(id, &seed, rec.valid_until.0));
        }
        keys.sort_by_key(|k| k.valid_until);
        let fresh = keys
            .last()
            .is_some_and(|k| k.valid_until > now.0 + RENEW_BEFORE_MS);
        if !fresh {
            let key = create_key(store, master, now).await?;
            tracing::info!(key = %key.id.as_str(), "created a new federation signing key");
            keys.push(key);
        }
        let current = keys
            .pop()
            .ok_or_else(|| SigningError::Damaged("none".into()))?;
        Ok(NodeKeys {
            set: RwLock::new(KeySet {
                others: keys.iter().map(NodeKey::public).collect(),
                current: Arc::new(current),
                published: None,
            }),
            rotating: tokio::sync::Mutex::new(()),
        })
    }

    /// Makes a new key and signs with it from now on; the one it replaces stays published (and
    /// valid until its own end), so what it signed — envelopes still queued or in flight —
    /// still verifies. The new key is stored durably before anything signs with it.
    pub async fn rotate(
        &self,
        store: &Store,
        master: &MasterKey,
        now: Millis,
    ) -> Result<Rotation, SigningError> {
        let _one_at_a_time = self.rotating.lock().await;
        let key = create_key(store, master, now).await?;
        let new = key.public();
        let mut set = write(&self.set);
        let previous = set.current.public();
        set.others.push(previous.clone());
        set.current = Arc::new(key);
        set.published = None;
        drop(set);
        tracing::info!(key = %new.id.as_str(), previous = %previous.id.as_str(), "rotated the federation signing key");
        Ok(Rotation {
            new,
            created: now,
            previous,
        })
    }

    /// The key the node signs with now.
    pub fn current(&self) -> Arc<NodeKey> {
        read(&self.set).current.clone()
    }

    /// Every key the node has published, current first.
    pub fn public_keys(&self) -> Vec<PublicKey> {
        let set = read(&self.set);
        std::iter::once(set.current.public())
            .chain(set.others.iter().cloned())
            .collect()
    }

    /// The key document for `domain` as JSON, publishing `limits` (issue 25: a sender refuses
    /// media larger than this node takes before anything is queued); made once per key set.
    pub fn published(
        &self,
        domain: &str,
        limits: federation::Limits,
    ) -> Result<Bytes, SigningError> {
        let (current, others) = {
            let set = read(&self.set);
            if let Some((d, b)) = &set.published
                && d == domain
            {
                return Ok(b.clone());
            }
            (set.current.clone(), set.others.clone())
        };
        let doc = KeyDocument::with_limits(domain, &current, &others, Some(limits))
            .map_err(|e| SigningError::Document(e.to_string()))?;
        let bytes = Bytes::from(
            serde_json::to_vec(&doc).map_err(|e| SigningError::Document(e.to_string()))?,
        );
        let mut set = write(&self.set);
        // Kept only if no rotation came in between (that would have made it stale).
        if Arc::ptr_eq(&set.current, &current) {
            set.published = Some((domain.to_string(), bytes.clone()));
        }
        Ok(bytes)
    }
}

/// What `GET /_federation/v1/keys` serves: the node's key document, always for its current
/// key set.
#[derive(Debug, Clone)]
pub struct Published {
    keys: Arc<NodeKeys>,
    domain: String,
    limits: federation::Limits,
}

impl Published {
    pub fn new(keys: Arc<NodeKeys>, domain: &str, limits: federation::Limits) -> Published {
        Published {
            keys,
            domain: domain.to_string(),
            limits,
        }
    }

    /// The document's JSON.
    pub fn bytes(&self) -> Result<Bytes, SigningError> {
        self.keys.published(&self.domain, self.limits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::SecretKey;

    #[tokio::test]
    async fn a_key_is_made_once_reused_and_rotated_near_its_end() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(&dir.path().join("n.redb"), |_| Ok(None)).unwrap();
        let master = MasterKey::from_key(SecretKey::generate().unwrap());
        let t0 = Millis(1_800_000_000_000);
        let a = NodeKeys::load_or_create(&store, &master, t0).await.unwrap();
        let b = NodeKeys::load_or_create(&store, &master, Millis(t0.0 + 1000))
            .await
            .unwrap();
        assert_eq!(a.current().public(), b.current().public(), "reused");
        let later = Millis(t0.0 + VALIDITY_MS - RENEW_BEFORE_MS + 1);
        let c = NodeKeys::load_or_create(&store, &master, later)
            .await
            .unwrap();
        assert_ne!(c.current().public(), a.current().public(), "rotated");
        let doc: KeyDocument = serde_json::from_slice(
            &c.published("a.example", federation::Limits::default())
                .unwrap(),
        )
        .unwrap();
        let listed = doc.verify("a.example").unwrap();
        assert!(
            listed.contains(&a.current().public()),
            "the old key is still published"
        );
        let other = MasterKey::from_key(SecretKey::generate().unwrap());
        assert!(
            NodeKeys::load_or_create(&store, &other, later)
                .await
                .is_err(),
            "seeds need the master key"
        );
    }

    #[tokio::test]
    async fn a_rotation_signs_with_a_new_key_keeps_the_old_one_published_and_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(&dir.path().join("n.redb"), |_| Ok(None)).unwrap();
        let master = MasterKey::from_key(SecretKey::generate().unwrap());
        let t0 = Millis(1_800_000_000_000);
        let keys = NodeKeys::load_or_create(&store, &master, t0).await.unwrap();
        let old = keys.current().public();
        let before = keys
            .published("a.example", federation::Limits::default())
            .unwrap();
        let r = keys
            .rotate(&store, &master, Millis(t0.0 + 5000))
            .await
            .unwrap();
        assert_eq!(r.previous, old);
        assert_ne!(r.new.id, old.id);
        assert_eq!(keys.current().public(), r.new, "signs with the new key now");
        let after = keys
            .published("a.example", federation::Limits::default())
            .unwrap();
        assert_ne!(
            before, after,
            "the served document changed with the rotation"
        );
        let doc: KeyDocument = serde_json::from_slice(&after).unwrap();
        let listed = doc.verify("a.example").unwrap();
        assert!(
            listed.contains(&old),
            "the old key is still published: {doc:?}"
        );
        assert!(listed.contains(&r.new));
        assert!(
            doc.keys.contains_key(r.new.id.as_str()),
            "the new one is current"
        );
        let again = NodeKeys::load_or_create(&store, &master, Millis(t0.0 + 6000))
            .await
            .unwrap();
        assert_eq!(
            again.current().public(),
            r.new,
            "still current after a restart"
        );
        assert!(again.public_keys().contains(&old));
    }
}
