//! `node-admin` as an operator runs it, on the data directory of a real node.

use serde_json::{Value, json};
use tests::{TestNode, phone};

mod common;
use common::admin;

// Multi-threaded: the node in this process must answer the tool's socket while the test
// thread waits for the tool.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_changes_are_in_the_audit_log_which_verifies_and_names_no_one() {
    let mut n = TestNode::start().await;
    let c = n.client();
    let t = c.user("audited", &phone(1)).await;
    for granted in [true, false] {
        let r = c
            .call(
                "PUT",
                "/api/v1/me/consents/photos",
                Some(&t),
                Some(&json!({"granted": granted})),
            )
            .await;
        assert_eq!(r.status.as_u16(), 200);
    }
    // While the node runs, the tool works through its socket and says so.
    let (code, running, err) = admin(n.dir.path(), &["audit", "verify"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("node running; via"), "{err}");
    n.stop().await;
    let (code, stopped, err) = admin(n.dir.path(), &["audit", "verify"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("node stopped; working on"), "{err}");
    assert_eq!(running, stopped, "both modes give the same answer");

    let (code, out, err) = admin(n.dir.path(), &["--json", "audit", "list"]);
    assert_eq!(code, 0, "{err}");
    let entries: Value = serde_json::from_str(&out).unwrap();
    let actions: Vec<&str> = entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "consent.grant:photos",
            "consent.revoke:photos",
            "admin.audit.list"
        ],
        "reading the log is itself logged"
    );
    let target = entries[0]["target"].as_str().unwrap();
    assert!(
        target.starts_with("u:") && target.len() == 18,
        "a pseudonym: {target}"
    );
    assert_eq!(
        entries[1]["target"], target,
        "the same user, the same pseudonym"
    );
    assert!(
        !out.contains("audited") && !out.contains(&phone(1)),
        "no handle or phone"
    );

    let (code, out, _) = admin(n.dir.path(), &["audit", "verify"]);
    assert_eq!(code, 0);
    assert!(
        out.starts_with("audit log intact: 3 entries; head "),
        "{out}"
    );
    let (code, out, _) = admin(n.dir.path(), &["audit", "list"]);
    assert_eq!(code, 0);
    assert!(
        out.lines().next().unwrap().starts_with("SEQ"),
        "a table by default"
    );
    let (code, out, _) = admin(n.dir.path(), &["audit", "list", "--since", "2999-01-01"]);
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 1, "only the header");
}

#[test]
fn bad_arguments_and_missing_databases_give_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = admin(dir.path(), &["audit", "verify"]);
    assert_eq!(code, 2);
    assert_eq!(err.lines().count(), 1);
    assert!(err.contains("no database at"), "{err}");
    let (code, _, _) = admin(dir.path(), &["audit", "frobnicate"]);
    assert_eq!(code, 2);
    let (code, _, err) = admin(dir.path(), &["audit", "list", "--since", "yesterday"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        !dir.path().join("node.redb").exists(),
        "nothing was created"
    );
}
