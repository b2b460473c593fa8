//! `node-admin backup`, `backup verify`, `backup ledger` and `restore` on real nodes: a backup
//! taken while the node serves restores into a node that serves the same data, and a user
//! erased after the backup stays erased.

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use serde_json::json;
use tests::{TestNode, phone, test_config};

mod common;
use common::{admin, admin_json};

fn contains(file: &std::path::Path, marker: &str) -> bool {
    let raw = std::fs::read(file).unwrap();
    raw.windows(marker.len()).any(|w| w == marker.as_bytes())
}

/// A new, empty data directory holding only a copy of `from`'s master key.
fn empty_dir_with_key(from: &std::path::Path) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::copy(from.join("master.key"), d.path().join("master.key")).unwrap();
    d
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_erased_after_a_backup_is_gone_from_its_restore_in_the_api_and_the_raw_file() {
    let n = TestNode::start().await;
    let c = n.client();
    let gone = c.user("zhangmarker7", &phone(1)).await;
    let stays = c.user("listays", &phone(2)).await;
    let r = c
        .call(
            "PUT",
            "/api/v1/me/consents/photos",
            Some(&stays),
            Some(&json!({"granted": true})),
        )
        .await;
    assert_eq!(r.status.as_u16(), 200);
    let dm = c.direct(&stays, "zhangmarker7@localhost").await;
    c.say(&gone, &dm, "1", "from the erased one").await;
    c.say(&stays, &dm, "2", "from the one who stays").await;
    let dir = n.dir.path();
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("node.backup");

    // Taken while the node serves, through its socket.
    let (code, text, err) = admin(dir, &["backup", "--out", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("node running"), "{err}");
    assert!(text.contains("verified"), "{text}");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert!(!contains(&file, "zhangmarker7"), "the archive is encrypted");
    let v = admin_json(dir, &["backup", "verify", file.to_str().unwrap()]);
    assert_eq!(v["kind"], "backup");
    assert_eq!(v["domain"], "localhost");
    let tables = v["tables"].as_array().unwrap();
    for t in [
        "userid_account",
        "userid_purpose_consent",
        "userid_policyseq_accepted",
        "seq_auditentry",
        "userid_legalhold",
    ] {
        assert!(tables.iter().any(|x| x["table"] == t), "{t} missing: {v}");
    }

    // After the backup: the user is erased, and the node's erasure records are saved.
    let (code, _, err) = admin(
        dir,
        &[
            "users",
            "erase",
            "zhangmarker7",
            "--reason",
            "asked by letter",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let ledger = out.path().join("erasures.ledger");
    admin_json(
        dir,
        &["backup", "ledger", "--out", ledger.to_str().unwrap()],
    );

    // Restored without the ledger, the erased user would come back (the test's control).
    let control = empty_dir_with_key(dir);
    let (code, _, err) = admin(
        control.path(),
        &["restore", file.to_str().unwrap(), "--no-later-erasures"],
    );
    assert_eq!(code, 0, "{err}");
    // Handles are sealed (never in the raw file), so the tool is asked who is there.
    let (code, _, err) = admin(control.path(), &["users", "show", "zhangmarker7"]);
    assert_eq!(code, 0, "the control restore has the user back: {err}");

    // Restored with it, nothing of them is in the file or the API.
    let target = empty_dir_with_key(dir);
    let restored = admin_json(
        target.path(),
        &[
            "restore",
            file.to_str().unwrap(),
            "--erasures",
            ledger.to_str().unwrap(),
        ],
    );
    assert_eq!(restored["erasures_reapplied"], 1, "{restored}");
    let db = target.path().join("node.redb");
    assert!(
        !contains(&db, "zhangmarker7"),
        "erased handle in the raw file"
    );
    let (code, _, err) = admin(target.path(), &["users", "show", "listays"]);
    assert_eq!(code, 0, "the other user is there: {err}");
    let (code, _, _) = admin(target.path(), &["users", "show", "zhangmarker7"]);
    assert_ne!(code, 0, "the erased user is not");
    assert!(!target.path().join(".restoring").exists());

    let config = test_config(target.path(), "");
    let back = TestNode::start_in(target, config, Arc::new(node::SystemClock)).await;
    let c2 = back.client();
    // The session, the consent and the conversation came back; the erased user did not.
    assert_eq!(
        c2.visible_texts(&stays, &dm).await,
        ["from the one who stays"]
    );
    assert_eq!(
        c2.get("/api/v1/users/zhangmarker7@localhost", Some(&stays))
            .await
            .status
            .as_u16(),
        404
    );
    let consents = c2.get("/api/v1/me/consents", Some(&stays)).await.json();
    assert!(consents.to_string().contains("photos"), "{consents}");
    let status = admin_json(
        back.dir.path(),
        &["users", "erasure-status", "zhangmarker7"],
    );
    assert_eq!(status["phase"], "done", "{status}");
    let audit = admin_json(back.dir.path(), &["audit", "verify"]);
    assert_eq!(audit["intact"], true);
    let log = admin_json(back.dir.path(), &["audit", "list"]);
    let actions = log.to_string();
    assert!(
        actions.contains("admin.backup") && actions.contains("admin.restore"),
        "{actions}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_backup_fails_verification_and_restore_refuses_it_and_a_used_directory() {
    let mut n = TestNode::start().await;
    n.client().user("someone", &phone(1)).await;
    n.stop().await;
    let dir = n.dir.path();
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("b");
    // With the node stopped, the tool reads the database file itself.
    let (code, _, err) = admin(dir, &["backup", "--out", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("node stopped"), "{err}");
    let (code, _, err) = admin(dir, &["backup", "--out", file.to_str().unwrap()]);
    assert_eq!(code, 2, "an existing file is not overwritten: {err}");

    let mut bytes = std::fs::read(&file).unwrap();
    let at = bytes.len() - 20;
    bytes[at] ^= 0x40;
    let bad = out.path().join("bad");
    std::fs::write(&bad, &bytes).unwrap();
    let (code, _, err) = admin(dir, &["backup", "verify", bad.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("not a complete shanliao backup"), "{err}");
    let short = out.path().join("short");
    std::fs::write(&short, &bytes[..bytes.len() / 2]).unwrap();
    let (code, _, _) = admin(dir, &["backup", "verify", short.to_str().unwrap()]);
    assert_eq!(code, 1);

    let target = empty_dir_with_key(dir);
    let (code, _, err) = admin(
        target.path(),
        &["restore", bad.to_str().unwrap(), "--no-later-erasures"],
    );
    assert_eq!(code, 1, "{err}");
    assert!(!target.path().join("node.redb").exists(), "nothing written");
    let (code, _, err) = admin(target.path(), &["restore", file.to_str().unwrap()]);
    assert_eq!(code, 2, "the later erasures must be named: {err}");
    // Into the node's own (used) directory: refused.
    let (code, _, err) = admin(
        dir,
        &["restore", file.to_str().unwrap(), "--no-later-erasures"],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not empty"), "{err}");
    // Under another master key: refused as damaged.
    let other = tempfile::tempdir().unwrap();
    let (code, _, err) = admin(
        other.path(),
        &["restore", file.to_str().unwrap(), "--no-later-erasures"],
    );
    assert_eq!(code, 2, "no key file: {err}");
}

/// The members of conversation `conv` as `token`'s user sees them.
async fn members(c: &tests::Client, token: &str, conv: &str) -> Vec<String> {
    let v = c
        .get(&format!("/api/v1/conversations/{conv}"), Some(token))
        .await
        .json();
    v["members"]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"))
        .iter()
        .map(|m| m["user"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// `node-admin restore` of `file` (a backup of node `a.test`) into a new directory holding
/// `from`'s master key, with `later` (`--erasures FILE` or `--no-later-erasures`); then the
/// restored node started (no peers): its result and the node.
async fn restore_a_test(
    from: &std::path::Path,
    file: &std::path::Path,
    later: &[&str],
) -> (serde_json::Value, TestNode) {
    let target = empty_dir_with_key(from);
    let text = format!(
        "[server]\ndomain = \"a.test\"\nlisten = \"127.0.0.1:0\"\n[storage]\ndata_dir = \"{}\"\n",
        target.path().display()
    );
    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg = cfg_dir.path().join("node.toml");
    std::fs::write(&cfg, &text).unwrap();
    let mut args = vec![
        "--config",
        cfg.to_str().unwrap(),
        "restore",
        file.to_str().unwrap(),
    ];
    args.extend_from_slice(later);
    let restored = admin_json(target.path(), &args);
    let config = node::Config::parse(&text, "restored").unwrap();
    let node = TestNode::start_in(target, config, Arc::new(node::SystemClock)).await;
    (restored, node)
}

// Issue 24: a restore never brings back a remote user whose node asked this one to erase them
// after the backup was taken — the ledger carries that erasure as an id only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_user_erased_at_their_nodes_request_after_a_backup_stays_erased_in_its_restore() {
    let nodes = tests::federation(&[("a.test", "CN"), ("b.test", "CN")], "").await;
    let (a, b) = (nodes[0].client(), nodes[1].client());
    let ann = a.user("ann", &phone(1)).await;
    let bob = b.user("bob", &phone(2)).await;
    let dm = a.direct(&ann, "bob@b.test").await;
    a.say(&ann, &dm, "t1", "from ann").await;
    tests::eventually(20, "ann's message reaches b.test", || async {
        (b.visible_texts(&bob, &dm).await == ["from ann"]).then_some(())
    })
    .await;
    let r = b
        .call(
            "POST",
            &format!("/api/v1/conversations/{dm}/messages"),
            Some(&bob),
            Some(&json!({"txn_id": "r1", "body": {"type": "text", "text": "from bob"}})),
        )
        .await;
    assert_eq!(r.status.as_u16(), 202, "queued for the host");
    tests::eventually(20, "bob's message reaches a.test", || async {
        (a.visible_texts(&ann, &dm).await == ["from ann", "from bob"]).then_some(())
    })
    .await;
    let (a_dir, b_dir) = (nodes[0].dir.path(), nodes[1].dir.path());
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("a.backup");
    admin_json(a_dir, &["backup", "--out", file.to_str().unwrap()]);

    // bob's account is erased on b.test, which asks a.test to erase what it holds of him.
    admin_json(
        b_dir,
        &["users", "erase", "bob", "--reason", "asked by letter"],
    );
    tests::eventually(20, "a.test erases bob's messages", || async {
        (a.visible_texts(&ann, &dm).await == ["from ann"]).then_some(())
    })
    .await;
    let ledger = out.path().join("a.ledger");
    admin_json(
        a_dir,
        &["backup", "ledger", "--out", ledger.to_str().unwrap()],
    );

    // The control: without the ledger, bob's message comes back with the backup.
    let (control, old) = restore_a_test(a_dir, &file, &["--no-later-erasures"]).await;
    assert_eq!(control["remote_erasures_reapplied"], 0, "{control}");
    assert_eq!(
        old.client().visible_texts(&ann, &dm).await,
        ["from ann", "from bob"]
    );

    let (restored, back) =
        restore_a_test(a_dir, &file, &["--erasures", ledger.to_str().unwrap()]).await;
    assert_eq!(restored["remote_erasures_reapplied"], 1, "{restored}");
    let c = back.client();
    assert_eq!(c.visible_texts(&ann, &dm).await, ["from ann"]);
    assert!(
        members(&old.client(), &ann, &dm)
            .await
            .contains(&"bob@b.test".to_string()),
        "the control has bob as a member"
    );
    assert_eq!(
        members(&c, &ann, &dm).await,
        ["ann@a.test"],
        "bob is no member any more"
    );
    let log = admin_json(back.dir.path(), &["audit", "list"]).to_string();
    assert!(log.contains("1 of remote users"), "{log}");
}
