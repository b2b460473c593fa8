//! What search reads from the store — the history a device may see (the same floors as history
//! pages), messages, posts and communities in batches for the index rebuild, what changed after
//! an event position for its catch-up (message events, and the search-change rows that writes
//! of accounts, profiles, communities and posts record with [`note_change`]), the groups a user
//! may find, what a viewer may read of communities and posts — and the search log (recent
//! searches, kept only with `personalisation`, under the user's search pseudonym).

use std::collections::{HashMap, HashSet};
use std::ops::Bound;

use redb::{ReadTransaction, ReadableTable, WriteTransaction};

use super::catalog::*;
use super::community::{CommentRecord, CommunityRecord, CommunityRole, PostRecord};
use super::kv;
use super::messaging::{history_lower, last_pos, next_pos, view_floor};
use super::{ConvKind, ConversationRecord, EventRecord, MessageRecord, Store, StoreError};
use primitives::time::Millis;

/// The history one device of a user may search: per conversation of theirs, the pos at or
/// below which they see nothing; the single messages they deleted for themselves; and the
/// newest event position when it was read.
#[derive(Debug, Clone, Default)]
pub struct SearchView {
    pub head: u64,
    pub lower: HashMap<u64, u64>,
    pub hidden: HashSet<(u64, u64)>,
}

impl SearchView {
    pub fn sees(&self, conv: u64, seq: u64, pos: u64) -> bool {
        self.lower.get(&conv).is_some_and(|l| pos > *l) && !self.hidden.contains(&(conv, seq))
    }
}

/// Messages read for the index rebuild: (conversation number, conversation id, record).
#[derive(Debug, Default)]
pub struct IndexBatch {
    pub items: Vec<(u64, String, MessageRecord)>,
    pub next: Option<(u64, u64)>,
}

/// What changed in (after, reached]: messages to index and messages recalled, and the people,
/// communities and posts whose search entries are to be read again (each once, in order).
#[derive(Debug, Default)]
pub struct IndexChanges {
    pub reached: u64,
    pub added: Vec<(u64, String, MessageRecord)>,
    pub recalled: Vec<(u64, u64)>,
    pub changed: Vec<SearchChange>,
}

/// What a write changed that search shows (a row of `pos_kind_id_searchchange`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SearchChange {
    /// An account's handle or nickname: registered, profile changed, erasure begun.
    Person(u64),
    /// A community's name, description or visibility, or the community itself.
    Community(u64),
    /// A post's text, visibility or the post itself.
    Post(u64),
}

impl SearchChange {
    fn code(self) -> (u64, u64) {
        match self {
            SearchChange::Person(u) => (1, u),
            SearchChange::Community(c) => (2, c),
            SearchChange::Post(p) => (3, p),
        }
    }
    fn from_code(kind: u64, id: u64) -> Result<Self, StoreError> {
        match kind {
            1 => Ok(SearchChange::Person(id)),
            2 => Ok(SearchChange::Community(id)),
            3 => Ok(SearchChange::Post(id)),
            _ => Err(StoreError::Corrupt("search change")),
        }
    }
}

/// Records, in the writing transaction, that `change` happened, at a new event position: the
/// indexer reads it after the commit and applies it, and a search waits for that position.
pub fn note_change(tx: &WriteTransaction, change: SearchChange) -> Result<(), StoreError> {
    let pos = next_pos(tx)?;
    let (kind, id) = change.code();
    tx.open_table(POS_KIND_ID_SEARCHCHANGE)?
        .insert((pos, kind, id), ())?;
    Ok(())
}

/// Rows of one user's or one post's read at a time from the tables behind the key-value seam.
const PAGE: usize = 256;

/// A batch of posts or communities for the index rebuild, and the number to go on from.
#[derive(Debug)]
pub struct RecordBatch<T> {
    pub items: Vec<T>,
    pub next: Option<u64>,
}

/// Comments read for the index rebuild, and the (post, comment) to go on from.
#[derive(Debug, Default)]
pub struct CommentBatch {
    pub items: Vec<CommentRecord>,
    pub next: Option<(u64, u64)>,
}

/// What a viewer may read of one post or community, decided in the read that loads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen<T> {
    /// It no longer exists: the index forgets it.
    Gone,
    /// It exists, but this viewer may not see it.
    Hidden,
    /// The record as stored now.
    Shown(T),
}

/// What decides which communities and posts a viewer may see, read in one transaction: the
/// newest event position, the viewer's roles in their communities, and their friends.
#[derive(Debug, Clone, Default)]
pub struct SocialView {
    pub head: u64,
    pub roles: HashMap<u64, CommunityRole>,
    pub friends: HashSet<u64>,
}

/// The search-log pseudonym of `user` under their pseudonym key.
pub(crate) fn log_pseudonym(key: &[u8; 32], user: u64) -> u64 {
    let mut msg = b"search-log".to_vec();
    msg.extend_from_slice(&user.to_be_bytes());
    let h = primitives::crypto::hmac_sha256(key, &msg);
    u64::from_be_bytes(h[..8].try_into().unwrap_or([0; 8]))
}

/// The user's pseudonym key if they have one (made when `make`): the search log and the
/// behaviour log derive their pseudonyms from it.
pub(super) fn pseudonym_key_w(
    tx: &WriteTransaction,
    user: u64,
    make: bool,
) -> Result<Option<[u8; 32]>, StoreError> {
    if let Some(k) = USERID_PSEUDONYMKEY.get(tx, &user)? {
        return Ok(Some(k));
    }
    if !make {
        return Ok(None);
    }
    let mut key = [0u8; 32];
    primitives::crypto::random_bytes(&mut key).map_err(|e| StoreError::Db(e.to_string()))?;
    USERID_PSEUDONYMKEY.insert(tx, &user, &key)?;
    Ok(Some(key))
}

/// The user's search pseudonym if they have a pseudonym key (made when `make`).
fn pseudonym_w(tx: &WriteTransaction, user: u64, make: bool) -> Result<Option<u64>, StoreError> {
    Ok(pseudonym_key_w(tx, user, make)?.map(|k| log_pseudonym(&k, user)))
}

/// Removes every search-log row of `user`: at revocation of `personalisation` and at erasure
/// (before the pseudonym key goes, while the rows can still be found).
pub fn erase_logs(tx: &WriteTransaction, user: u64) -> Result<u64, StoreError> {
    let Some(p) = pseudonym_w(tx, user, false)? else {
        return Ok(0);
    };
    // A page at a time: each page's rows are removed before the next is read, so the next
    // starts at the prefix's first row again.
    let mut removed = 0u64;
    loop {
        let rows = PSEUDONYM_MS_SEARCHLOG.prefixed(tx, &p, kv::Order::Ascending, PAGE)?;
        for ((_, t), _) in &rows {
            PSEUDONYM_MS_SEARCHLOG.remove(tx, &(p, *t))?;
            MS_PSEUDONYM_SEARCHLOG.remove(tx, &(*t, p))?;
        }
        removed += rows.len() as u64;
        if rows.len() < PAGE {
            return Ok(removed);
        }
    }
}

/// Most searches kept per user; older ones go as new ones arrive.
pub const LOG_MAX_PER_USER: usize = 50;

impl Store {
    /// The history that `user`'s `device` may search (see [`SearchView`]).
    pub async fn search_view(
        &self,
        user: u64,
        device: String,
        now: Millis,
    ) -> Result<SearchView, StoreError> {
        self.read(move |tx| {
            let head = last_pos(&tx.open_table(META)?)?;
            let floor = view_floor(tx, user, Some(&device), now)?;
            let convs: Vec<u64> = tx
                .open_table(USERID_CONVNO)?
                .range((user, 0)..=(user, u64::MAX))?
                .map(|r| r.map(|(k, _)| k.value().1))
                .collect::<Result<_, _>>()?;
            let mut lower = HashMap::with_capacity(convs.len());
            for no in convs {
                lower.insert(no, history_lower(tx, user, no, floor)?);
            }
            // Every message the user hid, read a page at a time (the rows are theirs only).
            let hidden = USERID_CONVNO_SEQ_HIDDEN
                .prefixed_in_pages(tx, &user, PAGE)?
                .into_iter()
                .map(|((_, no, seq), ())| (no, seq))
                .collect();
            Ok(SearchView {
                head,
                lower,
                hidden,
            })
        })
        .await
    }

    /// The newest event position.
    pub async fn head_pos(&self) -> Result<u64, StoreError> {
        self.read(|tx| last_pos(&tx.open_table(META)?)).await
    }

    /// Up to `limit` stored messages from `from` (in key order), for the index rebuild.
    pub async fn index_batch(
        &self,
        from: (u64, u64),
        limit: usize,
    ) -> Result<IndexBatch, StoreError> {
        self.read(move |tx| {
            let convs = tx.open_table(CONVNO_CONVERSATION)?;
            let mut ids: HashMap<u64, String> = HashMap::new();
            let mut out = IndexBatch::default();
            for row in tx.open_table(CONVNO_SEQ_MESSAGE)?.range(from..)? {
                let (k, v) = row?;
                let (no, seq) = k.value();
                if out.items.len() >= limit {
                    out.next = Some((no, seq));
                    break;
                }
                let rec = MessageRecord::decode(seq, v.value())?;
                if rec.recalled || rec.body_sealed.is_empty() {
                    continue;
                }
                let id = match ids.get(&no) {
                    Some(id) => id.clone(),
                    None => match convs.get(no)? {
                        Some(c) => {
                            let id = ConversationRecord::decode(no, c.value())?.id;
                            ids.insert(no, id.clone());
                            id
                        }
                        None => continue,
                    },
                };
                out.items.push((no, id, rec));
            }
            Ok(out)
        })
        .await
    }

    /// Messages sent and recalled at positions in (after, after + span], as far as committed.
    pub async fn index_changes(&self, after: u64, span: u64) -> Result<IndexChanges, StoreError> {
        self.read(move |tx| {
            let head = last_pos(&tx.open_table(META)?)?;
            let reached = head.min(after.saturating_add(span));
            let mut out = IndexChanges {
                reached,
                ..IndexChanges::default()
            };
            if reached <= after {
                out.reached = after.max(reached);
                return Ok(out);
            }
            let events = tx.open_table(CONVNO_POS_EVENT)?;
            let messages = tx.open_table(CONVNO_SEQ_MESSAGE)?;
            for row in tx.open_table(CONVNO_CONVERSATION)?.iter()? {
                let (k, v) = row?;
                let no = k.value();
                let mut conv_id = None;
                for e in events.range((no, after + 1)..=(no, reached))? {
                    let (_, ev) = e?;
                    match EventRecord::decode(ev.value())? {
                        EventRecord::Message { seq } => {
                            let Some(m) = messages.get((no, seq))? else {
                                continue;
                            };
                            let rec = MessageRecord::decode(seq, m.value())?;
                            if rec.recalled || rec.body_sealed.is_empty() {
                                continue;
                            }
                            let id = match &conv_id {
                                Some(id) => String::clone(id),
                                None => {
                                    let id = ConversationRecord::decode(no, v.value())?.id;
                                    conv_id = Some(id.clone());
                                    id
                                }
                            };
                            out.added.push((no, id, rec));
                        }
                        EventRecord::Recall { seq } => out.recalled.push((no, seq)),
                        _ => {}
                    }
                }
            }
            let mut seen = HashSet::new();
            for row in tx
                .open_table(POS_KIND_ID_SEARCHCHANGE)?
                .range((after + 1, 0, 0)..=(reached, u64::MAX, u64::MAX))?
            {
                let (_, kind, id) = row?.0.value();
                let change = SearchChange::from_code(kind, id)?;
                if seen.insert(change) {
                    out.changed.push(change);
                }
            }
            Ok(out)
        })
        .await
    }

    /// Removes up to `batch` search-change rows at or below `upto` (the index has applied
    /// them); how many went.
    pub async fn prune_search_changes(&self, upto: u64, batch: usize) -> Result<u64, StoreError> {
        self.write(move |tx| {
            let mut t = tx.open_table(POS_KIND_ID_SEARCHCHANGE)?;
            let due: Vec<(u64, u64, u64)> = t
                .range((0, 0, 0)..=(upto, u64::MAX, u64::MAX))?
                .take(batch)
                .map(|r| r.map(|(k, _)| k.value()))
                .collect::<Result<_, _>>()?;
            for k in &due {
                t.remove(*k)?;
            }
            Ok(due.len() as u64)
        })
        .await
    }

    /// Up to `limit` posts numbered from `from`, for the index rebuild.
    pub async fn post_batch(
        &self,
        from: u64,
        limit: usize,
    ) -> Result<RecordBatch<PostRecord>, StoreError> {
        self.read(move |tx| {
            record_batch(tx, POSTNO_POST, from, limit, super::community::decode_post)
        })
        .await
    }

    /// Up to `limit` communities numbered from `from`, for the index rebuild.
    pub async fn community_batch(
        &self,
        from: u64,
        limit: usize,
    ) -> Result<RecordBatch<CommunityRecord>, StoreError> {
        self.read(move |tx| {
            record_batch(
                tx,
                COMMUNITYNO_COMMUNITY,
                from,
                limit,
                super::community::decode_community,
            )
        })
        .await
    }

    /// The posts numbered `ids` as stored now (`None` where gone), for the catch-up.
    pub async fn posts_at(&self, ids: Vec<u64>) -> Result<Vec<Option<PostRecord>>, StoreError> {
        self.read(move |tx| {
            let mut out = Vec::with_capacity(ids.len());
            for p in ids {
                out.push(
                    POSTNO_POST
                        .get(tx, &p)?
                        .map(|v| super::community::decode_post(p, &v))
                        .transpose()?,
                );
            }
            Ok(out)
        })
        .await
    }

    /// Up to `limit` comments from (post, comment) `from` in key order, for the index rebuild.
    pub async fn comment_batch(
        &self,
        from: (u64, u64),
        limit: usize,
    ) -> Result<CommentBatch, StoreError> {
        self.read(move |tx| {
            let mut out = CommentBatch::default();
            let rows = POSTNO_COMMENTNO_COMMENT.range(
                tx,
                Bound::Included(&from),
                Bound::Unbounded,
                kv::Order::Ascending,
                limit.saturating_add(1),
            )?;
            for ((p, c), v) in rows {
                if out.items.len() >= limit {
                    out.next = Some((p, c));
                    break;
                }
                out.items.push(super::community::decode_comment(p, c, &v)?);
            }
            Ok(out)
        })
        .await
    }

    /// Every comment on each of `posts` as stored now, for the catch-up (a post's change row
    /// also stands for a comment on it written, edited or removed).
    pub async fn comments_on(
        &self,
        posts: Vec<u64>,
    ) -> Result<Vec<(u64, Vec<CommentRecord>)>, StoreError> {
        self.read(move |tx| {
            let mut out = Vec::with_capacity(posts.len());
            for p in posts {
                let mut list = Vec::new();
                for ((_, c), v) in POSTNO_COMMENTNO_COMMENT.prefixed_in_pages(tx, &p, PAGE)? {
                    list.push(super::community::decode_comment(p, c, &v)?);
                }
                out.push((p, list));
            }
            Ok(out)
        })
        .await
    }

    /// The comments at `keys` (post, comment) as stored now (`None` where gone).
    pub async fn comments_at(
        &self,
        keys: Vec<(u64, u64)>,
    ) -> Result<Vec<Option<CommentRecord>>, StoreError> {
        self.read(move |tx| {
            let mut out = Vec::with_capacity(keys.len());
            for (p, c) in keys {
                out.push(
                    POSTNO_COMMENTNO_COMMENT
                        .get(tx, &(p, c))?
                        .map(|v| super::community::decode_comment(p, c, &v))
                        .transpose()?,
                );
            }
            Ok(out)
        })
        .await
    }

    /// Of `comments` ((post, comment), author as indexed), those gone or whose author's key
    /// is gone (erased): what the index must forget.
    pub async fn comments_gone(
        &self,
        comments: Vec<((u64, u64), u64)>,
    ) -> Result<Vec<(u64, u64)>, StoreError> {
        self.read(move |tx| {
            let mut keyless = HashMap::new();
            let mut out = Vec::new();
            for (key, author) in comments {
                let gone = POSTNO_COMMENTNO_COMMENT.get(tx, &key)?.is_none()
                    || match keyless.get(&author) {
                        Some(k) => *k,
                        None => {
                            let k = !has_key(tx, author)?;
                            keyless.insert(author, k);
                            k
                        }
                    };
                if gone {
                    out.push(key);
                }
            }
            Ok(out)
        })
        .await
    }

    /// The communities numbered `ids` as stored now (`None` where gone), for the catch-up.
    pub async fn communities_at(
        &self,
        ids: Vec<u64>,
    ) -> Result<Vec<Option<CommunityRecord>>, StoreError> {
        self.read(move |tx| {
            let mut out = Vec::with_capacity(ids.len());
            for c in ids {
                out.push(
                    COMMUNITYNO_COMMUNITY
                        .get(tx, &c)?
                        .map(|v| super::community::decode_community(c, &v))
                        .transpose()?,
                );
            }
            Ok(out)
        })
        .await
    }

    /// Of `posts` (number, author as indexed), those gone, by someone else now, or whose
    /// author's key is gone (erased): what the index must forget.
    pub async fn posts_gone(&self, posts: Vec<(u64, u64)>) -> Result<Vec<u64>, StoreError> {
        self.read(move |tx| {
            let mut keyless = HashMap::new();
            let mut out = Vec::new();
            for (p, author) in posts {
                let gone = match POSTNO_POST.get(tx, &p)? {
                    None => true,
                    Some(v) => super::community::decode_post(p, &v)?.author != author,
                };
                let gone = gone
                    || match keyless.get(&author) {
                        Some(k) => *k,
                        None => {
                            let k = !has_key(tx, author)?;
                            keyless.insert(author, k);
                            k
                        }
                    };
                if gone {
                    out.push(p);
                }
            }
            Ok(out)
        })
        .await
    }

    /// What decides what `viewer` may see of communities and posts (see [`SocialView`]).
    pub async fn social_view(&self, viewer: u64) -> Result<SocialView, StoreError> {
        self.read(move |tx| {
            let head = last_pos(&tx.open_table(META)?)?;
            let mut roles = HashMap::new();
            for ((_, c), role) in USERID_COMMUNITYNO.prefixed_in_pages(tx, &viewer, PAGE)? {
                roles.insert(c, super::community::role_from_code(role)?);
            }
            let friends = USERID_USERID_FRIEND
                .prefixed_in_pages(tx, &viewer, PAGE)?
                .into_iter()
                .map(|((_, f), _)| f)
                .collect();
            Ok(SocialView {
                head,
                roles,
                friends,
            })
        })
        .await
    }

    /// Each of `posts` as `viewer` may see it now, by the one visibility rule of communities.
    pub async fn posts_seen_by(
        &self,
        viewer: u64,
        posts: Vec<u64>,
    ) -> Result<Vec<Seen<PostRecord>>, StoreError> {
        self.read(move |tx| super::community::posts_seen_r(tx, viewer, &posts))
            .await
    }

    /// Each of `communities` as `viewer` may read it now: public ones unless banned, and
    /// those they are a member of.
    pub async fn communities_read_by(
        &self,
        viewer: u64,
        communities: Vec<u64>,
    ) -> Result<Vec<Seen<CommunityRecord>>, StoreError> {
        self.read(move |tx| super::community::communities_read_r(tx, viewer, &communities))
            .await
    }

    /// Of `keys`, those whose message is gone, recalled or emptied (a tombstone), or whose
    /// author's key is gone (erased): what the index must forget.
    pub async fn index_gone(
        &self,
        keys: Vec<((u64, u64), u64)>,
    ) -> Result<Vec<(u64, u64)>, StoreError> {
        self.read(move |tx| {
            let messages = tx.open_table(CONVNO_SEQ_MESSAGE)?;
            let mut keyless = HashMap::new();
            let mut out = Vec::new();
            for (key, author) in keys {
                let gone = match messages.get(key)? {
                    None => true,
                    Some(v) => {
                        let r = MessageRecord::decode(key.1, v.value())?;
                        r.recalled || r.body_sealed.is_empty() || r.author != author
                    }
                };
                let gone = gone
                    || match keyless.get(&author) {
                        Some(k) => *k,
                        None => {
                            let k = !has_key(tx, author)?;
                            keyless.insert(author, k);
                            k
                        }
                    };
                if gone {
                    out.push(key);
                }
            }
            Ok(out)
        })
        .await
    }

    /// The records of `keys` as stored now, each with its conversation id (`None` where gone).
    pub async fn messages_at(
        &self,
        keys: Vec<(u64, u64)>,
    ) -> Result<Vec<Option<(String, MessageRecord)>>, StoreError> {
        self.read(move |tx| {
            let convs = tx.open_table(CONVNO_CONVERSATION)?;
            let messages = tx.open_table(CONVNO_SEQ_MESSAGE)?;
            let mut out = Vec::with_capacity(keys.len());
            for (no, seq) in keys {
                let rec = match messages.get((no, seq))? {
                    Some(v) => MessageRecord::decode(seq, v.value())?,
                    None => {
                        out.push(None);
                        continue;
                    }
                };
                match convs.get(no)? {
                    Some(c) => out.push(Some((ConversationRecord::decode(no, c.value())?.id, rec))),
                    None => out.push(None),
                }
            }
            Ok(out)
        })
        .await
    }

    /// The groups `user` may find: theirs (with `true`) and the public ones they are not in.
    pub async fn findable_groups(
        &self,
        user: u64,
    ) -> Result<Vec<(ConversationRecord, bool)>, StoreError> {
        self.read(move |tx| {
            let mine: HashSet<u64> = tx
                .open_table(USERID_CONVNO)?
                .range((user, 0)..=(user, u64::MAX))?
                .map(|r| r.map(|(k, _)| k.value().1))
                .collect::<Result<_, _>>()?;
            let mut out = Vec::new();
            for row in tx.open_table(CONVNO_CONVERSATION)?.iter()? {
                let (k, v) = row?;
                let c = ConversationRecord::decode(k.value(), v.value())?;
                if c.kind != ConvKind::Group {
                    continue;
                }
                let member = mine.contains(&c.no);
                if member || c.public {
                    out.push((c, member));
                }
            }
            Ok(out)
        })
        .await
    }

    /// Records one search of `user` (the text sealed by the caller) if, in this transaction,
    /// `personalisation` is granted; drops their rows past [`LOG_MAX_PER_USER`] and those older
    /// than `cutoff`. Returns whether it was recorded.
    pub async fn log_search(
        &self,
        user: u64,
        at: Millis,
        sealed: Vec<u8>,
        cutoff: Millis,
    ) -> Result<bool, StoreError> {
        self.write(move |tx| {
            if !super::privacy::granted(
                &tx.open_table(USERID_PURPOSE_CONSENT)?,
                user,
                "personalisation",
            )? {
                return Ok(false);
            }
            let Some(p) = pseudonym_w(tx, user, true)? else {
                return Ok(false);
            };
            // One row per millisecond: a second search in the same one replaces the first.
            PSEUDONYM_MS_SEARCHLOG.insert(tx, &(p, at.0), &sealed)?;
            MS_PSEUDONYM_SEARCHLOG.insert(tx, &(at.0, p), &())?;
            // What goes: rows older than the cutoff, then the oldest past the cap. The newest
            // LOG_MAX_PER_USER rows are read (newest first, bounded); the user's rows below
            // the oldest of those, or below the cutoff, go a page at a time.
            let newest =
                PSEUDONYM_MS_SEARCHLOG.prefixed(tx, &p, kv::Order::Descending, LOG_MAX_PER_USER)?;
            let keep_from = match newest.last() {
                Some(((_, oldest), _)) if newest.len() == LOG_MAX_PER_USER => {
                    (*oldest).max(cutoff.0)
                }
                _ => cutoff.0,
            };
            loop {
                let due = PSEUDONYM_MS_SEARCHLOG.range(
                    tx,
                    Bound::Included(&(p, 0)),
                    Bound::Excluded(&(p, keep_from)),
                    kv::Order::Ascending,
                    PAGE,
                )?;
                for ((_, t), _) in &due {
                    PSEUDONYM_MS_SEARCHLOG.remove(tx, &(p, *t))?;
                    MS_PSEUDONYM_SEARCHLOG.remove(tx, &(*t, p))?;
                }
                if due.len() < PAGE {
                    break;
                }
            }
            Ok(true)
        })
        .await
    }

    /// `user`'s logged searches (time, sealed text), newest first, none older than `cutoff`.
    pub async fn search_log(
        &self,
        user: u64,
        cutoff: Millis,
    ) -> Result<Vec<(Millis, Vec<u8>)>, StoreError> {
        self.read(move |tx| {
            let Some(k) = USERID_PSEUDONYMKEY.get(tx, &user)? else {
                return Ok(Vec::new());
            };
            let p = log_pseudonym(&k, user);
            // At most LOG_MAX_PER_USER rows are kept per user (`log_search` drops the rest).
            Ok(PSEUDONYM_MS_SEARCHLOG
                .range(
                    tx,
                    Bound::Included(&(p, cutoff.0)),
                    Bound::Included(&(p, u64::MAX)),
                    kv::Order::Descending,
                    LOG_MAX_PER_USER,
                )?
                .into_iter()
                .map(|((_, t), v)| (Millis(t), v))
                .collect())
        })
        .await
    }

    /// Deletes `user`'s search log (the user's "clear"); how many were removed.
    pub async fn clear_search_log(&self, user: u64) -> Result<u64, StoreError> {
        self.write(move |tx| erase_logs(tx, user)).await
    }

    /// Removes up to `batch` search-log rows older than `cutoff` (retention); how many.
    pub async fn prune_search_log(&self, cutoff: Millis, batch: usize) -> Result<u64, StoreError> {
        self.write(move |tx| {
            let due = MS_PSEUDONYM_SEARCHLOG.range(
                tx,
                Bound::Unbounded,
                Bound::Excluded(&(cutoff.0, 0)),
                kv::Order::Ascending,
                batch,
            )?;
            for ((t, p), ()) in &due {
                MS_PSEUDONYM_SEARCHLOG.remove(tx, &(*t, *p))?;
                PSEUDONYM_MS_SEARCHLOG.remove(tx, &(*p, *t))?;
            }
            Ok(due.len() as u64)
        })
        .await
    }
}

/// Whether `user` (local or remote) still has a data key, so what they wrote can be shown.
fn has_key(tx: &ReadTransaction, user: u64) -> Result<bool, StoreError> {
    if user & REMOTE_USER_BIT != 0 {
        return Ok(tx.open_table(USERID_REMOTEUSER)?.get(user)?.is_some());
    }
    Ok(match tx.open_table(USERID_ACCOUNT)?.get(user)? {
        Some(v) => !super::AccountRecord::decode(v.value())?
            .wrapped_key
            .is_empty(),
        None => false,
    })
}

/// Up to `limit` records of `table` numbered from `from`, decoded, with the number to go on
/// from (a rebuild's batch).
fn record_batch<T>(
    tx: &ReadTransaction,
    table: kv::Table<u64, Vec<u8>>,
    from: u64,
    limit: usize,
    decode: fn(u64, &[u8]) -> Result<T, StoreError>,
) -> Result<RecordBatch<T>, StoreError> {
    let mut out = RecordBatch {
        items: Vec::new(),
        next: None,
    };
    let rows = table.range(
        tx,
        Bound::Included(&from),
        Bound::Unbounded,
        kv::Order::Ascending,
        limit.saturating_add(1),
    )?;
    for (k, v) in rows {
        if out.items.len() >= limit {
            out.next = Some(k);
            break;
        }
        out.items.push(decode(k, &v)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ConsentEvent;

    fn open(dir: &std::path::Path) -> Store {
        Store::open(&dir.join("node.redb"), |_| Ok(None)).unwrap().0
    }

    fn consent(granted: bool) -> ConsentEvent {
        ConsentEvent {
            purpose: "personalisation".into(),
            granted,
            at: Millis(1),
            policy_version: "v1".into(),
            device_id: "d".into(),
        }
    }

    /// A user's search log longer than a page (as a log written before the cap could hold)
    /// is trimmed to the newest LOG_MAX_PER_USER at the next search, and clearing removes
    /// every row past a page, with the time index, and no one else's.
    #[tokio::test]
    async fn a_search_log_past_a_page_is_trimmed_and_cleared_whole_and_only_the_users() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path());
        for u in [1, 2] {
            s.insert_account(crate::tests::account(u, &format!("u{u}")))
                .await
                .unwrap();
            s.record_consent(u, consent(true), None).await.unwrap();
            s.log_search(u, Millis(1), vec![0], Millis(0))
                .await
                .unwrap();
        }
        let n = PAGE as u64 + 40;
        // User 1's log, past a page: entries at 2 .. 2 + n.
        async fn fill(s: &Store, n: u64) {
            s.write(move |tx| {
                let p = pseudonym_w(tx, 1, false)?.unwrap();
                for at in 2..2 + n {
                    PSEUDONYM_MS_SEARCHLOG.insert(tx, &(p, at), &vec![1])?;
                    MS_PSEUDONYM_SEARCHLOG.insert(tx, &(at, p), &())?;
                }
                Ok(())
            })
            .await
            .unwrap();
        }
        fill(&s, n).await;
        s.log_search(1, Millis(10_000), vec![2], Millis(0))
            .await
            .unwrap();
        let log = s.search_log(1, Millis(0)).await.unwrap();
        assert_eq!(log.len(), LOG_MAX_PER_USER);
        assert_eq!(log[0], (Millis(10_000), vec![2]), "the newest stays");
        assert_eq!(
            log[LOG_MAX_PER_USER - 1].0,
            Millis(2 + n - 49),
            "the oldest go"
        );
        async fn rows(s: &Store) -> Result<(u64, u64), StoreError> {
            s.read(|tx| {
                Ok((
                    kv::rows_in(tx, PSEUDONYM_MS_SEARCHLOG.name())?,
                    kv::rows_in(tx, MS_PSEUDONYM_SEARCHLOG.name())?,
                ))
            })
            .await
        }
        assert_eq!(
            rows(&s).await.unwrap(),
            (51, 51),
            "the time index with them"
        );
        // Refill past a page and clear.
        fill(&s, n).await;
        // The n refilled rows (some over kept ones) and the newest.
        assert_eq!(s.clear_search_log(1).await.unwrap(), n + 1);
        assert!(s.search_log(1, Millis(0)).await.unwrap().is_empty());
        assert_eq!(rows(&s).await.unwrap(), (1, 1), "only user 2's row is left");
        assert_eq!(s.search_log(2, Millis(0)).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn searches_are_logged_only_with_personalisation_and_revoking_deletes_them() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path());
        s.insert_account(crate::tests::account(1, "alice"))
            .await
            .unwrap();
        assert!(
            !s.log_search(1, Millis(10), vec![1], Millis(0))
                .await
                .unwrap()
        );
        assert!(s.search_log(1, Millis(0)).await.unwrap().is_empty());
        s.record_consent(1, consent(true), None).await.unwrap();
        assert!(
            s.log_search(1, Millis(10), vec![1], Millis(0))
                .await
                .unwrap()
        );
        assert!(
            s.log_search(1, Millis(20), vec![2], Millis(0))
                .await
                .unwrap()
        );
        let log = s.search_log(1, Millis(0)).await.unwrap();
        assert_eq!(log, vec![(Millis(20), vec![2]), (Millis(10), vec![1])]);
        assert_eq!(
            s.search_log(1, Millis(15)).await.unwrap().len(),
            1,
            "cutoff"
        );
        assert_eq!(s.prune_search_log(Millis(15), 10).await.unwrap(), 1);
        assert_eq!(s.search_log(1, Millis(0)).await.unwrap().len(), 1);
        s.record_consent(1, consent(false), None).await.unwrap();
        assert!(s.search_log(1, Millis(0)).await.unwrap().is_empty());
        let rows = s
            .read(|tx| kv::rows_in(tx, MS_PSEUDONYM_SEARCHLOG.name()))
            .await
            .unwrap();
        assert_eq!(rows, 0, "the time index goes too");
    }

    #[tokio::test]
    async fn the_first_erasure_step_removes_the_search_log_before_its_key_goes() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path());
        s.insert_account(crate::tests::account(1, "alice"))
            .await
            .unwrap();
        s.insert_account(crate::tests::account(2, "bob"))
            .await
            .unwrap();
        for u in [1, 2] {
            s.record_consent(u, consent(true), None).await.unwrap();
            s.log_search(u, Millis(10), vec![u as u8], Millis(0))
                .await
                .unwrap();
        }
        crate::tests::begin_erasure(&s, 1).await;
        let rows = s
            .read(|tx| {
                Ok((
                    kv::rows_in(tx, PSEUDONYM_MS_SEARCHLOG.name())?,
                    kv::rows_in(tx, MS_PSEUDONYM_SEARCHLOG.name())?,
                ))
            })
            .await
            .unwrap();
        assert_eq!(rows, (1, 1), "only bob's row is left");
        assert_eq!(s.search_log(2, Millis(0)).await.unwrap().len(), 1);
    }
}
