//! `Peers`: which nodes this node federates with (the `[[federation.peers]]` allowlist, or any
//! node when `federation.open` is set), their regions, how to reach them, and their signing
//! keys — fetched from `GET /_federation/v1/keys`, checked, cached until each key's
//! `valid_until`, and fetched again when a request names a key id not in the cache — and the
//! limits each publishes in that document (the largest media it takes).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use federation::{
    ClientError, Connection, KeyDocument, KeyId, PeerTarget, PublicKey, sign_request, tls_config,
};
use http::{Method, StatusCode};

use super::reach::{Reachability, client_error_kind, status_failed};
use crate::config::FederationConfig;
use crate::signing::NodeKeys;
use crate::time::SharedClock;

/// Least time between two key fetches from one peer caused by unknown key ids, so a peer
/// cannot make this node fetch on every request.
const REFETCH_GAP_MS: u64 = 10_000;

/// Errors of talking to peers.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("{0} is not a peer of this node")]
    NotAllowed(String),
    #[error("{peer} could not be reached: {reason}")]
    Unreachable { peer: String, reason: String },
    #[error("{peer} answered {status}")]
    Status { peer: String, status: u16 },
    #[error("{peer}'s keys: {reason}")]
    BadKeys { peer: String, reason: String },
    #[error("{peer} has no valid key {key}")]
    UnknownKey { peer: String, key: String },
}

/// One peer as configured (or, in open federation, as met).
#[derive(Debug, Clone)]
pub struct Peer {
    pub domain: String,
    /// `None`: not known (open federation) — treated as another region.
    pub region: Option<String>,
    target: PeerTarget,
}

#[derive(Debug, Default)]
struct KeyCache {
    keys: HashMap<String, PublicKey>,
    fetched: u64,
}

/// Most origins met through open federation whose keys are kept at once; past it, the one
/// used least recently goes (configured peers are always kept). Only an origin whose request
/// passed every check that needs no key gets an entry, but anyone can run many domains.
pub const MAX_OPEN_ORIGINS: usize = 1024;

/// One origin's cached keys, and when they were last asked for (for eviction).
#[derive(Debug)]
struct Slot {
    cache: Arc<tokio::sync::Mutex<KeyCache>>,
    used: u64,
}

/// The peers and their keys.
#[derive(Debug)]
pub struct Peers {
    domain: String,
    region: String,
    open: bool,
    listed: HashMap<String, Peer>,
    node_keys: Arc<NodeKeys>,
    /// Told the outcome of every request to a peer.
    reach: Arc<Reachability>,
    clock: SharedClock,
    /// Peers' keys, by domain; entries for unlisted origins at most [`MAX_OPEN_ORIGINS`].
    keys: Mutex<HashMap<String, Slot>>,
    /// Counts uses, for least-recently-used eviction.
    uses: std::sync::atomic::AtomicU64,
    /// The largest media each peer published that it takes (from its key document).
    media_limits: Mutex<HashMap<String, u64>>,
}

impl Peers {
    /// The peers of `config`; CA files are read here (errors name the peer).
    pub fn new(
        domain: &str,
        region: &str,
        config: &FederationConfig,
        node_keys: Arc<NodeKeys>,
        reach: Arc<Reachability>,
        clock: SharedClock,
    ) -> Result<Peers, String> {
        let mut listed = HashMap::new();
        for p in &config.peers {
            let ca = match &p.ca_file.0 {
                Some(path) => Some(std::fs::read(path).map_err(|e| {
                    format!(
                        "federation peer {}: ca_file {}: {e}",
                        p.domain,
                        path.display()
                    )
                })?),
                None => None,
            };
            let tls = tls_config(ca.as_deref())
                .map_err(|e| format!("federation peer {}: {e}", p.domain))?;
            listed.insert(
                p.domain.as_str().to_string(),
                Peer {
                    domain: p.domain.as_str().to_string(),
                    region: Some(p.region.as_str().to_string()),
                    target: PeerTarget {
                        domain: p.domain.as_str().to_string(),
                        host: p.url.host.clone(),
                        port: p.url.port,
                        tls,
                        public_only: false,
                    },
                },
            );
        }
        Ok(Peers {
            domain: domain.to_string(),
            region: region.to_string(),
            open: config.open,
            listed,
            node_keys,
            reach,
            clock,
            keys: Mutex::new(HashMap::new()),
            uses: std::sync::atomic::AtomicU64::new(0),
            media_limits: Mutex::new(HashMap::new()),
        })
    }

    /// This node's domain.
    pub fn own_domain(&self) -> &str {
        &self.domain
    }

    /// This node's signing keys.
    pub fn node_keys(&self) -> &NodeKeys {
        &self.node_keys
    }

    /// The peer `domain`, if this node federates with it.
    pub fn get(&self, domain: &str) -> Result<Peer, PeerError> {
        if let Some(p) = self.listed.get(domain) {
            return Ok(p.clone());
        }
        // A node met through open federation is a public DNS name (no port, no IP literal,
        // nothing under localhost), reached on port 443 of public addresses only.
        if self.open && domain != self.domain && federation::valid_public_domain(domain) {
            let tls = tls_config(None).map_err(|e| PeerError::Unreachable {
                peer: domain.to_string(),
                reason: e.to_string(),
            })?;
            return Ok(Peer {
                domain: domain.to_string(),
                region: None,
                target: PeerTarget {
                    domain: domain.to_string(),
                    host: domain.to_string(),
                    port: 443,
                    tls,
                    public_only: true,
                },
            });
        }
        Err(PeerError::NotAllowed(domain.to_string()))
    }

    /// Whether a local user's data may go to `peer` only with their `cross_border_transfer`
    /// consent: the peer's region differs from this node's, or is unknown. `None` if the
    /// peer is the same region.
    pub fn foreign_region(&self, peer: &Peer) -> Option<String> {
        match &peer.region {
            Some(r) if *r == self.region => None,
            Some(r) => Some(r.clone()),
            None => Some("unknown".into()),
        }
    }

    /// Opens a connection to `peer`.
    pub async fn connect(&self, peer: &Peer) -> Result<Connection, PeerError> {
        peer.target.connect().await.map_err(|e| {
            self.failed(peer, client_error_kind(&e));
            unreachable(&peer.domain, &e)
        })
    }

    fn failed(&self, peer: &Peer, kind: String) {
        let listed = self.listed.contains_key(&peer.domain);
        self.reach
            .failed(&peer.domain, listed, kind, self.clock.now());
    }

    /// Sends a signed request on `conn`.
    pub async fn send(
        &self,
        conn: &mut Connection,
        peer: &Peer,
        method: Method,
        path: &str,
        body: Bytes,
    ) -> Result<(StatusCode, Bytes), PeerError> {
        let key = self.node_keys.current();
        let auth = sign_request(
            &key,
            method.as_str(),
            path,
            &self.domain,
            &peer.domain,
            self.clock.now().0,
            &body,
        );
        match conn.send(method, path, &auth, body).await {
            Ok((status, answer)) => {
                if status_failed(status.as_u16()) {
                    self.failed(peer, format!("status_{}", status.as_u16()));
                } else {
                    let listed = self.listed.contains_key(&peer.domain);
                    self.reach.reached(&peer.domain, listed, self.clock.now());
                }
                Ok((status, answer))
            }
            Err(e) => {
                self.failed(peer, client_error_kind(&e));
                Err(unreachable(&peer.domain, &e))
            }
        }
    }

    /// One signed request on a fresh connection.
    pub async fn request(
        &self,
        peer: &Peer,
        method: Method,
        path: &str,
        body: Bytes,
    ) -> Result<(StatusCode, Bytes), PeerError> {
        let mut conn = self.connect(peer).await?;
        self.send(&mut conn, peer, method, path, body).await
    }

    /// The cache entry of `domain` (an allowed peer), made if new; when that would exceed
    /// [`MAX_OPEN_ORIGINS`] unlisted origins, the least recently used unlisted one goes first.
    fn slot(&self, domain: &str) -> Arc<tokio::sync::Mutex<KeyCache>> {
        let used = self.uses.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut all = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = all.get_mut(domain) {
            s.used = used;
            return s.cache.clone();
        }
        if !self.listed.contains_key(domain) {
            let unlisted = all.keys().filter(|d| !self.listed.contains_key(*d)).count();
            if unlisted >= MAX_OPEN_ORIGINS {
                let oldest = all
                    .iter()
                    .filter(|(d, _)| !self.listed.contains_key(*d))
                    .min_by_key(|(_, s)| s.used)
                    .map(|(d, _)| d.clone());
                if let Some(d) = oldest {
                    all.remove(&d);
                    self.media_limits
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&d);
                }
            }
        }
        let cache = Arc::new(tokio::sync::Mutex::new(KeyCache::default()));
        all.insert(
            domain.to_string(),
            Slot {
                cache: cache.clone(),
                used,
            },
        );
        cache
    }

    /// How many origins' keys are cached (for tests of the bound).
    #[cfg(test)]
    fn cached_origins(&self) -> usize {
        self.keys.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// The key `id` of `domain` (this node's own keys included), valid at `at`. Fetches the
    /// peer's key document when the id is not cached or has expired.
    pub async fn key(&self, domain: &str, id: &KeyId, at: u64) -> Result<PublicKey, PeerError> {
        let unknown = || PeerError::UnknownKey {
            peer: domain.to_string(),
            key: id.as_str().to_string(),
        };
        if domain == self.domain {
            return self
                .node_keys
                .public_keys()
                .into_iter()
                .find(|k| k.id == *id && at <= k.valid_until)
                .ok_or_else(unknown);
        }
        let peer = self.get(domain)?;
        let slot = self.slot(domain);
        let mut cache = slot.lock().await;
        let now = self.clock.now();
        if let Some(k) = cache.keys.get(id.as_str())
            && now.0 <= k.valid_until
        {
            return if at <= k.valid_until {
                Ok(k.clone())
            } else {
                Err(unknown())
            };
        }
        if cache.fetched != 0 && now.0.saturating_sub(cache.fetched) < REFETCH_GAP_MS {
            return Err(unknown());
        }
        self.fetch_document(&peer, &mut cache).await?;
        match cache.keys.get(id.as_str()) {
            Some(k) if at <= k.valid_until => Ok(k.clone()),
            _ => Err(unknown()),
        }
    }
}

impl Peers {
    /// Fetches `peer`'s key document and keeps its keys and published limits.
    async fn fetch_document(&self, peer: &Peer, cache: &mut KeyCache) -> Result<(), PeerError> {
        let domain = peer.domain.as_str();
        let (status, body) = self
            .request(peer, Method::GET, "/_federation/v1/keys", Bytes::new())
            .await?;
        cache.fetched = self.clock.now().0;
        if status != StatusCode::OK {
            return Err(PeerError::Status {
                peer: domain.to_string(),
                status: status.as_u16(),
            });
        }
        let bad = |reason: String| PeerError::BadKeys {
            peer: domain.to_string(),
            reason,
        };
        let doc: KeyDocument = federation::parse_json(&body)
            .and_then(|v| {
                serde_json::from_value(v).map_err(|e| federation::JsonError::Syntax(e.to_string()))
            })
            .map_err(|e| bad(e.to_string()))?;
        let keys = doc.verify(domain).map_err(|e| bad(e.to_string()))?;
        cache.keys = keys
            .into_iter()
            .map(|k| (k.id.as_str().to_string(), k))
            .collect();
        let mut limits = self.media_limits.lock().unwrap_or_else(|p| p.into_inner());
        match doc.limits.and_then(|l| l.media_max_bytes) {
            Some(max) => limits.insert(domain.to_string(), max),
            None => limits.remove(domain),
        };
        Ok(())
    }

    /// The largest media `domain` published that it takes, if this node has its document.
    pub fn media_limit(&self, domain: &str) -> Option<u64> {
        self.media_limits
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(domain)
            .copied()
    }

    /// Makes sure `domain`'s published limits are known: fetches its key document unless it
    /// was fetched already (or less than the refetch gap ago). Failures leave them unknown.
    pub async fn learn_limits(&self, domain: &str) -> Result<(), PeerError> {
        let peer = self.get(domain)?;
        let slot = self.slot(domain);
        let mut cache = slot.lock().await;
        let now = self.clock.now().0;
        if cache.fetched != 0
            && (!cache.keys.is_empty() || now.saturating_sub(cache.fetched) < REFETCH_GAP_MS)
        {
            return Ok(());
        }
        self.fetch_document(&peer, &mut cache).await
    }
}

fn unreachable(peer: &str, e: &ClientError) -> PeerError {
    PeerError::Unreachable {
        peer: peer.to_string(),
        reason: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::crypto::{MasterKey, SecretKey};
    use crate::time::{Clock, ManualClock, Millis};
    use storage::Store;

    async fn peers(open: bool, clock: Arc<ManualClock>) -> (tempfile::TempDir, Peers) {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(&dir.path().join("n.redb"), |_| Ok(None)).unwrap();
        let master = MasterKey::from_key(SecretKey::generate().unwrap());
        let keys = NodeKeys::load_or_create(&store, &master, clock.now())
            .await
            .unwrap();
        let config = Config::parse(
            &format!(
                "[server]\ndomain = \"a.example\"\n[federation]\nopen = {open}\n\
                 [[federation.peers]]\ndomain = \"cn.example\"\nurl = \"https://127.0.0.1:1\"\nregion = \"CN\"\n\
                 [[federation.peers]]\ndomain = \"eu.example\"\nurl = \"https://127.0.0.1:2\"\nregion = \"EU\"\n"
            ),
            "t",
        )
        .unwrap();
        let p = Peers::new(
            "a.example",
            "CN",
            &config.federation,
            Arc::new(keys),
            Arc::default(),
            clock,
        )
        .unwrap();
        (dir, p)
    }

    #[tokio::test]
    async fn only_listed_peers_unless_open_and_unknown_regions_count_as_foreign() {
        let clock = Arc::new(ManualClock::new(Millis(1_800_000_000_000)));
        let (_d, closed) = peers(false, clock.clone()).await;
        assert!(closed.get("cn.example").is_ok());
        assert!(matches!(
            closed.get("other.example"),
            Err(PeerError::NotAllowed(_))
        ));
        assert_eq!(
            closed.foreign_region(&closed.get("cn.example").unwrap()),
            None
        );
        assert_eq!(
            closed.foreign_region(&closed.get("eu.example").unwrap()),
            Some("EU".into())
        );
        let (_d, open) = peers(true, clock).await;
        let stranger = open.get("other.example").unwrap();
        assert_eq!(open.foreign_region(&stranger), Some("unknown".into()));
        assert!(open.get("a.example").is_err(), "never itself");
        assert!(open.get("Not A Domain").is_err());
    }

    #[tokio::test]
    async fn open_federation_meets_only_public_dns_names_on_port_443_of_public_addresses() {
        let clock = Arc::new(ManualClock::new(Millis(1_800_000_000_000)));
        let (_d, open) = peers(true, clock).await;
        for forger in [
            "localhost:22",
            "localhost",
            "a.localhost",
            "other.example:22",
            "other.example:443",
            "127.0.0.1",
            "10.0.0.1",
            "intranet",
        ] {
            assert!(
                matches!(open.get(forger), Err(PeerError::NotAllowed(_))),
                "{forger}"
            );
            let id = KeyId::parse("ed25519:k").unwrap();
            assert!(
                matches!(
                    open.key(forger, &id, 0).await,
                    Err(PeerError::NotAllowed(_))
                ),
                "{forger}"
            );
        }
        assert_eq!(
            open.cached_origins(),
            0,
            "no cache entry for a refused origin"
        );
        let stranger = open.get("other.example").unwrap();
        assert_eq!(
            (
                stranger.target.host.as_str(),
                stranger.target.port,
                stranger.target.public_only
            ),
            ("other.example", 443, true)
        );
        // A configured peer keeps its configured address, loopback included.
        let listed = open.get("cn.example").unwrap();
        assert_eq!(
            (
                listed.target.host.as_str(),
                listed.target.port,
                listed.target.public_only
            ),
            ("127.0.0.1", 1, false)
        );
    }

    #[tokio::test]
    async fn the_key_cache_holds_a_bounded_number_of_open_origins_and_keeps_configured_peers() {
        let clock = Arc::new(ManualClock::new(Millis(1_800_000_000_000)));
        let (_d, open) = peers(true, clock).await;
        open.slot("cn.example");
        for i in 0..MAX_OPEN_ORIGINS + 500 {
            open.slot(&format!("o{i}.example"));
            if i % 100 == 0 {
                open.slot("cn.example"); // used now and then; kept whatever happens
            }
        }
        assert_eq!(open.cached_origins(), MAX_OPEN_ORIGINS + 1);
        let all = open.keys.lock().unwrap();
        assert!(all.contains_key("cn.example"));
        assert!(
            !all.contains_key("o0.example"),
            "the least recently used went"
        );
        assert!(all.contains_key(&format!("o{}.example", MAX_OPEN_ORIGINS + 499)));
    }

    #[tokio::test]
    async fn a_key_verifies_only_what_was_signed_while_it_was_valid() {
        let clock = Arc::new(ManualClock::new(Millis(1_800_000_000_000)));
        let (_d, p) = peers(false, clock.clone()).await;
        let own = p.node_keys().current().public();
        let id = own.id.clone();
        assert!(p.key("a.example", &id, own.valid_until).await.is_ok());
        assert!(matches!(
            p.key("a.example", &id, own.valid_until + 1).await,
            Err(PeerError::UnknownKey { .. })
        ));
        let unknown = KeyId::parse("ed25519:nope").unwrap();
        assert!(p.key("a.example", &unknown, 0).await.is_err());
        assert!(matches!(
            p.key("other.example", &id, 0).await,
            Err(PeerError::NotAllowed(_))
        ));
    }
}
