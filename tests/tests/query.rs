//! Query strings: every endpoint that takes one reads it by the same rules — percent-decoded;
//! a mistake in the names (unknown, repeated, or without a value) refused with 400
//! `invalid_request`; a value the field does not take refused with 422 naming the field; and an
//! endpoint that takes no parameters refuses any.

use http::StatusCode;
use tests::{TestNode, phone};

#[tokio::test]
async fn every_endpoint_reads_query_strings_by_one_rule() {
    let n = TestNode::start().await;
    let c = n.client();
    let token = c.user("quinn", &phone(7)).await;
    c.register("rosa", &phone(8)).await;
    let conv = c.direct(&token, "rosa@localhost").await;
    let t = Some(token.as_str());
    let history = format!("/api/v1/conversations/{conv}/messages");

    // Percent-encoded values are decoded.
    let r = c.get("/api/v1/policy?lang=e%6E", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["language"], "en");
    let r = c.get(&format!("{history}?limit=%32"), t).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = c.get("/api/v1/sync?timeout=%30", t).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = c.get("/api/v1/communities?q=a+b&&", t).await;
    assert_eq!(r.status, StatusCode::OK);

    for path in [
        "/api/v1/policy?lang=en&x=1".to_string(),
        format!("{history}?sort=asc"),
        "/api/v1/sync?timeout=0&foo".to_string(),
        "/api/v1/policy?lang=en&lang=zh".to_string(),
        format!("{history}?limit=5&limit=6"),
        // A name without a value, bare or with `=`.
        "/api/v1/policy?lang".to_string(),
        format!("{history}?limit"),
        "/api/v1/sync?since".to_string(),
        "/api/v1/sync?timeout=".to_string(),
        "/api/v1/communities?q=".to_string(),
        // An endpoint that takes no parameters.
        "/api/v1/me?limit=1".to_string(),
        "/api/v1/conversations?x".to_string(),
        "/health?verbose=1".to_string(),
    ] {
        let r = c.get(&path, t).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(r.error_code(), "invalid_request", "{path}");
    }

    for (path, field) in [
        ("/api/v1/policy?lang=fr".to_string(), "lang"),
        (format!("{history}?limit=0"), "limit"),
        (format!("{history}?before=%2B5"), "before"),
        ("/api/v1/sync?since=%2B1".to_string(), "since"),
        ("/api/v1/sync?timeout=60001".to_string(), "timeout"),
        ("/api/v1/me/suggestions?cursor=x".to_string(), "cursor"),
        ("/api/v1/communities/feed?limit=101".to_string(), "limit"),
    ] {
        let r = c.get(&path, t).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{path}");
        assert_eq!(r.error_code(), "invalid_field", "{path}");
        assert!(
            r.json()["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with(&format!("{field}:")),
            "{path}"
        );
    }

    // A write refused for its query does nothing.
    let r = c
        .call(
            "POST",
            &format!("{history}?x=1"),
            t,
            Some(
                &serde_json::json!({"txn_id": "q1", "body": {"type": "text", "text": "not sent"}}),
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = c.get(&history, t).await;
    assert_eq!(r.json()["messages"].as_array().unwrap().len(), 0);
}
