//! Nearby people (1.3.d): the client shares only an H3 cell of resolution 7 (about 1.2 km
//! across an edge, 5 km² — never coordinates); the node keeps the last one per user, sealed,
//! for an hour, and shows people visible in the same cell or the two rings around it, by
//! distance band and in random order (never metres, so repeated lookups from chosen places
//! learn no more than the cell). Needs `precise_location`; only while one's own cell is
//! current; rate-limited; a cell implausibly far from the last one is refused. Never federated.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;

use h3o::{CellIndex, LatLng, Resolution};

use super::{Discovery, DiscoveryError};
use crate::consents::Purpose;
use crate::time::Millis;
use storage::CellRecord;

/// The one resolution accepted.
pub const RESOLUTION: Resolution = Resolution::Seven;
/// How long a shared cell stays.
pub const CELL_TTL_MS: u64 = 3_600_000;
/// Fastest plausible travel (an airliner), km/h.
const MAX_SPEED_KMH: f64 = 1_000.0;
/// Distance always allowed between two cells, km (neighbours a few rings apart).
const SLACK_KM: f64 = 10.0;
/// Most people in one answer.
const MAX_RESULTS: usize = 50;
/// Lookups per user per window.
const LOOKUPS: usize = 20;
/// Location updates per user per window.
const UPDATES: usize = 30;
/// The rate-limit window.
const WINDOW_MS: u64 = 10 * 60_000;
/// Users tracked by the limiter at most (the oldest are forgotten past it).
const TRACKED: usize = 100_000;

/// How far someone nearby is, by rings of cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Band {
    SameArea,
    About3Km,
    About5Km,
}

impl Band {
    pub const fn name(self) -> &'static str {
        match self {
            Band::SameArea => "same_area",
            Band::About3Km => "about_3km",
            Band::About5Km => "about_5km",
        }
    }
    fn of_ring(r: u8) -> Band {
        match r {
            0 => Band::SameArea,
            1 => Band::About3Km,
            _ => Band::About5Km,
        }
    }
}

/// One person nearby.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nearby {
    pub address: String,
    pub nickname: String,
    pub avatar: Option<String>,
    pub band: Band,
}

/// Per-user sliding windows of lookups and updates (in memory; bounded).
#[derive(Debug, Default)]
pub(super) struct Limits {
    seen: Mutex<HashMap<(u64, bool), VecDeque<u64>>>,
}

impl Limits {
    /// Counts one event; `Err(seconds)` if `max` happened in the window already.
    fn take(&self, user: u64, update: bool, max: usize, now: Millis) -> Result<(), u64> {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() >= TRACKED && !seen.contains_key(&(user, update)) {
            seen.retain(|_, q| q.back().is_some_and(|t| t + WINDOW_MS > now.0));
            if seen.len() >= TRACKED {
                seen.clear();
            }
        }
        let q = seen.entry((user, update)).or_default();
        while q.front().is_some_and(|t| t + WINDOW_MS <= now.0) {
            q.pop_front();
        }
        if q.len() >= max {
            let first = q.front().copied().unwrap_or(now.0);
            return Err((first + WINDOW_MS - now.0).div_ceil(1000).max(1));
        }
        q.push_back(now.0);
        Ok(())
    }
}

fn cell_aad(user: u64) -> Vec<u8> {
    format!("shanliao/cell/{user}").into_bytes()
}

/// Parses a cell as the client sends it (H3 hex, resolution 7).
pub fn parse_cell(s: &str) -> Result<CellIndex, DiscoveryError> {
    let invalid = || DiscoveryError::Invalid {
        field: "cell",
        reason: "must be an H3 cell index of resolution 7 in hex, such as 8731aa42bffffff".into(),
    };
    if s.len() > 16 {
        return Err(invalid());
    }
    let cell: CellIndex = s.parse().map_err(|_| invalid())?;
    if cell.resolution() != RESOLUTION {
        return Err(invalid());
    }
    Ok(cell)
}

impl Discovery {
    fn cell_index(&self, cell: CellIndex) -> [u8; 32] {
        self.cell_key.blind_index(&u64::from(cell).to_be_bytes())
    }

    /// Shares the user's current cell (replacing the last); returns when it expires.
    pub async fn set_location(&self, user: u64, cell: &str) -> Result<Millis, DiscoveryError> {
        let cell = parse_cell(cell)?;
        self.consents
            .require(user, Purpose::PreciseLocation)
            .await?;
        let now = self.clock.now();
        self.limits
            .take(user, true, UPDATES, now)
            .map_err(DiscoveryError::RateLimited)?;
        let key = self.key_of(user).await?;
        if let Some(prev) = self.store.cell_of(user).await?
            && let Ok(bytes) = key.open(&cell_aad(user), &prev.sealed)
            && let Ok(b) = <[u8; 8]>::try_from(bytes.as_slice())
            && let Ok(before) = CellIndex::try_from(u64::from_be_bytes(b))
        {
            let km = LatLng::from(before).distance_km(LatLng::from(cell));
            let hours = now.0.saturating_sub(prev.set.0) as f64 / 3_600_000.0;
            if km > SLACK_KM + MAX_SPEED_KMH * hours {
                return Err(DiscoveryError::ImplausibleJump);
            }
        }
        let expires = Millis(now.0 + CELL_TTL_MS);
        let rec = CellRecord {
            sealed: key.seal(&cell_aad(user), &u64::from(cell).to_be_bytes())?,
            index: self.cell_index(cell),
            set: now,
            expires,
        };
        if !self.store.put_cell(user, rec, now).await? {
            return Err(crate::consents::ConsentError::NotGranted(Purpose::PreciseLocation).into());
        }
        Ok(expires)
    }

    /// Deletes every cell expired by now, in batches.
    pub async fn purge_expired_cells(&self) -> Result<usize, DiscoveryError> {
        let now = self.clock.now();
        let mut total = 0;
        for _ in 0..64 {
            let n = self.store.purge_expired_cells(now, 512).await?;
            total += n;
            if n < 512 {
                break;
            }
        }
        Ok(total)
    }

    /// Deletes the user's cell at once ("clear my location").
    pub async fn clear_location(&self, user: u64) -> Result<(), DiscoveryError> {
        self.store.clear_cell(user).await?;
        Ok(())
    }

    /// The user's own current cell (hex) and its expiry, if set and not expired.
    pub async fn location(&self, user: u64) -> Result<Option<(String, Millis)>, DiscoveryError> {
        let now = self.clock.now();
        let Some(rec) = self.store.cell_of(user).await?.filter(|r| r.expires > now) else {
            return Ok(None);
        };
        let key = self.key_of(user).await?;
        let bytes = key.open(&cell_aad(user), &rec.sealed)?;
        let b = <[u8; 8]>::try_from(bytes.as_slice())
            .map_err(|_| storage::StoreError::Corrupt("cell"))?;
        let cell = CellIndex::try_from(u64::from_be_bytes(b))
            .map_err(|_| storage::StoreError::Corrupt("cell"))?;
        Ok(Some((cell.to_string(), rec.expires)))
    }

    /// People visible near the user's own current cell, in random order.
    pub async fn nearby(&self, user: u64) -> Result<Vec<Nearby>, DiscoveryError> {
        self.consents
            .require(user, Purpose::PreciseLocation)
            .await?;
        let now = self.clock.now();
        let Some((cell, _)) = self.location(user).await? else {
            return Err(DiscoveryError::NoLocation);
        };
        self.limits
            .take(user, false, LOOKUPS, now)
            .map_err(DiscoveryError::RateLimited)?;
        let cell = parse_cell(&cell)?;
        let rings: Vec<([u8; 32], u8)> = cell
            .grid_disk_distances::<Vec<_>>(2)
            .into_iter()
            .map(|(c, d)| (self.cell_index(c), d as u8))
            .collect();
        let mut found = self.store.people_in(user, rings, now).await?;
        // The nearest ring wins for someone seen twice (cannot happen with one cell each,
        // but the answer must not depend on it).
        found.sort_by_key(|(u, r)| (*u, *r));
        let mut seen = HashSet::new();
        found.retain(|(u, _)| seen.insert(*u));
        shuffle(&mut found)?;
        let mut out = Vec::new();
        for (u, ring) in found.into_iter().take(MAX_RESULTS) {
            if let Some((address, nickname, avatar)) = self.card(u).await? {
                out.push(Nearby {
                    address,
                    nickname,
                    avatar,
                    band: Band::of_ring(ring),
                });
            }
        }
        Ok(out)
    }
}

/// Fisher–Yates with the system's random numbers.
fn shuffle<T>(items: &mut [T]) -> Result<(), DiscoveryError> {
    for i in (1..items.len()).rev() {
        let mut b = [0u8; 8];
        crate::crypto::random_bytes(&mut b)?;
        let j = (u64::from_le_bytes(b) % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_resolution_seven_cells_parse() {
        let c = LatLng::new(39.9042, 116.4074).unwrap().to_cell(RESOLUTION);
        assert_eq!(parse_cell(&c.to_string()).unwrap(), c);
        let fine = LatLng::new(39.9042, 116.4074)
            .unwrap()
            .to_cell(Resolution::Nine);
        assert!(parse_cell(&fine.to_string()).is_err());
        assert!(parse_cell("39.9042,116.4074").is_err());
        assert!(parse_cell("").is_err());
    }

    #[test]
    fn the_limiter_refuses_past_its_maximum_until_the_window_moves() {
        let l = Limits::default();
        for _ in 0..3 {
            l.take(1, false, 3, Millis(1_000)).unwrap();
        }
        assert!(l.take(1, false, 3, Millis(2_000)).is_err());
        l.take(2, false, 3, Millis(2_000)).unwrap();
        l.take(1, true, 3, Millis(2_000)).unwrap();
        l.take(1, false, 3, Millis(1_000 + WINDOW_MS)).unwrap();
    }
}
