//! Settings and field-test mode: the network profile (normal, offline, flaky, scripted outage),
//! what the network layer is doing, and the screen the driver was on (restored at start-up).

use crate::error::{ErrorCode, IpcError, IpcResult};
use crate::state::AppState;
use courier_core::FaultProfile;
use courier_core::transport::faulty::{FaultStats, Outage};
use doorstep_shared::StopId;
use serde::{Deserialize, Serialize};
use std::path::Path;
use tauri::State;

#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export_to = "app/"))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetworkMode {
    /// The real network, untouched.
    #[default]
    Normal,
    /// No network at all.
    Offline,
    /// A bad mobile link: loss, answers lost after the server committed, duplicates, latency.
    Flaky,
    /// No network for a scripted window starting now.
    Outage,
}

impl NetworkMode {
    pub fn profile(self, outage: Option<Outage>, now_ms: u64) -> FaultProfile {
        match self {
            Self::Normal => FaultProfile::perfect(),
            Self::Offline => FaultProfile::offline(),
            Self::Flaky => FaultProfile::flaky(),
            Self::Outage => FaultProfile {
                outages: vec![outage.unwrap_or(Outage {
                    start_ms: now_ms,
                    end_ms: now_ms + 60_000,
                })],
                ..FaultProfile::perfect()
            },
        }
    }
}

/// Where the driver was: one of the UI's screens, and the stop it showed.
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export_to = "app/"))]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Screen {
    pub name: String,
    pub stop_id: Option<StopId>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub server_url: Option<String>,
    pub network: NetworkMode,
    pub outage: Option<Outage>,
    pub screen: Screen,
}

impl Settings {
    /// A missing or unreadable file gives the defaults (the outbox holds everything durable).
    pub fn load(path: &Path) -> Self {
        std::fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let tmp = path.with_extension("json.tmp");
        let bytes = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, path)
    }
}

const SCREENS: &[&str] = &["route", "stop", "scan", "attempt", "notes", "settings"];

#[tauri::command]
pub fn save_screen(
    state: State<'_, AppState>,
    name: String,
    stop_id: Option<StopId>,
) -> IpcResult<()> {
    if !SCREENS.contains(&name.as_str()) {
        return Err(IpcError::new(
            ErrorCode::InvalidInput,
            format!("unknown screen {name:?}"),
        ));
    }
    state.update_settings(|s| s.screen = Screen { name, stop_id })?;
    Ok(())
}

/// What field-test mode shows: the chosen mode, the effective profile and the injector's counters.
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export_to = "app/"))]
#[derive(Clone, Debug, Serialize)]
pub struct FieldTest {
    pub mode: NetworkMode,
    pub outage: Option<Outage>,
    pub profile: FaultProfile,
    pub stats: Option<FaultStats>,
}

fn field_test_of(state: &AppState) -> FieldTest {
    let s = state.settings();
    FieldTest {
        mode: s.network,
        outage: s.outage,
        profile: state.profile(),
        stats: state.fault_stats(),
    }
}

#[tauri::command]
pub fn field_test(state: State<'_, AppState>) -> FieldTest {
    field_test_of(&state)
}

#[tauri::command]
pub fn set_network_profile(
    state: State<'_, AppState>,
    mode: NetworkMode,
    outage_s: Option<u64>,
) -> IpcResult<FieldTest> {
    state.set_network(mode, outage_s)?;
    Ok(field_test_of(&state))
}
