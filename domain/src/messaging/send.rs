//! Sending: the checks on a message (txn id, body, media and its purpose), sealing under the
//! author's data key, and storing it here or forwarding it to the conversation's host, with
//! the nodes that receive it.

use std::time::Duration;

use super::{Body, MAX_TEXT_BYTES, Messaging, MessagingError, SendOutcome, aad};
use crate::accounts::Session;
use crate::crypto::{self, SecretKey};
use crate::media::sniff::Class;
use federation::{WireBody, conversation_host};
use storage::{NewMessage, Sent};

impl Messaging {
    /// Whether conversation `id` has members on other nodes.
    async fn has_remote_members(&self, id: &str) -> Result<bool, MessagingError> {
        let Some(no) = self.store.conversation_no(id.to_string()).await? else {
            return Ok(false);
        };
        Ok(self.store.conversation_state(no).await?.is_some_and(|s| {
            s.members
                .iter()
                .any(|m| m.user & storage::REMOTE_USER_BIT != 0)
        }))
    }

    /// The other nodes that store (and fetch the media of) what is sent into conversation
    /// `id`: its host when that is not this node, and the nodes of its remote members.
    async fn receiving_nodes(&self, id: &str) -> Result<Vec<String>, MessagingError> {
        let mut out = Vec::new();
        if let Some(host) = conversation_host(id)
            && host != self.domain
        {
            out.push(host.to_string());
        }
        let Some(no) = self.store.conversation_no(id.to_string()).await? else {
            return Ok(out);
        };
        let remote: Vec<u64> = self
            .store
            .conversation_state(no)
            .await?
            .map(|s| {
                s.members
                    .iter()
                    .map(|m| m.user)
                    .filter(|u| u & storage::REMOTE_USER_BIT != 0)
                    .collect()
            })
            .unwrap_or_default();
        for (_, r) in self.store.remote_users(remote).await? {
            if let Some(d) = federation::address_domain(&r.address)
                && !out.iter().any(|o| o == d)
            {
                out.push(d.to_string());
            }
        }
        Ok(out)
    }

    /// Sends a message; repeating a txn id from the same device returns the first answer.
    pub async fn send(
        &self,
        session: &Session,
        id: &str,
        txn_id: &str,
        body: Body,
    ) -> Result<SendOutcome, MessagingError> {
        validate_txn_id(txn_id)?;
        let media = match &body {
            Body::Text(t) => {
                if t.is_empty() || t.len() > MAX_TEXT_BYTES {
                    return Err(MessagingError::Invalid {
                        field: "body.text",
                        reason: format!("must be 1 to {MAX_TEXT_BYTES} bytes"),
                    });
                }
                None
            }
            Body::Media { kind, media_id, .. } => {
                let stored_type = self
                    .store
                    .media_type(media_id.clone(), session.user)
                    .await?
                    .ok_or_else(|| MessagingError::Invalid {
                        field: "body.media_id",
                        reason: "is not media you uploaded".into(),
                    })?;
                let purpose = kind.purpose(Class::of(&stored_type)).map_err(|reason| {
                    MessagingError::Invalid {
                        field: "body.type",
                        reason,
                    }
                })?;
                if let Some(p) = purpose {
                    self.consents.require(session.user, p).await?;
                }
                Some(media_id.clone())
            }
        };
        let key: SecretKey = self
            .master
            .unwrap_data_key(session.user, &session.wrapped_key)?;
        let mut msg_id = [0u8; 16];
        crypto::random_bytes(&mut msg_id)?;
        let body_sealed = key.seal(&aad(id, &msg_id), &body.encode())?;
        let ts = self.clock.now();
        let fanout = match &body {
            Body::Text(t) => self.outbox.message_fanout(
                session.user,
                key.clone(),
                msg_id,
                ts.0,
                WireBody::Text { text: t.clone() },
            ),
            Body::Media {
                kind,
                media_id,
                name,
            } => {
                // The bytes are read and hashed only when the message leaves this node.
                let federated = !self.hosted_here(id) || self.has_remote_members(id).await?;
                if federated {
                    // The fan-out refuses media larger than a receiving node takes; it needs
                    // their published limits known.
                    let nodes = self.receiving_nodes(id).await?;
                    self.outbox
                        .learn_limits(&nodes, Duration::from_secs(3))
                        .await;
                    let media = crate::media::reference(
                        &self.store,
                        &self.master,
                        session.user,
                        media_id,
                        &self.domain,
                    )
                    .await
                    .map_err(|e| MessagingError::Invalid {
                        field: "body.media_id",
                        reason: e.to_string(),
                    })?;
                    self.outbox.message_fanout(
                        session.user,
                        key.clone(),
                        msg_id,
                        ts.0,
                        WireBody::Media {
                            kind: kind.name().to_string(),
                            name: name.clone(),
                            media,
                        },
                    )
                } else {
                    storage::Fanout::new(self.store.handles(), |_| Ok(Vec::new()))
                }
            }
        };
        let outcome = self
            .store
            .send_message(NewMessage {
                author: session.user,
                device_id: session.device_id.clone(),
                txn_id: txn_id.to_string(),
                conv_id: id.to_string(),
                id: msg_id,
                ts,
                body_sealed,
                media,
                hosted_here: self.hosted_here(id),
                fanout: Some(fanout),
            })
            .await?;
        match outcome {
            Sent::New { seq, ts, notify } => {
                self.hub.publish(&notify.users, notify.pos);
                self.outbox.wake(&notify.peers);
                self.outbox.pace(&notify.peers).await;
                Ok(SendOutcome::Stored {
                    id: format!("{id}/{seq}"),
                    seq,
                    ts,
                })
            }
            Sent::Repeat { seq: 0, ts } => Ok(SendOutcome::Forwarded { ts }),
            Sent::Repeat { seq, ts } => Ok(SendOutcome::Stored {
                id: format!("{id}/{seq}"),
                seq,
                ts,
            }),
            Sent::Forwarded { ts, notify } => {
                self.outbox.wake(&notify.peers);
                self.outbox.pace(&notify.peers).await;
                Ok(SendOutcome::Forwarded { ts })
            }
            Sent::Refused(r) => Err(MessagingError::Refused(r)),
            Sent::NotMember => Err(MessagingError::NotFound),
            Sent::NotAccepting => Err(MessagingError::NotAccepting),
            Sent::MediaNotOwned => Err(MessagingError::Invalid {
                field: "body.media_id",
                reason: "is not media you uploaded".into(),
            }),
        }
    }
}

/// Checks a client transaction id: 1–64 of `[A-Za-z0-9._-]`.
fn validate_txn_id(s: &str) -> Result<(), MessagingError> {
    if (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        Ok(())
    } else {
        Err(MessagingError::Invalid {
            field: "txn_id",
            reason: "must be 1 to 64 of A-Z a-z 0-9 . _ -".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn txn_ids_are_checked() {
        assert!(validate_txn_id("abc-1.2_3").is_ok());
        assert!(validate_txn_id("").is_err());
        assert!(validate_txn_id("a b").is_err());
        assert!(validate_txn_id(&"a".repeat(65)).is_err());
    }
}
