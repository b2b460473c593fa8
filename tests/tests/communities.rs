//! Communities (小组, 1.3.3.a–c): public and private communities, joining by invitation or
//! approval, roles and moderation with the community's own log, posts with media under the same
//! purposes and metadata stripping as messages, a place only with `precise_location`, comments
//! one level deep with quotes by reference, favourites, feeds paged by cursor, events, erasure
//! of an author's posts and comments everywhere, retention and the export.

use std::io::Cursor;
use std::sync::Arc;

use http::StatusCode;
use img_parts::jpeg::Jpeg;
use img_parts::{Bytes, ImageEXIF};
use node::{AdminRequest, ManualClock, Millis};
use serde_json::{Value, json};
use tests::setup::{
    self, befriend, join_community as join, moderate_community as moderate, post_text as post,
};
use tests::{Client, TestNode, next_event, next_of, now_ms, phone};

fn body(r: &tests::Reply) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

/// Creates a community; returns its id.
async fn community(c: &Client, t: &str, name: &str, visibility: &str) -> String {
    let v = setup::create_community(c, t, name, "about it", visibility).await;
    assert_eq!(v["role"], "owner");
    v["id"].as_str().unwrap().to_string()
}

/// Posts `post` (a JSON body); returns the reply.
async fn post_raw(c: &Client, t: &str, id: &str, post: Value) -> tests::Reply {
    setup::community_post(c, t, id, &post).await
}

async fn comment(c: &Client, t: &str, id: &str, p: u64, v: Value) -> tests::Reply {
    c.call(
        "POST",
        &format!("/api/v1/communities/{id}/posts/{p}/comments"),
        Some(t),
        Some(&v),
    )
    .await
}

/// The texts of a community's posts as `t` sees them, newest first (None: 404).
async fn texts(c: &Client, t: &str, id: &str) -> Option<Vec<String>> {
    let r = c
        .get(&format!("/api/v1/communities/{id}/posts"), Some(t))
        .await;
    if r.status == StatusCode::NOT_FOUND {
        return None;
    }
    assert_eq!(r.status, StatusCode::OK, "{}", body(&r));
    Some(
        r.json()["posts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["text"].as_str().unwrap().to_string())
            .collect(),
    )
}

async fn comment_texts(c: &Client, t: &str, id: &str, p: u64) -> Vec<(String, Value)> {
    let r = c
        .get(
            &format!("/api/v1/communities/{id}/posts/{p}/comments"),
            Some(t),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", body(&r));
    r.json()["comments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["text"].as_str().unwrap().to_string(), c["quote"].clone()))
        .collect()
}

fn contains(h: &[u8], n: &str) -> bool {
    h.windows(n.len()).any(|w| w == n.as_bytes())
}

/// A TIFF/EXIF block whose GPS IFD says 30°N 120°E.
fn gps_exif() -> Vec<u8> {
    let mut t: Vec<u8> = b"II*\0".to_vec();
    t.extend_from_slice(&8u32.to_le_bytes());
    let entry = |t: &mut Vec<u8>, tag: u16, kind: u16, count: u32, value: [u8; 4]| {
        t.extend_from_slice(&tag.to_le_bytes());
        t.extend_from_slice(&kind.to_le_bytes());
        t.extend_from_slice(&count.to_le_bytes());
        t.extend_from_slice(&value);
    };
    let gps: u32 = 8 + 2 + 12 + 4;
    t.extend_from_slice(&1u16.to_le_bytes());
    entry(&mut t, 0x8825, 4, 1, gps.to_le_bytes());
    t.extend_from_slice(&0u32.to_le_bytes());
    let data = gps + 2 + 4 * 12 + 4;
    t.extend_from_slice(&4u16.to_le_bytes());
    entry(&mut t, 0x0001, 2, 2, *b"N\0\0\0");
    entry(&mut t, 0x0002, 5, 3, data.to_le_bytes());
    entry(&mut t, 0x0003, 2, 2, *b"E\0\0\0");
    entry(&mut t, 0x0004, 5, 3, (data + 24).to_le_bytes());
    t.extend_from_slice(&0u32.to_le_bytes());
    for deg in [30u32, 120] {
        for (num, den) in [(deg, 1u32), (0, 1), (0, 1)] {
            t.extend_from_slice(&num.to_le_bytes());
            t.extend_from_slice(&den.to_le_bytes());
        }
    }
    t
}

/// A real 8x8 JPEG carrying GPS in EXIF.
fn jpeg_with_gps() -> Vec<u8> {
    let pixels: Vec<u8> = (0..8 * 8 * 3).map(|i| (i * 7 % 251) as u8).collect();
    let mut plain = Vec::new();
    jpeg_encoder::Encoder::new(&mut plain, 90)
        .encode(&pixels, 8, 8, jpeg_encoder::ColorType::Rgb)
        .unwrap();
    let mut jpeg = Jpeg::from_bytes(Bytes::from(plain)).unwrap();
    jpeg.set_exif(Some(Bytes::from(gps_exif())));
    jpeg.encoder().bytes().to_vec()
}

fn has_gps(bytes: &[u8]) -> bool {
    match exif::Reader::new().read_from_container(&mut Cursor::new(bytes)) {
        Ok(e) => e
            .fields()
            .any(|f| matches!(f.tag, exif::Tag::GPSLatitude | exif::Tag::GPSLongitude)),
        Err(_) => false,
    }
}

async fn upload(c: &Client, t: &str, ct: &str, data: Vec<u8>) -> String {
    let r = c.raw("POST", "/api/v1/media", Some(t), ct, data).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", body(&r));
    r.json()["media_id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_public_community_is_found_and_read_by_anyone_and_joined_at_once() {
    let n = TestNode::start().await;
    let c = n.client();
    let ann = c.user("ann", &phone(1)).await;
    let bob = c.user("bob", &phone(2)).await;
    let id = community(&c, &ann, "摄影爱好者", "public").await;
    post(&c, &ann, &id, "for everyone", "public").await;
    post(&c, &ann, &id, "for members", "members").await;

    // Found by a substring of its name, case-insensitively for Latin text.
    let r = c
        .get("/api/v1/communities?q=%E6%91%84%E5%BD%B1", Some(&bob))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", body(&r));
    let found = r.json()["communities"].as_array().unwrap().clone();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["id"], id.as_str());
    assert_eq!(found[0]["role"], Value::Null);
    assert_eq!(found[0]["owner"], "ann@localhost");
    let r = c.get("/api/v1/communities?q=ABOUT", Some(&bob)).await;
    assert_eq!(r.json()["communities"].as_array().unwrap().len(), 1);
    let r = c
        .get("/api/v1/communities?q=nothing-like-it", Some(&bob))
        .await;
    assert!(r.json()["communities"].as_array().unwrap().is_empty());

    // Read before joining: public posts only.
    assert_eq!(texts(&c, &bob, &id).await.unwrap(), ["for everyone"]);
    let r = comment(&c, &bob, &id, 1, json!({"text": "hi"})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "comment before joining");
    let r = join(&c, &bob, &id).await;
    assert_eq!(r.status, StatusCode::OK, "{}", body(&r));
    assert_eq!(r.json()["status"], "member");
    assert_eq!(
        texts(&c, &bob, &id).await.unwrap(),
        ["for members", "for everyone"]
    );
    let r = c.get("/api/v1/communities/mine", Some(&bob)).await;
    assert_eq!(r.json()["communities"][0]["role"], "member");
    assert_eq!(r.json()["communities"][0]["members"], 2);
    let r = c
        .call(
            "POST",
            &format!("/api/v1/communities/{id}/leave"),
            Some(&bob),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(texts(&c, &bob, &id).await.unwrap(), ["for everyone"]);
    let r = c
        .call(
            "POST",
            &format!("/api/v1/communities/{id}/leave"),
            Some(&ann),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "the owner stays");
}

#[tokio::test]
async fn a_private_community_is_invisible_to_outsiders_and_joined_by_invitation_or_approval() {
    let n = TestNode::start().await;
    let c = n.client();
    let ann = c.user("ann", &phone(1)).await;
    let bob = c.user("bob", &phone(2)).await;
    let cat = c.user("cat", &phone(3)).await;
    let id = community(&c, &ann, "secret circle", "private").await;
    post(&c, &ann, &id, "members only", "public").await;

    let r = c.get("/api/v1/communities?q=secret", Some(&bob)).await;
    assert!(r.json()["communities"].as_array().unwrap().is_empty());
    for path in [
        format!("/api/v1/communities/{id}"),
        format!("/api/v1/communities/{id}/posts"),
        format!("/api/v1/communities/{id}/posts/1"),
        format!("/api/v1/communities/{id}/members"),
        format!("/api/v1/communities/{id}/log"),
    ] {
        let r = c.get(&path, Some(&bob)).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
    }
    // The same answer as a community that does not exist.
    let r = c
        .get("/api/v1/communities/00000000000000ff", Some(&bob))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // Told the id, bob asks; the owner approves.
    let r = join(&c, &bob, &id).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", body(&r));
    assert_eq!(r.json()["status"], "asked");
    let r = c
        .get(&format!("/api/v1/communities/{id}"), Some(&bob))
        .await;
    assert_eq!(r.json()["pending"], "asked");
    assert_eq!(texts(&c, &bob, &id).await, None, "not yet a member");
    let r = c
        .get(&format!("/api/v1/communities/{id}/members"), Some(&ann))
        .await;
    let rows = r.json()["members"].as_array().unwrap().clone();
    assert!(
        rows.iter()
            .any(|m| m["address"] == "bob@localhost" && m["status"] == "asked")
    );
    let r = moderate(&c, &ann, &id, "bob@localhost", "admit").await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", body(&r));
    assert_eq!(texts(&c, &bob, &id).await.unwrap(), ["members only"]);

    // A member who does not moderate cannot invite; the owner invites cat, who accepts.
    let r = moderate(&c, &bob, &id, "cat@localhost", "admit").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        moderate(&c, &ann, &id, "cat@localhost", "admit")
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    let r = c
        .get(&format!("/api/v1/communities/{id}"), Some(&cat))
        .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "an invitation shows the community"
    );
    assert_eq!(r.json()["pending"], "invited");
    assert_eq!(texts(&c, &cat, &id).await, None, "not before accepting");
    assert_eq!(join(&c, &cat, &id).await.status, StatusCode::OK);
    assert_eq!(texts(&c, &cat, &id).await.unwrap(), ["members only"]);
}

#[tokio::test]
async fn moderators_remove_posts_and_comments_and_ban_members_and_the_log_keeps_each_action() {
    let n = TestNode::start().await;
    let c = n.client();
    let ann = c.user("ann", &phone(1)).await;
    let bob = c.user("bob", &phone(2)).await;
    let cat = c.user("cat", &phone(3)).await;
    let id = community(&c, &ann, "garden", "public").await;
    join(&c, &bob, &id).await;
    join(&c, &cat, &id).await;
    let r = moderate(&c, &bob, &id, "cat@localhost", "ban").await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "bob is not a moderator yet"
    );
    assert_eq!(
        moderate(&c, &ann, &id, "bob@localhost", "moderator")
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    let r = moderate(&c, &bob, &id, "ann@localhost", "ban").await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "a moderator cannot ban the owner"
    );
    let r = moderate(&c, &bob, &id, "cat@localhost", "moderator").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "only the owner appoints");

    let p = post(&c, &cat, &id, "spam spam", "members").await;
    let keep = post(&c, &ann, &id, "a good post", "members").await;
    let r = comment(&c, &cat, &id, keep, json!({"text": "rude words"})).await;
    let rude = r.json()["id"].as_u64().unwrap();
    // A member cannot remove someone else's post.
    let r = c
        .call(
            "DELETE",
            &format!("/api/v1/communities/{id}/posts/{keep}"),
            Some(&cat),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = c
        .call(
            "DELETE",
            &format!("/api/v1/communities/{id}/posts/{p}"),
            Some(&bob),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", body(&r));
    let r = c
        .call(
            "DELETE",
            &format!("/api/v1/communities/{id}/posts/{keep}/comments/{rude}"),
            Some(&bob),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(comment_texts(&c, &ann, &id, keep).await.is_empty());
    assert_eq!(
        moderate(&c, &bob, &id, "cat@localhost", "ban").await.status,
        StatusCode::NO_CONTENT
    );

    // Banned: cannot read, post, comment or come back.
    assert_eq!(texts(&c, &cat, &id).await, None);
    let r = post_raw(&c, &cat, &id, json!({"text": "again"})).await;
    assert_eq!(r.error_code(), "banned");
    assert_eq!(join(&c, &cat, &id).await.error_code(), "banned");
    assert_eq!(texts(&c, &ann, &id).await.unwrap(), ["a good post"]);

    // The log, newest first, for moderators only; no text of what was removed.
    let r = c
        .get(&format!("/api/v1/communities/{id}/log"), Some(&bob))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", body(&r));
    let log = r.json()["entries"].as_array().unwrap().clone();
    let actions: Vec<&str> = log.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(
        actions,
        ["ban", "remove_comment", "remove_post", "set_role"]
    );
    assert_eq!(log[0]["actor"], "bob@localhost");
    assert_eq!(log[0]["target"], "cat@localhost");
    assert_eq!(log[1]["comment"], rude);
    assert_eq!(log[2]["post"], p);
    assert_eq!(log[3]["role"], "moderator");
    assert!(!contains(&r.body, "spam") && !contains(&r.body, "rude"));
    let r = c
        .get(&format!("/api/v1/communities/{id}/log?limit=2"), Some(&ann))
        .await;
    assert_eq!(r.json()["entries"].as_array().unwrap().len(), 2);
    let next = r.json()["next"].as_u64().unwrap();
    let r = c
        .get(
            &format!("/api/v1/communities/{id}/log?before={next}"),
            Some(&ann),
        )
        .await;
    assert_eq!(r.json()["entries"][0]["action"], "remove_post");
    assert_eq!(
        moderate(&c, &ann, &id, "bob@localhost", "member")
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    let r = c
        .get(&format!("/api/v1/communities/{id}/log"), Some(&bob))
        .await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "members do not read the log"
    );
    let r = moderate(&c, &bob, &id, "cat@localhost", "unban").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "nor lift bans");
    // Unbanned, cat may join again.
    assert_eq!(
        moderate(&c, &ann, &id, "cat@localhost", "unban")
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(join(&c, &cat, &id).await.status, StatusCode::OK);
}

#[tokio::test]
async fn post_media_needs_the_purpose_of_its_type_loses_its_metadata_and_is_shown_to_readers_only()
{
    let n = TestNode::start().await;
    let c = n.client();
    let ann = c.user("ann", &phone(1)).await;
    let bob = c.user("bob", &phone(2)).await;
    let out = c.user("out", &phone(3)).await;
    let id = community(&c, &ann, "photos", "private").await;
    moderate(&c, &ann, &id, "bob@localhost", "admit").await;
    join(&c, &bob, &id).await;
    let photo = jpeg_with_gps();
    assert!(has_gps(&photo), "the test file really carries GPS");
    let m = upload(&c, &ann, "image/jpeg", photo).await;

    let with_photo = json!({"text": "sunset", "media": [{"type": "image", "media_id": m}]});
    let r = post_raw(&c, &ann, &id, with_photo.clone()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.error_code(), "consent_required");
    assert!(body(&r).contains("photos"));
    c.consent(&ann, "photos", true).await;
    let r = post_raw(
        &c,
        &ann,
        &id,
        json!({"media": [{"type": "voice", "media_id": m}]}),
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a photo is no voice"
    );
    let r = post_raw(&c, &bob, &id, with_photo.clone()).await;
    assert_eq!(
        r.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "not bob's upload"
    );
    let r = post_raw(&c, &ann, &id, with_photo).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", body(&r));
    assert_eq!(r.json()["media"][0]["media_id"], m.as_str());
    let p = r.json()["id"].as_u64().unwrap();

    // A member downloads it without its GPS; someone outside the community cannot.
    let r = c.get(&format!("/api/v1/media/{m}"), Some(&bob)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(!has_gps(&r.body));
    let r = c.get(&format!("/api/v1/media/{m}"), Some(&out)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // The same through the post that shows it.
    let at = format!("/api/v1/communities/{id}/posts/{p}/media/{m}");
    let r = c.get(&at, Some(&bob)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", body(&r));
    assert_eq!(r.headers["content-type"], "image/jpeg");
    assert!(!has_gps(&r.body));
    let r = c.get(&at, Some(&out)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_post_has_a_place_only_with_precise_location_and_revoking_it_removes_the_place() {
    let n = TestNode::start().await;
    let c = n.client();
    let ann = c.user("ann", &phone(1)).await;
    let id = community(&c, &ann, "walks", "public").await;
    let r = post_raw(&c, &ann, &id, json!({"text": "a walk", "place": "玄武区"})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.error_code(), "consent_required");
    assert!(body(&r).contains("precise_location"));
    let p = post(&c, &ann, &id, "no place", "public").await;
    let r = c
        .get(&format!("/api/v1/communities/{id}/posts/{p}"), Some(&ann))
        .await;
    assert_eq!(r.json()["place"], Value::Null, "none unless chosen");

    c.consent(&ann, "precise_location", true).await;
    let r = post_raw(&c, &ann, &id, json!({"text": "a walk", "place": "玄武区"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", body(&r));
    let q = r.json()["id"].as_u64().unwrap();
    assert_eq!(r.json()["place"], "玄武区");
    let raw = std::fs::read(n.db_path()).unwrap();
    assert!(!contains(&raw, "玄武区"), "the place is sealed at rest");

    c.consent(&ann, "precise_location", false).await;
    let r = c
        .get(&format!("/api/v1/communities/{id}/posts/{q}"), Some(&ann))
        .await;
    assert_eq!(r.json()["place"], Value::Null, "gone with the revocation");
    assert_eq!(r.json()["text"], "a walk");
}

#[tokio::test]
async fn authors_edit_and_delete_their_own_posts_and_comments_and_nobody_else_does() {
    let n = TestNode::start().await;
    let c = n.client();
    let ann = c.user("ann", &phone(1)).await;
    let bob = c.user("bob", &phone(2)).await;
    let id = community(&c, &ann, "club", "public").await;
    join(&c, &bob, &id).await;
    let p = post(&c, &ann, &id, "first", "members").await;
    let path = format!("/api/v1/communities/{id}/posts/{p}");
    let r = c
        .call(
            "PATCH",
            &path,
            Some(&bob),
            Some(&json!({"text": "taken over"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = c
        .call(
            "PATCH",
            &path,
            Some(&ann),
            Some(&json!({"text": "first, edited", "visibility": "public"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", body(&r));
    assert_eq!(r.json()["text"], "first, edited");
    assert_eq!(r.json()["visibility"], "public");
    assert!(r.json()["edited"].is_string());

    let r = comment(&c, &bob, &id, p, json!({"text": "nice"})).await;
    let cm = r.json()["id"].as_u64().unwrap();
    let cpath = format!("{path}/comments/{cm}");
    let r = c
        .call(
            "PATCH",
            &cpath,
            Some(&ann),
            Some(&json!({"text": "mine now"})),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "the owner moderates, not edits"
    );
    let r = c
        .call(
            "PATCH",
            &cpath,
            Some(&bob),
            Some(&json!({"text": "very nice"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", body(&r));
    assert_eq!(r.json()["text"], "very nice");
    let r = c.call("DELETE", &cpath, Some(&bob), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = c.call("DELETE", &path, Some(&ann), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(c.get(&path, Some(&ann)).await.status, StatusCode::NOT_FOUND);
    // The author's own deletion is not a moderation action.
    let r = c
        .get(&format!("/api/v1/communities/{id}/log"), Some(&ann))
        .await;
    assert!(r.json()["entries"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn comments_thread_one_level_and_quotes_show_the_original_only_while_it_exists() {
    let n = TestNode::start().await;
    let c = n.client();
    let ann = c.user("ann", &phone(1)).await;
    let bob = c.user("bob", &phone(2)).await;
    let id = community(&c, &ann, "talk", "public").await;
    join(&c, &bob, &id).await;
    let p = post(&c, &ann, &id, "topic", "members").await;
    let top = comment(&c, &ann, &id, p, json!({"text": "top"}))
        .await
        .json()["id"]
        .as_u64()
        .unwrap();
    let r = comment(&c, &bob, &id, p, json!({"text": "reply", "parent": top})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", body(&r));
    assert_eq!(r.json()["parent"], top);
    let reply = r.json()["id"].as_u64().unwrap();
    let r = comment(&c, &bob, &id, p, json!({"text": "deeper", "parent": reply})).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "one level only");
    let r = comment(&c, &bob, &id, p, json!({"text": "quoting", "quote": top})).await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.json()["quote"]["text"], "top");
    assert_eq!(r.json()["quote"]["author"], "ann@localhost");

    // Deleting the top comment takes its reply; the quote no longer shows its text.
    let r = c
        .call(
            "DELETE",
            &format!("/api/v1/communities/{id}/posts/{p}/comments/{top}"),
            Some(&ann),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let left = comment_texts(&c, &ann, &id, p).await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].0, "quoting");
    assert_eq!(left[0].1["comment"], top);
    assert_eq!(left[0].1["text"], Value::Null);
    assert_eq!(left[0].1["author"], Value::Null);
}

#[tokio::test]
async fn favourites_are_a_private_list_of_posts_i_may_still_see() {
    let n = TestNode::start().await;
    let c = n.client();
    let ann = c.user("ann", &phone(1)).await;
    let bob = c.user("bob", &phone(2)).await;
    let id = community(&c, &ann, "books", "public").await;
    let p = post(&c, &ann, &id, "read this", "public").await;
    let q = post(&c, &ann, &id, "members read this", "members").await;
    let fav = |p: u64| format!("/api/v1/communities/{id}/posts/{p}/favourite");
    assert_eq!(
        c.call("PUT", &fav(p), Some(&bob), None).await.status,
        StatusCode::NO_CONTENT
    );
    let r = c.call("PUT", &fav(q), Some(&bob), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "not a post bob may see");
    let r = c.get("/api/v1/communities/favourites", Some(&bob)).await;
    assert_eq!(r.json()["posts"][0]["text"], "read this");
    assert_eq!(r.json()["posts"][0]["favourite"], true);
    let r = c.get("/api/v1/communities/favourites", Some(&ann)).await;
    assert!(
        r.json()["posts"].as_array().unwrap().is_empty(),
        "bob's list is his own"
    );
    let r = c
        .get(&format!("/api/v1/communities/{id}/posts/{p}"), Some(&ann))
        .await;
    assert_eq!(r.json()["favourite"], false);
    // A post that stops being visible to him leaves his list.
    c.call(
        "PATCH",
        &format!("/api/v1/communities/{id}/posts/{p}"),
        Some(&ann),
        Some(&json!({"visibility": "members"})),
    )
    .await;
    let r = c.get("/api/v1/communities/favourites", Some(&bob)).await;
    assert!(r.json()["posts"].as_array().unwrap().is_empty());
    assert_eq!(
        c.call("DELETE", &fav(p), Some(&bob), None).await.status,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn feeds_page_by_cursor_per_community_and_across_mine() {
    let n = TestNode::start().await;
    let c = n.client();
    let ann = c.user("ann", &phone(1)).await;
    let bob = c.user("bob", &phone(2)).await;
    let a = community(&c, &ann, "alpha", "public").await;
    let b = community(&c, &bob, "beta", "private").await;
    let other = community(&c, &bob, "gamma", "public").await;
    moderate(&c, &bob, &b, "ann@localhost", "admit").await;
    join(&c, &ann, &b).await;
    post(&c, &ann, &a, "a1", "members").await;
    post(&c, &bob, &b, "b1", "members").await;
    post(&c, &ann, &a, "a2", "members").await;
    post(&c, &bob, &other, "not mine", "public").await;
    post(&c, &bob, &b, "b2", "members").await;

    let r = c.get("/api/v1/communities/feed?limit=2", Some(&ann)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", body(&r));
    let page: Vec<String> = r.json()["posts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(page, ["b2", "a2"]);
    let next = r.json()["next"].as_u64().unwrap();
    let r = c
        .get(
            &format!("/api/v1/communities/feed?limit=2&before={next}"),
            Some(&ann),
        )
        .await;
    let texts2: Vec<String> = r.json()["posts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(texts2, ["b1", "a1"]);
    let next = r.json()["next"].as_u64().unwrap();
    let r = c
        .get(
            &format!("/api/v1/communities/feed?limit=2&before={next}"),
            Some(&ann),
        )
        .await;
    assert!(r.json()["posts"].as_array().unwrap().is_empty());
    assert_eq!(r.json()["next"], Value::Null);
    // Per community.
    let r = c
        .get(
            &format!("/api/v1/communities/{a}/posts?limit=1"),
            Some(&ann),
        )
        .await;
    assert_eq!(r.json()["posts"][0]["text"], "a2");
    let r = c.get("/api/v1/communities/feed?limit=0", Some(&ann)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    // A cursor is one the node gave (422 otherwise); a name it does not take is 400.
    let r = c.get("/api/v1/communities/feed?cursor=1", Some(&ann)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = c.get("/api/v1/communities/feed?page=1", Some(&ann)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn new_posts_and_comments_arrive_as_events_for_members_who_may_see_them() {
    let n = TestNode::start().await;
    let c = n.client();
    let ann = c.user("ann", &phone(1)).await;
    let bob = c.user("bob", &phone(2)).await;
    let id = community(&c, &ann, "events", "public").await;
    join(&c, &bob, &id).await;
    let mut ws = c.ws(Some(&bob), None).await;
    let p = post(&c, &ann, &id, "news", "members").await;
    let e = next_of(&mut ws, "community").await;
    assert_eq!(e["community"], id.as_str());
    assert_eq!(e["post"], p);
    assert_eq!(e["comment"], Value::Null);
    let r = comment(&c, &ann, &id, p, json!({"text": "more"})).await;
    let cm = r.json()["id"].as_u64().unwrap();
    let e = next_of(&mut ws, "community").await;
    assert_eq!(
        (e["post"].as_u64(), e["comment"].as_u64()),
        (Some(p), Some(cm))
    );
    assert!(
        !contains(e.to_string().as_bytes(), "more"),
        "numbers only, no text"
    );
    // A friends-only post is no event for someone who may not see it: the next event is the
    // members' post after it.
    post(&c, &ann, &id, "friends only", "friends").await;
    let after = post(&c, &ann, &id, "for members", "members").await;
    let e = next_event(&mut ws).await;
    assert_eq!(
        (&e["type"], e["post"].as_u64()),
        (&json!("community"), Some(after))
    );
}

/// `a` asks `b` (at `b_addr`) to be friends and `b` accepts.
#[tokio::test]
async fn friends_only_posts_are_seen_by_the_authors_friends_and_nobody_else() {
    let n = TestNode::start().await;
    let c = n.client();
    let ann = c.user("ann", &phone(1)).await;
    let bob = c.user("bob", &phone(2)).await;
    let fay = c.user("fay", &phone(3)).await;
    let out = c.user("out", &phone(4)).await;
    let id = community(&c, &ann, "close", "public").await;
    join(&c, &bob, &id).await;
    join(&c, &fay, &id).await;
    moderate(&c, &ann, &id, "bob@localhost", "moderator").await;
    befriend(&c, &ann, &fay, "fay@localhost").await;
    befriend(&c, &ann, &out, "out@localhost").await;
    let mut ws = c.ws(Some(&fay), None).await;
    let p = post(&c, &ann, &id, "for friends", "friends").await;
    assert_eq!(
        next_of(&mut ws, "community").await["post"],
        p,
        "her friend hears of it"
    );
    assert_eq!(texts(&c, &ann, &id).await.unwrap(), ["for friends"]);
    assert_eq!(texts(&c, &fay, &id).await.unwrap(), ["for friends"]);
    // A friend outside a public community reads it too; a moderator who is no friend does not.
    assert_eq!(texts(&c, &out, &id).await.unwrap(), ["for friends"]);
    assert!(texts(&c, &bob, &id).await.unwrap().is_empty());
    let r = c
        .get(&format!("/api/v1/communities/{id}/posts/{p}"), Some(&bob))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = comment(&c, &fay, &id, p, json!({"text": "seen"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", body(&r));
    let r = comment(&c, &bob, &id, p, json!({"text": "hm"})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn erasure_removes_the_authors_posts_and_comments_everywhere_and_quotes_lose_their_text() {
    let n = TestNode::start().await;
    let c = n.client();
    let dora = c.user("dora", &phone(1)).await;
    let ed = c.user("eddy", &phone(2)).await;
    let hers = community(&c, &dora, "dora's place", "public").await;
    let his = community(&c, &ed, "ed's place", "public").await;
    join(&c, &ed, &hers).await;
    join(&c, &dora, &his).await;
    let dp = post(&c, &dora, &his, "DoraPostMarker", "members").await;
    let ep = post(&c, &ed, &his, "ed's post", "members").await;
    let r = comment(&c, &dora, &his, ep, json!({"text": "DoraCommentMarker"})).await;
    let dc = r.json()["id"].as_u64().unwrap();
    let r = comment(&c, &ed, &his, ep, json!({"text": "ed quotes", "quote": dc})).await;
    assert_eq!(r.json()["quote"]["text"], "DoraCommentMarker");
    c.call(
        "PUT",
        &format!("/api/v1/communities/{his}/posts/{dp}/favourite"),
        Some(&ed),
        None,
    )
    .await;
    let raw = std::fs::read(n.db_path()).unwrap();
    assert!(!contains(&raw, "DoraPostMarker") && !contains(&raw, "DoraCommentMarker"));

    n.admin(AdminRequest::UsersErase {
        address: "dora@localhost".into(),
        reason: "test".into(),
    })
    .await;
    assert_eq!(texts(&c, &ed, &his).await.unwrap(), ["ed's post"]);
    // Her rows are gone, not only unreadable: ed's post counts his comment alone.
    let r = c
        .get(&format!("/api/v1/communities/{his}/posts/{ep}"), Some(&ed))
        .await;
    assert_eq!(r.json()["comments"], 1, "{}", body(&r));
    let r = c
        .get(&format!("/api/v1/communities/{his}/posts/{dp}"), Some(&ed))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let left = comment_texts(&c, &ed, &his, ep).await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].0, "ed quotes");
    assert_eq!(
        left[0].1["text"],
        Value::Null,
        "her words do not survive as a quote"
    );
    let r = c.get("/api/v1/communities/favourites", Some(&ed)).await;
    assert!(r.json()["posts"].as_array().unwrap().is_empty());
    // Her community passes to its remaining member.
    let r = c
        .get(&format!("/api/v1/communities/{hers}"), Some(&ed))
        .await;
    assert_eq!(r.json()["role"], "owner");
    assert_eq!(r.json()["owner"], "eddy@localhost");
}

#[tokio::test]
async fn retention_removes_posts_and_comments_past_their_days_per_category() {
    let clock = Arc::new(ManualClock::new(Millis(now_ms())));
    let n = TestNode::start_manual(
        "[retention]\ncommunity_posts_max_days = 10\ncommunity_comments_max_days = 3\n",
        clock.clone(),
    )
    .await;
    let c = n.client();
    let ann = c.user("ann", &phone(1)).await;
    let id = community(&c, &ann, "old", "public").await;
    let old = post(&c, &ann, &id, "old post", "public").await;
    comment(&c, &ann, &id, old, json!({"text": "old comment"})).await;
    clock.advance_ms(5 * 24 * 3600 * 1000);
    let fresh = post(&c, &ann, &id, "fresh post", "public").await;
    comment(&c, &ann, &id, old, json!({"text": "newer comment"})).await;

    let dry = n.admin(AdminRequest::RetentionRun { dry_run: true }).await;
    assert_eq!(dry["removed"]["community_comments"], 1, "{dry}");
    assert_eq!(dry["removed"]["community_posts"], 0, "{dry}");
    assert_eq!(
        comment_texts(&c, &ann, &id, old).await.len(),
        2,
        "a dry run changes nothing"
    );
    let found = |q: &'static str| {
        let (c, ann) = (c.clone(), ann.clone());
        async move {
            let r = c
                .call(
                    "POST",
                    "/api/v1/search",
                    Some(&ann),
                    Some(&json!({"query": q, "scopes": ["comments"]})),
                )
                .await;
            assert_eq!(r.status, StatusCode::OK, "{}", body(&r));
            r.json()["comments"]["items"].as_array().unwrap().len()
        }
    };
    assert_eq!(found("old comment").await, 1, "indexed");
    let run = n.admin(AdminRequest::RetentionRun { dry_run: false }).await;
    assert_eq!(run["removed"]["community_comments"], 1, "{run}");
    // Out of the search index with it, not at the index's next periodic check.
    assert_eq!(found("old comment").await, 0);
    assert_eq!(found("newer comment").await, 1);
    let left: Vec<String> = comment_texts(&c, &ann, &id, old)
        .await
        .into_iter()
        .map(|x| x.0)
        .collect();
    assert_eq!(left, ["newer comment"]);

    clock.advance_ms(6 * 24 * 3600 * 1000);
    let run = n.admin(AdminRequest::RetentionRun { dry_run: false }).await;
    assert_eq!(run["removed"]["community_posts"], 1, "{run}");
    assert_eq!(texts(&c, &ann, &id).await.unwrap(), ["fresh post"]);
    let _ = fresh;
}

#[tokio::test]
async fn the_export_holds_my_posts_comments_favourites_and_memberships() {
    let n = TestNode::start().await;
    let c = n.client();
    let ann = c.user("ann", &phone(1)).await;
    let bob = c.user("bob", &phone(2)).await;
    let id = community(&c, &ann, "mine", "public").await;
    join(&c, &bob, &id).await;
    let p = post(&c, &ann, &id, "my post", "members").await;
    let q = post(&c, &bob, &id, "his post", "members").await;
    comment(&c, &ann, &id, q, json!({"text": "my comment"})).await;
    c.call(
        "PUT",
        &format!("/api/v1/communities/{id}/posts/{q}/favourite"),
        Some(&ann),
        None,
    )
    .await;
    assert_eq!(
        c.call("POST", "/api/v1/me/export", Some(&ann), None)
            .await
            .status,
        StatusCode::ACCEPTED
    );
    let r = c.get("/api/v1/me/export", Some(&ann)).await;
    let v = r.json();
    assert_eq!(v["complete"], true);
    let part = &v["communities"];
    assert_eq!(part["memberships"][0]["id"], id.as_str());
    assert_eq!(part["memberships"][0]["role"], "owner");
    let posts = part["posts"].as_array().unwrap();
    assert_eq!(posts.len(), 1);
    assert_eq!(
        (posts[0]["id"].as_u64(), posts[0]["text"].as_str()),
        (Some(p), Some("my post"))
    );
    assert_eq!(part["comments"][0]["text"], "my comment");
    assert_eq!(part["comments"][0]["post"], q);
    assert_eq!(part["favourites"][0]["post"], q);
    assert!(!contains(&r.body, "his post"), "only what is mine");
}

#[tokio::test]
async fn bad_input_is_refused_naming_the_field() {
    let n = TestNode::start().await;
    let c = n.client();
    let ann = c.user("ann", &phone(1)).await;
    let create = |v: Value| {
        let (c, ann) = (c.clone(), ann.clone());
        async move {
            c.call("POST", "/api/v1/communities", Some(&ann), Some(&v))
                .await
        }
    };
    let r = create(json!({"name": "x".repeat(41), "visibility": "public"})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body(&r).contains("name"));
    let r = create(json!({"name": "a\u{202e}b", "visibility": "public"})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "a bidi control");
    let r = create(json!({"name": "ok", "visibility": "secret"})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = create(json!({"name": "ok", "visibility": "public", "extra": 1})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = create(json!({"name": "ok", "visibility": "public", "avatar": "nonexistent"})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let id = community(&c, &ann, "ok", "public").await;
    let r = post_raw(&c, &ann, &id, json!({})).await;
    assert_eq!(
        r.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "neither text nor media"
    );
    let r = post_raw(&c, &ann, &id, json!({"text": "x".repeat(10_001)})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = post_raw(
        &c,
        &ann,
        &id,
        json!({"text": "a", "visibility": "everyone"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = post_raw(&c, &ann, &id, json!({"text": "a\u{0}b"})).await;
    assert_eq!(
        r.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a control character"
    );
    let p = post(&c, &ann, &id, "fine", "public").await;
    let r = comment(&c, &ann, &id, p, json!({"text": ""})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = comment(&c, &ann, &id, p, json!({"text": "q", "quote": 999})).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let r = moderate(&c, &ann, &id, "nobody@localhost", "ban").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = moderate(&c, &ann, &id, "ann@localhost", "crown").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    // Ids that are not ids are 404, like ids of nothing.
    let r = c.get("/api/v1/communities/ZZZ", Some(&ann)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = c
        .get(&format!("/api/v1/communities/{id}/posts/abc"), Some(&ann))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = c.get("/api/v1/communities?q=x&q=y", Some(&ann)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}
