//! # courier-app — the Tauri v2 shell of the Doorstep courier app
//!
//! A thin shell: every command converts its arguments, calls [`courier_core`] and maps the
//! answer to a serialisable view or an [`IpcError`] with a stable code. Nothing here decides
//! anything about deliveries; the outbox, the state machine and the sync engine live in the core.
//!
//! One file per area: [`enrollment`], [`route`], [`reroute`], [`stop`], [`scan`], [`attempt`],
//! [`notes`], [`sync`], [`settings`] (field-test mode and where the driver was). The managed state
//! ([`state::AppState`]) holds the device, the rerouter, the running sync engine task and the
//! fault-injecting transport that field-test mode switches; there is no process-global state.

pub mod attempt;
pub mod enrollment;
pub mod error;
pub mod notes;
pub mod receipt;
pub mod reroute;
pub mod route;
pub mod scan;
pub mod settings;
pub mod state;
pub mod stop;
pub mod sync;
#[cfg(feature = "ts")]
pub mod ts_export;

pub use error::{ErrorCode, IpcError};

use tauri::{Manager, Runtime};

/// Adds the app's commands and state to any builder (the real one, or a mock runtime's).
pub fn build<R: Runtime>(builder: tauri::Builder<R>) -> tauri::Builder<R> {
    builder
        .setup(|app| {
            let dir = state::data_dir(app.handle())?;
            let models = reroute::locate_models(
                std::env::var_os(reroute::MODELS_DIR_ENV).map(Into::into),
                app.path().resource_dir().ok(),
                std::env::current_exe().ok(),
            );
            let app_state = state::AppState::open(&dir, &models)?;
            app.manage(app_state);
            Ok(())
        })
        .invoke_handler(tauri::generate_handler![
            enrollment::app_state,
            enrollment::enroll,
            route::get_route,
            reroute::propose_reroute,
            reroute::accept_reroute,
            reroute::undo_reroute,
            reroute::accepted_reroute,
            reroute::dismiss_reroute,
            stop::get_stop,
            stop::arrive,
            scan::scan_parcel,
            attempt::record_delivery,
            attempt::record_failure,
            notes::new_note_id,
            notes::add_note,
            sync::sync_status,
            sync::sync_now,
            settings::save_screen,
            settings::set_network_profile,
            settings::field_test,
        ])
}

#[cfg_attr(mobile, tauri::mobile_entry_point)]
pub fn run() {
    #[cfg(desktop)]
    init_logging();
    if let Err(e) = build(tauri::Builder::default()).run(tauri::generate_context!()) {
        tracing::error!(error = %e, "the courier app stopped with an error");
        std::process::exit(1);
    }
}

/// Logs to stderr on desktop (`RUST_LOG` filters); mobile platforms bring their own loggers.
#[cfg(desktop)]
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
