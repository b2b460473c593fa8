//! Failed-login limiting: counts failures per account and per client address in a fixed
//! window, and locks the key out (429) once it reaches its limit, until the window has passed.
//! Memory is bounded: expired entries are dropped, and past a cap the oldest go first.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use crate::time::{Millis, SharedClock};

/// Most keys tracked at once.
const MAX_KEYS: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Millis,
    failures: u32,
}

/// The limiter. Account keys are stored hashed, so memory holds no login names or phones.
#[derive(Debug)]
pub struct LoginLimiter {
    max_account: u32,
    max_address: u32,
    window_ms: u64,
    clock: SharedClock,
    windows: Mutex<HashMap<[u8; 32], Window>>,
}

/// A lockout in force: retry after this many seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Locked {
    pub retry_after_secs: u64,
}

impl LoginLimiter {
    /// `max_failures` per account; four times as many per client address.
    pub fn new(max_failures: u32, window_secs: u64, clock: SharedClock) -> Self {
        LoginLimiter {
            max_account: max_failures,
            max_address: max_failures.saturating_mul(4),
            window_ms: window_secs * 1000,
            clock,
            windows: Mutex::new(HashMap::new()),
        }
    }

    fn keys(login: &str, addr: IpAddr) -> ([u8; 32], [u8; 32]) {
        let a: [u8; 32] = Sha256::digest(format!("login\0{}", login.to_lowercase())).into();
        let b: [u8; 32] = Sha256::digest(format!("addr\0{addr}")).into();
        (a, b)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Window>> {
        // A panic while holding this lock cannot leave the map inconsistent (single inserts).
        self.windows.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Refuses an attempt for a locked-out account or address. Call before checking the password.
    pub fn check(&self, login: &str, addr: IpAddr) -> Result<(), Locked> {
        let now = self.clock.now();
        let (acct, ip) = Self::keys(login, addr);
        let map = self.lock();
        for (key, max) in [(acct, self.max_account), (ip, self.max_address)] {
            if let Some(w) = map.get(&key) {
                let age = now.saturating_sub(w.started);
                if age < self.window_ms && w.failures >= max {
                    let left_ms = self.window_ms - age;
                    return Err(Locked {
                        retry_after_secs: left_ms.div_ceil(1000).max(1),
                    });
                }
            }
        }
        Ok(())
    }

    /// Counts a failed attempt against both the account and the address.
    pub fn failed(&self, login: &str, addr: IpAddr) {
        let now = self.clock.now();
        let (acct, ip) = Self::keys(login, addr);
        let mut map = self.lock();
        if map.len() >= MAX_KEYS {
            let window = self.window_ms;
            map.retain(|_, w| now.saturating_sub(w.started) < window);
            if map.len() >= MAX_KEYS {
                let mut ages: Vec<_> = map.iter().map(|(k, w)| (w.started, *k)).collect();
                ages.sort_unstable();
                for (_, k) in ages.into_iter().take(MAX_KEYS / 2) {
                    map.remove(&k);
                }
            }
        }
        for key in [acct, ip] {
            let w = map.entry(key).or_insert(Window {
                started: now,
                failures: 0,
            });
            if now.saturating_sub(w.started) >= self.window_ms {
                *w = Window {
                    started: now,
                    failures: 0,
                };
            }
            w.failures = w.failures.saturating_add(1);
        }
    }

    /// A successful login clears the account's count (not the address's).
    pub fn succeeded(&self, login: &str, addr: IpAddr) {
        let (acct, _) = Self::keys(login, addr);
        self.lock().remove(&acct);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::ManualClock;
    use std::sync::Arc;

    fn limiter() -> (LoginLimiter, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new(Millis(1_000_000)));
        (LoginLimiter::new(3, 60, clock.clone()), clock)
    }

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));

    #[test]
    fn account_locks_after_max_failures_until_window_passes() {
        let (l, clock) = limiter();
        for _ in 0..3 {
            l.check("alice", A).unwrap();
            l.failed("alice", A);
        }
        assert_eq!(
            l.check("alice", A),
            Err(Locked {
                retry_after_secs: 60
            })
        );
        assert_eq!(
            l.check("ALICE", B).map_err(|_| ()),
            Err(()),
            "case and address do not matter"
        );
        l.check("bob", B).unwrap();
        clock.advance_ms(59_500);
        assert_eq!(
            l.check("alice", A),
            Err(Locked {
                retry_after_secs: 1
            })
        );
        clock.advance_ms(500);
        l.check("alice", A).unwrap();
    }

    #[test]
    fn address_locks_after_four_times_the_account_limit() {
        let (l, _) = limiter();
        for i in 0..12 {
            l.failed(&format!("user{i}"), A);
        }
        assert!(l.check("fresh", A).is_err());
        assert!(l.check("fresh", B).is_ok());
    }

    #[test]
    fn success_clears_the_account_count() {
        let (l, _) = limiter();
        l.failed("alice", A);
        l.failed("alice", A);
        l.succeeded("alice", A);
        l.failed("alice", A);
        l.failed("alice", A);
        assert!(l.check("alice", A).is_ok());
    }
}
