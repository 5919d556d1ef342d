//! Delivery attempts: delivered (with the method) or failed (with a classified reason).

use crate::error::IpcResult;
use crate::receipt::{Receipt, receipt};
use crate::state::AppState;
use doorstep_shared::event::{AttemptOutcome, DeliveryMethod};
use doorstep_shared::{FailureReason, StopId};
use tauri::State;

fn clean(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

#[tauri::command]
pub fn record_delivery(
    state: State<'_, AppState>,
    stop_id: StopId,
    attempt: u32,
    method: DeliveryMethod,
    recipient: Option<String>,
) -> IpcResult<Receipt> {
    let outcome = AttemptOutcome::Delivered {
        method,
        recipient: clean(recipient),
    };
    receipt(state.device.record_attempt(stop_id, attempt, outcome)?)
}

#[tauri::command]
pub fn record_failure(
    state: State<'_, AppState>,
    stop_id: StopId,
    attempt: u32,
    reason: FailureReason,
    detail: Option<String>,
) -> IpcResult<Receipt> {
    let outcome = AttemptOutcome::Failed {
        reason,
        detail: clean(detail),
    };
    receipt(state.device.record_attempt(stop_id, attempt, outcome)?)
}
