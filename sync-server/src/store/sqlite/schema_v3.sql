-- Version 3: the push-time evidence chain check, and resumable upload sessions that survive a
-- restart.

-- The statement digest of each device's last signed proof whose signature verified ('' before
-- the first): the device's next signed proof must link to it. Backfilled from the log.
ALTER TABLE devices ADD COLUMN evidence_head TEXT NOT NULL DEFAULT '';
UPDATE devices SET evidence_head = COALESCE((
    SELECT json_extract(e.payload, '$.payload.signature.statement_digest')
    FROM events e
    WHERE e.device_id = devices.device_id AND e.kind = 'proof_captured'
      AND json_extract(e.payload, '$.payload.signature') IS NOT NULL
      AND (e.code IS NULL OR e.code <> 'invalid_signature')
    ORDER BY e.device_seq DESC
    LIMIT 1
), '');

-- One row per open upload session; its bytes so far are in the blob store's staging file.
CREATE TABLE upload_sessions (
    upload_id     TEXT PRIMARY KEY,
    digest        TEXT NOT NULL,
    size          INTEGER NOT NULL,
    offset_bytes  INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL
);
CREATE INDEX upload_sessions_by_expiry ON upload_sessions(expires_at_ms);
