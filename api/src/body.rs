//! The request body as every handler gets it: hyper's body, which, dropped before its end, is
//! read and discarded for a bounded time and size instead of being cut off.
//!
//! A handler may answer without reading the body it was sent — a 401 or 404 decided from the
//! head, a 413 by `Content-Length`, a 404 for a path parameter, a multipart upload refused part
//! way, an endpoint that takes no body at all. Dropping hyper's body there resets an HTTP/2
//! stream under a client still sending (many clients then report the reset, not the answer) and
//! closes an HTTP/1.1 connection under it (a client that writes its whole body before reading
//! gets a reset connection). Here the rule is kept in one place, whatever path drops the body:
//! the server wraps every request's body ([`wrap`]) and a drop discards the rest (see
//! `docs/HTTP.md`, "Early answers"). Only a body given up on on purpose — one that arrives too
//! slowly — is dropped at once ([`Incoming::abandon`]).

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::Request;
use http_body_util::BodyExt;
use hyper::body::{Body as _, Frame, SizeHint};
use tokio::time::Instant;

use super::json::BodyPace;

/// A request's body; see the module documentation.
#[derive(Debug)]
pub struct Incoming {
    inner: Option<hyper::body::Incoming>,
    pace: BodyPace,
    /// The client sent `Expect: 100-continue`: until the body is first read it is waiting for a
    /// `100 Continue` and has sent nothing, so an unread body is not asked for.
    expects_continue: bool,
    /// Whether the body has been read from (a `100 Continue` has then gone out).
    started: bool,
}

/// Wraps the body of a request as the server received it, with the [`BodyPace`] the server put
/// in its extensions (the defaults if none).
pub fn wrap(req: Request<hyper::body::Incoming>) -> Request<Incoming> {
    let pace = BodyPace::of(&req);
    let expects_continue = req
        .headers()
        .get(http::header::EXPECT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("100-continue"));
    req.map(|body| Incoming {
        inner: Some(body),
        pace,
        expects_continue,
        started: false,
    })
}

impl Incoming {
    /// Drops the body at once, unread: an HTTP/1.1 connection closes (its framing is lost) and
    /// an HTTP/2 stream is reset. For a body that is not worth waiting for (too slow).
    pub fn abandon(mut self) {
        self.inner = None;
    }
}

impl hyper::body::Body for Incoming {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        self.started = true;
        match self.inner.as_mut() {
            Some(inner) => Pin::new(inner).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(|b| b.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), |b| b.size_hint())
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        let Some(body) = self.inner.take() else {
            return;
        };
        if body.is_end_stream()
            || (self.expects_continue && !self.started)
            || self.pace.linger.is_zero()
            || self.pace.linger_bytes == 0
        {
            return;
        }
        // Dropped outside a runtime (nothing in the node does): nothing to read it with.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let pace = self.pace;
        // The task owns nothing but the body and ends with it, at its bound, or when its
        // connection goes.
        runtime.spawn(discard(body, pace));
    }
}

/// Reads and throws away what remains of `body`, for at most `linger` and `linger_bytes` of
/// `pace`; past either bound the body is dropped (the stream reset, the connection closed).
async fn discard(mut body: hyper::body::Incoming, pace: BodyPace) {
    let until = Instant::now() + pace.linger;
    let mut left = pace.linger_bytes;
    while let Ok(Some(Ok(frame))) = tokio::time::timeout_at(until, body.frame()).await {
        if let Some(data) = frame.data_ref() {
            let n = data.len() as u64;
            if n > left {
                return;
            }
            left -= n;
        }
    }
}
