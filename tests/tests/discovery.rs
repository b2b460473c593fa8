//! Finding people (issue 22): suggestions from contacts and shared public education with their
//! gates (1.3.b, 1.3.c, G2.b), revocation deleting what was derived (G2.e), nearby people by
//! coarse cell (1.3.d), QR invites to groups (1.3.e), and what erasure, export and the raw
//! database file hold of it.

use std::sync::Arc;

use h3o::{LatLng, Resolution};
use http::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tests::node::{AdminRequest, ManualClock, Millis};
use tests::setup::befriend;
use tests::{Client, TestNode, now_ms, phone};

/// The client's contact hash, as `docs/PROTOCOL.md`'s discovery section defines it.
fn contact_hash(e164: &str) -> String {
    Sha256::digest(format!("shanliao-contact/v1:{e164}").as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The H3 cell (resolution 7) of a place, as the client computes it.
fn cell(lat: f64, lng: f64) -> String {
    LatLng::new(lat, lng)
        .unwrap()
        .to_cell(Resolution::Seven)
        .to_string()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

async fn grant(c: &Client, token: &str, purposes: &[&str]) {
    for p in purposes {
        assert_eq!(
            c.consent(token, p, true).await.status,
            StatusCode::OK,
            "{p}"
        );
    }
}

async fn findable(c: &Client, token: &str, on: bool) {
    let r = c
        .call(
            "PUT",
            "/api/v1/me/discovery",
            Some(token),
            Some(&json!({"findable_by_phone": on})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["findable_by_phone"], on);
}

async fn upload(c: &Client, token: &str, numbers: &[String]) -> tests::Reply {
    let hashes: Vec<String> = numbers.iter().map(|n| contact_hash(n)).collect();
    c.call(
        "POST",
        "/api/v1/me/contacts",
        Some(token),
        Some(&json!({ "hashes": hashes })),
    )
    .await
}

/// (address, reason kinds) of the first page of suggestions.
async fn suggested(c: &Client, token: &str) -> Vec<(String, Vec<String>)> {
    let r = c.get("/api/v1/me/suggestions", Some(token)).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    r.json()["suggestions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["address"].as_str().unwrap().to_string(),
                s["reasons"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r["kind"].as_str().unwrap().to_string())
                    .collect(),
            )
        })
        .collect()
}

fn addresses(list: &[(String, Vec<String>)]) -> Vec<&str> {
    list.iter().map(|(a, _)| a.as_str()).collect()
}

#[tokio::test]
async fn a_contact_match_needs_the_uploaders_consent_the_matched_users_choices_and_goes_with_revocation()
 {
    let n = TestNode::start().await;
    let c = n.client();
    let alice = c.user("alice", &phone(1)).await;
    let bob = c.user("bob", &phone(2)).await;
    let carol = c.user("carol", &phone(3)).await;
    let dave = c.user("dave", &phone(4)).await;
    // bob: findable and willing to be recommended; carol: not findable; dave: not recommended.
    findable(&c, &bob, true).await;
    grant(&c, &bob, &["be_recommended"]).await;
    grant(&c, &carol, &["be_recommended"]).await;
    findable(&c, &dave, true).await;
    // Findable is off by default.
    assert_eq!(
        c.get("/api/v1/me/discovery", Some(&carol)).await.json()["findable_by_phone"],
        false
    );
    let contacts = [phone(2), phone(3), phone(4), phone(99)];

    let r = upload(&c, &alice, &contacts).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "no contacts_matching yet");
    assert_eq!(r.error_code(), "consent_required");
    grant(&c, &alice, &["contacts_matching"]).await;
    let r = upload(&c, &alice, &contacts).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["checked"], 4);
    assert_eq!(r.json()["matched"], 2, "bob and dave are findable");

    // Seeing suggestions needs recommend_me.
    let r = c.get("/api/v1/me/suggestions", Some(&alice)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    grant(&c, &alice, &["recommend_me"]).await;
    assert_eq!(
        suggested(&c, &alice).await,
        [("bob@localhost".to_string(), vec!["contact".to_string()])]
    );

    // bob's own choice decides, also after the match was made.
    findable(&c, &bob, false).await;
    assert!(suggested(&c, &alice).await.is_empty());
    findable(&c, &bob, true).await;
    assert_eq!(addresses(&suggested(&c, &alice).await), ["bob@localhost"]);
    assert_eq!(
        c.consent(&bob, "be_recommended", false).await.status,
        StatusCode::OK
    );
    assert!(suggested(&c, &alice).await.is_empty());
    grant(&c, &bob, &["be_recommended"]).await;

    // Revoking contacts_matching deletes the matches: granting again brings nothing back.
    assert_eq!(
        c.consent(&alice, "contacts_matching", false).await.status,
        StatusCode::OK
    );
    grant(&c, &alice, &["contacts_matching"]).await;
    assert!(suggested(&c, &alice).await.is_empty());
    // And "forget my contacts" does the same without touching the consent.
    assert_eq!(upload(&c, &alice, &contacts).await.status, StatusCode::OK);
    assert_eq!(addresses(&suggested(&c, &alice).await), ["bob@localhost"]);
    let r = c
        .call("DELETE", "/api/v1/me/contacts", Some(&alice), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(suggested(&c, &alice).await.is_empty());
}

#[tokio::test]
async fn malformed_or_too_many_hashes_are_refused() {
    let n = TestNode::start().await;
    let c = n.client();
    let alice = c.user("alice", &phone(1)).await;
    grant(&c, &alice, &["contacts_matching"]).await;
    for bad in [
        json!({"hashes": []}),
        json!({"hashes": ["+8613900000002"]}),
        json!({"hashes": [contact_hash(&phone(2)).to_uppercase()]}),
        json!({"hashes": vec![contact_hash(&phone(2)); 2001]}),
    ] {
        let r = c
            .call("POST", "/api/v1/me/contacts", Some(&alice), Some(&bad))
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(r.error_code(), "invalid_field");
    }
}

#[tokio::test]
async fn the_daily_quota_of_contact_numbers_holds_across_a_restart_and_resets_the_next_day() {
    let clock = Arc::new(ManualClock::new(Millis(now_ms())));
    let mut n = TestNode::start_manual("", clock.clone()).await;
    let c = n.client();
    let alice = c.user("alice", &phone(1)).await;
    grant(&c, &alice, &["contacts_matching"]).await;
    let batch = |from: u32| (from..from + 2000).map(phone).collect::<Vec<_>>();
    assert_eq!(
        upload(&c, &alice, &batch(1000)).await.status,
        StatusCode::OK
    );
    let r = upload(&c, &alice, &batch(3000)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["quota_left"], 1000);
    n.restart().await;
    let c = n.client();
    let r = upload(&c, &alice, &batch(5000)).await;
    assert_eq!(
        r.status,
        StatusCode::TOO_MANY_REQUESTS,
        "the count was kept"
    );
    assert_eq!(r.error_code(), "rate_limited");
    clock.advance_ms(24 * 3_600_000);
    assert_eq!(
        upload(&c, &alice, &batch(5000)).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn only_a_public_education_is_a_source_and_making_it_private_removes_it_at_once() {
    let n = TestNode::start().await;
    let c = n.client();
    let alice = c.user("alice", &phone(1)).await;
    let erin = c.user("erin", &phone(2)).await;
    let finn = c.user("finn", &phone(3)).await;
    grant(&c, &alice, &["recommend_me"]).await;
    grant(&c, &erin, &["be_recommended"]).await;
    grant(&c, &finn, &["be_recommended"]).await;
    let edu = |v: &str, vis: &str| json!({"education": {"value": v, "visibility": vis}});
    for (t, body) in [
        (&alice, edu("Tsinghua University", "public")),
        (&erin, edu("tsinghua  university", "public")),
        (&finn, edu("Tsinghua University", "friends")),
    ] {
        let r = c.call("PATCH", "/api/v1/me", Some(t), Some(&body)).await;
        assert_eq!(
            r.status,
            StatusCode::OK,
            "{}",
            String::from_utf8_lossy(&r.body)
        );
    }
    assert_eq!(
        suggested(&c, &alice).await,
        [("erin@localhost".to_string(), vec!["education".to_string()])],
        "finn's education is not public"
    );
    let r = c
        .call(
            "PATCH",
            "/api/v1/me",
            Some(&erin),
            Some(&json!({"education": {"visibility": "private"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(suggested(&c, &alice).await.is_empty());
}

#[tokio::test]
async fn a_dismissed_suggestion_stays_dismissed_and_suggestions_are_paged() {
    let n = TestNode::start().await;
    let c = n.client();
    let alice = c.user("alice", &phone(1)).await;
    grant(&c, &alice, &["recommend_me"]).await;
    let edu = json!({"education": {"value": "No. 4 High School", "visibility": "public"}});
    c.call("PATCH", "/api/v1/me", Some(&alice), Some(&edu))
        .await;
    for i in 0..5 {
        let t = c.user(&format!("pupil{i}"), &phone(10 + i)).await;
        grant(&c, &t, &["be_recommended"]).await;
        c.call("PATCH", "/api/v1/me", Some(&t), Some(&edu)).await;
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..5 {
        let path = match &cursor {
            Some(c) => format!("/api/v1/me/suggestions?limit=2&cursor={c}"),
            None => "/api/v1/me/suggestions?limit=2".to_string(),
        };
        let r = c.get(&path, Some(&alice)).await;
        assert_eq!(r.status, StatusCode::OK);
        let page = r.json();
        assert!(page["suggestions"].as_array().unwrap().len() <= 2);
        for s in page["suggestions"].as_array().unwrap() {
            seen.push(s["address"].as_str().unwrap().to_string());
        }
        match page["next"].as_str() {
            Some(n) => cursor = Some(n.to_string()),
            None => break,
        }
    }
    seen.sort();
    assert_eq!(seen.len(), 5);
    seen.dedup();
    assert_eq!(seen.len(), 5, "no one twice across pages");

    let r = c
        .call(
            "POST",
            "/api/v1/me/suggestions/dismissed",
            Some(&alice),
            Some(&json!({"address": "pupil0@localhost"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let now = suggested(&c, &alice).await;
    assert_eq!(now.len(), 4);
    assert!(!addresses(&now).contains(&"pupil0@localhost"));
    let r = c.get("/api/v1/me/suggestions?limit=51", Some(&alice)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn no_phone_number_of_an_uploaded_contact_is_in_the_raw_database_file() {
    let mut n = TestNode::start().await;
    let c = n.client();
    let alice = c.user("alice", &phone(1)).await;
    let bob = c.user("bob", &phone(2)).await;
    findable(&c, &bob, true).await;
    grant(&c, &alice, &["contacts_matching"]).await;
    let strangers = ["+8613712345671", "+8613712345672", "+8613712345673"];
    let mut numbers: Vec<String> = strangers.iter().map(|s| s.to_string()).collect();
    numbers.push(phone(2));
    let r = upload(&c, &alice, &numbers).await;
    assert_eq!(r.json()["matched"], 1);
    n.stop().await;
    let raw = std::fs::read(n.db_path()).unwrap();
    assert!(contains(&raw, b"userid_matched_expiry"), "the search works");
    for number in &numbers {
        let hash = contact_hash(number);
        let hash_bytes: Vec<u8> = (0..32)
            .map(|i| u8::from_str_radix(&hash[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        for needle in [
            number.as_bytes(),
            &number.as_bytes()[1..],
            &number.as_bytes()[3..],
            hash.as_bytes(),
            &hash_bytes,
        ] {
            assert!(!contains(&raw, needle), "{number} in node.redb");
        }
    }
}

async fn share(c: &Client, token: &str, cell: &str) -> tests::Reply {
    c.call(
        "PUT",
        "/api/v1/me/location",
        Some(token),
        Some(&json!({ "cell": cell })),
    )
    .await
}

/// (address, band) of the people near `token`.
async fn near(c: &Client, token: &str) -> Vec<(String, String)> {
    let r = c.get("/api/v1/nearby", Some(token)).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let mut v: Vec<(String, String)> = r.json()["people"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["address"].as_str().unwrap().to_string(),
                p["band"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn nearby_people_are_shown_by_band_only_while_visible_and_for_an_hour() {
    let clock = Arc::new(ManualClock::new(Millis(now_ms())));
    let n = TestNode::start_manual("", clock.clone()).await;
    let c = n.client();
    let alice = c.user("alice", &phone(1)).await;
    let bob = c.user("bob", &phone(2)).await;
    let carol = c.user("carol", &phone(3)).await;
    let here = LatLng::new(39.9042, 116.4074)
        .unwrap()
        .to_cell(Resolution::Seven);
    let ring1 = here.grid_ring_fast(1).next().unwrap().unwrap().to_string();
    let ring2 = here.grid_ring_fast(2).next().unwrap().unwrap().to_string();
    let far = cell(31.2304, 121.4737);

    let r = share(&c, &alice, &here.to_string()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "needs precise_location");
    assert_eq!(r.error_code(), "consent_required");
    for t in [&alice, &bob, &carol] {
        grant(&c, t, &["precise_location"]).await;
    }
    // Only a cell: coordinates and finer cells are refused.
    for bad in ["39.9042,116.4074", &cell(39.9042, 116.4074)[..14]] {
        assert_eq!(
            share(&c, &alice, bad).await.status,
            StatusCode::UNPROCESSABLE_ENTITY
        );
    }
    let fine = LatLng::new(39.9042, 116.4074)
        .unwrap()
        .to_cell(Resolution::Ten)
        .to_string();
    assert_eq!(
        share(&c, &alice, &fine).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );

    // Not visible myself: I see no one.
    assert_eq!(share(&c, &bob, &ring1).await.status, StatusCode::OK);
    let r = c.get("/api/v1/nearby", Some(&alice)).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.error_code(), "no_location");

    let r = share(&c, &alice, &here.to_string()).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(share(&c, &carol, &ring2).await.status, StatusCode::OK);
    assert_eq!(
        near(&c, &alice).await,
        [
            ("bob@localhost".to_string(), "about_3km".to_string()),
            ("carol@localhost".to_string(), "about_5km".to_string()),
        ]
    );
    let r = c.get("/api/v1/nearby", Some(&alice)).await;
    assert!(
        !String::from_utf8_lossy(&r.body).contains(&ring1),
        "nobody's cell is shown"
    );
    // A jump across the country within minutes is refused.
    clock.advance_ms(10 * 60_000);
    let r = share(&c, &carol, &far).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.error_code(), "implausible_jump");

    // Clearing is at once; an hour after it was shared a cell is gone.
    let r = c
        .call("DELETE", "/api/v1/me/location", Some(&carol), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        near(&c, &alice).await,
        [("bob@localhost".to_string(), "about_3km".to_string())]
    );
    assert_eq!(
        share(&c, &alice, &here.to_string()).await.status,
        StatusCode::OK
    );
    clock.advance_ms(51 * 60_000);
    assert!(near(&c, &alice).await.is_empty(), "bob's cell expired");
    let r = c.get("/api/v1/me/location", Some(&bob)).await;
    assert_eq!(r.json()["cell"], Value::Null);
}

#[tokio::test]
async fn revoking_precise_location_deletes_the_cell_at_once() {
    let n = TestNode::start().await;
    let c = n.client();
    let alice = c.user("alice", &phone(1)).await;
    let bob = c.user("bob", &phone(2)).await;
    let here = cell(39.9042, 116.4074);
    for t in [&alice, &bob] {
        grant(&c, t, &["precise_location"]).await;
        assert_eq!(share(&c, t, &here).await.status, StatusCode::OK);
    }
    assert_eq!(
        near(&c, &alice).await,
        [("bob@localhost".to_string(), "same_area".to_string())]
    );
    assert_eq!(
        c.get("/api/v1/me/location", Some(&bob)).await.json()["cell"],
        here.as_str()
    );
    assert_eq!(
        c.consent(&bob, "precise_location", false).await.status,
        StatusCode::OK
    );
    assert!(near(&c, &alice).await.is_empty());
    grant(&c, &bob, &["precise_location"]).await;
    assert_eq!(
        c.get("/api/v1/me/location", Some(&bob)).await.json()["cell"],
        Value::Null,
        "granting again brings nothing back"
    );
}

#[tokio::test]
async fn nearby_lookups_are_rate_limited() {
    let n = TestNode::start().await;
    let c = n.client();
    let alice = c.user("alice", &phone(1)).await;
    grant(&c, &alice, &["precise_location"]).await;
    share(&c, &alice, &cell(39.9042, 116.4074)).await;
    for _ in 0..20 {
        assert_eq!(
            c.get("/api/v1/nearby", Some(&alice)).await.status,
            StatusCode::OK
        );
    }
    let r = c.get("/api/v1/nearby", Some(&alice)).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers.contains_key("retry-after"));
}

async fn group(c: &Client, token: &str, members: &[&str]) -> String {
    let r = c
        .call(
            "POST",
            "/api/v1/conversations",
            Some(token),
            Some(&json!({"kind": "group", "name": "Hiking", "members": members, "public": false})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    r.json()["id"].as_str().unwrap().to_string()
}

async fn invite(c: &Client, token: &str, body: Value) -> tests::Reply {
    c.call("POST", "/api/v1/invites", Some(token), Some(&body))
        .await
}

async fn redeem(c: &Client, token: &str, link: &str) -> tests::Reply {
    c.call(
        "POST",
        "/api/v1/invites/redeem",
        Some(token),
        Some(&json!({ "link": link })),
    )
    .await
}

async fn members(c: &Client, token: &str, conv: &str) -> Vec<String> {
    let r = c
        .get(&format!("/api/v1/conversations/{conv}"), Some(token))
        .await;
    let mut m: Vec<String> = r.json()["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["user"].as_str().unwrap_or_default().to_string())
        .collect();
    m.sort();
    m
}

#[tokio::test]
async fn a_group_invite_leaves_a_join_request_for_the_owner_unless_they_chose_auto_join() {
    let n = TestNode::start().await;
    let c = n.client();
    let alice = c.user("alice", &phone(1)).await;
    let bob = c.user("bob", &phone(2)).await;
    let carol = c.user("carol", &phone(3)).await;
    let conv = group(&c, &alice, &["carol@localhost"]).await;

    let r = invite(&c, &carol, json!({"kind": "group", "conversation": conv})).await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "members do not make invites"
    );
    let r = invite(
        &c,
        &alice,
        json!({"kind": "group", "conversation": conv, "max_uses": 0}),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = invite(&c, &alice, json!({"kind": "group", "conversation": conv})).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let inv = r.json();
    let link = inv["link"].as_str().unwrap().to_string();
    assert!(link.starts_with("https://localhost/#/invite/"), "{link}");
    assert!(inv["qr_svg"].as_str().unwrap().contains("<svg"));

    let r = redeem(&c, &bob, &link).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["result"], "requested");
    assert_eq!(
        redeem(&c, &bob, &link).await.status,
        StatusCode::GONE,
        "once"
    );
    assert!(
        !members(&c, &alice, &conv)
            .await
            .contains(&"bob@localhost".to_string())
    );
    let r = c.get("/api/v1/me/join-requests", Some(&alice)).await;
    let reqs = r.json()["join_requests"].as_array().unwrap().clone();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0]["requester"], "bob@localhost");
    let id = reqs[0]["id"].as_str().unwrap();
    let r = c
        .call(
            "POST",
            &format!("/api/v1/me/join-requests/{id}"),
            Some(&alice),
            Some(&json!({"accept": true})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(
        members(&c, &alice, &conv)
            .await
            .contains(&"bob@localhost".to_string())
    );
    assert!(
        c.get("/api/v1/me/join-requests", Some(&alice)).await.json()["join_requests"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // Auto-join: redeeming adds at once.
    let dave = c.user("dave", &phone(4)).await;
    let r = invite(
        &c,
        &alice,
        json!({"kind": "group", "conversation": conv, "auto_join": true}),
    )
    .await;
    let token = r.json()["link"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let r = redeem(&c, &dave, &token).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["result"], "joined");
    assert!(
        members(&c, &alice, &conv)
            .await
            .contains(&"dave@localhost".to_string())
    );
}

#[tokio::test]
async fn an_invite_ends_with_its_uses_its_expiry_or_its_revocation() {
    let clock = Arc::new(ManualClock::new(Millis(now_ms())));
    let n = TestNode::start_manual("", clock.clone()).await;
    let c = n.client();
    let alice = c.user("alice", &phone(1)).await;
    let users: Vec<String> = {
        let mut v = Vec::new();
        for i in 0..4 {
            v.push(c.user(&format!("user{i}"), &phone(10 + i)).await);
        }
        v
    };
    let conv = group(&c, &alice, &[]).await;
    let once = invite(
        &c,
        &alice,
        json!({"kind": "group", "conversation": conv, "max_uses": 1, "auto_join": true}),
    )
    .await
    .json();
    let link = once["link"].as_str().unwrap();
    assert_eq!(
        redeem(&c, &alice, link).await.status,
        StatusCode::GONE,
        "own invite"
    );
    assert_eq!(redeem(&c, &users[0], link).await.status, StatusCode::OK);
    let r = redeem(&c, &users[1], link).await;
    assert_eq!(r.status, StatusCode::GONE);
    assert_eq!(r.error_code(), "invite_unusable");

    let day = invite(
        &c,
        &alice,
        json!({"kind": "group", "conversation": conv, "expires_in_hours": 1, "auto_join": true}),
    )
    .await
    .json();
    let revoked = invite(
        &c,
        &alice,
        json!({"kind": "group", "conversation": conv, "auto_join": true}),
    )
    .await
    .json();
    let id = revoked["id"].as_str().unwrap();
    let r = c
        .call(
            "DELETE",
            &format!("/api/v1/invites/{id}"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        redeem(&c, &users[1], revoked["link"].as_str().unwrap())
            .await
            .status,
        StatusCode::GONE
    );
    clock.advance_ms(3_600_001);
    assert_eq!(
        redeem(&c, &users[2], day["link"].as_str().unwrap())
            .await
            .status,
        StatusCode::GONE
    );
    let listed = c.get("/api/v1/invites", Some(&alice)).await.json();
    assert_eq!(listed["invites"].as_array().unwrap().len(), 3);

    // A link of a node that is no peer of this one goes nowhere; anything not a link is
    // refused here.
    let r = redeem(
        &c,
        &users[3],
        "https://other.example/#/invite/AAAAAAAAAAAAAAAAAAAAAA",
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.json());
    assert_eq!(r.error_code(), "not_a_peer");
    for bad in ["https://localhost/#/invite/short", "not a link"] {
        assert_eq!(
            redeem(&c, &users[3], bad).await.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{bad}"
        );
    }
    assert_eq!(
        redeem(
            &c,
            &users[3],
            "https://localhost/#/invite/AAAAAAAAAAAAAAAAAAAAAA"
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn erasure_removes_the_user_from_every_suggestion_source_and_nearby_cell() {
    let n = TestNode::start().await;
    let c = n.client();
    let alice = c.user("alice", &phone(1)).await;
    let bob = c.user("bob", &phone(2)).await;
    findable(&c, &bob, true).await;
    grant(&c, &bob, &["be_recommended", "precise_location"]).await;
    grant(
        &c,
        &alice,
        &["contacts_matching", "recommend_me", "precise_location"],
    )
    .await;
    let edu = json!({"education": {"value": "Fudan University", "visibility": "public"}});
    for t in [&alice, &bob] {
        c.call("PATCH", "/api/v1/me", Some(t), Some(&edu)).await;
        share(&c, t, &cell(31.2304, 121.4737)).await;
    }
    upload(&c, &alice, &[phone(2)]).await;
    assert_eq!(
        suggested(&c, &alice).await,
        [(
            "bob@localhost".to_string(),
            vec!["contact".to_string(), "education".to_string()]
        )]
    );
    assert_eq!(near(&c, &alice).await.len(), 1);

    n.admin(AdminRequest::UsersErase {
        address: "bob@localhost".into(),
        reason: "test".into(),
    })
    .await;
    assert!(suggested(&c, &alice).await.is_empty());
    assert!(near(&c, &alice).await.is_empty());
    // The match naming him is gone from alice's rows too (her export counts her matches).
    c.call("POST", "/api/v1/me/export", Some(&alice), None)
        .await;
    let archive = c.get("/api/v1/me/export", Some(&alice)).await.json();
    assert_eq!(archive["discovery"]["contact_matches"], 0);
    // A new account with bob's number is not matched by alice's old upload.
    let bob2 = c.user("robert", &phone(2)).await;
    findable(&c, &bob2, true).await;
    grant(&c, &bob2, &["be_recommended"]).await;
    assert!(suggested(&c, &alice).await.is_empty());
}

#[tokio::test]
async fn the_export_holds_my_discovery_data_and_no_uploaded_number() {
    let n = TestNode::start().await;
    let c = n.client();
    let alice = c.user("alice", &phone(1)).await;
    let bob = c.user("bob", &phone(2)).await;
    findable(&c, &bob, true).await;
    grant(&c, &alice, &["contacts_matching", "precise_location"]).await;
    findable(&c, &alice, true).await;
    upload(&c, &alice, &[phone(2), "+8613712345679".to_string()]).await;
    share(&c, &alice, &cell(39.9042, 116.4074)).await;
    let conv = group(&c, &alice, &[]).await;
    invite(&c, &alice, json!({"kind": "group", "conversation": conv})).await;

    let r = c
        .call("POST", "/api/v1/me/export", Some(&alice), None)
        .await;
    assert_eq!(
        r.status,
        StatusCode::ACCEPTED,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let r = c.get("/api/v1/me/export", Some(&alice)).await;
    assert_eq!(r.status, StatusCode::OK);
    let text = String::from_utf8_lossy(&r.body).to_string();
    let archive: Value = serde_json::from_str(&text).unwrap();
    let d = &archive["discovery"];
    assert_eq!(d["findable_by_phone"], true);
    assert_eq!(d["contact_matches"], 1);
    assert_eq!(d["location"]["cell"], cell(39.9042, 116.4074).as_str());
    assert_eq!(d["invites"].as_array().unwrap().len(), 1);
    for never in [
        "+8613712345679",
        "13712345679",
        &contact_hash("+8613712345679"),
        &phone(2),
        "bob@localhost",
    ] {
        assert!(!text.contains(never), "{never} in the export");
    }
}

#[tokio::test]
async fn friends_of_friends_come_with_a_count_only_and_friends_or_blocked_users_never_come() {
    let n = TestNode::start().await;
    let c = n.client();
    let alice = c.user("alice", &phone(1)).await;
    let bob = c.user("bob", &phone(2)).await;
    let carol = c.user("carol", &phone(3)).await;
    let dave = c.user("dave", &phone(4)).await;
    let erin = c.user("erin", &phone(5)).await;
    grant(&c, &alice, &["recommend_me"]).await;
    for t in [&bob, &carol, &dave, &erin] {
        grant(&c, t, &["be_recommended"]).await;
    }
    // alice — bob, alice — carol; dave is a friend of both; erin of bob only.
    befriend(&c, &alice, &bob, "bob@localhost").await;
    befriend(&c, &alice, &carol, "carol@localhost").await;
    befriend(&c, &dave, &bob, "bob@localhost").await;
    befriend(&c, &dave, &carol, "carol@localhost").await;
    befriend(&c, &erin, &bob, "bob@localhost").await;
    let r = c.get("/api/v1/me/suggestions", Some(&alice)).await;
    let list = r.json()["suggestions"].as_array().unwrap().clone();
    let got: Vec<(String, Value)> = list
        .iter()
        .map(|s| {
            (
                s["address"].as_str().unwrap().to_string(),
                s["reasons"].clone(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "dave@localhost".to_string(),
                json!([{"kind": "mutual_friends", "count": 2}])
            ),
            (
                "erin@localhost".to_string(),
                json!([{"kind": "mutual_friends", "count": 1}])
            ),
        ],
        "friends themselves are never suggested, and no mutual friend is named"
    );
    // erin blocks alice: never suggested to her; alice blocks dave: the same.
    let r = c
        .call(
            "POST",
            "/api/v1/blocks",
            Some(&erin),
            Some(&json!({"user": "alice@localhost"})),
        )
        .await;
    assert!(r.status.is_success());
    let r = c
        .call(
            "POST",
            "/api/v1/blocks",
            Some(&alice),
            Some(&json!({"user": "dave@localhost"})),
        )
        .await;
    assert!(r.status.is_success());
    assert!(suggested(&c, &alice).await.is_empty());
}

#[tokio::test]
async fn a_friend_invite_sends_a_friend_request_the_owner_still_answers() {
    let n = TestNode::start().await;
    let c = n.client();
    let alice = c.user("alice", &phone(1)).await;
    let bob = c.user("bob", &phone(2)).await;
    let r = invite(&c, &alice, json!({"kind": "friend", "auto_join": true})).await;
    assert_eq!(
        r.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a friend request is always answered"
    );
    let r = invite(&c, &alice, json!({"kind": "friend"})).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let link = r.json()["link"].as_str().unwrap().to_string();
    assert!(link.ends_with("/alice"), "{link}");
    let r = redeem(&c, &bob, &link).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json());
    assert_eq!(
        r.json(),
        json!({"result": "friend_requested", "address": "alice@localhost"})
    );
    let reqs = c.get("/api/v1/friends/requests", Some(&alice)).await.json();
    let reqs = reqs["requests"].as_array().unwrap();
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    assert!(
        c.get("/api/v1/friends", Some(&alice)).await.json()["friends"]
            .as_array()
            .unwrap()
            .is_empty(),
        "not friends until alice accepts"
    );
    // A second redemption meets the pending request and gives its use back.
    let r = redeem(&c, &bob, &link).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let listed = c.get("/api/v1/invites", Some(&alice)).await.json();
    assert_eq!(listed["invites"][0]["uses"], 1);
    // Another node's friend invite goes to handle@domain through the friends domain, which
    // sends requests only to partner nodes: other.example is none of this node's peers.
    let r = redeem(
        &c,
        &bob,
        "https://other.example/#/invite/AAAAAAAAAAAAAAAAAAAAAA/zoe",
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.error_code(), "not_a_peer");
}

/// (action, id, conversation, user) of every join event on `token`'s stream so far.
async fn join_events(c: &Client, token: &str) -> Vec<(String, String, String, String)> {
    let r = c.get("/api/v1/sync?since=0&timeout=0", Some(token)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json());
    r.json()["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["type"] == "join")
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap_or_default().to_string();
            (s("action"), s("id"), s("conversation"), s("user"))
        })
        .collect()
}

#[tokio::test]
async fn a_join_request_and_its_answer_are_events_for_the_owner_and_the_requester() {
    let n = TestNode::start().await;
    let c = n.client();
    let alice = c.user("alice", &phone(1)).await;
    let bob = c.user("bob", &phone(2)).await;
    let carol = c.user("carol", &phone(3)).await;
    let conv = group(&c, &alice, &[]).await;
    let r = invite(&c, &alice, json!({"kind": "group", "conversation": conv})).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let link = r.json()["link"].as_str().unwrap().to_string();

    // Alice's open stream is told at once of bob's request.
    let mut ws = c.ws(Some(&alice), None).await;
    let r = redeem(&c, &bob, &link).await;
    assert_eq!(r.json()["result"], "requested");
    let e = tests::next_of(&mut ws, "join").await;
    assert_eq!(
        (&e["action"], &e["conversation"], &e["user"]),
        (&json!("requested"), &json!(conv), &json!("bob@localhost")),
        "{e}"
    );
    let listed = c.get("/api/v1/me/join-requests", Some(&alice)).await.json();
    let bob_id = listed["join_requests"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        e["id"], bob_id,
        "the event names the request as the list does"
    );
    let r = redeem(&c, &carol, &link).await;
    assert_eq!(r.json()["result"], "requested");
    let e = tests::next_of(&mut ws, "join").await;
    assert_eq!(e["user"], "carol@localhost");
    let carol_id = e["id"].as_str().unwrap().to_string();

    // Accepting bob and declining carol: each answer on both streams.
    for (id, accept) in [(&bob_id, true), (&carol_id, false)] {
        let r = c
            .call(
                "POST",
                &format!("/api/v1/me/join-requests/{id}"),
                Some(&alice),
                Some(&json!({ "accept": accept })),
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
    }
    let e = tests::next_of(&mut ws, "join").await;
    assert_eq!(
        (&e["action"], &e["id"]),
        (&json!("accepted"), &json!(bob_id))
    );
    let e = tests::next_of(&mut ws, "join").await;
    assert_eq!(
        (&e["action"], &e["id"]),
        (&json!("declined"), &json!(carol_id))
    );
    let s =
        |a: &str, id: &str, u: &str| (a.to_string(), id.to_string(), conv.clone(), u.to_string());
    assert_eq!(
        join_events(&c, &alice).await,
        [
            s("requested", &bob_id, "bob@localhost"),
            s("requested", &carol_id, "carol@localhost"),
            s("accepted", &bob_id, "bob@localhost"),
            s("declined", &carol_id, "carol@localhost"),
        ]
    );
    assert_eq!(
        join_events(&c, &bob).await,
        [
            s("requested", &bob_id, "alice@localhost"),
            s("accepted", &bob_id, "alice@localhost"),
        ]
    );
    assert_eq!(
        join_events(&c, &carol).await,
        [
            s("requested", &carol_id, "alice@localhost"),
            s("declined", &carol_id, "alice@localhost"),
        ]
    );
}
