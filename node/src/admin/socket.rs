//! The admin socket: `<data_dir>/admin.sock`, mode 0600 (only the node's OS user can connect).
//! One request per connection: a JSON [`super::Request`] on one line; the answer is one line,
//! `{"ok": result}` or `{"error": {"kind": "invalid"|"problem"|"failed", "message"}}`. Long
//! commands (`users-erase`, `retention-run` without `dry_run`) send progress lines before it,
//! `{"progress": {"done": N, "total": M}}` (erasure steps of 6; rows removed of those due), so
//! a client reads lines until one holds `ok` or `error`.
//! `users-export` alone answers `{"ok":{"archive":true}}` and then the archive's bytes until the
//! connection closes; an archive cut short lacks its final `"complete":true`.
//!
//! Bounds: a client has [`Limits::request_timeout`] to send its line; at most
//! [`Limits::max_connections`] are served at once (finished ones are reaped as they end); on
//! stop, a connection still waiting for its request ends at once and requests in progress get
//! [`Limits::stop_grace`] before they are cut off.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::{AdminError, Context, Request, execute};

/// The socket's file name in the data directory.
pub const SOCKET_NAME: &str = "admin.sock";

/// Largest request line.
const MAX_REQUEST: u64 = 2 * 1024 * 1024;

/// The socket's bounds.
#[derive(Debug, Clone, Copy)]
struct Limits {
    /// How long a client has to send its request line.
    request_timeout: Duration,
    /// Connections served at once; further ones wait in the listen backlog.
    max_connections: usize,
    /// How long requests in progress may go on once the node stops (an export to a client
    /// that stopped reading ends here).
    stop_grace: Duration,
}

const LIMITS: Limits = Limits {
    request_timeout: Duration::from_secs(10),
    max_connections: 16,
    stop_grace: Duration::from_secs(10),
};

/// Binds the socket (replacing a stale file left by a node that did not stop cleanly; the
/// database lock guarantees no other node is running on this data directory) with mode 0600.
pub fn bind(path: &Path) -> std::io::Result<UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Serves admin requests until `stop` flips; then lets requests in progress finish (within a
/// grace period) and removes the socket file.
pub async fn serve(
    listener: UnixListener,
    path: std::path::PathBuf,
    ctx: Arc<Context>,
    stop: watch::Receiver<bool>,
) {
    serve_with(listener, stop, LIMITS, move |stream, stop| {
        let ctx = ctx.clone();
        async move { answer(stream, &ctx, stop, LIMITS.request_timeout).await }
    })
    .await;
    let _ = std::fs::remove_file(&path);
}

/// The accept loop, with `handle` answering each connection.
async fn serve_with<F, Fut>(
    listener: UnixListener,
    mut stop: watch::Receiver<bool>,
    limits: Limits,
    handle: F,
) where
    F: Fn(UnixStream, watch::Receiver<bool>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut tasks = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept(), if tasks.len() < limits.max_connections => {
                match accepted {
                    Ok((stream, _)) => {
                        tasks.spawn(handle(stream, stop.clone()));
                    }
                    Err(e) => {
                        // Out of descriptors, say: do not spin on it.
                        tracing::warn!(error = %e, "admin socket accept failed");
                        tokio::select! {
                            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                            _ = stop.changed() => break,
                        }
                    }
                }
            }
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            _ = stop.changed() => break,
        }
    }
    let drain = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(limits.stop_grace, drain)
        .await
        .is_err()
    {
        tracing::warn!(
            left = tasks.len(),
            "admin requests still running at shutdown were cut off"
        );
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
    }
}

/// Why no request line was read.
#[derive(Debug)]
enum NoRequest {
    /// The node is stopping.
    Stopping,
    TimedOut,
    Io(std::io::Error),
}

/// Reads the request line, within `timeout` and unless the node stops meanwhile.
async fn read_request(
    reader: &mut (impl AsyncBufReadExt + Unpin),
    stop: &mut watch::Receiver<bool>,
    timeout: Duration,
) -> Result<String, NoRequest> {
    let mut line = String::new();
    tokio::select! {
        read = tokio::time::timeout(timeout, reader.read_line(&mut line)) => match read {
            Ok(Ok(_)) => Ok(line),
            Ok(Err(e)) => Err(NoRequest::Io(e)),
            Err(_) => Err(NoRequest::TimedOut),
        },
        _ = stop.wait_for(|stopped| *stopped) => Err(NoRequest::Stopping),
    }
}

pub(super) fn error_json(e: &AdminError) -> Value {
    let kind = match e {
        AdminError::Invalid(_) => "invalid",
        AdminError::Problem(_) => "problem",
        _ => "failed",
    };
    json!({"error": {"kind": kind, "message": e.to_string()}})
}

async fn answer(
    stream: UnixStream,
    ctx: &Context,
    mut stop: watch::Receiver<bool>,
    request_timeout: Duration,
) {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read.take(MAX_REQUEST));
    let reply = match read_request(&mut reader, &mut stop, request_timeout).await {
        Ok(line) => match serde_json::from_str::<Request>(line.trim()) {
            Ok(Request::UsersExport { address }) => {
                if let Err(e) = ctx.user(&address).await {
                    error_json(&e)
                } else {
                    let _ = write.write_all(b"{\"ok\":{\"archive\":true}}\n").await;
                    if let Err(e) = super::export_to(ctx, &address, &mut write).await {
                        tracing::error!(error = %e, "admin export failed");
                    }
                    return;
                }
            }
            Ok(Request::Backup { kind }) => {
                super::backup::serve(ctx, kind, &mut write).await;
                return;
            }
            Ok(req) => {
                let result = if super::reports_progress(&req) {
                    with_progress_lines(ctx, req, &mut write).await
                } else {
                    execute(ctx, req).await
                };
                match result {
                    Ok(v) => json!({ "ok": v }),
                    Err(e) => {
                        if matches!(e, AdminError::Store(_) | AdminError::Failed(_)) {
                            tracing::error!(error = %e, "admin command failed");
                        }
                        error_json(&e)
                    }
                }
            }
            Err(e) => error_json(&AdminError::Invalid(format!("bad request: {e}"))),
        },
        Err(NoRequest::Stopping) => return,
        Err(NoRequest::TimedOut) => error_json(&AdminError::Invalid(format!(
            "no request line within {} seconds",
            request_timeout.as_secs()
        ))),
        Err(NoRequest::Io(e)) => error_json(&AdminError::Invalid(format!("bad request: {e}"))),
    };
    let mut text = reply.to_string();
    text.push('\n');
    let _ = write.write_all(text.as_bytes()).await;
}

/// Runs a long command, writing a progress line whenever it moves on. A client that stopped
/// reading does not stop the command.
async fn with_progress_lines(
    ctx: &Context,
    req: Request,
    write: &mut (impl tokio::io::AsyncWrite + Unpin),
) -> Result<Value, AdminError> {
    let (tx, mut rx) = watch::channel((0u64, 0u64));
    let work = super::execute_reporting(ctx, req, &tx);
    tokio::pin!(work);
    let mut listening = true;
    loop {
        tokio::select! {
            done = &mut work => return done,
            Ok(()) = rx.changed(), if listening => {
                let (done, total) = *rx.borrow_and_update();
                let line = format!("{}\n", json!({"progress": {"done": done, "total": total}}));
                listening = write.write_all(line.as_bytes()).await.is_ok();
            }
        }
    }
}

/// The running node's socket, or `None` when no node answers there.
pub(super) async fn connect(path: &Path) -> std::io::Result<Option<UnixStream>> {
    match UnixStream::connect(path).await {
        Ok(s) => Ok(Some(s)),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Sends `users-export` for `address` to a running node and passes the archive's bytes to
/// `sink`. `Ok(None)` when no node answers there.
pub async fn call_export(
    path: &Path,
    address: &str,
    mut sink: impl FnMut(&[u8]) -> std::io::Result<()>,
) -> std::io::Result<Option<Result<(), AdminError>>> {
    let Some(mut stream) = connect(path).await? else {
        return Ok(None);
    };
    let req = Request::UsersExport {
        address: address.to_string(),
    };
    let mut text = serde_json::to_string(&req).map_err(std::io::Error::other)?;
    text.push('\n');
    stream.write_all(text.as_bytes()).await?;
    let mut reader = BufReader::new(stream);
    let mut header = String::new();
    reader.read_line(&mut header).await?;
    if let Some(e) = answer_error(&header)? {
        return Ok(Some(Err(e)));
    }
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = reader.read(&mut buf).await?;
        if n == 0 {
            return Ok(Some(Ok(())));
        }
        sink(&buf[..n])?;
    }
}

/// The error in an answer line, if it is one.
pub(super) fn answer_error(line: &str) -> std::io::Result<Option<AdminError>> {
    let v: Value = serde_json::from_str(line).map_err(std::io::Error::other)?;
    if v.get("ok").is_some() {
        return Ok(None);
    }
    let message = v["error"]["message"]
        .as_str()
        .unwrap_or("failed")
        .to_string();
    Ok(Some(match v["error"]["kind"].as_str() {
        Some("invalid") => AdminError::Invalid(message),
        Some("problem") => AdminError::Problem(message),
        _ => AdminError::Failed(message),
    }))
}

/// Sends one request to a running node's socket. `Ok(None)` when no node answers there.
pub async fn call(
    path: &Path,
    req: &Request,
) -> std::io::Result<Option<Result<Value, AdminError>>> {
    call_reporting(path, req, |_, _| {}).await
}

/// Like [`call`], passing each progress line's (done, total) to `progress`.
pub async fn call_reporting(
    path: &Path,
    req: &Request,
    mut progress: impl FnMut(u64, u64),
) -> std::io::Result<Option<Result<Value, AdminError>>> {
    let Some(mut stream) = connect(path).await? else {
        return Ok(None);
    };
    let mut text = serde_json::to_string(req).map_err(std::io::Error::other)?;
    text.push('\n');
    stream.write_all(text.as_bytes()).await?;
    let mut reader = BufReader::new(stream);
    loop {
        let mut answer = String::new();
        if reader.read_line(&mut answer).await? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the node closed the admin connection without an answer",
            ));
        }
        let v: Value = serde_json::from_str(&answer).map_err(std::io::Error::other)?;
        if let Some(p) = v.get("progress") {
            progress(
                p["done"].as_u64().unwrap_or(0),
                p["total"].as_u64().unwrap_or(0),
            );
            continue;
        }
        if let Some(e) = answer_error(&answer)? {
            return Ok(Some(Err(e)));
        }
        return Ok(Some(Ok(v["ok"].clone())));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A listener in a fresh temporary directory.
    fn listener() -> (tempfile::TempDir, std::path::PathBuf, UnixListener) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SOCKET_NAME);
        let l = bind(&path).unwrap();
        (dir, path, l)
    }

    /// Answers each connection's request line with `ok` (or the reason it has none).
    fn echo(
        timeout: Duration,
    ) -> impl Fn(UnixStream, watch::Receiver<bool>) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>>
    {
        move |stream, mut stop| {
            Box::pin(async move {
                let (read, mut write) = stream.into_split();
                let mut reader = BufReader::new(read);
                let text = match read_request(&mut reader, &mut stop, timeout).await {
                    Ok(_) => "ok\n",
                    Err(NoRequest::TimedOut) => "timed out\n",
                    Err(_) => return,
                };
                let _ = write.write_all(text.as_bytes()).await;
            })
        }
    }

    async fn ask(path: &Path) -> String {
        let mut s = UnixStream::connect(path).await.unwrap();
        s.write_all(b"{}\n").await.unwrap();
        let mut out = String::new();
        BufReader::new(s).read_line(&mut out).await.unwrap();
        out
    }

    const GUARD: Duration = Duration::from_secs(20);

    #[tokio::test]
    async fn a_silent_client_does_not_hold_up_shutdown() {
        let (_dir, path, l) = listener();
        let (stop, stopped) = watch::channel(false);
        let limits = Limits {
            // Far longer than the guard below: only the stop signal can end the read.
            request_timeout: Duration::from_secs(3600),
            max_connections: 4,
            stop_grace: Duration::from_secs(3600),
        };
        let server = tokio::spawn(serve_with(l, stopped, limits, echo(limits.request_timeout)));
        let _silent = UnixStream::connect(&path).await.unwrap();
        assert_eq!(ask(&path).await, "ok\n", "the server is serving");
        stop.send(true).unwrap();
        tokio::time::timeout(GUARD, server)
            .await
            .expect("shutdown waited for a client that never sent its request")
            .unwrap();
    }

    #[tokio::test]
    async fn a_client_that_sends_nothing_is_answered_when_its_time_is_up() {
        let (_dir, path, l) = listener();
        let (_stop, stopped) = watch::channel(false);
        let limits = Limits {
            request_timeout: Duration::from_millis(50),
            max_connections: 4,
            stop_grace: Duration::from_secs(1),
        };
        tokio::spawn(serve_with(l, stopped, limits, echo(limits.request_timeout)));
        let silent = UnixStream::connect(&path).await.unwrap();
        let mut out = String::new();
        tokio::time::timeout(GUARD, BufReader::new(silent).read_line(&mut out))
            .await
            .expect("the connection stayed open")
            .unwrap();
        assert_eq!(out, "timed out\n");
    }

    #[tokio::test]
    async fn finished_connections_free_their_place() {
        let (_dir, path, l) = listener();
        let (_stop, stopped) = watch::channel(false);
        let limits = Limits {
            request_timeout: Duration::from_secs(3600),
            max_connections: 2,
            stop_grace: Duration::from_secs(1),
        };
        tokio::spawn(serve_with(l, stopped, limits, echo(limits.request_timeout)));
        // Far more connections, one after another, than may be served at once: each is
        // answered only if the finished ones were reaped.
        for i in 0..10 {
            let answer = tokio::time::timeout(GUARD, ask(&path))
                .await
                .unwrap_or_else(|_| panic!("connection {i} was never served"));
            assert_eq!(answer, "ok\n");
        }
        // Two silent clients take both places; a third waits until one of them goes.
        let a = UnixStream::connect(&path).await.unwrap();
        let _b = UnixStream::connect(&path).await.unwrap();
        let third = tokio::spawn({
            let path = path.clone();
            async move { ask(&path).await }
        });
        tokio::task::yield_now().await;
        assert!(!third.is_finished());
        drop(a);
        assert_eq!(
            tokio::time::timeout(GUARD, third).await.unwrap().unwrap(),
            "ok\n"
        );
    }
}
