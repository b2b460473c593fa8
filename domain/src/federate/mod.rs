//! Federation as the node does it: who its peers are and their keys (`peers`), what it sends
//! and the durable per-peer delivery (`outbox`), what it accepts and how it applies it
//! (`inbox`), and users of other nodes (`directory`). The wire formats and their cryptography
//! are the `federation` crate's; paths and status codes are `http::federation`'s.
//!
//! Conversations: the node whose domain a conversation id ends in hosts it. The host orders
//! messages (assigns `seq`) and membership, and sends each change to the nodes of its remote
//! members; a member's node sends its user's message, recall or change to the host, which
//! applies it by the same rules as a local one and relays it. Every queued envelope commits in
//! the same transaction as the write it comes from.

mod avatar;
mod call_turns;
mod community;
mod directory;
mod fetch;
mod inbox;
mod media_ref;
mod outbox;
mod peers;
mod reach;

pub use avatar::AvatarError;
pub use community::{
    CallError, CommunityClient, CommunityHost, HostError, MAX_BODY as COMMUNITY_MAX_BODY,
    RETRY_WAITS as COMMUNITY_RETRY_WAITS, WireMediaPart, parse_address as parse_community_address,
};
pub use directory::{Directory, RedeemAnswerWire, RedeemWire, RemoteRedeem, load_addresses};
pub use fetch::Fetcher;
pub use inbox::HostLimits;
pub use inbox::Inbox;
pub use outbox::{Outbox, OutboxLimits, role_name};
pub use peers::{PeerError, Peers};
pub use reach::{Reachability, keep_saved as keep_reach_saved, save as save_reach};

use crate::crypto::CryptoError;
use storage::{Refusal, StoreError};

/// Errors of federation, mapped to HTTP answers by `http::error`.
#[derive(Debug, thiserror::Error)]
pub enum FedError {
    #[error(transparent)]
    Peer(#[from] PeerError),
    #[error("no such user")]
    NoSuchUser,
    /// No such media, or not for the requester (404; the two are not told apart).
    #[error("no such media")]
    NoSuchMedia,
    #[error("{0}")]
    Invalid(String),
    #[error(
        "{peer} does not release this user's data to this node's region: they have not consented to cross_border_transfer (your own consent does not change that)"
    )]
    PeerResidency { peer: String },
    #[error("{}", refusal_text(.0))]
    Refused(Refusal),
    /// The request is not authenticated (401).
    #[error("{0}")]
    Unauthenticated(String),
    /// The requester is not allowed (403).
    #[error("{0}")]
    Forbidden(String),
    /// Same transaction id, another body (409).
    #[error("transaction {0} was already received with another body")]
    TxnConflict(String),
    /// Over a size or count limit (413).
    #[error("{0}")]
    TooLarge(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

/// The words for a refusal, used in API errors.
pub fn refusal_text(r: &Refusal) -> String {
    match r {
        Refusal::Residency { peer, region } => format!(
            "{peer} is in region {region}, outside this node's region; sending your data there needs your consent to cross_border_transfer"
        ),
        Refusal::QueueFull { peer } => {
            format!("too much is waiting for delivery to {peer}; try again later")
        }
        Refusal::UnknownPeer { peer } => format!("{peer} is not a peer of this node"),
        Refusal::TooLargeForPeer { peer, limit } => {
            format!("{peer} takes media of at most {limit} bytes; this is larger")
        }
        Refusal::Unsupported(m) => m.clone(),
        Refusal::Internal(m) => format!("federation: {m}"),
    }
}
