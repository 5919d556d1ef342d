//! Dashboard endpoints: the lean fleet snapshot, one route or stop on demand, the metrics the
//! dashboard charts, and the two escalation actions the original command set lacked
//! (return to depot, contact customer). Commands run through [`crate::commands`], so they
//! have the same `Idempotency-Key` semantics as every other dispatcher command.

use super::dispatch::{parse_id, read, run_command};
use super::problem::{ApiJsonOut, parse_json, require_json};
use super::{AppState, Dispatcher};
use crate::commands::OfficeCommand;
use crate::service::{ApiError, ApiResult};
use crate::store::Store;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use doorstep_shared::dashboard::{
    ContactCustomerCommand, DashboardMetrics, FleetSnapshot, PresenceReport, ReturnToDepotCommand,
    RouteDetail, StopContext,
};
use doorstep_shared::{ProblemCode, RouteId, StopId};

/// Device event kinds, for summing the in-memory duplicate counters.
const DEVICE_KINDS: [&str; 9] = [
    "parcel_scanned",
    "beacon_sighted",
    "arrived_at_stop",
    "delivery_attempted",
    "proof_captured",
    "location_fixed",
    "route_replanned",
    "note_added",
    "access_notes_edited",
];

pub async fn fleet<S: Store>(
    State(app): AppState<S>,
    _: Dispatcher,
) -> ApiResult<Json<FleetSnapshot>> {
    let now = app.clock.now_ms();
    let mut snapshot = read(&app, move |s| s.fleet(now)).await?;
    snapshot.offline_after_ms = app.settings.offline_after_ms;
    Ok(Json(snapshot))
}

pub async fn route<S: Store>(
    State(app): AppState<S>,
    _: Dispatcher,
    Path(route): Path<String>,
) -> ApiResult<Json<RouteDetail>> {
    let route: RouteId = parse_id(&route, "route")?;
    read(&app, move |s| s.route_detail(route))
        .await?
        .map(Json)
        .ok_or_else(|| {
            ApiError::new(
                ProblemCode::NotFound,
                format!("route {route} does not exist"),
            )
        })
}

pub async fn stop_context<S: Store>(
    State(app): AppState<S>,
    _: Dispatcher,
    Path(stop): Path<String>,
) -> ApiResult<Json<StopContext>> {
    let stop: StopId = parse_id(&stop, "stop")?;
    read(&app, move |s| s.stop_context(stop))
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::new(ProblemCode::NotFound, format!("stop {stop} has no plan")))
}

/// A presence score per attempt, from the synced beacon sightings and location fixes.
pub async fn stop_presence<S: Store>(
    State(app): AppState<S>,
    _: Dispatcher,
    Path(stop): Path<String>,
) -> ApiResult<Json<PresenceReport>> {
    let stop: StopId = parse_id(&stop, "stop")?;
    read(&app, move |s| crate::presence::presence_report(s, stop))
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::new(ProblemCode::NotFound, format!("stop {stop} does not exist")))
}

#[derive(serde::Deserialize)]
pub struct MetricsWindow {
    #[serde(default)]
    bucket_ms: Option<u64>,
    #[serde(default)]
    buckets: Option<u32>,
}

pub async fn metrics<S: Store>(
    State(app): AppState<S>,
    _: Dispatcher,
    Query(w): Query<MetricsWindow>,
) -> ApiResult<Json<DashboardMetrics>> {
    let now = app.clock.now_ms();
    let bucket_ms = w.bucket_ms.unwrap_or(15 * 60_000).clamp(1_000, 86_400_000);
    let buckets = w.buckets.unwrap_or(32).clamp(1, 500);
    let mut m = read(&app, move |s| s.dashboard_metrics(now, bucket_ms, buckets)).await?;
    m.replays_since_start = DEVICE_KINDS
        .iter()
        .map(|k| {
            app.metrics.get(
                "doorstep_events_total",
                &[("kind", k), ("status", "duplicate")],
            )
        })
        .sum();
    Ok(Json(m))
}

pub async fn return_to_depot<S: Store>(
    State(app): AppState<S>,
    who: Dispatcher,
    Path(stop): Path<String>,
    headers: HeaderMap,
    body: bytes::Bytes,
) -> ApiResult<ApiJsonOut> {
    let stop_id: StopId = parse_id(&stop, "stop")?;
    require_json(&headers)?;
    let cmd: ReturnToDepotCommand = parse_json(&body)?;
    let command = OfficeCommand::ReturnToDepot {
        stop_id,
        reason: cmd.reason,
    };
    run_command(&app, who, &headers, &body, command).await
}

pub async fn contact_customer<S: Store>(
    State(app): AppState<S>,
    who: Dispatcher,
    Path(stop): Path<String>,
    headers: HeaderMap,
    body: bytes::Bytes,
) -> ApiResult<ApiJsonOut> {
    let stop_id: StopId = parse_id(&stop, "stop")?;
    require_json(&headers)?;
    let command: ContactCustomerCommand = parse_json(&body)?;
    let command = OfficeCommand::ContactCustomer { stop_id, command };
    run_command(&app, who, &headers, &body, command).await
}
