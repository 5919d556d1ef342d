-- Version 2: the office's contact attempts with a stop's customer, one row per recorded
-- contact command (keyed by its intent), so the store can count the unsuccessful ones.
CREATE TABLE contact_attempts (
    intent_key TEXT PRIMARY KEY,
    stop_id    TEXT NOT NULL,
    reached    INTEGER NOT NULL
);
CREATE INDEX contact_attempts_by_stop ON contact_attempts (stop_id, reached);
