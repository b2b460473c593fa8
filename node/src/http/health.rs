//! `GET /health` — liveness for load balancers and operators; no authentication.

use http::{Response, StatusCode};

use super::json::{Body, reply};

/// `GET /health` → 200 `{"status":"ok","domain","version"}`.
pub fn get(domain: &str) -> Response<Body> {
    reply(
        StatusCode::OK,
        &serde_json::json!({
            "status": "ok",
            "domain": domain,
            "version": env!("CARGO_PKG_VERSION"),
        }),
    )
}
