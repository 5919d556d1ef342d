//! Enrollment (server URL + one-time code) and what the UI needs at start-up.

use crate::error::{ErrorCode, IpcError, IpcResult};
use crate::settings::{NetworkMode, Screen};
use crate::state::AppState;
use courier_core::HttpTransport;
use doorstep_shared::protocol::EnrollRequest;
use serde::Serialize;
use std::time::Duration;
use tauri::State;

/// Start-up picture: enrolled or not, and where the driver was.
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export_to = "app/"))]
#[derive(Clone, Debug, Serialize)]
pub struct AppSnapshot {
    pub enrolled: bool,
    pub device_id: Option<String>,
    pub server_url: Option<String>,
    pub screen: Screen,
    pub network: NetworkMode,
}

#[tauri::command]
pub fn app_state(state: State<'_, AppState>) -> IpcResult<AppSnapshot> {
    let identity = state.device.identity()?;
    let s = state.settings();
    Ok(AppSnapshot {
        enrolled: identity.is_some(),
        device_id: identity.map(|i| i.device_id.to_string()),
        server_url: s.server_url,
        screen: s.screen,
        network: s.network,
    })
}

fn check_url(url: &str) -> IpcResult<String> {
    let url = url.trim().trim_end_matches('/');
    if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() < 10 {
        return Err(IpcError::new(
            ErrorCode::InvalidInput,
            "the server URL must start with http:// or https://",
        ));
    }
    Ok(url.to_owned())
}

/// Exchanges the code for an identity, pulls the route once, then keeps syncing in the
/// background. After this the app needs no network.
#[tauri::command]
pub async fn enroll(
    state: State<'_, AppState>,
    server_url: String,
    code: String,
    device_name: String,
) -> IpcResult<AppSnapshot> {
    let url = check_url(&server_url)?;
    let code = code.trim().to_owned();
    if code.is_empty() {
        return Err(IpcError::new(
            ErrorCode::InvalidInput,
            "enter the enrollment code",
        ));
    }
    if state.device.identity()?.is_some() {
        return Err(IpcError::new(
            ErrorCode::InvalidInput,
            "this device is already enrolled",
        ));
    }
    let http = HttpTransport::new(&url, Duration::from_secs(15))?;
    let request = EnrollRequest {
        code,
        device_name: device_name.trim().chars().take(64).collect(),
        public_key: None,
    };
    courier_core::sync::enroll(&state.device, &http, &request).await?;
    state.update_settings(|s| {
        s.server_url = Some(url);
        s.screen = Screen {
            name: "route".into(),
            stop_id: None,
        };
    })?;
    let mut engine = state.new_engine()?;
    // The first round pulls the route; the driver lands on a filled screen.
    let outcome = engine.sync_once().await;
    tracing::info!(?outcome, "first sync after enrollment");
    state.spawn_engine(engine);
    app_state(state)
}
