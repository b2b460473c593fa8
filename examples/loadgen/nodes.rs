//! The nodes the load generator starts: `chat-node` on loopback with a fresh data directory
//! (or one it was given) and no request limits, and what is read of it while it runs — its
//! port and certificate, database file size, memory and CPU from `/proc`.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use shanliao_client::Endpoint;

/// Every simulated user connects from loopback: the per-client request limits would measure
/// themselves, not the node.
pub const NO_RATE_LIMITS: &str = "[rate_limit]\nregister_per_hour = 0\nlogin_per_minute = 0\n\
     public_per_minute = 0\nfederation_per_minute = 0\ntoken_lookups_per_minute = 0\n";

/// A database file's size two ways (see [`NodeProc::db_bytes`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct DbBytes {
    pub length: u64,
    pub allocated: u64,
}

/// A running node started by the load generator.
pub struct NodeProc {
    child: Child,
    pub port: u16,
    pub pid: u32,
    pub dir: tempfile::TempDir,
    cert: PathBuf,
}

impl NodeProc {
    pub fn start(bin: &Path) -> Result<NodeProc> {
        Self::start_in(bin, tempfile::tempdir()?, "")
    }

    /// Starts a node on `dir` (reused if it has data), with `extra` configuration.
    pub fn start_in(bin: &Path, dir: tempfile::TempDir, extra: &str) -> Result<NodeProc> {
        let text = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[storage]\ndata_dir = \"{}\"\n[log]\nlevel = \"warn\"\n{NO_RATE_LIMITS}{extra}",
            dir.path().join("data").display()
        );
        let cert = dir.path().join("data/tls/cert.pem");
        Self::start_config(bin, dir, &text, cert)
    }

    /// Starts a node with exactly this configuration text.
    pub fn start_config(
        bin: &Path,
        dir: tempfile::TempDir,
        text: &str,
        cert: PathBuf,
    ) -> Result<NodeProc> {
        let config = dir.path().join("node.toml");
        std::fs::write(&config, text)?;
        let mut child = Command::new(bin)
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| {
                format!(
                    "starting {} (build it with cargo build --release)",
                    bin.display()
                )
            })?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().context("stdout")?).read_line(&mut line)?;
        let port = line
            .rsplit(':')
            .next()
            .and_then(|p| p.trim().trim_end_matches(')').parse().ok())
            .with_context(|| format!("unexpected first line from chat-node: {line:?}"))?;
        let pid = child.id();
        Ok(NodeProc {
            child,
            port,
            pid,
            dir,
            cert,
        })
    }

    pub fn cert(&self) -> PathBuf {
        self.cert.clone()
    }

    /// The database file's length, and the bytes the file system has allocated to it. They
    /// differ when redb grows the file: it extends the length ahead of use (doubling while the
    /// file is small), and the extension is a hole that takes no disk until pages are written.
    pub fn db_bytes(&self) -> DbBytes {
        std::fs::metadata(self.dir.path().join("data/node.redb"))
            .map(|m| DbBytes {
                length: m.len(),
                allocated: m.blocks() * 512,
            })
            .unwrap_or_default()
    }

    pub fn status_kib(&self, key: &str) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap_or_default();
        s.lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    /// User + system CPU seconds used so far.
    pub fn cpu_secs(&self) -> f64 {
        cpu_secs_of(&self.pid.to_string())
    }

    pub fn stop(&mut self) -> Result<()> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        for _ in 0..200 {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.child.kill()?;
        bail!("chat-node did not stop within 10 s of SIGTERM")
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// User + system CPU seconds used so far by process `pid` (`self`: this one).
pub fn cpu_secs_of(pid: &str) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = s.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    ticks / clock_ticks()
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// The node at `port` on loopback, trusting its certificate `cert`.
pub fn endpoint(port: u16, cert: &Path) -> Result<Endpoint> {
    Ok(Endpoint::new(
        std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        cert,
    )?)
}
