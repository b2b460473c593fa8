//! Retention of communities: posts (with their comments), comments and moderation-log entries
//! past their time removed in bounded batches, sparing authors under legal hold, or counted
//! (a dry run).

use std::collections::HashSet;
use std::ops::Bound;

use redb::ReadTransaction;

use super::posts::{REMOVAL_BATCH, remove_post_within};
use super::{CommentRecord, ModLogRecord, PostRecord};
use super::{each_row, get_comment, get_post};
use crate::catalog::*;
use crate::kv;
use crate::search::{SearchChange, note_change};
use crate::{Store, StoreError};
use primitives::time::Millis;

/// What one batch of community retention removes, found in a read snapshot: post numbers,
/// (post, comment) keys and (community, seq) keys.
#[derive(Debug, Default)]
struct Due {
    posts: Vec<u64>,
    comments: Vec<(u64, u64)>,
    log: Vec<(u64, u64)>,
}

impl Store {
    /// Retention of communities: removes up to `limit` posts (with their comments) created
    /// before `posts`, comments before `comments`, and moderation log entries before `log`,
    /// sparing authors under legal hold. Returns what went (posts, comments, log entries);
    /// fewer than `limit` of each means that category is done. With `dry_run`, counts in a
    /// read snapshot and changes nothing.
    ///
    /// What is due is found in a read snapshot (the tables read a page at a time), and the
    /// write removes it by key, each row looked up again (a row gone since, or whose author
    /// was put under legal hold since, is left out): the write reads no table whole.
    pub async fn community_retention(
        &self,
        posts: Option<Millis>,
        comments: Option<Millis>,
        log_before: Option<Millis>,
        limit: usize,
        dry_run: bool,
    ) -> Result<(u64, u64, u64), StoreError> {
        if dry_run {
            return self
                .read(move |tx| count_due(tx, posts, comments, log_before))
                .await;
        }
        let due = self
            .read(move |tx| find_due(tx, posts, comments, log_before, limit))
            .await?;
        if due.posts.is_empty() && due.comments.is_empty() && due.log.is_empty() {
            return Ok((0, 0, 0));
        }
        // Posts first, their comments and favourites at most REMOVAL_BATCH rows a commit: a
        // post with many comments takes several commits, and none of them is long.
        let mut posts = due.posts.clone();
        let mut removed = 0u64;
        while !posts.is_empty() {
            let (gone, left) = self
                .write(move |tx| {
                    let mut budget = REMOVAL_BATCH;
                    let (mut gone, mut left) = (0u64, Vec::new());
                    for p in &posts {
                        let Some(post) = get_post(tx, *p)? else {
                            continue;
                        };
                        if USERID_LEGALHOLD.get(tx, &post.author)?.is_some() {
                            continue;
                        }
                        if budget > 0 && remove_post_within(tx, &post, &mut budget)? {
                            gone += 1;
                        } else {
                            left.push(*p);
                        }
                    }
                    Ok((gone, left))
                })
                .await?;
            removed += gone;
            posts = left;
        }
        self.write(move |tx| {
            let held = |user: u64| -> Result<bool, StoreError> {
                Ok(USERID_LEGALHOLD.get(tx, &user)?.is_some())
            };
            let mut counts = (removed, 0, 0);
            let mut thinned = Vec::new();
            for (p, id) in &due.comments {
                if let Some(rec) = get_comment(tx, *p, *id)?
                    && !held(rec.author)?
                {
                    POSTNO_COMMENTNO_COMMENT.remove(tx, &(rec.post, rec.id))?;
                    USERID_COMMENTNO.remove(tx, &(rec.author, rec.id))?;
                    thinned.push(rec.post);
                    counts.1 += 1;
                }
            }
            // The search index brings a changed post's comments level: the removed ones
            // leave it with this commit, not at its next periodic check.
            thinned.sort_unstable();
            thinned.dedup();
            for p in thinned {
                note_change(tx, SearchChange::Post(p))?;
            }
            for key in &due.log {
                if COMMUNITYNO_SEQ_MODLOG.remove(tx, key)? {
                    counts.2 += 1;
                }
            }
            Ok(counts)
        })
        .await
    }
}

/// The users under legal hold (read a page at a time).
fn held(tx: &ReadTransaction) -> Result<HashSet<u64>, StoreError> {
    crate::retention::held(tx)
}

/// Calls `each` on every post created before `cut` whose author is not held, oldest first
/// (numbers increase with time, so the scan stops at the first post not due), until it
/// answers false.
fn posts_due(
    tx: &ReadTransaction,
    cut: Millis,
    held: &HashSet<u64>,
    mut each: impl FnMut(PostRecord) -> bool,
) -> Result<(), StoreError> {
    each_row(
        tx,
        POSTNO_POST,
        Bound::Unbounded,
        Bound::Unbounded,
        kv::Order::Ascending,
        |p, v| {
            let post = PostRecord::decode(p, &v)?;
            if post.created >= cut {
                return Ok(false);
            }
            Ok(held.contains(&post.author) || each(post))
        },
    )
}

/// Calls `each` on every comment created before `cut` whose author is not held, in key order,
/// until it answers false.
fn comments_due(
    tx: &ReadTransaction,
    cut: Millis,
    held: &HashSet<u64>,
    mut each: impl FnMut(CommentRecord) -> bool,
) -> Result<(), StoreError> {
    each_row(
        tx,
        POSTNO_COMMENTNO_COMMENT,
        Bound::Unbounded,
        Bound::Unbounded,
        kv::Order::Ascending,
        |(p, id), v| {
            let rec = CommentRecord::decode(p, id, &v)?;
            if rec.created < cut && !held.contains(&rec.author) {
                return Ok(each(rec));
            }
            Ok(true)
        },
    )
}

/// Calls `each` on the key of every moderation-log entry before `cut`, in key order, until it
/// answers false.
fn log_due(
    tx: &ReadTransaction,
    cut: Millis,
    mut each: impl FnMut((u64, u64)) -> bool,
) -> Result<(), StoreError> {
    each_row(
        tx,
        COMMUNITYNO_SEQ_MODLOG,
        Bound::Unbounded,
        Bound::Unbounded,
        kv::Order::Ascending,
        |(c, seq), v| {
            if ModLogRecord::decode(seq, &v)?.at < cut {
                return Ok(each((c, seq)));
            }
            Ok(true)
        },
    )
}

/// The next batch of community retention: at most `limit` of each kind. Comments on the posts
/// of the batch are left to go with their post.
fn find_due(
    tx: &ReadTransaction,
    posts: Option<Millis>,
    comments: Option<Millis>,
    log_before: Option<Millis>,
    limit: usize,
) -> Result<Due, StoreError> {
    let held = held(tx)?;
    let mut due = Due::default();
    if let Some(cut) = posts {
        posts_due(tx, cut, &held, |post| {
            due.posts.push(post.id);
            due.posts.len() < limit
        })?;
    }
    if let Some(cut) = comments {
        let going: HashSet<u64> = due.posts.iter().copied().collect();
        comments_due(tx, cut, &held, |rec| {
            if going.contains(&rec.post) {
                return true;
            }
            due.comments.push((rec.post, rec.id));
            due.comments.len() < limit
        })?;
    }
    if let Some(cut) = log_before {
        log_due(tx, cut, |key| {
            due.log.push(key);
            due.log.len() < limit
        })?;
    }
    Ok(due)
}

/// What community retention would remove now (posts, comments not on those posts, log).
fn count_due(
    tx: &ReadTransaction,
    posts: Option<Millis>,
    comments: Option<Millis>,
    log_before: Option<Millis>,
) -> Result<(u64, u64, u64), StoreError> {
    let held = held(tx)?;
    let mut counts = (0, 0, 0);
    let mut gone = HashSet::new();
    if let Some(cut) = posts {
        posts_due(tx, cut, &held, |post| {
            gone.insert(post.id);
            counts.0 += 1;
            true
        })?;
    }
    if let Some(cut) = comments {
        comments_due(tx, cut, &held, |rec| {
            if !gone.contains(&rec.post) {
                counts.1 += 1;
            }
            true
        })?;
    }
    if let Some(cut) = log_before {
        log_due(tx, cut, |_| {
            counts.2 += 1;
            true
        })?;
    }
    Ok(counts)
}
