//! Posts: creating one, reading one, the author's edit, and deletion by its author or a
//! moderator (its comments, favourites and media references go with it).

use redb::{ReadableTable, WriteTransaction};

use super::fanout::queue_fanout;
use super::moderation::{author_or_moderator, entry};
use super::visibility::{facts_r, sees_r};
use super::{CommentRecord, CommunityRefusal, ModAction, PostEdit, PostRecord, PostVisibility};
use super::{get_community_r, get_community_w, get_post_r, get_post_w, role_w};
use crate::catalog::*;
use crate::community_calls::{CallOutcome, RemoteCall, record_call};
use crate::search::{SearchChange, note_change};
use crate::{Store, StoreError};
use primitives::time::Millis;

/// Removes a post with its comments, favourites and media references.
pub(super) fn remove_post(tx: &WriteTransaction, post: &PostRecord) -> Result<(), StoreError> {
    tx.open_table(POSTNO_POST)?.remove(post.id)?;
    note_change(tx, SearchChange::Post(post.id))?;
    tx.open_table(COMMUNITYNO_POSTNO)?
        .remove((post.community, post.id))?;
    tx.open_table(USERID_POSTNO)?
        .remove((post.author, post.id))?;
    let comments: Vec<(u64, u64)> = {
        let t = tx.open_table(POSTNO_COMMENTNO_COMMENT)?;
        let mut out = Vec::new();
        for row in t.range((post.id, 0)..=(post.id, u64::MAX))? {
            let (k, v) = row?;
            let c = CommentRecord::decode(post.id, k.value().1, v.value())?;
            out.push((c.author, c.id));
        }
        out
    };
    {
        let mut by_user = tx.open_table(USERID_COMMENTNO)?;
        for (author, id) in &comments {
            by_user.remove((*author, *id))?;
        }
    }
    tx.open_table(POSTNO_COMMENTNO_COMMENT)?
        .retain_in((post.id, 0)..=(post.id, u64::MAX), |_, _| false)?;
    let fans: Vec<u64> = tx
        .open_table(POSTNO_USERID_FAVOURITE)?
        .range((post.id, 0)..=(post.id, u64::MAX))?
        .map(|r| r.map(|(k, _)| k.value().1))
        .collect::<Result<_, _>>()?;
    {
        let mut favs = tx.open_table(USERID_POSTNO_FAVOURITE)?;
        for u in &fans {
            favs.remove((*u, post.id))?;
        }
    }
    tx.open_table(POSTNO_USERID_FAVOURITE)?
        .retain_in((post.id, 0)..=(post.id, u64::MAX), |_, _| false)?;
    let mut refs = tx.open_table(MEDIAID_COMMUNITYNO_POSTNO)?;
    for m in &post.media {
        refs.remove((m.as_str(), post.community, post.id))?;
    }
    Ok(())
}

impl Store {
    /// Stores a new post by a member; `seal(id)` seals body and place under the author's
    /// key for the number assigned. Media must be the author's (checked by the domain).
    /// Returns the post's number and its fan-out job (see [`Store::fan_out_step`]).
    #[allow(clippy::too_many_arguments)]
    pub async fn create_post(
        &self,
        c: u64,
        author: u64,
        visibility: PostVisibility,
        media: Vec<String>,
        now: Millis,
        call: Option<RemoteCall>,
        seal: impl Fn(u64) -> Result<(Vec<u8>, Vec<u8>), StoreError> + Send + 'static,
    ) -> Result<Result<(u64, u64), CommunityRefusal>, StoreError> {
        self.write(move |tx| {
            let applied = (|| -> Result<Result<(u64, u64), CommunityRefusal>, StoreError> {
                let Some(community) = get_community_w(tx, c)? else {
                    return Ok(Err(CommunityRefusal::NotFound));
                };
                if tx
                    .open_table(COMMUNITYNO_USERID_BAN)?
                    .get((c, author))?
                    .is_some()
                {
                    return Ok(Err(CommunityRefusal::Banned));
                }
                if role_w(tx, c, author)?.is_none() {
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
                tx.open_table(POSTNO_POST)?
                    .insert(id, post.encode().as_slice())?;
                note_change(tx, SearchChange::Post(id))?;
                tx.open_table(COMMUNITYNO_POSTNO)?.insert((c, id), ())?;
                tx.open_table(USERID_POSTNO)?.insert((author, id), ())?;
                {
                    let mut refs = tx.open_table(MEDIAID_COMMUNITYNO_POSTNO)?;
                    for m in &media {
                        refs.insert((m.as_str(), c, id), ())?;
                    }
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
            let Some(post) = get_post_r(tx, p)? else {
                return Ok(None);
            };
            if post.community != c {
                return Ok(None);
            }
            let Some(community) = get_community_r(tx, c)? else {
                return Ok(None);
            };
            let facts = facts_r(tx, &community, viewer)?;
            if !sees_r(tx, &facts, &post, viewer)? {
                return Ok(None);
            }
            let comments = tx
                .open_table(POSTNO_COMMENTNO_COMMENT)?
                .range((p, 0)..=(p, u64::MAX))?
                .count() as u64;
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
                let Some(mut post) = get_post_w(tx, p)?.filter(|x| x.community == c) else {
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
                    let mut refs = tx.open_table(MEDIAID_COMMUNITYNO_POSTNO)?;
                    for old in &post.media {
                        refs.remove((old.as_str(), c, p))?;
                    }
                    for new in m {
                        refs.insert((new.as_str(), c, p), ())?;
                    }
                    post.media = m.clone();
                }
                post.edited = Some(now);
                tx.open_table(POSTNO_POST)?
                    .insert(p, post.encode().as_slice())?;
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
                let Some(post) = get_post_w(tx, p)?.filter(|x| x.community == c) else {
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
