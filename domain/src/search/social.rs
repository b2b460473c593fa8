//! Search over communities, posts and comments (policy 1.5): the in-memory index of community
//! names and descriptions, of post texts and of comment texts (derived personal data: never
//! written to disk), which the indexer keeps level with the store's search-change rows (a
//! comment written, edited or removed records a change of its post), and the three scopes'
//! queries. A comment is seen by whoever may see its post.
//!
//! Who may see what is the communities' one rule, `storage::may_see`: hits are first filtered
//! in memory with the facts known here (the viewer's roles and friends, each post's community,
//! author and visibility, each community's visibility), then every hit on a page is checked in
//! the store (`Store::posts_seen_by`, `Store::communities_read_by`, which also know bans and
//! read the current records) and its text opened again from the store: a post or community
//! that is gone, or whose author is erased, is dropped from the index at once; one the viewer
//! may not see is skipped.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use super::index::{Cursor, MessageIndex, NewDoc, cursor_of};
use super::text::{self, Query};
use super::{Page, Search, SearchError, Spans, cursor_text};
use crate::community::{CommunityError, comment_text, community_id, post_text};
use crate::crypto::SecretKey;
use crate::time::Millis;
use storage::{
    CommentRecord, CommunityRecord, PostFacts, PostRecord, PostVisibility, Seen, SocialView,
    may_see,
};

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

#[derive(Debug, Clone)]
pub struct CommentHit {
    pub community: String,
    pub community_name: String,
    pub post: u64,
    pub comment: u64,
    pub author: String,
    pub created: Millis,
    pub snippet: String,
    pub spans: Spans,
}

#[derive(Debug, Clone, Copy)]
struct CommentMeta {
    post: u64,
    author: u64,
    edited: Option<Millis>,
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

/// The indexed communities, posts and comments. Posts are documents keyed (community, post)
/// with the post number as their position (numbers grow with time: equal scores go newest
/// first); comments are documents keyed (post, comment), the comment number as position;
/// communities are documents keyed (community, 0) holding name and description. Every known
/// post has its facts here (with or without text), so its comments can be filtered.
#[derive(Debug, Default)]
pub struct Social {
    posts: MessageIndex,
    post_meta: HashMap<u64, PostMeta>,
    communities: MessageIndex,
    community_meta: HashMap<u64, CommunityMeta>,
    comments: MessageIndex,
    comment_meta: HashMap<u64, CommentMeta>,
    post_comments: HashMap<u64, BTreeSet<u64>>,
}

impl Social {
    /// Indexes (or re-indexes) a post with its opened text; a post without text has only its
    /// facts kept (for its comments). Its comments stay.
    pub fn put_post(&mut self, post: &PostRecord, text: String) {
        if let Some(m) = self.post_meta.get(&post.id) {
            self.posts.remove(&[(m.community, post.id)]);
        }
        self.post_meta.insert(
            post.id,
            PostMeta {
                community: post.community,
                author: post.author,
                visibility: post.visibility,
            },
        );
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
    }

    /// Forgets a post, and every comment on it.
    pub fn drop_post(&mut self, post: u64) {
        if let Some(m) = self.post_meta.remove(&post) {
            self.posts.remove(&[(m.community, post)]);
        }
        for c in self.post_comments.remove(&post).unwrap_or_default() {
            if self.comment_meta.remove(&c).is_some() {
                self.comments.remove(&[(post, c)]);
            }
        }
    }

    /// Indexes (or re-indexes) a comment with its opened text.
    pub fn put_comment(&mut self, c: &CommentRecord, text: String) {
        self.drop_comment(c.id);
        if text.trim().is_empty() {
            return;
        }
        self.comments.insert(NewDoc {
            conv: c.post,
            seq: c.id,
            pos: c.id,
            author: c.author,
            text,
        });
        self.comment_meta.insert(
            c.id,
            CommentMeta {
                post: c.post,
                author: c.author,
                edited: c.edited,
            },
        );
        self.post_comments.entry(c.post).or_default().insert(c.id);
    }

    pub fn drop_comment(&mut self, comment: u64) {
        let Some(m) = self.comment_meta.remove(&comment) else {
            return;
        };
        self.comments.remove(&[(m.post, comment)]);
        if let Some(set) = self.post_comments.get_mut(&m.post) {
            set.remove(&comment);
            if set.is_empty() {
                self.post_comments.remove(&m.post);
            }
        }
    }

    /// Brings a post's indexed comments level with `current` (all its comments as stored
    /// now): drops those gone, and returns those to (re)index — new or edited since.
    pub fn sync_comments(&mut self, post: u64, current: Vec<CommentRecord>) -> Vec<CommentRecord> {
        let now: BTreeSet<u64> = current.iter().map(|c| c.id).collect();
        let gone: Vec<u64> = self
            .post_comments
            .get(&post)
            .map(|s| s.difference(&now).copied().collect())
            .unwrap_or_default();
        for c in gone {
            self.drop_comment(c);
        }
        current
            .into_iter()
            .filter(|c| {
                self.comment_meta
                    .get(&c.id)
                    .is_none_or(|m| m.edited != c.edited || m.author != c.author)
            })
            .collect()
    }

    /// Forgets every post and comment of `author` (their erasure has begun).
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
        let comments: Vec<u64> = self
            .comment_meta
            .iter()
            .filter(|(_, m)| m.author == author)
            .map(|(c, _)| *c)
            .collect();
        for c in comments {
            self.drop_comment(c);
        }
    }

    /// Every indexed comment: ((post, comment), author).
    pub fn comment_keys(&self) -> Vec<((u64, u64), u64)> {
        self.comment_meta
            .iter()
            .map(|(c, m)| ((m.post, *c), m.author))
            .collect()
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

    /// (posts with text, communities) indexed.
    #[cfg(test)]
    pub fn counts(&self) -> (usize, usize) {
        (self.posts.stats().documents, self.community_meta.len())
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

/// What one hit of an index page came to, once checked in the store.
enum Checked<T> {
    /// Shown to the viewer.
    Item(T),
    /// Not for this viewer, or no longer matching (edited since it was indexed: the catch-up
    /// indexes the new text): skipped.
    Skip,
    /// Gone from the store (removed, or its author erased): dropped from the index.
    Dead(u64),
}

impl Search {
    /// The paging the three scopes share: what `user` may see (`view`, once the index has
    /// caught up with it), then rounds of one index page after the cursor (`round`: at most
    /// `want` hits, each checked in the store) until `limit` items are found, the index has no
    /// more, or [`ROUNDS`] rounds ran (then the next page goes on from there). What a round
    /// found gone leaves the index (`forget`). Each round is handed its own handles to the view
    /// and the query (a future borrowing the closure could not be `Send`).
    async fn social_page<T, R>(
        &self,
        (user, q): (u64, &Query),
        limit: usize,
        mut after: Option<Cursor>,
        mut round: impl FnMut(Arc<SocialView>, Arc<Query>, Option<Cursor>, usize) -> R,
        forget: fn(&mut Social, u64),
    ) -> Result<Page<T>, SearchError>
    where
        R: Future<Output = Result<Vec<(Cursor, Checked<T>)>, SearchError>>,
    {
        let view = Arc::new(self.inner.store.social_view(user).await?);
        self.caught_up(view.head).await;
        let q = Arc::new(q.clone());
        let mut items = Vec::new();
        let mut next = None;
        for rounds in 1..=ROUNDS {
            let want = limit - items.len() + 1;
            let hits = round(view.clone(), q.clone(), after, want).await?;
            let exhausted = hits.len() < want;
            let mut dead = Vec::new();
            for (cursor, checked) in hits {
                if items.len() == limit {
                    next = after.map(cursor_text);
                    break;
                }
                after = Some(cursor);
                match checked {
                    Checked::Item(item) => items.push(item),
                    Checked::Skip => {}
                    Checked::Dead(id) => dead.push(id),
                }
            }
            if !dead.is_empty() {
                self.write_social(move |s| {
                    for id in dead {
                        forget(s, id);
                    }
                })
                .await?;
            }
            if next.is_some() || exhausted {
                break;
            }
            if rounds == ROUNDS {
                next = after.map(cursor_text);
            }
        }
        Ok(Page { items, next })
    }

    /// A post's or comment's text opened again with its author's key (`open`) and matched
    /// once more, made into a hit (`item`: the author's address, the snippet, its spans); or
    /// what became of it. `(author, number, kind)` name the text, its index entry and, for the
    /// log, what it is.
    fn reopen<T>(
        &self,
        q: &Query,
        keys: &HashMap<u64, (String, Vec<u8>)>,
        (author, number, kind): (u64, u64, &'static str),
        open: impl FnOnce(&SecretKey) -> Result<String, CommunityError>,
        item: impl FnOnce(String, String, Spans) -> T,
    ) -> Result<Checked<T>, SearchError> {
        // The author erased (no key): nothing of theirs is shown, or kept.
        let Some((handle, wrapped)) = keys.get(&author) else {
            return Ok(Checked::Dead(number));
        };
        let key = self.inner.master.unwrap_data_key(author, wrapped)?;
        Ok(match open(&key) {
            Err(e) => {
                tracing::warn!(error = %e, kind, "a text did not open for search");
                Checked::Dead(number)
            }
            Ok(t) => match found(q, &t) {
                None => Checked::Skip,
                Some((snippet, spans)) => {
                    Checked::Item(item(self.inner.messaging.address(handle), snippet, spans))
                }
            },
        })
    }

    /// Communities `user` may read whose name or description matches.
    pub(super) async fn communities(
        &self,
        user: u64,
        q: &Query,
        after: Option<Cursor>,
        limit: usize,
    ) -> Result<Page<CommunityHit>, SearchError> {
        let round = |view: Arc<SocialView>, q: Arc<Query>, after, want| {
            async move {
                let (v, qq) = (view.clone(), q.clone());
                let hits = self
                    .read_social(move |s| {
                        s.communities
                            .search(&qq, |c, _, _| s.community_visible(&v, c), after, want)
                    })
                    .await?;
                let seen = self
                    .inner
                    .store
                    .communities_read_by(user, hits.iter().map(|h| h.conv).collect())
                    .await?;
                let mut out = Vec::with_capacity(hits.len());
                for (hit, seen) in hits.iter().zip(seen) {
                    let checked = match seen {
                        Seen::Gone => Checked::Dead(hit.conv),
                        Seen::Hidden => Checked::Skip,
                        // Read again from the store: a change not yet indexed may not match.
                        Seen::Shown(c) => match super::two_fields(&q, &c.name, &c.description) {
                            None => Checked::Skip,
                            Some((name_spans, d)) => {
                                let (description, description_spans) =
                                    text::snippet(&c.description, &d);
                                Checked::Item(CommunityHit {
                                    id: community_id(c.id),
                                    member: view.roles.contains_key(&c.id),
                                    name: c.name,
                                    name_spans,
                                    description,
                                    description_spans,
                                    public: c.public,
                                })
                            }
                        },
                    };
                    out.push((cursor_of(hit), checked));
                }
                Ok(out)
            }
        };
        self.social_page((user, q), limit, after, round, Social::drop_community)
            .await
    }

    /// Posts `user` may see whose text matches, in communities they may read.
    pub(super) async fn posts(
        &self,
        user: u64,
        q: &Query,
        after: Option<Cursor>,
        limit: usize,
    ) -> Result<Page<PostHit>, SearchError> {
        let round = |view: Arc<SocialView>, q: Arc<Query>, after, want| async move {
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
            let seen = self
                .inner
                .store
                .posts_seen_by(user, hits.iter().map(|h| h.seq).collect())
                .await?;
            let keys = self.authors(hits.iter().map(|h| h.author)).await?;
            let mut out = Vec::with_capacity(hits.len());
            for (hit, seen) in hits.iter().zip(seen) {
                let checked = match seen {
                    Seen::Gone => Checked::Dead(hit.seq),
                    Seen::Hidden => Checked::Skip,
                    Seen::Shown(post) => self.reopen(
                        &q,
                        &keys,
                        (post.author, hit.seq, "post"),
                        |key| post_text(key, &post),
                        |author, snippet, spans| PostHit {
                            community: community_id(post.community),
                            community_name: names.get(&post.community).cloned().unwrap_or_default(),
                            post: post.id,
                            author,
                            created: post.created,
                            snippet,
                            spans,
                        },
                    )?,
                };
                out.push((cursor_of(hit), checked));
            }
            Ok(out)
        };
        self.social_page((user, q), limit, after, round, Social::drop_post)
            .await
    }

    /// Comments whose text matches, on posts `user` may see (a comment is seen by whoever
    /// may see its post).
    pub(super) async fn comments(
        &self,
        user: u64,
        q: &Query,
        after: Option<Cursor>,
        limit: usize,
    ) -> Result<Page<CommentHit>, SearchError> {
        let round = |view: Arc<SocialView>, q: Arc<Query>, after, want| async move {
            let (v, qq) = (view.clone(), q.clone());
            let (hits, names) = self
                .read_social(move |s| {
                    let hits =
                        s.comments
                            .search(&qq, |p, _, _| s.post_visible(&v, user, p), after, want);
                    let names: HashMap<u64, String> = hits
                        .iter()
                        .filter_map(|h| {
                            let c = s.post_meta.get(&h.conv)?.community;
                            Some((c, s.community_meta.get(&c)?.name.clone()))
                        })
                        .collect();
                    (hits, names)
                })
                .await?;
            let seen = self
                .inner
                .store
                .posts_seen_by(user, hits.iter().map(|h| h.conv).collect())
                .await?;
            let records = self
                .inner
                .store
                .comments_at(hits.iter().map(|h| (h.conv, h.seq)).collect())
                .await?;
            let keys = self.authors(hits.iter().map(|h| h.author)).await?;
            let mut out = Vec::with_capacity(hits.len());
            for ((hit, seen), rec) in hits.iter().zip(seen).zip(records) {
                let post = match seen {
                    Seen::Gone => {
                        out.push((cursor_of(hit), Checked::Dead(hit.seq)));
                        continue;
                    }
                    Seen::Hidden => {
                        out.push((cursor_of(hit), Checked::Skip));
                        continue;
                    }
                    Seen::Shown(p) => p,
                };
                let checked = match rec.filter(|c| c.author == hit.author) {
                    None => Checked::Dead(hit.seq),
                    Some(c) => self.reopen(
                        &q,
                        &keys,
                        (c.author, hit.seq, "comment"),
                        |key| comment_text(key, &c),
                        |author, snippet, spans| CommentHit {
                            community: community_id(post.community),
                            community_name: names.get(&post.community).cloned().unwrap_or_default(),
                            post: post.id,
                            comment: c.id,
                            author,
                            created: c.created,
                            snippet,
                            spans,
                        },
                    )?,
                };
                out.push((cursor_of(hit), checked));
            }
            Ok(out)
        };
        self.social_page((user, q), limit, after, round, Social::drop_comment)
            .await
    }
}

/// The snippet of `t` around the query's matches, or `None` when it no longer matches.
fn found(q: &Query, t: &str) -> Option<(String, Spans)> {
    let (spans, _) = text::find(q, t);
    (!spans.is_empty()).then(|| text::snippet(t, &spans))
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

    fn comment(id: u64, post: u64, author: u64, edited: Option<u64>) -> CommentRecord {
        CommentRecord {
            id,
            post,
            author,
            parent: 0,
            quote: 0,
            created: Millis(id),
            edited: edited.map(Millis),
            text_sealed: Vec::new(),
        }
    }

    fn found_comments(s: &Social, view: &SocialView, viewer: u64, q: &str) -> Vec<u64> {
        let mut v: Vec<u64> = s
            .comments
            .search(
                &Query::parse(q).unwrap(),
                |p, _, _| s.post_visible(view, viewer, p),
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
    fn comments_are_seen_as_their_post_and_follow_its_changes() {
        let mut s = Social::default();
        s.put_community(&community(10, "读书会", true));
        // A post without text still carries its comments.
        s.put_post(&post(1, 10, 1, PostVisibility::Public), String::new());
        s.put_post(&post(2, 10, 1, PostVisibility::Members), "成员".into());
        s.put_comment(&comment(100, 1, 5, None), "南京市长江大桥真美".into());
        s.put_comment(&comment(101, 2, 5, None), "市长也来了".into());
        let outsider = SocialView::default();
        assert_eq!(found_comments(&s, &outsider, 9, "市长"), [100]);
        let mut member = SocialView::default();
        member.roles.insert(10, CommunityRole::Member);
        assert_eq!(found_comments(&s, &member, 9, "市长"), [100, 101]);
        // The post turns members-only: its comment follows.
        s.put_post(&post(1, 10, 1, PostVisibility::Members), String::new());
        assert!(found_comments(&s, &outsider, 9, "市长").is_empty());
        assert_eq!(
            found_comments(&s, &member, 9, "江大"),
            [100],
            "comments stay"
        );
        // A sync drops what is gone and returns what is new or edited.
        let todo = s.sync_comments(
            2,
            vec![comment(102, 2, 6, None), comment(103, 2, 6, Some(7))],
        );
        assert_eq!(todo.iter().map(|c| c.id).collect::<Vec<_>>(), [102, 103]);
        assert!(
            found_comments(&s, &member, 9, "也来").is_empty(),
            "101 is gone"
        );
        s.put_comment(&todo[0], "北京吃饭".into());
        let again = s.sync_comments(2, vec![comment(102, 2, 6, None)]);
        assert!(again.is_empty(), "unchanged: nothing to open again");
        let edited = s.sync_comments(2, vec![comment(102, 2, 6, Some(9))]);
        assert_eq!(edited.len(), 1);
        // Erasure of the commenter, and removal of the post, take the comments.
        s.drop_author(5);
        assert!(found_comments(&s, &member, 9, "大桥").is_empty());
        s.drop_post(2);
        assert!(s.comment_keys().is_empty());
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
