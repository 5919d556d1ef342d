//! Today's route: ordered stops with window, status and the sync state of each.

use crate::error::IpcResult;
use crate::state::AppState;
use courier_core::outbox::RouteView;
use tauri::State;

/// The route of `day` (`YYYY-MM-DD`), or the latest one the device knows; `None` before the
/// first pull.
#[tauri::command]
pub fn get_route(state: State<'_, AppState>, day: Option<String>) -> IpcResult<Option<RouteView>> {
    Ok(state.device.route(day.as_deref())?)
}
