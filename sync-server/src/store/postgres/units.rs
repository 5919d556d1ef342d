//! The push and office units of work on PostgreSQL: one transaction on one pooled connection,
//! with the device's row locked first (`FOR UPDATE`), so pushes of one device are serialised
//! across connections and replicas, and the stops a request touches locked in sorted id order.
//! Office commands lock the single `office_clock` row first, which serialises them across
//! replicas: feed cursors become visible in the order they were taken. Each unit only reads and
//! writes what the algorithms above ask.
//!
//! Round trips: what the log holds of a request's intents and event ids is read once, in one
//! round trip; an event's `SAVEPOINT` (and the previous event's `RELEASE`) is not sent on its
//! own but pipelined in front of the event's first statement, and its log row and intent go
//! out together, so a typical event costs one round trip.

use super::{PgError, PgResult, PgStore, enum_from, enum_str, id, json, signed, unsigned};
use crate::merge::{KnownIntent, StopRecord};
use crate::push::status_str;
use crate::store::{
    DeviceEventRow, DeviceSyncUpdate, EscalationRecord, LoggedFacts, OfficeEventRow, OfficeUnit,
    OfficeWork, OfficeWrite, PushUnit, PushWork, StoreError, StoreResult, StoredOutcome,
};
use deadpool_postgres::Object;
use doorstep_shared::event::RouteAssigned;
use doorstep_shared::{
    CourierId, DeviceId, EscalationId, EventId, HlcStamp, RouteId, StopId, StopState,
};
use std::cell::Cell;
use tokio_postgres::types::ToSql;

impl PgStore {
    /// Runs `f` in one transaction on one pooled connection: commits when it returns `Ok`,
    /// rolls back otherwise (a connection whose rollback fails is dropped, never reused).
    fn transaction<U>(
        &self,
        make: impl FnOnce(Object) -> U,
        f: impl FnOnce(&mut U) -> StoreResult<()>,
        into_client: impl FnOnce(U) -> Object,
    ) -> StoreResult<()> {
        let client = self.block_on(async { Ok(self.pool.get().await?) })?;
        self.block_on(async {
            client.batch_execute("BEGIN").await?;
            Ok(())
        })?;
        let mut unit = make(client);
        let result = f(&mut unit);
        let client = into_client(unit);
        let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
        let ended = self.block_on(async {
            client.batch_execute(end).await?;
            Ok(())
        });
        if ended.is_err() {
            drop(Object::take(client));
        }
        result.and(ended)
    }

    pub(super) fn push_unit_impl(
        &self,
        device: DeviceId,
        work: &mut PushWork<'_>,
    ) -> StoreResult<()> {
        self.transaction(
            |client| PgPush {
                store: self,
                client,
                device: device.to_string(),
                pending: Cell::new(Pending::Nothing),
            },
            |unit| work(unit),
            |unit| unit.client,
        )
    }

    pub(super) fn office_unit_impl(&self, work: &mut OfficeWork<'_>) -> StoreResult<()> {
        self.transaction(
            |client| PgOffice {
                store: self,
                client,
            },
            |unit| work(unit),
            |unit| unit.client,
        )
    }
}

struct PgPush<'s> {
    store: &'s PgStore,
    client: Object,
    device: String,
    /// Savepoint commands not sent yet; they go out in front of the next statement.
    pending: Cell<Pending>,
}

/// Savepoint commands waiting for the next statement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pending {
    Nothing,
    Savepoint,
    Release,
    ReleaseThenSavepoint,
}

impl Pending {
    fn sql(self) -> Option<&'static str> {
        match self {
            Pending::Nothing => None,
            Pending::Savepoint => Some("SAVEPOINT event"),
            Pending::Release => Some("RELEASE SAVEPOINT event"),
            Pending::ReleaseThenSavepoint => Some("RELEASE SAVEPOINT event; SAVEPOINT event"),
        }
    }
}

struct PgOffice<'s> {
    store: &'s PgStore,
    client: Object,
}

impl PgPush<'_> {
    /// Runs `f` on the connection, with any pending savepoint commands pipelined in front of it
    /// (sent first, in the same round trip; their failure fails the call).
    fn on<T>(&self, f: impl AsyncFnOnce(&Object) -> PgResult<T>) -> StoreResult<T> {
        let pending = self.pending.replace(Pending::Nothing).sql();
        self.store.block_on(async {
            let Some(sql) = pending else {
                return f(&self.client).await;
            };
            let (sent, result) = futures::join!(self.client.batch_execute(sql), f(&self.client));
            sent?;
            result
        })
    }
}

impl PgOffice<'_> {
    fn on<T>(&self, f: impl AsyncFnOnce(&Object) -> PgResult<T>) -> StoreResult<T> {
        self.store.block_on(f(&self.client))
    }
}

async fn lock_stops(c: &Object, stops: &[StopId]) -> PgResult<()> {
    if stops.is_empty() {
        return Ok(());
    }
    let ids: Vec<String> = stops.iter().map(ToString::to_string).collect();
    let stmt = c
        .prepare_cached(
            "SELECT stop_id FROM stops WHERE stop_id = ANY($1) ORDER BY stop_id FOR UPDATE",
        )
        .await?;
    c.query(&stmt, &[&ids]).await?;
    Ok(())
}

async fn known_intent(c: &Object, key: &str) -> PgResult<Option<KnownIntent>> {
    let stmt = c
        .prepare_cached("SELECT fingerprint, event_id FROM intents WHERE intent_key = $1")
        .await?;
    let Some(r) = c.query_opt(&stmt, &[&key]).await? else {
        return Ok(None);
    };
    Ok(Some(KnownIntent {
        fingerprint: r.try_get(0)?,
        event_id: id(r.try_get::<_, &str>(1)?)?,
    }))
}

async fn load_stop(c: &Object, stop: StopId) -> PgResult<Option<StopRecord>> {
    let sid = stop.to_string();
    let stmt = c
        .prepare_cached("SELECT state FROM stops WHERE stop_id = $1")
        .await?;
    let Some(r) = c.query_opt(&stmt, &[&sid]).await? else {
        return Ok(None);
    };
    let state = StopState::from_bytes(r.try_get::<_, &[u8]>(0)?)
        .map_err(|e| PgError::Data(e.to_string()))?;
    let stmt = c
        .prepare_cached("SELECT courier_id FROM stop_assignments WHERE stop_id = $1")
        .await?;
    let assigned_to = c
        .query(&stmt, &[&sid])
        .await?
        .iter()
        .map(|r| id::<CourierId>(r.try_get::<_, &str>(0)?))
        .collect::<PgResult<Vec<_>>>()?;
    Ok(Some(StopRecord { state, assigned_to }))
}

async fn save_stop(c: &Object, state: &StopState) -> PgResult<()> {
    let status = state.status();
    let status_json = serde_json::to_string(&status).map_err(|e| PgError::Data(e.to_string()))?;
    let stmt = c
        .prepare_cached(
            "UPDATE stops SET state = $2, status = $3, terminal = $4 WHERE stop_id = $1",
        )
        .await?;
    c.execute(
        &stmt,
        &[
            &state.stop_id.to_string(),
            &state.to_bytes(),
            &status_json,
            &status.is_terminal(),
        ],
    )
    .await?;
    Ok(())
}

pub(super) async fn insert_escalation(c: &Object, rec: &EscalationRecord<'_>) -> PgResult<()> {
    let esc = rec.escalation;
    let stmt = c
        .prepare_cached(
            "INSERT INTO escalations (escalation_id, kind, priority, stop_id, device_id, event_id,
                 opened_at_ms, detail)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .await?;
    c.execute(
        &stmt,
        &[
            &EscalationId(uuid::Uuid::now_v7()).to_string(),
            &enum_str(&esc.kind),
            &i64::from(esc.kind.priority()),
            &esc.stop_id.map(|s| s.to_string()),
            &rec.device.map(|d| d.to_string()),
            &rec.event.map(|e| e.to_string()),
            &signed(rec.opened_at_ms)?,
            &esc.detail,
        ],
    )
    .await?;
    Ok(())
}

async fn load_plan(c: &Object, route: RouteId) -> PgResult<Option<RouteAssigned>> {
    let stmt = c
        .prepare_cached("SELECT plan_json FROM routes WHERE route_id = $1")
        .await?;
    c.query_opt(&stmt, &[&route.to_string()])
        .await?
        .map(|r| json(r.try_get::<_, &str>(0)?))
        .transpose()
}

/// A client-supplied `u64` for a BIGINT column: values past `i64::MAX` saturate.
fn saturating(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl PushUnit for PgPush<'_> {
    fn lock_device(&mut self) -> StoreResult<u64> {
        let dev = &self.device;
        self.on(async |c| {
            let stmt = c
                .prepare_cached(
                    "SELECT last_applied_seq FROM devices WHERE device_id = $1 FOR UPDATE",
                )
                .await?;
            unsigned(c.query_one(&stmt, &[dev]).await?.try_get(0)?)
        })
    }

    fn lock_stops(&mut self, stops: &[StopId]) -> StoreResult<()> {
        self.on(async |c| lock_stops(c, stops).await)
    }

    fn lock_intents(&mut self, intent_keys: &[&str]) -> StoreResult<()> {
        if intent_keys.is_empty() {
            return Ok(());
        }
        self.on(async |c| {
            // Transaction-scoped advisory locks on the keys' hashes, taken in hash order (a
            // collision only serialises two unrelated pushes).
            let stmt = c
                .prepare_cached(
                    "WITH k AS MATERIALIZED (
                         SELECT DISTINCT hashtextextended(key, 0) AS h FROM unnest($1::text[]) AS key
                         ORDER BY 1)
                     SELECT pg_advisory_xact_lock(h) FROM k",
                )
                .await?;
            c.execute(&stmt, &[&intent_keys]).await?;
            Ok(())
        })
    }

    fn stored_outcome(&mut self, device_seq: u64) -> StoreResult<Option<StoredOutcome>> {
        let dev = &self.device;
        self.on(async |c| {
            let stmt = c
                .prepare_cached(
                    "SELECT status, code FROM events WHERE device_id = $1 AND device_seq = $2",
                )
                .await?;
            let Some(r) = c.query_opt(&stmt, &[dev, &saturating(device_seq)]).await? else {
                return Ok(None);
            };
            let status: &str = r.try_get(0)?;
            let code: Option<&str> = r.try_get(1)?;
            Ok(enum_from(status).map(|s| (s, code.and_then(enum_from))))
        })
    }

    fn logged_facts(
        &mut self,
        intent_keys: &[&str],
        event_ids: &[EventId],
    ) -> StoreResult<LoggedFacts> {
        let ids: Vec<String> = event_ids.iter().map(ToString::to_string).collect();
        self.on(async |c| {
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
            // Both queries go out in one round trip.
            let (keys, ids): ([&(dyn ToSql + Sync); 1], [&(dyn ToSql + Sync); 1]) =
                ([&intent_keys], [&ids]);
            let (intents, logged) = futures::join!(c.query(&by_key, &keys), c.query(&by_id, &ids));
            let mut facts = LoggedFacts::default();
            for r in intents? {
                facts.intents.insert(
                    r.try_get(0)?,
                    KnownIntent {
                        fingerprint: r.try_get(1)?,
                        event_id: id(r.try_get::<_, &str>(2)?)?,
                    },
                );
            }
            for r in logged? {
                facts
                    .event_intents
                    .insert(id(r.try_get::<_, &str>(0)?)?, r.try_get(1)?);
            }
            Ok(facts)
        })
    }

    fn stop(&mut self, stop: StopId) -> StoreResult<Option<StopRecord>> {
        self.on(async |c| load_stop(c, stop).await)
    }

    fn evidence_head(&mut self) -> StoreResult<String> {
        let dev = &self.device;
        self.on(async |c| {
            let stmt = c
                .prepare_cached("SELECT evidence_head FROM devices WHERE device_id = $1")
                .await?;
            Ok(c.query_one(&stmt, &[dev]).await?.try_get(0)?)
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
        let dev = &self.device;
        self.on(async |c| {
            let stmt = c
                .prepare_cached(
                    "SELECT EXISTS (SELECT 1 FROM escalations
                     WHERE device_id = $1 AND kind = 'clock_skew' AND NOT resolved)",
                )
                .await?;
            Ok(c.query_one(&stmt, &[dev]).await?.try_get(0)?)
        })
    }

    fn savepoint(&mut self) -> StoreResult<()> {
        let next = match self.pending.get() {
            Pending::Nothing => Pending::Savepoint,
            Pending::Release => Pending::ReleaseThenSavepoint,
            already => {
                return Err(StoreError::Fatal(format!(
                    "savepoint opened twice (pending {already:?})"
                )));
            }
        };
        self.pending.set(next);
        Ok(())
    }

    fn release(&mut self) -> StoreResult<()> {
        match self.pending.get() {
            // Nothing ran inside the savepoint: there is nothing to keep.
            Pending::Savepoint => self.pending.set(Pending::Nothing),
            Pending::ReleaseThenSavepoint => self.pending.set(Pending::Release),
            _ => self.pending.set(Pending::Release),
        }
        Ok(())
    }

    fn rollback(&mut self) -> StoreResult<()> {
        match self.pending.get() {
            // Nothing ran inside the savepoint: there is nothing to undo.
            Pending::Savepoint => {
                self.pending.set(Pending::Nothing);
                Ok(())
            }
            Pending::ReleaseThenSavepoint => {
                self.pending.set(Pending::Release);
                Ok(())
            }
            _ => self.on(async |c| {
                Ok(
                    c.batch_execute("ROLLBACK TO SAVEPOINT event; RELEASE SAVEPOINT event")
                        .await?,
                )
            }),
        }
    }

    fn record_event(&mut self, row: &DeviceEventRow<'_>) -> StoreResult<()> {
        let dev = &self.device;
        self.on(async |c| {
            let env = row.envelope;
            let event_id = env.event_id.to_string();
            let stmt = c
                .prepare_cached(
                    "INSERT INTO events (event_id, device_id, device_seq, intent_key, fingerprint,
                         kind, stop_id, hlc_wall, hlc_logical, device_time_ms, received_at_ms,
                         clock_offset_ms, status, code, payload)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
                )
                .await?;
            let (seq, kind, stop) = (
                saturating(env.device_seq),
                env.payload.kind(),
                env.payload.stop_id().map(|s| s.to_string()),
            );
            let (wall, logical, device_time, received) = (
                saturating(env.hlc.wall_ms),
                i64::from(env.hlc.logical),
                saturating(env.device_time_ms),
                saturating(row.received_at_ms),
            );
            let (status, code) = (status_str(row.status), row.code.map(|c| c.as_str()));
            let params: [&(dyn ToSql + Sync); 15] = [
                    &event_id,
                    dev,
                    &seq,
                    &env.intent_key,
                    &row.fingerprint,
                    &kind,
                    &stop,
                    &wall,
                    &logical,
                    &device_time,
                    &received,
                    &row.clock_offset_ms,
                    &status,
                    &code,
                    &row.payload_json,
            ];
            let logged = c.execute(&stmt, &params);
            if row.record_intent {
                let stmt = c
                    .prepare_cached(
                        "INSERT INTO intents (intent_key, fingerprint, event_id) VALUES ($1, $2, $3)",
                    )
                    .await?;
                // Both inserts go out in one round trip; the log row is sent first.
                let params: [&(dyn ToSql + Sync); 3] =
                    [&env.intent_key, &row.fingerprint, &event_id];
                let intent = c.execute(&stmt, &params);
                let (logged, intent) = futures::join!(logged, intent);
                logged?;
                intent?;
            } else {
                logged.await?;
            }
            if let Some(head) = row.evidence_head {
                let stmt = c
                    .prepare_cached("UPDATE devices SET evidence_head = $2 WHERE device_id = $1")
                    .await?;
                c.execute(&stmt, &[dev, &head]).await?;
            }
            Ok(())
        })
    }

    fn open_escalation(&mut self, esc: &EscalationRecord<'_>) -> StoreResult<()> {
        self.on(async |c| insert_escalation(c, esc).await)
    }

    fn save_stop(&mut self, state: &StopState) -> StoreResult<()> {
        self.on(async |c| save_stop(c, state).await)
    }

    fn update_device(&mut self, u: &DeviceSyncUpdate<'_>) -> StoreResult<()> {
        let dev = &self.device;
        self.on(async |c| {
            let stmt = c
                .prepare_cached(
                    "UPDATE devices SET last_applied_seq = $2, last_contact_ms = $3,
                         clock_offset_ms = $4, clock_skew_flagged = $5,
                         queue_json = COALESCE($6, queue_json),
                         events_rejected = events_rejected + $7,
                         events_conflicted = events_conflicted + $8
                     WHERE device_id = $1",
                )
                .await?;
            c.execute(
                &stmt,
                &[
                    dev,
                    &saturating(u.last_applied_seq),
                    &saturating(u.contact_ms),
                    &u.clock_offset_ms,
                    &u.clock_skew_flagged,
                    &u.queue_json,
                    &saturating(u.rejected),
                    &saturating(u.conflicted),
                ],
            )
            .await?;
            Ok(())
        })
    }
}

impl OfficeUnit for PgOffice<'_> {
    fn office_clock(&mut self) -> StoreResult<Option<HlcStamp>> {
        self.on(async |c| {
            let r = c
                .query_one(
                    "SELECT hlc_wall, hlc_logical FROM office_clock WHERE id = 1 FOR UPDATE",
                    &[],
                )
                .await?;
            Ok(Some(HlcStamp {
                wall_ms: unsigned(r.try_get(0)?)?,
                logical: u32::try_from(r.try_get::<_, i64>(1)?)
                    .map_err(|_| PgError::Data("office clock logical out of range".into()))?,
            }))
        })
    }

    fn set_office_clock(&mut self, stamp: HlcStamp) -> StoreResult<()> {
        self.on(async |c| {
            c.execute(
                "UPDATE office_clock SET hlc_wall = $1, hlc_logical = $2 WHERE id = 1",
                &[&saturating(stamp.wall_ms), &i64::from(stamp.logical)],
            )
            .await?;
            Ok(())
        })
    }

    fn known_intent(&mut self, intent_key: &str) -> StoreResult<Option<KnownIntent>> {
        self.on(async |c| known_intent(c, intent_key).await)
    }

    fn lock_stops(&mut self, stops: &[StopId]) -> StoreResult<()> {
        self.on(async |c| lock_stops(c, stops).await)
    }

    fn stop(&mut self, stop: StopId) -> StoreResult<Option<StopRecord>> {
        self.on(async |c| load_stop(c, stop).await)
    }

    fn plan(&mut self, route: RouteId) -> StoreResult<Option<RouteAssigned>> {
        self.on(async |c| load_plan(c, route).await)
    }

    fn route_courier(&mut self, route: RouteId) -> StoreResult<Option<CourierId>> {
        self.on(async |c| {
            c.query_opt(
                "SELECT courier_id FROM routes WHERE route_id = $1",
                &[&route.to_string()],
            )
            .await?
            .map(|r| id(r.try_get::<_, &str>(0)?))
            .transpose()
        })
    }

    fn failed_contacts(&mut self, stop: StopId) -> StoreResult<u32> {
        self.on(async |c| {
            let n: i64 = c
                .query_one(
                    "SELECT COUNT(*) FROM contact_attempts WHERE stop_id = $1 AND NOT reached",
                    &[&stop.to_string()],
                )
                .await?
                .try_get(0)?;
            Ok(u32::try_from(n).unwrap_or(u32::MAX))
        })
    }

    fn write(&mut self, write: &OfficeWrite) -> StoreResult<()> {
        self.on(async |c| {
            match write {
                OfficeWrite::SavePlan(plan) => {
                    let plan_json =
                        serde_json::to_string(plan).map_err(|e| PgError::Data(e.to_string()))?;
                    c.execute(
                        "INSERT INTO routes (route_id, courier_id, day, version, plan_json)
                         VALUES ($1, $2, $3, $4, $5)
                         ON CONFLICT (route_id) DO UPDATE SET courier_id = excluded.courier_id,
                             day = excluded.day, version = excluded.version,
                             plan_json = excluded.plan_json",
                        &[
                            &plan.route_id.to_string(),
                            &plan.courier_id.to_string(),
                            &plan.day,
                            &i64::from(plan.version),
                            &plan_json,
                        ],
                    )
                    .await?;
                }
                OfficeWrite::PlaceStop { stop, route } => {
                    c.execute(
                        "INSERT INTO stops (stop_id, route_id, state, status) VALUES ($1, $2, $3, '')
                         ON CONFLICT (stop_id) DO UPDATE SET route_id = excluded.route_id",
                        &[
                            &stop.to_string(),
                            &route.to_string(),
                            &StopState::new(*stop).to_bytes(),
                        ],
                    )
                    .await?;
                }
                OfficeWrite::Assign { stop, courier } => {
                    c.execute(
                        "INSERT INTO stop_assignments (stop_id, courier_id) VALUES ($1, $2)
                         ON CONFLICT DO NOTHING",
                        &[&stop.to_string(), &courier.to_string()],
                    )
                    .await?;
                }
                OfficeWrite::ResolveEscalation(e) => {
                    c.execute(
                        "UPDATE escalations SET resolved = TRUE WHERE escalation_id = $1",
                        &[&e.to_string()],
                    )
                    .await?;
                }
                OfficeWrite::Contact {
                    intent_key,
                    stop,
                    reached,
                } => {
                    c.execute(
                        "INSERT INTO contact_attempts (intent_key, stop_id, reached) VALUES ($1, $2, $3)
                         ON CONFLICT DO NOTHING",
                        &[intent_key, &stop.to_string(), reached],
                    )
                    .await?;
                }
            }
            Ok(())
        })
    }

    fn log_event(&mut self, row: &OfficeEventRow<'_>) -> StoreResult<u64> {
        self.on(async |c| {
            let payload =
                serde_json::to_string(row.payload).map_err(|e| PgError::Data(e.to_string()))?;
            let event_id = row.event_id.to_string();
            let log_seq: i64 = c
                .query_one(
                    "INSERT INTO events (event_id, intent_key, fingerprint, kind, stop_id, hlc_wall,
                         hlc_logical, received_at_ms, status, payload)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'applied', $9)
                     RETURNING log_seq",
                    &[
                        &event_id,
                        &row.intent_key,
                        &row.fingerprint,
                        &row.payload.kind(),
                        &row.payload.stop_id().map(|s| s.to_string()),
                        &saturating(row.hlc.wall_ms),
                        &i64::from(row.hlc.logical),
                        &saturating(row.recorded_at_ms),
                        &payload,
                    ],
                )
                .await?
                .try_get(0)?;
            c.execute(
                "INSERT INTO intents (intent_key, fingerprint, event_id) VALUES ($1, $2, $3)",
                &[&row.intent_key, &row.fingerprint, &event_id],
            )
            .await?;
            unsigned(log_seq)
        })
    }

    fn save_stop(&mut self, state: &StopState) -> StoreResult<()> {
        self.on(async |c| save_stop(c, state).await)
    }

    fn open_escalation(&mut self, esc: &EscalationRecord<'_>) -> StoreResult<()> {
        self.on(async |c| insert_escalation(c, esc).await)
    }

    fn append_feed(&mut self, courier: CourierId, log_position: u64) -> StoreResult<u64> {
        self.on(async |c| {
            // Delivered to every listening server at commit; identical notifications of one
            // transaction are folded into one.
            c.execute("SELECT pg_notify($1, '')", &[&super::listen::CHANGES])
                .await?;
            let cursor: i64 = c
                .query_one(
                    "INSERT INTO feed (courier_id, log_seq) VALUES ($1, $2) RETURNING cursor",
                    &[&courier.to_string(), &signed(log_position)?],
                )
                .await?
                .try_get(0)?;
            unsigned(cursor)
        })
    }
}
