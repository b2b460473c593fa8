//! Reading request bodies (size limit, deadline and minimum rate, content type, JSON with
//! errors that name the field) and writing JSON responses. (The unread rest of a body answered
//! early is discarded by the body itself, `body.rs`.)

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Either, Full};
use hyper::body::Frame;
use serde::de::DeserializeOwned;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::Instant;

use super::body::Incoming;
use super::error::ApiError;

/// The response body type of every handler: whole, or streamed while it is produced.
pub type Body = Either<Full<Bytes>, Streamed>;

/// A whole body.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Either::Left(Full::new(bytes.into()))
}

/// A body produced while it is sent: `producer` fills the channel `rx` reads. The producer is
/// driven by the body's own polling, so it lives exactly as long as the response: when the
/// client goes away the body is dropped and production stops with it. An `Err` item ends the
/// body with an error (the client sees a cut-off response, never a silently short one).
pub struct Streamed {
    producer: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
    rx: tokio::sync::mpsc::Receiver<Result<Bytes, String>>,
}

impl std::fmt::Debug for Streamed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Streamed")
            .field("producing", &self.producer.is_some())
            .finish_non_exhaustive()
    }
}

impl Streamed {
    pub fn new(
        producer: impl Future<Output = ()> + Send + 'static,
        rx: tokio::sync::mpsc::Receiver<Result<Bytes, String>>,
    ) -> Self {
        Streamed {
            producer: Some(Box::pin(producer)),
            rx,
        }
    }
}

impl hyper::body::Body for Streamed {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        if let Some(p) = self.producer.as_mut()
            && p.as_mut().poll(cx).is_ready()
        {
            self.producer = None;
        }
        self.rx
            .poll_recv(cx)
            .map(|item| item.map(|r| r.map(Frame::data).map_err(std::io::Error::other)))
    }
}

/// A JSON response with `status`.
pub fn reply(status: StatusCode, value: &impl serde::Serialize) -> Response<Body> {
    let bytes = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    let mut r = Response::new(full(bytes));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r.headers_mut()
        .insert("cache-control", HeaderValue::from_static("no-store"));
    r
}

/// An empty 204 answer.
pub fn no_content() -> Response<Body> {
    let mut r = Response::new(full(Bytes::new()));
    *r.status_mut() = StatusCode::NO_CONTENT;
    r
}

/// The error shape `{"error":{"code","message"}}`.
pub fn error_reply(e: &ApiError) -> Response<Body> {
    let mut r = reply(
        e.status,
        &serde_json::json!({"error": {"code": e.code, "message": e.message}}),
    );
    if let Some(secs) = e.retry_after
        && let Ok(v) = HeaderValue::from_str(&secs.to_string())
    {
        r.headers_mut().insert(RETRY_AFTER, v);
    }
    r
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        format!("the request body is larger than {limit} bytes"),
    )
}

/// How fast a request body must arrive, and how much of a body the node did not read is
/// discarded after an early answer. The server puts one into every request's extensions
/// (from the `[http]` settings); a request without one gets the defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyPace {
    /// Every body may take this long …
    pub timeout: Duration,
    /// … plus one second per this many bytes received.
    pub min_bytes_per_sec: u64,
    /// An unread body is discarded for at most this long …
    pub linger: Duration,
    /// … and at most this many bytes.
    pub linger_bytes: u64,
}

impl Default for BodyPace {
    fn default() -> Self {
        BodyPace {
            timeout: Duration::from_secs(10),
            min_bytes_per_sec: 1024,
            linger: Duration::from_secs(5),
            linger_bytes: 8 << 20,
        }
    }
}

impl BodyPace {
    /// The settings the server attached to `req`.
    pub fn of<B>(req: &Request<B>) -> BodyPace {
        req.extensions()
            .get::<BodyPace>()
            .copied()
            .unwrap_or_default()
    }

    /// When a body that started arriving at `start` must have arrived, having `received` bytes
    /// so far: the base timeout plus the time `received` bytes take at the minimum rate.
    fn deadline(&self, start: Instant, received: u64) -> Instant {
        let earned_ms = received.saturating_mul(1000) / self.min_bytes_per_sec.max(1);
        let allowed = self
            .timeout
            .saturating_add(Duration::from_millis(earned_ms));
        start
            .checked_add(allowed)
            .unwrap_or_else(|| start + Duration::from_secs(365 * 86_400))
    }
}

fn too_slow() -> ApiError {
    ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        "body_timeout",
        "the request body did not arrive in time",
    )
}

/// Answers `req` without reading its body: the rest of the body is read and discarded (at most
/// `linger` and `linger_bytes` of the request's [`BodyPace`]), so that the client, which may be
/// sending its whole body before it reads, gets the answer. Dropping the request does the same
/// (see `body.rs`); this names the intent where a handler gives up on a body.
pub fn discard(req: Request<Incoming>) {
    drop(req);
}

/// Reads the whole body, refusing more than `limit` bytes (before reading, by Content-Length,
/// and while reading, for bodies without one) and a body that arrives slower than the
/// request's [`BodyPace`] (408). A body refused for its size is discarded (see [`discard`]).
pub async fn read_body(req: Request<Incoming>, limit: usize) -> Result<Bytes, ApiError> {
    let pace = BodyPace::of(&req);
    if let Some(len) = req.headers().get(CONTENT_LENGTH) {
        let Some(len) = len.to_str().ok().and_then(|s| s.parse::<u64>().ok()) else {
            discard(req);
            return Err(ApiError::bad_request(
                "bad_header",
                "Content-Length is not a number",
            ));
        };
        if len > limit as u64 {
            discard(req);
            return Err(too_large(limit));
        }
    }
    let mut body = req.into_body();
    let start = Instant::now();
    let mut parts: Vec<Bytes> = Vec::new();
    let mut received = 0usize;
    loop {
        let deadline = pace.deadline(start, received as u64);
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            // Abandoning the body closes an HTTP/1.1 connection (its framing is lost) and
            // resets an HTTP/2 stream: a stalled client is not waited for again.
            Err(_) => {
                body.abandon();
                return Err(too_slow());
            }
            Ok(None) => break,
            Ok(Some(Ok(frame))) => frame,
            Ok(Some(Err(_))) => {
                return Err(ApiError::bad_request(
                    "bad_body",
                    "the request body could not be read",
                ));
            }
        };
        if let Ok(data) = frame.into_data() {
            received += data.len();
            if received > limit {
                // Dropped: the rest is discarded.
                drop(body);
                return Err(too_large(limit));
            }
            if !data.is_empty() {
                parts.push(data);
            }
        }
    }
    Ok(match parts.len() {
        0 => Bytes::new(),
        1 => parts.pop().unwrap_or_default(),
        _ => {
            let mut all = Vec::with_capacity(received);
            for p in &parts {
                all.extend_from_slice(p);
            }
            Bytes::from(all)
        }
    })
}

/// The body of `req` as a stream of its data, for a reader that parses as it goes (multipart
/// uploads), held to the request's [`BodyPace`] like [`read_body`]: a body slower than its
/// deadline ends the stream with an error of kind `TimedOut` (see [`is_too_slow`]).
pub fn paced_data(
    req: Request<Incoming>,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    let pace = BodyPace::of(&req);
    let state = (Some(req.into_body()), Instant::now(), 0u64);
    futures_util::stream::unfold(state, move |(body, start, received)| async move {
        // `None` once the stream has failed: it ends.
        let mut body = body?;
        loop {
            let deadline = pace.deadline(start, received);
            let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
                Err(_) => {
                    // Not waited for again (see `read_body`).
                    body.abandon();
                    let e = std::io::Error::new(std::io::ErrorKind::TimedOut, "body too slow");
                    return Some((Err(e), (None, start, received)));
                }
                Ok(None) => return None,
                Ok(Some(Err(e))) => {
                    body.abandon();
                    return Some((Err(std::io::Error::other(e)), (None, start, received)));
                }
                Ok(Some(Ok(frame))) => frame,
            };
            if let Ok(data) = frame.into_data() {
                let received = received + data.len() as u64;
                return Some((Ok(data), (Some(body), start, received)));
            }
        }
    })
}

/// Whether a [`paced_data`] stream ended because its body was too slow; the answer for it.
pub fn is_too_slow(e: &(dyn std::error::Error + 'static)) -> Option<ApiError> {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return Some(too_slow());
        }
        cause = c.source();
    }
    None
}

/// Reads a JSON body into `T` (whose fields define what is accepted; unknown fields are
/// refused by `T`'s `deny_unknown_fields`).
pub async fn read_json<T: DeserializeOwned>(
    req: Request<Incoming>,
    limit: usize,
) -> Result<T, ApiError> {
    let is_json = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("application/json")
        })
        .unwrap_or(false);
    if !is_json {
        discard(req);
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as JSON with Content-Type: application/json",
        ));
    }
    let body = read_body(req, limit).await?;
    parse_json(&body)
}

/// Parses JSON, telling malformed JSON (400 `bad_json`) from well-formed JSON of the wrong
/// shape (400 `invalid_request`, naming the field).
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        use serde_json::error::Category;
        match e.classify() {
            Category::Syntax | Category::Eof | Category::Io => {
                ApiError::bad_request("bad_json", format!("the body is not valid JSON: {e}"))
            }
            Category::Data => {
                ApiError::bad_request("invalid_request", strip_position(&e.to_string()))
            }
        }
    })
}

/// serde_json appends " at line L column C"; for a one-line body that says nothing useful.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_earns_time_at_the_minimum_rate_on_top_of_the_base_timeout() {
        let pace = BodyPace {
            timeout: Duration::from_secs(10),
            min_bytes_per_sec: 1000,
            ..BodyPace::default()
        };
        let start = Instant::now();
        assert_eq!(pace.deadline(start, 0), start + Duration::from_secs(10));
        assert_eq!(
            pace.deadline(start, 2500),
            start + Duration::from_millis(12_500)
        );
        // However many bytes are counted, the deadline is a time, not an overflow.
        assert!(pace.deadline(start, u64::MAX) > start + Duration::from_secs(86_400));
    }
}
