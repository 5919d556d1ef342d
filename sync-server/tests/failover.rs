//! Losing the database primary. Two `serve` replicas run on one multi-host URL over a primary
//! and its synchronous standby (crates/test-postgres); devices push batches continuously,
//! alternating replicas. The primary is SIGKILLed mid-stream and the standby promoted; devices
//! retry each batch until it is answered. Then, through the API only: every event ever answered
//! `applied` is in the log (lost = 0), none is there twice and no effect is applied twice
//! (duplicated = 0), every device's log is gap-free, and long-polls on either replica are woken
//! again by changes made through the other (both listeners reconnected to the new primary).
//! `cargo test -p doorstep-server --test failover`

mod harness;

use doorstep_shared::event::{EventEnvelope, EventPayload, ScanPhase, TimeWindow};
use doorstep_shared::protocol::{PushResponse, PushStatus};
use doorstep_shared::{DeviceId, EventId, StopId};
use doorstep_test_postgres::ReplicatedPair;
use harness::{Api, Device, Encoding, Resp, TestServer, demo_seed_sized};
use rand::Rng;
use serde_json::json;
use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};
use tokio::sync::watch;

const DEVICES: usize = 8;
const BATCH: usize = 5;
/// Batches every device has answered before the primary is killed.
const BEFORE_KILL: usize = 3;
/// Batches every device has answered after the promotion before it stops.
const AFTER_PROMOTION: usize = 4;
/// Bounds one device's run: past this many batches the test fails.
const MAX_BATCHES: usize = 400;
/// One batch unanswered for this long fails the test.
const BATCH_DEADLINE: Duration = Duration::from_secs(45);
/// One push request taking this long fails the test (the server must never hang).
const REQUEST_DEADLINE: Duration = Duration::from_secs(30);
const FIRST_BACKOFF: Duration = Duration::from_millis(20);
const LAST_BACKOFF: Duration = Duration::from_millis(500);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Running,
    PrimaryKilled(Instant),
    Promoted(Instant),
}

/// What one device did, as the device itself saw it.
#[derive(Debug, Default)]
struct DeviceRun {
    id: Option<DeviceId>,
    token: String,
    /// Every event it created, in `device_seq` order; all of them were answered in the end.
    events: Vec<EventEnvelope>,
    /// Events answered `applied`, or `duplicate` of an applied one (its first answer was lost).
    applied: HashSet<EventId>,
    answered_applied: usize,
    pushes: usize,
    unavailable: usize,
    transport_errors: usize,
    deferred: usize,
    /// When a request sent after the kill first had an event applied.
    recovered_at: Option<Instant>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_the_primary_mid_stream_loses_nothing_and_applies_nothing_twice() {
    let started = Instant::now();
    let pair = tokio::task::spawn_blocking(|| ReplicatedPair::start().expect("start the pair"))
        .await
        .expect("pair");
    let url = pair.fresh_database();
    let seed = demo_seed_sized(&url, DEVICES, 4);
    assert_eq!(seed.couriers.len(), DEVICES, "one courier per device");
    let mut servers = [
        TestServer::start_url(&url, &[]),
        TestServer::start_url(&url, &[]),
    ];
    let apis: [Api; 2] = [
        Api::new(&servers[0].base, &seed.dispatcher_token),
        Api::new(&servers[1].base, &seed.dispatcher_token),
    ];
    eprintln!(
        "failover: pair and two replicas up after {:?}",
        started.elapsed()
    );

    let (phase_tx, phase_rx) = watch::channel(Phase::Running);
    let (ready_tx, mut ready_rx) = watch::channel(0usize);
    let mut tasks = Vec::new();
    for (i, courier) in seed.couriers.iter().enumerate() {
        let enrolled = apis[i % 2]
            .enroll(&courier.enrollment_code, &format!("handheld-{i}"))
            .await;
        let device = Device::new(
            enrolled.device_id,
            enrolled.courier_id,
            enrolled.token,
            i as u64,
        );
        let (apis, stops) = (apis.clone(), courier.stops.clone());
        let (phase, ready) = (phase_rx.clone(), ready_tx.clone());
        tasks.push(tokio::spawn(run_device(
            i, device, stops, apis, phase, ready,
        )));
    }

    drop(ready_tx);
    wait_until_ready(&mut ready_rx, &mut tasks).await;
    let pair = tokio::task::spawn_blocking(move || {
        pair.kill_primary().expect("kill the primary");
        pair
    })
    .await
    .expect("kill");
    // From here on nothing reaches the old primary: its port refuses connections.
    let killed_at = Instant::now();
    phase_tx.send_replace(Phase::PrimaryKilled(killed_at));
    let (pair, promotion) = tokio::task::spawn_blocking(move || {
        let took = pair.promote_standby().expect("promote the standby");
        (pair, took)
    })
    .await
    .expect("promotion");
    let promoted_at = Instant::now();
    phase_tx.send_replace(Phase::Promoted(promoted_at));

    let mut runs = Vec::new();
    for t in tasks {
        runs.push(t.await.expect("device task"));
    }
    for s in &mut servers {
        assert!(s.is_running(), "a replica died during the failover");
    }

    // ---- the figures, as devices saw them
    let applied: usize = runs.iter().map(|r| r.applied.len()).sum();
    let pushes: usize = runs.iter().map(|r| r.pushes).sum();
    let unavailable: usize = runs.iter().map(|r| r.unavailable).sum();
    let deferred: usize = runs.iter().map(|r| r.deferred).sum();
    let transport: usize = runs.iter().map(|r| r.transport_errors).sum();
    let recovered: Vec<Duration> = runs
        .iter()
        .map(|r| {
            r.recovered_at
                .expect("every device had events applied after the kill")
                .duration_since(killed_at)
        })
        .collect();
    let first = recovered.iter().min().expect("devices");
    let last = recovered.iter().max().expect("devices");
    eprintln!(
        "failover: {applied} events applied by {DEVICES} devices in {pushes} pushes; retries: \
         {unavailable} pushes answered 503, {deferred} events deferred, {transport} transport \
         errors; promote_standby returned after {promotion:?}; from the primary's death to the \
         first device served {first:?}, to every device served {last:?}"
    );
    assert!(
        unavailable + deferred + transport > 0,
        "the kill landed mid-stream: some push had to be retried"
    );

    // ---- the log, through the API only
    let mut lost = 0;
    let mut duplicated = 0;
    for (i, run) in runs.iter().enumerate() {
        let id = run.id.expect("device id");
        let log = apis[i % 2].device_log(id).await;
        let seqs: Vec<u64> = log.iter().map(|e| e.device_seq.unwrap_or(0)).collect();
        let want: Vec<u64> = (1..=run.events.len() as u64).collect();
        assert_eq!(
            seqs, want,
            "device {i}: the log is gap-free, every event once"
        );
        let ids: HashSet<EventId> = log.iter().map(|e| e.event_id).collect();
        duplicated += log.len() - ids.len();
        lost += run.applied.iter().filter(|e| !ids.contains(e)).count();
        for (row, ev) in log.iter().zip(&run.events) {
            assert_eq!(
                row.event_id, ev.event_id,
                "device {i} seq {}",
                ev.device_seq
            );
            assert_eq!(row.status, PushStatus::Applied, "device {i} {row:?}");
        }
        let intents: HashSet<&str> = log.iter().map(|e| e.intent_key.as_str()).collect();
        duplicated += log.len() - intents.len();
        assert_eq!(
            apis[(i + 1) % 2].device(id).await.last_applied_seq,
            run.events.len() as u64,
            "device {i}: the other replica agrees"
        );
        duplicated += duplicated_stop_effects(&apis[(i + 1) % 2], run).await;
    }
    eprintln!("failover: lost = {lost}, duplicated = {duplicated}");
    assert_eq!(lost, 0, "events answered applied are missing from the log");
    assert_eq!(duplicated, 0, "events or effects applied twice");

    // ---- both listeners follow the new primary
    let db = url
        .rsplit('/')
        .next()
        .and_then(|tail| tail.split('?').next())
        .expect("database name in the URL");
    let listeners =
        "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'LISTEN doorstep_changes%'";
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let n = pair
            .query(pair.standby_port(), db, listeners)
            .expect("count listeners on the promoted standby");
        if n == "2" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "listeners on the new primary: {n}, want one per replica"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let window = |hours: u64| TimeWindow {
        start_ms: harness::now_ms() + hours * 3_600_000,
        end_ms: harness::now_ms() + (hours + 1) * 3_600_000,
    };
    let (stop_a, stop_b) = (seed.couriers[0].stops[0], seed.couriers[1].stops[0]);
    wakes_across(&apis[0], &apis[1], &runs[0].token, stop_a, window(2)).await;
    wakes_across(&apis[1], &apis[0], &runs[1].token, stop_b, window(3)).await;
    drop(pair);
    eprintln!("failover: whole test {:?}", started.elapsed());
}

/// Waits until every device has answered [`BEFORE_KILL`] batches; a device task that ended
/// (it panicked) or a minute without getting there fails the test at once.
async fn wait_until_ready(
    ready: &mut watch::Receiver<usize>,
    tasks: &mut Vec<tokio::task::JoinHandle<DeviceRun>>,
) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while *ready.borrow_and_update() < DEVICES {
        if let Some(done) = tasks.iter().position(|t| t.is_finished()) {
            tasks.remove(done).await.expect("device task");
            panic!("a device stopped before the primary was killed");
        }
        assert!(
            Instant::now() < deadline,
            "devices did not get going: {} of {DEVICES} ready",
            *ready.borrow()
        );
        let _ = tokio::time::timeout(Duration::from_millis(100), ready.changed()).await;
    }
}

/// One device: pushes batches of fresh events, alternating replicas, until it has had
/// [`AFTER_PROMOTION`] batches answered after the promotion.
async fn run_device(
    index: usize,
    mut device: Device,
    stops: Vec<StopId>,
    apis: [Api; 2],
    phase: watch::Receiver<Phase>,
    ready: watch::Sender<usize>,
) -> DeviceRun {
    let mut run = DeviceRun {
        id: Some(device.id),
        token: device.token.clone(),
        ..DeviceRun::default()
    };
    let mut acked = 0usize;
    let (mut batches, mut after_promotion) = (0usize, 0usize);
    loop {
        let now = *phase.borrow();
        if matches!(now, Phase::Promoted(_)) && after_promotion >= AFTER_PROMOTION {
            return run;
        }
        assert!(batches < MAX_BATCHES, "device {index}: no end in sight");
        while run.events.len() < acked + BATCH {
            let ev = next_event(index, &mut device, &stops, run.events.len());
            run.events.push(ev);
        }
        let batch = run.events[acked..acked + BATCH].to_vec();
        let (sent_at, resp) = push_until_answered(index, &device, batch, &apis, &mut run).await;
        assert!(
            resp.last_applied_seq as usize >= acked,
            "device {index}: last_applied_seq went back"
        );
        let mut applied_now = false;
        for r in &resp.results {
            match (r.status, r.first_status) {
                (PushStatus::Applied, _) => {
                    run.answered_applied += 1;
                    applied_now = true;
                    run.applied.insert(r.event_id);
                }
                (PushStatus::Duplicate, Some(PushStatus::Applied)) => {
                    run.applied.insert(r.event_id);
                }
                (PushStatus::Deferred, _) => run.deferred += 1,
                _ => panic!("device {index}: unexpected answer {r:?}"),
            }
        }
        acked = resp.last_applied_seq as usize;
        batches += 1;
        let current = *phase.borrow();
        let killed_before_sending = match current {
            Phase::Running => false,
            Phase::PrimaryKilled(at) => sent_at > at,
            // The kill came before the promotion: a request sent after the promotion was too.
            Phase::Promoted(at) => sent_at > at,
        };
        if applied_now && run.recovered_at.is_none() && killed_before_sending {
            run.recovered_at = Some(Instant::now());
        }
        if matches!(current, Phase::Promoted(at) if sent_at > at) {
            after_promotion += 1;
        }
        if batches == BEFORE_KILL {
            ready.send_modify(|n| *n += 1);
        }
    }
}

/// Sends `batch` until a replica answers 200, alternating replicas, with full-jitter backoff.
/// A 503 must be a problem document with a stable code; any other status fails the test.
/// Returns when the answered request was sent, and the answer.
async fn push_until_answered(
    index: usize,
    device: &Device,
    batch: Vec<EventEnvelope>,
    apis: &[Api; 2],
    run: &mut DeviceRun,
) -> (Instant, PushResponse) {
    let first_try = Instant::now();
    let mut backoff = FIRST_BACKOFF;
    loop {
        let api = &apis[(index + run.pushes) % 2];
        run.pushes += 1;
        let sent_at = Instant::now();
        let req = device.request(batch.clone());
        let answer = tokio::time::timeout(
            REQUEST_DEADLINE,
            api.try_push(&device.token, &req, Encoding::Identity),
        )
        .await
        .unwrap_or_else(|_| panic!("device {index}: a push hung for {REQUEST_DEADLINE:?}"));
        match answer {
            Ok(r) if r.status == 200 => return (sent_at, r.json()),
            Ok(r) if r.status == 503 => {
                assert_transient_problem(index, &r);
                run.unavailable += 1;
            }
            Ok(r) => panic!(
                "device {index}: push answered {}: {}",
                r.status,
                String::from_utf8_lossy(&r.body)
            ),
            Err(_) => run.transport_errors += 1,
        }
        assert!(
            first_try.elapsed() < BATCH_DEADLINE,
            "device {index}: a batch stayed unanswered for {BATCH_DEADLINE:?}"
        );
        let pause = backoff.mul_f64(rand::rng().random::<f64>());
        tokio::time::sleep(pause).await;
        backoff = (backoff * 2).min(LAST_BACKOFF);
    }
}

#[track_caller]
fn assert_transient_problem(index: usize, r: &Resp) {
    let text = String::from_utf8_lossy(&r.body);
    assert_eq!(
        r.content_type, "application/problem+json",
        "device {index}: {text}"
    );
    let p: doorstep_shared::Problem = r.json();
    assert!(
        ["unavailable", "storage_busy"].contains(&p.code.as_str()),
        "device {index}: a 503 with an unexpected code: {text}"
    );
}

/// A realistic mix: notes and extra parcel scans on the route's stops, and location fixes.
/// Barcodes are global, so each device scans its own.
fn next_event(index: usize, device: &mut Device, stops: &[StopId], n: usize) -> EventEnvelope {
    let stop = stops[n % stops.len()];
    match n % 3 {
        0 => device.note(stop, &format!("note {n}")),
        1 => device.scan(stop, &format!("EXTRA-{index}-{n}"), ScanPhase::Loaded),
        _ => device.location(),
    }
}

/// Events of `run`'s device that appear more than once in the detail of the stop they name,
/// after checking every stop event the device created is there.
async fn duplicated_stop_effects(api: &Api, run: &DeviceRun) -> usize {
    let mut per_stop: BTreeMap<StopId, HashSet<EventId>> = BTreeMap::new();
    for ev in &run.events {
        let stop = match &ev.payload {
            EventPayload::NoteAdded(n) => n.stop_id,
            EventPayload::ParcelScanned(s) => s.stop_id,
            _ => continue,
        };
        per_stop.entry(stop).or_default().insert(ev.event_id);
    }
    assert!(!per_stop.is_empty(), "the device touched stops");
    let mut duplicated = 0;
    for (stop, created) in per_stop {
        let detail = api.stop(stop).await;
        let mine: Vec<EventId> = detail
            .events
            .iter()
            .filter(|e| e.device_id == run.id)
            .map(|e| e.event_id)
            .collect();
        let distinct: HashSet<EventId> = mine.iter().copied().collect();
        duplicated += mine.len() - distinct.len();
        assert_eq!(distinct, created, "stop {stop}: every event once");
    }
    duplicated
}

/// A long-poll on `poller`'s replica is woken, within 20 s of a 30 s wait, by a reschedule
/// made through `writer`: `poller`'s listener is connected to the writable host.
async fn wakes_across(writer: &Api, poller: &Api, token: &str, stop: StopId, window: TimeWindow) {
    let mut cursor = 0;
    loop {
        let p = poller.pull(token, cursor, 0).await;
        cursor = p.cursor;
        if !p.has_more {
            break;
        }
    }
    let waiting = {
        let (api, token) = (poller.clone(), token.to_owned());
        tokio::spawn(async move {
            tokio::time::timeout(Duration::from_secs(20), api.pull(&token, cursor, 30_000)).await
        })
    };
    let r = writer
        .stop_command(
            stop,
            "reschedule",
            &json!({ "window": window }),
            Some(&format!("failover-{stop}")),
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let pulled = waiting
        .await
        .expect("poller")
        .expect("the long-poll was not woken within 20 s: a listener did not reconnect");
    assert!(
        pulled.changes.iter().any(|c| matches!(
            &c.payload,
            EventPayload::StopRescheduled(e) if e.stop_id == stop && e.window == window
        )),
        "the woken pull carries the change: {pulled:?}"
    );
}
