//! Office events (what dispatcher commands and seeding produce), idempotency keys and
//! escalations. Office events go through the same log, intents and fold as street events, and
//! every courier concerned gets a feed row to pull.

use super::push::{insert_escalation, load_stop, save_stop};
use super::{SqliteStore, json, to_json};
use crate::merge::{NewEscalation, contact_escalation, state_escalations};
use crate::store::{IdempotencyState, OfficeEvent, OfficeOutcome, StoreResult};
use doorstep_shared::event::{EventPayload, RouteAssigned};
use doorstep_shared::intent::{fingerprint, intent_key};
use doorstep_shared::{CourierId, DeviceId, EscalationId, EventId, RouteId, StopState};
use rusqlite::{Connection, OptionalExtension, params};

fn load_plan(tx: &Connection, route: RouteId) -> StoreResult<Option<RouteAssigned>> {
    let s: Option<String> = tx
        .query_row(
            "SELECT plan_json FROM routes WHERE route_id = ?1",
            [route.to_string()],
            |r| r.get(0),
        )
        .optional()?;
    Ok(s.map(|s| json(&s)).transpose()?)
}

fn save_plan(tx: &Connection, plan: &RouteAssigned) -> StoreResult<()> {
    tx.execute(
        "INSERT INTO routes (route_id, courier_id, day, version, plan_json) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT(route_id) DO UPDATE SET courier_id = excluded.courier_id, day = excluded.day,
             version = excluded.version, plan_json = excluded.plan_json",
        params![plan.route_id.to_string(), plan.courier_id.to_string(), plan.day, plan.version, to_json(plan)?],
    )?;
    Ok(())
}

pub(super) fn route_courier(tx: &Connection, route: RouteId) -> StoreResult<Option<CourierId>> {
    let c: Option<String> = tx
        .query_row(
            "SELECT courier_id FROM routes WHERE route_id = ?1",
            [route.to_string()],
            |r| r.get(0),
        )
        .optional()?;
    Ok(c.map(super::id).transpose()?)
}

impl SqliteStore {
    pub(crate) fn record_office_event_impl(&self, ev: OfficeEvent) -> StoreResult<OfficeOutcome> {
        let mut conn = self.write();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let key = intent_key(&ev.payload, &DeviceId(uuid::Uuid::nil()));
        let fp = fingerprint(&ev.payload);
        let known: Option<String> = tx
            .query_row(
                "SELECT fingerprint FROM intents WHERE intent_key = ?1",
                [&key],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(known) = known {
            return Ok(if known == fp {
                OfficeOutcome::Duplicate
            } else {
                OfficeOutcome::Conflict(format!("{key} was already recorded with another payload"))
            });
        }
        let event_id = EventId(uuid::Uuid::now_v7());
        let mut audience: Vec<CourierId> = Vec::new();
        let mut touched: Vec<(StopState, StopState)> = Vec::new();
        match &ev.payload {
            EventPayload::RouteAssigned(plan) => {
                save_plan(&tx, plan)?;
                audience.push(plan.courier_id);
                for s in &plan.stops {
                    tx.execute(
                        "INSERT INTO stops (stop_id, route_id, state, status) VALUES (?1, ?2, ?3, '')
                         ON CONFLICT(stop_id) DO UPDATE SET route_id = excluded.route_id",
                        params![s.stop_id.to_string(), plan.route_id.to_string(), StopState::new(s.stop_id).to_bytes()],
                    )?;
                    tx.execute(
                        "INSERT OR IGNORE INTO stop_assignments (stop_id, courier_id) VALUES (?1, ?2)",
                        params![s.stop_id.to_string(), plan.courier_id.to_string()],
                    )?;
                    if let Some(rec) = load_stop(&tx, s.stop_id)? {
                        let mut next = rec.state.clone();
                        next.apply(event_id, ev.hlc, &ev.payload);
                        touched.push((rec.state, next));
                    }
                }
            }
            EventPayload::EscalationResolved(e) => {
                tx.execute(
                    "UPDATE escalations SET resolved = 1 WHERE escalation_id = ?1",
                    [e.escalation_id.to_string()],
                )?;
            }
            other => {
                let Some(stop_id) = other.stop_id() else {
                    return Ok(OfficeOutcome::UnknownTarget(
                        "event names no stop".to_owned(),
                    ));
                };
                let Some(rec) = load_stop(&tx, stop_id)? else {
                    return Ok(OfficeOutcome::UnknownTarget(format!(
                        "stop {stop_id} does not exist"
                    )));
                };
                let current_route = rec.state.route();
                if let Some(c) = current_route
                    .map(|r| route_courier(&tx, r))
                    .transpose()?
                    .flatten()
                {
                    audience.push(c);
                }
                if let EventPayload::StopReassigned(e) = other {
                    let Some(mut to_plan) = load_plan(&tx, e.to_route)? else {
                        return Ok(OfficeOutcome::UnknownTarget(format!(
                            "route {} does not exist",
                            e.to_route
                        )));
                    };
                    if let Some(mut from_plan) = load_plan(&tx, e.from_route)? {
                        if let Some(pos) = from_plan.stops.iter().position(|s| s.stop_id == stop_id)
                        {
                            let moved = from_plan.stops.remove(pos);
                            to_plan.stops.push(moved);
                        }
                        save_plan(&tx, &from_plan)?;
                    }
                    save_plan(&tx, &to_plan)?;
                    tx.execute(
                        "UPDATE stops SET route_id = ?2 WHERE stop_id = ?1",
                        params![stop_id.to_string(), e.to_route.to_string()],
                    )?;
                    tx.execute(
                        "INSERT OR IGNORE INTO stop_assignments (stop_id, courier_id) VALUES (?1, ?2)",
                        params![stop_id.to_string(), e.to_courier.to_string()],
                    )?;
                    audience.push(e.to_courier);
                }
                if let EventPayload::StopRescheduled(e) = other
                    && let Some(route) = current_route
                    && let Some(mut plan) = load_plan(&tx, route)?
                {
                    for s in plan.stops.iter_mut().filter(|s| s.stop_id == stop_id) {
                        s.window = e.window;
                    }
                    save_plan(&tx, &plan)?;
                }
                let mut next = rec.state.clone();
                next.apply(event_id, ev.hlc, other);
                touched.push((rec.state, next));
            }
        }
        tx.execute(
            "INSERT INTO events (event_id, intent_key, fingerprint, kind, stop_id, hlc_wall, hlc_logical,
                 received_at_ms, status, payload)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'applied', ?9)",
            params![
                event_id.to_string(),
                key,
                fp,
                ev.payload.kind(),
                ev.payload.stop_id().map(|s| s.to_string()),
                ev.hlc.wall_ms as i64,
                ev.hlc.logical,
                ev.recorded_at_ms as i64,
                to_json(&ev.payload)?
            ],
        )?;
        let log_seq = tx.last_insert_rowid();
        tx.execute(
            "INSERT INTO intents (intent_key, fingerprint, event_id) VALUES (?1, ?2, ?3)",
            params![key, fp, event_id.to_string()],
        )?;
        if let (Some(reached), Some(stop_id)) = (ev.contact_reached, ev.payload.stop_id()) {
            let failed = |tx: &Connection| -> StoreResult<u32> {
                Ok(tx.query_row(
                    "SELECT COUNT(*) FROM contact_attempts WHERE stop_id = ?1 AND reached = 0",
                    [stop_id.to_string()],
                    |r| r.get(0),
                )?)
            };
            let before = failed(&tx)?;
            tx.execute(
                "INSERT OR IGNORE INTO contact_attempts (intent_key, stop_id, reached) VALUES (?1, ?2, ?3)",
                params![key, stop_id.to_string(), reached],
            )?;
            if let Some(esc) = contact_escalation(stop_id, before, failed(&tx)?) {
                insert_escalation(
                    &tx,
                    &esc,
                    None,
                    Some(&event_id.to_string()),
                    ev.recorded_at_ms,
                )?;
            }
        }
        for (before, after) in &touched {
            save_stop(&tx, after)?;
            for esc in state_escalations(before, after) {
                insert_escalation(
                    &tx,
                    &esc,
                    None,
                    Some(&event_id.to_string()),
                    ev.recorded_at_ms,
                )?;
            }
        }
        audience.sort();
        audience.dedup();
        let mut cursor = 0;
        for c in audience {
            tx.execute(
                "INSERT INTO feed (courier_id, log_seq) VALUES (?1, ?2)",
                params![c.to_string(), log_seq],
            )?;
            cursor = tx.last_insert_rowid() as u64;
        }
        tx.commit()?;
        tracing::info!(kind = ev.payload.kind(), stop_id = ?ev.payload.stop_id(), issued_by = %ev.issued_by, "office event recorded");
        Ok(OfficeOutcome::Applied { cursor })
    }

    pub(crate) fn begin_idempotent_impl(
        &self,
        key: &str,
        request_hash: &str,
        now_ms: u64,
    ) -> StoreResult<IdempotencyState> {
        let mut conn = self.write();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let inserted = tx.execute(
            "INSERT INTO idempotency_keys (key, request_hash, created_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT(key) DO NOTHING",
            params![key, request_hash, now_ms as i64],
        )?;
        let state = if inserted == 1 {
            IdempotencyState::Started
        } else {
            let (hash, done, status, body): (String, bool, Option<u16>, Option<String>) = tx
                .query_row(
                    "SELECT request_hash, done, status, body FROM idempotency_keys WHERE key = ?1",
                    [key],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )?;
            match (hash == request_hash, done) {
                (false, _) => IdempotencyState::Mismatch,
                (true, false) => IdempotencyState::InProgress,
                (true, true) => IdempotencyState::Completed {
                    status: status.unwrap_or(200),
                    body: body.unwrap_or_default(),
                },
            }
        };
        tx.commit()?;
        Ok(state)
    }

    pub(crate) fn finish_idempotent_impl(
        &self,
        key: &str,
        status: u16,
        body: &str,
    ) -> StoreResult<()> {
        self.write().execute(
            "UPDATE idempotency_keys SET done = 1, status = ?2, body = ?3 WHERE key = ?1",
            params![key, status, body],
        )?;
        Ok(())
    }

    pub(crate) fn abandon_idempotent_impl(&self, key: &str) -> StoreResult<()> {
        self.write().execute(
            "DELETE FROM idempotency_keys WHERE key = ?1 AND done = 0",
            [key],
        )?;
        Ok(())
    }

    pub(crate) fn open_escalation_impl(
        &self,
        esc: &NewEscalation,
        device: Option<DeviceId>,
        now_ms: u64,
    ) -> StoreResult<()> {
        let conn = self.write();
        insert_escalation(&conn, esc, device, None, now_ms)
    }

    pub(crate) fn resolve_escalation_impl(&self, id: EscalationId) -> StoreResult<bool> {
        let n = self.write().execute(
            "UPDATE escalations SET resolved = 1 WHERE escalation_id = ?1 AND resolved = 0",
            [id.to_string()],
        )?;
        Ok(n == 1)
    }
}
