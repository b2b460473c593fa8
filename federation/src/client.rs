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
    #[error("the peer's name resolves to no public address")]
    NotPublic,
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
    /// Connect only to public unicast addresses (for a peer met through open federation, whose
    /// name anyone can choose): a name resolving to loopback, private, link-local or other
    /// special-purpose addresses is refused, so a request cannot make this node connect to
    /// its own network.
    pub public_only: bool,
}

/// Whether `ip` is a public unicast address: not loopback, unspecified, private (RFC 1918,
/// unique local), link-local, shared (100.64/10), multicast, broadcast, documentation,
/// benchmarking or reserved — nor an IPv6 address that maps or embeds one of those.
pub fn is_public_ip(ip: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_unspecified()
                || v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (64..128).contains(&o[1]))
                || (o[0] == 192 && o[1] == 0 && o[2] == 0)
                || (o[0] == 198 && (18..20).contains(&o[1]))
                || o[0] >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_ip(IpAddr::V4(v4));
            }
            let s = v6.segments();
            !(v6.is_unspecified()
                || v6.is_loopback()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local
                || (s[0] & 0xffc0) == 0xfe80 // link-local
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
                || (s[0] == 0x0064 && s[1] == 0xff9b) // NAT64, embeds IPv4
                || s[0] == 0x2002 // 6to4, embeds IPv4
                || s[..6] == [0; 6]) // IPv4-compatible and other reserved low addresses
        }
    }
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
        let tcp = if self.public_only {
            let addrs: Vec<std::net::SocketAddr> =
                tokio::net::lookup_host((self.host.as_str(), self.port))
                    .await
                    .map_err(|e| ClientError::Connect(e.to_string()))?
                    .filter(|a| is_public_ip(a.ip()))
                    .collect();
            if addrs.is_empty() {
                return Err(ClientError::NotPublic);
            }
            TcpStream::connect(addrs.as_slice()).await
        } else {
            TcpStream::connect((self.host.as_str(), self.port)).await
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    #[test]
    fn only_public_unicast_addresses_count_as_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "192.0.2.1",
            "198.18.0.1",
            "240.0.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::a00:1",
            "2002:a00:1::",
            "2001:db8::1",
        ] {
            assert!(
                !is_public_ip(private.parse::<IpAddr>().unwrap()),
                "{private}"
            );
        }
        for public in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(is_public_ip(public.parse::<IpAddr>().unwrap()), "{public}");
        }
    }
}
