//! Peers' reachability as stored (`peer_reach`): per peer domain, when a request to it last
//! succeeded and last failed, the kind of the last failure and how many failed in a row — so a
//! restarted node still shows what it knew. The live values are kept in memory by
//! `federate::Reachability`, which saves what changed now and then and at shutdown.

use super::catalog::PEER_REACH;
use super::{Store, StoreError};

/// One peer's reachability as stored: (last success ms, last failure ms, consecutive
/// failures, kind of the last failure); 0 and "" for never.
pub type ReachRow = (u64, u64, u64, String);

/// Rows of `peer_reach` read at a time.
const REACH_PAGE: usize = 256;

impl Store {
    /// Every peer's stored reachability: a node has few partners, read in pages of
    /// [`REACH_PAGE`] rows inside one read transaction.
    pub async fn peer_reach(&self) -> Result<Vec<(String, ReachRow)>, StoreError> {
        self.read(|tx| {
            let mut out: Vec<(String, ReachRow)> = Vec::new();
            loop {
                let page = PEER_REACH.page(tx, out.last().map(|(k, _)| k), REACH_PAGE)?;
                let done = page.len() < REACH_PAGE;
                out.extend(page);
                if done {
                    return Ok(out);
                }
            }
        })
        .await
    }

    /// Stores these peers' reachability, replacing what was stored for them.
    pub async fn save_peer_reach(&self, rows: Vec<(String, ReachRow)>) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        self.write(move |tx| {
            for (peer, row) in &rows {
                PEER_REACH.insert(tx, peer, row)?;
            }
            Ok(())
        })
        .await
    }
}
