//! The node's federation signing keys: created on first start, kept in the database with their
//! seeds sealed by the master key, and rotated when the current one nears its end. Expired keys
//! stay published, so what they signed while valid can still be checked.

use federation::{KeyDocument, KeyId, NodeKey, PublicKey};

use crate::crypto::{self, CryptoError, MasterKey};
use crate::storage::{NodeKeyRecord, Store, StoreError};
use crate::time::Millis;

/// How long a new key is valid.
pub const VALIDITY_MS: u64 = 365 * 24 * 3600 * 1000;
/// A new key is made when the current one has less than this left.
pub const RENEW_BEFORE_MS: u64 = 30 * 24 * 3600 * 1000;

/// Errors of key management.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
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

/// The node's keys: the one it signs with, and the others it still publishes.
#[derive(Debug)]
pub struct NodeKeys {
    current: NodeKey,
    others: Vec<PublicKey>,
}

impl NodeKeys {
    /// Loads the keys, making (and storing) a new one if none has more than
    /// [`RENEW_BEFORE_MS`] of validity left.
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
            let mut b = [0u8; 4];
            crypto::random_bytes(&mut b)?;
            let id = format!(
                "ed25519:{}",
                b.iter().map(|x| format!("{x:02x}")).collect::<String>()
            );
            let key_id = KeyId::parse(&id).map_err(|_| SigningError::Damaged(id.clone()))?;
            let key =
                NodeKey::generate(key_id, now.0 + VALIDITY_MS).map_err(|_| CryptoError::Random)?;
            store
                .insert_node_key(NodeKeyRecord {
                    id: id.clone(),
                    seed_sealed: master.seal_node_seed(&id, &key.seed())?,
                    created: now,
                    valid_until: Millis(key.valid_until),
                })
                .await?;
            tracing::info!(key = %id, "created a new federation signing key");
            keys.push(key);
        }
        let current = keys
            .pop()
            .ok_or_else(|| SigningError::Damaged("none".into()))?;
        Ok(NodeKeys {
            others: keys.iter().map(NodeKey::public).collect(),
            current,
        })
    }

    /// The key the node signs with now.
    pub fn current(&self) -> &NodeKey {
        &self.current
    }

    /// Every key the node has published, current first.
    pub fn public_keys(&self) -> Vec<PublicKey> {
        std::iter::once(self.current.public())
            .chain(self.others.iter().cloned())
            .collect()
    }

    /// The self-signed key document for `domain`, publishing `limits` (issue 25: a sender
    /// refuses media larger than this node takes before anything is queued).
    pub fn document(
        &self,
        domain: &str,
        limits: federation::Limits,
    ) -> Result<KeyDocument, SigningError> {
        KeyDocument::with_limits(domain, &self.current, &self.others, Some(limits))
            .map_err(|e| SigningError::Document(e.to_string()))
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
        let doc = c
            .document("a.example", federation::Limits::default())
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
}
