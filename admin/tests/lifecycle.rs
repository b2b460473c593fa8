//! node-admin on real nodes: erasure with its proof, legal holds, retention on a controlled
//! clock, and the two modes (socket, offline) giving the same answers.

use std::sync::Arc;

use node::{ManualClock, Millis};
use serde_json::{Value, json};
use tests::{TestNode, eventually, federation, now_ms, phone};

mod common;
use common::{admin, admin_json};

// Multi-threaded: the nodes in this process answer the tool while the test waits for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erased_user_leaves_no_marker_in_the_database_nothing_in_any_api_and_peers_acknowledge()
{
    // The handle is a marker too: it must not survive anywhere in the data directory, not
    // even in a page redb freed (it does not zero them).
    let nodes = federation(&[("a.test", "CN"), ("b.test", "CN")], "").await;
    let (a, b) = (nodes[0].client(), nodes[1].client());
    let marker_phone = "+8613912345678";
    let alice = a.user("markalice7319", marker_phone).await;
    let carol = a.user("carol", &phone(2)).await;
    let bob = b.user("bob", &phone(3)).await;
    let r = a
        .call(
            "PATCH",
            "/api/v1/me",
            Some(&alice),
            Some(&json!({"nickname": "MarkerNick7731", "bio": {"value": "MarkerBio9917", "visibility": "public"}})),
        )
        .await;
    assert_eq!(r.status.as_u16(), 200);
    let dm = a.direct(&alice, "bob@b.test").await;
    a.say(&alice, &dm, "1", "MarkerDirect5521").await;
    let group = a
        .call(
            "POST",
            "/api/v1/conversations",
            Some(&alice),
            Some(&json!({"kind": "group", "name": "g", "members": ["carol@a.test"]})),
        )
        .await
        .json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    a.say(&alice, &group, "2", "MarkerGroup4410").await;
    a.say(&carol, &group, "3", "carol stays").await;
    let media = a
        .raw(
            "POST",
            "/api/v1/media",
            Some(&alice),
            "application/octet-stream",
            b"MarkerMedia3391".repeat(100),
        )
        .await;
    assert_eq!(media.status.as_u16(), 201);
    eventually(10, "bob has the message", || async {
        (b.visible_texts(&bob, &dm).await == ["MarkerDirect5521"]).then_some(())
    })
    .await;

    let dir = nodes[0].dir.path();
    // An audited read names her by her pseudonym.
    admin_json(dir, &["users", "show", "markalice7319@a.test"]);
    let shown = admin_json(dir, &["audit", "list"]);
    let her = shown
        .as_array()
        .unwrap()
        .iter()
        .rfind(|e| e["action"] == "admin.users.show")
        .unwrap()["target"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(her.starts_with("u:") && her != "u:erased", "{her}");
    let (code, out, err) = admin(
        dir,
        &[
            "users",
            "erase",
            "markalice7319@a.test",
            "--reason",
            "asked by letter",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("done"), "{out}");

    // (a) No marker in any file of the data directory (raw bytes, freed pages included).
    let digits = &marker_phone[1..];
    let markers = [
        "markalice7319",
        digits,
        "MarkerNick7731",
        "MarkerBio9917",
        "MarkerDirect5521",
        "MarkerGroup4410",
        "MarkerMedia3391",
    ];
    assert_no_marker(dir, &markers, "right after the erasure");
    // (b) Nothing of hers through any API of another user, on either node.
    assert_eq!(a.visible_texts(&carol, &group).await, ["carol stays"]);
    let members = a
        .get(&format!("/api/v1/conversations/{group}"), Some(&carol))
        .await
        .json();
    assert!(!members.to_string().contains("markalice7319"), "{members}");
    assert_eq!(
        a.get("/api/v1/users/markalice7319@a.test", Some(&carol))
            .await
            .status
            .as_u16(),
        404
    );
    eventually(10, "bob's copy emptied", || async {
        b.visible_texts(&bob, &dm).await.is_empty().then_some(())
    })
    .await;
    // (c) The peer acknowledged.
    eventually(10, "b.test acknowledged", || async {
        let s = admin_json(dir, &["users", "erasure-status", "markalice7319@a.test"]);
        (s["phase"] == "done" && s["peers"] == json!([{"peer": "b.test", "acknowledged": true}]))
            .then_some(())
    })
    .await;
    let log = admin_json(dir, &["audit", "list"]);
    let actions: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"erasure.request") && actions.contains(&"erasure.done"),
        "{actions:?}"
    );
    // Her pseudonym key went with her: what was logged before stays (and verifies), what is
    // logged about her since cannot be joined to it.
    let status_reads: Vec<&Value> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "admin.users.erasure_status")
        .collect();
    assert!(!status_reads.is_empty());
    assert!(
        status_reads.iter().all(|e| e["target"] == "u:erased"),
        "{status_reads:?}"
    );
    assert!(log.to_string().contains(&her), "earlier entries are kept");
    assert_eq!(admin_json(dir, &["audit", "verify"])["intact"], true);

    // (d) More writes by others reuse freed pages: still nothing of hers appears.
    let dave = a.user("dave", &phone(4)).await;
    let with_dave = a.direct(&carol, "dave@a.test").await;
    for i in 0..40 {
        a.say(
            &carol,
            &with_dave,
            &format!("more{i}"),
            &"carol writes on ".repeat(20),
        )
        .await;
    }
    let r = a
        .call(
            "PATCH",
            "/api/v1/me",
            Some(&dave),
            Some(&json!({"nickname": "Dave", "bio": {"value": "x".repeat(400), "visibility": "public"}})),
        )
        .await;
    assert_eq!(r.status.as_u16(), 200);
    admin_json(dir, &["retention", "run"]);
    assert_no_marker(dir, &markers, "after more writes");
}

/// Panics if any file under `dir` holds any of `markers` as raw bytes.
fn assert_no_marker(dir: &std::path::Path, markers: &[&str], when: &str) {
    let mut files = vec![dir.to_path_buf()];
    let mut scanned = 0;
    while let Some(p) = files.pop() {
        if p.is_dir() {
            for e in std::fs::read_dir(&p).unwrap() {
                files.push(e.unwrap().path());
            }
            continue;
        }
        // The admin socket is not a file with contents.
        let Ok(raw) = std::fs::read(&p) else { continue };
        scanned += 1;
        for m in markers {
            assert!(
                !raw.windows(m.len()).any(|w| w == m.as_bytes()),
                "{m} is still in {} {when}",
                p.display()
            );
        }
    }
    assert!(scanned >= 2, "the database and the key file at least");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resent_txn_id_is_recognised_within_its_window_and_forgotten_after_it() {
    let clock = Arc::new(ManualClock::new(Millis(now_ms())));
    let n = TestNode::start_manual("[retention]\ntxn_ids_days = 1\n", clock.clone()).await;
    let c = n.client();
    let ann = c.user("ann", &phone(1)).await;
    c.user("bob", &phone(2)).await;
    let conv = c.direct(&ann, "bob@localhost").await;
    let first = c.say(&ann, &conv, "t1", "hello").await;
    let dir = n.dir.path().to_path_buf();

    clock.advance_ms(23 * 3_600_000);
    assert_eq!(
        c.say(&ann, &conv, "t1", "hello").await["seq"],
        first["seq"],
        "a resend within the window is the same message"
    );
    let early = admin_json(&dir, &["retention", "run"]);
    assert_eq!(early["removed"]["txn_ids"], 0, "{early}");

    clock.advance_ms(2 * 3_600_000);
    let dry = admin_json(&dir, &["retention", "run", "--dry-run"]);
    assert_eq!(dry["removed"]["txn_ids"], 1, "{dry}");
    let run = admin_json(&dir, &["retention", "run"]);
    assert_eq!(run["removed"]["txn_ids"], 1, "{run}");
    let again = c.say(&ann, &conv, "t1", "hello").await;
    assert_ne!(
        again["seq"], first["seq"],
        "the forgotten id stores a new message"
    );
    assert_eq!(c.visible_texts(&ann, &conv).await, ["hello", "hello"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_removes_what_is_past_its_time_spares_held_users_and_dry_run_changes_nothing() {
    let clock = Arc::new(ManualClock::new(Millis(now_ms())));
    let retention = "[retention]\nmessages_max_days = 30\nsessions_inactive_days = 10\n\
         security_logs_min_days = 183\nsecurity_logs_max_days = 200\ninterval_secs = 86400\n";
    let mut n = TestNode::start_manual(retention, clock.clone()).await;
    let c = n.client();
    let held = c.user("held", &phone(1)).await;
    let free = c.user("free", &phone(2)).await;
    let other = c.user("other", &phone(3)).await;
    // A conversation with a held member is kept whole: it is the held user's record too.
    let conv = c.direct(&held, "free@localhost").await;
    c.say(&held, &conv, "h", "kept by the hold").await;
    c.say(&free, &conv, "f", "kept too").await;
    let plain = c.direct(&free, "other@localhost").await;
    c.say(&free, &plain, "p", "past its time").await;
    c.say(&other, &plain, "o", "also past its time").await;
    let dir = n.dir.path().to_path_buf();
    admin_json(
        &dir,
        &["legal-hold", "set", "held@localhost", "--basis", "case 12"],
    );

    // Ten days on: nothing is older than 30 days, so no message goes; no session is idle 10.
    clock.advance_ms(9 * 86_400_000);
    let none = admin_json(&dir, &["retention", "run", "--dry-run"]);
    assert_eq!(none["removed"]["messages"], 0, "{none}");
    assert_eq!(none["removed"]["sessions"], 0);

    clock.advance_ms(22 * 86_400_000);
    let dry = admin_json(&dir, &["retention", "run", "--dry-run"]);
    assert_eq!(dry["removed"]["messages"], 2, "{dry}");
    assert_eq!(
        dry["removed"]["sessions"], 2,
        "the held user's session is spared"
    );
    assert_eq!(
        c.visible_texts(&held, &conv).await.len(),
        2,
        "a dry run changes nothing"
    );
    let run = admin_json(&dir, &["retention", "run"]);
    assert_eq!(run["removed"], dry["removed"], "{run}");
    assert_eq!(
        c.visible_texts(&held, &conv).await,
        ["kept by the hold", "kept too"]
    );
    assert_eq!(
        c.get("/api/v1/me", Some(&free)).await.status.as_u16(),
        401,
        "idle session ended"
    );
    let other = c.login("other").await.0;
    assert!(
        c.visible_texts(&other, &plain).await.is_empty(),
        "past their time"
    );

    // The held user cannot be erased while held; clearing the hold lets it proceed.
    let s = admin_json(
        &dir,
        &["users", "erase", "held@localhost", "--reason", "test"],
    );
    assert_eq!(
        (s["phase"].as_str(), s["legal_hold"].as_bool()),
        (Some("scheduled"), Some(true))
    );
    assert_eq!(c.get("/api/v1/me", Some(&held)).await.status.as_u16(), 200);
    let me = c.get("/api/v1/me", Some(&held)).await.body;
    assert!(
        !String::from_utf8_lossy(&me).contains("hold"),
        "the user is not told"
    );
    admin_json(&dir, &["legal-hold", "clear", "held@localhost"]);
    let s = admin_json(&dir, &["users", "erasure-status", "held@localhost"]);
    assert_eq!(s["phase"], "done", "{s}");
    admin_json(&dir, &["legal-hold", "list"]);
    let log = admin_json(&dir, &["audit", "list"]).to_string();
    for read in [
        "admin.users.erasure_status",
        "admin.legal_hold.list",
        "admin.audit.list",
    ] {
        assert!(log.contains(read), "every admin read is audited: {read}");
    }

    // Security logs: younger than the maximum stay; older go, and the rest still verifies.
    let before = admin_json(&dir, &["audit", "list"])
        .as_array()
        .unwrap()
        .len();
    clock.advance_ms(201 * 86_400_000);
    let run = admin_json(&dir, &["retention", "run"]);
    assert!(
        run["removed"]["security_logs"].as_u64().unwrap() > 0,
        "{run}"
    );
    let after = admin_json(&dir, &["audit", "list"])
        .as_array()
        .unwrap()
        .len();
    assert!(after < before + 2, "{before} → {after}");
    assert_eq!(admin_json(&dir, &["audit", "verify"])["intact"], true);

    // The same questions offline (with the node's configuration) give the same answers.
    let online = admin_json(&dir, &["users", "list"]);
    let schedule = admin_json(&dir, &["retention", "show"]);
    n.stop().await;
    let config = dir.join("node.toml");
    std::fs::write(
        &config,
        format!("[storage]\ndata_dir = \"{}\"\n{retention}", dir.display()),
    )
    .unwrap();
    let config = config.to_str().unwrap();
    assert_eq!(
        admin_json(&dir, &["--config", config, "users", "list"]),
        online
    );
    assert_eq!(
        admin_json(&dir, &["--config", config, "retention", "show"]),
        schedule
    );
    assert_eq!(schedule["categories"][0]["max_days"], 30);
    let (code, _, err) = admin(&dir, &["users", "show", "nobody@localhost"]);
    assert_eq!(code, 2);
    assert_eq!(
        err.lines().count(),
        2,
        "the mode, then one clear line: {err}"
    );
    assert!(
        err.lines()
            .nth(1)
            .unwrap()
            .contains("no user nobody@localhost"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_show_masks_the_phone_and_is_audited() {
    let n = TestNode::start().await;
    let c = n.client();
    c.user("shown", "+8613812340000").await;
    let v = admin_json(n.dir.path(), &["users", "show", "shown@localhost"]);
    assert_eq!(v["phone"], "+86 138****0000");
    let (code, out, _) = admin(n.dir.path(), &["users", "list"]);
    assert_eq!(code, 0);
    assert!(
        out.starts_with("ADDRESS") && out.contains("shown@localhost"),
        "{out}"
    );
    let log = admin_json(n.dir.path(), &["audit", "list"]);
    assert!(log.to_string().contains("admin.users.show"), "{log}");
    assert!(!log.to_string().contains("13812340000"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_users_request_reaches_the_admin_and_the_answer_comes_back_as_a_notice() {
    let n = TestNode::start().await;
    let c = n.client();
    let t = c.user("asker", &phone(1)).await;
    let file = |kind: &str, text: &str| json!({"kind": kind, "text": text});
    let r = c
        .call(
            "POST",
            "/api/v1/me/requests",
            Some(&t),
            Some(&file("wish", "x")),
        )
        .await;
    assert_eq!(r.status.as_u16(), 422, "unknown kind");
    let r = c
        .call(
            "POST",
            "/api/v1/me/requests",
            Some(&t),
            Some(&file("access", "  ")),
        )
        .await;
    assert_eq!(r.status.as_u16(), 422, "empty text");
    let r = c
        .call(
            "POST",
            "/api/v1/me/requests",
            Some(&t),
            Some(&file(
                "correction",
                "MarkerRequest8812: my nickname is wrong",
            )),
        )
        .await;
    assert_eq!(r.status.as_u16(), 201);
    let id = r.json()["id"].as_u64().unwrap();
    let mine = c.get("/api/v1/me/requests", Some(&t)).await.json();
    assert_eq!(mine["requests"][0]["status"], "open");
    let raw = std::fs::read(n.db_path()).unwrap();
    assert!(
        !raw.windows(17).any(|w| w == b"MarkerRequest8812"),
        "sealed at rest"
    );

    let dir = n.dir.path();
    let list = admin_json(dir, &["requests", "list"]);
    assert_eq!(list[0]["user"], "asker@localhost");
    assert!(list[0].get("text").is_none(), "the list has no texts");
    let shown = admin_json(dir, &["requests", "show", &id.to_string()]);
    assert!(
        shown["text"]
            .as_str()
            .unwrap()
            .starts_with("MarkerRequest8812")
    );
    let mut ws = c.ws(Some(&t), None).await;
    admin_json(
        dir,
        &["requests", "resolve", &id.to_string(), "--answer", "Fixed."],
    );
    let notice = loop {
        let e = tests::next_of(&mut ws, "notice").await;
        if e["kind"] == "request" {
            break e;
        }
    };
    assert_eq!(notice["code"], "request.answered", "{notice}");
    assert_eq!(
        notice["params"],
        serde_json::json!({"request": id.to_string()})
    );
    assert!(
        notice["text"].as_str().unwrap().contains(&format!("#{id}")),
        "{notice}"
    );
    assert!(
        !notice.to_string().contains("Fixed."),
        "the notice carries no text"
    );
    let mine = c.get("/api/v1/me/requests", Some(&t)).await.json();
    assert_eq!(mine["requests"][0]["status"], "answered");
    assert_eq!(mine["requests"][0]["answer"], "Fixed.");
    let (code, _, err) = admin(
        dir,
        &["requests", "resolve", &id.to_string(), "--answer", "again"],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("answered already"), "{err}");
    let (code, _, _) = admin(dir, &["requests", "show", "999"]);
    assert_eq!(code, 2);
    let log = admin_json(dir, &["audit", "list"]).to_string();
    assert!(log.contains("admin.requests.show") && log.contains("admin.requests.resolve"));
    assert!(
        log.contains("admin.requests.list"),
        "listing users' requests is an admin read of their data: {log}"
    );
}

// Hardening: an admin's free text (erasure reason, legal-hold basis) may name the person; it
// is sealed under the user's key, shown to the admin while that key exists, and never in clear
// in the data directory (nor in the audit log).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erasure_reason_and_a_hold_basis_are_never_stored_in_clear() {
    let n = TestNode::start().await;
    let c = n.client();
    c.user("noted", &phone(1)).await;
    let dir = n.dir.path().to_path_buf();
    let (basis, reason) = ("BasisMarker8841", "ReasonMarker5530");
    admin_json(
        &dir,
        &["legal-hold", "set", "noted@localhost", "--basis", basis],
    );
    let s = admin_json(
        &dir,
        &["users", "erase", "noted@localhost", "--reason", reason],
    );
    assert_eq!(
        (s["phase"].as_str(), s["reason"].as_str()),
        (Some("scheduled"), Some(reason)),
        "held, and the admin reads the reason: {s}"
    );
    let list = admin_json(&dir, &["legal-hold", "list"]);
    assert_eq!(list[0]["basis"], basis, "{list}");
    let shown = admin_json(&dir, &["users", "show", "noted@localhost"]);
    assert_eq!(shown["legal_hold"]["basis"], basis, "{shown}");
    assert_no_marker(&dir, &[basis, reason], "while the hold is in force");

    admin_json(&dir, &["legal-hold", "clear", "noted@localhost"]);
    let s = admin_json(&dir, &["users", "erasure-status", "noted@localhost"]);
    assert_eq!(s["phase"], "done", "{s}");
    assert_eq!(s["reason"], Value::Null, "gone with the user's key: {s}");
    assert_eq!(s["by"], "admin");
    assert_no_marker(&dir, &[basis, reason], "after the erasure");
}
