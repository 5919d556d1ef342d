//! WAL checkpoints off the capture path.
//!
//! In WAL mode a commit only appends to the log; copying the log back into the database file
//! (a checkpoint) is separate work. By default SQLite runs it inside whichever commit crosses
//! 1,000 log pages, so now and then a driver's tap would pay for it. The outbox raises that
//! inline backstop to [`BACKSTOP_PAGES`], and a [`Checkpointer`] — its own connection on its
//! own thread — runs a `PASSIVE` checkpoint after every [`EVERY_APPENDS`] recorded events.
//! A passive checkpoint never blocks the writer and never loses a committed frame; if the
//! thread is gone the backstop still bounds the log.

use super::{BUSY_TIMEOUT, OutboxError};
use rusqlite::Connection;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

/// Log pages after which a commit checkpoints inline anyway (about 40 MB of 4 KiB pages).
pub(crate) const BACKSTOP_PAGES: u32 = 10_000;
/// Recorded events between two background checkpoints.
pub const EVERY_APPENDS: u64 = 128;

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
        match passive(conn) {
            Ok((log, done)) => tracing::debug!(log, done, "outbox checkpoint"),
            Err(e) => tracing::warn!(error = %e, "outbox checkpoint failed; will retry"),
        }
    }
}

/// One passive checkpoint: (frames in the log, frames copied to the database file).
fn passive(conn: &Connection) -> Result<(i64, i64), rusqlite::Error> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        Ok((r.get(1)?, r.get(2)?))
    })
}
