//! The model's input: one row of `FEATURES.len()` floats per (stop, arrival time). The order
//! here is the contract with `models/train.py` and the manifest (checked at load).

use super::world::{AttemptContext, Building, StopSignals};

/// Feature names, in column order.
pub const FEATURES: [&str; 10] = [
    "hour",
    "window_slack_min",
    "early_min",
    "prior_attempts",
    "building_house",
    "building_apartment",
    "building_business",
    "contactability",
    "presence_at_hour",
    "weekend",
];

/// Number of columns in a feature row.
pub const WIDTH: usize = FEATURES.len();

/// The row for an attempt at `t` (seconds since midnight).
pub fn row(signals: &StopSignals, ctx: &AttemptContext, t: i64) -> [f32; WIDTH] {
    let hour_index = (t.div_euclid(3600)).clamp(0, 23) as usize;
    let one_hot = |b: Building| if signals.building == b { 1.0 } else { 0.0 };
    [
        t as f32 / 3600.0,
        (ctx.window.1 - t) as f32 / 60.0,
        (ctx.window.0 - t).max(0) as f32 / 60.0,
        ctx.prior_attempts as f32,
        one_hot(Building::House),
        one_hot(Building::Apartment),
        one_hot(Building::Business),
        signals.contactability,
        signals.presence[hour_index],
        if ctx.weekend { 1.0 } else { 0.0 },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_follows_the_schema() {
        let s = StopSignals::unknown();
        let ctx = AttemptContext {
            window: (36_000, 43_200),
            prior_attempts: 1,
            weekend: false,
        };
        let r = row(&s, &ctx, 32_400);
        assert_eq!(r.len(), WIDTH);
        assert_eq!(r[0], 9.0);
        assert_eq!(r[1], 180.0);
        assert_eq!(r[2], 60.0);
        assert_eq!(r[3], 1.0);
        assert_eq!(r[5], 1.0);
        assert_eq!(r[8], 0.5);
    }
}
