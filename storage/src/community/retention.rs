//! Retention of communities: posts (with their comments), comments and moderation-log entries
//! past their time removed in bounded batches, sparing authors under legal hold, or counted
//! (a dry run).

use redb::{ReadTransaction, ReadableTable};

use super::posts::remove_post;
use super::{CommentRecord, ModLogRecord, PostRecord};
use crate::catalog::*;
use crate::{Store, StoreError};
use primitives::time::Millis;

impl Store {
    /// Retention of communities: removes up to `limit` posts (with their comments) created
    /// before `posts`, comments before `comments`, and moderation log entries before `log`,
    /// sparing authors under legal hold. Returns what went (posts, comments, log entries);
    /// fewer than `limit` of each means that category is done. With `dry_run`, counts in a
    /// read snapshot and changes nothing.
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
        self.write(move |tx| {
            let held: std::collections::HashSet<u64> = tx
                .open_table(USERID_LEGALHOLD)?
                .iter()?
                .map(|r| r.map(|(k, _)| k.value()))
                .collect::<Result<_, _>>()?;
            let mut counts = (0, 0, 0);
            if let Some(cut) = posts {
                let due: Vec<PostRecord> = {
                    let mut out = Vec::new();
                    // Numbers increase with time: the oldest come first.
                    for row in tx.open_table(POSTNO_POST)?.iter()? {
                        let (k, v) = row?;
                        let post = PostRecord::decode(k.value(), v.value())?;
                        if post.created >= cut {
                            break;
                        }
                        if !held.contains(&post.author) {
                            out.push(post);
                            if out.len() >= limit {
                                break;
                            }
                        }
                    }
                    out
                };
                for post in &due {
                    remove_post(tx, post)?;
                }
                counts.0 = due.len() as u64;
            }
            if let Some(cut) = comments {
                let due: Vec<CommentRecord> = {
                    let mut out = Vec::new();
                    for row in tx.open_table(POSTNO_COMMENTNO_COMMENT)?.iter()? {
                        let (k, v) = row?;
                        let (p, id) = k.value();
                        let rec = CommentRecord::decode(p, id, v.value())?;
                        if rec.created < cut && !held.contains(&rec.author) {
                            out.push(rec);
                            if out.len() >= limit {
                                break;
                            }
                        }
                    }
                    out
                };
                let mut t = tx.open_table(POSTNO_COMMENTNO_COMMENT)?;
                let mut by_user = tx.open_table(USERID_COMMENTNO)?;
                for rec in &due {
                    t.remove((rec.post, rec.id))?;
                    by_user.remove((rec.author, rec.id))?;
                }
                counts.1 = due.len() as u64;
            }
            if let Some(cut) = log_before {
                let mut t = tx.open_table(COMMUNITYNO_SEQ_MODLOG)?;
                let due: Vec<(u64, u64)> = {
                    let mut out = Vec::new();
                    for row in t.iter()? {
                        let (k, v) = row?;
                        let (c, seq) = k.value();
                        if ModLogRecord::decode(seq, v.value())?.at < cut {
                            out.push((c, seq));
                            if out.len() >= limit {
                                break;
                            }
                        }
                    }
                    out
                };
                for key in &due {
                    t.remove(*key)?;
                }
                counts.2 = due.len() as u64;
            }
            Ok(counts)
        })
        .await
    }
}

/// What community retention would remove now (posts, comments not on those posts, log).
fn count_due(
    tx: &ReadTransaction,
    posts: Option<Millis>,
    comments: Option<Millis>,
    log_before: Option<Millis>,
) -> Result<(u64, u64, u64), StoreError> {
    let held: std::collections::HashSet<u64> = tx
        .open_table(USERID_LEGALHOLD)?
        .iter()?
        .map(|r| r.map(|(k, _)| k.value()))
        .collect::<Result<_, _>>()?;
    let mut counts = (0, 0, 0);
    let mut gone = std::collections::HashSet::new();
    if let Some(cut) = posts {
        for row in tx.open_table(POSTNO_POST)?.iter()? {
            let (k, v) = row?;
            let post = PostRecord::decode(k.value(), v.value())?;
            if post.created >= cut {
                break;
            }
            if !held.contains(&post.author) {
                gone.insert(post.id);
                counts.0 += 1;
            }
        }
    }
    if let Some(cut) = comments {
        for row in tx.open_table(POSTNO_COMMENTNO_COMMENT)?.iter()? {
            let (k, v) = row?;
            let (p, id) = k.value();
            let rec = CommentRecord::decode(p, id, v.value())?;
            if rec.created < cut && !held.contains(&rec.author) && !gone.contains(&p) {
                counts.1 += 1;
            }
        }
    }
    if let Some(cut) = log_before {
        for row in tx.open_table(COMMUNITYNO_SEQ_MODLOG)?.iter()? {
            let (k, v) = row?;
            if ModLogRecord::decode(k.value().1, v.value())?.at < cut {
                counts.2 += 1;
            }
        }
    }
    Ok(counts)
}
