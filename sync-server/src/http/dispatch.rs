//! The dispatcher API: read views and idempotent commands. Every command needs an
//! `Idempotency-Key`: 400 when missing, 409 while the first request is in flight, 422 when the
//! key is reused with another body; a replay returns the first answer byte for byte.

use super::problem::{ApiJsonOut, parse_json, require_json};
use super::{AppState, Dispatcher};
use crate::service::{ApiError, ApiResult, App};
use crate::store::{OfficeOutcome, Store};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use doorstep_shared::event::{
    EscalationResolved, EventPayload, StopCancelled, StopReassigned, StopRescheduled,
};
use doorstep_shared::intent::intent_key;
use doorstep_shared::protocol::{
    CancelStopCommand, CommandOutcome, CommandReceipt, CourierSummary, DeviceHealth, Escalation,
    MetricsSummary, ReassignStopCommand, RescheduleStopCommand, ResolveEscalationCommand,
    RouteSummary, StopDetail,
};
use doorstep_shared::{DeviceId, EscalationId, ProblemCode, StopId};
use std::sync::Arc;

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
    let ((delivered, total), open, devices) = read(&app, |s| {
        Ok((
            s.first_attempt_stats()?,
            s.escalations(true)?.len() as u64,
            s.device_health()?,
        ))
    })
    .await?;
    Ok(Json(MetricsSummary {
        first_attempts: total,
        first_attempts_delivered: delivered,
        first_attempt_success_rate: (total > 0).then(|| delivered as f64 / total as f64),
        open_escalations: open,
        devices: devices.len() as u64,
        devices_clock_skewed: devices.iter().filter(|d| d.clock_skew_flagged).count() as u64,
        events_rejected: devices.iter().map(|d| d.events_rejected).sum(),
        events_conflicted: devices.iter().map(|d| d.events_conflicted).sum(),
    }))
}

/// Runs one command under its idempotency key and renders the receipt.
pub(super) async fn command<S: Store>(
    app: Arc<App<S>>,
    who: Dispatcher,
    headers: HeaderMap,
    body: bytes::Bytes,
    build: impl AsyncFnOnce(&App<S>) -> ApiResult<EventPayload>,
) -> ApiResult<ApiJsonOut> {
    require_json(&headers)?;
    let key = headers.get("idempotency-key").and_then(|v| v.to_str().ok());
    let app2 = app.clone();
    let (status, text) = app
        .idempotent(key, &body, || async move {
            let payload = build(&app2).await?;
            let key = intent_key(&payload, &DeviceId(uuid::Uuid::nil()));
            let outcome = match app2.record_office(payload, &who.0.name).await? {
                OfficeOutcome::Applied { .. } => CommandOutcome::Applied,
                OfficeOutcome::Duplicate => CommandOutcome::AlreadyApplied,
                OfficeOutcome::Conflict(why) => {
                    return Err(ApiError::new(ProblemCode::IntentConflict, why));
                }
                OfficeOutcome::UnknownTarget(why) => {
                    return Err(ApiError::new(ProblemCode::NotFound, why));
                }
            };
            let receipt = CommandReceipt {
                outcome,
                intent_key: key,
            };
            Ok((200, serde_json::to_string(&receipt).unwrap_or_default()))
        })
        .await?;
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
    let cmd: CancelStopCommand = parse_json(&body)?;
    command(app, who, headers, body, async move |_| {
        Ok(EventPayload::StopCancelled(StopCancelled {
            stop_id,
            reason: cmd.reason,
        }))
    })
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
    let cmd: RescheduleStopCommand = parse_json(&body)?;
    command(app, who, headers, body, async move |_| {
        Ok(EventPayload::StopRescheduled(StopRescheduled {
            stop_id,
            window: cmd.window,
        }))
    })
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
    let cmd: ReassignStopCommand = parse_json(&body)?;
    command(app, who, headers, body, async move |app: &App<S>| {
        let to_route = cmd.to_route;
        let (detail, owner) = read(app, move |s| {
            Ok((s.stop_detail(stop_id)?, s.route_owner(to_route)?))
        })
        .await?;
        let detail = detail.ok_or_else(|| {
            ApiError::new(
                ProblemCode::NotFound,
                format!("stop {stop_id} does not exist"),
            )
        })?;
        let to_courier = owner.ok_or_else(|| {
            ApiError::new(
                ProblemCode::NotFound,
                format!("route {to_route} does not exist"),
            )
        })?;
        let from_route = detail
            .view
            .route
            .ok_or_else(|| ApiError::new(ProblemCode::NotFound, "stop has no route"))?;
        Ok(EventPayload::StopReassigned(StopReassigned {
            stop_id,
            from_route,
            to_route,
            to_courier,
        }))
    })
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
    let cmd: ResolveEscalationCommand = parse_json(&body)?;
    command(app, who, headers, body, async move |_| {
        Ok(EventPayload::EscalationResolved(EscalationResolved {
            escalation_id,
            resolution: cmd.resolution,
            chosen_value: cmd.chosen_value,
        }))
    })
    .await
}
