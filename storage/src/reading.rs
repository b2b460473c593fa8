//! Read positions ("mark read") and what a conversation list shows of each conversation to one
//! device: how many messages of others it has not read, and the newest messages it may see.
//!
//! A read position is the seq of the newest message the user has read in a conversation
//! (`userid_convno_read`); it only moves forward and never past the conversation's last seq.
//! Unread counts and the newest messages honour the same view as history pages: the device's
//! floor, what the user cleared or hid, and the position they joined at.

use std::collections::HashMap;

use redb::{ReadTransaction, ReadableTable};

use super::catalog::*;
use super::kv;
use super::messaging::{ConversationRecord, Hidden, MessageRecord, view_lower_pos};
use super::{Store, StoreError};
use primitives::time::Millis;

/// Unread counts stop at this many: a list shows "999+" long before, and counting stays bounded.
pub const UNREAD_CAP: u64 = 1000;

/// Read positions of one user read or removed at a time.
const PAGE: usize = 256;

/// How many of the newest visible messages [`Store::activity`] returns per conversation, so the
/// caller can skip ones it cannot show (an erased author's) and still have a last message.
const RECENT: usize = 3;

/// One conversation as a device's list shows it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Activity {
    /// The user's read position (seq).
    pub read_seq: u64,
    /// Visible messages of others above the read position, at most [`UNREAD_CAP`].
    pub unread: u64,
    /// The newest visible messages, newest first, at most a few.
    pub recent: Vec<MessageRecord>,
}

impl Store {
    /// Moves `user`'s read position in conversation `no` up to `seq` (never back, never past
    /// the last message). `None` if the user is not a member; else the position now.
    pub async fn mark_read(&self, user: u64, no: u64, seq: u64) -> Result<Option<u64>, StoreError> {
        self.write(move |tx| {
            if tx
                .open_table(CONVNO_USERID_MEMBER)?
                .get((no, user))?
                .is_none()
            {
                return Ok(None);
            }
            let last = match tx.open_table(CONVNO_CONVERSATION)?.get(no)? {
                Some(v) => ConversationRecord::decode(no, v.value())?.last_seq,
                None => return Ok(None),
            };
            let old = USERID_CONVNO_READ.get(tx, &(user, no))?.unwrap_or(0);
            let new = old.max(seq.min(last));
            if new != old {
                USERID_CONVNO_READ.insert(tx, &(user, no), &new)?;
            }
            Ok(Some(new))
        })
        .await
    }

    /// For each of `nos` that `user` is a member of: their read position, unread count and
    /// newest messages as `device` sees them (`device` `None`: as kept for the user).
    pub async fn activity(
        &self,
        user: u64,
        device: Option<String>,
        nos: Vec<u64>,
        now: Millis,
    ) -> Result<HashMap<u64, Activity>, StoreError> {
        self.read(move |tx| {
            let mut out = HashMap::with_capacity(nos.len());
            for no in nos {
                if let Some(a) = activity_in(tx, user, device.as_deref(), no, now)? {
                    out.insert(no, a);
                }
            }
            Ok(out)
        })
        .await
    }

    /// Every read position of `user`: (conversation id, seq), for their data export.
    pub async fn read_positions(&self, user: u64) -> Result<Vec<(String, u64)>, StoreError> {
        self.read(move |tx| {
            let convs = tx.open_table(CONVNO_CONVERSATION)?;
            let mut out = Vec::new();
            for ((_, no), seq) in USERID_CONVNO_READ.prefixed_in_pages(tx, &user, PAGE)? {
                if let Some(c) = convs.get(no)? {
                    out.push((ConversationRecord::decode(no, c.value())?.id, seq));
                }
            }
            Ok(out)
        })
        .await
    }
}

fn activity_in(
    tx: &ReadTransaction,
    user: u64,
    device: Option<&str>,
    no: u64,
    now: Millis,
) -> Result<Option<Activity>, StoreError> {
    if tx
        .open_table(CONVNO_USERID_MEMBER)?
        .get((no, user))?
        .is_none()
    {
        return Ok(None);
    }
    let read_seq = USERID_CONVNO_READ.get(tx, &(user, no))?.unwrap_or(0);
    let lower_pos = view_lower_pos(tx, user, device, no, now)?;
    let hidden = Hidden::of(user, no);
    let messages = tx.open_table(CONVNO_SEQ_MESSAGE)?;
    let mut a = Activity {
        read_seq,
        ..Activity::default()
    };
    // Newest first: the recent ones come first, and the unread ones are all above read_seq.
    for row in messages.range((no, 1)..=(no, u64::MAX))?.rev() {
        let (k, v) = row?;
        let seq = k.value().1;
        let done_recent = a.recent.len() >= RECENT;
        let done_unread = seq <= read_seq || a.unread >= UNREAD_CAP;
        if done_recent && done_unread {
            break;
        }
        let rec = MessageRecord::decode(seq, v.value())?;
        if rec.pos <= lower_pos {
            break; // everything older is below the view too
        }
        if hidden.contains(tx, seq)? {
            continue;
        }
        if !done_unread && rec.author != user {
            a.unread += 1;
        }
        if !done_recent {
            a.recent.push(rec);
        }
    }
    Ok(Some(a))
}

/// Removes at most `budget` read positions of `user` (erasure), taking what it removed from
/// the budget; true when none is left.
pub fn erase_reads(tx: &impl kv::Write, user: u64, budget: &mut usize) -> Result<bool, StoreError> {
    USERID_CONVNO_READ.remove_prefixed_within(tx, &user, budget)
}

/// Removes `user`'s read position in conversation `no` (they left or were removed).
pub fn forget_read(tx: &impl kv::Write, user: u64, no: u64) -> Result<(), StoreError> {
    USERID_CONVNO_READ.remove(tx, &(user, no))?;
    Ok(())
}
