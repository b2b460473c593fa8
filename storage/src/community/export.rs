//! What the export reads of communities: the posts and comments a user wrote, and their
//! favourites.

use super::{CommentRecord, PostRecord};
use super::{get_comment, get_post};
use crate::catalog::*;
use crate::{Store, StoreError};
use primitives::time::Millis;

impl Store {
    /// Every post and comment `user` wrote, and their favourites as (post, community, time)
    /// (for the export), each list read a page at a time.
    #[allow(clippy::type_complexity)]
    pub async fn community_data_of(
        &self,
        user: u64,
    ) -> Result<(Vec<PostRecord>, Vec<CommentRecord>, Vec<(u64, u64, Millis)>), StoreError> {
        self.read(move |tx| {
            let page = super::PAGE;
            let mut posts = Vec::new();
            for ((_, p), ()) in USERID_POSTNO.prefixed_in_pages(tx, &user, page)? {
                posts.extend(get_post(tx, p)?);
            }
            let mut comments = Vec::new();
            for ((_, id), p) in USERID_COMMENTNO.prefixed_in_pages(tx, &user, page)? {
                comments.extend(get_comment(tx, p, id)?);
            }
            let mut favs = Vec::new();
            for ((_, p), at) in USERID_POSTNO_FAVOURITE.prefixed_in_pages(tx, &user, page)? {
                if let Some(post) = get_post(tx, p)? {
                    favs.push((p, post.community, Millis(at)));
                }
            }
            Ok((posts, comments, favs))
        })
        .await
    }
}
