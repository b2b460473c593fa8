//! Posts: creating one, reading one, the author's edit, and deletion by its author or a
//! moderator (its comments, favourites and media references go with it).

use redb::WriteTransaction;

use super::fanout::queue_fanout;
use super::moderation::{author_or_moderator, entry};
use super::visibility::{facts_r, sees_r};
use super::{CommentRecord, CommunityRefusal, ModAction, PostEdit, PostRecord, PostVisibility};
use super::{count_under, get_community, get_post, remove_under, role_of};
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

    /// Deletes a post: by its author, or removed by a moderator (logged). Its comments,
    /// favourites and media references go with it.
    pub async fn delete_post(
        &self,
        c: u64,
        p: u64,
        actor: u64,
        now: Millis,
        call: Option<RemoteCall>,
    ) -> Result<Result<(), CommunityRefusal>, StoreError> {
        self.write(move |tx| {
            let applied = (|| -> Result<Result<(), CommunityRefusal>, StoreError> {
                let Some(post) = get_post(tx, p)?.filter(|x| x.community == c) else {
                    return Ok(Err(CommunityRefusal::NotFound));
                };
                let mut e = entry(now, actor, ModAction::RemovePost, post.author);
                e.post = p;
                if let Err(refused) =
                    author_or_moderator(tx, c, e, "only its author or a moderator deletes a post")?
                {
                    return Ok(Err(refused));
                }
                remove_post(tx, &post)?;
                Ok(Ok(()))
            })()?;
            record_call(tx, call.as_ref(), applied, |_| CallOutcome::Done)
        })
        .await
    }
}
