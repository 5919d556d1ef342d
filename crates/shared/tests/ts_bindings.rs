//! The committed TypeScript bindings match the Rust types. Run with `--features ts`; on failure,
//! regenerate with `cargo run -p doorstep-shared --features ts --example export_ts`.
#![cfg(feature = "ts")]

use std::collections::BTreeMap;
use std::path::Path;

fn ts_files(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir).expect("read the bindings directory") {
        let path = entry.expect("directory entry").path();
        if path.extension().is_some_and(|e| e == "ts") {
            let name = path
                .file_name()
                .expect("file name")
                .to_string_lossy()
                .into_owned();
            let text = std::fs::read_to_string(&path).expect("read a binding");
            out.insert(name, text);
        }
    }
    out
}

#[test]
fn committed_typescript_bindings_are_up_to_date() {
    let fresh = tempfile::tempdir().expect("temp dir");
    doorstep_shared::ts_export::export_all(fresh.path()).expect("export bindings");
    let committed = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(doorstep_shared::ts_export::GENERATED_DIR);
    let want = ts_files(fresh.path());
    let have = ts_files(&committed);
    let stale: Vec<&String> = want
        .keys()
        .chain(have.keys())
        .filter(|k| want.get(*k) != have.get(*k))
        .collect();
    assert!(
        stale.is_empty(),
        "ui/src/generated is stale ({stale:?}); run \
         `cargo run -p doorstep-shared --features ts --example export_ts`"
    );
}
