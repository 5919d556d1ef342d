//! Blob storage for proof-of-delivery photos: content-addressed by SHA-256, one stored copy per
//! digest, behind the [`BlobStore`] trait (file system by default), and resumable upload
//! sessions ([`uploads`]).
//!
//! **Invariants:** a blob becomes visible only by an atomic rename of a fully written,
//! digest-verified file into its content-addressed path; a second upload of a stored digest
//! stores nothing.

pub mod sessions;
pub mod uploads;

use doorstep_shared::BlobDigest;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("blob storage I/O failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Where verified blobs live.
pub trait BlobStore: Send + Sync + 'static {
    fn contains(&self, digest: &BlobDigest) -> bool;
    /// The blob's bytes, `None` when it is not stored.
    fn read(&self, digest: &BlobDigest) -> Result<Option<Vec<u8>>, BlobError>;
    /// Moves a fully written and verified file into place. Returns false when the digest was
    /// already stored (the file is discarded: one copy per digest).
    fn adopt(&self, digest: &BlobDigest, verified_file: &Path) -> Result<bool, BlobError>;
    /// A directory on the same file system for partial uploads.
    fn staging_dir(&self) -> PathBuf;
}

/// Blobs as files under `root/sha256/ab/abcdef…`.
#[derive(Clone, Debug)]
pub struct FsBlobStore {
    root: PathBuf,
}

impl FsBlobStore {
    /// Blobs under `root`; directories are created on the first write.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    fn path(&self, digest: &BlobDigest) -> PathBuf {
        let d = digest.as_str();
        self.root.join("sha256").join(&d[..2]).join(d)
    }
}

impl BlobStore for FsBlobStore {
    fn contains(&self, digest: &BlobDigest) -> bool {
        self.path(digest).is_file()
    }

    fn read(&self, digest: &BlobDigest) -> Result<Option<Vec<u8>>, BlobError> {
        match std::fs::read(self.path(digest)) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn adopt(&self, digest: &BlobDigest, verified_file: &Path) -> Result<bool, BlobError> {
        let dest = self.path(digest);
        if dest.is_file() {
            std::fs::remove_file(verified_file)?;
            return Ok(false);
        }
        if let Some(dir) = dest.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::File::open(verified_file)?.sync_all()?;
        std::fs::rename(verified_file, &dest)?;
        Ok(true)
    }

    fn staging_dir(&self) -> PathBuf {
        self.root.join("staging")
    }
}
