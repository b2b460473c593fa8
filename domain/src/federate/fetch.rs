//! `Fetcher`: brings here the media that messages from other nodes refer to. Each receiving
//! node fetches the bytes from the media's origin part by part
//! (`GET /_federation/v1/media/{id}/{part}`, signed), seals each part under the author's key
//! here as it arrives (so a stopped fetch resumes at the next part, after a restart too),
//! retries with backoff, keeps at most [`PER_PEER`] fetches per origin at once, and checks the
//! whole against the reference's size and SHA-256 before the copy becomes visible; a copy that
//! does not match is removed with every part of it.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http::{Method, StatusCode};
use sha2::{Digest, Sha256};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use super::peers::Peers;
use crate::crypto::{self, MasterKey, SecretKey};
use crate::time::SharedClock;
use storage::{FetchJob, Store, StoreError};

/// Fetches from one origin at once.
pub const PER_PEER: usize = 2;

/// Why one step of a fetch did not go on.
#[derive(Debug)]
enum Failure {
    /// Try again after the backoff (the origin could not be reached, was busy, failed).
    Temporary(String),
    /// Never going to work (refused, wrong size or hash): the fetch is abandoned.
    Permanent(String),
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::Temporary(e.to_string())
    }
}

#[derive(Debug)]
struct Inner {
    store: Store,
    master: MasterKey,
    peers: Arc<Peers>,
    /// Backoff waits on it, so tests move time instead of sleeping.
    clock: SharedClock,
    retry_max: Duration,
    per_peer: Mutex<HashMap<String, Arc<Semaphore>>>,
    running: Mutex<HashSet<String>>,
    tasks: Mutex<JoinSet<()>>,
    stop: watch::Receiver<bool>,
}

/// The media fetcher. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Fetcher {
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Fetcher {
    pub fn new(
        store: Store,
        master: MasterKey,
        peers: Arc<Peers>,
        clock: SharedClock,
        retry_max: Duration,
        stop: watch::Receiver<bool>,
    ) -> Self {
        Fetcher {
            inner: Arc::new(Inner {
                store,
                master,
                peers,
                clock,
                retry_max,
                per_peer: Mutex::default(),
                running: Mutex::default(),
                tasks: Mutex::new(JoinSet::new()),
                stop,
            }),
        }
    }

    /// Starts every fetch left unfinished (at start-up).
    pub async fn resume(&self) -> Result<(), StoreError> {
        for (id, _) in self.inner.store.fetch_jobs().await? {
            self.fetch(id);
        }
        Ok(())
    }

    /// Starts fetching local media `id` (a queued job), unless that runs already.
    pub fn fetch(&self, id: String) {
        if !lock(&self.inner.running).insert(id.clone()) {
            return;
        }
        let inner = self.inner.clone();
        lock(&self.inner.tasks).spawn(async move {
            run(&inner, &id).await;
            lock(&inner.running).remove(&id);
        });
    }

    /// Waits for the fetches to stop (they stop at the next step once the node stops).
    pub async fn shutdown(&self) {
        let mut tasks = std::mem::take(&mut *lock(&self.inner.tasks));
        while tasks.join_next().await.is_some() {}
    }
}

async fn run(inner: &Inner, id: &str) {
    let Ok(Some(job)) = inner.store.fetch_job(id.to_string()).await else {
        return;
    };
    let gate = lock(&inner.per_peer)
        .entry(job.origin.clone())
        .or_insert_with(|| Arc::new(Semaphore::new(PER_PEER)))
        .clone();
    let mut stop = inner.stop.clone();
    let _permit = tokio::select! {
        p = gate.acquire_owned() => match p { Ok(p) => p, Err(_) => return },
        _ = stop.wait_for(|s| *s) => return,
    };
    let mut attempt: u32 = 0;
    // One connection to the origin for all the parts, made again after a failure.
    let mut conn = None;
    loop {
        if *inner.stop.borrow() {
            return;
        }
        match step(inner, id, &mut conn).await {
            Ok(true) => attempt = 0,
            Ok(false) => return,
            Err(Failure::Permanent(reason)) => {
                tracing::warn!(media = id, %reason, "media fetch abandoned; nothing kept");
                let _ = inner.store.abandon_fetch(id.to_string()).await;
                return;
            }
            Err(Failure::Temporary(reason)) => {
                attempt = attempt.saturating_add(1);
                let delay = Duration::from_secs(1)
                    .saturating_mul(1u32 << (attempt - 1).min(20))
                    .min(inner.retry_max);
                let mut r = [0u8; 4];
                let _ = crypto::random_bytes(&mut r);
                let frac = f64::from(u32::from_le_bytes(r)) / f64::from(u32::MAX);
                let wait = delay.mul_f64(0.5 + frac / 2.0);
                tracing::debug!(media = id, %reason, attempt, "media fetch backing off");
                tokio::select! {
                    // On the node's clock, so tests move it instead of waiting.
                    _ = inner.clock.sleep(wait) => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
            }
        }
    }
}

/// The author's data key here.
async fn author_key(inner: &Inner, author: u64) -> Result<SecretKey, Failure> {
    let rec = inner
        .store
        .remote_users(vec![author])
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| Failure::Permanent("the author is gone".into()))?;
    inner
        .master
        .unwrap_data_key(author, &rec.1.wrapped_key)
        .map_err(|e| Failure::Temporary(e.to_string()))
}

/// One step: fetch and store the next part, or check and finish the whole. Ok(true): go on;
/// Ok(false): nothing left to do.
async fn step(
    inner: &Inner,
    id: &str,
    conn: &mut Option<federation::Connection>,
) -> Result<bool, Failure> {
    let Some(job) = inner.store.fetch_job(id.to_string()).await? else {
        return Ok(false);
    };
    let key = author_key(inner, job.author).await?;
    if job.next >= job.parts() {
        verify(inner, id, &job, &key).await?;
        inner.store.finish_fetch(id.to_string()).await?;
        return Ok(false);
    }
    let part = job.next;
    let peer = inner
        .peers
        .get(&job.origin)
        .map_err(|e| Failure::Permanent(e.to_string()))?;
    let path = format!("/_federation/v1/media/{}/{part}", job.remote_id);
    let c = match conn {
        Some(c) => c,
        None => conn.insert(
            inner
                .peers
                .connect(&peer)
                .await
                .map_err(|e| Failure::Temporary(e.to_string()))?,
        ),
    };
    let answer = inner
        .peers
        .send(c, &peer, Method::GET, &path, Bytes::new())
        .await;
    let (status, body) = match answer {
        Ok(a) => a,
        Err(e) => {
            *conn = None;
            return Err(Failure::Temporary(e.to_string()));
        }
    };
    match status {
        StatusCode::OK => {}
        StatusCode::UNAUTHORIZED | StatusCode::REQUEST_TIMEOUT | StatusCode::TOO_MANY_REQUESTS => {
            return Err(Failure::Temporary(format!("origin answered {status}")));
        }
        s if s.is_server_error() => {
            return Err(Failure::Temporary(format!("origin answered {s}")));
        }
        s => return Err(Failure::Permanent(format!("origin answered {s}"))),
    }
    let start = u64::from(part) * federation::MEDIA_PART;
    let want = (job.size - start).min(federation::MEDIA_PART);
    if body.len() as u64 != want {
        return Err(Failure::Permanent(format!(
            "part {part} has {} bytes, not {want}",
            body.len()
        )));
    }
    let aad = crate::media::chunk_aad(id, part);
    let sealed = tokio::task::spawn_blocking(move || key.seal(&aad, &body))
        .await
        .map_err(|_| Failure::Temporary("worker".into()))?
        .map_err(|e| Failure::Temporary(e.to_string()))?;
    inner
        .store
        .put_fetched_part(id.to_string(), part, sealed)
        .await?;
    Ok(true)
}

/// Reads the stored parts back and checks their SHA-256 against the reference's.
async fn verify(inner: &Inner, id: &str, job: &FetchJob, key: &SecretKey) -> Result<(), Failure> {
    let mut hash = Sha256::new();
    let mut total = 0u64;
    for no in 0..job.parts() {
        let sealed = inner
            .store
            .media_chunk(id.to_string(), no)
            .await?
            .ok_or_else(|| Failure::Permanent(format!("part {no} is missing")))?;
        let (key, aad) = (key.clone(), crate::media::chunk_aad(id, no));
        let plain = tokio::task::spawn_blocking(move || key.open(&aad, &sealed))
            .await
            .map_err(|_| Failure::Temporary("worker".into()))?
            .map_err(|e| Failure::Permanent(e.to_string()))?;
        total += plain.len() as u64;
        hash.update(&plain);
    }
    let digest: [u8; 32] = hash.finalize().into();
    if total != job.size || digest != job.sha256 {
        return Err(Failure::Permanent(format!(
            "the bytes do not match the reference (sha256 {})",
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(digest)
        )));
    }
    Ok(())
}
