//! What is stored: personal fields are encrypted at rest (the raw database file holds none of
//! them), everything survives a restart, and a wrong master key is refused at start.

use std::sync::Arc;

use http::StatusCode;
use serde_json::json;
use tests::{TestNode, node};

const MARKER_PHONE: &str = "+8613912345678";
const MARKER_NICK: &str = "MarkerNickQz7";
const MARKER_BIO: &str = "MarkerBioWx4";
const MARKER_DEVICE: &str = "MarkerDeviceKp2";

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn phone_handle_and_profile_never_appear_in_the_raw_database_file() {
    let mut n = TestNode::start().await;
    let c = n.client();
    let r = c
        .call(
            "POST",
            "/api/v1/accounts",
            None,
            Some(&json!({
                "phone": MARKER_PHONE, "handle": "marker", "password": "password-marker",
                "nickname": MARKER_NICK, "accept_policy": tests::POLICY,
            })),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = c
        .call(
            "POST",
            "/api/v1/sessions",
            None,
            Some(&json!({"login": MARKER_PHONE, "password": "password-marker", "device": {"name": MARKER_DEVICE}})),
        )
        .await;
    let token = r.json()["token"].as_str().unwrap().to_string();
    c.call(
        "PATCH",
        "/api/v1/me",
        Some(&token),
        Some(&json!({"bio": {"value": MARKER_BIO}})),
    )
    .await;
    n.stop().await;

    let raw = std::fs::read(n.db_path()).unwrap();
    assert!(raw.len() > 1000, "the database file was written");
    // The phone is also searched without '+' and by its national part.
    for marker in [
        MARKER_PHONE,
        &MARKER_PHONE[1..],
        "13912345678",
        MARKER_NICK,
        MARKER_BIO,
        MARKER_DEVICE,
        &token,
    ] {
        assert!(
            !contains(&raw, marker),
            "{marker} found in plaintext in node.redb"
        );
    }
    // The handle is not stored in clear either (it is sealed, and found by keyed hash), while
    // table names are: this shows the search works.
    assert!(!contains(&raw, "marker"), "the handle is not in clear");
    assert!(contains(&raw, "userid_account"));
}

#[tokio::test]
async fn accounts_sessions_profiles_and_consents_survive_a_restart() {
    let mut n = TestNode::start().await;
    let c = n.client();
    c.register("alice", "+8613900000001").await;
    let (token, _) = c.login("alice").await;
    c.call(
        "PATCH",
        "/api/v1/me",
        Some(&token),
        Some(&json!({"region": {"value": "Suzhou", "visibility": "public"}})),
    )
    .await;
    c.call(
        "PUT",
        "/api/v1/me/consents/cloud_sync",
        Some(&token),
        Some(&json!({"granted": true})),
    )
    .await;
    let before_me = c.get("/api/v1/me", Some(&token)).await.json();
    let before_consents = c.get("/api/v1/me/consents", Some(&token)).await.json();
    let cert_before = std::fs::read(n.dir.path().join("tls/cert.pem")).unwrap();
    let key_before = std::fs::read(n.dir.path().join("master.key")).unwrap();

    n.restart().await;
    let c = n.client();
    assert_eq!(
        c.get("/api/v1/me", Some(&token)).await.json(),
        before_me,
        "the old token still works"
    );
    assert_eq!(
        c.get("/api/v1/me/consents", Some(&token)).await.json(),
        before_consents
    );
    c.login("alice").await;
    assert_eq!(
        std::fs::read(n.dir.path().join("tls/cert.pem")).unwrap(),
        cert_before,
        "certificate reused"
    );
    assert_eq!(
        std::fs::read(n.dir.path().join("master.key")).unwrap(),
        key_before,
        "master key reused"
    );
    let r = c
        .call(
            "POST",
            "/api/v1/accounts",
            None,
            Some(
                &json!({"phone": "+8613900000001", "handle": "alice2", "password": "password-x",
                         "nickname": "A", "accept_policy": tests::POLICY}),
            ),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::CONFLICT,
        "the phone index survived too"
    );
}

#[tokio::test]
async fn a_master_key_that_does_not_belong_to_the_database_is_refused() {
    let mut n = TestNode::start().await;
    n.client().register("bob", "+8613900000002").await;
    n.stop().await;
    let key = n.dir.path().join("master.key");
    std::fs::remove_file(&key).unwrap();

    // Missing key with an existing database: refused, never silently replaced.
    let e = node::Node::start(n.config.clone(), Arc::new(node::SystemClock))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("master.key") && e.contains("restore"), "{e}");
    assert!(!key.exists(), "no new key was created");

    // A different key: refused by the check value.
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&key)
            .unwrap();
        writeln!(f, "{}", "ab".repeat(32)).unwrap();
    }
    let e = node::Node::start(n.config.clone(), Arc::new(node::SystemClock))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("master key does not belong"), "{e}");
}

#[tokio::test]
async fn first_start_creates_a_private_data_directory_key_and_certificate() {
    use std::os::unix::fs::PermissionsExt;
    let n = TestNode::start().await;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let d = n.dir.path();
    assert_eq!(mode(&d.join("master.key")), 0o600);
    assert_eq!(mode(&d.join("tls/key.pem")), 0o600);
    assert!(d.join("tls/cert.pem").exists());
    assert!(d.join("node.redb").exists());
    let nested = tempfile::tempdir().unwrap();
    let data = nested.path().join("new/data");
    let config = tests::test_config(&data, "");
    let n2 = TestNode::start_in(nested, config, Arc::new(node::SystemClock)).await;
    assert_eq!(mode(&data), 0o700, "created data dir is private");
    assert_eq!(
        n2.client().get("/health", None).await.status,
        StatusCode::OK
    );
}
