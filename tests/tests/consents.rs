//! The consent ledger over HTTPS: every purpose starts ungranted, each decision is recorded
//! with time, policy version and device, and one purpose's state never affects another's or
//! the basic functions.

use http::StatusCode;
use serde_json::json;
use tests::{POLICY, TestNode, phone};

const PURPOSES: [&str; 12] = [
    "cloud_sync",
    "contacts_matching",
    "precise_location",
    "camera",
    "microphone",
    "photos",
    "recommend_me",
    "be_recommended",
    "personalisation",
    "cross_border_transfer",
    "real_name",
    "public_page",
];

#[tokio::test]
async fn accepting_the_policy_grants_no_purpose() {
    let n = TestNode::start().await;
    let c = n.client();
    let t = c.user("alice", &phone(1)).await;
    let r = c.get("/api/v1/me/consents", Some(&t)).await;
    assert_eq!(r.status, StatusCode::OK);
    let list = r.json()["consents"].as_array().unwrap().clone();
    let names: Vec<_> = list
        .iter()
        .map(|p| p["purpose"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, PURPOSES);
    for p in &list {
        assert_eq!(p["granted"], false, "{p}");
        assert_eq!(p["since"], serde_json::Value::Null);
        assert_eq!(p["history"], json!([]));
        assert!(!p["description"].as_str().unwrap().is_empty());
    }
    let sensitive: Vec<_> = list
        .iter()
        .filter(|p| p["sensitive"] == true)
        .map(|p| p["purpose"].clone())
        .collect();
    for s in [
        "contacts_matching",
        "precise_location",
        "camera",
        "microphone",
        "photos",
    ] {
        assert!(sensitive.contains(&json!(s)), "{s} is sensitive");
    }
}

#[tokio::test]
async fn grant_and_revoke_are_recorded_with_time_policy_version_and_device() {
    let n = TestNode::start().await;
    let c = n.client();
    c.register("bob", &phone(2)).await;
    let (t, device) = c.login("bob").await;
    let r = c
        .call(
            "PUT",
            "/api/v1/me/consents/photos",
            Some(&t),
            Some(&json!({"granted": true})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let v = r.json();
    assert_eq!(v["purpose"], "photos");
    assert_eq!(v["granted"], true);
    assert_eq!(v["history"][0]["policy_version"], POLICY);
    assert_eq!(v["history"][0]["device_id"], device.as_str());
    assert!(v["history"][0]["at"].as_str().unwrap().ends_with('Z'));

    // Granting again changes nothing and records nothing.
    let again = c
        .call(
            "PUT",
            "/api/v1/me/consents/photos",
            Some(&t),
            Some(&json!({"granted": true})),
        )
        .await
        .json();
    assert_eq!(again["history"].as_array().unwrap().len(), 1);

    let (t2, device2) = c.login("bob").await;
    let r = c
        .call(
            "PUT",
            "/api/v1/me/consents/photos",
            Some(&t2),
            Some(&json!({"granted": false})),
        )
        .await;
    let v = r.json();
    assert_eq!(v["granted"], false);
    let history = v["history"].as_array().unwrap();
    assert_eq!(history.len(), 2, "revocation kept beside the grant");
    assert_eq!(history[1]["granted"], false);
    assert_eq!(history[1]["device_id"], device2.as_str());

    let all = c.get("/api/v1/me/consents", Some(&t)).await.json();
    for p in all["consents"].as_array().unwrap() {
        assert_eq!(p["granted"], false, "{p}");
    }
}

#[tokio::test]
async fn revoking_one_purpose_leaves_the_others_and_basic_functions_working() {
    let n = TestNode::start().await;
    let c = n.client();
    let t = c.user("carol", &phone(3)).await;
    for p in ["camera", "microphone", "cloud_sync"] {
        c.call(
            "PUT",
            &format!("/api/v1/me/consents/{p}"),
            Some(&t),
            Some(&json!({"granted": true})),
        )
        .await;
    }
    c.call(
        "PUT",
        "/api/v1/me/consents/microphone",
        Some(&t),
        Some(&json!({"granted": false})),
    )
    .await;
    let all = c.get("/api/v1/me/consents", Some(&t)).await.json();
    let granted: Vec<_> = all["consents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["granted"] == true)
        .map(|p| p["purpose"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(granted, ["cloud_sync", "camera"]);
    // Login, profile and session management still work.
    assert_eq!(c.get("/api/v1/me", Some(&t)).await.status, StatusCode::OK);
    let r = c
        .call(
            "PATCH",
            "/api/v1/me",
            Some(&t),
            Some(&json!({"nickname": "C"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    c.login("carol").await;
}

#[tokio::test]
async fn unknown_purpose_and_bad_bodies_are_refused() {
    let n = TestNode::start().await;
    let c = n.client();
    let t = c.user("dave", &phone(4)).await;
    let r = c
        .call(
            "PUT",
            "/api/v1/me/consents/location",
            Some(&t),
            Some(&json!({"granted": true})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.error_code(), "unknown_purpose");
    for body in [
        json!({"granted": "yes"}),
        json!({}),
        json!({"granted": true, "why": 1}),
    ] {
        let r = c
            .call("PUT", "/api/v1/me/consents/camera", Some(&t), Some(&body))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(r.error_code(), "invalid_request");
    }
    let r = c
        .call(
            "PUT",
            "/api/v1/me/consents/camera",
            None,
            Some(&json!({"granted": true})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let still = c.get("/api/v1/me/consents", Some(&t)).await.json();
    assert!(
        still["consents"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["granted"] == false)
    );
}
