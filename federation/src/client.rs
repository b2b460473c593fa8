//! The peer client: HTTPS requests to another node. The peer's certificate is verified against
//! its configured CA file (or the public web PKI roots) and must be valid for the peer's
//! *domain*, whatever address it is reached at; verification cannot be switched off.
//! A [`Connection`] is one HTTP/1.1 connection, reused for as long as it works.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// How long connecting (TCP + TLS + HTTP handshake) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one request may take once sent.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest answer body read from a peer.
pub const MAX_ANSWER_BYTES: usize = 4 << 20;

/// Why a request to a peer failed. All of these are worth retrying later.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    #[error("CA file: {0}")]
    CaFile(String),
    #[error("peer domain is not a valid TLS server name")]
    ServerName,
    #[error("connecting: {0}")]
    Connect(String),
    #[error("request: {0}")]
    Request(String),
    #[error("timed out")]
    Timeout,
}

/// The TLS settings for a peer: trust the certificates in `ca_pem`, or the public roots.
pub fn tls_config(ca_pem: Option<&[u8]>) -> Result<Arc<rustls::ClientConfig>, ClientError> {
    let mut roots = RootCertStore::empty();
    match ca_pem {
        Some(pem) => {
            let mut n = 0;
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| ClientError::CaFile(e.to_string()))?;
                roots
                    .add(cert)
                    .map_err(|e| ClientError::CaFile(e.to_string()))?;
                n += 1;
            }
            if n == 0 {
                return Err(ClientError::CaFile("no certificate in the file".into()));
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::CaFile(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// Where and how to reach one peer.
#[derive(Debug, Clone)]
pub struct PeerTarget {
    /// The peer's domain (what its certificate must name), possibly with `:port`.
    pub domain: String,
    pub host: String,
    pub port: u16,
    pub tls: Arc<rustls::ClientConfig>,
}

/// One open connection to a peer.
#[derive(Debug)]
pub struct Connection {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    domain: String,
}

impl PeerTarget {
    /// Opens a connection: TCP to host:port, TLS verified for the peer's domain, HTTP/1.1.
    pub async fn connect(&self) -> Result<Connection, ClientError> {
        tokio::time::timeout(CONNECT_TIMEOUT, self.connect_inner())
            .await
            .map_err(|_| ClientError::Timeout)?
    }

    async fn connect_inner(&self) -> Result<Connection, ClientError> {
        let name_host = self.domain.split(':').next().unwrap_or(&self.domain);
        let name =
            ServerName::try_from(name_host.to_string()).map_err(|_| ClientError::ServerName)?;
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| ClientError::Connect(e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        let tls = TlsConnector::from(self.tls.clone())
            .connect(name, tcp)
            .await
            .map_err(|e| ClientError::Connect(e.to_string()))?;
        let (sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
                .await
                .map_err(|e| ClientError::Connect(e.to_string()))?;
        // The connection task ends when the connection closes or the sender is dropped.
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Connection {
            sender,
            domain: self.domain.clone(),
        })
    }
}

impl Connection {
    /// Sends one request and reads the answer (status and body, at most
    /// [`MAX_ANSWER_BYTES`]). `authorization` is the value from [`crate::sign_request`].
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        authorization: &str,
        body: Bytes,
    ) -> Result<(StatusCode, Bytes), ClientError> {
        tokio::time::timeout(REQUEST_TIMEOUT, async {
            self.sender
                .ready()
                .await
                .map_err(|e| ClientError::Request(e.to_string()))?;
            let req = Request::builder()
                .method(method)
                .uri(path)
                .header(http::header::HOST, self.domain.as_str())
                .header(http::header::AUTHORIZATION, authorization)
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(Full::new(body))
                .map_err(|e| ClientError::Request(e.to_string()))?;
            let resp = self
                .sender
                .send_request(req)
                .await
                .map_err(|e| ClientError::Request(e.to_string()))?;
            let status = resp.status();
            let body = Limited::new(resp.into_body(), MAX_ANSWER_BYTES)
                .collect()
                .await
                .map_err(|e| ClientError::Request(e.to_string()))?
                .to_bytes();
            Ok((status, body))
        })
        .await
        .map_err(|_| ClientError::Timeout)?
    }

    /// Whether the connection can still carry requests.
    pub fn is_open(&self) -> bool {
        !self.sender.is_closed()
    }
}
