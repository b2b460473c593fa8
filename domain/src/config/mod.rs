//! The node's configuration: the TOML schema, its embedded documented default, and validation
//! that names the key and line of every mistake.
//!
//! Every value is checked while it is deserialised (newtypes with `try_from`), so a bad value's
//! error carries the span of that value and can be reported as `line N: key a.b: …`.
//!
//! This file holds [`Config`], the whole file's schema, and the documented default
//! (`domain/src/default-config.toml`); `sections.rs` each table's struct and its defaults;
//! `values.rs` the validating newtypes (`Domain`, `Region`, `Bounded<MIN, MAX>`, …);
//! `load.rs` reading a file, the rules between values, and errors as `line N: key a.b`;
//! `tests.rs` and `properties.rs` the tests.

mod load;
mod sections;
mod values;

#[cfg(test)]
mod properties;
#[cfg(test)]
mod tests;

pub use load::{ConfigError, SECURITY_LOGS_FLOOR_DAYS};
pub use sections::{
    AccountsConfig, FederationConfig, FriendsConfig, HttpConfig, LogConfig, MediaConfig,
    MessagingConfig, MetricsConfig, PeerConfig, PolicyConfig, PrivacyConfig, RateLimitConfig,
    ResidencyConfig, RetentionConfig, SecurityConfig, ServerConfig, StorageConfig, TlsConfig,
};
pub use values::{
    Bounded, Domain, LogFormat, LogLevel, NonEmptyPath, OptionalAddr, OptionalPath, PeerUrl,
    PolicyVersion, Region, TrustedProxies, canonical,
};

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The documented default configuration, printed by `chat-node --print-default-config`.
pub const DEFAULT_CONFIG_TOML: &str = include_str!("../default-config.toml");

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

impl Config {
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
