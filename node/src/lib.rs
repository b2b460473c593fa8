//! The shanliao chat node as a library: `chat-node` is a thin binary over it, and the black-box
//! tests start real nodes through [`Node::start`].
//!
//! Layers, outside in, each a crate: `api` (client API, wire JSON) → `domain` (`accounts`,
//! `consents`, `messaging`, `federate`, …) → `storage` (the only user of redb), with
//! `primitives::crypto` sealing personal fields before they reach it. This crate holds what
//! puts them together: `wiring` builds the services once, `server` owns the listener and the
//! connections, `admin` the operator's socket and commands.

// The crates the binary's modules reach under their old module names: the domain's modules as
// `crate::accounts`, … and the client API as `crate::http`.
use api as http;
use domain::{
    accounts, behaviour, community, config, consents, crypto, discovery, erasure, federate,
    friends, hash_pool, hub, media, messaging, policy, privacy, ratelimit, requests, search,
    signing, time,
};

mod admin;
#[cfg(test)]
mod erasure_resume;
mod metrics_http;
#[cfg(test)]
mod notice_resume;
/// The search index and its text rules, for the benchmark in `node/examples/search_index.rs`.
#[doc(hidden)]
pub use search::{index as search_index, text as search_text};
mod server;
mod tls;
mod wiring;

pub use admin::{
    AdminError, Context as AdminContext, Offline, OpenError, Request as AdminRequest,
    call as admin_call, call_export as admin_call_export, execute as admin_execute,
    export_to as admin_export_to, socket_path,
};
pub use admin::{archive_key, backup_drive, call_backup, partial_path, restore, verify_archive};
pub use admin::{
    call_reporting as admin_call_reporting, execute_reporting as admin_execute_reporting,
    reports_progress as admin_reports_progress,
};
pub use config::{Config, ConfigError, DEFAULT_CONFIG_TOML, LogFormat};
pub use consents::Purpose;
pub use crypto::SecretKey;
pub use federate::{COMMUNITY_RETRY_WAITS, FedError};
pub use http::{Auth, MAX_URI_BYTES, ROUTES, Route};
pub use policy::MAX_TEXT_BYTES as POLICY_MAX_BYTES;
pub use server::{Node, StartError, run};
#[doc(hidden)]
pub use storage::BenchSeed;
pub use storage::{ArchiveKind, DB_FILE};
pub use storage::{
    AuditCheck, AuditEntry, AuditRecord, ConvKind, NewConversation, NewMessage, REMOTE_USER_BIT,
    Sent, SessionRecord, Store, StoreError,
};
pub use time::parse_date;
pub use time::{Clock, ManualClock, Millis, SharedClock, SystemClock};
pub use tls::write_dev_cert;

pub use http::OPENAPI_JSON;
