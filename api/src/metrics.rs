//! The node's operational metrics, in the Prometheus text format: what is counted, the label
//! sets allowed, and the live readings (database size, writer, per-peer queues) taken at each
//! scrape. `metrics_http.rs` serves them.
//!
//! **Aggregates only.** Every label is a fixed type whose values come from the code, never from
//! a request: a route *pattern* from the route table (`/api/v1/conversations/{id}`, never the
//! path), a method from that table, a status code, a retention category, and — for queues and
//! delivery failures — the domain of a *configured* peer (partners in the configuration, not
//! personal data; a domain named only by a request never becomes a label).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use domain::federate::Outbox;
use storage::Store;

/// Labels of a request: the route table's method and pattern, and the answer's status.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: &'static str,
    route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CategoryLabels {
    category: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PeerLabels {
    peer: String,
}

/// The route label of a request that matched no route (404/405 before dispatch).
pub const UNMATCHED: &str = "unmatched";

/// Request latency buckets: 1 ms to ~33 s.
fn latency_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.001, 2.0, 16)
}

/// Counters and gauges the node updates as it works; cheap to clone (one shared registry).
#[derive(Clone)]
pub struct Metrics(Arc<Inner>);

struct Inner {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    connections: Gauge,
    websockets: Gauge,
    retention_removed: Family<CategoryLabels, Counter>,
    retention_runs: Counter,
    erasures_done: Counter,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

/// What is read afresh at each scrape.
#[derive(Debug)]
pub struct Live {
    pub store: Store,
    pub outbox: Outbox,
    /// The database file.
    pub db_path: PathBuf,
    /// Domains of the configured peers: the only peer labels there may be.
    pub peers: Vec<String>,
}

impl Metrics {
    /// A registry with every metric at zero, reading `live` at each scrape.
    pub fn new(live: Live) -> Metrics {
        let mut registry = Registry::with_prefix("shanliao");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route pattern, method and status",
            requests.clone(),
        );
        let latency: Family<RouteLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(|| Histogram::new(latency_buckets()));
        registry.register(
            "http_request_duration_seconds",
            "Time from routing a request to its answer's headers, by route pattern and method",
            latency.clone(),
        );
        let connections = Gauge::default();
        registry.register(
            "http_connections_open",
            "Client and peer connections open (TLS accepted)",
            connections.clone(),
        );
        let websockets = Gauge::default();
        registry.register(
            "websockets_open",
            "WebSocket event streams open",
            websockets.clone(),
        );
        let commit_seconds = Histogram::new(exponential_buckets(0.0001, 2.0, 16));
        registry.register(
            "db_commit_duration_seconds",
            "Duration of the database writer's commits (one per batch of write jobs)",
            commit_seconds.clone(),
        );
        let retention_removed = Family::<CategoryLabels, Counter>::default();
        registry.register(
            "retention_removed",
            "Items removed by the node's scheduled retention, by category",
            retention_removed.clone(),
        );
        let retention_runs = Counter::default();
        registry.register(
            "retention_runs",
            "Scheduled retention runs that completed",
            retention_runs.clone(),
        );
        let erasures_done = Counter::default();
        registry.register(
            "account_erasures_completed",
            "Account erasures the node completed",
            erasures_done.clone(),
        );
        let observed = commit_seconds.clone();
        live.store
            .observe_commits(move |took| observed.observe(took.as_secs_f64()));
        registry.register_collector(Box::new(live));
        Metrics(Arc::new(Inner {
            registry,
            requests,
            latency,
            connections,
            websockets,
            retention_removed,
            retention_runs,
            erasures_done,
        }))
    }

    /// Counts one answered request. `method` and `route` come from the route table (or
    /// [`UNMATCHED`]), never from the request's own text.
    pub fn request(&self, method: &'static str, route: &'static str, status: u16, took: Duration) {
        self.0
            .requests
            .get_or_create(&RequestLabels {
                method,
                route,
                status,
            })
            .inc();
        self.0
            .latency
            .get_or_create(&RouteLabels { method, route })
            .observe(took.as_secs_f64());
    }

    /// Counts an open connection until the guard is dropped.
    pub fn connection(&self) -> OpenGuard {
        OpenGuard::new(&self.0.connections)
    }

    /// Counts an open WebSocket until the guard is dropped.
    pub fn websocket(&self) -> OpenGuard {
        OpenGuard::new(&self.0.websockets)
    }

    /// TLS connections open now (those upgraded to a WebSocket are counted as WebSockets).
    pub fn open_connections(&self) -> i64 {
        self.0.connections.get()
    }

    /// WebSocket event streams open now.
    pub fn open_websockets(&self) -> i64 {
        self.0.websockets.get()
    }

    /// Records a completed scheduled retention run's removals.
    pub fn retention(&self, removed: &[(&'static str, u64)]) {
        self.0.retention_runs.inc();
        for (category, n) in removed {
            self.0
                .retention_removed
                .get_or_create(&CategoryLabels { category })
                .inc_by(*n);
        }
    }

    /// Records `n` completed account erasures.
    pub fn erasures(&self, n: u64) {
        self.0.erasures_done.inc_by(n);
    }

    /// The exposition text (`text/plain; version=0.0.4` compatible OpenMetrics).
    pub fn render(&self) -> String {
        let mut text = String::new();
        if prometheus_client::encoding::text::encode(&mut text, &self.0.registry).is_err() {
            text.clear();
        }
        text
    }
}

/// Decrements its gauge when dropped.
#[derive(Debug)]
pub struct OpenGuard(Gauge);

impl OpenGuard {
    fn new(g: &Gauge) -> OpenGuard {
        g.inc();
        OpenGuard(g.clone())
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl Collector for Live {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let size = std::fs::metadata(&self.db_path).map_or(0, |m| m.len());
        ConstGauge::new(size as i64).encode(encoder.encode_descriptor(
            "db_size_bytes",
            "Size of the database file",
            None,
            MetricType::Gauge,
        )?)?;
        let (jobs, commits) = self.store.write_stats();
        ConstCounter::new(jobs).encode(encoder.encode_descriptor(
            "db_write_jobs",
            "Write jobs the database writer committed",
            None,
            MetricType::Counter,
        )?)?;
        ConstCounter::new(commits).encode(encoder.encode_descriptor(
            "db_durable_commits",
            "Durable (fsynced) commits the database writer made",
            None,
            MetricType::Counter,
        )?)?;
        let stats = self.outbox.delivery_stats();
        let mut depth = encoder.encode_descriptor(
            "federation_queue_depth",
            "Envelopes waiting for each configured peer",
            None,
            MetricType::Gauge,
        )?;
        for peer in &self.peers {
            let n = stats.iter().find(|s| &s.0 == peer).map_or(0, |s| s.1);
            ConstGauge::new(n.max(0))
                .encode(depth.encode_family(&PeerLabels { peer: peer.clone() })?)?;
        }
        let mut failures = encoder.encode_descriptor(
            "federation_delivery_failures",
            "Delivery attempts to each configured peer that failed and will be retried",
            None,
            MetricType::Counter,
        )?;
        for peer in &self.peers {
            let n = stats.iter().find(|s| &s.0 == peer).map_or(0, |s| s.2);
            ConstCounter::new(n)
                .encode(failures.encode_family(&PeerLabels { peer: peer.clone() })?)?;
        }
        Ok(())
    }
}
