//! Push benchmark against the real `doorstep-server` binary on a real SQLite file.
//!
//! `cargo bench -p doorstep-server --bench push` prints one JSON object and writes it to
//! `target/bench/push.json`:
//!
//! * **throughput** — 16 devices push gzip batches of 500 valid events concurrently; events/s
//!   end to end, next to the raw limit: the very same rows inserted with cached prepared
//!   statements straight into the `events` and `intents` tables of a file the server's own code
//!   created (its schema and pragmas: WAL, `synchronous=FULL`), one transaction per 500-event
//!   batch as the server commits. Raw and end-to-end runs are **interleaved** (raw, e2e, raw,
//!   e2e, …) in this one process and the ratio is median e2e / median raw, so load from other
//!   processes falls on both sides alike. Target: ratio ≥ [`TARGET_RATIO`].
//! * **latency** — 1,000 enrolled devices push small batches on an open-loop schedule (one push
//!   per device every ~5 s with seeded jitter); client-side p50/p99/max, measured from the
//!   scheduled send time. Target: p99 ≤ 100 ms.
//! * **server peak RSS** — `VmHWM` of the server process after both phases. Target: ≤ 150 MB.
//!
//! Every event must come back `applied` with no code: a benchmark of failures is worthless, so
//! the run aborts otherwise.

mod load;

use doorstep_shared::EventEnvelope;
use doorstep_shared::intent::fingerprint;
use load::devices::{
    Device, LatencyPlan, enroll_all, gzip_body, make_batches, now_ms, open_loop_latencies, push,
    push_all,
};
use load::server::{Server, demo_seed, thread_cpu_seconds};
use load::stats::{median, percentile, round, target_dir, write_report};
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::path::Path;
use std::time::{Duration, Instant};

// Throughput phase.
const TP_DEVICES: usize = 16;
const TP_BATCH: usize = 500;
/// Stops on each throughput device's route: a long courier day. The events cycle through them, five
/// stop events per visit, so each stop collects about 100 events over the run.
const TP_STOPS: usize = 200;
/// Interleaved rounds; each is one raw run and one end-to-end run.
const ROUNDS: usize = 5;
/// Batches per device per round.
const TP_BATCHES: usize = 4;
const TP_WARMUP_EVENTS: usize = 10;
// Latency phase.
const LAT_DEVICES: usize = 1_000;
const LATENCY: LatencyPlan = LatencyPlan {
    events_per_push: 5,
    interval_ms: 5_000,
    duration_ms: 30_000,
};

const TARGET_RATIO: f64 = 0.50;
const TARGET_P99_MS: f64 = 100.0;
const TARGET_RSS_MB: f64 = 150.0;

/// One row as the server writes it to `events` (and `intents`), precomputed so the raw loop
/// measures nothing but SQLite.
struct RawRow {
    event_id: String,
    device_id: String,
    device_seq: i64,
    intent_key: String,
    fingerprint: String,
    kind: &'static str,
    stop_id: Option<String>,
    hlc_wall: i64,
    hlc_logical: u32,
    device_time_ms: i64,
    payload: String,
}

impl RawRow {
    fn of(e: &EventEnvelope) -> Self {
        Self {
            event_id: e.event_id.to_string(),
            device_id: e.device_id.to_string(),
            device_seq: e.device_seq as i64,
            intent_key: e.intent_key.clone(),
            fingerprint: fingerprint(&e.payload),
            kind: e.payload.kind(),
            stop_id: e.payload.stop_id().map(|s| s.to_string()),
            hlc_wall: e.hlc.wall_ms as i64,
            hlc_logical: e.hlc.logical,
            device_time_ms: e.device_time_ms as i64,
            payload: serde_json::to_string(&e.payload).expect("payload JSON"),
        }
    }
}

/// The raw side's database: created and migrated by the server's own code, then written
/// through a plain connection with the server's pragmas.
fn open_raw(path: &Path) -> rusqlite::Connection {
    drop(doorstep_server::store::sqlite::SqliteStore::open(path).expect("create raw db"));
    let conn = rusqlite::Connection::open(path).expect("open raw db");
    conn.pragma_update(None, "journal_mode", "WAL")
        .expect("WAL");
    conn.pragma_update(None, "synchronous", "FULL")
        .expect("synchronous");
    conn.pragma_update(None, "foreign_keys", "ON")
        .expect("foreign_keys");
    conn.pragma_update(None, "temp_store", "MEMORY")
        .expect("temp_store");
    conn
}

/// The raw limit: the rows into the server's schema, one transaction per batch.
fn raw_run(conn: &mut rusqlite::Connection, batches: &[Vec<RawRow>]) -> Run {
    let started = Instant::now();
    let cpu_started = thread_cpu_seconds();
    let mut n = 0;
    for batch in batches {
        let received = now_ms() as i64;
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .expect("begin");
        {
            let mut ev = tx
                .prepare_cached(
                    "INSERT INTO events (event_id, device_id, device_seq, intent_key, fingerprint, kind, stop_id,
                         hlc_wall, hlc_logical, device_time_ms, received_at_ms, clock_offset_ms, status, code, payload)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
                )
                .expect("prepare events");
            let mut it = tx
                .prepare_cached(
                    "INSERT INTO intents (intent_key, fingerprint, event_id) VALUES (?1, ?2, ?3)",
                )
                .expect("prepare intents");
            for r in batch {
                ev.execute(rusqlite::params![
                    r.event_id,
                    r.device_id,
                    r.device_seq,
                    r.intent_key,
                    r.fingerprint,
                    r.kind,
                    r.stop_id,
                    r.hlc_wall,
                    r.hlc_logical,
                    r.device_time_ms,
                    received,
                    -250i64,
                    "applied",
                    Option::<&str>::None,
                    r.payload,
                ])
                .expect("insert event");
                it.execute(rusqlite::params![r.intent_key, r.fingerprint, r.event_id])
                    .expect("insert intent");
                n += 1;
            }
        }
        tx.commit().expect("commit");
    }
    Run {
        events: n,
        seconds: started.elapsed().as_secs_f64(),
        cpu_seconds: thread_cpu_seconds() - cpu_started,
    }
}

struct Run {
    events: usize,
    seconds: f64,
    cpu_seconds: f64,
}

impl Run {
    fn events_per_s(&self) -> f64 {
        self.events as f64 / self.seconds
    }

    fn cpu_us_per_event(&self) -> f64 {
        self.cpu_seconds * 1e6 / self.events as f64
    }
}

/// One round's work, built before it is timed: gzip bodies per device and the same events as
/// raw rows, in the order the server sees them (round-robin over devices).
struct Round {
    bodies: Vec<Vec<Vec<u8>>>,
    raw: Vec<Vec<RawRow>>,
}

fn build_round(devices: &[Device], after_seq: u64, base_ms: u64, round: usize) -> Round {
    let per_device: Vec<Vec<Vec<EventEnvelope>>> = devices
        .iter()
        .map(|dev| {
            let mut rng = StdRng::seed_from_u64(1_000 * (round as u64 + 1) + dev.index as u64);
            make_batches(dev, after_seq, TP_BATCHES, TP_BATCH, base_ms, &mut rng)
        })
        .collect();
    let raw = (0..TP_BATCHES)
        .flat_map(|b| {
            per_device
                .iter()
                .map(move |d| d[b].iter().map(RawRow::of).collect())
        })
        .collect();
    let bodies = devices
        .iter()
        .zip(per_device)
        .map(|(dev, batches)| {
            batches
                .into_iter()
                .map(|b| gzip_body(dev.device_id, b))
                .collect()
        })
        .collect();
    Round { bodies, raw }
}

fn main() {
    // `cargo bench` passes `--bench`; ignore any arguments.
    let out_dir = target_dir().join("bench");
    std::fs::create_dir_all(&out_dir).expect("create target/bench");
    let tmp = tempfile::tempdir_in(&out_dir).expect("temp dir");
    let db = tmp.path().join("doorstep.db");
    let db_url = format!("sqlite://{}", db.display());

    eprintln!("push bench: seeding {TP_DEVICES} + {LAT_DEVICES} couriers …");
    let small = demo_seed(&db_url, TP_DEVICES, TP_STOPS, 7);
    let large = demo_seed(&db_url, LAT_DEVICES, 2, 8);
    let server = Server::start(&db_url);
    eprintln!("push bench: server pid {} at {}", server.pid(), server.base);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let (throughput, latency) = rt.block_on(async {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(120))
            .build()
            .expect("http client");
        let bases = [server.base.clone()];
        let tp = enroll_all(&http, &bases, &small.couriers, 0).await;
        let lat = enroll_all(&http, &bases, &large.couriers, TP_DEVICES).await;
        eprintln!("push bench: enrolled {} devices", tp.len() + lat.len());
        let throughput = throughput(&http, &server, &tp, &tmp.path().join("raw.db")).await;
        eprintln!("push bench: latency, {LAT_DEVICES} devices …");
        let lat = open_loop_latencies(lat, &LATENCY).await;
        (throughput, latency_report(&lat))
    });
    let rss = server.peak_rss_mb();
    drop(server);

    write_report(
        "push",
        &serde_json::json!({
            "backend": "sqlite",
            "throughput": throughput,
            "latency": latency,
            "server_peak_rss_mb": round(rss, 1),
            "target_rss_mb": TARGET_RSS_MB,
            "rss_pass": rss <= TARGET_RSS_MB,
            "machine": {
                "cores": std::thread::available_parallelism().map_or(0, |n| n.get()),
                "loadavg_at_end": std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim(),
            },
        }),
    );
}

async fn throughput(
    http: &reqwest::Client,
    server: &Server,
    devices: &[Device],
    raw_path: &Path,
) -> serde_json::Value {
    let base_ms = now_ms() - 600_000;
    for dev in devices {
        let mut rng = StdRng::seed_from_u64(dev.index as u64);
        let warm = make_batches(dev, 0, 1, TP_WARMUP_EVENTS, base_ms, &mut rng);
        let warm = warm.into_iter().next().unwrap_or_default();
        push(http, dev, gzip_body(dev.device_id, warm), TP_WARMUP_EVENTS).await;
    }
    let mut raw_db = open_raw(raw_path);
    let (mut raw_runs, mut e2e_runs) = (Vec::new(), Vec::new());
    let mut after_seq = TP_WARMUP_EVENTS as u64;
    for round in 0..ROUNDS {
        let Round { bodies, raw } = build_round(devices, after_seq, base_ms, round);
        after_seq += (TP_BATCHES * TP_BATCH) as u64;
        let raw_run = raw_run(&mut raw_db, &raw);
        drop(raw);
        let cpu_before = server.cpu_seconds();
        let seconds = push_all(http, devices, bodies, TP_BATCH).await;
        let e2e = Run {
            events: TP_DEVICES * TP_BATCHES * TP_BATCH,
            seconds,
            cpu_seconds: server.cpu_seconds() - cpu_before,
        };
        eprintln!(
            "push bench: round {}: raw {:.0} ev/s, end to end {:.0} ev/s ({:.3})",
            round + 1,
            raw_run.events_per_s(),
            e2e.events_per_s(),
            e2e.events_per_s() / raw_run.events_per_s()
        );
        raw_runs.push(raw_run);
        e2e_runs.push(e2e);
    }
    let med = |runs: &[Run], f: fn(&Run) -> f64| median(&runs.iter().map(f).collect::<Vec<_>>());
    let list = |runs: &[Run], f: fn(&Run) -> f64, digits| {
        runs.iter().map(|r| round(f(r), digits)).collect::<Vec<_>>()
    };
    let (raw_eps, eps) = (
        med(&raw_runs, Run::events_per_s),
        med(&e2e_runs, Run::events_per_s),
    );
    let ratio = eps / raw_eps;
    let throughput = serde_json::json!({
        "devices": TP_DEVICES,
        "batch": TP_BATCH,
        "rounds": ROUNDS,
        "events_per_round": TP_DEVICES * TP_BATCHES * TP_BATCH,
        "events_per_s": round(eps, 0),
        "raw_events_per_s": round(raw_eps, 0),
        "events_per_s_runs": list(&e2e_runs, Run::events_per_s, 0),
        "raw_events_per_s_runs": list(&raw_runs, Run::events_per_s, 0),
        "server_cpu_us_per_event": round(med(&e2e_runs, Run::cpu_us_per_event), 1),
        "raw_cpu_us_per_event": round(med(&raw_runs, Run::cpu_us_per_event), 1),
        "server_cpu_us_per_event_runs": list(&e2e_runs, Run::cpu_us_per_event, 1),
        "raw_cpu_us_per_event_runs": list(&raw_runs, Run::cpu_us_per_event, 1),
        "ratio": round(ratio, 3),
        "target_ratio": TARGET_RATIO,
        "pass": ratio >= TARGET_RATIO,
    });
    eprintln!(
        "push bench: throughput {eps:.0} vs raw {raw_eps:.0} ev/s: ratio {ratio:.3} (target {TARGET_RATIO}): {}",
        if ratio >= TARGET_RATIO {
            "PASS"
        } else {
            "FAIL"
        }
    );
    throughput
}

fn latency_report(lat: &[f64]) -> serde_json::Value {
    let p99 = percentile(lat, 0.99);
    let report = serde_json::json!({
        "devices": LAT_DEVICES,
        "events_per_push": LATENCY.events_per_push,
        "pushes": lat.len(),
        "seconds": LATENCY.duration_ms / 1000,
        "p50_ms": round(percentile(lat, 0.50), 2),
        "p99_ms": round(p99, 2),
        "max_ms": round(lat.last().copied().unwrap_or(f64::NAN), 2),
        "target_p99_ms": TARGET_P99_MS,
        "pass": p99 <= TARGET_P99_MS,
    });
    eprintln!("push bench: latency {report}");
    report
}
