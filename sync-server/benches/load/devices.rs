//! Enrolled bench devices: realistic event streams, gzip push bodies, and the two load shapes
//! (closed-loop throughput, open-loop latency), each device talking to one base URL.

use doorstep_server::seed::SeededCourier;
use doorstep_shared::event::{GeoPoint, LocationFixed, NoteAdded, ParcelScanned, ScanPhase};
use doorstep_shared::intent::intent_key;
use doorstep_shared::protocol::{
    EnrollRequest, EnrollResponse, PushRequest, PushResponse, PushStatus,
};
use doorstep_shared::{
    DeviceId, EventEnvelope, EventId, EventPayload, HlcStamp, ParcelBarcode, StopId,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::io::Write;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// One enrolled device, the server it talks to, and what it needs to make valid events.
#[derive(Clone)]
pub struct Device {
    pub index: usize,
    pub base: String,
    pub device_id: DeviceId,
    pub token: String,
    pub stops: Vec<StopId>,
}

/// Enrolls one device per courier; device `i` talks to `bases[i % bases.len()]`.
pub async fn enroll_all(
    http: &reqwest::Client,
    bases: &[String],
    couriers: &[SeededCourier],
    offset: usize,
) -> Vec<Device> {
    let mut out = Vec::with_capacity(couriers.len());
    for chunk in couriers.chunks(32) {
        let mut set = tokio::task::JoinSet::new();
        for (i, c) in chunk.iter().enumerate() {
            let index = offset + out.len() + i;
            let base = bases[index % bases.len()].clone();
            let (http, url) = (http.clone(), format!("{base}/v1/enroll"));
            let (code, stops) = (c.enrollment_code.clone(), c.stops.clone());
            set.spawn(async move {
                let resp = http
                    .post(url)
                    .json(&EnrollRequest {
                        code,
                        device_name: format!("bench handheld {index}"),
                        public_key: None,
                    })
                    .send()
                    .await
                    .expect("enroll request");
                assert!(resp.status().is_success(), "enroll: {}", resp.status());
                let e: EnrollResponse = resp.json().await.expect("enroll response");
                Device {
                    index,
                    base,
                    device_id: e.device_id,
                    token: e.token,
                    stops,
                }
            });
        }
        let mut got: Vec<Device> = set.join_all().await;
        got.sort_by_key(|d| d.index);
        out.extend(got);
    }
    out
}

/// A realistic device event stream: mostly GPS fixes, then parcel scans and driver notes, each
/// on a stop of the device's own route. Every event is a fresh intent, so every one applies.
pub fn make_event(dev: &Device, seq: u64, base_ms: u64, rng: &mut StdRng) -> EventEnvelope {
    let device_time_ms = base_ms + seq * 50;
    let stop = dev.stops[(seq as usize / 10) % dev.stops.len()];
    let payload = match seq % 10 {
        0..=4 => EventPayload::LocationFixed(LocationFixed {
            location: GeoPoint {
                lat: 52.52 + rng.random_range(-0.05..0.05),
                lon: 13.405 + rng.random_range(-0.08..0.08),
            },
            accuracy_m: rng.random_range(3.0..25.0),
            fix_time_ms: device_time_ms,
        }),
        5..=7 => EventPayload::ParcelScanned(ParcelScanned {
            stop_id: stop,
            parcel: ParcelBarcode::parse(&format!("PKG-{}-{seq}", dev.index))
                .expect("valid barcode"),
            phase: ScanPhase::Loaded,
        }),
        _ => EventPayload::NoteAdded(NoteAdded {
            stop_id: stop,
            note_id: doorstep_shared::ids::uuid_v7(device_time_ms, rng.random()),
            text: format!(
                "{} (#{seq})",
                [
                    "Left with neighbour at no. 12",
                    "Dog in the yard, rang from the gate",
                    "Customer asked to use the side entrance next time",
                    "Parcel box full, card left",
                ][rng.random_range(0..4)]
            ),
        }),
    };
    EventEnvelope {
        event_id: EventId::from_parts(device_time_ms, rng.random()),
        device_id: dev.device_id,
        device_seq: seq,
        intent_key: intent_key(&payload, &dev.device_id),
        schema_version: 1,
        device_time_ms,
        hlc: HlcStamp {
            wall_ms: device_time_ms,
            logical: 0,
        },
        blob_digests: vec![],
        payload,
    }
}

/// `batches` batches of `size` events per device, `device_seq` continuing after `after_seq`.
pub fn make_batches(
    dev: &Device,
    after_seq: u64,
    batches: usize,
    size: usize,
    base_ms: u64,
    rng: &mut StdRng,
) -> Vec<Vec<EventEnvelope>> {
    let mut seq = after_seq;
    (0..batches)
        .map(|_| {
            (0..size)
                .map(|_| {
                    seq += 1;
                    make_event(dev, seq, base_ms, rng)
                })
                .collect()
        })
        .collect()
}

pub fn gzip_body(device_id: DeviceId, events: Vec<EventEnvelope>) -> Vec<u8> {
    let req = PushRequest {
        device_id,
        sent_at_ms: now_ms(),
        events,
        queue: None,
    };
    let json = serde_json::to_vec(&req).expect("serialise push");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&json).expect("gzip");
    gz.finish().expect("gzip")
}

/// Sends one gzip push and checks that every event applied.
pub async fn push(http: &reqwest::Client, dev: &Device, body: Vec<u8>, expect: usize) {
    let resp = http
        .post(format!("{}/v1/sync/push", dev.base))
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .bearer_auth(&dev.token)
        .body(body)
        .send()
        .await
        .expect("push request");
    let status = resp.status();
    let text = resp.text().await.expect("push response body");
    assert!(status.is_success(), "push failed: {status}: {text}");
    let r: PushResponse = serde_json::from_str(&text).expect("push response JSON");
    assert_eq!(r.results.len(), expect, "every event gets a result");
    if let Some(bad) = r
        .results
        .iter()
        .find(|x| x.status != PushStatus::Applied || x.code.is_some())
    {
        panic!("event not cleanly applied (device {}): {bad:?}", dev.index);
    }
}

/// Every device pushes its bodies one after the other, all devices at once; returns the wall
/// time in seconds.
pub async fn push_all(
    http: &reqwest::Client,
    devices: &[Device],
    bodies: Vec<Vec<Vec<u8>>>,
    batch: usize,
) -> f64 {
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for (dev, bodies) in devices.iter().cloned().zip(bodies) {
        let http = http.clone();
        set.spawn(async move {
            for body in bodies {
                push(&http, &dev, body, batch).await;
            }
        });
    }
    while let Some(r) = set.join_next().await {
        if let Err(e) = r {
            std::panic::resume_unwind(e.into_panic());
        }
    }
    started.elapsed().as_secs_f64()
}

/// The open-loop latency schedule.
pub struct LatencyPlan {
    pub events_per_push: usize,
    pub interval_ms: u64,
    pub duration_ms: u64,
}

/// Each device pushes `events_per_push` events every ~`interval_ms` (seeded jitter) for
/// `duration_ms`, with its own client and connection as in the field; returns every push's
/// latency in ms, measured from its scheduled send time, sorted.
pub async fn open_loop_latencies(devices: Vec<Device>, plan: &LatencyPlan) -> Vec<f64> {
    let clients: Vec<reqwest::Client> = (0..devices.len())
        .map(|_| {
            reqwest::Client::builder()
                .no_proxy()
                .pool_max_idle_per_host(1)
                .timeout(Duration::from_secs(60))
                .build()
                .expect("http client")
        })
        .collect();
    let started = tokio::time::Instant::now() + Duration::from_millis(500);
    let (batch, interval, duration) = (plan.events_per_push, plan.interval_ms, plan.duration_ms);
    let mut set = tokio::task::JoinSet::new();
    for (dev, http) in devices.into_iter().zip(clients) {
        set.spawn(async move {
            let mut rng = StdRng::seed_from_u64(50_000 + dev.index as u64);
            let base_ms = now_ms() - 600_000;
            let mut at = rng.random_range(0..interval);
            let mut seq = 0u64;
            let mut lat = Vec::new();
            while at < duration {
                let scheduled = started + Duration::from_millis(at);
                tokio::time::sleep_until(scheduled).await;
                let events: Vec<_> = (0..batch)
                    .map(|_| {
                        seq += 1;
                        make_event(&dev, seq, base_ms, &mut rng)
                    })
                    .collect();
                push(&http, &dev, gzip_body(dev.device_id, events), batch).await;
                lat.push(scheduled.elapsed().as_secs_f64() * 1000.0);
                at += interval - 500 + rng.random_range(0..1_000);
            }
            lat
        });
    }
    let mut lat = Vec::new();
    while let Some(r) = set.join_next().await {
        match r {
            Ok(v) => lat.extend(v),
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
    lat.sort_by(f64::total_cmp);
    lat
}
