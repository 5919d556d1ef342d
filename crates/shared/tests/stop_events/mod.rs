//! Proptest strategies for the events of ONE stop, shared by the fold and encoding properties.
//!
//! The generated sets honour what the intent layer guarantees before anything is folded:
//! - every `DeliveryAttempted` with the same attempt number carries the same outcome (a second
//!   outcome for one attempt is an `intent_conflict` and is never folded);
//! - access-note edits come from a simulated causal history of 2-3 actors, so each
//!   `(actor, counter)` pair names exactly one edit (same pair, other text is a conflict too).
//!
//! Each event gets a distinct `EventId` and a distinct `HlcStamp`. A few events about other
//! stops, or about no stop, are mixed in because the fold must ignore them.

use doorstep_shared::event::*;
use doorstep_shared::intent::intent_key;
use doorstep_shared::{
    BlobDigest, CourierId, DeviceId, EscalationId, EventId, FailureClass, FailureReason, HlcStamp,
    ParcelBarcode, RouteId, SCHEMA_VERSION, StopId,
};
use proptest::collection::vec;
use proptest::prelude::*;
use std::collections::BTreeMap;

/// 2026-03-02T07:30:00Z, the start of a service day.
pub const DAY_START_MS: u64 = 1_772_436_600_000;
/// Highest attempt number the generator uses.
const ATTEMPTS: u32 = 4;

pub fn stop() -> StopId {
    StopId::from_parts(DAY_START_MS, [0x51; 10])
}

fn other_stop() -> StopId {
    StopId::from_parts(DAY_START_MS, [0x52; 10])
}

fn route(i: u8) -> RouteId {
    RouteId::from_parts(DAY_START_MS - 3_600_000, [0x40 + i; 10])
}

fn courier(i: u8) -> CourierId {
    CourierId::from_parts(DAY_START_MS - 86_400_000, [0x30 + i; 10])
}

fn device(i: u8) -> DeviceId {
    DeviceId::from_parts(DAY_START_MS - 86_400_000, [0x20 + i; 10])
}

fn parcel(i: u8) -> ParcelBarcode {
    ParcelBarcode::parse(&format!("PKG-{:04}", 1_000 + u32::from(i))).unwrap()
}

const TEXTS: [&str; 4] = [
    "Gate code 4411",
    "Ring twice, dog is friendly",
    "Leave with the concierge",
    "Blue door behind the bakery",
];

/// `Returned` is terminal and would hide everything else, so it is the rarest phase.
fn phase() -> impl Strategy<Value = ScanPhase> {
    prop_oneof![
        3 => Just(ScanPhase::Loaded),
        3 => Just(ScanPhase::OutForDelivery),
        3 => Just(ScanPhase::AtDoor),
        1 => Just(ScanPhase::Returned),
    ]
}

/// Full-precision coordinates: a float that does not survive JSON must be caught.
fn point() -> impl Strategy<Value = GeoPoint> {
    (-90.0f64..=90.0, -180.0f64..=180.0).prop_map(|(lat, lon)| GeoPoint { lat, lon })
}

fn window() -> impl Strategy<Value = TimeWindow> {
    (0u64..20, 1u64..8).prop_map(|(start, len)| TimeWindow {
        start_ms: DAY_START_MS + start * 1_800_000,
        end_ms: DAY_START_MS + (start + len) * 1_800_000,
    })
}

fn digest() -> impl Strategy<Value = BlobDigest> {
    any::<u8>().prop_map(|b| BlobDigest::of(&[b]))
}

/// Deliveries are rarer than failures, and recoverable reasons are favoured, so that the
/// attempt budget is exhausted in a fair share of cases.
fn outcome() -> impl Strategy<Value = AttemptOutcome> {
    let recoverable: Vec<FailureReason> = FailureReason::ALL
        .into_iter()
        .filter(|r| r.class() == FailureClass::Recoverable)
        .collect();
    let failed = |reasons: Vec<FailureReason>| {
        (
            proptest::sample::select(reasons),
            proptest::option::of(Just("no answer after 2 rings".to_owned())),
        )
            .prop_map(|(reason, detail)| AttemptOutcome::Failed { reason, detail })
    };
    prop_oneof![
        1 => Just(AttemptOutcome::Delivered { method: DeliveryMethod::HandedToRecipient, recipient: Some("M. Jansen".into()) }),
        1 => Just(AttemptOutcome::Delivered { method: DeliveryMethod::ParcelLocker, recipient: None }),
        4 => failed(FailureReason::ALL.to_vec()),
        6 => failed(recoverable),
    ]
}

fn plan(stop_id: StopId, sequence: u32, window: TimeWindow, location: GeoPoint) -> StopPlan {
    StopPlan {
        stop_id,
        sequence,
        address: "Keizersgracht 123, Amsterdam".into(),
        location,
        window,
        parcels: vec![parcel(0), parcel(1)],
        customer_name: "M. Jansen".into(),
        access_notes: None,
        instructions: Some("Fragile".into()),
    }
}

/// Payloads about this stop (plus some noise). `DeliveryAttempted` outcomes are placeholders,
/// replaced from the per-attempt outcome table afterwards.
fn payload() -> impl Strategy<Value = EventPayload> {
    let attempt = 1..=ATTEMPTS;
    prop_oneof![
        4 => (0u8..3, phase()).prop_map(|(p, phase)| EventPayload::ParcelScanned(ParcelScanned { stop_id: stop(), parcel: parcel(p), phase })),
        2 => (attempt.clone(), proptest::option::of(point())).prop_map(|(attempt, location)| EventPayload::ArrivedAtStop(ArrivedAtStop { stop_id: stop(), attempt, location })),
        4 => attempt.clone().prop_map(|attempt| EventPayload::DeliveryAttempted(DeliveryAttempted {
            stop_id: stop(),
            attempt,
            outcome: AttemptOutcome::Delivered { method: DeliveryMethod::Concierge, recipient: None },
        })),
        2 => (attempt, vec(digest(), 0..3), proptest::option::of(point())).prop_map(|(attempt, photos, location)| {
            EventPayload::ProofCaptured(ProofCaptured {
                stop_id: stop(),
                attempt,
                thumbnails: photos.iter().map(|d| BlobDigest::of(d.as_str().as_bytes())).collect(),
                photos,
                recipient_name: Some("M. Jansen".into()),
                location,
                signature: None,
            })
        }),
        1 => (any::<u128>(), 0..TEXTS.len()).prop_map(|(id, t)| EventPayload::NoteAdded(NoteAdded { stop_id: stop(), note_id: uuid::Uuid::from_u128(id), text: TEXTS[t].into() })),
        1 => (0..TEXTS.len()).prop_map(|t| EventPayload::StopCancelled(StopCancelled { stop_id: stop(), reason: TEXTS[t].into() })),
        1 => window().prop_map(|window| EventPayload::StopRescheduled(StopRescheduled { stop_id: stop(), window })),
        1 => (0u8..3, 0u8..3).prop_map(|(from, to)| EventPayload::StopReassigned(StopReassigned { stop_id: stop(), from_route: route(from), to_route: route(to), to_courier: courier(to) })),
        1 => (0u8..3, 1u32..4, window(), point(), any::<bool>()).prop_map(|(r, version, w, loc, ours)| {
            let mut stops = vec![plan(other_stop(), 1, w, loc)];
            if ours {
                stops.push(plan(stop(), 2, w, loc));
            }
            EventPayload::RouteAssigned(RouteAssigned { route_id: route(r), courier_id: courier(r), day: "2026-03-02".into(), version, depot: loc, stops })
        }),
        1 => (any::<bool>(), 0u64..5, -100i16..-30).prop_map(|(ours, w, rssi_dbm)| EventPayload::BeaconSighted(BeaconSighted {
            stop_id: ours.then(stop),
            protocol: BeaconProtocol::IBeacon,
            beacon_id: "f7826da6-4fa2-4e98-8024-bc5b71e0893e:100:7".into(),
            window_start_ms: DAY_START_MS + w * 10_000,
            sightings: 3,
            rssi_dbm,
            tx_power_dbm: Some(-59),
        })),
        1 => prop_oneof![
            phase().prop_map(|phase| EventPayload::ParcelScanned(ParcelScanned { stop_id: other_stop(), parcel: parcel(9), phase })),
            point().prop_map(|location| EventPayload::LocationFixed(LocationFixed { location, accuracy_m: 4.5, fix_time_ms: DAY_START_MS })),
            Just(EventPayload::RouteReplanned(RouteReplanned { route_id: route(0), model_version: None, inputs_digest: "ab".repeat(32), order: vec![stop()] })),
            Just(EventPayload::EscalationResolved(EscalationResolved { escalation_id: EscalationId::from_parts(DAY_START_MS, [9; 10]), resolution: "kept".into(), chosen_value: None })),
        ],
    ]
}

/// A causal history of access-note edits: `(actor, merge the clock of actor, text)` steps.
fn access_note_edits() -> impl Strategy<Value = Vec<EventPayload>> {
    let step = (0usize..3, proptest::option::of(0usize..3), 0..TEXTS.len());
    vec(step, 0..6).prop_map(|steps| {
        let names = ["courier-7", "dispatch-anna", "dispatch-bo"];
        let mut clocks: [BTreeMap<String, u64>; 3] = Default::default();
        steps
            .into_iter()
            .map(|(actor, merge_from, text)| {
                if let Some(from) = merge_from {
                    for (a, c) in clocks[from].clone() {
                        let mine = clocks[actor].entry(a).or_insert(0);
                        *mine = (*mine).max(c);
                    }
                }
                *clocks[actor].entry(names[actor].to_owned()).or_insert(0) += 1;
                EventPayload::AccessNotesEdited(AccessNotesEdited {
                    stop_id: stop(),
                    actor: names[actor].to_owned(),
                    version: clocks[actor].clone(),
                    text: TEXTS[text].into(),
                })
            })
            .collect()
    })
}

/// Wraps payloads into envelopes with distinct event ids and distinct HLC stamps.
fn envelopes(payloads: Vec<EventPayload>, jitter: Vec<(u64, u64)>) -> Vec<EventEnvelope> {
    payloads
        .into_iter()
        .zip(jitter)
        .enumerate()
        .map(|(i, (payload, (id_ms, wall)))| {
            let i16 = u16::try_from(i).unwrap();
            let mut random = [0xA5; 10];
            random[..2].copy_from_slice(&i16.to_be_bytes());
            let dev = device(u8::try_from(i % 3).unwrap());
            EventEnvelope {
                event_id: EventId::from_parts(DAY_START_MS + id_ms, random),
                device_id: dev,
                device_seq: i as u64 + 1,
                intent_key: intent_key(&payload, &dev),
                schema_version: SCHEMA_VERSION,
                device_time_ms: DAY_START_MS + wall * 1_000,
                // The logical counter makes stamps distinct; the wall part varies the order.
                hlc: HlcStamp {
                    wall_ms: DAY_START_MS + wall * 1_000,
                    logical: u32::from(i16),
                },
                blob_digests: match &payload {
                    EventPayload::ProofCaptured(p) => p.photos.clone(),
                    _ => Vec::new(),
                },
                payload,
            }
        })
        .collect()
}

/// A set of events for [`stop`], honouring the intent-layer constraints described above.
pub fn stop_events() -> impl Strategy<Value = Vec<EventEnvelope>> {
    (
        vec(payload(), 0..24),
        access_note_edits(),
        vec(outcome(), ATTEMPTS as usize),
    )
        .prop_flat_map(|(mut payloads, edits, outcomes)| {
            for p in &mut payloads {
                if let EventPayload::DeliveryAttempted(a) = p {
                    a.outcome = outcomes[a.attempt as usize - 1].clone();
                }
            }
            payloads.extend(edits);
            let n = payloads.len();
            (Just(payloads), vec((0u64..1_000, 0u64..6), n))
        })
        .prop_map(|(payloads, jitter)| envelopes(payloads, jitter))
}
