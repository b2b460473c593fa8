//! The conversation list as one device sees it (unread count, last message with a short
//! preview) and marking a conversation read.

use std::collections::HashMap;

use super::{ConversationView, MessageView, Messaging, MessagingError};
use crate::accounts::Session;
use storage::Activity;

/// A text preview holds at most this many characters of the message.
pub const PREVIEW_CHARS: usize = 100;

/// What the list shows of one conversation beside its summary.
#[derive(Debug, Clone)]
pub struct ConversationActivity {
    /// The user's read position (seq).
    pub read_seq: u64,
    /// Messages of others after the read position that this device may see, at most 1000
    /// (`storage::reading::UNREAD_CAP`).
    pub unread: u64,
    /// The newest message this device may see, if any (a recalled one has no body).
    pub last: Option<MessageView>,
}

impl Messaging {
    /// The user's conversations, most recently active first, each with its unread count and
    /// last message as the session's device sees them (the same view as its history pages).
    pub async fn list_with_activity(
        &self,
        session: &Session,
    ) -> Result<Vec<(ConversationView, ConversationActivity)>, MessagingError> {
        let views = self.list(session.user).await?;
        let mut activity = self
            .store
            .activity(
                session.user,
                Some(session.device_id.clone()),
                views.iter().map(|v| v.no).collect(),
                self.clock.now(),
            )
            .await?;
        let authors = activity
            .values()
            .flat_map(|a| a.recent.iter().map(|m| m.author))
            .collect();
        let handles = self.handles(authors).await?;
        let mut out = Vec::with_capacity(views.len());
        for v in views {
            let Activity {
                read_seq,
                unread,
                recent,
            } = activity.remove(&v.no).unwrap_or_default();
            // The newest one that can be shown: an erased author's messages are not.
            let items = recent.into_iter().map(|m| (v.id.as_str(), m)).collect();
            let last = self
                .open_views(&handles, items)?
                .into_iter()
                .flatten()
                .next();
            out.push((
                v,
                ConversationActivity {
                    read_seq,
                    unread,
                    last,
                },
            ));
        }
        Ok(out)
    }

    /// Marks conversation `id` read up to message `seq` (clamped to its last message; a lower
    /// seq than already read changes nothing). Returns the read position now.
    pub async fn mark_read(&self, user: u64, id: &str, seq: u64) -> Result<u64, MessagingError> {
        let no = self
            .store
            .conversation_no(id.to_string())
            .await?
            .ok_or(MessagingError::NotFound)?;
        self.store
            .mark_read(user, no, seq)
            .await?
            .ok_or(MessagingError::NotFound)
    }

    /// Every read position of the user, by conversation id (for their data export).
    pub async fn read_positions(&self, user: u64) -> Result<HashMap<String, u64>, MessagingError> {
        Ok(self.store.read_positions(user).await?.into_iter().collect())
    }
}
