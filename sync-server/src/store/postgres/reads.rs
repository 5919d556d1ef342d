//! Reads: the pull feed, the device's route, and the dispatcher's views.

use super::{PgError, PgResult, PgStore, enum_from, id, json, opt_id, signed, unsigned};
use crate::store::{FirstAttemptStats, RouteAccess, StoreError, StoreResult};
use doorstep_shared::event::{EventPayload, RouteAssigned};
use doorstep_shared::protocol::{
    Change, CourierSummary, DeviceHealth, DeviceQueueReport, Escalation, PushStatus, RouteSummary,
    StopDetail, StoredEvent,
};
use doorstep_shared::{CourierId, DeviceId, HlcStamp, RouteId, StopId, StopState};
use std::collections::HashMap;
use tokio_postgres::Row;

pub(super) fn decode_state(bytes: &[u8]) -> PgResult<StopState> {
    StopState::from_bytes(bytes).map_err(|e| PgError::Data(e.to_string()))
}

pub(super) fn hlc(r: &Row, wall: usize, logical: usize) -> PgResult<HlcStamp> {
    let logical: i64 = r.try_get(logical)?;
    Ok(HlcStamp {
        wall_ms: unsigned(r.try_get(wall)?)?,
        logical: u32::try_from(logical)
            .map_err(|_| PgError::Data(format!("bad hlc logical {logical}")))?,
    })
}

pub(super) const STORED_EVENT_COLUMNS: &str =
    "event_id, device_id, device_seq, intent_key, device_time_ms,
    received_at_ms, clock_offset_ms, hlc_wall, hlc_logical, status, code, payload";

/// One `events` row selected with [`STORED_EVENT_COLUMNS`].
pub(super) fn stored_event(r: &Row) -> PgResult<StoredEvent> {
    let status: String = r.try_get(9)?;
    let code: Option<String> = r.try_get(10)?;
    Ok(StoredEvent {
        event_id: id(r.try_get(0)?)?,
        device_id: opt_id(r.try_get(1)?)?,
        device_seq: r.try_get::<_, Option<i64>>(2)?.map(unsigned).transpose()?,
        intent_key: r.try_get(3)?,
        device_time_ms: r.try_get::<_, Option<i64>>(4)?.map(unsigned).transpose()?,
        received_at_ms: unsigned(r.try_get(5)?)?,
        clock_offset_ms: r.try_get(6)?,
        hlc: hlc(r, 7, 8)?,
        status: enum_from(&status).unwrap_or(PushStatus::Applied),
        code: code.and_then(|c| enum_from(&c)),
        payload: json(r.try_get(11)?)?,
    })
}

fn ids<T: std::str::FromStr>(v: Vec<String>) -> PgResult<Vec<T>> {
    v.iter().map(|s| id(s)).collect()
}

/// The folded state of each of `stops` that exists, by stop id.
pub(super) async fn states_of(
    c: &tokio_postgres::Client,
    stops: &[String],
) -> PgResult<HashMap<String, StopState>> {
    let rows = c
        .query(
            "SELECT stop_id, state FROM stops WHERE stop_id = ANY($1)",
            &[&stops],
        )
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get::<_, String>(0)?, decode_state(r.try_get(1)?)?)))
        .collect()
}

impl PgStore {
    /// Office changes after `cursor` in cursor order. Assumes feed writers are serialised (see
    /// the `feed` table): a cursor that commits late would otherwise be skipped by a reader that
    /// already moved past it.
    pub(super) fn pull_impl(
        &self,
        courier: CourierId,
        cursor: u64,
        limit: u32,
    ) -> StoreResult<(Vec<Change>, bool)> {
        self.run(async |c| {
            let rows = c
                .query(
                    "SELECT f.cursor, e.event_id, e.hlc_wall, e.hlc_logical, e.received_at_ms, e.payload
                     FROM feed f JOIN events e ON e.log_seq = f.log_seq
                     WHERE f.courier_id = $1 AND f.cursor > $2 ORDER BY f.cursor LIMIT $3",
                    &[&courier.to_string(), &signed(cursor)?, &(i64::from(limit) + 1)],
                )
                .await?;
            let mut changes = rows
                .iter()
                .map(|r| {
                    Ok(Change {
                        cursor: unsigned(r.try_get(0)?)?,
                        event_id: id(r.try_get(1)?)?,
                        hlc: hlc(r, 2, 3)?,
                        recorded_at_ms: unsigned(r.try_get(4)?)?,
                        payload: json::<EventPayload>(r.try_get(5)?)?,
                    })
                })
                .collect::<PgResult<Vec<_>>>()?;
            let has_more = changes.len() > limit as usize;
            changes.truncate(limit as usize);
            Ok((changes, has_more))
        })
    }

    pub(super) fn latest_cursor_impl(&self) -> StoreResult<u64> {
        self.run(async |c| {
            let row = c
                .query_one("SELECT COALESCE(MAX(cursor), 0) FROM feed", &[])
                .await?;
            unsigned(row.try_get(0)?)
        })
    }

    pub(super) fn route_for_courier_impl(
        &self,
        courier: CourierId,
        route: RouteId,
    ) -> StoreResult<RouteAccess> {
        self.run(async |c| {
            let row = c
                .query_opt(
                    "SELECT courier_id, plan_json FROM routes WHERE route_id = $1",
                    &[&route.to_string()],
                )
                .await?;
            Ok(match row {
                None => RouteAccess::NotFound,
                Some(r) if r.try_get::<_, &str>(0)? != courier.to_string() => {
                    RouteAccess::Forbidden
                }
                Some(r) => RouteAccess::Ok(Box::new(json(r.try_get(1)?)?)),
            })
        })
    }

    pub(super) fn route_owner_impl(&self, route: RouteId) -> StoreResult<Option<CourierId>> {
        self.run(async |c| {
            let row = c
                .query_opt(
                    "SELECT courier_id FROM routes WHERE route_id = $1",
                    &[&route.to_string()],
                )
                .await?;
            row.map(|r| id(r.try_get(0)?)).transpose()
        })
    }

    /// Routes and devices are listed in id order (UUIDv7: creation order).
    pub(super) fn couriers_impl(&self) -> StoreResult<Vec<CourierSummary>> {
        self.run(async |c| {
            let rows = c
                .query(
                    "SELECT c.courier_id, c.name,
                        ARRAY(SELECT route_id FROM routes r WHERE r.courier_id = c.courier_id ORDER BY route_id),
                        ARRAY(SELECT device_id FROM devices d WHERE d.courier_id = c.courier_id ORDER BY device_id),
                        (SELECT COUNT(*) FROM stops s JOIN routes r ON r.route_id = s.route_id
                          WHERE r.courier_id = c.courier_id),
                        (SELECT COUNT(*) FROM stops s JOIN routes r ON r.route_id = s.route_id
                          WHERE r.courier_id = c.courier_id AND s.terminal)
                     FROM couriers c ORDER BY c.name",
                    &[],
                )
                .await?;
            rows.iter()
                .map(|r| {
                    Ok(CourierSummary {
                        courier_id: id(r.try_get(0)?)?,
                        name: r.try_get(1)?,
                        routes: ids(r.try_get(2)?)?,
                        devices: ids(r.try_get(3)?)?,
                        stops_total: unsigned(r.try_get(4)?)?,
                        stops_done: unsigned(r.try_get(5)?)?,
                    })
                })
                .collect()
        })
    }

    pub(super) fn device_health_impl(&self) -> StoreResult<Vec<DeviceHealth>> {
        self.run(async |c| {
            let rows = c
                .query(
                    "SELECT device_id, courier_id, name, last_contact_ms, last_applied_seq,
                            clock_offset_ms, clock_skew_flagged, events_rejected,
                            events_conflicted, queue_json
                     FROM devices ORDER BY name",
                    &[],
                )
                .await?;
            rows.iter()
                .map(|r| {
                    let queue: Option<&str> = r.try_get(9)?;
                    Ok(DeviceHealth {
                        device_id: id(r.try_get(0)?)?,
                        courier_id: id(r.try_get(1)?)?,
                        name: r.try_get(2)?,
                        last_contact_ms: r
                            .try_get::<_, Option<i64>>(3)?
                            .map(unsigned)
                            .transpose()?,
                        last_applied_seq: unsigned(r.try_get(4)?)?,
                        clock_offset_ms: r.try_get(5)?,
                        clock_skew_flagged: r.try_get(6)?,
                        events_rejected: unsigned(r.try_get(7)?)?,
                        events_conflicted: unsigned(r.try_get(8)?)?,
                        queue: queue.map(json::<DeviceQueueReport>).transpose()?,
                    })
                })
                .collect()
        })
    }

    /// Every route with the view of each planned stop (a stop without a row yet is planned).
    pub(super) fn routes_impl(&self) -> StoreResult<Vec<RouteSummary>> {
        self.run(async |c| {
            let rows = c
                .query("SELECT plan_json FROM routes ORDER BY day, route_id", &[])
                .await?;
            let plans = rows
                .iter()
                .map(|r| json::<RouteAssigned>(r.try_get(0)?))
                .collect::<PgResult<Vec<_>>>()?;
            let wanted: Vec<String> = plans
                .iter()
                .flat_map(|p| p.stops.iter().map(|s| s.stop_id.to_string()))
                .collect();
            let mut states = states_of(c, &wanted).await?;
            Ok(plans
                .into_iter()
                .map(|plan| RouteSummary {
                    stops: plan
                        .stops
                        .iter()
                        .map(|s| {
                            states
                                .remove(&s.stop_id.to_string())
                                .unwrap_or_else(|| StopState::new(s.stop_id))
                                .view()
                        })
                        .collect(),
                    route_id: plan.route_id,
                    courier_id: plan.courier_id,
                    day: plan.day,
                    version: plan.version,
                })
                .collect())
        })
    }

    pub(super) fn stop_state_impl(&self, stop: StopId) -> StoreResult<Option<StopState>> {
        self.run(async |c| {
            let row = c
                .query_opt(
                    "SELECT state FROM stops WHERE stop_id = $1",
                    &[&stop.to_string()],
                )
                .await?;
            row.map(|r| decode_state(r.try_get(0)?)).transpose()
        })
    }

    /// The stop's state and its log, read in one snapshot.
    pub(super) fn stop_detail_impl(&self, stop: StopId) -> StoreResult<Option<StopDetail>> {
        self.run(async |c| {
            let tx = c
                .build_transaction()
                .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .await?;
            let row = tx
                .query_opt(
                    "SELECT state FROM stops WHERE stop_id = $1",
                    &[&stop.to_string()],
                )
                .await?;
            let Some(row) = row else { return Ok(None) };
            let state = decode_state(row.try_get(0)?)?;
            let events = tx
                .query(
                    &format!(
                        "SELECT {STORED_EVENT_COLUMNS} FROM events WHERE stop_id = $1 ORDER BY log_seq"
                    ),
                    &[&stop.to_string()],
                )
                .await?
                .iter()
                .map(stored_event)
                .collect::<PgResult<Vec<_>>>()?;
            tx.commit().await?;
            Ok(Some(StopDetail {
                view: state.view(),
                events,
            }))
        })
    }

    pub(super) fn device_events_impl(
        &self,
        device: DeviceId,
        after_seq: u64,
        limit: u32,
    ) -> StoreResult<Vec<StoredEvent>> {
        self.run(async |c| {
            c.query(
                &format!(
                    "SELECT {STORED_EVENT_COLUMNS} FROM events
                     WHERE device_id = $1 AND device_seq > $2 ORDER BY device_seq LIMIT $3"
                ),
                &[&device.to_string(), &signed(after_seq)?, &i64::from(limit)],
            )
            .await?
            .iter()
            .map(stored_event)
            .collect()
        })
    }

    pub(super) fn escalations_impl(&self, open_only: bool) -> StoreResult<Vec<Escalation>> {
        self.run(async |c| {
            let rows = c
                .query(
                    "SELECT escalation_id, kind, priority, stop_id, device_id, event_id,
                            opened_at_ms, resolved, detail
                     FROM escalations WHERE (NOT $1 OR NOT resolved)
                     ORDER BY resolved, priority, opened_at_ms",
                    &[&open_only],
                )
                .await?;
            rows.iter()
                .map(|r| {
                    let kind: &str = r.try_get(1)?;
                    let priority: i64 = r.try_get(2)?;
                    Ok(Escalation {
                        escalation_id: id(r.try_get(0)?)?,
                        kind: enum_from(kind).ok_or_else(|| {
                            PgError::Data(format!("bad escalation kind {kind:?}"))
                        })?,
                        priority: u8::try_from(priority)
                            .map_err(|_| PgError::Data(format!("bad priority {priority}")))?,
                        stop_id: opt_id(r.try_get(3)?)?,
                        device_id: opt_id(r.try_get(4)?)?,
                        event_id: opt_id(r.try_get(5)?)?,
                        opened_at_ms: unsigned(r.try_get(6)?)?,
                        resolved: r.try_get(7)?,
                        detail: r.try_get(8)?,
                    })
                })
                .collect()
        })
    }

    pub(super) fn first_attempt_stats_impl(&self) -> StoreResult<FirstAttemptStats> {
        let (total, delivered, absent) = self.run(async |c| {
            let row = c
                .query_one(
                    "SELECT COUNT(*),
                            COUNT(*) FILTER (WHERE payload::jsonb #>> '{payload,outcome,result}' = 'delivered')
                     FROM events WHERE kind = 'delivery_attempted' AND status = 'applied'
                       AND payload::jsonb #> '{payload,attempt}' = '1'::jsonb",
                    &[],
                )
                .await?;
            // "Customer absent" first attempts are judged by their stop's presence report.
            let absent = c
                .query(
                    "SELECT DISTINCT stop_id FROM events
                     WHERE kind = 'delivery_attempted' AND status = 'applied' AND stop_id IS NOT NULL
                       AND payload::jsonb #> '{payload,attempt}' = '1'::jsonb
                       AND payload::jsonb #>> '{payload,outcome,reason}' = 'customer_absent'",
                    &[],
                )
                .await?
                .iter()
                .map(|r| id::<StopId>(r.try_get(0)?))
                .collect::<PgResult<Vec<_>>>()?;
            Ok((unsigned(row.try_get(0)?)?, unsigned(row.try_get(1)?)?, absent))
        })?;
        // Outside `run`: the presence report makes store calls of its own.
        let mut no_real = 0;
        for stop in absent {
            if self.first_attempt_is_no_real(stop)? {
                no_real += 1;
            }
        }
        Ok(FirstAttemptStats {
            first_attempts: total,
            delivered,
            no_real,
        })
    }

    pub(super) fn ping_impl(&self) -> StoreResult<()> {
        let one: i32 = self.run(async |c| Ok(c.query_one("SELECT 1", &[]).await?.try_get(0)?))?;
        if one == 1 {
            Ok(())
        } else {
            Err(StoreError::Fatal("SELECT 1 returned another value".into()))
        }
    }
}
