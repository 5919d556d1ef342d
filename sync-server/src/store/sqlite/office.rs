//! Office events (what dispatcher commands and seeding produce), idempotency keys and
//! escalations. Office events go through the same log, intents and fold as street events, and
//! every courier concerned gets a feed row to pull.

use super::push::{insert_escalation, known_intent, load_stop, save_stop, seq_param};
use super::{SqlResult, db};
use super::{SqliteStore, json, to_json};
use crate::merge::{KnownIntent, StopRecord};
use crate::store::{
    EscalationRecord, IdempotencyState, OfficeEventRow, OfficeUnit, OfficeWork, OfficeWrite,
};
use doorstep_shared::event::RouteAssigned;
use doorstep_shared::{CourierId, EscalationId, HlcStamp, RouteId, StopId, StopState};
use rusqlite::{Connection, OptionalExtension, params};

struct SqliteOffice<'c> {
    conn: &'c Connection,
}

impl OfficeUnit for SqliteOffice<'_> {
    fn office_clock(&mut self) -> crate::store::StoreResult<Option<HlcStamp>> {
        db(|| {
            // The IMMEDIATE transaction already serialises office commands.
            Ok(self
                .conn
                .query_row(
                    "SELECT hlc_wall, hlc_logical FROM office_clock WHERE id = 1",
                    [],
                    |r| {
                        Ok(HlcStamp {
                            wall_ms: u64::try_from(r.get::<_, i64>(0)?).unwrap_or(0),
                            logical: r.get(1)?,
                        })
                    },
                )
                .optional()?)
        })
    }

    fn set_office_clock(&mut self, stamp: HlcStamp) -> crate::store::StoreResult<()> {
        db(|| {
            self.conn.execute(
                "INSERT INTO office_clock (id, hlc_wall, hlc_logical) VALUES (1, ?1, ?2)
                 ON CONFLICT(id) DO UPDATE SET hlc_wall = excluded.hlc_wall, hlc_logical = excluded.hlc_logical",
                params![seq_param(stamp.wall_ms), stamp.logical],
            )?;
            Ok(())
        })
    }

    fn known_intent(&mut self, intent_key: &str) -> crate::store::StoreResult<Option<KnownIntent>> {
        db(|| known_intent(self.conn, intent_key))
    }

    fn lock_stops(&mut self, _stops: &[StopId]) -> crate::store::StoreResult<()> {
        db(|| {
            Ok(()) // the IMMEDIATE transaction already holds the database's only write lock
        })
    }

    fn stop(&mut self, stop: StopId) -> crate::store::StoreResult<Option<StopRecord>> {
        db(|| load_stop(self.conn, stop))
    }

    fn plan(&mut self, route: RouteId) -> crate::store::StoreResult<Option<RouteAssigned>> {
        db(|| load_plan(self.conn, route))
    }

    fn route_courier(&mut self, route: RouteId) -> crate::store::StoreResult<Option<CourierId>> {
        db(|| route_courier(self.conn, route))
    }

    fn failed_contacts(&mut self, stop: StopId) -> crate::store::StoreResult<u32> {
        db(|| {
            Ok(self.conn.query_row(
                "SELECT COUNT(*) FROM contact_attempts WHERE stop_id = ?1 AND reached = 0",
                [stop.to_string()],
                |r| r.get(0),
            )?)
        })
    }

    fn write(&mut self, write: &OfficeWrite) -> crate::store::StoreResult<()> {
        db(|| {
            let conn = self.conn;
            match write {
                OfficeWrite::SavePlan(plan) => save_plan(conn, plan)?,
                OfficeWrite::PlaceStop { stop, route } => {
                    conn.execute(
                    "INSERT INTO stops (stop_id, route_id, state, status) VALUES (?1, ?2, ?3, '')
                     ON CONFLICT(stop_id) DO UPDATE SET route_id = excluded.route_id",
                    params![stop.to_string(), route.to_string(), StopState::new(*stop).to_bytes()],
                )?;
                }
                OfficeWrite::Assign { stop, courier } => {
                    conn.execute(
                    "INSERT OR IGNORE INTO stop_assignments (stop_id, courier_id) VALUES (?1, ?2)",
                    params![stop.to_string(), courier.to_string()],
                )?;
                }
                OfficeWrite::ResolveEscalation(id) => {
                    conn.execute(
                        "UPDATE escalations SET resolved = 1 WHERE escalation_id = ?1",
                        [id.to_string()],
                    )?;
                }
                OfficeWrite::Contact {
                    intent_key,
                    stop,
                    reached,
                } => {
                    conn.execute(
                    "INSERT OR IGNORE INTO contact_attempts (intent_key, stop_id, reached) VALUES (?1, ?2, ?3)",
                    params![intent_key, stop.to_string(), reached],
                )?;
                }
            }
            Ok(())
        })
    }

    fn log_event(&mut self, row: &OfficeEventRow<'_>) -> crate::store::StoreResult<u64> {
        db(|| {
            self.conn.execute(
            "INSERT INTO events (event_id, intent_key, fingerprint, kind, stop_id, hlc_wall, hlc_logical,
                 received_at_ms, status, payload)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'applied', ?9)",
            params![
                row.event_id.to_string(),
                row.intent_key,
                row.fingerprint,
                row.payload.kind(),
                row.payload.stop_id().map(|s| s.to_string()),
                seq_param(row.hlc.wall_ms),
                row.hlc.logical,
                seq_param(row.recorded_at_ms),
                to_json(row.payload)?
            ],
        )?;
            let log_seq = self.conn.last_insert_rowid();
            self.conn.execute(
                "INSERT INTO intents (intent_key, fingerprint, event_id) VALUES (?1, ?2, ?3)",
                params![row.intent_key, row.fingerprint, row.event_id.to_string()],
            )?;
            Ok(u64::try_from(log_seq).unwrap_or(0))
        })
    }

    fn save_stop(&mut self, state: &StopState) -> crate::store::StoreResult<()> {
        db(|| save_stop(self.conn, state))
    }

    fn open_escalation(&mut self, esc: &EscalationRecord<'_>) -> crate::store::StoreResult<()> {
        db(|| insert_escalation(self.conn, esc))
    }

    fn append_feed(
        &mut self,
        courier: CourierId,
        log_position: u64,
    ) -> crate::store::StoreResult<u64> {
        db(|| {
            self.conn.execute(
                "INSERT INTO feed (courier_id, log_seq) VALUES (?1, ?2)",
                params![courier.to_string(), seq_param(log_position)],
            )?;
            Ok(u64::try_from(self.conn.last_insert_rowid()).unwrap_or(0))
        })
    }
}

fn load_plan(tx: &Connection, route: RouteId) -> SqlResult<Option<RouteAssigned>> {
    let s: Option<String> = tx
        .query_row(
            "SELECT plan_json FROM routes WHERE route_id = ?1",
            [route.to_string()],
            |r| r.get(0),
        )
        .optional()?;
    Ok(s.map(|s| json(&s)).transpose()?)
}

fn save_plan(tx: &Connection, plan: &RouteAssigned) -> SqlResult<()> {
    tx.execute(
        "INSERT INTO routes (route_id, courier_id, day, version, plan_json) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT(route_id) DO UPDATE SET courier_id = excluded.courier_id, day = excluded.day,
             version = excluded.version, plan_json = excluded.plan_json",
        params![plan.route_id.to_string(), plan.courier_id.to_string(), plan.day, plan.version, to_json(plan)?],
    )?;
    // The plan's parcels per stop, as this version names them.
    let mut clear = tx.prepare_cached("DELETE FROM stop_parcels WHERE stop_id = ?1")?;
    let mut add =
        tx.prepare_cached("INSERT OR IGNORE INTO stop_parcels (parcel, stop_id) VALUES (?1, ?2)")?;
    for stop in &plan.stops {
        let id = stop.stop_id.to_string();
        clear.execute([&id])?;
        for parcel in &stop.parcels {
            add.execute(params![parcel.as_str(), id])?;
        }
    }
    Ok(())
}

pub(super) fn route_courier(tx: &Connection, route: RouteId) -> SqlResult<Option<CourierId>> {
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
    pub(crate) fn office_unit_impl(&self, work: &mut OfficeWork<'_>) -> SqlResult<()> {
        let mut conn = self.write();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        work(&mut SqliteOffice { conn: &tx })?;
        tx.commit()?;
        Ok(())
    }

    pub(crate) fn begin_idempotent_impl(
        &self,
        key: &str,
        request_hash: &str,
        now_ms: u64,
        lease_ms: u64,
    ) -> SqlResult<IdempotencyState> {
        let mut conn = self.write();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let inserted = tx.execute(
            "INSERT INTO idempotency_keys (key, request_hash, created_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT(key) DO NOTHING",
            params![key, request_hash, seq_param(now_ms)],
        )?;
        // A claim that was never finished (its server died between claiming and finishing) is
        // free again once its lease has run out.
        let reclaimed = inserted == 0
            && tx.execute(
                "UPDATE idempotency_keys SET created_ms = ?3
                 WHERE key = ?1 AND request_hash = ?2 AND done = 0 AND created_ms <= ?4",
                params![
                    key,
                    request_hash,
                    seq_param(now_ms),
                    seq_param(now_ms.saturating_sub(lease_ms))
                ],
            )? == 1;
        let state = if inserted == 1 || reclaimed {
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
    ) -> SqlResult<()> {
        self.write().execute(
            "UPDATE idempotency_keys SET done = 1, status = ?2, body = ?3 WHERE key = ?1",
            params![key, status, body],
        )?;
        Ok(())
    }

    pub(crate) fn abandon_idempotent_impl(&self, key: &str) -> SqlResult<()> {
        self.write().execute(
            "DELETE FROM idempotency_keys WHERE key = ?1 AND done = 0",
            [key],
        )?;
        Ok(())
    }

    pub(crate) fn open_escalation_impl(&self, esc: &EscalationRecord<'_>) -> SqlResult<()> {
        let conn = self.write();
        insert_escalation(&conn, esc)
    }

    pub(crate) fn issue_live_ticket_impl(
        &self,
        ticket_hash: &str,
        dispatcher: &str,
        expires_at_ms: u64,
        now_ms: u64,
    ) -> SqlResult<()> {
        let conn = self.write();
        conn.execute(
            "DELETE FROM live_tickets WHERE expires_at_ms <= ?1",
            [seq_param(now_ms)],
        )?;
        conn.execute(
            "INSERT INTO live_tickets (ticket_hash, dispatcher, expires_at_ms) VALUES (?1, ?2, ?3)",
            params![ticket_hash, dispatcher, seq_param(expires_at_ms)],
        )?;
        Ok(())
    }

    pub(crate) fn redeem_live_ticket_impl(
        &self,
        ticket_hash: &str,
        now_ms: u64,
    ) -> SqlResult<Option<String>> {
        Ok(self
            .write()
            .query_row(
                "DELETE FROM live_tickets WHERE ticket_hash = ?1 RETURNING dispatcher, expires_at_ms",
                [ticket_hash],
                |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)),
            )
            .optional()?
            .and_then(|(name, exp)| (exp > seq_param(now_ms)).then_some(name)))
    }

    pub(crate) fn resolve_escalation_impl(&self, id: EscalationId) -> SqlResult<bool> {
        let n = self.write().execute(
            "UPDATE escalations SET resolved = 1 WHERE escalation_id = ?1 AND resolved = 0",
            [id.to_string()],
        )?;
        Ok(n == 1)
    }
}
