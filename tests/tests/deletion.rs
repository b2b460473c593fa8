//! Account deletion by the user: re-authenticated, a cooling-off period with the account
//! locked, cancellable, then erasure (clauses 5.3.a-b).

use std::sync::Arc;

use http::StatusCode;
use node::{ManualClock, Millis};
use serde_json::json;
use tests::{TestNode, eventually, now_ms, phone};

#[tokio::test]
async fn deleting_my_account_needs_my_password_locks_it_and_can_be_cancelled() {
    let n = TestNode::start().await;
    let c = n.client();
    let t = c.user("dora", &phone(1)).await;
    let ask = |password: &str| json!({ "password": password });
    let r = c
        .call("POST", "/api/v1/me/deletion", Some(&t), Some(&ask("wrong")))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        c.get("/api/v1/conversations", Some(&t)).await.status,
        StatusCode::OK,
        "a wrong password changes nothing"
    );
    let r = c
        .call(
            "POST",
            "/api/v1/me/deletion",
            Some(&t),
            Some(&ask("password-dora")),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::ACCEPTED,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let due = r.json()["due"].as_str().unwrap().to_string();
    assert!(due.starts_with("20"), "{due}");

    // Locked, except for cancelling, reading who I am, exporting my data and signing out.
    let r = c.get("/api/v1/conversations", Some(&t)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.error_code(), "account_pending_deletion");
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&due)
    );
    assert_eq!(c.get("/api/v1/me", Some(&t)).await.status, StatusCode::OK);
    // A user leaving can still take their data with them.
    let r = c.call("POST", "/api/v1/me/export", Some(&t), None).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let r = c.get("/api/v1/me/export", Some(&t)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["complete"], true);

    let r = c
        .call("DELETE", "/api/v1/me/deletion", Some(&t), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        c.get("/api/v1/conversations", Some(&t)).await.status,
        StatusCode::OK
    );
    let r = c
        .call("DELETE", "/api/v1/me/deletion", Some(&t), None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "nothing left to cancel");
    let r = c
        .call(
            "POST",
            "/api/v1/me/deletion",
            Some(&t),
            Some(&json!({"pw": 1})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "an unknown field");
}

#[tokio::test]
async fn after_the_cooling_off_period_the_account_is_erased_and_its_handle_cannot_return() {
    let clock = Arc::new(ManualClock::new(Millis(now_ms())));
    let n = TestNode::start_manual(
        "[accounts]\ndeletion_cooling_off_days = 1\n[retention]\ninterval_secs = 1\n\
         [metrics]\nlisten = \"127.0.0.1:0\"\n",
        clock.clone(),
    )
    .await;
    let c = n.client();
    let dora = c.user("dora", &phone(1)).await;
    let ed = c.user("eddy", &phone(2)).await;
    let conv = c.direct(&dora, "eddy@localhost").await;
    c.say(&ed, &conv, "e1", "from ed").await;
    c.say(&dora, &conv, "d1", "from dora").await;
    let r = c
        .call(
            "POST",
            "/api/v1/me/deletion",
            Some(&dora),
            Some(&json!({"password": "password-dora"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);

    // Within the period nothing is erased, even when the node looks: each maintenance round
    // runs the due erasures, then retention (counted), so two more counted rounds mean at
    // least one looked for due erasures after the request.
    let runs = || async { n.metric("shanliao_retention_runs_total").await };
    let before = runs().await.unwrap_or(0.0);
    eventually(10, "two more maintenance rounds", || async {
        (runs().await? >= before + 2.0).then_some(())
    })
    .await;
    assert_eq!(
        c.get("/api/v1/me", Some(&dora)).await.status,
        StatusCode::OK
    );

    clock.advance_ms(25 * 3600 * 1000);
    eventually(10, "the erasure", || async {
        (c.get("/api/v1/me", Some(&dora)).await.status == StatusCode::UNAUTHORIZED).then_some(())
    })
    .await;
    assert_eq!(
        c.get("/api/v1/users/dora@localhost", Some(&ed))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        c.texts(&ed, &conv).await,
        ["from ed"],
        "nothing of hers is shown"
    );
    // The conversation stays Ed's, with nobody named as the other member.
    let r = c
        .get(&format!("/api/v1/conversations/{conv}"), Some(&ed))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.json()["with"].is_null(), "{}", r.json());
    let list = c.get("/api/v1/conversations", Some(&ed)).await.json();
    assert!(list["conversations"][0]["with"].is_null(), "{list}");
    let r = c
        .call(
            "POST",
            "/api/v1/sessions",
            None,
            Some(&json!({"login": "dora", "password": "password-dora"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // Her handle cannot be taken by someone else.
    let r = c
        .call(
            "POST",
            "/api/v1/accounts",
            None,
            Some(
                &json!({"phone": phone(3), "handle": "dora", "password": "password-dora",
                         "nickname": "not dora", "accept_policy": tests::POLICY}),
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    // Her phone number no longer finds any account: it may register again.
    let r = c
        .call(
            "POST",
            "/api/v1/accounts",
            None,
            Some(
                &json!({"phone": phone(1), "handle": "dora2", "password": "password-dora2",
                         "nickname": "new dora", "accept_policy": tests::POLICY}),
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
}
