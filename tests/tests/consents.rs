//! The consent ledger over HTTPS: every purpose starts ungranted, each decision is recorded
//! with time, policy version and device, and one purpose's state never affects another's or
//! the basic functions. Each purpose comes with the node's words for it, in the language the
//! request asks for.

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use serde_json::{Value, json};
use tests::{Client, POLICY, Reply, TestNode, phone};

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
        assert_eq!(p["since"], Value::Null);
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

/// `method path` with a token and, if given, an `Accept-Language` header and a JSON body.
async fn with_language(
    c: &Client,
    method: &str,
    path: &str,
    token: &str,
    accept_language: Option<&str>,
    body: Option<Value>,
) -> Reply {
    let mut b = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost")
        .header("authorization", format!("Bearer {token}"));
    if let Some(l) = accept_language {
        b = b.header("accept-language", l);
    }
    let body = match body {
        Some(v) => {
            b = b.header("content-type", "application/json");
            Bytes::from(v.to_string())
        }
        None => Bytes::new(),
    };
    c.send(b.body(Full::new(body)).unwrap()).await
}

fn has_han(s: &str) -> bool {
    s.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))
}

/// The (title, description) of every purpose in a list answer, checking its language.
fn words_of(r: &Reply, language: &str) -> Vec<(String, String)> {
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let v = r.json();
    assert_eq!(v["language"], language, "{v}");
    assert_eq!(v["policy_version"], POLICY, "the version in effect");
    let list = v["consents"].as_array().unwrap();
    assert_eq!(list.len(), 12);
    list.iter()
        .map(|p| {
            let (t, d) = (
                p["title"].as_str().unwrap(),
                p["description"].as_str().unwrap(),
            );
            assert!(!t.is_empty() && !d.is_empty(), "{p}");
            assert_eq!(has_han(t) && has_han(d), language == "zh", "{p}");
            (t.to_string(), d.to_string())
        })
        .collect()
}

#[tokio::test]
async fn purposes_are_described_in_chinese_or_english_as_the_request_asks() {
    let n = TestNode::start().await;
    let c = n.client();
    let t = c.user("erin", &phone(5)).await;
    let get = |lang: Option<&'static str>, path: &'static str| {
        let c = c.clone();
        let t = t.clone();
        async move { with_language(&c, "GET", path, &t, lang, None).await }
    };
    // Chinese by default, and for a browser that prefers it.
    let zh = words_of(&get(None, "/api/v1/me/consents").await, "zh");
    assert_eq!(zh[0].0, "云端同步聊天记录");
    assert_eq!(
        words_of(
            &get(Some("zh-CN,zh;q=0.9,en;q=0.8"), "/api/v1/me/consents").await,
            "zh"
        ),
        zh
    );
    // English for a browser that prefers it, also after a language the node lacks.
    let en = words_of(
        &get(Some("en-GB,en;q=0.9"), "/api/v1/me/consents").await,
        "en",
    );
    assert_eq!(en[0].0, "Cloud sync of history");
    assert_eq!(
        words_of(
            &get(Some("fr-FR, en;q=0.5, zh;q=0.2"), "/api/v1/me/consents").await,
            "en"
        ),
        en
    );
    for (z, e) in zh.iter().zip(&en) {
        assert_ne!(z, e);
    }
    // Nothing usable in the header: Chinese.
    assert_eq!(
        words_of(
            &get(Some("fr, de;q=0.5"), "/api/v1/me/consents").await,
            "zh"
        ),
        zh
    );
    // `lang` wins over the header.
    assert_eq!(
        words_of(&get(Some("en"), "/api/v1/me/consents?lang=zh").await, "zh"),
        zh
    );
    assert_eq!(
        words_of(
            &get(Some("zh-CN"), "/api/v1/me/consents?lang=en").await,
            "en"
        ),
        en
    );

    // A grant answers in the language asked for too, and is recorded under the accepted version.
    let r = with_language(
        &c,
        "PUT",
        "/api/v1/me/consents/photos",
        &t,
        Some("en-US"),
        Some(json!({"granted": true})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let photos = en.iter().find(|(title, _)| title == "Photos").unwrap();
    assert_eq!(r.json()["description"], photos.1.as_str());
    assert_eq!(r.json()["history"][0]["policy_version"], POLICY);
    let r = with_language(
        &c,
        "PUT",
        "/api/v1/me/consents/photos?lang=zh",
        &t,
        Some("en-US"),
        Some(json!({"granted": false})),
    )
    .await;
    assert_eq!(r.json()["title"], "相册");

    // A language the node does not have, or another parameter, is refused.
    let r = get(None, "/api/v1/me/consents?lang=fr").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.error_code(), "invalid_field");
    let r = get(None, "/api/v1/me/consents?language=en").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.error_code(), "invalid_request");
    let r = with_language(
        &c,
        "PUT",
        "/api/v1/me/consents/camera?lang=de",
        &t,
        None,
        Some(json!({"granted": true})),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let all = get(None, "/api/v1/me/consents").await.json();
    assert!(
        all["consents"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["granted"] == false),
        "a refused request changes nothing"
    );
}
