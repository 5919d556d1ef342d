//! An in-process fake of the device API: enroll, push (dedupe by seq and by intent, conflicts,
//! rejections, gaps) and pull. Deliberately small; the real server lives in `sync-server`.

use crate::clock::Clock;
use crate::transport::{Encoding, RawResponse, Request, Transport, TransportError};
use doorstep_shared::intent::fingerprint;
use doorstep_shared::protocol::{
    Change, EnrollRequest, EnrollResponse, MAX_EVENTS_PER_PUSH, MAX_PUSH_DECODED_BYTES,
    PullResponse, PushRequest, PushResponse, PushResult, PushStatus,
};
use doorstep_shared::{
    CourierId, DeviceId, EventEnvelope, EventId, EventPayload, HlcStamp, Problem, ProblemCode,
};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// How the fake answers push and pull requests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FakeMode {
    Normal,
    /// 200 with a body that is not JSON.
    Garbage,
    /// This status with a problem document, and `Retry-After` when given.
    Fail {
        status: u16,
        retry_after_s: Option<u64>,
    },
}

/// One event the fake stored, with its outcome.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredFact {
    pub event: EventEnvelope,
    pub status: PushStatus,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FakeStats {
    pub push_requests: u64,
    pub pull_requests: u64,
    pub enroll_requests: u64,
}

#[derive(Debug, Default)]
struct DeviceRec {
    device_id: Option<DeviceId>,
    last_applied: u64,
    outcomes: BTreeMap<u64, (EventId, PushStatus)>,
}

#[derive(Debug)]
struct State {
    mode: FakeMode,
    devices: HashMap<String, DeviceRec>,
    intents: HashMap<String, String>,
    facts: Vec<StoredFact>,
    office: Vec<Change>,
    poison_kinds: HashSet<String>,
    max_body_bytes: usize,
    next_id: u64,
    stats: FakeStats,
}

#[derive(Debug)]
pub struct FakeServer {
    state: Mutex<State>,
    clock: Arc<dyn Clock>,
}

fn problem(code: ProblemCode, detail: &str) -> RawResponse {
    let p = Problem::new(code, Some(detail.to_owned()));
    RawResponse {
        status: p.status,
        retry_after: None,
        content_type: Some("application/problem+json".into()),
        body: serde_json::to_vec(&p).unwrap_or_default().into(),
    }
}

fn json<T: serde::Serialize>(v: &T) -> RawResponse {
    RawResponse::json(200, serde_json::to_vec(v).unwrap_or_default())
}

impl FakeServer {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            state: Mutex::new(State {
                mode: FakeMode::Normal,
                devices: HashMap::new(),
                intents: HashMap::new(),
                facts: Vec::new(),
                office: Vec::new(),
                poison_kinds: HashSet::new(),
                max_body_bytes: doorstep_shared::protocol::MAX_PUSH_BODY_BYTES,
                next_id: 1,
                stats: FakeStats::default(),
            }),
            clock,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn set_mode(&self, mode: FakeMode) {
        self.lock().mode = mode;
    }

    /// Events of this kind are rejected (quarantined) as illegal transitions.
    pub fn poison_kind(&self, kind: &str) {
        self.lock().poison_kinds.insert(kind.to_owned());
    }

    /// Compressed bodies above this size get 413.
    pub fn set_max_body_bytes(&self, n: usize) {
        self.lock().max_body_bytes = n;
    }

    /// Every event stored, in arrival order (applied, conflicting and rejected ones).
    pub fn facts(&self) -> Vec<StoredFact> {
        self.lock().facts.clone()
    }

    pub fn stats(&self) -> FakeStats {
        self.lock().stats.clone()
    }

    /// The server's `last_applied_seq` for a device.
    pub fn last_applied(&self, device: DeviceId) -> u64 {
        self.lock()
            .devices
            .values()
            .find(|d| d.device_id == Some(device))
            .map_or(0, |d| d.last_applied)
    }

    /// Simulates a server restored from an older backup: forgets events after `seq`.
    pub fn rewind(&self, device: DeviceId, seq: u64) {
        let mut s = self.lock();
        let mut forgotten = HashSet::new();
        for d in s.devices.values_mut() {
            if d.device_id == Some(device) {
                d.last_applied = d.last_applied.min(seq);
                let gone = d.outcomes.split_off(&(seq + 1));
                forgotten.extend(gone.into_values().map(|(id, _)| id));
            }
        }
        s.facts.retain(|f| !forgotten.contains(&f.event.event_id));
        let keep: HashSet<String> = s.facts.iter().map(|f| f.event.intent_key.clone()).collect();
        s.intents.retain(|k, _| keep.contains(k));
    }

    /// Publishes an office change for every device to pull.
    pub fn publish(&self, payload: EventPayload) -> Change {
        let now = self.clock.now_ms();
        let mut s = self.lock();
        let cursor = s.office.len() as u64 + 1;
        let id = s.next_id;
        s.next_id += 1;
        let change = Change {
            cursor,
            event_id: EventId::from_parts(
                now,
                (id as u128).to_be_bytes()[6..]
                    .try_into()
                    .unwrap_or([0; 10]),
            ),
            hlc: HlcStamp {
                wall_ms: now,
                logical: 0,
            },
            recorded_at_ms: now,
            payload,
        };
        s.office.push(change.clone());
        change
    }

    fn enroll(&self, body: &[u8]) -> RawResponse {
        let now = self.clock.now_ms();
        let mut s = self.lock();
        s.stats.enroll_requests += 1;
        let Ok(req) = serde_json::from_slice::<EnrollRequest>(body) else {
            return problem(ProblemCode::MalformedRequest, "not an enroll request");
        };
        if req.code.is_empty() {
            return problem(ProblemCode::EnrollmentCodeInvalid, "empty code");
        }
        let n = s.next_id;
        s.next_id += 1;
        let bytes = |tag: u8| {
            let mut b = [tag; 10];
            b[2..].copy_from_slice(&n.to_be_bytes());
            b
        };
        let device_id = DeviceId::from_parts(now, bytes(1));
        let token = format!("token-{n}");
        s.devices.insert(
            token.clone(),
            DeviceRec {
                device_id: Some(device_id),
                ..DeviceRec::default()
            },
        );
        json(&EnrollResponse {
            device_id,
            courier_id: CourierId::from_parts(now, bytes(2)),
            token,
            server_time_ms: now,
        })
    }

    fn push(&self, token: &str, encoding: Encoding, body: &[u8]) -> RawResponse {
        let now = self.clock.now_ms();
        let mut guard = self.lock();
        let s = &mut *guard;
        s.stats.push_requests += 1;
        if !s.devices.contains_key(token) {
            return problem(ProblemCode::Unauthorized, "unknown token");
        }
        if body.len() > s.max_body_bytes {
            return problem(ProblemCode::PayloadTooLarge, "body too large");
        }
        let Ok(raw) = encoding.decode(body, MAX_PUSH_DECODED_BYTES) else {
            return problem(ProblemCode::BadContentEncoding, "body does not decode");
        };
        let Ok(req) = serde_json::from_slice::<PushRequest>(&raw) else {
            return problem(ProblemCode::MalformedRequest, "not a push request");
        };
        if req.events.len() > MAX_EVENTS_PER_PUSH {
            return problem(ProblemCode::PayloadTooLarge, "too many events");
        }
        let Some(dev) = s.devices.get_mut(token) else {
            return problem(ProblemCode::Unauthorized, "unknown token");
        };
        if dev.device_id != Some(req.device_id) {
            return problem(ProblemCode::DeviceMismatch, "not your device id");
        }
        let mut results = Vec::new();
        for ev in &req.events {
            let result = |status, first_status, code| PushResult {
                device_seq: ev.device_seq,
                event_id: ev.event_id,
                status,
                first_status,
                code,
                detail: None,
            };
            if ev.device_seq <= dev.last_applied {
                let first = dev.outcomes.get(&ev.device_seq).map(|(_, st)| *st);
                results.push(result(PushStatus::Duplicate, first, None));
                continue;
            }
            if ev.device_seq > dev.last_applied + 1 {
                results.push(result(
                    PushStatus::Gap,
                    None,
                    Some(ProblemCode::SequenceGap),
                ));
                break;
            }
            let (status, code) = if let Err(e) = ev.validate_from_device() {
                let code = match e {
                    doorstep_shared::event::InvalidEvent::IntentKeyMismatch { .. } => {
                        ProblemCode::IntentKeyMismatch
                    }
                    doorstep_shared::event::InvalidEvent::OfficeKindFromDevice(_) => {
                        ProblemCode::OfficeKindFromDevice
                    }
                    _ => ProblemCode::InvalidEvent,
                };
                (PushStatus::Rejected, Some(code))
            } else if s.poison_kinds.contains(ev.payload.kind()) {
                (PushStatus::Rejected, Some(ProblemCode::IllegalTransition))
            } else {
                let fp = fingerprint(&ev.payload);
                match s.intents.get(&ev.intent_key) {
                    Some(prev) if *prev == fp => (PushStatus::Duplicate, None),
                    Some(_) => (PushStatus::Conflict, Some(ProblemCode::IntentConflict)),
                    None => {
                        s.intents.insert(ev.intent_key.clone(), fp);
                        (PushStatus::Applied, None)
                    }
                }
            };
            dev.last_applied = ev.device_seq;
            let stored = if status == PushStatus::Duplicate {
                PushStatus::Applied
            } else {
                status
            };
            dev.outcomes.insert(ev.device_seq, (ev.event_id, stored));
            if status != PushStatus::Duplicate {
                s.facts.push(StoredFact {
                    event: ev.clone(),
                    status,
                });
            }
            let first = (status == PushStatus::Duplicate).then_some(PushStatus::Applied);
            results.push(result(status, first, code));
        }
        json(&PushResponse {
            last_applied_seq: dev.last_applied,
            server_time_ms: now,
            clock_offset_ms: req.sent_at_ms as i64 - now as i64,
            results,
        })
    }

    fn pull(&self, token: &str, cursor: u64, limit: Option<u32>) -> RawResponse {
        let now = self.clock.now_ms();
        let mut s = self.lock();
        s.stats.pull_requests += 1;
        if !s.devices.contains_key(token) {
            return problem(ProblemCode::Unauthorized, "unknown token");
        }
        let limit = limit.unwrap_or(500).max(1) as usize;
        let changes: Vec<Change> = s
            .office
            .iter()
            .filter(|c| c.cursor > cursor)
            .take(limit)
            .cloned()
            .collect();
        let next = changes.last().map_or(cursor, |c| c.cursor);
        json(&PullResponse {
            cursor: next,
            server_time_ms: now,
            has_more: s.office.iter().any(|c| c.cursor > next),
            changes,
        })
    }
}

#[async_trait::async_trait]
impl Transport for FakeServer {
    async fn send(&self, request: Request) -> Result<RawResponse, TransportError> {
        let mode = self.lock().mode.clone();
        if !matches!(request, Request::Enroll { .. }) {
            match mode {
                FakeMode::Normal => {}
                FakeMode::Garbage => {
                    self.count(&request);
                    return Ok(RawResponse::json(200, "<html>surprise</html>"));
                }
                FakeMode::Fail {
                    status,
                    retry_after_s,
                } => {
                    self.count(&request);
                    let mut r = problem(
                        if status == 503 {
                            ProblemCode::Unavailable
                        } else {
                            ProblemCode::Internal
                        },
                        "scripted failure",
                    );
                    r.status = status;
                    r.retry_after = retry_after_s.map(Duration::from_secs);
                    return Ok(r);
                }
            }
        }
        Ok(match request {
            Request::Enroll { body } => self.enroll(&body),
            Request::Push {
                token,
                encoding,
                body,
            } => self.push(&token, encoding, &body),
            Request::Pull { token, query } => self.pull(&token, query.cursor, query.limit),
        })
    }
}

impl FakeServer {
    fn count(&self, request: &Request) {
        let mut s = self.lock();
        match request {
            Request::Push { .. } => s.stats.push_requests += 1,
            Request::Pull { .. } => s.stats.pull_requests += 1,
            Request::Enroll { .. } => s.stats.enroll_requests += 1,
        }
    }
}
