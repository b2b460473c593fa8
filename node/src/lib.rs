//! The shanliao chat node as a library: `chat-node` is a thin binary over it, and the black-box
//! tests start real nodes through [`Node::start`].
//!
//! Layers, outside in: `http` (client API, wire JSON) → domain (`accounts`, `consents`,
//! `profile`, `policy`) → `storage` (the only user of redb) with `crypto` sealing personal
//! fields before they reach it. `server` wires them together and owns the listener.

mod accounts;
mod admin;
mod behaviour;
mod community;
mod config;
mod consents;
mod crypto;
mod discovery;
mod erasure;
mod federate;
mod friends;
mod hash_pool;
mod http;
mod hub;
mod media;
mod messaging;
mod metrics;
mod metrics_http;
mod policy;
mod privacy;
mod profile;
mod ratelimit;
mod requests;
mod search;
/// The search index and its text rules, for the benchmark in `node/examples/search_index.rs`.
#[doc(hidden)]
pub use search::{index as search_index, text as search_text};
mod server;
mod shown;
mod signing;
mod storage;
mod time;
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
pub use federate::FedError;
pub use http::{Auth, MAX_URI_BYTES, ROUTES, Route};
pub use policy::MAX_TEXT_BYTES as POLICY_MAX_BYTES;
pub use server::{Node, StartError, run};
pub use storage::ArchiveKind;
#[doc(hidden)]
pub use storage::BenchSeed;
pub use storage::{
    AuditCheck, AuditEntry, AuditRecord, ConvKind, NewConversation, NewMessage, REMOTE_USER_BIT,
    Sent, SessionRecord, Store, StoreError,
};
pub use time::parse_date;
pub use time::{Clock, ManualClock, Millis, SharedClock, SystemClock};
pub use tls::write_dev_cert;

/// The OpenAPI document served at `/api/v1/openapi.json`.
pub const OPENAPI_JSON: &str = include_str!("http/openapi.json");
