//! The unauthenticated surface: health, the privacy policy, the OpenAPI document (checked
//! against the route table in both directions, validated as OpenAPI 3.0, and proven to refuse
//! responses it does not describe), routing errors, and HTTP/2 by ALPN.

use std::collections::BTreeSet;

use http::{Request, StatusCode};
use http_body_util::Full;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tests::openapi::{
    DOCUMENT, META_SCHEMA, META_SCHEMA_SHA256, check_event, check_response, document_errors,
};
use tests::{POLICY, TestNode, node, phone};

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
    let c = n.client();
    let r = c.get("/api/v1/openapi.json", None).await;
    assert_eq!(r.status, StatusCode::OK);
    let doc = r.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let mut documented = BTreeSet::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            documented.insert((method.to_uppercase(), path.clone()));
        }
    }
    let client_routes: Vec<&node::Route> = node::ROUTES
        .iter()
        .filter(|r| r.auth() != node::Auth::Peer)
        .collect();
    let served: BTreeSet<_> = client_routes
        .iter()
        .map(|r| (r.method().to_string(), r.pattern.to_string()))
        .collect();
    let missing: Vec<_> = served.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&served).collect();
    assert!(missing.is_empty(), "routes the document lacks: {missing:?}");
    assert!(
        extra.is_empty(),
        "documented routes the server lacks: {extra:?}"
    );

    // Every documented route really is served, called the way the document says: with a real
    // session where it asks for one. Sign-out and deletion come last, so the rest run signed in.
    let token = c.user("routewalker", &phone(31)).await;
    let concrete = |pattern: &str| {
        pattern
            .replace("{device_id}", "x")
            .replace("{purpose}", "camera")
            .replace("{address}", "a@b")
            .replace("{handle}", "routewalker")
            .replace("{version}", POLICY)
    };
    let last = |r: &&node::Route| {
        [
            ("POST", "/api/v1/me/deletion"),
            ("DELETE", "/api/v1/sessions/current"),
        ]
        .iter()
        .position(|(m, p)| *m == r.method() && *p == r.pattern)
    };
    let mut order = client_routes.clone();
    order.sort_by_key(last);
    let body = json!({});
    // First the query rule, which every route applies before doing anything: a name the route
    // does not take is 400.
    // (The event stream answers a request that is not a WebSocket upgrade with 426 first.)
    for route in order.iter().filter(|r| r.pattern != "/api/v1/events") {
        let (method, token) = (route.method(), Some(token.as_str()));
        let path = format!("{}?zz=1", concrete(route.pattern));
        let with_body = (method != "GET" && method != "DELETE").then_some(&body);
        let r = c.call(method, &path, token, with_body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{method} {path}");
        assert_eq!(r.error_code(), "invalid_request", "{method} {path}");
    }
    for route in &order {
        let method = route.method();
        let mut path = concrete(route.pattern);
        if route.pattern == "/api/v1/sync" {
            path.push_str("?timeout=0");
        }
        let with_body = (method != "GET" && method != "DELETE").then_some(&body);
        // Without a token: the routes the document secures answer 401, the others do not.
        let anonymous = c.call(method, &path, None, with_body).await;
        match route.auth() {
            node::Auth::Session => assert_eq!(
                anonymous.status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} without a token"
            ),
            _ => assert_ne!(
                anonymous.status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} without a token"
            ),
        }
        let token = (route.auth() != node::Auth::None).then_some(token.as_str());
        let r = c.call(method, &path, token, with_body).await;
        // A route may answer 404 for a missing thing (a page, a version), never for itself;
        // with its session it gets past authentication to a handler that answers.
        if r.status == StatusCode::NOT_FOUND {
            assert_ne!(
                r.json()["error"]["message"],
                "no such endpoint",
                "{method} {path}"
            );
        }
        for refused in [
            StatusCode::METHOD_NOT_ALLOWED,
            StatusCode::UNAUTHORIZED,
            StatusCode::INTERNAL_SERVER_ERROR,
        ] {
            assert_ne!(r.status, refused, "{method} {path}: {:?}", r.body);
        }
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

#[tokio::test]
async fn openapi_document_is_valid_openapi_3_0_and_exact() {
    let errors = document_errors(DOCUMENT);
    assert!(errors.is_empty(), "openapi.json:\n{}", errors.join("\n"));
    // What the node serves is that document.
    let n = TestNode::start().await;
    let served = n.client().get("/api/v1/openapi.json", None).await;
    assert_eq!(served.body, DOCUMENT.as_bytes());
}

#[test]
fn openapi_meta_schema_is_the_official_file_unmodified() {
    let digest = Sha256::digest(META_SCHEMA.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(hex, META_SCHEMA_SHA256);
    let meta: Value = serde_json::from_str(META_SCHEMA).unwrap();
    assert_eq!(
        meta["id"],
        "https://spec.openapis.org/oas/3.0/schema/2021-09-28"
    );
}

/// `DOCUMENT` with `edit` applied to its parsed form.
fn edited(edit: impl FnOnce(&mut Value)) -> String {
    let mut doc: Value = serde_json::from_str(DOCUMENT).unwrap();
    edit(&mut doc);
    doc.to_string()
}

/// Asserts that `DOCUMENT` changed by `edit` is refused with an error `matches` picks out.
fn refused(edit: impl FnOnce(&mut Value), matches: impl Fn(&str) -> bool) {
    let errors = document_errors(&edited(edit));
    assert!(errors.iter().any(|e| matches(e)), "{errors:?}");
}

#[test]
fn openapi_validation_refuses_3_1_syntax_and_loose_response_schemas() {
    let health = "/paths/~1health/get/responses/200/content/application~1json/schema";
    // OpenAPI 3.1's way of saying nullable is not 3.0.
    refused(
        |d| {
            d.pointer_mut(&format!("{health}/properties/domain"))
                .unwrap()["type"] = json!(["string", "null"]);
        },
        |e| e.starts_with("meta-schema"),
    );
    // A success schema that lets a field go missing, or lets any other appear.
    refused(
        |d| {
            d.pointer_mut(health)
                .unwrap()
                .as_object_mut()
                .unwrap()
                .remove("required");
        },
        |e| e.contains("GET /health 200") && e.contains("without `required`"),
    );
    refused(
        |d| d.pointer_mut(health).unwrap()["additionalProperties"] = json!(true),
        |e| e.contains("GET /health 200") && e.contains("additionalProperties: false"),
    );
    // A request body that lets unknown fields through (the node refuses them).
    refused(
        |d| {
            let login = d["components"]["schemas"]["Login"].as_object_mut().unwrap();
            login.remove("additionalProperties");
        },
        |e| e.starts_with("POST /api/v1/sessions request body"),
    );
    // An id in a path without its shape.
    refused(
        |d| {
            d["paths"]["/api/v1/media/{id}"]["get"]["parameters"][0]["schema"] =
                json!({"type": "string"});
        },
        |e| e.contains("path parameter `id`"),
    );
    // Every operation needs an operationId.
    refused(
        |d| {
            let op = d["paths"]["/health"]["get"].as_object_mut().unwrap();
            op.remove("operationId");
        },
        |e| e == "GET /health: no operationId",
    );
    // And says who may call it, `[]` for anyone.
    refused(
        |d| {
            let op = d["paths"]["/health"]["get"].as_object_mut().unwrap();
            op.remove("security");
        },
        |e| e == "GET /health: no security",
    );
}

#[tokio::test]
async fn openapi_check_refuses_a_response_missing_a_field_carrying_an_extra_one_or_undeclared() {
    let n = TestNode::start().await;
    let c = n.client();
    c.register("alice", &phone(1)).await;
    let (token, _) = c.login("alice").await;
    let me = c.get("/api/v1/me", Some(&token)).await;
    let ct = Some("application/json");
    let body = me.json();
    let check = |status: u16, v: &Value| {
        check_response("GET", "/api/v1/me", status, ct, v.to_string().as_bytes())
    };
    check(200, &body).expect("the real answer matches");
    let mut missing = body.clone();
    missing.as_object_mut().unwrap().remove("nickname");
    let e = check(200, &missing).unwrap_err();
    assert!(
        e.contains("GET /api/v1/me answered 200") && e.contains("nickname"),
        "{e}"
    );
    let mut extra = body.clone();
    extra["secret"] = json!("x");
    let e = check(200, &extra).unwrap_err();
    assert!(
        e.contains("GET /api/v1/me answered 200") && e.contains("secret"),
        "{e}"
    );
    let mut wrong = body.clone();
    wrong["phone"] = json!("13800138000");
    let e = check(200, &wrong).unwrap_err();
    assert!(e.contains("at `/phone`"), "{e}");
    // A status the operation does not declare, with a body that is a fine error.
    let error = json!({"error": {"code": "x", "message": "y"}});
    let e = check(409, &error).unwrap_err();
    assert!(
        e.contains("GET /api/v1/me answered 409, which the document does not declare"),
        "{e}"
    );
    // Event frames: each type has exactly its fields.
    let renamed = json!({"type": "renamed", "cursor": "7", "conversation": "abc:localhost",
        "name": "g", "actor": "alice@localhost"});
    check_event(&renamed).expect("a whole renamed event matches");
    let mut no_actor = renamed.clone();
    no_actor.as_object_mut().unwrap().remove("actor");
    assert!(check_event(&no_actor).is_err());
    let mut foreign = renamed.clone();
    foreign["seq"] = json!(3);
    assert!(check_event(&foreign).is_err());
    // A route template is matched with its parameters, and an error body is checked too.
    let e = check_response(
        "GET",
        "/api/v1/conversations/abc:localhost",
        404,
        ct,
        b"{\"error\":{}}",
    )
    .unwrap_err();
    assert!(
        e.starts_with("GET /api/v1/conversations/{id} answered 404"),
        "{e}"
    );
}
