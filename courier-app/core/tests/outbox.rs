//! The outbox and the device API: durability, dedupe, gap-free sequence, corrupt files,
//! upgrades, clocks.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns panic on purpose

mod common;

use common::*;
use courier_core::testing::FakeServer;
use courier_core::{
    AppendOutcome, Device, ManualClock, OutboxError, Refusal, RoundOutcome, SyncConfig, SyncEngine,
};
use doorstep_shared::event::{AttemptOutcome, DeliveryMethod, ScanPhase};
use doorstep_shared::{EventEnvelope, FailureReason, StopStatus};
use rand::{Rng, SeedableRng};
use std::sync::Arc;

fn recorded(o: AppendOutcome) -> doorstep_shared::EventEnvelope {
    match o {
        AppendOutcome::Recorded(e) => e,
        other => panic!("expected a new event, got {other:?}"),
    }
}

#[tokio::test]
async fn events_survive_drop_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let server = Arc::new(FakeServer::new(clock.clone()));
    let device = enrolled(&dir, &server, clock.clone(), 3).await;
    let a = recorded(
        device
            .scan_parcel(&parcel(0, 0), ScanPhase::Loaded)
            .unwrap(),
    );
    let b = recorded(device.arrive(stop_id(0), None).unwrap());
    drop(device);

    let reopened = Device::open(dir.path().join("outbox.db"), clock, 8).unwrap();
    assert_eq!(reopened.events().unwrap(), vec![a, b]);
    let route = reopened.route(None).unwrap().unwrap();
    assert_eq!(route.stops.len(), 3);
    assert_eq!(route.stops[0].status, StopStatus::Arrived);
    assert_eq!(route.stops[0].unsynced_events, 2);
    let status = reopened.sync_status().unwrap();
    assert_eq!(status.queued, 2);
    assert!(reopened.integrity_ok().unwrap());
}

#[tokio::test]
async fn double_scan_and_double_tap_make_one_event() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let server = Arc::new(FakeServer::new(clock.clone()));
    let device = enrolled(&dir, &server, clock.clone(), 2).await;

    let first = recorded(
        device
            .scan_parcel(&parcel(1, 0), ScanPhase::Loaded)
            .unwrap(),
    );
    clock.advance(300);
    assert_eq!(
        device
            .scan_parcel(&parcel(1, 0), ScanPhase::Loaded)
            .unwrap(),
        AppendOutcome::Duplicate(first.clone())
    );
    let arrive = recorded(device.arrive(stop_id(1), None).unwrap());
    assert_eq!(
        device.arrive(stop_id(1), None).unwrap(),
        AppendOutcome::Duplicate(arrive)
    );
    let delivered = AttemptOutcome::Delivered {
        method: DeliveryMethod::HandedToRecipient,
        recipient: Some("Ana".into()),
    };
    let d = recorded(
        device
            .record_attempt(stop_id(1), 1, delivered.clone())
            .unwrap(),
    );
    assert_eq!(
        device.record_attempt(stop_id(1), 1, delivered).unwrap(),
        AppendOutcome::Duplicate(d.clone())
    );
    // Same attempt, different outcome: refused, not a second event.
    let failed = AttemptOutcome::Failed {
        reason: FailureReason::CustomerAbsent,
        detail: None,
    };
    assert_eq!(
        device.record_attempt(stop_id(1), 1, failed).unwrap(),
        AppendOutcome::Refused(Refusal::IntentTaken {
            existing_seq: d.device_seq
        })
    );
    let note = device.new_note_id();
    let n = recorded(device.add_note(stop_id(1), note, "left with care").unwrap());
    assert_eq!(
        device.add_note(stop_id(1), note, "left with care").unwrap(),
        AppendOutcome::Duplicate(n)
    );
    let e = recorded(
        device
            .edit_access_notes(stop_id(1), "gate code 1234")
            .unwrap(),
    );
    assert_eq!(
        device
            .edit_access_notes(stop_id(1), "gate code 1234")
            .unwrap(),
        AppendOutcome::Duplicate(e)
    );
    assert_eq!(device.events().unwrap().len(), 5);
    let detail = device.stop(stop_id(1)).unwrap().unwrap();
    assert_eq!(detail.summary.status, StopStatus::Delivered);
    assert_eq!(detail.view.access_notes, vec!["gate code 1234".to_owned()]);
    assert_eq!(detail.events.len(), 5);
}

#[tokio::test]
async fn commands_are_validated_against_the_state_machine() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let server = Arc::new(FakeServer::new(clock.clone()));
    let device = enrolled(&dir, &server, clock.clone(), 2).await;
    // Cannot arrive at a stop that was never loaded.
    assert!(matches!(
        device.arrive(stop_id(0), None).unwrap(),
        AppendOutcome::Refused(Refusal::Illegal(_))
    ));
    let unknown = doorstep_shared::ParcelBarcode::parse("NOT-ON-ROUTE").unwrap();
    assert!(matches!(
        device.scan_parcel(&unknown, ScanPhase::Loaded).unwrap(),
        AppendOutcome::Refused(Refusal::UnknownParcel { .. })
    ));
    recorded(
        device
            .scan_parcel(&parcel(0, 0), ScanPhase::Loaded)
            .unwrap(),
    );
    assert!(matches!(
        device
            .record_attempt(
                stop_id(0),
                2,
                AttemptOutcome::Failed {
                    reason: FailureReason::NoAccess,
                    detail: None
                }
            )
            .unwrap(),
        AppendOutcome::Refused(Refusal::AttemptOutOfOrder {
            requested: 2,
            next: 1
        })
    ));
    recorded(
        device
            .record_attempt(
                stop_id(0),
                1,
                AttemptOutcome::Failed {
                    reason: FailureReason::AddressInvalid,
                    detail: None,
                },
            )
            .unwrap(),
    );
    // A terminal failure: no more attempts from the street.
    assert!(matches!(
        device
            .record_attempt(
                stop_id(0),
                2,
                AttemptOutcome::Delivered {
                    method: DeliveryMethod::ParcelLocker,
                    recipient: None
                }
            )
            .unwrap(),
        AppendOutcome::Refused(Refusal::Illegal(_))
    ));
    assert_eq!(device.events().unwrap().len(), 2);
}

#[test]
fn sequence_is_gap_free_under_concurrent_commands() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let server = Arc::new(FakeServer::new(clock.clone()));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let shared = rt.block_on(enrolled(&dir, &server, clock.clone(), 4));
    // Four threads share one handle; four more open their own connection to the same file.
    let mut handles = Vec::new();
    for t in 0..8u64 {
        let device = if t < 4 {
            shared.clone()
        } else {
            Device::open(dir.path().join("outbox.db"), clock.clone(), 100 + t).unwrap()
        };
        handles.push(std::thread::spawn(move || {
            for i in 0..25 {
                let stop = stop_id((t as usize + i) % 4);
                let note = device.new_note_id();
                let o = device
                    .add_note(stop, note, &format!("note {t}/{i}"))
                    .unwrap();
                assert!(matches!(o, AppendOutcome::Recorded(_)), "{o:?}");
            }
        }));
    }
    for h in handles {
        h.join().unwrap();
    }
    let events = shared.events().unwrap();
    assert_eq!(events.len(), 200);
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.device_seq, i as u64 + 1, "gap or duplicate at {i}");
    }
    for w in events.windows(2) {
        assert!(w[0].hlc < w[1].hlc, "HLC must follow device_seq");
    }
    assert!(shared.integrity_ok().unwrap());
}

#[test]
fn a_corrupt_file_is_refused_and_left_untouched() {
    for seed in seeds() {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        // Random bytes, and random bytes behind a valid SQLite header.
        let mut random = vec![0u8; 64 * 1024];
        rng.fill(&mut random[..]);
        let mut with_header = b"SQLite format 3\0".to_vec();
        with_header.extend_from_slice(&random[16..]);
        for (name, bytes) in [("random.db", random), ("header.db", with_header)] {
            let path = dir.path().join(name);
            std::fs::write(&path, &bytes).unwrap();
            let clock = Arc::new(ManualClock::new(T0));
            let err = Device::open(&path, clock, 1).unwrap_err();
            let courier_core::DeviceError::Outbox(err) = err;
            assert!(
                matches!(
                    err,
                    OutboxError::NotAnOutbox { .. } | OutboxError::Corrupt { .. }
                ),
                "seed {seed} {name}: {err:?}"
            );
            assert!(
                err.to_string().contains("left untouched"),
                "seed {seed}: {err}"
            );
            assert_eq!(
                std::fs::read(&path).unwrap(),
                bytes,
                "seed {seed} {name}: file changed"
            );
            let wal = dir.path().join(format!("{name}-wal"));
            assert!(!wal.exists(), "seed {seed} {name}: a WAL was created");
        }
    }
}

#[tokio::test]
async fn a_device_clock_jumping_back_keeps_order_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let server = Arc::new(FakeServer::new(clock.clone()));
    let device = enrolled(&dir, &server, clock.clone(), 2).await;
    let a = recorded(
        device
            .scan_parcel(&parcel(0, 0), ScanPhase::Loaded)
            .unwrap(),
    );
    clock.set(T0 - 3_600_000);
    let b = recorded(
        device
            .scan_parcel(&parcel(0, 1), ScanPhase::Loaded)
            .unwrap(),
    );
    drop(device);
    clock.set(T0 - 7_200_000);
    let device = Device::open(dir.path().join("outbox.db"), clock.clone(), 9).unwrap();
    let c = recorded(
        device
            .scan_parcel(&parcel(1, 0), ScanPhase::Loaded)
            .unwrap(),
    );
    assert_eq!((a.device_seq, b.device_seq, c.device_seq), (1, 2, 3));
    assert!(
        a.hlc < b.hlc && b.hlc < c.hlc,
        "{} {} {}",
        a.hlc,
        b.hlc,
        c.hlc
    );
    assert_eq!(c.hlc.wall_ms, T0);
    // The wall time is recorded as the device saw it, for information only.
    assert_eq!(c.device_time_ms, T0 - 7_200_000);
}

/// The schema of the first released outbox, written by hand as that version wrote it.
const V1_SCHEMA: &str = "
CREATE TABLE events (
    device_seq INTEGER PRIMARY KEY,
    event_id   TEXT NOT NULL UNIQUE,
    intent_key TEXT NOT NULL UNIQUE,
    envelope   TEXT NOT NULL,
    synced     INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
PRAGMA user_version = 1;
";

/// Captures five events with the current code, writes them into a file of an older schema
/// (`create` makes the schema, `insert` stores event `i`; the first two count as synced by the
/// old app), then opens that file with the current code and syncs it: every event arrives
/// exactly once and the projection is rebuilt.
async fn an_old_outbox_opens_and_syncs(
    create: impl FnOnce(&mut rusqlite::Connection),
    insert: impl Fn(&rusqlite::Connection, usize, &EventEnvelope),
) {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let server = Arc::new(FakeServer::new(clock.clone()));
    // Enroll a scratch device to obtain an identity the fake server knows.
    let scratch = tempfile::tempdir().unwrap();
    let donor = enrolled(&scratch, &server, clock.clone(), 2).await;
    let identity = donor.identity().unwrap().unwrap();
    let n1 = donor.new_note_id();
    let n2 = donor.new_note_id();
    let mut events = Vec::new();
    for o in [
        donor.scan_parcel(&parcel(0, 0), ScanPhase::Loaded).unwrap(),
        donor.scan_parcel(&parcel(0, 1), ScanPhase::Loaded).unwrap(),
        donor.arrive(stop_id(0), None).unwrap(),
        donor.add_note(stop_id(0), n1, "dog in the yard").unwrap(),
        donor.add_note(stop_id(1), n2, "call first").unwrap(),
    ] {
        events.push(recorded(o));
    }
    drop(donor);
    let path = dir.path().join("outbox.db");
    {
        let mut conn = rusqlite::Connection::open(&path).unwrap();
        create(&mut conn);
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('identity', ?1)",
            [serde_json::to_string(&identity).unwrap()],
        )
        .unwrap();
        for (i, e) in events.iter().enumerate() {
            insert(&conn, i, e);
        }
    }
    let device = Device::open(&path, clock.clone(), 3).unwrap();
    assert_eq!(
        device.events().unwrap(),
        events,
        "the upgrade kept every event"
    );
    assert_eq!(device.sync_status().unwrap().queued, 3);

    let mut engine = SyncEngine::new(device.clone(), server.clone(), SyncConfig::default(), 5);
    let outcome = engine.sync_once().await;
    assert!(
        matches!(outcome, RoundOutcome::Synced { .. }),
        "{outcome:?}"
    );
    assert_eq!(device.sync_status().unwrap().queued, 0);
    let stored: Vec<_> = server
        .facts()
        .into_iter()
        .map(|f| f.event.event_id)
        .collect();
    for e in &events {
        assert_eq!(stored.iter().filter(|id| **id == e.event_id).count(), 1);
    }
    // The projection was rebuilt from the carried-over events once the route arrived.
    let route = device.route(None).unwrap().unwrap();
    assert_eq!(route.stops[0].status, StopStatus::Arrived);
    // New captures continue the sequence and the clock after the carried-over events.
    let next = recorded(
        device
            .scan_parcel(&parcel(1, 0), ScanPhase::Loaded)
            .unwrap(),
    );
    assert_eq!(next.device_seq, events.len() as u64 + 1);
    assert!(next.hlc > events.last().unwrap().hlc);
    assert!(device.integrity_ok().unwrap());
}

#[tokio::test]
async fn an_outbox_from_the_first_schema_opens_and_syncs() {
    an_old_outbox_opens_and_syncs(
        |conn| conn.execute_batch(V1_SCHEMA).unwrap(),
        |conn, i, e| {
            conn.execute(
                "INSERT INTO events (device_seq, event_id, intent_key, envelope, synced)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                rusqlite::params![
                    e.device_seq,
                    e.event_id.to_string(),
                    e.intent_key,
                    serde_json::to_string(e).unwrap(),
                    i < 2
                ],
            )
            .unwrap();
        },
    )
    .await;
}

/// The previous release wrote version 3: events with kind, stop and time columns, server
/// outcomes in their own table, and the event id under a unique index.
#[tokio::test]
async fn an_outbox_from_the_previous_schema_opens_and_syncs() {
    an_old_outbox_opens_and_syncs(
        |conn| {
            courier_core::outbox::schema::migrate_to(conn, 3).unwrap();
        },
        |conn, i, e| {
            conn.execute(
                "INSERT INTO events (device_seq, event_id, intent_key, kind, stop_id,
                                     created_at_ms, envelope)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                rusqlite::params![
                    e.device_seq,
                    e.event_id.to_string(),
                    e.intent_key,
                    e.payload.kind(),
                    e.payload.stop_id().map(|s| s.to_string()),
                    e.device_time_ms,
                    serde_json::to_string(e).unwrap(),
                ],
            )
            .unwrap();
            if i < 2 {
                conn.execute(
                    "INSERT INTO outcomes (device_seq, status, settled_at_ms)
                     VALUES (?1, 'applied', ?2)",
                    rusqlite::params![e.device_seq, e.device_time_ms],
                )
                .unwrap();
            }
        },
    )
    .await;
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox.db");
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("CREATE TABLE x (a); PRAGMA user_version = 99;")
        .unwrap();
    let err = courier_core::Outbox::open(&path).unwrap_err();
    assert!(
        matches!(err, OutboxError::TooNew { found: 99, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn stored_events_are_append_only() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let server = Arc::new(FakeServer::new(clock.clone()));
    let device = enrolled(&dir, &server, clock.clone(), 1).await;
    recorded(
        device
            .scan_parcel(&parcel(0, 0), ScanPhase::Loaded)
            .unwrap(),
    );
    let conn = rusqlite::Connection::open(dir.path().join("outbox.db")).unwrap();
    assert!(conn.execute("DELETE FROM events", []).is_err());
    assert!(
        conn.execute("UPDATE events SET intent_key = 'x'", [])
            .is_err()
    );
}

#[tokio::test]
async fn a_parcel_on_two_routes_is_scanned_at_the_stop_of_the_latest() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let server = Arc::new(FakeServer::new(clock.clone()));
    let device = enrolled(&dir, &server, clock.clone(), 2).await;
    // The parcel of stop 0 was not delivered and is rescheduled to tomorrow's route, where it
    // belongs to another stop (a new stop id at the same customer).
    let mut tomorrow = route(1);
    tomorrow.route_id = doorstep_shared::RouteId::from_parts(T0, [10; 10]);
    tomorrow.day = "2026-06-02".into();
    tomorrow.stops[0].stop_id = stop_id(7);
    tomorrow.stops[0].parcels = vec![parcel(0, 0)];
    server.publish(doorstep_shared::EventPayload::RouteAssigned(tomorrow));
    let mut engine = SyncEngine::new(device.clone(), server.clone(), SyncConfig::default(), 1);
    let outcome = engine.sync_once().await;
    assert!(
        matches!(outcome, RoundOutcome::Synced { .. }),
        "{outcome:?}"
    );

    let moved = recorded(
        device
            .scan_parcel(&parcel(0, 0), ScanPhase::Loaded)
            .unwrap(),
    );
    assert_eq!(moved.payload.stop_id(), Some(stop_id(7)));
    // A parcel only on today's route still resolves there.
    let stays = recorded(
        device
            .scan_parcel(&parcel(0, 1), ScanPhase::Loaded)
            .unwrap(),
    );
    assert_eq!(stays.payload.stop_id(), Some(stop_id(0)));
    // An unknown barcode is refused with its own reason, and nothing is written.
    let unknown = doorstep_shared::ParcelBarcode::parse("PKG-9999-9").unwrap();
    let refused = device.scan_parcel(&unknown, ScanPhase::Loaded).unwrap();
    assert!(
        matches!(&refused, AppendOutcome::Refused(Refusal::UnknownParcel { parcel }) if parcel == "PKG-9999-9"),
        "{refused:?}"
    );
    assert_eq!(device.events().unwrap().len(), 2);
}
