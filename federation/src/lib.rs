//! Federation between shanliao nodes, as a library with no HTTP routing in it: canonical JSON
//! (RFC 8785), ed25519 node keys, signed envelopes, and signed requests. The node's HTTP layer
//! calls into it. What is here so far is the cryptographic core; transactions, key publication,
//! delivery queues and the peer client come with the rest of the federation work.

mod canonical;
mod envelope;
mod key_document;
mod keys;
mod request;

pub use canonical::{CanonicalError, MAX_SAFE_INTEGER, canonical_json};
pub use envelope::{Envelope, EnvelopeError, Kind, valid_domain};
pub use key_document::{KeyDocument, PublishedKey};
pub use keys::{KeyError, KeyId, NodeKey, PublicKey, b64, unb64};
pub use request::{AuthError, MAX_SKEW_MS, RequestAuth, sign_request};

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
