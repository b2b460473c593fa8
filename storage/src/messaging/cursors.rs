//! Device cursors: started at login, moved by a device's acknowledgement (which moves the
//! user's floor when they keep no cloud history), and forgotten with the session.

use redb::{ReadableTable, WriteTransaction};

use super::last_pos;
use crate::catalog::*;
use crate::{Store, StoreError};

impl Store {
    /// Starts a device's cursor at the current position (called at login): a device of a user
    /// without cloud history sees nothing from before it existed.
    pub fn init_device_cursor(
        tx: &WriteTransaction,
        user: u64,
        device: &str,
    ) -> Result<(), StoreError> {
        let now = last_pos(&tx.open_table(META)?)?;
        tx.open_table(USERID_DEVICEID_CURSOR)?
            .insert((user, device), (now, now))?;
        Ok(())
    }

    /// Records that a device has everything up to `cursor`, and moves the user's floor if
    /// they keep no cloud history.
    pub async fn acknowledge(
        &self,
        user: u64,
        device: String,
        cursor: u64,
    ) -> Result<(), StoreError> {
        self.write(move |tx| {
            let head = last_pos(&tx.open_table(META)?)?;
            let cursor = cursor.min(head);
            let mut cursors = tx.open_table(USERID_DEVICEID_CURSOR)?;
            let Some((start, acked)) = cursors.get((user, device.as_str()))?.map(|v| v.value())
            else {
                return Ok(());
            };
            if cursor <= acked {
                return Ok(());
            }
            cursors.insert((user, device.as_str()), (start, cursor))?;
            let mut oldest = u64::MAX;
            for row in cursors.range((user, "")..)? {
                let (k, v) = row?;
                if k.value().0 != user {
                    break;
                }
                oldest = oldest.min(v.value().1);
            }
            drop(cursors);
            if !crate::privacy::granted(
                &tx.open_table(USERID_PURPOSE_CONSENT)?,
                user,
                "cloud_sync",
            )? && oldest != u64::MAX
            {
                let floor = USERID_FLOOR.get(tx, &user)?.unwrap_or(0);
                if oldest > floor {
                    USERID_FLOOR.insert(tx, &user, &oldest)?;
                }
            }
            Ok(())
        })
        .await
    }

    /// Forgets a device whose session ended: its cursor (so it no longer holds back the
    /// user's floor) and its sent-txn ids (a retry needs the device's token, which is gone).
    pub fn forget_device(tx: &WriteTransaction, user: u64, device: &str) -> Result<(), StoreError> {
        tx.open_table(USERID_DEVICEID_CURSOR)?
            .remove((user, device))?;
        crate::sentlog::flush(tx)?;
        let mut sent = tx.open_table(USERID_DEVICEID_TXNID_SENT)?;
        let mut keys = Vec::new();
        for row in sent.range((user, device, "")..)? {
            let (k, _) = row?;
            let (u, d, t) = k.value();
            if u != user || d != device {
                break;
            }
            keys.push(t.to_string());
        }
        for t in keys {
            sent.remove((user, device, t.as_str()))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messaging::tests::{send, setup};

    #[tokio::test]
    async fn ending_a_session_forgets_the_devices_txn_ids_and_cursor() {
        let (_d, store, _) = setup().await;
        send(&store, 1).await;
        use crate::sentlog::tests::sends_of;
        assert_eq!(sends_of(&store, 1).await, 1, "the send is recorded");
        assert!(
            store
                .delete_session(1, "a1".into())
                .await
                .unwrap()
                .is_some()
        );
        assert_eq!(sends_of(&store, 1).await, 0);
        let cursors = store
            .read(|tx| {
                Ok(tx
                    .open_table(USERID_DEVICEID_CURSOR)?
                    .get((1u64, "a1"))?
                    .is_some())
            })
            .await
            .unwrap();
        assert!(!cursors);
    }
}
