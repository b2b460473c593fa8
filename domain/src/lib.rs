//! What the node does, without knowing how it is asked: accounts and consents, messaging and
//! media, friends and discovery, communities, search, privacy (policy, minors, real names,
//! public pages), erasure, and federation's decisions (what to send to which peer, what to apply
//! from one). Each module is a narrow handle over the `storage` crate, built once by the node's
//! wiring.
//!
//! **Boundary:** knows no HTTP path, status code or client JSON shape: the `api` crate turns
//! requests into calls here and results into answers. Nothing here names hyper.

// The primitives every module reaches as `crate::time` and `crate::crypto`.
pub use primitives::{crypto, time};

pub mod accounts;
pub mod behaviour;
pub mod community;
pub mod config;
pub mod consents;
pub mod discovery;
pub mod erasure;
pub mod federate;
pub mod friends;
pub mod hash_pool;
pub mod hub;
pub mod media;
pub mod messaging;
pub mod notices;
pub mod policy;
pub mod privacy;
pub mod profile;
pub mod ratelimit;
pub mod requests;
pub mod search;
pub mod shown;
pub mod signing;
