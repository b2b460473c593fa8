//! The federation API between nodes (as far as it is built).
//!
//! - `GET /_federation/v1/keys` — the node's key document: current and expired signing keys,
//!   self-signed (see `docs/PROTOCOL.md`). No authentication.

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Response};
use http_body_util::Full;

use super::json::Body;

/// `GET /_federation/v1/keys` → 200, the key document made at start.
pub fn keys(document: &Bytes) -> Response<Body> {
    let mut r = Response::new(Full::new(document.clone()));
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}
