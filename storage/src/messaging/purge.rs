//! Purging: messages leave the disk once every member's floor has passed them — in the
//! background, and at once when a user's history is dropped.

use redb::{ReadableTable, WriteTransaction};

use super::{EventRecord, MessageRecord, last_pos};
use crate::catalog::*;
use crate::{Store, StoreError};

impl Store {
    /// Moves the user's floor to now (their stored history leaves their view) and purges, in
    /// the same transaction, every message of their conversations no member still needs.
    pub fn drop_history(tx: &WriteTransaction, user: u64) -> Result<(), StoreError> {
        let head = last_pos(&tx.open_table(META)?)?;
        tx.open_table(USERID_FLOOR)?.insert(user, head)?;
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

    /// Purges, in every conversation, the messages every member's floor has passed. Returns
    /// how many messages were removed. Run in the background by the node.
    pub async fn purge_delivered(&self) -> Result<u64, StoreError> {
        self.write(|tx| {
            let convs: Vec<u64> = tx
                .open_table(CONVNO_CONVERSATION)?
                .iter()?
                .map(|r| r.map(|(k, _)| k.value()))
                .collect::<Result<_, _>>()?;
            let mut removed = 0;
            for no in convs {
                removed += purge_conversation(tx, no)?;
            }
            Ok(removed)
        })
        .await
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

/// Removes the messages (and events) of one conversation that every member's floor has passed.
fn purge_conversation(tx: &WriteTransaction, no: u64) -> Result<u64, StoreError> {
    let floors = tx.open_table(USERID_FLOOR)?;
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
        bound = bound.min(floors.get(user)?.map_or(0, |v| v.value()));
    }
    drop(floors);
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
}
