//! The sync status the UI keeps on screen, and "sync now".

use crate::error::IpcResult;
use crate::settings::NetworkMode;
use crate::state::AppState;
use courier_core::SyncStatus;
use serde::Serialize;
use tauri::State;

#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export_to = "app/"))]
#[derive(Clone, Debug, Serialize)]
pub struct StatusView {
    #[serde(flatten)]
    pub status: SyncStatus,
    /// The field-test network mode, so the status bar can say "offline (field test)".
    pub network: NetworkMode,
    pub now_ms: u64,
}

#[tauri::command]
pub fn sync_status(state: State<'_, AppState>) -> IpcResult<StatusView> {
    Ok(StatusView {
        status: state.device.sync_status()?,
        network: state.settings().network,
        now_ms: state.now_ms(),
    })
}

/// Starts a sync round now instead of waiting out the backoff.
#[tauri::command]
pub fn sync_now(state: State<'_, AppState>) -> IpcResult<()> {
    if state.device.identity()?.is_some() {
        state.start_sync()?;
    }
    Ok(())
}
