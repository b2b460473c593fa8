//! Comments, one level deep, quoting by reference: a post's comments, the quoted ones,
//! creating one, the author's edit, deletion by its author or a moderator, and a post's count.

use std::ops::Bound;

use redb::WriteTransaction;

use super::fanout::queue_fanout;
use super::moderation::{author_or_moderator, entry};
use super::visibility::{Facts, are_friends, facts_r, may_see, sees_r};
use super::{CommentRecord, CommunityRefusal, ModAction, PostVisibility};
use super::{count_under, each_row, get_comment, get_community, get_post, role_of};
use crate::catalog::*;
use crate::community_calls::{CallOutcome, RemoteCall, record_call};
use crate::kv;
use crate::search::{SearchChange, note_change};
use crate::{Store, StoreError};
use primitives::time::Millis;

/// Removes one comment; a top-level comment takes its replies with it (the post's later
/// comments are read a page at a time to find them). Quotes of it stay references to a
/// comment that is gone.
fn remove_comment(tx: &WriteTransaction, c: &CommentRecord) -> Result<u64, StoreError> {
    let mut gone = vec![(c.author, c.id)];
    if c.parent == 0 {
        each_row(
            tx,
            POSTNO_COMMENTNO_COMMENT,
            Bound::Excluded((c.post, c.id)),
            Bound::Included((c.post, u64::MAX)),
            kv::Order::Ascending,
            |(_, id), v| {
                let r = CommentRecord::decode(c.post, id, &v)?;
                if r.parent == c.id {
                    gone.push((r.author, r.id));
                }
                Ok(true)
            },
        )?;
    }
    // Search indexes comments by their post: the post's comments are read again.
    note_change(tx, SearchChange::Post(c.post))?;
    for (author, id) in &gone {
        POSTNO_COMMENTNO_COMMENT.remove(tx, &(c.post, *id))?;
        USERID_COMMENTNO.remove(tx, &(*author, *id))?;
    }
    Ok(gone.len() as u64)
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

    /// Deletes a comment: by its author, or removed by a moderator (logged).
    pub async fn delete_comment(
        &self,
        c: u64,
        p: u64,
        id: u64,
        actor: u64,
        now: Millis,
        call: Option<RemoteCall>,
    ) -> Result<Result<(), CommunityRefusal>, StoreError> {
        self.write(move |tx| {
            let applied = (|| -> Result<Result<(), CommunityRefusal>, StoreError> {
                if get_post(tx, p)?.filter(|x| x.community == c).is_none() {
                    return Ok(Err(CommunityRefusal::NotFound));
                }
                let Some(rec) = get_comment(tx, p, id)? else {
                    return Ok(Err(CommunityRefusal::NotFound));
                };
                let mut e = entry(now, actor, ModAction::RemoveComment, rec.author);
                e.post = p;
                e.comment = id;
                if let Err(refused) = author_or_moderator(
                    tx,
                    c,
                    e,
                    "only its author or a moderator deletes a comment",
                )? {
                    return Ok(Err(refused));
                }
                remove_comment(tx, &rec)?;
                Ok(Ok(()))
            })()?;
            record_call(tx, call.as_ref(), applied, |_| CallOutcome::Done)
        })
        .await
    }
}

pub(super) fn comment_count(tx: &impl kv::Read, p: u64) -> Result<u64, StoreError> {
    count_under(tx, POSTNO_COMMENTNO_COMMENT, p)
}
