//! The circuit breaker: after `failure_threshold` consecutive transient failures the circuit
//! opens and no request is sent until `open_until`; then one probe is let through (half-open).
//! A successful probe closes the circuit; a failed one opens it again for twice as long, up to
//! `max_open_ms`. Pure: time is passed in.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakerConfig {
    pub failure_threshold: u32,
    pub open_ms: u64,
    pub max_open_ms: u64,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            open_ms: 30_000,
            max_open_ms: 10 * 60 * 1_000,
        }
    }
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export_to = "core/"))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum BreakerState {
    Closed { consecutive_failures: u32 },
    Open { until_ms: u64 },
    HalfOpen { probe_in_flight: bool },
}

/// Whether a request may go out now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    Allowed,
    /// The one trial request of a half-open circuit.
    Probe,
    Rejected {
        retry_in_ms: u64,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CircuitBreaker {
    config: BreakerConfig,
    state: BreakerState,
    /// Consecutive failed probes, which lengthen the next open period.
    reopened: u32,
}

impl CircuitBreaker {
    pub fn new(config: BreakerConfig) -> Self {
        Self {
            config,
            state: BreakerState::Closed {
                consecutive_failures: 0,
            },
            reopened: 0,
        }
    }

    pub fn state(&self) -> BreakerState {
        self.state
    }

    fn open_for(&self) -> u64 {
        let factor = 1u64.checked_shl(self.reopened.min(32)).unwrap_or(u64::MAX);
        self.config
            .open_ms
            .saturating_mul(factor)
            .min(self.config.max_open_ms.max(self.config.open_ms))
    }

    pub fn admit(&mut self, now_ms: u64) -> Admission {
        match self.state {
            BreakerState::Closed { .. } => Admission::Allowed,
            BreakerState::Open { until_ms } if now_ms >= until_ms => {
                self.state = BreakerState::HalfOpen {
                    probe_in_flight: true,
                };
                Admission::Probe
            }
            BreakerState::Open { until_ms } => Admission::Rejected {
                retry_in_ms: until_ms - now_ms,
            },
            BreakerState::HalfOpen {
                probe_in_flight: true,
            } => Admission::Rejected {
                retry_in_ms: self.config.open_ms,
            },
            BreakerState::HalfOpen {
                probe_in_flight: false,
            } => {
                self.state = BreakerState::HalfOpen {
                    probe_in_flight: true,
                };
                Admission::Probe
            }
        }
    }

    pub fn on_success(&mut self) {
        self.state = BreakerState::Closed {
            consecutive_failures: 0,
        };
        self.reopened = 0;
    }

    pub fn on_failure(&mut self, now_ms: u64) {
        self.state = match self.state {
            BreakerState::Closed {
                consecutive_failures,
            } => {
                let n = consecutive_failures.saturating_add(1);
                if n >= self.config.failure_threshold {
                    BreakerState::Open {
                        until_ms: now_ms.saturating_add(self.open_for()),
                    }
                } else {
                    BreakerState::Closed {
                        consecutive_failures: n,
                    }
                }
            }
            BreakerState::HalfOpen { .. } => {
                self.reopened = self.reopened.saturating_add(1);
                BreakerState::Open {
                    until_ms: now_ms.saturating_add(self.open_for()),
                }
            }
            // A late failure of a request admitted before the circuit opened changes nothing.
            open @ BreakerState::Open { .. } => open,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use BreakerState::*;

    const CFG: BreakerConfig = BreakerConfig {
        failure_threshold: 3,
        open_ms: 1_000,
        max_open_ms: 4_000,
    };

    fn at(state: BreakerState, reopened: u32) -> CircuitBreaker {
        CircuitBreaker {
            config: CFG,
            state,
            reopened,
        }
    }

    #[derive(Clone, Copy, Debug)]
    enum Ev {
        Admit(u64),
        Success,
        Failure(u64),
    }

    /// Every state × every event, with the expected next state and admission.
    #[test]
    fn transition_table_is_exhaustive() {
        let closed = |n| Closed {
            consecutive_failures: n,
        };
        let half = |p| HalfOpen { probe_in_flight: p };
        let open = |u| Open { until_ms: u };
        #[rustfmt::skip]
        let table: Vec<(BreakerState, Ev, BreakerState, Option<Admission>)> = vec![
            (closed(0), Ev::Admit(0), closed(0), Some(Admission::Allowed)),
            (closed(2), Ev::Admit(0), closed(2), Some(Admission::Allowed)),
            (closed(0), Ev::Success, closed(0), None),
            (closed(2), Ev::Success, closed(0), None),
            (closed(0), Ev::Failure(10), closed(1), None),
            (closed(1), Ev::Failure(10), closed(2), None),
            (closed(2), Ev::Failure(10), open(1_010), None),
            (open(500), Ev::Admit(100), open(500), Some(Admission::Rejected { retry_in_ms: 400 })),
            (open(500), Ev::Admit(500), half(true), Some(Admission::Probe)),
            (open(500), Ev::Admit(900), half(true), Some(Admission::Probe)),
            (open(500), Ev::Success, closed(0), None),
            (open(500), Ev::Failure(100), open(500), None),
            (half(true), Ev::Admit(0), half(true), Some(Admission::Rejected { retry_in_ms: 1_000 })),
            (half(false), Ev::Admit(0), half(true), Some(Admission::Probe)),
            (half(true), Ev::Success, closed(0), None),
            (half(false), Ev::Success, closed(0), None),
            (half(true), Ev::Failure(50), open(2_050), None),
            (half(false), Ev::Failure(50), open(2_050), None),
        ];
        for (from, ev, to, admission) in table {
            let mut b = at(from, 0);
            let got = match ev {
                Ev::Admit(now) => Some(b.admit(now)),
                Ev::Success => {
                    b.on_success();
                    None
                }
                Ev::Failure(now) => {
                    b.on_failure(now);
                    None
                }
            };
            assert_eq!((b.state(), got), (to, admission), "{from:?} --{ev:?}-->");
        }
    }

    #[test]
    fn failed_probes_double_the_open_period_up_to_the_max_and_success_resets() {
        let mut b = CircuitBreaker::new(CFG);
        for _ in 0..3 {
            b.on_failure(0);
        }
        assert_eq!(b.state(), Open { until_ms: 1_000 });
        let mut now = 1_000;
        let mut periods = Vec::new();
        for _ in 0..4 {
            assert_eq!(b.admit(now), Admission::Probe);
            b.on_failure(now);
            let Open { until_ms } = b.state() else {
                panic!("not open: {:?}", b.state())
            };
            periods.push(until_ms - now);
            now = until_ms;
        }
        assert_eq!(periods, [2_000, 4_000, 4_000, 4_000]);
        assert_eq!(b.admit(now), Admission::Probe);
        b.on_success();
        assert_eq!(
            b.state(),
            Closed {
                consecutive_failures: 0
            }
        );
        for _ in 0..3 {
            b.on_failure(now);
        }
        assert_eq!(
            b.state(),
            Open {
                until_ms: now + 1_000
            }
        );
    }

    #[test]
    fn never_admits_while_open_whatever_the_sequence() {
        // A deterministic walk over many interleavings: whenever the state is Open and the time
        // is before `until`, admission is refused.
        let mut b = CircuitBreaker::new(CFG);
        let mut now = 0u64;
        for step in 0..10_000u64 {
            now += (step * 7919) % 613;
            let before = b.state();
            match step % 3 {
                0 => {
                    let a = b.admit(now);
                    if let Open { until_ms } = before
                        && now < until_ms
                    {
                        assert!(matches!(a, Admission::Rejected { .. }));
                    }
                }
                1 => b.on_failure(now),
                _ if step % 11 == 0 => b.on_success(),
                _ => {}
            }
        }
    }
}
