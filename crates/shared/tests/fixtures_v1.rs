//! Golden JSON of schema v1: every later version must still read v1.
//!
//! `tests/fixtures/v1/` holds one envelope per event kind and the push, pull and problem
//! documents. The normal run reads every file, deserialises it, serialises it again and requires
//! the same JSON. The files are written from the values built here only when
//! `DOORSTEP_BLESS=1` is set; a v1 file must never be re-blessed once released.

// Test code: a panic is the failure report, so helpers may unwrap.
#![allow(clippy::unwrap_used)]

use doorstep_shared::event::*;
use doorstep_shared::intent::intent_key;
use doorstep_shared::protocol::{
    Change, DeviceQueueReport, PullResponse, PushRequest, PushResponse, PushResult, PushStatus,
};
use doorstep_shared::*;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// 2026-03-02T07:30:00Z.
const T0: u64 = 1_772_436_600_000;
const MINUTE: u64 = 60_000;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1")
}

fn device() -> DeviceId {
    "0195a3c2-7b10-7e21-9c4d-2f1e8a6b3c70".parse().unwrap()
}
/// Office events travel in the same envelope, stamped with the dispatch console's id.
fn console() -> DeviceId {
    "0195a3c2-7b10-7f02-8a11-5d2c9e0f4b81".parse().unwrap()
}
fn courier() -> CourierId {
    "0195a3c1-0a40-7c3e-b2f7-61d8e4a90c12".parse().unwrap()
}
fn route() -> RouteId {
    "019cad5b-2e00-7a4f-8e3b-0c9d7f215a66".parse().unwrap()
}
fn route_b() -> RouteId {
    "019cad5b-2e00-7b18-9f40-3e6a1c8d2b07".parse().unwrap()
}
fn stop() -> StopId {
    "019cad5b-2e01-7d5a-a6c2-4b90e37f1d28".parse().unwrap()
}
fn stop_b() -> StopId {
    "019cad5b-2e01-7e63-b1d4-8a27f05c6e39".parse().unwrap()
}
fn event_id(n: u16) -> EventId {
    format!("019cad74-{n:04x}-7c1b-8d3e-5f2a9b6c0e47")
        .parse()
        .unwrap()
}
fn parcel(s: &str) -> ParcelBarcode {
    ParcelBarcode::parse(s).unwrap()
}
fn photo() -> BlobDigest {
    BlobDigest::of(b"proof photo, 1600x1200 jpeg")
}
fn thumbnail() -> BlobDigest {
    BlobDigest::of(b"proof thumbnail, 320x240 jpeg")
}
fn door() -> GeoPoint {
    GeoPoint {
        lat: 52.374_53,
        lon: 4.889_71,
    }
}

fn envelope(seq: u64, minute: u64, payload: EventPayload) -> EventEnvelope {
    let device_id = if payload.is_device_kind() {
        device()
    } else {
        console()
    };
    let blob_digests = match &payload {
        EventPayload::ProofCaptured(p) => p.photos.iter().chain(&p.thumbnails).cloned().collect(),
        _ => Vec::new(),
    };
    EventEnvelope {
        event_id: event_id(u16::try_from(seq).unwrap()),
        device_id,
        device_seq: seq,
        intent_key: intent_key(&payload, &device_id),
        schema_version: 1,
        device_time_ms: T0 + minute * MINUTE + 417,
        hlc: HlcStamp {
            wall_ms: T0 + minute * MINUTE + 417,
            logical: u32::from(minute % 2 == 1),
        },
        blob_digests,
        payload,
    }
}

fn plan(stop_id: StopId, sequence: u32, address: &str, location: GeoPoint) -> StopPlan {
    StopPlan {
        stop_id,
        sequence,
        address: address.into(),
        location,
        window: TimeWindow {
            start_ms: T0 + 90 * MINUTE,
            end_ms: T0 + 210 * MINUTE,
        },
        parcels: vec![parcel("NL-PKG-000481"), parcel("NL-PKG-000482")],
        customer_name: "Marieke Jansen".into(),
        access_notes: Some("Gate code 4411".into()),
        instructions: None,
    }
}

fn route_assigned() -> EventPayload {
    EventPayload::RouteAssigned(RouteAssigned {
        route_id: route(),
        courier_id: courier(),
        day: "2026-03-02".into(),
        version: 2,
        depot: GeoPoint {
            lat: 52.388_1,
            lon: 4.837_4,
        },
        stops: vec![
            plan(stop(), 1, "Keizersgracht 123, 1015 CJ Amsterdam", door()),
            plan(
                stop_b(),
                2,
                "Prinsengracht 263, 1016 GV Amsterdam",
                GeoPoint {
                    lat: 52.375_2,
                    lon: 4.884_0,
                },
            ),
        ],
    })
}

fn rescheduled() -> EventPayload {
    EventPayload::StopRescheduled(StopRescheduled {
        stop_id: stop_b(),
        window: TimeWindow {
            start_ms: T0 + 86_400_000,
            end_ms: T0 + 86_400_000 + 120 * MINUTE,
        },
    })
}

fn cancelled() -> EventPayload {
    EventPayload::StopCancelled(StopCancelled {
        stop_id: stop_b(),
        reason: "Customer moved away".into(),
    })
}

/// Exhaustive on purpose: adding a kind breaks the build here until it gets a fixture.
fn kind_number(p: &EventPayload) -> usize {
    use EventPayload::*;
    match p {
        ParcelScanned(_) => 0,
        BeaconSighted(_) => 1,
        ArrivedAtStop(_) => 2,
        DeliveryAttempted(_) => 3,
        ProofCaptured(_) => 4,
        LocationFixed(_) => 5,
        RouteReplanned(_) => 6,
        NoteAdded(_) => 7,
        AccessNotesEdited(_) => 8,
        RouteAssigned(_) => 9,
        StopReassigned(_) => 10,
        StopRescheduled(_) => 11,
        StopCancelled(_) => 12,
        EscalationResolved(_) => 13,
    }
}
const KINDS: usize = 14;

fn kind_envelopes() -> Vec<EventEnvelope> {
    let payloads = vec![
        EventPayload::ParcelScanned(ParcelScanned {
            stop_id: stop(),
            parcel: parcel("NL-PKG-000481"),
            phase: ScanPhase::OutForDelivery,
        }),
        EventPayload::BeaconSighted(BeaconSighted {
            stop_id: Some(stop()),
            protocol: BeaconProtocol::IBeacon,
            beacon_id: "f7826da6-4fa2-4e98-8024-bc5b71e0893e:100:7".into(),
            window_start_ms: T0 + 95 * MINUTE,
            sightings: 12,
            rssi_dbm: -67,
            tx_power_dbm: Some(-59),
        }),
        EventPayload::ArrivedAtStop(ArrivedAtStop {
            stop_id: stop(),
            attempt: 1,
            location: Some(door()),
        }),
        EventPayload::DeliveryAttempted(DeliveryAttempted {
            stop_id: stop(),
            attempt: 1,
            outcome: AttemptOutcome::Delivered {
                method: DeliveryMethod::HandedToNeighbour,
                recipient: Some("P. de Vries (no. 125)".into()),
            },
        }),
        EventPayload::ProofCaptured(ProofCaptured {
            stop_id: stop(),
            attempt: 1,
            photos: vec![photo()],
            thumbnails: vec![thumbnail()],
            recipient_name: Some("P. de Vries".into()),
            location: Some(door()),
            signature: Some(EvidenceSignature {
                public_key: "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c"
                    .into(),
                statement_digest: BlobDigest::of(b"statement").as_str().into(),
                prev_link: BlobDigest::of(b"previous statement").as_str().into(),
                signature: "9e".repeat(64),
            }),
        }),
        EventPayload::LocationFixed(LocationFixed {
            location: door(),
            accuracy_m: 4.5,
            fix_time_ms: T0 + 96 * MINUTE,
        }),
        EventPayload::RouteReplanned(RouteReplanned {
            route_id: route(),
            model_version: Some("eta-gbdt-2026.02.1".into()),
            inputs_digest: BlobDigest::of(b"solver inputs").as_str().into(),
            order: vec![stop_b(), stop()],
        }),
        EventPayload::NoteAdded(NoteAdded {
            stop_id: stop(),
            note_id: "019cad74-9a10-7b22-8c33-d44e55f66a77".parse().unwrap(),
            text: "Neighbour at no. 125 accepts parcels".into(),
        }),
        EventPayload::AccessNotesEdited(AccessNotesEdited {
            stop_id: stop(),
            actor: "courier-0195a3c1".into(),
            version: BTreeMap::from([("courier-0195a3c1".into(), 2), ("dispatch-anna".into(), 1)]),
            text: "Gate code changed to 5522".into(),
        }),
        route_assigned(),
        EventPayload::StopReassigned(StopReassigned {
            stop_id: stop_b(),
            from_route: route(),
            to_route: route_b(),
            to_courier: courier(),
        }),
        rescheduled(),
        cancelled(),
        EventPayload::EscalationResolved(EscalationResolved {
            escalation_id: "019cad80-1c00-7d4e-9f5a-6b7c8d9e0f1a".parse().unwrap(),
            resolution: "Kept the courier's edit".into(),
            chosen_value: Some("Gate code changed to 5522".into()),
        }),
    ];
    payloads
        .into_iter()
        .zip(1..)
        .map(|(p, seq)| envelope(seq, seq * 3, p))
        .collect()
}

fn push_request() -> PushRequest {
    let events = vec![
        envelope(
            41,
            100,
            EventPayload::ParcelScanned(ParcelScanned {
                stop_id: stop_b(),
                parcel: parcel("NL-PKG-000482"),
                phase: ScanPhase::AtDoor,
            }),
        ),
        envelope(
            42,
            101,
            EventPayload::DeliveryAttempted(DeliveryAttempted {
                stop_id: stop_b(),
                attempt: 1,
                outcome: AttemptOutcome::Failed {
                    reason: FailureReason::CustomerAbsent,
                    detail: Some("Rang twice, card left".into()),
                },
            }),
        ),
    ];
    PushRequest {
        device_id: device(),
        sent_at_ms: T0 + 102 * MINUTE,
        events,
        queue: Some(DeviceQueueReport {
            queued_events: 2,
            oldest_unsynced_ms: Some(T0 + 100 * MINUTE),
            photos_pending: 1,
            rejected_events: 0,
        }),
    }
}

fn push_response() -> PushResponse {
    let result = |seq: u64, status, first_status, code, detail: Option<&str>| PushResult {
        device_seq: seq,
        event_id: event_id(u16::try_from(seq).unwrap()),
        status,
        first_status,
        code,
        detail: detail.map(Into::into),
    };
    PushResponse {
        last_applied_seq: 44,
        server_time_ms: T0 + 102 * MINUTE + 250,
        clock_offset_ms: -1_830,
        results: vec![
            result(
                40,
                PushStatus::Duplicate,
                Some(PushStatus::Applied),
                None,
                None,
            ),
            result(41, PushStatus::Applied, None, None, None),
            result(
                42,
                PushStatus::Conflict,
                None,
                Some(ProblemCode::IntentConflict),
                Some("attempt 1 was already recorded as delivered"),
            ),
            result(
                43,
                PushStatus::Rejected,
                None,
                Some(ProblemCode::InvalidEvent),
                Some("field `attempt` is invalid: must be 1..=10, got 0"),
            ),
            result(
                44,
                PushStatus::Applied,
                None,
                Some(ProblemCode::ClockSkew),
                None,
            ),
            result(
                45,
                PushStatus::Deferred,
                None,
                Some(ProblemCode::StorageBusy),
                None,
            ),
            result(
                47,
                PushStatus::Gap,
                None,
                Some(ProblemCode::SequenceGap),
                Some("resume from 45"),
            ),
        ],
    }
}

fn pull_response() -> PullResponse {
    let change = |cursor: u64, n: u16, payload| Change {
        cursor,
        event_id: event_id(n),
        hlc: HlcStamp {
            wall_ms: T0 + u64::from(n) * MINUTE,
            logical: 0,
        },
        recorded_at_ms: T0 + u64::from(n) * MINUTE + 12,
        payload,
    };
    PullResponse {
        cursor: 1_207,
        server_time_ms: T0 + 110 * MINUTE,
        changes: vec![
            change(1_205, 90, route_assigned()),
            change(1_206, 91, rescheduled()),
            change(1_207, 92, cancelled()),
        ],
        has_more: false,
    }
}

fn problem() -> Problem {
    Problem::new(
        ProblemCode::UnsupportedSchemaVersion,
        Some("event 3 has schema_version 7; this server reads 1..=1".to_owned()),
    )
}

fn json<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap()
}

/// Every fixture: file stem, the value built here, and a reader that round-trips the file's
/// JSON through the Rust type it is a v1 sample of.
#[allow(clippy::type_complexity)]
fn fixtures() -> Vec<(String, Value, fn(&Value) -> Value)> {
    fn read<T: Serialize + DeserializeOwned>(v: &Value) -> Value {
        json(&serde_json::from_value::<T>(v.clone()).unwrap())
    }
    let mut all: Vec<(String, Value, fn(&Value) -> Value)> = kind_envelopes()
        .iter()
        .map(|e| {
            (
                e.payload.kind().to_owned(),
                json(e),
                read::<EventEnvelope> as fn(&Value) -> Value,
            )
        })
        .collect();
    all.push((
        "push_request".into(),
        json(&push_request()),
        read::<PushRequest>,
    ));
    all.push((
        "push_response".into(),
        json(&push_response()),
        read::<PushResponse>,
    ));
    all.push((
        "pull_response".into(),
        json(&pull_response()),
        read::<PullResponse>,
    ));
    all.push(("problem".into(), json(&problem()), read::<Problem>));
    all
}

#[test]
fn every_v1_fixture_reads_and_writes_back_identically() {
    let fixtures = fixtures();
    if std::env::var("DOORSTEP_BLESS").as_deref() == Ok("1") {
        std::fs::create_dir_all(dir()).unwrap();
        for (name, value, _) in &fixtures {
            let text = serde_json::to_string_pretty(value).unwrap() + "\n";
            std::fs::write(dir().join(format!("{name}.json")), text).unwrap();
        }
    }
    let mut on_disk: Vec<String> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let mut expected: Vec<String> = fixtures
        .iter()
        .map(|(n, _, _)| format!("{n}.json"))
        .collect();
    expected.sort();
    assert_eq!(
        on_disk, expected,
        "fixture files differ from the list (bless with DOORSTEP_BLESS=1)"
    );

    for (name, built, read_back) in &fixtures {
        let text = std::fs::read_to_string(dir().join(format!("{name}.json"))).unwrap();
        let file: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            &read_back(&file),
            &file,
            "{name}.json does not survive a read and a write"
        );
        assert_eq!(
            built, &file,
            "{name}.json differs from the value this test builds"
        );
    }
}

#[test]
fn fixtures_cover_every_kind_and_are_valid_events() {
    let envelopes = kind_envelopes();
    let mut kinds: Vec<usize> = envelopes.iter().map(|e| kind_number(&e.payload)).collect();
    kinds.sort();
    assert_eq!(kinds, (0..KINDS).collect::<Vec<_>>());
    for e in envelopes {
        if e.payload.is_device_kind() {
            e.validate_from_device().unwrap();
        } else {
            e.payload.validate().unwrap();
            assert_eq!(e.intent_key, intent_key(&e.payload, &e.device_id));
        }
    }
    for e in push_request().events {
        e.validate_from_device().unwrap();
    }
}

#[test]
fn push_response_fixture_has_every_status() {
    let statuses: Vec<PushStatus> = push_response().results.iter().map(|r| r.status).collect();
    for s in [
        PushStatus::Applied,
        PushStatus::Duplicate,
        PushStatus::Conflict,
        PushStatus::Rejected,
        PushStatus::Deferred,
        PushStatus::Gap,
    ] {
        assert!(statuses.contains(&s), "{s:?} missing");
    }
}
