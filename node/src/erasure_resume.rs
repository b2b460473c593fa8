//! The erasure's crash window, on a whole node's wiring: an erasure stopped after any one of its
//! commits has either not begun or asked every peer, and resuming it asks each peer exactly
//! once. It needs the admin's offline context and a running node, so it lives here rather than
//! beside `domain::erasure`.

use std::sync::Arc;

use crate::accounts::Registration;
use crate::admin::{Context, Offline};
use crate::config::Config;
use crate::erasure::ErasureError;
use crate::time::{Clock, ManualClock, Millis};
use storage::{Phase, Step};

const PEERS: [&str; 2] = ["b.test", "c.test"];

fn config(dir: &std::path::Path) -> Config {
    let mut text = format!(
        "[server]\ndomain = \"a.test\"\nlisten = \"127.0.0.1:0\"\n\
         [storage]\ndata_dir = \"{}\"\n[accounts]\ndeletion_cooling_off_days = 1\n",
        dir.display()
    );
    for p in PEERS {
        // Never reached: nothing is delivered offline.
        text.push_str(&format!(
            "[[federation.peers]]\ndomain = \"{p}\"\nurl = \"https://127.0.0.1:9\"\n\
             region = \"CN\"\n"
        ));
    }
    Config::parse(&text, "test").expect("config")
}

/// Closes an offline context's database (off the async threads, as the node does).
async fn close(offline: Offline) {
    let store = offline.context.store().clone();
    drop(offline);
    tokio::task::spawn_blocking(move || drop(store))
        .await
        .expect("closed");
}

/// How many envelopes wait for each peer.
async fn queued(ctx: &Context) -> Vec<(String, u64)> {
    ctx.store().outbound_counts().await.expect("counts")
}

/// For every point between two of an erasure's commits: a node stopped there either has not
/// begun the erasure (the account is whole, no peer asked) or has asked every peer that
/// received the user's data — and, started again, finishes it having asked each exactly once.
#[tokio::test]
async fn an_erasure_stopped_at_any_commit_has_not_begun_or_asks_every_peer_when_resumed() {
    let mut crashed_at = Vec::new();
    for crash_after in 1..50 {
        let dir = tempfile::tempdir().expect("dir");
        let config = config(dir.path());
        let clock = Arc::new(ManualClock::new(Millis(1_700_000_000_000)));
        // The data directory as a node leaves it.
        let node = crate::Node::start(config.clone(), clock.clone())
            .await
            .expect("node");
        node.shutdown().await;

        let offline = Context::offline(&config, clock.clone())
            .await
            .expect("open");
        let ctx = &offline.context;
        let version = ctx.policy.current().version.clone();
        ctx.accounts
            .register(Registration {
                phone: "+8613800000001".into(),
                handle: "gone".into(),
                password: "password-gone".into(),
                nickname: None,
                accept_policy: version,
            })
            .await
            .expect("registered");
        let user = ctx
            .store()
            .user_by_handle("gone".into())
            .await
            .unwrap()
            .expect("user");
        for p in PEERS {
            ctx.store()
                .record_transfer(user, p.into(), "message", clock.now())
                .await
                .unwrap();
        }
        ctx.erasure
            .request(user, "password-gone")
            .await
            .expect("asked");
        clock.advance_ms(25 * 3600 * 1000);

        ctx.erasure.crash_after(crash_after);
        let first = ctx.erasure.run(user).await;
        let crashed = matches!(first, Err(ErasureError::Crashed));
        if !crashed {
            assert_eq!(first.expect("ran"), Step::Progress(Phase::Done));
        }
        let phase = ctx.erasure.status(user).await.unwrap().record.phase;
        let asked = ctx.erasure.status(user).await.unwrap().peers;
        if phase == Phase::Scheduled {
            assert!(asked.is_empty() || asked.len() == PEERS.len(), "{asked:?}");
        } else {
            assert_eq!(
                asked.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>(),
                PEERS,
                "begun ({phase:?}) after {crash_after} commits without every peer asked"
            );
        }
        close(offline).await;

        // Started again: the erasure resumes and ends with each peer asked once.
        let offline = Context::offline(&config, clock.clone())
            .await
            .expect("reopen");
        let ctx = &offline.context;
        let due = ctx.store().due_erasures(clock.now()).await.unwrap();
        let unfinished = phase != Phase::Done;
        assert_eq!(
            due,
            if unfinished { vec![user] } else { vec![] },
            "after {crash_after}"
        );
        assert_eq!(
            ctx.erasure.run_due().await.unwrap(),
            due.len(),
            "after {crash_after}"
        );
        let status = ctx.erasure.status(user).await.unwrap();
        assert_eq!(status.record.phase, Phase::Done, "after {crash_after}");
        assert_eq!(
            status
                .peers
                .iter()
                .map(|(p, _)| p.as_str())
                .collect::<Vec<_>>(),
            PEERS
        );
        assert_eq!(
            queued(ctx).await,
            PEERS.map(|p| (p.to_string(), 1)),
            "one erasure request for each peer, after {crash_after}"
        );
        close(offline).await;
        if !crashed {
            break;
        }
        crashed_at.push((crash_after, phase));
    }
    // The erasure was stopped before its first step and after it, not only at the end.
    assert!(
        crashed_at.iter().any(|(_, p)| *p == Phase::Scheduled),
        "{crashed_at:?}"
    );
    assert!(
        crashed_at.iter().any(|(_, p)| *p == Phase::Begun),
        "{crashed_at:?}"
    );
    assert!(crashed_at.len() >= 4, "{crashed_at:?}");
}
