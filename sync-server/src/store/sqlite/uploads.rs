//! Upload sessions in SQLite (schema v3), so a resumable upload survives a server restart.

use super::SqliteStore;
use super::db;
use crate::blobs::sessions::{SessionRecord, UploadSessions};
use crate::store::StoreError;
use doorstep_shared::BlobDigest;
use rusqlite::{OptionalExtension, params};

impl UploadSessions for SqliteStore {
    fn insert_session(&self, s: &SessionRecord) -> crate::store::StoreResult<()> {
        db(|| {
            self.write()
            .prepare_cached(
                "INSERT INTO upload_sessions (upload_id, digest, size, offset_bytes, expires_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                s.id,
                s.digest.as_str(),
                s.size as i64,
                s.offset as i64,
                s.expires_at_ms as i64
            ])?;
            Ok(())
        })
    }

    fn session(&self, id: &str) -> crate::store::StoreResult<Option<SessionRecord>> {
        db(|| {
            let row: Option<(String, i64, i64, i64)> = self
                .write()
                .prepare_cached(
                    "SELECT digest, size, offset_bytes, expires_at_ms FROM upload_sessions
                 WHERE upload_id = ?1",
                )?
                .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .optional()?;
            row.map(|(digest, size, offset, expires)| {
                Ok(SessionRecord {
                    id: id.to_owned(),
                    digest: BlobDigest::parse(&digest)
                        .map_err(|e| StoreError::Fatal(e.to_string()))?,
                    size: size as u64,
                    offset: offset as u64,
                    expires_at_ms: expires as u64,
                })
            })
            .transpose()
        })
    }

    fn advance_session(
        &self,
        id: &str,
        offset: u64,
        expires_at_ms: u64,
    ) -> crate::store::StoreResult<()> {
        db(|| {
            self.write()
            .prepare_cached(
                "UPDATE upload_sessions SET offset_bytes = ?2, expires_at_ms = ?3 WHERE upload_id = ?1",
            )?
            .execute(params![id, offset as i64, expires_at_ms as i64])?;
            Ok(())
        })
    }

    fn remove_session(&self, id: &str) -> crate::store::StoreResult<()> {
        db(|| {
            self.write()
                .prepare_cached("DELETE FROM upload_sessions WHERE upload_id = ?1")?
                .execute([id])?;
            Ok(())
        })
    }

    fn remove_expired_sessions(&self, now_ms: u64) -> crate::store::StoreResult<Vec<String>> {
        db(|| {
            let conn = self.write();
            let ids = conn
                .prepare_cached(
                    "DELETE FROM upload_sessions WHERE expires_at_ms <= ?1 RETURNING upload_id",
                )?
                .query_map([now_ms as i64], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()?;
            Ok(ids)
        })
    }
}
