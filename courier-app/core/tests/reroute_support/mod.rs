//! Shared by the reroute test binaries: paths, a models directory to tamper with, a route.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use courier_core::reroute::onnx::MANIFEST_FILE;
use courier_core::reroute::scenario::Scenario;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn models() -> PathBuf {
    root().join("models")
}

/// A copy of `models/` (manifest + model) in a temp dir, to break on purpose.
pub fn copy_models() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    for f in [MANIFEST_FILE, "delivery_success.onnx"] {
        std::fs::copy(models().join(f), dir.path().join(f))
            .unwrap_or_else(|e| panic!("copy {f}: {e}"));
    }
    dir
}

pub fn manifest(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join(MANIFEST_FILE)).unwrap_or_default();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("manifest: {e}"))
}

pub fn write_manifest(dir: &Path, m: &serde_json::Value) {
    std::fs::write(dir.join(MANIFEST_FILE), m.to_string())
        .unwrap_or_else(|e| panic!("write manifest: {e}"));
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// A synthetic route of `seed`.
pub fn route(seed: u64) -> Scenario {
    Scenario::generate(seed, 3, 1)
}
