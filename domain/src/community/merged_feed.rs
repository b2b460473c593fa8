//! "My feed" and "my favourites" across nodes (issue 23): the posts of my communities here and
//! of those of partner nodes I belong to (or my favourites among them, which a member of
//! another node keeps with each community's host), merged newest first and paged by one cursor.
//!
//! Each source — this node's communities as one, and each community of another node — is
//! paged on its own, by its own post numbers (a host numbers its posts in the order it stores
//! them). A page asks every source not yet exhausted for up to `limit` posts below its place,
//! merges them by time and keeps the newest `limit`; each source's place moves past what it
//! gave. This is a k-way merge: no post is shown twice, and none is skipped, while the sources
//! and their hosts stay the same. The cursor names a community of another node only by a
//! 32-bit digest of its address (a cursor travels in a query string), so a community joined or
//! left between two pages starts from its newest post or drops out. A host that does not
//! answer in time gives nothing to that page and keeps its place.

use std::fmt::Write as _;

use futures_util::future::join_all;
use sha2::{Digest, Sha256};

use super::{Communities, CommunityError, PostView, REMOTE_LIST_WAIT};

/// Where one source of the feed stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// Not read yet: from its newest post.
    Top,
    /// Read down to (not including) this post number.
    Before(u64),
    /// Read to its end.
    Done,
}

impl Place {
    fn encode(self, out: &mut String) {
        match self {
            Place::Top => out.push('t'),
            Place::Done => out.push('d'),
            Place::Before(n) => {
                let _ = write!(out, "{n}");
            }
        }
    }

    fn parse(s: &str) -> Option<Place> {
        match s {
            "t" => Some(Place::Top),
            "d" => Some(Place::Done),
            _ if !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit()) => {
                s.parse().ok().filter(|n| *n > 0).map(Place::Before)
            }
            _ => None,
        }
    }

    fn before(self) -> Option<u64> {
        match self {
            Place::Before(n) => Some(n),
            Place::Top | Place::Done => None,
        }
    }
}

/// Where each source of "my feed" stands: `l:<place>` for this node's communities, then
/// `<8 hex digits>:<place>` per community of another node (its address's digest); a place is
/// `t` (not read yet), `d` (read to its end) or the post number read down to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedCursor {
    local: Place,
    remote: Vec<([u8; 4], Place)>,
}

/// The longest cursor taken: a place for each of the most communities one may belong to.
pub const MAX_CURSOR_LEN: usize = 2 + 22 + (storage::MAX_REMOTE_COMMUNITIES) * 31;

impl FeedCursor {
    /// The cursor as the client carries it.
    pub fn encode(&self) -> String {
        let mut out = String::from("l:");
        self.local.encode(&mut out);
        for (key, place) in &self.remote {
            out.push('.');
            for b in key {
                let _ = write!(out, "{b:02x}");
            }
            out.push(':');
            place.encode(&mut out);
        }
        out
    }

    /// A cursor a client sent back; `None` when it is not one.
    pub fn parse(s: &str) -> Option<FeedCursor> {
        if s.len() > MAX_CURSOR_LEN {
            return None;
        }
        let mut parts = s.split('.');
        let local = Place::parse(parts.next()?.strip_prefix("l:")?)?;
        let mut remote: Vec<([u8; 4], Place)> = Vec::new();
        for part in parts {
            let (hex, place) = part.split_once(':')?;
            if hex.len() != 8 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
                return None;
            }
            let mut key = [0u8; 4];
            for (i, k) in key.iter_mut().enumerate() {
                *k = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
            }
            if remote.iter().any(|(k, _)| *k == key)
                || remote.len() == storage::MAX_REMOTE_COMMUNITIES
            {
                return None;
            }
            remote.push((key, Place::parse(place)?));
        }
        Some(FeedCursor { local, remote })
    }

    fn place_of(&self, key: [u8; 4]) -> Place {
        self.remote
            .iter()
            .find(|(k, _)| *k == key)
            .map_or(Place::Top, |(_, p)| *p)
    }
}

/// The digest by which a cursor names the community at `address`.
fn key_of(address: &str) -> [u8; 4] {
    let d = Sha256::digest(format!("shanliao feed cursor\0{address}"));
    [d[0], d[1], d[2], d[3]]
}

/// Which list is merged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Across {
    /// The posts of my communities.
    Feed,
    /// My favourites.
    Favourites,
}

/// One source's part of a page: its place before, and what it gave (`None`: its host did not
/// answer in time, or refused).
struct Fetched {
    key: Option<[u8; 4]>,
    place: Place,
    posts: Option<Vec<PostView>>,
}

impl Communities {
    /// A page of `list` across my communities, here and on partner nodes, newest first, from
    /// `cursor` (the first page when `None`), and the cursor of the next page (`None` at the
    /// end). See the module's documentation.
    pub async fn across(
        &self,
        user: u64,
        list: Across,
        cursor: Option<FeedCursor>,
        limit: usize,
    ) -> Result<(Vec<PostView>, Option<FeedCursor>), CommunityError> {
        let cursor = cursor.unwrap_or(FeedCursor {
            local: Place::Top,
            remote: Vec::new(),
        });
        let memberships = self.store.remote_communities(user).await?;
        let me = if memberships.is_empty() {
            String::new()
        } else {
            self.address_of(user).await?
        };
        let local = async {
            let posts = match (cursor.local, list) {
                (Place::Done, _) => Vec::new(),
                (place, Across::Feed) => self.my_feed(user, place.before(), limit).await?,
                (place, Across::Favourites) => self.favourites(user, place.before(), limit).await?,
            };
            Ok::<_, CommunityError>(Fetched {
                key: None,
                place: cursor.local,
                posts: Some(posts),
            })
        };
        let remote = memberships.iter().filter_map(|m| {
            let (c, host) = self.remote_of(&m.address)?;
            let key = key_of(&m.address);
            let place = cursor.place_of(key);
            let me = me.clone();
            Some(async move {
                let posts = match place {
                    Place::Done => Some(Vec::new()),
                    _ => {
                        let wait = self.clock.sleep(REMOTE_LIST_WAIT);
                        let at = (c.as_str(), host.as_str());
                        let asked = async {
                            match list {
                                Across::Feed => {
                                    self.remote.feed(user, me, at, place.before(), limit).await
                                }
                                Across::Favourites => {
                                    let r = &self.remote;
                                    r.favourites(user, me, at, place.before(), limit).await
                                }
                            }
                        };
                        tokio::select! {
                            r = asked => r.ok(),
                            _ = wait => None,
                        }
                    }
                };
                Fetched {
                    key: Some(key),
                    place,
                    posts,
                }
            })
        });
        let (local, remote) = tokio::join!(local, join_all(remote));
        let mut sources = vec![local?];
        sources.extend(remote);
        Ok(merge(sources, limit))
    }
}

/// Takes the newest `limit` posts of what the sources gave, and where each stands after.
fn merge(sources: Vec<Fetched>, limit: usize) -> (Vec<PostView>, Option<FeedCursor>) {
    let mut all: Vec<(usize, PostView)> = Vec::new();
    for (i, s) in sources.iter().enumerate() {
        for p in s.posts.iter().flatten() {
            all.push((i, p.clone()));
        }
    }
    all.sort_by(|(_, a), (_, b)| {
        b.created
            .cmp(&a.created)
            .then_with(|| a.community.cmp(&b.community))
            .then_with(|| b.id.cmp(&a.id))
    });
    all.truncate(limit);
    let mut next = FeedCursor {
        local: Place::Done,
        remote: Vec::new(),
    };
    for (i, s) in sources.iter().enumerate() {
        let place = match &s.posts {
            None => s.place,
            Some(gave) => {
                let taken: Vec<&PostView> = all
                    .iter()
                    .filter(|(j, _)| *j == i)
                    .map(|(_, p)| p)
                    .collect();
                match taken.last() {
                    // It gave fewer than a page and all of it is shown: nothing is left.
                    Some(_) if taken.len() == gave.len() && gave.len() < limit => Place::Done,
                    Some(last) => Place::Before(last.id),
                    None if gave.is_empty() => Place::Done,
                    None => s.place,
                }
            }
        };
        match s.key {
            None => next.local = place,
            Some(key) => next.remote.push((key, place)),
        }
    }
    let done = next.local == Place::Done && next.remote.iter().all(|(_, p)| *p == Place::Done);
    let posts = all.into_iter().map(|(_, p)| p).collect();
    (posts, (!done).then_some(next))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Millis;
    use storage::PostVisibility;

    fn post(community: &str, id: u64, at: u64) -> PostView {
        PostView {
            id,
            community: community.into(),
            author: "a@x.test".into(),
            created: Millis(at),
            edited: None,
            visibility: PostVisibility::Members,
            text: String::new(),
            media: Vec::new(),
            place: None,
            comments: 0,
            favourite: false,
        }
    }

    fn source(key: Option<[u8; 4]>, place: Place, posts: Option<Vec<PostView>>) -> Fetched {
        Fetched { key, place, posts }
    }

    fn ids(posts: &[PostView]) -> Vec<(String, u64)> {
        posts.iter().map(|p| (p.community.clone(), p.id)).collect()
    }

    #[test]
    fn cursors_round_trip_and_anything_else_is_refused() {
        let c = FeedCursor {
            local: Place::Before(42),
            remote: vec![
                ([0xab, 0, 1, 0xff], Place::Done),
                ([1, 2, 3, 4], Place::Top),
            ],
        };
        assert_eq!(c.encode(), "l:42.ab0001ff:d.01020304:t");
        assert_eq!(FeedCursor::parse(&c.encode()), Some(c));
        for bad in [
            "",
            "l:",
            "l:0",
            "x:1",
            "l:1.ab:1",
            "l:1.AB0001FF:1",
            "l:1.ab0001ff",
            "l:1.ab0001ff:1.ab0001ff:2",
            "l:-1",
            "l:99999999999999999999999",
        ] {
            assert_eq!(FeedCursor::parse(bad), None, "{bad}");
        }
        let many: String = (0..201u32).map(|i| format!(".{i:08x}:t")).collect();
        assert_eq!(
            FeedCursor::parse(&format!("l:t{many}")),
            None,
            "more than one may join"
        );
        let long = format!("l:t{}", ".00000000:t".repeat(600));
        assert_eq!(FeedCursor::parse(&long), None, "too long");
        let most: String = (0..200u32)
            .map(|i| format!(".{i:08x}:{}", u64::MAX))
            .collect();
        assert!(
            FeedCursor::parse(&format!("l:{}{most}", u64::MAX)).is_some(),
            "the longest"
        );
    }

    #[test]
    fn pages_merge_the_sources_by_time_and_each_moves_past_what_it_gave() {
        let k = key_of("0000000000000001@b.test");
        let here = vec![post("h", 9, 90), post("h", 8, 70), post("h", 5, 50)];
        let there = vec![post("r", 30, 80), post("r", 29, 60), post("r", 28, 40)];
        let (page, next) = merge(
            vec![
                source(None, Place::Top, Some(here)),
                source(Some(k), Place::Top, Some(there)),
            ],
            3,
        );
        assert_eq!(
            ids(&page),
            [("h".into(), 9), ("r".into(), 30), ("h".into(), 8)]
        );
        let next = next.unwrap();
        assert_eq!(next.local, Place::Before(8));
        assert_eq!(next.place_of(k), Place::Before(30));

        // The last page: each gave less than a page, all shown: both are done, no next page.
        let (page, next) = merge(
            vec![
                source(None, Place::Before(8), Some(vec![post("h", 5, 50)])),
                source(Some(k), Place::Before(30), Some(vec![post("r", 29, 60)])),
            ],
            3,
        );
        assert_eq!(ids(&page), [("r".into(), 29), ("h".into(), 5)]);
        assert_eq!(next, None);
    }

    #[test]
    fn a_host_that_did_not_answer_keeps_its_place_and_an_untouched_source_too() {
        let (a, b) = (key_of("a"), key_of("b"));
        let (page, next) = merge(
            vec![
                source(
                    None,
                    Place::Top,
                    Some(vec![post("h", 2, 20), post("h", 1, 10)]),
                ),
                source(Some(a), Place::Before(7), None),
                source(
                    Some(b),
                    Place::Top,
                    Some(vec![post("r", 4, 5), post("r", 3, 4)]),
                ),
            ],
            2,
        );
        assert_eq!(ids(&page), [("h".into(), 2), ("h".into(), 1)]);
        let next = next.unwrap();
        assert_eq!(
            next.local,
            Place::Before(1),
            "a full page: there may be more"
        );
        assert_eq!(next.place_of(a), Place::Before(7), "asked again next time");
        assert_eq!(next.place_of(b), Place::Top, "none of it shown yet");
        // An empty source is done at once.
        let (_, next) = merge(vec![source(None, Place::Top, Some(Vec::new()))], 2);
        assert_eq!(next, None);
    }
}
