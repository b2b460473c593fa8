//! Sending: a message stored idempotently per author device and txn id (or forwarded to the
//! conversation's host node), with its seq, pos and fan-out, and the outcomes of a send.

use redb::ReadableTable;

use super::{ConvKind, EventRecord, Notify};
use crate::batch::NewRow;
use crate::catalog::*;
use crate::federation::{Fanout, Refusal, run_fanout};
use crate::{Store, StoreError};
use primitives::time::Millis;

/// A message to store.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub author: u64,
    pub device_id: String,
    pub txn_id: String,
    pub conv_id: String,
    pub id: [u8; 16],
    pub ts: Millis,
    pub body_sealed: Vec<u8>,
    pub media: Option<String>,
    /// False when another node hosts the conversation: nothing is stored here, the message
    /// goes to the host (through `fanout`), which sequences it and sends it back.
    pub hosted_here: bool,
    pub fanout: Option<Fanout>,
}

/// The outcome of storing a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// Stored now.
    New {
        seq: u64,
        ts: Millis,
        notify: Notify,
    },
    /// The same device sent this txn id before: the original answer, nothing stored (seq 0:
    /// it went to the conversation's host node).
    Repeat { seq: u64, ts: Millis },
    /// Queued for the host node of the conversation.
    Forwarded { ts: Millis, notify: Notify },
    /// The fan-out refused: nothing stored or queued.
    Refused(Refusal),
    /// The author is not a member (or the conversation does not exist).
    NotMember,
    /// The media is not the author's.
    MediaNotOwned,
    /// A direct conversation whose other member does not take messages from the author
    /// (a block either way, or friends only): nothing stored.
    NotAccepting,
}

impl Store {
    /// Stores a message idempotently (per author device and txn id), assigning seq and pos.
    pub async fn send_message(&self, m: NewMessage) -> Result<Sent, StoreError> {
        crate::or_refused(
            self.write_message(move |tx, w| {
                let key = (m.author, m.device_id.as_str(), m.txn_id.as_str());
                if let Some((_, seq, ts, _)) = w.sent(key)? {
                    return Ok(Sent::Repeat {
                        seq,
                        ts: Millis(ts),
                    });
                }
                let Some(state) = w.state_of(tx, &m.conv_id)? else {
                    return Ok(Sent::NotMember);
                };
                let no = state.conversation.no;
                if state.member(m.author).is_none() {
                    return Ok(Sent::NotMember);
                }
                if state.conversation.kind == ConvKind::Direct
                    && let Some(other) = state.members.iter().find(|x| x.user != m.author)
                    && crate::friends::direct_refused(tx, m.author, other.user)?
                {
                    return Ok(Sent::NotAccepting);
                }
                if let Some(media) = &m.media {
                    let owned = tx
                        .open_table(USERID_MEDIAID)?
                        .get((m.author, media.as_str()))?
                        .is_some();
                    if !owned {
                        return Ok(Sent::MediaNotOwned);
                    }
                    // Also when another node hosts it: the host and the nodes of its members
                    // may then fetch the media from here (`Store::media_for_peer`).
                    tx.open_table(MEDIAID_CONVNO)?
                        .insert((media.as_str(), no), ())?;
                }
                if !m.hosted_here {
                    let probe = [EventRecord::Message { seq: 0 }];
                    let peers = run_fanout(
                        tx,
                        m.fanout.as_ref(),
                        &state.conversation,
                        &state.members,
                        &[],
                        &probe,
                        m.ts,
                    )?;
                    w.record_sent(key, (no, 0, m.ts.0, 0))?;
                    return Ok(Sent::Forwarded {
                        ts: m.ts,
                        notify: Notify {
                            users: Vec::new(),
                            pos: 0,
                            peers,
                        },
                    });
                }
                let row = NewRow {
                    id: m.id,
                    author: m.author,
                    ts: m.ts,
                    body_sealed: &m.body_sealed,
                    media: m.media.as_deref(),
                };
                let (seq, pos, state) = w.store_message(tx, no, row)?;
                let events = [EventRecord::Message { seq }];
                let peers = run_fanout(
                    tx,
                    m.fanout.as_ref(),
                    &state.conversation,
                    &state.members,
                    &[],
                    &events,
                    m.ts,
                )?;
                let users = state.members.iter().map(|x| x.user).collect();
                w.record_sent(key, (no, seq, m.ts.0, pos))?;
                Ok(Sent::New {
                    seq,
                    ts: m.ts,
                    notify: Notify { users, pos, peers },
                })
            })
            .await,
            Sent::Refused,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messaging::Page;
    use crate::messaging::tests::{send, setup};

    /// Sends txn id "t1" again, with other content: the answer is the first send's.
    async fn assert_repeat_of_t1(store: &Store) {
        let again = store
            .send_message(NewMessage {
                author: 1,
                device_id: "a1".into(),
                txn_id: "t1".into(),
                conv_id: "c:localhost".into(),
                id: [9; 16],
                ts: Millis(99),
                body_sealed: vec![9],
                media: None,
                hosted_here: true,
                fanout: None,
            })
            .await
            .unwrap();
        assert_eq!(
            again,
            Sent::Repeat {
                seq: 1,
                ts: Millis(11)
            }
        );
    }

    #[tokio::test]
    async fn a_send_retried_after_a_restart_is_a_repeat() {
        let (dir, store, _) = setup().await;
        send(&store, 1).await;
        drop(store);
        let (store, _) = Store::open(&dir.path().join("n.redb"), |_| Ok(None)).unwrap();
        assert_repeat_of_t1(&store).await;
    }

    #[tokio::test]
    async fn repeated_txn_ids_store_once_and_seq_has_no_gaps() {
        let (_d, store, no) = setup().await;
        send(&store, 1).await;
        assert_repeat_of_t1(&store).await;
        send(&store, 2).await;
        let page = store
            .messages(
                1,
                Some("a1".into()),
                no,
                Page {
                    before: None,
                    after: Some(0),
                    limit: 10,
                },
                Millis(0),
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(page.iter().map(|m| m.seq).collect::<Vec<_>>(), vec![1, 2]);
    }
}
