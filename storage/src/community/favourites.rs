//! Favourites: each user's private list of posts, read back as the ones they may still see.

use redb::ReadableTable;

use super::comments::comment_count;
use super::visibility::{Facts, are_friends_w, facts_r, may_see, sees_r};
use super::{CommunityRefusal, PostRecord, PostVisibility};
use super::{get_community_r, get_community_w, get_post_r, get_post_w, role_w};
use crate::catalog::*;
use crate::community_calls::{CallOutcome, RemoteCall, record_call};
use crate::{Store, StoreError};
use primitives::time::Millis;

impl Store {
    /// Adds (`on`) or removes a favourite. Adding needs the post to be visible to `user`.
    pub async fn set_favourite(
        &self,
        c: u64,
        p: u64,
        user: u64,
        on: bool,
        now: Millis,
        call: Option<RemoteCall>,
    ) -> Result<Result<(), CommunityRefusal>, StoreError> {
        self.write(move |tx| {
            let applied = (|| -> Result<Result<(), CommunityRefusal>, StoreError> {
                if !on {
                    tx.open_table(USERID_POSTNO_FAVOURITE)?.remove((user, p))?;
                    tx.open_table(POSTNO_USERID_FAVOURITE)?.remove((p, user))?;
                    return Ok(Ok(()));
                }
                let Some(post) = get_post_w(tx, p)?.filter(|x| x.community == c) else {
                    return Ok(Err(CommunityRefusal::NotFound));
                };
                let Some(community) = get_community_w(tx, c)? else {
                    return Ok(Err(CommunityRefusal::NotFound));
                };
                let f = Facts {
                    community_public: community.public,
                    role: role_w(tx, c, user)?,
                    banned: tx
                        .open_table(COMMUNITYNO_USERID_BAN)?
                        .get((c, user))?
                        .is_some(),
                    is_author: post.author == user,
                    friends: post.visibility == PostVisibility::Friends
                        && post.author != user
                        && are_friends_w(tx, post.author, user)?,
                };
                if !may_see(post.visibility, &f) {
                    return Ok(Err(CommunityRefusal::NotFound));
                }
                tx.open_table(USERID_POSTNO_FAVOURITE)?
                    .insert((user, p), now.0)?;
                tx.open_table(POSTNO_USERID_FAVOURITE)?
                    .insert((p, user), ())?;
                Ok(Ok(()))
            })()?;
            record_call(tx, call.as_ref(), applied, |_| CallOutcome::Done)
        })
        .await
    }

    /// `user`'s favourites that they may still see, newest post first, below `before`; in
    /// community `only` alone when given.
    pub async fn favourites(
        &self,
        user: u64,
        before: u64,
        limit: usize,
        only: Option<u64>,
    ) -> Result<Vec<(PostRecord, u64)>, StoreError> {
        self.read(move |tx| {
            let mut out = Vec::new();
            for row in tx
                .open_table(USERID_POSTNO_FAVOURITE)?
                .range((user, 0)..(user, before))?
                .rev()
            {
                let p = row?.0.value().1;
                let Some(post) =
                    get_post_r(tx, p)?.filter(|x| only.is_none_or(|c| x.community == c))
                else {
                    continue;
                };
                let Some(community) = get_community_r(tx, post.community)? else {
                    continue;
                };
                let facts = facts_r(tx, &community, user)?;
                if sees_r(tx, &facts, &post, user)? {
                    let n = comment_count(tx, p)?;
                    out.push((post, n));
                    if out.len() >= limit {
                        break;
                    }
                }
            }
            Ok(out)
        })
        .await
    }

    /// Which of `posts` `user` has favoured.
    pub async fn favoured(&self, user: u64, posts: Vec<u64>) -> Result<Vec<u64>, StoreError> {
        self.read(move |tx| {
            let t = tx.open_table(USERID_POSTNO_FAVOURITE)?;
            let mut out = Vec::new();
            for p in posts {
                if t.get((user, p))?.is_some() {
                    out.push(p);
                }
            }
            Ok(out)
        })
        .await
    }
}
