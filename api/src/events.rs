//! The event feed: new messages, recalls, membership changes and notices, each with a cursor.
//!
//! - `GET /api/v1/sync?since=CURSOR&timeout=MS[&lang=zh|en]` — long poll. Returns at once if there are
//!   events after `since`, else waits up to `timeout` (0–60000, default 30000). Passing `since`
//!   acknowledges everything up to it for this device.
//! - `GET /api/v1/events[?since=CURSOR][&lang=zh|en]` — WebSocket (HTTP/1.1 upgrade). Authenticate with the
//!   `Authorization: Bearer` header, or — where a client cannot set headers — with a first text
//!   frame `{"type":"auth","token":"…"}` within 10 seconds. The server sends one text frame per
//!   event (`{"type":…,"cursor":"N",…}`); the client acknowledges with `{"type":"ack","cursor":"N"}`.
//!   The server pings every 30 seconds and closes a connection that stays silent for 90.
//!   A client frame over 16 KiB is answered with close code 1009, a protocol violation with
//!   1002 and a text frame that is not UTF-8 with 1007, before the connection closes.
//!
//! Both word notices in `lang`, else by `Accept-Language` (`lang.rs`), beside their code.
//!
//! A client that reconnects with its last cursor misses nothing and gets nothing twice.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::header::{
    CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_VERSION, UPGRADE,
};
use http::{HeaderValue, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, frame::coding::CloseCode};

use super::body::Incoming;
use super::error::ApiError;
use super::json::{Body, reply};
use super::lang::{LANG_REASON, negotiate};
use super::messages::{EventWire, event_json};
use super::query::{Params, Whole, read};
use domain::accounts::{Accounts, Session};
use domain::messaging::Messaging;
use domain::policy::Lang;

/// Events per sync answer or per WebSocket read.
const BATCH: usize = 200;
const PING_EVERY: Duration = Duration::from_secs(30);
const SILENT_LIMIT: Duration = Duration::from_secs(90);
const AUTH_WITHIN: Duration = Duration::from_secs(10);

const CURSOR_REASON: &str = "must be a cursor returned by the server";

/// The long poll's query. A cursor has one spelling: digits only.
#[derive(Debug, serde::Deserialize)]
pub struct SyncQuery {
    since: Option<Whole>,
    timeout: Option<Whole<0, 60_000>>,
    /// The language of notices' words (else `Accept-Language`; `lang.rs`).
    lang: Option<String>,
}

impl Params for SyncQuery {
    fn expects(name: &str) -> &'static str {
        match name {
            "timeout" => "must be 0 to 60000 ms",
            "lang" => LANG_REASON,
            _ => CURSOR_REASON,
        }
    }
}

/// The WebSocket's query.
#[derive(Debug, serde::Deserialize)]
pub struct StreamQuery {
    since: Option<Whole>,
    /// The language of notices' words (else `Accept-Language`; `lang.rs`).
    lang: Option<String>,
}

impl Params for StreamQuery {
    fn expects(name: &str) -> &'static str {
        match name {
            "lang" => LANG_REASON,
            _ => CURSOR_REASON,
        }
    }
}

/// `GET /api/v1/sync?since=CURSOR&timeout=MS[&lang=zh|en]` → 200 `{"events":[…],"cursor":"N"}`;
/// notices worded in `lang`, else by `Accept-Language`.
pub async fn sync(
    messaging: &Messaging,
    session: &Session,
    query: Option<&str>,
    headers: &http::HeaderMap,
    shutdown: watch::Receiver<bool>,
) -> Result<Response<Body>, ApiError> {
    let q: SyncQuery = read(query)?;
    let lang = negotiate(q.lang.as_deref(), headers)?;
    let since = q.since.map(|w| w.0);
    let timeout = q.timeout.map_or(30_000, |w| w.0);
    let (events, cursor) = messaging
        .long_poll(
            session,
            since,
            Duration::from_millis(timeout),
            BATCH,
            shutdown,
        )
        .await?;
    #[derive(serde::Serialize)]
    struct Answer<'a> {
        events: Vec<EventWire<'a>>,
        cursor: String,
    }
    Ok(reply(
        StatusCode::OK,
        &Answer {
            events: events
                .iter()
                .map(|(pos, e)| event_json(*pos, e, lang))
                .collect(),
            cursor: cursor.to_string(),
        },
    ))
}

/// Where WebSocket sessions run: owned by the server, which waits for them at shutdown.
pub type Sessions = Arc<Mutex<JoinSet<()>>>;

/// `GET /api/v1/events` → 101 Switching Protocols, then the event stream.
#[allow(clippy::too_many_arguments)]
pub fn upgrade(
    open: crate::metrics::OpenGuard,
    messaging: Messaging,
    accounts: Accounts,
    session: Option<Session>,
    mut req: Request<Incoming>,
    sessions: &Sessions,
    shutdown: watch::Receiver<bool>,
) -> Result<Response<Body>, ApiError> {
    let header = |name| {
        req.headers()
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
            .unwrap_or("")
    };
    let wants_upgrade = header(UPGRADE).eq_ignore_ascii_case("websocket")
        && header(CONNECTION)
            .to_ascii_lowercase()
            .split(',')
            .any(|t| t.trim() == "upgrade");
    if !wants_upgrade || req.version() != http::Version::HTTP_11 {
        return Err(ApiError::new(
            StatusCode::UPGRADE_REQUIRED,
            "websocket_required",
            "this endpoint is a WebSocket over HTTP/1.1; use GET /api/v1/sync to long-poll",
        ));
    }
    if header(SEC_WEBSOCKET_VERSION) != "13" {
        return Err(ApiError::bad_request(
            "bad_websocket",
            "Sec-WebSocket-Version must be 13",
        ));
    }
    let key = header(SEC_WEBSOCKET_KEY).to_string();
    if key.is_empty() {
        return Err(ApiError::bad_request(
            "bad_websocket",
            "Sec-WebSocket-Key is missing",
        ));
    }
    let q = read::<StreamQuery>(req.uri().query())?;
    let since = q.since.map(|w| w.0);
    let lang = negotiate(q.lang.as_deref(), req.headers())?;
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    let slot = req.extensions_mut().remove::<super::ConnectionSlot>();
    let on_upgrade = hyper::upgrade::on(&mut req);
    {
        let mut set = sessions.lock().unwrap_or_else(|p| p.into_inner());
        while set.try_join_next().is_some() {}
        set.spawn(async move {
            let _open = open; // counted as an open WebSocket until the task ends
            let Ok(upgraded) = on_upgrade.await else {
                return;
            };
            let ws = WebSocketStream::from_raw_socket(
                TokioIo::new(upgraded),
                Role::Server,
                Some(ws_config()),
            )
            .await;
            run(ws, messaging, accounts, session, since, lang, shutdown).await;
            drop(slot); // the socket is closed: its connection slot is free again
        });
    }
    let mut r = Response::new(super::json::full(Bytes::new()));
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(v) = HeaderValue::from_str(&accept) {
        h.insert(SEC_WEBSOCKET_ACCEPT, v);
    }
    Ok(r)
}

type Ws = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// Largest frame or message a client may send: clients send only `auth` and `ack` frames.
const MAX_CLIENT_MESSAGE: usize = 16 * 1024;

/// The event stream's WebSocket settings. tungstenite's defaults allocate a 128 KiB read buffer
/// up front and gather 128 KiB before writing: about 140 KiB per idle connection. Clients send
/// a few small frames, so a 4 KiB read buffer serves them; the events of one feed batch are
/// gathered up to 16 KiB and flushed together. An idle connection costs ~17 KiB (see
/// `docs/PERFORMANCE.md`, `loadgen --idle-ws`); the write buffer grows only on a stream that
/// has had events.
fn ws_config() -> tokio_tungstenite::tungstenite::protocol::WebSocketConfig {
    tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(16 * 1024)
        .max_write_buffer_size(4 << 20)
        .max_message_size(Some(MAX_CLIENT_MESSAGE))
        .max_frame_size(Some(MAX_CLIENT_MESSAGE))
}

/// Sends a close frame, then closes the socket gracefully: the server's half first (TLS
/// close_notify), then what the client still sends — its close frame, or the rest of a frame
/// that was refused — is read and discarded for a bounded time and size by the connection's
/// I/O (see `server.rs`), so the client is not reset before it has read the close frame.
async fn close(ws: &mut Ws, code: CloseCode, reason: &str) {
    let _ = ws
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: reason.to_string().into(),
        })))
        .await;
    let _ = tokio::io::AsyncWriteExt::shutdown(ws.get_mut()).await;
}

/// The close code and reason for a client frame that could not be read, when the client is
/// still there to be told.
fn refusal(e: &tokio_tungstenite::tungstenite::Error) -> Option<(CloseCode, &'static str)> {
    use tokio_tungstenite::tungstenite::Error;
    match e {
        Error::Capacity(_) => Some((CloseCode::Size, "a client frame may be at most 16 KiB")),
        Error::Protocol(_) => Some((CloseCode::Protocol, "WebSocket protocol error")),
        Error::Utf8(_) => Some((CloseCode::Invalid, "a text frame must be UTF-8")),
        _ => None,
    }
}

const AUTH_FIRST: (CloseCode, &str) = (
    CloseCode::Policy,
    "authenticate with {\"type\":\"auth\",\"token\":…}",
);

/// Reads the first frame as `{"type":"auth","token"}`; else the close code and reason to
/// answer with.
async fn first_frame_auth(
    ws: &mut Ws,
    accounts: &Accounts,
) -> Result<Session, (CloseCode, &'static str)> {
    let frame = match tokio::time::timeout(AUTH_WITHIN, ws.next()).await {
        Ok(Some(Ok(frame))) => frame,
        Ok(Some(Err(e))) => return Err(refusal(&e).unwrap_or(AUTH_FIRST)),
        Ok(None) | Err(_) => return Err(AUTH_FIRST),
    };
    let Message::Text(text) = frame else {
        return Err(AUTH_FIRST);
    };
    let v: serde_json::Value = serde_json::from_str(text.as_str()).map_err(|_| AUTH_FIRST)?;
    if v["type"] != "auth" {
        return Err(AUTH_FIRST);
    }
    let token = v["token"].as_str().ok_or(AUTH_FIRST)?;
    accounts.authenticate(token).await.map_err(|_| AUTH_FIRST)
}

async fn run(
    mut ws: Ws,
    messaging: Messaging,
    accounts: Accounts,
    session: Option<Session>,
    since: Option<u64>,
    lang: Lang,
    mut shutdown: watch::Receiver<bool>,
) {
    let session = match session {
        Some(s) => s,
        None => match first_frame_auth(&mut ws, &accounts).await {
            Ok(s) => s,
            Err((code, reason)) => {
                close(&mut ws, code, reason).await;
                return;
            }
        },
    };
    if let Some(s) = since
        && messaging.acknowledge(&session, s).await.is_err()
    {
        close(&mut ws, CloseCode::Error, "server error").await;
        return;
    }
    let mut wake = messaging.subscribe(session.user);
    let mut cursor = since;
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    let mut heard = tokio::time::Instant::now();
    loop {
        wake.borrow_and_update();
        let (events, next) = match messaging.events(&session, cursor, BATCH).await {
            Ok(x) => x,
            Err(e) => {
                tracing::error!(error = %e, "event stream read failed");
                close(&mut ws, CloseCode::Error, "server error").await;
                return;
            }
        };
        // One frame per event, gathered and written (one TLS record, one syscall) with the
        // batch's flush rather than one by one.
        for (pos, e) in &events {
            let Ok(text) = serde_json::to_string(&event_json(*pos, e, lang)) else {
                close(&mut ws, CloseCode::Error, "server error").await;
                return;
            };
            if ws.feed(Message::Text(text.into())).await.is_err() {
                return;
            }
        }
        if !events.is_empty() && ws.flush().await.is_err() {
            return;
        }
        cursor = Some(next);
        if events.len() >= BATCH {
            continue;
        }
        loop {
            tokio::select! {
                changed = wake.changed() => {
                    if changed.is_err() { return; }
                    break;
                }
                frame = ws.next() => {
                    heard = tokio::time::Instant::now();
                    match frame {
                        Some(Ok(Message::Text(t))) => {
                            let v: serde_json::Value = serde_json::from_str(t.as_str()).unwrap_or_default();
                            let acked = v["cursor"].as_str().and_then(|c| c.parse::<u64>().ok());
                            match (v["type"].as_str(), acked) {
                                (Some("ack"), Some(c)) => {
                                    if messaging.acknowledge(&session, c).await.is_err() {
                                        close(&mut ws, CloseCode::Error, "server error").await;
                                        return;
                                    }
                                }
                                _ => {
                                    close(&mut ws, CloseCode::Unsupported, "expected {\"type\":\"ack\",\"cursor\":\"N\"}").await;
                                    return;
                                }
                            }
                        }
                        Some(Err(e)) => {
                            if let Some((code, reason)) = refusal(&e) {
                                close(&mut ws, code, reason).await;
                            }
                            return;
                        }
                        Some(Ok(Message::Close(_))) | None => return,
                        Some(Ok(_)) => {} // pings are answered by the library; pongs just count as heard
                    }
                }
                _ = ping.tick() => {
                    if heard.elapsed() > SILENT_LIMIT {
                        close(&mut ws, CloseCode::Away, "no answer to pings").await;
                        return;
                    }
                    if ws.send(Message::Ping(Bytes::new())).await.is_err() {
                        return;
                    }
                }
                _ = shutdown.changed() => {
                    close(&mut ws, CloseCode::Away, "the server is shutting down").await;
                    return;
                }
            }
        }
    }
}
