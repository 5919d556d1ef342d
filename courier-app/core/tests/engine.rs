//! The sync engine against the in-process fake server, through the fault injector, under
//! tokio's paused clock (virtual time, no real sleeps).
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns panic on purpose

mod common;

use common::*;
use courier_core::sync::breaker::BreakerConfig;
use courier_core::sync::budget::BudgetConfig;
use courier_core::testing::{FakeMode, FakeServer};
use courier_core::transport::faulty::FaultProfile;
use courier_core::{
    AppendOutcome, Device, FaultyTransport, RoundOutcome, SyncConfig, SyncEngine, TokioClock,
};
use doorstep_shared::event::{AttemptOutcome, DeliveryMethod, ScanPhase};
use doorstep_shared::protocol::PushStatus;
use doorstep_shared::{FailureReason, StopStatus};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Does one random plausible thing a driver does. Returns whether an event was recorded.
fn random_command(device: &Device, rng: &mut StdRng, stops: usize) -> bool {
    let s = rng.random_range(0..stops);
    let stop = stop_id(s);
    let outcome = match rng.random_range(0..6) {
        0 => device.scan_parcel(&parcel(s, rng.random_range(0..2)), ScanPhase::Loaded),
        1 => device.scan_parcel(&parcel(s, 0), ScanPhase::OutForDelivery),
        2 => device.arrive(stop, None),
        3 => {
            let next = device.stop(stop).unwrap().unwrap().summary.next_attempt;
            let outcome = if rng.random_bool(0.5) {
                AttemptOutcome::Delivered {
                    method: DeliveryMethod::HandedToNeighbour,
                    recipient: None,
                }
            } else {
                AttemptOutcome::Failed {
                    reason: FailureReason::CustomerAbsent,
                    detail: None,
                }
            };
            device.record_attempt(stop, next, outcome)
        }
        4 => device.add_note(stop, device.new_note_id(), "random note"),
        _ => device.edit_access_notes(stop, &format!("code {}", rng.random_range(0..3))),
    };
    matches!(outcome.unwrap(), AppendOutcome::Recorded(_))
}

/// Syncs until everything is settled, waiting out backoffs in virtual time.
async fn drain<T: courier_core::Transport>(engine: &mut SyncEngine<T>, seed: u64) {
    for _ in 0..10_000 {
        match engine.sync_once().await {
            RoundOutcome::Synced { .. } if engine.device().sync_status().unwrap().queued == 0 => {
                return;
            }
            RoundOutcome::Synced { .. } => {}
            RoundOutcome::RetryIn { wait, .. } => tokio::time::sleep(wait).await,
            other => panic!("seed {seed}: unexpected {other:?}"),
        }
    }
    panic!("seed {seed}: never drained");
}

#[tokio::test(start_paused = true)]
async fn flaky_network_delivers_every_event_exactly_once() {
    for seed in seeds() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(TokioClock::new(T0));
        let server = Arc::new(FakeServer::new(clock.clone()));
        let device = enrolled(&dir, &server, clock.clone(), 6).await;
        let profile = FaultProfile {
            request_loss: 0.15,
            response_loss: 0.2,
            duplicate: 0.2,
            latency_min_ms: 20,
            latency_max_ms: 800,
            bandwidth_bps: Some(256_000),
            timeout_ms: 5_000,
            ..FaultProfile::perfect()
        };
        let faulty = Arc::new(FaultyTransport::new(
            server.clone(),
            profile,
            seed,
            clock.clone(),
        ));
        let config = SyncConfig {
            max_batch_events: 7,
            ..SyncConfig::default()
        };
        let mut engine = SyncEngine::new(device.clone(), faulty.clone(), config, seed);
        let mut rng = StdRng::seed_from_u64(seed);
        for step in 0..300 {
            random_command(&device, &mut rng, 6);
            tokio::time::sleep(Duration::from_millis(rng.random_range(0..2_000))).await;
            if step % 10 == 9
                && let RoundOutcome::RetryIn { wait, .. } = engine.sync_once().await
            {
                tokio::time::sleep(wait.min(Duration::from_secs(5))).await;
            }
        }
        faulty.set_profile(FaultProfile::perfect());
        drain(&mut engine, seed).await;

        let events = device.events().unwrap();
        let facts = server.facts();
        let mut seen: HashMap<_, usize> = HashMap::new();
        for f in &facts {
            *seen.entry(f.event.event_id).or_default() += 1;
        }
        assert!(!events.is_empty(), "seed {seed}: no events");
        for e in &events {
            assert_eq!(
                seen.get(&e.event_id),
                Some(&1),
                "seed {seed}: event #{} not exactly once",
                e.device_seq
            );
        }
        assert_eq!(
            facts.len(),
            events.len(),
            "seed {seed}: unexpected events on the server"
        );
        assert!(
            facts.iter().all(|f| f.status == PushStatus::Applied),
            "seed {seed}"
        );
        let stats = faulty.stats();
        eprintln!(
            "seed {seed}: {} events, faults {stats:?}, engine {:?}",
            events.len(),
            engine.stats()
        );
        assert!(
            stats.lost_responses > 0 && stats.duplicated > 0 && stats.lost_requests > 0,
            "seed {seed}: the profile injected nothing: {stats:?}"
        );
        let status = device.sync_status().unwrap();
        assert_eq!(
            (status.queued, status.rejected.len()),
            (0, 0),
            "seed {seed}"
        );
        assert!(device.integrity_ok().unwrap());
    }
}

fn hostile_config() -> SyncConfig {
    SyncConfig {
        budget: BudgetConfig {
            capacity: 5.0,
            refill_per_minute: 2.0,
        },
        breaker: BreakerConfig {
            failure_threshold: 3,
            open_ms: 30_000,
            max_open_ms: 300_000,
        },
        ..SyncConfig::default()
    }
}

async fn broken_server_forever(mode: FakeMode) {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(TokioClock::new(T0));
    let server = Arc::new(FakeServer::new(clock.clone()));
    let device = enrolled(&dir, &server, clock.clone(), 3).await;
    for s in 0..3 {
        device
            .scan_parcel(&parcel(s, 0), ScanPhase::Loaded)
            .unwrap();
        device
            .scan_parcel(&parcel(s, 1), ScanPhase::Loaded)
            .unwrap();
    }
    server.set_mode(mode.clone());
    let before = server.stats();
    let config = hostile_config();
    let engine = SyncEngine::new(device.clone(), server.clone(), config.clone(), 11);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut status_rx = device.subscribe_status();
    let task = tokio::spawn(engine.run(stop_rx));
    let mut saw_open = false;
    let hours = 3;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(hours * 3_600);
    while tokio::time::Instant::now() < deadline {
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => {}
            changed = status_rx.changed() => {
                changed.unwrap();
                let s = status_rx.borrow_and_update().clone();
                saw_open |= matches!(s.breaker, courier_core::sync::breaker::BreakerState::Open { .. });
            }
        }
    }
    stop_tx.send(true).unwrap();
    let mut engine = task.await.unwrap();
    let stats = engine.stats().clone();
    let after = server.stats();
    let requests =
        (after.push_requests + after.pull_requests) - (before.push_requests + before.pull_requests);

    eprintln!("{mode:?}: {requests} requests in {hours} h, {stats:?}");
    // Everything stays on the device.
    let status = device.sync_status().unwrap();
    assert_eq!(status.queued, 6, "{mode:?}");
    assert_eq!(device.events().unwrap().len(), 6);
    // Retries stay within the budget: capacity + elapsed × rate (+ the first attempt).
    let minutes = (hours * 60) as f64;
    let bound = 1.0 + config.budget.capacity + minutes * config.budget.refill_per_minute;
    assert!(
        stats.retries as f64 <= bound,
        "{mode:?}: {} retries > {bound}",
        stats.retries
    );
    assert_eq!(requests, stats.requests, "{mode:?}: every request counted");
    // The breaker opened, half-opened (probes) and kept most of the load off the server.
    assert!(saw_open && stats.breaker_opened >= 1, "{mode:?}: {stats:?}");
    assert!(stats.breaker_probes >= 3, "{mode:?}: {stats:?}");
    assert!(requests < 120, "{mode:?}: {requests} requests in {hours} h");
    assert!(status.last_error.is_some());

    // The server heals: everything drains through a half-open probe.
    server.set_mode(FakeMode::Normal);
    drain(&mut engine, 0).await;
    assert_eq!(server.facts().len(), 6);
    assert!(matches!(
        device.sync_status().unwrap().breaker,
        courier_core::sync::breaker::BreakerState::Closed { .. }
    ));
}

#[tokio::test(start_paused = true)]
async fn a_server_answering_500_forever_is_held_off_by_budget_and_breaker() {
    broken_server_forever(FakeMode::Fail {
        status: 500,
        retry_after_s: None,
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_server_answering_garbage_forever_is_held_off_by_budget_and_breaker() {
    broken_server_forever(FakeMode::Garbage).await;
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(TokioClock::new(T0));
    let server = Arc::new(FakeServer::new(clock.clone()));
    let device = enrolled(&dir, &server, clock.clone(), 1).await;
    device
        .scan_parcel(&parcel(0, 0), ScanPhase::Loaded)
        .unwrap();
    server.set_mode(FakeMode::Fail {
        status: 503,
        retry_after_s: Some(120),
    });
    let mut engine = SyncEngine::new(device.clone(), server.clone(), SyncConfig::default(), 3);
    match engine.sync_once().await {
        RoundOutcome::RetryIn { wait, .. } => assert!(wait >= Duration::from_secs(120), "{wait:?}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn rejected_events_stay_visible_and_do_not_block_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(TokioClock::new(T0));
    let server = Arc::new(FakeServer::new(clock.clone()));
    let device = enrolled(&dir, &server, clock.clone(), 2).await;
    server.poison_kind("note_added");
    device
        .scan_parcel(&parcel(0, 0), ScanPhase::Loaded)
        .unwrap();
    device
        .add_note(stop_id(0), device.new_note_id(), "poison")
        .unwrap();
    device
        .scan_parcel(&parcel(1, 0), ScanPhase::Loaded)
        .unwrap();
    let mut engine = SyncEngine::new(device.clone(), server.clone(), SyncConfig::default(), 3);
    assert!(matches!(
        engine.sync_once().await,
        RoundOutcome::Synced { settled: 3, .. }
    ));
    let status = device.sync_status().unwrap();
    assert_eq!(status.queued, 0);
    assert_eq!(status.rejected.len(), 1);
    assert_eq!(status.rejected[0].kind, "note_added");
    assert_eq!(
        status.rejected[0].code.as_deref(),
        Some("illegal_transition")
    );
    assert_eq!(device.events().unwrap().len(), 3, "nothing dropped");
    // The projection no longer shows the refused note.
    let detail = device.stop(stop_id(0)).unwrap().unwrap();
    assert!(detail.view.notes.is_empty());
    assert_eq!(detail.events[1].server_status.as_deref(), Some("rejected"));
}

#[tokio::test(start_paused = true)]
async fn oversized_batches_are_split_and_a_restored_server_is_refilled() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(TokioClock::new(T0));
    let server = Arc::new(FakeServer::new(clock.clone()));
    let device = enrolled(&dir, &server, clock.clone(), 5).await;
    for i in 0..200 {
        device
            .add_note(
                stop_id(i % 5),
                device.new_note_id(),
                &format!("note number {i} {}", "x".repeat(i)),
            )
            .unwrap();
    }
    server.set_max_body_bytes(4_000);
    let config = SyncConfig {
        encoding: courier_core::transport::Encoding::Gzip,
        ..SyncConfig::default()
    };
    let mut engine = SyncEngine::new(device.clone(), server.clone(), config, 3);
    drain(&mut engine, 0).await;
    assert!(engine.stats().batches_split > 0);
    assert_eq!(server.facts().len(), 200);
    // The server loses everything after #50 (restored from a backup): the device re-sends.
    let id = device.identity().unwrap().unwrap().device_id;
    server.rewind(id, 50);
    device
        .add_note(stop_id(0), device.new_note_id(), "after the restore")
        .unwrap();
    drain(&mut engine, 0).await;
    assert_eq!(server.last_applied(id), 201);
    let mut ids: Vec<_> = server.facts().iter().map(|f| f.event.event_id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 201);
}

#[tokio::test(start_paused = true)]
async fn office_changes_reach_the_projection() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(TokioClock::new(T0));
    let server = Arc::new(FakeServer::new(clock.clone()));
    let device = enrolled(&dir, &server, clock.clone(), 3).await;
    device
        .scan_parcel(&parcel(2, 0), ScanPhase::Loaded)
        .unwrap();
    server.publish(doorstep_shared::EventPayload::StopCancelled(
        doorstep_shared::event::StopCancelled {
            stop_id: stop_id(1),
            reason: "customer moved".into(),
        },
    ));
    let window = doorstep_shared::event::TimeWindow {
        start_ms: T0 + 7_200_000,
        end_ms: T0 + 9_000_000,
    };
    server.publish(doorstep_shared::EventPayload::StopRescheduled(
        doorstep_shared::event::StopRescheduled {
            stop_id: stop_id(2),
            window,
        },
    ));
    let mut engine = SyncEngine::new(device.clone(), server.clone(), SyncConfig::default(), 3);
    assert!(matches!(
        engine.sync_once().await,
        RoundOutcome::Synced { pulled: 2, .. }
    ));
    let route = device.route(Some("2026-06-01")).unwrap().unwrap();
    assert_eq!(route.stops[1].status, StopStatus::Cancelled);
    assert_eq!(route.stops[2].status, StopStatus::Loaded);
    assert_eq!(route.stops[2].window, window);
    let status = device.sync_status().unwrap();
    assert_eq!(status.pull_cursor, 3);
    assert!(status.clock_offset_ms.is_some());
}

#[tokio::test(start_paused = true)]
async fn an_unknown_token_asks_for_enrollment_and_keeps_events() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(TokioClock::new(T0));
    let server = Arc::new(FakeServer::new(clock.clone()));
    let device = enrolled(&dir, &server, clock.clone(), 1).await;
    device
        .scan_parcel(&parcel(0, 0), ScanPhase::Loaded)
        .unwrap();
    let mut identity = device.identity().unwrap().unwrap();
    identity.token = "revoked".into();
    device.set_identity(&identity).unwrap();
    let mut engine = SyncEngine::new(device.clone(), server.clone(), SyncConfig::default(), 3);
    assert_eq!(engine.sync_once().await, RoundOutcome::NeedsEnrollment);
    let status = device.sync_status().unwrap();
    assert!(status.needs_reenroll);
    assert_eq!(status.queued, 1);
}

#[tokio::test(start_paused = true)]
async fn offline_costs_no_budget_and_polls_again_soon() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(TokioClock::new(T0));
    let server = Arc::new(FakeServer::new(clock.clone()));
    let device = enrolled(&dir, &server, clock.clone(), 1).await;
    device
        .scan_parcel(&parcel(0, 0), ScanPhase::Loaded)
        .unwrap();
    let faulty = Arc::new(FaultyTransport::new(
        server.clone(),
        FaultProfile::offline(),
        1,
        clock.clone(),
    ));
    let mut engine = SyncEngine::new(device.clone(), faulty.clone(), SyncConfig::default(), 3);
    for _ in 0..100 {
        match engine.sync_once().await {
            RoundOutcome::RetryIn { wait, .. } => tokio::time::sleep(wait).await,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(engine.stats().retries, 0);
    assert_eq!(engine.stats().breaker_opened, 0);
    let status = device.sync_status().unwrap();
    assert_eq!(
        status.connectivity,
        courier_core::sync::Connectivity::Offline
    );
    assert_eq!(status.oldest_unsynced_age_ms, Some(100 * 15_000));
    // A push refused for want of a network put nothing on the wire, and is not counted as if.
    assert!(engine.stats().push_requests >= 100);
    assert_eq!(engine.stats().encoded_bytes_pushed, 0);
    faulty.set_offline(false);
    drain(&mut engine, 0).await;
    assert_eq!(server.facts().len(), 1);
    // Online, every counted byte is one the server received (this link neither loses nor
    // duplicates).
    assert!(engine.stats().encoded_bytes_pushed > 0);
    assert_eq!(engine.stats().encoded_bytes_pushed, faulty.stats().bytes_up);
}

#[tokio::test(start_paused = true)]
async fn the_retry_budget_binds_when_the_breaker_would_not() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(TokioClock::new(T0));
    let server = Arc::new(FakeServer::new(clock.clone()));
    let device = enrolled(&dir, &server, clock.clone(), 1).await;
    device
        .scan_parcel(&parcel(0, 0), ScanPhase::Loaded)
        .unwrap();
    server.set_mode(FakeMode::Fail {
        status: 503,
        retry_after_s: None,
    });
    let config = SyncConfig {
        budget: BudgetConfig {
            capacity: 3.0,
            refill_per_minute: 1.0,
        },
        breaker: BreakerConfig {
            failure_threshold: u32::MAX,
            ..BreakerConfig::default()
        },
        backoff: courier_core::sync::backoff::BackoffConfig {
            base_ms: 100,
            cap_ms: 1_000,
            max_retry_after_ms: 1_000,
        },
        ..SyncConfig::default()
    };
    let mut engine = SyncEngine::new(device.clone(), server.clone(), config, 3);
    let end = tokio::time::Instant::now() + Duration::from_secs(30 * 60);
    while tokio::time::Instant::now() < end {
        if let RoundOutcome::RetryIn { wait, .. } = engine.sync_once().await {
            tokio::time::sleep(wait).await;
        }
    }
    let retries = engine.stats().retries;
    // 3 up front + 1 per minute; the backoff alone would have allowed ~3,600.
    assert!((25..=34).contains(&retries), "{retries} retries");
    assert_eq!(device.sync_status().unwrap().queued, 1);
}
