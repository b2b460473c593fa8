//! The admin side of backups (`node-admin backup`, `backup verify`, `backup ledger`,
//! `restore`): starting a snapshot on a running or stopped node, checking an archive file, and
//! restoring one into an empty data directory with later erasures re-applied before any node
//! serves it. The archive format itself is `storage/backup.rs`.
//!
//! Over the admin socket a backup answers `{"ok":{"archive":true}}` and then frames, each a tag
//! byte and a length (u32 BE): `D` archive bytes, `P` progress (rows done, rows in all; u64 BE
//! each), `F` the summary (JSON) after the last `D`, or `X` an error (JSON, as a socket error).

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{AdminError, Context};
use crate::config::{Config, NonEmptyPath, OptionalPath};
use crate::crypto::{MasterKey, SecretKey};
use crate::time::SharedClock;
use storage::{
    ArchiveKind, ArchiveReader, BACKUP_FORMAT, BackupError, BackupHeader, BackupSummary,
};

impl From<BackupError> for AdminError {
    fn from(e: BackupError) -> Self {
        match e {
            BackupError::Store(s) => AdminError::Store(s),
            BackupError::Damaged(_) | BackupError::Format(_) | BackupError::TooNew { .. } => {
                AdminError::Problem(e.to_string())
            }
            other => AdminError::Failed(other.to_string()),
        }
    }
}

/// A snapshot being written: its chunks, its progress, and its end.
pub struct Running {
    pub chunks: tokio::sync::mpsc::Receiver<Vec<u8>>,
    pub progress: tokio::sync::watch::Receiver<(u64, u64)>,
    pub done: tokio::task::JoinHandle<Result<BackupSummary, BackupError>>,
}

/// Starts a snapshot of the node's database (audited as the admin's); the archive is sealed
/// under the backup key derived from the master key.
pub async fn start(ctx: &Context, kind: ArchiveKind) -> Result<Running, AdminError> {
    let action = match kind {
        ArchiveKind::Backup => "admin.backup",
        ArchiveKind::ErasureLedger => "admin.backup.ledger",
    };
    ctx.store.audit(ctx.audit(action, None, "")).await?;
    let header = BackupHeader {
        format: BACKUP_FORMAT,
        kind,
        schema: 0,
        domain: ctx.domain.clone(),
        created_ms: ctx.clock.now().0,
    };
    let (tx, chunks) = tokio::sync::mpsc::channel(8);
    let (ptx, progress) = tokio::sync::watch::channel((0, 0));
    let store = ctx.store.clone();
    let key = ctx.backup_key.clone();
    let done = tokio::spawn(async move { store.backup(key, header, tx, ptx).await });
    Ok(Running {
        chunks,
        progress,
        done,
    })
}

/// The JSON summary of an archive: its header and what it holds.
pub fn summary_json(header: &BackupHeader, s: &BackupSummary) -> Value {
    json!({
        "kind": header.kind,
        "format": header.format,
        "schema": header.schema,
        "domain": header.domain,
        "created": crate::time::Millis(header.created_ms).to_rfc3339(),
        "rows": s.rows(),
        "tables": s.tables.iter().map(|(n, c)| json!({"table": n, "rows": c})).collect::<Vec<_>>(),
    })
}

/// Runs a snapshot to its end, passing chunks to `data` and progress to `progress`; returns
/// its summary.
pub async fn drive(
    ctx: &Context,
    kind: ArchiveKind,
    mut data: impl FnMut(&[u8]) -> std::io::Result<()>,
    mut progress: impl FnMut(u64, u64),
) -> Result<Value, AdminError> {
    let mut r = start(ctx, kind).await?;
    let mut failed = None;
    loop {
        tokio::select! {
            chunk = r.chunks.recv() => match chunk {
                Some(c) => if let Err(e) = data(&c) {
                    failed = Some(e);
                    break;
                },
                None => break,
            },
            Ok(()) = r.progress.changed() => {
                let (d, t) = *r.progress.borrow_and_update();
                progress(d, t);
            }
        }
    }
    drop(r.chunks);
    let outcome = r
        .done
        .await
        .map_err(|_| AdminError::Failed("the backup stopped".into()))?;
    if let Some(e) = failed {
        return Err(AdminError::Failed(format!("writing the archive: {e}")));
    }
    Ok(written_json(kind, &outcome?))
}

/// What a finished snapshot wrote.
fn written_json(kind: ArchiveKind, s: &BackupSummary) -> Value {
    json!({
        "kind": kind,
        "rows": s.rows(),
        "tables": s.tables.iter().map(|(n, c)| json!({"table": n, "rows": c})).collect::<Vec<_>>(),
    })
}

/// Serves a backup on the admin socket (see the module's text for the frames).
pub(super) async fn serve(
    ctx: &Context,
    kind: ArchiveKind,
    write: &mut (impl tokio::io::AsyncWrite + Unpin),
) {
    async fn frame(
        w: &mut (impl tokio::io::AsyncWrite + Unpin),
        tag: u8,
        body: &[u8],
    ) -> std::io::Result<()> {
        let mut head = [0u8; 5];
        head[0] = tag;
        head[1..].copy_from_slice(&(body.len() as u32).to_be_bytes());
        w.write_all(&head).await?;
        w.write_all(body).await
    }
    let mut r = match start(ctx, kind).await {
        Ok(r) => r,
        Err(e) => {
            let _ = write
                .write_all(format!("{}\n", super::socket::error_json(&e)).as_bytes())
                .await;
            return;
        }
    };
    if write
        .write_all(b"{\"ok\":{\"archive\":true}}\n")
        .await
        .is_err()
    {
        return;
    }
    loop {
        tokio::select! {
            chunk = r.chunks.recv() => match chunk {
                Some(c) => if frame(write, b'D', &c).await.is_err() { return },
                None => break,
            },
            Ok(()) = r.progress.changed() => {
                let (d, t) = *r.progress.borrow_and_update();
                let mut b = d.to_be_bytes().to_vec();
                b.extend_from_slice(&t.to_be_bytes());
                if frame(write, b'P', &b).await.is_err() { return }
            }
        }
    }
    let last = match r.done.await {
        Ok(Ok(s)) => frame(write, b'F', written_json(kind, &s).to_string().as_bytes()).await,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "admin backup failed");
            let e = AdminError::from(e);
            frame(
                write,
                b'X',
                super::socket::error_json(&e).to_string().as_bytes(),
            )
            .await
        }
        Err(_) => Ok(()),
    };
    if last.is_ok() {
        let _ = write.flush().await;
    }
}

/// Asks a running node for a backup, passing archive bytes to `data` and progress to
/// `progress`. `Ok(None)` when no node answers there.
pub async fn call(
    path: &Path,
    kind: ArchiveKind,
    mut data: impl FnMut(&[u8]) -> std::io::Result<()>,
    mut progress: impl FnMut(u64, u64),
) -> std::io::Result<Option<Result<Value, AdminError>>> {
    let Some(stream) = super::socket::connect(path).await? else {
        return Ok(None);
    };
    let mut stream = tokio::io::BufReader::new(stream);
    let req = super::Request::Backup { kind };
    let mut text = serde_json::to_string(&req).map_err(std::io::Error::other)?;
    text.push('\n');
    stream.get_mut().write_all(text.as_bytes()).await?;
    let mut header = String::new();
    tokio::io::AsyncBufReadExt::read_line(&mut stream, &mut header).await?;
    if let Some(e) = super::socket::answer_error(&header)? {
        return Ok(Some(Err(e)));
    }
    loop {
        let mut head = [0u8; 5];
        if stream.read_exact(&mut head).await.is_err() {
            return Ok(Some(Err(AdminError::Failed(
                "the node closed the connection before the backup was finished".into(),
            ))));
        }
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        if len > 1 << 20 {
            return Err(std::io::Error::other("bad frame from the admin socket"));
        }
        let mut body = vec![0u8; len];
        stream.read_exact(&mut body).await?;
        match head[0] {
            b'D' => data(&body)?,
            b'P' if len == 16 => {
                let d = u64::from_be_bytes(body[..8].try_into().unwrap_or_default());
                let t = u64::from_be_bytes(body[8..].try_into().unwrap_or_default());
                progress(d, t);
            }
            b'F' => {
                let v: Value = serde_json::from_slice(&body).map_err(std::io::Error::other)?;
                return Ok(Some(Ok(v)));
            }
            b'X' => {
                let line = String::from_utf8_lossy(&body).into_owned();
                let e = super::socket::answer_error(&line)?
                    .unwrap_or_else(|| AdminError::Failed("the backup failed".into()));
                return Ok(Some(Err(e)));
            }
            _ => return Err(std::io::Error::other("bad frame from the admin socket")),
        }
    }
}

/// The key archives of this node are sealed under, from its master key file.
pub fn archive_key(config: &Config) -> Result<SecretKey, AdminError> {
    MasterKey::load_or_create(&config.master_key_path(), false)
        .map(|m| m.backup_key())
        .map_err(|e| AdminError::Invalid(e.to_string()))
}

fn open_file(option: &str, path: &Path) -> Result<std::io::BufReader<std::fs::File>, AdminError> {
    std::fs::File::open(path)
        .map(|f| std::io::BufReader::with_capacity(128 * 1024, f))
        .map_err(|e| AdminError::Invalid(format!("{option} {}: {e}", path.display())))
}

/// Reads a whole archive file, checking every chunk, count and the final hash; its summary.
pub fn verify(path: &Path, key: &SecretKey) -> Result<Value, AdminError> {
    let (header, summary) = verified(path, key, "FILE")?;
    Ok(summary_json(&header, &summary))
}

fn verified(
    path: &Path,
    key: &SecretKey,
    option: &str,
) -> Result<(BackupHeader, BackupSummary), AdminError> {
    let mut r = ArchiveReader::open(open_file(option, path)?, key.clone())
        .map_err(|e| AdminError::Problem(format!("{option} {}: {e}", path.display())))?;
    let s = r
        .read_all(&mut |_, _| Ok(()))
        .map_err(|e| AdminError::Problem(format!("{option} {}: {e}", path.display())))?;
    Ok((r.header().clone(), s))
}

/// The directory a restore may go into: missing, empty, or holding only the master key file.
fn check_empty(dir: &Path, key_file: &Path) -> Result<(), AdminError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            use std::os::unix::fs::DirBuilderExt;
            return std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| AdminError::Invalid(format!("--data-dir {}: {e}", dir.display())));
        }
        Err(e) => {
            return Err(AdminError::Invalid(format!(
                "--data-dir {}: {e}",
                dir.display()
            )));
        }
    };
    for entry in entries.flatten() {
        if entry.path() != key_file {
            return Err(AdminError::Invalid(format!(
                "--data-dir {} is not empty (it holds {}): restore only into an empty directory",
                dir.display(),
                entry.file_name().to_string_lossy()
            )));
        }
    }
    Ok(())
}

/// Restores `archive` into the configured (empty) data directory. `ledger` is a later backup
/// or erasure ledger of the same node: every user erased there whose data `archive` still
/// holds is erased again, legal holds lifted before those erasures are lifted, and the file is
/// compacted, all in a staging directory before the database takes its place, so no node ever
/// serves the erased data. `ledger` is `None` only when the admin said there is none.
pub async fn restore(
    config: &Config,
    archive: &Path,
    ledger: Option<&Path>,
    clock: SharedClock,
    progress: Box<dyn FnMut(u64, u64) + Send>,
) -> Result<Value, AdminError> {
    let dir = config.data_dir().to_path_buf();
    let key_file = config.master_key_path();
    check_empty(&dir, &key_file)?;
    let key = archive_key(config).map_err(|e| {
        AdminError::Invalid(format!(
            "{e} (the archive is sealed under the node's master key: put the key file in place first)"
        ))
    })?;
    // Both files are read through once before anything is written.
    let (header, counted) = verified(archive, &key, "FILE")?;
    if header.kind != ArchiveKind::Backup {
        return Err(AdminError::Invalid(format!(
            "FILE {}: an erasure ledger, not a backup",
            archive.display()
        )));
    }
    if header.domain != config.server.domain.as_str() {
        return Err(AdminError::Invalid(format!(
            "FILE {}: a backup of {}, but the configuration is for {}",
            archive.display(),
            header.domain,
            config.server.domain.as_str()
        )));
    }
    if let Some(l) = ledger {
        let (lh, _) = verified(l, &key, "--erasures")?;
        if lh.domain != header.domain {
            return Err(AdminError::Invalid(format!(
                "--erasures {}: from {}, not {}",
                l.display(),
                lh.domain,
                header.domain
            )));
        }
        if lh.created_ms < header.created_ms {
            return Err(AdminError::Invalid(format!(
                "--erasures {}: older than the backup; give the latest one",
                l.display()
            )));
        }
    }
    let staging = dir.join(".restoring");
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir(&staging)
        .map_err(|e| AdminError::Failed(format!("{}: {e}", staging.display())))?;
    let total = counted.rows();
    let mut progress = progress;
    let rows = Box::new(move |done| progress(done, total));
    let result = restore_staged(config, archive, ledger, &key, &staging, clock, rows).await;
    match result {
        Ok(v) => {
            std::fs::rename(staging.join(storage::DB_FILE), dir.join(storage::DB_FILE))
                .map_err(|e| AdminError::Failed(format!("{}: {e}", dir.display())))?;
            let _ = std::fs::remove_dir_all(&staging);
            if let Ok(d) = std::fs::File::open(&dir) {
                let _ = d.sync_all();
            }
            Ok(v)
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            Err(e)
        }
    }
}

async fn restore_staged(
    config: &Config,
    archive: &Path,
    ledger: Option<&Path>,
    key: &SecretKey,
    staging: &Path,
    clock: SharedClock,
    mut progress: Box<dyn FnMut(u64) + Send>,
) -> Result<Value, AdminError> {
    let db = staging.join(storage::DB_FILE);
    let (archive, ledger, key2) = (
        archive.to_path_buf(),
        ledger.map(Path::to_path_buf),
        key.clone(),
    );
    let db2 = db.clone();
    let (header, summary, applied) = tokio::task::spawn_blocking(move || {
        let mut a = ArchiveReader::open(open_file("FILE", &archive)?, key2.clone())?;
        let mut l = match &ledger {
            Some(p) => Some(ArchiveReader::open(open_file("--erasures", p)?, key2)?),
            None => None,
        };
        let (s, applied) = storage::load_archive(&db2, &mut a, l.as_mut(), &mut *progress)?;
        Ok::<_, AdminError>((a.header().clone(), s, applied))
    })
    .await
    .map_err(|_| AdminError::Failed("the restore stopped".into()))??;
    let mut staged = config.clone();
    staged.storage.data_dir = NonEmptyPath(staging.to_path_buf());
    staged.storage.master_key_file = OptionalPath(Some(config.master_key_path()));
    let offline = Context::offline(&staged, clock)
        .await
        .map_err(|e| AdminError::Failed(e.to_string()))?;
    let ctx = &offline.context;
    let mut erased = 0;
    for user in &applied.to_erase {
        ctx.erasure
            .erase_now(
                *user,
                "re-applied at restore: erased after this backup was taken",
            )
            .await?;
        erased += 1;
    }
    // Remote users their node asked this one to erase after the backup was taken.
    let mut remote = 0;
    for id in &applied.remote_to_erase {
        if ctx.store.erase_remote_id(*id, ctx.clock.now()).await? {
            remote += 1;
        }
    }
    ctx.store
        .audit(ctx.audit(
            "admin.restore",
            None,
            &format!(
                "backup of {}; {erased} later erasures re-applied, {remote} of remote users",
                crate::time::Millis(header.created_ms).to_rfc3339()
            ),
        ))
        .await?;
    let store = ctx.store.clone();
    drop(offline);
    tokio::task::spawn_blocking(move || {
        drop(store);
        storage::compact_database(&db)
    })
    .await
    .map_err(|_| AdminError::Failed("the restore stopped".into()))??;
    let mut v = summary_json(&header, &summary);
    if let Some(m) = v.as_object_mut() {
        m.insert("erasures_reapplied".into(), json!(erased));
        m.insert("erasures_recorded".into(), json!(applied.recorded));
        m.insert("remote_erasures_reapplied".into(), json!(remote));
        m.insert(
            "data_dir".into(),
            json!(config.data_dir().display().to_string()),
        );
    }
    Ok(v)
}

/// Where an archive written to `out` goes while it is incomplete.
pub fn partial_path(out: &Path) -> PathBuf {
    let mut p = out.as_os_str().to_owned();
    p.push(".partial");
    PathBuf::from(p)
}
