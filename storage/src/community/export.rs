//! What the export reads of communities: the posts and comments a user wrote, and their
//! favourites.

use super::get_post_r;
use super::{CommentRecord, PostRecord};
use crate::catalog::*;
use crate::{Store, StoreError};
use primitives::time::Millis;

impl Store {
    /// Every post and comment `user` wrote, and their favourites as (post, community, time)
    /// (for the export).
    #[allow(clippy::type_complexity)]
    pub async fn community_data_of(
        &self,
        user: u64,
    ) -> Result<(Vec<PostRecord>, Vec<CommentRecord>, Vec<(u64, u64, Millis)>), StoreError> {
        self.read(move |tx| {
            let mut posts = Vec::new();
            for row in tx
                .open_table(USERID_POSTNO)?
                .range((user, 0)..=(user, u64::MAX))?
            {
                let p = row?.0.value().1;
                if let Some(post) = get_post_r(tx, p)? {
                    posts.push(post);
                }
            }
            let mut comments = Vec::new();
            let t = tx.open_table(POSTNO_COMMENTNO_COMMENT)?;
            for row in tx
                .open_table(USERID_COMMENTNO)?
                .range((user, 0)..=(user, u64::MAX))?
            {
                let (k, v) = row?;
                let (id, p) = (k.value().1, v.value());
                if let Some(v) = t.get((p, id))? {
                    comments.push(CommentRecord::decode(p, id, v.value())?);
                }
            }
            let mut favs = Vec::new();
            for row in tx
                .open_table(USERID_POSTNO_FAVOURITE)?
                .range((user, 0)..=(user, u64::MAX))?
            {
                let (k, v) = row?;
                let p = k.value().1;
                if let Some(post) = get_post_r(tx, p)? {
                    favs.push((p, post.community, Millis(v.value())));
                }
            }
            Ok((posts, comments, favs))
        })
        .await
    }
}
