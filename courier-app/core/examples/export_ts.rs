//! Regenerates `ui/src/generated/core/*.ts` (and the contract types they use) from courier-core's
//! read models: `cargo run -p courier-core --features ts --example export_ts`.

use courier_core::ts_export::{CORE_SUBDIR, GENERATED_DIR, export_all};
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = root.join(GENERATED_DIR);
    let core = dir.join(CORE_SUBDIR);
    if core.exists() {
        // Start clean so a type that no longer exists leaves no file behind.
        for entry in std::fs::read_dir(&core)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "ts") {
                std::fs::remove_file(path)?;
            }
        }
    }
    export_all(&dir)?;
    println!("wrote TypeScript bindings to {}", core.display());
    Ok(())
}
