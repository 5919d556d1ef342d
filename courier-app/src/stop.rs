//! One stop: parcels, access notes, instructions, history; and arriving at it.

use crate::error::{ErrorCode, IpcError, IpcResult};
use crate::receipt::{Receipt, receipt};
use crate::state::AppState;
use courier_core::outbox::StopDetail;
use doorstep_shared::StopId;
use tauri::State;

#[tauri::command]
pub fn get_stop(state: State<'_, AppState>, stop_id: StopId) -> IpcResult<StopDetail> {
    state.device.stop(stop_id)?.ok_or_else(|| {
        IpcError::new(
            ErrorCode::NotFound,
            format!("stop {stop_id} is not on this device"),
        )
    })
}

#[tauri::command]
pub fn arrive(state: State<'_, AppState>, stop_id: StopId) -> IpcResult<Receipt> {
    receipt(state.device.arrive(stop_id, None)?)
}
