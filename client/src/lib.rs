//! `shanliao-client`: a typed HTTPS client of a shanliao node's client API (`/api/v1/…`), the
//! one the black-box tests (`tests/`) and the load generator (`examples/loadgen`) share.
//!
//! - [`Endpoint`] — where a node is and which certificate to trust (a CA file, or the node's
//!   own development certificate); opens TLS connections, sends one request on a fresh
//!   connection (HTTP/1.1 or HTTP/2 by ALPN), opens the event WebSocket.
//! - [`Connection`] — one keep-alive HTTP/1.1 connection for many requests in turn.
//! - [`Reply`] — a response read to the end, with its `{"error":{"code","message"}}` parsed.
//! - [`Api`] — typed calls (register, log in, consents, conversations, send, history) over any
//!   [`Transport`].
//! - [`events`] — the event stream: the auth frame, acknowledgements, typed frames.
//!
//! It speaks HTTP only: nothing here depends on the node crate.

mod api;
mod endpoint;
mod error;
pub mod events;
mod reply;

pub use api::{Api, History, NewConversation, Registration, Sent, Session, raw_request, request};
pub use endpoint::{Connection, DEV_CERT, Endpoint, Transport};
pub use error::{ApiError, ClientError};
pub use events::EventStream;
pub use reply::Reply;
