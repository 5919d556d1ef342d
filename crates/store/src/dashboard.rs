//! The dashboard's read models, built once from what any backend reads: the fleet snapshot
//! from plans, derived stop statuses and device health; a route's stops; and the metrics,
//! aggregated from logged device events over a window of time buckets. A backend only runs
//! the queries.

use crate::StoreResult;
use doorstep_shared::dashboard::{
    AttemptGroup, Count, DashboardMetrics, FleetCourier, FleetSnapshot, MapStatus,
    OFFLINE_AFTER_MS, RouteStop, StopCounts,
};
use doorstep_shared::event::{GeoPoint, RouteAssigned};
use doorstep_shared::protocol::DeviceHealth;
use doorstep_shared::{CourierId, RouteId, StopId, StopStatus};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};

/// Only the parts of a stored route plan the fleet map needs (the rest is skipped unparsed).
#[derive(Debug, Deserialize)]
pub struct FleetPlan {
    pub route_id: RouteId,
    pub courier_id: CourierId,
    pub depot: GeoPoint,
    pub stops: Vec<FleetPlanStop>,
}

#[derive(Debug, Deserialize)]
pub struct FleetPlanStop {
    pub stop_id: StopId,
    pub location: GeoPoint,
}

/// A courier as the fleet snapshot lists it.
pub struct CourierRow {
    pub courier_id: CourierId,
    pub name: String,
    pub region: String,
}

/// A stop's stored derived status (`''` before the first fold means planned).
pub fn parse_status(text: &str) -> StopStatus {
    serde_json::from_str(text).unwrap_or(StopStatus::Planned)
}

/// About a metre: plenty for the map, and it keeps 20,000 points small on the wire.
fn round5(x: f64) -> f64 {
    (x * 1e5).round() / 1e5
}

/// The fleet snapshot. `plans` newest day first (a courier's current route is the first one
/// seen); `couriers` in display order; `statuses` by stop id.
pub fn fleet_snapshot(
    now_ms: u64,
    couriers: Vec<CourierRow>,
    plans: impl IntoIterator<Item = FleetPlan>,
    statuses: &HashMap<StopId, StopStatus>,
    devices: Vec<DeviceHealth>,
    open_escalations: u64,
) -> FleetSnapshot {
    let mut current: HashMap<CourierId, FleetPlan> = HashMap::new();
    for plan in plans {
        current.entry(plan.courier_id).or_insert(plan);
    }
    let mut by_courier: HashMap<CourierId, Vec<DeviceHealth>> = HashMap::new();
    for d in devices {
        by_courier.entry(d.courier_id).or_default().push(d);
    }
    let mut depot = None;
    let mut out = Vec::with_capacity(couriers.len());
    for c in couriers {
        let plan = current.remove(&c.courier_id);
        let mut counts = StopCounts::default();
        let mut points = Vec::new();
        if let Some(plan) = &plan {
            depot.get_or_insert(plan.depot);
            points.reserve(plan.stops.len());
            for s in &plan.stops {
                let status = statuses
                    .get(&s.stop_id)
                    .copied()
                    .unwrap_or(StopStatus::Planned);
                let m = MapStatus::of(status);
                counts.add(m);
                points.push((round5(s.location.lat), round5(s.location.lon), m));
            }
        }
        out.push(FleetCourier {
            courier_id: c.courier_id,
            name: c.name,
            region: c.region,
            route_id: plan.map(|p| p.route_id),
            counts,
            devices: by_courier.remove(&c.courier_id).unwrap_or_default(),
            points,
        });
    }
    FleetSnapshot {
        server_time_ms: now_ms,
        offline_after_ms: OFFLINE_AFTER_MS,
        depot,
        couriers: out,
        open_escalations,
    }
}

/// The plan's stops with their current status (`statuses` by stop id), in plan order.
pub fn route_stops(plan: &RouteAssigned, statuses: &HashMap<StopId, StopStatus>) -> Vec<RouteStop> {
    plan.stops
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
                .get(&s.stop_id)
                .copied()
                .unwrap_or(StopStatus::Planned),
        })
        .collect()
}

/// One logged device event, as the metrics need it.
#[derive(Clone, Debug, Default)]
pub struct MetricRow {
    pub status: String,
    pub code: Option<String>,
    pub received_at_ms: u64,
    pub device_time_ms: Option<i64>,
    pub clock_offset_ms: Option<i64>,
    pub courier: String,
    pub region: String,
    /// For delivery attempts: the attempt number, `delivered`/`failed`, the failure reason.
    pub attempt: Option<i64>,
    pub result: Option<String>,
    pub reason: Option<String>,
    pub stop_id: Option<StopId>,
}

/// The buckets the metrics cover: `buckets` of `bucket_ms` (at least a second), the last one
/// holding `now_ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetricWindow {
    pub since_ms: u64,
    pub bucket_ms: u64,
    pub buckets: u64,
}

impl MetricWindow {
    pub fn ending_at(now_ms: u64, bucket_ms: u64, buckets: u32) -> Self {
        let bucket_ms = bucket_ms.max(1_000);
        let buckets = u64::from(buckets.max(1));
        let end = (now_ms / bucket_ms)
            .saturating_add(1)
            .saturating_mul(bucket_ms);
        Self {
            since_ms: end.saturating_sub(bucket_ms.saturating_mul(buckets)),
            bucket_ms,
            buckets,
        }
    }
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

/// The dashboard metrics over `rows` (logged device events received since the window's start,
/// in log order). `no_real_first_attempt` tells whether a failed "customer absent" first
/// attempt at a stop had no presence evidence.
pub fn aggregate_metrics(
    now_ms: u64,
    window: MetricWindow,
    rows: &[MetricRow],
    open_escalations: u64,
    mut no_real_first_attempt: impl FnMut(StopId) -> StoreResult<bool>,
) -> StoreResult<DashboardMetrics> {
    let MetricWindow {
        since_ms: since,
        bucket_ms,
        buckets,
    } = window;
    let mut totals = Acc::default();
    let mut time: BTreeMap<u64, Acc> = (0..buckets)
        .map(|i| {
            (
                since.saturating_add(i.saturating_mul(bucket_ms)),
                Acc::default(),
            )
        })
        .collect();
    let mut couriers: BTreeMap<String, Acc> = BTreeMap::new();
    let mut regions: BTreeMap<String, Acc> = BTreeMap::new();
    let mut reasons: BTreeMap<String, u64> = BTreeMap::new();
    for row in rows {
        let offset = row.received_at_ms.saturating_sub(since) / bucket_ms * bucket_ms;
        let bucket = since.saturating_add(offset);
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
            (true, Some(t), Some(off)) => {
                let received = i64::try_from(row.received_at_ms).unwrap_or(i64::MAX);
                Some(received.saturating_sub(t.saturating_sub(off)).max(0))
            }
            _ => None,
        };
        let absent = row.reason.as_deref() == Some("customer_absent");
        let no_real = match (first && failed && absent, row.stop_id) {
            (true, Some(stop)) => no_real_first_attempt(stop)?,
            _ => false,
        };
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
        open_escalations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(courier: &str, n: i64, result: &str, reason: Option<&str>, at: u64) -> MetricRow {
        MetricRow {
            status: "applied".into(),
            received_at_ms: at,
            device_time_ms: Some(at as i64 - 60_000),
            clock_offset_ms: Some(0),
            courier: courier.into(),
            attempt: Some(n),
            result: Some(result.into()),
            reason: reason.map(Into::into),
            stop_id: Some(StopId(uuid::Uuid::from_u128(n as u128))),
            ..MetricRow::default()
        }
    }

    #[test]
    fn metrics_count_first_attempts_failures_duplicates_and_lag_per_bucket_and_courier() {
        let window = MetricWindow::ending_at(10_000_000, 60_000, 4);
        assert_eq!(window.since_ms, 10_020_000 - 240_000);
        let t = window.since_ms;
        let rows = vec![
            attempt("Ada", 1, "delivered", None, t + 1_000),
            attempt("Ada", 1, "failed", Some("customer_absent"), t + 61_000),
            attempt("Bo", 2, "failed", Some("no_access"), t + 62_000),
            MetricRow {
                status: "duplicate".into(),
                courier: "Bo".into(),
                received_at_ms: t + 200_000,
                ..MetricRow::default()
            },
        ];
        let m = aggregate_metrics(10_000_000, window, &rows, 3, |_| Ok(true)).expect("metrics");
        assert_eq!(m.totals.first_attempts, 2);
        assert_eq!(m.totals.first_attempts_delivered, 1);
        assert_eq!(
            m.totals.first_attempts_no_real, 1,
            "absent without presence"
        );
        assert_eq!(m.totals.failed_attempts, 2);
        assert_eq!(m.duplicates_caught, 1);
        assert_eq!(m.totals.mean_sync_lag_ms, Some(60_000.0));
        assert_eq!(m.over_time.len(), 4);
        assert_eq!(m.over_time[1].first_attempts, 1);
        assert_eq!(m.by_courier.len(), 2);
        assert_eq!(m.failed_by_reason.len(), 2);
        assert_eq!(m.open_escalations, 3);
    }

    #[test]
    fn extreme_stored_times_do_not_overflow() {
        let window = MetricWindow::ending_at(u64::MAX, u64::MAX, u32::MAX);
        let mut row = attempt("Ada", 1, "delivered", None, window.since_ms);
        row.device_time_ms = Some(i64::MIN);
        row.clock_offset_ms = Some(i64::MAX);
        let m = aggregate_metrics(
            u64::MAX,
            MetricWindow::ending_at(0, 1_000, 1),
            &[row],
            0,
            |_| Ok(false),
        )
        .expect("metrics");
        assert_eq!(m.totals.first_attempts, 1);
    }
}
