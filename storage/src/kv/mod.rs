//! The transactional key-value seam (issue 20): what the storage code needs of a database,
//! and nothing more — read and write transactions over named, ordered tables of byte keys and
//! byte values, with get, a *bounded* range, insert and remove. redb is the one implementation
//! now (`redb_backend.rs`); a second, shared backend (PostgreSQL, a distributed SQL store
//! several node processes use at once) implements the same two traits.
//!
//! On top, [`Table`] gives a table its key and value types: keys go through the
//! order-preserving encoding of `key.rs`, so ranging over bytes is ranging over the typed key.
//!
//! **Invariant:** a range read names its limit. There is no "every row" call, so a write
//! transaction cannot do work proportional to a whole table by accident; code that must visit
//! every row pages through it with [`Table::page`], a bounded batch per transaction.
//!
//! **Boundary:** this module knows no record type and no redb type outside `redb_backend.rs`;
//! the tables behind it are listed in `catalog.rs` like the others. Tables not yet moved behind
//! the seam still use redb's typed tables directly (see ARCHITECTURE.md).

mod key;
mod redb_backend;

use std::marker::PhantomData;
use std::ops::Bound;

pub use key::{Key, Prefix, Value, Var, prefix_end};
pub(crate) use redb_backend::{def as redb_def, rows_in};

use super::StoreError;

/// One row as stored: (key bytes, value bytes).
pub type Row = (Vec<u8>, Vec<u8>);

/// Which way a range is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Ascending,
    Descending,
}

/// A byte range of keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    pub start: Bound<Vec<u8>>,
    pub end: Bound<Vec<u8>>,
}

impl Span {
    /// Every key that starts with `prefix`.
    pub fn prefix(prefix: Vec<u8>) -> Span {
        let end = match prefix_end(&prefix) {
            Some(e) => Bound::Excluded(e),
            None => Bound::Unbounded,
        };
        Span {
            start: Bound::Included(prefix),
            end,
        }
    }
}

/// What a read transaction offers. Every read sees one consistent state of the database.
pub trait Read {
    /// The value stored under `key` in `table`.
    fn get(&self, table: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// At most `limit` rows of `table` with keys in `span`, in key order or its reverse. A
    /// table never written reads as empty.
    fn range(
        &self,
        table: &'static str,
        span: &Span,
        order: Order,
        limit: usize,
    ) -> Result<Vec<Row>, StoreError>;
}

/// What a write transaction adds. Its writes are seen by its own reads at once and by others
/// only once the transaction has committed (durably, as the store decides).
pub trait Write: Read {
    fn insert(&self, table: &'static str, key: &[u8], value: &[u8]) -> Result<(), StoreError>;
    /// Removes the row; whether there was one.
    fn remove(&self, table: &'static str, key: &[u8]) -> Result<bool, StoreError>;
}

/// A table behind the seam with typed keys `K` and values `V`. Its stored name is `name`
/// (the backend may decorate it, see `redb_backend.rs`).
#[derive(Debug)]
pub struct Table<K, V> {
    name: &'static str,
    types: PhantomData<fn() -> (K, V)>,
}

impl<K, V> Clone for Table<K, V> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<K, V> Copy for Table<K, V> {}

impl<K: Key, V: Value> Table<K, V> {
    pub const fn new(name: &'static str) -> Self {
        Table {
            name,
            types: PhantomData,
        }
    }

    pub const fn name(&self) -> &'static str {
        self.name
    }

    pub fn get(&self, tx: &(impl Read + ?Sized), key: &K) -> Result<Option<V>, StoreError> {
        tx.get(self.name, &key.encode())?
            .map(|v| V::from_bytes(&v))
            .transpose()
    }

    pub fn insert(&self, tx: &(impl Write + ?Sized), key: &K, value: &V) -> Result<(), StoreError> {
        tx.insert(self.name, &key.encode(), &value.to_bytes())
    }

    /// Removes the row under `key` and returns its value.
    pub fn take(&self, tx: &(impl Write + ?Sized), key: &K) -> Result<Option<V>, StoreError> {
        let k = key.encode();
        let Some(v) = tx.get(self.name, &k)? else {
            return Ok(None);
        };
        tx.remove(self.name, &k)?;
        V::from_bytes(&v).map(Some)
    }

    /// Removes the row under `key`; whether there was one.
    pub fn remove(&self, tx: &(impl Write + ?Sized), key: &K) -> Result<bool, StoreError> {
        tx.remove(self.name, &key.encode())
    }

    /// At most `limit` rows with keys from `start` to `end` (bounds as given), in `order`.
    pub fn range(
        &self,
        tx: &(impl Read + ?Sized),
        start: Bound<&K>,
        end: Bound<&K>,
        order: Order,
        limit: usize,
    ) -> Result<Vec<(K, V)>, StoreError> {
        let enc = |b: Bound<&K>| match b {
            Bound::Included(k) => Bound::Included(k.encode()),
            Bound::Excluded(k) => Bound::Excluded(k.encode()),
            Bound::Unbounded => Bound::Unbounded,
        };
        let span = Span {
            start: enc(start),
            end: enc(end),
        };
        self.decoded(tx.range(self.name, &span, order, limit)?)
    }

    /// At most `limit` rows whose keys start with `prefix`, in `order`.
    pub fn prefixed<P: Key>(
        &self,
        tx: &(impl Read + ?Sized),
        prefix: &P,
        order: Order,
        limit: usize,
    ) -> Result<Vec<(K, V)>, StoreError>
    where
        K: Prefix<P>,
    {
        self.decoded(tx.range(self.name, &Span::prefix(prefix.encode()), order, limit)?)
    }

    /// The next page of at most `limit` rows in key order, after `after` (from the first row
    /// when `None`): how code that must visit a whole table does it, one bounded batch at a
    /// time, resuming from the last key it did.
    pub fn page(
        &self,
        tx: &(impl Read + ?Sized),
        after: Option<&K>,
        limit: usize,
    ) -> Result<Vec<(K, V)>, StoreError> {
        let start = after.map_or(Bound::Unbounded, Bound::Excluded);
        self.range(tx, start, Bound::Unbounded, Order::Ascending, limit)
    }

    /// The next page of at most `limit` rows whose keys start with `prefix`, in key order,
    /// after `after` (from the prefix's first row when `None`): [`Table::page`] within one
    /// prefix, for reading all of one user's rows a bounded batch at a time.
    pub fn prefixed_page<P: Key>(
        &self,
        tx: &(impl Read + ?Sized),
        prefix: &P,
        after: Option<&K>,
        limit: usize,
    ) -> Result<Vec<(K, V)>, StoreError>
    where
        K: Prefix<P>,
    {
        let mut span = Span::prefix(prefix.encode());
        if let Some(k) = after {
            span.start = Bound::Excluded(k.encode());
        }
        self.decoded(tx.range(self.name, &span, Order::Ascending, limit)?)
    }

    /// Every row whose key starts with `prefix`, read [`Table::prefixed_page`] by page of
    /// `page` rows: for an answer that is all of one user's rows (their friends, their
    /// requests), each read bounded. The rows are the prefix's, never a whole table's.
    pub fn prefixed_in_pages<P: Key>(
        &self,
        tx: &(impl Read + ?Sized),
        prefix: &P,
        page: usize,
    ) -> Result<Vec<(K, V)>, StoreError>
    where
        K: Prefix<P>,
    {
        let page = page.max(1);
        let mut out: Vec<(K, V)> = Vec::new();
        loop {
            let rows = self.prefixed_page(tx, prefix, out.last().map(|(k, _)| k), page)?;
            let done = rows.len() < page;
            out.extend(rows);
            if done {
                return Ok(out);
            }
        }
    }

    /// Removes at most `limit` rows whose keys start with `prefix`; how many it removed (fewer
    /// than `limit`: none are left).
    pub fn remove_prefixed<P: Key>(
        &self,
        tx: &(impl Write + ?Sized),
        prefix: &P,
        limit: usize,
    ) -> Result<usize, StoreError>
    where
        K: Prefix<P>,
    {
        let rows = tx.range(
            self.name,
            &Span::prefix(prefix.encode()),
            Order::Ascending,
            limit,
        )?;
        for (k, _) in &rows {
            tx.remove(self.name, k)?;
        }
        Ok(rows.len())
    }

    /// Removes at most `budget` rows whose keys start with `prefix`, taking what it removed
    /// from the budget: one bounded step of an erasure. True when none is left (it found
    /// fewer than the budget).
    pub fn remove_prefixed_within<P: Key>(
        &self,
        tx: &(impl Write + ?Sized),
        prefix: &P,
        budget: &mut usize,
    ) -> Result<bool, StoreError>
    where
        K: Prefix<P>,
    {
        let n = self.remove_prefixed(tx, prefix, *budget)?;
        let done = n < *budget;
        *budget -= n;
        Ok(done)
    }

    /// Removes every row whose keys start with `prefix`, reading `page` rows at a time: for a
    /// prefix known to be small (one user's rows of a bounded kind), never a whole table.
    pub fn remove_all_prefixed<P: Key>(
        &self,
        tx: &(impl Write + ?Sized),
        prefix: &P,
        page: usize,
    ) -> Result<(), StoreError>
    where
        K: Prefix<P>,
    {
        let page = page.max(1);
        while self.remove_prefixed(tx, prefix, page)? == page {}
        Ok(())
    }

    fn decoded(&self, rows: Vec<Row>) -> Result<Vec<(K, V)>, StoreError> {
        rows.into_iter()
            .map(|(k, v)| Ok((K::decode(&k)?, V::from_bytes(&v)?)))
            .collect()
    }
}
