//! Loading a configuration: parsing the text, the rules that involve more than one value,
//! checking the files it names, and every refusal as a [`ConfigError`] that names the file,
//! the line and the key (`line N: key a.b`).

use std::fmt;
use std::path::Path;

use super::Config;

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

/// The legal floor for keeping security (audit) logs: six months, in days.
pub const SECURITY_LOGS_FLOOR_DAYS: u64 = 183;

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
