//! History: pages of a conversation's messages as a device (or what is kept for the user)
//! sees them, opened under their authors' keys.

use std::collections::HashMap;

use super::{Body, MessageView, Messaging, MessagingError, aad};
use crate::accounts::Session;
use crate::crypto::SecretKey;
use storage::{MessageRecord, Page};

impl Messaging {
    /// Opens stored messages for display, given their authors' handles and wrapped keys (one
    /// lookup for a whole batch). The result is aligned with `items`; `None` where the author is
    /// gone (erased: nothing of theirs is shown).
    pub(super) fn open_views(
        &self,
        handles: &HashMap<u64, (String, Vec<u8>)>,
        items: Vec<(&str, MessageRecord)>,
    ) -> Result<Vec<Option<MessageView>>, MessagingError> {
        let mut keys: HashMap<u64, SecretKey> = HashMap::new();
        let mut out = Vec::with_capacity(items.len());
        for (conv_id, m) in items {
            let Some((handle, wrapped)) = handles.get(&m.author) else {
                out.push(None);
                continue;
            };
            let body = if m.recalled {
                None
            } else {
                let key = match keys.entry(m.author) {
                    std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                    std::collections::hash_map::Entry::Vacant(v) => {
                        v.insert(self.master.unwrap_data_key(m.author, wrapped)?)
                    }
                };
                Some(Body::decode(
                    &key.open(&aad(conv_id, &m.id), &m.body_sealed)?,
                )?)
            };
            out.push(Some(MessageView {
                id: format!("{conv_id}/{}", m.seq),
                seq: m.seq,
                ts: m.ts,
                sender: self.address(handle),
                body,
            }));
        }
        Ok(out)
    }

    /// A page of history as this device may see it.
    pub async fn history(
        &self,
        session: &Session,
        id: &str,
        before: Option<u64>,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<MessageView>, MessagingError> {
        self.page(
            session.user,
            Some(session.device_id.clone()),
            id,
            before,
            after,
            limit,
        )
        .await
    }

    /// A page of the history kept for `user` (not bound to one device's view), oldest first
    /// after `after`: what their data export holds.
    pub async fn kept_history(
        &self,
        user: u64,
        id: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<MessageView>, MessagingError> {
        self.page(user, None, id, None, Some(after), limit).await
    }

    async fn page(
        &self,
        user: u64,
        device: Option<String>,
        id: &str,
        before: Option<u64>,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<MessageView>, MessagingError> {
        let no = self
            .store
            .conversation_no(id.to_string())
            .await?
            .ok_or(MessagingError::NotFound)?;
        let records = self
            .store
            .messages(
                user,
                device,
                no,
                Page {
                    before,
                    after,
                    limit,
                },
                self.clock.now(),
            )
            .await?
            .ok_or(MessagingError::NotFound)?;
        let handles = self
            .handles(records.iter().map(|m| m.author).collect())
            .await?;
        let items = records.into_iter().map(|m| (id, m)).collect();
        Ok(self
            .open_views(&handles, items)?
            .into_iter()
            .flatten()
            .collect())
    }
}
