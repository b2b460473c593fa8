//! `GET /health` (liveness, with the readiness checks in its body) and `GET /health/ready`
//! (readiness: 200 ready, 503 not), for load balancers, orchestrators and operators; no
//! authentication. Ready means the database's last commit did not fail and the data
//! directory's file system has at least `storage.min_free_bytes` free.
//!
//! The same free-space reserve guards writes: below it, every request that may write is
//! answered 503 `storage_full` before it reaches the database, so a commit never runs out of
//! space half-way and nothing is acknowledged that was not stored. Reads go on, and writes are
//! taken again as soon as space is back, with no restart.

use std::path::PathBuf;

use http::{Response, StatusCode};

use super::ApiError;
use super::json::{Body, reply};
use storage::Store;

/// What readiness is checked against.
#[derive(Debug, Clone)]
pub struct Readiness {
    pub store: Store,
    pub data_dir: PathBuf,
    pub min_free_bytes: u64,
}

/// The outcome of the checks.
#[derive(Debug, Clone, Copy)]
struct Checks {
    database_writable: bool,
    /// `None` when the file system could not be asked.
    disk_free_bytes: Option<u64>,
    disk_min_free_bytes: u64,
}

impl Checks {
    fn ready(&self) -> bool {
        self.database_writable
            && self
                .disk_free_bytes
                .is_some_and(|f| f >= self.disk_min_free_bytes)
    }
    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "ready": self.ready(),
            "database_writable": self.database_writable,
            "disk_free_bytes": self.disk_free_bytes,
            "disk_min_free_bytes": self.disk_min_free_bytes,
        })
    }
}

impl Readiness {
    async fn check(&self) -> Checks {
        let dir = self.data_dir.clone();
        // statvfs can block on a stalled network file system: keep it off the async threads.
        let free = tokio::task::spawn_blocking(move || free_bytes(&dir))
            .await
            .ok()
            .flatten();
        Checks {
            database_writable: !self.store.commits_failing(),
            disk_free_bytes: free,
            disk_min_free_bytes: self.min_free_bytes,
        }
    }
}

impl Readiness {
    /// 503 `storage_full` when the data directory's file system is below the reserve. A
    /// statvfs is one system call on the local file system the database lives on.
    pub fn admit_write(&self) -> Result<(), ApiError> {
        match free_bytes(&self.data_dir) {
            Some(free) if free < self.min_free_bytes => {
                let mut e = ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "storage_full",
                    "the node is low on disk space and takes no writes until space is freed; retry later",
                );
                e.retry_after = Some(60);
                Err(e)
            }
            _ => Ok(()),
        }
    }
}

/// Bytes an unprivileged process may still write on the file system holding `dir`.
fn free_bytes(dir: &std::path::Path) -> Option<u64> {
    let s = rustix::fs::statvfs(dir).ok()?;
    Some(s.f_bavail.saturating_mul(s.f_frsize))
}

/// `GET /health` → 200 `{"status":"ok","domain","version","ready",…checks}`: the node is alive.
pub async fn get(domain: &str, readiness: &Readiness) -> Response<Body> {
    let checks = readiness.check().await;
    let mut body = checks.json();
    body["status"] = "ok".into();
    body["domain"] = domain.into();
    body["version"] = env!("CARGO_PKG_VERSION").into();
    reply(StatusCode::OK, &body)
}

/// `GET /health/ready` → 200 `{"status":"ready",…}` or 503 `{"status":"not_ready",…}`.
pub async fn ready(readiness: &Readiness) -> Response<Body> {
    let checks = readiness.check().await;
    let mut body = checks.json();
    let (status, word) = match checks.ready() {
        true => (StatusCode::OK, "ready"),
        false => (StatusCode::SERVICE_UNAVAILABLE, "not_ready"),
    };
    body["status"] = word.into();
    reply(status, &body)
}
