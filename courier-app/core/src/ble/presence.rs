//! Proof of presence: beacons registered per stop, locker and depot; a presence score per
//! attempt from debounced sightings (and GPS dwell where present); and the classification of
//! "failed — customer absent" attempts without presence evidence as no real attempt, kept
//! apart from real failed attempts in first-attempt metrics.

use super::parse::{BeaconId, distance_m};
use super::smooth::Smoothed;
use doorstep_shared::event::AttemptOutcome;
use doorstep_shared::{FailureReason, StopId};
use std::collections::HashMap;

/// Where a registered beacon hangs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Site {
    Stop(StopId),
    Locker(String),
    Depot,
}

#[derive(Clone, Debug, Default)]
pub struct BeaconRegistry {
    beacons: HashMap<BeaconId, Site>,
}

impl BeaconRegistry {
    pub fn register(&mut self, id: BeaconId, site: Site) {
        self.beacons.insert(id, site);
    }
    pub fn site(&self, id: &BeaconId) -> Option<&Site> {
        self.beacons.get(id)
    }
}

/// How long the device stayed near the stop according to its own location fixes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GpsDwell {
    /// Closest distance to the stop during the attempt, in metres.
    pub distance_m: f64,
    pub dwell_ms: u64,
}

/// A score in 0..=1 and what it rests on.
#[derive(Clone, Debug, PartialEq)]
pub struct PresenceScore {
    pub score: f64,
    pub beacon_component: f64,
    pub gps_component: f64,
    pub closest_beacon_m: Option<f64>,
}

/// Scores at or above this count as presence evidence.
pub const PRESENCE_THRESHOLD: f64 = 0.5;
const PATH_LOSS_EXPONENT: f64 = 2.5;

impl PresenceScore {
    pub fn is_present(&self) -> bool {
        self.score >= PRESENCE_THRESHOLD
    }
}

fn beacon_strength(d: f64, hits: u32) -> f64 {
    let near = if d <= 5.0 {
        1.0
    } else if d <= 15.0 {
        0.7
    } else if d <= 30.0 {
        0.35
    } else {
        0.1
    };
    // More confirmed readings, more trust (saturating at 5).
    near * (0.6 + 0.08 * f64::from(hits.min(5)))
}

/// The presence score of an attempt at `stop`: the best sighting of a beacon registered to
/// that stop (with its calibrated power), combined with GPS dwell as independent evidence.
pub fn score(
    stop: StopId,
    registry: &BeaconRegistry,
    sightings: &[(Smoothed, i16)],
    gps: Option<GpsDwell>,
) -> PresenceScore {
    let mut beacon = 0.0f64;
    let mut closest: Option<f64> = None;
    for (s, tx_1m) in sightings {
        if registry.site(&s.id) != Some(&Site::Stop(stop)) {
            continue;
        }
        let d = distance_m(*tx_1m, s.rssi_dbm, PATH_LOSS_EXPONENT);
        closest = Some(closest.map_or(d, |c: f64| c.min(d)));
        beacon = beacon.max(beacon_strength(d, s.hits));
    }
    let gps_c = gps.map_or(0.0, |g| {
        let near = if g.distance_m <= 30.0 {
            0.6
        } else if g.distance_m <= 80.0 {
            0.3
        } else {
            0.0
        };
        if g.dwell_ms >= 30_000 {
            near
        } else {
            near / 2.0
        }
    });
    PresenceScore {
        score: 1.0 - (1.0 - beacon) * (1.0 - gps_c),
        beacon_component: beacon,
        gps_component: gps_c,
        closest_beacon_m: closest,
    }
}

/// What an attempt counts as in the metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttemptClass {
    Delivered,
    /// A failed attempt with the courier at the door (or a failure that needs no presence).
    RealFailure,
    /// "Customer absent" with no presence evidence: not a real attempt.
    NoRealAttempt,
}

pub fn classify(outcome: &AttemptOutcome, presence: &PresenceScore) -> AttemptClass {
    match outcome {
        AttemptOutcome::Delivered { .. } => AttemptClass::Delivered,
        AttemptOutcome::Failed {
            reason: FailureReason::CustomerAbsent,
            ..
        } if !presence.is_present() => AttemptClass::NoRealAttempt,
        AttemptOutcome::Failed { .. } => AttemptClass::RealFailure,
    }
}

/// First-attempt metrics with no-real-attempts reported apart.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct FirstAttemptMetrics {
    pub first_attempts: u32,
    pub delivered: u32,
    pub real_failures: u32,
    pub no_real_attempts: u32,
}

impl FirstAttemptMetrics {
    pub fn add(&mut self, class: AttemptClass) {
        self.first_attempts += 1;
        match class {
            AttemptClass::Delivered => self.delivered += 1,
            AttemptClass::RealFailure => self.real_failures += 1,
            AttemptClass::NoRealAttempt => self.no_real_attempts += 1,
        }
    }
    /// Success among first attempts that really happened.
    pub fn success_rate(&self) -> Option<f64> {
        let real = self.delivered + self.real_failures;
        (real > 0).then(|| f64::from(self.delivered) / f64::from(real))
    }
}
