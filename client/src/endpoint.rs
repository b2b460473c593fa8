//! [`Endpoint`]: a node's address and the certificate trusted for it; TLS connections, one
//! request per fresh connection, and [`Connection`], one keep-alive HTTP/1.1 connection.
//! [`Transport`] is what the typed calls ([`crate::Api`]) need of either.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::error::ClientError;
use crate::reply::Reply;

/// Where a node started without `[tls]` files writes its development certificate, under its
/// data directory (see [`Endpoint::with_dev_cert`]).
pub const DEV_CERT: &str = "tls/cert.pem";

/// What the typed calls need: sending one request and reading its answer, and the host name
/// the requests are for.
pub trait Transport: Send {
    /// Sends `req` and reads the whole answer, whatever its status.
    fn send(
        &mut self,
        req: Request<Full<Bytes>>,
    ) -> impl Future<Output = Result<Reply, ClientError>> + Send;

    /// The `Host` of requests (the name the certificate is checked for).
    fn host(&self) -> &str;
}

/// A node at `addr`, its certificate checked against the given CA certificates for the name
/// `localhost` (or [`Endpoint::with_server_name`]). Cheap to clone.
#[derive(Clone)]
pub struct Endpoint {
    addr: SocketAddr,
    host: Arc<str>,
    name: ServerName<'static>,
    h1: TlsConnector,
    h2: TlsConnector,
    timeout: Option<Duration>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("addr", &self.addr)
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    /// A node at `addr` whose certificate chains to one in `ca_file` (PEM; a self-signed
    /// certificate is its own CA).
    pub fn new(addr: SocketAddr, ca_file: &Path) -> Result<Endpoint, ClientError> {
        let ca_error = |source| ClientError::CaFile {
            path: ca_file.to_path_buf(),
            source,
        };
        let pem = std::fs::read(ca_file).map_err(ca_error)?;
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| ca_error(std::io::Error::other(e)))?;
            roots.add(cert)?;
        }
        if roots.is_empty() {
            return Err(ClientError::NoCertificate {
                path: ca_file.to_path_buf(),
            });
        }
        Self::with_roots(addr, roots)
    }

    /// A node at `addr` started without `[tls]` files, trusting the development certificate
    /// it wrote under `data_dir` ([`DEV_CERT`]).
    pub fn with_dev_cert(addr: SocketAddr, data_dir: &Path) -> Result<Endpoint, ClientError> {
        Self::new(addr, &data_dir.join(DEV_CERT))
    }

    fn with_roots(addr: SocketAddr, roots: RootCertStore) -> Result<Endpoint, ClientError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let make = |alpn: &[u8]| -> Result<TlsConnector, ClientError> {
            let mut cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()?
                .with_root_certificates(roots.clone())
                .with_no_client_auth();
            cfg.alpn_protocols = vec![alpn.to_vec()];
            Ok(TlsConnector::from(Arc::new(cfg)))
        };
        Ok(Endpoint {
            addr,
            host: "localhost".into(),
            name: ServerName::try_from("localhost")
                .map_err(|e| ClientError::ServerName(e.to_string()))?,
            h1: make(b"http/1.1")?,
            h2: make(b"h2")?,
            timeout: None,
        })
    }

    /// Checks the certificate for `name` (and sends it as `Host`) instead of `localhost`.
    pub fn with_server_name(mut self, name: &str) -> Result<Endpoint, ClientError> {
        self.name = ServerName::try_from(name.to_string())
            .map_err(|_| ClientError::ServerName(name.to_string()))?;
        self.host = name.into();
        Ok(self)
    }

    /// Gives up on an answer not begun within `limit` ([`ClientError::Timeout`]); without
    /// this, a request waits as long as the connection stays open.
    pub fn with_timeout(mut self, limit: Duration) -> Endpoint {
        self.timeout = Some(limit);
        self
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The name the certificate is checked for, sent as `Host`.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// A TLS connection with HTTP/1.1 agreed by ALPN, not yet used.
    pub async fn connect_tls(&self) -> Result<TlsStream<TcpStream>, ClientError> {
        self.tls(&self.h1).await
    }

    /// A TLS connection with HTTP/2 agreed by ALPN, not yet used.
    pub async fn connect_tls_h2(&self) -> Result<TlsStream<TcpStream>, ClientError> {
        self.tls(&self.h2).await
    }

    async fn tls(&self, connector: &TlsConnector) -> Result<TlsStream<TcpStream>, ClientError> {
        let tcp = TcpStream::connect(self.addr)
            .await
            .map_err(ClientError::Connect)?;
        tcp.set_nodelay(true).map_err(ClientError::Connect)?;
        connector
            .connect(self.name.clone(), tcp)
            .await
            .map_err(ClientError::Tls)
    }

    /// A keep-alive HTTP/1.1 connection for many requests in turn.
    pub async fn connection(&self) -> Result<Connection, ClientError> {
        let tls = self.connect_tls().await?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
        tokio::spawn(conn);
        Ok(Connection {
            sender,
            host: self.host.clone(),
            timeout: self.timeout,
        })
    }

    /// Sends one request over a fresh HTTP/1.1 connection.
    pub async fn send(&self, req: Request<Full<Bytes>>) -> Result<Reply, ClientError> {
        self.connection().await?.send(req).await
    }

    /// Sends one request over a fresh HTTP/2 connection; also the protocol ALPN agreed.
    pub async fn send_h2(
        &self,
        req: Request<Full<Bytes>>,
    ) -> Result<(Reply, Option<Vec<u8>>), ClientError> {
        let tls = self.connect_tls_h2().await?;
        let alpn = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls)).await?;
        tokio::spawn(conn);
        let reply = within(self.timeout, async {
            let resp = sender.send_request(req).await?;
            read(resp).await
        })
        .await?;
        Ok((reply, alpn))
    }
}

impl Transport for Endpoint {
    async fn send(&mut self, req: Request<Full<Bytes>>) -> Result<Reply, ClientError> {
        Endpoint::send(self, req).await
    }

    fn host(&self) -> &str {
        &self.host
    }
}

/// One keep-alive HTTP/1.1 connection to a node (from [`Endpoint::connection`]): requests go
/// one after another, each answer read to the end before the next is sent.
pub struct Connection {
    sender: SendRequest<Full<Bytes>>,
    host: Arc<str>,
    timeout: Option<Duration>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// Sends `req` on this connection and reads the whole answer.
    pub async fn send(&mut self, req: Request<Full<Bytes>>) -> Result<Reply, ClientError> {
        let sender = &mut self.sender;
        within(self.timeout, async move {
            sender.ready().await?;
            let resp = sender.send_request(req).await?;
            read(resp).await
        })
        .await
    }
}

impl Transport for Connection {
    async fn send(&mut self, req: Request<Full<Bytes>>) -> Result<Reply, ClientError> {
        Connection::send(self, req).await
    }

    fn host(&self) -> &str {
        &self.host
    }
}

async fn within<T>(
    limit: Option<Duration>,
    work: impl Future<Output = Result<T, ClientError>>,
) -> Result<T, ClientError> {
    match limit {
        Some(limit) => tokio::time::timeout(limit, work)
            .await
            .map_err(|_| ClientError::Timeout(limit))?,
        None => work.await,
    }
}

async fn read(resp: http::Response<hyper::body::Incoming>) -> Result<Reply, ClientError> {
    let (parts, body) = resp.into_parts();
    let body = body.collect().await?.to_bytes();
    Ok(Reply {
        status: parts.status,
        headers: parts.headers,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr() -> SocketAddr {
        "127.0.0.1:9".parse().expect("addr")
    }

    #[test]
    fn a_missing_ca_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("none.pem");
        let e = Endpoint::new(addr(), &path).expect_err("no file");
        assert!(
            matches!(&e, ClientError::CaFile { path: p, .. } if *p == path),
            "{e:?}"
        );
    }

    #[test]
    fn a_ca_file_without_a_certificate_is_refused() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("empty.pem");
        std::fs::write(&path, "not a certificate\n").expect("write");
        let e = Endpoint::new(addr(), &path).expect_err("no certificate");
        assert!(matches!(e, ClientError::NoCertificate { .. }), "{e:?}");
    }

    #[test]
    fn the_dev_cert_is_read_from_the_data_directory_and_the_name_can_change() {
        let dir = tempfile::tempdir().expect("dir");
        let ck = rcgen::generate_simple_self_signed(vec!["a.test".to_string()]).expect("cert");
        std::fs::create_dir_all(dir.path().join("tls")).expect("dir");
        std::fs::write(dir.path().join(DEV_CERT), ck.cert.pem()).expect("write");
        let e = Endpoint::with_dev_cert(addr(), dir.path()).expect("dev cert");
        assert_eq!(e.host(), "localhost");
        let e = e.with_server_name("a.test").expect("name");
        assert_eq!(e.host(), "a.test");
        assert!(matches!(
            e.with_server_name("not a name!"),
            Err(ClientError::ServerName(_))
        ));
    }
}
