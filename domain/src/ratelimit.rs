//! Failed-login limiting: counts failures per account and per client in a fixed window, and
//! locks the key out (429) once it reaches its limit, until the window has passed. Also what
//! "one client" means for every per-address limit ([`ClientKey`]: an IPv4 address, or an IPv6
//! /64).
//!
//! Memory is bounded: past a cap, expired entries go first, then counts that have not reached
//! their limit (oldest first); a lockout in force is never dropped to make room.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use crate::time::{Millis, SharedClock};

/// Most keys tracked at once.
const MAX_KEYS: usize = 100_000;

/// One client, as every per-address limit counts it: an IPv4 address, or the /64 prefix of an
/// IPv6 address (one subscriber's network: a single host can use any of its 2^64 addresses).
/// An IPv4-mapped IPv6 address (a dual-stack listener's IPv4 client) is its IPv4 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientKey(IpAddr);

impl ClientKey {
    pub fn of(addr: IpAddr) -> ClientKey {
        match addr.to_canonical() {
            IpAddr::V4(v4) => ClientKey(IpAddr::V4(v4)),
            IpAddr::V6(v6) => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                ClientKey(IpAddr::V6(std::net::Ipv6Addr::from(prefix)))
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Millis,
    failures: u32,
    /// The key's limit (account or address), so eviction can tell a lockout from a count.
    max: u32,
}

/// The limiter. Account keys are stored hashed, so memory holds no login names or phones.
#[derive(Debug)]
pub struct LoginLimiter {
    max_account: u32,
    max_address: u32,
    window_ms: u64,
    clock: SharedClock,
    capacity: usize,
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
        Self::with_capacity(max_failures, window_secs, clock, MAX_KEYS)
    }

    /// [`LoginLimiter::new`] tracking at most `capacity` keys.
    pub fn with_capacity(
        max_failures: u32,
        window_secs: u64,
        clock: SharedClock,
        capacity: usize,
    ) -> Self {
        LoginLimiter {
            max_account: max_failures,
            max_address: max_failures.saturating_mul(4),
            window_ms: window_secs * 1000,
            clock,
            capacity: capacity.max(2),
            windows: Mutex::new(HashMap::new()),
        }
    }

    fn keys(login: &str, addr: IpAddr) -> ([u8; 32], [u8; 32]) {
        let a: [u8; 32] = Sha256::digest(format!("login\0{}", login.to_lowercase())).into();
        let b: [u8; 32] = Sha256::digest(format!("addr\0{:?}", ClientKey::of(addr))).into();
        (a, b)
    }

    /// Makes room for `needed` new keys: drops expired windows, then counts below their limit,
    /// oldest first. Lockouts in force stay, so there may still be no room.
    fn make_room(&self, map: &mut HashMap<[u8; 32], Window>, now: Millis, needed: usize) {
        if map.len() + needed <= self.capacity {
            return;
        }
        let window = self.window_ms;
        map.retain(|_, w| now.saturating_sub(w.started) < window);
        if map.len() + needed <= self.capacity {
            return;
        }
        // Down to half the cap, so a flood does not pay for this scan on every failure.
        let target = (self.capacity / 2).max(needed);
        let mut counts: Vec<_> = map
            .iter()
            .filter(|(_, w)| w.failures < w.max)
            .map(|(k, w)| (w.started, *k))
            .collect();
        counts.sort_unstable();
        let excess = map
            .len()
            .saturating_sub(self.capacity - target.min(self.capacity));
        for (_, k) in counts.into_iter().take(excess) {
            map.remove(&k);
        }
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
        let new = [acct, ip].iter().filter(|k| !map.contains_key(*k)).count();
        self.make_room(&mut map, now, new);
        for (key, max) in [(acct, self.max_account), (ip, self.max_address)] {
            if !map.contains_key(&key) && map.len() >= self.capacity {
                // Every slot holds a lockout in force: this count is not kept (memory stays
                // bounded; no lockout is lifted to make room).
                continue;
            }
            let w = map.entry(key).or_insert(Window {
                started: now,
                failures: 0,
                max,
            });
            if now.saturating_sub(w.started) >= self.window_ms {
                *w = Window {
                    started: now,
                    failures: 0,
                    max,
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
    fn ipv6_addresses_of_one_64_count_as_one_client() {
        let (l, _) = limiter();
        // Twelve failures, each from another address inside one /64 and for another account.
        for i in 0..12u16 {
            let addr: IpAddr = format!("2001:db8:1:2:{i:x}::{i:x}").parse().unwrap();
            l.failed(&format!("user{i}"), addr);
        }
        let same_64: IpAddr = "2001:db8:1:2:ffff:ffff:ffff:ffff".parse().unwrap();
        let next_64: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert!(l.check("fresh", same_64).is_err(), "the /64 is locked");
        assert!(
            l.check("fresh", next_64).is_ok(),
            "a neighbouring /64 is not"
        );
    }

    #[test]
    fn ipv4_mapped_clients_are_keyed_by_their_ipv4_address() {
        let a: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        let b: IpAddr = "::ffff:192.0.2.2".parse().unwrap();
        assert_eq!(
            ClientKey::of(a),
            ClientKey::of("192.0.2.1".parse().unwrap())
        );
        assert_ne!(
            ClientKey::of(a),
            ClientKey::of(b),
            "a dual-stack listener's IPv4 clients are not one /64"
        );
        assert_eq!(
            ClientKey::of("2001:db8::1".parse().unwrap()),
            ClientKey::of("2001:db8::ffff:1:2:3".parse().unwrap())
        );
    }

    #[test]
    fn a_flood_of_new_keys_does_not_lift_a_lockout_in_force() {
        let clock = Arc::new(ManualClock::new(Millis(1_000_000)));
        let l = LoginLimiter::with_capacity(3, 60, clock.clone(), 64);
        for _ in 0..3 {
            l.failed("victim-target", A);
        }
        assert!(l.check("victim-target", B).is_err());
        // Thousands of other accounts and addresses, each failing once, later than the lockout.
        for i in 0..5_000u32 {
            clock.advance_ms(1);
            let addr = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            l.failed(&format!("flood{i}"), addr);
        }
        assert!(
            l.check("victim-target", B).is_err(),
            "the lockout survived the flood"
        );
        assert!(l.lock().len() <= 64, "memory stays bounded");
        // Counts still work for newcomers once the flood's windows have expired.
        clock.advance_ms(60_000);
        for _ in 0..3 {
            l.failed("later", B);
        }
        assert!(l.check("later", B).is_err());
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
