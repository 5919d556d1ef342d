//! The device API: enrollment, push, pull and the device's own routes.

use super::problem::{ApiJson, parse_json, require_json};
use super::{AppState, Device, body};
use crate::service::ApiResult;
use crate::store::Store;
use axum::Json;
use axum::extract::{Path, Query};
use axum::http::HeaderMap;
use doorstep_shared::RouteId;
use doorstep_shared::protocol::{
    EnrollRequest, EnrollResponse, MAX_PUSH_BODY_BYTES, MAX_PUSH_DECODED_BYTES, PullQuery,
    PullResponse, PushRequest, PushResponse, RouteSnapshot,
};

pub async fn enroll<S: Store>(
    State(app): AppState<S>,
    ApiJson(req): ApiJson<EnrollRequest>,
) -> ApiResult<Json<EnrollResponse>> {
    app.enroll(req).await.map(Json)
}

use axum::extract::State;

#[tracing::instrument(skip_all, fields(device_id = %device.0.device_id))]
pub async fn push<S: Store>(
    State(app): AppState<S>,
    device: Device,
    headers: HeaderMap,
    raw: axum::body::Body,
) -> ApiResult<Json<PushResponse>> {
    let result = async {
        require_json(&headers)?;
        let bytes = body::read_limited(raw, &headers, MAX_PUSH_BODY_BYTES).await?;
        let decoded = body::decode(&headers, bytes, MAX_PUSH_DECODED_BYTES)?;
        let req: PushRequest = parse_json(&decoded)?;
        app.push(device.0, req).await
    }
    .await;
    if let Err(e) = &result {
        app.metrics.inc(
            "doorstep_http_problems_total",
            &[("code", e.code.as_str())],
            1,
        );
    }
    result.map(Json)
}

pub async fn pull<S: Store>(
    State(app): AppState<S>,
    device: Device,
    q: Result<Query<PullQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<PullResponse>> {
    let Query(q) = q.map_err(|e| {
        crate::service::ApiError::new(
            doorstep_shared::ProblemCode::MalformedRequest,
            e.body_text(),
        )
    })?;
    app.pull(device.0, q).await.map(Json)
}

pub async fn route<S: Store>(
    State(app): AppState<S>,
    device: Device,
    Path(route): Path<String>,
) -> ApiResult<Json<RouteSnapshot>> {
    let route: RouteId = route.parse().map_err(|_| {
        crate::service::ApiError::new(doorstep_shared::ProblemCode::NotFound, "not a route id")
    })?;
    app.route(device.0, route).await.map(Json)
}
