//! `cargo bench -p courier-core --bench backlog`
//!
//! A backlog sync after a day in a dead zone: a device captures 5,000 events over a simulated
//! 8 h offline (its injected clock walks through the 8 h; capture itself takes seconds), then
//! the network returns as a 2 Mbit/s link with 10 % of requests lost (half before the server,
//! half after it committed: a timeout after commit) and 50 ms latency, emulated by
//! [`FaultyTransport`] around real HTTP to the real `doorstep-server` on loopback, in real time
//! (the link's transfer time, latency, timeouts and the engine's backoff are real sleeps).
//!
//! Reported: the sync's wall time; bytes on the wire (every encoded push body the device
//! transmitted, retries and lost requests included) against the compressed payload (every
//! event batch compressed once) — target ≤ 1.2 ×; and the device process's peak RSS (VmHWM) —
//! target ≤ 40 MB. The device runs in a child process (this binary re-executed with
//! `DOORSTEP_BENCH_CHILD=1`), the server in this one, so the server's memory is not counted.

mod common;

use courier_core::transport::Encoding;
use courier_core::transport::faulty::FaultProfile;
use courier_core::{
    AppendOutcome, Clock, Device, FaultyTransport, HttpTransport, RoundOutcome, SyncConfig,
    SyncEngine, SystemClock,
};
use doorstep_server::seed::{SeedOptions, seed_demo};
use doorstep_shared::event::{AttemptOutcome, DeliveryMethod, GeoPoint, ScanPhase};
use doorstep_shared::protocol::{DeviceQueueReport, EnrollRequest, PushRequest};
use doorstep_shared::{FailureReason, ParcelBarcode, StopId};
use std::io::{BufRead, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

type Error = Box<dyn std::error::Error>;

const EVENTS: usize = 5_000;
const OFFLINE_MS: u64 = 8 * 3_600 * 1_000;
const STOPS: usize = 150;
const BANDWIDTH_BPS: u64 = 2_000_000;
/// P(request lost) = 5 %, P(answer lost | request arrived) = 1 - 0.90 / 0.95: 10 % in all.
const REQUEST_LOSS: f64 = 0.05;
const RESPONSE_LOSS: f64 = 1.0 - 0.90 / 0.95;
const TIMEOUT_MS: u64 = 5_000;
const LATENCY_MS: u64 = 50;
/// Events per push on this link (the default is 500): more, smaller requests make a lost one
/// cost less, so the bytes on the wire stay near the expected 1 / (1 - 0.1).
const BATCH_EVENTS: usize = 100;
/// Independent syncs of the same captured backlog, each with its own fault seed.
const TRIALS: u64 = 5;
const TARGET_WIRE_RATIO: f64 = 1.2;
const TARGET_RSS_MB: f64 = 40.0;
const CHILD_ENV: &str = "DOORSTEP_BENCH_CHILD";

/// The device's clock: pinned to a simulated time while offline, the system clock afterwards.
#[derive(Debug, Default)]
struct BenchClock {
    /// 0: follow the system clock.
    pinned_ms: AtomicU64,
}

impl Clock for BenchClock {
    fn now_ms(&self) -> u64 {
        match self.pinned_ms.load(Ordering::SeqCst) {
            0 => SystemClock.now_ms(),
            t => t,
        }
    }
}

fn seed() -> u64 {
    std::env::var("DOORSTEP_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
}

fn main() -> Result<(), Error> {
    if std::env::var_os(CHILD_ENV).is_some() {
        return child();
    }
    let seed = seed();
    let base = common::target_dir();
    std::fs::create_dir_all(&base)?;
    let dir = tempfile::tempdir_in(&base)?;
    let server_db = dir.path().join("server.db");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let now = SystemClock.now_ms();
    let (app, code, listener) = rt.block_on(async {
        let clock = Arc::new(doorstep_server::clock::SystemClock);
        let app = doorstep_server::startup::build_app(
            &format!("sqlite://{}", server_db.display()),
            clock,
        )?;
        let world = seed_demo(
            &app,
            &SeedOptions {
                couriers: 1,
                stops_per_route: STOPS,
                seed,
                day: "2026-06-01".into(),
                day_start_ms: now - OFFLINE_MS,
                depot: GeoPoint {
                    lat: 52.52,
                    lon: 13.40,
                },
            },
        )
        .await
        .map_err(|e| format!("seed: {e:?}"))?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let code = world
            .couriers
            .first()
            .ok_or("no courier seeded")?
            .enrollment_code
            .clone();
        Ok::<_, Error>((app, code, listener))
    })?;
    let url = format!("http://{}", listener.local_addr()?);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = rt.spawn(doorstep_server::startup::serve(
        listener,
        app.clone(),
        async {
            stop_rx.await.ok();
        },
    ));

    // The device, in its own process; it captures, then syncs once per trial on our command.
    let mut child = Command::new(std::env::current_exe()?)
        .env(CHILD_ENV, "1")
        .env("DOORSTEP_BENCH_URL", &url)
        .env("DOORSTEP_BENCH_CODE", &code)
        .env("DOORSTEP_BENCH_DIR", dir.path())
        .env("DOORSTEP_SEED", seed.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let mut to_child = child.stdin.take().ok_or("no child stdin")?;
    let mut from_child = std::io::BufReader::new(child.stdout.take().ok_or("no child stdout")?);
    let mut expect = |prefix: &str| -> Result<serde_json::Value, Error> {
        let mut line = String::new();
        loop {
            line.clear();
            if from_child.read_line(&mut line)? == 0 {
                return Err(format!("the device process ended before {prefix}").into());
            }
            if let Some(json) = line.trim_end().strip_prefix(prefix) {
                return Ok(serde_json::from_str(json)?);
            }
        }
    };
    let captured = expect("CAPTURED ")?;
    let _ = stop_tx.send(());
    rt.block_on(server)??;
    drop(app);
    // The server as the device left it this morning; every trial starts from a copy.
    let snapshot = dir.path().join("server-snapshot.db");
    rusqlite::Connection::open(&server_db)?
        .execute("VACUUM INTO ?1", [snapshot.display().to_string()])?;
    let device_id = captured["device_id"]
        .as_str()
        .ok_or("no device id")?
        .to_owned();

    let mut trials = Vec::new();
    for trial in 0..TRIALS {
        let db = dir.path().join(format!("server-{trial}.db"));
        std::fs::copy(&snapshot, &db)?;
        let (app, listener) = rt.block_on(async {
            let clock = Arc::new(doorstep_server::clock::SystemClock);
            let app =
                doorstep_server::startup::build_app(&format!("sqlite://{}", db.display()), clock)?;
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            Ok::<_, Error>((app, listener))
        })?;
        let url = format!("http://{}", listener.local_addr()?);
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = rt.spawn(doorstep_server::startup::serve(
            listener,
            app.clone(),
            async {
                stop_rx.await.ok();
            },
        ));
        writeln!(to_child, "TRIAL {trial} {url}")?;
        to_child.flush()?;
        let mut result = expect("SYNCED ")?;
        let _ = stop_tx.send(());
        rt.block_on(server)??;
        drop(app);
        // The server holds every event exactly once.
        let conn =
            rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        let (rows, ids, seqs): (u64, u64, u64) = conn.query_row(
            "SELECT COUNT(*), COUNT(DISTINCT event_id), COUNT(DISTINCT device_seq)
             FROM events WHERE device_id = ?1",
            [&device_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        result["server_rows"] = rows.into();
        result["exactly_once"] = (rows == EVENTS as u64 && ids == rows && seqs == rows).into();
        eprintln!("trial {trial}: {result}");
        trials.push(result);
    }
    drop(to_child);
    let done = expect("DONE ")?;
    let status = child.wait()?;
    if !status.success() {
        return Err(format!("the device process failed: {status}").into());
    }

    let f = |v: &serde_json::Value, k: &str| v[k].as_f64().unwrap_or(f64::INFINITY);
    let ratios: Vec<f64> = trials.iter().map(|t| f(t, "wire_ratio")).collect();
    let walls: Vec<f64> = trials.iter().map(|t| f(t, "wall_s")).collect();
    let worst = ratios.iter().copied().fold(0.0, f64::max);
    let mean = ratios.iter().sum::<f64>() / ratios.len() as f64;
    let exactly_once = trials.iter().all(|t| t["exactly_once"] == true);
    let rss_mb = f(&done, "device_peak_rss_mb");
    let wire_pass = worst <= TARGET_WIRE_RATIO;
    let rss_pass = rss_mb <= TARGET_RSS_MB;
    let report = serde_json::json!({
        "bench": "backlog",
        "seed": seed,
        "events": EVENTS,
        "offline_simulated_hours": OFFLINE_MS / 3_600_000,
        "capture": captured,
        "link": {
            "bandwidth_bps": BANDWIDTH_BPS,
            "request_loss": REQUEST_LOSS,
            "response_loss_after_commit": common::round(RESPONSE_LOSS, 4),
            "total_loss": 0.10,
            "latency_ms": LATENCY_MS,
            "timeout_ms": TIMEOUT_MS,
            "max_batch_events": BATCH_EVENTS,
        },
        "sync": {
            "clock": "wall time: the link's transfer time, latency, timeouts and the engine's backoff are real sleeps",
            "trials": TRIALS,
            "wall_s_min": common::round(walls.iter().copied().fold(f64::INFINITY, f64::min), 2),
            "wall_s_max": common::round(walls.iter().copied().fold(0.0, f64::max), 2),
            "transfer_floor_s": trials.first().map(|t| t["transfer_floor_s"].clone()),
        },
        "wire": {
            "ratio_mean": common::round(mean, 3),
            "ratio_worst": common::round(worst, 3),
            "expected_ratio_at_10pct_loss": common::round(1.0 / 0.9, 3),
            "target_ratio": TARGET_WIRE_RATIO,
            "pass": wire_pass,
            "what": "encoded push bodies the device transmitted (lost and retried ones included, HTTP headers not) / every batch compressed once",
        },
        "exactly_once_on_server": exactly_once,
        "device_peak_rss_mb": rss_mb,
        "target_rss_mb": TARGET_RSS_MB,
        "rss_pass": rss_pass,
        "rss_what": "VmHWM of the device process (capture of 5,000 events + every sync trial); the server runs in the bench process",
        "pass": exactly_once && wire_pass && rss_pass,
        "trials": trials,
    });
    common::publish("backlog", &report)
}

/// Enough work for a day: every parcel loaded, then per stop an arrival, an outcome and
/// sometimes a note; location fixes fill the rest of the 5,000 events.
enum Work {
    Scan(ParcelBarcode),
    Arrive(StopId),
    Attempt(StopId, bool),
    Note(StopId),
}

fn child() -> Result<(), Error> {
    let seed = seed();
    let url = std::env::var("DOORSTEP_BENCH_URL")?;
    let code = std::env::var("DOORSTEP_BENCH_CODE")?;
    let dir = std::path::PathBuf::from(std::env::var("DOORSTEP_BENCH_DIR")?);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let clock = Arc::new(BenchClock::default());
    let device = Device::open(dir.join("outbox.db"), clock.clone(), seed)?;
    let http = HttpTransport::new(&url, Duration::from_millis(TIMEOUT_MS))?;
    let config = SyncConfig {
        request_timeout_ms: TIMEOUT_MS,
        ..SyncConfig::default()
    };

    // Morning at the depot: enroll and pull the route over a good network.
    let identity = rt.block_on(async {
        let request = EnrollRequest {
            code,
            device_name: "backlog handheld".into(),
            public_key: None,
        };
        let identity = courier_core::sync::enroll(&device, &http, &request).await?;
        let mut engine = SyncEngine::new(device.clone(), http.clone(), config.clone(), seed);
        match engine.sync_once().await {
            RoundOutcome::Synced { .. } => Ok::<_, Error>(identity),
            other => Err(format!("route not pulled: {other:?}").into()),
        }
    })?;
    let route = device.route(None)?.ok_or("no route")?;

    // Eight hours offline.
    let end = SystemClock.now_ms();
    let start = end - OFFLINE_MS;
    let mut work = Vec::new();
    for stop in &route.stops {
        work.extend(stop.parcels.iter().cloned().map(Work::Scan));
    }
    for (i, stop) in route.stops.iter().enumerate() {
        work.push(Work::Arrive(stop.stop_id));
        work.push(Work::Attempt(stop.stop_id, i % 7 != 3));
        if i % 4 == 0 {
            work.push(Work::Note(stop.stop_id));
        }
    }
    let work_len = work.len();
    if work_len >= EVENTS {
        return Err("too much work for the event budget".into());
    }
    let mut work = work.into_iter();
    let capture_started = Instant::now();
    let mut recorded = 0usize;
    let mut worked = 0usize;
    while recorded < EVENTS {
        let t = start + (recorded as u64 * OFFLINE_MS) / EVENTS as u64;
        clock.pinned_ms.store(t, Ordering::SeqCst);
        // Spread the work evenly over the day; location fixes in between.
        let due = (recorded + 1) * work_len / EVENTS > worked;
        let outcome = match due.then(|| work.next()).flatten() {
            Some(w) => {
                worked += 1;
                match w {
                    Work::Scan(p) => device.scan_parcel(&p, ScanPhase::Loaded)?,
                    Work::Arrive(s) => device.arrive(s, None)?,
                    Work::Attempt(s, delivered) => {
                        let outcome = if delivered {
                            AttemptOutcome::Delivered {
                                method: DeliveryMethod::HandedToRecipient,
                                recipient: None,
                            }
                        } else {
                            AttemptOutcome::Failed {
                                reason: FailureReason::CustomerAbsent,
                                detail: Some("nobody home, card left".into()),
                            }
                        };
                        device.record_attempt(s, 1, outcome)?
                    }
                    Work::Note(s) => {
                        device.add_note(s, device.new_note_id(), "parked in the yard")?
                    }
                }
            }
            None => {
                let k = recorded as f64;
                device.record_location(
                    GeoPoint {
                        lat: 52.52 + (k / 900.0).sin() / 50.0,
                        lon: 13.40 + (k / 700.0).cos() / 50.0,
                    },
                    4.0 + (recorded % 11) as f32,
                    t,
                )?
            }
        };
        match outcome {
            AppendOutcome::Recorded(_) => recorded += 1,
            other => return Err(format!("command not recorded: {other:?}").into()),
        }
    }
    let capture_s = capture_started.elapsed().as_secs_f64();
    let status = device.sync_status()?;
    let snapshot = dir.join("outbox-snapshot.db");
    rusqlite::Connection::open(dir.join("outbox.db"))?
        .execute("VACUUM INTO ?1", [snapshot.display().to_string()])?;
    drop(device);
    let captured = serde_json::json!({
        "device_id": identity.device_id.to_string(),
        "events": recorded,
        "queued": status.queued,
        "oldest_unsynced_h": status.oldest_unsynced_age_ms.map(|ms| common::round(ms as f64 / 3_600_000.0, 2)),
        "wall_s": common::round(capture_s, 2),
    });
    println!("CAPTURED {captured}");

    // The network returns: a bad link. One trial per line from the parent, each from a copy of
    // the captured outbox, against a fresh copy of the server.
    clock.pinned_ms.store(0, Ordering::SeqCst);
    let config = SyncConfig {
        max_batch_events: BATCH_EVENTS,
        ..config
    };
    for line in std::io::stdin().lines() {
        let line = line?;
        let mut parts = line.split(' ').skip(1);
        let (Some(trial), Some(url)) = (parts.next(), parts.next()) else {
            return Err(format!("bad command {line:?}").into());
        };
        let trial: u64 = trial.parse()?;
        let path = dir.join(format!("outbox-{trial}.db"));
        std::fs::copy(&snapshot, &path)?;
        let device = Device::open(&path, clock.clone(), seed)?;
        let http = HttpTransport::new(url, Duration::from_millis(TIMEOUT_MS))?;
        let profile = FaultProfile {
            request_loss: REQUEST_LOSS,
            response_loss: RESPONSE_LOSS,
            latency_min_ms: LATENCY_MS,
            latency_max_ms: LATENCY_MS,
            bandwidth_bps: Some(BANDWIDTH_BPS),
            timeout_ms: TIMEOUT_MS,
            ..FaultProfile::perfect()
        };
        let fault_seed = seed.wrapping_mul(1_000).wrapping_add(trial);
        let faulty = FaultyTransport::new(http, profile, fault_seed, clock.clone());
        let mut engine = SyncEngine::new(device.clone(), faulty, config.clone(), fault_seed);
        let sync_started = Instant::now();
        let (mut rounds, mut waited_ms) = (0u64, 0u64);
        rt.block_on(async {
            loop {
                rounds += 1;
                match engine.sync_once().await {
                    RoundOutcome::Synced { .. } if device.sync_status()?.queued == 0 => break,
                    RoundOutcome::Synced { .. } => {}
                    // The engine's own backoff, waited out as the app would.
                    RoundOutcome::RetryIn { wait, .. } => {
                        waited_ms += wait.as_millis() as u64;
                        tokio::time::sleep(wait).await;
                    }
                    other => return Err::<(), Error>(format!("sync stopped: {other:?}").into()),
                }
                if rounds > 10_000 {
                    return Err("never drained".into());
                }
            }
            Ok(())
        })?;
        let sync_s = sync_started.elapsed().as_secs_f64();

        // The compressed payload: every batch of these events, compressed once.
        let events = device.events()?;
        let payload = |batch: usize| -> Result<(u64, u64), Error> {
            let (mut raw_bytes, mut zstd_bytes) = (0u64, 0u64);
            for chunk in events.chunks(batch) {
                let request = PushRequest {
                    device_id: identity.device_id,
                    sent_at_ms: end,
                    events: chunk.to_vec(),
                    queue: Some(DeviceQueueReport {
                        queued_events: events.len() as u64,
                        oldest_unsynced_ms: Some(OFFLINE_MS),
                        photos_pending: 0,
                        rejected_events: 0,
                    }),
                };
                let raw = serde_json::to_vec(&request)?;
                raw_bytes += raw.len() as u64;
                zstd_bytes += Encoding::Zstd.encode(&raw).len() as u64;
            }
            Ok((raw_bytes, zstd_bytes))
        };
        let (raw_bytes, payload_bytes) = payload(BATCH_EVENTS)?;
        let (_, payload_500) = payload(500)?;
        let stats = engine.stats().clone();
        let faults = engine.transport().stats();
        let status = device.sync_status()?;
        let result = serde_json::json!({
            "trial": trial,
            "fault_seed": fault_seed,
            "wall_s": common::round(sync_s, 2),
            "transfer_floor_s": common::round((payload_bytes * 8) as f64 / BANDWIDTH_BPS as f64, 2),
            "backoff_waited_s": common::round(waited_ms as f64 / 1_000.0, 2),
            "rounds": rounds,
            "push_requests": stats.push_requests,
            "pull_requests": stats.pull_requests,
            "retries": stats.retries,
            "lost_requests": faults.lost_requests,
            "lost_responses_after_commit": faults.lost_responses,
            "bytes_on_wire": stats.encoded_bytes_pushed,
            "compressed_payload_bytes": payload_bytes,
            "compressed_payload_bytes_500_per_batch": payload_500,
            "raw_json_bytes": raw_bytes,
            "wire_ratio": common::round(stats.encoded_bytes_pushed as f64 / payload_bytes.max(1) as f64, 3),
            "queued_after": status.queued,
            "rejected": status.rejected.len(),
        });
        println!("SYNCED {result}");
    }
    let done = serde_json::json!({
        "device_peak_rss_mb": common::peak_rss_kb().map(|kb| common::round(kb as f64 / 1024.0, 1)),
    });
    println!("DONE {done}");
    Ok(())
}
