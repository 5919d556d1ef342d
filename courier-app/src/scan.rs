//! Parcel scans (camera or manual entry both end here). A double scan is the same intent.

use crate::error::{ErrorCode, IpcError, IpcResult};
use crate::receipt::{Receipt, receipt};
use crate::state::AppState;
use doorstep_shared::ParcelBarcode;
use doorstep_shared::event::ScanPhase;
use tauri::State;

#[tauri::command]
pub fn scan_parcel(
    state: State<'_, AppState>,
    barcode: String,
    phase: ScanPhase,
) -> IpcResult<Receipt> {
    let parcel = ParcelBarcode::parse(barcode.trim())
        .map_err(|e| IpcError::new(ErrorCode::InvalidInput, e.to_string()))?;
    receipt(state.device.scan_parcel(&parcel, phase)?)
}
