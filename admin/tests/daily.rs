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
