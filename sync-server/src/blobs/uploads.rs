//! Resumable upload sessions (tus-like): create with the digest and size, ask for the offset,
//! append chunks at the exact offset with a per-chunk SHA-256, and the digest of the whole is
//! verified at completion. Sessions expire after a TTL; an expired or unknown session answers
//! "not found" and the client starts a new one from offset 0.
//!
//! **Invariant:** one session is mutated by one request at a time (a lock per service), and a
//! blob is published only through [`super::BlobStore::adopt`] after its digest matched.

use super::{BlobError, BlobStore};
use doorstep_shared::BlobDigest;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex, MutexGuard};

/// Largest blob accepted (a 1600 px JPEG is well under 1 MiB).
pub const MAX_BLOB_BYTES: u64 = 32 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("no upload session {0} (unknown or expired); create a new one")]
    NotFound(String),
    #[error("the upload is at offset {expected}, not {got}")]
    OffsetMismatch { expected: u64, got: u64 },
    #[error("the chunk's checksum does not match its bytes")]
    ChecksumMismatch,
    #[error("the chunk goes past the declared size {size}")]
    TooLong { size: u64 },
    #[error("the uploaded bytes do not hash to {0}; the session was discarded")]
    DigestMismatch(BlobDigest),
    #[error("a blob of {0} bytes is larger than allowed")]
    TooLarge(u64),
    #[error(transparent)]
    Storage(#[from] BlobError),
}

impl From<std::io::Error> for UploadError {
    fn from(e: std::io::Error) -> Self {
        Self::Storage(BlobError::Io(e))
    }
}

/// What creating an upload answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Created {
    /// The digest is already stored: nothing to upload.
    AlreadyStored,
    Session {
        id: String,
        offset: u64,
    },
}

/// Where a chunk left the session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Appended {
    Partial {
        offset: u64,
    },
    /// The last chunk: verified and stored (`stored_now` false when another session won).
    Complete {
        size: u64,
        stored_now: bool,
    },
}

#[derive(Debug)]
struct Session {
    digest: BlobDigest,
    size: u64,
    offset: u64,
    expires_at_ms: u64,
    hasher: Sha256,
}

pub struct Uploads {
    store: Arc<dyn BlobStore>,
    ttl_ms: u64,
    sessions: Mutex<HashMap<String, Session>>,
}

impl Uploads {
    pub fn new(store: Arc<dyn BlobStore>, ttl_ms: u64) -> Self {
        Self {
            store,
            ttl_ms,
            sessions: Mutex::new(HashMap::new()),
        }
    }

    pub fn store(&self) -> &Arc<dyn BlobStore> {
        &self.store
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Session>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn part(&self, id: &str) -> std::path::PathBuf {
        self.store.staging_dir().join(format!("{id}.part"))
    }

    /// Drops expired sessions and their partial files.
    fn sweep(&self, sessions: &mut HashMap<String, Session>, now_ms: u64) {
        let expired: Vec<String> = sessions
            .iter()
            .filter(|(_, s)| s.expires_at_ms <= now_ms)
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            sessions.remove(&id);
            let _ = std::fs::remove_file(self.part(&id));
        }
    }

    pub fn create(
        &self,
        digest: BlobDigest,
        size: u64,
        now_ms: u64,
        id: String,
    ) -> Result<Created, UploadError> {
        if size > MAX_BLOB_BYTES {
            return Err(UploadError::TooLarge(size));
        }
        if self.store.contains(&digest) {
            return Ok(Created::AlreadyStored);
        }
        let mut sessions = self.lock();
        self.sweep(&mut sessions, now_ms);
        std::fs::create_dir_all(self.store.staging_dir())?;
        std::fs::File::create(self.part(&id))?;
        sessions.insert(
            id.clone(),
            Session {
                digest,
                size,
                offset: 0,
                expires_at_ms: now_ms + self.ttl_ms,
                hasher: Sha256::new(),
            },
        );
        Ok(Created::Session { id, offset: 0 })
    }

    /// `(offset, size)` of a live session.
    pub fn offset(&self, id: &str, now_ms: u64) -> Result<(u64, u64), UploadError> {
        let mut sessions = self.lock();
        self.sweep(&mut sessions, now_ms);
        sessions
            .get(id)
            .map(|s| (s.offset, s.size))
            .ok_or_else(|| UploadError::NotFound(id.to_owned()))
    }

    /// Appends `chunk` at `offset`; `checksum` is the hex SHA-256 of the chunk.
    pub fn append(
        &self,
        id: &str,
        offset: u64,
        checksum: &str,
        chunk: &[u8],
        now_ms: u64,
    ) -> Result<Appended, UploadError> {
        let mut sessions = self.lock();
        self.sweep(&mut sessions, now_ms);
        let s = sessions
            .get_mut(id)
            .ok_or_else(|| UploadError::NotFound(id.to_owned()))?;
        if offset != s.offset {
            return Err(UploadError::OffsetMismatch {
                expected: s.offset,
                got: offset,
            });
        }
        if !hex::encode(Sha256::digest(chunk)).eq_ignore_ascii_case(checksum.trim()) {
            return Err(UploadError::ChecksumMismatch);
        }
        if s.offset + chunk.len() as u64 > s.size {
            return Err(UploadError::TooLong { size: s.size });
        }
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(self.part(id))?;
        f.write_all(chunk)?;
        s.hasher.update(chunk);
        s.offset += chunk.len() as u64;
        s.expires_at_ms = now_ms + self.ttl_ms;
        if s.offset < s.size {
            return Ok(Appended::Partial { offset: s.offset });
        }
        f.sync_all()?;
        drop(f);
        let Some(done) = sessions.remove(id) else {
            return Err(UploadError::NotFound(id.to_owned()));
        };
        let got = hex::encode(done.hasher.finalize());
        if got != done.digest.as_str() {
            let _ = std::fs::remove_file(self.part(id));
            return Err(UploadError::DigestMismatch(done.digest));
        }
        let stored_now = self.store.adopt(&done.digest, &self.part(id))?;
        tracing::info!(digest = %done.digest, size = done.size, stored_now, "blob stored");
        Ok(Appended::Complete {
            size: done.size,
            stored_now,
        })
    }
}
