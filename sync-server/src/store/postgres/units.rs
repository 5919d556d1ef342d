//! The office unit of work on PostgreSQL: one transaction on one pooled connection. Office
//! commands lock the single `office_clock` row first, which serialises them across replicas:
//! feed cursors become visible in the order they were taken; then the stops a command touches,
//! in sorted id order (the order pushes lock them in). The unit only reads and writes what the
//! office algorithm asks. The push unit is in `push_unit.rs`.

use super::{PgError, PgResult, PgStore, enum_str, id, json, signed, unsigned};
use crate::merge::{KnownIntent, StopRecord};
use crate::store::{
    EscalationRecord, OfficeEventRow, OfficeUnit, OfficeWork, OfficeWrite, StoreResult,
};
use deadpool_postgres::Object;
use doorstep_shared::event::RouteAssigned;
use doorstep_shared::{CourierId, EscalationId, HlcStamp, RouteId, StopId, StopState};

impl PgStore {
    /// Runs `f` in one transaction on one pooled connection: commits when it returns `Ok`,
    /// rolls back otherwise (a connection whose rollback fails is dropped, never reused).
    pub(super) fn transaction<U>(
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

struct PgOffice<'s> {
    store: &'s PgStore,
    client: Object,
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
pub(super) fn saturating(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
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
                    // The plan's parcels per stop, as this version names them.
                    let (mut stops, mut parcels, mut of) = (Vec::new(), Vec::new(), Vec::new());
                    for s in &plan.stops {
                        stops.push(s.stop_id.to_string());
                        for p in &s.parcels {
                            parcels.push(p.as_str().to_owned());
                            of.push(s.stop_id.to_string());
                        }
                    }
                    c.execute(
                        "DELETE FROM stop_parcels WHERE stop_id = ANY($1)",
                        &[&stops],
                    )
                    .await?;
                    c.execute(
                        "INSERT INTO stop_parcels (parcel, stop_id)
                         SELECT * FROM UNNEST($1::text[], $2::text[]) ON CONFLICT DO NOTHING",
                        &[&parcels, &of],
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
