//! The privacy centre over HTTPS: policy versions with notices, acceptance and the pause of
//! optional processing; real-name verification; the public page; minors and guardian consent;
//! the data export with its disclosure log.

use std::sync::Arc;

use http::StatusCode;
use node::{AdminRequest, ManualClock, Millis};
use serde_json::{Value, json};
use tests::{Client, POLICY, TestNode, eventually, federation, next_of, phone};

/// The example number printed in GB 11643 itself (check character X).
const ID_NUMBER: &str = "11010519491231002X";

fn day(s: &str) -> Millis {
    node::parse_date(s).unwrap().start_millis()
}

fn publish(version: &str, effective: &str, narrows: bool) -> AdminRequest {
    AdminRequest::PolicyPublish {
        version: version.into(),
        effective: effective.into(),
        narrows_rights: narrows,
        text: format!("隐私政策 {version} 的全文"),
        en: None,
    }
}

async fn post(c: &Client, token: &str, path: &str, body: Value) -> tests::Reply {
    c.call("POST", path, Some(token), Some(&body)).await
}

/// `POST /api/v1/me/policy/accept` with `version` (any JSON, to test bad input too).
async fn accept(c: &Client, token: &str, version: Value) -> tests::Reply {
    post(
        c,
        token,
        "/api/v1/me/policy/accept",
        json!({ "version": version }),
    )
    .await
}

#[tokio::test]
async fn a_new_policy_version_is_announced_before_it_applies_and_acceptance_is_recorded() {
    let clock = Arc::new(ManualClock::new(Millis(day("2026-12-01").0 + 3_600_000)));
    let n = TestNode::start_manual("", clock.clone()).await;
    let c = n.client();
    let alice = c.user("alice", &phone(1)).await;
    let mut ws = c.ws(Some(&alice), None).await;

    let bad = n.try_admin(publish("v2", "2026-12-01", false)).await;
    assert!(
        bad.unwrap_err().to_string().contains("effective"),
        "a version must be announced before its day"
    );
    let r = n.admin(publish("v2", "2026-12-10", false)).await;
    assert_eq!(r["notified"], 1);
    // (The sign-in notice of alice's own login may come first.)
    let mut e = next_of(&mut ws, "notice").await;
    if e["kind"] == "security" {
        e = next_of(&mut ws, "notice").await;
    }
    assert_eq!(e["kind"], "policy");
    assert!(e["text"].as_str().unwrap().contains("2026-12-10"), "{e}");
    let notices = c.get("/api/v1/me/notices", Some(&alice)).await.json();
    let kinds: Vec<_> = notices["notices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["kind"].clone())
        .collect();
    assert_eq!(kinds, [json!("security"), json!("policy")], "{notices}");

    // Before its day the configured version stays current; both are listed.
    assert_eq!(
        c.get("/api/v1/policy", None).await.json()["version"],
        POLICY
    );
    let list = c.get("/api/v1/policy/versions", None).await.json();
    let statuses: Vec<_> = list["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["version"].clone(), v["status"].clone()))
        .collect();
    assert_eq!(
        statuses,
        [
            (json!(POLICY), json!("current")),
            (json!("v2"), json!("upcoming"))
        ]
    );
    let v2 = c.get("/api/v1/policy/versions/v2?lang=en", None).await;
    assert_eq!(v2.status, StatusCode::OK);
    assert_eq!(v2.json()["text"], "隐私政策 v2 的全文");
    assert_eq!(v2.json()["language"], "zh", "no English text was published");
    assert_eq!(
        c.get("/api/v1/policy/versions/v9", None).await.error_code(),
        "unknown_version"
    );

    let mine = c.get("/api/v1/me/policy", Some(&alice)).await.json();
    assert_eq!(mine["accepted"]["version"], POLICY);
    assert_eq!(mine["pending"][0]["version"], "v2");
    assert_eq!(mine["optional_processing_paused"], false);
    let r = accept(&c, &alice, json!("v9")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = accept(&c, &alice, json!(2)).await;
    assert_eq!(r.status.as_u16(), 400, "a version is a string");
    let r = accept(&c, &alice, json!("v2")).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let mine = c.get("/api/v1/me/policy", Some(&alice)).await.json();
    assert_eq!(mine["accepted"]["version"], "v2");
    assert_eq!(mine["pending"], json!([]));
    // Consent decisions now record the version accepted.
    c.consent(&alice, "photos", true).await;
    let consents = c.get("/api/v1/me/consents", Some(&alice)).await.json();
    let photos = consents["consents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["purpose"] == "photos")
        .unwrap()
        .clone();
    assert_eq!(photos["history"][0]["policy_version"], "v2");

    // A newcomer in the notice period is told too.
    let bob = c.user("bob", &phone(2)).await;
    let notices = c.get("/api/v1/me/notices", Some(&bob)).await.json();
    assert!(
        notices["notices"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["kind"] == "policy"),
        "{notices}"
    );

    // From its day, v2 is current: the old version is refused at registration and acceptance.
    clock.set(day("2026-12-10"));
    assert_eq!(c.get("/api/v1/policy", None).await.json()["version"], "v2");
    let r = accept(&c, &bob, json!(POLICY)).await;
    assert_eq!(r.error_code(), "outdated_version");
    let r = c
        .call(
            "POST",
            "/api/v1/accounts",
            None,
            Some(
                &json!({"phone": phone(3), "handle": "carol", "password": "password-carol",
                         "nickname": "C", "accept_policy": POLICY}),
            ),
        )
        .await;
    assert_eq!(r.error_code(), "policy_not_accepted");
}

#[tokio::test]
async fn a_version_narrowing_rights_pauses_optional_processing_until_accepted_and_basic_functions_keep_working()
 {
    let clock = Arc::new(ManualClock::new(Millis(day("2026-12-01").0 + 3_600_000)));
    let n = TestNode::start_manual("", clock.clone()).await;
    let c = n.client();
    let alice = c.user("alice", &phone(1)).await;
    let bob = c.user("bob", &phone(2)).await;
    for t in [&alice, &bob] {
        for p in ["microphone", "real_name", "cloud_sync"] {
            assert_eq!(c.consent(t, p, true).await.status, StatusCode::OK);
        }
    }
    let conv = c.direct(&alice, "bob@localhost").await;
    n.admin(publish("v2", "2026-12-05", true)).await;
    // Bob accepts during the notice period; alice does not.
    let r = accept(&c, &bob, json!("v2")).await;
    assert_eq!(r.status, StatusCode::OK);

    let voice = |token: String, txn: &'static str| {
        let c = c.clone();
        let conv = conv.clone();
        async move {
            let media = c
                .raw(
                    "POST",
                    "/api/v1/media",
                    Some(&token),
                    "audio/ogg",
                    // The start of an Ogg Vorbis file: the node sniffs the real type.
                    b"OggS\0\x02\0\0\0\0\0\0\0\0\x01\0\0\0\0\0\0\0\0\0\0\0\x01\x1e\x01vorbis"
                        .to_vec(),
                )
                .await
                .json()["media_id"]
                .as_str()
                .unwrap()
                .to_string();
            c.call(
                "POST",
                &format!("/api/v1/conversations/{conv}/messages"),
                Some(&token),
                Some(&json!({"txn_id": txn, "body": {"type": "voice", "media_id": media}})),
            )
            .await
        }
    };
    let real_name = json!({"name": "张三", "id_number": ID_NUMBER});
    // Before the date nothing is paused.
    assert_eq!(voice(alice.clone(), "v1").await.status, StatusCode::CREATED);
    assert_eq!(
        post(&c, &alice, "/api/v1/me/real-name", real_name.clone())
            .await
            .status,
        StatusCode::CREATED
    );

    clock.set(Millis(day("2026-12-05").0 + 1));
    let r = voice(alice.clone(), "v2").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.error_code(), "policy_acceptance_required");
    let r = post(&c, &alice, "/api/v1/me/real-name", real_name.clone()).await;
    assert_eq!(r.error_code(), "policy_acceptance_required");
    let mine = c.get("/api/v1/me/policy", Some(&alice)).await.json();
    assert_eq!(mine["optional_processing_paused"], true);
    assert_eq!(mine["paused_by"], "v2");
    // Necessary functions keep working: text messages, reading, signing in.
    c.say(&alice, &conv, "t1", "still here").await;
    assert_eq!(c.texts(&bob, &conv).await.last().unwrap(), "still here");
    let (new_device, _) = c.login("alice").await;
    // Cloud history is paused too: a new device is not given the old history (which is kept).
    assert_eq!(c.texts(&new_device, &conv).await, Vec::<String>::new());
    // The consent itself is not withdrawn, only paused; bob, who accepted, is not paused.
    let consents = c.get("/api/v1/me/consents", Some(&alice)).await.json();
    assert!(
        consents["consents"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["purpose"] == "microphone" && p["granted"] == true)
    );
    assert_eq!(voice(bob.clone(), "b1").await.status, StatusCode::CREATED);

    let r = accept(&c, &alice, json!("v2")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        c.texts(&new_device, &conv)
            .await
            .contains(&"still here".to_string()),
        "the kept history is synced again"
    );
    assert_eq!(voice(alice.clone(), "v3").await.status, StatusCode::CREATED);
    assert_eq!(
        post(&c, &alice, "/api/v1/me/real-name", real_name)
            .await
            .status,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn real_name_needs_its_purpose_is_validated_shown_masked_and_deleted_on_revocation() {
    let mut n = TestNode::start().await;
    let c = n.client();
    let t = c.user("alice", &phone(1)).await;
    let body = json!({"name": "王小明", "id_number": ID_NUMBER});
    let r = post(&c, &t, "/api/v1/me/real-name", body.clone()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.error_code(), "consent_required");
    c.consent(&t, "real_name", true).await;
    for (bad, field) in [
        (
            json!({"name": "王小明", "id_number": "11010519491231002"}),
            "id_number",
        ),
        (
            json!({"name": "王小明", "id_number": "110105194912310021"}),
            "id_number",
        ),
        (
            json!({"name": "王小明", "id_number": "110105194902300029"}),
            "id_number",
        ),
        (json!({"name": "", "id_number": ID_NUMBER}), "name"),
    ] {
        let r = post(&c, &t, "/api/v1/me/real-name", bad.clone()).await;
        assert_eq!(r.status.as_u16(), 422, "{bad}");
        let msg = r.json()["error"]["message"].as_str().unwrap().to_string();
        assert!(msg.starts_with(field), "{bad}: {msg}");
    }
    assert_eq!(
        c.get("/api/v1/me/real-name", Some(&t)).await.status,
        StatusCode::NOT_FOUND,
        "nothing stored by refused attempts"
    );
    let r = post(&c, &t, "/api/v1/me/real-name", body).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let shown = c.get("/api/v1/me/real-name", Some(&t)).await.json();
    assert_eq!(shown["id_number"], "1101**********002X");
    assert_eq!(shown["name"], "王**");

    // Stored encrypted: neither the number nor the name is in the database file.
    let raw = std::fs::read(n.db_path()).unwrap();
    for needle in [ID_NUMBER.as_bytes(), "王小明".as_bytes()] {
        assert!(!raw.windows(needle.len()).any(|w| w == needle));
    }

    // Revoking the purpose deletes it: granting again does not bring it back.
    c.consent(&t, "real_name", false).await;
    assert_eq!(
        c.get("/api/v1/me/real-name", Some(&t)).await.status,
        StatusCode::NOT_FOUND
    );
    c.consent(&t, "real_name", true).await;
    assert_eq!(
        c.get("/api/v1/me/real-name", Some(&t)).await.status,
        StatusCode::NOT_FOUND
    );
    // And the user can delete it directly.
    post(
        &c,
        &t,
        "/api/v1/me/real-name",
        json!({"name": "王小明", "id_number": ID_NUMBER}),
    )
    .await;
    let r = c
        .call("DELETE", "/api/v1/me/real-name", Some(&t), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = c
        .call("DELETE", "/api/v1/me/real-name", Some(&t), None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    n.stop().await;
}

#[tokio::test]
async fn public_page_needs_its_purpose_phone_and_password_and_disappears_on_revocation() {
    let n = TestNode::start().await;
    let c = n.client();
    let t = c.user("alice", &phone(1)).await;
    c.call(
        "PATCH",
        "/api/v1/me",
        Some(&t),
        Some(
            &json!({"bio": {"value": "public bio", "visibility": "public"},
                     "region": {"value": "secret town", "visibility": "private"}}),
        ),
    )
    .await;
    assert_eq!(
        c.get("/api/v1/pages/alice", None).await.status,
        StatusCode::NOT_FOUND
    );
    let on = json!({"enabled": true, "phone": phone(1), "password": "password-alice"});
    let put = |body: Value| {
        let c = c.clone();
        let t = t.clone();
        async move {
            c.call("PUT", "/api/v1/me/public-page", Some(&t), Some(&body))
                .await
        }
    };
    let r = put(on.clone()).await;
    assert_eq!(r.error_code(), "consent_required");
    c.consent(&t, "public_page", true).await;
    let r = put(json!({"enabled": true, "phone": phone(1), "password": "wrong-password"})).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = put(json!({"enabled": true, "phone": phone(9), "password": "password-alice"})).await;
    assert_eq!(r.error_code(), "phone_mismatch");
    let r = put(json!({"enabled": true})).await;
    assert_eq!(r.status.as_u16(), 422);
    assert_eq!(
        c.get("/api/v1/pages/alice", None).await.status,
        StatusCode::NOT_FOUND,
        "refused attempts enable nothing"
    );
    let r = put(on.clone()).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["enabled"], true);

    // Anyone, without logging in, sees nickname, avatar and public fields only.
    let page = c.get("/api/v1/pages/alice", None).await;
    assert_eq!(page.status, StatusCode::OK);
    let v = page.json();
    assert_eq!(v["address"], "alice@localhost");
    assert_eq!(v["fields"], json!({"bio": "public bio"}));
    assert!(!String::from_utf8_lossy(&page.body).contains(&phone(1)));

    c.consent(&t, "public_page", false).await;
    assert_eq!(
        c.get("/api/v1/pages/alice", None).await.status,
        StatusCode::NOT_FOUND
    );
    let status = c.get("/api/v1/me/public-page", Some(&t)).await.json();
    assert_eq!(status["enabled"], false, "deleted, not hidden");
    c.consent(&t, "public_page", true).await;
    assert_eq!(
        c.get("/api/v1/pages/alice", None).await.status,
        StatusCode::NOT_FOUND,
        "granting again does not bring the page back by itself"
    );
    let r = put(on).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = put(json!({"enabled": false})).await;
    assert_eq!(r.json()["enabled"], false);
    assert_eq!(
        c.get("/api/v1/pages/alice", None).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_minor_needs_a_guardian_consent_naming_each_purpose() {
    let clock = Arc::new(ManualClock::new(day("2026-12-01")));
    let n = TestNode::start_manual("", clock).await;
    let c = n.client();
    let kid = c.user("kid", &phone(1)).await;
    let adult = c.user("adult", &phone(2)).await;
    for (t, birthday) in [(&kid, "2011-06-01"), (&adult, "2008-12-01")] {
        let r = c
            .call(
                "PATCH",
                "/api/v1/me",
                Some(t),
                Some(&json!({"birthday": {"value": birthday}})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
    }
    let r = c.consent(&kid, "photos", true).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.error_code(), "guardian_consent_required");
    assert_eq!(
        c.consent(&adult, "photos", true).await.status,
        StatusCode::OK,
        "18 today is an adult"
    );
    let guardian = |purposes: Value| json!({"guardian_name": "Parent", "guardian_contact": "+8613900001111", "purposes": purposes});
    let r = post(
        &c,
        &adult,
        "/api/v1/me/guardian-consent",
        guardian(json!(["photos"])),
    )
    .await;
    assert_eq!(r.error_code(), "not_a_minor");
    for bad in [
        guardian(json!([])),
        guardian(json!(["flying"])),
        json!({"guardian_name": "", "guardian_contact": "x@y", "purposes": ["photos"]}),
    ] {
        let r = post(&c, &kid, "/api/v1/me/guardian-consent", bad.clone()).await;
        assert_eq!(r.status.as_u16(), 422, "{bad}");
    }
    assert_eq!(
        c.get("/api/v1/me/guardian-consent", Some(&kid))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let r = post(
        &c,
        &kid,
        "/api/v1/me/guardian-consent",
        guardian(json!(["photos"])),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let g = c
        .get("/api/v1/me/guardian-consent", Some(&kid))
        .await
        .json();
    assert_eq!(g["purposes"], json!(["photos"]));
    assert_eq!(g["guardian_name"], "Parent");
    assert_eq!(c.consent(&kid, "photos", true).await.status, StatusCode::OK);
    let r = c.consent(&kid, "camera", true).await;
    assert_eq!(r.error_code(), "guardian_consent_required");
    assert_eq!(
        c.consent(&kid, "photos", false).await.status,
        StatusCode::OK,
        "revoking never needs a guardian"
    );
}

#[tokio::test]
async fn the_age_of_consent_comes_from_the_configuration() {
    let clock = Arc::new(ManualClock::new(day("2026-12-01")));
    let n = TestNode::start_manual("[privacy]\nadult_age = 14\n", clock).await;
    let c = n.client();
    let t = c.user("teen", &phone(1)).await;
    c.call(
        "PATCH",
        "/api/v1/me",
        Some(&t),
        Some(&json!({"birthday": {"value": "2011-06-01"}})),
    )
    .await;
    assert_eq!(c.consent(&t, "photos", true).await.status, StatusCode::OK);
}

#[tokio::test]
async fn an_export_holds_everything_about_me_in_one_streamed_archive_and_is_rate_limited() {
    let n = TestNode::start().await;
    let c = n.client();
    let alice = c.user("alice", &phone(1)).await;
    let bob = c.user("bob", &phone(2)).await;
    let r = c.get("/api/v1/me/export", Some(&alice)).await;
    assert_eq!(r.error_code(), "no_export");
    c.call(
        "PATCH",
        "/api/v1/me",
        Some(&alice),
        Some(&json!({"bio": {"value": "my bio", "visibility": "private"}})),
    )
    .await;
    c.consent(&alice, "cloud_sync", true).await;
    c.consent(&alice, "real_name", true).await;
    post(
        &c,
        &alice,
        "/api/v1/me/real-name",
        json!({"name": "王小明", "id_number": ID_NUMBER}),
    )
    .await;
    post(
        &c,
        &alice,
        "/api/v1/me/requests",
        json!({"kind": "access", "text": "what do you hold?"}),
    )
    .await;
    let media = c
        .raw(
            "POST",
            "/api/v1/media",
            Some(&alice),
            "application/pdf",
            b"%PDF-mine".to_vec(),
        )
        .await
        .json()["media_id"]
        .as_str()
        .unwrap()
        .to_string();
    let conv = c.direct(&alice, "bob@localhost").await;
    // More than one page of history (the export reads 500 at a time).
    for i in 0..1_100 {
        let (who, t) = if i % 2 == 0 {
            ("a", &alice)
        } else {
            ("b", &bob)
        };
        c.say(t, &conv, &format!("{who}{i}"), &format!("message {i}"))
            .await;
    }

    let r = c
        .call("POST", "/api/v1/me/export", Some(&alice), None)
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(r.json()["status"], "ready");
    let r = c.get("/api/v1/me/export", Some(&alice)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.headers.get("content-length").is_none(),
        "streamed, not built first"
    );
    let a = r.json();
    assert_eq!(a["format"], "shanliao-export/1");
    assert_eq!(a["complete"], true);
    assert_eq!(a["account"]["address"], "alice@localhost");
    assert_eq!(a["account"]["phone"], phone(1));
    assert_eq!(a["profile"]["fields"]["bio"]["value"], "my bio");
    assert_eq!(a["real_name"]["id_number"], "1101**********002X");
    assert_eq!(a["requests"][0]["text"], "what do you hold?");
    assert_eq!(a["policy_acceptances"][0]["version"], POLICY);
    assert_eq!(a["sessions"].as_array().unwrap().len(), 1);
    let consents = a["consents"].as_array().unwrap();
    assert!(
        consents
            .iter()
            .any(|p| p["purpose"] == "cloud_sync" && p["granted"] == true)
    );
    assert_eq!(a["media"][0]["id"], media.as_str());
    assert_eq!(a["media"][0]["content_base64"], "JVBERi1taW5l");
    let msgs = a["conversations"][0]["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 1_100, "both parties' messages, every page");
    assert_eq!(msgs[0]["body"]["text"], "message 0");
    assert_eq!(msgs[1_099]["body"]["text"], "message 1099");
    assert!(
        a["audit"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "consent.grant:cloud_sync")
    );
    assert_eq!(a["disclosures"], json!([]), "nothing left this node");
    assert!(
        !r.body
            .windows(ID_NUMBER.len())
            .any(|w| w == ID_NUMBER.as_bytes())
    );

    // Downloadable again meanwhile; another request is refused until the interval passes.
    assert_eq!(
        c.get("/api/v1/me/export", Some(&alice)).await.status,
        StatusCode::OK
    );
    let r = c
        .call("POST", "/api/v1/me/export", Some(&alice), None)
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.error_code(), "export_too_soon");
    let wait: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((86_000..=86_400).contains(&wait), "{wait}");
    // Bob's own export is his, and the limit is per user.
    let r = c.call("POST", "/api/v1/me/export", Some(&bob), None).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let b = c.get("/api/v1/me/export", Some(&bob)).await.json();
    assert_eq!(b["account"]["phone"], phone(2));
    assert!(!b.to_string().contains(&phone(1)));
}

#[tokio::test]
async fn the_export_of_a_user_who_chatted_across_two_nodes_lists_the_peer_in_the_disclosure_log() {
    let nodes = federation(&[("a.test", "CN"), ("b.test", "CN")], "").await;
    let (a, b) = (nodes[0].client(), nodes[1].client());
    let alice = a.user("alice", &phone(1)).await;
    let bob = b.user("bob", &phone(2)).await;
    let dm = a.direct(&alice, "bob@b.test").await;
    a.say(&alice, &dm, "1", "hello over there").await;
    eventually(10, "bob has it", || async {
        (b.visible_texts(&bob, &dm).await == ["hello over there"]).then_some(())
    })
    .await;
    // The log counts a delivery once b.test's answer is recorded, a moment after Bob has it.
    eventually(10, "the delivery in the log", || async {
        let log = nodes[0].node().disclosures("alice").await.unwrap();
        log.iter()
            .any(|(p, k, o, _)| p == "b.test" && k == "message" && o == "delivered")
            .then_some(())
    })
    .await;
    a.call("POST", "/api/v1/me/export", Some(&alice), None)
        .await;
    let archive = a.get("/api/v1/me/export", Some(&alice)).await.json();
    let log = archive["disclosures"].as_array().unwrap();
    assert!(
        log.iter().any(|d| d["peer"] == "b.test"
            && d["kind"] == "message"
            && d["outcome"] == "delivered"
            && d["count"] == 1),
        "{log:?}"
    );
    assert_eq!(archive["conversations"][0]["members"][1], "bob@b.test");
}
