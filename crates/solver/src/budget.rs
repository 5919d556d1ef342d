//! How long the solver may run. Tests use an iteration budget (deterministic); the CLI and
//! the bench use wall-clock time through an injected [`Clock`], so the core reads no clock
//! of its own and a test can drive time by hand.

use std::time::{Duration, Instant};

/// Time since the solve started.
pub trait Clock {
    fn elapsed(&self) -> Duration;
}

/// The real clock, started when created.
#[derive(Debug, Clone, Copy)]
pub struct WallClock(Instant);

impl WallClock {
    pub fn start() -> Self {
        Self(Instant::now())
    }
}

impl Clock for WallClock {
    fn elapsed(&self) -> Duration {
        self.0.elapsed()
    }
}

/// An anytime budget: a number of improvement iterations (one perturbation + local search
/// each), a time limit, or both (whichever ends first).
#[derive(Clone, Copy)]
pub struct Budget<'a> {
    iterations: Option<u64>,
    time: Option<(Duration, &'a dyn Clock)>,
}

impl std::fmt::Debug for Budget<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Budget")
            .field("iterations", &self.iterations)
            .field("time", &self.time.map(|t| t.0))
            .finish()
    }
}

impl<'a> Budget<'a> {
    /// Deterministic: the same seed gives the same answer on any machine.
    pub fn iterations(n: u64) -> Self {
        Self {
            iterations: Some(n),
            time: None,
        }
    }

    pub fn time(limit: Duration, clock: &'a dyn Clock) -> Self {
        Self {
            iterations: None,
            time: Some((limit, clock)),
        }
    }

    pub fn with_iterations(mut self, n: u64) -> Self {
        self.iterations = Some(n);
        self
    }

    /// True once `done` iterations or the time limit are reached.
    pub fn exhausted(&self, done: u64) -> bool {
        self.iterations.is_some_and(|n| done >= n) || self.out_of_time()
    }

    /// Only the clock: construction reads it before each insertion, local search after each
    /// position and, with a hook, every few priced moves (see [`crate::moves::Best`]), so a
    /// large instance cannot overrun a 10 ms budget by much.
    pub fn out_of_time(&self) -> bool {
        self.time
            .is_some_and(|(limit, clock)| clock.elapsed() >= limit)
    }

    /// Fraction of the budget used, in [0, 1]; drives the acceptance threshold's cooling.
    pub fn progress(&self, done: u64) -> f64 {
        let by_iter = self
            .iterations
            .map_or(0.0, |n| done as f64 / n.max(1) as f64);
        let by_time = self.time.map_or(0.0, |(limit, clock)| {
            clock.elapsed().as_secs_f64() / limit.as_secs_f64().max(1e-9)
        });
        by_iter.max(by_time).clamp(0.0, 1.0)
    }
}
