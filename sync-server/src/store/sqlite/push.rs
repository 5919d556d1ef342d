//! The push unit of work on SQLite: one IMMEDIATE transaction per request (the single writer
//! connection serialises pushes, so a device needs no row lock), committed whole or not at
//! all. It only reads and writes what the push algorithm asks for; the statements are cached.

use super::{SqlResult, db};
use super::{SqliteStore, enum_from, enum_str, to_json};
use crate::merge::{KnownIntent, StopRecord};
use crate::push::status_str;
use crate::store::{
    DeviceEventRow, DeviceSyncUpdate, EscalationRecord, PushFacts, PushScope, PushUnit, PushWork,
};
use doorstep_shared::event::RouteAssigned;
use doorstep_shared::{CourierId, DeviceId, EscalationId, StopId, StopState};
use rusqlite::{Connection, OptionalExtension, params};

impl SqliteStore {
    pub(crate) fn push_unit_impl(
        &self,
        device: DeviceId,
        work: &mut PushWork<'_>,
    ) -> SqlResult<()> {
        let mut conn = self.write();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        work(&mut SqlitePush {
            conn: &tx,
            device: device.to_string(),
        })?;
        tx.commit()?;
        Ok(())
    }
}

struct SqlitePush<'c> {
    conn: &'c Connection,
    device: String,
}

impl PushUnit for SqlitePush<'_> {
    fn lock_device(&mut self) -> crate::store::StoreResult<u64> {
        db(|| {
            let last: i64 = self
                .conn
                .prepare_cached("SELECT last_applied_seq FROM devices WHERE device_id = ?1")?
                .query_row([&self.device], |r| r.get(0))?;
            Ok(u64::try_from(last).unwrap_or(0))
        })
    }

    fn prepare(&mut self, scope: &PushScope<'_>) -> crate::store::StoreResult<PushFacts> {
        // The IMMEDIATE transaction already holds the database's only write lock: there is
        // nothing more to lock, only to read.
        db(|| {
            let mut facts = PushFacts::default();
            for stop in scope.stops {
                if let Some(record) = load_stop(self.conn, *stop)? {
                    facts.stops.insert(*stop, record);
                }
            }
            for key in scope.intent_keys {
                if let Some(known) = known_intent(self.conn, key)? {
                    facts.intents.insert((*key).to_owned(), known);
                }
            }
            let mut by_id = self
                .conn
                .prepare_cached("SELECT intent_key FROM events WHERE event_id = ?1 LIMIT 1")?;
            for id in scope.event_ids {
                let intent: Option<String> =
                    by_id.query_row([id.to_string()], |r| r.get(0)).optional()?;
                if let Some(intent) = intent {
                    facts.event_intents.insert(*id, intent);
                }
            }
            let mut stored = self.conn.prepare_cached(
                "SELECT status, code FROM events WHERE device_id = ?1 AND device_seq = ?2",
            )?;
            for seq in scope.duplicate_seqs {
                let row: Option<(String, Option<String>)> = stored
                    .query_row(params![self.device, seq_param(*seq)], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })
                    .optional()?;
                if let Some((status, code)) = row
                    && let Some(status) = enum_from(&status)
                {
                    facts
                        .stored
                        .insert(*seq, (status, code.and_then(|c| enum_from(&c))));
                }
            }
            let mut planned = self
                .conn
                .prepare_cached("SELECT stop_id FROM stop_parcels WHERE parcel = ?1")?;
            for parcel in scope.parcels {
                let stops = planned
                    .query_map([parcel], |r| super::id::<StopId>(r.get(0)?))?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                if !stops.is_empty() {
                    facts.parcel_stops.insert((*parcel).to_owned(), stops);
                }
            }
            Ok(facts)
        })
    }

    fn evidence_head(&mut self) -> crate::store::StoreResult<String> {
        db(|| {
            Ok(self
                .conn
                .prepare_cached("SELECT evidence_head FROM devices WHERE device_id = ?1")?
                .query_row([&self.device], |r| r.get(0))?)
        })
    }

    fn plan_access_notes(&mut self, stop: StopId) -> crate::store::StoreResult<Option<String>> {
        db(|| {
            let plan: Option<String> = self
                .conn
                .prepare_cached(
                    "SELECT r.plan_json FROM stops s JOIN routes r ON r.route_id = s.route_id
                 WHERE s.stop_id = ?1",
                )?
                .query_row([stop.to_string()], |r| r.get(0))
                .optional()?;
            let Some(plan) = plan else { return Ok(None) };
            let plan: RouteAssigned = super::json(&plan)?;
            Ok(plan
                .stops
                .into_iter()
                .find(|s| s.stop_id == stop)
                .and_then(|s| s.access_notes))
        })
    }

    fn skew_escalation_open(&mut self) -> crate::store::StoreResult<bool> {
        db(|| {
            Ok(self.conn.prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM escalations WHERE device_id = ?1 AND kind = 'clock_skew' AND resolved = 0)",
        )?
        .query_row([&self.device], |r| r.get(0))?)
        })
    }

    fn record_event(&mut self, row: &DeviceEventRow<'_>) -> crate::store::StoreResult<()> {
        db(|| {
            let env = row.envelope;
            let event_id = env.event_id.to_string();
            self.conn.prepare_cached(
            "INSERT INTO events (event_id, device_id, device_seq, intent_key, fingerprint, kind, stop_id,
                 hlc_wall, hlc_logical, device_time_ms, received_at_ms, clock_offset_ms, status, code, payload)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
        )?
        .execute(params![
            event_id,
            self.device,
            seq_param(env.device_seq),
            env.intent_key,
            row.fingerprint,
            env.payload.kind(),
            env.payload.stop_id().map(|s| s.to_string()),
            seq_param(env.hlc.wall_ms),
            env.hlc.logical,
            seq_param(env.device_time_ms),
            seq_param(row.received_at_ms),
            row.clock_offset_ms,
            status_str(row.status),
            row.code.map(|c| c.as_str()),
            row.payload_json,
        ])?;
            if row.record_intent {
                self.conn
                .prepare_cached(
                    "INSERT INTO intents (intent_key, fingerprint, event_id) VALUES (?1, ?2, ?3)",
                )?
                .execute(params![env.intent_key, row.fingerprint, event_id])?;
            }
            if let Some(head) = row.evidence_head {
                self.conn
                    .prepare_cached("UPDATE devices SET evidence_head = ?2 WHERE device_id = ?1")?
                    .execute(params![self.device, head])?;
            }
            Ok(())
        })
    }

    fn open_escalation(&mut self, esc: &EscalationRecord<'_>) -> crate::store::StoreResult<()> {
        db(|| insert_escalation(self.conn, esc))
    }

    fn save_stop(&mut self, state: &StopState) -> crate::store::StoreResult<()> {
        db(|| save_stop(self.conn, state))
    }

    fn update_device(&mut self, u: &DeviceSyncUpdate<'_>) -> crate::store::StoreResult<()> {
        db(|| {
            self.conn.prepare_cached(
            "UPDATE devices SET last_applied_seq = ?2, last_contact_ms = ?3, clock_offset_ms = ?4,
                 clock_skew_flagged = ?5, queue_json = COALESCE(?6, queue_json),
                 events_rejected = events_rejected + ?7, events_conflicted = events_conflicted + ?8
             WHERE device_id = ?1",
        )?
        .execute(params![
            self.device,
            seq_param(u.last_applied_seq),
            seq_param(u.contact_ms),
            u.clock_offset_ms,
            u.clock_skew_flagged,
            u.queue_json,
            seq_param(u.rejected),
            seq_param(u.conflicted),
        ])?;
            Ok(())
        })
    }
}

/// A client-supplied `u64` as an SQLite integer: values beyond `i64::MAX` saturate instead of
/// wrapping to negative numbers.
pub(super) fn seq_param(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(super) fn known_intent(conn: &Connection, intent_key: &str) -> SqlResult<Option<KnownIntent>> {
    Ok(conn
        .prepare_cached("SELECT fingerprint, event_id FROM intents WHERE intent_key = ?1")?
        .query_row([intent_key], |r| {
            Ok(KnownIntent {
                fingerprint: r.get(0)?,
                event_id: super::id(r.get(1)?)?,
            })
        })
        .optional()?)
}

pub(super) fn load_stop(conn: &Connection, stop: StopId) -> SqlResult<Option<StopRecord>> {
    let state: Option<Vec<u8>> = conn
        .prepare_cached("SELECT state FROM stops WHERE stop_id = ?1")?
        .query_row([stop.to_string()], |r| r.get(0))
        .optional()?;
    let Some(bytes) = state else { return Ok(None) };
    let state = StopState::from_bytes(&bytes)
        .map_err(|e| crate::store::StoreError::Fatal(e.to_string()))?;
    let mut q =
        conn.prepare_cached("SELECT courier_id FROM stop_assignments WHERE stop_id = ?1")?;
    let assigned_to = q
        .query_map([stop.to_string()], |r| super::id::<CourierId>(r.get(0)?))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Some(StopRecord { state, assigned_to }))
}

pub(super) fn save_stop(conn: &Connection, state: &StopState) -> SqlResult<()> {
    let status = state.status();
    conn.prepare_cached(
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

pub(super) fn insert_escalation(conn: &Connection, rec: &EscalationRecord<'_>) -> SqlResult<()> {
    let esc = rec.escalation;
    let id = EscalationId(uuid::Uuid::now_v7());
    conn.prepare_cached(
        "INSERT INTO escalations (escalation_id, kind, priority, stop_id, device_id, event_id, opened_at_ms, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        id.to_string(),
        enum_str(&esc.kind),
        esc.kind.priority(),
        esc.stop_id.map(|s| s.to_string()),
        rec.device.map(|d| d.to_string()),
        rec.event.map(|e| e.to_string()),
        seq_param(rec.opened_at_ms),
        esc.detail
    ])?;
    Ok(())
}
