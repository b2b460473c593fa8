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
