//! Dashboard reads, shaped for a big fleet: the fleet snapshot reads each table once (no
//! per-stop state decoding: the derived status column is enough), a route's stops are read in
//! one query, and the metrics read the event log over a time window. What the rows become is
//! decided once, in [`crate::store::dashboard`].

use super::{PgResult, PgStore, id, json, signed, unsigned};
use crate::store::StoreResult;
use crate::store::dashboard::{
    CourierRow, FleetPlan, MetricRow, MetricWindow, aggregate_metrics, fleet_snapshot,
    parse_status, route_stops,
};
use doorstep_shared::dashboard::{DashboardMetrics, FleetSnapshot, RouteDetail, StopContext};
use doorstep_shared::event::RouteAssigned;
use doorstep_shared::presence::AttemptClass;
use doorstep_shared::{RouteId, StopId, StopStatus};
use std::collections::HashMap;

/// The route's plan and its courier's name.
async fn load_plan(
    c: &tokio_postgres::Client,
    route: RouteId,
) -> PgResult<Option<(RouteAssigned, String)>> {
    let row = c
        .query_opt(
            "SELECT r.plan_json, c.name FROM routes r JOIN couriers c ON c.courier_id = r.courier_id
             WHERE r.route_id = $1",
            &[&route.to_string()],
        )
        .await?;
    row.map(|r| Ok((json(r.try_get(0)?)?, r.try_get(1)?)))
        .transpose()
}

/// Derived statuses of the given stops (all stops when `None`).
async fn statuses(
    c: &tokio_postgres::Client,
    stops: Option<Vec<String>>,
) -> PgResult<HashMap<StopId, StopStatus>> {
    let rows = match stops {
        Some(ids) => {
            c.query(
                "SELECT stop_id, status FROM stops WHERE stop_id = ANY($1)",
                &[&ids],
            )
            .await?
        }
        None => c.query("SELECT stop_id, status FROM stops", &[]).await?,
    };
    rows.iter()
        .map(|r| Ok((id(r.try_get(0)?)?, parse_status(r.try_get(1)?))))
        .collect()
}

async fn stops_of(
    c: &tokio_postgres::Client,
    plan: &RouteAssigned,
) -> PgResult<Vec<doorstep_shared::dashboard::RouteStop>> {
    let ids = plan.stops.iter().map(|s| s.stop_id.to_string()).collect();
    Ok(route_stops(plan, &statuses(c, Some(ids)).await?))
}

async fn open_escalations(c: &tokio_postgres::Client) -> PgResult<u64> {
    let row = c
        .query_one("SELECT COUNT(*) FROM escalations WHERE NOT resolved", &[])
        .await?;
    unsigned(row.try_get(0)?)
}

impl PgStore {
    pub(super) fn fleet_impl(&self, now_ms: u64) -> StoreResult<FleetSnapshot> {
        let devices = self.device_health_impl()?;
        self.run(async |c| {
            let statuses = statuses(c, None).await?;
            let plans = c
                .query("SELECT plan_json FROM routes ORDER BY day DESC", &[])
                .await?
                .iter()
                .map(|r| json::<FleetPlan>(r.try_get(0)?))
                .collect::<PgResult<Vec<_>>>()?;
            let couriers = c
                .query(
                    "SELECT courier_id, name, region FROM couriers ORDER BY name",
                    &[],
                )
                .await?
                .iter()
                .map(|r| {
                    Ok(CourierRow {
                        courier_id: id(r.try_get(0)?)?,
                        name: r.try_get(1)?,
                        region: r.try_get(2)?,
                    })
                })
                .collect::<PgResult<Vec<_>>>()?;
            let open = open_escalations(c).await?;
            Ok(fleet_snapshot(
                now_ms, couriers, plans, &statuses, devices, open,
            ))
        })
    }

    pub(super) fn route_detail_impl(&self, route: RouteId) -> StoreResult<Option<RouteDetail>> {
        self.run(async |c| {
            let Some((plan, courier_name)) = load_plan(c, route).await? else {
                return Ok(None);
            };
            let stops = stops_of(c, &plan).await?;
            Ok(Some(RouteDetail {
                route_id: plan.route_id,
                courier_id: plan.courier_id,
                courier_name,
                day: plan.day,
                version: plan.version,
                depot: plan.depot,
                stops,
            }))
        })
    }

    pub(super) fn stop_context_impl(&self, stop: StopId) -> StoreResult<Option<StopContext>> {
        self.run(async |c| {
            let row = c
                .query_opt(
                    "SELECT route_id FROM stops WHERE stop_id = $1",
                    &[&stop.to_string()],
                )
                .await?;
            let Some(route) = row.map(|r| id::<RouteId>(r.try_get(0)?)).transpose()? else {
                return Ok(None);
            };
            let Some((mut plan, courier_name)) = load_plan(c, route).await? else {
                return Ok(None);
            };
            plan.stops.retain(|s| s.stop_id == stop);
            let Some(found) = stops_of(c, &plan).await?.pop() else {
                return Ok(None);
            };
            Ok(Some(StopContext {
                stop: found,
                route_id: plan.route_id,
                courier_id: plan.courier_id,
                courier_name,
            }))
        })
    }

    fn metric_rows(&self, since_ms: u64) -> StoreResult<Vec<MetricRow>> {
        self.run(async |c| {
            let rows = c
                .query(
                    "SELECT e.status, e.code, e.received_at_ms, e.device_time_ms, e.clock_offset_ms,
                            c.name, c.region,
                            CASE WHEN e.kind = 'delivery_attempted'
                                 THEN (e.payload::jsonb #>> '{payload,attempt}')::bigint END,
                            CASE WHEN e.kind = 'delivery_attempted'
                                 THEN e.payload::jsonb #>> '{payload,outcome,result}' END,
                            CASE WHEN e.kind = 'delivery_attempted'
                                 THEN e.payload::jsonb #>> '{payload,outcome,reason}' END,
                            e.stop_id
                     FROM events e
                     JOIN devices d ON d.device_id = e.device_id
                     JOIN couriers c ON c.courier_id = d.courier_id
                     WHERE e.device_id IS NOT NULL AND e.received_at_ms >= $1
                     ORDER BY e.log_seq",
                    &[&signed(since_ms)?],
                )
                .await?;
            rows.iter()
                .map(|r| {
                    Ok(MetricRow {
                        status: r.try_get(0)?,
                        code: r.try_get(1)?,
                        received_at_ms: unsigned(r.try_get(2)?)?,
                        device_time_ms: r.try_get(3)?,
                        clock_offset_ms: r.try_get(4)?,
                        courier: r.try_get(5)?,
                        region: r.try_get(6)?,
                        attempt: r.try_get(7)?,
                        result: r.try_get(8)?,
                        reason: r.try_get(9)?,
                        stop_id: r
                            .try_get::<_, Option<&str>>(10)?
                            .map(id::<StopId>)
                            .transpose()?,
                    })
                })
                .collect()
        })
    }

    /// Whether the first attempt at `stop` is classed as no real attempt by its presence report.
    pub(super) fn first_attempt_is_no_real(&self, stop: StopId) -> StoreResult<bool> {
        let report = crate::presence::presence_report(self, stop)?;
        Ok(report
            .and_then(|r| r.attempts.into_iter().find(|a| a.attempt == 1))
            .is_some_and(|a| a.class == AttemptClass::NoRealAttempt))
    }

    pub(super) fn dashboard_metrics_impl(
        &self,
        now_ms: u64,
        bucket_ms: u64,
        buckets: u32,
    ) -> StoreResult<DashboardMetrics> {
        let window = MetricWindow::ending_at(now_ms, bucket_ms, buckets);
        let rows = self.metric_rows(window.since_ms)?;
        let open = self.run(async |c| open_escalations(c).await)?;
        aggregate_metrics(now_ms, window, &rows, open, |stop| {
            self.first_attempt_is_no_real(stop)
        })
    }
}
