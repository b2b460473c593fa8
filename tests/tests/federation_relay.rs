//! The host's relay re-checks the rules (issue 25): a message that a member's node hands to
//! the host of a group is relayed to the other members' nodes only where the author allowed
//! it (`cross_border` in the submission, for a node of another region than the author's
//! node's) and where it fits (the receiving node's published media limit). A copy the host
//! withholds is not sent, and the author's node records which peers were skipped.

use http::StatusCode;
use serde_json::json;
use tests::setup::{send_media as send, upload_media as upload};
use tests::{Client, TestNode, eventually, federation, federation_apart, phone};

use crate::federation_media::{media_in, noise};

async fn consent(c: &Client, token: &str, purpose: &str, granted: bool) {
    let r = c.consent(token, purpose, granted).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
}

async fn post(c: &Client, token: &str, conv: &str, txn: &str, text: &str) {
    let r = c
        .call(
            "POST",
            &format!("/api/v1/conversations/{conv}/messages"),
            Some(token),
            Some(&json!({"txn_id": txn, "body": {"type": "text", "text": text}})),
        )
        .await;
    assert!(
        r.status.is_success(),
        "{}: {}",
        r.status,
        String::from_utf8_lossy(&r.body)
    );
}

/// Bob on `nodes[1]` makes a group with `members`; returns its id once every member's node
/// shows it (`(client, token)` of each member to wait for).
async fn group_on_b(
    b: &Client,
    bob: &str,
    members: &[&str],
    wait_for: &[(&Client, &String)],
) -> String {
    let r = b
        .call(
            "POST",
            "/api/v1/conversations",
            Some(bob),
            Some(&json!({"kind": "group", "name": "g", "members": members})),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let group = r.json()["id"].as_str().unwrap().to_string();
    for (cl, t) in wait_for {
        eventually(10, "the group reached its members' nodes", || async {
            let r = cl
                .get(&format!("/api/v1/conversations/{group}"), Some(t))
                .await;
            (r.status == StatusCode::OK).then_some(())
        })
        .await;
    }
    group
}

/// Waits until `token` on `c` sees `text` in `conv`; returns every text seen then.
async fn until_seen(c: &Client, token: &str, conv: &str, text: &str) -> Vec<String> {
    eventually(20, "the message arrived", || async {
        let texts = c.texts(token, conv).await;
        texts.iter().any(|t| t == text).then_some(texts)
    })
    .await
}

fn withheld(peer: &str, count: u64) -> (String, String, String, u64) {
    (peer.into(), "message".into(), "withheld".into(), count)
}

async fn log_of(node: &TestNode, handle: &str) -> Vec<(String, String, String, u64)> {
    node.node().disclosures(handle).await.unwrap()
}

#[tokio::test]
async fn the_host_relays_a_members_message_to_a_node_of_another_region_only_if_the_author_allowed_it()
 {
    // a and b are in CN, c in EU; the group is hosted on b, with members on a and c.
    let nodes = federation(&[("a.test", "CN"), ("b.test", "CN"), ("c.test", "EU")], "").await;
    let (a, b, c) = (nodes[0].client(), nodes[1].client(), nodes[2].client());
    let alice = a.user("alice", &phone(1)).await;
    let bob = b.user("bob", &phone(2)).await;
    let carol = c.user("carol", &phone(3)).await;
    // Bob's and carol's own data cross regions only with their consent; it is alice's that
    // is in question here.
    consent(&b, &bob, "cross_border_transfer", true).await;
    consent(&c, &carol, "cross_border_transfer", true).await;
    let group = group_on_b(
        &b,
        &bob,
        &["alice@a.test", "carol@c.test"],
        &[(&a, &alice), (&c, &carol)],
    )
    .await;

    // Alice has not allowed transfers abroad: her node may hand the message to b (same
    // region), but b does not relay it to c.
    post(&a, &alice, &group, "1", "stays in CN").await;
    until_seen(&a, &alice, &group, "stays in CN").await;
    until_seen(&b, &bob, &group, "stays in CN").await;
    // A later message of bob's reaches c after anything queued before it for c.
    post(&b, &bob, &group, "2", "from bob").await;
    let on_c = until_seen(&c, &carol, &group, "from bob").await;
    assert!(
        !on_c.iter().any(|t| t == "stays in CN"),
        "withheld from c: {on_c:?}"
    );
    // Her node learnt it from b's relay, and her disclosure log says so.
    eventually(
        10,
        "the author's node recorded the withheld copy",
        || async {
            log_of(&nodes[0], "alice")
                .await
                .contains(&withheld("c.test", 1))
                .then_some(())
        },
    )
    .await;

    // With her consent the same kind of message reaches c.
    consent(&a, &alice, "cross_border_transfer", true).await;
    post(&a, &alice, &group, "3", "may cross").await;
    let on_c = until_seen(&c, &carol, &group, "may cross").await;
    assert!(!on_c.iter().any(|t| t == "stays in CN"));
    until_seen(&a, &alice, &group, "may cross").await;
    assert_eq!(
        log_of(&nodes[0], "alice")
            .await
            .iter()
            .filter(|r| r.2 == "withheld")
            .count(),
        1,
        "only the first message was withheld"
    );
}

#[tokio::test]
async fn the_host_withholds_media_larger_than_a_receiving_node_takes_from_that_node_only() {
    // a does not federate with c, so it cannot know c's limit; b, the host, does.
    let mut nodes = federation_apart(
        &[
            ("a.test", "CN"),
            ("b.test", "CN"),
            ("c.test", "CN"),
            ("d.test", "CN"),
        ],
        &[("a.test", "c.test")],
        &[("c.test", "[media]\nmax_bytes = 65536\n")],
        "",
    )
    .await;
    let (a, b, c, d) = (
        nodes[0].client(),
        nodes[1].client(),
        nodes[2].client(),
        nodes[3].client(),
    );
    let alice = a.user("alice", &phone(1)).await;
    let bob = b.user("bob", &phone(2)).await;
    let carol = c.user("carol", &phone(3)).await;
    let dave = d.user("dave", &phone(4)).await;
    let group = group_on_b(
        &b,
        &bob,
        &["alice@a.test", "carol@c.test", "dave@d.test"],
        &[(&a, &alice), (&c, &carol), (&d, &dave)],
    )
    .await;

    // The host forgets what it knew of its peers' limits when it restarts; it learns them
    // again before it relays media.
    nodes[1].restart_in_place().await;
    let file = upload(&a, &alice, "application/octet-stream", noise(100 * 1024, 7)).await;
    let r = send(&a, &alice, &group, "f1", "file", &file).await;
    assert!(
        r.status.is_success(),
        "{}: {}",
        r.status,
        String::from_utf8_lossy(&r.body)
    );
    // b and d keep it.
    for (cl, t) in [(&b, &bob), (&d, &dave)] {
        eventually(20, "the file reached the host and d", || async {
            (media_in(cl, t, &group).await.len() == 1).then_some(())
        })
        .await;
    }
    // c does not: a later message reaches it, the file never did.
    post(&b, &bob, &group, "2", "after the file").await;
    until_seen(&c, &carol, &group, "after the file").await;
    assert!(media_in(&c, &carol, &group).await.is_empty());
    // b told a which peer it skipped — c only.
    eventually(
        10,
        "the author's node recorded the withheld copy",
        || async {
            let log = log_of(&nodes[0], "alice").await;
            log.contains(&withheld("c.test", 1)).then_some(log)
        },
    )
    .await;
    let log = log_of(&nodes[0], "alice").await;
    assert!(
        !log.iter().any(|r| r.2 == "withheld" && r.0 != "c.test"),
        "{log:?}"
    );
}

#[tokio::test]
async fn a_relay_naming_withheld_peers_counts_them_for_the_author_only_when_it_carries_their_own_submission()
 {
    let (peer, nodes, a, alice) = tests::alice_in_a_hosted_group("retry_max_secs = 1").await;
    let now = tests::now_ms();
    let txn = |envs: Vec<&federation::Envelope>| json!({"origin": "e.test", "envelopes": envs.iter().map(|e| serde_json::to_value(e).unwrap()).collect::<Vec<_>>()});
    let relay = |id: &str, seq: u64, sub: &serde_json::Value, withheld: serde_json::Value| {
        peer.envelope(
            id,
            "a.test",
            federation::Kind::Message,
            json!({"type": "hosted", "conversation": "q1:e.test", "seq": seq,
                   "submission": sub, "withheld": withheld}),
        )
    };
    // A relay of the host's own user's message may not name withheld peers.
    let eves = peer.envelope(
        "sub-eve",
        "e.test",
        federation::Kind::Message,
        json!({"type": "submit", "conversation": "q1:e.test",
               "message_id": "0123456789abcdef0123456789abcdef",
               "sender": "eve@e.test", "ts": now, "body": {"type": "text", "text": "hi"}}),
    );
    let not_hers = relay(
        "r0",
        1,
        &serde_json::to_value(&eves).unwrap(),
        json!(["x.test"]),
    );
    let r = peer
        .put(
            &nodes[0],
            "t2",
            &txn(vec![&not_hers]),
            "a.test",
            now,
            &peer.key,
        )
        .await;
    assert_eq!(r.json()["results"]["r0"]["error"]["code"], "malformed");

    // Alice's own submission comes back naming the peers the host skipped.
    post(&a, &alice, "q1:e.test", "1", "mine").await;
    let submission = eventually(10, "the submission at the host", || async {
        peer.envelopes()
            .into_iter()
            .find(|e| e["content"]["type"] == "submit")
    })
    .await;
    // Not sorted, or repeated: malformed, nothing counted.
    for (id, list) in [
        ("r1", json!(["y.test", "x.test"])),
        ("r2", json!(["x.test", "x.test"])),
    ] {
        let bad = relay(id, 2, &submission, list);
        let r = peer
            .put(&nodes[0], id, &txn(vec![&bad]), "a.test", now, &peer.key)
            .await;
        assert_eq!(
            r.json()["results"][id]["error"]["code"],
            "malformed",
            "{id}"
        );
    }
    let good = relay("r3", 2, &submission, json!(["x.test", "y.test"]));
    let r = peer
        .put(&nodes[0], "t3", &txn(vec![&good]), "a.test", now, &peer.key)
        .await;
    assert_eq!(r.json()["results"]["r3"], json!({}));
    let log = log_of(&nodes[0], "alice").await;
    assert!(
        log.contains(&withheld("x.test", 1)) && log.contains(&withheld("y.test", 1)),
        "{log:?}"
    );
    // The same relay again is a duplicate: counted once.
    let r = peer
        .put(&nodes[0], "t4", &txn(vec![&good]), "a.test", now, &peer.key)
        .await;
    assert_eq!(r.json()["results"]["r3"], json!({}));
    assert!(
        log_of(&nodes[0], "alice")
            .await
            .contains(&withheld("x.test", 1))
    );
}
