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
