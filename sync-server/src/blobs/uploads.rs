//! Resumable upload sessions (tus-like): create with the digest and size, ask for the offset,
//! append chunks at the exact offset with a per-chunk SHA-256, and the digest of the whole is
//! verified at completion. Sessions expire after a TTL; an expired session answers "expired"
//! and an unknown one "not found", and the client starts a new one from offset 0.
//!
//! Sessions are kept by an [`UploadSessions`] backend: in SQLite for the server (a session
//! survives a restart: `HEAD` still answers its offset and the upload resumes), or in memory.
//! The bytes so far live in the staging file `{id}.part`; the running SHA-256 of the whole is
//! kept in memory and recomputed from that file when the server restarted in between.
//!
//! **Invariant:** one session is mutated by one request at a time (a lock per service), and a
//! blob is published only through [`super::BlobStore::adopt`] after its digest matched.

use super::sessions::{MemorySessions, SessionRecord, UploadSessions};
use super::{BlobError, BlobStore};
use crate::store::StoreError;
use doorstep_shared::BlobDigest;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::sync::{Arc, Mutex, MutexGuard};

/// Largest blob accepted (a 1600 px JPEG is well under 1 MiB).
pub const MAX_BLOB_BYTES: u64 = 32 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("no upload session {0}; create a new one")]
    NotFound(String),
    #[error("upload session {0} expired without progress; create a new one")]
    Expired(String),
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
    #[error("upload sessions unavailable: {0}")]
    Sessions(#[from] StoreError),
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
        digest: BlobDigest,
        size: u64,
        stored_now: bool,
    },
}

/// The running hash of a session's bytes `0..offset`.
struct Running {
    offset: u64,
    hasher: Sha256,
}

pub struct Uploads {
    store: Arc<dyn BlobStore>,
    ttl_ms: u64,
    sessions: Arc<dyn UploadSessions>,
    /// Also the lock that serialises every session operation.
    hashes: Mutex<HashMap<String, Running>>,
}

impl Uploads {
    /// Uploads with sessions in memory (lost on restart).
    pub fn new(store: Arc<dyn BlobStore>, ttl_ms: u64) -> Self {
        Self::with_sessions(store, ttl_ms, Arc::new(MemorySessions::default()))
    }

    /// Uploads with sessions kept by `sessions` (the database, so they survive a restart).
    pub fn with_sessions(
        store: Arc<dyn BlobStore>,
        ttl_ms: u64,
        sessions: Arc<dyn UploadSessions>,
    ) -> Self {
        Self {
            store,
            ttl_ms,
            sessions,
            hashes: Mutex::new(HashMap::new()),
        }
    }

    pub fn store(&self) -> &Arc<dyn BlobStore> {
        &self.store
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Running>> {
        self.hashes.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn part(&self, id: &str) -> std::path::PathBuf {
        self.store.staging_dir().join(format!("{id}.part"))
    }

    fn discard(&self, hashes: &mut HashMap<String, Running>, id: &str) -> Result<(), UploadError> {
        self.sessions.remove_session(id)?;
        hashes.remove(id);
        let _ = std::fs::remove_file(self.part(id));
        Ok(())
    }

    /// Drops expired sessions and their partial files.
    fn sweep(&self, hashes: &mut HashMap<String, Running>, now_ms: u64) -> Result<(), UploadError> {
        for id in self.sessions.remove_expired_sessions(now_ms)? {
            hashes.remove(&id);
            let _ = std::fs::remove_file(self.part(&id));
        }
        Ok(())
    }

    /// The live session `id`, its offset clamped to the bytes really in its staging file (a
    /// crash between writing a chunk and recording it loses only that chunk).
    fn live(
        &self,
        hashes: &mut HashMap<String, Running>,
        id: &str,
        now_ms: u64,
    ) -> Result<SessionRecord, UploadError> {
        let Some(mut s) = self.sessions.session(id)? else {
            self.sweep(hashes, now_ms)?;
            return Err(UploadError::NotFound(id.to_owned()));
        };
        if s.expires_at_ms <= now_ms {
            self.discard(hashes, id)?;
            self.sweep(hashes, now_ms)?;
            return Err(UploadError::Expired(id.to_owned()));
        }
        self.sweep(hashes, now_ms)?;
        let on_disk = match std::fs::metadata(self.part(id)) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.discard(hashes, id)?;
                return Err(UploadError::NotFound(id.to_owned()));
            }
            Err(e) => return Err(e.into()),
        };
        s.offset = s.offset.min(on_disk);
        Ok(s)
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
        let mut hashes = self.lock();
        self.sweep(&mut hashes, now_ms)?;
        std::fs::create_dir_all(self.store.staging_dir())?;
        std::fs::File::create(self.part(&id))?;
        self.sessions.insert_session(&SessionRecord {
            id: id.clone(),
            digest,
            size,
            offset: 0,
            expires_at_ms: now_ms + self.ttl_ms,
        })?;
        hashes.insert(
            id.clone(),
            Running {
                offset: 0,
                hasher: Sha256::new(),
            },
        );
        Ok(Created::Session { id, offset: 0 })
    }

    /// `(offset, size)` of a live session.
    pub fn offset(&self, id: &str, now_ms: u64) -> Result<(u64, u64), UploadError> {
        let mut hashes = self.lock();
        let s = self.live(&mut hashes, id, now_ms)?;
        Ok((s.offset, s.size))
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
        let mut hashes = self.lock();
        let s = self.live(&mut hashes, id, now_ms)?;
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
            .read(true)
            .write(true)
            .open(self.part(id))?;
        f.set_len(s.offset)?;
        f.seek(SeekFrom::Start(s.offset))?;
        f.write_all(chunk)?;
        let new_offset = s.offset + chunk.len() as u64;
        let running = hashes.get_mut(id).filter(|r| r.offset == s.offset);
        if let Some(r) = running {
            r.hasher.update(chunk);
            r.offset = new_offset;
        } else {
            // Restarted in between: the hash of the whole is recomputed at completion.
            hashes.remove(id);
        }
        if new_offset < s.size {
            self.sessions
                .advance_session(id, new_offset, now_ms + self.ttl_ms)?;
            return Ok(Appended::Partial { offset: new_offset });
        }
        f.sync_all()?;
        let got = match hashes.remove(id) {
            Some(r) if r.offset == s.size => hex::encode(r.hasher.finalize()),
            _ => hash_file(&mut f)?,
        };
        drop(f);
        self.sessions.remove_session(id)?;
        if got != s.digest.as_str() {
            let _ = std::fs::remove_file(self.part(id));
            return Err(UploadError::DigestMismatch(s.digest));
        }
        let stored_now = self.store.adopt(&s.digest, &self.part(id))?;
        tracing::info!(digest = %s.digest, size = s.size, stored_now, "blob stored");
        Ok(Appended::Complete {
            digest: s.digest,
            size: s.size,
            stored_now,
        })
    }
}

/// Hex SHA-256 of a whole file (after a restart, when the running hash was lost).
fn hash_file(f: &mut std::fs::File) -> std::io::Result<String> {
    f.seek(SeekFrom::Start(0))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}
