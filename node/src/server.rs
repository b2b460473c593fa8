//! Starting and stopping a node: opens the data directory, master key, database, TLS and
//! policy; accepts HTTPS connections (HTTP/1.1 and HTTP/2 by ALPN) with a connection limit,
//! handshake/header/idle timeouts and a graceful close; and shuts down gracefully when told to.
//!
//! Shutdown: one `watch` signal fans out. The accept loop stops accepting, every connection
//! is asked to finish its in-flight requests within `http.shutdown_grace_ms`, connection tasks
//! still running after that are aborted, and the database handle is dropped last.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::admin::{self, Retention};
use crate::config::Config;
use crate::crypto::{CryptoError, MasterKey};
use crate::erasure::Erasure;
use crate::federate::{FedError, HostLimits, Inbox, Outbox};
use crate::http::{Api, BodyPace, Sessions};
use crate::policy::{Policy, PolicyError};
use crate::ratelimit::LoginLimiter;
use crate::time::SharedClock;
use crate::tls::{self, TlsError};
use crate::wiring::{Services, WiringError, wire};
use storage::{Store, StoreError};

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    #[error("data directory {path}: {reason}")]
    DataDir { path: String, reason: String },
    #[error(transparent)]
    MasterKey(#[from] CryptoError),
    #[error("database: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error("cannot listen on {addr}: {reason}")]
    Bind { addr: SocketAddr, reason: String },
    #[error(transparent)]
    Signing(#[from] crate::signing::SigningError),
    #[error("{0}")]
    Federation(String),
    #[error(transparent)]
    Wiring(#[from] WiringError),
    #[error("admin socket {path}: {reason}")]
    AdminSocket { path: String, reason: String },
    #[error("start-up task failed")]
    Task,
}

/// A running node. Dropping it does not stop it; call [`Node::shutdown`].
#[derive(Debug)]
pub struct Node {
    addr: SocketAddr,
    domain: String,
    cert_file: PathBuf,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    outbox: Option<Outbox>,
    metrics_addr: Option<SocketAddr>,
}

impl Node {
    /// Opens everything and starts serving. Returns once the listener is bound.
    pub async fn start(config: Config, clock: SharedClock) -> Result<Node, StartError> {
        // Boxed: wiring every service makes this future large (over clippy's `large_futures`
        // bound), and every caller's future would carry it inline.
        Box::pin(Self::start_with(config, clock, None)).await
    }

    /// Like [`Node::start`], serving on `listener`, which the caller has already bound
    /// (`server.listen` is not used). A caller that must know the address before the node
    /// starts — to name it in other nodes' peer lists — keeps the port bound meanwhile,
    /// instead of freeing it and hoping nobody else takes it.
    pub async fn start_on(
        config: Config,
        clock: SharedClock,
        listener: std::net::TcpListener,
    ) -> Result<Node, StartError> {
        Box::pin(Self::start_with(config, clock, Some(listener))).await
    }

    async fn start_with(
        config: Config,
        clock: SharedClock,
        bound: Option<std::net::TcpListener>,
    ) -> Result<Node, StartError> {
        let cfg = config.clone();
        let (store, master, tls_files, policy) =
            tokio::task::spawn_blocking(move || open_all(&cfg))
                .await
                .map_err(|_| StartError::Task)??;
        let tls_config = tls::server_config(&tls_files)?;
        if tls_files.self_signed {
            tracing::warn!(
                cert = %tls_files.cert.display(),
                "serving a self-signed development certificate; set tls.cert_file and tls.key_file for production"
            );
        }
        let listener = match bound {
            Some(l) => l
                .set_nonblocking(true)
                .and_then(|()| TcpListener::from_std(l)),
            None => TcpListener::bind(config.server.listen).await,
        }
        .map_err(|e| StartError::Bind {
            addr: config.server.listen,
            reason: e.to_string(),
        })?;
        let addr = listener.local_addr().map_err(|e| StartError::Bind {
            addr: config.server.listen,
            reason: e.to_string(),
        })?;

        let limiter = Arc::new(LoginLimiter::new(
            config.security.login_max_failures.get() as u32,
            config.security.login_window_secs.get(),
            clock.clone(),
        ));
        let (stop, stopped) = watch::channel(false);
        let services = wire(
            &config,
            &store,
            &master,
            &clock,
            &policy,
            limiter,
            stopped.clone(),
        )
        .await?;
        let Services {
            hub,
            node_keys,
            peers,
            reach,
            outbox,
            directory,
            accounts,
            consents,
            messaging,
            media,
            erasure,
            retention,
            requests,
            policy,
            minors,
            real_name,
            page,
            exporter,
            friends,
            communities,
            search,
            behaviour,
            search_task,
            discovery,
        } = services;
        // Served as the key set is now (`node-admin keys rotate` changes it), publishing the
        // largest media this node takes; made once here so a node that cannot sign its
        // document does not start.
        let limits = federation::Limits {
            media_max_bytes: Some(config.media.max_bytes.get()),
        };
        let key_document = crate::signing::Published::new(
            node_keys.clone(),
            config.server.domain.as_str(),
            limits,
        );
        key_document.bytes()?;
        let domain = config.server.domain.as_str().to_string();
        let host_limits = HostLimits {
            recall_window_ms: config.messaging.recall_window_secs.get() * 1000,
            max_group_members: config.messaging.max_group_members.get() as usize,
            max_media_bytes: config.media.max_bytes.get(),
            friend_requests: storage::RequestLimits {
                max_pending: config.friends.max_pending_outgoing.get(),
                per_day: config.friends.requests_per_day.get(),
                declined_cooldown_ms: config.friends.declined_resend_days.get() * 86_400_000,
            },
        };
        let fetcher = crate::federate::Fetcher::new(
            store.clone(),
            master.clone(),
            peers.clone(),
            clock.clone(),
            Duration::from_secs(config.federation.retry_max_secs.get()),
            stopped.clone(),
        );
        let inbox = Inbox::new(
            store.clone(),
            master.clone(),
            peers.clone(),
            outbox.clone(),
            directory.clone(),
            hub.clone(),
            clock.clone(),
            host_limits,
            fetcher.clone(),
        );
        directory.attach_fetcher(fetcher.clone());
        // Remote members' calls to the communities this node hosts (issue 23); the files they
        // post come through the fetcher.
        let community_host = crate::federate::CommunityHost::new(
            communities.clone(),
            directory.clone(),
            peers.clone(),
            consents.clone(),
            store.clone(),
            clock.clone(),
            fetcher.clone(),
            config.media.max_bytes.get(),
        );
        fetcher.resume().await?;
        let sessions: Sessions = Default::default();
        let metrics = crate::http::metrics::Metrics::new(crate::http::metrics::Live {
            store: store.clone(),
            outbox: outbox.clone(),
            db_path: config.data_dir().join(storage::DB_FILE),
            peers: config
                .federation
                .peers
                .iter()
                .map(|p| p.domain.as_str().to_string())
                .collect(),
        });
        let admin_ctx = Arc::new(admin::Context {
            store: store.clone(),
            accounts: accounts.clone(),
            consents: consents.clone(),
            erasure: erasure.clone(),
            retention: retention.clone(),
            requests: requests.clone(),
            policy: policy.clone(),
            minors: minors.clone(),
            exporter: exporter.clone(),
            hub: hub.clone(),
            backup_key: master.backup_key(),
            master: master.clone(),
            node_keys: node_keys.clone(),
            reach: reach.clone(),
            domain: domain.clone(),
            clock: clock.clone(),
            runtime: admin::Runtime {
                started: Some(clock.now()),
                peers: config.federation.peers.clone(),
                db_file: config.data_dir().join(storage::DB_FILE),
                metrics: Some(metrics.clone()),
            },
        });
        let socket = admin::socket_path(config.data_dir());
        let admin_listener = admin::bind(&socket).map_err(|e| StartError::AdminSocket {
            path: socket.display().to_string(),
            reason: e.to_string(),
        })?;
        let admin_task = tokio::spawn(admin::serve(
            admin_listener,
            socket,
            admin_ctx,
            stopped.clone(),
        ));
        let outbox_handle = outbox.clone();
        let (metrics_task, metrics_addr) = match config.metrics.listen.0 {
            Some(at) => {
                let l = TcpListener::bind(at).await.map_err(|e| StartError::Bind {
                    addr: at,
                    reason: e.to_string(),
                })?;
                let bound = l.local_addr().ok();
                let task = crate::metrics_http::serve(l, metrics.clone(), stopped.clone());
                (Some(tokio::spawn(task)), bound)
            }
            None => (None, None),
        };
        let notices = policy.clone();
        let api = Arc::new(Api {
            accounts,
            consents,
            inbox,
            erasure: erasure.clone(),
            requests,
            messaging,
            media,
            policy,
            minors,
            real_name,
            page,
            exporter,
            friends,
            communities,
            community_host: community_host.clone(),
            search,
            behaviour,
            discovery: discovery.clone(),
            domain: config.server.domain.as_str().to_string(),
            max_body: config.http.max_body_bytes.get() as usize,
            sessions: sessions.clone(),
            key_document,
            directory,
            shutdown: stopped.clone(),
            throttle: crate::http::Throttle::new(&config.rate_limit, clock.clone()),
            web: crate::http::WebApp::new(),
            trusted_proxies: config.http.trusted_proxies.clone(),
            metrics: metrics.clone(),
            readiness: crate::http::Readiness {
                store: store.clone(),
                data_dir: config.data_dir().to_path_buf(),
                min_free_bytes: config.storage.min_free_bytes.get(),
            },
        });
        let limits = Limits {
            max_connections: config.http.max_connections.get() as usize,
            header_timeout: Duration::from_millis(config.http.header_read_timeout_ms.get()),
            idle_timeout: Duration::from_millis(config.http.idle_timeout_ms.get()),
            grace: Duration::from_millis(config.http.shutdown_grace_ms.get()),
            pace: BodyPace {
                timeout: Duration::from_millis(config.http.body_read_timeout_ms.get()),
                min_bytes_per_sec: config.http.body_min_bytes_per_sec.get(),
                linger: Duration::from_millis(config.http.linger_ms.get()),
                linger_bytes: config.http.linger_max_bytes.get(),
            },
        };
        let acceptor = TlsAcceptor::from(tls_config);
        let purge_every = Duration::from_secs(config.messaging.purge_interval_secs.get());
        let purger = tokio::spawn(purge_loop(
            store.clone(),
            discovery.clone(),
            purge_every,
            stopped.clone(),
        ));
        let maintainer = tokio::spawn(maintenance_loop(
            erasure,
            notices,
            retention,
            community_host.clone(),
            Duration::from_secs(config.retention.interval_secs.get()),
            stopped.clone(),
            metrics.clone(),
        ));
        let reach_saver = tokio::spawn(crate::federate::keep_reach_saved(
            store.clone(),
            reach.clone(),
            stopped.clone(),
        ));
        let task = tokio::spawn(async move {
            serve(listener, acceptor, api, limits, stopped).await;
            end_sessions(&sessions, limits.grace).await;
            let _ = purger.await;
            let _ = maintainer.await;
            let _ = admin_task.await;
            if let Some(t) = search_task {
                let _ = t.await;
            }
            if let Some(t) = metrics_task {
                let _ = t.await;
            }
            outbox.shutdown().await;
            fetcher.shutdown().await;
            // After the last request to a peer: what it learned of their reachability stays.
            let _ = reach_saver.await;
            crate::federate::save_reach(&store, &reach).await;
            // The last handle to the database goes here, after every connection has ended;
            // dropping it drains and joins the writer thread, so do it off the async threads.
            let (jobs, commits) = store.write_stats();
            tracing::info!(jobs, commits, "database writer finished");
            let _ = tokio::task::spawn_blocking(move || drop((metrics, store))).await;
        });
        tracing::info!(%addr, "node started");
        Ok(Node {
            addr,
            domain: config.server.domain.as_str().to_string(),
            cert_file: tls_files.cert,
            stop,
            task,
            outbox: Some(outbox_handle),
            metrics_addr,
        })
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address the metrics listener is bound to, when `metrics.listen` is set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The URL clients use: the domain's host with the bound port.
    pub fn url(&self) -> String {
        let host = self.domain.split(':').next().unwrap_or(&self.domain);
        format!("https://{host}:{}/", self.addr.port())
    }

    /// The PEM certificate the node serves (for clients of a self-signed node to trust).
    pub fn cert_file(&self) -> &std::path::Path {
        &self.cert_file
    }

    /// Stops accepting, lets in-flight requests finish (bounded by the grace period), closes
    /// the database, and returns when all of it is done.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
        // This handle holds the database too; let it go off the async threads.
        let outbox = self.outbox.take();
        let _ = tokio::task::spawn_blocking(move || drop(outbox)).await;
        tracing::info!("node stopped");
    }
}

impl Node {
    /// Asks every peer that received some of the local user `handle`'s data to erase it, and
    /// tracks their acknowledgements ([`Node::erasure_status`]). Account deletion calls this;
    /// returns the peers asked.
    pub async fn request_erasure(&self, handle: &str) -> Result<Vec<String>, FedError> {
        let outbox = self.outbox.as_ref().ok_or(FedError::NoSuchUser)?;
        let id = outbox
            .store()
            .user_by_handle(handle.to_string())
            .await?
            .ok_or(FedError::NoSuchUser)?;
        let address = format!("{handle}@{}", self.domain);
        outbox
            .request_erasure(id, &address)
            .await
            .map_err(FedError::Refused)
    }

    /// The outbox and the id of local user `handle`.
    async fn local_user(&self, handle: &str) -> Result<(&Outbox, u64), FedError> {
        let outbox = self.outbox.as_ref().ok_or(FedError::NoSuchUser)?;
        let id = outbox
            .store()
            .user_by_handle(handle.to_string())
            .await?
            .ok_or(FedError::NoSuchUser)?;
        Ok((outbox, id))
    }

    /// How many media fetches from other nodes are unfinished (kept or resumed), for tests.
    pub async fn pending_media_fetches(&self) -> Result<usize, FedError> {
        let outbox = self.outbox.as_ref().ok_or(FedError::NoSuchUser)?;
        Ok(outbox.store().fetch_jobs().await?.len())
    }

    /// The node's store, for the crate's tests of what its background work leaves.
    #[cfg(test)]
    pub(crate) fn store(&self) -> Option<&Store> {
        self.outbox.as_ref().map(Outbox::store)
    }

    /// How many envelopes are durably queued for `peer` (for tests: what is left to send).
    pub async fn queued_for(&self, peer: &str) -> Result<u64, FedError> {
        let outbox = self.outbox.as_ref().ok_or(FedError::NoSuchUser)?;
        let counts = outbox.store().outbound_counts().await?;
        Ok(counts
            .into_iter()
            .find(|(d, _)| d == peer)
            .map_or(0, |(_, n)| n))
    }

    /// Failed delivery attempts to `peer` since start, as the metrics count them (for tests
    /// moving a manual clock through the backoff).
    pub fn delivery_failures(&self, peer: &str) -> u64 {
        self.outbox.as_ref().map_or(0, |o| {
            o.delivery_stats()
                .iter()
                .filter(|s| s.0 == peer)
                .map(|s| s.2)
                .max()
                .unwrap_or(0)
        })
    }

    /// How many media chunks the node stores, any owner's (for tests of removal).
    pub async fn stored_media_chunks(&self) -> Result<u64, FedError> {
        let outbox = self.outbox.as_ref().ok_or(FedError::NoSuchUser)?;
        Ok(outbox.store().media_chunk_count().await?)
    }

    /// For each peer asked to erase `handle`'s data: whether it has acknowledged.
    pub async fn erasure_status(&self, handle: &str) -> Result<Vec<(String, bool)>, FedError> {
        let (outbox, id) = self.local_user(handle).await?;
        Ok(outbox
            .store()
            .erasure_status(id)
            .await?
            .into_iter()
            .map(|(peer, _, ack)| (peer, ack.is_some()))
            .collect())
    }

    /// The local user `handle`'s disclosure log, as their export shows it: (peer, kind,
    /// outcome, count) — outcome `delivered`, `refused`, `dropped` or (before schema 5)
    /// `queued`.
    pub async fn disclosures(
        &self,
        handle: &str,
    ) -> Result<Vec<(String, String, String, u64)>, FedError> {
        let (outbox, id) = self.local_user(handle).await?;
        Ok(outbox
            .store()
            .transfers_of(id)
            .await?
            .into_iter()
            .map(|(peer, kind, outcome, _, _, count)| (peer, kind, outcome, count))
            .collect())
    }
}

/// Runs a node until `signal` completes, then shuts it down gracefully.
pub async fn run(
    config: Config,
    clock: SharedClock,
    signal: impl Future<Output = ()>,
    on_ready: impl FnOnce(&Node),
) -> Result<(), StartError> {
    let node = Node::start(config, clock).await?;
    on_ready(&node);
    signal.await;
    tracing::info!("shutdown requested");
    node.shutdown().await;
    Ok(())
}

/// Purges delivered messages nobody keeps, and expired nearby cells, every `every`, until
/// shutdown.
async fn purge_loop(
    store: Store,
    discovery: crate::discovery::Discovery,
    every: Duration,
    mut stopped: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                match store.purge_delivered().await {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(messages = n, "purged delivered messages"),
                    Err(e) => tracing::error!(error = %e, "purging delivered messages failed"),
                }
                if let Err(e) = discovery.purge_expired_cells().await {
                    tracing::error!(error = %e, "purging expired nearby cells failed");
                }
            }
            _ = stopped.changed() => return,
        }
    }
}

/// Runs due account erasures and finishes notices to all users (a policy publication's) at
/// start, resuming any a stop interrupted, and every `every` after, and applies retention (and
/// forgets community calls too old to be repeated) every `every`, until shutdown.
async fn maintenance_loop(
    erasure: Erasure,
    policy: crate::policy::PolicyBook,
    retention: Retention,
    community_host: crate::federate::CommunityHost,
    every: Duration,
    mut stopped: watch::Receiver<bool>,
    metrics: crate::http::metrics::Metrics,
) {
    let mut tick = tokio::time::interval(every);
    let mut first = true;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                match erasure.run_due().await {
                    Ok(0) => {}
                    Ok(n) => {
                        metrics.erasures(n as u64);
                        tracing::info!(accounts = n, "account erasures finished");
                    }
                    Err(e) => tracing::error!(error = %e, "running account erasures failed"),
                }
                match policy.resume_notices().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(notices = n, "unfinished notices to all users left"),
                    Err(e) => tracing::error!(error = %e, "leaving unfinished notices failed"),
                }
                // Retention waits one interval after start, so a restart does not begin with a
                // large purge (erasures above resume at once).
                if std::mem::take(&mut first) {
                    continue;
                }
                let ran = retention.run(false, "node").await;
                if let Ok(c) = &ran {
                    metrics.retention(&[("messages", c.messages), ("undelivered", c.undelivered), ("media", c.media), ("sessions", c.sessions), ("security_logs", c.security_logs)]);
                }
                match ran {
                    Ok(c) if c.total() > 0 => tracing::info!(
                        messages = c.messages,
                        undelivered = c.undelivered,
                        media = c.media,
                        sessions = c.sessions,
                        security_logs = c.security_logs,
                        "retention applied"
                    ),
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %e, "applying retention failed"),
                }
                match community_host.forget_expired_calls().await {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(calls = n, "forgot expired community calls"),
                    Err(e) => tracing::error!(error = %e, "forgetting expired community calls failed"),
                }
            }
            _ = stopped.changed() => return,
        }
    }
}

/// Waits for the WebSocket sessions (they close on the shutdown signal), aborting any still
/// open after the grace period.
async fn end_sessions(sessions: &Sessions, grace: Duration) {
    let mut set = std::mem::take(&mut *sessions.lock().unwrap_or_else(|p| p.into_inner()));
    let all = async { while set.join_next().await.is_some() {} };
    if tokio::time::timeout(grace, all).await.is_err() {
        tracing::warn!("grace period over; closing the remaining event streams");
    }
    set.abort_all();
    while set.join_next().await.is_some() {}
}

fn open_all(config: &Config) -> Result<(Store, MasterKey, tls::TlsFiles, Policy), StartError> {
    let dir = config.data_dir();
    create_private_dir(dir)?;
    let db_path = dir.join(storage::DB_FILE);
    let db_exists = Store::exists(&db_path);
    let master = MasterKey::load_or_create(&config.master_key_path(), !db_exists)?;
    let (store, _) = Store::open(&db_path, |existing| match existing {
        Some(check) if master.verify_check_value(check) => Ok(None),
        Some(_) => Err(StoreError::Db(
            "the master key does not belong to this database (wrong or replaced key file)".into(),
        )),
        None => master
            .check_value()
            .map(Some)
            .map_err(|_| StoreError::Worker),
    })?;
    let tls_files = tls::ensure_files(config)?;
    let policy = Policy::load(config)?;
    Ok((store, master, tls_files, policy))
}

fn create_private_dir(dir: &std::path::Path) -> Result<(), StartError> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| StartError::DataDir {
            path: dir.display().to_string(),
            reason: e.to_string(),
        })
}

#[derive(Debug, Clone, Copy)]
struct Limits {
    max_connections: usize,
    header_timeout: Duration,
    idle_timeout: Duration,
    grace: Duration,
    pace: BodyPace,
}

/// When a connection last moved bytes, how many requests it has in flight (being handled:
/// from the call of the service until the handler returns its response), how many responses
/// are still being sent, and when the head of the next HTTP/1.1 request began to arrive. A
/// connection with nothing in flight is closed when it has moved no bytes for the idle timeout
/// (the header timeout before its first byte) — also while a response is being sent, so a
/// client that stops reading one does not hold its slot — or when a request head has been
/// arriving for longer than the header timeout. hyper's own header timeout is not used: it runs
/// from the moment a connection waits for a request, so it would cut idle keep-alive
/// connections at the header timeout instead of the idle timeout.
#[derive(Debug)]
struct Activity {
    start: tokio::time::Instant,
    last_ms: AtomicU64,
    seen: AtomicBool,
    in_flight: AtomicUsize,
    responding: AtomicUsize,
    /// HTTP/1.1: 1 + the ms (since `start`) of the first byte read with nothing in flight or
    /// being sent, that is the start of a request head; 0 while no head is arriving. Unused for HTTP/2,
    /// whose idle connections carry frames (pings, settings) that are not requests.
    head_ms: AtomicU64,
    h1: bool,
}

impl Activity {
    fn new(h1: bool) -> Self {
        Activity {
            start: tokio::time::Instant::now(),
            last_ms: AtomicU64::new(0),
            seen: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            responding: AtomicUsize::new(0),
            head_ms: AtomicU64::new(0),
            h1,
        }
    }
    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }
    fn touch(&self) {
        self.seen.store(true, Ordering::Relaxed);
        self.last_ms.store(self.now_ms(), Ordering::Relaxed);
    }
    fn read_bytes(&self) {
        if self.h1
            && self.in_flight.load(Ordering::Relaxed) == 0
            && self.responding.load(Ordering::Relaxed) == 0
        {
            let _ = self.head_ms.compare_exchange(
                0,
                self.now_ms() + 1,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
        self.touch();
    }
    fn at(&self, ms: u64) -> tokio::time::Instant {
        self.start + Duration::from_millis(ms)
    }
    /// When this connection is due to be closed if nothing changes meanwhile.
    fn deadline(&self, limits: &Limits) -> tokio::time::Instant {
        let idle = if self.seen.load(Ordering::Relaxed) {
            limits.idle_timeout
        } else {
            limits.header_timeout
        };
        let idle_end = self.at(self.last_ms.load(Ordering::Relaxed)) + idle;
        match self.head_ms.load(Ordering::Relaxed) {
            0 => idle_end,
            h => idle_end.min(self.at(h - 1) + limits.header_timeout),
        }
    }
    fn sending(&self) -> bool {
        self.responding.load(Ordering::Relaxed) != 0
    }
    fn head_arriving(&self) -> bool {
        self.head_ms.load(Ordering::Relaxed) != 0
    }
    fn expired(&self, limits: &Limits) -> bool {
        self.in_flight.load(Ordering::Relaxed) == 0
            && tokio::time::Instant::now() >= self.deadline(limits)
    }
    fn request_started(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.head_ms.store(0, Ordering::Relaxed);
        InFlight(self.clone())
    }
    fn responding(self: &Arc<Self>) -> Responding {
        self.responding.fetch_add(1, Ordering::Relaxed);
        Responding(self.clone())
    }
}

/// Counts a request as in flight until dropped.
#[derive(Debug)]
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.touch();
    }
}

/// Counts a response as being sent until dropped.
#[derive(Debug)]
struct Responding(Arc<Activity>);

impl Drop for Responding {
    fn drop(&mut self) {
        self.0.responding.fetch_sub(1, Ordering::Relaxed);
        self.0.touch();
    }
}

/// A response body counted as being sent until it is sent or dropped, so that bytes the client
/// sends meanwhile (a pipelined request) do not start the head timer under a long answer.
struct Tracked {
    body: crate::http::Body,
    _responding: Responding,
}

impl hyper::body::Body for Tracked {
    type Data = bytes::Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<bytes::Bytes>, std::io::Error>>> {
        Pin::new(&mut self.body)
            .poll_frame(cx)
            .map_err(|e| std::io::Error::other(e.to_string()))
    }
    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }
    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

/// An I/O stream that records activity on every byte moved, and closes gracefully: its
/// shutdown (hyper's, at the end of a connection, or the WebSocket's) sends TLS close_notify
/// and the TCP FIN first, then reads and discards what the client still sends until it closes
/// too, for at most `linger` and `linger_bytes` (RFC 9112 §9.6). Closing outright under a
/// client that is still sending — a body the node answered without reading — resets the
/// connection, and the client loses the answer it has not read yet.
#[derive(Debug)]
struct ActivityIo<S> {
    inner: S,
    activity: Arc<Activity>,
    linger: Duration,
    linger_bytes: u64,
    closing: Closing,
}

#[derive(Debug)]
enum Closing {
    Open,
    Draining {
        until: Pin<Box<tokio::time::Sleep>>,
        left: u64,
    },
    Closed,
}

impl<S> ActivityIo<S> {
    fn new(inner: S, activity: Arc<Activity>, pace: &BodyPace) -> Self {
        ActivityIo {
            inner,
            activity,
            linger: pace.linger,
            linger_bytes: pace.linger_bytes,
            closing: Closing::Open,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ActivityIo<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.read_bytes();
        }
        r
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for ActivityIo<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        loop {
            match &mut this.closing {
                Closing::Open => {
                    // Flushes what is written, sends close_notify, shuts the TCP write half.
                    let r = std::task::ready!(Pin::new(&mut this.inner).poll_shutdown(cx));
                    if r.is_err() || this.linger.is_zero() || this.linger_bytes == 0 {
                        this.closing = Closing::Closed;
                        return Poll::Ready(r);
                    }
                    this.closing = Closing::Draining {
                        until: Box::pin(tokio::time::sleep(this.linger)),
                        left: this.linger_bytes,
                    };
                }
                Closing::Draining { until, left } => {
                    if until.as_mut().poll(cx).is_ready() {
                        this.closing = Closing::Closed;
                        continue;
                    }
                    let mut scratch = [0u8; 4096];
                    let mut buf = ReadBuf::new(&mut scratch);
                    match Pin::new(&mut this.inner).poll_read(cx, &mut buf) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(Ok(())) if !buf.filled().is_empty() => {
                            let n = buf.filled().len() as u64;
                            *left = left.saturating_sub(n);
                            if *left == 0 {
                                this.closing = Closing::Closed;
                            }
                        }
                        // The client closed too (or the connection failed): done.
                        Poll::Ready(_) => this.closing = Closing::Closed,
                    }
                }
                Closing::Closed => return Poll::Ready(Ok(())),
            }
        }
    }
}

async fn serve(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    api: Arc<Api>,
    limits: Limits,
    mut stopped: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // No hyper header timeout: `Activity` times request heads (see there).
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(None);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(256);
    let builder = Arc::new(builder);
    let mut connections = JoinSet::new();

    loop {
        tokio::select! {
            _ = stopped.changed() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => {
                let (tcp, peer) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    tracing::warn!("connection limit reached; closing a new connection");
                    drop(tcp);
                    continue;
                };
                let _ = tcp.set_nodelay(true);
                let open = api.metrics.connection();
                let acceptor = acceptor.clone();
                let api = api.clone();
                let builder = builder.clone();
                let mut stopping = stopped.clone();
                connections.spawn(async move {
                    let tls = match tokio::time::timeout(limits.header_timeout, acceptor.accept(tcp)).await {
                        Ok(Ok(s)) => s,
                        _ => return,
                    };
                    let h1 = tls.get_ref().1.alpn_protocol() != Some(b"h2".as_slice());
                    let activity = Arc::new(Activity::new(h1));
                    let in_service = activity.clone();
                    // The slot goes with every request too, so a connection upgraded to a
                    // WebSocket keeps holding it after hyper hands the socket over.
                    let slot = Arc::new(slot);
                    let for_requests = slot.clone();
                    let service = service_fn(move |mut req| {
                        let api = api.clone();
                        req.extensions_mut().insert(crate::http::ConnectionSlot::new(for_requests.clone()));
                        req.extensions_mut().insert(limits.pace);
                        let guard = in_service.request_started();
                        let activity = in_service.clone();
                        async move {
                            let response = crate::http::handle(api, crate::http::wrap_body(req), peer).await;
                            let responding = activity.responding();
                            drop(guard);
                            Ok::<_, Infallible>(response.map(|body| Tracked { body, _responding: responding }))
                        }
                    });
                    let io = TokioIo::new(ActivityIo::new(tls, activity.clone(), &limits.pace));
                    let conn = builder.serve_connection_with_upgrades(io, service).into_owned();
                    tokio::pin!(conn);
                    // Once a graceful close has begun: when to give up on it and drop.
                    let mut closing: Option<tokio::time::Instant> = None;
                    loop {
                        let deadline = closing.unwrap_or_else(|| activity.deadline(&limits));
                        tokio::select! {
                            _ = &mut conn => break,
                            // Shutdown: in-flight requests finish (`serve` bounds the wait).
                            _ = stopping.changed(), if closing.is_none() => {
                                conn.as_mut().graceful_shutdown();
                                closing = Some(tokio::time::Instant::now() + limits.grace + limits.pace.linger);
                            }
                            _ = tokio::time::sleep_until(deadline) => {
                                if closing.is_some() {
                                    break; // the graceful close overran; dropping closes
                                }
                                if activity.expired(&limits) {
                                    if activity.head_arriving() || activity.sending() {
                                        // A head too slow, or an answer the client stopped
                                        // reading: cut, not waited for.
                                        break;
                                    }
                                    // Idle: HTTP/1.1 closes with close_notify, HTTP/2 says
                                    // GOAWAY first, so a client that was about to send a
                                    // request knows it was not taken.
                                    conn.as_mut().graceful_shutdown();
                                    closing = Some(tokio::time::Instant::now() + limits.pace.linger + Duration::from_secs(1));
                                }
                            }
                        }
                    }
                    drop((slot, open));
                });
            }
        }
    }
    drop(listener);
    // Every connection task has seen the signal and is closing gracefully.
    let finished = tokio::time::timeout(limits.grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if finished.is_err() {
        tracing::warn!("grace period over; closing the remaining connections");
    }
    connections.abort_all();
    while connections.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::advance;

    fn limits() -> Limits {
        Limits {
            max_connections: 1,
            header_timeout: Duration::from_millis(300),
            idle_timeout: Duration::from_millis(1000),
            grace: Duration::ZERO,
            pace: BodyPace::default(),
        }
    }

    /// One request handled and answered on `a`.
    fn served(a: &Arc<Activity>) {
        let handling = a.request_started();
        a.read_bytes();
        let sending = a.responding();
        drop(handling);
        drop(sending);
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_connection_expires_at_the_idle_timeout_not_the_header_timeout() {
        let l = limits();
        for h1 in [true, false] {
            let a = Arc::new(Activity::new(h1));
            served(&a);
            advance(Duration::from_millis(999)).await;
            assert!(!a.expired(&l), "h1 {h1}");
            advance(Duration::from_millis(2)).await;
            assert!(a.expired(&l) && !a.head_arriving() && !a.sending());
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_head_must_arrive_within_the_header_timeout_of_its_first_byte() {
        let l = limits();
        let a = Arc::new(Activity::new(true));
        served(&a);
        advance(Duration::from_millis(500)).await;
        a.read_bytes(); // the next head begins, and trickles
        advance(Duration::from_millis(200)).await;
        a.read_bytes();
        assert!(!a.expired(&l));
        advance(Duration::from_millis(101)).await;
        assert!(a.expired(&l) && a.head_arriving());
        // Over HTTP/2, bytes between requests are frames, not a head.
        let b = Arc::new(Activity::new(false));
        b.read_bytes();
        assert!(!b.head_arriving());
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_being_sent_starts_no_head_timer_but_a_stalled_one_goes_idle() {
        let l = limits();
        let a = Arc::new(Activity::new(true));
        let handling = a.request_started();
        let sending = a.responding();
        drop(handling);
        a.read_bytes(); // a pipelined byte while the answer is sent
        assert!(!a.head_arriving());
        advance(Duration::from_millis(500)).await;
        assert!(!a.expired(&l));
        advance(Duration::from_millis(501)).await;
        assert!(
            a.expired(&l) && a.sending(),
            "a client that stopped reading"
        );
        drop(sending);
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_being_handled_does_not_expire() {
        let l = limits();
        let a = Arc::new(Activity::new(true));
        let handling = a.request_started();
        advance(Duration::from_secs(30)).await;
        assert!(!a.expired(&l));
        drop(handling);
    }
}
