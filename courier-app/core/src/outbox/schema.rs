//! Versioned migrations, tracked in `PRAGMA user_version`. Each step runs in one immediate
//! transaction together with the version bump, so a crash leaves the file at the old or the new
//! version, never in between. **Invariant:** a migration never drops a stored event; columns that
//! go away are first copied into their new home.

use rusqlite::{Connection, TransactionBehavior};

/// The version this build writes. Files with a higher version are refused, not downgraded.
pub const CURRENT_VERSION: i64 = 3;

/// Version 1: the first released outbox (events with a `synced` flag, a key-value table).
const V1: &str = "
CREATE TABLE events (
    device_seq INTEGER PRIMARY KEY,
    event_id   TEXT NOT NULL UNIQUE,
    intent_key TEXT NOT NULL UNIQUE,
    envelope   TEXT NOT NULL,
    synced     INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
";

/// Version 2: immutable events, server outcomes in their own table, the local projection.
const V2: &str = "
ALTER TABLE events ADD COLUMN kind TEXT NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN stop_id TEXT;
ALTER TABLE events ADD COLUMN created_at_ms INTEGER NOT NULL DEFAULT 0;
UPDATE events SET
    kind = json_extract(envelope, '$.kind'),
    stop_id = json_extract(envelope, '$.payload.stop_id'),
    created_at_ms = json_extract(envelope, '$.device_time_ms');
CREATE TABLE outcomes (
    device_seq    INTEGER PRIMARY KEY REFERENCES events(device_seq),
    status        TEXT NOT NULL,
    code          TEXT,
    detail        TEXT,
    settled_at_ms INTEGER NOT NULL
);
INSERT INTO outcomes (device_seq, status, code, detail, settled_at_ms)
    SELECT device_seq, 'applied', NULL, 'synced before the v2 upgrade', created_at_ms
    FROM events WHERE synced <> 0;
ALTER TABLE events DROP COLUMN synced;
CREATE INDEX events_stop ON events(stop_id);
CREATE TRIGGER events_append_only_update BEFORE UPDATE ON events
    BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
CREATE TRIGGER events_append_only_delete BEFORE DELETE ON events
    BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
CREATE TABLE office_events (
    cursor   INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    kind     TEXT NOT NULL,
    stop_id  TEXT,
    change   TEXT NOT NULL
);
CREATE TABLE routes (
    route_id TEXT PRIMARY KEY,
    version  INTEGER NOT NULL,
    day      TEXT NOT NULL,
    plan     TEXT NOT NULL
);
CREATE TABLE stops (
    stop_id  TEXT PRIMARY KEY,
    route_id TEXT NOT NULL REFERENCES routes(route_id),
    sequence INTEGER NOT NULL,
    plan     TEXT NOT NULL,
    state    BLOB NOT NULL
);
";

/// Version 3: a parcel → stop index, kept by triggers, so a scan finds its stop without
/// parsing every stop's plan (the capture hot path).
const V3: &str = "
CREATE TABLE stop_parcels (
    parcel  TEXT NOT NULL,
    stop_id TEXT NOT NULL,
    PRIMARY KEY (parcel, stop_id)
) WITHOUT ROWID;
INSERT OR IGNORE INTO stop_parcels (parcel, stop_id)
    SELECT p.value, s.stop_id FROM stops s, json_each(s.plan, '$.parcels') p;
CREATE TRIGGER stop_parcels_insert AFTER INSERT ON stops BEGIN
    INSERT OR IGNORE INTO stop_parcels (parcel, stop_id)
        SELECT p.value, NEW.stop_id FROM json_each(NEW.plan, '$.parcels') p;
END;
CREATE TRIGGER stop_parcels_update AFTER UPDATE OF plan ON stops BEGIN
    DELETE FROM stop_parcels WHERE stop_id = OLD.stop_id;
    INSERT OR IGNORE INTO stop_parcels (parcel, stop_id)
        SELECT p.value, NEW.stop_id FROM json_each(NEW.plan, '$.parcels') p;
END;
CREATE TRIGGER stop_parcels_delete AFTER DELETE ON stops BEGIN
    DELETE FROM stop_parcels WHERE stop_id = OLD.stop_id;
END;
";

const MIGRATIONS: [&str; 3] = [V1, V2, V3];

/// Brings the file to [`CURRENT_VERSION`]. Returns the version found before migrating.
pub fn migrate(conn: &mut Connection) -> Result<i64, MigrateError> {
    let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found > CURRENT_VERSION {
        return Err(MigrateError::TooNew {
            found,
            supported: CURRENT_VERSION,
        });
    }
    for (idx, ddl) in MIGRATIONS.iter().enumerate() {
        let version = idx as i64 + 1;
        if version <= found {
            continue;
        }
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(ddl)?;
        tx.pragma_update(None, "user_version", version)?;
        tx.commit()?;
        tracing::info!(from = version - 1, to = version, "outbox migrated");
    }
    Ok(found)
}

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("outbox schema version {found} is newer than this app supports ({supported})")]
    TooNew { found: i64, supported: i64 },
    #[error(transparent)]
    Sql(#[from] rusqlite::Error),
}
