//! Push: one IMMEDIATE transaction per request, one SAVEPOINT per event. Each event's log row,
//! intent, stop state, escalations and the device's `last_applied_seq` change together or not
//! at all; the response is sent only after the commit, so an acknowledged outcome is durable
//! (`synchronous=FULL`) and an unacknowledged one is either fully there or fully absent.
//!
//! Performance (see `benches/push.rs`): the savepoint statements are cached, and the stops a
//! request touches are loaded once and folded in memory ([`StopCache`]); each changed stop is
//! written once, just before the commit, instead of once per event. An event's new state enters
//! the cache only after its savepoint is released, so an event rolled back to its savepoint
//! leaves no trace in it, and the final write is in the same transaction as every event row.

use super::{SqliteStore, enum_from, enum_str, to_json};
use crate::merge::{
    EventContext, KnownIntent, NewEscalation, StopRecord, decide_device_event, skew_escalation,
};
use crate::store::{DeviceAuth, PushContext, PushEffects, PushOutcome, StoreError, StoreResult};
use doorstep_shared::event::{AttemptOutcome, EventEnvelope, EventPayload, RouteAssigned};
use doorstep_shared::intent::fingerprint;
use doorstep_shared::protocol::{
    CLOCK_SKEW_BOUND_MS, LATE_REPLAY_AFTER_MS, PushRequest, PushResponse, PushResult, PushStatus,
};
use doorstep_shared::{CourierId, DeviceId, EscalationId, ProblemCode, StopId, StopState};
use rusqlite::{OptionalExtension, Transaction, params};
use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

impl SqliteStore {
    pub(crate) fn push_impl(
        &self,
        device: DeviceAuth,
        req: &PushRequest,
        ctx: PushContext,
    ) -> StoreResult<PushOutcome> {
        let mut conn = self.write();
        let mut tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let dev = device.device_id.to_string();
        let mut last: u64 = tx.query_row(
            "SELECT last_applied_seq FROM devices WHERE device_id = ?1",
            [&dev],
            |r| r.get::<_, i64>(0),
        )? as u64;
        let mut events: Vec<&EventEnvelope> = req.events.iter().collect();
        events.sort_by_key(|e| e.device_seq);
        let skewed = ctx.clock_offset_ms.abs() > CLOCK_SKEW_BOUND_MS;
        let mut results = Vec::with_capacity(events.len());
        let mut effects = PushEffects {
            skew_flagged: skewed,
            ..PushEffects::default()
        };
        let mut stops = StopCache::default();

        for env in events {
            let kind = env.payload.kind();
            if env.device_seq <= last {
                let stored = stored_outcome(&tx, &dev, env.device_seq)?;
                results.push(PushResult {
                    device_seq: env.device_seq,
                    event_id: env.event_id,
                    status: PushStatus::Duplicate,
                    first_status: stored.map(|s| s.0),
                    code: stored.and_then(|s| s.1),
                    detail: None,
                });
                effects.outcomes.push((kind, "duplicate"));
                continue;
            }
            if env.device_seq > last + 1 {
                results.push(PushResult {
                    device_seq: env.device_seq,
                    event_id: env.event_id,
                    status: PushStatus::Gap,
                    first_status: None,
                    code: Some(ProblemCode::SequenceGap),
                    detail: Some(format!("expected device_seq {}", last + 1)),
                });
                break;
            }
            tx.prepare_cached("SAVEPOINT event")?.execute([])?;
            match apply_one(&tx, device, env, ctx, skewed, &mut stops, &mut effects) {
                Ok((result, new_state)) => {
                    tx.prepare_cached("RELEASE event")?.execute([])?;
                    if let Some(state) = new_state {
                        stops.update(state);
                    }
                    last += 1;
                    effects.outcomes.push((kind, status_str(result.status)));
                    results.push(result);
                }
                Err(StoreError::Transient(why)) => {
                    tx.prepare_cached("ROLLBACK TO event")?.execute([])?;
                    tx.prepare_cached("RELEASE event")?.execute([])?;
                    tracing::warn!(device_seq = env.device_seq, %why, "event deferred");
                    results.push(PushResult {
                        device_seq: env.device_seq,
                        event_id: env.event_id,
                        status: PushStatus::Deferred,
                        first_status: None,
                        code: Some(ProblemCode::StorageBusy),
                        detail: None,
                    });
                    effects.outcomes.push((kind, "deferred"));
                    break;
                }
                Err(e) => return Err(e),
            }
        }

        stops.flush(&tx)?;
        let queue = req.queue.as_ref().map(to_json).transpose()?;
        tx.execute(
            "UPDATE devices SET last_applied_seq = ?2, last_contact_ms = ?3, clock_offset_ms = ?4,
                 clock_skew_flagged = ?5, queue_json = COALESCE(?6, queue_json)
             WHERE device_id = ?1",
            params![
                dev,
                last as i64,
                ctx.received_at_ms as i64,
                ctx.clock_offset_ms,
                skewed,
                queue
            ],
        )?;
        if skewed {
            open_skew_escalation(&mut tx, device.device_id, ctx, &mut effects)?;
        }
        tx.commit()?;
        Ok(PushOutcome {
            response: PushResponse {
                last_applied_seq: last,
                server_time_ms: ctx.received_at_ms,
                clock_offset_ms: ctx.clock_offset_ms,
                results,
            },
            effects,
        })
    }
}

fn status_str(s: PushStatus) -> &'static str {
    match s {
        PushStatus::Applied => "applied",
        PushStatus::Duplicate => "duplicate",
        PushStatus::Conflict => "conflict",
        PushStatus::Rejected => "rejected",
        PushStatus::Deferred => "deferred",
        PushStatus::Gap => "gap",
    }
}

fn stored_outcome(
    tx: &Transaction<'_>,
    dev: &str,
    seq: u64,
) -> StoreResult<Option<(PushStatus, Option<ProblemCode>)>> {
    let row: Option<(String, Option<String>)> = tx
        .query_row(
            "SELECT status, code FROM events WHERE device_id = ?1 AND device_seq = ?2",
            params![dev, seq as i64],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    Ok(row.and_then(|(s, c)| Some((enum_from(&s)?, c.and_then(|c| enum_from(&c))))))
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
    fn get(&mut self, tx: &rusqlite::Connection, stop: StopId) -> StoreResult<Option<&StopRecord>> {
        let record = match self.records.entry(stop) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => e.insert(load_stop(tx, stop)?),
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

    fn flush(&mut self, tx: &rusqlite::Connection) -> StoreResult<()> {
        for stop in self.dirty.drain() {
            if let Some(Some(record)) = self.records.get(&stop) {
                save_stop(tx, &record.state)?;
            }
        }
        Ok(())
    }
}

pub(super) fn load_stop(
    tx: &rusqlite::Connection,
    stop: StopId,
) -> StoreResult<Option<StopRecord>> {
    let state: Option<Vec<u8>> = tx
        .prepare_cached("SELECT state FROM stops WHERE stop_id = ?1")?
        .query_row([stop.to_string()], |r| r.get(0))
        .optional()?;
    let Some(bytes) = state else { return Ok(None) };
    let state = StopState::from_bytes(&bytes).map_err(|e| StoreError::Fatal(e.to_string()))?;
    let mut q = tx.prepare_cached("SELECT courier_id FROM stop_assignments WHERE stop_id = ?1")?;
    let assigned_to = q
        .query_map([stop.to_string()], |r| super::id::<CourierId>(r.get(0)?))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Some(StopRecord { state, assigned_to }))
}

pub(super) fn save_stop(tx: &rusqlite::Connection, state: &StopState) -> StoreResult<()> {
    let status = state.status();
    tx.prepare_cached(
        "UPDATE stops SET state = ?2, status = ?3, terminal = ?4 WHERE stop_id = ?1",
    )?
    .execute(params![
        state.stop_id.to_string(),
        state.to_bytes(),
        to_json(&status)?,
        status.is_terminal()
    ])?;
    Ok(())
}

pub(super) fn insert_escalation(
    tx: &rusqlite::Connection,
    esc: &NewEscalation,
    device: Option<DeviceId>,
    event: Option<&str>,
    now_ms: u64,
) -> StoreResult<()> {
    let id = EscalationId(uuid::Uuid::now_v7());
    tx.prepare_cached(
        "INSERT INTO escalations (escalation_id, kind, priority, stop_id, device_id, event_id, opened_at_ms, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        id.to_string(),
        enum_str(&esc.kind),
        esc.kind.priority(),
        esc.stop_id.map(|s| s.to_string()),
        device.map(|d| d.to_string()),
        event,
        now_ms as i64,
        esc.detail
    ])?;
    Ok(())
}

fn apply_one(
    tx: &rusqlite::Connection,
    device: DeviceAuth,
    env: &EventEnvelope,
    ctx: PushContext,
    skewed: bool,
    stops: &mut StopCache,
    effects: &mut PushEffects,
) -> StoreResult<(PushResult, Option<StopState>)> {
    let _span = tracing::debug_span!("event", stop_id = ?env.payload.stop_id(), device_seq = env.device_seq).entered();
    let known: Option<KnownIntent> = tx
        .prepare_cached("SELECT fingerprint, event_id FROM intents WHERE intent_key = ?1")?
        .query_row([&env.intent_key], |r| {
            Ok(KnownIntent {
                fingerprint: r.get(0)?,
                event_id: super::id(r.get(1)?)?,
            })
        })
        .optional()?;
    let stop = match env.payload.stop_id() {
        Some(s) if known.is_none() => stops.get(tx, s)?,
        _ => None,
    };
    let ectx = event_context(tx, device.device_id, env)?;
    let d = decide_device_event(env, device.courier_id, known.as_ref(), stop, &ectx);

    // The device clock is corrected by the offset measured on this request before judging lateness.
    let happened_ms = env.device_time_ms as i64 - ctx.clock_offset_ms;
    let late = (ctx.received_at_ms as i64 - happened_ms) > LATE_REPLAY_AFTER_MS as i64;
    let mut code = d.code;
    if d.status == PushStatus::Applied {
        code = if late {
            effects.late_replays += 1;
            Some(ProblemCode::LateReplay)
        } else if skewed {
            Some(ProblemCode::ClockSkew)
        } else {
            None
        };
    }
    let fp = fingerprint(&env.payload);
    let event_id = env.event_id.to_string();
    tx.prepare_cached(
        "INSERT INTO events (event_id, device_id, device_seq, intent_key, fingerprint, kind, stop_id,
             hlc_wall, hlc_logical, device_time_ms, received_at_ms, clock_offset_ms, status, code, payload)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
    )?
    .execute(params![
        event_id,
        device.device_id.to_string(),
        env.device_seq as i64,
        env.intent_key,
        fp,
        env.payload.kind(),
        env.payload.stop_id().map(|s| s.to_string()),
        env.hlc.wall_ms as i64,
        env.hlc.logical,
        env.device_time_ms as i64,
        ctx.received_at_ms as i64,
        ctx.clock_offset_ms,
        status_str(d.status),
        code.map(|c| c.as_str()),
        to_json(&env.payload)?,
    ])?;
    if d.record_intent {
        tx.prepare_cached(
            "INSERT INTO intents (intent_key, fingerprint, event_id) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![env.intent_key, fp, event_id])?;
    }
    if let Some(head) = &d.evidence_head {
        // The device's next signed proof must link to this statement.
        tx.prepare_cached("UPDATE devices SET evidence_head = ?2 WHERE device_id = ?1")?
            .execute(params![device.device_id.to_string(), head])?;
    }
    for esc in &d.escalations {
        insert_escalation(
            tx,
            esc,
            Some(device.device_id),
            Some(&event_id),
            ctx.received_at_ms,
        )?;
        effects.escalations_opened += 1;
    }
    let counter = match d.status {
        PushStatus::Rejected => Some("events_rejected"),
        PushStatus::Conflict => Some("events_conflicted"),
        _ => None,
    };
    if let Some(col) = counter {
        tx.execute(
            &format!("UPDATE devices SET {col} = {col} + 1 WHERE device_id = ?1"),
            [device.device_id.to_string()],
        )?;
    }
    if d.status == PushStatus::Applied
        && let EventPayload::DeliveryAttempted(a) = &env.payload
    {
        let reason = match &a.outcome {
            AttemptOutcome::Delivered { .. } => None,
            AttemptOutcome::Failed { reason, .. } => Some(reason.code()),
        };
        if a.attempt == 1 {
            effects
                .first_attempts
                .push((device.courier_id, reason.is_none(), reason));
        }
        if let Some(r) = reason {
            effects.failed_attempts.push((device.courier_id, r));
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
    Ok((result, d.new_state))
}

/// Loads the facts beyond the stop's state that the rules need for this event (only then).
fn event_context(
    tx: &rusqlite::Connection,
    device: DeviceId,
    env: &EventEnvelope,
) -> StoreResult<EventContext> {
    let mut ctx = EventContext::default();
    if EventContext::wants_evidence_head(env) {
        let head: String = tx
            .prepare_cached("SELECT evidence_head FROM devices WHERE device_id = ?1")?
            .query_row([device.to_string()], |r| r.get(0))?;
        ctx.evidence_head = Some(head);
    }
    if EventContext::wants_plan_notes(env)
        && let Some(stop) = env.payload.stop_id()
    {
        let plan: Option<String> = tx
            .prepare_cached(
                "SELECT r.plan_json FROM stops s JOIN routes r ON r.route_id = s.route_id
                 WHERE s.stop_id = ?1",
            )?
            .query_row([stop.to_string()], |r| r.get(0))
            .optional()?;
        if let Some(plan) = plan {
            let plan: RouteAssigned = super::json(&plan)?;
            ctx.plan_access_notes = plan
                .stops
                .into_iter()
                .find(|s| s.stop_id == stop)
                .and_then(|s| s.access_notes);
        }
    }
    Ok(ctx)
}

fn open_skew_escalation(
    tx: &mut Transaction<'_>,
    device: DeviceId,
    ctx: PushContext,
    effects: &mut PushEffects,
) -> StoreResult<()> {
    let open: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM escalations WHERE device_id = ?1 AND kind = 'clock_skew' AND resolved = 0)",
        [device.to_string()],
        |r| r.get(0),
    )?;
    if let Some(esc) = skew_escalation(ctx.clock_offset_ms, open) {
        insert_escalation(tx, &esc, Some(device), None, ctx.received_at_ms)?;
        effects.escalations_opened += 1;
    }
    Ok(())
}
