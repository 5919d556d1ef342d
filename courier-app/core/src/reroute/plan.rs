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
    let (la1, la2) = (a.lat.to_radians(), b.lat.to_radians());
    let dlat = la2 - la1;
    let dlon = (b.lon - a.lon).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + la1.cos() * la2.cos() * (dlon / 2.0).sin().powi(2);
    let metres = 2.0 * 6_371_000.0 * h.sqrt().min(1.0).asin();
    (metres * DETOUR / SPEED_M_S).round() as i64
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
    let mut travel = vec![0; n * n];
    for i in 0..n {
        for j in 1..n {
            if i != j {
                travel[i * n + j] = travel_s(point(i), point(j));
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
}

/// Success probabilities on a [`Grid`], interpolated linearly between slots.
#[derive(Clone, Debug, PartialEq)]
pub struct SuccessGrid {
    pub grid: Grid,
    pub p: Vec<f32>,
}

impl SuccessGrid {
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
