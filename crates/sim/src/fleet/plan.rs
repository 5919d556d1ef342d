//! Who gets which network, who gets an app kill when, and how simulated time maps onto the
//! wall clock. Pure.

use courier_core::SyncConfig;
use courier_core::sync::backoff::BackoffConfig;
use courier_core::sync::breaker::BreakerConfig;
use courier_core::sync::budget::BudgetConfig;
use courier_core::transport::faulty::{FaultProfile, Outage};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use std::time::Duration;

const HOUR: u64 = 3_600_000;

/// The fleet's shape, as given on the command line.
#[derive(Clone, Debug, PartialEq)]
pub struct FleetOptions {
    pub couriers: usize,
    pub seed: u64,
    /// Simulated milliseconds per wall-clock millisecond.
    pub speedup: f64,
    /// Share of couriers with a scripted outage of at least `offline_hours`.
    pub offline_share: f64,
    pub offline_hours: f64,
    /// Share of couriers on a perfect link; the others are flaky.
    pub perfect_share: f64,
    /// Requests lost on a flaky link, half before the server sees them and half after it
    /// committed (the answer is lost: a timeout after commit).
    pub loss: f64,
    /// Requests a flaky link delivers twice.
    pub duplicate: f64,
    /// Share of couriers whose app is killed (mid-sync or idle) once during the day.
    pub kill_share: f64,
    pub shift_ms: u64,
}

impl Default for FleetOptions {
    fn default() -> Self {
        Self {
            couriers: 12,
            seed: 1,
            speedup: 480.0,
            offline_share: 0.3,
            offline_hours: 2.0,
            perfect_share: 0.2,
            loss: 0.1,
            duplicate: 0.05,
            kill_share: 0.05,
            shift_ms: 8 * HOUR,
        }
    }
}

/// A courier's network over the day. Times are simulated, from the start of the day.
#[derive(Clone, Debug, PartialEq)]
pub enum Network {
    Perfect,
    Flaky,
    /// Flaky, with no network at all in `[start_ms, end_ms)`.
    Outage {
        start_ms: u64,
        end_ms: u64,
    },
}

impl Network {
    pub fn label(&self) -> String {
        match self {
            Self::Perfect => "perfect".into(),
            Self::Flaky => "flaky".into(),
            Self::Outage { start_ms, end_ms } => format!(
                "flaky, offline {:.1} h from {:02}:{:02}",
                (end_ms - start_ms) as f64 / HOUR as f64,
                8 + start_ms / HOUR,
                (start_ms % HOUR) / 60_000
            ),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct CourierSetup {
    pub index: usize,
    pub network: Network,
    /// Simulated times (from the start of the day) at which the app is killed.
    pub kills_at: Vec<u64>,
    /// This courier's own seed (device ids, its luck at the doors, its faults).
    pub seed: u64,
}

fn pick(rng: &mut StdRng, n: usize, share: f64, from: &[usize]) -> Vec<usize> {
    let k = ((n as f64 * share).round() as usize).min(from.len());
    let mut v = from.to_vec();
    v.shuffle(rng);
    v.truncate(k);
    v
}

/// Assigns networks and kills to the fleet.
pub fn plan_fleet(o: &FleetOptions) -> Vec<CourierSetup> {
    let mut rng = StdRng::seed_from_u64(o.seed ^ 0x5eed_f1ee);
    let all: Vec<usize> = (0..o.couriers).collect();
    let offline = pick(&mut rng, o.couriers, o.offline_share, &all);
    let rest: Vec<usize> = all
        .iter()
        .copied()
        .filter(|i| !offline.contains(i))
        .collect();
    let perfect = pick(&mut rng, o.couriers, o.perfect_share, &rest);
    let killed = pick(&mut rng, o.couriers, o.kill_share, &all);
    let outage_ms = (o.offline_hours * HOUR as f64) as u64;
    all.iter()
        .map(|&i| {
            let network = if offline.contains(&i) {
                // Starts after the first hour; lasts offline_hours to 1.5x that, inside the shift
                // when it fits (a longer outage simply runs past the end of the day).
                let len = outage_ms + rng.random_range(0..=outage_ms / 2);
                let latest = o.shift_ms.saturating_sub(len + HOUR / 2).max(HOUR + 1);
                let start_ms = rng.random_range(HOUR..latest.max(HOUR + 1));
                Network::Outage {
                    start_ms,
                    end_ms: start_ms + len,
                }
            } else if perfect.contains(&i) {
                Network::Perfect
            } else {
                Network::Flaky
            };
            let kills_at = if killed.contains(&i) {
                vec![rng.random_range(HOUR..o.shift_ms.max(HOUR + 1))]
            } else {
                Vec::new()
            };
            CourierSetup {
                index: i,
                network,
                kills_at,
                seed: o.seed.wrapping_mul(1_000_003).wrapping_add(i as u64),
            }
        })
        .collect()
}

/// Maps simulated durations onto the wall clock, and scales everything the device measures
/// in its (real) clock accordingly.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TimeScale {
    pub speedup: f64,
}

impl TimeScale {
    /// The wall-clock duration of `sim_ms` simulated milliseconds.
    pub fn real(&self, sim_ms: u64) -> Duration {
        Duration::from_micros((sim_ms as f64 * 1_000.0 / self.speedup.max(1e-9)) as u64)
    }

    fn ms(&self, sim_ms: u64, floor: u64) -> u64 {
        ((sim_ms as f64 / self.speedup.max(1e-9)) as u64).max(floor)
    }

    /// A device's sync settings with its timers compressed by the speed-up.
    pub fn sync_config(&self) -> SyncConfig {
        let d = SyncConfig::default();
        SyncConfig {
            // Real HTTP to a real server: the request timeout stays in wall time.
            request_timeout_ms: 20_000,
            idle_interval_ms: self.ms(d.idle_interval_ms, 20),
            offline_poll_ms: self.ms(d.offline_poll_ms, 5),
            backoff: BackoffConfig {
                base_ms: self.ms(d.backoff.base_ms, 2),
                cap_ms: self.ms(d.backoff.cap_ms, 20),
                max_retry_after_ms: self.ms(d.backoff.max_retry_after_ms, 50),
            },
            breaker: BreakerConfig {
                failure_threshold: d.breaker.failure_threshold,
                open_ms: self.ms(d.breaker.open_ms, 5),
                max_open_ms: self.ms(d.breaker.max_open_ms, 50),
            },
            budget: BudgetConfig {
                capacity: d.budget.capacity,
                refill_per_minute: d.budget.refill_per_minute * self.speedup.max(1.0),
            },
            ..d
        }
    }

    /// The fault profile of `network`, with outages placed on the wall clock that starts the
    /// simulated day at `wall_origin_ms`.
    pub fn fault_profile(
        &self,
        network: &Network,
        o: &FleetOptions,
        wall_origin_ms: u64,
    ) -> FaultProfile {
        let flaky = FaultProfile {
            request_loss: o.loss / 2.0,
            response_loss: o.loss / 2.0,
            duplicate: o.duplicate,
            latency_min_ms: self.ms(50, 0),
            latency_max_ms: self.ms(400, 0),
            timeout_ms: self.ms(10_000, 2),
            ..FaultProfile::perfect()
        };
        match network {
            Network::Perfect => FaultProfile::perfect(),
            Network::Flaky => flaky,
            Network::Outage { start_ms, end_ms } => FaultProfile {
                outages: vec![Outage {
                    start_ms: wall_origin_ms + self.real(*start_ms).as_millis() as u64,
                    end_ms: wall_origin_ms + self.real(*end_ms).as_millis() as u64,
                }],
                ..flaky
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(couriers: usize) -> FleetOptions {
        FleetOptions {
            couriers,
            seed: 9,
            kill_share: 0.1,
            ..FleetOptions::default()
        }
    }

    #[test]
    fn shares_are_honoured_and_outages_are_long_enough_inside_the_day() {
        let o = opts(50);
        let plan = plan_fleet(&o);
        assert_eq!(plan, plan_fleet(&o));
        let outages: Vec<_> = plan
            .iter()
            .filter_map(|c| match c.network {
                Network::Outage { start_ms, end_ms } => Some((start_ms, end_ms)),
                _ => None,
            })
            .collect();
        assert_eq!(outages.len(), 15);
        for (s, e) in outages {
            assert!(e - s >= 2 * HOUR);
            assert!(s >= HOUR && e <= o.shift_ms, "{s}..{e}");
        }
        let perfect = plan
            .iter()
            .filter(|c| c.network == Network::Perfect)
            .count();
        assert_eq!(perfect, 10);
        assert_eq!(plan.iter().filter(|c| !c.kills_at.is_empty()).count(), 5);
    }

    #[test]
    fn time_is_compressed_consistently() {
        let t = TimeScale { speedup: 600.0 };
        assert_eq!(t.real(HOUR), Duration::from_secs(6));
        let c = t.sync_config();
        assert_eq!(c.idle_interval_ms, 100);
        assert_eq!(c.budget.refill_per_minute, 3_600.0);
        let o = FleetOptions::default();
        let p = t.fault_profile(
            &Network::Outage {
                start_ms: HOUR,
                end_ms: 3 * HOUR,
            },
            &o,
            1_000_000,
        );
        assert_eq!(p.outages[0].start_ms, 1_006_000);
        assert_eq!(p.outages[0].end_ms, 1_018_000);
        assert!((p.request_loss + p.response_loss - 0.1).abs() < 1e-9);
    }
}
