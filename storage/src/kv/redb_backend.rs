//! The seam's redb implementation: a seam table is a redb table of `&[u8]` keys and values
//! under the same name, opened for each call (redb's table handles borrow the transaction).
//! redb orders `&[u8]` keys lexicographically, which is what the key encoding needs.

use std::ops::Bound;

use redb::{ReadTransaction, ReadableTable, TableDefinition, TableError, WriteTransaction};

use super::{Order, Read, Row, Span, Write};
use crate::StoreError;

/// The redb table behind seam table `name`.
pub(crate) const fn def(name: &str) -> TableDefinition<'_, &'static [u8], &'static [u8]> {
    TableDefinition::new(name)
}

/// How many rows seam table `name` holds, as a check of the file sees it (an operator's, a
/// test's). Kept off the [`Read`] trait: a shared backend counts by scanning, and nothing that
/// serves a request needs it.
pub(crate) fn rows_in(tx: &ReadTransaction, name: &'static str) -> Result<u64, StoreError> {
    match tx.open_table(def(name)) {
        Err(TableError::TableDoesNotExist(_)) => Ok(0),
        t => Ok(redb::ReadableTableMetadata::len(&t?)?),
    }
}

fn bound(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match b {
        Bound::Included(k) => Bound::Included(k.as_slice()),
        Bound::Excluded(k) => Bound::Excluded(k.as_slice()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// Reads at most `limit` rows of `span` from an open table.
fn rows(
    t: &impl ReadableTable<&'static [u8], &'static [u8]>,
    span: &Span,
    order: Order,
    limit: usize,
) -> Result<Vec<Row>, StoreError> {
    if limit == 0 || empty(span) {
        return Ok(Vec::new());
    }
    let range = t.range::<&[u8]>((bound(&span.start), bound(&span.end)))?;
    let pair = |r: Result<_, redb::StorageError>| {
        r.map(
            |(k, v): (redb::AccessGuard<&[u8]>, redb::AccessGuard<&[u8]>)| {
                (k.value().to_vec(), v.value().to_vec())
            },
        )
        .map_err(StoreError::from)
    };
    match order {
        Order::Ascending => range.take(limit).map(pair).collect(),
        Order::Descending => range.rev().take(limit).map(pair).collect(),
    }
}

/// Whether `span` holds no key at all (redb refuses a range whose start is past its end).
fn empty(span: &Span) -> bool {
    use Bound::*;
    match (&span.start, &span.end) {
        (Included(a), Included(b)) => a > b,
        (Included(a) | Excluded(a), Excluded(b)) | (Excluded(a), Included(b)) => a >= b,
        _ => false,
    }
}

impl Read for ReadTransaction {
    fn get(&self, table: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        match self.open_table(def(table)) {
            Err(TableError::TableDoesNotExist(_)) => Ok(None),
            t => Ok(t?.get(key)?.map(|v| v.value().to_vec())),
        }
    }

    fn range(
        &self,
        table: &'static str,
        span: &Span,
        order: Order,
        limit: usize,
    ) -> Result<Vec<Row>, StoreError> {
        match self.open_table(def(table)) {
            Err(TableError::TableDoesNotExist(_)) => Ok(Vec::new()),
            t => rows(&t?, span, order, limit),
        }
    }
}

impl Read for WriteTransaction {
    fn get(&self, table: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .open_table(def(table))?
            .get(key)?
            .map(|v| v.value().to_vec()))
    }

    fn range(
        &self,
        table: &'static str,
        span: &Span,
        order: Order,
        limit: usize,
    ) -> Result<Vec<Row>, StoreError> {
        rows(&self.open_table(def(table))?, span, order, limit)
    }
}

impl Write for WriteTransaction {
    fn insert(&self, table: &'static str, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.open_table(def(table))?.insert(key, value)?;
        Ok(())
    }

    fn remove(&self, table: &'static str, key: &[u8]) -> Result<bool, StoreError> {
        Ok(self.open_table(def(table))?.remove(key)?.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Order, Table};
    use redb::ReadableDatabase;
    use std::ops::Bound;

    const T: Table<(u64, String), u64> = Table::new("kv_test");

    fn db() -> (tempfile::TempDir, redb::Database) {
        let dir = tempfile::tempdir().unwrap();
        let db = redb::Database::create(dir.path().join("t.redb")).unwrap();
        (dir, db)
    }

    #[test]
    fn a_table_never_written_reads_as_empty() {
        let (_d, db) = db();
        let tx = db.begin_read().unwrap();
        assert_eq!(T.get(&tx, &(1, "a".into())).unwrap(), None);
        assert!(T.page(&tx, None, 10).unwrap().is_empty());
    }

    #[test]
    fn ranges_are_in_typed_order_bounded_and_resumable() {
        let (_d, db) = db();
        let tx = db.begin_write().unwrap();
        for (u, s) in [
            (2, "b"),
            (1, "b"),
            (1, "a\0"),
            (1, "a"),
            (300, ""),
            (1, "ab"),
        ] {
            T.insert(&tx, &(u, s.to_string()), &u).unwrap();
        }
        let keys = |rows: Vec<((u64, String), u64)>| -> Vec<(u64, String)> {
            rows.into_iter().map(|(k, _)| k).collect()
        };
        let all = keys(T.page(&tx, None, 100).unwrap());
        let mut sorted = all.clone();
        sorted.sort();
        assert_eq!(all, sorted, "byte order is the typed order");
        assert_eq!(all.len(), 6);
        let first = keys(T.page(&tx, None, 2).unwrap());
        let rest = keys(T.page(&tx, first.last(), 100).unwrap());
        assert_eq!(
            [first, rest].concat(),
            all,
            "paging resumes after the last key"
        );
        let ones = keys(T.prefixed(&tx, &1u64, Order::Descending, 10).unwrap());
        assert_eq!(ones.len(), 4);
        assert_eq!(ones[0], (1, "b".to_string()), "descending");
        let k = (1, "a".to_string());
        let after_a = T
            .range(
                &tx,
                Bound::Excluded(&k),
                Bound::Excluded(&(2, String::new())),
                Order::Ascending,
                10,
            )
            .unwrap();
        assert_eq!(after_a.len(), 3);
        assert!(
            T.range(
                &tx,
                Bound::Included(&(9, String::new())),
                Bound::Included(&k),
                Order::Ascending,
                10
            )
            .unwrap()
            .is_empty(),
            "a range whose start is past its end is empty, not an error"
        );
        let first = keys(T.prefixed_page(&tx, &1u64, None, 3).unwrap());
        let rest = keys(T.prefixed_page(&tx, &1u64, first.last(), 3).unwrap());
        assert_eq!((first.len(), rest.len()), (3, 1), "one prefix, paged");
        assert_eq!(first[0], (1, "a".to_string()));
        assert_eq!(rest, [(1, "b".to_string())]);
        assert_eq!(T.remove_prefixed(&tx, &1u64, 3).unwrap(), 3);
        assert_eq!(T.remove_prefixed(&tx, &1u64, 3).unwrap(), 1);
        assert_eq!(T.take(&tx, &(2, "b".into())).unwrap(), Some(2));
        assert_eq!(keys(T.page(&tx, None, 10).unwrap()), [(300, String::new())]);
        tx.commit().unwrap();
        let tx = db.begin_read().unwrap();
        assert_eq!(T.get(&tx, &(300, String::new())).unwrap(), Some(300));
    }

    #[test]
    fn a_prefix_is_removed_within_a_budget_or_whole_and_the_others_stay() {
        let (_d, db) = db();
        let tx = db.begin_write().unwrap();
        for (u, n) in [(1u64, 5u64), (2, 7), (3, 1)] {
            for i in 0..n {
                T.insert(&tx, &(u, format!("k{i}")), &i).unwrap();
            }
        }
        let mut budget = 3;
        assert!(!T.remove_prefixed_within(&tx, &1u64, &mut budget).unwrap());
        assert_eq!(budget, 0, "the budget is spent, rows are left");
        let mut budget = 3;
        assert!(T.remove_prefixed_within(&tx, &1u64, &mut budget).unwrap());
        assert_eq!(budget, 1, "two were left; none is now");
        T.remove_all_prefixed(&tx, &2u64, 2).unwrap();
        let left: Vec<u64> = T
            .page(&tx, None, 100)
            .unwrap()
            .into_iter()
            .map(|((u, _), _)| u)
            .collect();
        assert_eq!(left, [3], "only the other prefix stays");
    }
}
