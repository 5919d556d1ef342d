//! Writes the TypeScript copies of the read models the courier app's IPC returns (route, stop,
//! sync status, a re-plan proposal, the fault injector's profile and counters; `--features ts`).
//! They land in `ui/src/generated/core/`; the contract types they use are written next to the
//! shared ones in `ui/src/generated/` (identical to what `doorstep-shared`'s export writes). `tests/ts_bindings.rs` fails when they are stale, and
//! `cargo run -p courier-core --features ts --example export_ts` rewrites them.

use crate::outbox::{RouteView, StopDetail};
use crate::reroute::Proposal;
use crate::sync::SyncStatus;
use crate::transport::faulty::{FaultProfile, FaultStats};
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
    FaultProfile::export_all(&cfg)?;
    FaultStats::export_all(&cfg)?;
    Ok(())
}

/// The `.ts` files directly in `dir`, by name. A missing directory is empty.
fn ts_files(dir: &Path) -> std::io::Result<std::collections::BTreeMap<String, String>> {
    let mut out = std::collections::BTreeMap::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "ts")
            && let Some(name) = path.file_name()
        {
            out.insert(
                name.to_string_lossy().into_owned(),
                std::fs::read_to_string(&path)?,
            );
        }
    }
    Ok(out)
}

/// Which committed bindings differ from a fresh export: in `own_subdir`, exactly the fresh set
/// (nothing missing, nothing extra, nothing changed); every other directory of the fresh export
/// (the types they import) must be present and identical in the committed tree.
pub fn stale_bindings(
    fresh: &Path,
    committed: &Path,
    own_subdir: &str,
) -> std::io::Result<Vec<String>> {
    let want = ts_files(&fresh.join(own_subdir))?;
    let have = ts_files(&committed.join(own_subdir))?;
    let mut stale: Vec<String> = want
        .keys()
        .chain(have.keys())
        .filter(|k| want.get(*k) != have.get(*k))
        .map(|k| format!("{own_subdir}/{k}"))
        .collect();
    let mut dirs = vec![String::new()];
    for entry in std::fs::read_dir(fresh)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type()?.is_dir() && name != own_subdir {
            dirs.push(name);
        }
    }
    for sub in dirs {
        let deps = ts_files(&fresh.join(&sub))?;
        let shared = ts_files(&committed.join(&sub))?;
        let prefix = if sub.is_empty() {
            String::new()
        } else {
            format!("{sub}/")
        };
        stale.extend(
            deps.iter()
                .filter(|(k, v)| shared.get(*k) != Some(*v))
                .map(|(k, _)| format!("{prefix}{k}")),
        );
    }
    stale.sort();
    stale.dedup();
    Ok(stale)
}
