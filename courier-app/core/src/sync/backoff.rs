//! Full-jitter exponential backoff ("Exponential Backoff and Jitter", AWS architecture blog):
//! the n-th consecutive failure waits a uniformly random time in `[0, min(cap, base·2ⁿ)]`,
//! and never less than the server's `Retry-After`.

use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackoffConfig {
    pub base_ms: u64,
    pub cap_ms: u64,
    /// A `Retry-After` longer than this is clamped (a broken proxy must not park us for days).
    pub max_retry_after_ms: u64,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        Self {
            base_ms: 500,
            cap_ms: 5 * 60 * 1_000,
            max_retry_after_ms: 30 * 60 * 1_000,
        }
    }
}

/// Backoff state: the number of consecutive failures so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    config: BackoffConfig,
    failures: u32,
}

impl Backoff {
    pub fn new(config: BackoffConfig) -> Self {
        Self {
            config,
            failures: 0,
        }
    }

    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// The upper bound of the next wait: `min(cap, base·2^failures)`.
    pub fn ceiling(&self) -> Duration {
        let exp = 1u64.checked_shl(self.failures.min(63)).unwrap_or(u64::MAX);
        Duration::from_millis(
            self.config
                .base_ms
                .saturating_mul(exp)
                .min(self.config.cap_ms),
        )
    }

    /// Records a failure and returns how long to wait. `unit` is a uniform draw in `[0, 1)`.
    pub fn on_failure(&mut self, unit: f64, retry_after: Option<Duration>) -> Duration {
        let ceiling = self.ceiling().as_millis() as f64;
        let jittered = Duration::from_millis((unit.clamp(0.0, 1.0) * ceiling) as u64);
        self.failures = self.failures.saturating_add(1);
        let floor = retry_after
            .unwrap_or_default()
            .min(Duration::from_millis(self.config.max_retry_after_ms));
        jittered.max(floor)
    }

    pub fn on_success(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ceiling_doubles_up_to_the_cap_and_resets() {
        let mut b = Backoff::new(BackoffConfig {
            base_ms: 100,
            cap_ms: 1_000,
            max_retry_after_ms: 10_000,
        });
        let mut ceilings = Vec::new();
        for _ in 0..6 {
            ceilings.push(b.ceiling().as_millis());
            b.on_failure(0.5, None);
        }
        assert_eq!(ceilings, [100, 200, 400, 800, 1_000, 1_000]);
        b.on_success();
        assert_eq!(b.ceiling().as_millis(), 100);
    }

    #[test]
    fn retry_after_is_a_floor_and_is_clamped() {
        let cfg = BackoffConfig {
            base_ms: 100,
            cap_ms: 1_000,
            max_retry_after_ms: 60_000,
        };
        let mut b = Backoff::new(cfg);
        assert_eq!(
            b.on_failure(0.0, Some(Duration::from_secs(30))),
            Duration::from_secs(30)
        );
        assert_eq!(
            b.on_failure(0.0, Some(Duration::from_secs(86_400))),
            Duration::from_secs(60)
        );
    }

    proptest! {
        #[test]
        fn waits_stay_within_zero_and_the_ceiling(
            draws in proptest::collection::vec(0.0f64..1.0, 1..100),
            base in 1u64..10_000,
            cap in 1u64..1_000_000,
        ) {
            let mut b = Backoff::new(BackoffConfig { base_ms: base, cap_ms: cap, max_retry_after_ms: 0 });
            for u in draws {
                let ceiling = b.ceiling();
                let wait = b.on_failure(u, None);
                prop_assert!(wait <= ceiling);
                prop_assert!(ceiling.as_millis() as u64 <= cap);
            }
        }

        #[test]
        fn retry_after_is_always_honoured(u in 0.0f64..1.0, failures in 0u32..80, ra in 0u64..100_000) {
            let mut b = Backoff::new(BackoffConfig::default());
            for _ in 0..failures { b.on_failure(u, None); }
            let wait = b.on_failure(u, Some(Duration::from_millis(ra)));
            prop_assert!(wait >= Duration::from_millis(ra));
        }
    }
}
