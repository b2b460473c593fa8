//! History: pages of one conversation's messages, and the floors (and the messages the user
//! hid) that decide what of it a device (or what is kept for the user) sees — shared with the
//! feed, reading and search.

use std::cell::Cell;

use redb::ReadTransaction;

use super::{MessageRecord, last_pos};
use crate::catalog::*;
use crate::kv;
use crate::{Store, StoreError};
use primitives::time::Millis;

/// Which view of a conversation's history a device has.
#[derive(Debug, Clone, Copy)]
pub(super) struct ViewFloor {
    pub(super) floor: u64,
}

/// Which messages of a conversation to read: seq < `before` newest first, or seq > `after`
/// oldest first; at most `limit`.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    pub before: Option<u64>,
    pub after: Option<u64>,
    pub limit: usize,
}

impl Store {
    /// A page of one conversation's messages as one of `user`'s devices sees them, or
    /// (`device` `None`) as kept for the user: everything above their floor. `None` if the
    /// user is not a member.
    pub async fn messages(
        &self,
        user: u64,
        device: Option<String>,
        no: u64,
        page: Page,
        now: Millis,
    ) -> Result<Option<Vec<MessageRecord>>, StoreError> {
        let Page {
            before,
            after,
            limit,
        } = page;
        self.read(move |tx| {
            if tx
                .open_table(CONVNO_USERID_MEMBER)?
                .get((no, user))?
                .is_none()
            {
                return Ok(None);
            }
            let lower_pos = view_lower_pos(tx, user, device.as_deref(), no, now)?;
            let messages = tx.open_table(CONVNO_SEQ_MESSAGE)?;
            let mut out = Vec::new();
            let hidden = Hidden::of(user, no);
            let visible = |rec: &MessageRecord| -> Result<bool, StoreError> {
                Ok(rec.pos > lower_pos && !hidden.contains(tx, rec.seq)?)
            };
            match after {
                Some(a) => {
                    for row in messages.range((no, a.saturating_add(1))..=(no, u64::MAX))? {
                        let (k, v) = row?;
                        let rec = MessageRecord::decode(k.value().1, v.value())?;
                        if visible(&rec)? {
                            out.push(rec);
                            if out.len() >= limit {
                                break;
                            }
                        }
                    }
                }
                None => {
                    let upper = before.unwrap_or(u64::MAX).max(1) - 1;
                    for row in messages.range((no, 1)..=(no, upper))?.rev() {
                        let (k, v) = row?;
                        let rec = MessageRecord::decode(k.value().1, v.value())?;
                        if rec.pos <= lower_pos {
                            break; // everything older is below the floor too
                        }
                        if visible(&rec)? {
                            out.push(rec);
                            if out.len() >= limit {
                                break;
                            }
                        }
                    }
                }
            }
            out.truncate(limit);
            Ok(Some(out))
        })
        .await
    }
}

/// The pos at or below which one of `user`'s devices (or, `device` `None`, the history kept
/// for the user) sees none of conversation `no`'s messages: the device's view floor, what the
/// user cleared, and the position before they joined.
pub(crate) fn view_lower_pos(
    tx: &ReadTransaction,
    user: u64,
    device: Option<&str>,
    no: u64,
    now: Millis,
) -> Result<u64, StoreError> {
    let floor = view_floor(tx, user, device, now)?;
    history_lower(tx, user, no, floor)
}

/// The single messages `user` hid of conversation `no`, as a scan of its messages asks about
/// each: looked up one by one behind the key-value seam, and not at all when the user hid
/// none there (the usual case: one bounded read, at the first question, per conversation).
pub(crate) struct Hidden {
    user: u64,
    no: u64,
    /// Whether the user hid any message of the conversation, once asked.
    any: Cell<Option<bool>>,
}

impl Hidden {
    pub(crate) fn of(user: u64, no: u64) -> Hidden {
        Hidden {
            user,
            no,
            any: Cell::new(None),
        }
    }

    /// Whether the user hid message `seq`.
    pub(crate) fn contains(&self, tx: &ReadTransaction, seq: u64) -> Result<bool, StoreError> {
        let any = match self.any.get() {
            Some(any) => any,
            None => {
                let first = USERID_CONVNO_SEQ_HIDDEN.prefixed(
                    tx,
                    &(self.user, self.no),
                    kv::Order::Ascending,
                    1,
                )?;
                self.any.set(Some(!first.is_empty()));
                !first.is_empty()
            }
        };
        Ok(any
            && USERID_CONVNO_SEQ_HIDDEN
                .get(tx, &(self.user, self.no, seq))?
                .is_some())
    }
}

/// The pos at or below which a device sees nothing: the user's floor, and for a user without
/// cloud history also the device's start. Cloud history paused by a policy version the user
/// has yet to accept (7.a) counts as none here: older history is not synced to the device,
/// yet nothing is deleted (the floor only rises on acknowledgement when it is revoked).
pub(super) fn device_floor(
    tx: &ReadTransaction,
    user: u64,
    start: u64,
    now: Millis,
) -> Result<ViewFloor, StoreError> {
    let floor = USERID_FLOOR.get(tx, &user)?.unwrap_or(0);
    let cloud = crate::privacy::purpose_status_in(
        &tx.open_table(USERID_PURPOSE_CONSENT)?,
        tx,
        user,
        "cloud_sync",
        now,
    )? == crate::PurposeStatus::Granted;
    Ok(ViewFloor {
        floor: if cloud { floor } else { floor.max(start) },
    })
}

/// The pos at or below which a device of `user` (or, `device` `None`, what is kept for the
/// user) sees nothing of any conversation: [`device_floor`] from the device's start. Shared by
/// history pages and search, so both show exactly the same history.
pub(crate) fn view_floor(
    tx: &ReadTransaction,
    user: u64,
    device: Option<&str>,
    now: Millis,
) -> Result<u64, StoreError> {
    let head = last_pos(&tx.open_table(META)?)?;
    let start = match device {
        Some(d) => tx
            .open_table(USERID_DEVICEID_CURSOR)?
            .get((user, d))?
            .map_or(head, |v| v.value().0),
        None => 0,
    };
    Ok(device_floor(tx, user, start, now)?.floor)
}

/// The pos at or below which `user` sees nothing of conversation `no`, given their
/// [`view_floor`]: also what they cleared and what came before they joined.
pub(crate) fn history_lower(
    tx: &ReadTransaction,
    user: u64,
    no: u64,
    floor: u64,
) -> Result<u64, StoreError> {
    let cleared = USERID_CONVNO_CLEARED.get(tx, &(user, no))?.unwrap_or(0);
    let joined = tx
        .open_table(USERID_CONVNO)?
        .get((user, no))?
        .map_or(0, |v| v.value());
    Ok(floor.max(cleared).max(joined.saturating_sub(1)))
}
