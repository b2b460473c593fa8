//! Search (policy 1.5) and the search log (1.4.1, 1.8.1): one query over the scopes a user
//! may search — people (handle, nickname), groups (theirs and public ones), communities, posts
//! and comments on posts they may read ([`social`]), and their messages as this device may see
//! them — and,
//! only with `personalisation`, their recent searches.
//!
//! Messages, posts and communities are found through [`index::MessageIndex`]es, people through
//! an in-memory list, all held in memory only (derived personal data): [`indexer`] rebuilds
//! them at start from the store, opening sealed bodies on the blocking pool, then follows every
//! commit from the event position it reached (message events, and the search-change rows that
//! registrations, profile changes, erasures and community writes record in their own
//! transaction). A query first waits (bounded) until the index has reached the position the
//! store had when the query began, filters hits by the user's view, and checks every hit it
//! returns against the store (still there, still visible to them, author not erased) — what is
//! gone is dropped from the index at once.

pub mod index;
mod indexer;
pub mod social;
pub mod text;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::watch;

use crate::accounts::{AccountError, Accounts, Session};
use crate::consents::{ConsentError, Consents, Purpose};
use crate::crypto::{CryptoError, MasterKey};
use crate::messaging::{Body, Messaging, MessagingError};
use crate::time::{Millis, SharedClock};
use index::{Cursor, MessageIndex};
use storage::{Store, StoreError};
use text::Query;

/// Longest query, in characters.
pub const MAX_QUERY_CHARS: usize = 100;
/// Most results per scope and page.
pub const MAX_LIMIT: usize = 50;
/// How long a query waits for the index to reach the store's position before it answers from
/// what is indexed.
const CATCH_UP_WAIT: Duration = Duration::from_secs(2);

/// What can be searched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    People,
    Groups,
    Communities,
    Posts,
    Comments,
    Messages,
}

impl Scope {
    pub const ALL: [Scope; 6] = [
        Scope::People,
        Scope::Groups,
        Scope::Communities,
        Scope::Posts,
        Scope::Comments,
        Scope::Messages,
    ];
    pub const fn name(self) -> &'static str {
        match self {
            Scope::People => "people",
            Scope::Groups => "groups",
            Scope::Communities => "communities",
            Scope::Posts => "posts",
            Scope::Comments => "comments",
            Scope::Messages => "messages",
        }
    }
    pub fn parse(s: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|x| x.name() == s)
    }
}

/// Errors of search.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error(transparent)]
    Accounts(#[from] AccountError),
    #[error(transparent)]
    Consent(#[from] ConsentError),
    #[error(transparent)]
    Messaging(#[from] MessagingError),
}

fn invalid(field: &'static str, reason: &str) -> SearchError {
    SearchError::Invalid {
        field,
        reason: reason.to_string(),
    }
}

/// A validated request.
#[derive(Debug, Clone)]
pub struct Request {
    pub query: String,
    pub scopes: Vec<Scope>,
    pub limit: usize,
    pub cursor: Option<String>,
}

/// [start, end) character offsets into the text they belong to.
pub type Spans = Vec<(usize, usize)>;

#[derive(Debug, Clone)]
pub struct PersonHit {
    pub handle: String,
    pub nickname: String,
    pub handle_spans: Spans,
    pub nickname_spans: Spans,
}

#[derive(Debug, Clone)]
pub struct GroupHit {
    pub id: String,
    pub name: String,
    pub public: bool,
    pub member: bool,
    pub spans: Spans,
}

#[derive(Debug, Clone)]
pub struct MessageHit {
    pub conversation: String,
    pub seq: u64,
    pub ts: Millis,
    pub sender: String,
    pub snippet: String,
    pub spans: Spans,
}

/// One scope's page and where the next one starts.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Results {
    pub people: Option<Page<PersonHit>>,
    pub groups: Option<Page<GroupHit>>,
    pub communities: Option<Page<social::CommunityHit>>,
    pub posts: Option<Page<social::PostHit>>,
    pub comments: Option<Page<social::CommentHit>>,
    pub messages: Option<Page<MessageHit>>,
    /// Whether the search was recorded in the user's recent searches.
    pub logged: bool,
}

/// Settings of search.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// How long logged searches are kept.
    pub log_days: u64,
}

/// People as candidates: user id → (handle, nickname), both lowercased for the quick filter
/// and as shown.
#[derive(Debug, Default)]
struct People {
    by_user: HashMap<u64, (String, String, String)>,
}

/// The search service.
#[derive(Debug, Clone)]
pub struct Search {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    master: MasterKey,
    accounts: Accounts,
    consents: Consents,
    messaging: Messaging,
    clock: SharedClock,
    settings: Settings,
    /// The behaviour log, whose retention the indexer runs beside the search log's.
    behaviour: crate::behaviour::Behaviour,
    index: RwLock<MessageIndex>,
    people: RwLock<People>,
    social: RwLock<social::Social>,
    /// The event position the index has reached (0 until the rebuild is done).
    indexed: watch::Sender<u64>,
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}

impl Search {
    /// The handle and wrapped data key of each of `authors` (each read once); an erased
    /// author has neither.
    async fn authors(
        &self,
        authors: impl Iterator<Item = u64>,
    ) -> Result<HashMap<u64, (String, Vec<u8>)>, StoreError> {
        let mut authors: Vec<u64> = authors.collect();
        authors.sort_unstable();
        authors.dedup();
        Ok(self
            .inner
            .store
            .wrapped_keys(authors)
            .await?
            .into_iter()
            .map(|(u, h, k)| (u, (h, k)))
            .collect())
    }

    /// Runs `f` on the communities-and-posts index, read-locked, on the blocking pool (off the
    /// async threads, since a large index holds its lock a while).
    async fn read_social<R: Send + 'static>(
        &self,
        f: impl FnOnce(&social::Social) -> R + Send + 'static,
    ) -> Result<R, StoreError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || f(&read(&this.inner.social)))
            .await
            .map_err(|_| StoreError::Worker)
    }

    /// Runs `f` on the communities-and-posts index, write-locked, on the blocking pool.
    async fn write_social<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut social::Social) -> R + Send + 'static,
    ) -> Result<R, StoreError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || f(&mut write(&this.inner.social)))
            .await
            .map_err(|_| StoreError::Worker)
    }

    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Store,
        master: MasterKey,
        accounts: Accounts,
        consents: Consents,
        messaging: Messaging,
        clock: SharedClock,
        settings: Settings,
        behaviour: crate::behaviour::Behaviour,
    ) -> Search {
        Search {
            inner: Arc::new(Inner {
                store,
                master,
                accounts,
                consents,
                messaging,
                clock,
                settings,
                behaviour,
                index: RwLock::default(),
                people: RwLock::default(),
                social: RwLock::default(),
                indexed: watch::channel(0).0,
            }),
        }
    }

    /// Starts the indexer (rebuild, then following commits) unless `stopped` already says the
    /// node is not serving (the admin tool on a stopped node needs no index).
    /// The indexer's task; its owner joins it at shutdown, after `stopped`, so the index's
    /// hold on the store is gone before the database closes. `None` when already stopped
    /// (`node-admin` on a stopped node's files indexes nothing).
    pub fn start(&self, stopped: watch::Receiver<bool>) -> Option<tokio::task::JoinHandle<()>> {
        if *stopped.borrow() {
            return None;
        }
        Some(tokio::spawn(indexer::run(self.clone(), stopped)))
    }

    fn log_cutoff(&self) -> Millis {
        Millis(
            self.inner
                .clock
                .now()
                .0
                .saturating_sub(self.inner.settings.log_days * 86_400_000),
        )
    }

    /// Validates a request's fields.
    pub fn validate(
        query: &str,
        scopes: Option<Vec<String>>,
        limit: Option<u64>,
        cursor: Option<String>,
    ) -> Result<Request, SearchError> {
        let n = query.chars().count();
        if n > MAX_QUERY_CHARS {
            return Err(invalid(
                "query",
                &format!("at most {MAX_QUERY_CHARS} characters"),
            ));
        }
        if query.chars().any(char::is_control) {
            return Err(invalid("query", "must not hold control characters"));
        }
        if Query::parse(query).is_none() {
            return Err(invalid("query", "must hold a letter, digit or character"));
        }
        let scopes = match scopes {
            None => Scope::ALL.to_vec(),
            Some(list) => {
                let mut out = Vec::new();
                for s in list {
                    let scope = Scope::parse(&s).ok_or_else(|| {
                        invalid(
                            "scopes",
                            "each is one of people, groups, communities, posts, comments, messages",
                        )
                    })?;
                    if !out.contains(&scope) {
                        out.push(scope);
                    }
                }
                if out.is_empty() {
                    return Err(invalid("scopes", "name at least one scope"));
                }
                out
            }
        };
        if cursor.is_some() && scopes.len() != 1 {
            return Err(invalid(
                "cursor",
                "a cursor continues one scope: name exactly it",
            ));
        }
        let limit = match limit {
            None => 20,
            Some(l) if (1..=MAX_LIMIT as u64).contains(&l) => l as usize,
            Some(_) => return Err(invalid("limit", &format!("from 1 to {MAX_LIMIT}"))),
        };
        Ok(Request {
            query: query.to_string(),
            scopes,
            limit,
            cursor,
        })
    }

    /// Runs a search for the session's device.
    pub async fn search(&self, session: &Session, r: Request) -> Result<Results, SearchError> {
        let q = Query::parse(&r.query).ok_or_else(|| invalid("query", "nothing to search"))?;
        if q.parts.len() > text::MAX_PARTS {
            return Err(invalid(
                "query",
                &format!("at most {} words", text::MAX_PARTS),
            ));
        }
        // Everything committed before the search began is indexed first (bounded): an account
        // registered or a post written a moment ago is found.
        self.caught_up(self.inner.store.head_pos().await?).await;
        let mut out = Results::default();
        for scope in &r.scopes {
            match scope {
                Scope::People => {
                    let offset = offset_cursor(r.cursor.as_deref())?;
                    out.people = Some(self.people(&q, offset, r.limit).await?);
                }
                Scope::Groups => {
                    let offset = offset_cursor(r.cursor.as_deref())?;
                    out.groups = Some(self.groups(session.user, &q, offset, r.limit).await?);
                }
                Scope::Communities => {
                    let after = rank_cursor(r.cursor.as_deref())?;
                    out.communities =
                        Some(self.communities(session.user, &q, after, r.limit).await?);
                }
                Scope::Posts => {
                    let after = rank_cursor(r.cursor.as_deref())?;
                    out.posts = Some(self.posts(session.user, &q, after, r.limit).await?);
                }
                Scope::Comments => {
                    let after = rank_cursor(r.cursor.as_deref())?;
                    out.comments = Some(self.comments(session.user, &q, after, r.limit).await?);
                }
                Scope::Messages => {
                    let after = rank_cursor(r.cursor.as_deref())?;
                    out.messages = Some(self.messages(session, &q, after, r.limit).await?);
                }
            }
        }
        // Only the first page of a search is a search; following pages are not logged again.
        if r.cursor.is_none() {
            out.logged = self.log(session.user, &r.query).await?;
        }
        Ok(out)
    }

    /// Records a search in the user's recent searches if `personalisation` is granted.
    async fn log(&self, user: u64, query: &str) -> Result<bool, SearchError> {
        match self
            .inner
            .consents
            .require(user, Purpose::Personalisation)
            .await
        {
            Ok(()) => {}
            Err(ConsentError::Store(e)) => return Err(e.into()),
            Err(_) => return Ok(false),
        }
        let at = self.inner.clock.now();
        let sealed = self
            .inner
            .accounts
            .seal_personal(user, &log_aad(at), query.as_bytes())
            .await?;
        // The store checks the purpose again in the write, so a revocation racing this search
        // cannot leave a row behind.
        Ok(self
            .inner
            .store
            .log_search(user, at, sealed, self.log_cutoff())
            .await?)
    }

    /// The user's recent searches, newest first, each text once (its latest time).
    pub async fn recent(&self, user: u64) -> Result<Vec<(Millis, String)>, SearchError> {
        let mut out: Vec<(Millis, String)> = Vec::new();
        for (at, text) in self.logged(user).await? {
            if !out.iter().any(|(_, t)| *t == text) {
                out.push((at, text));
            }
        }
        Ok(out)
    }

    /// Every logged search of the user (time, text), newest first: what their export holds.
    pub async fn logged(&self, user: u64) -> Result<Vec<(Millis, String)>, SearchError> {
        let rows = self.inner.store.search_log(user, self.log_cutoff()).await?;
        let mut out = Vec::with_capacity(rows.len());
        for (at, sealed) in rows {
            let plain = self
                .inner
                .accounts
                .open_personal(user, &log_aad(at), &sealed)
                .await?;
            out.push((
                at,
                String::from_utf8(plain).map_err(|_| StoreError::Corrupt("search log"))?,
            ));
        }
        Ok(out)
    }

    /// Deletes the user's recent searches.
    pub async fn clear_recent(&self, user: u64) -> Result<u64, SearchError> {
        Ok(self.inner.store.clear_search_log(user).await?)
    }

    /// Reads a user's handle and nickname again (after registration, a profile change or the
    /// start of their erasure); returns whether the account is still there.
    pub async fn person_changed(&self, user: u64) -> Result<bool, SearchError> {
        let card = self.inner.accounts.card(user).await?;
        let mut people = write(&self.inner.people);
        match card {
            Some(c) => {
                let folded = format!("{}\u{0}{}", fold(&c.handle), fold(&c.nickname));
                people.by_user.insert(user, (folded, c.handle, c.nickname));
            }
            None => {
                people.by_user.remove(&user);
                return Ok(false);
            }
        }
        Ok(true)
    }

    async fn people(
        &self,
        q: &Query,
        offset: usize,
        limit: usize,
    ) -> Result<Page<PersonHit>, SearchError> {
        let needles = needles(q);
        let candidates: Vec<(u64, String, String)> = {
            let people = read(&self.inner.people);
            people
                .by_user
                .iter()
                .filter(|(_, (folded, _, _))| needles.iter().all(|n| folded.contains(n.as_str())))
                .map(|(u, (_, h, n))| (*u, h.clone(), n.clone()))
                .collect()
        };
        let mut ranked: Vec<(u32, String, u64, PersonHit)> = Vec::new();
        for (user, handle, nickname) in candidates {
            if let Some(hit) = person_hit(q, handle, nickname) {
                let covered = coverage(&hit.handle_spans, &hit.handle)
                    .max(coverage(&hit.nickname_spans, &hit.nickname));
                ranked.push((covered, hit.handle.clone(), user, hit));
            }
        }
        ranked.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        // Check the page against the store: an account erased or changed since it was read.
        let mut items = Vec::new();
        let mut next = None;
        for (i, (_, _, user, hit)) in ranked.into_iter().enumerate().skip(offset) {
            if items.len() == limit {
                next = Some(format!("o.{i}"));
                break;
            }
            match self.inner.accounts.card(user).await? {
                Some(c) if c.handle == hit.handle && c.nickname == hit.nickname => items.push(hit),
                _ => {
                    self.person_changed(user).await?;
                }
            }
        }
        for p in &mut items {
            p.handle = self.inner.messaging.address(&p.handle);
        }
        Ok(Page { items, next })
    }

    async fn groups(
        &self,
        user: u64,
        q: &Query,
        offset: usize,
        limit: usize,
    ) -> Result<Page<GroupHit>, SearchError> {
        let mut ranked: Vec<(u32, GroupHit)> = Vec::new();
        for (c, member) in self.inner.store.findable_groups(user).await? {
            let (spans, _) = text::find(q, &c.name);
            if spans.is_empty() {
                continue;
            }
            let score = coverage(&spans, &c.name) + if member { 1000 } else { 0 };
            ranked.push((
                score,
                GroupHit {
                    id: c.id,
                    name: c.name,
                    public: c.public,
                    member,
                    spans,
                },
            ));
        }
        ranked.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.id.cmp(&b.1.id)));
        let total = ranked.len();
        let items: Vec<GroupHit> = ranked
            .into_iter()
            .skip(offset)
            .take(limit)
            .map(|(_, g)| g)
            .collect();
        let next = (offset + items.len() < total).then(|| format!("o.{}", offset + items.len()));
        Ok(Page { items, next })
    }

    async fn messages(
        &self,
        session: &Session,
        q: &Query,
        mut after: Option<Cursor>,
        limit: usize,
    ) -> Result<Page<MessageHit>, SearchError> {
        let view = self
            .inner
            .store
            .search_view(
                session.user,
                session.device_id.clone(),
                self.inner.clock.now(),
            )
            .await?;
        self.caught_up(view.head).await;
        let view = Arc::new(view);
        let q = Arc::new(q.clone());
        let mut items = Vec::new();
        let mut next = None;
        // Each round takes one more hit than the page needs; hits the store no longer confirms
        // are dropped (and forgotten by the index), so a few rounds may be needed.
        for _ in 0..4 {
            let want = limit - items.len() + 1;
            let this = self.clone();
            let (v, qq) = (view.clone(), q.clone());
            let hits = tokio::task::spawn_blocking(move || {
                read(&this.inner.index).search(&qq, |c, s, p| v.sees(c, s, p), after, want)
            })
            .await
            .map_err(|_| StoreError::Worker)?;
            let exhausted = hits.len() < want;
            let records = self
                .inner
                .store
                .messages_at(hits.iter().map(|h| (h.conv, h.seq)).collect())
                .await?;
            let keys = self.authors(hits.iter().map(|h| h.author)).await?;
            let mut dead = Vec::new();
            for (hit, rec) in hits.iter().zip(records) {
                if items.len() == limit {
                    next = after.map(cursor_text);
                    break;
                }
                after = Some(index::cursor_of(hit));
                let shown = match (&rec, keys.get(&hit.author)) {
                    (Some((conv_id, m)), Some((handle, wrapped)))
                        if !m.recalled && m.author == hit.author && !m.body_sealed.is_empty() =>
                    {
                        let key = self.inner.master.unwrap_data_key(m.author, wrapped)?;
                        match crate::messaging::open_body(&key, conv_id, &m.id, &m.body_sealed)? {
                            Body::Text(t) => {
                                let (spans, _) = text::find(&q, &t);
                                (!spans.is_empty()).then(|| {
                                    let (snippet, spans) = text::snippet(&t, &spans);
                                    MessageHit {
                                        conversation: conv_id.clone(),
                                        seq: m.seq,
                                        ts: m.ts,
                                        sender: self.inner.messaging.address(handle),
                                        snippet,
                                        spans,
                                    }
                                })
                            }
                            Body::Media { .. } => None,
                        }
                    }
                    _ => None,
                };
                match shown {
                    Some(h) => items.push(h),
                    None => dead.push((hit.conv, hit.seq)),
                }
            }
            if !dead.is_empty() {
                let this = self.clone();
                tokio::task::spawn_blocking(move || write(&this.inner.index).remove(&dead))
                    .await
                    .map_err(|_| StoreError::Worker)?;
            }
            if next.is_some() || exhausted {
                break;
            }
        }
        Ok(Page { items, next })
    }

    /// Waits until the index has reached `pos` (or [`CATCH_UP_WAIT`] has passed).
    async fn caught_up(&self, pos: u64) {
        let mut rx = self.inner.indexed.subscribe();
        let _ = tokio::time::timeout(CATCH_UP_WAIT, rx.wait_for(|p| *p >= pos)).await;
    }
}

/// A ranked scope's cursor (messages, posts, communities), if one was given.
fn rank_cursor(s: Option<&str>) -> Result<Option<Cursor>, SearchError> {
    s.map(message_cursor).transpose()
}

fn cursor_text(c: Cursor) -> String {
    format!("m.{:x}.{:x}", c.score, c.pos)
}

fn message_cursor(s: &str) -> Result<Cursor, SearchError> {
    let bad = || invalid("cursor", "not a cursor this scope gave");
    let rest = s.strip_prefix("m.").ok_or_else(bad)?;
    let (score, pos) = rest.split_once('.').ok_or_else(bad)?;
    Ok(Cursor {
        score: u32::from_str_radix(score, 16).map_err(|_| bad())?,
        pos: u64::from_str_radix(pos, 16).map_err(|_| bad())?,
    })
}

fn offset_cursor(s: Option<&str>) -> Result<usize, SearchError> {
    match s {
        None => Ok(0),
        Some(s) => s
            .strip_prefix("o.")
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| *n <= 100_000)
            .ok_or_else(|| invalid("cursor", "not a cursor this scope gave")),
    }
}

fn log_aad(at: Millis) -> Vec<u8> {
    let mut v = b"search-log/".to_vec();
    v.extend_from_slice(&at.0.to_be_bytes());
    v
}

/// Lowercased NFC text, for the quick substring filter.
fn fold(s: &str) -> String {
    text::normalise(s).chars.iter().collect()
}

/// The query's parts as strings every match must contain.
fn needles(q: &Query) -> Vec<String> {
    q.parts
        .iter()
        .map(|p| match p {
            text::Run::Cjk(cs) => cs.iter().collect(),
            text::Run::Word(w) => w.clone(),
        })
        .collect()
}

/// Where each part of the query is in `a` or in `b` (the spans in each); `None` when some part
/// is in neither.
fn two_fields(q: &Query, a: &str, b: &str) -> Option<(Spans, Spans)> {
    let mut a_spans = Vec::new();
    let mut b_spans = Vec::new();
    for part in &q.parts {
        let one = Query {
            parts: vec![part.clone()],
        };
        let (x, _) = text::find(&one, a);
        let (y, _) = text::find(&one, b);
        if x.is_empty() && y.is_empty() {
            return None;
        }
        a_spans.extend(x);
        b_spans.extend(y);
    }
    a_spans.sort_unstable();
    b_spans.sort_unstable();
    Some((a_spans, b_spans))
}

/// A person matches when every part of the query is in their handle or their nickname.
fn person_hit(q: &Query, handle: String, nickname: String) -> Option<PersonHit> {
    let (handle_spans, nickname_spans) = two_fields(q, &handle, &nickname)?;
    Some(PersonHit {
        handle,
        nickname,
        handle_spans,
        nickname_spans,
    })
}

/// How much of `text` the spans cover, in thousandths.
fn coverage(spans: &Spans, text: &str) -> u32 {
    let len = text.chars().count().max(1);
    let covered: usize = spans.iter().map(|(s, e)| e - s).sum();
    (covered.min(len) * 1000 / len) as u32
}
