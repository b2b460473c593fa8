//! `node-admin`'s progress bars: drawn on a terminal (a pseudo-terminal from `script(1)`), never
//! when stderr is piped or with `--json`.

use std::process::Command;

use tests::{TestNode, phone};

mod common;
use common::admin;

const BIN: &str = env!("CARGO_BIN_EXE_node-admin");

/// Runs `node-admin --data-dir DIR ARGS…` on a pseudo-terminal: (exit code, what it showed).
fn on_a_terminal(dir: &std::path::Path, args: &[&str]) -> (i32, String) {
    let mut line = format!("'{BIN}' --data-dir '{}'", dir.display());
    for a in args {
        line.push_str(&format!(" '{a}'"));
    }
    let out = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .output()
        .expect("script(1) from util-linux runs the tool on a pseudo-terminal");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_commands_draw_a_bar_on_a_terminal_and_none_when_piped_or_json() {
    let n = TestNode::start().await;
    let c = n.client();
    for i in 0..3 {
        c.user(&format!("user{i}"), &phone(i + 1)).await;
    }
    let dir = n.dir.path();
    let out = tempfile::tempdir().unwrap();
    let file = |name: &str| out.path().join(name).to_str().unwrap().to_string();

    let (code, shown) = on_a_terminal(dir, &["backup", "--out", &file("a")]);
    assert_eq!(code, 0, "{shown}");
    assert!(
        shown.contains("backup [") && shown.contains("% ") && shown.contains(" rows"),
        "a bar on the terminal: {shown:?}"
    );
    let (code, shown) = on_a_terminal(dir, &["users", "erase", "user0", "--reason", "test"]);
    assert_eq!(code, 0, "{shown}");
    assert!(
        shown.contains("erasing [") && shown.contains("/6 steps"),
        "{shown:?}"
    );

    let (code, shown) = on_a_terminal(dir, &["--json", "backup", "--out", &file("b")]);
    assert_eq!(code, 0, "{shown}");
    assert!(!shown.contains("backup ["), "no bar with --json: {shown:?}");

    let (code, _, err) = admin(dir, &["backup", "--out", &file("c")]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains('['), "no bar when piped: {err:?}");
    assert_eq!(err.lines().count(), 1, "only the mode line: {err:?}");
}
