//! The event feed: one device's events after a position, as the user sees them (hidden and
//! purged messages left out), with the names and wrapped keys of everyone they name.

use std::collections::BTreeMap;

use redb::{ReadOnlyTable, ReadTransaction};

use super::history::{Hidden, device_floor};
use super::{ConversationRecord, EventRecord, MessageRecord, last_pos};
use crate::catalog::*;
use crate::{Store, StoreError};
use primitives::time::Millis;

/// One event as a user sees it, with what is needed to render it.
#[derive(Debug, Clone)]
pub struct EventView {
    pub pos: u64,
    /// The conversation's public id (`None` for a notice).
    pub conv_id: Option<String>,
    pub event: EventRecord,
    /// For message and recall events: the message (tombstone if recalled).
    pub message: Option<MessageRecord>,
}

impl Store {
    /// Events for one device after `since`, oldest first, at most `limit`; the cursor to
    /// continue from; and the handle (or address) and wrapped key of every user the events name,
    /// read in the same transaction (one store hop per wake-up of an event stream). Applies the
    /// device's view floor, the user's cleared and hidden messages.
    pub async fn events_since(
        &self,
        user: u64,
        device: String,
        since: Option<u64>,
        limit: usize,
        now: Millis,
    ) -> Result<Feed, StoreError> {
        let book = self.handles.clone();
        self.read(move |tx| {
            let meta = tx.open_table(META)?;
            let head = last_pos(&meta)?;
            let cursors = tx.open_table(USERID_DEVICEID_CURSOR)?;
            let (start, acked) = cursors
                .get((user, device.as_str()))?
                .map_or((head, head), |v| v.value());
            let view = device_floor(tx, user, start, now)?;
            let from = since.unwrap_or(acked).max(view.floor);
            let mut found: BTreeMap<u64, EventView> = BTreeMap::new();
            let convs = tx.open_table(USERID_CONVNO)?;
            let events = tx.open_table(CONVNO_POS_EVENT)?;
            let conv_ids = tx.open_table(CONVNO_CONVERSATION)?;
            let shown = Shown {
                tx,
                messages: tx.open_table(CONVNO_SEQ_MESSAGE)?,
            };
            for row in convs.range((user, 0)..=(user, u64::MAX))? {
                let (k, joined_pos) = row?;
                let no = k.value().1;
                let cleared = USERID_CONVNO_CLEARED.get(tx, &(user, no))?.unwrap_or(0);
                let lower = from.max(cleared).max(joined_pos.value().saturating_sub(1));
                let Some(conv) = conv_ids
                    .get(no)?
                    .map(|v| ConversationRecord::decode(no, v.value()))
                    .transpose()?
                else {
                    continue;
                };
                let hidden = Hidden::of(user, no);
                for ev in events.range((no, lower + 1)..=(no, u64::MAX))?.take(limit) {
                    let (k, v) = ev?;
                    let pos = k.value().1;
                    if let Some(view) =
                        shown.view(&hidden, no, &conv.id, pos, EventRecord::decode(v.value())?)?
                    {
                        found.insert(pos, view);
                    }
                }
                while found.len() > limit {
                    found.pop_last();
                }
            }
            for ev in tx
                .open_table(USERID_POS_EVENT)?
                .range((user, from + 1)..=(user, u64::MAX))?
                .take(limit)
            {
                let (k, v) = ev?;
                let pos = k.value().1;
                found.insert(
                    pos,
                    EventView {
                        pos,
                        conv_id: None,
                        event: EventRecord::decode(v.value())?,
                        message: None,
                    },
                );
            }
            let full = found.len() >= limit;
            let out: Vec<EventView> = found.into_values().take(limit).collect();
            let cursor = match out.last() {
                Some(e) if full => e.pos,
                _ => head.max(from),
            };
            let mut named = Vec::new();
            for e in &out {
                match &e.event {
                    EventRecord::Member { user, actor, .. } => named.extend([*user, *actor]),
                    EventRecord::Renamed { actor, .. } | EventRecord::Visibility { actor, .. } => {
                        named.push(*actor)
                    }
                    EventRecord::Friend { user, .. } | EventRecord::Join { user, .. } => {
                        named.push(*user)
                    }
                    _ => {}
                }
                if let Some(m) = &e.message {
                    named.push(m.author);
                }
            }
            named.sort_unstable();
            named.dedup();
            Ok(Feed {
                people: keys_of(tx, &book, named)?,
                events: out,
                cursor,
            })
        })
        .await
    }

    /// The wrapped data keys of several users (for opening their messages), by user id, with
    /// each user's handle (local users) or full address (users of other nodes). Users that
    /// no longer exist are left out.
    pub async fn wrapped_keys(
        &self,
        users: Vec<u64>,
    ) -> Result<Vec<(u64, String, Vec<u8>)>, StoreError> {
        let book = self.handles.clone();
        self.read(move |tx| keys_of(tx, &book, users)).await
    }
}

/// A device's events with everything needed to show them.
#[derive(Debug)]
pub struct Feed {
    pub events: Vec<EventView>,
    /// The cursor to continue from.
    pub cursor: u64,
    /// (user, handle or address, wrapped data key) of every user the events name who still has
    /// a key.
    pub people: Vec<(u64, String, Vec<u8>)>,
}

/// (user, handle or address, wrapped key) of each user that still has a key.
fn keys_of(
    tx: &ReadTransaction,
    book: &crate::HandleBook,
    users: Vec<u64>,
) -> Result<Vec<(u64, String, Vec<u8>)>, StoreError> {
    let t = tx.open_table(USERID_ACCOUNT)?;
    let remote = tx.open_table(USERID_REMOTEUSER)?;
    let mut out = Vec::new();
    for u in users {
        if u & REMOTE_USER_BIT != 0 {
            if let Some(v) = remote.get(u)? {
                let r = crate::RemoteUserRecord::decode_named(u, v.value(), book)?;
                out.push((u, r.address, r.wrapped_key));
            }
        } else if let Some(v) = t.get(u)? {
            let a = crate::AccountRecord::decode(v.value())?;
            // An account being erased has no key: nothing of theirs is shown.
            if !a.wrapped_key.is_empty() {
                out.push((u, book.get(u).unwrap_or_default(), a.wrapped_key));
            }
        }
    }
    Ok(out)
}

/// What decides how a conversation event looks to one user, with the messages they hid in its
/// conversation ([`Hidden`]): the read, and the messages table, opened once per read.
struct Shown<'t> {
    tx: &'t ReadTransaction,
    messages: ReadOnlyTable<(u64, u64), &'static [u8]>,
}

impl Shown<'_> {
    /// The event as `user` sees it, or `None` if it is hidden from them.
    fn view(
        &self,
        hidden: &Hidden,
        no: u64,
        conv_id: &str,
        pos: u64,
        event: EventRecord,
    ) -> Result<Option<EventView>, StoreError> {
        let seq = match &event {
            EventRecord::Message { seq } | EventRecord::Recall { seq } => Some(*seq),
            _ => None,
        };
        let message = match seq {
            Some(seq) => {
                if hidden.contains(self.tx, seq)? {
                    return Ok(None);
                }
                match self.messages.get((no, seq))? {
                    Some(v) => Some(MessageRecord::decode(seq, v.value())?),
                    None => return Ok(None), // purged
                }
            }
            None => None,
        };
        Ok(Some(EventView {
            pos,
            conv_id: Some(conv_id.to_string()),
            event,
            message,
        }))
    }
}
