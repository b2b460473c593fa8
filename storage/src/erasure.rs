//! Account erasure as stored: the erasure record, the steps that remove a user's rows (each
//! idempotent and bounded, so an erasure killed at any point resumes where it was), erased
//! handles, and legal holds.
//!
//! Steps, in order (`Phase`): `Scheduled` → `Begin` (in one transaction: the data key, phone,
//! password, profile, phone index and every session go; the handle's keyed hash is recorded)
//! → `Peers` (the domain asks peers to erase) → `Rows` (the user's own small tables) →
//! `Memberships` → `Media` (in batches) → `Messages` (a scan in batches turning what they wrote
//! into tombstones) → `Done` (the account and handle rows go).
//!
//! The erasure records and erased handles are behind the key-value seam (schema 13); the list
//! of due erasures reads the records [`PAGE`] at a time.

use redb::{ReadableTable, WriteTransaction};

use super::accounts::update_account;
use super::audit::{AuditEntry, append_audit};
use super::catalog::*;
use super::codec::{Dec, Enc};
use super::kv;
use super::messaging::{
    EventRecord, MemberAction, MessageRecord, Role, load_state_w, next_pos, put_event,
};
use super::{Store, StoreError};
use primitives::time::Millis;

/// How far an erasure got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    Scheduled,
    Begun,
    PeersAsked,
    RowsGone,
    MembershipsGone,
    MediaGone,
    Done,
}

impl Phase {
    const ALL: [Phase; 7] = [
        Phase::Scheduled,
        Phase::Begun,
        Phase::PeersAsked,
        Phase::RowsGone,
        Phase::MembershipsGone,
        Phase::MediaGone,
        Phase::Done,
    ];
    fn code(self) -> u64 {
        Phase::ALL.iter().position(|p| *p == self).unwrap_or(0) as u64
    }
    pub fn name(self) -> &'static str {
        match self {
            Phase::Scheduled => "scheduled",
            Phase::Begun => "keys destroyed",
            Phase::PeersAsked => "peers asked",
            Phase::RowsGone => "account data removed",
            Phase::MembershipsGone => "memberships removed",
            Phase::MediaGone => "media removed",
            Phase::Done => "done",
        }
    }
}

/// Erasure records read at a time (`userid_erasure` is behind the key-value seam since schema
/// 13: every read names its limit).
const PAGE: usize = 256;

/// The `userid_note_adminnote` name of an admin's erasure reason.
pub const ERASURE_REASON: &str = "erasure_reason";
/// The `userid_note_adminnote` name of a legal hold's basis.
pub const HOLD_BASIS: &str = "hold_basis";

/// An account erasure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErasureRecord {
    pub requested: Millis,
    pub due: Millis,
    /// `user` (from the API, after the cooling-off period) or `admin`.
    pub by: String,
    pub reason: String,
    pub phase: Phase,
    /// Where the message scan resumes: (conversation, seq).
    pub cursor: (u64, u64),
    pub finished: Option<Millis>,
}

impl ErasureRecord {
    pub(super) fn encode(&self) -> Vec<u8> {
        Enc::new(1)
            .u64(self.requested.0)
            .u64(self.due.0)
            .str(&self.by)
            .str(&self.reason)
            .u64(self.phase.code())
            .u64(self.cursor.0)
            .u64(self.cursor.1)
            .u64(self.finished.map_or(0, |m| m.0))
            .finish()
    }
    pub(super) fn decode(b: &[u8]) -> Result<Self, StoreError> {
        let mut d = Dec::new(b, "erasure", 1)?;
        let r = ErasureRecord {
            requested: Millis(d.u64()?),
            due: Millis(d.u64()?),
            by: d.string()?,
            reason: d.string()?,
            phase: *Phase::ALL
                .get(d.u64()? as usize)
                .ok_or(StoreError::Corrupt("erasure"))?,
            cursor: (d.u64()?, d.u64()?),
            finished: match d.u64()? {
                0 => None,
                t => Some(Millis(t)),
            },
        };
        d.end()?;
        Ok(r)
    }
}

fn get_erasure(tx: &impl kv::Read, user: u64) -> Result<Option<ErasureRecord>, StoreError> {
    USERID_ERASURE
        .get(tx, &user)?
        .map(|v| ErasureRecord::decode(&v))
        .transpose()
}

fn put_erasure(tx: &impl kv::Write, user: u64, r: &ErasureRecord) -> Result<(), StoreError> {
    USERID_ERASURE.insert(tx, &user, &r.encode())
}

/// Removes every key of `table` in the range of one user (first tuple element).
macro_rules! remove_user_range {
    ($tx:expr, $table:expr, $lo:expr, $hi:expr) => {{
        let mut t = $tx.open_table($table)?;
        t.retain_in($lo..=$hi, |_, _| false)?;
    }};
}

/// What one step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// More to do; the record is at this phase now.
    Progress(Phase),
    /// Held by a legal hold: nothing done.
    Held,
    /// No erasure is scheduled for this user, or it is not due.
    NotDue,
}

impl Store {
    /// Schedules an erasure; `Ok(false)` if one exists already (its record is unchanged).
    pub async fn schedule_erasure(
        &self,
        user: u64,
        rec: ErasureRecord,
        audit: AuditEntry,
        reason_sealed: Option<Vec<u8>>,
    ) -> Result<bool, StoreError> {
        self.write(move |tx| {
            if let Some(sealed) = &reason_sealed {
                USERID_NOTE_ADMINNOTE.insert(tx, &(user, ERASURE_REASON.to_string()), sealed)?;
            }
            if get_erasure(tx, user)?.is_some() {
                return Ok(false);
            }
            put_erasure(tx, user, &rec)?;
            append_audit(tx, audit.clone())?;
            Ok(true)
        })
        .await
    }

    /// Cancels a scheduled erasure that has not started. False if there is none to cancel.
    pub async fn cancel_erasure(&self, user: u64, audit: AuditEntry) -> Result<bool, StoreError> {
        self.write(move |tx| match get_erasure(tx, user)? {
            Some(r) if r.phase == Phase::Scheduled => {
                USERID_ERASURE.remove(tx, &user)?;
                append_audit(tx, audit.clone())?;
                Ok(true)
            }
            _ => Ok(false),
        })
        .await
    }

    pub async fn erasure_of(&self, user: u64) -> Result<Option<ErasureRecord>, StoreError> {
        self.read(move |tx| get_erasure(tx, user)).await
    }

    /// Users whose erasure is due at `now` and not finished (held ones included; the step
    /// says `Held`).
    pub async fn due_erasures(&self, now: Millis) -> Result<Vec<u64>, StoreError> {
        self.read(move |tx| {
            let mut out = Vec::new();
            let mut after = None;
            loop {
                let rows = USERID_ERASURE.page(tx, after.as_ref(), PAGE)?;
                for (user, v) in &rows {
                    let r = ErasureRecord::decode(v)?;
                    if r.phase != Phase::Done && r.due <= now {
                        out.push(*user);
                    }
                }
                match rows.last() {
                    Some((user, _)) if rows.len() == PAGE => after = Some(*user),
                    _ => return Ok(out),
                }
            }
        })
        .await
    }

    /// Whether `user`'s erasure would take its first step now: scheduled, due and not held.
    /// The domain asks the peers before that step, while the handle is still known.
    pub async fn erasure_may_begin(&self, user: u64, now: Millis) -> Result<bool, StoreError> {
        self.read(move |tx| {
            let Some(rec) = get_erasure(tx, user)? else {
                return Ok(false);
            };
            Ok(rec.phase == Phase::Scheduled
                && rec.due <= now
                && USERID_LEGALHOLD.get(tx, &user)?.is_none())
        })
        .await
    }

    /// Runs the next bounded step of `user`'s erasure. `handle_hash` is the keyed hash kept
    /// for the handle; `batch` bounds the rows one step touches.
    ///
    /// `phone_index` is the blind index of the user's phone number while their key exists;
    /// the first step removes that row of `phoneindex_userid` and the one `userid_phoneindex`
    /// recorded for the user (so `None`, when the phone could not be read, still finds it —
    /// by key, never by looking through the index).
    pub async fn erasure_step(
        &self,
        user: u64,
        now: Millis,
        batch: usize,
        phone_index: Option<[u8; 32]>,
        done_audit: AuditEntry,
    ) -> Result<Step, StoreError> {
        let step = self
            .write(move |tx| {
                let Some(mut rec) = get_erasure(tx, user)? else {
                    return Ok(Step::NotDue);
                };
                if rec.phase == Phase::Done || rec.due > now {
                    return Ok(Step::NotDue);
                }
                if USERID_LEGALHOLD.get(tx, &user)?.is_some() {
                    return Ok(Step::Held);
                }
                rec.phase = match rec.phase {
                    Phase::Scheduled => {
                        begin(tx, user, phone_index, now)?;
                        Phase::Begun
                    }
                    // The domain asks the peers, then calls `erasure_peers_asked`.
                    Phase::Begun => Phase::Begun,
                    Phase::PeersAsked => {
                        if own_rows(tx, user, batch)? {
                            Phase::RowsGone
                        } else {
                            Phase::PeersAsked
                        }
                    }
                    Phase::RowsGone => {
                        // Communities first, in bounded steps (posts, comments, memberships,
                        // then a scan of every community from the record's cursor).
                        if super::community::erase_step(tx, user, batch, &mut rec.cursor)? {
                            rec.cursor = (0, 0);
                            memberships(tx, user)?;
                            Phase::MembershipsGone
                        } else {
                            Phase::RowsGone
                        }
                    }
                    Phase::MembershipsGone => {
                        if media(tx, user, batch)? {
                            Phase::MediaGone
                        } else {
                            Phase::MembershipsGone
                        }
                    }
                    Phase::MediaGone => match messages(tx, user, rec.cursor, batch)? {
                        Some(next) => {
                            rec.cursor = next;
                            Phase::MediaGone
                        }
                        None => {
                            finish(tx, user)?;
                            rec.finished = Some(now);
                            append_audit(tx, done_audit.clone())?;
                            Phase::Done
                        }
                    },
                    Phase::Done => Phase::Done,
                };
                put_erasure(tx, user, &rec)?;
                Ok(Step::Progress(rec.phase))
            })
            .await?;
        if step == Step::Progress(Phase::Done) {
            // The last clear copy of the handle, in memory, goes with the account row.
            self.handles.remove(user);
        }
        Ok(step)
    }

    /// Makes an existing, unfinished erasure due at `now` (an admin's immediate erasure of a
    /// user who asked for deletion).
    pub async fn make_erasure_due(&self, user: u64, now: Millis) -> Result<(), StoreError> {
        self.write(move |tx| {
            if let Some(mut r) = get_erasure(tx, user)?
                && r.phase != Phase::Done
                && r.due > now
            {
                r.due = now;
                put_erasure(tx, user, &r)?;
            }
            Ok(())
        })
        .await
    }

    /// Records that the peers have been asked (the `Begun` → `PeersAsked` step).
    pub async fn erasure_peers_asked(&self, user: u64) -> Result<(), StoreError> {
        self.write(move |tx| {
            if let Some(mut r) = get_erasure(tx, user)?
                && r.phase == Phase::Begun
            {
                r.phase = Phase::PeersAsked;
                put_erasure(tx, user, &r)?;
            }
            Ok(())
        })
        .await
    }

    /// Whether the keyed hash of a handle belongs to an erased account.
    pub async fn handle_erased(&self, hash: [u8; 32]) -> Result<bool, StoreError> {
        Ok(self.erased_user(hash).await?.is_some())
    }

    /// The id of the erased account whose handle has this keyed hash.
    pub async fn erased_user(&self, hash: [u8; 32]) -> Result<Option<u64>, StoreError> {
        self.read(move |tx| Ok(HANDLEHASH_ERASED.get(tx, &hash)?.map(|(_, user)| user)))
            .await
    }

    /// Places or replaces a legal hold; its basis is sealed under the user's key.
    pub async fn set_legal_hold(
        &self,
        user: u64,
        basis_sealed: Vec<u8>,
        now: Millis,
        audit: AuditEntry,
    ) -> Result<(), StoreError> {
        self.write(move |tx| {
            USERID_LEGALHOLD.insert(tx, &user, &(now.0, String::new()))?;
            USERID_NOTE_ADMINNOTE.insert(tx, &(user, HOLD_BASIS.to_string()), &basis_sealed)?;
            append_audit(tx, audit.clone())?;
            Ok(())
        })
        .await
    }

    /// An admin note about `user` ([`ERASURE_REASON`], [`HOLD_BASIS`]), sealed.
    pub async fn admin_note(
        &self,
        user: u64,
        name: &'static str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.read(move |tx| USERID_NOTE_ADMINNOTE.get(tx, &(user, name.to_string())))
            .await
    }

    /// Clears a legal hold; false if there was none.
    pub async fn clear_legal_hold(&self, user: u64, audit: AuditEntry) -> Result<bool, StoreError> {
        self.write(move |tx| {
            USERID_NOTE_ADMINNOTE.remove(tx, &(user, HOLD_BASIS.to_string()))?;
            let had = USERID_LEGALHOLD.remove(tx, &user)?;
            if had {
                append_audit(tx, audit.clone())?;
            }
            Ok(had)
        })
        .await
    }

    /// Every legal hold: (user, set, basis).
    pub async fn legal_holds(&self) -> Result<Vec<(u64, Millis, String)>, StoreError> {
        self.read(|tx| {
            let mut out: Vec<(u64, Millis, String)> = Vec::new();
            loop {
                let rows = USERID_LEGALHOLD.page(tx, out.last().map(|(u, _, _)| u), PAGE)?;
                let done = rows.len() < PAGE;
                out.extend(
                    rows.into_iter()
                        .map(|(u, (at, basis))| (u, Millis(at), basis)),
                );
                if done {
                    return Ok(out);
                }
            }
        })
        .await
    }

    /// Every account: (id, handle, created, has an erasure record).
    pub async fn accounts(&self) -> Result<Vec<super::AccountRecord>, StoreError> {
        let book = self.handles.clone();
        self.read(move |tx| {
            let mut out = Vec::new();
            for row in tx.open_table(USERID_ACCOUNT)?.iter()? {
                let (_, v) = row?;
                out.push(book.fill(super::AccountRecord::decode(v.value())?));
            }
            Ok(out)
        })
        .await
    }
}

/// The first step: everything that identifies or unlocks the user, in one transaction.
fn begin(
    tx: &WriteTransaction,
    user: u64,
    phone_index: Option<[u8; 32]>,
    now: Millis,
) -> Result<(), StoreError> {
    // Sealed under the key that goes next; the rows go with it (no hold is in force here).
    USERID_NOTE_ADMINNOTE.remove(tx, &(user, ERASURE_REASON.to_string()))?;
    USERID_NOTE_ADMINNOTE.remove(tx, &(user, HOLD_BASIS.to_string()))?;
    let mut handle_hash = None;
    update_account(tx, user, |a| {
        handle_hash = Some(a.handle_index);
        // The data key goes first: every sealed copy of their content is unreadable from here.
        a.wrapped_key.clear();
        a.handle_sealed.clear();
        a.phone_sealed.clear();
        a.password_phc.clear();
        true
    })?;
    // The phone index's row is found by key: the one the account recorded (schema 9, and
    // built for older accounts by the migration), and the one the domain read from the phone.
    let recorded = USERID_PHONEINDEX.take(tx, &user)?;
    let mut phones = tx.open_table(PHONEINDEX_USERID)?;
    for ix in recorded
        .as_deref()
        .into_iter()
        .chain(phone_index.as_ref().map(|i| &i[..]))
    {
        let Ok(ix) = <&[u8; 32]>::try_from(ix) else {
            return Err(StoreError::Corrupt("phone index"));
        };
        if phones.get(ix)?.is_some_and(|v| v.value() == user) {
            phones.remove(ix)?;
        }
    }
    drop(phones);
    tx.open_table(USERID_PROFILE)?.remove(user)?;
    // People search forgets them, and the index their posts, once this commits.
    super::search::note_change(tx, super::SearchChange::Person(user))?;
    super::privacy::erase_privacy_rows(tx, user)?;
    // Out of every suggestion source, nearby cell and invite at once (issue 22).
    super::discovery::erase_discovery_rows(tx, user)?;
    let devices: Vec<(String, [u8; 32])> = tx
        .open_table(USERID_DEVICEID_TOKENHASH)?
        .range((user, "")..)?
        .map(|r| r.map(|(k, v)| (k.value().0, k.value().1.to_string(), *v.value())))
        .take_while(|r| r.as_ref().is_ok_and(|(u, _, _)| *u == user) || r.is_err())
        .map(|r| r.map(|(_, d, h)| (d, h)))
        .collect::<Result<_, _>>()?;
    let mut sessions = tx.open_table(TOKENHASH_SESSION)?;
    let mut index = tx.open_table(USERID_DEVICEID_TOKENHASH)?;
    for (device, hash) in &devices {
        sessions.remove(hash)?;
        index.remove((user, device.as_str()))?;
    }
    if let Some(hash) = handle_hash {
        // The same keyed hash the handle was indexed by: it can never be registered again.
        HANDLEHASH_ERASED.insert(tx, &hash, &(now.0, user))?;
    }
    // The pseudonym key goes with the account: the audit log's entries about them stay, and
    // still verify, but no longer lead to them.
    // The search and behaviour logs are found by that key: they go first.
    super::search::erase_logs(tx, user)?;
    super::behaviour::erase_behaviour(tx, user)?;
    super::remote_communities::erase_remote_communities(tx, user)?;
    super::audit::forget_pseudonym(tx, user)?;
    Ok(())
}

/// The user's own small tables; true once none is left. Those behind the key-value seam
/// (consent history, read positions, friends, requests, the conversations they cleared and
/// the messages they hid) go at most `batch` rows per step,
/// resumed by the next step (the typed ones, already gone then, cost a look each).
fn own_rows(tx: &WriteTransaction, user: u64, batch: usize) -> Result<bool, StoreError> {
    remove_user_range!(tx, USERID_PURPOSE_CONSENT, (user, ""), (user, "\u{10ffff}"));
    remove_user_range!(tx, USERID_DEVICEID_CURSOR, (user, ""), (user, "\u{10ffff}"));
    USERID_FLOOR.remove(tx, &user)?;
    {
        super::sentlog::flush(tx)?;
        // Every key of theirs, whatever its device and txn id strings: up to the next user's.
        let next = user.checked_add(1).ok_or(StoreError::Corrupt("user id"))?;
        let mut sent = tx.open_table(USERID_DEVICEID_TXNID_SENT)?;
        sent.retain_in((user, "", "")..(next, "", ""), |_, _| false)?;
    }
    remove_user_range!(tx, USERID_POS_EVENT, (user, 0), (user, u64::MAX));
    remove_user_range!(
        tx,
        USERID_PEER_KIND_TRANSFER,
        (user, "", ""),
        (user, "\u{10ffff}", "\u{10ffff}")
    );
    remove_user_range!(
        tx,
        USERID_PEER_KIND_OUTCOME_DISCLOSURE,
        (user, "", "", ""),
        (user, "\u{10ffff}", "\u{10ffff}", "\u{10ffff}")
    );
    let mut budget = batch.max(1);
    Ok(
        super::accounts::erase_consent_history(tx, user, &mut budget)?
            && super::reading::erase_reads(tx, user, &mut budget)?
            && super::friends::erase_friend_rows(tx, user, &mut budget)?
            && super::requests::erase_requests(tx, user, &mut budget)?
            && super::messaging::erase_own_view(tx, user, &mut budget)?,
    )
}

/// Leaves every conversation (with a `left` event the others see).
fn memberships(tx: &WriteTransaction, user: u64) -> Result<(), StoreError> {
    leave_everywhere(tx, user)?;
    Ok(())
}

/// Removes up to `batch` media chunks of the user; true when none is left.
pub fn media(tx: &WriteTransaction, user: u64, batch: usize) -> Result<bool, StoreError> {
    let ids: Vec<String> = tx
        .open_table(USERID_MEDIAID)?
        .range((user, "")..)?
        .map(|r| r.map(|(k, _)| (k.value().0, k.value().1.to_string())))
        .take_while(|r| r.as_ref().is_ok_and(|(u, _)| *u == user) || r.is_err())
        .map(|r| r.map(|(_, id)| id))
        .collect::<Result<_, _>>()?;
    let mut budget = batch;
    for id in &ids {
        let mut chunks = tx.open_table(MEDIAID_CHUNKNO_CHUNK)?;
        let nos: Vec<u32> = chunks
            .range((id.as_str(), 0)..=(id.as_str(), u32::MAX))?
            .take(budget)
            .map(|r| r.map(|(k, _)| k.value().1))
            .collect::<Result<_, _>>()?;
        for n in &nos {
            chunks.remove((id.as_str(), *n))?;
        }
        budget = budget.saturating_sub(nos.len());
        let left = chunks
            .range((id.as_str(), 0)..=(id.as_str(), u32::MAX))?
            .next()
            .is_some();
        if left {
            return Ok(false);
        }
        tx.open_table(MEDIAID_MEDIA)?.remove(id.as_str())?;
        tx.open_table(MEDIAID_CONVNO)?
            .retain_in((id.as_str(), 0)..=(id.as_str(), u64::MAX), |_, _| false)?;
        tx.open_table(USERID_MEDIAID)?.remove((user, id.as_str()))?;
        super::fedmedia::drop_offers(tx, id)?;
        if budget == 0 {
            return Ok(false);
        }
    }
    super::avatars::forget(tx, user)?;
    Ok(true)
}

/// Scans up to `batch` messages from `from`, turning the user's into tombstones; the place to
/// resume from, or `None` at the end. (A remote user's erasure runs it over everything.)
pub fn messages(
    tx: &WriteTransaction,
    user: u64,
    from: (u64, u64),
    batch: usize,
) -> Result<Option<(u64, u64)>, StoreError> {
    let mut t = tx.open_table(CONVNO_SEQ_MESSAGE)?;
    let mut theirs = Vec::new();
    let mut last = None;
    for row in t.range(from..)?.take(batch) {
        let (k, v) = row?;
        let key = k.value();
        last = Some(key);
        let rec = MessageRecord::decode(key.1, v.value())?;
        if rec.author == user
            && !(rec.recalled && rec.body_sealed.is_empty() && rec.media.is_none())
        {
            theirs.push((key.0, rec));
        }
    }
    for (no, mut rec) in theirs {
        rec.recalled = true;
        rec.body_sealed.clear();
        rec.media = None;
        t.insert((no, rec.seq), rec.encode().as_slice())?;
    }
    Ok(match last {
        Some((no, seq)) if seq < u64::MAX => {
            let next = (no, seq + 1);
            t.range(next..)?.next().is_some().then_some(next)
        }
        _ => None,
    })
}

/// Removes `user` from every conversation they are in, each with a `left` event, and the
/// user-pair index of their direct conversations (a direct conversation keeps its two
/// members until one of them is erased, so the pair is found from its members here, not by a
/// scan of the index). Returns the members left behind (to wake) and the last event position.
pub fn leave_everywhere(tx: &WriteTransaction, user: u64) -> Result<(Vec<u64>, u64), StoreError> {
    let convs: Vec<u64> = tx
        .open_table(USERID_CONVNO)?
        .range((user, 0)..=(user, u64::MAX))?
        .map(|r| r.map(|(k, _)| k.value().1))
        .collect::<Result<_, _>>()?;
    let mut others = Vec::new();
    let mut pos = 0;
    for no in convs {
        if let Some(s) = load_state_w(tx, no)? {
            if s.conversation.kind == super::ConvKind::Direct
                && let [a, b] = s.members.as_slice()
            {
                let pair = (a.user.min(b.user), a.user.max(b.user));
                let mut pairs = tx.open_table(USERPAIR_CONVNO)?;
                if pairs.get(pair)?.is_some_and(|v| v.value() == no) {
                    pairs.remove(pair)?;
                }
            }
            others.extend(s.members.iter().map(|m| m.user).filter(|u| *u != user));
        }
        tx.open_table(CONVNO_USERID_MEMBER)?.remove((no, user))?;
        tx.open_table(USERID_CONVNO)?.remove((user, no))?;
        pos = next_pos(tx)?;
        put_event(
            tx,
            no,
            pos,
            &EventRecord::Member {
                action: MemberAction::Left,
                user,
                actor: user,
                role: Role::Member,
            },
        )?;
    }
    Ok((others, pos))
}

/// The last step: the account and handle rows.
fn finish(tx: &WriteTransaction, user: u64) -> Result<(), StoreError> {
    let index = tx
        .open_table(USERID_ACCOUNT)?
        .remove(user)?
        .map(|v| super::AccountRecord::decode(v.value()))
        .transpose()?
        .map(|a| a.handle_index);
    if let Some(i) = index {
        tx.open_table(HANDLEINDEX_USERID)?.remove(&i)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::ERASED;
    use crate::{AccountRecord, ConvKind, NewAccount, NewMessage, SessionRecord};

    fn audit() -> AuditEntry {
        AuditEntry {
            at: Millis(1),
            actor: "node".into(),
            action: "erasure.done".into(),
            target: String::new(),
            subject: None,
            detail: String::new(),
        }
    }

    /// An erasure asked for at 1, due at 5.
    fn scheduled() -> ErasureRecord {
        ErasureRecord {
            requested: Millis(1),
            due: Millis(5),
            by: "admin".into(),
            reason: "test".into(),
            phase: Phase::Scheduled,
            cursor: (0, 0),
            finished: None,
        }
    }

    async fn account(store: &Store, id: u64, handle: &str) {
        store
            .insert_account(NewAccount {
                account: AccountRecord {
                    id,
                    handle: handle.into(),
                    handle_index: [0; 32],
                    handle_sealed: vec![],
                    phone_sealed: vec![1; 40],
                    password_phc: "phc".into(),
                    wrapped_key: vec![2; 48],
                    created: Millis(1),
                    policy_version: "v".into(),
                    policy_accepted: Millis(1),
                },
                phone_index: [id as u8; 32],
                profile_sealed: vec![3; 20],
                policy_seq: 0,
            })
            .await
            .unwrap();
        store
            .insert_session(SessionRecord {
                token_hash: [id as u8 + 100; 32],
                user: id,
                device_id: format!("d{id}"),
                created: Millis(1),
                last_seen: Millis(1),
                device_sealed: vec![],
            })
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn the_first_step_finds_the_phone_row_by_the_key_the_account_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(&dir.path().join("n.redb"), |_| Ok(None)).unwrap();
        account(&store, 1, "gone").await;
        account(&store, 2, "stays").await;
        let recorded = |user: u64| store.read(move |tx| USERID_PHONEINDEX.get(tx, &user));
        assert_eq!(recorded(1).await.unwrap(), Some(vec![1; 32]));
        assert!(
            store
                .schedule_erasure(1, scheduled(), audit(), None)
                .await
                .unwrap()
        );
        // The phone could not be opened: no index from the domain.
        let step = store
            .erasure_step(1, Millis(10), 10, None, audit())
            .await
            .unwrap();
        assert_eq!(step, Step::Progress(Phase::Begun));
        assert_eq!(store.user_by_phone_index([1; 32]).await.unwrap(), None);
        assert_eq!(
            recorded(1).await.unwrap(),
            None,
            "the record goes with the row"
        );
        assert_eq!(store.user_by_phone_index([2; 32]).await.unwrap(), Some(2));
        assert_eq!(recorded(2).await.unwrap(), Some(vec![2; 32]));
    }

    /// The account-data step removes the rows behind the key-value seam (friends here) a batch
    /// per step, and stays at its phase until none is left.
    #[tokio::test]
    async fn the_account_data_step_removes_friend_rows_a_batch_per_step() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(&dir.path().join("n.redb"), |_| Ok(None)).unwrap();
        account(&store, 1, "gone").await;
        store
            .write(|tx| {
                for f in 2..5u64 {
                    USERID_USERID_FRIEND.insert(tx, &(1, f), &(1, f))?;
                    USERID_USERID_FRIEND.insert(tx, &(f, 1), &(1, f))?;
                }
                Ok(())
            })
            .await
            .unwrap();
        assert!(
            store
                .schedule_erasure(1, scheduled(), audit(), None)
                .await
                .unwrap()
        );
        let step = || store.erasure_step(1, Millis(10), 1, None, audit());
        assert_eq!(step().await.unwrap(), Step::Progress(Phase::Begun));
        store.erasure_peers_asked(1).await.unwrap();
        let mut phases = Vec::new();
        loop {
            let Step::Progress(p) = step().await.unwrap() else {
                panic!("stopped");
            };
            phases.push(p);
            if p != Phase::PeersAsked {
                break;
            }
        }
        assert_eq!(
            phases,
            [
                Phase::PeersAsked,
                Phase::PeersAsked,
                Phase::PeersAsked,
                Phase::RowsGone
            ],
            "one friendship per step, then the step that finds none left"
        );
        for f in 2..5 {
            assert!(store.friends_of(f).await.unwrap().is_empty());
        }
    }

    #[tokio::test]
    async fn an_erasure_killed_midway_resumes_after_a_restart_and_finishes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("n.redb");
        let (store, _) = Store::open(&path, |_| Ok(None)).unwrap();
        let key = primitives::crypto::SecretKey::generate().unwrap();
        store.handles().load(key.clone(), Vec::new());
        account(&store, 1, "gone").await;
        account(&store, 2, "stays").await;
        account(&store, 3, "also").await;
        store
            .create_conversation(crate::tests::conversation(
                "c:x",
                9,
                ConvKind::Direct,
                vec![2],
            ))
            .await
            .unwrap()
            .unwrap();
        let mut theirs = crate::tests::conversation("c:y", 10, ConvKind::Direct, vec![2]);
        theirs.creator = 3;
        store.create_conversation(theirs).await.unwrap().unwrap();
        for (n, author) in [(1u64, 1u64), (2, 2), (3, 1)] {
            store
                .send_message(NewMessage {
                    author,
                    device_id: format!("d{author}"),
                    txn_id: format!("t{n}"),
                    conv_id: "c:x".into(),
                    id: [n as u8; 16],
                    ts: Millis(2),
                    body_sealed: vec![7; 30],
                    media: None,
                    hosted_here: true,
                    fanout: None,
                })
                .await
                .unwrap();
        }
        assert_eq!(store.mark_read(1, 9, 2).await.unwrap(), Some(2));
        assert_eq!(store.mark_read(2, 9, 3).await.unwrap(), Some(3));
        use crate::sentlog::tests::sends_of;
        assert_eq!(sends_of(&store, 1).await, 2, "their txn ids are recorded");
        for user in [1, 2] {
            let at = "00000000000000ab@b.test".to_string();
            assert!(
                store
                    .note_remote_community(user, at, "读书会".into(), Millis(2))
                    .await
                    .unwrap()
            );
        }
        let rec = scheduled();
        assert!(store.schedule_erasure(1, rec, audit(), None).await.unwrap());
        assert_eq!(
            store
                .erasure_step(1, Millis(4), 1, Some([1; 32]), audit())
                .await
                .unwrap(),
            Step::NotDue,
            "not before it is due"
        );
        let step = store
            .erasure_step(1, Millis(10), 1, Some([1; 32]), audit())
            .await
            .unwrap();
        assert_eq!(step, Step::Progress(Phase::Begun));
        assert!(
            store
                .account(1)
                .await
                .unwrap()
                .unwrap()
                .wrapped_key
                .is_empty(),
            "key first"
        );
        assert!(
            store.session([101; 32]).await.unwrap().is_none(),
            "sessions end"
        );
        assert_eq!(
            store.user_by_phone_index([1; 32]).await.unwrap(),
            None,
            "their phone no longer finds them"
        );
        assert_eq!(
            store.user_by_phone_index([2; 32]).await.unwrap(),
            Some(2),
            "the others' still do"
        );

        // Killed here: the store is dropped and opened again.
        drop(store);
        let (store, _) = Store::open(&path, |_| Ok(None)).unwrap();
        store.handles().load(key, Vec::new());
        assert_eq!(store.due_erasures(Millis(10)).await.unwrap(), vec![1]);
        store.erasure_peers_asked(1).await.unwrap();
        let mut steps = 0;
        loop {
            steps += 1;
            assert!(steps < 50, "bounded");
            match store
                .erasure_step(1, Millis(10), 1, Some([1; 32]), audit())
                .await
                .unwrap()
            {
                Step::Progress(Phase::Done) => break,
                Step::Progress(_) => {}
                other => panic!("{other:?}"),
            }
        }
        assert!(store.account(1).await.unwrap().is_none());
        assert!(store.user_by_handle("gone".into()).await.unwrap().is_none());
        assert!(
            store.remote_communities(1).await.unwrap().is_empty(),
            "their communities of other nodes are forgotten here"
        );
        assert_eq!(store.remote_communities(2).await.unwrap().len(), 1);
        assert_eq!(
            store
                .erased_user(store.handles().index("gone"))
                .await
                .unwrap(),
            Some(1)
        );
        assert!(
            store.account(2).await.unwrap().is_some(),
            "others untouched"
        );
        let msgs = store
            .messages(
                2,
                Some("d2".into()),
                9,
                crate::Page {
                    before: None,
                    after: None,
                    limit: 10,
                },
                Millis(0),
            )
            .await
            .unwrap()
            .unwrap();
        for m in &msgs {
            assert_eq!(m.body_sealed.is_empty(), m.author == 1, "seq {}", m.seq);
        }
        assert!(
            store.read_positions(1).await.unwrap().is_empty(),
            "their read positions go"
        );
        assert_eq!(
            store.read_positions(2).await.unwrap(),
            [("c:x".to_string(), 3)],
            "not the other member's"
        );
        assert_eq!(sends_of(&store, 1).await, 0, "and gone, from the log too");
        assert_eq!(sends_of(&store, 2).await, 1, "not the other user's");
        let pairs = store
            .read(|tx| {
                let t = tx.open_table(USERPAIR_CONVNO)?;
                Ok((t.get((1, 2))?.is_some(), t.get((2, 3))?.is_some()))
            })
            .await
            .unwrap();
        assert_eq!(
            pairs,
            (false, true),
            "their direct conversation leaves the pair index; the others' stays"
        );
        assert!(store.due_erasures(Millis(10)).await.unwrap().is_empty());
        // Running it again does nothing.
        assert_eq!(
            store
                .erasure_step(1, Millis(10), 1, Some([1; 32]), audit())
                .await
                .unwrap(),
            Step::NotDue
        );
    }

    #[tokio::test]
    async fn the_pseudonym_key_goes_with_the_erasure_and_the_audit_chain_still_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(&dir.path().join("n.redb"), |_| Ok(None)).unwrap();
        account(&store, 1, "gone").await;
        account(&store, 2, "stays").await;
        let about = |user: u64, action: &str| AuditEntry {
            subject: Some(user),
            action: action.into(),
            ..audit()
        };
        store.audit(about(1, "consent.grant:x")).await.unwrap();
        store.audit(about(2, "consent.grant:x")).await.unwrap();
        store.audit(about(1, "consent.revoke:x")).await.unwrap();
        let one = store.pseudonym_of(1).await.unwrap().unwrap();
        let two = store.pseudonym_of(2).await.unwrap().unwrap();
        assert_ne!(one, two);
        let entries = store.audit_about(1).await.unwrap();
        assert_eq!(entries.len(), 2, "one pseudonym per user, stable");
        assert!(entries.iter().all(|e| e.entry.target == one));

        let rec = scheduled();
        assert!(
            store
                .schedule_erasure(1, rec, about(1, "erasure.request"), None)
                .await
                .unwrap()
        );
        let step = store
            .erasure_step(1, Millis(10), 1, None, about(1, "erasure.done"))
            .await
            .unwrap();
        assert_eq!(step, Step::Progress(Phase::Begun));
        // From the first step on, nothing leads from the user to the entries about them.
        assert_eq!(store.pseudonym_of(1).await.unwrap(), None);
        assert!(store.audit_about(1).await.unwrap().is_empty());
        store
            .audit(about(1, "admin.users.erasure_status"))
            .await
            .unwrap();
        let all = store.audit_entries(None).await.unwrap();
        let last = &all.last().unwrap().entry;
        assert_eq!(
            last.target, ERASED,
            "later entries are not linked to earlier ones"
        );
        assert_eq!(
            all.iter().filter(|e| e.entry.target == one).count(),
            3,
            "the entries written before stay as written"
        );
        assert_eq!(
            store.pseudonym_of(2).await.unwrap(),
            Some(two),
            "others keep theirs"
        );
        assert!(matches!(
            store.verify_audit().await.unwrap(),
            crate::AuditCheck::Intact { .. }
        ));
    }
}
