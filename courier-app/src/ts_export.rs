//! The TypeScript copies of the shell's IPC answers (`--features ts`): start-up snapshot,
//! receipts, errors, sync status view, field-test view. They land in `ui/src/generated/app/`,
//! next to courier-core's (`core/`) and the contract's (the root). The test below fails when
//! the committed files are stale; `DOORSTEP_WRITE_BINDINGS=1 cargo test -p courier-app
//! --features ts --lib ts_export` rewrites them.

use crate::enrollment::AppSnapshot;
use crate::error::IpcError;
use crate::receipt::Receipt;
use crate::settings::FieldTest;
use crate::sync::StatusView;
use std::path::Path;
use ts_rs::{Config, ExportError, TS};

/// The shell's own subdirectory of `ui/src/generated`.
pub const APP_SUBDIR: &str = "app";

/// Writes every IPC answer type, and the types they use, under `dir`.
pub fn export_all(dir: &Path) -> Result<(), ExportError> {
    let cfg = Config::new().with_large_int("number").with_out_dir(dir);
    AppSnapshot::export_all(&cfg)?;
    IpcError::export_all(&cfg)?;
    Receipt::export_all(&cfg)?;
    FieldTest::export_all(&cfg)?;
    StatusView::export_all(&cfg)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use courier_core::ts_export::{GENERATED_DIR, stale_bindings};

    #[test]
    fn committed_typescript_bindings_are_up_to_date() -> Result<(), Box<dyn std::error::Error>> {
        let committed = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(GENERATED_DIR);
        if std::env::var_os("DOORSTEP_WRITE_BINDINGS").is_some() {
            let own = committed.join(APP_SUBDIR);
            if own.exists() {
                std::fs::remove_dir_all(&own)?;
            }
            export_all(&committed)?;
        }
        let fresh = tempfile::tempdir()?;
        export_all(fresh.path())?;
        let stale = stale_bindings(fresh.path(), &committed, APP_SUBDIR)?;
        assert!(
            stale.is_empty(),
            "ui/src/generated is stale ({stale:?}); run `DOORSTEP_WRITE_BINDINGS=1 cargo test \
             -p courier-app --features ts --lib ts_export`"
        );
        Ok(())
    }
}
