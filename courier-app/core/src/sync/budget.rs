//! The retry budget: a token bucket. Every retry (any attempt that follows a failed one) spends
//! a token; tokens refill at a steady rate up to a capacity. Over any window of `t` ms a device
//! makes at most `capacity + t · rate` retries, however long the server stays broken.

use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct BudgetConfig {
    pub capacity: f64,
    pub refill_per_minute: f64,
}

impl Default for BudgetConfig {
    fn default() -> Self {
        Self {
            capacity: 10.0,
            refill_per_minute: 6.0,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RetryBudget {
    config: BudgetConfig,
    tokens: f64,
    updated_ms: u64,
}

impl RetryBudget {
    pub fn new(config: BudgetConfig, now_ms: u64) -> Self {
        Self {
            config,
            tokens: config.capacity,
            updated_ms: now_ms,
        }
    }

    fn refill(&mut self, now_ms: u64) {
        // A wall clock that went backwards refills nothing and resets the reference.
        let elapsed = now_ms.saturating_sub(self.updated_ms) as f64;
        self.tokens = (self.tokens + elapsed * self.config.refill_per_minute / 60_000.0)
            .min(self.config.capacity);
        self.updated_ms = now_ms;
    }

    pub fn tokens(&mut self, now_ms: u64) -> f64 {
        self.refill(now_ms);
        self.tokens
    }

    /// Spends one token if there is one.
    pub fn try_acquire(&mut self, now_ms: u64) -> bool {
        self.refill(now_ms);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// How long until a token is available (zero if one is).
    pub fn wait_for_token(&mut self, now_ms: u64) -> Duration {
        self.refill(now_ms);
        if self.tokens >= 1.0 || self.config.refill_per_minute <= 0.0 {
            return Duration::ZERO;
        }
        let missing = 1.0 - self.tokens;
        Duration::from_millis((missing * 60_000.0 / self.config.refill_per_minute).ceil() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn drains_then_refills_at_the_rate() {
        let cfg = BudgetConfig {
            capacity: 3.0,
            refill_per_minute: 6.0,
        };
        let mut b = RetryBudget::new(cfg, 0);
        assert!(b.try_acquire(0) && b.try_acquire(0) && b.try_acquire(0));
        assert!(!b.try_acquire(0));
        assert_eq!(b.wait_for_token(0), Duration::from_secs(10));
        assert!(!b.try_acquire(9_999));
        assert!(b.try_acquire(10_000));
        // Never above capacity after a long idle time.
        assert_eq!(b.tokens(10_000_000), 3.0);
    }

    #[test]
    fn a_clock_going_back_refills_nothing() {
        let mut b = RetryBudget::new(
            BudgetConfig {
                capacity: 1.0,
                refill_per_minute: 60.0,
            },
            100_000,
        );
        assert!(b.try_acquire(100_000));
        assert!(!b.try_acquire(50_000));
        assert!(b.try_acquire(51_000));
    }

    proptest! {
        /// However the attempts are spread, granted retries never exceed capacity + elapsed·rate.
        #[test]
        fn grants_are_bounded_by_capacity_plus_refill(
            gaps in proptest::collection::vec(0u64..20_000, 1..300),
            cap in 1u32..20,
            rate in 0u32..30,
        ) {
            let cfg = BudgetConfig { capacity: cap as f64, refill_per_minute: rate as f64 };
            let mut b = RetryBudget::new(cfg, 0);
            let (mut now, mut granted) = (0u64, 0u64);
            for g in gaps {
                now += g;
                if b.try_acquire(now) { granted += 1; }
                let bound = cap as f64 + now as f64 * rate as f64 / 60_000.0;
                prop_assert!(granted as f64 <= bound + 1e-9, "granted {} bound {}", granted, bound);
            }
        }
    }
}
