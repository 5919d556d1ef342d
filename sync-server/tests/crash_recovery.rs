//! The server is SIGKILLed in the middle of a stream of pushes and restarted on the same SQLite
//! file; a client that treats a connection error as "unknown outcome" and resends ends with
//! every event applied exactly once: lost = 0, duplicated effects = 0.
#![allow(clippy::unwrap_used)]

mod harness;

use doorstep_shared::StopStatus;
use doorstep_shared::event::{EventEnvelope, ScanPhase};
use doorstep_shared::protocol::{PushResponse, PushStatus};
use harness::{Encoding, TestServer, World, test_seed};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

const EVENTS: usize = 300;
const BATCH: usize = 10;

/// 300 valid events over the courier's six stops: loaded, out for delivery and arrived for each,
/// then notes, location fixes and extra parcel scans in a seeded mix, then six deliveries.
fn stream(w: &World, d: &mut harness::Device, rng: &mut StdRng) -> Vec<EventEnvelope> {
    let stops = w.stops(0);
    let mut ev = Vec::with_capacity(EVENTS);
    for (i, s) in stops.iter().enumerate() {
        ev.push(d.scan(*s, &format!("PKG-{i}"), ScanPhase::Loaded));
        ev.push(d.scan(*s, &format!("PKG-{i}"), ScanPhase::OutForDelivery));
        ev.push(d.arrive(*s, 1));
    }
    while ev.len() < EVENTS - stops.len() {
        let s = stops[rng.random_range(0..stops.len())];
        ev.push(match rng.random_range(0..3) {
            0 => d.note(s, "customer asked to knock"),
            1 => d.location(),
            _ => d.scan(s, &format!("EXTRA-{}", ev.len()), ScanPhase::Loaded),
        });
    }
    for s in &stops {
        ev.push(d.delivered(*s, 1));
    }
    ev
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_stream_then_restart_loses_nothing_and_applies_nothing_twice() {
    let seed = test_seed("crash");
    let mut rng = StdRng::seed_from_u64(seed);
    let w = World::new();
    let mut d = w.device(0, seed).await;
    let events = stream(&w, &mut d, &mut rng);
    assert_eq!(events.len(), EVENTS);

    // Two kills, after a seeded number of acknowledged batches each.
    let batches = EVENTS / BATCH;
    let k1 = rng.random_range(1..batches / 2);
    let k2 = rng.random_range(k1 + 2..batches - 2);
    eprintln!("seed {seed}: kills after {k1} and {k2} acknowledged batches");

    // The World's own server is replaced by a shared, restartable one.
    let db = w.db.clone();
    let server = Arc::new(Mutex::new(TestServer::start(&db)));
    let mut original = w;
    original.server.kill();
    let (addr_tx, addr_rx) = watch::channel((0u32, server.lock().unwrap().base.clone()));
    let (acked_tx, mut acked_rx) = watch::channel(0usize);

    let killer = {
        let server = server.clone();
        let mut jitter = StdRng::seed_from_u64(seed.rotate_left(17));
        tokio::spawn(async move {
            for (generation, k) in [(1u32, k1), (2, k2)] {
                acked_rx.wait_for(|n| *n >= k).await.unwrap();
                // Workload jitter so the kill lands before, during or after the next request.
                let us = jitter.random_range(0..3_000);
                tokio::time::sleep(std::time::Duration::from_micros(us)).await;
                let (server, db) = (server.clone(), db.clone());
                let base = tokio::task::spawn_blocking(move || {
                    let mut s = server.lock().unwrap();
                    s.kill();
                    *s = TestServer::start(&db);
                    s.base.clone()
                })
                .await
                .unwrap();
                addr_tx.send((generation, base)).unwrap();
            }
        })
    };

    // The client: resend everything past the server's last_applied_seq until all is acknowledged.
    let mut api = original.api.clone();
    let mut generation = 0u32;
    api.base = addr_rx.borrow().1.clone();
    let mut acked = 0usize; // the server's last_applied_seq, as last acknowledged
    let mut acked_batches = 0usize;
    let mut unknown_outcomes = 0usize;
    let mut responses: Vec<PushResponse> = Vec::new();
    let mut attempts = 0;
    while acked < EVENTS {
        attempts += 1;
        assert!(attempts < 500, "seed {seed}: no progress");
        let batch = events[acked..(acked + BATCH).min(EVENTS)].to_vec();
        let enc = Encoding::ALL[rng.random_range(0..3)];
        match api.try_push(&d.token, &d.request(batch), enc).await {
            Ok(r) if r.status == 200 => {
                let resp: PushResponse = r.json();
                assert!(
                    resp.last_applied_seq as usize >= acked,
                    "seed {seed}: last_applied_seq went back"
                );
                acked = resp.last_applied_seq as usize;
                responses.push(resp);
                acked_batches += 1;
                acked_tx.send_replace(acked_batches);
            }
            Ok(r) if r.status == 503 => {} // transient: retry
            Ok(r) => panic!(
                "seed {seed}: push answered {}: {}",
                r.status,
                String::from_utf8_lossy(&r.body)
            ),
            Err(_) => {
                // Unknown outcome: wait for the server to come back, then resend.
                unknown_outcomes += 1;
                let mut rx = addr_rx.clone();
                let (g, base) = rx.wait_for(|(g, _)| *g > generation).await.unwrap().clone();
                generation = g;
                api.base = base;
            }
        }
    }
    killer.await.unwrap();
    assert_eq!(generation, 2, "seed {seed}: both kills happened mid-stream");
    assert!(unknown_outcomes >= 1, "seed {seed}: the client saw a crash");

    // Every seq was applied once: either acknowledged as applied, or (its answer lost in a
    // crash) reported as a duplicate of an applied event on the resend.
    let mut seen: BTreeMap<u64, (usize, usize)> = BTreeMap::new();
    for r in &responses {
        for res in &r.results {
            let e = seen.entry(res.device_seq).or_default();
            match res.status {
                PushStatus::Applied => e.0 += 1,
                PushStatus::Duplicate => {
                    assert_eq!(res.first_status, Some(PushStatus::Applied), "seed {seed}");
                    e.1 += 1;
                }
                other => panic!("seed {seed}: unexpected {other:?}: {res:?}"),
            }
        }
    }
    assert_eq!(seen.len(), EVENTS, "seed {seed}");
    for (seq, (applied, dup)) in &seen {
        assert!(
            *applied <= 1,
            "seed {seed}: seq {seq} applied {applied} times"
        );
        assert!(
            applied + dup >= 1,
            "seed {seed}: seq {seq} never acknowledged"
        );
    }

    // The dispatcher view agrees.
    let health = api
        .devices()
        .await
        .into_iter()
        .find(|h| h.device_id == d.id)
        .unwrap();
    assert_eq!(health.last_applied_seq, EVENTS as u64, "seed {seed}");
    for s in original.stops(0) {
        assert_eq!(
            api.stop(s).await.view.status,
            StopStatus::Delivered,
            "seed {seed}"
        );
    }

    // The stored log, through the API: one applied row per created event, each intent applied
    // by exactly one event.
    let log = api.device_log(d.id).await;
    assert_eq!(log.len(), EVENTS, "seed {seed}: one row per created event");
    let lost = EVENTS
        - log
            .iter()
            .filter(|e| e.status == PushStatus::Applied)
            .count();
    assert_eq!(lost, 0, "seed {seed}: lost events");
    for (row, ev) in log.iter().zip(&events) {
        assert_eq!(row.device_seq, Some(ev.device_seq), "seed {seed}");
        assert_eq!(
            row.status,
            PushStatus::Applied,
            "seed {seed}: seq {}",
            ev.device_seq
        );
        assert_eq!(row.event_id, ev.event_id, "seed {seed}");
        assert_eq!(row.intent_key, ev.intent_key, "seed {seed}");
    }
    let mut per_intent: std::collections::HashMap<&str, usize> = Default::default();
    for e in log.iter().filter(|e| e.status == PushStatus::Applied) {
        *per_intent.entry(e.intent_key.as_str()).or_default() += 1;
    }
    let duplicated_effects = per_intent.values().filter(|n| **n > 1).count();
    assert_eq!(duplicated_effects, 0, "seed {seed}");
    server.lock().unwrap().kill();
    if let Some(db) = original.sqlite() {
        let integrity: String = db
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(
            integrity, "ok",
            "seed {seed}: the SQLite file survived the kills"
        );
    }
    let resent_duplicates: usize = seen.values().map(|(_, dup)| dup).sum();
    eprintln!(
        "seed {seed}: {} pushes acknowledged, {unknown_outcomes} unknown outcomes resent, \
         {resent_duplicates} resent events answered duplicate",
        responses.len()
    );
}
