//! Everyday views for `node-admin` — `status`, `peers list|show`, `keys list` — and the one
//! everyday change, `keys rotate`.

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
    /// The serving node's counters (open connections and WebSockets); `None` when stopped.
    pub metrics: Option<crate::http::metrics::Metrics>,
}

/// `status`: version, uptime, users, open connections and WebSockets, database size, outbound
/// queue depths, last retention run.
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
        // TLS connections (one upgraded to a WebSocket counts only as a WebSocket); null when
        // the node is stopped.
        "connections_open": ctx.runtime.metrics.as_ref().map(|m| m.open_connections()),
        "websockets_open": ctx.runtime.metrics.as_ref().map(|m| m.open_websockets()),
        "database_bytes": size,
        "outbound_queued": queued,
        "queues": queues.iter().map(|(p, n)| json!({"peer": p, "queued": n})).collect::<Vec<_>>(),
        "last_retention_run": last_retention,
    }))
}

/// A peer's reachability columns: `reachable` (`yes`: the last request was answered; `no`: it
/// failed; `unknown`: none yet), last success and failure, the last failure's kind, and the
/// failures in a row.
fn reach_json(ctx: &Context, domain: &str) -> serde_json::Map<String, Value> {
    let r = ctx.reach.of(domain).unwrap_or_default();
    let reachable = match (r.last_success, r.last_failure) {
        (None, None) => "unknown",
        _ if r.consecutive_failures > 0 => "no",
        _ => "yes",
    };
    let mut m = serde_json::Map::new();
    m.insert("reachable".into(), reachable.into());
    m.insert(
        "last_success".into(),
        r.last_success.map(|t| t.to_rfc3339()).into(),
    );
    m.insert(
        "last_failure".into(),
        r.last_failure.map(|t| t.to_rfc3339()).into(),
    );
    m.insert("last_error".into(), r.last_error.into());
    m.insert("consecutive_failures".into(), r.consecutive_failures.into());
    m
}

fn peer_json(ctx: &Context, p: &PeerConfig, queued: u64) -> Value {
    let mut m = reach_json(ctx, p.domain.as_str());
    m.insert("peer".into(), p.domain.as_str().into());
    m.insert(
        "url".into(),
        format!("https://{}:{}", p.url.host, p.url.port).into(),
    );
    m.insert("region".into(), p.region.as_str().into());
    m.insert("queued".into(), queued.into());
    Value::Object(m)
}

/// `peers list`: every configured peer with its region, reachability and queue depth (and any
/// domain with envelopes queued that is no longer configured).
pub async fn peers(ctx: &Context) -> Result<Value, AdminError> {
    let queues = ctx.store.outbound_counts().await?;
    let depth = |d: &str| queues.iter().find(|(p, _)| p == d).map_or(0, |(_, n)| *n);
    let mut out: Vec<Value> = ctx
        .runtime
        .peers
        .iter()
        .map(|p| peer_json(ctx, p, depth(p.domain.as_str())))
        .collect();
    for (d, n) in &queues {
        if !ctx.runtime.peers.iter().any(|p| p.domain.as_str() == d) {
            let mut m = reach_json(ctx, d);
            m.insert("peer".into(), d.as_str().into());
            m.insert("url".into(), Value::Null);
            m.insert("region".into(), Value::Null);
            m.insert("queued".into(), (*n).into());
            out.push(Value::Object(m));
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

/// `keys list`: the node's signing keys (ids and validity; never the keys), oldest first;
/// `signing` marks the one the node signs with.
pub async fn keys(ctx: &Context) -> Result<Value, AdminError> {
    let now = ctx.clock.now();
    let mut keys = ctx.store.node_keys().await?;
    keys.sort_by_key(|k| k.created);
    let current = ctx.node_keys.current().id.as_str().to_string();
    Ok(Value::Array(
        keys.iter()
            .map(|k| {
                json!({
                    "id": k.id,
                    "created": k.created.to_rfc3339(),
                    "valid_until": k.valid_until.to_rfc3339(),
                    "status": if k.valid_until > now { "valid" } else { "expired" },
                    "signing": k.id == current,
                })
            })
            .collect(),
    ))
}

/// `keys rotate`: a new signing key now (stored before it signs anything); the previous one
/// stays published and valid until its own end, so envelopes it signed — queued here or in
/// flight to a peer — still verify. On a running node the next request to a peer is signed
/// with the new key; on a stopped node the next start uses it. Audited.
pub async fn rotate(ctx: &Context) -> Result<Value, AdminError> {
    let r = ctx
        .node_keys
        .rotate(&ctx.store, &ctx.master, ctx.clock.now())
        .await
        .map_err(|e| match e {
            crate::signing::SigningError::Store(s) => AdminError::Store(s),
            other => AdminError::Failed(other.to_string()),
        })?;
    let (new, old) = (r.new.id.as_str(), r.previous.id.as_str());
    ctx.store
        .audit(ctx.audit(
            "admin.keys.rotate",
            None,
            &format!("signing key {new} replaces {old}"),
        ))
        .await?;
    let old_until = Millis(r.previous.valid_until).to_rfc3339();
    let effect = if ctx.runtime.started.is_some() {
        "the running node signs with it from now on"
    } else {
        "the node signs with it from its next start"
    };
    Ok(json!({
        "rotated": true,
        "signing_key": new,
        "created": r.created.to_rfc3339(),
        "valid_until": Millis(r.new.valid_until).to_rfc3339(),
        "previous_key": old,
        "previous_valid_until": old_until,
        "published": ctx.node_keys.public_keys().iter().map(|k| k.id.as_str().to_string()).collect::<Vec<_>>(),
        "summary": format!(
            "new signing key {new}: {effect}; {old} stays published and valid until {old_until}, so what it signed still verifies"
        ),
    }))
}
