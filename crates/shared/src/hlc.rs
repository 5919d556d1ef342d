//! Hybrid logical clock (Kulkarni et al., 2014). A stamp is `(wall_ms, logical)`: it never goes
//! backwards on one node even when the physical clock does, and it moves past every stamp the
//! node has seen. The physical time is always passed in, so the clock is deterministic.

use serde::{Deserialize, Serialize};
use std::fmt;

/// One HLC reading. Ordered by wall time, then the logical counter.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct HlcStamp {
    /// The largest physical time (Unix ms) this node has seen.
    pub wall_ms: u64,
    /// Orders events that share `wall_ms`.
    pub logical: u32,
}

impl fmt::Display for HlcStamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.wall_ms, self.logical)
    }
}

/// A remote stamp too far ahead of this node's physical clock to be trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("remote clock stamp {remote} is {ahead_ms} ms ahead of local time (limit {limit_ms} ms)")]
pub struct ClockDriftError {
    pub remote: HlcStamp,
    pub ahead_ms: u64,
    pub limit_ms: u64,
}

/// The clock of one node. `max_drift_ms` bounds how far a remote stamp may run ahead.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct HybridClock {
    last: HlcStamp,
    max_drift_ms: u64,
}

impl HybridClock {
    pub fn new(max_drift_ms: u64) -> Self {
        Self {
            last: HlcStamp::default(),
            max_drift_ms,
        }
    }

    /// Resumes a clock from its last persisted stamp (a restarted device must not go back).
    pub fn resume(last: HlcStamp, max_drift_ms: u64) -> Self {
        Self { last, max_drift_ms }
    }

    pub fn last(&self) -> HlcStamp {
        self.last
    }

    /// A stamp for a local event at physical time `now_ms`.
    pub fn tick(&mut self, now_ms: u64) -> HlcStamp {
        self.last = if now_ms > self.last.wall_ms {
            HlcStamp {
                wall_ms: now_ms,
                logical: 0,
            }
        } else {
            HlcStamp {
                wall_ms: self.last.wall_ms,
                logical: self.last.logical.saturating_add(1),
            }
        };
        self.last
    }

    /// Merges a stamp received from another node; returns the stamp for the receive event.
    /// A remote stamp more than `max_drift_ms` ahead of `now_ms` is refused and leaves the
    /// clock unchanged, so one skewed device cannot drag everyone's clock into the future.
    pub fn observe(&mut self, remote: HlcStamp, now_ms: u64) -> Result<HlcStamp, ClockDriftError> {
        let ahead_ms = remote.wall_ms.saturating_sub(now_ms);
        if ahead_ms > self.max_drift_ms {
            return Err(ClockDriftError {
                remote,
                ahead_ms,
                limit_ms: self.max_drift_ms,
            });
        }
        let wall = now_ms.max(self.last.wall_ms).max(remote.wall_ms);
        let logical = match (wall == self.last.wall_ms, wall == remote.wall_ms) {
            (true, true) => self.last.logical.max(remote.logical).saturating_add(1),
            (true, false) => self.last.logical.saturating_add(1),
            (false, true) => remote.logical.saturating_add(1),
            (false, false) => 0,
        };
        self.last = HlcStamp {
            wall_ms: wall,
            logical,
        };
        Ok(self.last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn tick_is_monotonic_when_physical_clock_jumps_back() {
        let mut c = HybridClock::new(60_000);
        let a = c.tick(10_000);
        let b = c.tick(5_000);
        let d = c.tick(5_001);
        assert!(a < b && b < d);
        assert_eq!(
            b,
            HlcStamp {
                wall_ms: 10_000,
                logical: 1
            }
        );
    }

    #[test]
    fn observe_moves_past_remote() {
        let mut c = HybridClock::new(60_000);
        c.tick(1_000);
        let remote = HlcStamp {
            wall_ms: 2_000,
            logical: 7,
        };
        let s = c.observe(remote, 1_500).unwrap();
        assert!(s > remote);
    }

    #[test]
    fn observe_refuses_far_future_stamp_and_keeps_state() {
        let mut c = HybridClock::new(60_000);
        let before = c.tick(1_000);
        let three_days = 3 * 24 * 3_600_000;
        let err = c.observe(
            HlcStamp {
                wall_ms: 1_000 + three_days,
                logical: 0,
            },
            1_000,
        );
        assert!(matches!(err, Err(ClockDriftError { ahead_ms, .. }) if ahead_ms == three_days));
        assert_eq!(c.last(), before);
    }

    proptest! {
        #[test]
        fn stamps_strictly_increase(steps in proptest::collection::vec((0u64..10_000, any::<bool>(), 0u64..10_000, 0u32..5), 1..200)) {
            let mut c = HybridClock::new(u64::MAX);
            let mut prev = c.last();
            for (now, remote_event, rwall, rlog) in steps {
                let s = if remote_event {
                    c.observe(HlcStamp { wall_ms: rwall, logical: rlog }, now).unwrap()
                } else {
                    c.tick(now)
                };
                prop_assert!(s > prev);
                prev = s;
            }
        }
    }
}
