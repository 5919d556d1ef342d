//! A courier's day as a timed list of actions, planned up front from the route, the world and a
//! seed. Pure: the executor ([`crate::act`]) turns each action into a device command at its time.
//!
//! The day: scan every parcel `Loaded`, then `OutForDelivery`, leave the depot, and work the
//! stops in route order — drive (with location fixes on the way), arrive, attempt, sometimes
//! leave a note. A recoverable failure (nobody home, no access, locker full) is reattempted
//! later the same day while the attempt budget allows; stops never reached before the shift ends
//! get an `out_of_time` failure.

use crate::world::{attempt_outcome, customer};
use doorstep_shared::event::{AttemptOutcome, GeoPoint, ScanPhase};
use doorstep_shared::stop::ATTEMPT_BUDGET;
use doorstep_shared::{FailureClass, FailureReason, ParcelBarcode, StopId};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::VecDeque;

const MINUTE: u64 = 60_000;
/// The simulated day starts at 08:00.
pub const DAY_START_HOUR: u64 = 8;

/// One stop of the route, as the device shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct PlannedStop {
    pub stop_id: StopId,
    pub location: GeoPoint,
    pub parcels: Vec<ParcelBarcode>,
}

/// Something the courier does.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    Scan {
        parcel: ParcelBarcode,
        phase: ScanPhase,
    },
    Arrive {
        stop: StopId,
        location: GeoPoint,
    },
    /// The outcome of the attempt the device's screen shows next for `stop`.
    Attempt {
        stop: StopId,
        outcome: AttemptOutcome,
    },
    Note {
        stop: StopId,
        text: String,
    },
    Location {
        point: GeoPoint,
        accuracy_m: f32,
    },
}

/// An action `at_ms` after the start of the day.
#[derive(Clone, Debug, PartialEq)]
pub struct Timed {
    pub at_ms: u64,
    pub action: Action,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DayParams {
    pub shift_ms: u64,
    pub speed_kmh: f64,
    /// Minutes between location fixes while driving.
    pub fix_every_ms: u64,
}

impl Default for DayParams {
    fn default() -> Self {
        Self {
            shift_ms: 8 * 60 * MINUTE,
            speed_kmh: 25.0,
            fix_every_ms: 4 * MINUTE,
        }
    }
}

/// Great-circle distance in km.
pub fn distance_km(a: GeoPoint, b: GeoPoint) -> f64 {
    let (la1, la2) = (a.lat.to_radians(), b.lat.to_radians());
    let dlat = la2 - la1;
    let dlon = (b.lon - a.lon).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + la1.cos() * la2.cos() * (dlon / 2.0).sin().powi(2);
    2.0 * 6_371.0 * h.sqrt().asin()
}

fn lerp(a: GeoPoint, b: GeoPoint, f: f64) -> GeoPoint {
    GeoPoint {
        lat: a.lat + (b.lat - a.lat) * f,
        lon: a.lon + (b.lon - a.lon) * f,
    }
}

const NOTES_OK: &[&str] = &[
    "Handed over at the door",
    "Customer was friendly, asked for mornings next time",
    "Dog in the yard",
];
const NOTES_FAILED: &[&str] = &[
    "Card left in the mailbox",
    "Gate code in the notes is outdated",
    "Neighbours not home either",
    "Will try again after lunch",
];

struct Planner<'a> {
    out: Vec<Timed>,
    t: u64,
    rng: StdRng,
    params: &'a DayParams,
}

impl Planner<'_> {
    fn push(&mut self, action: Action) {
        self.out.push(Timed {
            at_ms: self.t,
            action,
        });
    }

    fn pause(&mut self, lo_ms: u64, hi_ms: u64) {
        self.t += self.rng.random_range(lo_ms..=hi_ms);
    }

    fn drive(&mut self, from: GeoPoint, to: GeoPoint) {
        let km = distance_km(from, to);
        let drive_ms = (km / self.params.speed_kmh * 3_600_000.0) as u64;
        let mut k = 1;
        while k * self.params.fix_every_ms < drive_ms {
            let f = (k * self.params.fix_every_ms) as f64 / drive_ms as f64;
            let at_ms = self.t + k * self.params.fix_every_ms;
            let accuracy_m = self.rng.random_range(3.0..25.0);
            self.out.push(Timed {
                at_ms,
                action: Action::Location {
                    point: lerp(from, to, f),
                    accuracy_m,
                },
            });
            k += 1;
        }
        self.t += drive_ms;
        self.pause(MINUTE, 3 * MINUTE); // parking, walking to the door
    }
}

/// Plans the day of one courier. `world_seed` decides the customers (shared by the fleet),
/// `courier_seed` this courier's luck.
pub fn plan_day(
    stops: &[PlannedStop],
    depot: GeoPoint,
    world_seed: u64,
    courier_seed: u64,
    params: &DayParams,
) -> Vec<Timed> {
    let mut p = Planner {
        out: Vec::new(),
        t: 0,
        rng: StdRng::seed_from_u64(courier_seed),
        params,
    };
    for phase in [ScanPhase::Loaded, ScanPhase::OutForDelivery] {
        for s in stops {
            for parcel in &s.parcels {
                p.push(Action::Scan {
                    parcel: parcel.clone(),
                    phase,
                });
                p.pause(2_000, 8_000);
            }
        }
        p.pause(3 * MINUTE, 10 * MINUTE);
    }
    let end = params.shift_ms.saturating_sub(10 * MINUTE);
    let mut queue: VecDeque<usize> = (0..stops.len()).collect();
    let mut revisit: Vec<(u64, usize)> = Vec::new();
    let mut failures = vec![0u32; stops.len()];
    let mut attempted = vec![false; stops.len()];
    let mut detoured = vec![false; stops.len()];
    let mut pos = depot;
    loop {
        revisit.sort_unstable();
        let next = match revisit.first() {
            Some(&(due, i)) if due <= p.t || queue.is_empty() => {
                revisit.remove(0);
                p.t = p.t.max(due);
                i
            }
            _ => match queue.pop_front() {
                Some(i) => i,
                None => break,
            },
        };
        let stop = &stops[next];
        let km = distance_km(pos, stop.location);
        if p.t + (km / params.speed_kmh * 3_600_000.0) as u64 > end {
            queue.push_front(next);
            break;
        }
        p.drive(pos, stop.location);
        pos = stop.location;
        p.push(Action::Arrive {
            stop: stop.stop_id,
            location: stop.location,
        });
        p.pause(MINUTE, 4 * MINUTE);
        let hour = (DAY_START_HOUR + p.t / (60 * MINUTE)) as u32;
        let who = customer(world_seed, stop.stop_id);
        let outcome = attempt_outcome(&who, hour, &mut p.rng);
        attempted[next] = true;
        let failed_class = match &outcome {
            AttemptOutcome::Failed { reason, .. } => Some(reason.class()),
            AttemptOutcome::Delivered { .. } => None,
        };
        p.push(Action::Attempt {
            stop: stop.stop_id,
            outcome,
        });
        p.pause(10_000, 40_000);
        let note_chance = if failed_class.is_some() { 0.4 } else { 0.08 };
        if p.rng.random_bool(note_chance) {
            let pool = if failed_class.is_some() {
                NOTES_FAILED
            } else {
                NOTES_OK
            };
            let text = pool[p.rng.random_range(0..pool.len())].to_owned();
            p.push(Action::Note {
                stop: stop.stop_id,
                text,
            });
            p.pause(20_000, 60_000);
        }
        let again = match failed_class {
            Some(FailureClass::Recoverable) => {
                failures[next] += 1;
                failures[next] < ATTEMPT_BUDGET
            }
            Some(FailureClass::Transient) => !std::mem::replace(&mut detoured[next], true),
            _ => false,
        };
        if again {
            let due = p.t + p.rng.random_range(60 * MINUTE..150 * MINUTE);
            revisit.push((due, next));
        }
    }
    // Out of shift time: the stops never reached are reported as such.
    p.t = p.t.max(end);
    for i in queue {
        if !attempted[i] {
            p.push(Action::Attempt {
                stop: stops[i].stop_id,
                outcome: AttemptOutcome::Failed {
                    reason: FailureReason::OutOfTime,
                    detail: Some("shift ended before this stop".into()),
                },
            });
            p.t += 5_000;
        }
    }
    p.out.sort_by_key(|a| a.at_ms);
    p.out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(n: usize) -> (Vec<PlannedStop>, GeoPoint) {
        let depot = GeoPoint {
            lat: 52.52,
            lon: 13.405,
        };
        let stops = (0..n)
            .map(|i| PlannedStop {
                stop_id: StopId(uuid::Uuid::from_u128(i as u128 + 1)),
                location: GeoPoint {
                    lat: depot.lat + 0.01 * ((i % 5) as f64),
                    lon: depot.lon + 0.01 * ((i / 5) as f64),
                },
                parcels: (0..2)
                    .map(|p| ParcelBarcode::parse(&format!("DS01{i:04}{p}")).unwrap())
                    .collect(),
            })
            .collect();
        (stops, depot)
    }

    #[test]
    fn a_day_is_deterministic_ordered_and_inside_the_shift() {
        let (stops, depot) = route(20);
        let params = DayParams::default();
        let a = plan_day(&stops, depot, 1, 2, &params);
        assert_eq!(a, plan_day(&stops, depot, 1, 2, &params));
        assert_ne!(a, plan_day(&stops, depot, 1, 3, &params));
        assert!(a.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
        assert!(a.last().unwrap().at_ms <= params.shift_ms);
    }

    #[test]
    fn every_parcel_is_scanned_twice_before_the_first_arrival() {
        let (stops, depot) = route(10);
        let plan = plan_day(&stops, depot, 1, 2, &DayParams::default());
        let first_arrival = plan
            .iter()
            .position(|t| matches!(t.action, Action::Arrive { .. }))
            .unwrap();
        let scans = plan[..first_arrival]
            .iter()
            .filter(|t| matches!(t.action, Action::Scan { .. }))
            .count();
        assert_eq!(scans, 10 * 2 * 2);
    }

    #[test]
    fn every_stop_gets_an_outcome_and_reattempts_respect_the_budget() {
        let (stops, depot) = route(25);
        for seed in 0..20 {
            let plan = plan_day(&stops, depot, seed, seed + 100, &DayParams::default());
            for s in &stops {
                let attempts: Vec<_> = plan
                    .iter()
                    .filter_map(|t| match &t.action {
                        Action::Attempt { stop, outcome } if *stop == s.stop_id => Some(outcome),
                        _ => None,
                    })
                    .collect();
                assert!(!attempts.is_empty(), "seed {seed}");
                assert!(attempts.len() as u32 <= ATTEMPT_BUDGET + 1, "seed {seed}");
                let delivered = attempts
                    .iter()
                    .filter(|o| matches!(o, AttemptOutcome::Delivered { .. }))
                    .count();
                assert!(delivered <= 1, "seed {seed}");
                if delivered == 1 {
                    assert!(matches!(
                        attempts.last().unwrap(),
                        AttemptOutcome::Delivered { .. }
                    ));
                }
            }
        }
    }

    #[test]
    fn long_drives_leave_location_fixes() {
        let (stops, depot) = route(5);
        let params = DayParams {
            fix_every_ms: 30_000,
            ..DayParams::default()
        };
        let plan = plan_day(&stops, depot, 1, 2, &params);
        assert!(
            plan.iter()
                .any(|t| matches!(t.action, Action::Location { .. }))
        );
    }
}
