//! Push semantics against the real binary: replays, near-duplicates and conflicts, concurrent
//! uploads, gaps and poison events. Each test runs its own server on its own SQLite file.
#![allow(clippy::unwrap_used)]

mod harness;

use doorstep_shared::event::{
    AttemptOutcome, DeliveryAttempted, DeliveryMethod, EventEnvelope, EventPayload, ScanPhase,
};
use doorstep_shared::protocol::{EscalationKind, PushResult, PushStatus, StopDetail};
use doorstep_shared::{DeviceId, FailureReason, ProblemCode, StopStatus};
use harness::{Encoding, World, delivery_sequence, test_seed};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, HashMap};

/// Applied events per intent key in a stop's log.
fn applied_per_intent(detail: &StopDetail) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for e in &detail.events {
        if e.status == PushStatus::Applied {
            *m.entry(e.intent_key.clone()).or_insert(0) += 1;
        }
    }
    m
}

/// Log rows per `device_seq` of one device, with the outcome stored, from the dispatcher API.
async fn rows_per_seq(w: &World, device: DeviceId) -> BTreeMap<u64, (usize, String)> {
    let mut rows: BTreeMap<u64, (usize, String)> = BTreeMap::new();
    for e in w.api.device_log(device).await {
        let seq = e.device_seq.expect("a device event has a device_seq");
        let status = serde_json::to_value(e.status)
            .expect("status")
            .as_str()
            .expect("text")
            .to_owned();
        let row = rows.entry(seq).or_insert((0, status));
        row.0 += 1;
    }
    rows
}

fn twenty_events(w: &World, d: &mut harness::Device) -> Vec<EventEnvelope> {
    let stops = w.stops(0);
    let mut events = Vec::new();
    for (i, s) in stops.iter().take(4).enumerate() {
        events.extend(delivery_sequence(d, *s, &format!("PKG-{i}")));
    }
    events.push(d.scan(stops[4], "PKG-4", ScanPhase::Loaded));
    events.push(d.note(stops[4], "dog in the garden"));
    events.push(d.location());
    events.push(d.note(stops[5], "call before arrival"));
    assert_eq!(events.len(), 20);
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaying_a_batch_100_times_applies_each_intent_once_with_identical_results() {
    let seed = test_seed("replay");
    let w = World::new();
    let mut d = w.device(0, seed).await;
    let events = twenty_events(&w, &mut d);
    let req = d.request(events.clone());

    let first = w.api.push(&d.token, &req, Encoding::Identity).await;
    assert_eq!(first.last_applied_seq, 20, "seed {seed}");
    assert!(
        first
            .results
            .iter()
            .all(|r| r.status == PushStatus::Applied),
        "seed {seed}: {:?}",
        first.results
    );

    // 100 replays from 4 concurrent clients, each with seeded jitter and a random encoding.
    let mut tasks = Vec::new();
    for t in 0..4u64 {
        let (api, token, req) = (w.api.clone(), d.token.clone(), req.clone());
        let mut rng = StdRng::seed_from_u64(seed ^ (t + 1));
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            for _ in 0..25 {
                let delay = rng.random_range(0..=20);
                tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
                let enc = Encoding::ALL[rng.random_range(0..3)];
                out.push(api.push(&token, &req, enc).await);
            }
            out
        }));
    }
    let mut replays = Vec::new();
    for t in tasks {
        replays.extend(t.await.unwrap());
    }
    assert_eq!(replays.len(), 100);
    let reference: Vec<PushResult> = replays[0].results.clone();
    assert_eq!(reference.len(), 20, "seed {seed}");
    for (r, e) in reference.iter().zip(&events) {
        assert_eq!(r.device_seq, e.device_seq, "seed {seed}");
        assert_eq!(r.event_id, e.event_id, "seed {seed}");
        assert_eq!(r.status, PushStatus::Duplicate, "seed {seed}: {r:?}");
        assert_eq!(
            r.first_status,
            Some(PushStatus::Applied),
            "seed {seed}: {r:?}"
        );
    }
    for (i, rep) in replays.iter().enumerate() {
        assert_eq!(rep.results, reference, "seed {seed}: replay {i} differs");
        assert_eq!(rep.last_applied_seq, 20, "seed {seed}: replay {i}");
    }

    // Each intent took effect exactly once, in the stop logs and in the raw log.
    let stops = w.stops(0);
    for (i, s) in stops.iter().enumerate() {
        let detail = w.api.stop(*s).await;
        for (key, n) in applied_per_intent(&detail) {
            assert_eq!(n, 1, "seed {seed}: intent {key} applied {n} times");
        }
        assert!(
            detail
                .events
                .iter()
                .all(|e| e.status == PushStatus::Applied),
            "seed {seed}: the stop log holds only the first copies"
        );
        if i < 4 {
            assert_eq!(detail.view.status, StopStatus::Delivered, "seed {seed}");
            assert_eq!(detail.view.attempts.len(), 1, "seed {seed}");
        }
    }
    let rows = rows_per_seq(&w, d.id).await;
    assert_eq!(rows.len(), 20, "seed {seed}");
    assert!(
        rows.values().all(|(n, s)| *n == 1 && s == "applied"),
        "{rows:?}"
    );
    assert_eq!(w.api.device(d.id).await.last_applied_seq, 20, "seed {seed}");
}

#[tokio::test]
async fn near_duplicates_apply_as_new_and_a_changed_payload_for_the_same_intent_conflicts() {
    let w = World::new();
    let mut d = w.device(0, 2).await;
    let stop = w.stops(0)[0];
    let batch = vec![
        d.scan(stop, "PKG-1", ScanPhase::Loaded),
        // Another phase is another intent.
        d.scan(stop, "PKG-1", ScanPhase::OutForDelivery),
        d.note(stop, "leave at the back door"),
        // Same text, new note id: a second note, not a double tap.
        d.note(stop, "leave at the back door"),
        // A double scan: new event, same intent, same payload.
        d.scan(stop, "PKG-1", ScanPhase::Loaded),
        d.arrive(stop, 1),
        d.delivered(stop, 1),
    ];
    let r = w
        .api
        .push(&d.token, &d.request(batch), Encoding::Gzip)
        .await;
    let statuses: Vec<_> = r.results.iter().map(|r| r.status).collect();
    use PushStatus::*;
    assert_eq!(
        statuses,
        [
            Applied, Applied, Applied, Applied, Duplicate, Applied, Applied
        ]
    );
    assert_eq!(r.last_applied_seq, 7);

    // Attempt 1 again, now "failed": same intent, different business payload.
    let clash = d.failed(stop, 1, FailureReason::CustomerAbsent);
    let clash_id = clash.event_id;
    let r = w
        .api
        .push(&d.token, &d.request(vec![clash]), Encoding::Zstd)
        .await;
    assert_eq!(r.results.len(), 1);
    assert_eq!(r.results[0].status, Conflict);
    assert_eq!(r.results[0].code, Some(ProblemCode::IntentConflict));
    assert_eq!(
        r.last_applied_seq, 8,
        "a conflict is settled: the sequence advances"
    );

    let detail = w.api.stop(stop).await;
    assert_eq!(
        detail.view.status,
        StopStatus::Delivered,
        "first outcome stands"
    );
    assert_eq!(detail.view.attempts.len(), 1);
    assert!(matches!(
        detail.view.attempts[0].1,
        AttemptOutcome::Delivered { .. }
    ));
    assert_eq!(detail.view.notes.len(), 2, "{:?}", detail.view.notes);
    let stored = detail
        .events
        .iter()
        .find(|e| e.event_id == clash_id)
        .expect("the conflicting event is stored as a fact");
    assert_eq!(stored.status, Conflict);
    assert_eq!(stored.code, Some(ProblemCode::IntentConflict));
    for (key, n) in applied_per_intent(&detail) {
        assert_eq!(n, 1, "intent {key} applied {n} times");
    }

    let esc = w.api.escalations(false).await;
    assert!(
        esc.iter().any(|e| e.kind == EscalationKind::IntentConflict
            && e.stop_id == Some(stop)
            && e.event_id == Some(clash_id)
            && !e.resolved),
        "{esc:?}"
    );
    assert_eq!(w.api.device(d.id).await.events_conflicted, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_concurrent_uploads_of_one_batch_apply_each_event_once() {
    let seed = test_seed("concurrency");
    let w = World::new();
    let mut d = w.device(0, seed).await;
    let mut events = twenty_events(&w, &mut d);
    for _ in 0..10 {
        events.push(d.location());
    }
    let req = d.request(events);
    let n = req.events.len();

    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(8));
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (api, token, req, barrier) =
            (w.api.clone(), d.token.clone(), req.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            api.push(&token, &req, Encoding::ALL[i % 3]).await
        }));
    }
    let mut applied: HashMap<u64, usize> = HashMap::new();
    for t in tasks {
        let r = t.await.unwrap();
        assert_eq!(r.last_applied_seq, n as u64, "seed {seed}");
        assert_eq!(r.results.len(), n, "seed {seed}");
        for res in &r.results {
            match res.status {
                PushStatus::Applied => *applied.entry(res.device_seq).or_insert(0) += 1,
                PushStatus::Duplicate => {
                    assert_eq!(res.first_status, Some(PushStatus::Applied), "seed {seed}")
                }
                other => panic!("seed {seed}: unexpected {other:?} for {res:?}"),
            }
        }
    }
    for seq in 1..=n as u64 {
        assert_eq!(
            applied.get(&seq),
            Some(&1),
            "seed {seed}: seq {seq} applied {:?} times",
            applied.get(&seq)
        );
    }
    let rows = rows_per_seq(&w, d.id).await;
    assert_eq!(rows.len(), n, "seed {seed}");
    assert!(
        rows.values().all(|(c, s)| *c == 1 && s == "applied"),
        "{rows:?}"
    );
    for s in w.stops(0) {
        for (key, c) in applied_per_intent(&w.api.stop(s).await) {
            assert_eq!(c, 1, "seed {seed}: intent {key}");
        }
    }
}

#[tokio::test]
async fn a_gap_is_reported_and_resumed() {
    let w = World::new();
    let mut d = w.device(0, 4).await;
    let stop = w.stops(0)[0];
    let events = [
        d.scan(stop, "PKG-1", ScanPhase::Loaded),
        d.scan(stop, "PKG-1", ScanPhase::OutForDelivery),
        d.note(stop, "ring twice"),
        d.arrive(stop, 1),
        d.delivered(stop, 1),
        d.location(),
    ];
    let r = w
        .api
        .push(
            &d.token,
            &d.request(events[0..3].to_vec()),
            Encoding::Identity,
        )
        .await;
    assert_eq!(r.last_applied_seq, 3);

    // Seq 4 was lost on the way: 5 and 6 arrive first.
    let r = w
        .api
        .push(
            &d.token,
            &d.request(events[4..6].to_vec()),
            Encoding::Identity,
        )
        .await;
    assert_eq!(r.last_applied_seq, 3, "{r:?}");
    let gap = r
        .results
        .iter()
        .find(|x| x.status == PushStatus::Gap)
        .expect("a gap result");
    assert_eq!(gap.device_seq, 5);
    assert_eq!(gap.code, Some(ProblemCode::SequenceGap));
    assert!(
        r.results.iter().all(|x| x.status == PushStatus::Gap),
        "{r:?}"
    );
    assert_eq!(w.api.device(d.id).await.last_applied_seq, 3);
    assert_eq!(
        w.api.stop(stop).await.view.status,
        StopStatus::OutForDelivery
    );

    // Resume from last_applied_seq + 1.
    let r = w
        .api
        .push(
            &d.token,
            &d.request(events[3..6].to_vec()),
            Encoding::Identity,
        )
        .await;
    assert_eq!(r.last_applied_seq, 6);
    assert!(
        r.results.iter().all(|x| x.status == PushStatus::Applied),
        "{r:?}"
    );
    assert_eq!(w.api.stop(stop).await.view.status, StopStatus::Delivered);
    let rows = rows_per_seq(&w, d.id).await;
    assert_eq!(rows.keys().copied().collect::<Vec<_>>(), [1, 2, 3, 4, 5, 6]);
}

#[tokio::test]
async fn a_poison_event_is_quarantined_and_escalated_and_later_events_still_apply() {
    let w = World::new();
    let mut d = w.device(0, 5).await;
    let stop = w.stops(0)[0];
    let ok1 = d.scan(stop, "PKG-1", ScanPhase::Loaded);
    // attempt 0 is out of range whatever the state.
    let bad_field = d.event(EventPayload::DeliveryAttempted(DeliveryAttempted {
        stop_id: stop,
        attempt: 0,
        outcome: AttemptOutcome::Delivered {
            method: DeliveryMethod::ParcelLocker,
            recipient: None,
        },
    }));
    // A valid payload under an intent key that is not its own.
    let mut bad_key = d.note(stop, "hello");
    bad_key.intent_key = format!("attempt:{stop}:1");
    let ok2 = d.arrive(stop, 1);
    let batch = vec![ok1, bad_field.clone(), bad_key.clone(), ok2];
    let req = d.request(batch);
    let r = w.api.push(&d.token, &req, Encoding::Identity).await;
    assert_eq!(
        r.last_applied_seq, 4,
        "one poison event never blocks: {r:?}"
    );
    let got: Vec<_> = r.results.iter().map(|x| (x.status, x.code)).collect();
    use PushStatus::*;
    assert_eq!(
        got,
        [
            (Applied, None),
            (Rejected, Some(ProblemCode::InvalidEvent)),
            (Rejected, Some(ProblemCode::IntentKeyMismatch)),
            (Applied, None),
        ]
    );

    // A later batch applies normally.
    let later = d.delivered(stop, 1);
    let r2 = w
        .api
        .push(&d.token, &d.request(vec![later]), Encoding::Identity)
        .await;
    assert_eq!(r2.results[0].status, Applied, "{r2:?}");
    assert_eq!(r2.last_applied_seq, 5);

    // The replay of the poisoned batch reports the stored outcomes.
    let replay = w.api.push(&d.token, &req, Encoding::Gzip).await;
    let got: Vec<_> = replay
        .results
        .iter()
        .map(|x| (x.status, x.first_status, x.code))
        .collect();
    assert_eq!(
        got,
        [
            (Duplicate, Some(Applied), None),
            (Duplicate, Some(Rejected), Some(ProblemCode::InvalidEvent)),
            (
                Duplicate,
                Some(Rejected),
                Some(ProblemCode::IntentKeyMismatch)
            ),
            (Duplicate, Some(Applied), None),
        ]
    );

    // Quarantined: visible in the stop's history, escalated, counted.
    let detail = w.api.stop(stop).await;
    assert_eq!(detail.view.status, StopStatus::Delivered);
    for (bad, code) in [
        (&bad_field, ProblemCode::InvalidEvent),
        (&bad_key, ProblemCode::IntentKeyMismatch),
    ] {
        let e = detail
            .events
            .iter()
            .find(|e| e.event_id == bad.event_id)
            .expect("rejected event visible in the stop history");
        assert_eq!((e.status, e.code), (Rejected, Some(code)));
    }
    let esc = w.api.escalations(false).await;
    for bad in [&bad_field, &bad_key] {
        assert!(
            esc.iter().any(|e| e.kind == EscalationKind::RejectedEvent
                && e.event_id == Some(bad.event_id)
                && e.stop_id == Some(stop)),
            "{esc:?}"
        );
    }
    let health = w.api.device(d.id).await;
    assert_eq!(health.events_rejected, 2);
    assert_eq!(health.last_applied_seq, 5);
}

#[tokio::test]
async fn an_event_id_reused_with_another_intent_is_refused_not_silently_lost() {
    let w = World::new();
    let mut d = w.device(0, 21).await;
    let stop = w.stops(0)[0];
    let first = d.note(stop, "gate is open");
    let mut second = d.note(stop, "dog in the yard");
    second.event_id = first.event_id;
    second.hlc = first.hlc;
    let r = w
        .api
        .push(
            &d.token,
            &d.request(vec![first, second]),
            Encoding::Identity,
        )
        .await;
    let answers: Vec<(PushStatus, Option<ProblemCode>)> =
        r.results.iter().map(|r| (r.status, r.code)).collect();
    assert_eq!(
        answers,
        vec![
            (PushStatus::Applied, None),
            (PushStatus::Rejected, Some(ProblemCode::EventIdReused))
        ],
        "no second `applied` whose effect the fold would drop"
    );
    assert_eq!(
        r.last_applied_seq, 2,
        "the rejection still advances the sequence"
    );
    let notes = w.api.stop(stop).await.view.notes;
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        w.api.escalations(false).await.iter().any(
            |e| e.kind == EscalationKind::RejectedEvent && e.detail.contains("event_id_reused")
        ),
        "the refusal is in front of a human"
    );
}

#[tokio::test]
async fn client_times_at_the_integer_limits_are_judged_without_overflow() {
    let w = World::new();
    let mut d = w.device(0, 22).await;
    let stop = w.stops(0)[0];
    let mut ahead = d.scan(stop, "PKG-1", ScanPhase::Loaded);
    ahead.device_time_ms = u64::MAX;
    let mut req = d.request(vec![ahead]);
    req.sent_at_ms = u64::MAX;
    let r = w.api.push(&d.token, &req, Encoding::Identity).await;
    assert_eq!(
        r.clock_offset_ms,
        i64::MAX,
        "a clock far ahead reads as far ahead"
    );
    assert_eq!(r.results[0].status, PushStatus::Applied);
    assert_eq!(
        r.results[0].code,
        Some(ProblemCode::ClockSkew),
        "flagged as skew, not as a decades-late replay"
    );
    let mut behind = d.scan(stop, "PKG-1", ScanPhase::OutForDelivery);
    behind.device_time_ms = 0;
    let mut req = d.request(vec![behind]);
    req.sent_at_ms = 0;
    let r = w.api.push(&d.token, &req, Encoding::Identity).await;
    assert!(r.clock_offset_ms < 0, "{}", r.clock_offset_ms);
    assert_eq!(r.results[0].status, PushStatus::Applied);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_that_drained_its_queue_reads_zero_queued() {
    use doorstep_shared::protocol::DeviceQueueReport;
    let w = World::new();
    let mut d = w.device(0, 7).await;
    let stops = w.stops(0);
    // Six events queued; the device sends four, then the last two, reporting its queue as it
    // is when it sends (the request's own events still in it).
    let events: Vec<EventEnvelope> = (0..6)
        .map(|i| d.scan(stops[i % 3], &format!("PKG-Q{i}"), ScanPhase::Loaded))
        .collect();
    let report = |queued: u64| DeviceQueueReport {
        queued_events: queued,
        oldest_unsynced_ms: Some(30_000),
        photos_pending: 1,
        rejected_events: 0,
    };
    let mut first = d.request(events[..4].to_vec());
    first.queue = Some(report(6));
    w.api.push(&d.token, &first, Encoding::Identity).await;
    let health = w.api.device(d.id).await;
    let queue = health.queue.expect("a queue was reported");
    assert_eq!(queue.queued_events, 2, "{queue:?}");
    assert!(
        queue.oldest_unsynced_ms.is_some_and(|age| age < 30_000),
        "what is left is newer than the settled events: {queue:?}"
    );

    let mut last = d.request(events[4..].to_vec());
    last.queue = Some(report(2));
    let answer = w.api.push(&d.token, &last, Encoding::Identity).await;
    assert_eq!(answer.last_applied_seq, 6);
    let queue = w
        .api
        .device(d.id)
        .await
        .queue
        .expect("a queue was reported");
    assert_eq!(
        queue,
        DeviceQueueReport {
            queued_events: 0,
            oldest_unsynced_ms: None,
            photos_pending: 1,
            rejected_events: 0,
        }
    );
}

/// The parcels courier `d`'s route plan names for its first stop, from its own pull.
async fn planned_parcels(w: &World, d: &harness::Device) -> (doorstep_shared::StopId, String) {
    let pulled = w.api.pull(&d.token, 0, 0).await;
    let plan = pulled
        .changes
        .iter()
        .find_map(|c| match &c.payload {
            EventPayload::RouteAssigned(p) => Some(p.clone()),
            _ => None,
        })
        .expect("the courier's route comes with the first pull");
    let stop = &plan.stops[0];
    let parcel = stop.parcels.first().expect("a planned parcel");
    (stop.stop_id, parcel.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mis_sorted_scan_is_escalated_and_does_not_block_the_parcels_own_courier() {
    let w = World::new();
    let mut right = w.device(0, 11).await;
    let mut wrong = w.device(1, 12).await;
    let (own_stop, parcel) = planned_parcels(&w, &right).await;
    // The wrong courier scans the parcel at a stop of its own route.
    let mis = wrong.scan(w.stops(1)[0], &parcel, ScanPhase::Loaded);
    let answer = w
        .api
        .push(&wrong.token, &wrong.request(vec![mis]), Encoding::Identity)
        .await;
    assert_eq!(answer.results[0].status, PushStatus::Rejected, "{answer:?}");
    assert_eq!(answer.results[0].code, Some(ProblemCode::ParcelMisSorted));
    assert_eq!(
        answer.last_applied_seq, 1,
        "a refused event still advances the sequence"
    );
    let escalated = w.api.escalations(false).await;
    assert!(
        escalated
            .iter()
            .any(|e| e.kind == EscalationKind::ParcelMisSorted && e.device_id == Some(wrong.id)),
        "{escalated:?}"
    );

    // The parcel's own courier scans it at its own stop: applied, not a conflict.
    let own = right.scan(own_stop, &parcel, ScanPhase::Loaded);
    let answer = w
        .api
        .push(&right.token, &right.request(vec![own]), Encoding::Identity)
        .await;
    assert_eq!(answer.results[0].status, PushStatus::Applied, "{answer:?}");
    assert_eq!(answer.results[0].code, None);
}
