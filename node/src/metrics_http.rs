//! The metrics listener: plain HTTP/1.1 on `metrics.listen`, answering `GET /metrics` with the
//! Prometheus text exposition and nothing else. It is separate from the client listener so
//! that scraping needs no token and no TLS, and so that it can stay on loopback or a private
//! monitoring network while the client API is public (docs/OPERATIONS.md, "Monitoring").

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::http::metrics::Metrics;

/// Scrapers open one connection at a time; this bounds what a misbehaving one can hold.
const MAX_CONNECTIONS: usize = 16;
/// A scrape's request must arrive within this, and an idle connection ends after it.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `metrics` on `listener` until `stopped` turns true.
pub async fn serve(listener: TcpListener, metrics: Metrics, mut stopped: watch::Receiver<bool>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = stopped.changed() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => {
                let Ok((tcp, _)) = accepted else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                if connections.len() >= MAX_CONNECTIONS {
                    drop(tcp);
                    continue;
                }
                let metrics = metrics.clone();
                connections.spawn(async move {
                    let service = service_fn(move |req| {
                        let metrics = metrics.clone();
                        async move { Ok::<_, Infallible>(answer(&metrics, &req)) }
                    });
                    let conn = hyper::server::conn::http1::Builder::new()
                        .timer(TokioTimer::new())
                        .header_read_timeout(TIMEOUT)
                        .keep_alive(false)
                        .serve_connection(TokioIo::new(tcp), service);
                    let _ = tokio::time::timeout(TIMEOUT, conn).await;
                });
            }
        }
    }
    connections.abort_all();
    while connections.join_next().await.is_some() {}
}

fn answer(metrics: &Metrics, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let (status, kind, body) = match (req.method(), req.uri().path()) {
        (&Method::GET, "/metrics") => (
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            metrics.render(),
        ),
        (_, "/metrics") => (
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            "only GET /metrics\n".to_string(),
        ),
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "this listener serves GET /metrics only\n".to_string(),
        ),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(v) = header::HeaderValue::from_str(kind) {
        response.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    response
}
