//! Peers' reachability as stored (`peer_reach`): per peer domain, when a request to it last
//! succeeded and last failed, the kind of the last failure and how many failed in a row — so a
//! restarted node still shows what it knew. The live values are kept in memory by
//! `federate::Reachability`, which saves what changed now and then and at shutdown.

use redb::ReadableTable;

use super::catalog::PEER_REACH;
use super::{Store, StoreError};

/// One peer's reachability as stored: (last success ms, last failure ms, consecutive
/// failures, kind of the last failure); 0 and "" for never.
pub type ReachRow = (u64, u64, u64, String);

impl Store {
    /// Every peer's stored reachability.
    pub async fn peer_reach(&self) -> Result<Vec<(String, ReachRow)>, StoreError> {
        self.read(|tx| {
            let mut out = Vec::new();
            for row in tx.open_table(PEER_REACH)?.iter()? {
                let (k, v) = row?;
                let (ok, failed, n, kind) = v.value();
                out.push((k.value().to_string(), (ok, failed, n, kind.to_string())));
            }
            Ok(out)
        })
        .await
    }

    /// Stores these peers' reachability, replacing what was stored for them.
    pub async fn save_peer_reach(&self, rows: Vec<(String, ReachRow)>) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        self.write(move |tx| {
            let mut t = tx.open_table(PEER_REACH)?;
            for (peer, (ok, failed, n, kind)) in &rows {
                t.insert(peer.as_str(), (*ok, *failed, *n, kind.as_str()))?;
            }
            Ok(())
        })
        .await
    }
}
