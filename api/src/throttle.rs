//! Per-client request limits on what anyone can ask without an account: registration, login,
//! the public pages (policy, OpenAPI document, users' public pages), the federation API, and
//! bearer tokens the node has to look up in its store (unknown, revoked, or a session's first
//! use). Past its limit a client gets 429 `rate_limited` with `Retry-After`.
//!
//! A client is a [`ClientKey`]: an IPv4 address or an IPv6 /64. Each group has its own GCRA
//! limiter (`governor`): `N` requests per period, of which all `N` may come at once, then
//! one every `period / N`. The limiters run on the node's [`Clock`](domain::time::Clock), and
//! their state lives in [`Clients`], a map bounded to `rate_limit.max_clients` keys per group:
//! when full, the clients closest to a fresh start go first, so those being held back stay
//! held back. About once a minute, clients whose budget has refilled are forgotten (client
//! addresses are personal data: kept no longer than they serve the limit).
//!
//! Limitation: clients behind one NAT share one address and so one budget. Behind a reverse
//! proxy listed in `http.trusted_proxies`, the address is the client's own, from
//! `X-Forwarded-For` (`http/proxy.rs`), before it reaches these limits.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use governor::clock::Clock as GovernorClock;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::StateStore;
use governor::state::keyed::ShrinkableKeyedStateStore;
use governor::{Quota, RateLimiter};
use http::StatusCode;

use super::error::ApiError;
use domain::config::RateLimitConfig;
use domain::ratelimit::ClientKey;
use domain::time::SharedClock;

/// The groups of requests limited separately; the route table (`http/routes.rs`) says which
/// group each anonymous route counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Group {
    /// `POST /api/v1/accounts`.
    Register,
    /// `POST /api/v1/sessions` (on top of the failed-login limiter).
    Login,
    /// Policy, OpenAPI document and public pages.
    Public,
    /// `/_federation/v1/…`.
    Federation,
    /// A bearer token that is neither a cached session nor known to be unknown, and the
    /// WebSocket upgrade that will authenticate with its first frame.
    TokenLookup,
}

impl Group {
    fn name(self) -> &'static str {
        match self {
            Group::Register => "registrations",
            Group::Login => "logins",
            Group::Public => "requests",
            Group::Federation => "federation requests",
            Group::TokenLookup => "requests with unknown tokens",
        }
    }
}

/// Refused: retry after this many seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    pub group: Group,
    pub retry_after_secs: u64,
}

impl From<Limited> for ApiError {
    fn from(l: Limited) -> Self {
        ApiError {
            retry_after: Some(l.retry_after_secs),
            ..ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!(
                    "too many {} from this address; try again in {} seconds",
                    l.group.name(),
                    l.retry_after_secs
                ),
            )
        }
    }
}

/// The node's clock as governor sees it: time since the Unix epoch.
#[derive(Debug, Clone)]
struct NodeClock(SharedClock);

impl GovernorClock for NodeClock {
    type Instant = Duration;
    fn now(&self) -> Duration {
        Duration::from_millis(self.0.now().0)
    }
}

/// One group's limiter state: each client's theoretical arrival time (GCRA), bounded.
#[derive(Debug)]
struct Clients {
    max: usize,
    tats: Mutex<HashMap<ClientKey, u64>>,
}

impl Clients {
    fn lock(&self) -> MutexGuard<'_, HashMap<ClientKey, u64>> {
        // Entries are single values: a panic elsewhere cannot leave one half-written.
        self.tats.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Frees an eighth of the map: the clients whose arrival time is earliest, which are
    /// those already back to a fresh budget or nearest to it. Amortised, a constant cost per
    /// new client.
    fn evict(&self, map: &mut HashMap<ClientKey, u64>) {
        let drop = (self.max / 8).max(1);
        let mut by_tat: Vec<(u64, ClientKey)> = map.iter().map(|(k, t)| (*t, *k)).collect();
        if drop < by_tat.len() {
            by_tat.select_nth_unstable_by_key(drop, |(tat, _)| *tat);
        }
        for (_, k) in by_tat.into_iter().take(drop) {
            map.remove(&k);
        }
    }
}

impl StateStore for Clients {
    type Key = ClientKey;

    fn measure_and_replace<T, F, E>(&self, key: &ClientKey, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        let mut map = self.lock();
        let previous = map.get(key).copied();
        let (out, tat) = f(previous.map(Nanos::from))?;
        if previous.is_none() && map.len() >= self.max {
            self.evict(&mut map);
        }
        map.insert(*key, tat.into());
        Ok(out)
    }
}

impl ShrinkableKeyedStateStore<ClientKey> for Clients {
    fn retain_recent(&self, drop_below: Nanos) {
        let below = u64::from(drop_below);
        self.lock().retain(|_, tat| *tat > below);
    }

    fn len(&self) -> usize {
        self.lock().len()
    }

    fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
}

type Limiter = RateLimiter<ClientKey, Clients, NodeClock, NoOpMiddleware<Duration>>;

/// The limiters, one per group (`None`: that group is not limited).
#[derive(Debug)]
pub struct Throttle {
    register: Option<Limiter>,
    login: Option<Limiter>,
    public: Option<Limiter>,
    federation: Option<Limiter>,
    token_lookups: Option<Limiter>,
    clock: NodeClock,
    /// When clients with a refilled budget were last forgotten (ms since the epoch).
    last_sweep: AtomicU64,
}

/// How often clients whose budget has refilled are forgotten.
const SWEEP_EVERY_MS: u64 = 60_000;

impl Throttle {
    pub fn new(config: &RateLimitConfig, clock: SharedClock) -> Throttle {
        let clock = NodeClock(clock);
        let max = config.max_clients.get() as usize;
        let limiter = |n: u64, period: fn(NonZeroU32) -> Quota| {
            let n = NonZeroU32::new(u32::try_from(n).unwrap_or(u32::MAX))?;
            let clients = Clients {
                max,
                tats: Mutex::default(),
            };
            Some(RateLimiter::new(period(n), clients, clock.clone()))
        };
        Throttle {
            register: limiter(config.register_per_hour.get(), Quota::per_hour),
            login: limiter(config.login_per_minute.get(), Quota::per_minute),
            public: limiter(config.public_per_minute.get(), Quota::per_minute),
            federation: limiter(config.federation_per_minute.get(), Quota::per_minute),
            token_lookups: limiter(config.token_lookups_per_minute.get(), Quota::per_minute),
            last_sweep: AtomicU64::new(clock.0.now().0),
            clock,
        }
    }

    /// Counts one request of `group` from `addr`, or refuses it.
    pub fn check(&self, group: Group, addr: IpAddr) -> Result<(), Limited> {
        self.sweep_if_due();
        let Some(limiter) = self.limiter(group) else {
            return Ok(());
        };
        limiter
            .check_key(&ClientKey::of(addr))
            .map_err(|not_until| {
                let wait = not_until.wait_time_from(self.clock.now());
                Limited {
                    group,
                    retry_after_secs: wait.as_millis().div_ceil(1000).max(1) as u64,
                }
            })
    }

    /// Forgets, once a minute at most, every client whose budget has refilled (their state is
    /// the same as a newcomer's). One caller does it; the others go on.
    fn sweep_if_due(&self) {
        let now = self.clock.0.now().0;
        let last = self.last_sweep.load(Ordering::Relaxed);
        if now.saturating_sub(last) < SWEEP_EVERY_MS
            || self
                .last_sweep
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        for l in [
            &self.register,
            &self.login,
            &self.public,
            &self.federation,
            &self.token_lookups,
        ]
        .into_iter()
        .flatten()
        {
            l.retain_recent();
        }
    }

    fn limiter(&self, group: Group) -> Option<&Limiter> {
        match group {
            Group::Register => self.register.as_ref(),
            Group::Login => self.login.as_ref(),
            Group::Public => self.public.as_ref(),
            Group::Federation => self.federation.as_ref(),
            Group::TokenLookup => self.token_lookups.as_ref(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::config::Bounded;
    use domain::time::{ManualClock, Millis};
    use std::sync::Arc;

    fn config() -> RateLimitConfig {
        RateLimitConfig {
            register_per_hour: Bounded(3),
            login_per_minute: Bounded(5),
            public_per_minute: Bounded(0),
            federation_per_minute: Bounded(100),
            token_lookups_per_minute: Bounded(2),
            max_clients: Bounded(1000),
        }
    }

    fn throttle(c: &RateLimitConfig) -> (Throttle, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new(Millis(1_800_000_000_000)));
        (Throttle::new(c, clock.clone()), clock)
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn registrations_past_the_hourly_limit_wait_for_the_next_slot() {
        let (t, clock) = throttle(&config());
        let a = ip("192.0.2.1");
        for _ in 0..3 {
            t.check(Group::Register, a).unwrap();
        }
        let refused = t.check(Group::Register, a).unwrap_err();
        // 3 per hour: the next slot opens 20 minutes after the first.
        assert_eq!(refused.retry_after_secs, 20 * 60);
        assert!(
            t.check(Group::Register, ip("192.0.2.2")).is_ok(),
            "per client"
        );
        assert!(t.check(Group::Login, a).is_ok(), "per group");
        clock.advance_ms(20 * 60 * 1000 - 1000);
        assert_eq!(t.check(Group::Register, a).unwrap_err().retry_after_secs, 1);
        clock.advance_ms(1000);
        t.check(Group::Register, a).unwrap();
        assert!(t.check(Group::Register, a).is_err());
    }

    #[test]
    fn one_ipv6_64_is_one_client() {
        let (t, _) = throttle(&config());
        for i in 0..5u16 {
            t.check(Group::Login, ip(&format!("2001:db8:7:7:{i:x}::1")))
                .unwrap();
        }
        assert!(
            t.check(Group::Login, ip("2001:db8:7:7:dead:beef::1"))
                .is_err()
        );
        assert!(t.check(Group::Login, ip("2001:db8:7:8::1")).is_ok());
    }

    #[test]
    fn a_limit_of_zero_is_no_limit() {
        let (t, _) = throttle(&config());
        for _ in 0..10_000 {
            t.check(Group::Public, ip("192.0.2.9")).unwrap();
        }
    }

    #[test]
    fn the_answer_is_429_with_retry_after() {
        let (t, _) = throttle(&config());
        let a = ip("192.0.2.1");
        t.check(Group::TokenLookup, a).unwrap();
        t.check(Group::TokenLookup, a).unwrap();
        let e = ApiError::from(t.check(Group::TokenLookup, a).unwrap_err());
        assert_eq!(e.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(e.code, "rate_limited");
        assert_eq!(e.retry_after, Some(30));
    }

    #[test]
    fn memory_stays_bounded_and_held_back_clients_stay_held_back() {
        let mut c = config();
        c.max_clients = Bounded(1000);
        let (t, clock) = throttle(&c);
        let abuser = ip("198.51.100.7");
        for _ in 0..5 {
            t.check(Group::Login, abuser).unwrap();
        }
        assert!(t.check(Group::Login, abuser).is_err());
        // A flood of fresh clients, each once, spread over a few seconds.
        for i in 0..20_000u32 {
            if i % 1000 == 0 {
                clock.advance_ms(100);
            }
            let _ = t.check(Group::Login, IpAddr::from((0x0a00_0000 + i).to_be_bytes()));
        }
        let held = t.limiter(Group::Login).unwrap().len();
        assert!(held <= 1000, "{held} clients held");
        assert!(
            t.check(Group::Login, abuser).is_err(),
            "the client being held back was not forgotten to make room"
        );
    }

    #[test]
    fn clients_are_forgotten_once_their_budget_has_refilled() {
        let (t, clock) = throttle(&config());
        for i in 0..50u32 {
            t.check(Group::Login, IpAddr::from((0x0a00_0000 + i).to_be_bytes()))
                .unwrap();
        }
        let abuser = ip("198.51.100.7");
        for _ in 0..5 {
            t.check(Group::Login, abuser).unwrap();
        }
        let held = || t.limiter(Group::Login).unwrap().len();
        assert_eq!(held(), 51);
        // 5 a minute: one request's cell refills in 12 s, the abuser's whole budget in 60 s.
        clock.advance_ms(30_000);
        t.check(Group::Register, abuser).unwrap();
        assert_eq!(held(), 51, "no sweep within the first minute");
        clock.advance_ms(31_000);
        t.check(Group::Register, abuser).unwrap();
        assert_eq!(held(), 1, "only the client still held back is kept");
        clock.advance_ms(61_000);
        t.check(Group::Register, abuser).unwrap();
        assert_eq!(held(), 0);
    }
}
