//! Keeps `docs/PROTOCOL.md` true: every example in it is recomputed from the published test
//! key and compared byte for byte.

use federation::{
    CommunityContent, Envelope, FriendContent, KeyId, Kind, MessageContent, NodeKey,
    ProfileContent, RequestAuth, b64, sign_request,
};
use serde_json::json;

fn doc() -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/PROTOCOL.md");
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The body of the fenced block whose info string ends with `name`.
fn block(doc: &str, name: &str) -> String {
    let start = doc
        .lines()
        .position(|l| l.starts_with("```") && l.trim_end().ends_with(name))
        .unwrap_or_else(|| panic!("no block {name} in PROTOCOL.md"));
    doc.lines()
        .skip(start + 1)
        .take_while(|l| !l.starts_with("```"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn test_key(doc: &str) -> NodeKey {
    let seed: [u8; 32] = hex::decode(block(doc, "example-seed-hex").trim())
        .unwrap()
        .try_into()
        .unwrap();
    NodeKey::from_seed(KeyId::parse("ed25519:example").unwrap(), &seed, u64::MAX)
}

/// The example submission, built from its documented parts and signed with the test key.
fn example_submission(key: &NodeKey) -> Envelope {
    let mut e = Envelope::new(
        "ex1",
        "a.example",
        "b.example",
        1_764_400_000_000,
        Kind::Message,
        json!({
            "type": "submit",
            "conversation": "x1:b.example",
            "message_id": "00112233445566778899aabbccddeeff",
            "sender": "alice@a.example",
            "ts": 1_764_400_000_000u64,
            "body": {"type": "text", "text": "你好"},
        }),
    )
    .unwrap();
    e.sign(key).unwrap();
    e
}

#[test]
fn the_documented_examples_are_what_the_code_produces() {
    let doc = doc();
    let key = test_key(&doc);
    let submission = example_submission(&key);
    let show = |name: &str, want: String| {
        assert_eq!(
            block(&doc, name),
            want,
            "PROTOCOL.md block {name} is out of date; it should read:\n{want}"
        );
    };
    show("example-signing-bytes", submission.signing_bytes().unwrap());
    show("example-envelope", submission.to_json().unwrap());
    let mut hosted = Envelope::new(
        "ex2",
        "b.example",
        "c.example",
        1_764_400_000_500,
        Kind::Message,
        json!({"type": "hosted", "conversation": "x1:b.example", "seq": 7, "submission": submission}),
    )
    .unwrap();
    hosted.sign(&key).unwrap();
    show("example-hosted", hosted.to_json().unwrap());
    // Both parse as the documented content types.
    for e in [&submission, &hosted] {
        serde_json::from_value::<MessageContent>(e.content.clone()).unwrap();
    }
}

#[test]
fn the_published_key_and_signed_envelope_are_what_the_code_produces() {
    let doc = doc();
    let key = test_key(&doc);
    assert_eq!(
        b64(&key.public().to_bytes()),
        block(&doc, "example-public-key")
    );
    let sent = block(&doc, "example-envelope");
    let envelope = Envelope::from_value(serde_json::from_str(&sent).unwrap()).unwrap();
    assert_eq!(
        envelope.signing_bytes().unwrap(),
        block(&doc, "example-signing-bytes")
    );
    envelope.verify(&key.public()).unwrap();
    let mut resigned = envelope.clone();
    resigned.signatures.clear();
    resigned.sign(&key).unwrap();
    assert_eq!(
        resigned.to_json().unwrap(),
        sent,
        "the example is byte-exact"
    );
}

#[test]
fn the_published_authorization_header_is_what_the_code_produces() {
    let doc = doc();
    let key = test_key(&doc);
    let body = br#"{"origin":"a.example","envelopes":[]}"#;
    let header = sign_request(
        &key,
        "PUT",
        "/_federation/v1/transactions/t1",
        "a.example",
        "b.example",
        1_764_400_000_000,
        body,
    );
    assert_eq!(header, block(&doc, "example-authorization"));
    let auth = RequestAuth::parse(&header).unwrap();
    auth.verify(
        &key.public(),
        "PUT",
        "/_federation/v1/transactions/t1",
        body,
    )
    .unwrap();
}

#[test]
fn the_published_request_signing_bytes_are_what_the_authorization_example_signs() {
    use sha2::Digest;
    let doc = doc();
    let key = test_key(&doc);
    let body = br#"{"origin":"a.example","envelopes":[]}"#;
    let digest = b64(&sha2::Sha256::digest(body));
    assert_eq!(digest.len(), 43, "unpadded base64 of 32 bytes");
    assert!(
        doc.contains(&format!("the body's digest is `{digest}`")),
        "the digest in the text"
    );
    let bytes = federation::canonical_json(&json!({
        "body_sha256": digest,
        "destination": "b.example",
        "method": "PUT",
        "origin": "a.example",
        "path": "/_federation/v1/transactions/t1",
        "ts": 1_764_400_000_000u64,
    }))
    .unwrap();
    assert_eq!(block(&doc, "example-request-signing-bytes"), bytes);
    let header = block(&doc, "example-authorization");
    let sig = header
        .split("sig=\"")
        .nth(1)
        .and_then(|s| s.strip_suffix('"'))
        .unwrap();
    key.public()
        .verify(bytes.as_bytes(), &federation::unb64(sig).unwrap())
        .unwrap();
}

#[test]
fn the_documented_media_body_names_the_documented_bytes() {
    use sha2::Digest;
    let doc = doc();
    let text = block(&doc, "example-media-body");
    let value = federation::parse_json(text.as_bytes()).unwrap();
    let body: federation::WireBody = serde_json::from_value(value.clone()).unwrap();
    let federation::WireBody::Media { kind, name, media } = &body else {
        panic!("not a media body: {body:?}");
    };
    assert_eq!(
        (kind.as_str(), name.as_deref()),
        ("file", Some("hello.txt"))
    );
    assert_eq!(
        federation::canonical_json(&serde_json::to_value(&body).unwrap()).unwrap(),
        text,
        "the example is in canonical form and round-trips"
    );
    let bytes = format!("{}\n", block(&doc, "example-media-bytes"));
    assert_eq!(media.size, bytes.len() as u64);
    assert_eq!(media.sha256, b64(&sha2::Sha256::digest(bytes.as_bytes())));
    assert!(federation::valid_media_id(&media.id));
}

#[test]
fn the_documented_friend_examples_are_what_the_code_produces() {
    let doc = doc();
    let key = test_key(&doc);
    let signed = |id: &str, origin: &str, dest: &str, ts: u64, content: FriendContent| {
        let mut e = Envelope::new(id, origin, dest, ts, Kind::Friend, json!(content)).unwrap();
        e.sign(&key).unwrap();
        e
    };
    let request = signed(
        "ex3",
        "a.example",
        "b.example",
        1_764_400_001_000,
        FriendContent::Request {
            from: "alice@a.example".into(),
            to: "bob@b.example".into(),
            note: Some("我们在会上见过".into()),
        },
    );
    let answer = signed(
        "ex4",
        "b.example",
        "a.example",
        1_764_400_002_000,
        FriendContent::Answer {
            from: "alice@a.example".into(),
            to: "bob@b.example".into(),
            accept: true,
        },
    );
    for (name, e) in [
        ("example-friend-request", &request),
        ("example-friend-answer", &answer),
    ] {
        let want = e.to_json().unwrap();
        assert_eq!(
            block(&doc, name),
            want,
            "PROTOCOL.md block {name} is out of date; it should read:\n{want}"
        );
        // What the document shows reads back as the content type, and verifies.
        let read = Envelope::from_value(serde_json::from_str(&block(&doc, name)).unwrap()).unwrap();
        read.verify(&key.public()).unwrap();
        serde_json::from_value::<FriendContent>(read.content).unwrap();
    }
}

/// The documented `profile` content with an avatar image parses as `ProfileContent`, and its
/// reference's size and SHA-256 are those of the bytes it names.
#[test]
fn the_documented_avatar_reference_is_a_profile_content_with_a_true_hash() {
    use sha2::Digest;
    let doc = doc();
    let v: serde_json::Value =
        serde_json::from_str(&block(&doc, "profile-avatar-example")).unwrap();
    let p: ProfileContent = serde_json::from_value(v.clone()).unwrap();
    assert_eq!(p.avatar, None);
    let m = p.avatar_media.clone().unwrap();
    let bytes = b"example avatar";
    assert_eq!(m.size, bytes.len() as u64);
    assert_eq!(m.sha256, b64(&sha2::Sha256::digest(bytes)));
    assert_eq!(m.origin, "a.example");
    assert!(federation::valid_media_id(&m.id));
    assert_eq!(serde_json::to_value(&p).unwrap(), v, "round-trips");
}

#[test]
fn the_documented_lookup_for_a_viewer_is_what_the_code_produces() {
    let doc = doc();
    let key = test_key(&doc);
    let path = "/_federation/v1/users/bob/as/alice";
    let header = sign_request(
        &key,
        "GET",
        path,
        "a.example",
        "b.example",
        1_764_400_003_000,
        b"",
    );
    let show = |name: &str, want: String| {
        assert_eq!(
            block(&doc, name),
            want,
            "PROTOCOL.md block {name} is out of date; it should read:\n{want}"
        );
    };
    show("example-viewer-authorization", header.clone());
    RequestAuth::parse(&header)
        .unwrap()
        .verify(&key.public(), "GET", path, b"")
        .unwrap();
    let mut answer = Envelope::new(
        "ex5",
        "b.example",
        "a.example",
        1_764_400_003_100,
        Kind::Profile,
        json!(ProfileContent {
            user: "bob@b.example".into(),
            nickname: "Bob".into(),
            avatar: None,
            avatar_media: None,
            fields: Some(
                [
                    ("education".to_string(), "浙江大学".to_string()),
                    ("region".to_string(), "杭州".to_string()),
                ]
                .into()
            ),
        }),
    )
    .unwrap();
    answer.sign(&key).unwrap();
    show("example-viewer-profile", answer.to_json().unwrap());
    let read =
        Envelope::from_value(serde_json::from_str(&block(&doc, "example-viewer-profile")).unwrap())
            .unwrap();
    read.verify(&key.public()).unwrap();
    let p: ProfileContent = serde_json::from_value(read.content).unwrap();
    assert_eq!(p.fields.map(|f| f.len()), Some(2));
}

/// Checks PROTOCOL.md block `name`: the `community` envelope `id` of `ts` with `content`,
/// signed with the test key, reads back as that content.
fn community_example(doc: &str, name: &str, id: &str, ts: u64, content: CommunityContent) {
    let key = test_key(doc);
    let mut e = Envelope::new(
        id,
        "a.example",
        "b.example",
        ts,
        Kind::Community,
        json!(content),
    )
    .unwrap();
    e.sign(&key).unwrap();
    let want = e.to_json().unwrap();
    assert_eq!(
        block(doc, name),
        want,
        "PROTOCOL.md block {name} is out of date; it should read:\n{want}"
    );
    let read = Envelope::from_value(serde_json::from_str(&block(doc, name)).unwrap()).unwrap();
    read.verify(&key.public()).unwrap();
    assert_eq!(
        serde_json::from_value::<CommunityContent>(read.content).unwrap(),
        content
    );
}

#[test]
fn the_documented_community_examples_are_what_the_code_produces() {
    let doc = doc();
    let post = CommunityContent::Post {
        user: "alice@a.example".into(),
        community: "4f1c2a9e0b7d3c58".into(),
        text: "长江大桥的照片".into(),
        visibility: None,
        media: vec![federation::NewPostMedia {
            kind: "image".into(),
            name: None,
            media: federation::MediaRef {
                origin: "a.example".into(),
                id: "UGhvdG9fb2ZfdGhlX2JyaWRnZQ".into(),
                size: 48213,
                content_type: "image/jpeg".into(),
                sha256: "3q2+7wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into(),
            },
        }],
    };
    community_example(
        &doc,
        "example-community-post",
        "ex6",
        1_764_400_003_000,
        post,
    );
    let delete = CommunityContent::DeletePost {
        user: "alice@a.example".into(),
        community: "4f1c2a9e0b7d3c58".into(),
        post: 12,
    };
    community_example(
        &doc,
        "example-community-delete-post",
        "ex6d",
        1_764_400_004_000,
        delete,
    );
}

/// The documented submission that allows transfers abroad, and the host's relay to its origin
/// naming the peer it withheld the message from, are what the code produces and read back as
/// `MessageContent` with those fields.
#[test]
fn the_documented_cross_border_submission_and_withheld_relay_are_what_the_code_produces() {
    let doc = doc();
    let key = test_key(&doc);
    let mut submission = Envelope::new(
        "ex7",
        "a.example",
        "b.example",
        1_764_400_003_000,
        Kind::Message,
        json!(MessageContent::Submit {
            conversation: "x1:b.example".into(),
            message_id: "00112233445566778899aabbccddee01".into(),
            sender: "alice@a.example".into(),
            ts: 1_764_400_003_000,
            body: federation::WireBody::Text {
                text: "你好".into()
            },
            cross_border: true,
        }),
    )
    .unwrap();
    submission.sign(&key).unwrap();
    let mut hosted = Envelope::new(
        "ex8",
        "b.example",
        "a.example",
        1_764_400_003_500,
        Kind::Message,
        json!(MessageContent::Hosted {
            conversation: "x1:b.example".into(),
            seq: 8,
            submission: Box::new(submission.clone()),
            withheld: vec!["c.example".into()],
        }),
    )
    .unwrap();
    hosted.sign(&key).unwrap();
    for (name, e) in [
        ("example-submission-cross-border", &submission),
        ("example-hosted-withheld", &hosted),
    ] {
        let want = e.to_json().unwrap();
        assert_eq!(
            block(&doc, name),
            want,
            "PROTOCOL.md block {name} is out of date; it should read:\n{want}"
        );
    }
    let read = |name: &str| {
        let e = Envelope::from_value(serde_json::from_str(&block(&doc, name)).unwrap()).unwrap();
        e.verify(&key.public()).unwrap();
        serde_json::from_value::<MessageContent>(e.content).unwrap()
    };
    assert!(matches!(
        read("example-submission-cross-border"),
        MessageContent::Submit {
            cross_border: true,
            ..
        }
    ));
    let MessageContent::Hosted { withheld, .. } = read("example-hosted-withheld") else {
        panic!("not a relay");
    };
    assert_eq!(withheld, ["c.example"]);
    // Without the field (an older node's submission) the sender allows nothing abroad.
    let MessageContent::Submit { cross_border, .. } =
        serde_json::from_value(example_submission(&key).content).unwrap()
    else {
        panic!("not a submission");
    };
    assert!(!cross_border);
}
