//! The one error a storage backend returns. Expected outcomes (duplicate, conflict, rejected)
//! are data in the results, never errors; this is for the database itself failing.

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Busy, locked, a deadlock or serialization failure, a lost connection, out of disk: the
    /// same work may succeed if retried.
    #[error("storage temporarily unavailable: {0}")]
    Transient(String),
    /// Anything else: a bug, a corrupt row, a schema the binary does not know.
    #[error("storage failure: {0}")]
    Fatal(String),
    /// The database URL names no backend this build has.
    #[error("unsupported database URL {0:?}: use sqlite://PATH, sqlite::memory: or postgres://…")]
    UnsupportedUrl(String),
}

pub type StoreResult<T> = Result<T, StoreError>;
