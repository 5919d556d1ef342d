//! One story against the real `doorstep-server` over real HTTP on port 0, through the fault
//! injector: enroll, pull the route, work offline-ish, sync through loss, timeouts after commit
//! and duplicated requests; the server holds every event exactly once.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns panic on purpose

use courier_core::sync::backoff::BackoffConfig;
use courier_core::sync::breaker::BreakerConfig;
use courier_core::sync::budget::BudgetConfig;
use courier_core::transport::faulty::FaultProfile;
use courier_core::{
    AppendOutcome, Device, FaultyTransport, HttpTransport, RoundOutcome, SyncConfig, SyncEngine,
    SystemClock,
};
use doorstep_server::seed::{SeedOptions, seed_demo};
use doorstep_server::store::Store;
use doorstep_shared::event::{AttemptOutcome, DeliveryMethod, GeoPoint, ScanPhase};
use doorstep_shared::protocol::{EnrollRequest, PushStatus};
use doorstep_shared::{FailureReason, StopStatus};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_syncs_with_the_real_server_through_a_flaky_link() {
    let seed: u64 = std::env::var("DOORSTEP_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let server_clock = Arc::new(doorstep_server::clock::SystemClock);
    let app = doorstep_server::startup::build_app("sqlite::memory:", server_clock).unwrap();
    let now = courier_core::Clock::now_ms(&SystemClock);
    let world = seed_demo(
        &app,
        &SeedOptions {
            couriers: 1,
            stops_per_route: 6,
            seed,
            day: "2026-06-01".into(),
            day_start_ms: now,
            depot: GeoPoint {
                lat: 52.52,
                lon: 13.40,
            },
        },
    )
    .await
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(doorstep_server::startup::serve(
        listener,
        app.clone(),
        async {
            stop_rx.await.ok();
        },
    ));

    let dir = tempfile::tempdir().unwrap();
    let clock: Arc<dyn courier_core::Clock> = Arc::new(SystemClock);
    let device = Device::open(dir.path().join("outbox.db"), clock.clone(), seed).unwrap();
    let http = HttpTransport::new(&format!("http://{addr}"), Duration::from_secs(10)).unwrap();
    let request = EnrollRequest {
        code: world.couriers[0].enrollment_code.clone(),
        device_name: "integration handheld".into(),
        public_key: None,
    };
    let identity = courier_core::sync::enroll(&device, &http, &request)
        .await
        .unwrap();
    let profile = FaultProfile {
        request_loss: 0.1,
        response_loss: 0.3,
        duplicate: 0.25,
        timeout_ms: 50,
        ..FaultProfile::perfect()
    };
    let faulty = FaultyTransport::new(http, profile, seed, clock.clone());
    let config = SyncConfig {
        max_batch_events: 2,
        offline_poll_ms: 5,
        backoff: BackoffConfig {
            base_ms: 2,
            cap_ms: 20,
            max_retry_after_ms: 100,
        },
        breaker: BreakerConfig {
            failure_threshold: 5,
            open_ms: 20,
            max_open_ms: 100,
        },
        budget: BudgetConfig {
            capacity: 1_000.0,
            refill_per_minute: 1_000.0,
        },
        ..SyncConfig::default()
    };
    let mut engine = SyncEngine::new(device.clone(), faulty, config, seed);

    let drain = async |engine: &mut SyncEngine<_>| {
        for _ in 0..500 {
            match engine.sync_once().await {
                RoundOutcome::Synced { .. }
                    if engine.device().sync_status().unwrap().queued == 0 =>
                {
                    return;
                }
                RoundOutcome::Synced { .. } => {}
                // Pacing, not synchronisation: the engine's own backoff, a few ms here.
                RoundOutcome::RetryIn { wait, .. } => tokio::time::sleep(wait).await,
                other => panic!("seed {seed}: {other:?}"),
            }
        }
        panic!("seed {seed}: never drained");
    };
    drain(&mut engine).await;
    let route = device.route(None).unwrap().expect("route pulled");
    assert_eq!(route.stops.len(), 6, "seed {seed}");

    // A morning's work.
    for stop in &route.stops {
        for p in &stop.parcels {
            device.scan_parcel(p, ScanPhase::Loaded).unwrap();
            device.scan_parcel(p, ScanPhase::Loaded).unwrap(); // double scan
        }
    }
    for (i, stop) in route.stops.iter().enumerate() {
        assert!(matches!(
            device.arrive(stop.stop_id, None).unwrap(),
            AppendOutcome::Recorded(_)
        ));
        let outcome = if i % 3 == 2 {
            AttemptOutcome::Failed {
                reason: FailureReason::CustomerAbsent,
                detail: Some("nobody home".into()),
            }
        } else {
            AttemptOutcome::Delivered {
                method: DeliveryMethod::HandedToRecipient,
                recipient: None,
            }
        };
        device.record_attempt(stop.stop_id, 1, outcome).unwrap();
        device
            .add_note(stop.stop_id, device.new_note_id(), "all good")
            .unwrap();
    }
    drain(&mut engine).await;

    let events = device.events().unwrap();
    let status = device.sync_status().unwrap();
    assert_eq!(status.queued, 0, "seed {seed}");
    assert!(
        status.rejected.is_empty(),
        "seed {seed}: {:?}",
        status.rejected
    );
    assert!(status.clock_offset_ms.is_some_and(|o| o.abs() < 5_000));

    // Exactly once on the server, every stop in the state the driver saw.
    let mut on_server: HashMap<_, usize> = HashMap::new();
    for stop in &route.stops {
        let detail = app.store.stop_detail(stop.stop_id).unwrap().unwrap();
        for e in detail.events {
            if e.device_id == Some(identity.device_id) {
                assert_ne!(e.status, PushStatus::Rejected, "seed {seed}: {e:?}");
                *on_server.entry(e.event_id).or_default() += 1;
            }
        }
        let local = device.stop(stop.stop_id).unwrap().unwrap().summary.status;
        assert_eq!(
            detail.view.status, local,
            "seed {seed}: stop {}",
            stop.stop_id
        );
        assert!(matches!(
            local,
            StopStatus::Delivered | StopStatus::AttemptFailed { .. }
        ));
    }
    assert_eq!(on_server.len(), events.len(), "seed {seed}");
    assert!(on_server.values().all(|n| *n == 1), "seed {seed}");
    let health = app.store.device_health().unwrap();
    let mine = health
        .iter()
        .find(|h| h.device_id == identity.device_id)
        .unwrap();
    assert_eq!(mine.last_applied_seq, events.len() as u64);

    let faults = engine.transport().stats();
    eprintln!("seed {seed}: {} events, faults {faults:?}", events.len());
    assert!(
        faults.lost_responses > 0 && faults.duplicated > 0,
        "seed {seed}: no faults injected: {faults:?}"
    );

    stop_tx.send(()).unwrap();
    server.await.unwrap().unwrap();
}
