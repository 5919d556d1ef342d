//! What one server runs with. The binary reads flags and environment once, in `main`, into a
//! [`Settings`] value that travels with the [`crate::service::App`]; nothing below `main`
//! reads the environment.

use doorstep_shared::dashboard::OFFLINE_AFTER_MS;
use std::path::PathBuf;

/// The built dashboard's directory, relative to the working directory.
pub const DEFAULT_UI_DIR: &str = "ui/dashboard/dist";
/// Where blobs live by default, relative to the working directory.
pub const DEFAULT_BLOB_DIR: &str = "./data/blobs";
/// Upload sessions live this long without progress.
pub const DEFAULT_UPLOAD_TTL_MS: u64 = 24 * 3_600_000;
/// How long a dispatcher command whose server died mid-command blocks a retry with its key.
pub const DEFAULT_IDEMPOTENCY_LEASE_MS: u64 = 60_000;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// The built dashboard (index.html, assets/), served at `/`.
    pub ui_dir: PathBuf,
    /// Blob storage; several servers share one directory.
    pub blob_dir: PathBuf,
    pub upload_ttl_ms: u64,
    /// Without contact for this long, a device shows as offline.
    pub offline_after_ms: u64,
    pub idempotency_lease_ms: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            ui_dir: PathBuf::from(DEFAULT_UI_DIR),
            blob_dir: PathBuf::from(DEFAULT_BLOB_DIR),
            upload_ttl_ms: DEFAULT_UPLOAD_TTL_MS,
            offline_after_ms: OFFLINE_AFTER_MS,
            idempotency_lease_ms: DEFAULT_IDEMPOTENCY_LEASE_MS,
        }
    }
}
