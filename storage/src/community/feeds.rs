//! Feeds: one community's posts and the posts across every community of a member, newest
//! first, paged by number, each with its comment count.

use std::collections::BTreeMap;
use std::ops::Bound;

use super::comments::comment_count;
use super::visibility::{Facts, facts_r, sees_r};
use super::{CommunityRecord, PostRecord};
use super::{each_row, get_community, get_post};
use crate::catalog::*;
use crate::kv;
use crate::{Store, StoreError};

impl Store {
    /// Posts of community `c` that `viewer` may see, newest first, numbered below `before`.
    /// None if `viewer` may not read the community at all.
    pub async fn community_posts(
        &self,
        c: u64,
        viewer: u64,
        before: u64,
        limit: usize,
    ) -> Result<Option<Vec<(PostRecord, u64)>>, StoreError> {
        self.read(move |tx| {
            let Some(community) = get_community(tx, c)? else {
                return Ok(None);
            };
            let facts = facts_r(tx, &community, viewer)?;
            if !(community.public || facts.role.is_some()) || facts.banned {
                return Ok(None);
            }
            Ok(Some(page_of(
                tx,
                &[(community, facts)],
                viewer,
                before,
                limit,
            )?))
        })
        .await
    }

    /// Posts across every community `viewer` is a member of, newest first, below `before`.
    pub async fn my_feed(
        &self,
        viewer: u64,
        before: u64,
        limit: usize,
    ) -> Result<Vec<(PostRecord, u64)>, StoreError> {
        self.read(move |tx| {
            let mine = USERID_COMMUNITYNO.prefixed_in_pages(tx, &viewer, super::PAGE)?;
            let mut sources = Vec::new();
            for ((_, c), _) in mine {
                if let Some(community) = get_community(tx, c)? {
                    let f = facts_r(tx, &community, viewer)?;
                    sources.push((community, f));
                }
            }
            page_of(tx, &sources, viewer, before, limit)
        })
        .await
    }
}

/// The newest `limit` posts below `before` across `sources` that `viewer` may see, with their
/// comment counts. Each community contributes at most `limit` candidates it reads newest first.
fn page_of(
    tx: &impl kv::Read,
    sources: &[(CommunityRecord, Facts)],
    viewer: u64,
    before: u64,
    limit: usize,
) -> Result<Vec<(PostRecord, u64)>, StoreError> {
    let mut found: BTreeMap<u64, PostRecord> = BTreeMap::new();
    for (community, facts) in sources {
        if facts.banned {
            continue;
        }
        let mut taken = 0;
        each_row(
            tx,
            COMMUNITYNO_POSTNO,
            Bound::Included((community.id, 0)),
            Bound::Excluded((community.id, before)),
            kv::Order::Descending,
            |(_, p), ()| {
                // Older than everything already kept in a full page: nothing further here helps.
                if found.len() >= limit && found.keys().next().is_some_and(|k| p < *k) {
                    return Ok(false);
                }
                let Some(post) = get_post(tx, p)? else {
                    return Ok(true);
                };
                if sees_r(tx, facts, &post, viewer)? {
                    found.insert(p, post);
                    taken += 1;
                    while found.len() > limit {
                        found.pop_first();
                    }
                    if taken >= limit {
                        return Ok(false);
                    }
                }
                Ok(true)
            },
        )?;
    }
    let mut out = Vec::with_capacity(found.len());
    for (p, post) in found.into_iter().rev() {
        out.push((post, comment_count(tx, p)?));
    }
    Ok(out)
}
