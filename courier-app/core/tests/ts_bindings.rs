//! The committed TypeScript bindings of courier-core's read models match the Rust types. Run with
//! `--features ts`; on failure, regenerate with
//! `cargo run -p courier-core --features ts --example export_ts`.
#![cfg(feature = "ts")]

use courier_core::ts_export::{CORE_SUBDIR, GENERATED_DIR, export_all, stale_bindings};
use std::path::Path;

#[test]
fn committed_typescript_bindings_are_up_to_date() -> Result<(), Box<dyn std::error::Error>> {
    let fresh = tempfile::tempdir()?;
    export_all(fresh.path())?;
    let committed = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(GENERATED_DIR);
    let stale = stale_bindings(fresh.path(), &committed, CORE_SUBDIR)?;
    assert!(
        stale.is_empty(),
        "ui/src/generated is stale ({stale:?}); run \
         `cargo run -p courier-core --features ts --example export_ts` (and \
         `cargo run -p doorstep-shared --features ts --example export_ts`)"
    );
    Ok(())
}
