//! The node's own federation signing keys as stored records.

use redb::ReadableTable;

use super::catalog::KEYID_NODEKEY;
use super::codec::{Dec, Enc};
use super::{Store, StoreError};
use crate::time::Millis;

/// A node signing key: its id, its seed sealed with the master key, and its validity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeKeyRecord {
    pub id: String,
    pub seed_sealed: Vec<u8>,
    pub created: Millis,
    pub valid_until: Millis,
}

impl NodeKeyRecord {
    fn encode(&self) -> Vec<u8> {
        Enc::new(1)
            .bytes(&self.seed_sealed)
            .u64(self.created.0)
            .u64(self.valid_until.0)
            .finish()
    }
    fn decode(id: &str, b: &[u8]) -> Result<Self, StoreError> {
        let mut d = Dec::new(b, "node key", 1)?;
        let r = NodeKeyRecord {
            id: id.to_string(),
            seed_sealed: d.bytes()?,
            created: Millis(d.u64()?),
            valid_until: Millis(d.u64()?),
        };
        d.end()?;
        Ok(r)
    }
}

impl Store {
    /// Every signing key the node has had, current and expired.
    pub async fn node_keys(&self) -> Result<Vec<NodeKeyRecord>, StoreError> {
        self.read(|tx| {
            let mut out = Vec::new();
            for row in tx.open_table(KEYID_NODEKEY)?.iter()? {
                let (k, v) = row?;
                out.push(NodeKeyRecord::decode(k.value(), v.value())?);
            }
            Ok(out)
        })
        .await
    }

    /// Adds a new signing key.
    pub async fn insert_node_key(&self, rec: NodeKeyRecord) -> Result<(), StoreError> {
        self.write(move |tx| {
            let mut t = tx.open_table(KEYID_NODEKEY)?;
            if t.get(rec.id.as_str())?.is_some() {
                return Err(StoreError::Conflict(super::Conflict::UserId));
            }
            t.insert(rec.id.as_str(), rec.encode().as_slice())?;
            Ok(())
        })
        .await
    }
}
