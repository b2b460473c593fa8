//! Comments, one level deep, quoting by reference: a post's comments, the quoted ones,
//! creating one, the author's edit, deletion by its author or a moderator, and a post's count.

use redb::{ReadTransaction, ReadableTable, WriteTransaction};

use super::fanout::queue_fanout;
use super::moderation::{author_or_moderator, entry};
use super::visibility::{Facts, are_friends_w, facts_r, may_see, sees_r};
use super::{CommentRecord, CommunityRefusal, ModAction, PostVisibility};
use super::{get_community_r, get_community_w, get_post_r, get_post_w, role_w};
use crate::catalog::*;
use crate::community_calls::{CallOutcome, RemoteCall, record_call};
use crate::search::{SearchChange, note_change};
use crate::{Store, StoreError};
use primitives::time::Millis;

/// Removes one comment; a top-level comment takes its replies with it. Quotes of it stay
/// references to a comment that is gone.
fn remove_comment(tx: &WriteTransaction, c: &CommentRecord) -> Result<u64, StoreError> {
    let mut gone = vec![(c.author, c.id)];
    if c.parent == 0 {
        let t = tx.open_table(POSTNO_COMMENTNO_COMMENT)?;
        for row in t.range((c.post, c.id + 1)..=(c.post, u64::MAX))? {
            let (k, v) = row?;
            let r = CommentRecord::decode(c.post, k.value().1, v.value())?;
            if r.parent == c.id {
                gone.push((r.author, r.id));
            }
        }
    }
    // Search indexes comments by their post: the post's comments are read again.
    note_change(tx, SearchChange::Post(c.post))?;
    let mut t = tx.open_table(POSTNO_COMMENTNO_COMMENT)?;
    let mut by_user = tx.open_table(USERID_COMMENTNO)?;
    for (author, id) in &gone {
        t.remove((c.post, *id))?;
        by_user.remove((*author, *id))?;
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
            let Some(post) = get_post_r(tx, p)?.filter(|x| x.community == c) else {
                return Ok(None);
            };
            let Some(community) = get_community_r(tx, c)? else {
                return Ok(None);
            };
            let facts = facts_r(tx, &community, viewer)?;
            if !sees_r(tx, &facts, &post, viewer)? {
                return Ok(None);
            }
            let mut out = Vec::new();
            for row in tx
                .open_table(POSTNO_COMMENTNO_COMMENT)?
                .range((p, after.saturating_add(1))..=(p, u64::MAX))?
                .take(limit)
            {
                let (k, v) = row?;
                out.push(CommentRecord::decode(p, k.value().1, v.value())?);
            }
            Ok(Some(out))
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
            let t = tx.open_table(POSTNO_COMMENTNO_COMMENT)?;
            let mut out = Vec::new();
            for id in ids {
                if let Some(v) = t.get((p, id))? {
                    out.push(CommentRecord::decode(p, id, v.value())?);
                }
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
                let Some(post) = get_post_w(tx, p)?.filter(|x| x.community == c) else {
                    return Ok(Err(CommunityRefusal::NotFound));
                };
                let Some(community) = get_community_w(tx, c)? else {
                    return Ok(Err(CommunityRefusal::NotFound));
                };
                let banned = tx
                    .open_table(COMMUNITYNO_USERID_BAN)?
                    .get((c, author))?
                    .is_some();
                let role = role_w(tx, c, author)?;
                let f = Facts {
                    community_public: community.public,
                    role,
                    banned,
                    is_author: post.author == author,
                    friends: post.visibility == PostVisibility::Friends
                        && post.author != author
                        && are_friends_w(tx, post.author, author)?,
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
                {
                    let t = tx.open_table(POSTNO_COMMENTNO_COMMENT)?;
                    if parent != 0 {
                        let Some(v) = t.get((p, parent))? else {
                            return Ok(Err(CommunityRefusal::Conflict(
                                "the comment replied to is not on this post",
                            )));
                        };
                        if CommentRecord::decode(p, parent, v.value())?.parent != 0 {
                            return Ok(Err(CommunityRefusal::Conflict(
                                "replies are one level deep: reply to the top-level comment",
                            )));
                        }
                    }
                    if quote != 0 && t.get((p, quote))?.is_none() {
                        return Ok(Err(CommunityRefusal::Conflict(
                            "the comment quoted is not on this post",
                        )));
                    }
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
                tx.open_table(POSTNO_COMMENTNO_COMMENT)?
                    .insert((p, id), rec.encode().as_slice())?;
                tx.open_table(USERID_COMMENTNO)?.insert((author, id), p)?;
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
                if get_post_w(tx, p)?.filter(|x| x.community == c).is_none() {
                    return Ok(Err(CommunityRefusal::NotFound));
                }
                let mut t = tx.open_table(POSTNO_COMMENTNO_COMMENT)?;
                let found = t
                    .get((p, id))?
                    .map(|v| CommentRecord::decode(p, id, v.value()));
                let Some(mut rec) = found.transpose()? else {
                    return Ok(Err(CommunityRefusal::NotFound));
                };
                if rec.author != author {
                    return Ok(Err(CommunityRefusal::Forbidden(
                        "only its author edits a comment",
                    )));
                }
                rec.text_sealed = text_sealed.clone();
                rec.edited = Some(now);
                t.insert((p, id), rec.encode().as_slice())?;
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
                if get_post_w(tx, p)?.filter(|x| x.community == c).is_none() {
                    return Ok(Err(CommunityRefusal::NotFound));
                }
                let found = tx
                    .open_table(POSTNO_COMMENTNO_COMMENT)?
                    .get((p, id))?
                    .map(|v| CommentRecord::decode(p, id, v.value()));
                let Some(rec) = found.transpose()? else {
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

pub(super) fn comment_count(tx: &ReadTransaction, p: u64) -> Result<u64, StoreError> {
    Ok(tx
        .open_table(POSTNO_COMMENTNO_COMMENT)?
        .range((p, 0)..=(p, u64::MAX))?
        .count() as u64)
}
