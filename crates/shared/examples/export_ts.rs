//! Regenerates `ui/src/generated/*.ts` from the Rust wire types:
//! `cargo run -p doorstep-shared --features ts --example export_ts`.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = root.join(doorstep_shared::ts_export::GENERATED_DIR);
    if dir.exists() {
        // Start clean so a type that no longer exists leaves no file behind.
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "ts") {
                std::fs::remove_file(path)?;
            }
        }
    }
    doorstep_shared::ts_export::export_all(&dir)?;
    println!("wrote TypeScript bindings to {}", dir.display());
    Ok(())
}
