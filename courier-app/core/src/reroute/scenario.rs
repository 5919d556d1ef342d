//! Synthetic courier days for training data and the simulation bench: a route of 30–60 stops
//! around a city centre, with windows, prior attempts and the hidden customers behind them.

use doorstep_shared::event::GeoPoint;
use doorstep_shared::{RouteId, StopId};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::plan::{PlanInput, PlanStop};
use super::world::{Customer, draw_prior_attempts, draw_window};

const CENTRE: GeoPoint = GeoPoint {
    lat: 52.37,
    lon: 4.89,
};
/// Day end for every route: 21:00.
pub const DAY_END_S: i64 = 21 * 3600;

/// One route day: what the device sees (`input`) and the truth behind it (`customers`).
#[derive(Clone, Debug)]
pub struct Scenario {
    pub day: u32,
    pub input: PlanInput,
    pub customers: Vec<Customer>,
}

impl Scenario {
    /// Route `route` of day `day` in the world `seed`.
    pub fn generate(seed: u64, day: u32, route: u32) -> Self {
        Self::generate_sized(seed, day, route, None)
    }

    /// Like [`Scenario::generate`] with exactly `stops` stops when given (latency benches).
    pub fn generate_sized(seed: u64, day: u32, route: u32, stops: Option<usize>) -> Self {
        let key = (u64::from(day) << 20) | u64::from(route);
        let mut rng = StdRng::seed_from_u64(seed ^ key.wrapping_mul(0x2545_F491_4F6C_DD1D));
        let drawn = rng.random_range(30..=60);
        let n = stops.unwrap_or(drawn);
        let start_s = 8 * 3600 + rng.random_range(0..6) * 900;
        let weekend = day % 7 >= 5;
        let mut stops = Vec::with_capacity(n);
        let mut customers = Vec::with_capacity(n);
        for i in 0..n {
            let index = key * 64 + i as u64;
            customers.push(Customer::generate(seed, index));
            stops.push(PlanStop {
                stop_id: StopId(uuid::Uuid::from_u64_pair(key, i as u64)),
                location: GeoPoint {
                    lat: CENTRE.lat + rng.random_range(-0.03..0.03),
                    lon: CENTRE.lon + rng.random_range(-0.05..0.05),
                },
                window: draw_window(&mut rng, (start_s, DAY_END_S)),
                service_s: 180,
                prior_attempts: draw_prior_attempts(&mut rng),
                signals: customers[i].signals(),
            });
        }
        Self {
            day,
            input: PlanInput {
                route_id: RouteId(uuid::Uuid::from_u64_pair(seed, key)),
                now_s: start_s,
                day_end_s: DAY_END_S,
                weekend,
                start: CENTRE,
                stops,
            },
            customers,
        }
    }

    /// True success probability of stop `i` if service starts at `t`.
    pub fn p_true(&self, i: usize, t: i64) -> f32 {
        self.customers[i].p_success(&self.input.context(i), t)
    }
}
