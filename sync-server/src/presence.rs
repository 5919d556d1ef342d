//! Presence scores on the server: for each attempt at a stop, the synced facts that count for
//! it are assembled (pure, below) and scored with the device's own scorer
//! ([`doorstep_shared::presence::score`]), so the dispatcher sees the score the device computed.
//!
//! What counts for attempt `n` (times on the server clock: a device time minus the clock offset
//! measured on the push that carried it):
//! - its **window** runs from the previous attempt (exclusive) — at most
//!   [`ATTEMPT_LOOKBACK_MS`] back — to the attempt itself (inclusive);
//! - **beacon sightings**: applied `beacon_sighted` events tagged with this stop whose debounce
//!   window starts inside the attempt's window. The v1 route plan carries no beacon ids, so the
//!   stop's beacons are the ones the device tagged with the stop (its own registry decided);
//!   sightings tagged with another stop, a locker or the depot never count. A sighting without
//!   a calibrated power is ranged with [`DEFAULT_TX_POWER_1M_DBM`];
//! - **GPS dwell**: applied location fixes of the attempting device, the attempt's arrival fix
//!   and its proof's fix, inside the window: the closest distance to the planned stop and the
//!   time between the first and last fix within [`DWELL_RADIUS_M`].

use doorstep_shared::dashboard::{AttemptPresence, PresenceReport};
use doorstep_shared::event::{AttemptOutcome, EventPayload, GeoPoint};
use doorstep_shared::presence::{
    self, BeaconId, BeaconRegistry, DEFAULT_TX_POWER_1M_DBM, GpsDwell, PRESENCE_THRESHOLD, Site,
    Smoothed, ground_distance_m,
};
use doorstep_shared::protocol::{PushStatus, StoredEvent};
use doorstep_shared::{DeviceId, StopId};

/// How far before an attempt its evidence may lie (when there is no earlier attempt).
pub const ATTEMPT_LOOKBACK_MS: u64 = 30 * 60_000;
/// Fixes within this distance of the stop count towards dwell.
pub const DWELL_RADIUS_M: f64 = 80.0;

/// One attempt and the server-clock window its evidence must fall in: `(start_ms, end_ms]`.
#[derive(Clone, Debug, PartialEq)]
pub struct AttemptWindow {
    pub attempt: u32,
    pub device_id: Option<DeviceId>,
    pub outcome: AttemptOutcome,
    pub start_ms: u64,
    pub end_ms: u64,
}

/// `device_ms` of `e`'s device on the server clock (offset = device − server).
fn server_ms(e: &StoredEvent, device_ms: u64) -> u64 {
    let off = e.clock_offset_ms.unwrap_or(0);
    u64::try_from(
        i64::try_from(device_ms)
            .unwrap_or(i64::MAX)
            .saturating_sub(off),
    )
    .unwrap_or(0)
}

fn event_server_ms(e: &StoredEvent) -> u64 {
    e.device_time_ms
        .map_or(e.received_at_ms, |t| server_ms(e, t))
}

fn applied(e: &StoredEvent) -> bool {
    e.status == PushStatus::Applied
}

/// The applied attempts of a stop's events, in attempt order, with their evidence windows.
pub fn attempt_windows(events: &[StoredEvent]) -> Vec<AttemptWindow> {
    let mut attempts: Vec<(u32, u64, &StoredEvent, &AttemptOutcome)> = events
        .iter()
        .filter(|e| applied(e))
        .filter_map(|e| match &e.payload {
            EventPayload::DeliveryAttempted(a) => {
                Some((a.attempt, event_server_ms(e), e, &a.outcome))
            }
            _ => None,
        })
        .collect();
    attempts.sort_by_key(|(n, ..)| *n);
    let mut prev_end: Option<u64> = None;
    attempts
        .into_iter()
        .map(|(attempt, end_ms, e, outcome)| {
            let lookback = end_ms.saturating_sub(ATTEMPT_LOOKBACK_MS);
            let start_ms = prev_end.map_or(lookback, |p| p.max(lookback));
            prev_end = Some(end_ms);
            AttemptWindow {
                attempt,
                device_id: e.device_id,
                outcome: outcome.clone(),
                start_ms,
                end_ms,
            }
        })
        .collect()
}

fn inside(w: &AttemptWindow, t: u64) -> bool {
    t > w.start_ms && t <= w.end_ms
}

/// The beacon sightings that count for attempt `w` at `stop`, and the registry of the stop's
/// beacons they imply (see the module documentation).
pub fn sightings_for(
    stop: StopId,
    w: &AttemptWindow,
    events: &[StoredEvent],
) -> (BeaconRegistry, Vec<(Smoothed, i16)>) {
    let mut registry = BeaconRegistry::default();
    let mut out = Vec::new();
    for e in events.iter().filter(|e| applied(e)) {
        let EventPayload::BeaconSighted(b) = &e.payload else {
            continue;
        };
        if b.stop_id != Some(stop) || !inside(w, server_ms(e, b.window_start_ms)) {
            continue;
        }
        let Ok(id) = b.beacon_id.parse::<BeaconId>() else {
            tracing::debug!(stop_id = %stop, beacon_id = %b.beacon_id, "unparseable beacon id skipped");
            continue;
        };
        registry.register(id, Site::Stop(stop));
        let smoothed = Smoothed {
            id,
            rssi_dbm: f64::from(b.rssi_dbm),
            hits: b.sightings,
            first_ms: b.window_start_ms,
            last_ms: b.window_start_ms,
        };
        out.push((smoothed, b.tx_power_dbm.unwrap_or(DEFAULT_TX_POWER_1M_DBM)));
    }
    (registry, out)
}

/// Every fix that counts for attempt `w`: `(server ms, point)`, from the stop's own events (the
/// attempt's arrival and proof) and the attempting device's location fixes.
pub fn fixes_for(
    w: &AttemptWindow,
    events: &[StoredEvent],
    fixes: &[StoredEvent],
) -> Vec<(u64, GeoPoint)> {
    let mut out = Vec::new();
    for e in events.iter().chain(fixes).filter(|e| applied(e)) {
        let point = match &e.payload {
            EventPayload::ArrivedAtStop(a) if a.attempt == w.attempt => {
                a.location.map(|p| (event_server_ms(e), p))
            }
            EventPayload::ProofCaptured(p) if p.attempt == w.attempt => {
                p.location.map(|l| (event_server_ms(e), l))
            }
            EventPayload::LocationFixed(f) if e.device_id == w.device_id => {
                Some((server_ms(e, f.fix_time_ms), f.location))
            }
            _ => None,
        };
        // The arrival and proof belong to the attempt by number; a periodic fix by time.
        if let Some((t, p)) = point
            && (!matches!(e.payload, EventPayload::LocationFixed(_)) || inside(w, t))
        {
            out.push((t, p));
        }
    }
    out.sort_by_key(|(t, _)| *t);
    out
}

/// GPS dwell at `stop_at` from the fixes of an attempt, `None` without a fix.
pub fn gps_dwell(stop_at: GeoPoint, fixes: &[(u64, GeoPoint)]) -> Option<GpsDwell> {
    let distances: Vec<(u64, f64)> = fixes
        .iter()
        .map(|(t, p)| (*t, ground_distance_m(*p, stop_at)))
        .collect();
    let closest = distances.iter().map(|(_, d)| *d).reduce(f64::min)?;
    let near: Vec<u64> = distances
        .iter()
        .filter(|(_, d)| *d <= DWELL_RADIUS_M)
        .map(|(t, _)| *t)
        .collect();
    let dwell_ms = match (near.iter().min(), near.iter().max()) {
        (Some(a), Some(b)) => b - a,
        _ => 0,
    };
    Some(GpsDwell {
        distance_m: closest,
        dwell_ms,
    })
}

/// Scores every attempt of `stop`. `fixes_of` returns the attempting device's location fixes
/// around a window (the pure filtering above decides which count).
pub fn score_stop<E>(
    stop: StopId,
    stop_at: Option<GeoPoint>,
    events: &[StoredEvent],
    mut fixes_of: impl FnMut(&AttemptWindow) -> Result<Vec<StoredEvent>, E>,
) -> Result<PresenceReport, E> {
    let mut attempts = Vec::new();
    for w in attempt_windows(events) {
        let (registry, sightings) = sightings_for(stop, &w, events);
        let device_fixes = match w.device_id {
            Some(_) => fixes_of(&w)?,
            None => Vec::new(),
        };
        let fixes = fixes_for(&w, events, &device_fixes);
        let gps = stop_at.and_then(|at| gps_dwell(at, &fixes));
        let s = presence::score(stop, &registry, &sightings, gps);
        tracing::debug!(stop_id = %stop, attempt = w.attempt, score = s.score, "presence scored");
        attempts.push(AttemptPresence {
            attempt: w.attempt,
            score: s.score,
            present: s.is_present(),
            class: presence::classify(&w.outcome, &s),
            beacon_component: s.beacon_component,
            gps_component: s.gps_component,
            beacon_sightings: u32::try_from(sightings.len()).unwrap_or(u32::MAX),
            closest_beacon_m: s.closest_beacon_m,
            gps_fixes: u32::try_from(fixes.len()).unwrap_or(u32::MAX),
            gps_closest_m: gps.map(|g| g.distance_m),
            gps_dwell_ms: gps.map(|g| g.dwell_ms),
        });
    }
    Ok(PresenceReport {
        stop_id: stop,
        threshold: PRESENCE_THRESHOLD,
        attempts,
    })
}

pub use crate::store::LocationLog;

/// The presence report of `stop`, `None` when the stop does not exist.
pub fn presence_report<S: crate::store::Store>(
    store: &S,
    stop: StopId,
) -> crate::store::StoreResult<Option<PresenceReport>> {
    let _span = tracing::info_span!("presence", stop_id = %stop).entered();
    let Some(detail) = store.stop_detail(stop)? else {
        return Ok(None);
    };
    let stop_at = store.stop_context(stop)?.map(|c| c.stop.location);
    score_stop(stop, stop_at, &detail.events, |w| match w.device_id {
        Some(d) => store.location_fixes(d, w.start_ms, w.end_ms),
        None => Ok(Vec::new()),
    })
    .map(Some)
}

#[cfg(test)]
#[path = "presence_tests.rs"]
mod tests;
