//! Keeps the in-memory message index level with the store: at start it reads every stored
//! message in batches (from the event position the store had when it began) and indexes the
//! texts, opening them on the blocking pool; then after every commit it reads what was sent or
//! recalled after the position it reached and applies it, recording the new position. It
//! never runs on the writer thread, and CPU work (unwrapping keys, opening bodies, changing
//! the index) runs on the blocking pool, never on the async threads. From time to time it
//! checks every indexed message against the store, so rows removed without an event
//! (retention, purge after floors, erasure's tombstones) leave the index too.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::index::NewDoc;
use super::{Search, write};
use crate::messaging::Body;
use crate::storage::{MessageRecord, StoreError};

/// Messages read per rebuild batch.
const REBUILD_BATCH: usize = 5_000;
/// Event positions read per catch-up step.
const CHANGE_SPAN: u64 = 10_000;
/// Indexed messages checked against the store per read.
const CHECK_BATCH: usize = 20_000;
/// How often every indexed message is checked against the store.
const CHECK_EVERY: Duration = Duration::from_secs(60);
/// Search-log rows removed per retention write.
const PRUNE_BATCH: usize = 1_000;

pub(super) async fn run(search: Search, mut stopped: watch::Receiver<bool>) {
    let mut commits = search.inner.store.commits();
    let mut pos = match rebuild(&search, &stopped).await {
        Ok(Some(p)) => p,
        // The node is stopping: its shutdown joins this task before the database closes.
        Ok(None) => return,
        Err(e) => {
            tracing::error!(error = %e, "building the search index failed");
            return;
        }
    };
    if let Err(e) = people(&search).await {
        tracing::error!(error = %e, "loading people for search failed");
    }
    let mut checked = Instant::now();
    loop {
        match catch_up(&search, pos).await {
            Ok(p) => pos = p,
            Err(e) => tracing::warn!(error = %e, "search index catch-up failed; retrying"),
        }
        if checked.elapsed() >= CHECK_EVERY {
            checked = Instant::now();
            if let Err(e) = check(&search).await {
                tracing::warn!(error = %e, "checking the search index failed");
            }
            if let Err(e) = prune(&search).await {
                tracing::warn!(error = %e, "search log retention failed");
            }
        }
        tokio::select! {
            r = commits.changed() => if r.is_err() { return },
            _ = stopped.changed() => return,
            // Wake now and then even without commits, for the periodic check.
            () = tokio::time::sleep(CHECK_EVERY) => {}
        }
    }
}

/// Indexes every stored message; returns the event position it is complete up to, or `None`
/// when the node began stopping (checked between batches, so shutdown waits one batch at most).
async fn rebuild(
    search: &Search,
    stopped: &watch::Receiver<bool>,
) -> Result<Option<u64>, StoreError> {
    let store = &search.inner.store;
    let head = store.head_pos().await?;
    let mut from = (0, 0);
    loop {
        if *stopped.borrow() {
            return Ok(None);
        }
        let batch = store.index_batch(from, REBUILD_BATCH).await?;
        index(search, batch.items).await?;
        match batch.next {
            Some(n) => from = n,
            None => break,
        }
    }
    search.inner.indexed.send_replace(head);
    // Whatever committed while the rebuild read is picked up by the first catch-up.
    Ok(Some(head))
}

/// Applies what changed after `pos`; returns the position reached.
async fn catch_up(search: &Search, mut pos: u64) -> Result<u64, StoreError> {
    loop {
        let c = search.inner.store.index_changes(pos, CHANGE_SPAN).await?;
        if c.reached <= pos {
            return Ok(pos);
        }
        let recalled = c.recalled;
        index(search, c.added).await?;
        if !recalled.is_empty() {
            let s = search.clone();
            tokio::task::spawn_blocking(move || write(&s.inner.index).remove(&recalled))
                .await
                .map_err(|_| StoreError::Worker)?;
        }
        pos = c.reached;
        search.inner.indexed.send_replace(pos);
    }
}

/// Opens and indexes messages (their authors' keys read in one go).
async fn index(
    search: &Search,
    items: Vec<(u64, String, MessageRecord)>,
) -> Result<(), StoreError> {
    if items.is_empty() {
        return Ok(());
    }
    let mut authors: Vec<u64> = items.iter().map(|(_, _, m)| m.author).collect();
    authors.sort_unstable();
    authors.dedup();
    let keys: HashMap<u64, Vec<u8>> = search
        .inner
        .store
        .wrapped_keys(authors)
        .await?
        .into_iter()
        .map(|(u, _, k)| (u, k))
        .collect();
    let s = search.clone();
    tokio::task::spawn_blocking(move || {
        let mut opened = HashMap::new();
        let mut docs = Vec::with_capacity(items.len());
        for (no, conv_id, m) in items {
            let Some(wrapped) = keys.get(&m.author) else {
                continue; // erased: nothing of theirs is indexed
            };
            let key = match opened.entry(m.author) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(v) => {
                    match s.inner.master.unwrap_data_key(m.author, wrapped) {
                        Ok(k) => v.insert(k),
                        Err(e) => {
                            tracing::warn!(error = %e, "a data key did not unwrap for search");
                            continue;
                        }
                    }
                }
            };
            match crate::messaging::open_body(key, &conv_id, &m.id, &m.body_sealed) {
                Ok(Body::Text(text)) => docs.push(NewDoc {
                    conv: no,
                    seq: m.seq,
                    pos: m.pos,
                    author: m.author,
                    text,
                }),
                Ok(Body::Media { .. }) => {}
                Err(e) => tracing::warn!(error = %e, "a message did not open for search"),
            }
        }
        let mut ix = write(&s.inner.index);
        for d in docs {
            ix.insert(d);
        }
    })
    .await
    .map_err(|_| StoreError::Worker)
}

/// Drops from the index every message the store no longer shows.
pub(super) async fn check(search: &Search) -> Result<(), StoreError> {
    let s = search.clone();
    let keys = tokio::task::spawn_blocking(move || super::read(&s.inner.index).keys())
        .await
        .map_err(|_| StoreError::Worker)?;
    for chunk in keys.chunks(CHECK_BATCH) {
        let gone = search.inner.store.index_gone(chunk.to_vec()).await?;
        if !gone.is_empty() {
            let s = search.clone();
            tokio::task::spawn_blocking(move || write(&s.inner.index).remove(&gone))
                .await
                .map_err(|_| StoreError::Worker)?;
        }
    }
    Ok(())
}

/// Loads every account's handle and nickname.
async fn people(search: &Search) -> Result<(), super::SearchError> {
    for a in search.inner.store.accounts().await? {
        if !a.wrapped_key.is_empty() {
            search.person_changed(a.id).await?;
        }
    }
    Ok(())
}

/// Removes logged searches past their retention.
async fn prune(search: &Search) -> Result<(), StoreError> {
    let cutoff = search.log_cutoff();
    while search
        .inner
        .store
        .prune_search_log(cutoff, PRUNE_BATCH)
        .await?
        == PRUNE_BATCH as u64
    {}
    Ok(())
}
