//! The push unit of work on PostgreSQL, in three round trips for a typical request:
//!
//! 1. `BEGIN` and the device's row locked (`FOR UPDATE`), so pushes of one device are
//!    serialised across connections and replicas;
//! 2. the stops locked in sorted id order and read, the intent keys locked (transaction-scoped
//!    advisory locks in hash order) and read, the event ids and the duplicates' stored
//!    outcomes read — all pipelined;
//! 3. every write, buffered while the algorithm decided, sent as a few multi-row statements
//!    (`UNNEST` of column arrays) pipelined with `COMMIT`.
//!
//! An event that needs more (its evidence head, its plan's access notes, an open clock-skew
//! escalation) costs one more round trip. The request is atomic: nothing is written before the
//! commit, so there are no savepoints (and no subtransactions, which would slow every
//! concurrent snapshot once a transaction holds more than 64 of them).

use super::units::saturating;
use super::{PgError, PgResult, PgStore, enum_from, enum_str, id, json};
use crate::merge::{KnownIntent, StopRecord};
use crate::push::status_str;
use crate::store::{
    DeviceEventRow, DeviceSyncUpdate, EscalationRecord, PushFacts, PushScope, PushUnit, PushWork,
    StoreResult,
};
use deadpool_postgres::Object;
use doorstep_shared::event::RouteAssigned;
use doorstep_shared::{CourierId, DeviceId, EscalationId, StopId, StopState};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Row, Statement};

impl PgStore {
    /// Runs `work` as one transaction on one pooled connection: the buffered writes and the
    /// commit go out when it returns `Ok`; otherwise the transaction rolls back. A connection
    /// whose transaction could not be ended cleanly is dropped, never reused.
    pub(super) fn push_unit_impl(
        &self,
        device: DeviceId,
        work: &mut PushWork<'_>,
    ) -> StoreResult<()> {
        let client = self.block_on(async { Ok(self.pool.get().await?) })?;
        let mut unit = PgPush {
            store: self,
            client,
            device: device.to_string(),
            begun: false,
            writes: Writes::default(),
        };
        let result = work(&mut unit).and_then(|()| unit.commit());
        if result.is_err() && unit.begun {
            let ended = self.block_on(async {
                unit.client.batch_execute("ROLLBACK").await?;
                Ok(())
            });
            if ended.is_err() {
                drop(Object::take(unit.client));
            }
        }
        result
    }
}

struct PgPush<'s> {
    store: &'s PgStore,
    client: Object,
    device: String,
    /// `BEGIN` was sent (it goes out in front of the unit's first statement).
    begun: bool,
    writes: Writes,
}

/// What the unit will write at the commit, as the columns of multi-row inserts.
#[derive(Default)]
struct Writes {
    events: EventColumns,
    intents: IntentColumns,
    escalations: EscalationColumns,
    stops: StopColumns,
    /// The device's evidence head after the request's events, if one of them moved it.
    evidence_head: Option<String>,
    device: Option<DeviceColumns>,
}

#[derive(Default)]
struct EventColumns {
    event_id: Vec<String>,
    device_seq: Vec<i64>,
    intent_key: Vec<String>,
    fingerprint: Vec<String>,
    kind: Vec<&'static str>,
    stop_id: Vec<Option<String>>,
    hlc_wall: Vec<i64>,
    hlc_logical: Vec<i64>,
    device_time_ms: Vec<i64>,
    received_at_ms: Vec<i64>,
    clock_offset_ms: Vec<i64>,
    status: Vec<&'static str>,
    code: Vec<Option<&'static str>>,
    payload: Vec<String>,
}

#[derive(Default)]
struct IntentColumns {
    intent_key: Vec<String>,
    fingerprint: Vec<String>,
    event_id: Vec<String>,
}

#[derive(Default)]
struct EscalationColumns {
    escalation_id: Vec<String>,
    kind: Vec<String>,
    priority: Vec<i64>,
    stop_id: Vec<Option<String>>,
    device_id: Vec<Option<String>>,
    event_id: Vec<Option<String>>,
    opened_at_ms: Vec<i64>,
    detail: Vec<String>,
}

#[derive(Default)]
struct StopColumns {
    stop_id: Vec<String>,
    state: Vec<Vec<u8>>,
    status: Vec<String>,
    terminal: Vec<bool>,
}

struct DeviceColumns {
    last_applied_seq: i64,
    contact_ms: i64,
    clock_offset_ms: i64,
    clock_skew_flagged: bool,
    queue_json: Option<String>,
    rejected: i64,
    conflicted: i64,
}

const INSERT_EVENTS: &str = "INSERT INTO events (event_id, device_id, device_seq, intent_key,
         fingerprint, kind, stop_id, hlc_wall, hlc_logical, device_time_ms, received_at_ms,
         clock_offset_ms, status, code, payload)
     SELECT e.event_id, $1, e.device_seq, e.intent_key, e.fingerprint, e.kind, e.stop_id,
         e.hlc_wall, e.hlc_logical, e.device_time_ms, e.received_at_ms, e.clock_offset_ms,
         e.status, e.code, e.payload
     FROM UNNEST($2::text[], $3::int8[], $4::text[], $5::text[], $6::text[], $7::text[],
         $8::int8[], $9::int8[], $10::int8[], $11::int8[], $12::int8[], $13::text[], $14::text[],
         $15::text[]) WITH ORDINALITY
       AS e(event_id, device_seq, intent_key, fingerprint, kind, stop_id, hlc_wall, hlc_logical,
         device_time_ms, received_at_ms, clock_offset_ms, status, code, payload, n)
     ORDER BY e.n";
const INSERT_INTENTS: &str = "INSERT INTO intents (intent_key, fingerprint, event_id)
     SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[])";
const INSERT_ESCALATIONS: &str = "INSERT INTO escalations (escalation_id, kind, priority, stop_id,
         device_id, event_id, opened_at_ms, detail)
     SELECT * FROM UNNEST($1::text[], $2::text[], $3::int8[], $4::text[], $5::text[], $6::text[],
         $7::int8[], $8::text[])";
const UPDATE_STOPS: &str = "UPDATE stops SET state = u.state, status = u.status,
         terminal = u.terminal
     FROM UNNEST($1::text[], $2::bytea[], $3::text[], $4::bool[]) AS u(stop_id, state, status,
         terminal)
     WHERE stops.stop_id = u.stop_id";
const UPDATE_DEVICE: &str = "UPDATE devices SET last_applied_seq = $2, last_contact_ms = $3,
         clock_offset_ms = $4, clock_skew_flagged = $5, queue_json = COALESCE($6, queue_json),
         events_rejected = events_rejected + $7, events_conflicted = events_conflicted + $8
     WHERE device_id = $1";
const UPDATE_EVIDENCE_HEAD: &str = "UPDATE devices SET evidence_head = $2 WHERE device_id = $1";

/// The first failure of a pipeline, in the order its statements were sent (later statements
/// of an aborted transaction only repeat that it is aborted).
fn first_failure(results: impl IntoIterator<Item = PgResult<()>>) -> PgResult<()> {
    results.into_iter().find(Result::is_err).unwrap_or(Ok(()))
}

/// Runs the statement when `any` (there are rows to write).
async fn execute_if(
    c: &Object,
    any: bool,
    stmt: &Statement,
    params: &[&(dyn ToSql + Sync)],
) -> PgResult<()> {
    if any {
        c.execute(stmt, params).await?;
    }
    Ok(())
}

/// Runs the query when `any` (there are keys to ask for); no rows otherwise.
async fn query_if(
    c: &Object,
    any: bool,
    stmt: &Statement,
    params: &[&(dyn ToSql + Sync)],
) -> PgResult<Vec<Row>> {
    if !any {
        return Ok(Vec::new());
    }
    Ok(c.query(stmt, params).await?)
}

impl PgPush<'_> {
    /// Runs `f` on the connection, with `BEGIN` pipelined in front of the unit's first
    /// statement.
    fn on<T>(&mut self, f: impl AsyncFnOnce(&Object) -> PgResult<T>) -> StoreResult<T> {
        let begin = !std::mem::replace(&mut self.begun, true);
        let client = &self.client;
        self.store.block_on(async {
            if !begin {
                return f(client).await;
            }
            let (begun, result) = futures::join!(client.batch_execute("BEGIN"), f(client));
            begun?;
            result
        })
    }

    /// Sends the buffered writes and `COMMIT` in one round trip.
    fn commit(&mut self) -> StoreResult<()> {
        if !self.begun && self.writes.is_empty() {
            return Ok(());
        }
        let w = std::mem::take(&mut self.writes);
        let dev = self.device.clone();
        self.on(async |c| {
            let events = c.prepare_cached(INSERT_EVENTS).await?;
            let intents = c.prepare_cached(INSERT_INTENTS).await?;
            let escalations = c.prepare_cached(INSERT_ESCALATIONS).await?;
            let stops = c.prepare_cached(UPDATE_STOPS).await?;
            let device = c.prepare_cached(UPDATE_DEVICE).await?;
            let head = c.prepare_cached(UPDATE_EVIDENCE_HEAD).await?;
            let e = &w.events;
            let event_params: [&(dyn ToSql + Sync); 15] = [
                &dev,
                &e.event_id,
                &e.device_seq,
                &e.intent_key,
                &e.fingerprint,
                &e.kind,
                &e.stop_id,
                &e.hlc_wall,
                &e.hlc_logical,
                &e.device_time_ms,
                &e.received_at_ms,
                &e.clock_offset_ms,
                &e.status,
                &e.code,
                &e.payload,
            ];
            let i = &w.intents;
            let intent_params: [&(dyn ToSql + Sync); 3] =
                [&i.intent_key, &i.fingerprint, &i.event_id];
            let x = &w.escalations;
            let escalation_params: [&(dyn ToSql + Sync); 8] = [
                &x.escalation_id,
                &x.kind,
                &x.priority,
                &x.stop_id,
                &x.device_id,
                &x.event_id,
                &x.opened_at_ms,
                &x.detail,
            ];
            let s = &w.stops;
            let stop_params: [&(dyn ToSql + Sync); 4] =
                [&s.stop_id, &s.state, &s.status, &s.terminal];
            let device_update = async {
                if let Some(d) = &w.device {
                    let params: [&(dyn ToSql + Sync); 8] = [
                        &dev,
                        &d.last_applied_seq,
                        &d.contact_ms,
                        &d.clock_offset_ms,
                        &d.clock_skew_flagged,
                        &d.queue_json,
                        &d.rejected,
                        &d.conflicted,
                    ];
                    c.execute(&device, &params).await?;
                }
                PgResult::Ok(())
            };
            let head_update = async {
                if let Some(h) = &w.evidence_head {
                    c.execute(&head, &[&dev, h]).await?;
                }
                PgResult::Ok(())
            };
            let commit = async { Ok(c.batch_execute("COMMIT").await?) };
            // Polled in this order, so sent in this order, in one round trip.
            let (a, b, x, s, d, h, end) = futures::join!(
                execute_if(c, !e.event_id.is_empty(), &events, &event_params),
                execute_if(c, !i.intent_key.is_empty(), &intents, &intent_params),
                execute_if(
                    c,
                    !x.escalation_id.is_empty(),
                    &escalations,
                    &escalation_params
                ),
                execute_if(c, !s.stop_id.is_empty(), &stops, &stop_params),
                device_update,
                head_update,
                commit,
            );
            // `COMMIT` of an aborted transaction answers with a rollback, not an error: a
            // failed write is the answer.
            first_failure([a, b, x, s, d, h, end])
        })
    }
}

impl Writes {
    fn is_empty(&self) -> bool {
        self.events.event_id.is_empty()
            && self.escalations.escalation_id.is_empty()
            && self.stops.stop_id.is_empty()
            && self.evidence_head.is_none()
            && self.device.is_none()
    }
}

impl PushUnit for PgPush<'_> {
    fn lock_device(&mut self) -> StoreResult<u64> {
        let dev = self.device.clone();
        self.on(async |c| {
            let stmt = c
                .prepare_cached(
                    "SELECT last_applied_seq FROM devices WHERE device_id = $1 FOR UPDATE",
                )
                .await?;
            super::unsigned(c.query_one(&stmt, &[&dev]).await?.try_get(0)?)
        })
    }

    fn prepare(&mut self, scope: &PushScope<'_>) -> StoreResult<PushFacts> {
        let dev = self.device.clone();
        let stops: Vec<String> = scope.stops.iter().map(ToString::to_string).collect();
        let ids: Vec<String> = scope.event_ids.iter().map(ToString::to_string).collect();
        let seqs: Vec<i64> = scope
            .duplicate_seqs
            .iter()
            .map(|s| saturating(*s))
            .collect();
        let keys = scope.intent_keys;
        let parcels = scope.parcels;
        self.on(async |c| {
            let lock_stops = c
                .prepare_cached(
                    "SELECT stop_id, state FROM stops WHERE stop_id = ANY($1)
                     ORDER BY stop_id FOR UPDATE",
                )
                .await?;
            let assigned = c
                .prepare_cached(
                    "SELECT stop_id, courier_id FROM stop_assignments WHERE stop_id = ANY($1)",
                )
                .await?;
            let lock_keys = c.prepare_cached(super::LOCK_KEYS).await?;
            let by_key = c
                .prepare_cached(
                    "SELECT intent_key, fingerprint, event_id FROM intents
                     WHERE intent_key = ANY($1)",
                )
                .await?;
            let by_id = c
                .prepare_cached(
                    "SELECT DISTINCT ON (event_id) event_id, intent_key FROM events
                     WHERE event_id = ANY($1)",
                )
                .await?;
            let stored = c
                .prepare_cached(
                    "SELECT device_seq, status, code FROM events
                     WHERE device_id = $1 AND device_seq = ANY($2)",
                )
                .await?;
            // Polled in this order, so sent in this order (the locks first), in one round trip.
            let planned = c
                .prepare_cached("SELECT parcel, stop_id FROM stop_parcels WHERE parcel = ANY($1)")
                .await?;
            let stop_params: [&(dyn ToSql + Sync); 1] = [&stops];
            let parcel_params: [&(dyn ToSql + Sync); 1] = [&parcels];
            let key_params: [&(dyn ToSql + Sync); 1] = [&keys];
            let id_params: [&(dyn ToSql + Sync); 1] = [&ids];
            let seq_params: [&(dyn ToSql + Sync); 2] = [&dev, &seqs];
            let (stop_rows, assigned_rows, locked, intent_rows, id_rows, stored_rows, planned_rows) = futures::join!(
                query_if(c, !stops.is_empty(), &lock_stops, &stop_params),
                query_if(c, !stops.is_empty(), &assigned, &stop_params),
                query_if(c, !keys.is_empty(), &lock_keys, &key_params),
                query_if(c, !keys.is_empty(), &by_key, &key_params),
                query_if(c, !ids.is_empty(), &by_id, &id_params),
                query_if(c, !seqs.is_empty(), &stored, &seq_params),
                query_if(c, !parcels.is_empty(), &planned, &parcel_params),
            );
            let (stop_rows, assigned_rows) = (stop_rows?, assigned_rows?);
            locked?;
            let (intent_rows, id_rows, stored_rows) = (intent_rows?, id_rows?, stored_rows?);
            let mut facts = PushFacts::default();
            for r in planned_rows? {
                facts
                    .parcel_stops
                    .entry(r.try_get(0)?)
                    .or_default()
                    .push(id(r.try_get::<_, &str>(1)?)?);
            }
            for r in stop_rows {
                let stop: StopId = id(r.try_get::<_, &str>(0)?)?;
                let state = StopState::from_bytes(r.try_get::<_, &[u8]>(1)?)
                    .map_err(|e| PgError::Data(e.to_string()))?;
                facts.stops.insert(
                    stop,
                    StopRecord {
                        state,
                        assigned_to: Vec::new(),
                    },
                );
            }
            for r in assigned_rows {
                let stop: StopId = id(r.try_get::<_, &str>(0)?)?;
                if let Some(record) = facts.stops.get_mut(&stop) {
                    record
                        .assigned_to
                        .push(id::<CourierId>(r.try_get::<_, &str>(1)?)?);
                }
            }
            for r in intent_rows {
                facts.intents.insert(
                    r.try_get(0)?,
                    KnownIntent {
                        fingerprint: r.try_get(1)?,
                        event_id: id(r.try_get::<_, &str>(2)?)?,
                    },
                );
            }
            for r in id_rows {
                facts
                    .event_intents
                    .insert(id(r.try_get::<_, &str>(0)?)?, r.try_get(1)?);
            }
            for r in stored_rows {
                let seq = super::unsigned(r.try_get(0)?)?;
                let status: &str = r.try_get(1)?;
                let code: Option<&str> = r.try_get(2)?;
                if let Some(status) = enum_from(status) {
                    facts.stored.insert(seq, (status, code.and_then(enum_from)));
                }
            }
            Ok(facts)
        })
    }

    fn evidence_head(&mut self) -> StoreResult<String> {
        if let Some(head) = &self.writes.evidence_head {
            return Ok(head.clone());
        }
        let dev = self.device.clone();
        self.on(async |c| {
            let stmt = c
                .prepare_cached("SELECT evidence_head FROM devices WHERE device_id = $1")
                .await?;
            Ok(c.query_one(&stmt, &[&dev]).await?.try_get(0)?)
        })
    }

    fn plan_access_notes(&mut self, stop: StopId) -> StoreResult<Option<String>> {
        self.on(async |c| {
            let stmt = c
                .prepare_cached(
                    "SELECT r.plan_json FROM stops s JOIN routes r ON r.route_id = s.route_id
                     WHERE s.stop_id = $1",
                )
                .await?;
            let Some(r) = c.query_opt(&stmt, &[&stop.to_string()]).await? else {
                return Ok(None);
            };
            let plan: RouteAssigned = json(r.try_get::<_, &str>(0)?)?;
            Ok(plan
                .stops
                .into_iter()
                .find(|s| s.stop_id == stop)
                .and_then(|s| s.access_notes))
        })
    }

    fn skew_escalation_open(&mut self) -> StoreResult<bool> {
        let x = &self.writes.escalations;
        let buffered = x
            .kind
            .iter()
            .zip(&x.device_id)
            .any(|(k, d)| k == "clock_skew" && d.as_deref() == Some(self.device.as_str()));
        if buffered {
            return Ok(true);
        }
        let dev = self.device.clone();
        self.on(async |c| {
            let stmt = c
                .prepare_cached(
                    "SELECT EXISTS (SELECT 1 FROM escalations
                     WHERE device_id = $1 AND kind = 'clock_skew' AND NOT resolved)",
                )
                .await?;
            Ok(c.query_one(&stmt, &[&dev]).await?.try_get(0)?)
        })
    }

    fn record_event(&mut self, row: &DeviceEventRow<'_>) -> StoreResult<()> {
        let env = row.envelope;
        let e = &mut self.writes.events;
        let event_id = env.event_id.to_string();
        e.event_id.push(event_id.clone());
        e.device_seq.push(saturating(env.device_seq));
        e.intent_key.push(env.intent_key.clone());
        e.fingerprint.push(row.fingerprint.to_owned());
        e.kind.push(env.payload.kind());
        e.stop_id.push(env.payload.stop_id().map(|s| s.to_string()));
        e.hlc_wall.push(saturating(env.hlc.wall_ms));
        e.hlc_logical.push(i64::from(env.hlc.logical));
        e.device_time_ms.push(saturating(env.device_time_ms));
        e.received_at_ms.push(saturating(row.received_at_ms));
        e.clock_offset_ms.push(row.clock_offset_ms);
        e.status.push(status_str(row.status));
        e.code.push(row.code.map(|c| c.as_str()));
        e.payload.push(row.payload_json.to_owned());
        if row.record_intent {
            let i = &mut self.writes.intents;
            i.intent_key.push(env.intent_key.clone());
            i.fingerprint.push(row.fingerprint.to_owned());
            i.event_id.push(event_id);
        }
        if let Some(head) = row.evidence_head {
            self.writes.evidence_head = Some(head.to_owned());
        }
        Ok(())
    }

    fn open_escalation(&mut self, rec: &EscalationRecord<'_>) -> StoreResult<()> {
        let esc = rec.escalation;
        let x = &mut self.writes.escalations;
        x.escalation_id
            .push(EscalationId(uuid::Uuid::now_v7()).to_string());
        x.kind.push(enum_str(&esc.kind));
        x.priority.push(i64::from(esc.kind.priority()));
        x.stop_id.push(esc.stop_id.map(|s| s.to_string()));
        x.device_id.push(rec.device.map(|d| d.to_string()));
        x.event_id.push(rec.event.map(|e| e.to_string()));
        x.opened_at_ms.push(saturating(rec.opened_at_ms));
        x.detail.push(esc.detail.clone());
        Ok(())
    }

    fn save_stop(&mut self, state: &StopState) -> StoreResult<()> {
        let status = state.status();
        let status_json =
            serde_json::to_string(&status).map_err(|e| PgError::Data(e.to_string()))?;
        let s = &mut self.writes.stops;
        s.stop_id.push(state.stop_id.to_string());
        s.state.push(state.to_bytes());
        s.status.push(status_json);
        s.terminal.push(status.is_terminal());
        Ok(())
    }

    fn update_device(&mut self, u: &DeviceSyncUpdate<'_>) -> StoreResult<()> {
        self.writes.device = Some(DeviceColumns {
            last_applied_seq: saturating(u.last_applied_seq),
            contact_ms: saturating(u.contact_ms),
            clock_offset_ms: u.clock_offset_ms,
            clock_skew_flagged: u.clock_skew_flagged,
            queue_json: u.queue_json.map(str::to_owned),
            rejected: saturating(u.rejected),
            conflicted: saturating(u.conflicted),
        });
        Ok(())
    }
}
