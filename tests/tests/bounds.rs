//! Per-client limits on requests made without an account (`[rate_limit]`), over HTTPS: 429
//! `rate_limited` with `Retry-After`, per group of endpoints.

use http::StatusCode;
use serde_json::json;
use tests::{TestNode, phone};

use crate::accounts::registration;

fn retry_after(r: &tests::Reply) -> u64 {
    r.headers["retry-after"].to_str().unwrap().parse().unwrap()
}

/// `POST /api/v1/accounts` for `handle` with `phone`.
async fn register(c: &tests::Client, handle: &str, phone: &str) -> tests::Reply {
    c.call(
        "POST",
        "/api/v1/accounts",
        None,
        Some(&registration(handle, phone)),
    )
    .await
}

#[tokio::test]
async fn probing_whether_a_phone_is_registered_is_bounded_per_client() {
    let n = TestNode::start_toml("[rate_limit]\nregister_per_hour = 3\n").await;
    let c = n.client();
    assert_eq!(
        register(&c, "owner", &phone(1)).await.status,
        StatusCode::CREATED
    );
    // Each probe of the same number answers 409 phone_taken, until the client's budget is spent.
    for i in 0..2 {
        let r = register(&c, &format!("probe{i}"), &phone(1)).await;
        assert_eq!(r.error_code(), "phone_taken");
    }
    let r = register(&c, "probe9", &phone(2)).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.error_code(), "rate_limited");
    // 3 an hour: the next one in 20 minutes.
    let secs = retry_after(&r);
    assert!(secs > 19 * 60 && secs <= 20 * 60, "{secs}");
    // Other groups are not affected.
    let r = c.get("/api/v1/policy", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(c.get("/health", None).await.status, StatusCode::OK);
}

#[tokio::test]
async fn unknown_tokens_are_limited_per_client_while_sessions_in_use_go_on() {
    let n = TestNode::start_toml("[rate_limit]\ntoken_lookups_per_minute = 3\n").await;
    let c = n.client();
    let token = c.user("lee", &phone(3)).await;
    // First use: looked up (one of three); after that answered from memory.
    assert_eq!(
        c.get("/api/v1/me", Some(&token)).await.status,
        StatusCode::OK
    );
    // Well-formed tokens that are not the user's: one character of theirs changed.
    let unknown = |i: usize| {
        let mut t = token.clone().into_bytes();
        t[i] = if t[i] == b'A' { b'B' } else { b'A' };
        String::from_utf8(t).unwrap()
    };
    for i in 0..2 {
        let r = c.get("/api/v1/me", Some(&unknown(i))).await;
        assert_eq!(r.error_code(), "invalid_token");
    }
    let r = c.get("/api/v1/me", Some(&unknown(7))).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.error_code(), "rate_limited");
    assert!(retry_after(&r) >= 1);
    // A token already found unknown costs nothing and is still refused as such.
    let r = c.get("/api/v1/me", Some(&unknown(0))).await;
    assert_eq!(r.error_code(), "invalid_token");
    // A malformed one never reaches the store.
    assert_eq!(
        c.get("/api/v1/me", Some("garbage")).await.error_code(),
        "invalid_token"
    );
    // The session in use is not held back.
    for _ in 0..10 {
        assert_eq!(
            c.get("/api/v1/me", Some(&token)).await.status,
            StatusCode::OK
        );
    }
}

#[tokio::test]
async fn logins_past_the_per_client_limit_get_429() {
    let n = TestNode::start_toml("[rate_limit]\nlogin_per_minute = 2\n").await;
    let c = n.client();
    c.register("moe", &phone(4)).await;
    c.login("moe").await;
    c.login("moe").await;
    let r = c
        .call(
            "POST",
            "/api/v1/sessions",
            None,
            Some(&json!({"login": "moe", "password": "password-moe"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.error_code(), "rate_limited");
    assert!((1..=30).contains(&retry_after(&r)));
}

#[tokio::test]
async fn the_default_limits_apply_without_configuration() {
    // The documented defaults are on: 20 registrations an hour from one client.
    let dir = tempfile::tempdir().unwrap();
    let config = node::Config::parse(
        &format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[storage]\ndata_dir = \"{}\"\n",
            dir.path().display()
        ),
        "test",
    )
    .unwrap();
    let n = TestNode::start_in(dir, config, std::sync::Arc::new(node::SystemClock)).await;
    let c = n.client();
    let mut last = StatusCode::OK;
    for i in 0..21 {
        // Invalid bodies: refused before any password hash, but counted all the same.
        last = c
            .call("POST", "/api/v1/accounts", None, Some(&json!({"i": i})))
            .await
            .status;
        if i < 20 {
            assert_ne!(last, StatusCode::TOO_MANY_REQUESTS, "request {i}");
        }
    }
    assert_eq!(last, StatusCode::TOO_MANY_REQUESTS);
}
