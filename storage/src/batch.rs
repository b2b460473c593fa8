//! What the jobs of one write transaction share: the transaction, and the message tables kept
//! open from one message write to the next.
//!
//! Sending a message touches the same few tables every time. Opening a redb table looks its
//! root up in the table tree and decodes its definition, and closing it writes the root back;
//! reading a conversation decodes every member. With dozens of messages in one group commit
//! that was most of the writer's work that was not the commit itself. A [`Batch`] therefore
//! keeps those tables open, the conversations read so far, and the next `pos`, for as long as
//! message jobs follow one another, and writes the conversations and the counter back once:
//! before any other job runs (it sees the database exactly as if each message job had written
//! everything itself) and before the commit.
//!
//! The batch also lends message jobs the writer's [`SentLog`], the in-memory copy of the
//! sent-txn log (`storage/sentlog.rs`), and moves that log into its index before the commit
//! when it is full.
//!
//! **Invariant:** while [`Messages`] is out, the tables it holds are opened only through it
//! (redb refuses a second open of a table in one transaction, so a mistake fails every time),
//! and a message job reads conversation records and META's `next_pos` only through it too (the
//! table would answer, but with what the batch has not yet written back).

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use redb::{ReadableTable, Table, WriteTransaction};

use super::StoreError;
use super::catalog::*;
use super::messaging::{ConversationState, EventRecord, MessageRecord, load_state_w};
use super::sentlog::SentLog;
use primitives::time::Millis;

/// One write transaction as its jobs see it.
pub struct Batch<'t> {
    tx: &'t WriteTransaction,
    messages: Option<Messages<'t>>,
    /// The writer's sent log, here while no [`Messages`] holds it.
    sent_log: Option<&'t mut SentLog>,
}

impl<'t> Batch<'t> {
    /// A batch of `tx`. The writer invalidates `sent_log` if `tx` is not committed.
    pub fn new(tx: &'t WriteTransaction, sent_log: &'t mut SentLog) -> Batch<'t> {
        Batch {
            tx,
            messages: None,
            sent_log: Some(sent_log),
        }
    }

    /// The transaction, for a job that opens its own tables; whatever message jobs before it
    /// kept in memory is written first and their tables closed.
    pub fn tx(&mut self) -> Result<&'t WriteTransaction, StoreError> {
        self.write_back()?;
        Ok(self.tx)
    }

    /// The transaction and the open message tables, for a message job.
    pub fn messages(&mut self) -> Result<(&'t WriteTransaction, &mut Messages<'t>), StoreError> {
        let tx = self.tx;
        let m = match self.messages.take() {
            Some(m) => m,
            None => {
                let log = self
                    .sent_log
                    .take()
                    .ok_or(StoreError::Corrupt("sent log lost by a failed batch"))?;
                Messages::open(tx, log)?
            }
        };
        Ok((tx, self.messages.insert(m)))
    }

    /// Writes back what is held in memory, and moves the sent log into its index if it is
    /// full; call before committing.
    pub fn finish(mut self) -> Result<(), StoreError> {
        self.write_back()?;
        match self.sent_log.take() {
            Some(log) => log.flush_if_full(self.tx),
            None => Ok(()),
        }
    }

    fn write_back(&mut self) -> Result<(), StoreError> {
        if let Some(m) = self.messages.take() {
            self.sent_log = Some(m.write_back(self.tx)?);
        }
        Ok(())
    }
}

/// A new message's own content, as a message job stores it (borrowed: a job may run twice).
#[derive(Debug)]
pub struct NewRow<'a> {
    pub id: [u8; 16],
    pub author: u64,
    pub ts: Millis,
    pub body_sealed: &'a [u8],
    pub media: Option<&'a str>,
}

/// The tables of a message write, open, with the conversations read so far and the `pos`
/// counter.
pub struct Messages<'t> {
    /// `userid_deviceid_txnid_sent`, only read here: sends reach it through the log.
    sent: Table<'t, SentKey<'static>, SentValue>,
    log: Table<'t, u64, SentLogged<'static>>,
    sent_log: &'t mut SentLog,
    conv_ids: Table<'t, &'static str, u64>,
    messages: Table<'t, (u64, u64), &'static [u8]>,
    events: Table<'t, (u64, u64), &'static [u8]>,
    /// Conversations read (with their members), and whether each changed.
    states: HashMap<u64, (ConversationState, bool)>,
    /// The next pos to hand out, once a message here has taken one (META has the old value
    /// until [`Messages::write_back`]).
    next_pos: Option<u64>,
}

impl<'t> Messages<'t> {
    fn open(
        tx: &'t WriteTransaction,
        sent_log: &'t mut SentLog,
    ) -> Result<Messages<'t>, StoreError> {
        let log = tx.open_table(SENTNO_SENT)?;
        sent_log.sync(&log)?;
        Ok(Messages {
            sent: tx.open_table(USERID_DEVICEID_TXNID_SENT)?,
            log,
            sent_log,
            conv_ids: tx.open_table(CONVID_CONVNO)?,
            messages: tx.open_table(CONVNO_SEQ_MESSAGE)?,
            events: tx.open_table(CONVNO_POS_EVENT)?,
            states: HashMap::new(),
            next_pos: None,
        })
    }

    /// What a device's earlier send with this txn id stored: (conv, seq, ts ms, pos).
    pub fn sent(&self, key: SentKey<'_>) -> Result<Option<SentValue>, StoreError> {
        if let Some(v) = self.sent_log.get(key) {
            return Ok(Some(v));
        }
        Ok(self.sent.get(key)?.map(|v| v.value()))
    }

    /// Records a device's send under its txn id (in the sent log, in this transaction).
    pub fn record_sent(&mut self, key: SentKey<'_>, value: SentValue) -> Result<(), StoreError> {
        self.sent_log.append(&mut self.log, key, value)
    }

    /// A conversation with its members by public id, as this transaction has it.
    pub fn state_of(
        &mut self,
        tx: &WriteTransaction,
        id: &str,
    ) -> Result<Option<&ConversationState>, StoreError> {
        let Some(no) = self.conv_ids.get(id)?.map(|v| v.value()) else {
            return Ok(None);
        };
        self.state(tx, no)
    }

    /// A conversation with its members by number, as this transaction has it.
    fn state(
        &mut self,
        tx: &WriteTransaction,
        no: u64,
    ) -> Result<Option<&ConversationState>, StoreError> {
        if let Entry::Vacant(e) = self.states.entry(no) {
            let Some(s) = load_state_w(tx, no)? else {
                return Ok(None);
            };
            e.insert((s, false));
        }
        Ok(self.states.get(&no).map(|(s, _)| s))
    }

    /// Stores a message as the conversation's next seq, with its event; returns (seq, pos) and
    /// the conversation as it now is. The conversation must have been read with
    /// [`Messages::state_of`].
    pub fn store_message(
        &mut self,
        tx: &WriteTransaction,
        no: u64,
        row: NewRow<'_>,
    ) -> Result<(u64, u64, &ConversationState), StoreError> {
        let seq = self.read(no)?.conversation.last_seq + 1;
        let pos = self.put_message(tx, no, seq, row)?;
        Ok((seq, pos, self.read(no)?))
    }

    /// A conversation [`Messages::state_of`] has read.
    fn read(&self, no: u64) -> Result<&ConversationState, StoreError> {
        self.states
            .get(&no)
            .map(|(s, _)| s)
            .ok_or(StoreError::Corrupt("conversation not read"))
    }

    /// Whether the conversation has a message at `seq`.
    pub fn has_message(&self, no: u64, seq: u64) -> Result<bool, StoreError> {
        Ok(self.messages.get((no, seq))?.is_some())
    }

    /// Stores a message at a given seq (a replica takes the host's), with its event, and
    /// moves the conversation's last seq and activity; returns its pos. The conversation must
    /// have been read with [`Messages::state_of`].
    pub fn put_message(
        &mut self,
        tx: &WriteTransaction,
        no: u64,
        seq: u64,
        row: NewRow<'_>,
    ) -> Result<u64, StoreError> {
        let pos = self.take_pos(tx)?;
        let (state, changed) = self
            .states
            .get_mut(&no)
            .ok_or(StoreError::Corrupt("conversation not read"))?;
        let rec = MessageRecord {
            seq,
            pos,
            id: row.id,
            author: row.author,
            ts: row.ts,
            body_sealed: row.body_sealed.to_vec(),
            recalled: false,
            media: row.media.map(str::to_string),
        };
        self.messages.insert((no, seq), rec.encode().as_slice())?;
        let event = EventRecord::Message { seq };
        self.events.insert((no, pos), event.encode().as_slice())?;
        let conv = &mut state.conversation;
        conv.last_seq = conv.last_seq.max(seq);
        conv.last_activity = row.ts;
        *changed = true;
        Ok(pos)
    }

    fn take_pos(&mut self, tx: &WriteTransaction) -> Result<u64, StoreError> {
        let next = match self.next_pos {
            Some(n) => n,
            None => super::read_number(&tx.open_table(META)?, "next_pos")?,
        };
        self.next_pos = Some(next + 1);
        Ok(next)
    }

    /// Writes back the counter and the changed conversations, closes the tables and hands
    /// the sent log back.
    fn write_back(self, tx: &WriteTransaction) -> Result<&'t mut SentLog, StoreError> {
        let Messages {
            sent,
            log,
            sent_log,
            conv_ids,
            messages,
            events,
            states,
            next_pos,
        } = self;
        drop((sent, log, conv_ids, messages, events));
        if let Some(next) = next_pos {
            tx.open_table(META)?
                .insert("next_pos", next.to_be_bytes().as_slice())?;
        }
        let mut changed = states.into_iter().filter(|(_, (_, c))| *c).peekable();
        if changed.peek().is_some() {
            let mut convs = tx.open_table(CONVNO_CONVERSATION)?;
            for (no, (state, _)) in changed {
                convs.insert(no, state.conversation.encode().as_slice())?;
            }
        }
        Ok(sent_log)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::conversation;
    use crate::{ConvKind, Store};

    #[tokio::test]
    async fn a_job_after_message_jobs_sees_their_counter_and_conversation_and_so_does_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(&dir.path().join("n.redb"), |_| Ok(None)).unwrap();
        let (conv, _, _) = store
            .create_conversation(conversation("c:localhost", 5, ConvKind::Group, vec![2]))
            .await
            .unwrap()
            .unwrap();
        let next_pos = |tx: &WriteTransaction| {
            super::super::read_number(&tx.open_table(META).unwrap(), "next_pos").unwrap()
        };
        let last_seq = |tx: &WriteTransaction| {
            load_state_w(tx, conv.no)
                .unwrap()
                .unwrap()
                .conversation
                .last_seq
        };
        let send = |b: &mut Batch<'_>, n: u8| {
            let (tx, w) = b.messages().unwrap();
            assert!(w.state(tx, conv.no).unwrap().is_some());
            let (seq, pos, _) = w
                .store_message(
                    tx,
                    conv.no,
                    NewRow {
                        id: [n; 16],
                        author: 1,
                        ts: Millis(10),
                        body_sealed: &[n],
                        media: None,
                    },
                )
                .unwrap();
            (seq, pos)
        };

        let tx = store.db.begin_write().unwrap();
        let pos0 = next_pos(&tx);
        let mut sent_log = SentLog::new(super::super::sentlog::FLUSH_AT);
        let mut b = Batch::new(&tx, &mut sent_log);
        assert_eq!(send(&mut b, 1), (1, pos0));
        assert_eq!(
            send(&mut b, 2),
            (2, pos0 + 1),
            "the second reads the first's"
        );
        // Another kind of job in the same transaction sees both messages written through.
        let plain = b.tx().unwrap();
        assert_eq!(next_pos(plain), pos0 + 2);
        assert_eq!(last_seq(plain), 2);
        assert_eq!(send(&mut b, 3), (3, pos0 + 2));
        b.finish().unwrap();
        tx.commit().unwrap();

        let tx = store.db.begin_write().unwrap();
        assert_eq!(
            next_pos(&tx),
            pos0 + 3,
            "the counter was written before the commit"
        );
        assert_eq!(last_seq(&tx), 3);
        let messages = tx.open_table(CONVNO_SEQ_MESSAGE).unwrap();
        let events = tx.open_table(CONVNO_POS_EVENT).unwrap();
        for (seq, pos) in [(1, pos0), (2, pos0 + 1), (3, pos0 + 2)] {
            assert!(messages.get((conv.no, seq)).unwrap().is_some(), "seq {seq}");
            assert!(events.get((conv.no, pos)).unwrap().is_some(), "pos {pos}");
        }
    }
}
