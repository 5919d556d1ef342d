//! Upload sessions in the database, so a resumable upload survives a restart and any replica
//! can continue a session another one opened.

use super::{PgError, PgStore, signed, unsigned};
use crate::blobs::sessions::{SessionRecord, UploadSessions};
use crate::store::StoreResult;
use doorstep_shared::BlobDigest;

impl UploadSessions for PgStore {
    fn insert_session(&self, s: &SessionRecord) -> StoreResult<()> {
        self.run(async |c| {
            c.execute(
                "INSERT INTO upload_sessions (upload_id, digest, size, offset_bytes, expires_at_ms)
                 VALUES ($1, $2, $3, $4, $5)",
                &[
                    &s.id,
                    &s.digest.as_str(),
                    &signed(s.size)?,
                    &signed(s.offset)?,
                    &signed(s.expires_at_ms)?,
                ],
            )
            .await?;
            Ok(())
        })
    }

    fn session(&self, id: &str) -> StoreResult<Option<SessionRecord>> {
        self.run(async |c| {
            let row = c
                .query_opt(
                    "SELECT digest, size, offset_bytes, expires_at_ms FROM upload_sessions
                     WHERE upload_id = $1",
                    &[&id],
                )
                .await?;
            row.map(|r| {
                Ok(SessionRecord {
                    id: id.to_owned(),
                    digest: BlobDigest::parse(r.try_get(0)?)
                        .map_err(|e| PgError::Data(e.to_string()))?,
                    size: unsigned(r.try_get(1)?)?,
                    offset: unsigned(r.try_get(2)?)?,
                    expires_at_ms: unsigned(r.try_get(3)?)?,
                })
            })
            .transpose()
        })
    }

    fn advance_session(&self, id: &str, offset: u64, expires_at_ms: u64) -> StoreResult<()> {
        self.run(async |c| {
            c.execute(
                "UPDATE upload_sessions SET offset_bytes = $2, expires_at_ms = $3 WHERE upload_id = $1",
                &[&id, &signed(offset)?, &signed(expires_at_ms)?],
            )
            .await?;
            Ok(())
        })
    }

    fn remove_session(&self, id: &str) -> StoreResult<()> {
        self.run(async |c| {
            c.execute("DELETE FROM upload_sessions WHERE upload_id = $1", &[&id])
                .await?;
            Ok(())
        })
    }

    fn remove_expired_sessions(&self, now_ms: u64) -> StoreResult<Vec<String>> {
        self.run(async |c| {
            c.query(
                "DELETE FROM upload_sessions WHERE expires_at_ms <= $1 RETURNING upload_id",
                &[&signed(now_ms)?],
            )
            .await?
            .iter()
            .map(|r| Ok(r.try_get(0)?))
            .collect()
        })
    }
}
