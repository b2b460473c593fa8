//! What the node's storage and its domain both stand on, and nothing that knows of users, tables
//! or HTTP: [`time`] — the injected [`time::Clock`], Unix milliseconds and calendar dates — and
//! [`crypto`] — the master key, per-user data keys, sealing of personal fields, keyed blind
//! indexes, bearer tokens and password hashing.
//!
//! **Boundary:** depends on no other crate of the workspace; a row, a user or a request is never
//! named here.

pub mod crypto;
pub mod time;
