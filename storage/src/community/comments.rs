//! Comments, one level deep, quoting by reference: a post's comments, the quoted ones,
//! creating one, the author's edit, deletion by its author or a moderator, and a post's count.

use std::ops::Bound;

use super::fanout::queue_fanout;
use super::moderation::{entry, log_removal, may_remove};
use super::posts::REMOVAL_BATCH;
use super::visibility::{Facts, are_friends, facts_r, may_see, sees_r};
use super::{CommentRecord, CommunityRefusal, ModAction, PostVisibility};
use super::{count_under, each_row, get_comment, get_community, get_post, role_of};
use crate::catalog::*;
use crate::community_calls::{CallOutcome, RemoteCall, record_call};
use crate::kv;
use crate::search::{SearchChange, note_change};
use crate::{Store, StoreError};
use primitives::time::Millis;

/// Removes up to `budget` replies of a top-level comment, then the comment; true once gone.
/// The post's later comments are read a page at a time to find the replies.
pub(super) fn remove_comment_within(
    tx: &impl kv::Write,
    c: &CommentRecord,
    budget: &mut usize,
) -> Result<bool, StoreError> {
    if c.parent == 0 {
        let room = *budget;
        let mut replies: Vec<(u64, u64)> = Vec::new();
        each_row(
            tx,
            POSTNO_COMMENTNO_COMMENT,
            Bound::Excluded((c.post, c.id)),
            Bound::Included((c.post, u64::MAX)),
            kv::Order::Ascending,
            |(_, id), v| {
                if replies.len() >= room {
                    return Ok(false);
                }
                let r = CommentRecord::decode(c.post, id, &v)?;
                if r.parent == c.id {
                    replies.push((r.author, r.id));
                }
                Ok(true)
            },
        )?;
        let full = replies.len() >= room;
        for (author, id) in &replies {
            POSTNO_COMMENTNO_COMMENT.remove(tx, &(c.post, *id))?;
            USERID_COMMENTNO.remove(tx, &(*author, *id))?;
        }
        *budget = budget.saturating_sub(replies.len());
        if full {
            return Ok(false);
        }
    }
    POSTNO_COMMENTNO_COMMENT.remove(tx, &(c.post, c.id))?;
    USERID_COMMENTNO.remove(tx, &(c.author, c.id))?;
    *budget = budget.saturating_sub(1);
    Ok(true)
}

impl Store {
    /// Comments of a post `viewer` may see, oldest first, numbered above `after`.
    pub async fn post_comments(
        &self,
        c: u64,
        p: u64,
        viewer: u64,
        after: u64,
        limit: usize,
    ) -> Result<Option<Vec<CommentRecord>>, StoreError> {
        self.read(move |tx| {
            let Some(post) = get_post(tx, p)?.filter(|x| x.community == c) else {
                return Ok(None);
            };
            let Some(community) = get_community(tx, c)? else {
                return Ok(None);
            };
            let facts = facts_r(tx, &community, viewer)?;
            if !sees_r(tx, &facts, &post, viewer)? {
                return Ok(None);
            }
            let start = (p, after.saturating_add(1));
            let end = (p, u64::MAX);
            POSTNO_COMMENTNO_COMMENT
                .range(
                    tx,
                    Bound::Included(&start),
                    Bound::Included(&end),
                    kv::Order::Ascending,
                    limit,
                )?
                .into_iter()
                .map(|((_, id), v)| CommentRecord::decode(p, id, &v))
                .collect::<Result<_, _>>()
                .map(Some)
        })
        .await
    }

    /// The comments of post `p` among `ids` that still exist (for quotes).
    pub async fn comments_by_id(
        &self,
        p: u64,
        ids: Vec<u64>,
    ) -> Result<Vec<CommentRecord>, StoreError> {
        self.read(move |tx| {
            let mut out = Vec::new();
            for id in ids {
                out.extend(get_comment(tx, p, id)?);
            }
            Ok(out)
        })
        .await
    }

    /// Adds a comment by someone who may see the post and is a member (or, in a public
    /// community, anyone not banned). `seal(id)` seals the text. Returns the comment's number
    /// and its fan-out job (see [`Store::fan_out_step`]).
    #[allow(clippy::too_many_arguments)]
    pub async fn create_comment(
        &self,
        c: u64,
        p: u64,
        author: u64,
        parent: u64,
        quote: u64,
        now: Millis,
        call: Option<RemoteCall>,
        seal: impl Fn(u64) -> Result<Vec<u8>, StoreError> + Send + 'static,
    ) -> Result<Result<(u64, u64), CommunityRefusal>, StoreError> {
        self.write(move |tx| {
            let applied = (|| -> Result<Result<(u64, u64), CommunityRefusal>, StoreError> {
                let Some(post) = get_post(tx, p)?.filter(|x| x.community == c) else {
                    return Ok(Err(CommunityRefusal::NotFound));
                };
                let Some(community) = get_community(tx, c)? else {
                    return Ok(Err(CommunityRefusal::NotFound));
                };
                let banned = COMMUNITYNO_USERID_BAN.get(tx, &(c, author))?.is_some();
                let role = role_of(tx, c, author)?;
                let f = Facts {
                    community_public: community.public,
                    role,
                    banned,
                    is_author: post.author == author,
                    friends: post.visibility == PostVisibility::Friends
                        && post.author != author
                        && are_friends(tx, post.author, author)?,
                };
                if !may_see(post.visibility, &f) {
                    return Ok(Err(CommunityRefusal::NotFound));
                }
                if banned {
                    return Ok(Err(CommunityRefusal::Banned));
                }
                if role.is_none() {
                    return Ok(Err(CommunityRefusal::Forbidden(
                        "join the community to comment",
                    )));
                }
                if parent != 0 {
                    let Some(v) = POSTNO_COMMENTNO_COMMENT.get(tx, &(p, parent))? else {
                        return Ok(Err(CommunityRefusal::Conflict(
                            "the comment replied to is not on this post",
                        )));
                    };
                    if CommentRecord::decode(p, parent, &v)?.parent != 0 {
                        return Ok(Err(CommunityRefusal::Conflict(
                            "replies are one level deep: reply to the top-level comment",
                        )));
                    }
                }
                if quote != 0 && POSTNO_COMMENTNO_COMMENT.get(tx, &(p, quote))?.is_none() {
                    return Ok(Err(CommunityRefusal::Conflict(
                        "the comment quoted is not on this post",
                    )));
                }
                let id = crate::take_numbers(tx, "next_comment", 1)?;
                let rec = CommentRecord {
                    id,
                    post: p,
                    author,
                    parent,
                    quote,
                    created: now,
                    edited: None,
                    text_sealed: seal(id)?,
                };
                POSTNO_COMMENTNO_COMMENT.insert(tx, &(p, id), &rec.encode())?;
                USERID_COMMENTNO.insert(tx, &(author, id), &p)?;
                note_change(tx, SearchChange::Post(p))?;
                Ok(Ok((id, queue_fanout(tx, community.id, post.id, id)?)))
            })()?;
            record_call(tx, call.as_ref(), applied, |&(comment, _)| {
                CallOutcome::Comment(p, comment)
            })
        })
        .await
    }

    /// The author edits a comment's text.
    #[allow(clippy::too_many_arguments)]
    pub async fn edit_comment(
        &self,
        c: u64,
        p: u64,
        id: u64,
        author: u64,
        text_sealed: Vec<u8>,
        now: Millis,
        call: Option<RemoteCall>,
    ) -> Result<Result<(), CommunityRefusal>, StoreError> {
        self.write(move |tx| {
            let applied = (|| -> Result<Result<(), CommunityRefusal>, StoreError> {
                if get_post(tx, p)?.filter(|x| x.community == c).is_none() {
                    return Ok(Err(CommunityRefusal::NotFound));
                }
                let Some(mut rec) = get_comment(tx, p, id)? else {
                    return Ok(Err(CommunityRefusal::NotFound));
                };
                if rec.author != author {
                    return Ok(Err(CommunityRefusal::Forbidden(
                        "only its author edits a comment",
                    )));
                }
                rec.text_sealed = text_sealed.clone();
                rec.edited = Some(now);
                POSTNO_COMMENTNO_COMMENT.insert(tx, &(p, id), &rec.encode())?;
                note_change(tx, SearchChange::Post(p))?;
                Ok(Ok(()))
            })()?;
            record_call(tx, call.as_ref(), applied, |_| CallOutcome::Comment(p, id))
        })
        .await
    }

    /// Deletes a comment: by its author, or removed by a moderator (logged). A top-level
    /// comment's replies go first, at most `REMOVAL_BATCH` (512) a commit, each commit checking
    /// the actor may still remove it; the comment, the log entry and a remote call's record go
    /// in the last.
    pub async fn delete_comment(
        &self,
        c: u64,
        p: u64,
        id: u64,
        actor: u64,
        now: Millis,
        call: Option<RemoteCall>,
    ) -> Result<Result<(), CommunityRefusal>, StoreError> {
        self.remove_in_commits(call, move |tx| {
            if get_post(tx, p)?.filter(|x| x.community == c).is_none() {
                return Ok(Err(CommunityRefusal::NotFound));
            }
            let Some(rec) = get_comment(tx, p, id)? else {
                return Ok(Err(CommunityRefusal::NotFound));
            };
            let forbidden = "only its author or a moderator deletes a comment";
            if let Err(refused) = may_remove(tx, c, actor, rec.author, forbidden)? {
                return Ok(Err(refused));
            }
            // Search indexes comments by their post: the post's are read again.
            note_change(tx, SearchChange::Post(p))?;
            let mut budget = REMOVAL_BATCH;
            if !remove_comment_within(tx, &rec, &mut budget)? {
                return Ok(Ok(false));
            }
            let mut e = entry(now, actor, ModAction::RemoveComment, rec.author);
            e.post = p;
            e.comment = id;
            log_removal(tx, c, e)?;
            Ok(Ok(true))
        })
        .await
    }
}

pub(super) fn comment_count(tx: &impl kv::Read, p: u64) -> Result<u64, StoreError> {
    count_under(tx, POSTNO_COMMENTNO_COMMENT, p)
}
