//! Crash safety: a device *process* is killed with SIGKILL at random points during capture and
//! sync, 100 times, against the real `doorstep-server` (real HTTP on port 0, real SQLite file).
//! After the restarts every event the device had confirmed to the driver is on the server
//! exactly once, no `device_seq` was reused, and `PRAGMA integrity_check` passes on the outbox.
//!
//! The device is this very test binary, re-executed to run only [`crash_child`] with
//! `DOORSTEP_CRASH_CHILD=1`. The child prints one line per confirmed event (after the command
//! returned `Recorded`, i.e. durable) and one line when a sync round starts and ends; the parent
//! kills it after a seeded number of lines, sometimes right after a `sync-start`.
//!
//! Reproduce a failure with `DOORSTEP_SEED=<seed printed> cargo test -p courier-core --test crash`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use courier_core::sync::backoff::BackoffConfig;
use courier_core::{AppendOutcome, Device, HttpTransport, RoundOutcome, SyncConfig, SyncEngine};
use doorstep_server::seed::{SeedOptions, seed_demo};
use doorstep_shared::event::{AttemptOutcome, DeliveryMethod, GeoPoint, ScanPhase};
use doorstep_shared::protocol::EnrollRequest;
use doorstep_shared::{FailureReason, StopStatus};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const KILLS: usize = 100;
const CHILD_ENV: &str = "DOORSTEP_CRASH_CHILD";

/// One event the child reported as confirmed.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Confirmed {
    event_id: String,
    seq: u64,
    intent: String,
}

fn parse_line(line: &str) -> Option<Confirmed> {
    let mut parts = line.strip_prefix("confirmed ")?.splitn(3, ' ');
    Some(Confirmed {
        event_id: parts.next()?.to_owned(),
        seq: parts.next()?.parse().ok()?,
        intent: parts.next()?.to_owned(),
    })
}

/// Kills the child if the parent panics, so no device process outlives the test.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn sigkill_during_capture_and_sync_loses_nothing() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    let seed: u64 = std::env::var("DOORSTEP_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    // Shown by the harness when the test fails.
    eprintln!("crash test seed: {seed} (DOORSTEP_SEED={seed} reproduces the kill schedule)");
    let started = Instant::now();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let server_db = dir.path().join("server.db");
    let outbox = dir.path().join("outbox.db");

    // The real server on a real SQLite file, on port 0.
    let (app, code, listener) = rt.block_on(async {
        let clock = Arc::new(doorstep_server::clock::SystemClock);
        let url = format!("sqlite://{}", server_db.display());
        let app = doorstep_server::startup::build_app(&url, clock).unwrap();
        let now = courier_core::Clock::now_ms(&courier_core::SystemClock);
        let world = seed_demo(
            &app,
            &SeedOptions {
                couriers: 1,
                stops_per_route: 12,
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
        let code = world.couriers[0].enrollment_code.clone();
        (app, code, listener)
    });
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = rt.spawn(doorstep_server::startup::serve(
        listener,
        app.clone(),
        async {
            stop_rx.await.ok();
        },
    ));

    // Enroll once and pull the route; the identity lives in the outbox from now on.
    let device_id = rt.block_on(async {
        let device = Device::open(&outbox, Arc::new(courier_core::SystemClock), seed).unwrap();
        let http = HttpTransport::new(&url, Duration::from_secs(10)).unwrap();
        let request = EnrollRequest {
            code,
            device_name: "crash-test handheld".into(),
            public_key: None,
        };
        let identity = courier_core::sync::enroll(&device, &http, &request)
            .await
            .unwrap();
        drain(&device, http, seed).await;
        assert!(
            device.route(None).unwrap().is_some(),
            "seed {seed}: no route"
        );
        identity.device_id
    });

    let mut rng = StdRng::seed_from_u64(seed);
    let mut confirmed: BTreeMap<u64, Confirmed> = BTreeMap::new();
    let (mut mid_sync_kills, mut lines_total) = (0usize, 0usize);
    for round in 0..KILLS {
        let child_seed = rng.random::<u64>();
        // Kill after the k-th line, or right after the j-th sync start.
        let after_sync_start = rng.random_bool(0.4);
        let target = if after_sync_start {
            rng.random_range(1..=3usize)
        } else {
            rng.random_range(1..=12usize)
        };
        let stderr_path = dir.path().join(format!("child-{round}.stderr"));
        let child = spawn_child(&outbox, &url, child_seed, &stderr_path);
        let mut guard = Guard(child);
        let mut reader = BufReader::new(guard.0.stdout.take().unwrap());
        let (mut lines, mut syncs, mut killed) = (0usize, 0usize, false);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            let n = reader.read_until(b'\n', &mut buf).unwrap();
            if n == 0 || buf.last() != Some(&b'\n') {
                break; // EOF, or a line cut by the kill: never confirmed
            }
            let line = String::from_utf8_lossy(&buf);
            let line = line.trim_end();
            let is_sync_start = line == "sync-start";
            if let Some(c) = parse_line(line) {
                if let Some(prev) = confirmed.insert(c.seq, c.clone()) {
                    assert_eq!(
                        prev, c,
                        "seed {seed} round {round}: seq {} confirmed twice for different events",
                        c.seq
                    );
                }
            } else if !is_sync_start && !line.starts_with("sync-end") && line != "ready" {
                continue; // the test harness's own output
            }
            lines += 1;
            syncs += usize::from(is_sync_start);
            if !killed {
                let hit = if after_sync_start {
                    is_sync_start && syncs == target
                } else {
                    lines == target
                };
                if hit {
                    guard.0.kill().unwrap(); // SIGKILL on Unix
                    killed = true;
                    mid_sync_kills += usize::from(is_sync_start);
                }
            }
            // After the kill, keep reading: lines already written are confirmations too.
        }
        let status = guard.0.wait().unwrap();
        assert!(
            killed,
            "seed {seed} round {round}: the device exited on its own ({status}) after {lines} \
             lines; stderr: {}",
            std::fs::read_to_string(&stderr_path).unwrap_or_default()
        );
        lines_total += lines;
    }
    eprintln!(
        "{KILLS} kills ({mid_sync_kills} right after a sync start), {lines_total} lines, {} \
         confirmed events, {:.1} s",
        confirmed.len(),
        started.elapsed().as_secs_f64()
    );

    // Restart one last time, in process, and sync until the outbox is drained.
    let device = Device::open(&outbox, Arc::new(courier_core::SystemClock), seed ^ 1).unwrap();
    assert!(
        device.integrity_ok().unwrap(),
        "seed {seed}: integrity_check failed"
    );
    let http = HttpTransport::new(&url, Duration::from_secs(10)).unwrap();
    rt.block_on(drain(&device, http, seed));
    let local = device.events().unwrap();
    assert!(
        device.integrity_ok().unwrap(),
        "seed {seed}: integrity_check failed"
    );
    drop(device);
    stop_tx.send(()).unwrap();
    rt.block_on(server).unwrap().unwrap();
    drop(app);

    // Every confirmed event is still in the outbox, unchanged.
    let local: HashMap<u64, Confirmed> = local
        .iter()
        .map(|e| {
            (
                e.device_seq,
                Confirmed {
                    event_id: e.event_id.to_string(),
                    seq: e.device_seq,
                    intent: e.intent_key.clone(),
                },
            )
        })
        .collect();
    for (seq, c) in &confirmed {
        assert_eq!(
            local.get(seq),
            Some(c),
            "seed {seed}: confirmed event #{seq} lost or changed on the device"
        );
    }
    // Gap-free on the device.
    let max = local.keys().max().copied().unwrap_or(0);
    assert_eq!(local.len() as u64, max, "seed {seed}: device_seq has gaps");

    // On the server: every device event exactly once, nothing else.
    let conn = rusqlite::Connection::open_with_flags(
        &server_db,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let mut q = conn
        .prepare("SELECT event_id, device_seq, intent_key, status FROM events WHERE device_id = ?1")
        .unwrap();
    let rows: Vec<(String, u64, String, String)> = q
        .query_map([device_id.to_string()], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut by_id: HashMap<&str, usize> = HashMap::new();
    let mut by_seq: HashMap<u64, usize> = HashMap::new();
    let mut by_intent: HashMap<&str, usize> = HashMap::new();
    for (id, seq, intent, status) in &rows {
        *by_id.entry(id).or_default() += 1;
        *by_seq.entry(*seq).or_default() += 1;
        *by_intent.entry(intent).or_default() += 1;
        assert_ne!(status, "rejected", "seed {seed}: event #{seq} rejected");
        let mine = local.get(seq);
        assert_eq!(
            mine.map(|c| (&c.event_id, &c.intent)),
            Some((id, intent)),
            "seed {seed}: server event #{seq} is not the device's"
        );
    }
    assert!(
        by_id.values().chain(by_seq.values()).all(|n| *n == 1),
        "seed {seed}: an event or a seq is on the server more than once"
    );
    assert!(
        by_intent.values().all(|n| *n == 1),
        "seed {seed}: an intent is on the server more than once"
    );
    assert_eq!(
        rows.len(),
        local.len(),
        "seed {seed}: server and device disagree"
    );
    for c in confirmed.values() {
        assert_eq!(
            by_id.get(c.event_id.as_str()),
            Some(&1),
            "seed {seed}: confirmed event #{} ({}) missing on the server",
            c.seq,
            c.intent
        );
    }
    assert!(
        confirmed.len() >= KILLS / 2,
        "seed {seed}: too few confirmed events ({}) to mean anything",
        confirmed.len()
    );
    eprintln!(
        "seed {seed}: {} events on the server, all once; total {:.1} s",
        rows.len(),
        started.elapsed().as_secs_f64()
    );
}

fn spawn_child(outbox: &Path, url: &str, seed: u64, stderr: &PathBuf) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .env("DOORSTEP_CRASH_OUTBOX", outbox)
        .env("DOORSTEP_CRASH_URL", url)
        .env("DOORSTEP_CRASH_SEED", seed.to_string())
        .env_remove("DOORSTEP_SEED")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(stderr).unwrap())
        .spawn()
        .unwrap()
}

fn config() -> SyncConfig {
    SyncConfig {
        // Small batches: a kill often falls between two pushes of one round.
        max_batch_events: 3,
        request_timeout_ms: 10_000,
        backoff: BackoffConfig {
            base_ms: 5,
            cap_ms: 50,
            max_retry_after_ms: 200,
        },
        ..SyncConfig::default()
    }
}

/// Syncs until nothing is queued.
async fn drain(device: &Device, http: HttpTransport, seed: u64) {
    let mut engine = SyncEngine::new(device.clone(), http, config(), seed);
    for _ in 0..200 {
        match engine.sync_once().await {
            RoundOutcome::Synced { .. } if device.sync_status().unwrap().queued == 0 => return,
            RoundOutcome::Synced { .. } => {}
            // Pacing by the engine's own backoff (a few ms), not synchronisation.
            RoundOutcome::RetryIn { wait, .. } => tokio::time::sleep(wait).await,
            other => panic!("seed {seed}: {other:?}"),
        }
    }
    panic!("seed {seed}: the outbox never drained");
}

/// The device process. Does nothing unless started by the parent test.
#[test]
fn crash_child() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    let outbox = std::env::var("DOORSTEP_CRASH_OUTBOX").unwrap();
    let url = std::env::var("DOORSTEP_CRASH_URL").unwrap();
    let seed: u64 = std::env::var("DOORSTEP_CRASH_SEED")
        .unwrap()
        .parse()
        .unwrap();
    // If the parent dies, so does the device (stdin reaches EOF).
    std::thread::spawn(|| {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        std::process::exit(3);
    });
    let say = |line: &str| {
        let mut out = std::io::stdout().lock();
        out.write_all(line.as_bytes()).unwrap();
        out.write_all(b"\n").unwrap();
        out.flush().unwrap();
    };
    let device = Device::open(&outbox, Arc::new(courier_core::SystemClock), seed).unwrap();
    assert!(device.identity().unwrap().is_some(), "not enrolled");
    say("ready");

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let http = HttpTransport::new(&url, Duration::from_secs(10)).unwrap();
    let mut engine = SyncEngine::new(device.clone(), http, config(), seed);
    rt.spawn(async move {
        // A sync round after every burst of new events, until killed.
        while rx.recv().await.is_some() {
            while rx.try_recv().is_ok() {}
            say("sync-start");
            let outcome = engine.sync_once().await;
            say(&format!("sync-end {outcome:?}").replace('\n', " "));
            if let RoundOutcome::RetryIn { wait, .. } = outcome {
                tokio::time::sleep(wait).await;
            }
        }
    });

    // Capture until killed: a random valid command each time.
    let mut rng = StdRng::seed_from_u64(seed);
    let route = device
        .route(None)
        .unwrap()
        .expect("route pulled at enrollment");
    for i in 0u64.. {
        let stop = &route.stops[rng.random_range(0..route.stops.len())];
        let now = device.now_ms();
        let outcome = match rng.random_range(0..10) {
            0 => device
                .record_location(
                    GeoPoint {
                        lat: 52.5 + rng.random::<f64>() / 100.0,
                        lon: 13.4,
                    },
                    5.0,
                    seed.wrapping_add(i) >> 1,
                )
                .unwrap(),
            1 => device
                .add_note(stop.stop_id, device.new_note_id(), &format!("note {now}"))
                .unwrap(),
            _ => {
                let detail = device.stop(stop.stop_id).unwrap().unwrap().summary;
                match detail.status {
                    StopStatus::Planned => {
                        let parcel = &detail.parcels[rng.random_range(0..detail.parcels.len())];
                        device.scan_parcel(parcel, ScanPhase::Loaded).unwrap()
                    }
                    StopStatus::Arrived => {
                        let outcome = if rng.random_bool(0.5) {
                            AttemptOutcome::Delivered {
                                method: DeliveryMethod::HandedToRecipient,
                                recipient: None,
                            }
                        } else {
                            AttemptOutcome::Failed {
                                reason: FailureReason::CustomerAbsent,
                                detail: None,
                            }
                        };
                        device
                            .record_attempt(stop.stop_id, detail.next_attempt, outcome)
                            .unwrap()
                    }
                    s if s.is_terminal() => device
                        .add_note(stop.stop_id, device.new_note_id(), "done here")
                        .unwrap(),
                    _ => device.arrive(stop.stop_id, None).unwrap(),
                }
            }
        };
        if let AppendOutcome::Recorded(e) = outcome {
            say(&format!(
                "confirmed {} {} {}",
                e.event_id, e.device_seq, e.intent_key
            ));
            let _ = tx.send(());
        }
    }
}
