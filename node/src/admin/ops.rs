//! Everyday read-only views for `node-admin`: `status`, `peers list|show` and `keys list`.

use serde_json::{Value, json};

use super::{AdminError, Context};
use crate::config::PeerConfig;
use crate::time::Millis;

/// What `Context` knows of the node it runs in, beyond its services.
#[derive(Debug, Clone)]
pub struct Runtime {
    /// When the serving node started; `None` for a context on a stopped node.
    pub started: Option<Millis>,
    /// The configured peers.
    pub peers: Vec<PeerConfig>,
    /// The database file, for its size.
    pub db_file: std::path::PathBuf,
}

/// `status`: version, uptime, users, database size, outbound queue depths, last retention run.
pub async fn status(ctx: &Context) -> Result<Value, AdminError> {
    let now = ctx.clock.now();
    let users = ctx.store.accounts().await?.len();
    let queues = ctx.store.outbound_counts().await?;
    let queued: u64 = queues.iter().map(|(_, n)| n).sum();
    // A small record, not a search of the audit log (which grows with the node).
    let last_retention = ctx
        .store
        .last_retention_run()
        .await?
        .map(|at| at.to_rfc3339());
    let size = std::fs::metadata(&ctx.runtime.db_file)
        .map(|m| m.len())
        .ok();
    Ok(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "domain": ctx.domain,
        "running": ctx.runtime.started.is_some(),
        "uptime_secs": ctx.runtime.started.map(|s| now.0.saturating_sub(s.0) / 1000),
        "users": users,
        "database_bytes": size,
        "outbound_queued": queued,
        "queues": queues.iter().map(|(p, n)| json!({"peer": p, "queued": n})).collect::<Vec<_>>(),
        "last_retention_run": last_retention,
    }))
}

fn peer_json(p: &PeerConfig, queued: u64) -> Value {
    json!({
        "peer": p.domain.as_str(),
        "url": format!("https://{}:{}", p.url.host, p.url.port),
        "region": p.region.as_str(),
        "queued": queued,
    })
}

/// `peers list`: every configured peer with its region and queue depth (and any domain with
/// envelopes queued that is no longer configured).
pub async fn peers(ctx: &Context) -> Result<Value, AdminError> {
    let queues = ctx.store.outbound_counts().await?;
    let depth = |d: &str| queues.iter().find(|(p, _)| p == d).map_or(0, |(_, n)| *n);
    let mut out: Vec<Value> = ctx
        .runtime
        .peers
        .iter()
        .map(|p| peer_json(p, depth(p.domain.as_str())))
        .collect();
    for (d, n) in &queues {
        if !ctx.runtime.peers.iter().any(|p| p.domain.as_str() == d) {
            out.push(json!({"peer": d, "url": null, "region": null, "queued": n}));
        }
    }
    Ok(Value::Array(out))
}

/// `peers show DOMAIN`.
pub async fn peer(ctx: &Context, domain: &str) -> Result<Value, AdminError> {
    let all = peers(ctx).await?;
    all.as_array()
        .and_then(|a| a.iter().find(|p| p["peer"] == domain).cloned())
        .ok_or_else(|| AdminError::Invalid(format!("{domain} is not a peer of this node")))
}

/// `keys list`: the node's signing keys (ids and validity; never the keys).
pub async fn keys(ctx: &Context) -> Result<Value, AdminError> {
    let now = ctx.clock.now();
    let mut keys = ctx.store.node_keys().await?;
    keys.sort_by_key(|k| k.created);
    Ok(Value::Array(
        keys.iter()
            .map(|k| {
                json!({
                    "id": k.id,
                    "created": k.created.to_rfc3339(),
                    "valid_until": k.valid_until.to_rfc3339(),
                    "status": if k.valid_until > now { "valid" } else { "expired" },
                })
            })
            .collect(),
    ))
}
