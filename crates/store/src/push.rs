//! Push, written once above every backend: the sequence rule, the per-event decision, the
//! effects for metrics and the device's new cursor. A backend only provides the transaction
//! ([`PushUnit`]); what an event's outcome is, is decided here and in [`crate::merge`].
//!
//! One request is one transaction, committed whole or not at all: each event's log row,
//! intent and escalations, the stops' states and the device's `last_applied_seq` change
//! together; the answer is sent only after the commit, so an acknowledged outcome is durable.
//! A transient storage failure while the request runs (a lock timeout, a deadlock, a lost
//! connection) rolls all of it back and is answered `deferred` from the first new event: the
//! device sends the same events again later.
//!
//! What a request needs from the store is read once, after the device is locked
//! ([`PushUnit::prepare`]); the stops are folded in memory ([`StopCache`]) and each changed
//! stop is written once, before the commit.

use crate::device_queue::queue_after;
use crate::error::{StoreError, StoreResult};
use crate::merge::{EventContext, KnownIntent, StopRecord, decide_device_event, skew_escalation};
use crate::model::{DeviceAuth, EscalationRecord, PushContext, PushEffects, PushOutcome};
use crate::store::{DeviceEventRow, DeviceSyncUpdate, PushFacts, PushScope, PushUnit, Store};
use doorstep_shared::event::{AttemptOutcome, EventEnvelope, EventPayload};
use doorstep_shared::intent::fingerprint;
use doorstep_shared::protocol::{
    CLOCK_SKEW_BOUND_MS, LATE_REPLAY_AFTER_MS, PushRequest, PushResponse, PushResult, PushStatus,
};
use doorstep_shared::{EventId, ProblemCode, StopId, StopState};
use std::collections::{BTreeSet, HashMap, HashSet};

/// `device clock - server clock` from a request's `sent_at_ms`, saturating instead of
/// overflowing for any client-supplied value.
pub fn clock_offset_ms(sent_at_ms: u64, received_at_ms: u64) -> i64 {
    let offset = i128::from(sent_at_ms) - i128::from(received_at_ms);
    i64::try_from(offset).unwrap_or(if offset < 0 { i64::MIN } else { i64::MAX })
}

/// How long before its arrival an event happened, on the server clock (device time corrected
/// by the request's clock offset); negative when it claims to be from the future. Exact for
/// every client-supplied value.
pub fn age_on_arrival_ms(device_time_ms: u64, ctx: PushContext) -> i128 {
    let happened = i128::from(device_time_ms) - i128::from(ctx.clock_offset_ms);
    i128::from(ctx.received_at_ms) - happened
}

/// Whether an event of this age arrived as a late replay.
pub fn is_late(age_ms: i128) -> bool {
    age_ms > i128::from(LATE_REPLAY_AFTER_MS)
}

pub fn status_str(s: PushStatus) -> &'static str {
    match s {
        PushStatus::Applied => "applied",
        PushStatus::Duplicate => "duplicate",
        PushStatus::Conflict => "conflict",
        PushStatus::Rejected => "rejected",
        PushStatus::Deferred => "deferred",
        PushStatus::Gap => "gap",
    }
}

/// Processes one device's batch in `device_seq` order on `store`.
pub fn push<S: Store + ?Sized>(
    store: &S,
    device: DeviceAuth,
    req: &PushRequest,
    ctx: PushContext,
) -> StoreResult<PushOutcome> {
    // Pure per-event work happens before the transaction, so the store's write lock is held
    // for storage work only.
    let encoded = req
        .events
        .iter()
        .map(EncodedEvent::of)
        .collect::<StoreResult<Vec<_>>>()?;
    let mut outcome = None;
    let mut locked_last = None;
    let mut deferred_because = None;
    let ran = store.push_unit(device.device_id, &mut |unit| match push_in(
        unit,
        device,
        req,
        &encoded,
        ctx,
        &mut locked_last,
    ) {
        Ok(o) => {
            outcome = Some(o);
            Ok(())
        }
        Err(StoreError::Transient(why)) if locked_last.is_some() => {
            deferred_because = Some(why.clone());
            Err(StoreError::Transient(why))
        }
        Err(e) => Err(e),
    });
    match (ran, deferred_because, locked_last) {
        (Ok(()), _, _) => outcome
            .ok_or_else(|| StoreError::Fatal("push unit committed without running".to_owned())),
        (Err(_), Some(why), Some(last)) => {
            tracing::warn!(%why, "push rolled back: its new events are deferred");
            Ok(deferred(req, last, ctx))
        }
        (Err(e), _, _) => Err(e),
    }
}

/// The answer to a request rolled back by a transient failure once the device's cursor was
/// known: what the device already sent is a duplicate, the next event is deferred (or a gap),
/// and nothing else was looked at.
fn deferred(req: &PushRequest, last: u64, ctx: PushContext) -> PushOutcome {
    let mut events: Vec<&EventEnvelope> = req.events.iter().collect();
    events.sort_by_key(|e| e.device_seq);
    let mut effects = PushEffects {
        skew_flagged: ctx.clock_offset_ms.unsigned_abs() > CLOCK_SKEW_BOUND_MS.unsigned_abs(),
        ..PushEffects::default()
    };
    let mut results = Vec::new();
    for env in events {
        let kind = env.payload.kind();
        if env.device_seq <= last {
            results.push(result(env, PushStatus::Duplicate, None));
            effects.outcomes.push((kind, "duplicate"));
            continue;
        }
        if env.device_seq > last.saturating_add(1) {
            results.push(gap(env, last));
        } else {
            results.push(result(
                env,
                PushStatus::Deferred,
                Some(ProblemCode::StorageBusy),
            ));
            effects.outcomes.push((kind, "deferred"));
        }
        break;
    }
    PushOutcome {
        response: PushResponse {
            last_applied_seq: last,
            server_time_ms: ctx.received_at_ms,
            clock_offset_ms: ctx.clock_offset_ms,
            results,
        },
        effects,
        queue: None,
    }
}

fn result(env: &EventEnvelope, status: PushStatus, code: Option<ProblemCode>) -> PushResult {
    PushResult {
        device_seq: env.device_seq,
        event_id: env.event_id,
        status,
        first_status: None,
        code,
        detail: None,
    }
}

fn gap(env: &EventEnvelope, last: u64) -> PushResult {
    PushResult {
        code: Some(ProblemCode::SequenceGap),
        detail: Some(format!("expected device_seq {}", last.saturating_add(1))),
        ..result(env, PushStatus::Gap, None)
    }
}

/// What the log keeps of an event's payload: its fingerprint and its JSON.
struct EncodedEvent {
    fingerprint: String,
    payload_json: String,
}

impl EncodedEvent {
    fn of(env: &EventEnvelope) -> StoreResult<Self> {
        Ok(Self {
            fingerprint: fingerprint(&env.payload),
            payload_json: serde_json_string(&env.payload)?,
        })
    }
}

/// The algorithm inside one push transaction; `encoded[i]` belongs to `req.events[i]`.
/// `locked_last` receives the device's `last_applied_seq` as soon as it is locked.
fn push_in(
    unit: &mut dyn PushUnit,
    device: DeviceAuth,
    req: &PushRequest,
    encoded: &[EncodedEvent],
    ctx: PushContext,
    locked_last: &mut Option<u64>,
) -> StoreResult<PushOutcome> {
    let mut last = unit.lock_device()?;
    *locked_last = Some(last);
    let mut events: Vec<(&EventEnvelope, &EncodedEvent)> = req.events.iter().zip(encoded).collect();
    events.sort_by_key(|(e, _)| e.device_seq);
    let fresh = || {
        events
            .iter()
            .filter(|(e, _)| e.device_seq > last)
            .map(|(e, _)| e)
    };
    let stops: BTreeSet<StopId> = fresh().filter_map(|e| e.payload.stop_id()).collect();
    let intent_keys: BTreeSet<&str> = fresh().map(|e| e.intent_key.as_str()).collect();
    let event_ids: BTreeSet<EventId> = fresh().map(|e| e.event_id).collect();
    let parcels: BTreeSet<&str> = fresh()
        .filter_map(|e| match &e.payload {
            EventPayload::ParcelScanned(s) => Some(s.parcel.as_str()),
            _ => None,
        })
        .collect();
    let parcels: Vec<&str> = parcels.into_iter().collect();
    let duplicate_seqs: BTreeSet<u64> = events
        .iter()
        .map(|(e, _)| e.device_seq)
        .filter(|s| *s <= last)
        .collect();
    let (stops, intent_keys, event_ids, duplicate_seqs): (Vec<_>, Vec<_>, Vec<_>, Vec<_>) = (
        stops.into_iter().collect(),
        intent_keys.into_iter().collect(),
        event_ids.into_iter().collect(),
        duplicate_seqs.into_iter().collect(),
    );
    let prior = unit.prepare(&PushScope {
        stops: &stops,
        intent_keys: &intent_keys,
        event_ids: &event_ids,
        duplicate_seqs: &duplicate_seqs,
        parcels: &parcels,
    })?;
    let PushFacts {
        stops: known_stops,
        intents,
        event_intents,
        stored,
        parcel_stops,
    } = prior;

    let skewed = ctx.clock_offset_ms.unsigned_abs() > CLOCK_SKEW_BOUND_MS.unsigned_abs();
    let mut run = Run {
        device,
        ctx,
        skewed,
        effects: PushEffects {
            skew_flagged: skewed,
            ..PushEffects::default()
        },
        stops: StopCache::of(known_stops),
        intents,
        prior_event_intents: event_intents,
        parcel_stops,
        logged_ids: HashMap::new(),
        rejected: 0,
        conflicted: 0,
    };
    let mut results = Vec::with_capacity(events.len());
    for (env, enc) in events {
        let kind = env.payload.kind();
        if env.device_seq <= last {
            let stored = stored.get(&env.device_seq).copied();
            results.push(PushResult {
                first_status: stored.map(|s| s.0),
                code: stored.and_then(|s| s.1),
                ..result(env, PushStatus::Duplicate, None)
            });
            run.effects.outcomes.push((kind, "duplicate"));
            continue;
        }
        if env.device_seq > last.saturating_add(1) {
            results.push(gap(env, last));
            break;
        }
        let (result, new_state, recorded) = run.apply_one(unit, env, enc)?;
        if let Some(state) = new_state {
            run.stops.update(state);
        }
        if let Some(intent) = recorded {
            run.intents.insert(env.intent_key.clone(), intent);
        }
        run.logged_ids.insert(env.event_id, env.intent_key.clone());
        match result.status {
            PushStatus::Rejected => run.rejected += 1,
            PushStatus::Conflict => run.conflicted += 1,
            _ => {}
        }
        last = env.device_seq;
        run.effects.outcomes.push((kind, status_str(result.status)));
        results.push(result);
    }

    run.stops.flush(unit)?;
    let queue = req
        .queue
        .as_ref()
        .map(|reported| {
            let ages: HashMap<u64, u64> = req
                .events
                .iter()
                .map(|e| {
                    let age =
                        age_on_arrival_ms(e.device_time_ms, ctx).clamp(0, i128::from(u64::MAX));
                    (e.device_seq, u64::try_from(age).unwrap_or(u64::MAX))
                })
                .collect();
            let answered: Vec<(PushStatus, u64)> = results
                .iter()
                .map(|r| (r.status, ages.get(&r.device_seq).copied().unwrap_or(0)))
                .collect();
            queue_after(reported, &answered)
        })
        .map(|q| serde_json_string(&q).map(|json| (q, json)))
        .transpose()?;
    unit.update_device(&DeviceSyncUpdate {
        last_applied_seq: last,
        contact_ms: ctx.received_at_ms,
        clock_offset_ms: ctx.clock_offset_ms,
        clock_skew_flagged: skewed,
        queue_json: queue.as_ref().map(|(_, json)| json.as_str()),
        rejected: run.rejected,
        conflicted: run.conflicted,
    })?;
    if skewed && let Some(esc) = skew_escalation(ctx.clock_offset_ms, unit.skew_escalation_open()?)
    {
        unit.open_escalation(&EscalationRecord {
            escalation: &esc,
            device: Some(device.device_id),
            event: None,
            opened_at_ms: ctx.received_at_ms,
        })?;
        run.effects.escalations_opened += 1;
    }
    Ok(PushOutcome {
        response: PushResponse {
            last_applied_seq: last,
            server_time_ms: ctx.received_at_ms,
            clock_offset_ms: ctx.clock_offset_ms,
            results,
        },
        effects: run.effects,
        queue: queue.map(|(q, _)| q),
    })
}

fn serde_json_string<T: serde::Serialize>(value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Fatal(e.to_string()))
}

/// The state of one request while its events are processed.
struct Run {
    device: DeviceAuth,
    ctx: PushContext,
    skewed: bool,
    effects: PushEffects,
    stops: StopCache,
    /// Intents that took effect, as the log held them before this request plus those this
    /// request recorded.
    intents: HashMap<String, KnownIntent>,
    /// The request's event ids the log held before it, with their intent.
    prior_event_intents: HashMap<EventId, String>,
    /// Event ids logged by this request, with their intent.
    logged_ids: HashMap<EventId, String>,
    /// The stops plans name the request's scanned parcels for.
    parcel_stops: HashMap<String, Vec<StopId>>,
    rejected: u64,
    conflicted: u64,
}

impl Run {
    fn apply_one(
        &mut self,
        unit: &mut dyn PushUnit,
        env: &EventEnvelope,
        enc: &EncodedEvent,
    ) -> StoreResult<(PushResult, Option<StopState>, Option<KnownIntent>)> {
        let _span = tracing::debug_span!("event", stop_id = ?env.payload.stop_id(), device_seq = env.device_seq).entered();
        let known = self.intents.get(&env.intent_key).cloned();
        let logged_with = self
            .logged_ids
            .get(&env.event_id)
            .or_else(|| self.prior_event_intents.get(&env.event_id))
            .cloned();
        let ectx = self.event_context(unit, env, logged_with)?;
        let stop = match env.payload.stop_id() {
            Some(s) if known.is_none() => self.stops.get(s),
            _ => None,
        };
        let d = decide_device_event(env, self.device.courier_id, known.as_ref(), stop, &ectx);

        let mut code = d.code;
        if d.status == PushStatus::Applied {
            code = if is_late(age_on_arrival_ms(env.device_time_ms, self.ctx)) {
                self.effects.late_replays += 1;
                Some(ProblemCode::LateReplay)
            } else if self.skewed {
                Some(ProblemCode::ClockSkew)
            } else {
                None
            };
        }
        unit.record_event(&DeviceEventRow {
            envelope: env,
            fingerprint: &enc.fingerprint,
            payload_json: &enc.payload_json,
            received_at_ms: self.ctx.received_at_ms,
            clock_offset_ms: self.ctx.clock_offset_ms,
            status: d.status,
            code,
            record_intent: d.record_intent,
            evidence_head: d.evidence_head.as_deref(),
        })?;
        for esc in &d.escalations {
            unit.open_escalation(&EscalationRecord {
                escalation: esc,
                device: Some(self.device.device_id),
                event: Some(env.event_id),
                opened_at_ms: self.ctx.received_at_ms,
            })?;
            self.effects.escalations_opened += 1;
        }
        if d.status == PushStatus::Applied
            && let EventPayload::DeliveryAttempted(a) = &env.payload
        {
            let reason = match &a.outcome {
                AttemptOutcome::Delivered { .. } => None,
                AttemptOutcome::Failed { reason, .. } => Some(reason.code()),
            };
            if a.attempt == 1 {
                self.effects.first_attempts.push((
                    self.device.courier_id,
                    reason.is_none(),
                    reason,
                ));
            }
            if let Some(r) = reason {
                self.effects
                    .failed_attempts
                    .push((self.device.courier_id, r));
            }
        }
        let result = PushResult {
            device_seq: env.device_seq,
            event_id: env.event_id,
            status: d.status,
            first_status: None,
            code,
            detail: d.detail,
        };
        let recorded = d.record_intent.then(|| KnownIntent {
            fingerprint: enc.fingerprint.clone(),
            event_id: env.event_id,
        });
        Ok((result, d.new_state, recorded))
    }

    /// Reads the facts beyond the stop's state that the rules need for this event (only then).
    fn event_context(
        &self,
        unit: &mut dyn PushUnit,
        env: &EventEnvelope,
        event_id_logged_with: Option<String>,
    ) -> StoreResult<EventContext> {
        let mut ctx = EventContext {
            event_id_logged_with,
            ..EventContext::default()
        };
        if let EventPayload::ParcelScanned(s) = &env.payload
            && let Some(stops) = self.parcel_stops.get(s.parcel.as_str())
        {
            ctx.parcel_planned_for = stops.clone();
        }
        if EventContext::wants_evidence_head(env) {
            ctx.evidence_head = Some(unit.evidence_head()?);
        }
        if EventContext::wants_plan_notes(env)
            && let Some(stop) = env.payload.stop_id()
        {
            ctx.plan_access_notes = unit.plan_access_notes(stop)?;
        }
        Ok(ctx)
    }
}

/// The stops one push request touches: read once, folded in memory, and written once (if
/// it changed) before the request's commit.
struct StopCache {
    /// The stops the server knows; one missing here is unknown to it.
    records: HashMap<StopId, StopRecord>,
    dirty: HashSet<StopId>,
}

impl StopCache {
    fn of(records: HashMap<StopId, StopRecord>) -> Self {
        Self {
            records,
            dirty: HashSet::new(),
        }
    }

    fn get(&self, stop: StopId) -> Option<&StopRecord> {
        self.records.get(&stop)
    }

    /// Records an applied event's new state.
    fn update(&mut self, state: StopState) {
        let stop = state.stop_id;
        if let Some(record) = self.records.get_mut(&stop) {
            record.state = state;
            self.dirty.insert(stop);
        }
    }

    fn flush(&mut self, unit: &mut dyn PushUnit) -> StoreResult<()> {
        let mut dirty: Vec<StopId> = self.dirty.drain().collect();
        dirty.sort();
        for stop in dirty {
            if let Some(record) = self.records.get(&stop) {
                unit.save_stop(&record.state)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_offset_saturates_at_the_limits() {
        assert_eq!(clock_offset_ms(1_500, 1_000), 500);
        assert_eq!(clock_offset_ms(1_000, 1_500), -500);
        assert_eq!(clock_offset_ms(u64::MAX, 0), i64::MAX);
        assert_eq!(clock_offset_ms(0, u64::MAX), i64::MIN);
        assert_eq!(clock_offset_ms(u64::MAX, u64::MAX), 0);
    }

    #[test]
    fn a_clock_far_ahead_never_reads_as_behind() {
        let ctx = PushContext {
            received_at_ms: 1_000_000,
            clock_offset_ms: clock_offset_ms(u64::MAX, 1_000_000),
        };
        // The device's clock is far ahead and so is its event time: it happened just now.
        let age = age_on_arrival_ms(u64::MAX, ctx);
        assert!(!is_late(age), "age {age}");
        let extreme = PushContext {
            received_at_ms: u64::MAX,
            clock_offset_ms: i64::MIN,
        };
        assert!(is_late(age_on_arrival_ms(
            0,
            PushContext {
                clock_offset_ms: 0,
                ..extreme
            }
        )));
        assert!(!is_late(age_on_arrival_ms(
            u64::MAX,
            PushContext {
                clock_offset_ms: 0,
                ..extreme
            }
        )));
        // No overflow anywhere in the range.
        let _ = age_on_arrival_ms(0, extreme);
        let _ = age_on_arrival_ms(u64::MAX, extreme);
    }

    fn located(seq: u64) -> EventEnvelope {
        use doorstep_shared::event::{GeoPoint, LocationFixed};
        let payload = EventPayload::LocationFixed(LocationFixed {
            location: GeoPoint {
                lat: 52.5,
                lon: 13.4,
            },
            accuracy_m: 5.0,
            fix_time_ms: 1_000 + seq,
        });
        let device = doorstep_shared::DeviceId(uuid::Uuid::from_u128(3));
        EventEnvelope {
            event_id: EventId::from_parts(1_000 + seq, [seq as u8; 10]),
            device_id: device,
            device_seq: seq,
            intent_key: doorstep_shared::intent::intent_key(&payload, &device),
            schema_version: 1,
            device_time_ms: 1_000 + seq,
            hlc: doorstep_shared::HlcStamp {
                wall_ms: 1_000 + seq,
                logical: 0,
            },
            blob_digests: vec![],
            payload,
        }
    }

    fn request(seqs: &[u64]) -> PushRequest {
        PushRequest {
            device_id: doorstep_shared::DeviceId(uuid::Uuid::from_u128(3)),
            sent_at_ms: 1_000,
            events: seqs.iter().map(|s| located(*s)).collect(),
            queue: None,
        }
    }

    const AT: PushContext = PushContext {
        received_at_ms: 1_000,
        clock_offset_ms: 0,
    };

    #[test]
    fn a_rolled_back_request_answers_what_was_sent_before_and_defers_the_next_event() {
        let out = deferred(&request(&[5, 3, 4, 6]), 3, AT);
        let got: Vec<(u64, PushStatus)> = out
            .response
            .results
            .iter()
            .map(|r| (r.device_seq, r.status))
            .collect();
        assert_eq!(
            got,
            vec![(3, PushStatus::Duplicate), (4, PushStatus::Deferred)],
            "sorted by device_seq; nothing after the deferred event is answered"
        );
        assert_eq!(out.response.last_applied_seq, 3);
        assert_eq!(out.response.results[1].code, Some(ProblemCode::StorageBusy));
        assert_eq!(
            out.effects.outcomes,
            vec![
                ("location_fixed", "duplicate"),
                ("location_fixed", "deferred")
            ]
        );
    }

    #[test]
    fn a_rolled_back_request_that_starts_past_the_cursor_is_a_gap() {
        let out = deferred(&request(&[7, 8]), 3, AT);
        assert_eq!(out.response.results.len(), 1);
        assert_eq!(out.response.results[0].status, PushStatus::Gap);
        assert_eq!(out.response.results[0].code, Some(ProblemCode::SequenceGap));
        assert!(out.effects.outcomes.is_empty());
    }
}
