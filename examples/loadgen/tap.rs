//! A counting TCP relay on loopback, for `--federated-photo`: each node's peers, and the load
//! generator itself, reach the node through a tap of their own, so the bytes a node sends and
//! receives on the wire (TLS records included) are counted per direction and per pair of
//! endpoints, without reading the node's sockets.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Result;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Bytes through one tap so far: toward the node behind it, and back from it.
#[derive(Default, Debug)]
pub struct Counts {
    pub to_server: AtomicU64,
    pub from_server: AtomicU64,
}

impl Counts {
    /// (to the server, from the server) now.
    pub fn get(&self) -> (u64, u64) {
        (
            self.to_server.load(Ordering::Relaxed),
            self.from_server.load(Ordering::Relaxed),
        )
    }
}

/// A running tap: connections to `port` are relayed to the target; dropped, it stops accepting
/// (relayed connections end when either side closes).
pub struct Tap {
    pub port: u16,
    pub counts: Arc<Counts>,
    accept: tokio::task::JoinHandle<()>,
}

impl Drop for Tap {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl Tap {
    /// A tap on 127.0.0.1 (a port of its own) in front of `target`.
    pub async fn start(target: SocketAddr) -> Result<Tap> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let counts = Arc::new(Counts::default());
        let c = counts.clone();
        let accept = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let c = c.clone();
                tokio::spawn(async move {
                    if let Ok(outbound) = TcpStream::connect(target).await {
                        relay(inbound, outbound, c).await;
                    }
                });
            }
        });
        Ok(Tap {
            port,
            counts,
            accept,
        })
    }
}

/// Copies both ways until either side ends, counting.
async fn relay(inbound: TcpStream, outbound: TcpStream, counts: Arc<Counts>) {
    let _ = inbound.set_nodelay(true);
    let _ = outbound.set_nodelay(true);
    let (mut ir, mut iw) = inbound.into_split();
    let (mut or, mut ow) = outbound.into_split();
    let up = counts.clone();
    let to_server = async move {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n) = ir.read(&mut buf).await {
            if n == 0 {
                break;
            }
            // Counted before it is passed on: whoever reads it sees it counted.
            up.to_server.fetch_add(n as u64, Ordering::Relaxed);
            if ow.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = ow.shutdown().await;
    };
    let from_server = async move {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n) = or.read(&mut buf).await {
            if n == 0 {
                break;
            }
            // Counted before it is passed on: whoever reads it sees it counted.
            counts.from_server.fetch_add(n as u64, Ordering::Relaxed);
            if iw.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = iw.shutdown().await;
    };
    tokio::join!(to_server, from_server);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bytes_through_the_tap_arrive_unchanged_and_are_counted_each_way() {
        let server = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let target = server.local_addr().expect("addr");
        let echo = tokio::spawn(async move {
            let (mut s, _) = server.accept().await.expect("accept");
            let mut got = vec![0u8; 5000];
            s.read_exact(&mut got).await.expect("read");
            s.write_all(&got[..1234]).await.expect("write");
            got
        });
        let tap = Tap::start(target).await.expect("tap");
        let mut c = TcpStream::connect(("127.0.0.1", tap.port))
            .await
            .expect("connect");
        let sent: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        c.write_all(&sent).await.expect("send");
        let mut back = vec![0u8; 1234];
        c.read_exact(&mut back).await.expect("answer");
        assert_eq!(echo.await.expect("server"), sent);
        assert_eq!(back, sent[..1234]);
        assert_eq!(tap.counts.get(), (5000, 1234));
    }
}
