//! `GET /v1/dispatch/devices/{device_id}/events?after_seq=N&limit=M`: one device's event log as
//! the server stored it (every processed event with its outcome), in `device_seq` order. Field
//! tests and the simulator compare it with the device's outbox; page with `after_seq`.

use super::dispatch::{parse_id, read};
use super::{AppState, Dispatcher};
use crate::service::ApiResult;
use crate::store::Store;
use axum::Json;
use axum::extract::{Path, Query, State};
use doorstep_shared::DeviceId;
use doorstep_shared::protocol::StoredEvent;

const MAX_PAGE: u32 = 5_000;

#[derive(serde::Deserialize)]
pub struct Page {
    #[serde(default)]
    after_seq: u64,
    limit: Option<u32>,
}

pub async fn events<S: Store>(
    State(app): AppState<S>,
    _: Dispatcher,
    Path(device): Path<String>,
    Query(page): Query<Page>,
) -> ApiResult<Json<Vec<StoredEvent>>> {
    let device: DeviceId = parse_id(&device, "device")?;
    let limit = page.limit.unwrap_or(1_000).clamp(1, MAX_PAGE);
    read(&app, move |s| {
        s.device_events(device, page.after_seq, limit)
    })
    .await
    .map(Json)
}
