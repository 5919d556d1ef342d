//! The synthetic city's people: who is home when, which doors are hard to get through, and what
//! happens when a courier rings. Pure: a world seed and a stop id always give the same customer,
//! and an attempt's outcome depends only on the customer, the hour and the caller's generator.

use doorstep_shared::event::{AttemptOutcome, DeliveryMethod};
use doorstep_shared::{FailureReason, StopId};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The rhythm of a household, which shapes when someone opens the door.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Household {
    /// Out 08:00–17:00, home in the evening.
    Commuter,
    /// Mostly home, out for lunch.
    HomeOffice,
    /// Home most of the day, out mid-morning for errands.
    Retired,
    /// A shop or office: staffed 09:00–17:00, closed for lunch.
    Business,
}

/// One delivery address and the people behind it.
#[derive(Clone, Debug, PartialEq)]
pub struct Customer {
    pub household: Household,
    /// Probability that someone answers the door, per hour of the day (index 0–23).
    pub at_home: [f64; 24],
    /// Chance per attempt that the courier cannot get in (gate, door code, no concierge).
    pub access_problem: f64,
    /// Chance that a neighbour takes the parcel when nobody answers.
    pub neighbour_accepts: f64,
    /// The customer allows leaving parcels at a safe place.
    pub safe_place: bool,
    /// A parcel locker is the fallback; it is full now and then.
    pub locker: bool,
    /// A problem no reattempt fixes (rare): every attempt ends with it.
    pub terminal: Option<FailureReason>,
}

fn profile(h: Household) -> [f64; 24] {
    let mut p = [0.0; 24];
    for (hour, v) in p.iter_mut().enumerate() {
        *v = match (h, hour) {
            (Household::Commuter, 7..=16) => 0.15,
            (Household::Commuter, 17..=21) => 0.85,
            (Household::Commuter, _) => 0.6,
            (Household::HomeOffice, 12..=13) => 0.4,
            (Household::HomeOffice, _) => 0.85,
            (Household::Retired, 9..=11) => 0.45,
            (Household::Retired, _) => 0.9,
            (Household::Business, 12) => 0.3,
            (Household::Business, 9..=16) => 0.95,
            (Household::Business, _) => 0.05,
        };
    }
    p
}

fn mix(world_seed: u64, stop: StopId) -> u64 {
    let bits = stop.0.as_u128();
    world_seed ^ (bits as u64) ^ ((bits >> 64) as u64).rotate_left(17)
}

/// The customer at `stop` in the world of `world_seed`.
pub fn customer(world_seed: u64, stop: StopId) -> Customer {
    let mut rng = StdRng::seed_from_u64(mix(world_seed, stop));
    let household = match rng.random_range(0..100) {
        0..40 => Household::Commuter,
        40..65 => Household::HomeOffice,
        65..85 => Household::Retired,
        _ => Household::Business,
    };
    let access_problem = if rng.random_bool(0.15) {
        rng.random_range(0.2..0.6)
    } else {
        0.02
    };
    let terminal = if rng.random_bool(0.02) {
        Some(
            [
                FailureReason::AddressInvalid,
                FailureReason::RefusedByRecipient,
                FailureReason::ParcelDamaged,
                FailureReason::ComplianceHold,
            ][rng.random_range(0..4)],
        )
    } else {
        None
    };
    Customer {
        household,
        at_home: profile(household),
        access_problem,
        neighbour_accepts: rng.random_range(0.1..0.5),
        safe_place: rng.random_bool(0.25),
        locker: rng.random_bool(0.3),
        terminal,
    }
}

fn failed(reason: FailureReason, detail: &str) -> AttemptOutcome {
    AttemptOutcome::Failed {
        reason,
        detail: Some(detail.to_owned()),
    }
}

fn delivered(method: DeliveryMethod) -> AttemptOutcome {
    AttemptOutcome::Delivered {
        method,
        recipient: None,
    }
}

/// What happens when the courier tries `customer` at `hour` (0–23).
pub fn attempt_outcome(customer: &Customer, hour: u32, rng: &mut impl Rng) -> AttemptOutcome {
    if let Some(reason) = customer.terminal {
        return failed(reason, "cannot be delivered; needs the office");
    }
    if rng.random_bool(0.01) {
        return failed(
            FailureReason::ObstacleEnRoute,
            "street closed, will come back",
        );
    }
    if rng.random_bool(customer.access_problem) {
        return failed(FailureReason::NoAccess, "gate locked, code did not work");
    }
    let home = customer.at_home[(hour as usize).min(23)];
    if rng.random_bool(home) {
        if rng.random_bool(0.02) {
            return failed(
                FailureReason::CustomerRequestedReschedule,
                "customer asked for tomorrow",
            );
        }
        let method = if customer.household == Household::Business {
            DeliveryMethod::Concierge
        } else {
            DeliveryMethod::HandedToRecipient
        };
        return delivered(method);
    }
    if rng.random_bool(customer.neighbour_accepts) {
        return delivered(DeliveryMethod::HandedToNeighbour);
    }
    if customer.safe_place {
        return delivered(DeliveryMethod::LeftAtSafePlace);
    }
    if customer.locker {
        return if rng.random_bool(0.25) {
            failed(FailureReason::LockerFull, "locker full")
        } else {
            delivered(DeliveryMethod::ParcelLocker)
        };
    }
    failed(FailureReason::CustomerAbsent, "nobody home, card left")
}

#[cfg(test)]
mod tests {
    use super::*;
    use doorstep_shared::FailureClass;

    fn stop(n: u128) -> StopId {
        StopId(uuid::Uuid::from_u128(n))
    }

    #[test]
    fn same_seed_same_customer_and_different_stops_differ() {
        assert_eq!(customer(7, stop(1)), customer(7, stop(1)));
        let kinds: std::collections::BTreeSet<_> = (0..200)
            .map(|n| format!("{:?}", customer(7, stop(n)).household))
            .collect();
        assert_eq!(kinds.len(), 4);
    }

    #[test]
    fn outcomes_are_realistic_over_many_attempts() {
        let mut rng = StdRng::seed_from_u64(3);
        let (mut ok, mut recoverable, mut terminal, mut n) = (0, 0, 0, 0);
        for s in 0..2_000u128 {
            let c = customer(11, stop(s));
            n += 1;
            match attempt_outcome(&c, 10, &mut rng) {
                AttemptOutcome::Delivered { .. } => ok += 1,
                AttemptOutcome::Failed { reason, .. } => match reason.class() {
                    FailureClass::Terminal => terminal += 1,
                    FailureClass::Recoverable => recoverable += 1,
                    FailureClass::Transient => {}
                },
            }
        }
        let share = |x: i32| x as f64 / n as f64;
        assert!((0.6..0.92).contains(&share(ok)), "delivered {}", share(ok));
        assert!(
            share(recoverable) > 0.05,
            "recoverable {}",
            share(recoverable)
        );
        assert!(share(terminal) < 0.05, "terminal {}", share(terminal));
    }

    #[test]
    fn commuters_are_home_in_the_evening_not_at_ten() {
        let p = profile(Household::Commuter);
        assert!(p[10] < 0.2 && p[19] > 0.8);
    }
}
