//! Posts: creating one, reading one, the author's edit, and deletion by its author or a
//! moderator (its comments, favourites and media references go with it, a bounded batch of
//! rows per commit: [`REMOVAL_BATCH`]).

use redb::WriteTransaction;

use super::fanout::queue_fanout;
use super::moderation::{entry, log_removal, may_remove};
use super::visibility::{facts_r, sees_r};
use super::{CommentRecord, CommunityRefusal, ModAction, PostEdit, PostRecord, PostVisibility};
use super::{any_under, count_under, get_community, get_post, remove_under, role_of};
use crate::FetchJob;
use crate::catalog::*;
use crate::community_calls::{CallOutcome, RemoteCall, record_call};
use crate::search::{SearchChange, note_change};
use crate::{Store, StoreError};
use primitives::time::Millis;

/// Removes a post with its comments, favourites and media references (all of one post's,
/// read a page at a time).
pub(super) fn remove_post(tx: &WriteTransaction, post: &PostRecord) -> Result<(), StoreError> {
    POSTNO_POST.remove(tx, &post.id)?;
    note_change(tx, SearchChange::Post(post.id))?;
    COMMUNITYNO_POSTNO.remove(tx, &(post.community, post.id))?;
    USERID_POSTNO.remove(tx, &(post.author, post.id))?;
    remove_under(tx, POSTNO_COMMENTNO_COMMENT, post.id, |(_, id), v| {
        let c = CommentRecord::decode(post.id, id, &v)?;
        USERID_COMMENTNO.remove(tx, &(c.author, c.id))?;
        Ok(())
    })?;
    remove_under(tx, POSTNO_USERID_FAVOURITE, post.id, |(_, u), ()| {
        USERID_POSTNO_FAVOURITE.remove(tx, &(u, post.id))?;
        Ok(())
    })?;
    for m in &post.media {
        MEDIAID_COMMUNITYNO_POSTNO.remove(tx, &(m.clone(), post.community, post.id))?;
        // A member of another node's file, fetched for this post: it goes with it.
        crate::fedmedia::drop_copy_if_unused(tx, m)?;
    }
    Ok(())
}

/// Rows of a post's comments and favourites removed in one commit when its author or a
/// moderator deletes it, or retention removes it.
pub const REMOVAL_BATCH: usize = 512;

/// Removes up to `budget` rows of a post's comments and favourites, then the post itself (its
/// indexes and media references with it); true once the post is gone.
pub(super) fn remove_post_within(
    tx: &WriteTransaction,
    post: &PostRecord,
    budget: &mut usize,
) -> Result<bool, StoreError> {
    let comments = POSTNO_COMMENTNO_COMMENT.prefixed_page(tx, &post.id, None, *budget)?;
    for ((_, id), v) in &comments {
        let c = CommentRecord::decode(post.id, *id, v)?;
        POSTNO_COMMENTNO_COMMENT.remove(tx, &(post.id, c.id))?;
        USERID_COMMENTNO.remove(tx, &(c.author, c.id))?;
    }
    *budget = budget.saturating_sub(comments.len());
    let fans = POSTNO_USERID_FAVOURITE.prefixed_page(tx, &post.id, None, *budget)?;
    for ((_, u), ()) in &fans {
        USERID_POSTNO_FAVOURITE.remove(tx, &(*u, post.id))?;
        POSTNO_USERID_FAVOURITE.remove(tx, &(post.id, *u))?;
    }
    *budget = budget.saturating_sub(fans.len());
    let left = any_under(tx, POSTNO_COMMENTNO_COMMENT, post.id)?
        || any_under(tx, POSTNO_USERID_FAVOURITE, post.id)?;
    if left || *budget == 0 {
        if !comments.is_empty() {
            // The search index drops the removed comments with this commit.
            note_change(tx, SearchChange::Post(post.id))?;
        }
        return Ok(false);
    }
    remove_post(tx, post)?;
    *budget -= 1;
    Ok(true)
}

impl Store {
    /// Stores a new post by a member; `seal(id)` seals body and place under the author's
    /// key for the number assigned. Media must be the author's (checked by the domain); for a
    /// member of another node, `fetches` are the jobs that bring their files here, queued in
    /// the same commit (unless the copy is here or on its way already).
    /// Returns the post's number and its fan-out job (see [`Store::fan_out_step`]).
    #[allow(clippy::too_many_arguments)]
    pub async fn create_post(
        &self,
        c: u64,
        author: u64,
        visibility: PostVisibility,
        media: Vec<String>,
        fetches: Vec<(String, FetchJob)>,
        now: Millis,
        call: Option<RemoteCall>,
        seal: impl Fn(u64) -> Result<(Vec<u8>, Vec<u8>), StoreError> + Send + 'static,
    ) -> Result<Result<(u64, u64), CommunityRefusal>, StoreError> {
        self.write(move |tx| {
            let applied = (|| -> Result<Result<(u64, u64), CommunityRefusal>, StoreError> {
                let Some(community) = get_community(tx, c)? else {
                    return Ok(Err(CommunityRefusal::NotFound));
                };
                if COMMUNITYNO_USERID_BAN.get(tx, &(c, author))?.is_some() {
                    return Ok(Err(CommunityRefusal::Banned));
                }
                if role_of(tx, c, author)?.is_none() {
                    return Ok(Err(if community.public {
                        CommunityRefusal::Forbidden("join the community to post in it")
                    } else {
                        CommunityRefusal::NotFound
                    }));
                }
                let id = crate::take_numbers(tx, "next_post", 1)?;
                let (body_sealed, place_sealed) = seal(id)?;
                let post = PostRecord {
                    id,
                    community: c,
                    author,
                    created: now,
                    edited: None,
                    visibility,
                    body_sealed,
                    place_sealed,
                    media: media.clone(),
                };
                POSTNO_POST.insert(tx, &id, &post.encode())?;
                note_change(tx, SearchChange::Post(id))?;
                COMMUNITYNO_POSTNO.insert(tx, &(c, id), &())?;
                USERID_POSTNO.insert(tx, &(author, id), &())?;
                for m in &media {
                    MEDIAID_COMMUNITYNO_POSTNO.insert(tx, &(m.clone(), c, id), &())?;
                }
                for (local, job) in &fetches {
                    crate::fedmedia::queue_fetch(tx, local, job)?;
                }
                Ok(Ok((id, queue_fanout(tx, community.id, id, 0)?)))
            })()?;
            record_call(tx, call.as_ref(), applied, |&(post, _)| {
                CallOutcome::Post(post)
            })
        })
        .await
    }

    /// One post if `viewer` may see it (and it is in community `c`).
    pub async fn post_for(
        &self,
        c: u64,
        p: u64,
        viewer: u64,
    ) -> Result<Option<(PostRecord, u64)>, StoreError> {
        self.read(move |tx| {
            let Some(post) = get_post(tx, p)? else {
                return Ok(None);
            };
            if post.community != c {
                return Ok(None);
            }
            let Some(community) = get_community(tx, c)? else {
                return Ok(None);
            };
            let facts = facts_r(tx, &community, viewer)?;
            if !sees_r(tx, &facts, &post, viewer)? {
                return Ok(None);
            }
            let comments = count_under(tx, POSTNO_COMMENTNO_COMMENT, p)?;
            Ok(Some((post, comments)))
        })
        .await
    }

    /// The author edits their post (body, media, visibility, place).
    pub async fn edit_post(
        &self,
        c: u64,
        p: u64,
        author: u64,
        edit: PostEdit,
        now: Millis,
        call: Option<RemoteCall>,
    ) -> Result<Result<(), CommunityRefusal>, StoreError> {
        self.write(move |tx| {
            let applied = (|| -> Result<Result<(), CommunityRefusal>, StoreError> {
                let Some(mut post) = get_post(tx, p)?.filter(|x| x.community == c) else {
                    return Ok(Err(CommunityRefusal::NotFound));
                };
                if post.author != author {
                    return Ok(Err(CommunityRefusal::Forbidden(
                        "only its author edits a post",
                    )));
                }
                if let Some(b) = &edit.body_sealed {
                    post.body_sealed = b.clone();
                }
                if let Some(v) = edit.visibility {
                    post.visibility = v;
                }
                if let Some(pl) = &edit.place_sealed {
                    post.place_sealed = pl.clone();
                }
                if let Some(m) = &edit.media {
                    for old in &post.media {
                        MEDIAID_COMMUNITYNO_POSTNO.remove(tx, &(old.clone(), c, p))?;
                    }
                    for new in m {
                        MEDIAID_COMMUNITYNO_POSTNO.insert(tx, &(new.clone(), c, p), &())?;
                    }
                    post.media = m.clone();
                }
                post.edited = Some(now);
                POSTNO_POST.insert(tx, &p, &post.encode())?;
                note_change(tx, SearchChange::Post(p))?;
                Ok(Ok(()))
            })()?;
            record_call(tx, call.as_ref(), applied, |_| CallOutcome::Post(p))
        })
        .await
    }

    /// Deletes a post: by its author, or removed by a moderator (logged). Its comments and
    /// favourites go first, at most `REMOVAL_BATCH` (512) rows a commit, each commit checking the
    /// actor may still remove it — so a post with many comments never makes one long write —
    /// and the post itself (its media references with it), the log entry and the call's
    /// record go in the last. A stop part way leaves the post with fewer comments; deleting it
    /// again finishes.
    pub async fn delete_post(
        &self,
        c: u64,
        p: u64,
        actor: u64,
        now: Millis,
        call: Option<RemoteCall>,
    ) -> Result<Result<(), CommunityRefusal>, StoreError> {
        self.remove_in_commits(call, move |tx| {
            let Some(post) = get_post(tx, p)?.filter(|x| x.community == c) else {
                return Ok(Err(CommunityRefusal::NotFound));
            };
            let forbidden = "only its author or a moderator deletes a post";
            if let Err(refused) = may_remove(tx, c, actor, post.author, forbidden)? {
                return Ok(Err(refused));
            }
            let mut budget = REMOVAL_BATCH;
            if !remove_post_within(tx, &post, &mut budget)? {
                return Ok(Ok(false));
            }
            let mut e = entry(now, actor, ModAction::RemovePost, post.author);
            e.post = p;
            log_removal(tx, c, e)?;
            Ok(Ok(true))
        })
        .await
    }

    /// Runs `step` in commits of its own until it says the removal is done (true), recording
    /// `call` with what it became in that last commit; a refusal ends it (nothing recorded).
    /// Each step removes a bounded batch and checks again that the actor may remove.
    pub(super) async fn remove_in_commits(
        &self,
        call: Option<RemoteCall>,
        step: impl Fn(&WriteTransaction) -> Result<Result<bool, CommunityRefusal>, StoreError>
        + Clone
        + Send
        + 'static,
    ) -> Result<Result<(), CommunityRefusal>, StoreError> {
        loop {
            let (call, step) = (call.clone(), step.clone());
            let done = self
                .write(move |tx| match step(tx)? {
                    // A batch went; the call is recorded with the last one.
                    Ok(false) => Ok(Ok(false)),
                    done => record_call(tx, call.as_ref(), done, |_| CallOutcome::Done),
                })
                .await?;
            match done {
                Ok(false) => continue,
                Ok(true) => return Ok(Ok(())),
                Err(refused) => return Ok(Err(refused)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::community::tests::seal;

    /// A community 7 (owner 1) with a post by member 2 holding `n` comments by member 3 and
    /// a favourite of each member; the post's number.
    async fn post_with_comments(s: &Store, n: usize) -> u64 {
        let now = Millis(10);
        assert!(
            s.create_community(7, "c".into(), String::new(), None, true, 1, now)
                .await
                .unwrap()
        );
        for m in [2, 3] {
            s.join_community(7, m, now, None).await.unwrap().unwrap();
        }
        let (p, _) = s
            .create_post(
                7,
                2,
                PostVisibility::Members,
                Vec::new(),
                Vec::new(),
                now,
                None,
                seal,
            )
            .await
            .unwrap()
            .unwrap();
        let mut made = tokio::task::JoinSet::new();
        for _ in 0..n {
            let s = s.clone();
            made.spawn(async move {
                s.create_comment(7, p, 3, 0, 0, now, None, |id| Ok(id.to_be_bytes().to_vec()))
                    .await
                    .unwrap()
                    .unwrap()
            });
        }
        while made.join_next().await.is_some() {}
        for u in [1, 2, 3] {
            s.set_favourite(7, p, u, true, now, None)
                .await
                .unwrap()
                .unwrap();
        }
        p
    }

    async fn rows_of(s: &Store, p: u64) -> (usize, usize, usize, bool) {
        s.read(move |tx| {
            Ok((
                POSTNO_COMMENTNO_COMMENT
                    .prefixed_in_pages(tx, &p, 256)?
                    .len(),
                USERID_COMMENTNO.prefixed_in_pages(tx, &3, 256)?.len(),
                POSTNO_USERID_FAVOURITE
                    .prefixed_in_pages(tx, &p, 256)?
                    .len(),
                get_post(tx, p)?.is_some(),
            ))
        })
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn a_post_with_many_comments_is_deleted_in_bounded_commits_and_logged_once() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = Store::open(&dir.path().join("n.redb"), |_| Ok(None)).unwrap();
        let n = REMOVAL_BATCH + 88;
        let p = post_with_comments(&s, n).await;
        assert_eq!(rows_of(&s, p).await, (n, n, 3, true));
        // A member who is neither its author nor a moderator removes nothing of it.
        let r = s.delete_post(7, p, 3, Millis(20), None).await.unwrap();
        assert!(matches!(r, Err(CommunityRefusal::Forbidden(_))), "{r:?}");
        assert_eq!(rows_of(&s, p).await, (n, n, 3, true));
        // The owner removes it: more than one commit, none with more than a batch of rows.
        let (commits, _) = s.write_stats();
        s.delete_post(7, p, 1, Millis(20), None)
            .await
            .unwrap()
            .unwrap();
        let (after, _) = s.write_stats();
        assert!(after - commits >= 2, "{} commits", after - commits);
        assert_eq!(rows_of(&s, p).await, (0, 0, 0, false));
        let log = s.moderation_log(7, 1, u64::MAX, 10).await.unwrap().unwrap();
        let removals: Vec<_> = log
            .iter()
            .filter(|e| e.action == ModAction::RemovePost)
            .collect();
        assert_eq!(removals.len(), 1, "logged once, by the last commit");
        assert_eq!((removals[0].actor, removals[0].target), (1, 2));
    }

    #[tokio::test]
    async fn a_comment_with_many_replies_is_deleted_in_bounded_commits_and_logged_once() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = Store::open(&dir.path().join("n.redb"), |_| Ok(None)).unwrap();
        let p = post_with_comments(&s, 1).await;
        let now = Millis(10);
        let top = s
            .read(move |tx| {
                Ok(POSTNO_COMMENTNO_COMMENT.prefixed_in_pages(tx, &p, 256)?[0]
                    .0
                    .1)
            })
            .await
            .unwrap();
        let n = REMOVAL_BATCH + 40;
        let mut made = tokio::task::JoinSet::new();
        for _ in 0..n {
            let s = s.clone();
            made.spawn(async move {
                s.create_comment(7, p, 2, top, 0, now, None, |id| {
                    Ok(id.to_be_bytes().to_vec())
                })
                .await
                .unwrap()
                .unwrap()
            });
        }
        while made.join_next().await.is_some() {}
        assert_eq!(rows_of(&s, p).await.0, n + 1);
        let r = s.delete_comment(7, p, top, 2, now, None).await.unwrap();
        assert!(matches!(r, Err(CommunityRefusal::Forbidden(_))), "{r:?}");
        let (commits, _) = s.write_stats();
        s.delete_comment(7, p, top, 1, now, None)
            .await
            .unwrap()
            .unwrap();
        let (after, _) = s.write_stats();
        assert!(after - commits >= 2, "{} commits", after - commits);
        assert_eq!(rows_of(&s, p).await, (0, 0, 3, true), "the post stays");
        let log = s.moderation_log(7, 1, u64::MAX, 10).await.unwrap().unwrap();
        let removals: Vec<_> = log
            .iter()
            .filter(|e| e.action == ModAction::RemoveComment)
            .collect();
        assert_eq!(removals.len(), 1, "logged once, by the last commit");
        assert_eq!((removals[0].comment, removals[0].target), (top, 3));
    }

    #[tokio::test]
    async fn retention_removes_a_post_with_many_comments_whole_in_bounded_commits() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = Store::open(&dir.path().join("n.redb"), |_| Ok(None)).unwrap();
        let n = REMOVAL_BATCH * 2 + 5;
        let p = post_with_comments(&s, n).await;
        let (commits, _) = s.write_stats();
        let (posts, _, _) = s
            .community_retention(Some(Millis(11)), None, None, 100, false)
            .await
            .unwrap();
        let (after, _) = s.write_stats();
        assert_eq!(posts, 1, "counted once it is gone");
        assert!(after - commits >= 3, "{} commits", after - commits);
        assert_eq!(rows_of(&s, p).await, (0, 0, 0, false));
    }
}
