//! The listener's protections and lifecycle: graceful shutdown finishes an in-flight request,
//! slow or silent clients are cut off, the connection limit holds, and bodies without a
//! Content-Length are still limited.

use std::time::Duration;

use tests::{TestNode, eventually, node, phone};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Reads until the peer closes (or 10 s pass); returns what was read.
async fn read_to_close<S: AsyncReadExt + Unpin>(s: &mut S) -> Option<String> {
    let mut buf = Vec::new();
    match tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf)).await {
        Ok(_) => Some(String::from_utf8_lossy(&buf).into_owned()),
        Err(_) => None,
    }
}

/// Reads one response head (up to its blank line, and not a byte further) within 10 s.
async fn read_head<S: AsyncReadExt + Unpin>(s: &mut S) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut byte))
            .await
            .expect("a response head within 10 s")
            .expect("reading a response head");
        assert_eq!(
            n,
            1,
            "closed before a whole head: {:?}",
            String::from_utf8_lossy(&head)
        );
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head).into_owned()
}

#[tokio::test]
async fn shutdown_lets_an_in_flight_request_finish_then_stops_accepting() {
    let mut n = TestNode::start().await;
    let c = n.client();
    let body = serde_json::to_vec(&serde_json::json!({
        "phone": phone(1), "handle": "inflight", "password": "password-inflight",
        "nickname": "In", "accept_policy": tests::POLICY,
    }))
    .unwrap();
    let mut tls = c.connect_tls().await.unwrap();
    let head = format!(
        "POST /api/v1/accounts HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Expect: 100-continue\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    tls.write_all(head.as_bytes()).await.unwrap();
    tls.flush().await.unwrap();
    // The node asks for the body when its handler starts reading it: the request is in flight.
    let asked = read_head(&mut tls).await;
    assert!(asked.starts_with("HTTP/1.1 100"), "{asked}");
    tls.write_all(&body[..10]).await.unwrap();
    tls.flush().await.unwrap();

    let node = n.node.take().unwrap();
    let addr = node.local_addr();
    let stopping = tokio::spawn(node.shutdown());
    // The listener closes first; then shutdown waits for the connections' requests.
    eventually(10, "the node to stop accepting", || async {
        tokio::net::TcpStream::connect(addr)
            .await
            .is_err()
            .then_some(())
    })
    .await;
    assert!(
        !stopping.is_finished(),
        "shutdown waits for the request in flight"
    );

    tls.write_all(&body[10..]).await.unwrap();
    tls.flush().await.unwrap();
    let answer = read_to_close(&mut tls)
        .await
        .expect("the connection closes after the answer");
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    tokio::time::timeout(Duration::from_secs(10), stopping)
        .await
        .expect("shutdown completes")
        .unwrap();
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no longer accepting"
    );

    // The acknowledged registration is durable: a restarted node knows the handle.
    n.config.server.listen = "127.0.0.1:0".parse().unwrap();
    n.node = Some(
        node::Node::start(n.config.clone(), n.clock.clone())
            .await
            .unwrap(),
    );
    n.client().login("inflight").await;
}

#[tokio::test]
async fn a_client_that_sends_headers_too_slowly_is_disconnected() {
    let n =
        TestNode::start_toml("[http]\nheader_read_timeout_ms = 300\nidle_timeout_ms = 400\n").await;
    let c = n.client();
    let mut tls = c.connect_tls().await.unwrap();
    tls.write_all(b"GET /health HTTP/1.1\r\nHo").await.unwrap();
    tls.flush().await.unwrap();
    let got = read_to_close(&mut tls).await;
    assert!(got.is_some(), "the server closed the connection");
    assert!(!got.unwrap().contains("200 OK"));

    // A client that connects and sends nothing at all is cut off too.
    let mut silent = c.connect_tls().await.unwrap();
    assert!(
        read_to_close(&mut silent).await.is_some(),
        "silent connection closed"
    );

    // A keep-alive connection is served, then closed once idle.
    let mut kept = c.connect_tls().await.unwrap();
    kept.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    kept.flush().await.unwrap();
    let got = read_to_close(&mut kept)
        .await
        .expect("idle keep-alive connection closed");
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");

    // And one that never finishes the TLS handshake.
    let mut raw = tokio::net::TcpStream::connect(n.addr()).await.unwrap();
    assert!(
        read_to_close(&mut raw).await.is_some(),
        "handshake-less connection closed"
    );
}

#[tokio::test]
async fn connections_beyond_the_limit_are_refused_until_one_closes() {
    let n = TestNode::start_toml("[http]\nmax_connections = 2\n").await;
    let c = n.client();
    // The node takes a slot before the TLS handshake, so both are held once these return.
    let a = c.connect_tls().await.unwrap();
    let _b = c.connect_tls().await.unwrap();
    assert!(c.connect_tls().await.is_err(), "third connection refused");
    drop(a);
    eventually(5, "a slot freed by the closed connection", || async {
        c.connect_tls().await.ok()
    })
    .await;
}

#[tokio::test]
async fn a_chunked_body_over_the_limit_gets_413() {
    let n = TestNode::start_toml("[http]\nmax_body_bytes = 1024\n").await;
    let mut tls = n.client().connect_tls().await.unwrap();
    let chunk = vec![b'a'; 3000];
    let mut req =
        b"POST /api/v1/accounts HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
                    Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            .to_vec();
    req.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
    req.extend_from_slice(&chunk);
    req.extend_from_slice(b"\r\n0\r\n\r\n");
    tls.write_all(&req).await.unwrap();
    tls.flush().await.unwrap();
    let answer = read_to_close(&mut tls).await.expect("answer");
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("body_too_large"));
}

#[tokio::test]
async fn open_websockets_count_against_the_connection_limit() {
    let n = TestNode::start_toml("[http]\nmax_connections = 2\n").await;
    let c = n.client();
    let t = c.user("wslimit", &phone(1)).await;
    // Each holds its slot from before its TLS handshake through the upgrade.
    let first = c.ws(Some(&t), None).await;
    let _second = c.ws(Some(&t), None).await;
    assert!(
        c.connect_tls().await.is_err(),
        "both slots are held by the open WebSockets"
    );
    drop(first);
    eventually(5, "a slot freed by the closed WebSocket", || async {
        c.connect_tls().await.ok()
    })
    .await;
}
