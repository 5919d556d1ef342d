//! Free-text notes on a stop. The UI asks for a note id when the driver starts a note, so a
//! double tap of "save" is the same intent.

use crate::error::{ErrorCode, IpcError, IpcResult};
use crate::receipt::{Receipt, receipt};
use crate::state::AppState;
use doorstep_shared::StopId;
use tauri::State;

#[tauri::command]
pub fn new_note_id(state: State<'_, AppState>) -> String {
    state.device.new_note_id().to_string()
}

#[tauri::command]
pub fn add_note(
    state: State<'_, AppState>,
    stop_id: StopId,
    note_id: String,
    text: String,
) -> IpcResult<Receipt> {
    let note_id = note_id
        .parse()
        .map_err(|_| IpcError::new(ErrorCode::InvalidInput, "malformed note id"))?;
    let text = text.trim();
    if text.is_empty() {
        return Err(IpcError::new(ErrorCode::InvalidInput, "the note is empty"));
    }
    receipt(state.device.add_note(stop_id, note_id, text)?)
}
