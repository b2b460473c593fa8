//! The node's configuration: the TOML schema, its embedded documented default, and validation
//! that names the key and line of every mistake.
//!
//! Every value is checked while it is deserialised (newtypes with `try_from`), so a bad value's
//! error carries the span of that value and can be reported as `line N: key a.b: …`.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::time::Date;

/// The documented default configuration, printed by `chat-node --print-default-config`.
pub const DEFAULT_CONFIG_TOML: &str = include_str!("default-config.toml");

/// A validated node configuration.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub storage: StorageConfig,
    pub tls: TlsConfig,
    pub http: HttpConfig,
    pub residency: ResidencyConfig,
    pub policy: PolicyConfig,
    pub security: SecurityConfig,
    pub rate_limit: RateLimitConfig,
    pub messaging: MessagingConfig,
    pub media: MediaConfig,
    pub federation: FederationConfig,
    pub accounts: AccountsConfig,
    pub privacy: PrivacyConfig,
    pub retention: RetentionConfig,
    pub friends: FriendsConfig,
    pub log: LogConfig,
    pub metrics: MetricsConfig,
}

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

/// Why a configuration was refused. The message names the file, line and key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

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

impl Config {
    /// Parses and validates `text`; `origin` names the file in error messages.
    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let config = toml::from_str::<Config>(text).map_err(|e| {
            let (line, key) = match e.span() {
                Some(span) => locate(text, span.start),
                None => (None, None),
            };
            let mut message = format!("config {origin}");
            if let Some(line) = line {
                message.push_str(&format!(": line {line}"));
            }
            if let Some(key) = key {
                message.push_str(&format!(": key `{key}`"));
            }
            message.push_str(": ");
            message.push_str(e.message().trim());
            ConfigError { message }
        })?;
        config.check_rules().map_err(|(table, key, reason)| {
            let mut message = format!("config {origin}");
            if let Some(line) = line_of_key(text, table, key) {
                message.push_str(&format!(": line {line}"));
            }
            message.push_str(&format!(": key `{table}.{key}`: {reason}"));
            ConfigError { message }
        })?;
        Ok(config)
    }

    /// Rules that involve more than one value: (table, key, reason) of the first broken one.
    fn check_rules(&self) -> Result<(), (&'static str, &'static str, String)> {
        if self.media.max_bytes.get() > self.media.quota_bytes.get() {
            return Err((
                "media",
                "max_bytes",
                "is larger than media.quota_bytes: no upload could fit".into(),
            ));
        }
        match (&self.tls.cert_file.0, &self.tls.key_file.0) {
            (Some(_), None) => {
                return Err((
                    "tls",
                    "cert_file",
                    "is set but tls.key_file is not; set both or neither".into(),
                ));
            }
            (None, Some(_)) => {
                return Err((
                    "tls",
                    "key_file",
                    "is set but tls.cert_file is not; set both or neither".into(),
                ));
            }
            _ => {}
        }
        let r = &self.retention;
        if r.security_logs_min_days.get() < SECURITY_LOGS_FLOOR_DAYS {
            return Err((
                "retention",
                "security_logs_min_days",
                format!(
                    "is below {SECURITY_LOGS_FLOOR_DAYS} days: security logs must by law be kept at least six months"
                ),
            ));
        }
        if r.security_logs_max_days.get() != 0
            && r.security_logs_max_days.get() < r.security_logs_min_days.get()
        {
            return Err((
                "retention",
                "security_logs_max_days",
                format!(
                    "is below retention.security_logs_min_days ({}): security logs must be kept at least that long",
                    r.security_logs_min_days.get()
                ),
            ));
        }
        let f = &self.friends;
        if f.closed_requests_days.get() < f.declined_resend_days.get() {
            return Err((
                "friends",
                "closed_requests_days",
                format!(
                    "is below friends.declined_resend_days ({}): a declined request must be kept while it cannot be sent again",
                    f.declined_resend_days.get()
                ),
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for p in &self.federation.peers {
            if p.domain == self.server.domain {
                return Err((
                    "federation.peers",
                    "domain",
                    format!("`{}` is this node's own domain", p.domain),
                ));
            }
            if !seen.insert(p.domain.as_str()) {
                return Err((
                    "federation.peers",
                    "domain",
                    format!("`{}` is listed twice", p.domain),
                ));
            }
        }
        Ok(())
    }

    /// Checks that the files the configuration names exist and can be read (the master key is
    /// left out: the node creates it on first start).
    pub fn check_files(&self) -> Result<(), ConfigError> {
        let files = [
            ("tls.cert_file", &self.tls.cert_file.0),
            ("tls.key_file", &self.tls.key_file.0),
            ("policy.zh_file", &self.policy.zh_file.0),
            ("policy.en_file", &self.policy.en_file.0),
        ];
        let peer_files = self
            .federation
            .peers
            .iter()
            .map(|p| ("federation.peers.ca_file", &p.ca_file.0));
        for (key, path) in files.into_iter().chain(peer_files) {
            if let Some(p) = path
                && let Err(e) = std::fs::File::open(p)
            {
                return Err(ConfigError {
                    message: format!("config key `{key}`: {}: {e}", p.display()),
                });
            }
        }
        Ok(())
    }

    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            message: format!("config {origin}: cannot read: {e}"),
        })?;
        Config::parse(&text, &origin)
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.storage.data_dir.0
    }

    /// The master key file: the configured one, or `<data_dir>/master.key`.
    pub fn master_key_path(&self) -> PathBuf {
        match &self.storage.master_key_file.0 {
            Some(p) => p.clone(),
            None => self.data_dir().join("master.key"),
        }
    }
}

/// The 1-based line where `key` is written inside `[table]`, if it is written at all.
fn line_of_key(text: &str, table: &str, key: &str) -> Option<usize> {
    let mut current = String::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.starts_with('[') {
            current = t.trim_matches(|c| c == '[' || c == ']').trim().to_string();
        } else if current == table
            && let Some((k, _)) = t.split_once('=')
            && k.trim().trim_matches('"') == key
        {
            return Some(i + 1);
        }
    }
    None
}

/// Finds the 1-based line of byte `offset` and the dotted key written on that line (prefixed
/// by the nearest `[table]` header above it), when the line has the form `key = value`.
fn locate(text: &str, offset: usize) -> (Option<usize>, Option<String>) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line_no = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = text[line_start..].lines().next().unwrap_or("");
    let mut table = String::new();
    for l in before.lines() {
        let t = l.trim();
        if t.starts_with('[') && !t.starts_with("[[") {
            table = t.trim_matches(|c| c == '[' || c == ']').trim().to_string();
        } else if t.starts_with("[[") {
            table = t.trim_matches(|c| c == '[' || c == ']').trim().to_string();
        }
    }
    let trimmed = line.trim();
    let key = if trimmed.starts_with('[') {
        Some(
            trimmed
                .trim_matches(|c| c == '[' || c == ']')
                .trim()
                .to_string(),
        )
    } else {
        trimmed.split_once('=').map(|(k, _)| {
            let k = k.trim().trim_matches('"');
            if table.is_empty() {
                k.to_string()
            } else {
                format!("{table}.{k}")
            }
        })
    };
    (Some(line_no), key)
}

/// A DNS name, optionally with a port: what users' addresses end in.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Domain(String);

impl Domain {
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The host part, without any `:port`.
    pub fn host(&self) -> &str {
        self.0.split(':').next().unwrap_or(&self.0)
    }
}

impl TryFrom<String> for Domain {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let (host, port) = match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s.as_str(), None),
        };
        let labels_ok = !host.is_empty()
            && host.len() <= 253
            && host.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            });
        if !labels_ok {
            return Err(format!(
                "`{s}` is not a lower-case DNS name (letters, digits, '-', '.')"
            ));
        }
        if let Some(p) = port
            && !p.parse::<u16>().is_ok_and(|p| p != 0)
        {
            return Err(format!("`{s}` has an invalid port"));
        }
        Ok(Domain(s))
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A peer's base URL: `https://host[:port]`, no path, query or user info.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct PeerUrl {
    pub host: String,
    pub port: u16,
}

impl TryFrom<String> for PeerUrl {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let bad = || format!("`{s}` is not a URL of the form https://host[:port]");
        let rest = s.strip_prefix("https://").ok_or_else(|| {
            format!("`{s}` must start with https:// (federation is never unencrypted)")
        })?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.is_empty() || rest.contains(['/', '?', '#', '@']) {
            return Err(bad());
        }
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (
                h,
                p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(bad)?,
            ),
            _ => (rest, 443),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(bad());
        }
        Ok(PeerUrl {
            host: host.to_string(),
            port,
        })
    }
}

/// A path that must be given.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct NonEmptyPath(pub PathBuf);

impl TryFrom<String> for NonEmptyPath {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if s.trim().is_empty() {
            return Err("must not be empty".into());
        }
        Ok(NonEmptyPath(PathBuf::from(s)))
    }
}

/// A path that may be left empty (`""` means "not set").
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "String")]
pub struct OptionalPath(pub Option<PathBuf>);

impl From<String> for OptionalPath {
    fn from(s: String) -> Self {
        OptionalPath(if s.trim().is_empty() {
            None
        } else {
            Some(PathBuf::from(s))
        })
    }
}

/// The legal floor for keeping security (audit) logs: six months, in days.
pub const SECURITY_LOGS_FLOOR_DAYS: u64 = 183;

/// An integer within `[MIN, MAX]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "i64")]
pub struct Bounded<const MIN: u64, const MAX: u64>(pub u64);

impl<const MIN: u64, const MAX: u64> Bounded<MIN, MAX> {
    pub fn get(self) -> u64 {
        self.0
    }
}

impl<const MIN: u64, const MAX: u64> TryFrom<i64> for Bounded<MIN, MAX> {
    type Error = String;
    fn try_from(v: i64) -> Result<Self, String> {
        match u64::try_from(v) {
            Ok(u) if (MIN..=MAX).contains(&u) => Ok(Bounded(u)),
            _ => Err(format!("{v} is out of range: expected {MIN} to {MAX}")),
        }
    }
}

/// An ISO 3166-1 alpha-2 region code in upper case.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Region(String);

impl Region {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Region {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if s.len() == 2 && s.bytes().all(|b| b.is_ascii_uppercase()) {
            Ok(Region(s))
        } else {
            Err(format!(
                "`{s}` is not a two-letter upper-case region code such as \"CN\""
            ))
        }
    }
}

/// A policy version label: 1–64 of `[A-Za-z0-9._-]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct PolicyVersion(String);

impl PolicyVersion {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for PolicyVersion {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let ok = (1..=64).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if ok {
            Ok(PolicyVersion(s))
        } else {
            Err(format!(
                "`{s}` is not a version label (1-64 of A-Z a-z 0-9 . _ -)"
            ))
        }
    }
}

/// A tracing level name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct LogLevel(pub tracing::Level);

impl TryFrom<String> for LogLevel {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        match s.as_str() {
            "error" => Ok(LogLevel(tracing::Level::ERROR)),
            "warn" => Ok(LogLevel(tracing::Level::WARN)),
            "info" => Ok(LogLevel(tracing::Level::INFO)),
            "debug" => Ok(LogLevel(tracing::Level::DEBUG)),
            "trace" => Ok(LogLevel(tracing::Level::TRACE)),
            _ => Err(format!(
                "`{s}` is not one of error, warn, info, debug, trace"
            )),
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum LogFormat {
    Text,
    Json,
}

impl TryFrom<String> for LogFormat {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        match s.as_str() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(format!("`{s}` is not one of text, json")),
        }
    }
}

/// A socket address that may be left empty (`""` means "off").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct OptionalAddr(pub Option<SocketAddr>);

impl TryFrom<String> for OptionalAddr {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if s.trim().is_empty() {
            return Ok(OptionalAddr(None));
        }
        s.trim()
            .parse()
            .map(|a| OptionalAddr(Some(a)))
            .map_err(|_| format!("`{s}` is not an address:port such as 127.0.0.1:9464"))
    }
}

/// Addresses or CIDR ranges (`10.0.0.0/8`, `::1`) of trusted reverse proxies.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(try_from = "Vec<String>")]
pub struct TrustedProxies(pub Vec<ipnet::IpNet>);

impl TryFrom<Vec<String>> for TrustedProxies {
    type Error = String;
    fn try_from(v: Vec<String>) -> Result<Self, String> {
        v.iter()
            .map(|s| {
                let t = s.trim();
                t.parse::<ipnet::IpNet>()
                    .or_else(|_| t.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map(|n| n.trunc())
                    .map_err(|_| format!("`{s}` is not an IP address or CIDR range"))
            })
            .collect::<Result<_, _>>()
            .map(TrustedProxies)
    }
}

impl TrustedProxies {
    /// Whether `addr` is one of the trusted proxies.
    pub fn contains(&self, addr: std::net::IpAddr) -> bool {
        let addr = canonical(addr);
        self.0.iter().any(|n| n.contains(&addr))
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
pub fn canonical(addr: std::net::IpAddr) -> std::net::IpAddr {
    match addr {
        std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, std::net::IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_keys_are_parsed_and_bad_values_named() {
        let c = Config::parse(
            "[http]\ntrusted_proxies = [\"10.0.0.0/8\", \"::1\"]\n[metrics]\nlisten = \"127.0.0.1:9464\"\n[log]\nformat = \"json\"\n",
            "f",
        )
        .unwrap();
        assert!(c.http.trusted_proxies.contains("10.1.2.3".parse().unwrap()));
        assert!(
            c.http
                .trusted_proxies
                .contains("::ffff:10.1.2.3".parse().unwrap())
        );
        assert!(c.http.trusted_proxies.contains("::1".parse().unwrap()));
        assert!(!c.http.trusted_proxies.contains("11.0.0.1".parse().unwrap()));
        assert_eq!(c.metrics.listen.0, Some("127.0.0.1:9464".parse().unwrap()));
        assert_eq!(c.log.format, LogFormat::Json);
        for (text, key) in [
            (
                "[http]\ntrusted_proxies = [\"10.0.0.0/33\"]\n",
                "http.trusted_proxies",
            ),
            ("[metrics]\nlisten = \"localhost\"\n", "metrics.listen"),
            ("[log]\nformat = \"xml\"\n", "log.format"),
        ] {
            let e = Config::parse(text, "f").unwrap_err().to_string();
            assert!(e.contains("line 2") && e.contains(key), "{e}");
        }
    }

    #[test]
    fn built_in_default_parses_with_the_documented_values() {
        let c = Config::default();
        assert_eq!(c.server.domain.as_str(), "localhost");
        assert_eq!(c.server.listen, "127.0.0.1:8443".parse().unwrap());
        assert_eq!(c.data_dir(), Path::new("./data"));
        assert_eq!(c.residency.region.as_str(), "CN");
        assert_eq!(c.master_key_path(), Path::new("./data/master.key"));
    }

    #[test]
    fn password_hash_concurrency_zero_means_one_per_core() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let c = Config::parse(DEFAULT_CONFIG_TOML, "default").unwrap();
        assert_eq!(c.security.hash_concurrency(), cores);
        let text = with(
            "password_hash_concurrency = 0",
            "password_hash_concurrency = 3",
        );
        let c = Config::parse(&text, "f.toml").unwrap();
        assert_eq!(c.security.hash_concurrency(), 3);
        let text = with(
            "password_hash_concurrency = 0",
            "password_hash_concurrency = 65",
        );
        let e = Config::parse(&text, "f.toml").unwrap_err().to_string();
        assert!(e.contains("password_hash_concurrency"), "{e}");
    }

    fn with(replace: &str, by: &str) -> String {
        assert!(DEFAULT_CONFIG_TOML.contains(replace), "{replace}");
        DEFAULT_CONFIG_TOML.replacen(replace, by, 1)
    }

    fn line_of(text: &str, needle: &str) -> usize {
        text[..text.find(needle).unwrap()].matches('\n').count() + 1
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let text = with("[http]\n", "[http]\nmax_bodybytes = 5\n");
        let e = Config::parse(&text, "f.toml").unwrap_err().to_string();
        let line = line_of(&text, "max_bodybytes");
        assert!(e.contains(&format!("line {line}")), "{e}");
        assert!(e.contains("http.max_bodybytes"), "{e}");
        assert!(e.contains("unknown field"), "{e}");
    }

    #[test]
    fn wrong_type_is_named_with_its_line() {
        let text = with("max_connections = 10000", "max_connections = \"many\"");
        let e = Config::parse(&text, "f.toml").unwrap_err().to_string();
        assert!(
            e.contains(&format!("line {}", line_of(&text, "max_connections"))),
            "{e}"
        );
        assert!(e.contains("http.max_connections"), "{e}");
    }

    #[test]
    fn closed_friend_requests_must_outlive_the_decline_cool_down() {
        let e = Config::parse(
            "[friends]\ndeclined_resend_days = 30\nclosed_requests_days = 10\n",
            "f",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("friends.closed_requests_days"), "{e}");
        assert!(Config::parse("[friends]\ndeclined_resend_days = 10\n", "f").is_ok());
        let e = Config::parse("[friends]\nrequests_per_day = 0\n", "f")
            .unwrap_err()
            .to_string();
        assert!(e.contains("friends.requests_per_day"), "{e}");
    }

    #[test]
    fn a_security_log_maximum_below_its_legal_minimum_is_refused() {
        let e = Config::parse(
            "[retention]\nsecurity_logs_min_days = 183\nsecurity_logs_max_days = 90\n",
            "f",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("retention.security_logs_max_days") && e.contains("line 3"),
            "{e}"
        );
        for (min, max, key, line) in [
            (0, 0, "security_logs_min_days", 2),
            (182, 0, "security_logs_min_days", 2),
            (30, 30, "security_logs_min_days", 2),
            (183, 30, "security_logs_max_days", 3),
        ] {
            let e = Config::parse(
                &format!(
                    "[retention]\nsecurity_logs_min_days = {min}\nsecurity_logs_max_days = {max}\n"
                ),
                "f",
            )
            .unwrap_err()
            .to_string();
            assert!(
                e.contains(&format!("retention.{key}")) && e.contains(&format!("line {line}")),
                "{min}/{max}: {e}"
            );
        }
        assert!(Config::parse("[retention]\nsecurity_logs_min_days = 183\n", "f").is_ok());
        assert!(Config::parse("[retention]\nsecurity_logs_max_days = 0\n", "f").is_ok());
        assert!(Config::parse("[retention]\nsecurity_logs_max_days = 183\n", "f").is_ok());
    }

    #[test]
    fn federation_peers_are_validated_with_key_and_line() {
        let peer = |domain: &str, url: &str| {
            format!(
                "[server]\ndomain = \"a.example\"\n[federation]\n[[federation.peers]]\n\
                 domain = \"{domain}\"\nurl = \"{url}\"\nregion = \"CN\"\n"
            )
        };
        let ok = Config::parse(&peer("b.example", "https://10.0.0.2:8443"), "f").unwrap();
        let p = &ok.federation.peers[0];
        assert_eq!((p.url.host.as_str(), p.url.port), ("10.0.0.2", 8443));
        assert_eq!(p.ca_file.0, None, "public roots unless a CA file is named");
        let default_port = Config::parse(&peer("b.example", "https://b.example/"), "f").unwrap();
        assert_eq!(default_port.federation.peers[0].url.port, 443);
        for (domain, url, key, reason) in [
            ("b.example", "http://b.example", "url", "https://"),
            ("b.example", "https://b.example/path", "url", "https://host"),
            ("b.example", "https://b.example:0", "url", "https://host"),
            ("B!", "https://b.example", "domain", "DNS name"),
            ("a.example", "https://b.example", "domain", "own domain"),
        ] {
            let e = Config::parse(&peer(domain, url), "f")
                .unwrap_err()
                .to_string();
            assert!(e.contains(key) && e.contains(reason), "{domain} {url}: {e}");
            assert!(e.contains("line "), "{e}");
        }
        let twice = format!(
            "{}[[federation.peers]]\ndomain = \"b.example\"\nurl = \"https://x\"\nregion = \"EU\"\n",
            peer("b.example", "https://b.example")
        );
        let e = Config::parse(&twice, "f").unwrap_err().to_string();
        assert!(e.contains("listed twice"), "{e}");
        let missing = format!(
            "{}ca_file = \"/nonexistent/ca.pem\"\n",
            peer("b.example", "https://b.example")
        );
        let e = Config::parse(&missing, "f")
            .unwrap()
            .check_files()
            .unwrap_err()
            .to_string();
        assert!(e.contains("federation.peers.ca_file"), "{e}");
    }

    #[test]
    fn bad_values_are_refused_with_key_and_reason() {
        let cases = [
            ("region = \"CN\"", "region = \"china\"", "residency.region"),
            (
                "domain = \"localhost\"",
                "domain = \"Bad_Domain\"",
                "server.domain",
            ),
            (
                "listen = \"127.0.0.1:8443\"",
                "listen = \"nowhere\"",
                "server.listen",
            ),
            (
                "max_body_bytes = 1048576",
                "max_body_bytes = -1",
                "http.max_body_bytes",
            ),
            ("level = \"info\"", "level = \"loud\"", "log.level"),
            (
                "effective = \"2026-11-29\"",
                "effective = \"2026-02-30\"",
                "policy.effective",
            ),
            (
                "data_dir = \"./data\"",
                "data_dir = \"\"",
                "storage.data_dir",
            ),
        ];
        for (from, to, key) in cases {
            let text = with(from, to);
            let e = Config::parse(&text, "f.toml").unwrap_err().to_string();
            assert!(e.contains(key), "{to}: {e}");
            assert!(
                e.contains(&format!("line {}", line_of(&text, to))),
                "{to}: {e}"
            );
        }
    }

    #[test]
    fn documented_default_file_equals_the_built_in_defaults() {
        let documented = Config::parse(DEFAULT_CONFIG_TOML, "default").unwrap();
        assert_eq!(documented, Config::default());
        assert_eq!(Config::parse("", "empty").unwrap(), Config::default());
    }

    #[test]
    fn partial_file_keeps_defaults_for_the_rest() {
        let c = Config::parse("[server]\ndomain = \"chat.example.org\"\n", "f").unwrap();
        assert_eq!(c.server.domain.as_str(), "chat.example.org");
        assert_eq!(c.server.listen, ServerConfig::default().listen);
        assert_eq!(c.http, HttpConfig::default());
    }

    #[test]
    fn unknown_section_is_refused() {
        let e = Config::parse("[chat]\nx = 1\n", "f.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 1") && e.contains("chat"), "{e}");
    }

    #[test]
    fn half_configured_tls_is_refused_with_key_and_line() {
        let e = Config::parse(
            "[log]\nlevel = \"info\"\n[tls]\ncert_file = \"/etc/c.pem\"\n",
            "f.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("line 4") && e.contains("tls.cert_file") && e.contains("key_file"),
            "{e}"
        );
        let e = Config::parse("[tls]\nkey_file = \"/etc/k.pem\"\n", "f.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2") && e.contains("tls.key_file"), "{e}");
    }

    #[test]
    fn missing_configured_files_are_reported_by_key() {
        let c = Config::parse("[policy]\nzh_file = \"/nonexistent/zh.md\"\n", "f.toml").unwrap();
        let e = c.check_files().unwrap_err().to_string();
        assert!(
            e.contains("policy.zh_file") && e.contains("/nonexistent/zh.md"),
            "{e}"
        );
        assert!(Config::default().check_files().is_ok());
    }

    #[test]
    fn malformed_toml_names_the_line() {
        let text = with("[tls]\n", "[tls\n");
        let e = Config::parse(&text, "f.toml").unwrap_err().to_string();
        assert!(
            e.contains(&format!("line {}", line_of(&text, "[tls\n"))),
            "{e}"
        );
    }

    #[test]
    fn rate_limits_are_configured_and_checked() {
        let c = Config::parse(
            "[rate_limit]\nregister_per_hour = 0\nmax_clients = 5000\n",
            "f",
        )
        .unwrap();
        assert_eq!(c.rate_limit.register_per_hour.get(), 0);
        assert_eq!(c.rate_limit.max_clients.get(), 5000);
        assert_eq!(
            c.rate_limit.login_per_minute,
            RateLimitConfig::default().login_per_minute
        );
        let e = Config::parse("[rate_limit]\nmax_clients = 10\n", "f")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("line 2") && e.contains("rate_limit.max_clients"),
            "{e}"
        );
    }
}

/// Property tests: whatever text the parser is given, it answers without panicking, and a
/// refusal names the file and, for a bad value, the line and key it is on.
#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    /// `line N` and ``key `a.b` `` named in a refusal, if any.
    fn named(message: &str) -> (Option<usize>, Option<String>) {
        let line = message.split("line ").nth(1).and_then(|rest| {
            rest.split(|c: char| !c.is_ascii_digit())
                .next()
                .and_then(|n| n.parse().ok())
        });
        let key = message
            .split("key `")
            .nth(1)
            .and_then(|rest| rest.split('`').next())
            .map(str::to_string);
        (line, key)
    }

    /// The `key = value` lines of the default file: (1-based line, table, key).
    fn default_keys() -> Vec<(usize, String, String)> {
        let mut table = String::new();
        let mut out = Vec::new();
        for (i, line) in DEFAULT_CONFIG_TOML.lines().enumerate() {
            let t = line.trim();
            if t.starts_with('[') {
                table = t.trim_matches(|c| c == '[' || c == ']').to_string();
            } else if !t.starts_with('#')
                && let Some((k, _)) = t.split_once('=')
            {
                out.push((i + 1, table.clone(), k.trim().to_string()));
            }
        }
        out
    }

    /// A TOML value of any type, as TOML text.
    fn toml_value() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            any::<i64>().prop_map(|v| v.to_string()),
            (-5i64..200_000).prop_map(|v| v.to_string()),
            any::<bool>().prop_map(|v| v.to_string()),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| format!("{f:?}")),
            any::<String>().prop_map(|s| toml::Value::String(s).to_string()),
            "[a-zA-Z0-9._:/-]{0,20}".prop_map(|s| toml::Value::String(s).to_string()),
            Just("1979-05-27".to_string()),
            Just("1979-05-27T07:32:00Z".to_string()),
        ];
        leaf.prop_recursive(2, 8, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4)
                    .prop_map(|v| format!("[{}]", v.join(", "))),
                prop::collection::vec(("[a-z_]{1,8}", inner), 0..3).prop_map(|kv| {
                    let body: Vec<String> =
                        kv.into_iter().map(|(k, v)| format!("{k} = {v}")).collect();
                    format!("{{ {} }}", body.join(", "))
                }),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_text_is_answered_without_a_panic(text in any::<String>()) {
            if let Err(e) = Config::parse(&text, "f.toml") {
                let m = e.to_string();
                prop_assert!(m.starts_with("config f.toml"), "{m}");
                if let (Some(line), _) = named(&m) {
                    prop_assert!(line >= 1 && line <= text.lines().count() + 1, "{m}");
                }
            }
        }

        #[test]
        fn toml_like_text_is_answered_without_a_panic(
            text in "(\\[[a-z_.]{0,12}\\]?\n|[a-z_]{1,12} ?= ?[-0-9a-z\"\\[\\]{},.:]{0,16}\n|#.*\n|\n){0,12}"
        ) {
            if let Err(e) = Config::parse(&text, "f.toml") {
                let m = e.to_string();
                prop_assert!(m.starts_with("config f.toml: line "), "{m}");
            }
        }

        /// Each documented key given a value of any type: accepted, or refused naming that
        /// key on that line (or, for a rule between two keys, the other key on its line).
        #[test]
        fn a_mutated_value_is_refused_at_its_key_and_line(
            pick in any::<prop::sample::Index>(),
            value in toml_value(),
        ) {
            let keys = default_keys();
            let (line_no, table, key) = &keys[pick.index(keys.len())];
            let text: String = DEFAULT_CONFIG_TOML
                .lines()
                .enumerate()
                .map(|(i, l)| if i + 1 == *line_no { format!("{key} = {value}\n") } else { format!("{l}\n") })
                .collect();
            if let Err(e) = Config::parse(&text, "f.toml") {
                let m = e.to_string();
                let (line, named_key) = named(&m);
                let line = line.unwrap_or_else(|| panic!("no line in {m:?}"));
                let named_key = named_key.unwrap_or_else(|| panic!("no key in {m:?}"));
                // The named line is where the named key is written.
                let written = text.lines().nth(line - 1).unwrap_or("");
                let last = named_key.rsplit('.').next().unwrap_or("");
                prop_assert!(
                    written.trim_start().starts_with(&format!("{last} =")),
                    "{m} names line {line}: {written:?}"
                );
                let full = format!("{table}.{key}");
                if named_key != full {
                    // Only the rules between two keys name another one.
                    prop_assert!(
                        matches!(full.as_str(), "media.quota_bytes" | "retention.security_logs_min_days" | "server.domain"),
                        "{full} = {value}: {m}"
                    );
                } else {
                    prop_assert_eq!(line, *line_no, "{}", m);
                }
            }
        }

        /// Lines of the default file dropped, doubled or swapped: never a panic, and every
        /// refusal names the file and a line.
        #[test]
        fn a_mutated_file_is_answered_with_a_line(
            edits in prop::collection::vec((any::<prop::sample::Index>(), 0u8..3), 1..6),
        ) {
            let mut lines: Vec<&str> = DEFAULT_CONFIG_TOML.lines().collect();
            for (at, op) in edits {
                let i = at.index(lines.len());
                match op {
                    0 => { lines.remove(i); }
                    1 => { let l = lines[i]; lines.insert(i, l); }
                    _ => { let j = (i + 1) % lines.len(); lines.swap(i, j); }
                }
            }
            let text = lines.join("\n");
            if let Err(e) = Config::parse(&text, "f.toml") {
                let m = e.to_string();
                prop_assert!(m.starts_with("config f.toml: line "), "{m}");
            }
        }
    }
}
