//! Re-planning the route on the device: a proposed order and why (expected successful
//! deliveries, windows kept, travel time, the model version or why the model is not in use),
//! then accept, dismiss or undo. Accept and undo are `RouteReplanned` facts in the outbox; the
//! route screen shows the order the outbox holds.

use crate::error::{ErrorCode, IpcError, IpcResult};
use crate::receipt::{Receipt, receipt};
use crate::state::AppState;
use courier_core::reroute::from_view::{now_for, plan_input};
use courier_core::reroute::{Proposal, Rerouter, Review, onnx};
use courier_core::{Device, DeviceError};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;
use tauri::State;

/// Overrides where the model and its manifest are looked for.
pub const MODELS_DIR_ENV: &str = "DOORSTEP_MODELS_DIR";
/// The solver's anytime budget for one re-plan (scoring included).
const BUDGET: Duration = Duration::from_millis(10);

/// Where the model directory is: `$DOORSTEP_MODELS_DIR`, the app's bundled `models/`
/// resource, or the source tree a development build runs from (`target/<profile>/courier-app`
/// → `models/`). The first that holds a manifest wins; otherwise the bundled path, so the
/// notice names where the model was expected.
pub fn locate_models(
    env: Option<PathBuf>,
    resource_dir: Option<PathBuf>,
    exe: Option<PathBuf>,
) -> PathBuf {
    if let Some(dir) = env.filter(|d| !d.as_os_str().is_empty()) {
        return dir;
    }
    let bundled = resource_dir.map(|r| r.join("models"));
    let source_tree = exe
        .as_deref()
        .and_then(|e| e.ancestors().nth(3))
        .map(|root| root.join("models"));
    let candidates: Vec<PathBuf> = bundled.iter().chain(&source_tree).cloned().collect();
    candidates
        .iter()
        .find(|d| d.join(onnx::MANIFEST_FILE).is_file())
        .or(candidates.first())
        .cloned()
        .unwrap_or_else(|| PathBuf::from("models"))
}

/// The rerouter (loaded once, off the UI thread) and what the route screen is reviewing.
#[derive(Debug)]
pub struct Rerouting {
    models_dir: PathBuf,
    runtime: PathBuf,
    rerouter: OnceLock<Mutex<Rerouter>>,
    review: Mutex<Review>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Rerouting {
    /// The model in `models_dir`; ONNX Runtime where [`onnx::locate_runtime`] finds it for the
    /// tree around it (`$ORT_DYLIB_PATH` first). The review resumes where the last run left it
    /// (an accepted re-plan stays undoable, see [`Review::restore`]).
    pub fn new(models_dir: &Path, device: &Device) -> Result<Self, DeviceError> {
        let root = models_dir.parent().unwrap_or(Path::new("."));
        Ok(Self {
            runtime: onnx::locate_runtime(root),
            models_dir: models_dir.to_owned(),
            rerouter: OnceLock::new(),
            review: Mutex::new(Review::restore(device)?),
        })
    }

    /// Loads the model on a background thread so that neither start-up nor the first
    /// re-plan waits for it (a re-plan that comes first waits for the same load).
    pub fn preload(self: &Arc<Self>) {
        let me = self.clone();
        std::thread::spawn(move || {
            drop(me.rerouter());
        });
    }

    fn rerouter(&self) -> MutexGuard<'_, Rerouter> {
        lock(self.rerouter.get_or_init(|| {
            let (rerouter, notice) = Rerouter::load(&self.models_dir, &self.runtime);
            match &notice {
                Some(n) => tracing::warn!(cause = %n.cause, "rerouting without the model"),
                None => tracing::info!(
                    version = rerouter.model_version().unwrap_or_default(),
                    "delivery-success model loaded"
                ),
            }
            Mutex::new(rerouter)
        }))
    }
}

/// Proposes a new order for the remaining stops of the current route. `utc_offset_min` is the
/// device's offset east of UTC (the model works in local time). Runs off the UI thread: the
/// first call may wait for the model to finish loading.
#[tauri::command]
pub async fn propose_reroute(
    state: State<'_, AppState>,
    utc_offset_min: i32,
) -> IpcResult<Proposal> {
    let (device, rerouting, now_ms) = (
        state.device.clone(),
        state.rerouting.clone(),
        state.now_ms(),
    );
    tauri::async_runtime::spawn_blocking(move || {
        propose(&device, &rerouting, now_ms, utc_offset_min)
    })
    .await
    .map_err(|e| IpcError::new(ErrorCode::Storage, format!("the re-plan stopped: {e}")))?
}

fn propose(
    device: &Device,
    rerouting: &Rerouting,
    now_ms: u64,
    utc_offset_min: i32,
) -> IpcResult<Proposal> {
    let view = device
        .route(None)?
        .ok_or_else(|| IpcError::new(ErrorCode::NotFound, "no route on this device yet"))?;
    let span = tracing::info_span!("propose_reroute", route_id = %view.route_id);
    let _guard = span.enter();
    let depot = device.route_depot(view.route_id)?.ok_or_else(|| {
        IpcError::new(
            ErrorCode::NotFound,
            format!("route {} is not on this device", view.route_id),
        )
    })?;
    let now = now_for(&view, now_ms, utc_offset_min, depot)?;
    let input = plan_input(&view, &now, |_| None);
    // The seed is the time: every proposal gets its own digest, so accepting a fresh proposal
    // after an undo is a new intent, not a duplicate of the first accept.
    let proposal = rerouting
        .rerouter()
        .propose_within(&input, BUDGET, now_ms)?;
    Ok(lock(&rerouting.review).show(proposal).clone())
}

/// Accepts the proposal on screen: a `RouteReplanned` fact, and the route takes its order.
#[tauri::command]
pub fn accept_reroute(state: State<'_, AppState>, inputs_digest: String) -> IpcResult<Receipt> {
    let mut review = lock(&state.rerouting.review);
    receipt(review.accept(&state.device, &inputs_digest)?)
}

/// The accepted proposal Undo would revert, if any (it survives a restart).
#[tauri::command]
pub fn accepted_reroute(state: State<'_, AppState>) -> Option<Proposal> {
    lock(&state.rerouting.review).accepted().cloned()
}

/// Undoes the accepted proposal: another `RouteReplanned` fact with the order it replaced.
#[tauri::command]
pub fn undo_reroute(state: State<'_, AppState>, inputs_digest: String) -> IpcResult<Receipt> {
    let mut review = lock(&state.rerouting.review);
    receipt(review.undo(&state.device, &inputs_digest)?)
}

/// Keeps the current order: the proposal leaves the screen, nothing is recorded.
#[tauri::command]
pub fn dismiss_reroute(state: State<'_, AppState>, inputs_digest: String) -> IpcResult<()> {
    if lock(&state.rerouting.review).dismiss(&inputs_digest) {
        Ok(())
    } else {
        Err(IpcError::new(
            ErrorCode::NotFound,
            "that proposal is no longer on screen",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_models_directory_is_found_in_order() {
        let tmp = std::env::temp_dir().join(format!("courier-app-models-{}", std::process::id()));
        let tree = tmp.join("repo");
        let exe = tree.join("target/debug/courier-app");
        std::fs::create_dir_all(tree.join("models")).expect("dirs");
        std::fs::write(tree.join("models").join(onnx::MANIFEST_FILE), "{}").expect("manifest");
        let bundled = tmp.join("resources");

        let env = Some(PathBuf::from("/opt/models"));
        assert_eq!(
            locate_models(env, Some(bundled.clone()), Some(exe.clone())),
            PathBuf::from("/opt/models")
        );
        assert_eq!(
            locate_models(None, Some(bundled.clone()), Some(exe.clone())),
            tree.join("models"),
            "a development build finds the source tree's model"
        );
        std::fs::remove_file(tree.join("models").join(onnx::MANIFEST_FILE)).expect("rm");
        assert_eq!(
            locate_models(Some(PathBuf::new()), Some(bundled.clone()), Some(exe)),
            bundled.join("models"),
            "nothing found: the bundled path, so the notice names it"
        );
        let _ = std::fs::remove_dir_all(&tmp);
    }

    #[test]
    fn a_missing_runtime_gives_a_solver_only_rerouter_with_its_notice() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = std::sync::Arc::new(courier_core::ManualClock::new(1_780_000_000_000));
        let device = Device::open(dir.path().join("outbox.db"), clock, 1).expect("device");
        let r = Rerouting::new(Path::new("/nonexistent/doorstep/models"), &device).expect("new");
        let rerouter = r.rerouter();
        assert!(rerouter.model_version().is_none());
        let notice = rerouter.notice().expect("a notice to show");
        assert!(notice.message.contains("distance and time windows only"));
    }
}
