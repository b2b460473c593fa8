//! The sent-txn log: how a send records its client txn id without a page of its own.
//!
//! Sending is idempotent per (user, device, txn id) for `retention.txn_ids_days`: a client that
//! retries gets the first send's answer, even after a crash. The lookup needs rows in user
//! order, so when each send inserted its row straight into `userid_deviceid_txnid_sent`, each
//! of a group commit's ≈ 20 senders dirtied a leaf of its own, which the commit then copied,
//! checksummed and wrote: ≈ 14 µs of a message's ≈ 104 of CPU on the heavy profile
//! (`docs/PERFORMANCE.md`). A send now appends its row to `sentno_sent` instead, under an
//! increasing number, so one commit's rows share a leaf; the row is still in the send's own
//! commit. The writer thread keeps the log's rows in memory ([`SentLog`]) to answer lookups,
//! and once [`FLUSH_AT`] have gathered one commit moves them all into
//! `userid_deviceid_txnid_sent` ([`flush`]): where each device's txn ids increase, as they do
//! when a client builds them from a clock and a counter, that is one leaf per device instead
//! of one per send.
//!
//! Sign-out, erasure and retention act on `userid_deviceid_txnid_sent` alone, so each calls
//! [`flush`] before it removes sent rows; retention's read-only scan also reads the log
//! ([`logged`]), so what is due there is found (and counted by a dry run) too.
//!
//! **Invariant:** every send's row is in exactly one of the two tables, committed with the
//! message.
//!
//! **Invariant:** while a [`SentLog`] is valid its map holds exactly the rows of `sentno_sent`
//! as the writer's current transaction sees them. Rows are added only through
//! [`super::batch::Messages`], which calls [`SentLog::sync`] whenever message jobs resume after
//! any other job; other jobs only take rows away (through [`flush`]), which `sync` notices by
//! the table's length; and the writer invalidates the map when a transaction is not committed.

use std::collections::HashMap;

use redb::{ReadTransaction, ReadableTable, ReadableTableMetadata, Table, WriteTransaction};

use super::StoreError;
use super::catalog::*;
use super::retention::SentRow;

/// Rows the log gathers before one commit moves them into `userid_deviceid_txnid_sent`.
/// Memory: ≈ 150 bytes a row while in the log. Larger moves fewer leaves a send (with
/// increasing txn ids, one per device a flush) at the price of a longer flushing commit.
pub const FLUSH_AT: usize = 1024;

/// A log row as the index's (key, value).
fn split((user, device, txn, conv, seq, ts, pos): SentLogged<'_>) -> (SentKey<'_>, SentValue) {
    ((user, device, txn), (conv, seq, ts, pos))
}

/// A key the map can own.
fn owned((user, device, txn): SentKey<'_>) -> SentRow {
    (user, device.to_string(), txn.to_string())
}

/// The writer thread's copy of `sentno_sent`, to find a send by its key without a scan.
#[derive(Debug)]
pub struct SentLog {
    rows: HashMap<SentRow, SentValue>,
    /// Above every number in the log.
    next_no: u64,
    /// Whether `rows` is known to match the log; if not, [`SentLog::sync`] reads it again.
    valid: bool,
    flush_at: usize,
}

impl SentLog {
    /// An empty copy, not yet read from the database.
    pub fn new(flush_at: usize) -> SentLog {
        SentLog {
            rows: HashMap::new(),
            next_no: 0,
            valid: false,
            flush_at: flush_at.max(1),
        }
    }

    /// After a transaction that was not committed: what it added to the map may not exist.
    pub fn invalidate(&mut self) {
        self.valid = false;
    }

    /// Makes the map match `log`, the table as the current transaction has it: reads it again
    /// unless the map is valid and the lengths agree (other jobs only remove rows).
    pub fn sync(&mut self, log: &Table<'_, u64, SentLogged<'static>>) -> Result<(), StoreError> {
        if self.valid && log.len()? == self.rows.len() as u64 {
            return Ok(());
        }
        self.rows.clear();
        for row in log.iter()? {
            let (no, v) = row?;
            let (key, value) = split(v.value());
            self.rows.insert(owned(key), value);
            self.next_no = self.next_no.max(no.value() + 1);
        }
        self.valid = true;
        Ok(())
    }

    /// The logged send with this key, if the log has it (call after [`SentLog::sync`]).
    pub fn get(&self, key: SentKey<'_>) -> Option<SentValue> {
        self.rows.get(&owned(key)).copied()
    }

    /// Appends a send to `log` and to the map.
    pub fn append(
        &mut self,
        log: &mut Table<'_, u64, SentLogged<'static>>,
        key: SentKey<'_>,
        value: SentValue,
    ) -> Result<(), StoreError> {
        let ((user, device, txn), (conv, seq, ts, pos)) = (key, value);
        log.insert(self.next_no, (user, device, txn, conv, seq, ts, pos))?;
        self.next_no += 1;
        self.rows.insert(owned(key), value);
        Ok(())
    }

    /// Moves the log into `userid_deviceid_txnid_sent` once it has [`FLUSH_AT`] rows. Call
    /// with `sentno_sent` closed, after the batch's last message job.
    pub fn flush_if_full(&mut self, tx: &WriteTransaction) -> Result<(), StoreError> {
        if self.valid && self.rows.len() >= self.flush_at {
            flush(tx)?;
            self.rows.clear();
        }
        Ok(())
    }
}

/// Moves every row of `sentno_sent` into `userid_deviceid_txnid_sent` and empties the log;
/// returns how many moved. `sentno_sent` must not be open in `tx`.
pub fn flush(tx: &WriteTransaction) -> Result<u64, StoreError> {
    let mut moved = 0;
    {
        let log = tx.open_table(SENTNO_SENT)?;
        if log.is_empty()? {
            return Ok(0);
        }
        let mut sent = tx.open_table(USERID_DEVICEID_TXNID_SENT)?;
        for row in log.iter()? {
            let (_, v) = row?;
            let (key, value) = split(v.value());
            sent.insert(key, value)?;
            moved += 1;
        }
    }
    tx.delete_table(SENTNO_SENT)?;
    tx.open_table(SENTNO_SENT)?;
    Ok(moved)
}

/// The rows of `sentno_sent` in a read snapshot, as (key, value) of
/// `userid_deviceid_txnid_sent`.
pub fn logged(tx: &ReadTransaction) -> Result<Vec<(SentRow, SentValue)>, StoreError> {
    let mut out = Vec::new();
    for row in tx.open_table(SENTNO_SENT)?.iter()? {
        let (_, v) = row?;
        let (key, value) = split(v.value());
        out.push((owned(key), value));
    }
    Ok(out)
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use redb::Database;

    /// How many sends of `user` the store records, in the log and in the index together.
    pub async fn sends_of(store: &crate::Store, user: u64) -> usize {
        store
            .read(move |tx| {
                let logged = logged(tx)?
                    .iter()
                    .filter(|((u, _, _), _)| *u == user)
                    .count();
                let indexed = tx
                    .open_table(USERID_DEVICEID_TXNID_SENT)?
                    .range((user, "", "")..)?
                    .take_while(|r| r.as_ref().map_or(true, |(k, _)| k.value().0 == user))
                    .count();
                Ok(logged + indexed)
            })
            .await
            .unwrap()
    }

    fn count<K: redb::Key + 'static, V: redb::Value + 'static>(
        tx: &WriteTransaction,
        t: redb::TableDefinition<K, V>,
    ) -> u64 {
        tx.open_table(t).unwrap().len().unwrap()
    }

    /// One transaction of the writer: sync, look up or append each key, flush if full.
    fn batch(db: &Database, log: &mut SentLog, keys: &[&str]) -> Vec<Option<SentValue>> {
        let tx = db.begin_write().unwrap();
        let mut found = Vec::new();
        {
            let index = tx.open_table(USERID_DEVICEID_TXNID_SENT).unwrap();
            let mut t = tx.open_table(SENTNO_SENT).unwrap();
            log.sync(&t).unwrap();
            for (i, k) in keys.iter().enumerate() {
                let key = (7, "dev", *k);
                let hit = log
                    .get(key)
                    .or_else(|| index.get(key).unwrap().map(|v| v.value()));
                if hit.is_none() {
                    log.append(&mut t, key, (1, i as u64, 5, 9)).unwrap();
                }
                found.push(hit);
            }
        }
        log.flush_if_full(&tx).unwrap();
        tx.commit().unwrap();
        found
    }

    #[test]
    fn a_send_is_found_in_the_log_after_it_moves_and_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::create(dir.path().join("s.redb")).unwrap();
        let mut log = SentLog::new(3);
        assert_eq!(batch(&db, &mut log, &["a", "b"]), [None, None]);
        let tx = db.begin_write().unwrap();
        assert_eq!(count(&tx, SENTNO_SENT), 2, "two rows logged, not yet moved");
        assert_eq!(count(&tx, USERID_DEVICEID_TXNID_SENT), 0);
        tx.abort().unwrap();
        // A repeat is answered from the log; the third new row fills it and it moves.
        let found = batch(&db, &mut log, &["a", "c"]);
        assert_eq!(found, [Some((1, 0, 5, 9)), None]);
        let tx = db.begin_write().unwrap();
        assert_eq!(count(&tx, SENTNO_SENT), 0, "the log was moved");
        assert_eq!(count(&tx, USERID_DEVICEID_TXNID_SENT), 3);
        tx.abort().unwrap();
        assert_eq!(
            batch(&db, &mut log, &["a", "b", "c", "d"]),
            [
                Some((1, 0, 5, 9)),
                Some((1, 1, 5, 9)),
                Some((1, 1, 5, 9)),
                None
            ],
            "moved rows are found in the index"
        );
        // A restart: a fresh copy reads the log ("d") back, and numbers on after it.
        let mut fresh = SentLog::new(3);
        assert_eq!(
            batch(&db, &mut fresh, &["d", "e"]),
            [Some((1, 3, 5, 9)), None]
        );
        assert_eq!(fresh.next_no, log.next_no + 1);
    }

    #[test]
    fn a_flush_by_another_job_or_an_aborted_transaction_is_noticed() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::create(dir.path().join("s.redb")).unwrap();
        let mut log = SentLog::new(100);
        batch(&db, &mut log, &["a", "b"]);
        // Another job (sign-out, say) moves the log and deletes "a" from the index.
        let tx = db.begin_write().unwrap();
        assert_eq!(flush(&tx).unwrap(), 2);
        tx.open_table(USERID_DEVICEID_TXNID_SENT)
            .unwrap()
            .remove((7, "dev", "a"))
            .unwrap();
        tx.commit().unwrap();
        assert_eq!(
            batch(&db, &mut log, &["a", "b"]),
            [None, Some((1, 1, 5, 9))],
            "the map no longer answers for \"a\""
        );
        // The log now holds "a" again. A transaction in which a job moves the log and a send
        // then logs "x", aborted: the log has one row again, as many as the map, but not the
        // map's. Only the invalidation tells.
        let tx = db.begin_write().unwrap();
        flush(&tx).unwrap();
        {
            let mut t = tx.open_table(SENTNO_SENT).unwrap();
            log.sync(&t).unwrap();
            log.append(&mut t, (7, "dev", "x"), (1, 1, 1, 1)).unwrap();
        }
        tx.abort().unwrap();
        log.invalidate();
        assert_eq!(
            batch(&db, &mut log, &["x", "a"]),
            [None, Some((1, 0, 5, 9))],
            "\"x\" was never stored; \"a\" still is"
        );
    }
}
