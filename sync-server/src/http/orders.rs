//! The integration API: a shipper's systems send their orders (`POST /v1/orders`, at most
//! 1,000 orders and 2 MiB per request) and read them back (`GET /v1/orders/{external_id}`).
//! An integration token reaches only its own shipper's orders, and nothing else.

use super::problem::{parse_json, require_json};
use super::{AppState, Integration};
use crate::service::ApiResult;
use crate::store::Store;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use doorstep_shared::order::{Order, OrderBatch, OrderBatchResponse};

pub async fn record<S: Store>(
    State(app): AppState<S>,
    who: Integration,
    headers: HeaderMap,
    body: bytes::Bytes,
) -> ApiResult<Json<OrderBatchResponse>> {
    require_json(&headers)?;
    let batch: OrderBatch = parse_json(&body)?;
    app.record_orders(who.0, batch).await.map(Json)
}

/// One order's current version.
#[derive(serde::Serialize)]
pub struct OrderView {
    pub version: u32,
    pub order: Order,
}

pub async fn get<S: Store>(
    State(app): AppState<S>,
    who: Integration,
    Path(external_id): Path<String>,
) -> ApiResult<Json<OrderView>> {
    let (version, order) = app.order(who.0, external_id).await?;
    Ok(Json(OrderView { version, order }))
}
