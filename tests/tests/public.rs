//! The unauthenticated surface: health, the privacy policy, the OpenAPI document (checked
//! against the route table in both directions), routing errors, and HTTP/2 by ALPN.

use std::collections::BTreeSet;

use http::{Request, StatusCode};
use http_body_util::Full;
use tests::{POLICY, TestNode, node};

#[tokio::test]
async fn health_answers_without_authentication() {
    let n = TestNode::start().await;
    let r = n.client().get("/health", None).await;
    assert_eq!(r.status, StatusCode::OK);
    let v = r.json();
    assert_eq!(v["status"], "ok");
    assert_eq!(v["domain"], "localhost");
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
}

#[tokio::test]
async fn policy_is_readable_before_registering_in_both_languages() {
    let n = TestNode::start().await;
    let c = n.client();
    let zh = c.get("/api/v1/policy", None).await;
    assert_eq!(zh.status, StatusCode::OK);
    let zh = zh.json();
    assert_eq!(zh["version"], POLICY);
    assert_eq!(zh["effective"], "2026-11-29");
    assert_eq!(zh["language"], "zh");
    assert!(zh["text"].as_str().unwrap().contains("隐私政策"));
    let en = c.get("/api/v1/policy?lang=en", None).await.json();
    assert_eq!(en["language"], "en");
    assert!(en["text"].as_str().unwrap().contains("Privacy policy"));
    let bad = c.get("/api/v1/policy?lang=fr", None).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad.error_code(), "invalid_field");
}

#[tokio::test]
async fn configured_policy_file_replaces_the_built_in_text() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy-en.md");
    std::fs::write(&file, "The ACME node's own policy.").unwrap();
    let n = TestNode::start_toml(&format!("[policy]\nen_file = \"{}\"\n", file.display())).await;
    let en = n.client().get("/api/v1/policy?lang=en", None).await.json();
    assert_eq!(en["text"], "The ACME node's own policy.");
}

#[tokio::test]
async fn openapi_document_lists_exactly_the_routes_the_server_has() {
    let n = TestNode::start().await;
    let r = n.client().get("/api/v1/openapi.json", None).await;
    assert_eq!(r.status, StatusCode::OK);
    let doc = r.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let mut documented = BTreeSet::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            documented.insert((method.to_uppercase(), path.clone()));
        }
    }
    let served: BTreeSet<_> = node::ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    let missing: Vec<_> = served.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&served).collect();
    assert!(missing.is_empty(), "routes the document lacks: {missing:?}");
    assert!(
        extra.is_empty(),
        "documented routes the server lacks: {extra:?}"
    );
    // Every documented route really is served: none answers 404 "no such endpoint".
    let c = n.client();
    for (method, path) in &served {
        let concrete = path
            .replace("{device_id}", "x")
            .replace("{purpose}", "camera")
            .replace("{address}", "a@b");
        let r = c.call(method, &concrete, None, None).await;
        // A route may answer 404 for a missing thing (a page, a version), never for itself.
        if r.status == StatusCode::NOT_FOUND {
            assert_ne!(
                r.json()["error"]["message"],
                "no such endpoint",
                "{method} {concrete}"
            );
        }
        assert_ne!(
            r.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {concrete}"
        );
    }
}

#[tokio::test]
async fn unknown_paths_and_methods_get_json_errors() {
    let n = TestNode::start().await;
    let c = n.client();
    let r = c.get("/api/v1/nothing-here", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.error_code(), "not_found");
    let r = c.call("DELETE", "/api/v1/policy", None, None).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.error_code(), "method_not_allowed");
}

#[tokio::test]
async fn http2_is_negotiated_by_alpn() {
    let n = TestNode::start().await;
    let req = Request::get("https://localhost/health")
        .body(Full::default())
        .unwrap();
    let (r, alpn) = n.client().send_h2(req).await;
    assert_eq!(alpn.as_deref(), Some(&b"h2"[..]));
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["status"], "ok");
}
