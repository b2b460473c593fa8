//! Keeps the in-memory search indexes level with the store: at start it reads every stored
//! message, post, comment and community in batches, and every account (from the event position the
//! store had when it began), and indexes the texts, opening them on the blocking pool; then
//! after every commit it reads what was sent or recalled after the position it reached, and
//! the search-change rows written there (people, communities, posts), applies them and records
//! the new position. Handlers never tell search anything: data flows handler → domain → store,
//! and search reads the store. It never runs on the writer thread, and CPU work (unwrapping
//! keys, opening bodies, changing the index) runs on the blocking pool, never on the async
//! threads. From time to time it checks every indexed message and post against the store, so
//! rows removed without an event (retention, purge after floors, erasure's tombstones) leave
//! the index too, and removes the search-change rows it has applied.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::index::NewDoc;
use super::social::Social;
use super::{Search, SearchError, write};
use crate::community::CommunityError;
use crate::crypto::SecretKey;
use crate::messaging::Body;
use storage::{CommentRecord, MessageRecord, PostRecord, SearchChange, StoreError};

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
/// Posts and communities read per rebuild batch.
const SOCIAL_BATCH: usize = 2_000;

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
            if let Err(e) = search.inner.behaviour.prune().await {
                tracing::warn!(error = %e, "behaviour log retention failed");
            }
            if let Err(e) = forget_changes(&search, pos).await {
                tracing::warn!(error = %e, "removing applied search changes failed");
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

/// Indexes every stored message, post, community and account; returns the event position it
/// is complete up to, or `None` when the node began stopping (checked between batches, so
/// shutdown waits one batch at most).
async fn rebuild(
    search: &Search,
    stopped: &watch::Receiver<bool>,
) -> Result<Option<u64>, SearchError> {
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
    let mut from = 0;
    loop {
        if *stopped.borrow() {
            return Ok(None);
        }
        let batch = store.community_batch(from, SOCIAL_BATCH).await?;
        let next = batch.next;
        search
            .write_social(move |social| {
                for c in &batch.items {
                    social.put_community(c);
                }
            })
            .await?;
        match next {
            Some(n) => from = n,
            None => break,
        }
    }
    let mut from = 0;
    loop {
        if *stopped.borrow() {
            return Ok(None);
        }
        let batch = store.post_batch(from, SOCIAL_BATCH).await?;
        index_posts(search, batch.items).await?;
        match batch.next {
            Some(n) => from = n,
            None => break,
        }
    }
    let mut from = (0, 0);
    loop {
        if *stopped.borrow() {
            return Ok(None);
        }
        let batch = store.comment_batch(from, SOCIAL_BATCH).await?;
        index_comments(search, batch.items).await?;
        match batch.next {
            Some(n) => from = n,
            None => break,
        }
    }
    if let Err(e) = people(search).await {
        tracing::error!(error = %e, "loading people for search failed");
    }
    // Rows up to here are reflected by the tables just read.
    forget_changes(search, head).await?;
    search.inner.indexed.send_replace(head);
    // Whatever committed while the rebuild read is picked up by the first catch-up.
    Ok(Some(head))
}

/// Applies what changed after `pos`; returns the position reached.
async fn catch_up(search: &Search, mut pos: u64) -> Result<u64, SearchError> {
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
        apply(search, c.changed).await?;
        pos = c.reached;
        search.inner.indexed.send_replace(pos);
    }
}

/// Reads again the people, communities and posts that changed, and indexes what is there now.
async fn apply(search: &Search, changed: Vec<SearchChange>) -> Result<(), SearchError> {
    let mut communities = Vec::new();
    let mut posts = Vec::new();
    let mut erased = Vec::new();
    for c in changed {
        match c {
            SearchChange::Person(u) => {
                if !search.person_changed(u).await? {
                    erased.push(u);
                }
            }
            SearchChange::Community(c) => communities.push(c),
            SearchChange::Post(p) => posts.push(p),
        }
    }
    let store = &search.inner.store;
    let found = store.communities_at(communities.clone()).await?;
    let gone_posts: Vec<u64>;
    let mut live = Vec::new();
    {
        let records = store.posts_at(posts.clone()).await?;
        let mut gone = Vec::new();
        for (p, r) in posts.into_iter().zip(records) {
            match r {
                Some(r) => live.push(r),
                None => gone.push(p),
            }
        }
        gone_posts = gone;
    }
    search
        .write_social(move |social| {
            for u in erased {
                social.drop_author(u);
            }
            for (c, r) in communities.into_iter().zip(found) {
                match r {
                    Some(r) => social.put_community(&r),
                    None => social.drop_community(c),
                }
            }
            for p in gone_posts {
                social.drop_post(p);
            }
        })
        .await?;
    let ids: Vec<u64> = live.iter().map(|p| p.id).collect();
    index_posts(search, live).await?;
    // A post's change row also stands for its comments: bring them level.
    if !ids.is_empty() {
        let threads = store.comments_on(ids).await?;
        let todo = search
            .write_social(move |social| {
                threads
                    .into_iter()
                    .flat_map(|(p, list)| social.sync_comments(p, list))
                    .collect::<Vec<_>>()
            })
            .await?;
        index_comments(search, todo).await?;
    }
    Ok(())
}

/// Opens and indexes comments; a comment whose author has no key any more (erased) is
/// forgotten instead.
async fn index_comments(search: &Search, comments: Vec<CommentRecord>) -> Result<(), StoreError> {
    index_texts(
        search,
        comments,
        Texts {
            author: |c| c.author,
            open: crate::community::comment_text,
            put: |social, c, t| social.put_comment(c, t),
            drop: |social, c| social.drop_comment(c.id),
            what: "a comment did not open for search",
        },
    )
    .await
}

/// Opens and indexes posts; a post whose author has no key any more (erased) is forgotten
/// instead.
async fn index_posts(search: &Search, posts: Vec<PostRecord>) -> Result<(), StoreError> {
    index_texts(
        search,
        posts,
        Texts {
            author: |p| p.author,
            open: crate::community::post_text,
            put: |social, p, t| social.put_post(p, t),
            drop: |social, p| social.drop_post(p.id),
            what: "a post did not open for search",
        },
    )
    .await
}

/// How one kind of community record is opened and put into (or dropped from) the index.
struct Texts<R> {
    author: fn(&R) -> u64,
    open: fn(&SecretKey, &R) -> Result<String, CommunityError>,
    put: fn(&mut Social, &R, String),
    drop: fn(&mut Social, &R),
    /// The warning logged when a record's text does not open.
    what: &'static str,
}

/// Opens the texts of `records` on the blocking pool (their authors' keys read in one go, each
/// unwrapped once) and indexes them; a record whose author's key is gone or whose text does not
/// open is dropped from the index instead.
async fn index_texts<R: Send + 'static>(
    search: &Search,
    records: Vec<R>,
    how: Texts<R>,
) -> Result<(), StoreError> {
    if records.is_empty() {
        return Ok(());
    }
    let keys = search.authors(records.iter().map(how.author)).await?;
    let s = search.clone();
    tokio::task::spawn_blocking(move || {
        let mut opened = HashMap::new();
        let mut texts = Vec::with_capacity(records.len());
        for r in records {
            let author = (how.author)(&r);
            let text = keys.get(&author).and_then(|(_, wrapped)| {
                let key = match opened.entry(author) {
                    std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                    std::collections::hash_map::Entry::Vacant(v) => {
                        match s.inner.master.unwrap_data_key(author, wrapped) {
                            Ok(k) => v.insert(k),
                            Err(e) => {
                                tracing::warn!(error = %e, "a data key did not unwrap for search");
                                return None;
                            }
                        }
                    }
                };
                match (how.open)(key, &r) {
                    Ok(t) => Some(t),
                    Err(e) => {
                        tracing::warn!(error = %e, "{}", how.what);
                        None
                    }
                }
            });
            texts.push((r, text));
        }
        let mut social = write(&s.inner.social);
        for (r, text) in texts {
            match text {
                Some(t) => (how.put)(&mut social, &r, t),
                None => (how.drop)(&mut social, &r),
            }
        }
    })
    .await
    .map_err(|_| StoreError::Worker)
}

/// Opens and indexes messages (their authors' keys read in one go).
async fn index(
    search: &Search,
    items: Vec<(u64, String, MessageRecord)>,
) -> Result<(), StoreError> {
    if items.is_empty() {
        return Ok(());
    }
    let keys = search
        .authors(items.iter().map(|(_, _, m)| m.author))
        .await?;
    let s = search.clone();
    tokio::task::spawn_blocking(move || {
        let mut opened = HashMap::new();
        let mut docs = Vec::with_capacity(items.len());
        for (no, conv_id, m) in items {
            let Some((_, wrapped)) = keys.get(&m.author) else {
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

/// Drops from the indexes every message and post the store no longer shows.
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
    let comments = search.read_social(|social| social.comment_keys()).await?;
    for chunk in comments.chunks(CHECK_BATCH) {
        let gone = search.inner.store.comments_gone(chunk.to_vec()).await?;
        if !gone.is_empty() {
            search
                .write_social(move |social| {
                    for (_, c) in gone {
                        social.drop_comment(c);
                    }
                })
                .await?;
        }
    }
    let posts = search.read_social(|social| social.post_keys()).await?;
    for chunk in posts.chunks(CHECK_BATCH) {
        let gone = search.inner.store.posts_gone(chunk.to_vec()).await?;
        if !gone.is_empty() {
            search
                .write_social(move |social| {
                    for p in gone {
                        social.drop_post(p);
                    }
                })
                .await?;
        }
    }
    Ok(())
}

/// Removes the search-change rows at or below `upto`, which the index has applied (a restart
/// rebuilds from the tables, never from these rows).
async fn forget_changes(search: &Search, upto: u64) -> Result<(), StoreError> {
    while search
        .inner
        .store
        .prune_search_changes(upto, PRUNE_BATCH)
        .await?
        == PRUNE_BATCH as u64
    {}
    Ok(())
}

/// Loads every account's handle and nickname.
async fn people(search: &Search) -> Result<(), SearchError> {
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
