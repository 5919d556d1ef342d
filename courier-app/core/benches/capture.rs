//! `cargo bench -p courier-core --bench capture`
//!
//! Scan → durable commit latency through [`Device::scan_parcel`] (validate against the
//! projection, dedupe by intent, stamp, store the event, fold the projection, `COMMIT` with
//! `synchronous=FULL` in WAL mode) next to the floor: a raw single-row `FULL` WAL commit
//! (rusqlite, prepared `INSERT`, one transaction per row, a row the size of an event) on the
//! same file system, in the same run, interleaved one by one so both see the same disk and the
//! same neighbours. Target: device ≤ 1.5 × raw at p50 and p99. `DOORSTEP_BENCH_DIR` puts both
//! files on another file system (default: the target directory).

mod common;

use courier_core::testing::FakeServer;
use courier_core::{AppendOutcome, Device, ManualClock, SyncConfig, SyncEngine};
use doorstep_shared::event::{GeoPoint, RouteAssigned, ScanPhase, StopPlan, TimeWindow};
use doorstep_shared::protocol::EnrollRequest;
use doorstep_shared::{CourierId, EventPayload, ParcelBarcode, RouteId, StopId};
use rusqlite::Connection;
use std::sync::Arc;
use std::time::Instant;

type Error = Box<dyn std::error::Error>;

const SCANS: usize = 2_000;
const WARMUP: usize = 50;
const STOPS: usize = 200;
const PARCELS_PER_STOP: usize = 6;
const T0: u64 = 1_780_000_000_000;
const TARGET_RATIO: f64 = 1.5;

fn parcel(stop: usize, n: usize) -> Result<ParcelBarcode, Error> {
    Ok(ParcelBarcode::parse(&format!("PKG-{stop:04}-{n}"))?)
}

/// A full day's route: 200 stops, 1,200 parcels (each scanned loaded, then out for delivery).
fn route() -> Result<RouteAssigned, Error> {
    let stops = (0..STOPS)
        .map(|i| {
            let mut b = [0u8; 10];
            b[..8].copy_from_slice(&(i as u64 + 1).to_be_bytes());
            Ok(StopPlan {
                stop_id: StopId::from_parts(T0, b),
                sequence: i as u32 + 1,
                address: format!("Lindenstraße {i}, 10969 Berlin"),
                location: GeoPoint {
                    lat: 52.5 + i as f64 / 1000.0,
                    lon: 13.4,
                },
                window: TimeWindow {
                    start_ms: T0,
                    end_ms: T0 + 3_600_000,
                },
                parcels: (0..PARCELS_PER_STOP)
                    .map(|n| parcel(i, n))
                    .collect::<Result<_, _>>()?,
                customer_name: format!("Customer {i}"),
                access_notes: None,
                instructions: Some("ring twice".into()),
            })
        })
        .collect::<Result<_, Error>>()?;
    Ok(RouteAssigned {
        route_id: RouteId::from_parts(T0, [9; 10]),
        courier_id: CourierId::from_parts(T0, [8; 10]),
        day: "2026-06-01".into(),
        version: 1,
        depot: GeoPoint {
            lat: 52.5,
            lon: 13.4,
        },
        stops,
    })
}

/// An enrolled device with the route pulled (from the in-process fake server).
fn device(path: &std::path::Path, clock: Arc<ManualClock>) -> Result<Device, Error> {
    let device = Device::open(path, clock.clone(), 7)?;
    let server = Arc::new(FakeServer::new(clock));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let req = EnrollRequest {
            code: "ENROLL-1".into(),
            device_name: "bench handheld".into(),
            public_key: None,
        };
        courier_core::sync::enroll(&device, server.as_ref(), &req).await?;
        server.publish(EventPayload::RouteAssigned(route()?));
        let mut engine = SyncEngine::new(device.clone(), server, SyncConfig::default(), 1);
        let outcome = engine.sync_once().await;
        if !matches!(outcome, courier_core::RoundOutcome::Synced { .. }) {
            return Err(format!("route not pulled: {outcome:?}").into());
        }
        Ok::<_, Error>(())
    })?;
    Ok(device)
}

/// The floor: a raw SQLite file in WAL mode with `synchronous=FULL`, one row per transaction.
struct Raw {
    conn: Connection,
    seq: i64,
}

impl Raw {
    fn open(path: &std::path::Path) -> Result<Self, Error> {
        let conn = Connection::open(path)?;
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(format!("raw file is not in WAL mode: {mode}").into());
        }
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch("CREATE TABLE rows (seq INTEGER PRIMARY KEY, body TEXT NOT NULL)")?;
        Ok(Self { conn, seq: 0 })
    }

    fn commit(&mut self, body: &str) -> Result<(), Error> {
        self.seq += 1;
        let tx = self.conn.unchecked_transaction()?;
        tx.prepare_cached("INSERT INTO rows (seq, body) VALUES (?1, ?2)")?
            .execute(rusqlite::params![self.seq, body])?;
        tx.commit()?;
        Ok(())
    }
}

fn main() -> Result<(), Error> {
    // DOORSTEP_BENCH_DIR picks the file system (e.g. /dev/shm: no fsync cost, CPU only).
    let base = std::env::var_os("DOORSTEP_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(common::target_dir);
    std::fs::create_dir_all(&base)?;
    let dir = tempfile::tempdir_in(&base)?;
    let clock = Arc::new(ManualClock::new(T0));
    let device = device(&dir.path().join("outbox.db"), clock.clone())?;
    let mut raw = Raw::open(&dir.path().join("raw.db"))?;

    let mut scans = Vec::with_capacity(SCANS + WARMUP);
    for phase in [ScanPhase::Loaded, ScanPhase::OutForDelivery] {
        for s in 0..STOPS {
            for n in 0..PARCELS_PER_STOP {
                scans.push((parcel(s, n)?, phase));
            }
        }
    }
    if scans.len() < SCANS + WARMUP {
        return Err("not enough distinct scans".into());
    }
    // The raw row is as large as a stored event (its JSON envelope).
    let mut body = String::new();
    let (mut device_us, mut raw_us) = (Vec::new(), Vec::new());
    let started = Instant::now();
    for (i, (parcel, phase)) in scans.iter().take(SCANS + WARMUP).enumerate() {
        clock.advance(1_000);
        let run_raw = |raw: &mut Raw, body: &str, raw_us: &mut Vec<u64>| -> Result<(), Error> {
            let t = Instant::now();
            raw.commit(body)?;
            if i >= WARMUP {
                raw_us.push(t.elapsed().as_micros() as u64);
            }
            Ok(())
        };
        // Alternate which goes first, so neither always follows the other's fsync.
        if i % 2 == 0 {
            run_raw(&mut raw, &body, &mut raw_us)?;
        }
        let t = Instant::now();
        let outcome = device.scan_parcel(parcel, *phase)?;
        let us = t.elapsed().as_micros() as u64;
        let AppendOutcome::Recorded(env) = outcome else {
            return Err(format!("scan {i} not recorded: {outcome:?}").into());
        };
        if i >= WARMUP {
            device_us.push(us);
        }
        if body.is_empty() {
            body = serde_json::to_string(&env)?;
        }
        if i % 2 == 1 {
            run_raw(&mut raw, &body, &mut raw_us)?;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    if !device.integrity_ok()? {
        return Err("outbox integrity check failed".into());
    }
    let dev_mean = device_us.iter().sum::<u64>() as f64 / device_us.len() as f64;
    let raw_mean = raw_us.iter().sum::<u64>() as f64 / raw_us.len() as f64;
    let (d50, d99) = (
        common::quantile_us(&mut device_us, 0.50),
        common::quantile_us(&mut device_us, 0.99),
    );
    let (r50, r99) = (
        common::quantile_us(&mut raw_us, 0.50),
        common::quantile_us(&mut raw_us, 0.99),
    );
    let ratio50 = d50 as f64 / r50.max(1) as f64;
    let ratio99 = d99 as f64 / r99.max(1) as f64;
    let ms = |us: u64| common::round(us as f64 / 1_000.0, 3);
    let report = serde_json::json!({
        "bench": "capture",
        "what": "scan -> durable commit through Device::scan_parcel vs a raw single-row synchronous=FULL WAL commit, interleaved, same file system",
        "file_system_dir": dir.path().display().to_string(),
        "commands": SCANS,
        "warmup": WARMUP,
        "route": { "stops": STOPS, "parcels": STOPS * PARCELS_PER_STOP },
        "event_bytes": body.len(),
        "device": { "p50_ms": ms(d50), "p99_ms": ms(d99), "mean_ms": common::round(dev_mean / 1_000.0, 3) },
        "raw_full_commit": { "p50_ms": ms(r50), "p99_ms": ms(r99), "mean_ms": common::round(raw_mean / 1_000.0, 3) },
        "ratio_p50": common::round(ratio50, 3),
        "ratio_p99": common::round(ratio99, 3),
        "target_ratio": TARGET_RATIO,
        "pass": ratio50 <= TARGET_RATIO && ratio99 <= TARGET_RATIO,
        "seconds": common::round(seconds, 2),
        "peak_rss_mb": common::peak_rss_kb().map(|kb| common::round(kb as f64 / 1024.0, 1)),
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
    });
    common::publish("capture", &report)
}
