//! Recall and deletion: recalling a message for everyone (within the window, at the host), and
//! deleting one message or all of them from the user's own view.

use super::{Messaging, MessagingError};
use storage::Recalled;

impl Messaging {
    pub async fn recall(&self, user: u64, id: &str, seq: u64) -> Result<(), MessagingError> {
        let no = self
            .store
            .conversation_no(id.to_string())
            .await?
            .ok_or(MessagingError::NotFound)?;
        match self
            .store
            .recall_message(
                user,
                no,
                seq,
                self.clock.now(),
                self.limits.recall_window_ms,
                self.hosted_here(id),
                Some(self.outbox.recall_fanout(user)),
            )
            .await?
        {
            Recalled::Done(n) => {
                self.hub.publish(&n.users, n.pos);
                self.outbox.wake(&n.peers);
                Ok(())
            }
            Recalled::Refused(r) => Err(MessagingError::Refused(r)),
            Recalled::NotMember => Err(MessagingError::NotFound),
            Recalled::NoSuchMessage => Err(MessagingError::NoSuchMessage),
            Recalled::NotAuthor => Err(MessagingError::Forbidden(
                "only the author can recall a message",
            )),
            Recalled::TooLate => Err(MessagingError::TooLate(self.limits.recall_window_ms / 1000)),
        }
    }

    pub async fn hide(&self, user: u64, id: &str, seq: u64) -> Result<(), MessagingError> {
        let no = self
            .store
            .conversation_no(id.to_string())
            .await?
            .ok_or(MessagingError::NotFound)?;
        match self.store.hide_message(user, no, seq).await? {
            Some(true) => Ok(()),
            Some(false) => Err(MessagingError::NoSuchMessage),
            None => Err(MessagingError::NotFound),
        }
    }

    pub async fn clear(&self, user: u64, id: &str) -> Result<(), MessagingError> {
        let no = self
            .store
            .conversation_no(id.to_string())
            .await?
            .ok_or(MessagingError::NotFound)?;
        if self.store.clear_conversation(user, no).await? {
            Ok(())
        } else {
            Err(MessagingError::NotFound)
        }
    }
}
