//! The durable outbox: one SQLite file per device (WAL, `synchronous=FULL`).
//!
//! **Architecture invariants:**
//! - An event row, its `device_seq`, the HLC stamp it consumed and the projection change it
//!   causes are written in one immediate transaction: after `append` returns, a power cut
//!   loses nothing and the driver's screen matches the file.
//! - `device_seq` is `max + 1` inside that transaction, so it is gap-free even with several
//!   connections on one file.
//! - The `events` table is append-only (triggers refuse `UPDATE` and `DELETE`); what the server
//!   said about an event lives in `outcomes`. Nothing is ever dropped: rejected events stay.
//! - A file that is not an outbox, or is damaged, is refused with a typed error before anything
//!   is written to it.

mod append;
mod blob_queue;
mod checkpoint;
pub mod evidence;
mod projection;
mod queue;
mod route_order;
pub mod schema;
mod views;

pub use append::{AppendOutcome, Check, Draft, Refusal};
pub use blob_queue::{BlobKind, QueuedBlob};
pub use checkpoint::Checkpointer;
pub use queue::{PendingEvent, QueueStats, SettledProblem};
pub(crate) use views::stop_of_parcel_in;
pub use views::{LocalEvent, RouteView, StopDetail, StopSummary};

use doorstep_shared::{CourierId, DeviceId, HlcStamp};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a writer waits for another connection's transaction before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("{path} is not a Doorstep outbox (not an SQLite database); it was left untouched")]
    NotAnOutbox { path: PathBuf },
    #[error("the outbox {path} is damaged ({detail}); it was left untouched")]
    Corrupt { path: PathBuf, detail: String },
    #[error(
        "the outbox {path} has schema version {found}, newer than this app supports \
         ({supported}); update the app"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error("cannot read the outbox {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("stored {what} is unreadable: {detail}")]
    Decode { what: &'static str, detail: String },
    #[error("outbox storage error: {0}")]
    Sql(#[from] rusqlite::Error),
}

/// Who this device is, as issued by `POST /v1/enroll`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub device_id: DeviceId,
    pub courier_id: CourierId,
    pub token: String,
}

/// One open outbox file.
#[derive(Debug)]
pub struct Outbox {
    conn: Connection,
    path: PathBuf,
}

pub(crate) fn to_json<T: Serialize>(v: &T) -> Result<String, OutboxError> {
    serde_json::to_string(v).map_err(|e| OutboxError::Decode {
        what: "value to store",
        detail: e.to_string(),
    })
}

pub(crate) fn from_json<T: serde::de::DeserializeOwned>(
    s: &str,
    what: &'static str,
) -> Result<T, OutboxError> {
    serde_json::from_str(s).map_err(|e| OutboxError::Decode {
        what,
        detail: e.to_string(),
    })
}

/// Refuses a file whose first bytes are not SQLite's, without writing anything.
fn check_header(path: &Path) -> Result<(), OutboxError> {
    let io = |source| OutboxError::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(e)),
    };
    let mut head = Vec::with_capacity(16);
    file.by_ref().take(16).read_to_end(&mut head).map_err(io)?;
    if head.is_empty() || head.as_slice() == SQLITE_MAGIC {
        Ok(())
    } else {
        Err(OutboxError::NotAnOutbox {
            path: path.to_owned(),
        })
    }
}

impl Outbox {
    /// Opens (creating if missing) and migrates an outbox file.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, OutboxError> {
        let path = path.as_ref().to_owned();
        check_header(&path)?;
        let corrupt = |e: rusqlite::Error| match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::NotADatabase) => {
                OutboxError::NotAnOutbox { path: path.clone() }
            }
            Some(rusqlite::ErrorCode::DatabaseCorrupt) => OutboxError::Corrupt {
                path: path.clone(),
                detail: e.to_string(),
            },
            _ => OutboxError::Sql(e),
        };
        let mut conn = Connection::open(&path).map_err(corrupt)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        let check: String = conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .map_err(corrupt)?;
        if check != "ok" {
            return Err(OutboxError::Corrupt {
                path,
                detail: check,
            });
        }
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(corrupt)?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(%mode, "outbox could not switch to WAL");
        }
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // The capture path alone uses about a dozen statements; keep them all prepared.
        conn.set_prepared_statement_cache_capacity(64);
        // Checkpoints run in the background (see `checkpoint`); this only bounds the log.
        conn.pragma_update(None, "wal_autocheckpoint", checkpoint::BACKSTOP_PAGES)?;
        schema::migrate(&mut conn).map_err(|e| match e {
            schema::MigrateError::TooNew { found, supported } => OutboxError::TooNew {
                path: path.clone(),
                found,
                supported,
            },
            e @ schema::MigrateError::BrokenKeys { .. } => OutboxError::Corrupt {
                path: path.clone(),
                detail: e.to_string(),
            },
            schema::MigrateError::Sql(e) => corrupt(e),
        })?;
        Ok(Self { conn, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn meta(&self, key: &str) -> Result<Option<String>, OutboxError> {
        meta_get(&self.conn, key)
    }

    pub(crate) fn set_meta(&self, key: &str, value: &str) -> Result<(), OutboxError> {
        meta_set(&self.conn, key, value)
    }

    pub(crate) fn meta_u64(&self, key: &str) -> Result<Option<u64>, OutboxError> {
        Ok(self.meta(key)?.and_then(|v| v.parse().ok()))
    }

    pub fn identity(&self) -> Result<Option<Identity>, OutboxError> {
        identity_in(&self.conn)
    }

    pub fn set_identity(&self, identity: &Identity) -> Result<(), OutboxError> {
        self.set_meta("identity", &to_json(identity)?)
    }

    /// The last HLC stamp this device issued or observed.
    pub fn last_hlc(&self) -> Result<HlcStamp, OutboxError> {
        last_stamp(&self.conn)
    }

    /// Runs SQLite's full integrity check; `Ok(true)` when it reports "ok".
    pub fn integrity_ok(&self) -> Result<bool, OutboxError> {
        let r: String = self
            .conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
        Ok(r == "ok")
    }
}

/// The enrolled identity, read on `conn` (inside a caller's transaction, if it has one).
pub(crate) fn identity_in(conn: &Connection) -> Result<Option<Identity>, OutboxError> {
    meta_get(conn, "identity")?
        .map(|s| from_json(&s, "identity"))
        .transpose()
}

pub(crate) fn meta_get(conn: &Connection, key: &str) -> Result<Option<String>, OutboxError> {
    Ok(conn
        .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
        .query_row([key], |r| r.get(0))
        .optional()?)
}

pub(crate) fn meta_set(conn: &Connection, key: &str, value: &str) -> Result<(), OutboxError> {
    conn.prepare_cached(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = ?2",
    )?
    .execute(params![key, value])?;
    Ok(())
}

/// The last event row: its `device_seq` and HLC stamp (`None` before the first event).
pub(crate) fn last_event(conn: &Connection) -> Result<Option<(u64, HlcStamp)>, OutboxError> {
    Ok(conn
        .prepare_cached(
            "SELECT device_seq, hlc_wall_ms, hlc_logical FROM events
             ORDER BY device_seq DESC LIMIT 1",
        )?
        .query_row([], |r| {
            Ok((
                r.get(0)?,
                HlcStamp {
                    wall_ms: r.get(1)?,
                    logical: r.get(2)?,
                },
            ))
        })
        .optional()?)
}

/// The newer of `own` (the last event's stamp) and the stamp pulls keep in `meta` (they
/// observe office stamps). Appends do not write `meta` — the event row already carries its
/// stamp — so a durable capture touches one page fewer.
pub(crate) fn newest_stamp(
    conn: &Connection,
    own: Option<HlcStamp>,
) -> Result<HlcStamp, OutboxError> {
    let kept: HlcStamp = meta_get(conn, "hlc")?
        .map(|s| from_json(&s, "hlc"))
        .transpose()?
        .unwrap_or_default();
    Ok(own.map_or(kept, |own| own.max(kept)))
}

/// The last HLC stamp this device issued or observed.
pub(crate) fn last_stamp(conn: &Connection) -> Result<HlcStamp, OutboxError> {
    let own = last_event(conn)?.map(|(_, stamp)| stamp);
    newest_stamp(conn, own)
}
