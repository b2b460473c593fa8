//! The admin socket: `<data_dir>/admin.sock`, mode 0600 (only the node's OS user can connect).
//! One request per connection: a JSON [`super::Request`] on one line; the answer is one line,
//! `{"ok": result}` or `{"error": {"kind": "invalid"|"problem"|"failed", "message"}}`.
//! `users-export` alone answers `{"ok":{"archive":true}}` and then the archive's bytes until the
//! connection closes; an archive cut short lacks its final `"complete":true`.

use std::path::Path;
use std::sync::Arc;

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

/// Binds the socket (replacing a stale file left by a node that did not stop cleanly; the
/// database lock guarantees no other node is running on this data directory) with mode 0600.
pub fn bind(path: &Path) -> std::io::Result<UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Serves admin requests until `stop` flips; then waits for requests in progress and removes
/// the socket file.
pub async fn serve(
    listener: UnixListener,
    path: std::path::PathBuf,
    ctx: Arc<Context>,
    mut stop: watch::Receiver<bool>,
) {
    let mut tasks = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let ctx = ctx.clone();
                tasks.spawn(async move { answer(stream, &ctx).await });
            }
            _ = stop.changed() => break,
        }
    }
    while tasks.join_next().await.is_some() {}
    let _ = std::fs::remove_file(&path);
}

fn error_json(e: &AdminError) -> Value {
    let kind = match e {
        AdminError::Invalid(_) => "invalid",
        AdminError::Problem(_) => "problem",
        _ => "failed",
    };
    json!({"error": {"kind": kind, "message": e.to_string()}})
}

async fn answer(stream: UnixStream, ctx: &Context) {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let mut reader = BufReader::new(read.take(MAX_REQUEST));
    let reply = match reader.read_line(&mut line).await {
        Ok(_) => match serde_json::from_str::<Request>(line.trim()) {
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
            Ok(req) => match execute(ctx, req).await {
                Ok(v) => json!({ "ok": v }),
                Err(e) => {
                    if matches!(e, AdminError::Store(_) | AdminError::Failed(_)) {
                        tracing::error!(error = %e, "admin command failed");
                    }
                    error_json(&e)
                }
            },
            Err(e) => error_json(&AdminError::Invalid(format!("bad request: {e}"))),
        },
        Err(e) => error_json(&AdminError::Invalid(format!("bad request: {e}"))),
    };
    let mut text = reply.to_string();
    text.push('\n');
    let _ = write.write_all(text.as_bytes()).await;
}

/// The running node's socket, or `None` when no node answers there.
async fn connect(path: &Path) -> std::io::Result<Option<UnixStream>> {
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
fn answer_error(line: &str) -> std::io::Result<Option<AdminError>> {
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
    let Some(mut stream) = connect(path).await? else {
        return Ok(None);
    };
    let mut text = serde_json::to_string(req).map_err(std::io::Error::other)?;
    text.push('\n');
    stream.write_all(text.as_bytes()).await?;
    let mut answer = String::new();
    BufReader::new(stream).read_line(&mut answer).await?;
    if let Some(e) = answer_error(&answer)? {
        return Ok(Some(Err(e)));
    }
    let v: Value = serde_json::from_str(&answer).map_err(std::io::Error::other)?;
    Ok(Some(Ok(v["ok"].clone())))
}
