//! Push, written once above every backend: the sequence rule, the per-event decision, the
//! effects for metrics and the device's new cursor. A backend only provides the transaction
//! ([`PushUnit`]); what an event's outcome is, is decided here and in [`crate::merge`].
//!
//! One request is one transaction with one savepoint per event. Each event's log row, intent,
//! escalations and the device's `last_applied_seq` change together or not at all; the answer is
//! sent only after the commit, so an acknowledged outcome is durable.
//!
//! The stops a request touches are loaded once and folded in memory ([`StopCache`]); each
//! changed stop is written once, before the commit. An event's new state enters the cache only
//! after its savepoint is released, so an event rolled back to its savepoint leaves no trace.

use crate::error::{StoreError, StoreResult};
use crate::merge::{EventContext, KnownIntent, StopRecord, decide_device_event, skew_escalation};
use crate::model::{DeviceAuth, EscalationRecord, PushContext, PushEffects, PushOutcome};
use crate::store::{DeviceEventRow, DeviceSyncUpdate, PushUnit, Store};
use doorstep_shared::event::{AttemptOutcome, EventEnvelope, EventPayload};
use doorstep_shared::intent::fingerprint;
use doorstep_shared::protocol::{
    CLOCK_SKEW_BOUND_MS, LATE_REPLAY_AFTER_MS, PushRequest, PushResponse, PushResult, PushStatus,
};
use doorstep_shared::{EventId, ProblemCode, StopId, StopState};
use std::collections::hash_map::Entry;
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
    store.push_unit(device.device_id, &mut |unit| {
        outcome = Some(push_in(unit, device, req, &encoded, ctx)?);
        Ok(())
    })?;
    outcome.ok_or_else(|| StoreError::Fatal("push unit committed without running".to_owned()))
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
fn push_in(
    unit: &mut dyn PushUnit,
    device: DeviceAuth,
    req: &PushRequest,
    encoded: &[EncodedEvent],
    ctx: PushContext,
) -> StoreResult<PushOutcome> {
    let mut last = unit.lock_device()?;
    let mut events: Vec<(&EventEnvelope, &EncodedEvent)> = req.events.iter().zip(encoded).collect();
    events.sort_by_key(|(e, _)| e.device_seq);
    let stops: BTreeSet<StopId> = events
        .iter()
        .filter(|(e, _)| e.device_seq > last)
        .filter_map(|(e, _)| e.payload.stop_id())
        .collect();
    unit.lock_stops(&stops.into_iter().collect::<Vec<_>>())?;
    let fresh = || events.iter().filter(|(e, _)| e.device_seq > last);
    let intent_keys: BTreeSet<&str> = fresh().map(|(e, _)| e.intent_key.as_str()).collect();
    let intent_keys: Vec<&str> = intent_keys.into_iter().collect();
    // Locked before they are read: two devices recording one intent at once are serialised.
    unit.lock_intents(&intent_keys)?;
    let event_ids: BTreeSet<EventId> = fresh().map(|(e, _)| e.event_id).collect();
    let prior = unit.logged_facts(&intent_keys, &event_ids.into_iter().collect::<Vec<_>>())?;

    let skewed = ctx.clock_offset_ms.unsigned_abs() > CLOCK_SKEW_BOUND_MS.unsigned_abs();
    let mut run = Run {
        device,
        ctx,
        skewed,
        effects: PushEffects {
            skew_flagged: skewed,
            ..PushEffects::default()
        },
        stops: StopCache::default(),
        intents: prior.intents,
        prior_event_intents: prior.event_intents,
        logged_ids: HashMap::new(),
        rejected: 0,
        conflicted: 0,
    };
    let mut results = Vec::with_capacity(events.len());
    for (env, enc) in events {
        let kind = env.payload.kind();
        if env.device_seq <= last {
            let stored = unit.stored_outcome(env.device_seq)?;
            results.push(PushResult {
                device_seq: env.device_seq,
                event_id: env.event_id,
                status: PushStatus::Duplicate,
                first_status: stored.map(|s| s.0),
                code: stored.and_then(|s| s.1),
                detail: None,
            });
            run.effects.outcomes.push((kind, "duplicate"));
            continue;
        }
        if env.device_seq > last.saturating_add(1) {
            results.push(PushResult {
                device_seq: env.device_seq,
                event_id: env.event_id,
                status: PushStatus::Gap,
                first_status: None,
                code: Some(ProblemCode::SequenceGap),
                detail: Some(format!("expected device_seq {}", last.saturating_add(1))),
            });
            break;
        }
        unit.savepoint()?;
        match run.apply_one(unit, env, enc) {
            Ok((result, new_state, recorded)) => {
                unit.release()?;
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
            Err(StoreError::Transient(why)) => {
                unit.rollback()?;
                tracing::warn!(device_seq = env.device_seq, %why, "event deferred");
                results.push(PushResult {
                    device_seq: env.device_seq,
                    event_id: env.event_id,
                    status: PushStatus::Deferred,
                    first_status: None,
                    code: Some(ProblemCode::StorageBusy),
                    detail: None,
                });
                run.effects.outcomes.push((kind, "deferred"));
                break;
            }
            Err(e) => return Err(e),
        }
    }

    run.stops.flush(unit)?;
    let queue = req.queue.as_ref().map(serde_json_string).transpose()?;
    unit.update_device(&DeviceSyncUpdate {
        last_applied_seq: last,
        contact_ms: ctx.received_at_ms,
        clock_offset_ms: ctx.clock_offset_ms,
        clock_skew_flagged: skewed,
        queue_json: queue.as_deref(),
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
    /// request recorded (each entered once its event's savepoint was released).
    intents: HashMap<String, KnownIntent>,
    /// The request's event ids the log held before it, with their intent.
    prior_event_intents: HashMap<EventId, String>,
    /// Event ids logged by this request, with their intent.
    logged_ids: HashMap<EventId, String>,
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
            Some(s) if known.is_none() => self.stops.get(unit, s)?,
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

/// The stops one push request touches: each loaded once, folded in memory, and written once
/// (if it changed) before the request's commit.
#[derive(Default)]
struct StopCache {
    /// `None`: the stop is not known to the server.
    records: HashMap<StopId, Option<StopRecord>>,
    dirty: HashSet<StopId>,
}

impl StopCache {
    fn get(&mut self, unit: &mut dyn PushUnit, stop: StopId) -> StoreResult<Option<&StopRecord>> {
        let record = match self.records.entry(stop) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => e.insert(unit.stop(stop)?),
        };
        Ok(record.as_ref())
    }

    /// Records an applied event's new state (after its savepoint was released).
    fn update(&mut self, state: StopState) {
        let stop = state.stop_id;
        if let Some(Some(record)) = self.records.get_mut(&stop) {
            record.state = state;
            self.dirty.insert(stop);
        }
    }

    fn flush(&mut self, unit: &mut dyn PushUnit) -> StoreResult<()> {
        let mut dirty: Vec<StopId> = self.dirty.drain().collect();
        dirty.sort();
        for stop in dirty {
            if let Some(Some(record)) = self.records.get(&stop) {
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
}
