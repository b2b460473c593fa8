//! Running the `node-admin` binary from the admin crate's tests.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_node-admin");

/// Runs `node-admin --data-dir DIR ARGS…`: (exit code, stdout, stderr).
pub fn admin(dir: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .output()
        .expect("run node-admin");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `node-admin --json ARGS…` and parses its output; panics unless it succeeds.
#[allow(dead_code)] // not every test file uses it
pub fn admin_json(dir: &std::path::Path, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let (code, out, err) = admin(dir, &all);
    assert_eq!(code, 0, "{args:?}: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}
