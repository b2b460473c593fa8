//! Registration, login, rate limiting, tokens and device sessions over HTTPS, with good and
//! bad input of every kind.

use http::StatusCode;
use serde_json::{Value, json};
use tests::{POLICY, TestNode, phone};

pub(crate) fn registration(handle: &str, phone: &str) -> Value {
    json!({
        "phone": phone,
        "handle": handle,
        "password": "a good password",
        "nickname": "Nick",
        "accept_policy": POLICY,
    })
}

#[tokio::test]
async fn registration_needs_exactly_phone_handle_password_and_policy_the_nickname_is_optional() {
    let n = TestNode::start().await;
    let c = n.client();
    let r = c
        .call(
            "POST",
            "/api/v1/accounts",
            None,
            Some(&registration("alice", &phone(1))),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.json(), json!({"user": "alice@localhost"}));

    for missing in ["phone", "handle", "password", "accept_policy"] {
        let mut body = registration("bob", &phone(2));
        body.as_object_mut().unwrap().remove(missing);
        let r = c.call("POST", "/api/v1/accounts", None, Some(&body)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "without {missing}");
        assert_eq!(r.error_code(), "invalid_request");
        assert!(
            r.json()["error"]["message"]
                .as_str()
                .unwrap()
                .contains(missing),
            "message names {missing}"
        );
    }
    // Without a nickname the account is made, and the handle is shown until one is set.
    let mut bare = registration("dora", &phone(4));
    bare.as_object_mut().unwrap().remove("nickname");
    let r = c.call("POST", "/api/v1/accounts", None, Some(&bare)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json());
    let r = c
        .call(
            "POST",
            "/api/v1/sessions",
            None,
            Some(&json!({"login": "dora", "password": "a good password"})),
        )
        .await;
    let dora = r.json()["token"].as_str().unwrap().to_string();
    assert_eq!(
        c.get("/api/v1/me", Some(&dora)).await.json()["nickname"],
        "dora"
    );
    let other = c.user("erin", &phone(5)).await;
    // The nickname given is stored in NFC: one name, one spelling.
    let mut decomposed = registration("fred", &phone(6));
    decomposed["nickname"] = json!("Fre\u{301}d");
    let r = c
        .call("POST", "/api/v1/accounts", None, Some(&decomposed))
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(
        c.get("/api/v1/users/fred@localhost", Some(&other))
            .await
            .json()["nickname"],
        "Fréd"
    );
    assert_eq!(
        c.get("/api/v1/users/dora@localhost", Some(&other))
            .await
            .json()["nickname"],
        "dora",
        "others see the handle too"
    );
    let r = c
        .call(
            "PATCH",
            "/api/v1/me",
            Some(&dora),
            Some(&json!({"nickname": "Dora"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        c.get("/api/v1/me", Some(&dora)).await.json()["nickname"],
        "Dora"
    );

    // Optional profile data is not accepted at registration: it is set later, field by field.
    let mut extra = registration("bob", &phone(2));
    extra["gender"] = json!("male");
    let r = c.call("POST", "/api/v1/accounts", None, Some(&extra)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("gender")
    );
}

#[tokio::test]
async fn bad_phone_handle_password_and_nickname_are_refused_naming_the_field() {
    let n = TestNode::start().await;
    let c = n.client();
    let cases: Vec<(&str, Value)> = vec![
        ("phone", json!("13800138000")),
        ("phone", json!("+86 139 0000 0001")),
        ("phone", json!("+999123456789")),
        ("phone", json!("+86139abc00001")),
        ("handle", json!("Al")),
        ("handle", json!("UPPER")),
        ("handle", json!("with space")),
        ("handle", json!("a".repeat(33))),
        ("password", json!("short")),
        ("password", json!("x".repeat(129))),
        ("nickname", json!("")),
        ("nickname", json!("n".repeat(33))),
        ("nickname", json!("bell\u{7}")),
        // Names that impersonate: reordered, invisible, noncharacters, a leading BOM.
        ("nickname", json!("evil\u{202e}gnp.exe")),
        ("nickname", json!("\u{200b}\u{200b}")),
        ("nickname", json!("\u{200d}\u{2060}")),
        ("nickname", json!("name\u{ffff}")),
        ("nickname", json!("\u{feff}admin")),
        ("nickname", json!("a\u{2066}b")),
    ];
    for (field, value) in cases {
        let mut body = registration("carol", &phone(3));
        body[field] = value.clone();
        let r = c.call("POST", "/api/v1/accounts", None, Some(&body)).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{field}={value}"
        );
        assert_eq!(r.error_code(), "invalid_field");
        assert!(
            r.json()["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with(field),
            "{field}={value}"
        );
    }
    // None of the refused attempts created the account.
    let r = c
        .call(
            "POST",
            "/api/v1/accounts",
            None,
            Some(&registration("carol", &phone(3))),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
}

#[tokio::test]
async fn wrong_types_malformed_json_content_type_and_oversized_bodies_are_refused() {
    let n = TestNode::start_toml("[http]\nmax_body_bytes = 2048\n").await;
    let c = n.client();
    let mut wrong = registration("dave", &phone(4));
    wrong["handle"] = json!(42);
    let r = c.call("POST", "/api/v1/accounts", None, Some(&wrong)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.error_code(), "invalid_request");

    let r = c
        .raw(
            "POST",
            "/api/v1/accounts",
            None,
            "application/json",
            b"{\"phone\": ".to_vec(),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.error_code(), "bad_json");
    let r = c
        .raw(
            "POST",
            "/api/v1/accounts",
            None,
            "application/json",
            b"[1,2,3]".to_vec(),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    let body = serde_json::to_vec(&registration("dave", &phone(4))).unwrap();
    let r = c
        .raw("POST", "/api/v1/accounts", None, "text/plain", body.clone())
        .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(r.error_code(), "unsupported_media_type");

    let mut big = registration("dave", &phone(4));
    big["nickname"] = json!("x".repeat(4000));
    let r = c.call("POST", "/api/v1/accounts", None, Some(&big)).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(r.error_code(), "body_too_large");

    let r = c
        .raw(
            "POST",
            "/api/v1/accounts",
            None,
            "application/json; charset=utf-8",
            body,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "a charset parameter is fine");
}

#[tokio::test]
async fn policy_version_must_be_the_current_one() {
    let n = TestNode::start().await;
    let mut body = registration("erin", &phone(5));
    body["accept_policy"] = json!("2019-01-01");
    let r = n
        .client()
        .call("POST", "/api/v1/accounts", None, Some(&body))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.error_code(), "policy_not_accepted");
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains(POLICY)
    );
}

#[tokio::test]
async fn duplicate_handle_or_phone_is_a_conflict() {
    let n = TestNode::start().await;
    let c = n.client();
    c.register("frank", &phone(6)).await;
    let r = c
        .call(
            "POST",
            "/api/v1/accounts",
            None,
            Some(&registration("frank", &phone(7))),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.error_code(), "handle_taken");
    let r = c
        .call(
            "POST",
            "/api/v1/accounts",
            None,
            Some(&registration("grace", &phone(6))),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.error_code(), "phone_taken");
}

#[tokio::test]
async fn login_by_handle_or_phone_gives_a_256_bit_token_per_device() {
    let n = TestNode::start().await;
    let c = n.client();
    c.register("heidi", &phone(8)).await;
    let by_handle = c
        .call(
            "POST",
            "/api/v1/sessions",
            None,
            Some(&json!({"login": "heidi", "password": "password-heidi", "device": {"name": "Phone", "os": "Android 15"}})),
        )
        .await;
    assert_eq!(by_handle.status, StatusCode::CREATED);
    let v = by_handle.json();
    let token = v["token"].as_str().unwrap();
    assert!(token.len() >= 43, "at least 256 bits in base64url");
    let by_phone = c
        .call(
            "POST",
            "/api/v1/sessions",
            None,
            Some(&json!({"login": phone(8), "password": "password-heidi"})),
        )
        .await;
    assert_eq!(by_phone.status, StatusCode::CREATED);
    assert_ne!(by_phone.json()["device_id"], v["device_id"]);

    let me = c.get("/api/v1/me", Some(token)).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.json()["user"], "heidi@localhost");

    let bad_device = c
        .call(
            "POST",
            "/api/v1/sessions",
            None,
            Some(&json!({"login": "heidi", "password": "password-heidi", "device": {"name": "x".repeat(65)}})),
        )
        .await;
    assert_eq!(bad_device.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn wrong_password_and_unknown_login_get_the_same_answer() {
    let n = TestNode::start().await;
    let c = n.client();
    c.register("ivan", &phone(9)).await;
    let attempts = [
        json!({"login": "ivan", "password": "not his password"}),
        json!({"login": "nobody", "password": "whatever password"}),
        json!({"login": phone(99), "password": "whatever password"}),
        json!({"login": "+1", "password": "whatever password"}),
    ];
    let mut bodies = Vec::new();
    for a in attempts {
        let r = c.call("POST", "/api/v1/sessions", None, Some(&a)).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{a}");
        bodies.push(r.body);
    }
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "one message for every cause"
    );
}

#[tokio::test]
async fn repeated_failures_lock_the_account_with_retry_after() {
    let n = TestNode::start_toml("[security]\nlogin_max_failures = 3\n").await;
    let c = n.client();
    c.register("judy", &phone(10)).await;
    for _ in 0..3 {
        let r = c
            .call(
                "POST",
                "/api/v1/sessions",
                None,
                Some(&json!({"login": "judy", "password": "wrong password"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    // Locked now: even the right password is refused until the window passes.
    let r = c
        .call(
            "POST",
            "/api/v1/sessions",
            None,
            Some(&json!({"login": "judy", "password": "password-judy"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.error_code(), "too_many_attempts");
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry > 0 && retry <= 900, "{retry}");
}

#[tokio::test]
async fn missing_garbage_and_revoked_tokens_are_refused() {
    let n = TestNode::start().await;
    let c = n.client();
    let r = c.get("/api/v1/me", None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.error_code(), "missing_token");
    let r = c.get("/api/v1/me", Some("garbage")).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.error_code(), "invalid_token");
    let r = c.get("/api/v1/me", Some(&"A".repeat(5000))).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    let token = c.user("kim", &phone(11)).await;
    let r = c
        .call("DELETE", "/api/v1/sessions/current", Some(&token), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = c.get("/api/v1/me", Some(&token)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "revoked by logout");
    assert_eq!(r.error_code(), "invalid_token");
}

#[tokio::test]
async fn a_user_lists_devices_and_signs_one_out() {
    let n = TestNode::start().await;
    let c = n.client();
    c.register("leo", &phone(12)).await;
    let (t1, d1) = c.login("leo").await;
    let (t2, d2) = c.login("leo").await;
    let r = c.get("/api/v1/me/sessions", Some(&t1)).await;
    assert_eq!(r.status, StatusCode::OK);
    let list = r.json()["sessions"].as_array().unwrap().clone();
    assert_eq!(list.len(), 2);
    let current: Vec<_> = list.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["device_id"], d1.as_str());

    // t2 is in use (and so remembered by the node) when another device signs it out.
    assert_eq!(c.get("/api/v1/me", Some(&t2)).await.status, StatusCode::OK);
    let r = c
        .call(
            "DELETE",
            &format!("/api/v1/me/sessions/{d2}"),
            Some(&t1),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        c.get("/api/v1/me", Some(&t2)).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(c.get("/api/v1/me", Some(&t1)).await.status, StatusCode::OK);
    let r = c
        .call(
            "DELETE",
            &format!("/api/v1/me/sessions/{d2}"),
            Some(&t1),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "already gone");

    // A device description is shown to the user's other devices (and in sign-in notices):
    // it may not reorder or hide what it says either.
    for (part, value) in [
        ("name", "phone\u{202e}"),
        ("os", "\u{200b}"),
        ("app_version", "1\u{ffff}"),
    ] {
        let r = c
            .call(
                "POST",
                "/api/v1/sessions",
                None,
                Some(&json!({"login": "leo", "password": "password-leo", "device": {part: value}})),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{part}");
        let message = r.json()["error"]["message"].as_str().unwrap().to_string();
        assert!(message.starts_with(&format!("device.{part}")), "{message}");
    }

    // Another user cannot end leo's device.
    let other = c.user("mia", &phone(13)).await;
    let r = c
        .call(
            "DELETE",
            &format!("/api/v1/me/sessions/{d1}"),
            Some(&other),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(c.get("/api/v1/me", Some(&t1)).await.status, StatusCode::OK);
}

/// The stored password hash of the stopped node's only account. (Found as the only one: a
/// handle cannot be looked up without the node's key, it is not stored in clear.)
async fn stored_hash(n: &TestNode) -> (node::Store, u64, String) {
    let store = node::Store::open_existing(&n.db_path()).expect("database opens");
    let accounts = store.accounts().await.unwrap();
    assert_eq!(accounts.len(), 1, "one account");
    let (id, phc) = (accounts[0].id, accounts[0].password_phc.clone());
    (store, id, phc)
}

#[tokio::test]
async fn a_password_hash_made_with_older_parameters_is_replaced_at_the_next_sign_in() {
    use argon2::{Algorithm, Argon2, Params, PasswordHasher, Version};
    let mut n = TestNode::start().await;
    n.client().register("alice", &phone(1)).await;
    n.stop().await;
    let (store, id, phc) = stored_hash(&n).await;
    assert!(phc.starts_with("$argon2id$v=19$m=7168,t=5,p=1$"), "{phc}");
    // What an account registered with the earlier parameters carries.
    let old = Argon2::new(
        Algorithm::Argon2id,
        Version::V0x13,
        Params::new(19 * 1024, 2, 1, None).unwrap(),
    )
    .hash_password(b"password-alice")
    .unwrap()
    .to_string();
    assert!(
        store
            .replace_password_hash(id, phc, old.clone())
            .await
            .unwrap()
    );
    tokio::task::spawn_blocking(move || drop(store))
        .await
        .unwrap();

    n.start_again().await;
    n.client().login("alice").await;
    n.stop().await;
    let (store, _, now) = stored_hash(&n).await;
    tokio::task::spawn_blocking(move || drop(store))
        .await
        .unwrap();
    assert_ne!(now, old);
    assert!(now.starts_with("$argon2id$v=19$m=7168,t=5,p=1$"), "{now}");
    n.start_again().await;
    n.client().login("alice").await;
}
