//! Notices the node writes as a code with parameters, worded in the asker's language
//! (`?lang`, else `Accept-Language`) on `GET /api/v1/me/notices`, the event feed and the
//! export; and the policy endpoints choosing their language the same way.

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use node::AdminRequest;
use serde_json::{Value, json};
use tests::{Client, Reply, TestNode, next_of, phone};

/// `GET path`, with a token and an `Accept-Language` header if given.
async fn get(c: &Client, path: &str, token: Option<&str>, accept_language: Option<&str>) -> Reply {
    let mut b = Request::builder()
        .method("GET")
        .uri(path)
        .header("host", "localhost");
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    if let Some(l) = accept_language {
        b = b.header("accept-language", l);
    }
    c.send(b.body(Full::new(Bytes::new())).unwrap()).await
}

/// The notices of a `GET /api/v1/me/notices` answer, checking it is in `language`.
fn notices(r: &Reply, language: &str) -> Vec<Value> {
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let v = r.json();
    assert_eq!(v["language"], language, "{v}");
    v["notices"].as_array().unwrap().clone()
}

fn sign_in(list: &[Value]) -> Value {
    list.iter()
        .find(|n| n["kind"] == "security")
        .unwrap_or_else(|| panic!("no sign-in notice in {list:?}"))
        .clone()
}

#[tokio::test]
async fn a_sign_in_notice_is_a_code_with_its_time_worded_in_chinese_or_english() {
    let n = TestNode::start().await;
    let c = n.client();
    let alice = c.user("alice", &phone(1)).await;

    let zh = sign_in(&notices(
        &get(
            &c,
            "/api/v1/me/notices",
            Some(&alice),
            Some("zh-CN,zh;q=0.9,en;q=0.8"),
        )
        .await,
        "zh",
    ));
    assert_eq!(zh["code"], "sign_in.new_device", "{zh}");
    let at = zh["params"]["at"]
        .as_str()
        .expect("the sign-in time")
        .to_string();
    assert_eq!(
        zh["params"].as_object().unwrap().len(),
        1,
        "only the time: {zh}"
    );
    assert_eq!(zh["title"], "新设备登录");
    assert_eq!(zh["text"], format!("有新设备于 {at} 登录了你的账号。"));

    let en = sign_in(&notices(
        &get(
            &c,
            "/api/v1/me/notices",
            Some(&alice),
            Some("en-US,en;q=0.9"),
        )
        .await,
        "en",
    ));
    assert_eq!(en["code"], zh["code"]);
    assert_eq!(en["params"], zh["params"]);
    assert_eq!(en["cursor"], zh["cursor"]);
    assert_eq!(en["title"], "New sign-in");
    assert_eq!(
        en["text"],
        format!("A new device signed in to your account at {at}.")
    );

    // `lang` wins over the header; without either, Chinese; an unknown `lang` is refused.
    let r = get(
        &c,
        "/api/v1/me/notices?lang=en",
        Some(&alice),
        Some("zh-CN"),
    )
    .await;
    assert_eq!(sign_in(&notices(&r, "en"))["title"], "New sign-in");
    let r = get(&c, "/api/v1/me/notices", Some(&alice), None).await;
    assert_eq!(sign_in(&notices(&r, "zh"))["title"], "新设备登录");
    let r = get(&c, "/api/v1/me/notices?lang=fr", Some(&alice), Some("en")).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);

    // The long poll words it the same way.
    let feed = |lang: &'static str| {
        let (c, alice) = (c.clone(), alice.clone());
        async move {
            let r = get(&c, "/api/v1/sync?timeout=0", Some(&alice), Some(lang)).await;
            assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
            let events = r.json()["events"].as_array().unwrap().clone();
            events
                .into_iter()
                .find(|e| e["type"] == "notice" && e["kind"] == "security")
                .expect("the sign-in notice on the feed")
        }
    };
    let e = feed("en").await;
    assert_eq!(
        (e["code"].clone(), e["title"].clone()),
        (json!("sign_in.new_device"), json!("New sign-in"))
    );
    assert_eq!(feed("zh").await["title"], "新设备登录");
    let r = get(&c, "/api/v1/sync?timeout=0&lang=de", Some(&alice), None).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn notices_on_the_websocket_and_in_the_export_carry_code_params_and_words() {
    let n = TestNode::start().await;
    let c = n.client();
    let alice = c.user("alice", &phone(1)).await;
    // The WebSocket without `lang` or header: Chinese.
    let mut ws = c.ws(Some(&alice), None).await;
    let e = next_of(&mut ws, "notice").await;
    assert_eq!(e["code"], "sign_in.new_device", "{e}");
    assert_eq!(e["title"], "新设备登录");

    // An operator's notice stays the free text it was written in, in every language.
    n.admin(AdminRequest::IncidentNotify {
        title: "Maintenance tonight".into(),
        body: "The node restarts at 22:00.".into(),
        users: None,
    })
    .await;
    let e = next_of(&mut ws, "notice").await;
    assert_eq!(e["kind"], "incident");
    assert_eq!(e["code"], Value::Null);
    assert_eq!(e["params"], json!({}));
    assert_eq!(e["title"], "Maintenance tonight");
    let list = notices(
        &get(&c, "/api/v1/me/notices?lang=en", Some(&alice), None).await,
        "en",
    );
    let incident = list.iter().find(|n| n["kind"] == "incident").unwrap();
    assert_eq!(incident["text"], "The node restarts at 22:00.");
    assert_eq!(incident["code"], Value::Null);

    // The export words the node's notices in the downloader's language.
    let r = c
        .call("POST", "/api/v1/me/export", Some(&alice), None)
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    for (header, title) in [("en", "New sign-in"), ("zh-CN", "新设备登录")] {
        let r = get(&c, "/api/v1/me/export", Some(&alice), Some(header)).await;
        assert_eq!(r.status, StatusCode::OK);
        let archive = r.json();
        let exported = archive["notices"].as_array().unwrap();
        let s = sign_in(exported);
        assert_eq!(s["code"], "sign_in.new_device");
        assert_eq!(s["title"], title, "{header}");
        let i = exported.iter().find(|n| n["kind"] == "incident").unwrap();
        assert_eq!(i["title"], "Maintenance tonight");
    }
    let r = get(&c, "/api/v1/me/export?lang=xx", Some(&alice), None).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn the_policy_endpoints_follow_accept_language_when_lang_is_absent() {
    let n = TestNode::start().await;
    let c = n.client();
    let version = c.get("/api/v1/policy", None).await.json()["version"]
        .as_str()
        .unwrap()
        .to_string();
    for path in [
        "/api/v1/policy".to_string(),
        format!("/api/v1/policy/versions/{version}"),
    ] {
        let served = |r: Reply| {
            assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
            r.json()["language"].as_str().unwrap().to_string()
        };
        assert_eq!(
            served(get(&c, &path, None, Some("en-GB,en;q=0.9")).await),
            "en",
            "{path}"
        );
        assert_eq!(
            served(get(&c, &path, None, Some("fr, en;q=0.5, zh;q=0.4")).await),
            "en"
        );
        assert_eq!(
            served(get(&c, &path, None, Some("zh-CN, en;q=0.5")).await),
            "zh"
        );
        assert_eq!(
            served(get(&c, &path, None, Some("fr")).await),
            "zh",
            "no usable language"
        );
        assert_eq!(served(get(&c, &path, None, None).await), "zh");
        let q = if path.contains('?') { '&' } else { '?' };
        assert_eq!(
            served(get(&c, &format!("{path}{q}lang=zh"), None, Some("en")).await),
            "zh",
            "lang wins"
        );
        let r = get(&c, &format!("{path}{q}lang=fr"), None, Some("en")).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    }
}
