//! The synthetic world's ground truth for delivery success: who opens the door at what time.
//! Implemented once, here: the training exporter (`examples/export_training.rs`), the
//! simulation bench and the tests all draw customers and outcomes from this module, so the
//! model is trained and evaluated on the same rules.
//!
//! Pure: a seed and an index always give the same customer; time is seconds since local
//! midnight. The hidden part of a customer (household rhythm, shift, access, fallbacks) is
//! what the oracle knows; [`Customer::signals`] is what a device can observe.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// What the device knows about the building (from the address data).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Building {
    House,
    Apartment,
    Business,
}

/// The household's hidden rhythm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Household {
    Commuter,
    HomeOffice,
    Retired,
    Shop,
}

/// Observable signals about a stop, as the device has them: building type, how reachable the
/// customer is by notification (share of past notifications answered), and the presence
/// history (share of past visits in each hour of the day that found someone in).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StopSignals {
    pub building: Building,
    pub contactability: f32,
    pub presence: [f32; 24],
}

impl StopSignals {
    /// Nothing known: an apartment, average reachability, flat presence.
    pub fn unknown() -> Self {
        Self {
            building: Building::Apartment,
            contactability: 0.5,
            presence: [0.5; 24],
        }
    }
}

/// One customer of the synthetic world, hidden truth included.
#[derive(Clone, Debug, PartialEq)]
pub struct Customer {
    pub household: Household,
    pub building: Building,
    /// Hours the household's rhythm is shifted by (late risers, early shifts).
    pub shift_h: f32,
    /// Multiplies the household's presence curve.
    pub presence_scale: f32,
    pub contactability: f32,
    /// Chance a neighbour, concierge or safe place takes the parcel when nobody answers.
    pub fallback: f32,
    /// Chance the courier gets to the door at all (gate, code).
    pub access: f32,
    /// The observed presence history: the true curve plus sampling noise from past visits.
    pub presence_history: [f32; 24],
}

/// Where and when a stop is attempted.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AttemptContext {
    pub window: (i64, i64),
    pub prior_attempts: u32,
    pub weekend: bool,
}

fn household_curve(h: Household, hour: f32, weekend: bool) -> f32 {
    let between = |a: f32, b: f32| hour >= a && hour < b;
    match h {
        Household::Commuter if weekend => 0.7,
        Household::Commuter if between(7.5, 17.5) => 0.12,
        Household::Commuter if between(17.5, 22.0) => 0.88,
        Household::Commuter => 0.6,
        Household::HomeOffice if between(12.0, 14.0) => 0.35,
        Household::HomeOffice => 0.85,
        Household::Retired if between(9.5, 12.0) => 0.3,
        Household::Retired if between(15.0, 17.0) => 0.55,
        Household::Retired => 0.92,
        Household::Shop if weekend => 0.1,
        Household::Shop if between(12.0, 13.0) => 0.3,
        Household::Shop if between(9.0, 18.0) => 0.95,
        Household::Shop => 0.05,
    }
}

fn seed_for(seed: u64, index: u64) -> u64 {
    seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ index.wrapping_mul(0xD1B5_4A32_D192_ED03)
}

impl Customer {
    /// The customer number `index` of the world `seed`.
    pub fn generate(seed: u64, index: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed_for(seed, index));
        let (building, household) = match rng.random_range(0..100) {
            0..30 => (Building::Apartment, Household::Commuter),
            30..42 => (Building::House, Household::Commuter),
            42..55 => (Building::Apartment, Household::HomeOffice),
            55..65 => (Building::House, Household::HomeOffice),
            65..75 => (Building::Apartment, Household::Retired),
            75..87 => (Building::House, Household::Retired),
            _ => (Building::Business, Household::Shop),
        };
        let fallback = match building {
            Building::Apartment => rng.random_range(0.05..0.35),
            Building::House => rng.random_range(0.0..0.25),
            Building::Business => rng.random_range(0.0..0.1),
        };
        let access = if rng.random_bool(0.12) {
            rng.random_range(0.6..0.9)
        } else {
            0.98
        };
        let mut c = Self {
            household,
            building,
            shift_h: rng.random_range(-1.5..1.5),
            presence_scale: rng.random_range(0.8..1.08),
            contactability: rng.random_range(0.0..1.0),
            fallback,
            access,
            presence_history: [0.0; 24],
        };
        for hour in 0..24 {
            let truth = c.p_home(hour as i64 * 3600 + 1800, false);
            let noise: f32 = rng.random_range(-0.12..0.12);
            c.presence_history[hour] = ((truth + noise).clamp(0.0, 1.0) * 10.0).round() / 10.0;
        }
        c
    }

    /// What a device can observe about this customer.
    pub fn signals(&self) -> StopSignals {
        StopSignals {
            building: self.building,
            contactability: self.contactability,
            presence: self.presence_history,
        }
    }

    /// True chance that someone is in at `t` (seconds since midnight).
    pub fn p_home(&self, t: i64, weekend: bool) -> f32 {
        let hour = t as f32 / 3600.0 - self.shift_h;
        (household_curve(self.household, hour.rem_euclid(24.0), weekend) * self.presence_scale)
            .clamp(0.0, 1.0)
    }

    /// True chance that an attempt starting at `t` delivers the parcel.
    pub fn p_success(&self, ctx: &AttemptContext, t: i64) -> f32 {
        let mut home = self.p_home(t, ctx.weekend) * 0.85f32.powi(ctx.prior_attempts as i32);
        if t >= ctx.window.0 && t <= ctx.window.1 {
            // Notified of the window, reachable customers arrange to be in.
            home += (1.0 - home) * 0.3 * self.contactability;
        } else {
            home *= 0.8;
        }
        (self.access * (1.0 - (1.0 - home) * (1.0 - self.fallback))).clamp(0.0, 1.0)
    }
}

/// Draws prior attempts for a stop (most stops are first attempts).
pub fn draw_prior_attempts(rng: &mut impl Rng) -> u32 {
    match rng.random_range(0..100) {
        0..80 => 0,
        80..94 => 1,
        _ => 2,
    }
}

/// Draws a delivery window: 60 % of stops have the whole day, the rest a 2–3 h slot.
pub fn draw_window(rng: &mut impl Rng, day: (i64, i64)) -> (i64, i64) {
    if rng.random_bool(0.6) {
        return day;
    }
    let len = if rng.random_bool(0.5) { 7200 } else { 10800 };
    let start = rng.random_range(day.0 / 3600 + 1..(day.1 - len) / 3600) * 3600;
    (start, start + len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn customers_are_deterministic_and_varied() {
        assert_eq!(Customer::generate(7, 3), Customer::generate(7, 3));
        let kinds: std::collections::BTreeSet<_> = (0..300)
            .map(|i| format!("{:?}", Customer::generate(7, i).household))
            .collect();
        assert_eq!(kinds.len(), 4);
    }

    #[test]
    fn commuters_are_in_in_the_evening() {
        let c = (0..500)
            .map(|i| Customer::generate(1, i))
            .find(|c| c.household == Household::Commuter && c.shift_h.abs() < 0.5);
        let Some(c) = c else {
            panic!("seed 1: no commuter in 500 customers");
        };
        assert!(c.p_home(19 * 3600, false) > c.p_home(11 * 3600, false) + 0.4);
    }

    #[test]
    fn probabilities_stay_in_unit_interval() {
        for i in 0..200 {
            let c = Customer::generate(5, i);
            for t in (0..86_400).step_by(900) {
                for prior in 0..3 {
                    let ctx = AttemptContext {
                        window: (36_000, 43_200),
                        prior_attempts: prior,
                        weekend: i % 2 == 0,
                    };
                    let p = c.p_success(&ctx, t);
                    assert!((0.0..=1.0).contains(&p), "seed 5 customer {i}: p={p}");
                }
            }
        }
    }
}
