//! `node-admin status`, `peers`, `keys` and `config check`: what an admin looks at every day.

use serde_json::Value;
use tests::{eventually, federation, phone};

mod common;
use common::{admin, admin_json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_peers_show_users_queues_and_the_last_retention_run() {
    let mut nodes = federation(&[("a.test", "CN"), ("b.test", "CN")], "").await;
    let (a, b) = (nodes[0].client(), nodes[1].client());
    let ann = a.user("ann", &phone(1)).await;
    a.user("amy", &phone(2)).await;
    b.user("bob", &phone(3)).await;
    let dm = a.direct(&ann, "bob@b.test").await;
    let dir = nodes[0].dir.path().to_path_buf();

    let s = admin_json(&dir, &["status"]);
    assert_eq!(s["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(s["running"], true);
    assert!(s["uptime_secs"].is_u64(), "{s}");
    assert_eq!(s["users"], 2);
    assert!(s["database_bytes"].as_u64().unwrap() > 0);
    assert_eq!(s["last_retention_run"], Value::Null);
    let peers = admin_json(&dir, &["peers", "list"]);
    assert_eq!(peers.as_array().unwrap().len(), 1, "{peers}");
    assert_eq!(peers[0]["peer"], "b.test");
    assert_eq!(peers[0]["region"], "CN");

    // b.test goes away: what ann sends waits in its queue, and the admin sees it.
    nodes[1].stop().await;
    a.say(&ann, &dm, "q1", "waits").await;
    eventually(10, "the envelope waits for b.test", || async {
        let p = admin_json(&dir, &["peers", "show", "b.test"]);
        (p["queued"].as_u64().unwrap() >= 1).then_some(())
    })
    .await;
    let s = admin_json(&dir, &["status"]);
    assert!(s["outbound_queued"].as_u64().unwrap() >= 1, "{s}");
    let (code, _, err) = admin(&dir, &["peers", "show", "c.test"]);
    assert_eq!(code, 2, "{err}");

    admin_json(&dir, &["retention", "run"]);
    let s = admin_json(&dir, &["status"]);
    assert!(s["last_retention_run"].is_string(), "{s}");

    let keys = admin_json(&dir, &["keys", "list"]);
    assert_eq!(keys[0]["status"], "valid", "{keys}");
    assert!(keys[0]["id"].as_str().unwrap().starts_with("ed25519:"));
    let (code, table, _) = admin(&dir, &["status"]);
    assert_eq!(code, 0);
    assert!(table.contains("users: 2"), "{table}");
}

#[test]
fn config_check_names_the_key_and_line_of_a_problem() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(&good, "[server]\ndomain = \"chat.example.cn\"\n").unwrap();
    let (code, out, err) = admin(
        dir.path(),
        &[
            "--json",
            "--config",
            good.to_str().unwrap(),
            "config",
            "check",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["valid"], true);
    assert_eq!(v["domain"], "chat.example.cn");
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[server]\ndomain = \"chat.example.cn\"\nlisten = 7\n").unwrap();
    let (code, _, err) = admin(
        dir.path(),
        &["--config", bad.to_str().unwrap(), "config", "check"],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("listen") && err.contains('3'), "{err}");
    let (code, _, err) = admin(dir.path(), &["config", "check"]);
    assert_eq!(code, 2, "{err}");
}

// Operations: `status` shows the last retention run from a small record kept with each run,
// so a run that removed nothing (and wrote no audit entry) shows too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_an_automatic_retention_run_that_removed_nothing() {
    let n = tests::TestNode::start_toml("[retention]\ninterval_secs = 1\n").await;
    let dir = n.dir.path().to_path_buf();
    // The node's own run comes one interval after its start, with nothing to remove.
    let s = eventually(20, "an automatic retention run", || async {
        let s = admin_json(&dir, &["status"]);
        s["last_retention_run"].is_string().then_some(s)
    })
    .await;
    let log = admin_json(&dir, &["audit", "list"]).to_string();
    assert!(
        !log.contains("retention.run"),
        "it removed nothing, so the audit log does not record it: {s}"
    );
}

// `keys rotate` on a running node: the new key signs from now on, the old one stays published,
// an envelope queued (and signed) before the rotation and one sent after both reach the peer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_rotate_on_a_running_node_keeps_the_old_key_published_and_messages_still_cross() {
    let mut nodes = federation(&[("a.test", "CN"), ("b.test", "CN")], "").await;
    let (a, b) = (nodes[0].client(), nodes[1].client());
    let ann = a.user("ann", &phone(1)).await;
    let bob = b.user("bob", &phone(2)).await;
    let dm = a.direct(&ann, "bob@b.test").await;
    a.say(&ann, &dm, "t1", "before the rotation").await;
    eventually(20, "the first message crosses", || async {
        (b.visible_texts(&bob, &dm).await == ["before the rotation"]).then_some(())
    })
    .await;
    let dir = nodes[0].dir.path().to_path_buf();
    let before = admin_json(&dir, &["keys", "list"]);
    assert_eq!(before.as_array().unwrap().len(), 1, "{before}");
    let old = before[0]["id"].as_str().unwrap().to_string();
    assert_eq!(before[0]["signing"], true);

    // b.test is away: this envelope is signed with the old key and waits in the queue.
    nodes[1].stop().await;
    a.say(&ann, &dm, "t2", "queued under the old key").await;

    let (code, text, err) = admin(&dir, &["keys", "rotate"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("node running"), "{err}");
    assert!(
        text.starts_with("new signing key ed25519:") && text.contains(&old),
        "says what it did: {text}"
    );
    let keys = admin_json(&dir, &["keys", "list"]);
    let keys = keys.as_array().unwrap();
    assert_eq!(keys.len(), 2, "{keys:?}");
    let new = keys
        .iter()
        .find(|k| k["signing"] == true)
        .expect("one key signs");
    assert_ne!(new["id"], old.as_str());
    assert!(keys.iter().all(|k| k["status"] == "valid"), "{keys:?}");
    let doc = a.get("/_federation/v1/keys", None).await.json();
    assert!(
        doc["keys"].get(new["id"].as_str().unwrap()).is_some(),
        "{doc}"
    );
    assert!(
        doc["old_keys"].get(&old).is_some(),
        "still published: {doc}"
    );
    let audit = admin_json(&dir, &["audit", "list"]).to_string();
    assert!(audit.contains("admin.keys.rotate"), "{audit}");

    // --json says the same.
    let again = admin_json(&dir, &["keys", "rotate"]);
    assert_eq!(again["previous_key"], new["id"]);
    assert_eq!(again["rotated"], true);
    assert_eq!(again["published"].as_array().unwrap().len(), 3, "{again}");

    nodes[1].start_again().await;
    a.say(&ann, &dm, "t3", "signed with the new key").await;
    eventually(30, "both later messages cross", || async {
        let texts = b.visible_texts(&bob, &dm).await;
        (texts
            == [
                "before the rotation",
                "queued under the old key",
                "signed with the new key",
            ])
        .then_some(())
    })
    .await;
}

// `status` counts the node's open WebSockets and connections (null when the node is stopped).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_counts_open_websockets_and_connections() {
    let mut n = tests::TestNode::start().await;
    let c = n.client();
    let token = c.user("wsuser", &phone(1)).await;
    let dir = n.dir.path().to_path_buf();
    let s = admin_json(&dir, &["status"]);
    assert_eq!(s["websockets_open"], 0, "{s}");
    assert!(s["connections_open"].is_i64(), "{s}");
    let ws = c.ws(Some(&token), None).await;
    let ws2 = c.ws(Some(&token), None).await;
    eventually(10, "two WebSockets counted", || async {
        let s = admin_json(&dir, &["status"]);
        (s["websockets_open"] == 2).then_some(())
    })
    .await;
    let (code, table, _) = admin(&dir, &["status"]);
    assert_eq!(code, 0);
    assert!(table.contains("websockets_open: 2"), "{table}");
    drop((ws, ws2));
    eventually(10, "closed WebSockets no longer counted", || async {
        let s = admin_json(&dir, &["status"]);
        (s["websockets_open"] == 0).then_some(())
    })
    .await;
    n.stop().await;
    let s = admin_json(&dir, &["status"]);
    assert_eq!(s["running"], false);
    assert_eq!(s["websockets_open"], Value::Null, "{s}");
    assert_eq!(s["connections_open"], Value::Null, "{s}");
}

// `peers list|show`: reachability as the node's requests found it — last success, last error
// kind (no text), failures in a row — kept across a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_show_reachability_and_a_restarted_node_still_knows_it() {
    let mut nodes = federation(&[("a.test", "CN"), ("b.test", "CN")], "").await;
    let (a, b) = (nodes[0].client(), nodes[1].client());
    let ann = a.user("ann", &phone(1)).await;
    let bob = b.user("bob", &phone(2)).await;
    let dir = nodes[0].dir.path().to_path_buf();
    let p = admin_json(&dir, &["peers", "show", "b.test"]);
    assert_eq!(p["reachable"], "unknown", "{p}");
    assert_eq!(p["last_success"], Value::Null);

    let dm = a.direct(&ann, "bob@b.test").await;
    a.say(&ann, &dm, "t1", "hello").await;
    eventually(20, "the message crosses", || async {
        (b.visible_texts(&bob, &dm).await == ["hello"]).then_some(())
    })
    .await;
    let p = admin_json(&dir, &["peers", "show", "b.test"]);
    assert_eq!(p["reachable"], "yes", "{p}");
    assert!(p["last_success"].is_string(), "{p}");
    assert_eq!(p["consecutive_failures"], 0);
    let success = p["last_success"].clone();

    nodes[1].stop().await;
    a.say(&ann, &dm, "t2", "waits").await;
    let p = eventually(20, "two failed attempts", || async {
        let p = admin_json(&dir, &["peers", "show", "b.test"]);
        (p["consecutive_failures"].as_u64().unwrap() >= 2).then_some(p)
    })
    .await;
    assert_eq!(p["reachable"], "no", "{p}");
    assert_eq!(p["last_error"], "connect", "a kind, not a message: {p}");
    assert!(p["last_failure"].is_string());
    assert_eq!(p["last_success"], success);
    let (code, table, _) = admin(&dir, &["peers", "list"]);
    assert_eq!(code, 0);
    let head = table.lines().next().unwrap();
    assert!(
        head.contains("REACHABLE") && head.contains("LAST_ERROR"),
        "{table}"
    );
    assert!(table.contains("connect"), "{table}");

    // Stopped, the node's saved view is shown; it is the same after a restart.
    nodes[0].stop().await;
    let (code, out, err) = admin(&dir, &["--json", "peers", "show", "b.test"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("node stopped"), "{err}");
    let saved: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(saved["reachable"], "no", "{saved}");
    assert_eq!(saved["last_error"], "connect");
    assert_eq!(saved["last_success"], success);
    assert!(saved["consecutive_failures"].as_u64().unwrap() >= 2);
    nodes[0].start_again().await;
    let p = admin_json(&dir, &["peers", "show", "b.test"]);
    assert_eq!(p["last_success"], success, "{p}");
    assert!(
        p["consecutive_failures"].as_u64().unwrap()
            >= saved["consecutive_failures"].as_u64().unwrap(),
        "counted on from what was saved: {p}"
    );
}
