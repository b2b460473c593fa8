//! Purging: messages leave the disk once every member's floor has passed them — in the
//! background, a bounded batch per transaction resuming from a cursor kept in META
//! (`purge_cursor`), and at once when a user's history is dropped.

use redb::{ReadableTable, WriteTransaction};

use super::{EventRecord, MessageRecord, last_pos};
use crate::catalog::*;
use crate::{Store, StoreError};

/// Rows one background purge transaction visits at most: conversations, messages and events
/// (and the members of each conversation it looks at, bounded by the conversation's limit).
pub const PURGE_BATCH: usize = 500;

/// The META key of the background purge's position: (conversation, event position) — the
/// conversation it is in and the position its scan of that conversation's events goes on
/// from; (0, 0) at the start of a round.
const PURGE_CURSOR: &str = "purge_cursor";

fn read_cursor(tx: &WriteTransaction) -> Result<(u64, u64), StoreError> {
    let meta = tx.open_table(META)?;
    let Some(v) = meta.get(PURGE_CURSOR)? else {
        return Ok((0, 0));
    };
    let b = v.value();
    if b.len() != 16 {
        return Err(StoreError::Corrupt("meta"));
    }
    let half = |r: &[u8]| u64::from_be_bytes(r.try_into().unwrap_or([0; 8]));
    Ok((half(&b[..8]), half(&b[8..])))
}

fn write_cursor(tx: &WriteTransaction, at: (u64, u64)) -> Result<(), StoreError> {
    let mut v = at.0.to_be_bytes().to_vec();
    v.extend_from_slice(&at.1.to_be_bytes());
    tx.open_table(META)?.insert(PURGE_CURSOR, v.as_slice())?;
    Ok(())
}

impl Store {
    /// Moves the user's floor to now (their stored history leaves their view) and purges, in
    /// the same transaction, every message of their conversations no member still needs.
    pub fn drop_history(tx: &WriteTransaction, user: u64) -> Result<(), StoreError> {
        let head = last_pos(&tx.open_table(META)?)?;
        USERID_FLOOR.insert(tx, &user, &head)?;
        let convs: Vec<u64> = tx
            .open_table(USERID_CONVNO)?
            .range((user, 0)..=(user, u64::MAX))?
            .map(|r| r.map(|(k, _)| k.value().1))
            .collect::<Result<_, _>>()?;
        for no in convs {
            purge_conversation(tx, no)?;
        }
        Ok(())
    }

    /// Purges, in every conversation, the messages every member's floor has passed, in
    /// bounded batches (one transaction each) until a round of the conversations is complete.
    /// Returns how many messages were removed. Run in the background by the node; a round cut
    /// short (a stop, a crash) goes on from where its last batch committed.
    pub async fn purge_delivered(&self) -> Result<u64, StoreError> {
        let mut removed = 0;
        loop {
            let (n, round_done) = self.purge_delivered_batch(PURGE_BATCH).await?;
            removed += n;
            if round_done {
                return Ok(removed);
            }
        }
    }

    /// One batch of [`Store::purge_delivered`]: visits at most `rows` rows from the recorded
    /// cursor, removes what is due among them and records where the next batch goes on.
    /// Returns (messages removed, whether the round reached the last conversation).
    pub async fn purge_delivered_batch(&self, rows: usize) -> Result<(u64, bool), StoreError> {
        self.write(move |tx| purge_batch(tx, rows.max(1))).await
    }

    /// How many messages are stored in a conversation (tombstones included).
    #[cfg(any(test, feature = "test-support"))]
    pub async fn stored_messages(&self, no: u64) -> Result<u64, StoreError> {
        self.read(move |tx| {
            Ok(tx
                .open_table(CONVNO_SEQ_MESSAGE)?
                .range((no, 0)..=(no, u64::MAX))?
                .count() as u64)
        })
        .await
    }
}

/// The background purge's batch: from the cursor, conversation after conversation, the
/// messages below every member's floor and their message and recall events, until `budget`
/// rows were visited; the cursor records where it stopped.
fn purge_batch(tx: &WriteTransaction, budget: usize) -> Result<(u64, bool), StoreError> {
    let (mut conv, mut from) = read_cursor(tx)?;
    let mut left = budget;
    let mut removed = 0;
    loop {
        if left == 0 {
            write_cursor(tx, (conv, from))?;
            return Ok((removed, false));
        }
        let next = tx
            .open_table(CONVNO_CONVERSATION)?
            .range(conv..)?
            .next()
            .transpose()?
            .map(|(k, _)| k.value());
        let Some(no) = next else {
            write_cursor(tx, (0, 0))?;
            return Ok((removed, true));
        };
        if no != conv {
            (conv, from) = (no, 0);
        }
        // The members are read whole: their number is bounded by the conversation's limit.
        let bound = floor_of_members(tx, no)?;
        if bound != 0 && bound != u64::MAX {
            // Messages below the bound, oldest first: those removed are gone from the range,
            // so the next batch starts at the first one left.
            let mut messages = tx.open_table(CONVNO_SEQ_MESSAGE)?;
            let mut gone = Vec::new();
            let mut seen = 0;
            for row in messages.range((no, 0)..=(no, u64::MAX))?.take(left) {
                let (k, v) = row?;
                seen += 1;
                let rec = MessageRecord::decode(k.value().1, v.value())?;
                if rec.pos > bound {
                    break;
                }
                gone.push(rec.seq);
            }
            for seq in &gone {
                messages.remove((no, *seq))?;
            }
            drop(messages);
            removed += gone.len() as u64;
            left = left.saturating_sub(seen);
            if left == 0 {
                // More may be due here (or its events are still to scan): the next batch.
                continue;
            }
            // Then their events, from where the scan of this conversation got to.
            if from <= bound {
                let mut events = tx.open_table(CONVNO_POS_EVENT)?;
                let mut drop_at = Vec::new();
                let mut seen = 0;
                let mut last = None;
                for row in events.range((no, from)..=(no, bound))?.take(left) {
                    let (k, v) = row?;
                    seen += 1;
                    let pos = k.value().1;
                    last = Some(pos);
                    // Membership and other events stay; message events go with their message.
                    if matches!(
                        EventRecord::decode(v.value()),
                        Ok(EventRecord::Message { .. } | EventRecord::Recall { .. })
                    ) {
                        drop_at.push(pos);
                    }
                }
                for pos in &drop_at {
                    events.remove((no, *pos))?;
                }
                left = left.saturating_sub(seen);
                if let Some(pos) = last
                    && left == 0
                    && pos < bound
                {
                    from = pos + 1;
                    continue;
                }
            }
        }
        // The conversation's own row counts too, so a batch looking at conversations with
        // nothing due still stops after `budget` of them.
        left = left.saturating_sub(1);
        match no.checked_add(1) {
            Some(n) => (conv, from) = (n, 0),
            None => {
                write_cursor(tx, (0, 0))?;
                return Ok((removed, true));
            }
        }
    }
}

/// The lowest floor among a conversation's local members (0: one has none yet; `u64::MAX`:
/// no local member).
fn floor_of_members(tx: &WriteTransaction, no: u64) -> Result<u64, StoreError> {
    let mut bound = u64::MAX;
    for row in tx
        .open_table(CONVNO_USERID_MEMBER)?
        .range((no, 0)..=(no, u64::MAX))?
    {
        let (k, _) = row?;
        let user = k.value().1;
        // Users of other nodes hold nothing back: their copies went into the outbound queue
        // (sealed separately) in the same transaction that stored the message.
        if user & REMOTE_USER_BIT != 0 {
            continue;
        }
        bound = bound.min(USERID_FLOOR.get(tx, &user)?.unwrap_or(0));
    }
    Ok(bound)
}

/// Removes the messages (and events) of one conversation that every member's floor has passed.
fn purge_conversation(tx: &WriteTransaction, no: u64) -> Result<u64, StoreError> {
    let bound = floor_of_members(tx, no)?;
    if bound == 0 || bound == u64::MAX {
        return Ok(0);
    }
    let mut messages = tx.open_table(CONVNO_SEQ_MESSAGE)?;
    let mut gone = Vec::new();
    for row in messages.range((no, 0)..=(no, u64::MAX))? {
        let (k, v) = row?;
        let rec = MessageRecord::decode(k.value().1, v.value())?;
        if rec.pos > bound {
            break;
        }
        gone.push(rec.seq);
    }
    for seq in &gone {
        messages.remove((no, *seq))?;
    }
    drop(messages);
    let mut events = tx.open_table(CONVNO_POS_EVENT)?;
    events.retain_in((no, 0)..=(no, bound), |_, v| {
        // Keep membership and other non-message events; message events go with their message.
        !matches!(
            EventRecord::decode(v),
            Ok(EventRecord::Message { .. } | EventRecord::Recall { .. })
        )
    })?;
    Ok(gone.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ConsentEvent;
    use crate::messaging::Page;
    use crate::messaging::tests::{send, setup};
    use primitives::time::Millis;

    async fn head(store: &Store, user: u64, device: &str) -> u64 {
        store
            .events_since(user, device.into(), None, 1000, Millis(0))
            .await
            .unwrap()
            .cursor
    }

    async fn set_cloud(store: &Store, user: u64, granted: bool) {
        let e = ConsentEvent {
            purpose: "cloud_sync".into(),
            granted,
            at: Millis(5),
            policy_version: "v".into(),
            device_id: "d".into(),
        };
        store.record_consent(user, e, None).await.unwrap();
    }

    #[tokio::test]
    async fn without_cloud_history_messages_leave_disk_once_every_device_has_them() {
        let (_d, store, no) = setup().await;
        for n in 1..=3 {
            send(&store, n).await;
        }
        assert_eq!(
            store.purge_delivered().await.unwrap(),
            0,
            "nobody has received them yet"
        );
        let top = head(&store, 1, "a1").await;
        store.acknowledge(1, "a1".into(), top).await.unwrap();
        assert_eq!(
            store.purge_delivered().await.unwrap(),
            0,
            "the other member has not"
        );
        store.acknowledge(2, "b1".into(), top).await.unwrap();
        assert_eq!(store.purge_delivered().await.unwrap(), 3);
        assert_eq!(store.stored_messages(no).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn a_member_with_cloud_history_keeps_messages_until_revoking_it() {
        let (_d, store, no) = setup().await;
        set_cloud(&store, 2, true).await;
        for n in 1..=2 {
            send(&store, n).await;
        }
        let top = head(&store, 1, "a1").await;
        store.acknowledge(1, "a1".into(), top).await.unwrap();
        store.acknowledge(2, "b1".into(), top).await.unwrap();
        assert_eq!(
            store.purge_delivered().await.unwrap(),
            0,
            "kept for the cloud member"
        );
        assert_eq!(store.stored_messages(no).await.unwrap(), 2);
        let page = store
            .messages(
                2,
                Some("b1".into()),
                no,
                Page {
                    before: None,
                    after: None,
                    limit: 10,
                },
                Millis(0),
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(page.len(), 2, "the cloud member still sees them");
        set_cloud(&store, 2, false).await;
        assert_eq!(
            store.stored_messages(no).await.unwrap(),
            0,
            "revocation purges at once"
        );
        let page = store
            .messages(
                2,
                Some("b1".into()),
                no,
                Page {
                    before: None,
                    after: None,
                    limit: 10,
                },
                Millis(0),
            )
            .await
            .unwrap()
            .unwrap();
        assert!(page.is_empty());
    }

    /// (message events, other events) stored for conversation `no`.
    async fn events_of(store: &Store, no: u64) -> (usize, usize) {
        store
            .read(move |tx| {
                let mut n = (0, 0);
                for row in tx
                    .open_table(CONVNO_POS_EVENT)?
                    .range((no, 0)..=(no, u64::MAX))?
                {
                    match EventRecord::decode(row?.1.value())? {
                        EventRecord::Message { .. } | EventRecord::Recall { .. } => n.0 += 1,
                        _ => n.1 += 1,
                    }
                }
                Ok(n)
            })
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn the_background_purge_goes_in_bounded_batches_that_resume_after_a_restart() {
        let (dir, store, no) = setup().await;
        for n in 1..=4 {
            send(&store, n).await;
        }
        let top = head(&store, 1, "a1").await;
        store.acknowledge(1, "a1".into(), top).await.unwrap();
        store.acknowledge(2, "b1".into(), top).await.unwrap();
        let (_, kept) = events_of(&store, no).await;
        assert!(kept > 0, "the conversation's membership events stay");
        assert_eq!(
            store.purge_delivered_batch(3).await.unwrap(),
            (3, false),
            "three rows visited, three messages removed"
        );
        assert_eq!(store.stored_messages(no).await.unwrap(), 1);
        // A restart between batches: the next one goes on from the recorded cursor.
        drop(store);
        let (store, _) = Store::open(&dir.path().join("n.redb"), |_| Ok(None)).unwrap();
        let mut batches = 0;
        let mut removed = 0;
        loop {
            // One row a batch: even the events that stay are passed once, not re-read by
            // every batch (which would never get past them).
            let (n, done) = store.purge_delivered_batch(1).await.unwrap();
            removed += n;
            batches += 1;
            assert!(batches < 100, "the round ends");
            if done {
                break;
            }
        }
        assert_eq!(removed, 1);
        assert_eq!(store.stored_messages(no).await.unwrap(), 0);
        assert_eq!(
            events_of(&store, no).await,
            (0, kept),
            "message events went with their messages; the others stay"
        );
        assert_eq!(store.purge_delivered().await.unwrap(), 0, "a new round");
    }
}
