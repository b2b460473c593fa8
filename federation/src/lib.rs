//! Federation between shanliao nodes, as a library with no HTTP routing in it: canonical JSON
//! (RFC 8785), ed25519 node keys, signed envelopes, and signed requests. The node's HTTP layer
//! calls into it. It holds the
//! wire formats (envelopes, transactions, key documents), their cryptography, and the peer
//! client; the node decides what to send, stores queues and applies what arrives.

mod canonical;
mod client;
mod content;
mod envelope;
mod key_document;
mod keys;
mod request;
mod strict;

pub use canonical::{CanonicalError, MAX_SAFE_INTEGER, canonical_json};
pub use client::{ClientError, Connection, PeerTarget, is_public_ip, tls_config};
pub use content::{
    CommunityContent, CommunityEventContent, ErasureAckContent, ErasureContent, FriendContent,
    MAX_EVENT_MEMBERS, MAX_TXN_BYTES, MAX_TXN_ENVELOPES, MEDIA_PART, MediaRef, MembershipContent,
    MessageContent, NewPostMedia, ProfileContent, RecallContent, Transaction, WireBody, WireChange,
    WireMember, address_domain, conversation_host, valid_address, valid_media_id, valid_txn_id,
};
pub use envelope::{
    Envelope, EnvelopeError, Kind, MAX_ENVELOPE_AGE_MS, ts_fresh, valid_domain, valid_public_domain,
};
pub use key_document::{KeyDocument, Limits, PublishedKey};
pub use keys::{KeyError, KeyId, NodeKey, PublicKey, b64, unb64};
pub use request::{AuthError, MAX_SKEW_MS, RequestAuth, sign_request};
pub use strict::{
    JsonError, MAX_DEPTH, parse_decimal, parse_json, parse_message_id, parse_reference,
};

/// `shared/vectors/<rel>`: the external test vectors, found beside the repository (CI puts a
/// copy of `shared/` next to the clone; developers have it next to their checkout).
#[cfg(test)]
pub(crate) fn vector_path(rel: &str) -> std::path::PathBuf {
    let start = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    start
        .ancestors()
        .map(|a| a.join("shared/vectors"))
        .find(|p| p.is_dir())
        .unwrap_or_else(|| panic!("shared/vectors not found above {}", start.display()))
        .join(rel)
}
