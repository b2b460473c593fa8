//! Search over communities and posts (policy 1.5): the in-memory index of community names and
//! descriptions and of post texts (derived personal data: never written to disk), which the
//! indexer keeps level with the store's search-change rows, and the two scopes' queries.
//!
//! Who may see what is the communities' one rule, `storage::may_see`: hits are first filtered
//! in memory with the facts known here (the viewer's roles and friends, each post's community,
//! author and visibility, each community's visibility), then every hit on a page is checked in
//! the store (`Store::posts_seen_by`, `Store::communities_read_by`, which also know bans and
//! read the current records) and its text opened again from the store: a post or community
//! that is gone, or whose author is erased, is dropped from the index at once; one the viewer
//! may not see is skipped.

use std::collections::HashMap;
use std::sync::Arc;

use super::index::{Cursor, MessageIndex, NewDoc, cursor_of};
use super::text::{self, Query};
use super::{Page, Search, SearchError, Spans, cursor_text};
use crate::community::{community_id, post_text};
use crate::time::Millis;
use storage::{CommunityRecord, PostFacts, PostRecord, PostVisibility, Seen, SocialView, may_see};

/// Rounds of (index page, store check) one query runs before it answers with a cursor.
const ROUNDS: usize = 4;

#[derive(Debug, Clone)]
pub struct CommunityHit {
    pub id: String,
    pub name: String,
    pub name_spans: Spans,
    /// A window of the description around its first match.
    pub description: String,
    pub description_spans: Spans,
    pub public: bool,
    pub member: bool,
}

#[derive(Debug, Clone)]
pub struct PostHit {
    pub community: String,
    pub community_name: String,
    pub post: u64,
    pub author: String,
    pub created: Millis,
    pub snippet: String,
    pub spans: Spans,
}

#[derive(Debug, Clone, Copy)]
struct PostMeta {
    community: u64,
    author: u64,
    visibility: PostVisibility,
}

#[derive(Debug, Clone)]
struct CommunityMeta {
    public: bool,
    name: String,
}

/// The indexed communities and posts. Posts are documents keyed (community, post) with the
/// post number as their position (numbers grow with time: equal scores go newest first);
/// communities are documents keyed (community, 0) holding name and description.
#[derive(Debug, Default)]
pub struct Social {
    posts: MessageIndex,
    post_meta: HashMap<u64, PostMeta>,
    communities: MessageIndex,
    community_meta: HashMap<u64, CommunityMeta>,
}

impl Social {
    /// Indexes (or re-indexes) a post with its opened text; a post without text is not
    /// indexed.
    pub fn put_post(&mut self, post: &PostRecord, text: String) {
        self.drop_post(post.id);
        if text.trim().is_empty() {
            return;
        }
        self.posts.insert(NewDoc {
            conv: post.community,
            seq: post.id,
            pos: post.id,
            author: post.author,
            text,
        });
        self.post_meta.insert(
            post.id,
            PostMeta {
                community: post.community,
                author: post.author,
                visibility: post.visibility,
            },
        );
    }

    pub fn drop_post(&mut self, post: u64) {
        if let Some(m) = self.post_meta.remove(&post) {
            self.posts.remove(&[(m.community, post)]);
        }
    }

    /// Forgets every post of `author` (their erasure has begun).
    pub fn drop_author(&mut self, author: u64) {
        let theirs: Vec<u64> = self
            .post_meta
            .iter()
            .filter(|(_, m)| m.author == author)
            .map(|(p, _)| *p)
            .collect();
        for p in theirs {
            self.drop_post(p);
        }
    }

    pub fn put_community(&mut self, c: &CommunityRecord) {
        self.drop_community(c.id);
        self.communities.insert(NewDoc {
            conv: c.id,
            seq: 0,
            pos: c.created.0,
            author: c.owner,
            text: format!("{}\n{}", c.name, c.description),
        });
        self.community_meta.insert(
            c.id,
            CommunityMeta {
                public: c.public,
                name: c.name.clone(),
            },
        );
    }

    pub fn drop_community(&mut self, c: u64) {
        if self.community_meta.remove(&c).is_some() {
            self.communities.remove(&[(c, 0)]);
        }
    }

    /// Every indexed post: (number, author).
    pub fn post_keys(&self) -> Vec<(u64, u64)> {
        self.post_meta.iter().map(|(p, m)| (*p, m.author)).collect()
    }

    /// (posts, communities) indexed.
    #[cfg(test)]
    pub fn counts(&self) -> (usize, usize) {
        (self.post_meta.len(), self.community_meta.len())
    }

    /// Whether `viewer` may see post `p` by what is known here (the store checks again).
    fn post_visible(&self, view: &SocialView, viewer: u64, p: u64) -> bool {
        let Some(m) = self.post_meta.get(&p) else {
            return false;
        };
        let Some(c) = self.community_meta.get(&m.community) else {
            return false;
        };
        let f = PostFacts {
            community_public: c.public,
            role: view.roles.get(&m.community).copied(),
            banned: false,
            is_author: m.author == viewer,
            friends: view.friends.contains(&m.author),
        };
        may_see(m.visibility, &f)
    }

    fn community_visible(&self, view: &SocialView, c: u64) -> bool {
        view.roles.contains_key(&c) || self.community_meta.get(&c).is_some_and(|m| m.public)
    }
}

impl Search {
    /// Communities `user` may read whose name or description matches.
    pub(super) async fn communities(
        &self,
        user: u64,
        q: &Query,
        mut after: Option<Cursor>,
        limit: usize,
    ) -> Result<Page<CommunityHit>, SearchError> {
        let view = Arc::new(self.inner.store.social_view(user).await?);
        self.caught_up(view.head).await;
        let q = Arc::new(q.clone());
        let mut items = Vec::new();
        let mut next = None;
        let mut rounds = 0;
        loop {
            rounds += 1;
            let want = limit - items.len() + 1;
            let (v, qq) = (view.clone(), q.clone());
            let hits = self
                .read_social(move |s| {
                    s.communities
                        .search(&qq, |c, _, _| s.community_visible(&v, c), after, want)
                })
                .await?;
            let exhausted = hits.len() < want;
            let seen = self
                .inner
                .store
                .communities_read_by(user, hits.iter().map(|h| h.conv).collect())
                .await?;
            let mut dead = Vec::new();
            for (hit, seen) in hits.iter().zip(seen) {
                if items.len() == limit {
                    next = after.map(cursor_text);
                    break;
                }
                after = Some(cursor_of(hit));
                match seen {
                    Seen::Gone => dead.push(hit.conv),
                    Seen::Hidden => {}
                    Seen::Shown(c) => {
                        // Read again from the store: a change not yet indexed may not match.
                        if let Some((name_spans, d)) =
                            super::two_fields(&q, &c.name, &c.description)
                        {
                            let (description, description_spans) =
                                text::snippet(&c.description, &d);
                            items.push(CommunityHit {
                                id: community_id(c.id),
                                member: view.roles.contains_key(&c.id),
                                name: c.name,
                                name_spans,
                                description,
                                description_spans,
                                public: c.public,
                            });
                        }
                    }
                }
            }
            if !dead.is_empty() {
                self.write_social(move |s| {
                    for c in dead {
                        s.drop_community(c);
                    }
                })
                .await?;
            }
            if next.is_some() || exhausted {
                break;
            }
            if rounds == ROUNDS {
                // Not exhausted: the next page goes on from here.
                next = after.map(cursor_text);
                break;
            }
        }
        Ok(Page { items, next })
    }

    /// Posts `user` may see whose text matches, in communities they may read.
    pub(super) async fn posts(
        &self,
        user: u64,
        q: &Query,
        mut after: Option<Cursor>,
        limit: usize,
    ) -> Result<Page<PostHit>, SearchError> {
        let view = Arc::new(self.inner.store.social_view(user).await?);
        self.caught_up(view.head).await;
        let q = Arc::new(q.clone());
        let mut items = Vec::new();
        let mut next = None;
        let mut rounds = 0;
        loop {
            rounds += 1;
            let want = limit - items.len() + 1;
            let (v, qq) = (view.clone(), q.clone());
            let (hits, names) = self
                .read_social(move |s| {
                    let hits =
                        s.posts
                            .search(&qq, |_, p, _| s.post_visible(&v, user, p), after, want);
                    let names: HashMap<u64, String> = hits
                        .iter()
                        .filter_map(|h| Some((h.conv, s.community_meta.get(&h.conv)?.name.clone())))
                        .collect();
                    (hits, names)
                })
                .await?;
            let exhausted = hits.len() < want;
            let seen = self
                .inner
                .store
                .posts_seen_by(user, hits.iter().map(|h| h.seq).collect())
                .await?;
            let keys = self.authors(hits.iter().map(|h| h.author)).await?;
            let mut dead = Vec::new();
            for (hit, seen) in hits.iter().zip(seen) {
                if items.len() == limit {
                    next = after.map(cursor_text);
                    break;
                }
                after = Some(cursor_of(hit));
                let post = match seen {
                    Seen::Gone => {
                        dead.push(hit.seq);
                        continue;
                    }
                    Seen::Hidden => continue,
                    Seen::Shown(p) => p,
                };
                // The author erased (no key): nothing of theirs is shown, or kept.
                let Some((handle, wrapped)) = keys.get(&post.author) else {
                    dead.push(hit.seq);
                    continue;
                };
                let key = self.inner.master.unwrap_data_key(post.author, wrapped)?;
                let t = match post_text(&key, &post) {
                    Ok(t) => t,
                    Err(e) => {
                        tracing::warn!(error = %e, "a post did not open for search");
                        dead.push(hit.seq);
                        continue;
                    }
                };
                let (spans, _) = text::find(&q, &t);
                if spans.is_empty() {
                    // Edited since it was indexed; the catch-up indexes the new text.
                    continue;
                }
                let (snippet, spans) = text::snippet(&t, &spans);
                items.push(PostHit {
                    community: community_id(post.community),
                    community_name: names.get(&post.community).cloned().unwrap_or_default(),
                    post: post.id,
                    author: self.inner.messaging.address(handle),
                    created: post.created,
                    snippet,
                    spans,
                });
            }
            if !dead.is_empty() {
                self.write_social(move |s| {
                    for p in dead {
                        s.drop_post(p);
                    }
                })
                .await?;
            }
            if next.is_some() || exhausted {
                break;
            }
            if rounds == ROUNDS {
                next = after.map(cursor_text);
                break;
            }
        }
        Ok(Page { items, next })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use storage::CommunityRole;

    fn post(id: u64, community: u64, author: u64, visibility: PostVisibility) -> PostRecord {
        PostRecord {
            id,
            community,
            author,
            created: Millis(id),
            edited: None,
            visibility,
            body_sealed: Vec::new(),
            place_sealed: Vec::new(),
            media: Vec::new(),
        }
    }

    fn community(id: u64, name: &str, public: bool) -> CommunityRecord {
        CommunityRecord {
            id,
            name: name.into(),
            description: "关于我们".into(),
            avatar: None,
            public,
            owner: 1,
            created: Millis(id),
        }
    }

    fn found(s: &Social, view: &SocialView, viewer: u64, q: &str) -> Vec<u64> {
        let mut v: Vec<u64> = s
            .posts
            .search(
                &Query::parse(q).unwrap(),
                |_, p, _| s.post_visible(view, viewer, p),
                None,
                100,
            )
            .into_iter()
            .map(|h| h.seq)
            .collect();
        v.sort_unstable();
        v
    }

    #[test]
    fn the_memory_filter_follows_the_one_visibility_rule() {
        let mut s = Social::default();
        s.put_community(&community(10, "公开小组", true));
        s.put_community(&community(20, "私密小组", false));
        s.put_post(
            &post(1, 10, 1, PostVisibility::Public),
            "南京市长江大桥".into(),
        );
        s.put_post(
            &post(2, 10, 1, PostVisibility::Members),
            "南京市长江大桥".into(),
        );
        s.put_post(
            &post(3, 10, 1, PostVisibility::Friends),
            "南京市长江大桥".into(),
        );
        s.put_post(
            &post(4, 20, 1, PostVisibility::Public),
            "南京市长江大桥".into(),
        );
        let outsider = SocialView::default();
        assert_eq!(
            found(&s, &outsider, 9, "市长"),
            [1],
            "public posts of public communities"
        );
        let mut member = SocialView::default();
        member.roles.insert(10, CommunityRole::Member);
        assert_eq!(found(&s, &member, 9, "市长"), [1, 2]);
        let mut friend = SocialView::default();
        friend.friends.insert(1);
        assert_eq!(
            found(&s, &friend, 9, "市长"),
            [1, 3],
            "friends-only for friends"
        );
        assert_eq!(
            found(&s, &outsider, 1, "市长"),
            [1, 2, 3, 4],
            "the author sees their own"
        );
        let mut inside = SocialView::default();
        inside.roles.insert(20, CommunityRole::Member);
        assert_eq!(found(&s, &inside, 9, "市长"), [1, 4]);
    }

    #[test]
    fn removed_edited_and_erased_posts_leave_the_index() {
        let mut s = Social::default();
        s.put_community(&community(10, "读书会", true));
        s.put_post(&post(1, 10, 1, PostVisibility::Public), "北京吃饭".into());
        s.put_post(&post(2, 10, 2, PostVisibility::Public), "北京烤鸭".into());
        s.put_post(&post(3, 10, 1, PostVisibility::Public), "上海".into());
        let v = SocialView::default();
        assert_eq!(found(&s, &v, 9, "北京"), [1, 2]);
        s.put_post(&post(2, 10, 2, PostVisibility::Public), "天津".into());
        assert_eq!(
            found(&s, &v, 9, "北京"),
            [1],
            "the edited text replaces the old"
        );
        s.drop_post(1);
        assert!(found(&s, &v, 9, "北京").is_empty());
        s.drop_author(1);
        assert!(found(&s, &v, 9, "上海").is_empty());
        assert_eq!(s.counts(), (1, 1));
        s.put_post(&post(2, 10, 2, PostVisibility::Public), "   ".into());
        assert_eq!(s.counts(), (0, 1), "a post without text is not indexed");
        s.drop_community(10);
        assert_eq!(s.counts(), (0, 0));
    }
}
