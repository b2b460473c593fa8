//! What a node refuses from peers: unsigned, forged, misaddressed, stale, replayed and
//! oversized requests, unknown origins, and envelopes that speak for someone else. The peer
//! here is a `FakePeer` the test controls, so it can sign anything — right or wrong.

use federation::{KeyId, Kind, NodeKey};
use http::StatusCode;
use serde_json::{Value, json};
use tests::{FakePeer, alice_in_a_hosted_group, eventually, federation_with, now_ms, phone};

fn submit(peer: &FakePeer, id: &str, conv: &str, sender: &str, text: &str) -> Value {
    serde_json::to_value(peer.envelope(
        id,
        "a.test",
        Kind::Message,
        json!({
            "type": "submit", "conversation": conv, "message_id": format!("{:0>32}", id.len()),
            "sender": sender, "ts": now_ms(), "body": {"type": "text", "text": text}
        }),
    ))
    .unwrap()
}

#[tokio::test]
async fn peers_requests_are_authenticated_idempotent_and_checked_envelope_by_envelope() {
    let peer = FakePeer::start("e.test", "CN").await;
    let nodes = federation_with(&[("a.test", "CN")], &[&peer], "").await;
    let a = &nodes[0];
    let c = a.client();
    let alice = c.user("alice", &phone(1)).await;

    // A conversation hosted on a.test with a member of the fake peer.
    let r = c
        .call(
            "POST",
            "/api/v1/conversations",
            Some(&alice),
            Some(&json!({"kind": "group", "name": "g", "members": []})),
        )
        .await;
    let conv = r.json()["id"].as_str().unwrap().to_string();
    // Inviting eve@e.test asks e.test for her profile; the fake peer has no such endpoint.
    let r = c
        .call(
            "POST",
            &format!("/api/v1/conversations/{conv}/members"),
            Some(&alice),
            Some(&json!({"user": "eve@e.test"})),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::NOT_FOUND,
        "unknown remote users are not invented"
    );

    let good = |id: &str| submit(&peer, id, &conv, "eve@e.test", "hi");
    let txn = |envs: Vec<Value>| json!({"origin": "e.test", "envelopes": envs});
    let now = now_ms();

    // Forged: the right key id, another key.
    let forger = NodeKey::from_seed(
        KeyId::parse("ed25519:fake").unwrap(),
        &[7; 32],
        4_000_000_000_000,
    );
    let r = peer
        .put(a, "t1", &txn(vec![]), "a.test", now, &forger)
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "forged signature");
    // Unknown key id (after one fetch of the document).
    let other = NodeKey::from_seed(
        KeyId::parse("ed25519:nope").unwrap(),
        &[42; 32],
        4_000_000_000_000,
    );
    let r = peer.put(a, "t1", &txn(vec![]), "a.test", now, &other).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "unknown key");
    // Addressed to another node.
    let r = peer
        .put(a, "t1", &txn(vec![]), "b.test", now, &peer.key)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "wrong destination");
    // Stale and future timestamps.
    for ts in [now - 6 * 60_000, now + 6 * 60_000] {
        let r = peer
            .put(a, "t1", &txn(vec![]), "a.test", ts, &peer.key)
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "stale");
    }
    // Missing signature header.
    let r = c
        .call(
            "PUT",
            "/_federation/v1/transactions/t1",
            None,
            Some(&txn(vec![])),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // An origin that is not an allowed peer.
    let stranger = FakePeer::start("x.test", "CN").await;
    let r = stranger
        .put(
            a,
            "t1",
            &json!({"origin": "x.test", "envelopes": []}),
            "a.test",
            now,
            &stranger.key,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "unknown origin");
    // Too many envelopes in one transaction.
    let many: Vec<Value> = (0..101).map(|i| good(&format!("m{i}"))).collect();
    let r = peer
        .put(a, "big", &txn(many), "a.test", now, &peer.key)
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(r.error_code() == "too_large");

    // Envelopes are judged one by one: one that speaks for another node's user, one whose
    // origin is not the sender, one badly signed, one for a conversation with no such member
    // — and the rest still count.
    let claims_alice = submit(&peer, "e1", &conv, "alice@a.test", "I am alice");
    let mut wrong_origin = good("e2");
    wrong_origin["origin"] = json!("b.test");
    let mut tampered = good("e3");
    tampered["content"]["body"]["text"] = json!("changed");
    let not_member = good("e4");
    let malformed = json!({"id": "e5", "nonsense": true});
    let r = peer
        .put(
            a,
            "mixed",
            &txn(vec![
                claims_alice,
                wrong_origin,
                tampered,
                not_member,
                malformed,
            ]),
            "a.test",
            now,
            &peer.key,
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let results = r.json()["results"].clone();
    assert_eq!(results["e1"]["error"]["code"], "foreign_user");
    assert_eq!(results["e2"]["error"]["code"], "wrong_origin");
    assert_eq!(results["e3"]["error"]["code"], "bad_signature");
    assert_eq!(
        results["e4"]["error"]["code"], "refused",
        "eve is not a member"
    );
    assert_eq!(results["e5"]["error"]["code"], "malformed");
    assert!(
        alice_sees(&c, &alice, &conv).await.is_empty(),
        "nothing was applied"
    );

    // Replay: the same transaction again gets the same answer and applies nothing twice; the
    // same id with another body is a conflict.
    let again = peer
        .put(
            a,
            "mixed",
            &txn(vec![submit(
                &peer,
                "e1",
                &conv,
                "alice@a.test",
                "I am alice",
            )]),
            "a.test",
            now,
            &peer.key,
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.error_code(), "conflict");

    // A membership state for a conversation e.test does not host is refused; one for its own
    // conversation creates a local copy, and e.test's members are then eve and alice.
    let not_host = peer.group_state("s1", "a.test", &conv, "mine now", "eve@e.test", &[]);
    let theirs = peer.group_state(
        "s2",
        "a.test",
        "q1:e.test",
        "eve's",
        "eve@e.test",
        &["alice@a.test"],
    );
    let said = peer.envelope(
        "s3",
        "a.test",
        Kind::Message,
        json!({"type": "hosted", "conversation": "q1:e.test", "seq": 1,
               "submission": peer.envelope("s3sub", "e.test", Kind::Message,
                    json!({"type": "submit", "conversation": "q1:e.test",
                           "message_id": "0123456789abcdef0123456789abcdef",
                           "sender": "eve@e.test", "ts": now, "body": {"type": "text", "text": "welcome"}}))}),
    );
    let body = txn(vec![
        serde_json::to_value(&not_host).unwrap(),
        serde_json::to_value(&theirs).unwrap(),
        serde_json::to_value(&said).unwrap(),
    ]);
    let r = peer.put(a, "states", &body, "a.test", now, &peer.key).await;
    assert_eq!(r.status, StatusCode::OK);
    let results = r.json()["results"].clone();
    assert_eq!(results[not_host.id.as_str()]["error"]["code"], "not_host");
    assert_eq!(results[theirs.id.as_str()], json!({}));
    assert_eq!(results[said.id.as_str()], json!({}));
    let first = r.body.clone();
    // The identical transaction again: the same answer, and still one message.
    let r = peer.put(a, "states", &body, "a.test", now, &peer.key).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, first);
    eventually(5, "eve's message", || async {
        (alice_sees(&c, &alice, "q1:e.test").await == ["welcome"]).then_some(())
    })
    .await;
    // Even under a new transaction id, an envelope already applied is not applied again.
    let r = peer
        .put(
            a,
            "states-2",
            &txn(vec![serde_json::to_value(&said).unwrap()]),
            "a.test",
            now,
            &peer.key,
        )
        .await;
    assert_eq!(r.json()["results"][said.id.as_str()], json!({}));
    assert_eq!(alice_sees(&c, &alice, "q1:e.test").await, ["welcome"]);
}

async fn alice_sees(c: &tests::Client, token: &str, conv: &str) -> Vec<String> {
    let r = c
        .get(
            &format!("/api/v1/conversations/{conv}/messages"),
            Some(token),
        )
        .await;
    if r.status != StatusCode::OK {
        return Vec::new();
    }
    r.json()["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"]["text"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test]
async fn our_own_submission_relayed_back_by_its_host_is_taken_only_unchanged() {
    // e.test hosts a group with alice in it.
    let (peer, nodes, c, alice) = alice_in_a_hosted_group("retry_max_secs = 1").await;
    let a = &nodes[0];
    let txn = |envs: Vec<&federation::Envelope>| json!({"origin": "e.test", "envelopes": envs.iter().map(|e| serde_json::to_value(e).unwrap()).collect::<Vec<_>>()});
    // Alice writes; her node submits the message to the host.
    let r = c
        .call(
            "POST",
            "/api/v1/conversations/q1:e.test/messages",
            Some(&alice),
            Some(&json!({"txn_id": "1", "body": {"type": "text", "text": "mine"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let submission = eventually(10, "the submission at the host", || async {
        peer.envelopes()
            .into_iter()
            .find(|e| e["content"]["type"] == "submit")
    })
    .await;
    let relay = |id: &str, sub: &Value| {
        peer.envelope(
            id,
            "a.test",
            Kind::Message,
            json!({"type": "hosted", "conversation": "q1:e.test", "seq": 1, "submission": sub}),
        )
    };
    // The host relaying it with the text changed (the signature kept) is refused…
    let mut forged = submission.clone();
    forged["content"]["body"]["text"] = json!("not mine");
    let bad = relay("r1", &forged);
    let r = peer
        .put(a, "t2", &txn(vec![&bad]), "a.test", now_ms(), &peer.key)
        .await;
    assert_eq!(r.json()["results"]["r1"]["error"]["code"], "bad_signature");
    // …and the unchanged one is taken.
    let good = relay("r2", &submission);
    let r = peer
        .put(a, "t3", &txn(vec![&good]), "a.test", now_ms(), &peer.key)
        .await;
    assert_eq!(r.json()["results"]["r2"], json!({}));
    assert_eq!(alice_sees(&c, &alice, "q1:e.test").await, ["mine"]);
}

#[tokio::test]
async fn an_erasure_acknowledgement_must_match_every_field_of_the_request() {
    let (peer, nodes, c, alice) = alice_in_a_hosted_group("retry_max_secs = 1").await;
    let a = &nodes[0];
    let bob = c.user("bob", &phone(2)).await;
    for (token, txn) in [(&alice, "1"), (&bob, "2")] {
        // Bob is not in the group; only alice's message crosses.
        let _ = c
            .call(
                "POST",
                "/api/v1/conversations/q1:e.test/messages",
                Some(token),
                Some(&json!({"txn_id": txn, "body": {"type": "text", "text": "mine"}})),
            )
            .await;
    }
    eventually(10, "alice's submission at the host", || async {
        peer.envelopes()
            .iter()
            .any(|e| e["content"]["type"] == "submit")
            .then_some(())
    })
    .await;
    assert_eq!(a.node().request_erasure("alice").await.unwrap(), ["e.test"]);
    let erasure = eventually(10, "the erasure request at the peer", || async {
        peer.envelopes()
            .into_iter()
            .find(|e| e["kind"] == "erasure")
    })
    .await;
    let (user, reference, id) = (
        erasure["content"]["user"].as_str().unwrap().to_string(),
        erasure["content"]["reference"]
            .as_str()
            .unwrap()
            .to_string(),
        erasure["id"].as_str().unwrap().to_string(),
    );
    assert_eq!(user, "alice@a.test");
    let ack = |eid: &str, user: &str, reference: &str, erasure: &str| {
        serde_json::to_value(peer.envelope(
            eid,
            "a.test",
            Kind::ErasureAck,
            json!({"user": user, "reference": reference, "erasure": erasure}),
        ))
        .unwrap()
    };
    let wrong = [
        ack("k1", "bob@a.test", &reference, &id),
        ack("k2", &user, &reference, "another-erasure"),
        ack("k3", &user, &reference.to_uppercase(), &id),
        ack("k4", &user, &format!("{:016x}", 1), &id),
    ];
    let r = peer
        .put(
            a,
            "acks1",
            &json!({"origin": "e.test", "envelopes": wrong}),
            "a.test",
            now_ms(),
            &peer.key,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let results = r.json()["results"].clone();
    for k in ["k1", "k2", "k3", "k4"] {
        assert_eq!(results[k]["retry"], json!(false), "{k}: {results}");
        assert!(results[k]["error"]["code"].is_string(), "{k}: {results}");
    }
    assert_eq!(
        a.node().erasure_status("alice").await.unwrap(),
        [("e.test".to_string(), false)],
        "a mismatched acknowledgement leaves the erasure pending"
    );
    let r = peer
        .put(
            a,
            "acks2",
            &json!({"origin": "e.test", "envelopes": [ack("k5", &user, &reference, &id)]}),
            "a.test",
            now_ms(),
            &peer.key,
        )
        .await;
    assert_eq!(r.json()["results"]["k5"], json!({}));
    assert_eq!(
        a.node().erasure_status("alice").await.unwrap(),
        [("e.test".to_string(), true)]
    );
}

/// `PUT /_federation/v1/transactions/{txn}` with `body` exactly as given, signed by `peer`.
async fn put_text(peer: &FakePeer, node: &tests::TestNode, txn: &str, body: &str) -> tests::Reply {
    let path = format!("/_federation/v1/transactions/{txn}");
    let body = bytes::Bytes::from(body.to_string());
    let auth = federation::sign_request(
        &peer.key,
        "PUT",
        &path,
        &peer.domain,
        "a.test",
        now_ms(),
        &body,
    );
    let req = http::Request::builder()
        .method("PUT")
        .uri(path)
        .header("host", "localhost")
        .header("authorization", auth)
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(body))
        .unwrap();
    node.client().send(req).await
}

#[tokio::test]
async fn what_peers_send_is_read_in_exactly_one_spelling_and_within_a_time_window() {
    let (peer, nodes, c, alice) = alice_in_a_hosted_group("retry_max_secs = 1").await;
    let a = &nodes[0];
    let hosted = |id: &str, seq: u64, message_id: &str, ts: u64| {
        let mut sub = federation::Envelope::new(
            &format!("s-{id}"),
            "e.test",
            "e.test",
            ts,
            Kind::Message,
            json!({"type": "submit", "conversation": "q1:e.test", "message_id": message_id,
                   "sender": "eve@e.test", "ts": ts, "body": {"type": "text", "text": id}}),
        )
        .unwrap();
        sub.sign(&peer.key).unwrap();
        let mut e = federation::Envelope::new(
            id,
            "e.test",
            "a.test",
            ts,
            Kind::Message,
            json!({"type": "hosted", "conversation": "q1:e.test", "seq": seq, "submission": sub}),
        )
        .unwrap();
        e.sign(&peer.key).unwrap();
        serde_json::to_value(e).unwrap()
    };
    let now = now_ms();
    let day = 24 * 60 * 60 * 1000;
    let envs = vec![
        hosted("upper", 1, "00112233445566778899AABBCCDDEEFF", now),
        hosted("plus", 2, "+0112233445566778899aabbccddeeff", now),
        hosted(
            "old",
            3,
            "00112233445566778899aabbccddee03",
            now - 400 * day,
        ),
        hosted(
            "ahead",
            4,
            "00112233445566778899aabbccddee04",
            now + 10 * 60_000,
        ),
        hosted(
            "fine",
            5,
            "00112233445566778899aabbccddee05",
            now - 29 * day,
        ),
    ];
    let r = peer
        .put(
            a,
            "t2",
            &json!({"origin": "e.test", "envelopes": envs}),
            "a.test",
            now,
            &peer.key,
        )
        .await;
    let results = r.json()["results"].clone();
    assert_eq!(results["upper"]["error"]["code"], "malformed", "{results}");
    assert_eq!(results["plus"]["error"]["code"], "malformed", "{results}");
    assert_eq!(results["old"]["error"]["code"], "stale", "{results}");
    assert_eq!(results["ahead"]["error"]["code"], "stale", "{results}");
    assert_eq!(results["fine"], json!({}), "{results}");
    let texts = eventually(10, "the one message", || async {
        let t = alice_sees(&c, &alice, "q1:e.test").await;
        (!t.is_empty()).then_some(t)
    })
    .await;
    assert_eq!(texts, ["fine"]);

    // A repeated member name anywhere in the body refuses the whole transaction, before any
    // envelope is looked at.
    let one =
        serde_json::to_string(&hosted("dup", 6, "00112233445566778899aabbccddee06", now)).unwrap();
    let inner = one.replacen("\"seq\":6", "\"seq\":6,\"seq\":7", 1);
    assert_ne!(inner, one);
    for body in [
        format!("{{\"origin\":\"e.test\",\"origin\":\"e.test\",\"envelopes\":[{one}]}}"),
        format!("{{\"origin\":\"e.test\",\"envelopes\":[{inner}]}}"),
    ] {
        let r = put_text(&peer, a, "t3", &body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(r.error_code(), "invalid");
    }
    assert_eq!(alice_sees(&c, &alice, "q1:e.test").await, ["fine"]);
    // The same body without the repetition is taken.
    let r = put_text(
        &peer,
        a,
        "t4",
        &format!("{{\"origin\":\"e.test\",\"envelopes\":[{one}]}}"),
    )
    .await;
    assert_eq!(r.json()["results"]["dup"], json!({}));

    // The header's ts in another spelling is malformed (401).
    let path = "/_federation/v1/transactions/t5";
    let auth = federation::sign_request(&peer.key, "PUT", path, "e.test", "a.test", now, b"{}")
        .replace(&format!("ts=\"{now}\""), &format!("ts=\"+{now}\""));
    let r = a
        .client()
        .send(
            http::Request::builder()
                .method("PUT")
                .uri(path)
                .header("host", "localhost")
                .header("authorization", auth)
                .body(http_body_util::Full::new(bytes::Bytes::from_static(b"{}")))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_erasure_reference_is_bounded_and_echoed_unchanged_in_the_acknowledgement() {
    let (peer, nodes, _c, _alice) = alice_in_a_hosted_group("retry_max_secs = 1").await;
    let erasure = |id: &str, reference: &str| {
        serde_json::to_value(peer.envelope(
            id,
            "a.test",
            Kind::Erasure,
            json!({"user": "eve@e.test", "reference": reference}),
        ))
        .unwrap()
    };
    let envs = vec![
        erasure("x1", &"r".repeat(129)),
        erasure("x2", ""),
        erasure("x3", "r-1"),
    ];
    let r = peer
        .put(
            &nodes[0],
            "t2",
            &json!({"origin": "e.test", "envelopes": envs}),
            "a.test",
            now_ms(),
            &peer.key,
        )
        .await;
    let results = r.json()["results"].clone();
    assert_eq!(results["x1"]["error"]["code"], "malformed", "{results}");
    assert_eq!(results["x2"]["error"]["code"], "malformed", "{results}");
    assert_eq!(results["x3"], json!({}), "{results}");
    let ack = eventually(10, "the acknowledgement", || async {
        peer.envelopes()
            .into_iter()
            .find(|e| e["kind"] == "erasure-ack")
    })
    .await;
    assert_eq!(
        ack["content"],
        json!({"user": "eve@e.test", "reference": "r-1", "erasure": "x3"})
    );
}
