//! Storage. The trait, its models and the algorithms above it live in `doorstep-store`, which
//! knows no database driver; this module holds the backends that implement it and the choice
//! of backend from a database URL.
//!
//! **Invariant:** a backend applies each pushed event, its outcome and the device's
//! `last_applied_seq` atomically, as the push algorithm tells it — it never decides on its own.

pub mod postgres;
pub mod sqlite;

pub use doorstep_store::*;

/// A database URL, parsed once by the binary to choose the backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// `sqlite://PATH`
    SqliteFile(std::path::PathBuf),
    /// `sqlite::memory:` (tests and the deterministic simulator)
    SqliteMemory,
    /// `postgres://…` or `postgresql://…`, handed to the driver as it is.
    Postgres(String),
}

impl DatabaseUrl {
    pub fn parse(url: &str) -> StoreResult<Self> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            Ok(Self::SqliteFile(path.into()))
        } else if url == "sqlite::memory:" {
            Ok(Self::SqliteMemory)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres(url.to_owned()))
        } else {
            Err(StoreError::UnsupportedUrl(url.to_owned()))
        }
    }
}

/// Opens an SQLite database named by `url`, running migrations.
pub fn open_sqlite(url: &str) -> StoreResult<sqlite::SqliteStore> {
    match DatabaseUrl::parse(url)? {
        DatabaseUrl::SqliteFile(path) => sqlite::SqliteStore::open(&path),
        DatabaseUrl::SqliteMemory => sqlite::SqliteStore::open_in_memory(),
        DatabaseUrl::Postgres(_) => Err(StoreError::UnsupportedUrl(url.to_owned())),
    }
}
