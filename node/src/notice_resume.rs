//! Test only: a policy publication a stop cut short, on a whole node's wiring — the node's
//! maintenance loop finishes it at start, so every live user has exactly one notice.

use std::sync::Arc;
use std::time::Duration;

use crate::accounts::Registration;
use crate::admin::Context;
use crate::config::Config;
use crate::time::{Clock, ManualClock, Millis};
use storage::{AuditEntry, PolicyVersionRecord};

fn config(dir: &std::path::Path) -> Config {
    let text = format!(
        "[server]\ndomain = \"a.test\"\nlisten = \"127.0.0.1:0\"\n\
         [storage]\ndata_dir = \"{}\"\n",
        dir.display()
    );
    Config::parse(&text, "test").expect("config")
}

#[tokio::test]
async fn a_node_started_after_a_publication_was_cut_short_notifies_the_users_left() {
    let dir = tempfile::tempdir().expect("dir");
    let config = config(dir.path());
    let clock = Arc::new(ManualClock::new(Millis(1_700_000_000_000)));
    let node = crate::Node::start(config.clone(), clock.clone())
        .await
        .expect("node");
    node.shutdown().await;

    let offline = Context::offline(&config, clock.clone())
        .await
        .expect("open");
    let ctx = &offline.context;
    let accepted = ctx.policy.current().version.clone();
    let mut users = Vec::new();
    for n in 1..=3 {
        ctx.accounts
            .register(Registration {
                phone: format!("+861380000000{n}"),
                handle: format!("user{n}"),
                password: format!("password-{n}-long"),
                nickname: None,
                accept_policy: accepted.clone(),
            })
            .await
            .expect("registered");
        let id = ctx
            .store()
            .user_by_handle(format!("user{n}"))
            .await
            .unwrap();
        users.push(id.expect("user"));
    }
    // A publication stopped after its first batch: the version and its job, one user done.
    let now = clock.now();
    let (_, job) = ctx
        .store()
        .publish_policy(
            PolicyVersionRecord {
                seq: 0,
                version: "next".into(),
                published: now,
                effective: Millis(now.0 + 30 * 86_400_000),
                narrows: false,
                zh: "新的政策".into(),
                en: String::new(),
            },
            domain::notices::policy("next", "2030-01-01", false),
            AuditEntry {
                at: now,
                actor: "admin".into(),
                action: "policy.publish".into(),
                target: String::new(),
                subject: None,
                detail: String::new(),
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ctx.store().notice_batch(job, 1).await.unwrap().0.len(), 1);
    let store = ctx.store().clone();
    drop(offline);
    tokio::task::spawn_blocking(move || drop(store))
        .await
        .expect("closed");

    let node = crate::Node::start(config.clone(), clock.clone())
        .await
        .expect("node");
    let store = node.store().expect("store").clone();
    let mut commits = store.commits();
    // Woken by every commit until the job is gone; the guard only turns a hang into a failure.
    let finished = tokio::time::timeout(Duration::from_secs(60), async {
        while !store.notice_jobs().await.unwrap().is_empty() {
            commits.changed().await.unwrap();
        }
    })
    .await;
    assert!(finished.is_ok(), "the node finishes the publication");
    for u in &users {
        let policy_notices = store
            .notices_of(*u)
            .await
            .unwrap()
            .into_iter()
            .filter(|(_, e)| {
                matches!(
                    e,
                    storage::EventRecord::Notice {
                        kind: storage::NoticeKind::Policy,
                        ..
                    }
                )
            })
            .count();
        assert_eq!(policy_notices, 1, "user {u}");
    }
    drop(store);
    node.shutdown().await;
}
