//! Which synced facts count for which attempt, and the score they add up to.

use super::*;
use doorstep_shared::event::{
    ArrivedAtStop, BeaconProtocol, BeaconSighted, DeliveryAttempted, LocationFixed,
};
use doorstep_shared::presence::AttemptClass;
use doorstep_shared::{EventId, FailureReason, HlcStamp};
use std::convert::Infallible;

const T0: u64 = 1_780_000_000_000;
const STOP_AT: GeoPoint = GeoPoint {
    lat: 52.52,
    lon: 13.405,
};
/// About 300 m north of the stop.
const FAR: GeoPoint = GeoPoint {
    lat: 52.5227,
    lon: 13.405,
};

fn stop(n: u8) -> StopId {
    StopId::from_parts(T0, [n; 10])
}

fn device(n: u8) -> DeviceId {
    DeviceId::from_parts(T0, [n; 10])
}

/// A stored device event at device time `at` pushed by `dev` with clock offset `offset`.
fn stored(dev: u8, at: u64, offset: i64, payload: EventPayload) -> StoredEvent {
    StoredEvent {
        event_id: EventId::from_parts(at, [dev; 10]),
        device_id: Some(device(dev)),
        device_seq: Some(1),
        intent_key: String::new(),
        device_time_ms: Some(at),
        received_at_ms: at,
        clock_offset_ms: Some(offset),
        hlc: HlcStamp {
            wall_ms: at,
            logical: 0,
        },
        status: PushStatus::Applied,
        code: None,
        payload,
    }
}

fn absent() -> AttemptOutcome {
    AttemptOutcome::Failed {
        reason: FailureReason::CustomerAbsent,
        detail: None,
    }
}

fn attempt(at: u64, n: u32) -> StoredEvent {
    stored(
        1,
        at,
        0,
        EventPayload::DeliveryAttempted(DeliveryAttempted {
            stop_id: stop(1),
            attempt: n,
            outcome: absent(),
        }),
    )
}

const BEACON: &str = "f7826da64fa24e988024bc5b71e0893e:1:2";

fn sighting(s: StopId, at: u64, rssi: i16) -> StoredEvent {
    stored(
        1,
        at,
        0,
        EventPayload::BeaconSighted(BeaconSighted {
            stop_id: Some(s),
            protocol: BeaconProtocol::IBeacon,
            beacon_id: BEACON.to_owned(),
            window_start_ms: at,
            sightings: 4,
            rssi_dbm: rssi,
            tx_power_dbm: Some(-59),
        }),
    )
}

fn fix(dev: u8, at: u64, p: GeoPoint) -> StoredEvent {
    stored(
        dev,
        at,
        0,
        EventPayload::LocationFixed(LocationFixed {
            location: p,
            accuracy_m: 5.0,
            fix_time_ms: at,
        }),
    )
}

fn report(events: &[StoredEvent], fixes: &[StoredEvent]) -> PresenceReport {
    let r: Result<_, Infallible> =
        score_stop(stop(1), Some(STOP_AT), events, |_| Ok(fixes.to_vec()));
    r.unwrap_or_else(|e| match e {})
}

#[test]
fn an_attempt_window_runs_from_the_previous_attempt_and_corrects_the_device_clock() {
    let mut second = attempt(T0 + 120_000, 2);
    // This device's clock runs 60 s fast: its attempt happened at T0 + 60 s server time.
    second.clock_offset_ms = Some(60_000);
    let mut rejected = attempt(T0 + 90_000, 3);
    rejected.status = PushStatus::Rejected;
    let w = attempt_windows(&[second, attempt(T0, 1), rejected]);
    assert_eq!(w.len(), 2, "the rejected attempt has no window");
    assert_eq!(
        (w[0].attempt, w[0].start_ms, w[0].end_ms),
        (1, T0 - ATTEMPT_LOOKBACK_MS, T0)
    );
    assert_eq!(
        (w[1].attempt, w[1].start_ms, w[1].end_ms),
        (2, T0, T0 + 60_000)
    );
}

#[test]
fn only_this_stops_sightings_inside_the_attempt_window_count() {
    let events = vec![
        sighting(stop(1), T0 - ATTEMPT_LOOKBACK_MS - 1, -59), // before the lookback
        sighting(stop(1), T0 - 1_000, -60),                   // attempt 1
        attempt(T0, 1),
        sighting(stop(2), T0 + 10_000, -50), // another stop's beacon
        sighting(stop(1), T0 + 20_000, -70), // attempt 2
        attempt(T0 + 30_000, 2),
        sighting(stop(1), T0 + 40_000, -40), // after the last attempt
    ];
    let w = attempt_windows(&events);
    let (reg1, first) = sightings_for(stop(1), &w[0], &events);
    let (_, second) = sightings_for(stop(1), &w[1], &events);
    assert_eq!(
        first.iter().map(|(s, _)| s.rssi_dbm).collect::<Vec<_>>(),
        [-60.0]
    );
    assert_eq!(
        second.iter().map(|(s, _)| s.rssi_dbm).collect::<Vec<_>>(),
        [-70.0]
    );
    let id: BeaconId = BEACON.parse().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(reg1.site(&id), Some(&Site::Stop(stop(1))));
}

#[test]
fn a_sighting_without_calibrated_power_is_ranged_with_the_default() {
    let mut s = sighting(stop(1), T0 - 1_000, -59);
    if let EventPayload::BeaconSighted(b) = &mut s.payload {
        b.tx_power_dbm = None;
    }
    let events = vec![s, attempt(T0, 1)];
    let w = attempt_windows(&events);
    let (_, seen) = sightings_for(stop(1), &w[0], &events);
    assert_eq!(
        seen.first().map(|(_, tx)| *tx),
        Some(DEFAULT_TX_POWER_1M_DBM)
    );
}

#[test]
fn gps_counts_the_attempting_devices_fixes_in_the_window_and_the_attempts_arrival() {
    let arrival = stored(
        1,
        T0 - 100_000,
        0,
        EventPayload::ArrivedAtStop(ArrivedAtStop {
            stop_id: stop(1),
            attempt: 1,
            location: Some(STOP_AT),
        }),
    );
    let events = vec![arrival, attempt(T0, 1)];
    let fixes = vec![
        fix(1, T0 - 40_000, STOP_AT),
        fix(2, T0 - 10_000, STOP_AT), // another device
        fix(1, T0 + 5_000, STOP_AT),  // after the attempt
    ];
    let w = attempt_windows(&events);
    let counted = fixes_for(&w[0], &events, &fixes);
    assert_eq!(
        counted.iter().map(|(t, _)| *t).collect::<Vec<_>>(),
        [T0 - 100_000, T0 - 40_000]
    );
    let dwell = gps_dwell(STOP_AT, &counted);
    assert_eq!(dwell.map(|g| g.dwell_ms), Some(60_000));
    // A fix far away is the closest distance but no dwell.
    let far = gps_dwell(STOP_AT, &[(T0, FAR), (T0 + 60_000, FAR)]);
    assert!(far.is_some_and(|g| g.distance_m > 250.0 && g.dwell_ms == 0));
}

#[test]
fn customer_absent_without_evidence_is_no_real_attempt_and_a_close_beacon_makes_it_real() {
    let bare = report(&[attempt(T0, 1)], &[]);
    assert_eq!(bare.threshold, PRESENCE_THRESHOLD);
    let a = &bare.attempts[0];
    assert_eq!(
        (a.score, a.present, a.class),
        (0.0, false, AttemptClass::NoRealAttempt)
    );
    assert_eq!(
        (a.beacon_sightings, a.gps_fixes, a.gps_dwell_ms),
        (0, 0, None)
    );

    let at_door = report(&[sighting(stop(1), T0 - 5_000, -62), attempt(T0, 1)], &[]);
    let a = &at_door.attempts[0];
    assert!(a.score >= PRESENCE_THRESHOLD && a.present, "{a:?}");
    assert_eq!(a.class, AttemptClass::RealFailure);
    assert!(a.closest_beacon_m.is_some_and(|d| d < 5.0));

    // Waiting at the door 2 minutes by GPS alone is evidence too; a far fix is not.
    let dwell = report(
        &[attempt(T0, 1)],
        &[fix(1, T0 - 120_000, STOP_AT), fix(1, T0 - 1_000, STOP_AT)],
    );
    assert!(dwell.attempts[0].present);
    let far = report(&[attempt(T0, 1)], &[fix(1, T0 - 1_000, FAR)]);
    assert_eq!(far.attempts[0].class, AttemptClass::NoRealAttempt);
}
