//! Who sees what in communities: [`may_see`], the one rule of who may see a post, and the reads
//! that apply it inside their transaction — the facts about a viewer ([`Facts`]), whether a
//! post's media or a community's avatar is shown to a viewer ([`media_visible`]), and the
//! checks of search's hits ([`posts_seen_r`], [`communities_read_r`], `Store::visible_posts`).

use std::collections::BTreeMap;

use super::{CommunityRecord, CommunityRole, PostRecord, PostVisibility};
use super::{get_community, get_post, role_of};
use crate::catalog::*;
use crate::kv;
use crate::search::Seen;
use crate::{Store, StoreError};

// ---- The visibility rule ------------------------------------------------------------------

/// What decides whether a viewer may see a post, gathered in one transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts {
    pub community_public: bool,
    pub role: Option<CommunityRole>,
    pub banned: bool,
    pub is_author: bool,
    pub friends: bool,
}

/// Whether a viewer may see a post: its author always; a banned viewer never; nobody outside a
/// private community; "public" posts everyone who can read the community, "members" posts the
/// members, "friends" posts only the author's friends among those who can read it. The
/// community's moderators see every post but friends-only ones (they moderate what the
/// community can see).
pub fn may_see(visibility: PostVisibility, f: &Facts) -> bool {
    if f.is_author {
        return true;
    }
    if f.banned {
        return false;
    }
    let reader = f.role.is_some() || f.community_public;
    if !reader {
        return false;
    }
    match visibility {
        PostVisibility::Public => true,
        PostVisibility::Members => f.role.is_some(),
        PostVisibility::Friends => f.friends,
    }
}

/// Whether `a` and `b` are friends (the friend graph of `storage/friends.rs`), inside a read
/// or write transaction.
pub(super) fn are_friends(tx: &impl kv::Read, a: u64, b: u64) -> Result<bool, StoreError> {
    crate::friends::are_friends(tx, a, b)
}

/// Facts about a viewer and a community, read in `tx`.
pub(super) fn facts_r(
    tx: &impl kv::Read,
    community: &CommunityRecord,
    viewer: u64,
) -> Result<Facts, StoreError> {
    Ok(Facts {
        community_public: community.public,
        role: role_of(tx, community.id, viewer)?,
        banned: COMMUNITYNO_USERID_BAN
            .get(tx, &(community.id, viewer))?
            .is_some(),
        is_author: false,
        friends: false,
    })
}

/// Whether `viewer` may see `post`, given the facts about its community.
pub(super) fn sees_r(
    tx: &impl kv::Read,
    base: &Facts,
    post: &PostRecord,
    viewer: u64,
) -> Result<bool, StoreError> {
    let mut f = *base;
    f.is_author = post.author == viewer;
    if post.visibility == PostVisibility::Friends && !f.is_author {
        f.friends = are_friends(tx, post.author, viewer)?;
    }
    Ok(may_see(post.visibility, &f))
}

/// Whether `media` is shown in a community post or as an avatar that `viewer` may see.
pub fn media_visible(tx: &impl kv::Read, media: &str, viewer: u64) -> Result<bool, StoreError> {
    let refs = MEDIAID_COMMUNITYNO_POSTNO.prefixed_in_pages(tx, &media.to_string(), super::PAGE)?;
    for ((_, c, p), ()) in refs {
        let Some(community) = get_community(tx, c)? else {
            continue;
        };
        let facts = facts_r(tx, &community, viewer)?;
        let ok = if p == 0 {
            community.public || facts.role.is_some()
        } else {
            match get_post(tx, p)? {
                Some(post) => sees_r(tx, &facts, &post, viewer)?,
                None => false,
            }
        };
        if ok {
            return Ok(true);
        }
    }
    Ok(false)
}

// ---- For search ---------------------------------------------------------------------------

/// Each of `posts` as `viewer` may see it, by [`may_see`] with facts read in `tx`.
pub fn posts_seen_r(
    tx: &impl kv::Read,
    viewer: u64,
    posts: &[u64],
) -> Result<Vec<Seen<PostRecord>>, StoreError> {
    let mut out = Vec::with_capacity(posts.len());
    let mut facts: BTreeMap<u64, Option<Facts>> = BTreeMap::new();
    for p in posts {
        let Some(post) = get_post(tx, *p)? else {
            out.push(Seen::Gone);
            continue;
        };
        let f = match facts.get(&post.community) {
            Some(f) => *f,
            None => {
                let f = get_community(tx, post.community)?
                    .map(|c| facts_r(tx, &c, viewer))
                    .transpose()?;
                facts.insert(post.community, f);
                f
            }
        };
        out.push(match f {
            None => Seen::Gone,
            Some(f) if sees_r(tx, &f, &post, viewer)? => Seen::Shown(post),
            Some(_) => Seen::Hidden,
        });
    }
    Ok(out)
}

/// Each of `communities` as `viewer` may read it: a public one unless they are banned from
/// it, a private one only as a member (what `community_posts` lets them read).
pub fn communities_read_r(
    tx: &impl kv::Read,
    viewer: u64,
    communities: &[u64],
) -> Result<Vec<Seen<CommunityRecord>>, StoreError> {
    let mut out = Vec::with_capacity(communities.len());
    for c in communities {
        let Some(rec) = get_community(tx, *c)? else {
            out.push(Seen::Gone);
            continue;
        };
        let f = facts_r(tx, &rec, viewer)?;
        out.push(if (rec.public || f.role.is_some()) && !f.banned {
            Seen::Shown(rec)
        } else {
            Seen::Hidden
        });
    }
    Ok(out)
}

impl Store {
    /// Of `posts`, the ones `viewer` may see (for search results and other listings).
    pub async fn visible_posts(
        &self,
        viewer: u64,
        posts: Vec<u64>,
    ) -> Result<Vec<u64>, StoreError> {
        self.read(move |tx| {
            Ok(posts_seen_r(tx, viewer, &posts)?
                .into_iter()
                .zip(&posts)
                .filter(|(s, _)| matches!(s, Seen::Shown(_)))
                .map(|(_, p)| *p)
                .collect())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::community::tests::seal;
    use primitives::time::Millis;

    fn facts(public: bool, role: Option<CommunityRole>) -> Facts {
        Facts {
            community_public: public,
            role,
            banned: false,
            is_author: false,
            friends: false,
        }
    }

    #[test]
    fn who_may_see_a_post() {
        use CommunityRole::*;
        use PostVisibility::*;
        // Public community: anyone sees public posts, members see members' posts.
        assert!(may_see(Public, &facts(true, None)));
        assert!(!may_see(Members, &facts(true, None)));
        assert!(may_see(Members, &facts(true, Some(Member))));
        // Private community: nobody outside sees anything, public posts included.
        assert!(!may_see(Public, &facts(false, None)));
        assert!(may_see(Public, &facts(false, Some(Member))));
        // Friends only: friends, and not moderators or other members.
        assert!(!may_see(Friends, &facts(true, Some(Moderator))));
        assert!(!may_see(Friends, &facts(true, Some(Member))));
        let mut f = facts(true, Some(Member));
        f.friends = true;
        assert!(may_see(Friends, &f));
        // Friends outside a private community still see nothing.
        let mut f = facts(false, None);
        f.friends = true;
        assert!(!may_see(Friends, &f));
        // The author always; a banned viewer never.
        let mut f = facts(false, None);
        f.is_author = true;
        assert!(may_see(Friends, &f));
        let mut f = facts(true, Some(Member));
        f.banned = true;
        assert!(!may_see(Public, &f));
    }

    #[tokio::test]
    async fn visible_posts_keeps_only_what_the_viewer_may_see() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(&dir.path().join("n.redb"), |_| Ok(None)).unwrap();
        let (owner, member, outsider) = (1, 2, 3);
        let now = Millis(10);
        assert!(
            store
                .create_community(7, "open".into(), String::new(), None, true, owner, now)
                .await
                .unwrap()
        );
        assert!(
            store
                .create_community(8, "closed".into(), String::new(), None, false, owner, now)
                .await
                .unwrap()
        );
        assert!(
            !store
                .create_community(8, "again".into(), String::new(), None, true, owner, now)
                .await
                .unwrap(),
            "a number is taken once"
        );
        store
            .join_community(7, member, now, None)
            .await
            .unwrap()
            .unwrap();
        let mut posts = Vec::new();
        for (c, vis) in [
            (7, PostVisibility::Public),
            (7, PostVisibility::Members),
            (7, PostVisibility::Friends),
            (8, PostVisibility::Public),
        ] {
            let (p, _) = store
                .create_post(c, owner, vis, Vec::new(), Vec::new(), now, None, seal)
                .await
                .unwrap()
                .unwrap();
            posts.push(p);
        }
        let all = posts.clone();
        assert_eq!(store.visible_posts(owner, all.clone()).await.unwrap(), all);
        assert_eq!(
            store.visible_posts(member, all.clone()).await.unwrap(),
            posts[..2].to_vec()
        );
        assert_eq!(
            store.visible_posts(outsider, all.clone()).await.unwrap(),
            posts[..1].to_vec()
        );
        // Numbers of nothing are dropped, not refused.
        assert!(
            store
                .visible_posts(outsider, vec![999])
                .await
                .unwrap()
                .is_empty()
        );
    }
}
