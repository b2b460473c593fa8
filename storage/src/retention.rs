//! Retention as stored: finding what is past its time (in a read snapshot, so a long scan never
//! holds up writers) and removing it in bounded write batches, sparing users under legal hold.
//!
//! Categories: messages older than the maximum; *undelivered* messages (in conversations
//! where no member keeps cloud history, so only some device's missing acknowledgement keeps
//! them) older than that maximum; media (copies fetched from other nodes included, and the
//! fetches of such copies still unfinished); device sessions unused for too long; and the
//! security (audit) log, pruned from its start with the chain's new base recorded in META
//! `audit_base`, so `verify_audit` still proves the rest intact; and the record of envelopes
//! received from peers (`origin_envid_seen`) and of the answers given to their transactions
//! (`origin_txnid_answer`), kept long enough that a peer's resend is still recognised, then
//! dropped so they do not grow for ever (one `federation_seen` category for both). Both are
//! found through their time indexes, so a run reads only what is due. And devices' client
//! transaction ids (`userid_deviceid_txnid_sent`, one per message sent), which record the
//! conversation and time of a message and are needed only while a client may resend it: the
//! table is scanned in key order, resuming where the previous batch stopped, and the sends
//! not yet moved out of the sent log (`sentno_sent`, `storage/sentlog.rs`) with its first batch.

use std::collections::{HashMap, HashSet};

use redb::{ReadTransaction, ReadableTable};

use super::catalog::*;
use super::messaging::{EventRecord, MediaRecord, MessageRecord};
use super::{Store, StoreError};
use primitives::time::Millis;

/// The times before which each category goes (`None`: no maximum).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cutoffs {
    pub messages: Option<Millis>,
    pub undelivered: Option<Millis>,
    pub media: Option<Millis>,
    pub sessions: Option<Millis>,
    pub security_logs: Option<Millis>,
    pub federation_seen: Option<Millis>,
    pub txn_ids: Option<Millis>,
}

/// How many of each category were (or would be) removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub messages: u64,
    pub undelivered: u64,
    pub media: u64,
    pub sessions: u64,
    pub security_logs: u64,
    pub federation_seen: u64,
    pub txn_ids: u64,
    /// Communities (`storage/community/retention.rs`): posts with their comments, comments, and
    /// moderation log entries.
    pub community_posts: u64,
    pub community_comments: u64,
    pub community_log: u64,
}

impl Counts {
    pub fn add(&mut self, o: &Counts) {
        self.messages += o.messages;
        self.undelivered += o.undelivered;
        self.media += o.media;
        self.sessions += o.sessions;
        self.security_logs += o.security_logs;
        self.federation_seen += o.federation_seen;
        self.txn_ids += o.txn_ids;
        self.community_posts += o.community_posts;
        self.community_comments += o.community_comments;
        self.community_log += o.community_log;
    }
    pub fn total(&self) -> u64 {
        self.messages
            + self.undelivered
            + self.media
            + self.sessions
            + self.security_logs
            + self.federation_seen
            + self.txn_ids
            + self.community_posts
            + self.community_comments
            + self.community_log
    }
}

/// (user id, device id, txn id): a key of `userid_deviceid_txnid_sent`.
pub type SentRow = (u64, String, String);

/// Where the key-ordered scans of a retention pass go on; `None`: that scan is complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resume {
    /// The next (conversation, seq) of `convno_seq_message`.
    pub messages: Option<(u64, u64)>,
    /// The next key of `userid_deviceid_txnid_sent`.
    pub txn_ids: Option<SentRow>,
}

impl Resume {
    /// The start of a pass.
    pub fn start() -> Resume {
        Resume {
            messages: Some((0, 0)),
            txn_ids: Some((0, String::new(), String::new())),
        }
    }
}

/// One batch of work found in a snapshot.
#[derive(Debug, Clone, Default)]
struct Found {
    /// (conv, seq, pos, undelivered?)
    messages: Vec<(u64, u64, u64, bool)>,
    media: Vec<String>,
    /// Unfinished fetches of media from other nodes (issue 25), by local media id.
    fetches: Vec<String>,
    sessions: Vec<([u8; 32], u64, String)>,
    /// Audit entries below this seq go.
    audit_below: Option<u64>,
    audit_count: u64,
    /// (time, origin, envelope id) of envelopes received before the cut-off.
    seen: Vec<(u64, String, String)>,
    /// (time, origin, transaction id) of transactions answered before the cut-off.
    answers: Vec<(u64, String, String)>,
    /// Sent-txn rows sent before the cut-off, with the time they record.
    txn_ids: Vec<(SentRow, u64)>,
    /// Where the message scan goes on, if it stopped early.
    next: Option<(u64, u64)>,
    /// Where the sent-txn scan goes on, if it stopped early.
    txn_next: Option<SentRow>,
}

/// The first `limit` rows of a (time, origin, id) index that are older than `cut`.
fn due_by_time(
    tx: &ReadTransaction,
    index: redb::TableDefinition<(u64, &str, &str), ()>,
    cut: Millis,
    limit: usize,
) -> Result<Vec<(u64, String, String)>, StoreError> {
    let mut out = Vec::new();
    for row in tx.open_table(index)?.range(..(cut.0, "", ""))? {
        let (key, _) = row?;
        let (at, origin, id) = key.value();
        out.push((at, origin.to_string(), id.to_string()));
        if out.len() >= limit {
            break;
        }
    }
    Ok(out)
}

/// Legal holds read at a time by [`held`].
const HOLD_PAGE: usize = 256;

/// The users under legal hold, read a page at a time (in a read: a write asks per user).
pub(crate) fn held(tx: &ReadTransaction) -> Result<HashSet<u64>, StoreError> {
    let mut out = HashSet::new();
    let mut after: Option<u64> = None;
    loop {
        let rows = USERID_LEGALHOLD.page(tx, after.as_ref(), HOLD_PAGE)?;
        let done = rows.len() < HOLD_PAGE;
        after = rows.last().map(|(k, _)| *k);
        out.extend(rows.into_iter().map(|(k, _)| k));
        if done {
            return Ok(out);
        }
    }
}

/// Audit log entries [`find`] reads at a time (the log is behind the key-value seam).
const AUDIT_PAGE: usize = 256;

fn find(
    tx: &ReadTransaction,
    cut: &Cutoffs,
    from: &Resume,
    limit: usize,
) -> Result<Found, StoreError> {
    let held = held(tx)?;
    let mut f = Found::default();
    if let Some(from) = from.messages
        && (cut.messages.is_some() || cut.undelivered.is_some())
    {
        let members = tx.open_table(CONVNO_USERID_MEMBER)?;
        let consents = tx.open_table(USERID_PURPOSE_CONSENT)?;
        // Per conversation: (has a held member, someone keeps cloud history).
        let mut convs: HashMap<u64, (bool, bool)> = HashMap::new();
        let mut seen = 0;
        for row in tx.open_table(CONVNO_SEQ_MESSAGE)?.range(from..)? {
            let (k, v) = row?;
            let (no, seq) = k.value();
            seen += 1;
            if seen > limit {
                f.next = Some((no, seq));
                break;
            }
            let rec = MessageRecord::decode(seq, v.value())?;
            if held.contains(&rec.author) {
                continue;
            }
            let info = match convs.get(&no) {
                Some(i) => *i,
                None => {
                    let mut i = (false, false);
                    for m in members.range((no, 0)..=(no, u64::MAX))? {
                        let user = m?.0.value().1;
                        i.0 |= held.contains(&user);
                        i.1 |= super::privacy::granted(&consents, user, "cloud_sync")?;
                    }
                    convs.insert(no, i);
                    i
                }
            };
            if info.0 {
                continue;
            }
            if cut.messages.is_some_and(|c| rec.ts < c) {
                f.messages.push((no, seq, rec.pos, false));
            } else if !info.1 && cut.undelivered.is_some_and(|c| rec.ts < c) {
                f.messages.push((no, seq, rec.pos, true));
            }
        }
    }
    if let Some(c) = cut.media {
        for row in tx.open_table(MEDIAID_MEDIA)?.iter()? {
            let (k, v) = row?;
            let rec = MediaRecord::decode(v.value())?;
            if rec.created < c && !held.contains(&rec.owner) {
                f.media.push(k.value().to_string());
                if f.media.len() >= limit {
                    break;
                }
            }
        }
        let mut after: Option<String> = None;
        'fetches: loop {
            let rows = MEDIAID_FETCH.page(tx, after.as_ref(), AUDIT_PAGE)?;
            let done = rows.len() < AUDIT_PAGE;
            after = rows.last().map(|(k, _)| k.clone());
            for (k, v) in rows {
                let job = super::fedmedia::FetchJob::decode(&v)?;
                if job.created < c && !held.contains(&job.author) {
                    f.fetches.push(k);
                    if f.fetches.len() >= limit {
                        break 'fetches;
                    }
                }
            }
            if done {
                break;
            }
        }
    }
    if let Some(c) = cut.sessions {
        for row in tx.open_table(TOKENHASH_SESSION)?.iter()? {
            let (k, v) = row?;
            let s = super::SessionRecord::decode(*k.value(), v.value())?;
            if s.last_seen < c && !held.contains(&s.user) {
                f.sessions.push((*k.value(), s.user, s.device_id));
                if f.sessions.len() >= limit {
                    break;
                }
            }
        }
    }
    if let Some(c) = cut.security_logs {
        let mut below = None;
        // From the log's start, a page at a time, up to the first entry kept or `limit`.
        let page = limit.clamp(1, AUDIT_PAGE);
        'audit: loop {
            let rows = SEQ_AUDITENTRY.page(tx, below.map(|b: u64| b - 1).as_ref(), page)?;
            let more = rows.len() == page;
            for (seq, v) in rows {
                let rec = super::AuditRecord::decode(seq, &v)?;
                if rec.entry.at >= c || f.audit_count as usize >= limit {
                    break 'audit;
                }
                below = Some(seq + 1);
                f.audit_count += 1;
            }
            if !more {
                break;
            }
        }
        f.audit_below = below;
    }
    if let Some(c) = cut.federation_seen {
        f.seen = due_by_time(tx, MS_ORIGIN_ENVID_SEEN, c, limit)?;
        f.answers = due_by_time(tx, MS_ORIGIN_TXNID_ANSWERED, c, limit)?;
    }
    if let (Some(c), Some((user, device, txn))) = (cut.txn_ids, &from.txn_ids) {
        // Rows of a device whose session goes in this batch go with it (and are counted as
        // that session), so a dry run counts each row once.
        let ending: HashSet<(u64, &str)> = f
            .sessions
            .iter()
            .map(|(_, u, d)| (*u, d.as_str()))
            .collect();
        let due = |user: u64, device: &str, ts: u64| {
            ts < c.0 && !held.contains(&user) && !ending.contains(&(user, device))
        };
        // Sends still in the log (not yet moved into the index) are read once, with the
        // index's first batch.
        if (*user, device.as_str(), txn.as_str()) == (0, "", "") {
            for ((user, device, txn), (_, _, ts, _)) in super::sentlog::logged(tx)? {
                if due(user, &device, ts) {
                    f.txn_ids.push(((user, device, txn), ts));
                }
            }
        }
        let mut scanned = 0;
        let sent = tx.open_table(USERID_DEVICEID_TXNID_SENT)?;
        for row in sent.range((*user, device.as_str(), txn.as_str())..)? {
            let (k, v) = row?;
            let (user, device, txn) = k.value();
            scanned += 1;
            if scanned > limit {
                f.txn_next = Some((user, device.to_string(), txn.to_string()));
                break;
            }
            let (_, _, ts, _) = v.value();
            if due(user, device, ts) {
                f.txn_ids
                    .push(((user, device.to_string(), txn.to_string()), ts));
            }
        }
    }
    Ok(f)
}

impl Store {
    /// What retention would remove now (a read snapshot; nothing changes).
    pub async fn retention_count(&self, cut: Cutoffs) -> Result<Counts, StoreError> {
        self.read(move |tx| {
            let f = find(tx, &cut, &Resume::start(), usize::MAX)?;
            Ok(Counts {
                messages: f.messages.iter().filter(|m| !m.3).count() as u64,
                undelivered: f.messages.iter().filter(|m| m.3).count() as u64,
                media: (f.media.len() + f.fetches.len()) as u64,
                sessions: f.sessions.len() as u64,
                security_logs: f.audit_count,
                federation_seen: (f.seen.len() + f.answers.len()) as u64,
                txn_ids: f.txn_ids.len() as u64,
                ..Counts::default()
            })
        })
        .await
    }

    /// Removes one bounded batch (at most `limit` rows scanned per category) starting the
    /// key-ordered scans at `from` ([`Resume::start`] for a new pass). Returns what went, the
    /// users whose sessions ended, and where to continue (`None`: this pass is complete).
    pub async fn retention_batch(
        &self,
        cut: Cutoffs,
        from: Resume,
        limit: usize,
    ) -> Result<(Counts, Vec<u64>, Option<Resume>), StoreError> {
        let mut found = self.read(move |tx| find(tx, &cut, &from, limit)).await?;
        let next = Resume {
            messages: found.next,
            txn_ids: found.txn_next.take(),
        };
        let more_other = found.media.len() >= limit
            || found.fetches.len() >= limit
            || found.sessions.len() >= limit
            || found.seen.len() >= limit
            || found.answers.len() >= limit;
        let nothing = found.messages.is_empty()
            && found.media.is_empty()
            && found.fetches.is_empty()
            && found.sessions.is_empty()
            && found.audit_below.is_none()
            && found.seen.is_empty()
            && found.answers.is_empty()
            && found.txn_ids.is_empty();
        // A batch that found nothing due (most of a pass over a large table) makes no commit.
        let (counts, users) = if nothing {
            (Counts::default(), Vec::new())
        } else {
            self.write(move |tx| {
                // Asked per user: a write reads no whole table.
                let held = |user: u64| -> Result<bool, StoreError> {
                    Ok(USERID_LEGALHOLD.get(tx, &user)?.is_some())
                };
                let mut c = Counts::default();
                let mut messages = tx.open_table(CONVNO_SEQ_MESSAGE)?;
                let mut events = tx.open_table(CONVNO_POS_EVENT)?;
                for (no, seq, pos, undelivered) in &found.messages {
                    let existing = messages
                        .get((*no, *seq))?
                        .map(|v| MessageRecord::decode(*seq, v.value()))
                        .transpose()?;
                    let Some(rec) = existing else { continue };
                    if held(rec.author)? {
                        continue;
                    }
                    messages.remove((*no, *seq))?;
                    let ev = events.get((*no, *pos))?.map(|v| v.value().to_vec());
                    if let Some(ev) = ev
                        && matches!(EventRecord::decode(&ev), Ok(EventRecord::Message { .. }))
                    {
                        events.remove((*no, *pos))?;
                    }
                    if *undelivered {
                        c.undelivered += 1;
                    } else {
                        c.messages += 1;
                    }
                }
                drop((messages, events));
                for id in &found.media {
                    let removed = tx
                        .open_table(MEDIAID_MEDIA)?
                        .remove(id.as_str())?
                        .map(|v| MediaRecord::decode(v.value()))
                        .transpose()?;
                    let Some(rec) = removed else { continue };
                    tx.open_table(MEDIAID_CHUNKNO_CHUNK)?
                        .retain_in((id.as_str(), 0)..=(id.as_str(), u32::MAX), |_, _| false)?;
                    tx.open_table(MEDIAID_CONVNO)?
                        .retain_in((id.as_str(), 0)..=(id.as_str(), u64::MAX), |_, _| false)?;
                    tx.open_table(USERID_MEDIAID)?
                        .remove((rec.owner, id.as_str()))?;
                    super::fedmedia::drop_offers(tx, id)?;
                    c.media += 1;
                }
                for id in &found.fetches {
                    if super::fedmedia::drop_unfinished_fetch(tx, id)? {
                        c.media += 1;
                    }
                }
                let mut users = Vec::new();
                for (hash, user, device) in &found.sessions {
                    if tx.open_table(TOKENHASH_SESSION)?.remove(hash)?.is_some() {
                        tx.open_table(USERID_DEVICEID_TOKENHASH)?
                            .remove((*user, device.as_str()))?;
                        Store::forget_device(tx, *user, device)?;
                        users.push(*user);
                        c.sessions += 1;
                    }
                }
                if let Some(below) = found.audit_below {
                    c.security_logs = super::audit::prune_audit(tx, below, limit)?;
                }
                let mut seen = tx.open_table(ORIGIN_ENVID_SEEN)?;
                let mut seen_by_time = tx.open_table(MS_ORIGIN_ENVID_SEEN)?;
                for (at, origin, id) in &found.seen {
                    let key = (origin.as_str(), id.as_str());
                    // Only the row the index entry was written for (it is rewritten, with a
                    // new index entry, when an id is seen again).
                    if seen.get(key)?.is_some_and(|v| v.value() == *at) {
                        seen.remove(key)?;
                        c.federation_seen += 1;
                    }
                    seen_by_time.remove((*at, origin.as_str(), id.as_str()))?;
                }
                let mut answers = tx.open_table(ORIGIN_TXNID_ANSWER)?;
                let mut answers_by_time = tx.open_table(MS_ORIGIN_TXNID_ANSWERED)?;
                for (at, origin, id) in &found.answers {
                    let key = (origin.as_str(), id.as_str());
                    if answers.get(key)?.is_some_and(|v| v.value().0 == *at) {
                        answers.remove(key)?;
                        c.federation_seen += 1;
                    }
                    answers_by_time.remove((*at, origin.as_str(), id.as_str()))?;
                }
                drop((seen, seen_by_time, answers, answers_by_time));
                // Rows found in the sent log are looked for in the index, where this puts them
                // (only when some are due: a purge of messages alone leaves the log alone).
                if !found.txn_ids.is_empty() {
                    super::sentlog::flush(tx)?;
                }
                let mut sent = tx.open_table(USERID_DEVICEID_TXNID_SENT)?;
                for ((user, device, txn), at) in &found.txn_ids {
                    let key = (*user, device.as_str(), txn.as_str());
                    if held(*user)? {
                        continue;
                    }
                    // Only the row that was found (a removed id can be used again later).
                    if sent.get(key)?.is_some_and(|v| v.value().2 == *at) {
                        sent.remove(key)?;
                        c.txn_ids += 1;
                    }
                }
                Ok((c, users))
            })
            .await?
        };
        // A scan that finished stays finished for the rest of the pass; the categories read
        // through time indexes (or whole) start again, since what they found is gone.
        let unfinished = next.messages.is_some() || next.txn_ids.is_some();
        let next = (unfinished || more_other).then_some(next);
        Ok((counts, users, next))
    }
}

impl Store {
    /// Records that a retention run finished at `at` (META `last_retention_run`, 8 bytes
    /// big-endian ms), with its audit entry if it has one, in one transaction: `status` reads
    /// this small record instead of searching the audit log, and sees runs that removed
    /// nothing (which write no audit entry) too.
    pub async fn retention_ran(
        &self,
        at: Millis,
        audit: Option<super::AuditEntry>,
    ) -> Result<(), StoreError> {
        self.write(move |tx| {
            tx.open_table(META)?
                .insert("last_retention_run", at.0.to_be_bytes().as_slice())?;
            if let Some(entry) = &audit {
                super::audit::append_audit(tx, entry.clone())?;
            }
            Ok(())
        })
        .await
    }

    /// When retention last ran (not a dry run); `None` if never since this record was kept.
    pub async fn last_retention_run(&self) -> Result<Option<Millis>, StoreError> {
        self.read(|tx| {
            let meta = tx.open_table(META)?;
            let Some(v) = meta.get("last_retention_run")? else {
                return Ok(None);
            };
            let b: [u8; 8] = v
                .value()
                .try_into()
                .map_err(|_| StoreError::Corrupt("meta"))?;
            Ok(Some(Millis(u64::from_be_bytes(b))))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// More legal holds than a page: the set of held users and the list of holds have them
    /// all, each read bounded.
    #[tokio::test]
    async fn legal_holds_past_a_page_are_all_read() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = Store::open(&dir.path().join("n.redb"), |_| Ok(None)).unwrap();
        let n = HOLD_PAGE as u64 * 2 + 3;
        s.write(move |tx| {
            for u in 1..=n {
                USERID_LEGALHOLD.insert(tx, &u, &(u, String::new()))?;
            }
            Ok(())
        })
        .await
        .unwrap();
        let set = s.read(held).await.unwrap();
        assert_eq!(set, (1..=n).collect::<HashSet<u64>>());
        let holds = s.legal_holds().await.unwrap();
        assert_eq!(
            holds.iter().map(|h| h.0).collect::<Vec<_>>(),
            (1..=n).collect::<Vec<_>>(),
            "in user order, each once"
        );
    }

    /// A fresh store in which envelope ids from b.test were received at the given times.
    async fn store_with_seen(seen: &'static [(&'static str, u64)]) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = Store::open(&dir.path().join("n.redb"), |_| Ok(None)).unwrap();
        s.write(move |tx| {
            for (id, at) in seen {
                crate::replica::mark_seen(tx, "b.test", id, Millis(*at))?;
            }
            Ok(())
        })
        .await
        .unwrap();
        (dir, s)
    }

    /// Cut-offs with only `federation_seen` set.
    fn seen_before(ms: u64) -> Cutoffs {
        Cutoffs {
            federation_seen: Some(Millis(ms)),
            ..Cutoffs::default()
        }
    }

    #[tokio::test]
    async fn received_envelope_ids_go_after_their_time_and_newer_ones_stay() {
        let (_dir, s) = store_with_seen(&[("old", 1_000), ("new", 5_000)]).await;
        assert_eq!(
            s.retention_count(Cutoffs::default())
                .await
                .unwrap()
                .federation_seen,
            0,
            "nothing goes without a cut-off"
        );
        let cut = seen_before(2_000);
        assert_eq!(s.retention_count(cut).await.unwrap().federation_seen, 1);
        let (c, _, next) = s.retention_batch(cut, Resume::start(), 500).await.unwrap();
        assert_eq!((c.federation_seen, next), (1, None));
        let left: Vec<String> = s
            .read(|tx| {
                let mut out = Vec::new();
                for row in tx.open_table(ORIGIN_ENVID_SEEN)?.iter()? {
                    out.push(row?.0.value().1.to_string());
                }
                Ok(out)
            })
            .await
            .unwrap();
        assert_eq!(left, ["new"]);
    }

    #[tokio::test]
    async fn an_id_seen_again_is_kept_by_its_latest_time() {
        let (_dir, s) = store_with_seen(&[("id", 1_000), ("id", 5_000)]).await;
        let cut = seen_before(2_000);
        assert_eq!(s.retention_count(cut).await.unwrap().federation_seen, 0);
        let (c, _, _) = s.retention_batch(cut, Resume::start(), 500).await.unwrap();
        assert_eq!(c.federation_seen, 0);
        let later = seen_before(6_000);
        assert_eq!(s.retention_count(later).await.unwrap().federation_seen, 1);
    }

    type SentRows = &'static [(u64, &'static str, &'static str, u64)];

    /// A fresh store with sent-txn rows (user, device, txn, time); user 3 is under legal hold.
    async fn store_with_sent(rows: SentRows) -> (tempfile::TempDir, Store) {
        store_with_sent_and_logged(rows, &[]).await
    }

    /// [`store_with_sent`], with `logged` still in the sent log (not yet moved to the index).
    async fn store_with_sent_and_logged(
        rows: SentRows,
        logged: SentRows,
    ) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = Store::open(&dir.path().join("n.redb"), |_| Ok(None)).unwrap();
        s.write(move |tx| {
            let mut sent = tx.open_table(USERID_DEVICEID_TXNID_SENT)?;
            for (user, device, txn, at) in rows {
                sent.insert((*user, *device, *txn), (7, 1, *at, 1))?;
            }
            let mut log = tx.open_table(SENTNO_SENT)?;
            for (no, (user, device, txn, at)) in logged.iter().enumerate() {
                log.insert(no as u64, (*user, *device, *txn, 7, 1, *at, 1))?;
            }
            USERID_LEGALHOLD.insert(tx, &3, &(0, "court order".to_string()))?;
            Ok(())
        })
        .await
        .unwrap();
        (dir, s)
    }

    /// Every recorded send, in the index or the log, in key order.
    async fn sent_keys(s: &Store) -> Vec<String> {
        s.read(|tx| {
            let mut out = Vec::new();
            for row in tx.open_table(USERID_DEVICEID_TXNID_SENT)?.iter()? {
                let (k, _) = row?;
                let (u, d, t) = k.value();
                out.push(format!("{u}/{d}/{t}"));
            }
            for ((u, d, t), _) in super::super::sentlog::logged(tx)? {
                out.push(format!("{u}/{d}/{t}"));
            }
            out.sort();
            Ok(out)
        })
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn txn_ids_go_after_their_window_in_resumed_batches_sparing_held_users() {
        // More rows that stay at the start of the key order than one batch scans: a pass that
        // did not resume where it stopped would never get past them.
        // Some rows are still in the sent log, where a send puts them first.
        let (_dir, s) = store_with_sent_and_logged(
            &[
                (1, "a", "k1", 9_000),
                (1, "a", "k2", 9_000),
                (1, "b", "t1", 1_000),
                (2, "c", "x", 1_200),
            ],
            &[
                (1, "a", "k3", 9_000),
                (1, "b", "t2", 1_500),
                (2, "c", "y", 1_300),
                (3, "d", "z", 1_000),
            ],
        )
        .await;
        let cut = Cutoffs {
            txn_ids: Some(Millis(5_000)),
            ..Cutoffs::default()
        };
        assert_eq!(
            s.retention_count(Cutoffs::default()).await.unwrap().txn_ids,
            0
        );
        assert_eq!(s.retention_count(cut).await.unwrap().txn_ids, 4);
        // Two rows scanned a batch: the pass has to resume to reach every user.
        let mut from = Resume::start();
        let (mut removed, mut batches) = (0, 0);
        loop {
            let (c, _, next) = s.retention_batch(cut, from.clone(), 2).await.unwrap();
            removed += c.txn_ids;
            batches += 1;
            match next {
                Some(n) => from = n,
                None => break,
            }
            assert!(batches < 10, "the pass must end");
        }
        assert_eq!(removed, 4);
        assert!(batches >= 3, "{batches} batches");
        assert_eq!(sent_keys(&s).await, ["1/a/k1", "1/a/k2", "1/a/k3", "3/d/z"]);
    }

    #[tokio::test]
    async fn a_batch_with_nothing_due_makes_no_commit() {
        let (_dir, s) = store_with_sent(&[(1, "a", "t1", 9_000)]).await;
        let cut = Cutoffs {
            txn_ids: Some(Millis(5_000)),
            federation_seen: Some(Millis(5_000)),
            ..Cutoffs::default()
        };
        let before = s.write_stats();
        let (c, _, next) = s.retention_batch(cut, Resume::start(), 500).await.unwrap();
        assert_eq!((c.total(), next), (0, None));
        assert_eq!(s.write_stats(), before);
    }

    #[tokio::test]
    async fn transaction_answers_go_after_their_time_and_newer_ones_stay() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = Store::open(&dir.path().join("n.redb"), |_| Ok(None)).unwrap();
        for (txn, at) in [("old", 1_000), ("new", 5_000)] {
            s.record_transaction(
                "b.test".into(),
                txn.into(),
                [1; 32],
                b"{}".to_vec(),
                Millis(at),
            )
            .await
            .unwrap();
        }
        let cut = seen_before(2_000);
        assert_eq!(s.retention_count(cut).await.unwrap().federation_seen, 1);
        let (c, _, next) = s.retention_batch(cut, Resume::start(), 500).await.unwrap();
        assert_eq!((c.federation_seen, next), (1, None));
        let answer = |txn: &'static str| s.transaction_answer("b.test".into(), txn.into());
        assert_eq!(answer("old").await.unwrap(), None);
        assert_eq!(
            answer("new").await.unwrap(),
            Some(([1; 32], b"{}".to_vec()))
        );
    }
}
