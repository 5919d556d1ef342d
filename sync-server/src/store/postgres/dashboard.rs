//! Dashboard reads, shaped for a big fleet: the fleet snapshot reads each table once (no
//! per-stop state decoding: the derived status column is enough), a route's stops are read in
//! one query, and the metrics are aggregated from the event log over a time window.

use super::{PgResult, PgStore, id, json, signed, unsigned};
use crate::store::StoreResult;
use doorstep_shared::dashboard::{
    AttemptGroup, Count, DashboardMetrics, FleetCourier, FleetSnapshot, MapStatus,
    OFFLINE_AFTER_MS, RouteDetail, RouteStop, StopContext, StopCounts,
};
use doorstep_shared::event::{GeoPoint, RouteAssigned};
use doorstep_shared::presence::AttemptClass;
use doorstep_shared::{CourierId, RouteId, StopId, StopStatus};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};

/// Only the parts of a stored route plan the fleet map needs (the rest is skipped unparsed).
#[derive(Deserialize)]
struct PlanLite {
    route_id: RouteId,
    courier_id: CourierId,
    depot: GeoPoint,
    stops: Vec<StopLite>,
}

#[derive(Deserialize)]
struct StopLite {
    stop_id: StopId,
    location: GeoPoint,
}

/// About a metre: plenty for the map, and it keeps 20,000 points small on the wire.
fn round5(x: f64) -> f64 {
    (x * 1e5).round() / 1e5
}

/// The stored derived status (`''` before the first fold means planned).
fn parse_status(text: &str) -> StopStatus {
    serde_json::from_str(text).unwrap_or(StopStatus::Planned)
}

#[derive(Default)]
struct Acc {
    first: u64,
    first_ok: u64,
    first_no_real: u64,
    failed: u64,
    duplicates: u64,
    late: u64,
    lag_sum_ms: f64,
    lag_n: u64,
}

impl Acc {
    fn group(&self, label: String) -> AttemptGroup {
        AttemptGroup {
            label,
            first_attempts: self.first,
            first_attempts_delivered: self.first_ok,
            first_attempts_no_real: self.first_no_real,
            failed_attempts: self.failed,
            duplicates: self.duplicates,
            late_replays: self.late,
            mean_sync_lag_ms: (self.lag_n > 0).then(|| self.lag_sum_ms / self.lag_n as f64),
        }
    }
}

/// One logged device event, as the metrics need it.
struct Row {
    status: String,
    code: Option<String>,
    received_at_ms: u64,
    device_time_ms: Option<i64>,
    clock_offset_ms: Option<i64>,
    courier: String,
    region: String,
    attempt: Option<i64>,
    result: Option<String>,
    reason: Option<String>,
    stop_id: Option<String>,
}

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

/// The plan's stops with their current status, in plan order.
async fn route_stops(c: &tokio_postgres::Client, plan: &RouteAssigned) -> PgResult<Vec<RouteStop>> {
    let ids: Vec<String> = plan.stops.iter().map(|s| s.stop_id.to_string()).collect();
    let statuses = c
        .query(
            "SELECT stop_id, status FROM stops WHERE stop_id = ANY($1)",
            &[&ids],
        )
        .await?
        .iter()
        .map(|r| Ok((r.try_get::<_, String>(0)?, parse_status(r.try_get(1)?))))
        .collect::<PgResult<HashMap<_, _>>>()?;
    Ok(plan
        .stops
        .iter()
        .map(|s| RouteStop {
            stop_id: s.stop_id,
            sequence: s.sequence,
            address: s.address.clone(),
            customer_name: s.customer_name.clone(),
            location: s.location,
            window: s.window,
            access_notes: s.access_notes.clone(),
            status: statuses
                .get(&s.stop_id.to_string())
                .copied()
                .unwrap_or(StopStatus::Planned),
        })
        .collect())
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
            let statuses = c
                .query("SELECT stop_id, status FROM stops", &[])
                .await?
                .iter()
                .map(|r| Ok((r.try_get::<_, String>(0)?, parse_status(r.try_get(1)?))))
                .collect::<PgResult<HashMap<_, _>>>()?;
            let mut plans: HashMap<CourierId, PlanLite> = HashMap::new();
            // Newest day first: a courier's current route is the first one seen.
            for r in c
                .query("SELECT plan_json FROM routes ORDER BY day DESC", &[])
                .await?
            {
                let plan = json::<PlanLite>(r.try_get(0)?)?;
                plans.entry(plan.courier_id).or_insert(plan);
            }
            let mut by_courier: HashMap<CourierId, Vec<_>> = HashMap::new();
            for d in devices {
                by_courier.entry(d.courier_id).or_default().push(d);
            }
            let couriers = c
                .query(
                    "SELECT courier_id, name, region FROM couriers ORDER BY name",
                    &[],
                )
                .await?;
            let mut depot = None;
            let mut out = Vec::with_capacity(couriers.len());
            for r in &couriers {
                let courier_id: CourierId = id(r.try_get(0)?)?;
                let plan = plans.remove(&courier_id);
                let mut counts = StopCounts::default();
                let mut points = Vec::new();
                if let Some(plan) = &plan {
                    depot.get_or_insert(plan.depot);
                    points.reserve(plan.stops.len());
                    for s in &plan.stops {
                        let status = statuses
                            .get(&s.stop_id.to_string())
                            .copied()
                            .unwrap_or(StopStatus::Planned);
                        let m = MapStatus::of(status);
                        counts.add(m);
                        points.push((round5(s.location.lat), round5(s.location.lon), m));
                    }
                }
                out.push(FleetCourier {
                    courier_id,
                    name: r.try_get(1)?,
                    region: r.try_get(2)?,
                    route_id: plan.map(|p| p.route_id),
                    counts,
                    devices: by_courier.remove(&courier_id).unwrap_or_default(),
                    points,
                });
            }
            Ok(FleetSnapshot {
                server_time_ms: now_ms,
                offline_after_ms: OFFLINE_AFTER_MS,
                depot,
                couriers: out,
                open_escalations: open_escalations(c).await?,
            })
        })
    }

    pub(super) fn route_detail_impl(&self, route: RouteId) -> StoreResult<Option<RouteDetail>> {
        self.run(async |c| {
            let Some((plan, courier_name)) = load_plan(c, route).await? else {
                return Ok(None);
            };
            let stops = route_stops(c, &plan).await?;
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
            let Some(found) = route_stops(c, &plan).await?.pop() else {
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

    fn metric_rows(&self, since_ms: u64) -> StoreResult<Vec<Row>> {
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
                    Ok(Row {
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
                        stop_id: r.try_get(10)?,
                    })
                })
                .collect()
        })
    }

    /// Whether a failed first attempt was "customer absent" without presence evidence, by the
    /// shared scorer over the stop's synced facts (see [`crate::presence`]).
    fn no_real_first_attempt(&self, row: &Row) -> StoreResult<bool> {
        if row.reason.as_deref() != Some("customer_absent") {
            return Ok(false);
        }
        let Some(stop) = row.stop_id.as_deref().map(id::<StopId>).transpose()? else {
            return Ok(false);
        };
        self.first_attempt_is_no_real(stop)
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
        let bucket_ms = bucket_ms.max(1_000);
        let end = (now_ms / bucket_ms + 1) * bucket_ms;
        let since = end.saturating_sub(bucket_ms * u64::from(buckets.max(1)));
        let rows = self.metric_rows(since)?;
        let mut totals = Acc::default();
        let mut time: BTreeMap<u64, Acc> = (0..u64::from(buckets.max(1)))
            .map(|i| (since + i * bucket_ms, Acc::default()))
            .collect();
        let mut couriers: BTreeMap<String, Acc> = BTreeMap::new();
        let mut regions: BTreeMap<String, Acc> = BTreeMap::new();
        let mut reasons: BTreeMap<String, u64> = BTreeMap::new();
        for row in &rows {
            let bucket = since + (row.received_at_ms - since) / bucket_ms * bucket_ms;
            let region = if row.region.is_empty() {
                "(none)".to_owned()
            } else {
                row.region.clone()
            };
            let applied = row.status == "applied";
            let first = applied && row.attempt == Some(1);
            let delivered = row.result.as_deref() == Some("delivered");
            let failed = applied && row.result.as_deref() == Some("failed");
            let dup = row.status == "duplicate";
            let late = row.code.as_deref() == Some("late_replay");
            let lag = match (applied, row.device_time_ms, row.clock_offset_ms) {
                (true, Some(t), Some(off)) => Some((row.received_at_ms as i64 - (t - off)).max(0)),
                _ => None,
            };
            let no_real = first && failed && self.no_real_first_attempt(row)?;
            if failed && let Some(reason) = &row.reason {
                *reasons.entry(reason.clone()).or_default() += 1;
            }
            let update = |a: &mut Acc| {
                a.first += u64::from(first);
                a.first_ok += u64::from(first && delivered);
                a.first_no_real += u64::from(no_real);
                a.failed += u64::from(failed);
                a.duplicates += u64::from(dup);
                a.late += u64::from(late);
                if let Some(l) = lag {
                    a.lag_sum_ms += l as f64;
                    a.lag_n += 1;
                }
            };
            update(&mut totals);
            update(time.entry(bucket).or_default());
            update(couriers.entry(row.courier.clone()).or_default());
            update(regions.entry(region).or_default());
        }
        let open = self.run(async |c| open_escalations(c).await)?;
        let mut failed_by_reason: Vec<Count> = reasons
            .into_iter()
            .map(|(label, count)| Count { label, count })
            .collect();
        failed_by_reason.sort_by(|a, b| b.count.cmp(&a.count).then(a.label.cmp(&b.label)));
        Ok(DashboardMetrics {
            server_time_ms: now_ms,
            bucket_ms,
            duplicates_caught: totals.duplicates,
            totals: totals.group("all".to_owned()),
            over_time: time
                .into_iter()
                .map(|(k, a)| a.group(k.to_string()))
                .collect(),
            by_courier: couriers.into_iter().map(|(k, a)| a.group(k)).collect(),
            by_region: regions.into_iter().map(|(k, a)| a.group(k)).collect(),
            failed_by_reason,
            replays_since_start: 0,
            open_escalations: open,
        })
    }
}
