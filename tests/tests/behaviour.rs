//! The behaviour log (policy 1.4.1, 1.8.1), over HTTPS: joining, favouriting, opening and
//! sharing posts are kept only with `personalisation` (checked in the database file itself),
//! they rank the suggested communities (public ones I am not in: those I showed interest in,
//! and those their members are also in; never a private one), the export holds them, and
//! revoking the purpose deletes them at once.

use http::StatusCode;
use serde_json::{Value, json};
use tests::{Client, TestNode, phone};

fn body(r: &tests::Reply) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

async fn community(c: &Client, t: &str, name: &str, visibility: &str) -> String {
    let r = c
        .call(
            "POST",
            "/api/v1/communities",
            Some(t),
            Some(&json!({"name": name, "description": "", "visibility": visibility})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", body(&r));
    r.json()["id"].as_str().unwrap().to_string()
}

async fn call(c: &Client, t: &str, method: &str, path: &str) -> tests::Reply {
    let r = c.call(method, path, Some(t), None).await;
    assert!(r.status.is_success(), "{method} {path}: {}", body(&r));
    r
}

async fn post(c: &Client, t: &str, id: &str, text: &str) -> u64 {
    let r = c
        .call(
            "POST",
            &format!("/api/v1/communities/{id}/posts"),
            Some(t),
            Some(&json!({"text": text, "visibility": "public"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", body(&r));
    r.json()["id"].as_u64().unwrap()
}

/// The ids of the communities suggested to `t`, in order.
async fn suggested(c: &Client, t: &str) -> Vec<String> {
    let r = c.get("/api/v1/communities/suggested", Some(t)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", body(&r));
    r.json()["communities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect()
}

/// Views, opens the comments of, favourites and shares post `p` of community `id`.
async fn show_interest(c: &Client, t: &str, id: &str, p: u64) {
    let base = format!("/api/v1/communities/{id}/posts/{p}");
    call(c, t, "GET", &base).await;
    call(c, t, "GET", &format!("{base}/comments")).await;
    call(c, t, "PUT", &format!("{base}/favourite")).await;
    call(c, t, "POST", &format!("{base}/share")).await;
}

/// Stops the node, counts the behaviour rows in its database file, starts it again (on a new
/// port: take a new client).
async fn stored_rows(n: &mut TestNode) -> (u64, u64) {
    n.stop().await;
    let store = node::Store::open_existing(&n.db_path()).expect("database opens");
    let rows = store.behaviour_rows().await.unwrap();
    tokio::task::spawn_blocking(move || drop(store))
        .await
        .unwrap();
    n.start_again().await;
    rows
}

async fn export(c: &Client, t: &str) -> Value {
    let r = c.call("POST", "/api/v1/me/export", Some(t), None).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", body(&r));
    let r = c.get("/api/v1/me/export", Some(t)).await;
    assert_eq!(r.status, StatusCode::OK);
    let v = r.json();
    assert_eq!(v["complete"], true);
    v
}

#[tokio::test]
async fn suggested_communities_come_from_behaviour_kept_only_with_personalisation() {
    // Exports as often as the test asks.
    let mut n = TestNode::start_toml("[privacy]\nexport_interval_hours = 0\n").await;
    let mut c = n.client();
    let ann = c.user("ann", &phone(1)).await;
    let bob = c.user("bob", &phone(2)).await;
    let cat = c.user("cat", &phone(3)).await;
    let dan = c.user("dan", &phone(4)).await;
    let photo = community(&c, &bob, "摄影小组", "public").await;
    let hiking = community(&c, &bob, "徒步", "public").await;
    let cooking = community(&c, &bob, "烹饪", "public").await;
    let secret = community(&c, &bob, "私密小组", "private").await;
    let lonely = community(&c, &dan, "无人问津", "public").await;
    // cat is in the photo community and in hiking: hiking shares two members with it.
    call(
        &c,
        &cat,
        "POST",
        &format!("/api/v1/communities/{photo}/join"),
    )
    .await;
    call(
        &c,
        &cat,
        "POST",
        &format!("/api/v1/communities/{hiking}/join"),
    )
    .await;
    let p = post(&c, &bob, &photo, "南京市长江大桥的日落").await;

    // Without the purpose: the actions work, nothing is recorded, nothing is suggested.
    show_interest(&c, &ann, &photo, p).await;
    assert!(suggested(&c, &ann).await.is_empty());
    assert_eq!(
        stored_rows(&mut n).await,
        (0, 0),
        "no behaviour row in the file"
    );
    c = n.client();
    assert!(
        export(&c, &ann).await["behaviour"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    assert!(
        c.consent(&ann, "personalisation", true)
            .await
            .status
            .is_success()
    );
    call(
        &c,
        &ann,
        "DELETE",
        &format!("/api/v1/communities/{photo}/posts/{p}/favourite"),
    )
    .await;
    show_interest(&c, &ann, &photo, p).await;
    // The community of the post first (not joined), then those its members are in, the one
    // two members share ahead of the one only bob is in; the private one and one nobody
    // connects never.
    assert_eq!(
        suggested(&c, &ann).await,
        [photo.clone(), hiking.clone(), cooking.clone()]
    );
    assert!(!suggested(&c, &ann).await.contains(&secret));
    assert!(!suggested(&c, &ann).await.contains(&lonely));
    // Someone else's behaviour is not mine.
    assert!(suggested(&c, &cat).await.is_empty());

    // Once joined, it is no longer suggested; joining is a follow that counts for its
    // neighbours.
    call(
        &c,
        &ann,
        "POST",
        &format!("/api/v1/communities/{photo}/join"),
    )
    .await;
    assert_eq!(suggested(&c, &ann).await, [hiking.clone(), cooking.clone()]);

    let a = export(&c, &ann).await;
    let mut kinds: Vec<&str> = a["behaviour"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    kinds.sort_unstable();
    assert_eq!(
        kinds,
        ["favourite", "follow", "share", "view", "view"],
        "{}",
        a["behaviour"]
    );
    assert!(
        a["behaviour"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["community"] == photo.as_str())
    );
    assert_eq!(
        stored_rows(&mut n).await,
        (5, 5),
        "one row per event in each table"
    );
    c = n.client();

    // Revoking deletes every event at once: in the file too, and granting again brings none
    // back.
    assert!(
        c.consent(&ann, "personalisation", false)
            .await
            .status
            .is_success()
    );
    assert!(suggested(&c, &ann).await.is_empty());
    assert_eq!(stored_rows(&mut n).await, (0, 0));
    c = n.client();
    assert!(
        c.consent(&ann, "personalisation", true)
            .await
            .status
            .is_success()
    );
    assert!(suggested(&c, &ann).await.is_empty());
}

#[tokio::test]
async fn a_post_i_may_not_see_cannot_be_shared_and_bad_limits_are_refused() {
    let n = TestNode::start().await;
    let c = n.client();
    let ann = c.user("ann", &phone(1)).await;
    let bob = c.user("bob", &phone(2)).await;
    let secret = community(&c, &bob, "私密小组", "private").await;
    let p = post(&c, &bob, &secret, "只给成员").await;
    assert!(
        c.consent(&ann, "personalisation", true)
            .await
            .status
            .is_success()
    );
    let r = c
        .call(
            "POST",
            &format!("/api/v1/communities/{secret}/posts/{p}/share"),
            Some(&ann),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", body(&r));
    let r = c
        .call(
            "POST",
            &format!("/api/v1/communities/{secret}/posts/x/share"),
            Some(&ann),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(
        export(&c, &ann).await["behaviour"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    for q in ["limit=0", "limit=21", "limit=x", "other=1"] {
        let r = c
            .get(&format!("/api/v1/communities/suggested?{q}"), Some(&ann))
            .await;
        assert!(r.status.is_client_error(), "{q}: {}", r.status);
        assert!(r.json()["error"]["code"].is_string());
    }
    let r = c.get("/api/v1/communities/suggested", None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}
