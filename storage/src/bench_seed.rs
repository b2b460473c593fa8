//! Bulk rows for the discovery benchmark (`node/benches/discovery.rs`): many users' friend
//! graphs, findable phones, consents and cells written in a few large transactions, which the
//! API would take hours to build one durable request at a time. Not used by the node itself.

use super::catalog::*;
use super::{ConsentEvent, Store, StoreError};
use primitives::time::Millis;

/// What to write.
#[doc(hidden)]
#[derive(Debug, Default)]
pub struct BenchSeed {
    /// Friendships (written from both ends, as the friends store does).
    pub friendships: Vec<(u64, u64)>,
    /// (user, purpose) grants.
    pub grants: Vec<(u64, &'static str)>,
    /// (contact index, user) of users findable by phone number.
    pub findable: Vec<([u8; 32], u64)>,
    /// (cell index, user, expiry ms) of located users.
    pub cells: Vec<([u8; 32], u64, u64)>,
}

impl Store {
    #[doc(hidden)]
    pub async fn seed_for_bench(&self, seed: BenchSeed) -> Result<(), StoreError> {
        let seed = std::sync::Arc::new(seed);
        self.write(move |tx| {
            for (i, (a, b)) in seed.friendships.iter().enumerate() {
                let link = (1, i as u64 + 1);
                USERID_USERID_FRIEND.insert(tx, &(*a, *b), &link)?;
                USERID_USERID_FRIEND.insert(tx, &(*b, *a), &link)?;
            }
            let mut c = tx.open_table(USERID_PURPOSE_CONSENT)?;
            for (u, purpose) in &seed.grants {
                let granted = ConsentEvent {
                    purpose: purpose.to_string(),
                    granted: true,
                    at: Millis(1),
                    policy_version: "bench".into(),
                    device_id: "bench".into(),
                }
                .encode();
                c.insert((*u, *purpose), granted.as_slice())?;
            }
            drop(c);
            for (index, u) in &seed.findable {
                CONTACTINDEX_USERID.insert(tx, index, u)?;
                let rec = super::codec::Enc::new(1).bool(true).bytes(index).finish();
                USERID_DISCOVERY.insert(tx, u, &rec)?;
            }
            for (index, u, exp) in &seed.cells {
                CELLINDEX_USERID.insert(tx, &(*index, *u), exp)?;
            }
            Ok(())
        })
        .await
    }
}
