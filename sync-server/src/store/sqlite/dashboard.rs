//! Dashboard reads, shaped for a big fleet: the fleet snapshot reads each table once (no
//! per-stop state decoding: the derived status column is enough), a route's stops are read on
//! demand, and the metrics read the event log over a time window. What the rows become is
//! decided once, in [`crate::store::dashboard`].

use super::{SqlResult, SqliteStore, id, json};
use crate::store::dashboard::{
    CourierRow, FleetPlan, MetricRow, MetricWindow, aggregate_metrics, fleet_snapshot,
    parse_status, route_stops,
};
use doorstep_shared::dashboard::{
    DashboardMetrics, FleetSnapshot, RouteDetail, RouteStop, StopContext,
};
use doorstep_shared::event::RouteAssigned;
use doorstep_shared::presence::AttemptClass;
use doorstep_shared::{RouteId, StopId, StopStatus};
use rusqlite::{OptionalExtension, params};
use std::collections::HashMap;

impl SqliteStore {
    fn statuses(&self) -> SqlResult<HashMap<StopId, StopStatus>> {
        let conn = self.read();
        let mut q = conn.prepare_cached("SELECT stop_id, status FROM stops")?;
        let rows = q
            .query_map([], |r| {
                Ok((id(r.get(0)?)?, parse_status(&r.get::<_, String>(1)?)))
            })?
            .collect::<rusqlite::Result<HashMap<_, _>>>()?;
        Ok(rows)
    }

    fn open_escalations(&self) -> SqlResult<u64> {
        let open: i64 = self.read().query_row(
            "SELECT COUNT(*) FROM escalations WHERE resolved = 0",
            [],
            |r| r.get(0),
        )?;
        Ok(u64::try_from(open).unwrap_or(0))
    }

    pub(crate) fn fleet_impl(&self, now_ms: u64) -> SqlResult<FleetSnapshot> {
        let statuses = self.statuses()?;
        let devices = self.device_health_impl()?;
        let (plans, couriers) = {
            let conn = self.read();
            let mut q = conn.prepare_cached("SELECT plan_json FROM routes ORDER BY day DESC")?;
            let plans = q
                .query_map([], |r| json::<FleetPlan>(&r.get::<_, String>(0)?))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let mut q =
                conn.prepare_cached("SELECT courier_id, name, region FROM couriers ORDER BY name")?;
            let couriers = q
                .query_map([], |r| {
                    Ok(CourierRow {
                        courier_id: id(r.get(0)?)?,
                        name: r.get(1)?,
                        region: r.get(2)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            (plans, couriers)
        };
        let open = self.open_escalations()?;
        Ok(fleet_snapshot(
            now_ms, couriers, plans, &statuses, devices, open,
        ))
    }

    fn plan(&self, route: RouteId) -> SqlResult<Option<(RouteAssigned, String)>> {
        let row: Option<(String, String)> = self
            .read()
            .query_row(
                "SELECT r.plan_json, c.name FROM routes r JOIN couriers c ON c.courier_id = r.courier_id
                 WHERE r.route_id = ?1",
                [route.to_string()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        Ok(match row {
            Some((plan, name)) => Some((json(&plan)?, name)),
            None => None,
        })
    }

    fn route_stops(&self, plan: &RouteAssigned) -> SqlResult<Vec<RouteStop>> {
        let conn = self.read();
        let mut q = conn.prepare_cached("SELECT status FROM stops WHERE stop_id = ?1")?;
        let mut statuses = HashMap::with_capacity(plan.stops.len());
        for s in &plan.stops {
            let status: Option<String> = q
                .query_row([s.stop_id.to_string()], |r| r.get(0))
                .optional()?;
            if let Some(status) = status {
                statuses.insert(s.stop_id, parse_status(&status));
            }
        }
        Ok(route_stops(plan, &statuses))
    }

    pub(crate) fn route_detail_impl(&self, route: RouteId) -> SqlResult<Option<RouteDetail>> {
        let Some((plan, courier_name)) = self.plan(route)? else {
            return Ok(None);
        };
        let stops = self.route_stops(&plan)?;
        Ok(Some(RouteDetail {
            route_id: plan.route_id,
            courier_id: plan.courier_id,
            courier_name,
            day: plan.day,
            version: plan.version,
            depot: plan.depot,
            stops,
        }))
    }

    pub(crate) fn stop_context_impl(&self, stop: StopId) -> SqlResult<Option<StopContext>> {
        let route: Option<String> = self
            .read()
            .query_row(
                "SELECT route_id FROM stops WHERE stop_id = ?1",
                [stop.to_string()],
                |r| r.get(0),
            )
            .optional()?;
        let Some(route) = route.map(id::<RouteId>).transpose()? else {
            return Ok(None);
        };
        let Some((mut plan, courier_name)) = self.plan(route)? else {
            return Ok(None);
        };
        plan.stops.retain(|s| s.stop_id == stop);
        let Some(found) = self.route_stops(&plan)?.pop() else {
            return Ok(None);
        };
        Ok(Some(StopContext {
            stop: found,
            route_id: plan.route_id,
            courier_id: plan.courier_id,
            courier_name,
        }))
    }

    fn metric_rows(&self, since_ms: u64) -> SqlResult<Vec<MetricRow>> {
        let conn = self.read();
        let mut q = conn.prepare_cached(
            "SELECT e.status, e.code, e.received_at_ms, e.device_time_ms, e.clock_offset_ms,
                    c.name, c.region,
                    CASE WHEN e.kind = 'delivery_attempted' THEN json_extract(e.payload, '$.payload.attempt') END,
                    CASE WHEN e.kind = 'delivery_attempted' THEN json_extract(e.payload, '$.payload.outcome.result') END,
                    CASE WHEN e.kind = 'delivery_attempted' THEN json_extract(e.payload, '$.payload.outcome.reason') END,
                    e.stop_id
             FROM events e
             JOIN devices d ON d.device_id = e.device_id
             JOIN couriers c ON c.courier_id = d.courier_id
             WHERE e.device_id IS NOT NULL AND e.received_at_ms >= ?1
             ORDER BY e.log_seq",
        )?;
        let since = i64::try_from(since_ms).unwrap_or(i64::MAX);
        let rows = q
            .query_map(params![since], |r| {
                Ok(MetricRow {
                    status: r.get(0)?,
                    code: r.get(1)?,
                    received_at_ms: u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
                    device_time_ms: r.get(3)?,
                    clock_offset_ms: r.get(4)?,
                    courier: r.get(5)?,
                    region: r.get(6)?,
                    attempt: r.get(7)?,
                    result: r.get(8)?,
                    reason: r.get(9)?,
                    stop_id: r.get::<_, Option<String>>(10)?.map(id).transpose()?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Whether the first attempt at `stop` is classed as no real attempt by its presence report.
    pub(crate) fn first_attempt_is_no_real(&self, stop: StopId) -> SqlResult<bool> {
        let report = crate::presence::presence_report(self, stop)?;
        Ok(report
            .and_then(|r| r.attempts.into_iter().find(|a| a.attempt == 1))
            .is_some_and(|a| a.class == AttemptClass::NoRealAttempt))
    }

    pub(crate) fn dashboard_metrics_impl(
        &self,
        now_ms: u64,
        bucket_ms: u64,
        buckets: u32,
    ) -> SqlResult<DashboardMetrics> {
        let window = MetricWindow::ending_at(now_ms, bucket_ms, buckets);
        let rows = self.metric_rows(window.since_ms)?;
        let open = self.open_escalations()?;
        Ok(aggregate_metrics(now_ms, window, &rows, open, |stop| {
            Ok(self.first_attempt_is_no_real(stop)?)
        })?)
    }
}
