//! `Relay`: a loopback relay between a node and one of its peers (the node's configuration
//! names the relay as that peer's URL) that can lose the peer's answers to community calls. It ends TLS with the
//! peer's own certificate and key, so the node still verifies the peer's domain, passes each
//! request on to the peer over TLS, and — while told to lose answers — cuts the connection to
//! the node at the first byte of the peer's answer: the peer has handled (and committed) the
//! request, the node never hears how. 127.0.0.1 only.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A relay in front of one peer.
#[derive(Debug)]
pub struct Relay {
    /// The loopback port it listens on.
    pub port: u16,
    counts: Arc<Counts>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Debug, Default)]
struct Counts {
    /// Answers still to lose.
    to_lose: AtomicUsize,
    /// Answers lost so far.
    lost: AtomicUsize,
    /// Answers passed on so far.
    passed: AtomicUsize,
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Relay {
    /// Listens on a loopback port for the node's connections to `domain`, served with the
    /// certificate and key in `cert` and `key`, and relays them to `127.0.0.1:upstream`, which
    /// must present that certificate too.
    pub async fn start(domain: &str, cert: &Path, key: &Path, upstream: u16) -> Relay {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
            .expect("relay cert")
            .collect::<Result<_, _>>()
            .expect("relay cert");
        let key = PrivateKeyDer::from_pem_file(key).expect("relay key");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut server = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect("protocols")
            .with_no_client_auth()
            .with_single_cert(certs.clone(), key)
            .expect("relay server config");
        server.alpn_protocols = vec![b"http/1.1".to_vec()];
        let mut roots = rustls::RootCertStore::empty();
        for c in certs {
            roots.add(c).expect("relay root");
        }
        let mut client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocols")
            .with_root_certificates(roots)
            .with_no_client_auth();
        client.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
        let name = ServerName::try_from(domain.to_string()).expect("server name");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("relay bind");
        let port = listener.local_addr().expect("relay addr").port();
        let counts = Arc::new(Counts::default());
        let shared = counts.clone();
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, connector, name) =
                    (acceptor.clone(), connector.clone(), name.clone());
                let counts = shared.clone();
                tokio::spawn(async move {
                    let Ok(downstream) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let Ok(tcp) = TcpStream::connect(("127.0.0.1", upstream)).await else {
                        return;
                    };
                    let Ok(upstream) = connector.connect(name, tcp).await else {
                        return;
                    };
                    relay(downstream, upstream, &counts).await;
                });
            }
        });
        Relay { port, counts, task }
    }

    /// The next `n` answers to community calls (`POST /_federation/v1/communities`) are lost
    /// (each on its own connection); other requests, such as a key fetch or a transaction the
    /// host's node sends on, pass and are not counted.
    pub fn lose_answers(&self, n: usize) {
        self.counts.to_lose.store(n, Ordering::SeqCst);
    }

    /// How many answers were lost so far.
    pub fn lost(&self) -> usize {
        self.counts.lost.load(Ordering::SeqCst)
    }

    /// How many answers to community calls reached the node so far.
    pub fn passed(&self) -> usize {
        self.counts.passed.load(Ordering::SeqCst)
    }
}

/// What a community call's request starts with.
const COMMUNITY_CALL: &[u8] = b"POST /_federation/v1/communities ";

/// Copies bytes both ways until either side is done; at the first byte of the answer to a
/// community call, decides whether this one is lost (then the connection to the node ends
/// there).
async fn relay<D, U>(downstream: D, upstream: U, counts: &Counts)
where
    D: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    U: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (mut down_r, mut down_w) = tokio::io::split(downstream);
    let (mut up_r, mut up_w) = tokio::io::split(upstream);
    // Set before the request goes on, so before any answer to it comes back.
    let call = std::sync::atomic::AtomicBool::new(false);
    let forward = async {
        let mut buf = vec![0u8; 16 * 1024];
        let mut head = Vec::new();
        loop {
            let n = match down_r.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if head.len() < COMMUNITY_CALL.len() {
                head.extend_from_slice(&buf[..n]);
                call.store(head.starts_with(COMMUNITY_CALL), Ordering::SeqCst);
            }
            if up_w.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = up_w.shutdown().await;
    };
    let back = async {
        let mut buf = vec![0u8; 16 * 1024];
        let mut first = true;
        loop {
            let n = match up_r.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if std::mem::take(&mut first) && call.load(Ordering::SeqCst) {
                let lose = counts
                    .to_lose
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok();
                if lose {
                    counts.lost.fetch_add(1, Ordering::SeqCst);
                    return;
                }
                counts.passed.fetch_add(1, Ordering::SeqCst);
            }
            if down_w.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = down_w.shutdown().await;
    };
    tokio::pin!(forward, back);
    tokio::select! {
        // The answer is through, or lost: dropping both streams ends the connection.
        () = &mut back => {}
        // The node is done sending; its answer may still be coming.
        () = &mut forward => back.await,
    }
}
