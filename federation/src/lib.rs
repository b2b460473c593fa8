//! Federation between shanliao nodes: canonical JSON (RFC 8785), ed25519 node keys, signed
//! envelopes, request authentication and the peer client.
//!
//! Nothing is implemented yet; the federation issue fills this crate. It stays free of HTTP
//! routing: the node's HTTP layer calls into it.
