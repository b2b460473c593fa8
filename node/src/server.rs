//! Starting and stopping a node: opens the data directory, master key, database, TLS and
//! policy; accepts HTTPS connections (HTTP/1.1 and HTTP/2 by ALPN) with a connection limit
//! and handshake/header timeouts; and shuts down gracefully when told to.
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
use hyper_util::server::graceful::GracefulShutdown;
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
use crate::http::{Api, Sessions};
use crate::policy::{Policy, PolicyError};
use crate::ratelimit::LoginLimiter;
use crate::storage::{Store, StoreError};
use crate::time::SharedClock;
use crate::tls::{self, TlsError};
use crate::wiring::{Services, WiringError, wire};

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
        Self::start_with(config, clock, None).await
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
        Self::start_with(config, clock, Some(listener)).await
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
        } = services;
        let key_document = serde_json::to_vec(&node_keys.document(config.server.domain.as_str())?)
            .map_err(|e| {
                StartError::Signing(crate::signing::SigningError::Document(e.to_string()))
            })?;
        let domain = config.server.domain.as_str().to_string();
        let host_limits = HostLimits {
            recall_window_ms: config.messaging.recall_window_secs.get() * 1000,
            max_group_members: config.messaging.max_group_members.get() as usize,
        };
        let inbox = Inbox::new(
            store.clone(),
            master.clone(),
            peers,
            outbox.clone(),
            directory,
            hub.clone(),
            clock.clone(),
            host_limits,
        );
        let sessions: Sessions = Default::default();
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
            audit_key: master.audit_key(),
            domain: domain.clone(),
            clock: clock.clone(),
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
        let metrics = crate::metrics::Metrics::new(crate::metrics::Live {
            store: store.clone(),
            outbox: outbox.clone(),
            db_path: config.data_dir().join("node.redb"),
            peers: config
                .federation
                .peers
                .iter()
                .map(|p| p.domain.as_str().to_string())
                .collect(),
        });
        let (metrics_task, metrics_addr) = match config.metrics.listen.0 {
            Some(at) => {
                let l = crate::metrics_http::bind(at)
                    .await
                    .map_err(|e| StartError::Bind {
                        addr: at,
                        reason: e.to_string(),
                    })?;
                let bound = l.local_addr().ok();
                let task = crate::metrics_http::serve(l, metrics.clone(), stopped.clone());
                (Some(tokio::spawn(task)), bound)
            }
            None => (None, None),
        };
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
            domain: config.server.domain.as_str().to_string(),
            max_body: config.http.max_body_bytes.get() as usize,
            sessions: sessions.clone(),
            key_document: bytes::Bytes::from(key_document),
            shutdown: stopped.clone(),
            throttle: crate::http::Throttle::new(&config.rate_limit, clock.clone()),
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
        };
        let acceptor = TlsAcceptor::from(tls_config);
        let purge_every = Duration::from_secs(config.messaging.purge_interval_secs.get());
        let purger = tokio::spawn(purge_loop(store.clone(), purge_every, stopped.clone()));
        let maintainer = tokio::spawn(maintenance_loop(
            erasure,
            retention,
            Duration::from_secs(config.retention.interval_secs.get()),
            stopped.clone(),
            metrics.clone(),
        ));
        let task = tokio::spawn(async move {
            serve(listener, acceptor, api, limits, stopped).await;
            end_sessions(&sessions, limits.grace).await;
            let _ = purger.await;
            let _ = maintainer.await;
            let _ = admin_task.await;
            if let Some(t) = metrics_task {
                let _ = t.await;
            }
            outbox.shutdown().await;
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

    /// For each peer asked to erase `handle`'s data: whether it has acknowledged.
    pub async fn erasure_status(&self, handle: &str) -> Result<Vec<(String, bool)>, FedError> {
        let outbox = self.outbox.as_ref().ok_or(FedError::NoSuchUser)?;
        let id = outbox
            .store()
            .user_by_handle(handle.to_string())
            .await?
            .ok_or(FedError::NoSuchUser)?;
        Ok(outbox
            .store()
            .erasure_status(id)
            .await?
            .into_iter()
            .map(|(peer, _, ack)| (peer, ack.is_some()))
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

/// Purges delivered messages nobody keeps, every `every`, until shutdown.
async fn purge_loop(store: Store, every: Duration, mut stopped: watch::Receiver<bool>) {
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
            }
            _ = stopped.changed() => return,
        }
    }
}

/// Runs due account erasures at start (resuming any a stop interrupted) and every `every`
/// after, and applies retention every `every`, until shutdown.
async fn maintenance_loop(
    erasure: Erasure,
    retention: Retention,
    every: Duration,
    mut stopped: watch::Receiver<bool>,
    metrics: crate::metrics::Metrics,
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
    let db_path = dir.join("node.redb");
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
}

/// When a connection last moved bytes, and how many requests it has in flight. A connection
/// with nothing in flight and no bytes for its limit is closed: hyper's header timeout starts
/// only at a request's first byte, so silent or idle keep-alive clients would otherwise hold a
/// connection slot for ever.
#[derive(Debug)]
struct Activity {
    start: tokio::time::Instant,
    last_ms: AtomicU64,
    seen: AtomicBool,
    in_flight: AtomicUsize,
}

impl Activity {
    fn new() -> Self {
        Activity {
            start: tokio::time::Instant::now(),
            last_ms: AtomicU64::new(0),
            seen: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
        }
    }
    fn touch(&self) {
        self.seen.store(true, Ordering::Relaxed);
        self.last_ms
            .store(self.start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
    fn seen_bytes(&self) -> bool {
        self.seen.load(Ordering::Relaxed)
    }
    fn last(&self) -> tokio::time::Instant {
        self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }
    fn idle_for(&self, limit: Duration) -> bool {
        self.in_flight.load(Ordering::Relaxed) == 0 && self.last().elapsed() >= limit
    }
    fn request_started(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
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

/// An I/O stream that records activity on every byte moved.
#[derive(Debug)]
struct ActivityIo<S> {
    inner: S,
    activity: Arc<Activity>,
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
            self.activity.touch();
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ActivityIo<S> {
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
        Pin::new(&mut self.inner).poll_shutdown(cx)
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
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
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
                let watcher = graceful.watcher();
                connections.spawn(async move {
                    let tls = match tokio::time::timeout(limits.header_timeout, acceptor.accept(tcp)).await {
                        Ok(Ok(s)) => s,
                        _ => return,
                    };
                    let activity = Arc::new(Activity::new());
                    let in_service = activity.clone();
                    // The slot goes with every request too, so a connection upgraded to a
                    // WebSocket keeps holding it after hyper hands the socket over.
                    let slot = Arc::new(slot);
                    let for_requests = slot.clone();
                    let service = service_fn(move |mut req| {
                        let api = api.clone();
                        req.extensions_mut().insert(crate::http::ConnectionSlot::new(for_requests.clone()));
                        let guard = in_service.request_started();
                        async move {
                            let response = crate::http::handle(api, req, peer).await;
                            drop(guard);
                            Ok::<_, Infallible>(response)
                        }
                    });
                    let io = TokioIo::new(ActivityIo { inner: tls, activity: activity.clone() });
                    let conn = watcher.watch(builder.serve_connection_with_upgrades(io, service).into_owned());
                    tokio::pin!(conn);
                    loop {
                        let limit = if activity.seen_bytes() { limits.idle_timeout } else { limits.header_timeout };
                        let deadline = activity.last() + limit;
                        tokio::select! {
                            _ = &mut conn => break,
                            _ = tokio::time::sleep_until(deadline) => {
                                if activity.idle_for(limit) {
                                    break; // dropping the connection closes it
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
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(limits.grace) => {
            tracing::warn!("grace period over; closing the remaining connections");
        }
    }
    connections.abort_all();
    while connections.join_next().await.is_some() {}
}
