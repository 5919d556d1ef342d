//! Reads: the pull feed, the device's route, and the dispatcher's views.

use super::SqlResult;
use super::{SqliteStore, enum_from, id, json};
use crate::store::{FirstAttemptStats, RouteAccess, StoreError};
use doorstep_shared::event::{EventPayload, RouteAssigned};
use doorstep_shared::protocol::{
    Change, CourierSummary, DeviceHealth, DeviceQueueReport, Escalation, PushStatus, RouteSummary,
    StopDetail, StoredEvent,
};
use doorstep_shared::{CourierId, DeviceId, HlcStamp, RouteId, StopId, StopState};
use rusqlite::{OptionalExtension, params};

fn decode_state(bytes: Vec<u8>) -> rusqlite::Result<StopState> {
    StopState::from_bytes(&bytes).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Blob, Box::new(e))
    })
}

fn split_ids<T: std::str::FromStr>(s: Option<String>) -> rusqlite::Result<Vec<T>> {
    s.unwrap_or_default()
        .split(',')
        .filter(|x| !x.is_empty())
        .map(|x| id(x.to_owned()))
        .collect()
}

pub(super) const STORED_EVENT_COLUMNS: &str =
    "event_id, device_id, device_seq, intent_key, device_time_ms,
    received_at_ms, clock_offset_ms, hlc_wall, hlc_logical, status, code, payload";

/// One `events` row selected with [`STORED_EVENT_COLUMNS`].
pub(super) fn stored_event(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredEvent> {
    let status: String = r.get(9)?;
    let code: Option<String> = r.get(10)?;
    Ok(StoredEvent {
        event_id: id(r.get(0)?)?,
        device_id: r.get::<_, Option<String>>(1)?.map(id).transpose()?,
        device_seq: r.get::<_, Option<i64>>(2)?.map(|v| v as u64),
        intent_key: r.get(3)?,
        device_time_ms: r.get::<_, Option<i64>>(4)?.map(|v| v as u64),
        received_at_ms: r.get::<_, i64>(5)? as u64,
        clock_offset_ms: r.get(6)?,
        hlc: HlcStamp {
            wall_ms: r.get::<_, i64>(7)? as u64,
            logical: r.get(8)?,
        },
        status: enum_from(&status).unwrap_or(PushStatus::Applied),
        code: code.and_then(|c| enum_from(&c)),
        payload: json(&r.get::<_, String>(11)?)?,
    })
}

impl SqliteStore {
    pub(crate) fn pull_impl(
        &self,
        courier: CourierId,
        cursor: u64,
        limit: u32,
    ) -> SqlResult<(Vec<Change>, bool)> {
        let conn = self.read();
        let mut q = conn.prepare_cached(
            "SELECT f.cursor, e.event_id, e.hlc_wall, e.hlc_logical, e.received_at_ms, e.payload
             FROM feed f JOIN events e ON e.log_seq = f.log_seq
             WHERE f.courier_id = ?1 AND f.cursor > ?2 ORDER BY f.cursor LIMIT ?3",
        )?;
        let mut changes = q
            .query_map(
                params![courier.to_string(), cursor as i64, i64::from(limit) + 1],
                |r| {
                    Ok(Change {
                        cursor: r.get::<_, i64>(0)? as u64,
                        event_id: id(r.get(1)?)?,
                        hlc: HlcStamp {
                            wall_ms: r.get::<_, i64>(2)? as u64,
                            logical: r.get(3)?,
                        },
                        recorded_at_ms: r.get::<_, i64>(4)? as u64,
                        payload: json::<EventPayload>(&r.get::<_, String>(5)?)?,
                    })
                },
            )?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let has_more = changes.len() > limit as usize;
        changes.truncate(limit as usize);
        Ok((changes, has_more))
    }

    pub(crate) fn latest_cursor_impl(&self) -> SqlResult<u64> {
        let c: Option<i64> = self
            .read()
            .query_row("SELECT MAX(cursor) FROM feed", [], |r| r.get(0))?;
        Ok(c.unwrap_or(0) as u64)
    }

    pub(crate) fn route_for_courier_impl(
        &self,
        courier: CourierId,
        route: RouteId,
    ) -> SqlResult<RouteAccess> {
        let row: Option<(String, String)> = self
            .read()
            .query_row(
                "SELECT courier_id, plan_json FROM routes WHERE route_id = ?1",
                [route.to_string()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        Ok(match row {
            None => RouteAccess::NotFound,
            Some((c, _)) if c != courier.to_string() => RouteAccess::Forbidden,
            Some((_, plan)) => RouteAccess::Ok(Box::new(json(&plan)?)),
        })
    }

    pub(crate) fn couriers_impl(&self) -> SqlResult<Vec<CourierSummary>> {
        let conn = self.read();
        let mut q = conn.prepare_cached(
            "SELECT c.courier_id, c.name,
                (SELECT group_concat(route_id) FROM routes r WHERE r.courier_id = c.courier_id),
                (SELECT group_concat(device_id) FROM devices d WHERE d.courier_id = c.courier_id),
                (SELECT COUNT(*) FROM stops s JOIN routes r ON r.route_id = s.route_id WHERE r.courier_id = c.courier_id),
                (SELECT COUNT(*) FROM stops s JOIN routes r ON r.route_id = s.route_id WHERE r.courier_id = c.courier_id AND s.terminal = 1)
             FROM couriers c ORDER BY c.name",
        )?;
        let rows = q
            .query_map([], |r| {
                Ok(CourierSummary {
                    courier_id: id(r.get(0)?)?,
                    name: r.get(1)?,
                    routes: split_ids(r.get(2)?)?,
                    devices: split_ids(r.get(3)?)?,
                    stops_total: r.get::<_, i64>(4)? as u64,
                    stops_done: r.get::<_, i64>(5)? as u64,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    pub(crate) fn device_health_impl(&self) -> SqlResult<Vec<DeviceHealth>> {
        let conn = self.read();
        let mut q = conn.prepare_cached(
            "SELECT device_id, courier_id, name, last_contact_ms, last_applied_seq, clock_offset_ms,
                    clock_skew_flagged, events_rejected, events_conflicted, queue_json
             FROM devices ORDER BY name",
        )?;
        let rows = q
            .query_map([], |r| {
                let queue: Option<String> = r.get(9)?;
                Ok(DeviceHealth {
                    device_id: id(r.get(0)?)?,
                    courier_id: id(r.get(1)?)?,
                    name: r.get(2)?,
                    last_contact_ms: r.get::<_, Option<i64>>(3)?.map(|v| v as u64),
                    last_applied_seq: r.get::<_, i64>(4)? as u64,
                    clock_offset_ms: r.get(5)?,
                    clock_skew_flagged: r.get(6)?,
                    events_rejected: r.get::<_, i64>(7)? as u64,
                    events_conflicted: r.get::<_, i64>(8)? as u64,
                    queue: queue.map(|q| json::<DeviceQueueReport>(&q)).transpose()?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    pub(crate) fn routes_impl(&self) -> SqlResult<Vec<RouteSummary>> {
        let conn = self.read();
        let mut routes =
            conn.prepare_cached("SELECT plan_json FROM routes ORDER BY day, route_id")?;
        let plans = routes
            .query_map([], |r| json::<RouteAssigned>(&r.get::<_, String>(0)?))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let mut states = conn.prepare_cached("SELECT state FROM stops WHERE stop_id = ?1")?;
        let mut out = Vec::with_capacity(plans.len());
        for plan in plans {
            let mut stops = Vec::with_capacity(plan.stops.len());
            for s in &plan.stops {
                let state = states
                    .query_row([s.stop_id.to_string()], |r| decode_state(r.get(0)?))
                    .optional()?
                    .unwrap_or_else(|| StopState::new(s.stop_id));
                stops.push(state.view());
            }
            out.push(RouteSummary {
                route_id: plan.route_id,
                courier_id: plan.courier_id,
                day: plan.day,
                version: plan.version,
                stops,
            });
        }
        Ok(out)
    }

    pub(crate) fn stop_state_impl(&self, stop: StopId) -> SqlResult<Option<StopState>> {
        Ok(self
            .read()
            .query_row(
                "SELECT state FROM stops WHERE stop_id = ?1",
                [stop.to_string()],
                |r| decode_state(r.get(0)?),
            )
            .optional()?)
    }

    pub(crate) fn stop_detail_impl(&self, stop: StopId) -> SqlResult<Option<StopDetail>> {
        let conn = self.read();
        let state: Option<StopState> = conn
            .query_row(
                "SELECT state FROM stops WHERE stop_id = ?1",
                [stop.to_string()],
                |r| decode_state(r.get(0)?),
            )
            .optional()?;
        let Some(state) = state else { return Ok(None) };
        let mut q = conn.prepare_cached(&format!(
            "SELECT {STORED_EVENT_COLUMNS} FROM events WHERE stop_id = ?1 ORDER BY log_seq"
        ))?;
        let events = q
            .query_map([stop.to_string()], stored_event)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(Some(StopDetail {
            view: state.view(),
            events,
        }))
    }

    pub(crate) fn device_events_impl(
        &self,
        device: DeviceId,
        after_seq: u64,
        limit: u32,
    ) -> SqlResult<Vec<StoredEvent>> {
        let conn = self.read();
        let mut q = conn.prepare_cached(&format!(
            "SELECT {STORED_EVENT_COLUMNS} FROM events
             WHERE device_id = ?1 AND device_seq > ?2 ORDER BY device_seq LIMIT ?3"
        ))?;
        let rows = q
            .query_map(
                params![device.to_string(), after_seq as i64, limit],
                stored_event,
            )?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    pub(crate) fn escalations_impl(&self, open_only: bool) -> SqlResult<Vec<Escalation>> {
        let conn = self.read();
        let mut q = conn.prepare_cached(
            "SELECT escalation_id, kind, priority, stop_id, device_id, event_id, opened_at_ms, resolved, detail
             FROM escalations WHERE (?1 = 0 OR resolved = 0) ORDER BY resolved, priority, opened_at_ms",
        )?;
        let rows = q
            .query_map([open_only], |r| {
                let kind: String = r.get(1)?;
                Ok(Escalation {
                    escalation_id: id(r.get(0)?)?,
                    kind: enum_from(&kind).ok_or_else(|| {
                        rusqlite::Error::FromSqlConversionFailure(
                            1,
                            rusqlite::types::Type::Text,
                            kind.clone().into(),
                        )
                    })?,
                    priority: r.get(2)?,
                    stop_id: r.get::<_, Option<String>>(3)?.map(id).transpose()?,
                    device_id: r.get::<_, Option<String>>(4)?.map(id).transpose()?,
                    event_id: r.get::<_, Option<String>>(5)?.map(id).transpose()?,
                    opened_at_ms: r.get::<_, i64>(6)? as u64,
                    resolved: r.get(7)?,
                    detail: r.get(8)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    pub(crate) fn first_attempt_stats_impl(&self) -> SqlResult<FirstAttemptStats> {
        let (total, delivered): (i64, i64) = self.read().query_row(
            "SELECT COUNT(*), COALESCE(SUM(json_extract(payload, '$.payload.outcome.result') = 'delivered'), 0)
             FROM events WHERE kind = 'delivery_attempted' AND status = 'applied'
               AND json_extract(payload, '$.payload.attempt') = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        // "Customer absent" first attempts are judged by their stop's presence report.
        let absent: Vec<String> = self
            .read()
            .prepare_cached(
                "SELECT DISTINCT stop_id FROM events
                 WHERE kind = 'delivery_attempted' AND status = 'applied' AND stop_id IS NOT NULL
                   AND json_extract(payload, '$.payload.attempt') = 1
                   AND json_extract(payload, '$.payload.outcome.reason') = 'customer_absent'",
            )?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let mut no_real = 0;
        for stop in absent {
            if self.first_attempt_is_no_real(id(stop)?)? {
                no_real += 1;
            }
        }
        Ok(FirstAttemptStats {
            first_attempts: total as u64,
            delivered: delivered as u64,
            no_real,
        })
    }

    pub(crate) fn ping_impl(&self) -> SqlResult<()> {
        let one: i64 = self.read().query_row("SELECT 1", [], |r| r.get(0))?;
        if one == 1 {
            Ok(())
        } else {
            Err(StoreError::Fatal("SELECT 1 returned another value".into()).into())
        }
    }
}
