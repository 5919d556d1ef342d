//! Pure planning: the solver instance for a courier's remaining stops, the success-probability
//! grid the model fills, the objective hook built from it, and the schedule of an order.
//! Times are seconds since local midnight; node 0 is the courier's position now.

use doorstep_shared::event::GeoPoint;
use doorstep_shared::{RouteId, StopId};
use doorstep_solver::instance::{InstanceError, InstanceParts, Kind};
use doorstep_solver::{ArrivalCost, Instance};
use serde::{Deserialize, Serialize};

use super::features::{self, WIDTH};
use super::world::{AttemptContext, StopSignals};

/// Urban driving speed (m/s) and detour factor over the great-circle distance.
const SPEED_M_S: f64 = 7.0;
const DETOUR: f64 = 1.3;
/// Spacing of the arrival-time grid the model is evaluated on.
pub const SLOT_S: i64 = 3600;
/// How many seconds of driving one expected successful delivery is worth.
pub const SUCCESS_VALUE_S: f32 = 2400.0;

/// One remaining stop.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlanStop {
    pub stop_id: StopId,
    pub location: GeoPoint,
    /// Delivery window, seconds since midnight.
    pub window: (i64, i64),
    pub service_s: i64,
    pub prior_attempts: u32,
    pub signals: StopSignals,
}

/// Everything a replan depends on (its canonical JSON is the inputs digest).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlanInput {
    pub route_id: RouteId,
    pub now_s: i64,
    pub day_end_s: i64,
    pub weekend: bool,
    pub start: GeoPoint,
    /// The remaining stops in the current order.
    pub stops: Vec<PlanStop>,
}

impl PlanInput {
    pub fn context(&self, stop: usize) -> AttemptContext {
        let s = &self.stops[stop];
        AttemptContext {
            window: s.window,
            prior_attempts: s.prior_attempts,
            weekend: self.weekend,
        }
    }
}

/// Driving time between two points, seconds.
pub fn travel_s(a: GeoPoint, b: GeoPoint) -> i64 {
    Radians::of(a).travel_to(&Radians::of(b))
}

/// A point with the trigonometry that every pair it is in would repeat.
struct Radians {
    lat: f64,
    cos_lat: f64,
    lon: f64,
}

impl Radians {
    fn of(p: GeoPoint) -> Self {
        let lat = p.lat.to_radians();
        Self {
            lat,
            cos_lat: lat.cos(),
            lon: p.lon,
        }
    }

    /// Haversine distance × detour / speed; symmetric in its two points.
    fn travel_to(&self, b: &Self) -> i64 {
        let dlat = b.lat - self.lat;
        let dlon = (b.lon - self.lon).to_radians();
        let h = (dlat / 2.0).sin().powi(2) + self.cos_lat * b.cos_lat * (dlon / 2.0).sin().powi(2);
        let metres = 2.0 * 6_371_000.0 * h.sqrt().min(1.0).asin();
        (metres * DETOUR / SPEED_M_S).round() as i64
    }
}

/// The window the solver enforces: a window already missed is relaxed to the rest of the day
/// (it cannot be kept; the stop is still served).
fn solver_window(input: &PlanInput, stop: &PlanStop) -> (i64, i64) {
    let end = input.day_end_s.max(input.now_s + 1);
    if stop.window.1 < input.now_s || stop.window.0 >= end {
        (input.now_s, end)
    } else {
        (stop.window.0.max(input.now_s), stop.window.1.min(end))
    }
}

/// The open-path instance: leave from node 0 at `now`, no return trip.
pub fn instance(input: &PlanInput) -> Result<Instance, InstanceError> {
    let n = input.stops.len() + 1;
    let point = |i: usize| {
        if i == 0 {
            input.start
        } else {
            input.stops[i - 1].location
        }
    };
    // Driving time is symmetric: each pair is computed once. Nothing drives back to node 0
    // (an open path), so its column stays 0.
    let points: Vec<Radians> = (0..n).map(|i| Radians::of(point(i))).collect();
    let mut travel = vec![0; n * n];
    for i in 0..n {
        for j in i + 1..n {
            let t = points[i].travel_to(&points[j]);
            travel[i * n + j] = t;
            if i > 0 {
                travel[j * n + i] = t;
            }
        }
    }
    let mut earliest = vec![input.now_s];
    let mut latest = vec![i64::MAX / 1024];
    let mut service = vec![0];
    for s in &input.stops {
        let w = solver_window(input, s);
        earliest.push(w.0);
        latest.push(w.1);
        service.push(s.service_s.max(0));
    }
    Instance::new(InstanceParts {
        name: input.route_id.to_string(),
        kind: Kind::Custom,
        travel,
        earliest,
        latest,
        service,
        demand: vec![0; n],
        capacity: None,
        max_vehicles: 1,
        cost_scale: 1,
    })
}

/// Service start of each stop of `order` (indices into `input.stops`), the solver's convention:
/// wait only when a window requires it.
pub fn schedule(inst: &Instance, order: &[usize]) -> Vec<i64> {
    let mut t = inst.earliest[0];
    let mut at = 0;
    order
        .iter()
        .map(|&s| {
            let node = s + 1;
            t = (t + inst.service[at] + inst.travel(at, node)).max(inst.earliest[node]);
            at = node;
            t
        })
        .collect()
}

/// The arrival-time grid: slot `k` is `t0 + k * SLOT_S`.
#[derive(Clone, Debug, PartialEq)]
pub struct Grid {
    pub t0: i64,
    pub slots: usize,
    pub stops: usize,
}

impl Grid {
    pub fn for_input(input: &PlanInput) -> Self {
        let span = (input.day_end_s - input.now_s).max(0);
        Self {
            t0: input.now_s,
            slots: (span / SLOT_S) as usize + 2,
            stops: input.stops.len(),
        }
    }

    /// Feature rows for every stop × slot, stop-major: one batch for the model.
    pub fn rows(&self, input: &PlanInput) -> Vec<f32> {
        let mut out = Vec::with_capacity(self.stops * self.slots * WIDTH);
        for (i, s) in input.stops.iter().enumerate() {
            let ctx = input.context(i);
            for k in 0..self.slots {
                out.extend_from_slice(&features::row(&s.signals, &ctx, self.time(k)));
            }
        }
        out
    }

    pub fn time(&self, slot: usize) -> i64 {
        self.t0 + slot as i64 * SLOT_S
    }

    /// For each stop, the first slot its service can fall in or after: service never starts
    /// before the stop's solver window opens, so earlier slots are never read (at least the
    /// last two slots are kept for interpolation).
    pub fn first_slots(&self, input: &PlanInput) -> Vec<usize> {
        input
            .stops
            .iter()
            .map(|s| {
                let open = solver_window(input, s).0;
                let k = ((open - self.t0).max(0) / SLOT_S) as usize;
                k.min(self.slots.saturating_sub(2))
            })
            .collect()
    }

    /// Feature rows for slots `first[i]..` of each stop `i`, stop-major: what
    /// [`SuccessGrid::from_first_slots`] spreads back onto the grid.
    pub fn rows_from(&self, input: &PlanInput, first: &[usize]) -> Vec<f32> {
        let mut out = Vec::new();
        for ((i, s), &lo) in input.stops.iter().enumerate().zip(first) {
            let ctx = input.context(i);
            for k in lo..self.slots {
                out.extend_from_slice(&features::row(&s.signals, &ctx, self.time(k)));
            }
        }
        out
    }
}

/// Success probabilities on a [`Grid`], interpolated linearly between slots.
#[derive(Clone, Debug, PartialEq)]
pub struct SuccessGrid {
    pub grid: Grid,
    pub p: Vec<f32>,
}

impl SuccessGrid {
    /// The grid from probabilities of the rows [`Grid::rows_from`] gave: slots before a
    /// stop's first slot (never read) repeat its first value.
    pub fn from_first_slots(grid: Grid, first: &[usize], scored: &[f32]) -> Self {
        let mut p = Vec::with_capacity(grid.stops * grid.slots);
        let mut at = 0;
        for &lo in first {
            let row = &scored[at..at + grid.slots - lo];
            p.extend(std::iter::repeat_n(row[0], lo));
            p.extend_from_slice(row);
            at += row.len();
        }
        Self { grid, p }
    }

    pub fn at(&self, stop: usize, t: i64) -> f32 {
        let g = &self.grid;
        let x = ((t - g.t0).max(0) as f32 / SLOT_S as f32).min((g.slots - 1) as f32);
        let k = (x.floor() as usize).min(g.slots.saturating_sub(2));
        let frac = (x - k as f32).clamp(0.0, 1.0);
        let base = stop * g.slots;
        let (a, b) = (self.p[base + k], self.p[base + (k + 1).min(g.slots - 1)]);
        a + (b - a) * frac
    }

    /// Expected successful deliveries of `order` with service starts `starts`.
    pub fn expected(&self, order: &[usize], starts: &[i64]) -> f32 {
        order.iter().zip(starts).map(|(&s, &t)| self.at(s, t)).sum()
    }
}

/// The objective hook: each expected success is worth [`SUCCESS_VALUE_S`] of driving.
pub struct SuccessHook<'a>(pub &'a SuccessGrid);

impl ArrivalCost for SuccessHook<'_> {
    fn cost(&self, node: usize, start: i64) -> i64 {
        if node == 0 {
            return 0;
        }
        -(SUCCESS_VALUE_S * self.0.at(node - 1, start)).round() as i64
    }
}

/// How many stops of `order` start inside their own (unrelaxed) window.
pub fn windows_kept(input: &PlanInput, order: &[usize], starts: &[i64]) -> usize {
    order
        .iter()
        .zip(starts)
        .filter(|&(&s, &t)| {
            let w = input.stops[s].window;
            t >= w.0 && t <= w.1
        })
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_interpolates_between_slots() {
        let g = SuccessGrid {
            grid: Grid {
                t0: 0,
                slots: 3,
                stops: 1,
            },
            p: vec![0.0, 1.0, 0.5],
        };
        assert_eq!(g.at(0, 0), 0.0);
        assert!((g.at(0, SLOT_S / 2) - 0.5).abs() < 1e-6);
        assert_eq!(g.at(0, SLOT_S), 1.0);
        assert_eq!(g.at(0, 10 * SLOT_S), 0.5);
    }

    #[test]
    fn the_instance_drives_the_pairwise_travel_times() {
        let at = |k: usize| GeoPoint {
            lat: 52.30 + 0.013 * (k * k % 7) as f64,
            lon: 4.80 + 0.017 * (k * 3 % 5) as f64,
        };
        let input = PlanInput {
            route_id: RouteId::from_parts(0, [1; 10]),
            now_s: 8 * 3600,
            day_end_s: 20 * 3600,
            weekend: false,
            start: at(0),
            stops: (1..6)
                .map(|k| PlanStop {
                    stop_id: StopId::from_parts(0, [k as u8; 10]),
                    location: at(k),
                    window: (8 * 3600, 20 * 3600),
                    service_s: 60,
                    prior_attempts: 0,
                    signals: StopSignals::unknown(),
                })
                .collect(),
        };
        let inst = instance(&input).expect("valid");
        for i in 0..6 {
            for j in 0..6 {
                let want = if i == j || j == 0 {
                    0
                } else {
                    travel_s(at(i), at(j))
                };
                assert_eq!(inst.travel(i, j), want, "{i} -> {j}");
            }
        }
    }

    #[test]
    fn travel_is_symmetric_and_plausible() {
        let a = GeoPoint {
            lat: 52.37,
            lon: 4.89,
        };
        let b = GeoPoint {
            lat: 52.38,
            lon: 4.89,
        };
        assert_eq!(travel_s(a, b), travel_s(b, a));
        let t = travel_s(a, b);
        assert!((180..240).contains(&t), "1.1 km took {t} s");
    }
}
