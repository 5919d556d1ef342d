//! WAL checkpoints off the capture path.
//!
//! In WAL mode a commit only appends to the log; copying the log back into the database file
//! (a checkpoint) is separate work. By default SQLite runs it inside whichever commit crosses
//! 1,000 log pages, so now and then a driver's tap would pay for it. The outbox raises that
//! inline backstop to [`BACKSTOP_PAGES`], and a [`Checkpointer`] — its own connection on its
//! own thread — runs a `PASSIVE` checkpoint after every [`EVERY_APPENDS`] recorded events.
//! A passive checkpoint never blocks the writer and never loses a committed frame; if the
//! thread is gone the backstop still bounds the log.
//!
//! Passive checkpoints alone do not bound the log *file* under sustained writes: SQLite only
//! rewinds the log to its start when a write begins with every frame already copied back, and
//! back-to-back commits (a burst of scans, a long pull) never give it that moment. The file then
//! grows with every commit, and a commit that extends a file makes `fsync` flush the file's
//! metadata too — on a fast disk that costs about half as much again as the commit itself. So
//! once the log holds [`RESTART_FRAMES`] frames, the thread follows the passive pass with a
//! `RESTART` checkpoint: it waits for the current writer, copies the few frames appended since,
//! and rewinds the log, holding the next commit back for that short copy. Later commits
//! overwrite blocks the file already has.

use super::{BUSY_TIMEOUT, OutboxError};
use rusqlite::Connection;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

/// Log pages after which a commit checkpoints inline anyway (about 40 MB of 4 KiB pages).
pub(crate) const BACKSTOP_PAGES: u32 = 10_000;
/// Recorded events between two background checkpoints.
pub const EVERY_APPENDS: u64 = 128;
/// Log frames (about 4 MB of 4 KiB pages) at which a checkpoint also rewinds the log.
pub(crate) const RESTART_FRAMES: i64 = 1_000;

/// Asks the background thread for checkpoints; dropping it ends the thread.
#[derive(Debug)]
pub struct Checkpointer {
    wake: SyncSender<()>,
    appends: AtomicU64,
}

impl Checkpointer {
    /// Opens a second connection on `path` and starts the checkpoint thread.
    pub fn start(path: &Path) -> Result<Self, OutboxError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        let (wake, requests) = sync_channel(1);
        std::thread::Builder::new()
            .name("outbox-checkpoint".into())
            .spawn(move || serve(&conn, &requests))
            .map_err(|e| OutboxError::Io {
                path: path.to_owned(),
                source: e,
            })?;
        Ok(Self {
            wake,
            appends: AtomicU64::new(0),
        })
    }

    /// Counts one recorded event; every [`EVERY_APPENDS`]th wakes the thread (never waits).
    pub fn recorded(&self) {
        let n = self.appends.fetch_add(1, Ordering::Relaxed) + 1;
        if n.is_multiple_of(EVERY_APPENDS) {
            self.request();
        }
    }

    /// Asks for a checkpoint now (one pending request is enough; extra ones are dropped).
    pub fn request(&self) {
        match self.wake.try_send(()) {
            Ok(()) | Err(TrySendError::Full(())) => {}
            Err(TrySendError::Disconnected(())) => {
                tracing::warn!("checkpoint thread is gone; the inline backstop bounds the log");
            }
        }
    }
}

fn serve(conn: &Connection, requests: &Receiver<()>) {
    while requests.recv().is_ok() {
        match checkpoint(conn) {
            Ok(pass) => tracing::debug!(?pass, "outbox checkpoint"),
            Err(e) => tracing::warn!(error = %e, "outbox checkpoint failed; will retry"),
        }
    }
}

/// What one checkpoint pass did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Pass {
    /// Frames in the log when the passive checkpoint ran.
    pub log_frames: i64,
    /// Frames the passive checkpoint copied into the database file.
    pub copied: i64,
    /// Whether the log was rewound to its start (`RESTART`).
    pub rewound: bool,
}

/// A passive checkpoint, then a `RESTART` one if the log has grown to [`RESTART_FRAMES`].
pub(crate) fn checkpoint(conn: &Connection) -> Result<Pass, rusqlite::Error> {
    let (log_frames, copied) = run(conn, "PASSIVE")?;
    let mut rewound = false;
    if log_frames >= RESTART_FRAMES {
        // `busy` = 1 means a reader or writer kept it from finishing; the next pass retries.
        let busy: i64 = conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |r| r.get(0))?;
        rewound = busy == 0;
    }
    Ok(Pass {
        log_frames,
        copied,
        rewound,
    })
}

/// One `PRAGMA wal_checkpoint(mode)`: (frames in the log, frames copied to the database file).
fn run(conn: &Connection, mode: &str) -> Result<(i64, i64), rusqlite::Error> {
    conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| {
        Ok((r.get(1)?, r.get(2)?))
    })
}

#[cfg(test)]
mod tests {
    use super::{RESTART_FRAMES, checkpoint};
    use rusqlite::Connection;

    /// A writer in WAL mode with `synchronous=FULL`, and a second connection for checkpoints.
    fn pair(dir: &tempfile::TempDir) -> (Connection, Connection) {
        let path = dir.path().join("wal.db");
        let writer = Connection::open(&path).expect("open writer");
        let mode: String = writer
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .expect("wal");
        assert_eq!(mode, "wal");
        writer
            .execute_batch(
                "PRAGMA synchronous = FULL; PRAGMA wal_autocheckpoint = 0;
                 CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB NOT NULL);",
            )
            .expect("schema");
        (writer, Connection::open(&path).expect("open checkpointer"))
    }

    /// Commits `n` small transactions (a page or two of log each).
    fn commit(writer: &Connection, n: i64) {
        for _ in 0..n {
            writer
                .execute("INSERT INTO t (body) VALUES (zeroblob(3000))", [])
                .expect("insert");
        }
    }

    fn log_frames(conn: &Connection) -> i64 {
        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(1))
            .expect("log size")
    }

    #[test]
    fn a_short_log_is_copied_back_but_not_rewound() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (writer, ckpt) = pair(&dir);
        commit(&writer, 10);
        let pass = checkpoint(&ckpt).expect("checkpoint");
        assert!(!pass.rewound, "{pass:?}");
        assert!(
            pass.log_frames >= 10 && pass.copied == pass.log_frames,
            "{pass:?}"
        );
    }

    #[test]
    fn a_long_log_is_rewound_and_the_file_stops_growing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (writer, ckpt) = pair(&dir);
        commit(&writer, RESTART_FRAMES + 50);
        let wal = dir.path().join("wal.db-wal");
        let grown = std::fs::metadata(&wal).expect("wal").len();
        let pass = checkpoint(&ckpt).expect("checkpoint");
        assert!(pass.rewound, "{pass:?}");
        assert!(pass.log_frames > RESTART_FRAMES, "{pass:?}");
        // The next commits start again at the head of the log, in blocks the file already has.
        commit(&writer, 100);
        let after = log_frames(&ckpt);
        assert!(
            after < pass.log_frames,
            "the log was not rewound: {after} frames"
        );
        assert_eq!(std::fs::metadata(&wal).expect("wal").len(), grown);
        // Every row survived: a checkpoint copies, it never drops.
        let rows: i64 = writer
            .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .expect("count");
        assert_eq!(rows, RESTART_FRAMES + 150);
    }
}
