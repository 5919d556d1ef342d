//! Simulated time for the deterministic mode: one manual clock that the server and every device
//! read, moved only by the scheduler.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Unix milliseconds that move only when told to. Clones share the same time.
#[derive(Clone, Debug, Default)]
pub struct SimClock(Arc<AtomicU64>);

impl SimClock {
    pub fn new(start_ms: u64) -> Self {
        Self(Arc::new(AtomicU64::new(start_ms)))
    }

    pub fn now(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }

    /// Moves to `ms`; never backwards (the scheduler's agenda is ordered).
    pub fn advance_to(&self, ms: u64) {
        self.0.fetch_max(ms, Ordering::SeqCst);
    }
}

impl courier_core::Clock for SimClock {
    fn now_ms(&self) -> u64 {
        self.now()
    }
}

impl doorstep_server::clock::Clock for SimClock {
    fn now_ms(&self) -> u64 {
        self.now()
    }
}

/// 2026-06-01 08:00 UTC: the deterministic mode's day.
pub const CHAOS_DAY: &str = "2026-06-01";
pub const CHAOS_DAY_START_MS: u64 = 1_780_300_800_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chaos_day_starts_at_eight_utc() {
        // 2026-06-01 is 20_605 days after the epoch.
        assert_eq!(CHAOS_DAY_START_MS, 20_605 * 86_400_000 + 8 * 3_600_000);
    }

    #[test]
    fn clones_share_time_and_it_never_goes_back() {
        let a = SimClock::new(10);
        let b = a.clone();
        a.advance_to(50);
        b.advance_to(20);
        assert_eq!(a.now(), 50);
    }
}

/// The civil (UTC) date of `now_ms` as `YYYY-MM-DD`, and 08:00 UTC of that day in Unix ms.
pub fn civil_day(now_ms: u64) -> (String, u64) {
    // Days since the epoch to a civil date (Howard Hinnant's algorithm).
    let days = (now_ms / 86_400_000) as i64;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        format!("{y:04}-{m:02}-{d:02}"),
        days as u64 * 86_400_000 + 8 * 3_600_000,
    )
}

#[cfg(test)]
mod civil_tests {
    use super::*;

    #[test]
    fn civil_day_of_the_chaos_day() {
        assert_eq!(
            civil_day(CHAOS_DAY_START_MS + 5_000),
            (CHAOS_DAY.to_owned(), CHAOS_DAY_START_MS)
        );
        assert_eq!(civil_day(0).0, "1970-01-01");
    }
}
