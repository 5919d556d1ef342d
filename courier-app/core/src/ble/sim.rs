//! A seeded simulated beacon source: beacons at positions, a courier walking a path, RSSI from
//! the log-distance model with Gaussian-ish noise, encoded as real advertisement bytes so the
//! same parsers run as with a radio.

use super::parse::{APPLE_COMPANY_ID, BeaconId, EDDYSTONE_UUID16};
use super::{Advertisement, BleError, ScanSource};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A simulated beacon at (x, y) metres, with its calibrated power at 1 m.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SimBeacon {
    pub id: BeaconId,
    pub x: f64,
    pub y: f64,
    pub tx_1m_dbm: i8,
}

/// Manufacturer or service data entries: (company id or 16-bit UUID, bytes after it).
pub type AdFields = Vec<(u16, Vec<u8>)>;

/// The manufacturer or service data a real beacon of `id` would send.
pub fn encode(id: &BeaconId, tx_1m_dbm: i8) -> (AdFields, AdFields) {
    match id {
        BeaconId::IBeacon { uuid, major, minor } => {
            let mut d = vec![0x02, 0x15];
            d.extend_from_slice(uuid);
            d.extend_from_slice(&major.to_be_bytes());
            d.extend_from_slice(&minor.to_be_bytes());
            d.push(tx_1m_dbm as u8);
            (vec![(APPLE_COMPANY_ID, d)], vec![])
        }
        BeaconId::EddystoneUid {
            namespace,
            instance,
        } => {
            let mut d = vec![0x00, (tx_1m_dbm as i16 + 41).clamp(-128, 127) as i8 as u8];
            d.extend_from_slice(namespace);
            d.extend_from_slice(instance);
            d.extend_from_slice(&[0, 0]);
            (vec![], vec![(EDDYSTONE_UUID16, d)])
        }
    }
}

pub struct SimulatedSource {
    rng: StdRng,
    beacons: Vec<SimBeacon>,
    /// (time, x, y) of the courier; one scan round per point.
    path: Vec<(u64, f64, f64)>,
    pending: Vec<Advertisement>,
    path_loss_exponent: f64,
    range_m: f64,
}

impl SimulatedSource {
    pub fn new(seed: u64, beacons: Vec<SimBeacon>, path: Vec<(u64, f64, f64)>) -> Self {
        let mut path = path;
        path.reverse();
        Self {
            rng: StdRng::seed_from_u64(seed),
            beacons,
            path,
            pending: Vec::new(),
            path_loss_exponent: 2.5,
            range_m: 40.0,
        }
    }
}

#[async_trait::async_trait]
impl ScanSource for SimulatedSource {
    async fn next(&mut self) -> Result<Option<Advertisement>, BleError> {
        while self.pending.is_empty() {
            let Some((t, x, y)) = self.path.pop() else {
                return Ok(None);
            };
            for b in &self.beacons {
                let d = ((b.x - x).powi(2) + (b.y - y).powi(2)).sqrt().max(0.1);
                if d > self.range_m || self.rng.random_bool(0.15) {
                    continue; // out of range, or a lost packet
                }
                let noise: f64 = (0..3).map(|_| self.rng.random_range(-2.0..2.0)).sum();
                let rssi =
                    f64::from(b.tx_1m_dbm) - 10.0 * self.path_loss_exponent * d.log10() + noise;
                let (manufacturer_data, service_data) = encode(&b.id, b.tx_1m_dbm);
                self.pending.push(Advertisement {
                    at_ms: t,
                    rssi_dbm: rssi.round().clamp(-127.0, 20.0) as i16,
                    manufacturer_data,
                    service_data,
                });
            }
        }
        Ok(self.pending.pop())
    }
}
