//! Debouncing and RSSI smoothing: single stray packets do not make a sighting, and the RSSI
//! used for distance is an exponentially weighted moving average.

use super::parse::BeaconId;
use std::collections::HashMap;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SmoothingConfig {
    /// Weight of a new reading in the moving average (0 < alpha ≤ 1).
    pub alpha: f64,
    /// Readings needed within `window_ms` before a beacon counts as seen.
    pub min_hits: u32,
    pub window_ms: u64,
    /// A beacon not heard for this long is gone.
    pub lost_after_ms: u64,
}

impl Default for SmoothingConfig {
    fn default() -> Self {
        Self {
            alpha: 0.3,
            min_hits: 2,
            window_ms: 10_000,
            lost_after_ms: 15_000,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
struct Track {
    first_ms: u64,
    last_ms: u64,
    hits: u32,
    rssi: f64,
    confirmed: bool,
}

/// A debounced, smoothed sighting (shared with the server's presence scoring).
pub use doorstep_shared::presence::Smoothed;

#[derive(Debug, Default)]
pub struct Debouncer {
    cfg: SmoothingConfig,
    tracks: HashMap<BeaconId, Track>,
}

impl Debouncer {
    pub fn new(cfg: SmoothingConfig) -> Self {
        Self {
            cfg,
            tracks: HashMap::new(),
        }
    }

    /// Feeds one reading; returns the smoothed sighting once the beacon is confirmed.
    pub fn observe(&mut self, id: BeaconId, rssi_dbm: i16, at_ms: u64) -> Option<Smoothed> {
        let cfg = self.cfg;
        let t = self.tracks.entry(id).or_insert(Track {
            first_ms: at_ms,
            last_ms: at_ms,
            hits: 0,
            rssi: f64::from(rssi_dbm),
            confirmed: false,
        });
        if at_ms.saturating_sub(t.last_ms) > cfg.lost_after_ms {
            *t = Track {
                first_ms: at_ms,
                last_ms: at_ms,
                hits: 0,
                rssi: f64::from(rssi_dbm),
                confirmed: false,
            };
        }
        t.hits += 1;
        t.rssi = cfg.alpha * f64::from(rssi_dbm) + (1.0 - cfg.alpha) * t.rssi;
        t.last_ms = at_ms.max(t.last_ms);
        if !t.confirmed && t.hits >= cfg.min_hits && t.last_ms - t.first_ms <= cfg.window_ms {
            t.confirmed = true;
        }
        if !t.confirmed && t.last_ms - t.first_ms > cfg.window_ms {
            // Too sparse: restart the window from this reading.
            t.first_ms = at_ms;
            t.hits = 1;
        }
        t.confirmed.then_some(Smoothed {
            id,
            rssi_dbm: t.rssi,
            hits: t.hits,
            first_ms: t.first_ms,
            last_ms: t.last_ms,
        })
    }

    /// Forgets beacons not heard since `now_ms − lost_after_ms`; returns the ones that left.
    pub fn expire(&mut self, now_ms: u64) -> Vec<BeaconId> {
        let lost = self.cfg.lost_after_ms;
        let gone: Vec<BeaconId> = self
            .tracks
            .iter()
            .filter(|(_, t)| now_ms.saturating_sub(t.last_ms) > lost)
            .map(|(id, _)| *id)
            .collect();
        for id in &gone {
            self.tracks.remove(id);
        }
        gone
    }
}
