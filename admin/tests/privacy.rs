//! The privacy-centre commands of `node-admin` on real nodes: policy publication, incident
//! notices, minors, and a user's export — each through the running node's socket and on a
//! stopped node's files, with good and bad input.

use std::os::unix::fs::PermissionsExt;

use serde_json::{Value, json};
use tests::{Client, TestNode, phone};

mod common;
use common::admin;

fn ok_json(dir: &std::path::Path, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let (code, out, err) = admin(dir, &all);
    assert_eq!(code, 0, "{args:?}: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// `node-admin users export ADDRESS --out FILE`: (exit code, stdout, stderr).
fn export(dir: &std::path::Path, address: &str, out: &std::path::Path) -> (i32, String, String) {
    admin(
        dir,
        &["users", "export", address, "--out", out.to_str().unwrap()],
    )
}

async fn notices(c: &Client, token: &str) -> Vec<Value> {
    c.get("/api/v1/me/notices", Some(token)).await.json()["notices"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_publish_announces_a_version_to_every_user_and_refuses_bad_input() {
    let mut n = TestNode::start().await;
    let c = n.client();
    let alice = c.user("alice", &phone(1)).await;
    let bob = c.user("bob", &phone(2)).await;
    let files = tempfile::tempdir().unwrap();
    let zh = files.path().join("zh.md");
    let en = files.path().join("en.md");
    std::fs::write(&zh, "新版隐私政策").unwrap();
    std::fs::write(&en, "The new privacy policy").unwrap();
    let dir_buf = n.dir.path().to_path_buf();
    let dir = dir_buf.as_path();
    let zh_arg = zh.to_str().unwrap();

    for (args, needle) in [
        (
            vec![
                "policy",
                "publish",
                zh_arg,
                "--version",
                "v2",
                "--effective",
                "2099-13-01",
            ],
            "--effective",
        ),
        (
            vec![
                "policy",
                "publish",
                zh_arg,
                "--version",
                "v2",
                "--effective",
                "2000-01-01",
            ],
            "effective",
        ),
        (
            vec![
                "policy",
                "publish",
                zh_arg,
                "--version",
                "bad name",
                "--effective",
                "2099-01-01",
            ],
            "version",
        ),
        (
            vec![
                "policy",
                "publish",
                "/nonexistent/zh.md",
                "--version",
                "v2",
                "--effective",
                "2099-01-01",
            ],
            "FILE",
        ),
    ] {
        let (code, _, err) = admin(dir, &args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        let errors = err.lines().filter(|l| !l.contains("node running")).count();
        assert_eq!(errors, 1, "one clear line: {err}");
    }
    assert!(
        notices(&c, &alice)
            .await
            .iter()
            .all(|n| n["kind"] != "policy")
    );

    let r = ok_json(
        dir,
        &[
            "policy",
            "publish",
            zh_arg,
            "--version",
            "v2",
            "--effective",
            "2099-01-01",
            "--narrows-rights",
            "--en",
            en.to_str().unwrap(),
        ],
    );
    assert_eq!(r["notified"], 2);
    assert_eq!(r["narrows_rights"], true);
    for t in [&alice, &bob] {
        let policy: Vec<_> = notices(&c, t)
            .await
            .into_iter()
            .filter(|n| n["kind"] == "policy")
            .collect();
        assert_eq!(policy.len(), 1);
        // Worded in Chinese without `lang` or `Accept-Language`; the code says it narrows.
        assert_eq!(policy[0]["code"], "policy.published_narrowing");
        assert!(
            policy[0]["text"]
                .as_str()
                .unwrap()
                .contains("缩小了你的权利")
        );
    }
    let v2 = c
        .get("/api/v1/policy/versions/v2?lang=en", None)
        .await
        .json();
    assert_eq!(v2["text"], "The new privacy policy");
    assert_eq!(v2["status"], "upcoming");
    let (code, _, err) = admin(
        dir,
        &[
            "policy",
            "publish",
            zh_arg,
            "--version",
            "v2",
            "--effective",
            "2099-02-01",
        ],
    );
    assert_eq!(code, 2, "the same version twice: {err}");

    // With the node stopped the tool publishes on its files; the node sees it on start.
    n.stop().await;
    let r = ok_json(
        dir,
        &[
            "policy",
            "publish",
            zh_arg,
            "--version",
            "v3",
            "--effective",
            "2099-03-01",
        ],
    );
    assert_eq!(r["notified"], 2);
    let list = ok_json(dir, &["policy", "list"]);
    let names: Vec<_> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].clone())
        .collect();
    assert_eq!(names, [json!(tests::POLICY), json!("v2"), json!("v3")]);
    n.restart().await;
    let c = n.client();
    let versions = c.get("/api/v1/policy/versions", None).await.json();
    assert_eq!(versions["versions"].as_array().unwrap().len(), 3);
    let audit = ok_json(n.dir.path(), &["audit", "list"]);
    let published = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "policy.publish")
        .count();
    assert_eq!(published, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incident_notices_reach_the_affected_users_are_audited_and_a_bad_list_notifies_no_one() {
    let n = TestNode::start().await;
    let c = n.client();
    let alice = c.user("alice", &phone(1)).await;
    let bob = c.user("bob", &phone(2)).await;
    let carol = c.user("carol", &phone(3)).await;
    let files = tempfile::tempdir().unwrap();
    let body = files.path().join("body.txt");
    std::fs::write(
        &body,
        "We found unauthorised access to a backup; change your password.",
    )
    .unwrap();
    let dir = n.dir.path();
    let body_arg = body.to_str().unwrap();
    let incidents = |c: Client, t: String| async move {
        notices(&c, &t)
            .await
            .into_iter()
            .filter(|n| n["kind"] == "incident")
            .count()
    };

    let list = files.path().join("users.txt");
    let notify_listed = [
        "incident",
        "notify",
        "--title",
        "Backup breach",
        "--body",
        body_arg,
        "--users",
        list.to_str().unwrap(),
    ];
    std::fs::write(&list, "# affected\nalice@localhost\n\nnobody@localhost\n").unwrap();
    let (code, _, err) = admin(dir, &notify_listed);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("line 4"), "names the line: {err}");
    assert_eq!(
        incidents(c.clone(), alice.clone()).await,
        0,
        "nobody notified"
    );
    let (code, _, err) = admin(
        dir,
        &["incident", "notify", "--title", "T", "--body", body_arg],
    );
    assert_ne!(code, 0, "--all or --users is required: {err}");

    std::fs::write(&list, "alice@localhost\nbob\n").unwrap();
    let r = ok_json(dir, &notify_listed);
    assert_eq!(r["notified"], 2);
    assert_eq!(incidents(c.clone(), alice.clone()).await, 1);
    assert_eq!(incidents(c.clone(), bob.clone()).await, 1);
    assert_eq!(incidents(c.clone(), carol.clone()).await, 0);
    let n_alice = notices(&c, &alice).await;
    let notice = n_alice.iter().find(|n| n["kind"] == "incident").unwrap();
    assert_eq!(notice["title"], "Backup breach");
    assert!(
        notice["text"]
            .as_str()
            .unwrap()
            .contains("unauthorised access")
    );

    let r = ok_json(
        dir,
        &[
            "incident", "notify", "--title", "Everyone", "--body", body_arg, "--all",
        ],
    );
    assert_eq!(r["notified"], 3);
    assert_eq!(incidents(c.clone(), carol).await, 1);
    let audit = ok_json(dir, &["audit", "list"]);
    let recorded: Vec<_> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "incident.notify")
        .map(|e| e["detail"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(recorded.len(), 2, "{recorded:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minors_list_finds_optional_data_without_guardian_consent_and_purge_erases_it() {
    let n = TestNode::start().await;
    let c = n.client();
    let kid = c.user("kid", &phone(1)).await;
    let covered = c.user("covered", &phone(2)).await;
    let adult = c.user("adult", &phone(3)).await;
    // Granted before the birthday was known: data collected without a guardian.
    for t in [&kid, &covered, &adult] {
        assert_eq!(c.consent(t, "photos", true).await.status.as_u16(), 200);
        assert_eq!(c.consent(t, "real_name", true).await.status.as_u16(), 200);
        c.call(
            "POST",
            "/api/v1/me/real-name",
            Some(t),
            Some(&json!({"name": "某人", "id_number": "11010519491231002X"})),
        )
        .await;
    }
    let birthday = |b: &str| json!({"birthday": {"value": b}, "bio": {"value": "likes games"}});
    for (t, b) in [
        (&kid, "2015-01-01"),
        (&covered, "2015-01-01"),
        (&adult, "1990-01-01"),
    ] {
        c.call("PATCH", "/api/v1/me", Some(t), Some(&birthday(b)))
            .await;
    }
    let r = c
        .call(
            "POST",
            "/api/v1/me/guardian-consent",
            Some(&covered),
            Some(
                &json!({"guardian_name": "Mum", "guardian_contact": "mum@example.org",
                         "purposes": ["photos", "real_name"]}),
            ),
        )
        .await;
    assert_eq!(r.status.as_u16(), 201);

    let dir = n.dir.path();
    let found = ok_json(dir, &["minors", "list"]);
    assert_eq!(
        found,
        json!([{"address": "kid@localhost", "purposes": ["photos", "real_name"], "fields": ["bio"]}])
    );
    let (code, table, _) = admin(dir, &["minors", "list"]);
    assert_eq!(code, 0);
    assert!(table.contains("kid@localhost"), "{table}");

    let purged = ok_json(dir, &["minors", "purge"]);
    assert_eq!(purged["purged"][0]["address"], "kid@localhost");
    assert_eq!(ok_json(dir, &["minors", "list"]), json!([]));
    // The kid's optional data is gone, the birthday (which makes them a minor) stays; the
    // covered minor and the adult keep theirs.
    let me = c.get("/api/v1/me", Some(&kid)).await.json();
    assert!(
        me.to_string().contains("2015-01-01") && !me.to_string().contains("likes games"),
        "{me}"
    );
    assert_eq!(
        c.get("/api/v1/me/real-name", Some(&kid))
            .await
            .status
            .as_u16(),
        404
    );
    let consents = c.get("/api/v1/me/consents", Some(&kid)).await.json();
    assert!(
        consents["consents"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["granted"] == false)
    );
    for t in [&covered, &adult] {
        assert_eq!(
            c.get("/api/v1/me/real-name", Some(t)).await.status.as_u16(),
            200
        );
    }
    let audit = ok_json(dir, &["audit", "list"]);
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "minors.purge")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_export_writes_a_private_complete_archive_in_both_modes_and_never_a_partial_one() {
    let mut n = TestNode::start().await;
    let c = n.client();
    let alice = c.user("alice", &phone(1)).await;
    c.register("bob", &phone(2)).await;
    let conv = c.direct(&alice, "bob@localhost").await;
    c.say(&alice, &conv, "1", "note to self").await;
    let out_dir = tempfile::tempdir().unwrap();
    let dir = n.dir.path().to_path_buf();
    let check = |path: &std::path::Path| {
        let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "personal data: owner only");
        let v: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        assert_eq!(v["complete"], true);
        assert_eq!(v["account"]["phone"], phone(1));
        assert_eq!(
            v["conversations"][0]["messages"][0]["body"]["text"],
            "note to self"
        );
    };

    let running = out_dir.path().join("running.json");
    let (code, out, err) = export(&dir, "alice", &running);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("wrote"), "{out}");
    check(&running);
    let (code, _, err) = export(&dir, "alice", &running);
    assert_eq!(code, 2, "an existing file is never overwritten: {err}");
    let missing = out_dir.path().join("missing.json");
    let (code, _, err) = export(&dir, "nobody", &missing);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("nobody"), "{err}");
    assert_eq!(
        std::fs::read_dir(out_dir.path()).unwrap().count(),
        1,
        "no partial file left"
    );

    n.stop().await;
    let stopped = out_dir.path().join("stopped.json");
    let (code, _, err) = export(&dir, "alice@localhost", &stopped);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("node stopped"), "{err}");
    check(&stopped);
    let audit = ok_json(&dir, &["audit", "list"]);
    let exports = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "export" && e["actor"] == "admin")
        .count();
    assert_eq!(exports, 2, "each admin export is audited");
}
