//! Each table of the configuration (`[server]`, `[http]`, `[federation]` with its peers, …)
//! as a struct of validated values, and its default, the values `default-config.toml`
//! documents.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use super::{
    Bounded, Domain, LogFormat, LogLevel, NonEmptyPath, OptionalAddr, OptionalPath, PeerUrl,
    PolicyVersion, Region, TrustedProxies,
};
use crate::time::Date;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub domain: Domain,
    pub listen: SocketAddr,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    pub data_dir: NonEmptyPath,
    pub master_key_file: OptionalPath,
    /// Free bytes the data directory's file system must keep for `/health/ready` to say ready.
    pub min_free_bytes: Bounded<0, { 1 << 50 }>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    pub cert_file: OptionalPath,
    pub key_file: OptionalPath,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    pub max_body_bytes: Bounded<1024, { 1 << 30 }>,
    pub max_connections: Bounded<1, 1_000_000>,
    pub header_read_timeout_ms: Bounded<100, 600_000>,
    pub idle_timeout_ms: Bounded<100, 3_600_000>,
    pub shutdown_grace_ms: Bounded<0, 600_000>,
    /// A request body may take this long, plus one second per `body_min_bytes_per_sec`
    /// bytes received; slower or stalled bodies get 408 and the connection is closed.
    pub body_read_timeout_ms: Bounded<100, 600_000>,
    pub body_min_bytes_per_sec: Bounded<1, { 1 << 30 }>,
    /// After answering before a body was read (401, 404, 413, …), the rest of the body is
    /// read and discarded for at most this long and this many bytes, so that a client that
    /// sends its whole body first still sees the answer.
    pub linger_ms: Bounded<0, 60_000>,
    pub linger_max_bytes: Bounded<0, { 1 << 30 }>,
    /// Reverse proxies whose `X-Forwarded-For` names the client (addresses or CIDR ranges).
    pub trusted_proxies: TrustedProxies,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ResidencyConfig {
    pub region: Region,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    pub version: PolicyVersion,
    pub effective: Date,
    pub zh_file: OptionalPath,
    pub en_file: OptionalPath,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityConfig {
    pub login_max_failures: Bounded<1, 1000>,
    pub login_window_secs: Bounded<1, 86_400>,
    /// Password hashes computed at once; 0 means one per CPU core (`hash_concurrency()`).
    pub password_hash_concurrency: Bounded<0, 64>,
    /// Logins and registrations that may wait for a hashing thread; beyond it they get 503.
    pub password_hash_queue_max: Bounded<0, 100_000>,
}

/// Per-client limits on requests made without an account (a client: an IPv4 address or an
/// IPv6 /64). Each is requests per period, all of which may come at once; 0: no limit.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    pub register_per_hour: Bounded<0, 1_000_000>,
    pub login_per_minute: Bounded<0, 1_000_000>,
    pub public_per_minute: Bounded<0, 1_000_000>,
    pub federation_per_minute: Bounded<0, 10_000_000>,
    pub token_lookups_per_minute: Bounded<0, 1_000_000>,
    /// Clients tracked per group at most.
    pub max_clients: Bounded<1_000, 10_000_000>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MessagingConfig {
    pub recall_window_secs: Bounded<0, 86_400>,
    pub max_group_members: Bounded<2, 100_000>,
    pub purge_interval_secs: Bounded<1, 86_400>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MediaConfig {
    pub max_bytes: Bounded<1024, { 4 << 30 }>,
    pub quota_bytes: Bounded<1024, { 1 << 50 }>,
    /// Uploads received, stripped and stored at once; one more is answered 503 with
    /// `Retry-After`. Each holds up to about three times `max_bytes` in memory while it runs.
    pub max_concurrent_uploads: Bounded<1, 4096>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FederationConfig {
    /// Talk to nodes that are not listed in `peers` (their region is then unknown, which
    /// counts as another region). Off by default.
    pub open: bool,
    /// Longest wait between delivery attempts to an unreachable peer, in seconds.
    pub retry_max_secs: Bounded<1, 86_400>,
    /// Envelopes that may wait for one peer; beyond it, operations that would add to the
    /// queue are refused (503) instead of dropping anything.
    pub queue_max: Bounded<1, 100_000_000>,
    /// Pacing: a local user's send that queued an envelope for a peer is answered once at
    /// most this many envelopes wait for that peer (0: answer at once).
    pub pace_depth: Bounded<0, 100_000>,
    /// The longest a send waits for pacing, in milliseconds; it is answered then anyway.
    pub pace_wait_ms: Bounded<1, 60_000>,
    /// The longest a call to the host of another node's community (a read or a write a user
    /// waits for) may take, retries included, in milliseconds; then the user is told the host
    /// is not answering.
    pub community_call_timeout_ms: Bounded<100, 120_000>,
    pub peers: Vec<PeerConfig>,
}

/// One partner node.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    pub domain: Domain,
    pub url: PeerUrl,
    pub region: Region,
    /// PEM file of the CA (or certificate) the peer's TLS certificate must chain to; empty
    /// means the public web PKI roots. TLS is verified either way.
    #[serde(default = "no_path")]
    pub ca_file: OptionalPath,
}

fn no_path() -> OptionalPath {
    OptionalPath(None)
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccountsConfig {
    /// Days between a user's deletion request and the erasure; they may cancel meanwhile.
    pub deletion_cooling_off_days: Bounded<0, 365>,
}

/// Friend requests' limits (issue 22).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FriendsConfig {
    /// Pending requests one user may have sent at a time.
    pub max_pending_outgoing: Bounded<1, 10_000>,
    /// Requests one user may send per UTC day.
    pub requests_per_day: Bounded<1, 10_000>,
    /// Days a declined request cannot be sent again.
    pub declined_resend_days: Bounded<0, 3_650>,
    /// Days answered and cancelled requests are kept before they are removed.
    pub closed_requests_days: Bounded<1, 3_650>,
}

/// The privacy centre's rules.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrivacyConfig {
    /// Age of consent in the node's region: a user with a birthday less than this many years
    /// ago is a minor, whose optional purposes need a guardian's consent.
    pub adult_age: Bounded<1, 30>,
    /// Least time between two exports of one user's data (hours; 0 = no limit).
    pub export_interval_hours: Bounded<0, 8_760>,
}

/// How long each category of data is kept (days; 0 = no maximum).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    pub interval_secs: Bounded<1, 86_400>,
    pub messages_max_days: Bounded<0, 36_500>,
    pub media_max_days: Bounded<0, 36_500>,
    pub undelivered_max_days: Bounded<0, 36_500>,
    pub sessions_inactive_days: Bounded<0, 36_500>,
    pub security_logs_min_days: Bounded<0, 36_500>,
    pub security_logs_max_days: Bounded<0, 36_500>,
    /// How long the ids of envelopes received from peers are kept to recognise a resend.
    pub federation_seen_days: Bounded<0, 36_500>,
    /// How long a device's client transaction ids are kept to recognise a resent message
    /// (0: until the device's session ends).
    pub txn_ids_days: Bounded<0, 36_500>,
    /// Communities: posts (with their comments), comments, and each community's moderation
    /// log, removed after this many days (0: no maximum).
    pub community_posts_max_days: Bounded<0, 36_500>,
    pub community_comments_max_days: Bounded<0, 36_500>,
    pub community_log_max_days: Bounded<0, 36_500>,
    /// How long searches are kept in a user's recent searches (only with `personalisation`).
    pub search_log_days: Bounded<1, 3_650>,
    /// How long behaviour events (follows, favourites, views, shares) are kept for suggested
    /// communities (only with `personalisation`).
    pub behaviour_log_days: Bounded<1, 3_650>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub level: LogLevel,
    /// `text` (human-readable) or `json` (one object a line, for log collectors).
    pub format: LogFormat,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Where `GET /metrics` is served over plain HTTP; empty: no metrics listener.
    pub listen: OptionalAddr,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            domain: Domain("localhost".into()),
            listen: SocketAddr::from(([127, 0, 0, 1], 8443)),
        }
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            data_dir: NonEmptyPath(PathBuf::from("./data")),
            master_key_file: OptionalPath(None),
            min_free_bytes: Bounded(64 << 20),
        }
    }
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            cert_file: OptionalPath(None),
            key_file: OptionalPath(None),
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            max_body_bytes: Bounded(1 << 20),
            max_connections: Bounded(10_000),
            header_read_timeout_ms: Bounded(10_000),
            idle_timeout_ms: Bounded(60_000),
            shutdown_grace_ms: Bounded(10_000),
            body_read_timeout_ms: Bounded(10_000),
            body_min_bytes_per_sec: Bounded(1024),
            linger_ms: Bounded(5_000),
            linger_max_bytes: Bounded(8 << 20),
            trusted_proxies: TrustedProxies::default(),
        }
    }
}

impl Default for ResidencyConfig {
    fn default() -> Self {
        ResidencyConfig {
            region: Region("CN".into()),
        }
    }
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            version: PolicyVersion("2026-11-29".into()),
            effective: Date {
                year: 2026,
                month: 11,
                day: 29,
            },
            zh_file: OptionalPath(None),
            en_file: OptionalPath(None),
        }
    }
}

impl Default for SecurityConfig {
    fn default() -> Self {
        SecurityConfig {
            login_max_failures: Bounded(5),
            login_window_secs: Bounded(900),
            password_hash_concurrency: Bounded(0),
            password_hash_queue_max: Bounded(32),
        }
    }
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            register_per_hour: Bounded(20),
            login_per_minute: Bounded(30),
            public_per_minute: Bounded(300),
            federation_per_minute: Bounded(6_000),
            token_lookups_per_minute: Bounded(60),
            max_clients: Bounded(100_000),
        }
    }
}

impl RateLimitConfig {
    /// Turns every per-client limit off (a test harness whose many clients share loopback).
    pub fn disable_all(&mut self) {
        let max_clients = self.max_clients;
        *self = RateLimitConfig {
            register_per_hour: Bounded(0),
            login_per_minute: Bounded(0),
            public_per_minute: Bounded(0),
            federation_per_minute: Bounded(0),
            token_lookups_per_minute: Bounded(0),
            max_clients,
        };
    }
}

impl Default for MessagingConfig {
    fn default() -> Self {
        MessagingConfig {
            recall_window_secs: Bounded(120),
            max_group_members: Bounded(500),
            purge_interval_secs: Bounded(60),
        }
    }
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            max_bytes: Bounded(20 << 20),
            quota_bytes: Bounded(1 << 30),
            max_concurrent_uploads: Bounded(8),
        }
    }
}

impl Default for FederationConfig {
    fn default() -> Self {
        FederationConfig {
            open: false,
            retry_max_secs: Bounded(300),
            queue_max: Bounded(100_000),
            pace_depth: Bounded(12),
            pace_wait_ms: Bounded(1_000),
            community_call_timeout_ms: Bounded(10_000),
            peers: Vec::new(),
        }
    }
}

impl Default for AccountsConfig {
    fn default() -> Self {
        AccountsConfig {
            deletion_cooling_off_days: Bounded(7),
        }
    }
}

impl Default for FriendsConfig {
    fn default() -> Self {
        FriendsConfig {
            max_pending_outgoing: Bounded(100),
            requests_per_day: Bounded(50),
            declined_resend_days: Bounded(30),
            closed_requests_days: Bounded(90),
        }
    }
}

impl Default for PrivacyConfig {
    fn default() -> Self {
        PrivacyConfig {
            adult_age: Bounded(18),
            export_interval_hours: Bounded(24),
        }
    }
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            interval_secs: Bounded(3600),
            messages_max_days: Bounded(0),
            media_max_days: Bounded(0),
            undelivered_max_days: Bounded(30),
            sessions_inactive_days: Bounded(180),
            security_logs_min_days: Bounded(183),
            security_logs_max_days: Bounded(0),
            federation_seen_days: Bounded(30),
            txn_ids_days: Bounded(1),
            community_posts_max_days: Bounded(0),
            community_comments_max_days: Bounded(0),
            community_log_max_days: Bounded(365),
            search_log_days: Bounded(30),
            behaviour_log_days: Bounded(90),
        }
    }
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            listen: OptionalAddr(None),
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: LogLevel(tracing::Level::INFO),
            format: LogFormat::Text,
        }
    }
}

impl SecurityConfig {
    /// How many password hashes may run at once: the configured number, or with 0 one per CPU
    /// core (one if the count cannot be read).
    pub fn hash_concurrency(&self) -> usize {
        match self.password_hash_concurrency.get() {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n as usize,
        }
    }
}
