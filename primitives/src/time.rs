//! Time: the `Clock` every time-dependent piece of logic takes (so tests can move it) — what
//! time it is, and the timers that wait on it — and conversions between Unix milliseconds,
//! calendar dates and RFC 3339 text.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use tokio::sync::watch;

/// Milliseconds since the Unix epoch, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Millis(pub u64);

impl Millis {
    /// RFC 3339 text in UTC with millisecond precision, e.g. `2026-11-29T04:40:00.123Z`.
    pub fn to_rfc3339(self) -> String {
        let secs = self.0 / 1000;
        let ms = self.0 % 1000;
        let days = secs / 86_400;
        let rem = secs % 86_400;
        let (y, m, d) = civil_from_days(days as i64);
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z",
            rem / 3600,
            (rem % 3600) / 60,
            rem % 60
        )
    }

    pub fn saturating_sub(self, other: Millis) -> u64 {
        self.0.saturating_sub(other.0)
    }
}

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

/// A wait started by [`Clock::sleep`]: it completes once its clock has moved on by the
/// duration asked for.
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// The source of "now", and of the timers that wait for it to move. Production uses
/// [`SystemClock`]; tests use [`ManualClock`], whose timers end only when the test moves it.
pub trait Clock: Send + Sync + fmt::Debug {
    fn now(&self) -> Millis;

    /// A timer for `d` from this call (not from its first poll), so a caller can start it
    /// before it makes its wait visible to anyone who might move the clock.
    fn sleep(&self, d: Duration) -> Sleep;
}

/// A shareable clock handle.
pub type SharedClock = Arc<dyn Clock>;

/// The operating system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Millis {
        let d = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Millis(d.as_millis() as u64)
    }

    /// Tokio's timer, on the runtime's monotonic clock.
    fn sleep(&self, d: Duration) -> Sleep {
        Box::pin(tokio::time::sleep(d))
    }
}

/// A clock that only moves when told to. Its timers ([`Clock::sleep`]) end when it is moved
/// to or past their deadline, never by themselves; [`ManualClock::timers`] tells a test which
/// are waiting, so it can move the clock once the node is known to wait on it.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<ManualState>);

#[derive(Debug)]
struct ManualState {
    /// Now, in Unix ms; its receivers are the running timers.
    now: watch::Sender<u64>,
    /// Timers started and not yet ended or dropped: id → deadline.
    timers: Mutex<BTreeMap<u64, u64>>,
    next_id: AtomicU64,
}

impl Default for ManualClock {
    fn default() -> Self {
        ManualClock::new(Millis(0))
    }
}

impl ManualClock {
    pub fn new(start: Millis) -> Self {
        ManualClock(Arc::new(ManualState {
            now: watch::Sender::new(start.0),
            timers: Mutex::default(),
            next_id: AtomicU64::new(0),
        }))
    }
    pub fn advance_ms(&self, ms: u64) {
        self.0.now.send_modify(|t| *t = t.saturating_add(ms));
    }
    pub fn set(&self, t: Millis) {
        self.0.now.send_replace(t.0);
    }

    /// The deadlines of the timers started on this clock that are still waiting (not yet
    /// due, and not dropped), earliest first.
    pub fn timers(&self) -> Vec<Millis> {
        let now = self.now().0;
        let mut due: Vec<Millis> = lock(&self.0.timers)
            .values()
            .filter(|d| **d > now)
            .map(|d| Millis(*d))
            .collect();
        due.sort_unstable();
        due
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Millis {
        Millis(*self.0.now.borrow())
    }

    fn sleep(&self, d: Duration) -> Sleep {
        let until = self
            .now()
            .0
            .saturating_add(u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let id = self.0.next_id.fetch_add(1, Ordering::Relaxed);
        lock(&self.0.timers).insert(id, until);
        let started = Started {
            state: self.0.clone(),
            id,
        };
        let mut now = self.0.now.subscribe();
        Box::pin(async move {
            let _started = started;
            // The sender lives in `_started.state`, so this only ends at the deadline.
            let _ = now.wait_for(|t| *t >= until).await;
        })
    }
}

/// A running [`ManualClock`] timer; ended or dropped, it is no longer listed.
struct Started {
    state: Arc<ManualState>,
    id: u64,
}

impl Drop for Started {
    fn drop(&mut self) {
        lock(&self.state.timers).remove(&self.id);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (Howard Hinnant's method).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// (year, month, day) → days since 1970-01-01.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(y: u16, m: u8) -> u8 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Parses a strict `YYYY-MM-DD` date, rejecting impossible days.
pub fn parse_date(s: &str) -> Option<Date> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let digits = |r: std::ops::Range<usize>| -> Option<u16> {
        let part = &s[r];
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    let year = digits(0..4)?;
    let month = u8::try_from(digits(5..7)?).ok()?;
    let day = u8::try_from(digits(8..10)?).ok()?;
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    Some(Date { year, month, day })
}

/// A calendar date written `YYYY-MM-DD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub struct Date {
    pub year: u16,
    pub month: u8,
    pub day: u8,
}

impl TryFrom<String> for Date {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        parse_date(&s).ok_or_else(|| format!("`{s}` is not a date YYYY-MM-DD"))
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

impl Date {
    /// Midnight UTC at the start of this date.
    pub fn start_millis(self) -> Millis {
        let days = days_from_civil(
            i64::from(self.year),
            u32::from(self.month),
            u32::from(self.day),
        );
        Millis((days.max(0) as u64) * 86_400_000)
    }

    /// The UTC date containing `t`.
    pub fn of(t: Millis) -> Date {
        let (y, m, d) = civil_from_days((t.0 / 86_400_000) as i64);
        Date {
            year: y as u16,
            month: m as u8,
            day: d as u8,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_of_known_instants() {
        assert_eq!(Millis(0).to_rfc3339(), "1970-01-01T00:00:00.000Z");
        // 2000-02-29T12:34:56.789Z
        assert_eq!(
            Millis(951_827_696_789).to_rfc3339(),
            "2000-02-29T12:34:56.789Z"
        );
    }

    #[test]
    fn dates_round_trip_through_days() {
        for days in [-1000_i64, 0, 59, 60, 10_957, 20_000, 50_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn parse_date_rejects_impossible_days() {
        assert!(parse_date("2024-02-29").is_some());
        assert!(parse_date("2023-02-29").is_none());
        assert!(parse_date("2026-13-01").is_none());
        assert!(parse_date("2026-1-01").is_none());
        assert!(parse_date("2026-01-0a").is_none());
        assert_eq!(
            parse_date("2026-11-29")
                .unwrap()
                .start_millis()
                .to_rfc3339(),
            "2026-11-29T00:00:00.000Z"
        );
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(Millis(5));
        assert_eq!(c.now(), Millis(5));
        c.advance_ms(10);
        assert_eq!(c.now(), Millis(15));
    }

    /// Polls `f` once, without a runtime timer.
    fn ready(f: &mut Sleep) -> bool {
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        f.as_mut().poll(&mut cx).is_ready()
    }

    #[test]
    fn a_manual_timer_ends_only_when_the_clock_reaches_its_deadline() {
        let c = ManualClock::new(Millis(1_000));
        let mut t = c.sleep(Duration::from_millis(300));
        assert_eq!(c.timers(), vec![Millis(1_300)], "started at the call");
        assert!(!ready(&mut t));
        c.advance_ms(299);
        assert!(!ready(&mut t), "a millisecond early");
        assert_eq!(c.timers(), vec![Millis(1_300)]);
        c.advance_ms(1);
        assert!(ready(&mut t));
        drop(t);
        assert!(c.timers().is_empty());
    }

    #[test]
    fn a_dropped_manual_timer_is_no_longer_listed_and_a_due_one_is_not_waiting() {
        let c = ManualClock::new(Millis(0));
        let early = c.sleep(Duration::from_secs(1));
        let late = c.sleep(Duration::from_secs(5));
        assert_eq!(c.timers(), vec![Millis(1_000), Millis(5_000)]);
        drop(late);
        assert_eq!(c.timers(), vec![Millis(1_000)]);
        c.set(Millis(1_000));
        assert!(c.timers().is_empty(), "due, though not yet polled");
        drop(early);
    }

    #[tokio::test]
    async fn a_manual_timer_wakes_its_task_when_the_clock_moves() {
        let c = ManualClock::new(Millis(0));
        let t = c.sleep(Duration::from_secs(60));
        let waiting = tokio::spawn(t);
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        c.advance_ms(60_000);
        tokio::time::timeout(Duration::from_secs(10), waiting)
            .await
            .expect("woken by the move")
            .unwrap();
    }
}
