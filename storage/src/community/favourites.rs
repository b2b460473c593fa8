//! Favourites: each user's private list of posts, read back as the ones they may still see.

use std::ops::Bound;

use super::comments::comment_count;
use super::visibility::{Facts, are_friends, facts_r, may_see, sees_r};
use super::{CommunityRefusal, PostRecord, PostVisibility};
use super::{each_row, get_community, get_post, role_of};
use crate::catalog::*;
use crate::community_calls::{CallOutcome, RemoteCall, record_call};
use crate::kv;
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
                    USERID_POSTNO_FAVOURITE.remove(tx, &(user, p))?;
                    POSTNO_USERID_FAVOURITE.remove(tx, &(p, user))?;
                    return Ok(Ok(()));
                }
                let Some(post) = get_post(tx, p)?.filter(|x| x.community == c) else {
                    return Ok(Err(CommunityRefusal::NotFound));
                };
                let Some(community) = get_community(tx, c)? else {
                    return Ok(Err(CommunityRefusal::NotFound));
                };
                let f = Facts {
                    community_public: community.public,
                    role: role_of(tx, c, user)?,
                    banned: COMMUNITYNO_USERID_BAN.get(tx, &(c, user))?.is_some(),
                    is_author: post.author == user,
                    friends: post.visibility == PostVisibility::Friends
                        && post.author != user
                        && are_friends(tx, post.author, user)?,
                };
                if !may_see(post.visibility, &f) {
                    return Ok(Err(CommunityRefusal::NotFound));
                }
                USERID_POSTNO_FAVOURITE.insert(tx, &(user, p), &now.0)?;
                POSTNO_USERID_FAVOURITE.insert(tx, &(p, user), &())?;
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
            each_row(
                tx,
                USERID_POSTNO_FAVOURITE,
                Bound::Included((user, 0)),
                Bound::Excluded((user, before)),
                kv::Order::Descending,
                |(_, p), _| {
                    let Some(post) =
                        get_post(tx, p)?.filter(|x| only.is_none_or(|c| x.community == c))
                    else {
                        return Ok(true);
                    };
                    let Some(community) = get_community(tx, post.community)? else {
                        return Ok(true);
                    };
                    let facts = facts_r(tx, &community, user)?;
                    if !sees_r(tx, &facts, &post, user)? {
                        return Ok(true);
                    }
                    let n = comment_count(tx, p)?;
                    out.push((post, n));
                    Ok(out.len() < limit)
                },
            )?;
            Ok(out)
        })
        .await
    }

    /// Which of `posts` `user` has favoured.
    pub async fn favoured(&self, user: u64, posts: Vec<u64>) -> Result<Vec<u64>, StoreError> {
        self.read(move |tx| {
            let mut out = Vec::new();
            for p in posts {
                if USERID_POSTNO_FAVOURITE.get(tx, &(user, p))?.is_some() {
                    out.push(p);
                }
            }
            Ok(out)
        })
        .await
    }
}
