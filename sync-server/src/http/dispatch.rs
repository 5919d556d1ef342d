//! The dispatcher API: read views and idempotent commands. Every command needs an
//! `Idempotency-Key`: 400 when missing, 409 while the first request is in flight, 422 when the
//! key is reused with another body; a replay returns the first answer byte for byte.

use super::problem::{ApiJsonOut, parse_json, require_json};
use super::{AppState, Dispatcher};
use crate::commands::OfficeCommand;
use crate::service::{ApiError, ApiResult, App};
use crate::store::Store;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use doorstep_shared::protocol::{
    CancelStopCommand, CourierSummary, DeviceHealth, Escalation, MetricsSummary,
    ReassignStopCommand, RescheduleStopCommand, ResolveEscalationCommand, RouteSummary, StopDetail,
};
use doorstep_shared::{EscalationId, ProblemCode, StopId};

pub(super) async fn read<S: Store, T: Send + 'static>(
    app: &App<S>,
    f: impl FnOnce(&S) -> crate::store::StoreResult<T> + Send + 'static,
) -> ApiResult<T> {
    let store = app.store.clone();
    match tokio::task::spawn_blocking(move || f(&store)).await {
        Ok(r) => r.map_err(ApiError::from),
        Err(_) => Err(ApiError::bare(ProblemCode::Internal)),
    }
}

pub(super) fn parse_id<T: std::str::FromStr>(s: &str, what: &str) -> ApiResult<T> {
    s.parse()
        .map_err(|_| ApiError::new(ProblemCode::NotFound, format!("{s:?} is not a {what} id")))
}

pub async fn couriers<S: Store>(
    State(app): AppState<S>,
    _: Dispatcher,
) -> ApiResult<Json<Vec<CourierSummary>>> {
    read(&app, |s| s.couriers()).await.map(Json)
}

pub async fn devices<S: Store>(
    State(app): AppState<S>,
    _: Dispatcher,
) -> ApiResult<Json<Vec<DeviceHealth>>> {
    read(&app, |s| s.device_health()).await.map(Json)
}

pub async fn routes<S: Store>(
    State(app): AppState<S>,
    _: Dispatcher,
) -> ApiResult<Json<Vec<RouteSummary>>> {
    read(&app, |s| s.routes()).await.map(Json)
}

pub async fn stop<S: Store>(
    State(app): AppState<S>,
    _: Dispatcher,
    Path(stop): Path<String>,
) -> ApiResult<Json<StopDetail>> {
    let stop: StopId = parse_id(&stop, "stop")?;
    read(&app, move |s| s.stop_detail(stop))
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::new(ProblemCode::NotFound, format!("stop {stop} does not exist")))
}

#[derive(serde::Deserialize)]
pub struct EscalationFilter {
    #[serde(default)]
    all: bool,
}

pub async fn escalations<S: Store>(
    State(app): AppState<S>,
    _: Dispatcher,
    Query(f): Query<EscalationFilter>,
) -> ApiResult<Json<Vec<Escalation>>> {
    read(&app, move |s| s.escalations(!f.all)).await.map(Json)
}

pub async fn metrics_summary<S: Store>(
    State(app): AppState<S>,
    _: Dispatcher,
) -> ApiResult<Json<MetricsSummary>> {
    let (first, open, devices) = read(&app, |s| {
        Ok((
            s.first_attempt_stats()?,
            s.escalations(true)?.len() as u64,
            s.device_health()?,
        ))
    })
    .await?;
    Ok(Json(MetricsSummary {
        first_attempts: first.first_attempts,
        first_attempts_delivered: first.delivered,
        first_attempts_no_real: first.no_real,
        first_attempt_success_rate: first.success_rate(),
        open_escalations: open,
        devices: devices.len() as u64,
        devices_clock_skewed: devices.iter().filter(|d| d.clock_skew_flagged).count() as u64,
        events_rejected: devices.iter().map(|d| d.events_rejected).sum(),
        events_conflicted: devices.iter().map(|d| d.events_conflicted).sum(),
    }))
}

/// Runs a dispatcher command under the request's `Idempotency-Key` and renders its answer.
pub(super) async fn run_command<S: Store>(
    app: &App<S>,
    who: Dispatcher,
    headers: &HeaderMap,
    body: &[u8],
    command: OfficeCommand,
) -> ApiResult<ApiJsonOut> {
    let key = headers.get("idempotency-key").and_then(|v| v.to_str().ok());
    let (status, text) = app.office_command(&who.0, key, body, command).await?;
    Ok(ApiJsonOut(
        StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
        text,
    ))
}

pub async fn cancel<S: Store>(
    State(app): AppState<S>,
    who: Dispatcher,
    Path(stop): Path<String>,
    headers: HeaderMap,
    body: bytes::Bytes,
) -> ApiResult<ApiJsonOut> {
    let stop_id: StopId = parse_id(&stop, "stop")?;
    require_json(&headers)?;
    let cmd: CancelStopCommand = parse_json(&body)?;
    run_command(
        &app,
        who,
        &headers,
        &body,
        OfficeCommand::Cancel {
            stop_id,
            reason: cmd.reason,
        },
    )
    .await
}

pub async fn reschedule<S: Store>(
    State(app): AppState<S>,
    who: Dispatcher,
    Path(stop): Path<String>,
    headers: HeaderMap,
    body: bytes::Bytes,
) -> ApiResult<ApiJsonOut> {
    let stop_id: StopId = parse_id(&stop, "stop")?;
    require_json(&headers)?;
    let cmd: RescheduleStopCommand = parse_json(&body)?;
    run_command(
        &app,
        who,
        &headers,
        &body,
        OfficeCommand::Reschedule {
            stop_id,
            window: cmd.window,
        },
    )
    .await
}

pub async fn reassign<S: Store>(
    State(app): AppState<S>,
    who: Dispatcher,
    Path(stop): Path<String>,
    headers: HeaderMap,
    body: bytes::Bytes,
) -> ApiResult<ApiJsonOut> {
    let stop_id: StopId = parse_id(&stop, "stop")?;
    require_json(&headers)?;
    let cmd: ReassignStopCommand = parse_json(&body)?;
    run_command(
        &app,
        who,
        &headers,
        &body,
        OfficeCommand::Reassign {
            stop_id,
            to_route: cmd.to_route,
        },
    )
    .await
}

pub async fn resolve<S: Store>(
    State(app): AppState<S>,
    who: Dispatcher,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: bytes::Bytes,
) -> ApiResult<ApiJsonOut> {
    let escalation_id: EscalationId = parse_id(&id, "escalation")?;
    require_json(&headers)?;
    let cmd: ResolveEscalationCommand = parse_json(&body)?;
    run_command(
        &app,
        who,
        &headers,
        &body,
        OfficeCommand::Resolve {
            escalation_id,
            command: cmd,
        },
    )
    .await
}
