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
    AccessNotesEdited, EscalationResolved, EventPayload, StopCancelled, StopReassigned,
    StopRescheduled,
};
use doorstep_shared::intent::intent_key;
use doorstep_shared::protocol::{
    CancelStopCommand, CommandOutcome, CommandReceipt, CourierSummary, DeviceHealth, Escalation,
    EscalationKind, MetricsSummary, ReassignStopCommand, RescheduleStopCommand,
    ResolveEscalationCommand, RouteSummary, StopDetail,
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

/// Runs one command under its idempotency key and renders the receipt.
pub(super) async fn command<S: Store>(
    app: Arc<App<S>>,
    who: Dispatcher,
    headers: HeaderMap,
    body: bytes::Bytes,
    build: impl AsyncFnOnce(&App<S>) -> ApiResult<EventPayload>,
) -> ApiResult<ApiJsonOut> {
    contact_command(app, who, headers, body, None, build).await
}

/// [`command`] that also tells the store how a contact attempt went (`contact_reached`).
pub(super) async fn contact_command<S: Store>(
    app: Arc<App<S>>,
    who: Dispatcher,
    headers: HeaderMap,
    body: bytes::Bytes,
    contact_reached: Option<bool>,
    build: impl AsyncFnOnce(&App<S>) -> ApiResult<EventPayload>,
) -> ApiResult<ApiJsonOut> {
    require_json(&headers)?;
    let key = headers.get("idempotency-key").and_then(|v| v.to_str().ok());
    let app2 = app.clone();
    let (status, text) = app
        .idempotent(key, &body, || async move {
            let payload = build(&app2).await?;
            let key = intent_key(&payload, &DeviceId(uuid::Uuid::nil()));
            let outcome = match app2
                .record_office_contact(payload, &who.0.name, contact_reached)
                .await?
            {
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
    require_json(&headers)?;
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
    require_json(&headers)?;
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
    require_json(&headers)?;
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
    require_json(&headers)?;
    let cmd: ResolveEscalationCommand = parse_json(&body)?;
    let name = who.0.name.clone();
    command(app, who, headers, body, async move |app: &App<S>| {
        if let Some(chosen) = &cmd.chosen_value {
            apply_chosen_access_notes(app, escalation_id, chosen, &name).await?;
        }
        Ok(EventPayload::EscalationResolved(EscalationResolved {
            escalation_id,
            resolution: cmd.resolution,
            chosen_value: cmd.chosen_value,
        }))
    })
    .await
}

/// The actor name office edits of the access notes carry in their version vectors.
pub const OFFICE_ACTOR: &str = "office";

/// The office edit that makes `chosen` the stop's only access notes: its version is the
/// register's merged clock with the office's counter bumped, so it dominates every concurrent
/// value. `None` when nothing diverges any more (already settled by an earlier edit).
pub fn collapse_access_notes(
    state: &doorstep_shared::StopState,
    chosen: &str,
) -> Result<Option<AccessNotesEdited>, String> {
    let values = state.view().access_notes;
    if values.len() < 2 {
        return Ok(None);
    }
    if !values.iter().any(|v| v == chosen) {
        return Err(format!(
            "{chosen:?} is not one of the conflicting values {values:?}"
        ));
    }
    let mut version = state.access_notes_clock();
    *version.entry(OFFICE_ACTOR.to_owned()).or_insert(0) += 1;
    Ok(Some(AccessNotesEdited {
        stop_id: state.stop_id,
        actor: OFFICE_ACTOR.to_owned(),
        version,
        text: chosen.to_owned(),
    }))
}

/// Resolving an `access_notes_diverged` escalation with a chosen value rewrites the stop's
/// access notes through the normal office-event path.
async fn apply_chosen_access_notes<S: Store>(
    app: &App<S>,
    escalation_id: EscalationId,
    chosen: &str,
    issued_by: &str,
) -> ApiResult<()> {
    let esc = read(app, move |s| {
        Ok(s.escalations(false)?
            .into_iter()
            .find(|e| e.escalation_id == escalation_id))
    })
    .await?;
    let Some(esc) = esc else { return Ok(()) };
    let (EscalationKind::AccessNotesDiverged, Some(stop_id)) = (esc.kind, esc.stop_id) else {
        return Ok(());
    };
    let Some(state) = read(app, move |s| s.stop_state(stop_id)).await? else {
        return Ok(());
    };
    let edit = collapse_access_notes(&state, chosen)
        .map_err(|why| ApiError::new(ProblemCode::MalformedRequest, why))?;
    let Some(edit) = edit else { return Ok(()) };
    match app
        .record_office(EventPayload::AccessNotesEdited(edit), issued_by)
        .await?
    {
        OfficeOutcome::Applied { .. } | OfficeOutcome::Duplicate => Ok(()),
        OfficeOutcome::Conflict(why) => Err(ApiError::new(ProblemCode::IntentConflict, why)),
        OfficeOutcome::UnknownTarget(why) => Err(ApiError::new(ProblemCode::NotFound, why)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use doorstep_shared::{HlcStamp, StopState};
    use std::collections::BTreeMap;

    fn edited(state: &mut StopState, n: u128, actor: &str, version: &[(&str, u64)], text: &str) {
        let payload = EventPayload::AccessNotesEdited(AccessNotesEdited {
            stop_id: state.stop_id,
            actor: actor.to_owned(),
            version: version.iter().map(|(a, c)| ((*a).to_owned(), *c)).collect(),
            text: text.to_owned(),
        });
        let hlc = HlcStamp {
            wall_ms: n as u64,
            logical: 0,
        };
        state.apply(
            doorstep_shared::EventId(uuid::Uuid::from_u128(n)),
            hlc,
            &payload,
        );
    }

    #[test]
    fn the_chosen_value_dominates_every_concurrent_edit() {
        let mut s = StopState::new(StopId(uuid::Uuid::from_u128(3)));
        edited(&mut s, 1, "a", &[("a", 1)], "side door");
        edited(&mut s, 2, "b", &[("b", 1), (OFFICE_ACTOR, 1)], "front door");
        let edit = collapse_access_notes(&s, "front door")
            .expect("a conflicting value")
            .expect("an edit");
        assert_eq!(
            edit.version,
            BTreeMap::from([
                ("a".to_owned(), 1),
                ("b".to_owned(), 1),
                (OFFICE_ACTOR.to_owned(), 2)
            ])
        );
        assert!(
            EventPayload::AccessNotesEdited(edit.clone())
                .validate()
                .is_ok()
        );
        s.apply(
            doorstep_shared::EventId(uuid::Uuid::from_u128(9)),
            HlcStamp {
                wall_ms: 9,
                logical: 0,
            },
            &EventPayload::AccessNotesEdited(edit),
        );
        assert_eq!(s.view().access_notes, vec!["front door".to_owned()]);
        // Settled: nothing more to write; a value that was never in conflict is refused.
        assert!(
            collapse_access_notes(&s, "front door")
                .expect("ok")
                .is_none()
        );
        edited(&mut s, 10, "a", &[("a", 2)], "back door");
        assert!(collapse_access_notes(&s, "garage").is_err());
    }
}
