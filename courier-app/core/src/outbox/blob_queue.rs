//! The photo upload queue, in the outbox file: a proof's blobs are durable on the device
//! before its event exists, and they leave in priority order (thumbnails before full photos),
//! independently of event sync.
//!
//! The table is created with `IF NOT EXISTS` on first use, so outbox files of every schema
//! version gain it without a version bump; it holds no event data.

use super::{Outbox, OutboxError};
use doorstep_shared::BlobDigest;
use rusqlite::{OptionalExtension, params};

const TABLE: &str = "
CREATE TABLE IF NOT EXISTS blob_uploads (
    digest      TEXT PRIMARY KEY,
    priority    INTEGER NOT NULL,
    stop_id     TEXT,
    bytes       BLOB NOT NULL,
    session     TEXT,
    done        INTEGER NOT NULL DEFAULT 0,
    queued_ms   INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS blob_uploads_next ON blob_uploads(done, priority, queued_ms);
";

/// Upload priority: lower goes first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlobKind {
    Thumbnail = 0,
    Photo = 1,
}

/// A blob waiting to be uploaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueuedBlob {
    pub digest: BlobDigest,
    pub bytes: Vec<u8>,
    /// The upload session URL on the server, once created.
    pub session: Option<String>,
    pub stop_id: Option<String>,
}

impl Outbox {
    fn blob_table(&self) -> Result<(), OutboxError> {
        self.conn.execute_batch(TABLE)?;
        Ok(())
    }

    /// Queues a blob (idempotent per digest).
    pub fn enqueue_blob(
        &mut self,
        digest: &BlobDigest,
        bytes: &[u8],
        kind: BlobKind,
        stop_id: Option<String>,
        now_ms: u64,
    ) -> Result<(), OutboxError> {
        self.blob_table()?;
        self.conn.execute(
            "INSERT INTO blob_uploads (digest, priority, stop_id, bytes, queued_ms)
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (digest) DO NOTHING",
            params![digest.as_str(), kind as i64, stop_id, bytes, now_ms as i64],
        )?;
        Ok(())
    }

    /// The next blob to upload: thumbnails first, then oldest first.
    pub fn next_blob(&mut self) -> Result<Option<QueuedBlob>, OutboxError> {
        self.blob_table()?;
        let row = self
            .conn
            .query_row(
                "SELECT digest, bytes, session, stop_id FROM blob_uploads WHERE done = 0
                 ORDER BY priority, queued_ms, digest LIMIT 1",
                [],
                |r| Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?;
        row.map(|(d, bytes, session, stop_id)| {
            Ok(QueuedBlob {
                digest: BlobDigest::parse(&d).map_err(|e| OutboxError::Decode {
                    what: "blob digest",
                    detail: e.to_string(),
                })?,
                bytes,
                session,
                stop_id,
            })
        })
        .transpose()
    }

    pub fn set_blob_session(
        &mut self,
        digest: &BlobDigest,
        session: Option<&str>,
    ) -> Result<(), OutboxError> {
        self.blob_table()?;
        self.conn.execute(
            "UPDATE blob_uploads SET session = ?2 WHERE digest = ?1",
            params![digest.as_str(), session],
        )?;
        Ok(())
    }

    /// The server holds the blob: drop its bytes, keep the record.
    pub fn blob_uploaded(&mut self, digest: &BlobDigest) -> Result<(), OutboxError> {
        self.blob_table()?;
        self.conn.execute(
            "UPDATE blob_uploads SET done = 1, session = NULL, bytes = x'' WHERE digest = ?1",
            [digest.as_str()],
        )?;
        Ok(())
    }

    /// Blobs not on the server yet ("photos pending").
    pub fn pending_blobs(&mut self) -> Result<u64, OutboxError> {
        self.blob_table()?;
        Ok(self.conn.query_row(
            "SELECT COUNT(*) FROM blob_uploads WHERE done = 0",
            [],
            |r| r.get::<_, i64>(0),
        )? as u64)
    }
}
