//! Nearby people as stored (issue 22, 1.3.d): each user's last coarse cell, sealed under their
//! data key, and a keyed index of cells to find who is in one. A cell expires an hour after it
//! was set; revoking `precise_location`, "clear my location" and erasure delete it at once.

use std::ops::Bound;

use super::catalog::*;
use super::codec::{Dec, Enc};
use super::kv::{self, Order};
use super::privacy::purpose_active;
use super::{Store, StoreError};
use primitives::time::Millis;

/// Most people one cell contributes to a lookup.
const PER_CELL: usize = 200;

/// A user's last cell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CellRecord {
    /// The H3 cell, sealed under the user's data key.
    pub sealed: Vec<u8>,
    pub index: [u8; 32],
    pub set: Millis,
    pub expires: Millis,
}

impl CellRecord {
    fn encode(&self) -> Vec<u8> {
        Enc::new(1)
            .bytes(&self.sealed)
            .bytes(&self.index)
            .u64(self.set.0)
            .u64(self.expires.0)
            .finish()
    }
    fn decode(b: &[u8]) -> Result<Self, StoreError> {
        let mut d = Dec::new(b, "cell", 1)?;
        let r = CellRecord {
            sealed: d.bytes()?,
            index: d
                .bytes()?
                .try_into()
                .map_err(|_| StoreError::Corrupt("cell"))?,
            set: Millis(d.u64()?),
            expires: Millis(d.u64()?),
        };
        d.end()?;
        Ok(r)
    }
}

/// Deletes `user`'s cell and its index row.
pub fn drop_cell(tx: &impl kv::Write, user: u64) -> Result<bool, StoreError> {
    let Some(rec) = USERID_CELL.take(tx, &user)? else {
        return Ok(false);
    };
    let rec = CellRecord::decode(&rec)?;
    CELLINDEX_USERID.remove(tx, &(rec.index, user))?;
    EXPIRY_USERID_CELL.remove(tx, &(rec.expires.0, user))?;
    Ok(true)
}

/// Deletes up to `batch` cells expired at `now`; how many.
fn purge_expired(tx: &impl kv::Write, now: Millis, batch: usize) -> Result<usize, StoreError> {
    let due = EXPIRY_USERID_CELL.range(
        tx,
        Bound::Unbounded,
        Bound::Included(&(now.0, u64::MAX)),
        Order::Ascending,
        batch,
    )?;
    for ((_, user), ()) in &due {
        drop_cell(tx, *user)?;
    }
    Ok(due.len())
}

impl Store {
    /// The user's last cell, expired or not.
    pub async fn cell_of(&self, user: u64) -> Result<Option<CellRecord>, StoreError> {
        self.read(move |tx| {
            USERID_CELL
                .get(tx, &user)?
                .map(|v| CellRecord::decode(&v))
                .transpose()
        })
        .await
    }

    /// Replaces the user's cell, checking `precise_location` in the same transaction; false
    /// if it is not granted (nothing is written).
    pub async fn put_cell(
        &self,
        user: u64,
        rec: CellRecord,
        now: Millis,
    ) -> Result<bool, StoreError> {
        self.write(move |tx| {
            if !purpose_active(tx, user, "precise_location", now)? {
                return Ok(false);
            }
            drop_cell(tx, user)?;
            purge_expired(tx, now, 64)?;
            CELLINDEX_USERID.insert(tx, &(rec.index, user), &rec.expires.0)?;
            EXPIRY_USERID_CELL.insert(tx, &(rec.expires.0, user), &())?;
            USERID_CELL.insert(tx, &user, &rec.encode())?;
            Ok(true)
        })
        .await
    }

    /// Deletes the user's cell ("clear my location"); false if there was none.
    pub async fn clear_cell(&self, user: u64) -> Result<bool, StoreError> {
        self.write(move |tx| drop_cell(tx, user)).await
    }

    /// Deletes up to `batch` expired cells (the maintenance loop); how many.
    pub async fn purge_expired_cells(
        &self,
        now: Millis,
        batch: usize,
    ) -> Result<usize, StoreError> {
        self.write(move |tx| purge_expired(tx, now, batch)).await
    }

    /// Who else has an unexpired cell among `cells` (each with its ring number), with the
    /// ring of the cell they were found in; at most [`PER_CELL`] per cell.
    pub async fn people_in(
        &self,
        user: u64,
        cells: Vec<([u8; 32], u8)>,
        now: Millis,
    ) -> Result<Vec<(u64, u8)>, StoreError> {
        self.read(move |tx| {
            let mut out = Vec::new();
            for (index, ring) in &cells {
                for ((_, other), expires) in
                    CELLINDEX_USERID.prefixed(tx, index, Order::Ascending, PER_CELL)?
                {
                    if other != user && expires > now.0 {
                        out.push((other, *ring));
                    }
                }
            }
            Ok(out)
        })
        .await
    }
}
