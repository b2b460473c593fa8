//! The HTTP edge under abuse, over raw sockets: bodies that stall or trickle, bodies over the
//! limit over HTTP/2, clients that send their whole body before reading an early answer,
//! duplicated headers, over-long targets, idle keep-alive connections, the `Allow` header of a
//! 405, and WebSocket frames over the cap.

use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tests::{Client, TestNode, phone};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

/// Reads one whole HTTP/1.1 response (head and Content-Length body) within 10 s; panics if the
/// connection ends or fails first.
async fn read_response<S: AsyncRead + Unpin>(s: &mut S) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                return String::from_utf8_lossy(&buf[..end + 4 + len]).into_owned();
            }
        }
        match tokio::time::timeout_at(deadline, s.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            other => panic!(
                "no whole response ({other:?}); got {:?}",
                String::from_utf8_lossy(&buf)
            ),
        }
    }
}

/// Reads and discards until the server closes; whether it did within `limit`.
async fn closed_within<S: AsyncRead + Unpin>(s: &mut S, limit: Duration) -> bool {
    closed_cleanly_within(s, limit).await.is_some()
}

/// Like [`closed_within`], telling whether the close was clean (TLS close_notify before the
/// end of the stream, rather than a cut connection); `None` if it did not close within `limit`.
async fn closed_cleanly_within<S: AsyncRead + Unpin>(s: &mut S, limit: Duration) -> Option<bool> {
    let mut chunk = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut chunk)).await {
            Err(_) => return None,
            Ok(Ok(0)) => return Some(true),
            Ok(Ok(_)) => continue,
            Ok(Err(_)) => return Some(false),
        }
    }
}

const REGISTER_HEAD: &str = "POST /api/v1/accounts HTTP/1.1\r\nHost: localhost\r\n\
                             Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"pho";

#[tokio::test]
async fn a_stalled_or_trickling_body_gets_408_and_frees_its_connection_slot() {
    let n = TestNode::start_toml(
        "[http]\nmax_connections = 2\nbody_read_timeout_ms = 300\n\
         body_min_bytes_per_sec = 1000\nlinger_ms = 300\n",
    )
    .await;
    let c = n.client();
    let mut stalled = c.connect_tls().await.unwrap();
    stalled.write_all(REGISTER_HEAD.as_bytes()).await.unwrap();
    stalled.flush().await.unwrap();
    let trickling = c.connect_tls().await.unwrap();
    let (mut trickle_rd, mut trickle_wr) = tokio::io::split(trickling);
    trickle_wr
        .write_all(REGISTER_HEAD.as_bytes())
        .await
        .unwrap();
    // One byte every 50 ms: 20 bytes a second, far below the minimum rate.
    let trickler = tokio::spawn(async move {
        for _ in 0..400 {
            if trickle_wr.write_all(b"a").await.is_err() || trickle_wr.flush().await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        trickle_wr
    });

    for answer in [
        read_response(&mut stalled).await,
        read_response(&mut trickle_rd).await,
    ] {
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains("\"body_timeout\""), "{answer}");
    }

    // Both clients keep their connections open; their slots are free all the same.
    let mut served = false;
    for _ in 0..100 {
        if let Ok(mut tls) = c.connect_tls().await {
            tls.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
                .await
                .unwrap();
            tls.flush().await.unwrap();
            let mut first = [0u8; 12];
            if tls.read_exact(&mut first).await.is_ok() && first.starts_with(b"HTTP/1.1 200") {
                served = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(served, "a new client is served while the slow ones stay");
    trickler.abort();
    drop(stalled);
}

#[tokio::test]
async fn a_stalled_upload_raw_or_multipart_gets_408_and_gives_its_upload_place_back() {
    // One upload place: a stalled upload that kept it would turn every later one away (503).
    let n = TestNode::start_toml(
        "[http]\nbody_read_timeout_ms = 300\nbody_min_bytes_per_sec = 1000\nlinger_ms = 300\n\
         [media]\nmax_concurrent_uploads = 1\n",
    )
    .await;
    let c = n.client();
    let token = c.user("slowpoke", &phone(3)).await;
    for (content_type, first_bytes) in [
        ("application/octet-stream", "abc".to_string()),
        (
            "multipart/form-data; boundary=XyZ",
            "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.bin\"\r\n\
             Content-Type: application/octet-stream\r\n\r\nabc"
                .to_string(),
        ),
    ] {
        let mut tls = c.connect_tls().await.unwrap();
        let head = format!(
            "POST /api/v1/media HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: {content_type}\r\nContent-Length: 5000\r\n\r\n{first_bytes}"
        );
        tls.write_all(head.as_bytes()).await.unwrap();
        tls.flush().await.unwrap();
        let answer = read_response(&mut tls).await;
        assert!(
            answer.starts_with("HTTP/1.1 408"),
            "{content_type}: {answer}"
        );
        assert!(
            answer.contains("\"body_timeout\""),
            "{content_type}: {answer}"
        );
        // The place is free again: a whole upload is stored.
        let r = c
            .send(
                Request::post("/api/v1/media")
                    .header("authorization", format!("Bearer {token}"))
                    .header("content-type", "application/octet-stream")
                    .body(Full::new(Bytes::from_static(b"hello")))
                    .unwrap(),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{content_type}");
    }
}

#[tokio::test]
async fn a_body_whose_bytes_keep_up_the_minimum_rate_is_read_past_the_base_timeout() {
    // Every byte received earns 10 ms on top of the 300 ms base.
    let n =
        TestNode::start_toml("[http]\nbody_read_timeout_ms = 300\nbody_min_bytes_per_sec = 100\n")
            .await;
    let body = format!("{{\"pad\":\"{}\"}}", "x".repeat(1990));
    let (first, rest) = body.as_bytes().split_at(1000);
    let mut tls = n.client().connect_tls().await.unwrap();
    let head = format!(
        "POST /api/v1/accounts HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    tls.write_all(head.as_bytes()).await.unwrap();
    // 1000 bytes at once: 10 s earned. Then a pause twice the base timeout (a sleep ends no
    // sooner), so a deadline that did not count the bytes would have passed: 408.
    tls.write_all(first).await.unwrap();
    tls.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    tls.write_all(rest).await.unwrap();
    tls.flush().await.unwrap();
    let answer = read_response(&mut tls).await;
    // Read whole and parsed: refused for its unknown field, not for its pace.
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("invalid_request"), "{answer}");
}

/// Sends `method path` with `total` bytes of body over a raw HTTP/2 stream while reading the
/// answer: the status, the JSON answer, and whether the whole body could be sent without the
/// stream being reset.
async fn h2_send(
    c: &Client,
    method: &str,
    path: &str,
    token: Option<&str>,
    content_type: &str,
    total: usize,
    with_length: bool,
) -> (StatusCode, serde_json::Value, Result<(), String>) {
    let tls = c.connect_tls_h2().await.unwrap();
    let (client, conn) = h2::client::handshake(tls).await.unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut client = client.ready().await.unwrap();
    let mut b = Request::builder()
        .method(method)
        .uri(format!("https://localhost{path}"))
        .header("content-type", content_type);
    if with_length {
        b = b.header("content-length", total);
    }
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    let (response, mut send) = client.send_request(b.body(()).unwrap(), false).unwrap();
    let sender = tokio::spawn(async move {
        let mut left = total;
        while left > 0 {
            send.reserve_capacity(left.min(64 * 1024));
            let cap = match std::future::poll_fn(|cx| send.poll_capacity(cx)).await {
                Some(Ok(n)) => n,
                Some(Err(e)) => return Err(e.to_string()),
                None => return Err("stream closed".to_string()),
            };
            let n = cap.min(left);
            left -= n;
            send.send_data(Bytes::from(vec![b'a'; n]), left == 0)
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    });
    let resp = tokio::time::timeout(Duration::from_secs(10), response)
        .await
        .expect("an answer within 10 s")
        .expect("an answer, not a reset");
    let status = resp.status();
    let mut body = resp.into_body();
    let mut bytes = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.expect("answer body");
        let _ = body.flow_control().release_capacity(chunk.len());
        bytes.extend_from_slice(&chunk);
    }
    let sent = tokio::time::timeout(Duration::from_secs(10), sender)
        .await
        .expect("body sent or refused within 10 s")
        .expect("sender task");
    let json = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)));
    (status, json, sent)
}

#[tokio::test]
async fn an_oversized_body_over_http2_gets_413_and_its_stream_ends_cleanly() {
    let n = TestNode::start_toml("[media]\nmax_bytes = 65536\n").await;
    let c = n.client();
    let token = c.user("hugefile", &phone(1)).await;
    // 2 MiB: more than the stream's flow-control window, so the client can finish only if the
    // node reads (and discards) the rest after answering. With and without Content-Length,
    // for a JSON endpoint (http.max_body_bytes) and for media (media.max_bytes).
    for (path, token, content_type, with_length) in [
        ("/api/v1/accounts", None, "application/json", true),
        ("/api/v1/accounts", None, "application/json", false),
        ("/api/v1/media", Some(token.as_str()), "image/png", true),
    ] {
        let (status, json, sent) =
            h2_send(&c, "POST", path, token, content_type, 2 << 20, with_length).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{path}: {json}");
        assert_eq!(json["error"]["code"], "body_too_large");
        assert_eq!(
            sent,
            Ok(()),
            "{path}: the stream is not reset under the client"
        );
    }
}

#[tokio::test]
async fn every_early_answer_over_http2_reaches_the_client_and_its_stream_ends_cleanly() {
    // One registration an hour from this address, so the second is refused before its body.
    let n =
        TestNode::start_toml("[media]\nmax_bytes = 65536\n[rate_limit]\nregister_per_hour = 1\n")
            .await;
    let c = n.client();
    let token = c.user("earlybird", &phone(5)).await;
    let t = Some(token.as_str());
    let json = "application/json";
    // Each answer is decided before the body (2 MiB, more than the stream's flow-control
    // window) has been read, on a different path through the node: the client can finish
    // sending only if the node reads and discards the rest, whichever way it answered.
    for (method, path, token, content_type, with_length, status, code) in [
        // A body over the limit found part way through a multipart upload (no Content-Length).
        (
            "POST",
            "/api/v1/media",
            t,
            "multipart/form-data; boundary=XyZ",
            false,
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
        ),
        // A query parameter refused before a handler looks at the body.
        (
            "GET",
            "/api/v1/communities?limit=0",
            t,
            json,
            true,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
        // A path parameter refused by the handler, which then drops the request.
        (
            "PUT",
            "/api/v1/me/consents/no_such_purpose",
            t,
            json,
            true,
            StatusCode::NOT_FOUND,
            "unknown_purpose",
        ),
        // An endpoint that takes no body.
        (
            "DELETE",
            "/api/v1/me/real-name",
            t,
            json,
            true,
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        // The per-address limit, checked before the route's handler runs.
        (
            "POST",
            "/api/v1/accounts",
            None,
            json,
            false,
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
        ),
    ] {
        let (got, body, sent) =
            h2_send(&c, method, path, token, content_type, 2 << 20, with_length).await;
        assert_eq!(got, status, "{method} {path}: {body}");
        assert_eq!(body["error"]["code"], code, "{method} {path}: {body}");
        assert_eq!(
            sent,
            Ok(()),
            "{method} {path}: the stream is not reset under the client"
        );
    }
}

/// Sends `head` and `body_len` bytes of body in full, then reads the answer (as Python
/// `requests` and many SDKs do).
async fn whole_body_then_read(c: &Client, head: &str, body_len: usize) -> String {
    let tls = c.connect_tls().await.unwrap();
    let (mut rd, mut wr) = tokio::io::split(tls);
    let writer = async {
        wr.write_all(head.as_bytes()).await?;
        let chunk = vec![b'a'; 64 * 1024];
        let mut left = body_len;
        while left > 0 {
            let n = left.min(chunk.len());
            wr.write_all(&chunk[..n]).await?;
            left -= n;
        }
        wr.flush().await
    };
    let wrote = tokio::time::timeout(Duration::from_secs(20), writer)
        .await
        .expect("the node takes the whole body");
    assert!(wrote.is_ok(), "writing the body: {wrote:?}");
    read_response(&mut rd).await
}

#[tokio::test]
async fn a_client_that_sends_its_whole_body_first_still_gets_the_early_answer() {
    let n = TestNode::start().await;
    let c = n.client();
    let token = c.user("eager", &phone(2)).await;
    let big = 6 << 20;
    let head = |method: &str, path: &str, auth: &str| {
        format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
             {auth}Content-Length: {big}\r\n\r\n"
        )
    };
    // 401 before the body is read.
    let answer = whole_body_then_read(&c, &head("PATCH", "/api/v1/me", ""), big).await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(answer.contains("missing_token"), "{answer}");
    // 413 by Content-Length.
    let answer = whole_body_then_read(&c, &head("POST", "/api/v1/accounts", ""), big).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    // 404: no such route.
    let answer = whole_body_then_read(&c, &head("POST", "/api/v1/nothing", ""), big).await;
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
    // An endpoint that takes no body at all answers without reading it; the connection's
    // graceful close still lets the client read the answer.
    let auth = format!("Authorization: Bearer {token}\r\n");
    let answer =
        whole_body_then_read(&c, &head("DELETE", "/api/v1/me/real-name", &auth), big).await;
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
    assert!(answer.contains("no real name"), "{answer}");
}

#[tokio::test]
async fn discarding_after_an_early_answer_is_bounded() {
    let n = TestNode::start_toml("[http]\nlinger_ms = 300\nlinger_max_bytes = 65536\n").await;
    let c = n.client();
    // Bounded in size: a 100 MB body is not read to its end.
    let tls = c.connect_tls().await.unwrap();
    let (mut rd, mut wr) = tokio::io::split(tls);
    wr.write_all(
        b"PATCH /api/v1/me HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
          Content-Length: 100000000\r\n\r\n",
    )
    .await
    .unwrap();
    let writer = tokio::spawn(async move {
        let chunk = vec![b'a'; 64 * 1024];
        for _ in 0..1600 {
            if wr.write_all(&chunk).await.is_err() {
                return true;
            }
        }
        false
    });
    let cut = tokio::time::timeout(Duration::from_secs(10), writer)
        .await
        .expect("the node stops reading within 10 s")
        .unwrap();
    assert!(cut, "the connection was closed under the writer");
    drop(rd.read(&mut [0u8; 16]).await);

    // Bounded in time: a body that trickles is not waited for beyond linger_ms.
    let mut tls = c.connect_tls().await.unwrap();
    tls.write_all(
        b"PATCH /api/v1/me HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
          Content-Length: 1000\r\n\r\n{",
    )
    .await
    .unwrap();
    tls.flush().await.unwrap();
    let answer = read_response(&mut tls).await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(
        closed_within(&mut tls, Duration::from_secs(5)).await,
        "closed once the discard time is over"
    );
}

/// A request with these headers, in this order (repeated names are sent repeatedly).
fn with_headers(method: &str, path: &str, headers: &[(&str, &str)]) -> Request<Full<Bytes>> {
    let mut b = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost");
    for (name, value) in headers {
        b = b.header(*name, *value);
    }
    let body = if method == "POST" { "{}" } else { "" };
    b.body(Full::new(Bytes::from(body))).unwrap()
}

#[tokio::test]
async fn a_header_the_node_reads_once_is_refused_when_sent_twice() {
    let n = TestNode::start().await;
    let c = n.client();
    let token = c.user("twice", &phone(3)).await;
    let real = format!("Bearer {token}");
    let json = ("content-type", "application/json");
    for (method, path, headers) in [
        (
            "GET",
            "/api/v1/me",
            [
                ("authorization", real.as_str()),
                ("authorization", "Bearer forged"),
            ],
        ),
        (
            "GET",
            "/api/v1/me",
            [
                ("authorization", "Bearer forged"),
                ("authorization", real.as_str()),
            ],
        ),
        (
            "POST",
            "/api/v1/accounts",
            [json, ("content-type", "text/plain")],
        ),
    ] {
        let r = c.send(with_headers(method, path, &headers)).await;
        assert_eq!(
            r.status,
            StatusCode::BAD_REQUEST,
            "{method} {path} {headers:?}"
        );
        assert_eq!(r.error_code(), "duplicate_header");
    }

    // One header is served, and its scheme is case-insensitive (RFC 9110 §11.1).
    let lower = format!("bearer {token}");
    let r = c
        .send(with_headers(
            "GET",
            "/api/v1/me",
            &[("authorization", &lower)],
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn a_405_names_the_allowed_methods() {
    let n = TestNode::start().await;
    let c = n.client();
    for (method, path, allow) in [
        ("POST", "/api/v1/me", "GET, PATCH"),
        ("PUT", "/health", "GET"),
        ("PATCH", "/api/v1/me/real-name", "DELETE, GET, POST"),
        ("GET", "/_federation/v1/transactions/abc", "PUT"),
    ] {
        let r = c.call(method, path, None, None).await;
        assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        assert_eq!(r.error_code(), "method_not_allowed");
        assert_eq!(
            r.headers.get("allow").and_then(|v| v.to_str().ok()),
            Some(allow),
            "{method} {path}"
        );
    }
}

#[tokio::test]
async fn an_over_long_target_gets_414_in_the_error_shape() {
    let n = TestNode::start().await;
    let c = n.client();
    let path = format!("/health?pad={}", "x".repeat(node::MAX_URI_BYTES));
    let r = c.get(&path, None).await;
    assert_eq!(r.status, StatusCode::URI_TOO_LONG);
    assert_eq!(r.error_code(), "uri_too_long");
    // Up to the limit reaches the endpoint, which judges the value (`/health` takes no query).
    let path = format!(
        "/api/v1/policy?lang={}",
        "x".repeat(node::MAX_URI_BYTES - 30)
    );
    let r = c.get(&path, None).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.error_code(), "invalid_field");
}

/// What hyper answers before the node sees a request (docs/HTTP.md lists it): a target over
/// 65534 bytes gets an empty 414, a NUL in a header an empty 400.
#[tokio::test]
async fn what_hyper_answers_itself_is_as_documented() {
    let n = TestNode::start().await;
    let c = n.client();
    let mut tls = c.connect_tls().await.unwrap();
    let long = format!(
        "GET /health?pad={} HTTP/1.1\r\nHost: localhost\r\n\r\n",
        "x".repeat(70_000)
    );
    tls.write_all(long.as_bytes()).await.unwrap();
    tls.flush().await.unwrap();
    let answer = read_response(&mut tls).await;
    assert!(answer.starts_with("HTTP/1.1 414"), "{answer}");
    assert!(answer.ends_with("\r\n\r\n"), "no body: {answer}");

    let mut tls = c.connect_tls().await.unwrap();
    tls.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nX-A: a\0b\r\n\r\n")
        .await
        .unwrap();
    tls.flush().await.unwrap();
    let answer = read_response(&mut tls).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.ends_with("\r\n\r\n"), "no body: {answer}");
}

const GET_HEALTH: &[u8] = b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n";

/// A `GET /health` over an HTTP/2 connection's `sender`, answered 200.
async fn h2_health(sender: &mut hyper::client::conn::http2::SendRequest<Full<Bytes>>) {
    let req = Request::builder()
        .uri("https://localhost/health")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    resp.into_body().collect().await.unwrap();
}

#[tokio::test]
async fn idle_keep_alive_connections_outlive_the_header_timeout_and_close_cleanly_when_idle() {
    // The idle timeout is ten times the header timeout: room for the steps between an idle
    // connection's first request and its second (a slow head being cut, mostly).
    let n = TestNode::start_toml("[http]\nheader_read_timeout_ms = 300\nidle_timeout_ms = 3000\n")
        .await;
    let c = n.client();
    // An HTTP/1.1 keep-alive connection and an HTTP/2 one, each served once, then idle.
    let mut h1 = c.connect_tls().await.unwrap();
    h1.write_all(GET_HEALTH).await.unwrap();
    h1.flush().await.unwrap();
    assert!(read_response(&mut h1).await.starts_with("HTTP/1.1 200"));
    let tls = c.connect_tls_h2().await.unwrap();
    let (mut h2, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .unwrap();
    let conn = tokio::spawn(conn);
    h2_health(&mut h2).await;

    // After them, a third connection is served once, then sends the head of its next request
    // a byte every 50 ms, for seconds: the header timeout cuts it while the head is still
    // arriving (its bytes keep it from ever being idle).
    let mut slow = c.connect_tls().await.unwrap();
    slow.write_all(GET_HEALTH).await.unwrap();
    slow.flush().await.unwrap();
    assert!(read_response(&mut slow).await.starts_with("HTTP/1.1 200"));
    let (mut rd, mut wr) = tokio::io::split(slow);
    let trickler = tokio::spawn(async move {
        let head = format!(
            "GET /health HTTP/1.1\r\nHost: localhost\r\nX-Pad: {}",
            "a".repeat(100)
        );
        for b in head.as_bytes() {
            if wr.write_all(&[*b]).await.is_err() || wr.flush().await.is_err() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    });
    assert!(
        closed_within(&mut rd, Duration::from_secs(10)).await,
        "a slow head is cut"
    );
    assert!(
        trickler.await.unwrap(),
        "cut while its head was still arriving, by the header timeout"
    );

    // The idle connections went idle before that head began, so a header timeout applied to
    // them would have closed them before it cut the head. Both are still served …
    h1.write_all(GET_HEALTH).await.unwrap();
    h1.flush().await.unwrap();
    assert!(read_response(&mut h1).await.starts_with("HTTP/1.1 200"));
    h2_health(&mut h2).await;
    // … and, idle again, closed by the node: HTTP/1.1 with close_notify, HTTP/2 with GOAWAY
    // and close_notify, not cut.
    assert_eq!(
        closed_cleanly_within(&mut h1, Duration::from_secs(10)).await,
        Some(true),
        "HTTP/1.1 idle close, with close_notify"
    );
    let ended = tokio::time::timeout(Duration::from_secs(10), conn).await;
    assert!(
        matches!(ended, Ok(Ok(Ok(())))),
        "HTTP/2 connection closed cleanly: {ended:?}"
    );
}

/// The close code of the first close frame on `ws`, skipping other frames; panics if the
/// connection ends without one.
async fn close_code(ws: &mut tests::Ws) -> CloseCode {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("an answer within 10 s")
        {
            Some(Ok(Message::Close(Some(frame)))) => return frame.code,
            Some(Ok(Message::Close(None))) => panic!("a close frame without a code"),
            Some(Ok(_)) => continue,
            other => panic!("closed without a close frame: {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_websocket_frame_over_the_cap_is_answered_with_close_1009() {
    let n = TestNode::start().await;
    let c = n.client();
    let token = c.user("bigframe", &phone(4)).await;
    let big = "x".repeat(20_000);

    let mut ws = c.ws(Some(&token), None).await;
    ws.send(Message::Text(big.clone().into())).await.unwrap();
    assert_eq!(close_code(&mut ws).await, CloseCode::Size);

    // Also as the first frame of a client that authenticates by frame.
    let mut ws = c.ws(None, None).await;
    ws.send(Message::Text(big.into())).await.unwrap();
    assert_eq!(close_code(&mut ws).await, CloseCode::Size);

    // A binary frame where text is expected is still refused by policy, with a close frame.
    let mut ws = c.ws(None, None).await;
    ws.send(Message::Binary(Bytes::from_static(b"\x01\x02")))
        .await
        .unwrap();
    assert_eq!(close_code(&mut ws).await, CloseCode::Policy);
}

#[tokio::test]
async fn a_client_waiting_for_100_continue_gets_the_early_answer_and_is_not_asked_for_its_body() {
    // A minute of discarding and of idling: a connection that waited for either would still be
    // open long after the bound below.
    let n = TestNode::start_toml("[http]\nlinger_ms = 60000\nidle_timeout_ms = 60000\n").await;
    let c = n.client();
    for (method, path, status) in [
        ("PATCH", "/api/v1/me", "401"),
        ("POST", "/api/v1/accounts", "413"),
    ] {
        let mut tls = c.connect_tls().await.unwrap();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
             Expect: 100-continue\r\nContent-Length: 6291456\r\n\r\n"
        );
        tls.write_all(head.as_bytes()).await.unwrap();
        tls.flush().await.unwrap();
        let answer = read_response(&mut tls).await;
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}")),
            "{method} {path}: {answer}"
        );
        // Nothing more is asked of it, nor waited for: the connection ends at once.
        assert!(
            closed_within(&mut tls, Duration::from_secs(10)).await,
            "{method} {path}: closed after the answer"
        );
    }
}
