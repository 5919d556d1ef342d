//! Writes the TypeScript copies of the read models the courier app's IPC returns (route, stop,
//! sync status, a re-plan proposal; `--features ts`). They land in `ui/src/generated/core/`;
//! the contract types they use are written next to the shared ones in `ui/src/generated/`
//! (identical to what
//! `doorstep-shared`'s export writes). `tests/ts_bindings.rs` fails when they are stale, and
//! `cargo run -p courier-core --features ts --example export_ts` rewrites them.

use crate::outbox::{RouteView, StopDetail};
use crate::reroute::Proposal;
use crate::sync::SyncStatus;
use std::path::Path;
use ts_rs::{Config, ExportError, TS};

/// The shared bindings directory, relative to the workspace root.
pub const GENERATED_DIR: &str = "ui/src/generated";

/// The subdirectory of [`GENERATED_DIR`] holding courier-core's own types.
pub const CORE_SUBDIR: &str = "core";

/// Writes every exported type, and the types they depend on, under `dir` (one file per type).
/// Integers are `number`: every integer here (Unix ms, counters, sequences) is below 2^53.
pub fn export_all(dir: &Path) -> Result<(), ExportError> {
    let cfg = Config::new().with_large_int("number").with_out_dir(dir);
    RouteView::export_all(&cfg)?;
    StopDetail::export_all(&cfg)?;
    SyncStatus::export_all(&cfg)?;
    Proposal::export_all(&cfg)?;
    Ok(())
}
