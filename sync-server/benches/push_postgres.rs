//! Push benchmark on PostgreSQL: real `doorstep-server` replicas on one private PostgreSQL 15
//! cluster (`doorstep-test-postgres`: loopback, `fsync=off`, as every PostgreSQL test here).
//!
//! `cargo bench -p doorstep-server --bench push_postgres` prints one JSON object and writes it
//! to `target/bench/push_postgres.json`:
//!
//! * **throughput with 1 and with 3 replicas** — 16 devices (spread over the replicas) push gzip
//!   batches of 500 valid events concurrently; events/s end to end next to the raw limit: the
//!   very same rows inserted by 16 concurrent connections (one per device) straight into the
//!   `events` and `intents` tables of a second database migrated by the server's own code, with
//!   prepared multi-row inserts (`UNNEST` of column arrays), one transaction per 500-event batch
//!   as the server commits. Raw and end-to-end runs are interleaved (raw, e2e, raw, e2e, …) in
//!   this one process; the ratio is median e2e / median raw. Target: ≥ [`TARGET_RATIO`].
//! * **latency** — 1,000 devices spread over the 3 replicas push 5 events every ~5 s on an
//!   open-loop schedule; client-side p50/p99/max from the scheduled send time. Target: p99 ≤
//!   [`TARGET_P99_MS`] ms.
//! * **peak RSS per replica** — `VmHWM` of each server process at the end. Target: ≤
//!   [`TARGET_RSS_MB`] MB.
//!
//! Every event must come back `applied` with no code, or the run aborts.

mod load;

use doorstep_shared::EventEnvelope;
use doorstep_shared::intent::fingerprint;
use load::devices::{
    Device, LatencyPlan, enroll_all, gzip_body, make_batches, now_ms, open_loop_latencies, push,
    push_all,
};
use load::server::{Server, demo_seed};
use load::stats::{median, percentile, round, write_report};
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::time::{Duration, Instant};

const TP_DEVICES: usize = 16;
const TP_BATCH: usize = 500;
/// Stops on each throughput device's route, as in the SQLite bench.
const TP_STOPS: usize = 200;
const ROUNDS: usize = 5;
/// Batches per device per round.
const TP_BATCHES: usize = 2;
const TP_WARMUP_EVENTS: usize = 10;
const LAT_DEVICES: usize = 1_000;
const LATENCY: LatencyPlan = LatencyPlan {
    events_per_push: 5,
    interval_ms: 5_000,
    duration_ms: 30_000,
};

const TARGET_RATIO: f64 = 0.50;
const TARGET_P99_MS: f64 = 100.0;
const TARGET_RSS_MB: f64 = 150.0;

/// One batch as columns, ready to bind to the raw inserts.
#[derive(Default)]
struct RawBatch {
    event_id: Vec<String>,
    device_id: Vec<String>,
    device_seq: Vec<i64>,
    intent_key: Vec<String>,
    fingerprint: Vec<String>,
    kind: Vec<String>,
    stop_id: Vec<Option<String>>,
    hlc_wall: Vec<i64>,
    hlc_logical: Vec<i64>,
    device_time_ms: Vec<i64>,
    clock_offset_ms: Vec<i64>,
    status: Vec<String>,
    code: Vec<Option<String>>,
    payload: Vec<String>,
}

impl RawBatch {
    fn of(events: &[EventEnvelope]) -> Self {
        let mut b = Self::default();
        for e in events {
            b.event_id.push(e.event_id.to_string());
            b.device_id.push(e.device_id.to_string());
            b.device_seq.push(e.device_seq as i64);
            b.intent_key.push(e.intent_key.clone());
            b.fingerprint.push(fingerprint(&e.payload));
            b.kind.push(e.payload.kind().to_owned());
            b.stop_id.push(e.payload.stop_id().map(|s| s.to_string()));
            b.hlc_wall.push(e.hlc.wall_ms as i64);
            b.hlc_logical.push(i64::from(e.hlc.logical));
            b.device_time_ms.push(e.device_time_ms as i64);
            b.clock_offset_ms.push(-250);
            b.status.push("applied".to_owned());
            b.code.push(None);
            b.payload
                .push(serde_json::to_string(&e.payload).expect("payload JSON"));
        }
        b
    }

    fn len(&self) -> usize {
        self.event_id.len()
    }
}

const RAW_EVENTS: &str =
    "INSERT INTO events (event_id, device_id, device_seq, intent_key, fingerprint, kind,
         stop_id, hlc_wall, hlc_logical, device_time_ms, received_at_ms, clock_offset_ms, status,
         code, payload)
     SELECT e.event_id, e.device_id, e.device_seq, e.intent_key, e.fingerprint, e.kind, e.stop_id,
         e.hlc_wall, e.hlc_logical, e.device_time_ms, $15, e.clock_offset_ms, e.status, e.code,
         e.payload
     FROM UNNEST($1::text[], $2::text[], $3::int8[], $4::text[], $5::text[], $6::text[],
         $7::text[], $8::int8[], $9::int8[], $10::int8[], $11::int8[], $12::text[], $13::text[],
         $14::text[])
       AS e(event_id, device_id, device_seq, intent_key, fingerprint, kind, stop_id, hlc_wall,
         hlc_logical, device_time_ms, clock_offset_ms, status, code, payload)";
const RAW_INTENTS: &str = "INSERT INTO intents (intent_key, fingerprint, event_id)
     SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[])";

/// One writer of the raw limit: its own connection, its device's batches in order.
async fn raw_writer(url: String, batches: Vec<RawBatch>) -> usize {
    let (mut client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connect raw");
    let conn = tokio::spawn(conn);
    let events = client.prepare(RAW_EVENTS).await.expect("prepare events");
    let intents = client.prepare(RAW_INTENTS).await.expect("prepare intents");
    let mut n = 0;
    for b in &batches {
        let tx = client.transaction().await.expect("begin");
        let received = now_ms() as i64;
        tx.execute(
            &events,
            &[
                &b.event_id,
                &b.device_id,
                &b.device_seq,
                &b.intent_key,
                &b.fingerprint,
                &b.kind,
                &b.stop_id,
                &b.hlc_wall,
                &b.hlc_logical,
                &b.device_time_ms,
                &b.clock_offset_ms,
                &b.status,
                &b.code,
                &b.payload,
                &received,
            ],
        )
        .await
        .expect("insert events");
        tx.execute(&intents, &[&b.intent_key, &b.fingerprint, &b.event_id])
            .await
            .expect("insert intents");
        tx.commit().await.expect("commit");
        n += b.len();
    }
    drop(client);
    let _ = conn.await;
    n
}

/// The raw limit: every device's batches by its own connection, all at once.
async fn raw_run(url: &str, per_device: Vec<Vec<RawBatch>>) -> (usize, f64) {
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for batches in per_device {
        set.spawn(raw_writer(url.to_owned(), batches));
    }
    let events: usize = set.join_all().await.into_iter().sum();
    (events, started.elapsed().as_secs_f64())
}

struct Scenario {
    replicas: usize,
    latency: bool,
}

fn main() {
    // `cargo bench` passes `--bench`; ignore any arguments.
    let cluster = doorstep_test_postgres::TestCluster::shared();
    let scenarios = [
        Scenario {
            replicas: 1,
            latency: false,
        },
        Scenario {
            replicas: 3,
            latency: true,
        },
    ];
    let reports: Vec<serde_json::Value> =
        scenarios.iter().map(|s| run_scenario(cluster, s)).collect();
    write_report(
        "push_postgres",
        &serde_json::json!({
            "backend": "postgres",
            "postgres": "private PostgreSQL cluster on loopback, fsync=off",
            "scenarios": reports,
            "machine": {
                "cores": std::thread::available_parallelism().map_or(0, |n| n.get()),
                "loadavg_at_end": std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim(),
            },
        }),
    );
}

fn run_scenario(cluster: &doorstep_test_postgres::TestCluster, s: &Scenario) -> serde_json::Value {
    let db = cluster.fresh_database();
    let raw_db = cluster.fresh_database();
    // The raw side's schema is the server's, created by the server's own code.
    drop(doorstep_server::store::postgres::PgStore::connect(&raw_db).expect("migrate raw db"));
    eprintln!("push_postgres bench: {} replica(s): seeding …", s.replicas);
    let small = demo_seed(&db, TP_DEVICES, TP_STOPS, 7);
    let large = s.latency.then(|| demo_seed(&db, LAT_DEVICES, 2, 8));
    let servers: Vec<Server> = (0..s.replicas).map(|_| Server::start(&db)).collect();
    let bases: Vec<String> = servers.iter().map(|s| s.base.clone()).collect();

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
        let tp = enroll_all(&http, &bases, &small.couriers, 0).await;
        let throughput = throughput(&http, &servers, &tp, &raw_db).await;
        let latency = match &large {
            Some(large) => {
                let lat = enroll_all(&http, &bases, &large.couriers, TP_DEVICES).await;
                eprintln!(
                    "push_postgres bench: latency, {LAT_DEVICES} devices over {} replicas …",
                    s.replicas
                );
                Some(latency_report(&open_loop_latencies(lat, &LATENCY).await))
            }
            None => None,
        };
        (throughput, latency)
    });
    let rss: Vec<f64> = servers.iter().map(Server::peak_rss_mb).collect();
    let rss_max = rss.iter().copied().fold(0.0, f64::max);
    serde_json::json!({
        "replicas": s.replicas,
        "throughput": throughput,
        "latency": latency,
        "replica_peak_rss_mb": rss.iter().map(|r| round(*r, 1)).collect::<Vec<_>>(),
        "target_rss_mb": TARGET_RSS_MB,
        "rss_pass": rss_max <= TARGET_RSS_MB,
    })
}

async fn throughput(
    http: &reqwest::Client,
    servers: &[Server],
    devices: &[Device],
    raw_url: &str,
) -> serde_json::Value {
    let base_ms = now_ms() - 600_000;
    for dev in devices {
        let mut rng = StdRng::seed_from_u64(dev.index as u64);
        let warm = make_batches(dev, 0, 1, TP_WARMUP_EVENTS, base_ms, &mut rng);
        let warm = warm.into_iter().next().unwrap_or_default();
        push(http, dev, gzip_body(dev.device_id, warm), TP_WARMUP_EVENTS).await;
    }
    let cpu = || servers.iter().map(Server::cpu_seconds).sum::<f64>();
    let (mut raw_eps, mut e2e_eps, mut cpu_us) = (Vec::new(), Vec::new(), Vec::new());
    let mut after_seq = TP_WARMUP_EVENTS as u64;
    for round_no in 0..ROUNDS {
        let batches: Vec<Vec<Vec<EventEnvelope>>> = devices
            .iter()
            .map(|dev| {
                let mut rng =
                    StdRng::seed_from_u64(1_000 * (round_no as u64 + 1) + dev.index as u64);
                make_batches(dev, after_seq, TP_BATCHES, TP_BATCH, base_ms, &mut rng)
            })
            .collect();
        after_seq += (TP_BATCHES * TP_BATCH) as u64;
        let raw: Vec<Vec<RawBatch>> = batches
            .iter()
            .map(|d| d.iter().map(|b| RawBatch::of(b)).collect())
            .collect();
        let bodies: Vec<Vec<Vec<u8>>> = devices
            .iter()
            .zip(batches)
            .map(|(dev, bs)| {
                bs.into_iter()
                    .map(|b| gzip_body(dev.device_id, b))
                    .collect()
            })
            .collect();
        let (raw_events, raw_secs) = raw_run(raw_url, raw).await;
        let cpu_before = cpu();
        let secs = push_all(http, devices, bodies, TP_BATCH).await;
        let events = TP_DEVICES * TP_BATCHES * TP_BATCH;
        cpu_us.push((cpu() - cpu_before) * 1e6 / events as f64);
        raw_eps.push(raw_events as f64 / raw_secs);
        e2e_eps.push(events as f64 / secs);
        eprintln!(
            "push_postgres bench: {} replica(s), round {}: raw {:.0} ev/s, end to end {:.0} ev/s",
            servers.len(),
            round_no + 1,
            raw_eps[round_no],
            e2e_eps[round_no]
        );
    }
    let (raw, e2e) = (median(&raw_eps), median(&e2e_eps));
    let ratio = e2e / raw;
    let rounded = |v: &[f64], d| v.iter().map(|x| round(*x, d)).collect::<Vec<_>>();
    eprintln!(
        "push_postgres bench: {} replica(s): {e2e:.0} vs raw {raw:.0} ev/s: ratio {ratio:.3} (target {TARGET_RATIO}): {}",
        servers.len(),
        if ratio >= TARGET_RATIO {
            "PASS"
        } else {
            "FAIL"
        }
    );
    serde_json::json!({
        "devices": TP_DEVICES,
        "batch": TP_BATCH,
        "rounds": ROUNDS,
        "events_per_round": TP_DEVICES * TP_BATCHES * TP_BATCH,
        "events_per_s": round(e2e, 0),
        "raw_events_per_s": round(raw, 0),
        "events_per_s_runs": rounded(&e2e_eps, 0),
        "raw_events_per_s_runs": rounded(&raw_eps, 0),
        "replicas_cpu_us_per_event": round(median(&cpu_us), 1),
        "ratio": round(ratio, 3),
        "target_ratio": TARGET_RATIO,
        "pass": ratio >= TARGET_RATIO,
    })
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
    eprintln!("push_postgres bench: latency {report}");
    report
}
