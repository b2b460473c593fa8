//! Whether this node reaches its peers: for each peer domain, when a request to it last
//! succeeded and last failed, the *kind* of the last failure (never its text, which could name
//! addresses) and how many failed in a row. Every request to a peer — deliveries, key fetches,
//! media fetches, profile look-ups — goes through `Peers`, which reports here. Kept in memory
//! (exact on a running node) and saved to the database by [`keep_saved`] every few seconds
//! and once more at shutdown, so a restarted or stopped node still shows what it knew.
//!
//! A request *failed* when it got no answer (connecting, TLS, the exchange or a timeout) or an
//! answer that says the peer could not take it now (5xx, 408, 429) or did not accept this
//! node's signature (401, 403). Any other answer counts as reached.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use federation::ClientError;
use tokio::sync::watch;

use crate::time::Millis;
use storage::{ReachRow, Store};

/// Most peer domains tracked: configured peers always, open-federation ones up to this many.
const MAX_TRACKED: usize = 1024;

/// How often what changed is saved.
pub const SAVE_EVERY: Duration = Duration::from_secs(5);

/// One peer's reachability.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reach {
    pub last_success: Option<Millis>,
    pub last_failure: Option<Millis>,
    /// `connect`, `tls_config`, `timeout`, `request`, `not_public`, `other` or `status_NNN`.
    pub last_error: Option<String>,
    pub consecutive_failures: u64,
}

impl Reach {
    fn row(&self) -> ReachRow {
        (
            self.last_success.map_or(0, |m| m.0),
            self.last_failure.map_or(0, |m| m.0),
            self.consecutive_failures,
            self.last_error.clone().unwrap_or_default(),
        )
    }

    fn from_row((ok, failed, n, kind): ReachRow) -> Reach {
        Reach {
            last_success: (ok != 0).then_some(Millis(ok)),
            last_failure: (failed != 0).then_some(Millis(failed)),
            last_error: (!kind.is_empty()).then_some(kind),
            consecutive_failures: n,
        }
    }
}

/// The kind of a failed request, for [`Reachability::failed`].
pub fn client_error_kind(e: &ClientError) -> String {
    match e {
        ClientError::CaFile(_) | ClientError::ServerName => "tls_config",
        ClientError::Connect(_) => "connect",
        ClientError::NotPublic => "not_public",
        ClientError::Request(_) => "request",
        ClientError::Timeout => "timeout",
        _ => "other",
    }
    .to_string()
}

/// Whether an answer with `status` means the peer did not take the request.
pub fn status_failed(status: u16) -> bool {
    status >= 500 || matches!(status, 401 | 403 | 408 | 429)
}

#[derive(Debug, Default)]
struct State {
    peers: HashMap<String, Reach>,
    /// Changed since the last save.
    dirty: HashSet<String>,
}

/// Every peer's reachability (see the module's text).
#[derive(Debug, Default)]
pub struct Reachability {
    state: Mutex<State>,
}

impl Reachability {
    /// Starts from what was saved.
    pub fn seeded(rows: Vec<(String, ReachRow)>) -> Reachability {
        let peers = rows
            .into_iter()
            .map(|(d, r)| (d, Reach::from_row(r)))
            .collect();
        Reachability {
            state: Mutex::new(State {
                peers,
                dirty: HashSet::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn update(&self, peer: &str, listed: bool, f: impl FnOnce(&mut Reach)) {
        let mut s = self.lock();
        if !s.peers.contains_key(peer) {
            if !listed && s.peers.len() >= MAX_TRACKED {
                return;
            }
            s.peers.insert(peer.to_string(), Reach::default());
        }
        if let Some(r) = s.peers.get_mut(peer) {
            f(r);
        }
        s.dirty.insert(peer.to_string());
    }

    /// A request to `peer` was answered (`listed`: a configured peer, always tracked).
    pub fn reached(&self, peer: &str, listed: bool, now: Millis) {
        self.update(peer, listed, |r| {
            r.last_success = Some(now);
            r.consecutive_failures = 0;
        });
    }

    /// A request to `peer` failed, for the reason `kind`.
    pub fn failed(&self, peer: &str, listed: bool, kind: String, now: Millis) {
        self.update(peer, listed, |r| {
            r.last_failure = Some(now);
            r.last_error = Some(kind);
            r.consecutive_failures = r.consecutive_failures.saturating_add(1);
        });
    }

    /// What is known of `peer`.
    pub fn of(&self, peer: &str) -> Option<Reach> {
        self.lock().peers.get(peer).cloned()
    }

    /// Takes the changed entries, to be saved.
    fn take_dirty(&self) -> Vec<(String, ReachRow)> {
        let mut s = self.lock();
        let dirty = std::mem::take(&mut s.dirty);
        dirty
            .into_iter()
            .filter_map(|d| s.peers.get(&d).map(|r| (d, r.row())))
            .collect()
    }

    /// Marks entries changed again (their save failed).
    fn put_back(&self, rows: &[(String, ReachRow)]) {
        let mut s = self.lock();
        s.dirty.extend(rows.iter().map(|(d, _)| d.clone()));
    }
}

/// Saves what changed since the last save.
pub async fn save(store: &Store, reach: &Reachability) {
    let rows = reach.take_dirty();
    if let Err(e) = store.save_peer_reach(rows.clone()).await {
        tracing::warn!(error = %e, "saving peers' reachability failed; will retry");
        reach.put_back(&rows);
    }
}

/// Saves what changed every [`SAVE_EVERY`] until `stop` flips (the node saves once more after
/// its last request to a peer).
pub async fn keep_saved(
    store: Store,
    reach: std::sync::Arc<Reachability>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let stopping = tokio::select! {
            _ = tokio::time::sleep(SAVE_EVERY) => false,
            _ = stop.wait_for(|s| *s) => true,
        };
        if stopping {
            return;
        }
        save(&store, &reach).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_count_in_a_row_until_a_success_and_survive_a_save_and_seed() {
        let r = Reachability::default();
        r.failed("b.example", true, "connect".into(), Millis(10));
        r.failed("b.example", true, "status_503".into(), Millis(20));
        let b = r.of("b.example").unwrap();
        assert_eq!(b.consecutive_failures, 2);
        assert_eq!(b.last_error.as_deref(), Some("status_503"));
        assert_eq!(b.last_success, None);
        r.reached("b.example", true, Millis(30));
        let b = r.of("b.example").unwrap();
        assert_eq!(b.consecutive_failures, 0);
        assert_eq!(b.last_success, Some(Millis(30)));
        assert_eq!(b.last_failure, Some(Millis(20)), "the last failure is kept");
        let rows = r.take_dirty();
        assert_eq!(rows.len(), 1);
        assert!(r.take_dirty().is_empty(), "nothing changed since");
        let again = Reachability::seeded(rows);
        assert_eq!(again.of("b.example"), Some(b));
    }

    #[test]
    fn unlisted_domains_are_tracked_only_up_to_the_bound() {
        let r = Reachability::default();
        for i in 0..MAX_TRACKED + 10 {
            r.reached(&format!("o{i}.example"), false, Millis(1));
        }
        assert!(r.of(&format!("o{}.example", MAX_TRACKED + 5)).is_none());
        r.reached("listed.example", true, Millis(1));
        assert!(
            r.of("listed.example").is_some(),
            "a configured peer always is"
        );
    }

    #[test]
    fn which_answers_count_as_failures() {
        for s in [500, 503, 401, 403, 408, 429] {
            assert!(status_failed(s), "{s}");
        }
        for s in [200, 400, 404, 409, 413] {
            assert!(!status_failed(s), "{s}");
        }
    }
}
