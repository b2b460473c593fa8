//! The validating newtypes of configuration values (`Domain`, `PeerUrl`, paths, `Bounded<MIN,
//! MAX>`, `Region`, `PolicyVersion`, log level and format, addresses, trusted proxies): each
//! checks its value while it is deserialised, so a refusal carries the value's span.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

/// A DNS name, optionally with a port: what users' addresses end in.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Domain(pub(super) String);

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
pub struct Region(pub(super) String);

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
pub struct PolicyVersion(pub(super) String);

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
