//! The committed TypeScript bindings of courier-core's read models match the Rust types. Run with
//! `--features ts`; on failure, regenerate with
//! `cargo run -p courier-core --features ts --example export_ts`.
#![cfg(feature = "ts")]

use courier_core::ts_export::{CORE_SUBDIR, GENERATED_DIR, export_all};
use std::collections::BTreeMap;
use std::path::Path;

fn ts_files(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries {
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
    export_all(fresh.path()).expect("export bindings");
    let committed = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(GENERATED_DIR);

    // courier-core's own directory: exactly the fresh set.
    let want = ts_files(&fresh.path().join(CORE_SUBDIR));
    let have = ts_files(&committed.join(CORE_SUBDIR));
    let mut stale: Vec<String> = want
        .keys()
        .chain(have.keys())
        .filter(|k| want.get(*k) != have.get(*k))
        .map(|k| format!("{CORE_SUBDIR}/{k}"))
        .collect();

    // The contract types they import: present and identical in the shared directory.
    let deps = ts_files(fresh.path());
    let shared = ts_files(&committed);
    stale.extend(
        deps.iter()
            .filter(|(k, v)| shared.get(*k) != Some(*v))
            .map(|(k, _)| k.clone()),
    );
    stale.sort();
    stale.dedup();
    assert!(
        stale.is_empty(),
        "ui/src/generated is stale ({stale:?}); run \
         `cargo run -p courier-core --features ts --example export_ts` (and \
         `cargo run -p doorstep-shared --features ts --example export_ts`)"
    );
}
