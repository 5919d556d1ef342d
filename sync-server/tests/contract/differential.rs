//! Differential histories: one seeded random history of pushes (fresh events, replays,
//! near-duplicates with another payload, gaps, poison events, reused event ids) interleaved with
//! office commands (reassign, cancel, reschedule), generated once and replayed on two backends.
//! Every per-event result, every office outcome, every stop's folded state and every device's
//! log must come out identical.

use super::{T0, enroll, office_with_id, push, route};
use crate::harness::{Device, delivered, failed, scan};
use doorstep_server::store::Store;
use doorstep_shared::event::{
    EventEnvelope, EventPayload, RouteAssigned, ScanPhase, StopCancelled, StopReassigned,
    StopRescheduled, TimeWindow,
};
use doorstep_shared::protocol::PushResult;
use doorstep_shared::{CourierId, EventId, FailureReason, StopId};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const DEVICES: u128 = 3;
const STOPS_PER_ROUTE: u128 = 4;

/// One step of a history.
#[derive(Clone, Debug)]
enum Step {
    Push {
        device: usize,
        events: Vec<EventEnvelope>,
    },
    Office {
        payload: Box<EventPayload>,
        event_id: EventId,
        at: u64,
    },
}

/// What a backend answered and ended with; equal across backends or the test fails.
#[derive(Debug, PartialEq)]
pub struct Trace {
    answers: Vec<String>,
    stops: Vec<(StopId, Vec<u8>)>,
    logs: Vec<Vec<(Option<u64>, String, String)>>,
    escalations: Vec<(String, Option<StopId>)>,
}

fn courier(i: usize) -> CourierId {
    CourierId(uuid::Uuid::from_u128(0xC0 + i as u128))
}

fn plans() -> Vec<RouteAssigned> {
    (0..DEVICES)
        .map(|i| {
            route(
                0x300 + i,
                courier(i as usize),
                0x3000 + i * 0x10,
                STOPS_PER_ROUTE,
                1,
            )
        })
        .collect()
}

fn all_stops() -> Vec<StopId> {
    plans()
        .iter()
        .flat_map(|p| p.stops.iter().map(|s| s.stop_id))
        .collect()
}

/// A seeded history of `steps` steps.
fn history(seed: u64, steps: usize) -> Vec<Step> {
    let mut rng = StdRng::seed_from_u64(seed);
    let plans = plans();
    let stops = all_stops();
    let mut devices: Vec<Device> = (0..DEVICES as usize)
        .map(|i| {
            let id = doorstep_shared::DeviceId(uuid::Uuid::from_u128(0xD000 + i as u128 + 1));
            let mut d = Device::new(id, courier(i), String::new(), seed ^ i as u64);
            d.clock_offset_ms = T0 as i64 - crate::harness::now_ms() as i64;
            d
        })
        .collect();
    let mut sent: Vec<Vec<EventEnvelope>> = vec![Vec::new(); devices.len()];
    let mut out = Vec::with_capacity(steps);
    for n in 0..steps {
        if rng.random_ratio(1, 6) {
            let stop = if rng.random_ratio(1, 10) {
                StopId(uuid::Uuid::from_u128(0xDEAD)) // a stop nobody planned
            } else {
                stops[rng.random_range(0..stops.len())]
            };
            let at = T0 + n as u64 * 1_000;
            let payload = match rng.random_range(0..3) {
                0 => {
                    let to = rng.random_range(0..plans.len());
                    let from = plans
                        .iter()
                        .find(|p| p.stops.iter().any(|s| s.stop_id == stop))
                        .map_or(plans[0].route_id, |p| p.route_id);
                    EventPayload::StopReassigned(StopReassigned {
                        stop_id: stop,
                        from_route: from,
                        to_route: plans[to].route_id,
                        to_courier: plans[to].courier_id,
                    })
                }
                1 => EventPayload::StopCancelled(StopCancelled {
                    stop_id: stop,
                    reason: format!("reason {}", rng.random_range(0..2)),
                }),
                _ => EventPayload::StopRescheduled(StopRescheduled {
                    stop_id: stop,
                    window: TimeWindow {
                        start_ms: T0 + 3_600_000,
                        end_ms: T0 + 7_200_000,
                    },
                }),
            };
            let event_id = EventId::from_parts(at, rng.random());
            out.push(Step::Office {
                payload: Box::new(payload),
                event_id,
                at,
            });
            continue;
        }
        let di = rng.random_range(0..devices.len());
        let d = &mut devices[di];
        let mut events = Vec::new();
        for _ in 0..rng.random_range(1..5) {
            let stop = stops[rng.random_range(0..stops.len())];
            let attempt = rng.random_range(1..3);
            let payload = match rng.random_range(0..6) {
                0 => scan(
                    stop,
                    &format!("PKG-{}", rng.random_range(0..3)),
                    ScanPhase::Loaded,
                ),
                1 => scan(stop, "PKG-0", ScanPhase::OutForDelivery),
                2 => delivered(stop, attempt),
                3 => failed(stop, attempt, FailureReason::CustomerAbsent),
                4 => failed(stop, attempt, FailureReason::AddressInvalid),
                _ => scan(stop, "PKG-1", ScanPhase::AtDoor),
            };
            let mut env = d.event(payload);
            match rng.random_range(0..12) {
                // poison: an intent key that is not the payload's
                0 => env.intent_key = format!("bogus:{}", env.device_seq),
                // a reused event id (another intent)
                1 if !sent[di].is_empty() => {
                    env.event_id = sent[di][rng.random_range(0..sent[di].len())].event_id;
                }
                _ => {}
            }
            events.push(env);
        }
        sent[di].extend(events.iter().cloned());
        // Replays and gaps: resend some old events, or hold one back.
        if rng.random_ratio(1, 4) && sent[di].len() > 2 {
            let k = rng.random_range(0..sent[di].len());
            events.insert(0, sent[di][k].clone());
        }
        if rng.random_ratio(1, 8) && events.len() > 1 {
            events.remove(0);
        }
        out.push(Step::Push { device: di, events });
    }
    // An office command on a stop nobody planned, whatever the dice said.
    out.push(Step::Office {
        payload: Box::new(EventPayload::StopCancelled(StopCancelled {
            stop_id: StopId(uuid::Uuid::from_u128(0xDEAD)),
            reason: "never planned".to_owned(),
        })),
        event_id: EventId::from_parts(T0, [0xEE; 10]),
        at: T0,
    });
    // Finally every device resends everything, so gaps close and every event is judged.
    for (di, all) in sent.into_iter().enumerate() {
        for chunk in all.chunks(50) {
            out.push(Step::Push {
                device: di,
                events: chunk.to_vec(),
            });
        }
    }
    out
}

fn answer(r: &PushResult) -> String {
    format!(
        "{}:{:?}:{:?}:{:?}",
        r.device_seq, r.status, r.code, r.first_status
    )
}

/// Replays `steps` on `store` and returns what it answered and ended with.
fn replay<S: Store>(store: &S, history: &[Step]) -> Trace {
    for i in 0..DEVICES as usize {
        store
            .create_courier(courier(i), &format!("Courier {i}"), "north")
            .expect("courier");
    }
    let devices: Vec<Device> = (0..DEVICES as usize)
        .map(|i| enroll(store, courier(i), i as u128 + 1))
        .collect();
    let mut answers = Vec::new();
    for (i, plan) in plans().into_iter().enumerate() {
        let id = EventId::from_parts(T0, [i as u8; 10]);
        answers.push(format!(
            "{:?}",
            office_with_id(store, EventPayload::RouteAssigned(plan), id, T0)
        ));
    }
    for step in history.iter().cloned() {
        match step {
            Step::Office {
                payload,
                event_id,
                at,
            } => answers.push(format!(
                "{:?}",
                office_with_id(store, *payload, event_id, at)
            )),
            Step::Push { device, events } => {
                let r = push(store, &devices[device], events);
                answers.push(format!("last={}", r.last_applied_seq));
                answers.extend(r.results.iter().map(answer));
            }
        }
    }
    let stops = all_stops()
        .into_iter()
        .map(|s| {
            let state = store.stop_state(s).expect("stop").expect("planned stop");
            (s, state.to_bytes())
        })
        .collect();
    let logs = devices
        .iter()
        .map(|d| {
            store
                .device_events(d.id, 0, 10_000)
                .expect("log")
                .into_iter()
                .map(|e| {
                    (
                        e.device_seq,
                        e.intent_key,
                        format!("{:?}{:?}", e.status, e.code),
                    )
                })
                .collect()
        })
        .collect();
    let mut escalations: Vec<(String, Option<StopId>)> = store
        .escalations(false)
        .expect("escalations")
        .into_iter()
        .map(|e| (format!("{:?}: {}", e.kind, e.detail), e.stop_id))
        .collect();
    escalations.sort();
    Trace {
        answers,
        stops,
        logs,
        escalations,
    }
}

/// Replays the same history on both stores and compares everything.
pub fn compare<A: Store, B: Store>(a: &A, b: &B, seed: u64, steps: usize) {
    let history = history(seed, steps);
    let left = replay(a, &history);
    let right = replay(b, &history);
    assert!(left.answers.len() > steps, "the history did something");
    for seen in [
        "Applied",
        "Duplicate",
        "Conflict",
        "Rejected",
        "Gap",
        "EventIdReused",
        "IntentKeyMismatch",
        "UnknownTarget",
    ] {
        assert!(
            left.answers.iter().any(|a| a.contains(seen)),
            "a history of {steps} steps exercises {seen} (seed {seed})"
        );
    }
    for (i, (l, r)) in left.answers.iter().zip(&right.answers).enumerate() {
        assert_eq!(l, r, "answer {i} differs (seed {seed})");
    }
    assert_eq!(left.answers.len(), right.answers.len(), "seed {seed}");
    assert_eq!(left.logs, right.logs, "device logs differ (seed {seed})");
    let differing: Vec<StopId> = left
        .stops
        .iter()
        .zip(&right.stops)
        .filter(|(l, r)| l != r)
        .map(|(l, _)| l.0)
        .collect();
    assert!(
        differing.is_empty(),
        "stop states differ at {differing:?} (seed {seed})"
    );
    assert_eq!(
        left.escalations, right.escalations,
        "escalations differ (seed {seed})"
    );
}
