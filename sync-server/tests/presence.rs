//! Presence scores from what devices synced: the stored sightings and location fixes of an
//! attempt (on the server clock, whatever the device's clock said) decide the score, and a
//! "customer absent" without presence is counted apart in the dashboard metrics.

use doorstep_server::clock::ManualClock;
use doorstep_server::presence::presence_report;
use doorstep_server::seed::{SeedOptions, seed_demo};
use doorstep_server::service::App;
use doorstep_server::store::sqlite::SqliteStore;
use doorstep_server::store::{RouteAccess, Store};
use doorstep_shared::event::{
    ArrivedAtStop, AttemptOutcome, BeaconProtocol, BeaconSighted, DeliveryAttempted, EventEnvelope,
    EventPayload, GeoPoint, LocationFixed, ParcelScanned, ScanPhase,
};
use doorstep_shared::intent::intent_key;
use doorstep_shared::presence::{AttemptClass, PRESENCE_THRESHOLD};
use doorstep_shared::protocol::{EnrollRequest, PushRequest, PushStatus};
use doorstep_shared::{DeviceId, EventId, FailureReason, HlcStamp, StopId};
use std::sync::Arc;

const T0: u64 = 1_780_000_000_000;
/// The device's clock runs this far ahead of the server's.
const FAST_MS: u64 = 3_600_000;

fn env(device: DeviceId, seq: u64, device_ms: u64, payload: EventPayload) -> EventEnvelope {
    EventEnvelope {
        event_id: EventId::from_parts(device_ms, [seq as u8; 10]),
        device_id: device,
        device_seq: seq,
        intent_key: intent_key(&payload, &device),
        schema_version: 1,
        device_time_ms: device_ms,
        hlc: HlcStamp {
            wall_ms: device_ms,
            logical: 0,
        },
        blob_digests: vec![],
        payload,
    }
}

fn absent(stop: StopId) -> EventPayload {
    EventPayload::DeliveryAttempted(DeliveryAttempted {
        stop_id: stop,
        attempt: 1,
        outcome: AttemptOutcome::Failed {
            reason: FailureReason::CustomerAbsent,
            detail: None,
        },
    })
}

fn fix(at: GeoPoint, fix_ms: u64) -> EventPayload {
    EventPayload::LocationFixed(LocationFixed {
        location: at,
        accuracy_m: 5.0,
        fix_time_ms: fix_ms,
    })
}

#[tokio::test]
async fn a_fast_clocked_device_at_the_door_is_present_and_one_elsewhere_is_no_real_attempt() {
    let clock = Arc::new(ManualClock::new(T0));
    let app = Arc::new(App::new(
        Arc::new(SqliteStore::open_in_memory().expect("store")),
        clock,
    ));
    let depot = GeoPoint {
        lat: 52.5,
        lon: 13.4,
    };
    let seed = seed_demo(
        &app,
        &SeedOptions {
            couriers: 1,
            stops_per_route: 3,
            seed: 5,
            day: "2026-06-01".into(),
            day_start_ms: T0,
            depot,
        },
    )
    .await
    .expect("seed");
    let enrolled = app
        .enroll(EnrollRequest {
            code: seed.couriers[0].enrollment_code.clone(),
            device_name: "fast clock".into(),
            public_key: None,
        })
        .await
        .expect("enroll");
    let auth = app
        .device_for_token(Some(&enrolled.token))
        .await
        .expect("auth");
    let dev = enrolled.device_id;
    let (door, away) = (seed.couriers[0].stops[0], seed.couriers[0].stops[1]);
    let door_at = app
        .store
        .stop_context(door)
        .expect("context")
        .expect("planned")
        .stop
        .location;
    let plan = match app
        .store
        .route_for_courier(seed.couriers[0].courier_id, seed.couriers[0].route_id)
        .expect("route")
    {
        RouteAccess::Ok(plan) => plan,
        other => panic!("{other:?}"),
    };
    let t = T0 + FAST_MS; // "now" on the device
    let mut events = Vec::new();
    for s in plan
        .stops
        .iter()
        .filter(|s| s.stop_id == door || s.stop_id == away)
    {
        for phase in [ScanPhase::Loaded, ScanPhase::OutForDelivery] {
            for parcel in &s.parcels {
                let payload = EventPayload::ParcelScanned(ParcelScanned {
                    stop_id: s.stop_id,
                    parcel: parcel.clone(),
                    phase,
                });
                let seq = events.len() as u64 + 1;
                events.push(env(dev, seq, t - 3_000_000 + seq, payload));
            }
        }
    }
    let n = events.len() as u64;
    let visits = vec![
        // Two fixes at the door 90 s apart, then "customer absent" there.
        env(dev, n + 1, t - 100_000, fix(door_at, t - 100_000)),
        env(dev, n + 2, t - 10_000, fix(door_at, t - 10_000)),
        env(
            dev,
            n + 3,
            t - 9_000,
            EventPayload::ArrivedAtStop(ArrivedAtStop {
                stop_id: door,
                attempt: 1,
                location: None,
            }),
        ),
        env(dev, n + 4, t - 5_000, absent(door)),
        // The next stop: "customer absent" 300 m from the depot with no beacon of that stop;
        // a beacon tagged with the first stop does not count for it.
        env(
            dev,
            n + 5,
            t - 4_000,
            EventPayload::BeaconSighted(BeaconSighted {
                stop_id: Some(door),
                protocol: BeaconProtocol::IBeacon,
                beacon_id: "f7826da64fa24e988024bc5b71e0893e:1:2".into(),
                window_start_ms: t - 4_000,
                sightings: 3,
                rssi_dbm: -60,
                tx_power_dbm: Some(-59),
            }),
        ),
        env(dev, n + 6, t - 2_000, absent(away)),
    ];
    events.extend(visits);
    let res = app
        .push(
            auth,
            PushRequest {
                device_id: dev,
                sent_at_ms: t,
                events,
                queue: None,
            },
        )
        .await
        .expect("push");
    assert!(
        res.results.iter().all(|r| r.status == PushStatus::Applied),
        "{:?}",
        res.results
    );

    let at_door = presence_report(app.store.as_ref(), door)
        .expect("read")
        .expect("stop");
    let a = &at_door.attempts[0];
    assert!(a.score >= PRESENCE_THRESHOLD, "{a:?}");
    assert_eq!(a.class, AttemptClass::RealFailure);
    assert_eq!((a.gps_fixes, a.gps_dwell_ms), (2, Some(90_000)));
    assert_eq!(
        a.beacon_sightings, 0,
        "the sighting came after this attempt"
    );

    let elsewhere = presence_report(app.store.as_ref(), away)
        .expect("read")
        .expect("stop");
    let b = &elsewhere.attempts[0];
    assert!(b.score < PRESENCE_THRESHOLD, "{b:?}");
    assert_eq!(b.class, AttemptClass::NoRealAttempt);
    assert_eq!(b.beacon_sightings, 0, "a beacon tagged with another stop");

    let m = app
        .store
        .dashboard_metrics(T0, 60_000, 10)
        .expect("metrics");
    assert_eq!(
        (m.totals.first_attempts, m.totals.first_attempts_no_real),
        (2, 1)
    );
    // The headline figures (`/v1/dispatch/metrics`, Prometheus gauges) use the same rule.
    let headline = app.store.first_attempt_stats().expect("stats");
    assert_eq!(
        (
            headline.first_attempts,
            headline.delivered,
            headline.no_real
        ),
        (2, 0, 1)
    );
    assert_eq!(
        headline.success_rate(),
        Some(0.0),
        "one real attempt, failed"
    );
}
