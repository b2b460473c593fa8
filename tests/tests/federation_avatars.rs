//! Avatars are media (issue 25): an avatar is an image its owner uploaded (stripped like any
//! photo, under the `photos` purpose), served to whoever may see the profile; the nodes that
//! hold the user fetch it through the signed media path, keep it sealed under the owner's key
//! there and serve it to their users; a new avatar replaces the old copy, and the owner's
//! erasure removes it from every node.

use http::StatusCode;
use serde_json::{Value, json};
use tests::{Client, eventually, federation, phone};

use crate::federation_media::{fetch, noise};
use crate::media::{XMP_MARKER, contains, has_gps, jpeg_with_gps};

async fn upload(c: &Client, token: &str, body: Vec<u8>) -> String {
    let r = c
        .raw("POST", "/api/v1/media", Some(token), "image/jpeg", body)
        .await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    r.json()["media_id"].as_str().unwrap().to_string()
}

async fn patch_me(c: &Client, token: &str, body: Value) -> tests::Reply {
    c.call("PATCH", "/api/v1/me", Some(token), Some(&body))
        .await
}

/// A 128x128 JPEG of noise (tens of KiB that repeat nowhere else).
fn noisy_jpeg(seed: u8) -> Vec<u8> {
    let pixels = noise(128 * 128 * 3, seed);
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, 95)
        .encode(&pixels, 128, 128, jpeg_encoder::ColorType::Rgb)
        .unwrap();
    out
}

/// Whether `hay` holds any 64-byte window of `needle` taken every 4 KiB past its header.
fn holds_any_of(hay: &[u8], needle: &[u8]) -> bool {
    needle
        .chunks(4096)
        .skip(1)
        .filter(|c| c.len() >= 64)
        .any(|c| hay.windows(64).any(|w| w == &c[..64]))
}

/// Alice's avatar as `token` sees it on `c`, in the members of `conv`.
async fn avatar_in(c: &Client, token: &str, conv: &str) -> Value {
    let v = c
        .get(&format!("/api/v1/conversations/{conv}"), Some(token))
        .await
        .json();
    v["members"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["user"] == "alice@a.test"))
        .map(|m| m["avatar"].clone())
        .unwrap_or(Value::Null)
}

#[tokio::test]
async fn an_avatar_is_an_uploaded_image_fetched_by_the_nodes_holding_its_owner_replaced_when_changed_and_erased_with_them()
 {
    let nodes = federation(&[("a.test", "CN"), ("b.test", "CN")], "").await;
    let (a, b) = (nodes[0].client(), nodes[1].client());
    let alice = a.user("alice", &phone(1)).await;
    let ann = a.user("ann", &phone(2)).await;
    let bob = b.user("bob", &phone(3)).await;
    let bea = b.user("bea", &phone(4)).await;
    let conv = a.direct(&alice, "bob@b.test").await;
    eventually(10, "b.test holds alice", || async {
        let r = b
            .get(&format!("/api/v1/conversations/{conv}"), Some(&bob))
            .await;
        (r.status == StatusCode::OK).then_some(())
    })
    .await;

    // Not a free-form string any more, nor someone else's media, nor a file that is no image.
    let r = patch_me(
        &a,
        &alice,
        json!({"avatar": "https://example.invalid/a.png"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let anns = upload(&a, &ann, noisy_jpeg(9)).await;
    let r = patch_me(&a, &alice, json!({"avatar": anns})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let text = a
        .raw(
            "POST",
            "/api/v1/media",
            Some(&alice),
            "text/plain",
            b"hello".to_vec(),
        )
        .await
        .json()["media_id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = patch_me(&a, &alice, json!({"avatar": text})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);

    // An image with GPS: the avatar needs the photos purpose, and is stripped like any photo.
    let first = upload(&a, &alice, jpeg_with_gps()).await;
    assert_eq!(
        fetch(&a, &ann, &first).await.status,
        StatusCode::NOT_FOUND,
        "not shown to others before it is an avatar"
    );
    let r = patch_me(&a, &alice, json!({"avatar": first})).await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let r = a.consent(&alice, "photos", true).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = patch_me(&a, &alice, json!({"avatar": first})).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(r.json()["avatar"], first.as_str());
    let served = fetch(&a, &ann, &first).await;
    assert_eq!(
        served.status,
        StatusCode::OK,
        "anyone here who sees the profile"
    );
    assert!(!has_gps(&served.body) && !contains(&served.body, XMP_MARKER));

    // b.test fetches it and serves it to its users: the same stripped bytes, under its own id.
    let copy = eventually(20, "b.test serves alice's avatar", || async {
        let id = avatar_in(&b, &bob, &conv).await.as_str()?.to_string();
        (fetch(&b, &bob, &id).await.status == StatusCode::OK).then_some(id)
    })
    .await;
    assert_ne!(copy, first);
    assert_eq!(fetch(&b, &bob, &copy).await.body, served.body);
    assert_eq!(
        fetch(&b, &bea, &copy).await.status,
        StatusCode::OK,
        "any user of b.test sees the profile, so its picture"
    );
    assert_eq!(
        b.get(&format!("/api/v1/media/{copy}"), None).await.status,
        StatusCode::UNAUTHORIZED
    );
    let log = nodes[0].node().disclosures("alice").await.unwrap();
    assert!(
        log.iter()
            .any(|(p, k, o, _)| p == "b.test" && k == "media" && o == "delivered"),
        "the transfer is in alice's disclosure log: {log:?}"
    );

    // A new avatar replaces the copy: the old one is gone from b.test.
    let second_bytes = noisy_jpeg(7);
    let second = upload(&a, &alice, second_bytes.clone()).await;
    let r = patch_me(&a, &alice, json!({"avatar": second})).await;
    assert_eq!(r.status, StatusCode::OK);
    let copy2 = eventually(20, "b.test serves the new avatar", || async {
        let id = avatar_in(&b, &bob, &conv).await.as_str()?.to_string();
        (id != copy && fetch(&b, &bob, &id).await.status == StatusCode::OK).then_some(id)
    })
    .await;
    let second_served = fetch(&b, &bob, &copy2).await.body.to_vec();
    assert_eq!(
        second_served,
        fetch(&a, &alice, &second).await.body.to_vec()
    );
    assert_eq!(fetch(&b, &bob, &copy).await.status, StatusCode::NOT_FOUND);
    let parts = (second_served.len() as u64).div_ceil(256 * 1024);
    assert_eq!(
        nodes[1].node().stored_media_chunks().await.unwrap(),
        parts,
        "only the new copy is kept"
    );

    // The owner's erasure removes the copy from b.test: no part left, not in its file.
    nodes[0].node().request_erasure("alice").await.unwrap();
    eventually(20, "no chunk left on b.test", || async {
        (nodes[1].node().stored_media_chunks().await.unwrap() == 0).then_some(())
    })
    .await;
    assert_eq!(fetch(&b, &bob, &copy2).await.status, StatusCode::NOT_FOUND);
    assert_eq!(nodes[1].node().pending_media_fetches().await.unwrap(), 0);
    let raw = std::fs::read(nodes[1].db_path()).unwrap();
    assert!(!holds_any_of(&raw, &second_served) && !holds_any_of(&raw, &second_bytes));
}

#[tokio::test]
async fn only_a_peer_the_owners_profile_goes_to_may_fetch_their_avatar_and_residency_applies() {
    // e.test (another region) hosts a group alice is in: it holds her, but her data may go
    // there only with her consent. Bob is in nothing e.test holds.
    let (peer, nodes, a, alice) = tests::alice_in_a_group_hosted_in("EU", "").await;
    let bob = a.user("bob", &phone(2)).await;
    for t in [&alice, &bob] {
        assert_eq!(a.consent(t, "photos", true).await.status, StatusCode::OK);
    }
    let hers = upload(&a, &alice, noisy_jpeg(3)).await;
    let his = upload(&a, &bob, noisy_jpeg(4)).await;
    for (t, id) in [(&alice, &hers), (&bob, &his)] {
        let r = patch_me(&a, t, json!({"avatar": id})).await;
        assert_eq!(r.status, StatusCode::OK);
    }
    let get = |id: &str| format!("/_federation/v1/media/{id}/0");
    let r = crate::federation_media::signed_get(&peer, &nodes[0], &get(&hers)).await;
    assert_eq!(
        r.status,
        StatusCode::NOT_FOUND,
        "no consent to transfers abroad"
    );
    assert!(
        !peer.envelopes().iter().any(|e| e["kind"] == "profile"),
        "nor was the push queued"
    );
    assert_eq!(
        a.consent(&alice, "cross_border_transfer", true)
            .await
            .status,
        StatusCode::OK
    );
    let r = crate::federation_media::signed_get(&peer, &nodes[0], &get(&hers)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, fetch(&a, &alice, &hers).await.body);
    let r = crate::federation_media::signed_get(&peer, &nodes[0], &get(&his)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "e.test does not hold bob");

    // The next change carries the image's reference to e.test.
    let r = patch_me(&a, &alice, json!({"nickname": "Alice Two"})).await;
    assert_eq!(r.status, StatusCode::OK);
    let push = eventually(10, "the profile push reached e.test", || async {
        peer.envelopes()
            .into_iter()
            .find(|e| e["kind"] == "profile")
    })
    .await;
    let c = &push["content"];
    assert_eq!(c["avatar"], Value::Null);
    assert_eq!(c["avatar_media"]["origin"], "a.test");
    assert_eq!(c["avatar_media"]["id"], hers.as_str());
    assert_eq!(c["avatar_media"]["content_type"], "image/jpeg");
}
