//! Proof of presence, shared by the device and the server so both compute the same score from
//! the same facts: beacons registered per stop, locker and depot; a presence score per attempt
//! from debounced sightings (and GPS dwell where present); and the classification of
//! "failed — customer absent" attempts without presence evidence as no real attempt, kept
//! apart from real failed attempts in first-attempt metrics. Pure: no I/O, no clock.

use crate::event::{AttemptOutcome, BeaconProtocol, GeoPoint};
use crate::ids::StopId;
use crate::reason::FailureReason;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

/// Scores at or above this count as presence evidence.
pub const PRESENCE_THRESHOLD: f64 = 0.5;
/// Log-distance path-loss exponent used to range a beacon from its RSSI.
pub const PATH_LOSS_EXPONENT: f64 = 2.5;
/// Calibrated power at 1 m assumed for a sighting that reports none (the common iBeacon
/// factory value).
pub const DEFAULT_TX_POWER_1M_DBM: i16 = -59;

/// Which beacon this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BeaconId {
    IBeacon {
        uuid: [u8; 16],
        major: u16,
        minor: u16,
    },
    EddystoneUid {
        namespace: [u8; 10],
        instance: [u8; 6],
    },
}

impl BeaconId {
    pub fn protocol(&self) -> BeaconProtocol {
        match self {
            Self::IBeacon { .. } => BeaconProtocol::IBeacon,
            Self::EddystoneUid { .. } => BeaconProtocol::EddystoneUid,
        }
    }
}

impl fmt::Display for BeaconId {
    /// `uuid:major:minor` or `namespace:instance`, lower-case hex (the event's `beacon_id`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::IBeacon { uuid, major, minor } => {
                write!(f, "{}:{major}:{minor}", hex::encode(uuid))
            }
            Self::EddystoneUid {
                namespace,
                instance,
            } => write!(f, "{}:{}", hex::encode(namespace), hex::encode(instance)),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is neither `uuid:major:minor` nor `namespace:instance` in hex")]
pub struct BadBeaconId(pub String);

fn hex_array<const N: usize>(s: &str) -> Option<[u8; N]> {
    hex::decode(s).ok()?.try_into().ok()
}

impl FromStr for BeaconId {
    type Err = BadBeaconId;
    /// The inverse of [`fmt::Display`] (hex in either case).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadBeaconId(s.to_owned());
        let parts: Vec<&str> = s.split(':').collect();
        match parts.as_slice() {
            [uuid, major, minor] => Ok(Self::IBeacon {
                // Also in the canonical dashed UUID form.
                uuid: hex_array(&uuid.replace('-', "")).ok_or_else(bad)?,
                major: major.parse().map_err(|_| bad())?,
                minor: minor.parse().map_err(|_| bad())?,
            }),
            [namespace, instance] => Ok(Self::EddystoneUid {
                namespace: hex_array(namespace).ok_or_else(bad)?,
                instance: hex_array(instance).ok_or_else(bad)?,
            }),
            _ => Err(bad()),
        }
    }
}

/// Distance in metres from the log-distance path-loss model:
/// `d = 10 ^ ((tx_1m − rssi) / (10 · n))`, `n` ≈ 2 in free space, 2.5–4 indoors.
pub fn distance_m(tx_power_1m_dbm: i16, rssi_dbm: f64, path_loss_exponent: f64) -> f64 {
    10f64.powf((f64::from(tx_power_1m_dbm) - rssi_dbm) / (10.0 * path_loss_exponent))
}

/// Great-circle distance between two points in metres (haversine, mean Earth radius).
pub fn ground_distance_m(a: GeoPoint, b: GeoPoint) -> f64 {
    let (la1, la2) = (a.lat.to_radians(), b.lat.to_radians());
    let dlat = la2 - la1;
    let dlon = (b.lon - a.lon).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + la1.cos() * la2.cos() * (dlon / 2.0).sin().powi(2);
    2.0 * 6_371_000.0 * h.sqrt().min(1.0).asin()
}

/// A debounced, smoothed sighting.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Smoothed {
    pub id: BeaconId,
    pub rssi_dbm: f64,
    pub hits: u32,
    pub first_ms: u64,
    pub last_ms: u64,
}

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
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beacon_ids_round_trip_through_the_event_text() {
        let ib = BeaconId::IBeacon {
            uuid: [0xAB; 16],
            major: 1,
            minor: 65_535,
        };
        let ed = BeaconId::EddystoneUid {
            namespace: [0x0C; 10],
            instance: [0xF0; 6],
        };
        for id in [ib, ed] {
            assert_eq!(id.to_string().parse::<BeaconId>(), Ok(id));
        }
        let dashed = "f7826da6-4fa2-4e98-8024-bc5b71e0893e:100:7".parse::<BeaconId>();
        assert_eq!(
            dashed.map(|id| id.to_string()),
            Ok("f7826da64fa24e988024bc5b71e0893e:100:7".to_owned())
        );
        assert!("abab:1".parse::<BeaconId>().is_err(), "short uuid");
        assert!(
            format!("{}:1:70000", "ab".repeat(16))
                .parse::<BeaconId>()
                .is_err()
        );
        assert!("no-colons".parse::<BeaconId>().is_err());
    }

    #[test]
    fn a_beacon_of_another_site_scores_nothing_and_gps_alone_can_pass() {
        let stop = StopId::from_parts(1_780_000_000_000, [1; 10]);
        let id = BeaconId::EddystoneUid {
            namespace: [1; 10],
            instance: [2; 6],
        };
        let seen = Smoothed {
            id,
            rssi_dbm: -59.0,
            hits: 5,
            first_ms: 0,
            last_ms: 0,
        };
        let mut reg = BeaconRegistry::default();
        reg.register(id, Site::Depot);
        assert_eq!(score(stop, &reg, &[(seen, -59)], None).score, 0.0);
        reg.register(id, Site::Stop(stop));
        let at_door = score(stop, &reg, &[(seen, -59)], None);
        assert!(at_door.is_present() && at_door.closest_beacon_m == Some(1.0));
        let gps = GpsDwell {
            distance_m: 10.0,
            dwell_ms: 60_000,
        };
        assert!(score(stop, &BeaconRegistry::default(), &[], Some(gps)).is_present());
    }
}
