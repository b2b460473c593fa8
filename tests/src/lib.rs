//! Test support for the black-box tests in `tests/tests/`: starts real nodes on `127.0.0.1:0`
//! with temporary data directories, and speaks HTTPS to them through `shanliao-client`
//! (HTTP/1.1 or HTTP/2 by ALPN), trusting each node's own certificate, checking every answer
//! against the API document. Nothing here reaches beyond loopback.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use node::{Config, Node, SharedClock, SystemClock};
use serde_json::{Value, json};
use shanliao_client::{
    Api, ApiError, ClientError, Endpoint, History, NewConversation, Registration, Transport, events,
};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

pub use node;
pub use shanliao_client;

pub mod openapi;
pub mod relay;
pub mod setup;

pub use relay::Relay;

/// The policy version of the built-in configuration.
pub const POLICY: &str = "2026-11-29";

/// A node running in this process, with its own data directory.
#[derive(Debug)]
pub struct TestNode {
    pub node: Option<Node>,
    pub dir: tempfile::TempDir,
    pub config: Config,
    pub clock: SharedClock,
}

impl TestNode {
    /// A node on the built-in defaults, except for a loopback port and a temporary data dir.
    pub async fn start() -> TestNode {
        Self::start_toml("").await
    }

    /// Like [`TestNode::start`], with `extra` TOML (sections other than `[server]` and
    /// `[storage]`) added to the configuration, as an operator would write it.
    pub async fn start_toml(extra: &str) -> TestNode {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = test_config(dir.path(), extra);
        Self::start_in(dir, config, Arc::new(SystemClock)).await
    }

    /// Like [`TestNode::start_toml`], on a clock the test moves by hand.
    pub async fn start_manual(extra: &str, clock: Arc<node::ManualClock>) -> TestNode {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = test_config(dir.path(), extra);
        Self::start_in(dir, config, clock).await
    }

    /// Starts a node with exactly this configuration and clock, keeping `dir` alive with it.
    pub async fn start_in(dir: tempfile::TempDir, config: Config, clock: SharedClock) -> TestNode {
        let node = Node::start(config.clone(), clock.clone()).await;
        TestNode::started(node, dir, config, clock)
    }

    /// Like [`TestNode::start_in`], serving on `listener` (see [`Node::start_on`]).
    pub async fn start_on(
        dir: tempfile::TempDir,
        config: Config,
        clock: SharedClock,
        listener: std::net::TcpListener,
    ) -> TestNode {
        let node = Node::start_on(config.clone(), clock.clone(), listener).await;
        TestNode::started(node, dir, config, clock)
    }

    fn started(
        node: Result<Node, node::StartError>,
        dir: tempfile::TempDir,
        config: Config,
        clock: SharedClock,
    ) -> TestNode {
        TestNode {
            node: Some(node.expect("node starts")),
            dir,
            config,
            clock,
        }
    }

    fn running(&self) -> &Node {
        self.node.as_ref().expect("node is running")
    }

    pub fn addr(&self) -> SocketAddr {
        self.running().local_addr()
    }

    /// A client of this node.
    pub fn client(&self) -> Client {
        Client::new(self.addr(), self.running().cert_file())
    }

    /// Stops the node gracefully (data directory kept).
    pub async fn stop(&mut self) {
        if let Some(n) = self.node.take() {
            n.shutdown().await;
        }
    }

    /// Stops and starts the node again with the same configuration (same port, so its peers
    /// still find it).
    pub async fn restart_in_place(&mut self) {
        self.stop().await;
        self.start_again().await;
    }

    /// Starts a stopped node again with its configuration.
    pub async fn start_again(&mut self) {
        let node = Node::start(self.config.clone(), self.clock.clone())
            .await
            .expect("node restarts");
        self.node = Some(node);
    }

    /// The running node (for library calls such as erasure requests).
    pub fn node(&self) -> &Node {
        self.running()
    }

    /// Stops and starts the node again on the same data directory (a new port).
    pub async fn restart(&mut self) {
        self.stop().await;
        self.config.server.listen = "127.0.0.1:0".parse().expect("addr");
        let node = Node::start(self.config.clone(), self.clock.clone())
            .await
            .expect("node restarts");
        self.node = Some(node);
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("node.redb")
    }

    /// Runs an admin command through the running node's admin socket; panics unless it
    /// succeeds.
    pub async fn admin(&self, req: node::AdminRequest) -> Value {
        self.try_admin(req).await.expect("admin command succeeds")
    }

    /// Runs an admin command through the running node's admin socket.
    pub async fn try_admin(&self, req: node::AdminRequest) -> Result<Value, node::AdminError> {
        node::admin_call(&node::socket_path(self.config.data_dir()), &req)
            .await
            .expect("admin socket")
            .expect("a node answers")
    }

    /// The value of the metrics sample `series` (name and labels, e.g.
    /// `shanliao_websockets_open`), scraped from the node's metrics listener (the node must be
    /// configured with `[metrics] listen = "127.0.0.1:0"`); `None` when it is not exposed.
    pub async fn metric(&self, series: &str) -> Option<f64> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = self.node().metrics_addr().expect("a metrics listener");
        let mut tcp = TcpStream::connect(addr).await.expect("metrics listener");
        tcp.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await
            .expect("metrics request");
        let mut out = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut out))
            .await
            .expect("metrics answer within 10 s")
            .expect("metrics answer");
        let text = String::from_utf8(out).expect("metrics text");
        let (_, body) = text.split_once("\r\n\r\n")?;
        body.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
    }
}

/// Starts nodes that federate with each other, one per `(domain, region)`: each with its own
/// data dir, signing key and a certificate for its domain (made here, and named by every other
/// node as that peer's CA file), on a loopback port chosen before any starts so each can be
/// configured with the others' URLs. `extra` is added to every node's configuration (not a
/// `[federation]` section: retries are capped at 1 s here).
pub async fn federation(nodes: &[(&str, &str)], extra: &str) -> Vec<TestNode> {
    federation_with(nodes, &[], extra).await
}

/// Like [`federation`], with `fakes` (test-controlled peers, see [`FakePeer`]) added to every
/// node's peer list.
pub async fn federation_with(
    nodes: &[(&str, &str)],
    fakes: &[&FakePeer],
    extra: &str,
) -> Vec<TestNode> {
    federation_tuned(nodes, fakes, extra, "retry_max_secs = 1").await
}

/// A fake host `e.test` and a node `a.test` peered with it under the given `[federation]`
/// keys, with a client of the node and its user alice, member of the group `q1:e.test` that
/// the host keeps. The nodes are returned to keep them running.
pub async fn alice_in_a_hosted_group(keys: &str) -> (FakePeer, Vec<TestNode>, Client, String) {
    Box::pin(alice_in_a_group_hosted_in("CN", keys)).await
}

/// [`alice_in_a_hosted_group`] with the host `e.test` in `region`.
pub async fn alice_in_a_group_hosted_in(
    region: &str,
    keys: &str,
) -> (FakePeer, Vec<TestNode>, Client, String) {
    Box::pin(alice_in_a_group_hosted_by(region, "", keys)).await
}

/// Like [`alice_in_a_hosted_group`], with `extra` added to the node's configuration.
pub async fn alice_in_a_hosted_group_with(
    extra: &str,
    keys: &str,
) -> (FakePeer, Vec<TestNode>, Client, String) {
    Box::pin(alice_in_a_group_hosted_by("CN", extra, keys)).await
}

/// Like [`alice_in_a_hosted_group_with`], the node on `clock` (which the test may move).
pub async fn alice_in_a_hosted_group_on(
    extra: &str,
    keys: &str,
    clock: SharedClock,
) -> (FakePeer, Vec<TestNode>, Client, String) {
    Box::pin(alice_in_a_group_hosted_on("CN", extra, keys, clock)).await
}

async fn alice_in_a_group_hosted_by(
    region: &str,
    extra: &str,
    keys: &str,
) -> (FakePeer, Vec<TestNode>, Client, String) {
    Box::pin(alice_in_a_group_hosted_on(
        region,
        extra,
        keys,
        Arc::new(SystemClock),
    ))
    .await
}

async fn alice_in_a_group_hosted_on(
    region: &str,
    extra: &str,
    keys: &str,
    clock: SharedClock,
) -> (FakePeer, Vec<TestNode>, Client, String) {
    let peer = FakePeer::start("e.test", region).await;
    // Boxed: the nodes' start-up futures (each holding its `Config`) would make this one large.
    let nodes = Box::pin(federation_on(
        &[("a.test", "CN")],
        &[&peer],
        extra,
        keys,
        clock,
    ))
    .await;
    let c = nodes[0].client();
    let alice = c.user("alice", &phone(1)).await;
    let state = peer.group_state(
        "st",
        "a.test",
        "q1:e.test",
        "g",
        "eve@e.test",
        &["alice@a.test"],
    );
    let txn = json!({"origin": "e.test", "envelopes": [serde_json::to_value(&state).unwrap()]});
    let r = peer
        .put(&nodes[0], "t1", &txn, "a.test", now_ms(), &peer.key)
        .await;
    assert_eq!(r.json()["results"]["st"], json!({}));
    (peer, nodes, c, alice)
}

/// Like [`federation_with`], with `federation_keys` as the `[federation]` settings.
pub async fn federation_tuned(
    nodes: &[(&str, &str)],
    fakes: &[&FakePeer],
    extra: &str,
    federation_keys: &str,
) -> Vec<TestNode> {
    Box::pin(federation_on(
        nodes,
        fakes,
        extra,
        federation_keys,
        Arc::new(SystemClock),
    ))
    .await
}

/// Like [`federation_tuned`], every node on `clock` (a [`node::ManualClock`] makes delivery
/// backoff and pacing wait until the test moves it).
pub async fn federation_on(
    nodes: &[(&str, &str)],
    fakes: &[&FakePeer],
    extra: &str,
    federation_keys: &str,
    clock: SharedClock,
) -> Vec<TestNode> {
    Box::pin(federation_apart_on(
        nodes,
        &[],
        &[],
        fakes,
        extra,
        federation_keys,
        clock,
        None,
    ))
    .await
    .0
}

/// Like [`federation_on`] (no fake peers, nothing extra), except that node `from` reaches node
/// `to` through a [`Relay`] (its configuration names the relay as `to`'s URL), which the test
/// can tell to lose `to`'s answers.
pub async fn federation_relayed(
    nodes: &[(&str, &str)],
    (from, to): (&str, &str),
    clock: SharedClock,
) -> (Vec<TestNode>, Relay) {
    let (nodes, relay) = Box::pin(federation_apart_on(
        nodes,
        &[],
        &[],
        &[],
        "",
        "retry_max_secs = 1",
        clock,
        Some((from, to)),
    ))
    .await;
    (nodes, relay.expect("the relay"))
}

/// Like [`federation`], except that the nodes of each pair in `apart` are not peers of each
/// other (neither lists the other), as two nodes that each federate with a third only.
/// `own` adds configuration to single nodes: (domain, text put after `extra` in its file).
pub async fn federation_apart(
    nodes: &[(&str, &str)],
    apart: &[(&str, &str)],
    own: &[(&str, &str)],
    extra: &str,
) -> Vec<TestNode> {
    Box::pin(federation_apart_on(
        nodes,
        apart,
        own,
        &[],
        extra,
        "retry_max_secs = 1",
        Arc::new(SystemClock),
        None,
    ))
    .await
    .0
}

/// The nodes, and the relay between (from, to) in `relayed` if asked for.
#[allow(clippy::too_many_arguments)]
async fn federation_apart_on(
    nodes: &[(&str, &str)],
    apart: &[(&str, &str)],
    own: &[(&str, &str)],
    fakes: &[&FakePeer],
    extra: &str,
    federation_keys: &str,
    clock: SharedClock,
    relayed: Option<(&str, &str)>,
) -> (Vec<TestNode>, Option<Relay>) {
    struct Prepared {
        dir: tempfile::TempDir,
        domain: String,
        region: String,
        cert: PathBuf,
        key: PathBuf,
        port: u16,
        listener: std::net::TcpListener,
    }
    let mut prepared = Vec::new();
    for (domain, region) in nodes {
        let dir = tempfile::tempdir().expect("temp dir");
        let ck = rcgen::generate_simple_self_signed(vec![
            domain.to_string(),
            "localhost".to_string(),
            "127.0.0.1".to_string(),
        ])
        .expect("certificate");
        let cert = dir.path().join("peer-cert.pem");
        let key = dir.path().join("peer-key.pem");
        std::fs::write(&cert, ck.cert.pem()).expect("cert");
        std::fs::write(&key, ck.signing_key.serialize_pem()).expect("key");
        // Held until its node serves on it: a port freed here and bound again later could be
        // taken in between by any test's outgoing connection.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
        let port = listener.local_addr().expect("bound address").port();
        prepared.push(Prepared {
            dir,
            domain: domain.to_string(),
            region: region.to_string(),
            cert,
            key,
            port,
            listener,
        });
    }
    let mut relay = None;
    if let Some((_, to)) = relayed {
        let p = prepared
            .iter()
            .find(|p| p.domain == to)
            .expect("the relayed node is one of the nodes");
        relay = Some(Relay::start(&p.domain, &p.cert, &p.key, p.port).await);
    }
    let mut out = Vec::new();
    for (i, p) in prepared.iter().enumerate() {
        let Prepared {
            domain,
            region,
            cert,
            key,
            port,
            ..
        } = p;
        let mut text = format!(
            "[server]\ndomain = \"{domain}\"\nlisten = \"127.0.0.1:{port}\"\n\
             [storage]\ndata_dir = \"{}\"\n\
             [tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n\
             [residency]\nregion = \"{region}\"\n{extra}\n{}\n\
             [federation]\n{federation_keys}\n",
            p.dir.path().display(),
            cert.display(),
            key.display(),
            own.iter()
                .filter(|(d, _)| *d == domain.as_str())
                .map(|(_, t)| *t)
                .collect::<Vec<_>>()
                .join("\n"),
        );
        let others = prepared
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .filter(|(_, o)| {
                !apart.iter().any(|(x, y)| {
                    (*x == domain.as_str() && *y == o.domain.as_str())
                        || (*y == domain.as_str() && *x == o.domain.as_str())
                })
            })
            .map(|(_, o)| {
                let port = match (&relay, relayed) {
                    (Some(r), Some((from, to))) if from == domain.as_str() && to == o.domain => {
                        r.port
                    }
                    _ => o.port,
                };
                (o.domain.as_str(), o.region.as_str(), o.cert.as_path(), port)
            });
        let fakes = fakes.iter().map(|f| {
            (
                f.domain.as_str(),
                f.region.as_str(),
                f.cert.as_path(),
                f.port,
            )
        });
        for (d, r, c, p) in others.chain(fakes) {
            text.push_str(&format!(
                "[[federation.peers]]\ndomain = \"{d}\"\nurl = \"https://127.0.0.1:{p}\"\n\
                 region = \"{r}\"\nca_file = \"{}\"\n",
                c.display()
            ));
        }
        let mut config = Config::parse(&text, domain).expect("federation test config");
        no_rate_limits_unless_asked(&mut config, extra);
        out.push(config);
    }
    let mut nodes_out = Vec::new();
    for (p, config) in prepared.into_iter().zip(out) {
        nodes_out.push(TestNode::start_on(p.dir, config, clock.clone(), p.listener).await);
    }
    (nodes_out, relay)
}

/// A peer the test controls: it publishes a key document for its domain over HTTPS (like a
/// node) and lets the test sign requests and envelopes as that peer — including wrong ones.
/// What a [`FakePeer`] serves as media (id → bytes), the media paths it was asked for, and
/// for some ids how many parts it serves before answering 503 to the rest.
type ServedMedia =
    Arc<std::sync::Mutex<(HashMap<String, Bytes>, Vec<String>, HashMap<String, usize>)>>;

#[derive(Debug)]
pub struct FakePeer {
    pub domain: String,
    pub region: String,
    pub key: federation::NodeKey,
    pub port: u16,
    pub cert: PathBuf,
    /// Every transaction body nodes sent to this peer, in arrival order (each answered as
    /// applied).
    pub received: Arc<std::sync::Mutex<Vec<Value>>>,
    /// While true, transactions are held unanswered ([`FakePeer::hold`]).
    held: tokio::sync::watch::Sender<bool>,
    /// While true, transactions are answered 503 and not kept ([`FakePeer::unavailable`]).
    unavailable: Arc<std::sync::atomic::AtomicBool>,
    /// Media this peer serves at `/_federation/v1/media/{id}/{part}` ([`FakePeer::serve_media`]),
    /// and the paths of the media requests it got.
    media: ServedMedia,
    /// Community calls (`/_federation/v1/communities`) received so far; they are held like
    /// transactions, and answered 404 (this peer hosts no community).
    community_calls: Arc<std::sync::atomic::AtomicUsize>,
    _dir: tempfile::TempDir,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakePeer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakePeer {
    pub async fn start(domain: &str, region: &str) -> FakePeer {
        let dir = tempfile::tempdir().expect("temp dir");
        let ck = rcgen::generate_simple_self_signed(vec![domain.to_string()]).expect("cert");
        let cert = dir.path().join("fake-cert.pem");
        std::fs::write(&cert, ck.cert.pem()).expect("cert");
        let key = federation::NodeKey::from_seed(
            federation::KeyId::parse("ed25519:fake").expect("id"),
            &[42; 32],
            4_000_000_000_000,
        );
        let doc =
            serde_json::to_vec(&federation::KeyDocument::new(domain, &key, &[]).expect("doc"))
                .expect("json");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocols")
            .with_no_client_auth()
            .with_single_cert(
                vec![ck.cert.der().clone()],
                rustls_pki_types::PrivateKeyDer::Pkcs8(ck.signing_key.serialize_der().into()),
            )
            .expect("server config");
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let doc = Bytes::from(doc);
        let received: Arc<std::sync::Mutex<Vec<Value>>> = Arc::default();
        let inbox = received.clone();
        let (held, held_rx) = tokio::sync::watch::channel(false);
        let unavailable: Arc<std::sync::atomic::AtomicBool> = Arc::default();
        let refusing = unavailable.clone();
        let media: ServedMedia = Arc::default();
        let served = media.clone();
        let community_calls: Arc<std::sync::atomic::AtomicUsize> = Arc::default();
        let calls = community_calls.clone();
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let doc = doc.clone();
                let inbox = inbox.clone();
                let held_rx = held_rx.clone();
                let refusing = refusing.clone();
                let served = served.clone();
                let calls = calls.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(
                        move |req: Request<hyper::body::Incoming>| {
                            let doc = doc.clone();
                            let inbox = inbox.clone();
                            let mut held_rx = held_rx.clone();
                            let refusing = refusing.clone();
                            let served = served.clone();
                            let calls = calls.clone();
                            async move {
                                let path = req.uri().path().to_string();
                                let transaction = path.starts_with("/_federation/v1/transactions/");
                                let media_part = path
                                    .strip_prefix("/_federation/v1/media/")
                                    .and_then(|r| r.split_once('/'))
                                    .map(|(id, p)| (id.to_string(), p.parse::<usize>().ok()));
                                let (status, body) = if path == "/_federation/v1/keys" {
                                    (StatusCode::OK, doc)
                                } else if let Some((id, part)) = media_part {
                                    let mut m = served.lock().unwrap_or_else(|p| p.into_inner());
                                    m.1.push(path.clone());
                                    const PART: usize = 256 * 1024;
                                    let cut = m.2.get(&id).copied().unwrap_or(usize::MAX);
                                    match (m.0.get(&id), part) {
                                        (Some(_), Some(n)) if n >= cut => (
                                            StatusCode::SERVICE_UNAVAILABLE,
                                            Bytes::from_static(b"{}"),
                                        ),
                                        (Some(b), Some(n)) if n * PART < b.len() => (
                                            StatusCode::OK,
                                            b.slice(n * PART..((n + 1) * PART).min(b.len())),
                                        ),
                                        _ => (StatusCode::NOT_FOUND, Bytes::from_static(b"{}")),
                                    }
                                } else if path == "/_federation/v1/communities" {
                                    calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                                    let _ = held_rx.wait_for(|h| !*h).await;
                                    (
                                        StatusCode::NOT_FOUND,
                                        Bytes::from_static(
                                            br#"{"error":{"code":"not_found","message":"no such community"}}"#,
                                        ),
                                    )
                                } else if transaction
                                    && refusing.load(std::sync::atomic::Ordering::SeqCst)
                                {
                                    (StatusCode::SERVICE_UNAVAILABLE, Bytes::from_static(b"{}"))
                                } else if transaction {
                                    let _ = held_rx.wait_for(|h| !*h).await;
                                    // Taken as applied, and kept for the test to read.
                                    let bytes = req
                                        .into_body()
                                        .collect()
                                        .await
                                        .map(|b| b.to_bytes())
                                        .unwrap_or_default();
                                    let txn: Value =
                                        serde_json::from_slice(&bytes).unwrap_or_default();
                                    let results: serde_json::Map<String, Value> = txn["envelopes"]
                                        .as_array()
                                        .map(|a| {
                                            a.iter()
                                                .filter_map(|e| e["id"].as_str())
                                                .map(|id| (id.to_string(), json!({})))
                                                .collect()
                                        })
                                        .unwrap_or_default();
                                    inbox.lock().unwrap_or_else(|p| p.into_inner()).push(txn);
                                    (
                                        StatusCode::OK,
                                        Bytes::from(json!({"results": results}).to_string()),
                                    )
                                } else {
                                    (StatusCode::NOT_FOUND, Bytes::from_static(b"{}"))
                                };
                                let mut r = hyper::Response::new(Full::new(body));
                                *r.status_mut() = status;
                                Ok::<_, std::convert::Infallible>(r)
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        FakePeer {
            domain: domain.to_string(),
            region: region.to_string(),
            key,
            port,
            cert,
            received,
            held,
            unavailable,
            media,
            community_calls,
            _dir: dir,
            task,
        }
    }

    /// Serves `bytes` as media `id`, in parts of 256 KiB, to any requester: all of it, also
    /// after [`FakePeer::serve_media_partly`].
    pub fn serve_media(&self, id: &str, bytes: Vec<u8>) {
        let mut m = self.media.lock().unwrap_or_else(|p| p.into_inner());
        m.0.insert(id.to_string(), Bytes::from(bytes));
        m.2.remove(id);
    }

    /// Serves media `id` like [`FakePeer::serve_media`], but only its first `parts` parts: the
    /// others are answered 503 (a fetch that stays unfinished).
    pub fn serve_media_partly(&self, id: &str, bytes: Vec<u8>, parts: usize) {
        let mut m = self.media.lock().unwrap_or_else(|p| p.into_inner());
        m.0.insert(id.to_string(), Bytes::from(bytes));
        m.2.insert(id.to_string(), parts);
    }

    /// The paths of the media requests this peer got, in order.
    pub fn media_requests(&self) -> Vec<String> {
        self.media
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .1
            .clone()
    }

    /// How many community calls this peer has received.
    pub fn community_calls(&self) -> usize {
        self.community_calls
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// From now on, transactions and community calls are held unanswered until
    /// [`FakePeer::release`] (a peer that is up but slow, or hung).
    pub fn hold(&self) {
        self.held.send_replace(true);
    }

    /// Answers the held transactions and calls, and every later one, at once.
    pub fn release(&self) {
        self.held.send_replace(false);
    }

    /// While `on`, transactions are answered 503 (a peer that is down behind its proxy): the
    /// node keeps what it queued and tries again later.
    pub fn unavailable(&self, on: bool) {
        self.unavailable
            .store(on, std::sync::atomic::Ordering::SeqCst);
    }

    /// Stops accepting connections (a peer that went down); connections already open stay.
    pub fn stop_listening(&self) {
        self.task.abort();
    }

    /// Every envelope nodes have sent to this peer so far.
    pub fn envelopes(&self) -> Vec<Value> {
        self.received
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .flat_map(|t| t["envelopes"].as_array().cloned().unwrap_or_default())
            .collect()
    }

    /// An envelope from this peer, signed with its key.
    pub fn envelope(
        &self,
        id: &str,
        destination: &str,
        kind: federation::Kind,
        content: Value,
    ) -> federation::Envelope {
        let mut e =
            federation::Envelope::new(id, &self.domain, destination, now_ms(), kind, content)
                .expect("envelope");
        e.sign(&self.key).expect("sign");
        e
    }

    /// A `state` envelope for `destination`: the group `conv` as this peer hosts it, named
    /// `name`, with `owner` (also the actor) and `members`.
    pub fn group_state(
        &self,
        id: &str,
        destination: &str,
        conv: &str,
        name: &str,
        owner: &str,
        members: &[&str],
    ) -> federation::Envelope {
        let mut list = vec![json!({"user": owner, "role": "owner"})];
        list.extend(members.iter().map(|m| json!({"user": m, "role": "member"})));
        self.envelope(
            id,
            destination,
            federation::Kind::Membership,
            json!({"type": "state", "conversation": conv, "kind": "group", "name": name,
                   "public": false, "actor": owner, "members": list}),
        )
    }

    /// `POST path` to `node` with `body`, signed as this peer for `node`'s domain `destination`
    /// now (a community call's body is its signed envelope).
    pub async fn post(&self, node: &TestNode, path: &str, body: Bytes, destination: &str) -> Reply {
        let auth = federation::sign_request(
            &self.key,
            "POST",
            path,
            &self.domain,
            destination,
            now_ms(),
            &body,
        );
        let req = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header("host", "localhost")
            .header("authorization", auth)
            .header("content-type", "application/json")
            .body(Full::new(body))
            .expect("request");
        node.client().send(req).await
    }

    /// `PUT /_federation/v1/transactions/{txn}` to `node` with `body`, signed as this peer at
    /// time `ts` for `destination` (use the node's domain and [`now_ms`] for a proper one).
    pub async fn put(
        &self,
        node: &TestNode,
        txn: &str,
        body: &Value,
        destination: &str,
        ts: u64,
        key: &federation::NodeKey,
    ) -> Reply {
        let path = format!("/_federation/v1/transactions/{txn}");
        let body = Bytes::from(serde_json::to_vec(body).expect("json"));
        let auth =
            federation::sign_request(key, "PUT", &path, &self.domain, destination, ts, &body);
        let req = Request::builder()
            .method(Method::PUT)
            .uri(path)
            .header("host", "localhost")
            .header("authorization", auth)
            .header("content-type", "application/json")
            .body(Full::new(body))
            .expect("request");
        node.client().send(req).await
    }
}

/// Now, in Unix ms.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Polls `check` every 50 ms until it returns `Some`, for at most `secs` seconds.
pub async fn eventually<T, F, Fut>(secs: u64, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {secs} s waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The built-in configuration moved to loopback port 0 and `data_dir`, plus `extra` TOML.
pub fn test_config(data_dir: &Path, extra: &str) -> Config {
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[storage]\ndata_dir = \"{}\"\n{extra}",
        data_dir.display()
    );
    let mut config = Config::parse(&text, "test").expect("test config");
    no_rate_limits_unless_asked(&mut config, extra);
    config
}

/// Every test client shares 127.0.0.1, so the per-client limits (`[rate_limit]`) are off
/// unless a test's own TOML sets that table.
fn no_rate_limits_unless_asked(config: &mut Config, extra: &str) {
    if !extra.contains("[rate_limit]") {
        config.rate_limit.disable_all();
    }
}

/// A response, fully read (a [`shanliao_client::Reply`] whose helpers panic, for tests).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl From<shanliao_client::Reply> for Reply {
    fn from(r: shanliao_client::Reply) -> Reply {
        Reply {
            status: r.status,
            headers: r.headers,
            body: r.body,
        }
    }
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    /// The `error.code` of an error answer, checking the error shape on the way.
    pub fn error_code(&self) -> String {
        let e = ApiError::parse(&self.body).unwrap_or_else(|| {
            panic!("not an error body: {}", String::from_utf8_lossy(&self.body))
        });
        assert!(!e.message.is_empty(), "error without message: {e:?}");
        e.code
    }
}

/// An HTTPS client for one node: a [`shanliao_client::Endpoint`] (a fresh connection per
/// request, 30 s for an answer) whose every answer is checked against the API document, and
/// whose helpers panic instead of returning errors. It is also a
/// [`shanliao_client::Transport`], so the typed calls of [`shanliao_client::Api`] run through
/// the same check.
#[derive(Clone, Debug)]
pub struct Client {
    endpoint: Endpoint,
}

impl Transport for Client {
    async fn send(
        &mut self,
        req: Request<Full<Bytes>>,
    ) -> Result<shanliao_client::Reply, ClientError> {
        let r = Client::send(self, req).await;
        Ok(shanliao_client::Reply {
            status: r.status,
            headers: r.headers,
            body: r.body,
        })
    }

    fn host(&self) -> &str {
        self.endpoint.host()
    }
}

impl Client {
    pub fn new(addr: SocketAddr, cert_file: &Path) -> Client {
        let endpoint = Endpoint::new(addr, cert_file)
            .expect("cert file")
            .with_timeout(Duration::from_secs(30));
        Client { endpoint }
    }

    /// The node's address and trust, for calls of [`shanliao_client`] itself.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// A TLS connection (HTTP/1.1 offered by ALPN), not yet used.
    pub async fn connect_tls(&self) -> std::io::Result<TlsStream<TcpStream>> {
        self.endpoint.connect_tls().await.map_err(io_error)
    }

    /// A TLS connection with HTTP/2 agreed by ALPN, not yet used.
    pub async fn connect_tls_h2(&self) -> std::io::Result<TlsStream<TcpStream>> {
        self.endpoint.connect_tls_h2().await.map_err(io_error)
    }

    /// Opens the event WebSocket with a bearer token (or none, to authenticate by frame).
    pub async fn ws(&self, token: Option<&str>, since: Option<&str>) -> Ws {
        self.endpoint
            .events(token, since)
            .await
            .unwrap_or_else(|e| panic!("WebSocket handshake: {e}"))
    }

    /// Sends one request over a fresh HTTP/1.1 connection.
    pub async fn send(&self, req: Request<Full<Bytes>>) -> Reply {
        let (method, path) = (req.method().to_string(), req.uri().path().to_string());
        let reply = self
            .endpoint
            .send(req)
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        checked(&method, &path, reply.into())
    }

    /// Sends one request over a fresh HTTP/2 connection (ALPN h2).
    pub async fn send_h2(&self, req: Request<Full<Bytes>>) -> (Reply, Option<Vec<u8>>) {
        let (method, path) = (req.method().to_string(), req.uri().path().to_string());
        let (reply, alpn) = self
            .endpoint
            .send_h2(req)
            .await
            .unwrap_or_else(|e| panic!("{method} {path} over h2: {e}"));
        (checked(&method, &path, reply.into()), alpn)
    }

    /// `method path` with an optional bearer token and JSON body.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Reply {
        let method = Method::from_bytes(method.as_bytes()).expect("method");
        let req = shanliao_client::request(self.endpoint.host(), method, path, token, body)
            .expect("request");
        self.send(req).await
    }

    /// A request with a raw body and content type.
    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        body: Vec<u8>,
    ) -> Reply {
        let method = Method::from_bytes(method.as_bytes()).expect("method");
        let req = shanliao_client::raw_request(
            self.endpoint.host(),
            method,
            path,
            token,
            Some(content_type),
            Bytes::from(body),
        )
        .expect("request");
        self.send(req).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.call("GET", path, token, None).await
    }

    /// Registers `handle` with `phone` and password `password-<handle>`; panics unless 201.
    pub async fn register(&self, handle: &str, phone: &str) {
        let form = Registration {
            phone,
            handle,
            password: &format!("password-{handle}"),
            nickname: &format!("Nick {handle}"),
            accept_policy: POLICY,
        };
        Api::register(&mut self.clone(), &form)
            .await
            .unwrap_or_else(|e| panic!("register {handle}: {e}"));
    }

    /// Logs in as `handle` (registered by [`Client::register`]); returns (token, device id).
    pub async fn login(&self, handle: &str) -> (String, String) {
        let s = Api::login(&mut self.clone(), handle, &format!("password-{handle}"))
            .await
            .unwrap_or_else(|e| panic!("login {handle}: {e}"));
        (s.token, s.device_id)
    }

    /// Sends a text message; returns the 201 body.
    pub async fn say(&self, token: &str, conv: &str, txn: &str, text: &str) -> Value {
        let sent = self
            .clone()
            .send_text(token, conv, txn, text)
            .await
            .unwrap_or_else(|e| panic!("send: {e}"));
        assert!(!sent.queued, "send: 202, not 201: {}", sent.body);
        sent.body
    }

    /// Opens a direct conversation from `token`'s user to `with`; returns its id.
    pub async fn direct(&self, token: &str, with: &str) -> String {
        self.clone()
            .create_conversation(token, &NewConversation::Direct { with })
            .await
            .unwrap_or_else(|e| panic!("direct: {e}"))
    }

    /// The texts of a conversation's history as `token` sees it, oldest first.
    pub async fn texts(&self, token: &str, conv: &str) -> Vec<String> {
        let history = self
            .clone()
            .history(token, conv, 200)
            .await
            .unwrap_or_else(|e| panic!("history: {e}"));
        shown(&history)
    }

    /// Like [`Client::texts`], but an empty list when the history cannot be read (not a
    /// member, or not yet on this node): for polling across nodes.
    pub async fn visible_texts(&self, token: &str, conv: &str) -> Vec<String> {
        match self.clone().history(token, conv, 200).await {
            Ok(history) => shown(&history),
            Err(ClientError::Status { .. }) => Vec::new(),
            Err(e) => panic!("history: {e}"),
        }
    }

    /// Grants or revokes a purpose; returns the reply.
    pub async fn consent(&self, token: &str, purpose: &str, granted: bool) -> Reply {
        self.call(
            "PUT",
            &format!("/api/v1/me/consents/{purpose}"),
            Some(token),
            Some(&json!({ "granted": granted })),
        )
        .await
    }

    /// Registers and logs in; returns the token.
    pub async fn user(&self, handle: &str, phone: &str) -> String {
        self.register(handle, phone).await;
        self.login(handle).await.0
    }
}

/// A history's texts oldest first, `<recalled>` for a message without text.
fn shown(history: &History) -> Vec<String> {
    history
        .texts()
        .into_iter()
        .map(|t| t.unwrap_or_else(|| "<recalled>".to_string()))
        .collect()
}

/// The I/O error under a failed connection (what tests of connection limits look at).
fn io_error(e: ClientError) -> std::io::Error {
    match e {
        ClientError::Connect(e) | ClientError::Tls(e) => e,
        other => std::io::Error::other(other),
    }
}

/// A WebSocket to a node.
pub type Ws = shanliao_client::EventStream;

/// The next event frame on `ws` as JSON (pings skipped), checked against the API document's
/// `Event`; panics after 10 s.
pub async fn next_event(ws: &mut Ws) -> Value {
    let text = tokio::time::timeout(Duration::from_secs(10), events::next_text(ws))
        .await
        .expect("an event within 10 s")
        .unwrap_or_else(|e| panic!("no event: {e}"));
    let event = serde_json::from_str(text.as_str()).expect("event JSON");
    if let Err(e) = openapi::check_event(&event) {
        panic!("event breaks openapi.json: {e}");
    }
    event
}

/// Events of type `kind` only, skipping others (sign-in notices and membership events).
pub async fn next_of(ws: &mut Ws, kind: &str) -> Value {
    loop {
        let e = next_event(ws).await;
        if e["type"] == kind {
            return e;
        }
    }
}

/// `reply` to `method path`, after checking it against the API document (see [`openapi`]).
fn checked(method: &str, path: &str, reply: Reply) -> Reply {
    let content_type = reply
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    if let Err(e) = openapi::check_response(
        method,
        path,
        reply.status.as_u16(),
        content_type,
        &reply.body,
    ) {
        panic!("response breaks openapi.json: {e}");
    }
    reply
}

/// Distinct, valid Chinese mobile numbers for tests: `+86 139 0000 NNNN`.
pub fn phone(n: u32) -> String {
    format!("+86139{:08}", n)
}
