//! Versioned migrations, tracked in `PRAGMA user_version`. Each step runs in one immediate
//! transaction together with the version bump, so a crash leaves the file at the old or the new
//! version, never in between. **Invariant:** a migration never drops a stored event; columns that
//! go away are first copied into their new home.

use rusqlite::{Connection, TransactionBehavior};

/// The version this build writes. Files with a higher version are refused, not downgraded.
pub const CURRENT_VERSION: i64 = 4;

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

/// Version 4: the capture path writes one B-tree page fewer and parses no JSON for the clock.
/// `events` is rebuilt without the unique index on `event_id` (nothing looks events up by it;
/// ids are random, and intent dedupe has its own index), and with the HLC stamp in columns,
/// copied from each envelope. Every row is copied, in order, before the old table goes; the
/// per-stop index and the append-only triggers are recreated on the new table.
const V4: &str = "
CREATE TABLE events_v4 (
    device_seq    INTEGER PRIMARY KEY,
    event_id      TEXT NOT NULL,
    intent_key    TEXT NOT NULL UNIQUE,
    kind          TEXT NOT NULL,
    stop_id       TEXT,
    created_at_ms INTEGER NOT NULL,
    hlc_wall_ms   INTEGER NOT NULL,
    hlc_logical   INTEGER NOT NULL,
    envelope      TEXT NOT NULL
);
INSERT INTO events_v4 (device_seq, event_id, intent_key, kind, stop_id, created_at_ms,
                       hlc_wall_ms, hlc_logical, envelope)
    SELECT device_seq, event_id, intent_key, kind, stop_id, created_at_ms,
           envelope ->> '$.hlc.wall_ms', envelope ->> '$.hlc.logical', envelope
    FROM events ORDER BY device_seq;
DROP TABLE events;
ALTER TABLE events_v4 RENAME TO events;
CREATE INDEX events_stop ON events(stop_id);
CREATE TRIGGER events_append_only_update BEFORE UPDATE ON events
    BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
CREATE TRIGGER events_append_only_delete BEFORE DELETE ON events
    BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
";

const MIGRATIONS: [&str; 4] = [V1, V2, V3, V4];

/// Brings the file to [`CURRENT_VERSION`]. Returns the version found before migrating.
///
/// Foreign-key enforcement is off while the steps run (a table rebuild drops and renames a
/// table other tables refer to; SQLite only lets the setting change outside a transaction),
/// each step checks the keys itself before it commits, and enforcement is restored after.
pub fn migrate(conn: &mut Connection) -> Result<i64, MigrateError> {
    migrate_to(conn, CURRENT_VERSION)
}

/// [`migrate`], stopping at `target` (tests build older files with it).
pub fn migrate_to(conn: &mut Connection, target: i64) -> Result<i64, MigrateError> {
    let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found > CURRENT_VERSION {
        return Err(MigrateError::TooNew {
            found,
            supported: CURRENT_VERSION,
        });
    }
    if found >= target {
        return Ok(found);
    }
    let enforced: bool = conn.query_row("PRAGMA foreign_keys", [], |r| r.get(0))?;
    conn.pragma_update(None, "foreign_keys", false)?;
    let result = run_steps(conn, found, target);
    conn.pragma_update(None, "foreign_keys", enforced)?;
    result.map(|()| found)
}

fn run_steps(conn: &mut Connection, found: i64, target: i64) -> Result<(), MigrateError> {
    for (idx, ddl) in MIGRATIONS.iter().enumerate() {
        let version = idx as i64 + 1;
        if version <= found || version > target {
            continue;
        }
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(ddl)?;
        let broken: i64 =
            tx.query_row("SELECT COUNT(*) FROM pragma_foreign_key_check", [], |r| {
                r.get(0)
            })?;
        if broken > 0 {
            // Dropping `tx` rolls the step back: the file stays at the previous version.
            return Err(MigrateError::BrokenKeys { version, broken });
        }
        tx.pragma_update(None, "user_version", version)?;
        tx.commit()?;
        tracing::info!(from = version - 1, to = version, "outbox migrated");
    }
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("outbox schema version {found} is newer than this app supports ({supported})")]
    TooNew { found: i64, supported: i64 },
    #[error(
        "migrating the outbox to version {version} would break {broken} references; nothing was changed"
    )]
    BrokenKeys { version: i64, broken: i64 },
    #[error(transparent)]
    Sql(#[from] rusqlite::Error),
}

#[cfg(test)]
mod tests {
    use super::{CURRENT_VERSION, migrate, migrate_to};
    use rusqlite::Connection;

    fn envelope(seq: i64, wall_ms: i64, logical: i64) -> String {
        serde_json::json!({
            "event_id": format!("evt-{seq}"),
            "device_seq": seq,
            "hlc": { "wall_ms": wall_ms, "logical": logical },
            "payload": { "kind": "note_added", "stop_id": "stop-1" },
        })
        .to_string()
    }

    /// A version-3 file with three events, the first settled by the server.
    fn v3_file(dir: &tempfile::TempDir) -> Connection {
        let mut conn = Connection::open(dir.path().join("outbox.db")).expect("open");
        conn.pragma_update(None, "foreign_keys", true)
            .expect("fk on");
        assert_eq!(migrate_to(&mut conn, 3).expect("to v3"), 0);
        for seq in 1..=3 {
            conn.execute(
                "INSERT INTO events (device_seq, event_id, intent_key, kind, stop_id,
                                     created_at_ms, envelope)
                 VALUES (?1, ?2, ?3, 'note_added', 'stop-1', ?4, ?5)",
                rusqlite::params![
                    seq,
                    format!("evt-{seq}"),
                    format!("intent-{seq}"),
                    1_000 * seq,
                    envelope(seq, 1_000 * seq, seq % 2)
                ],
            )
            .expect("event");
        }
        conn.execute(
            "INSERT INTO outcomes (device_seq, status, settled_at_ms) VALUES (1, 'applied', 5)",
            [],
        )
        .expect("outcome");
        conn
    }

    #[test]
    fn v3_to_v4_keeps_every_event_and_moves_the_stamp_into_columns() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut conn = v3_file(&dir);
        let before: Vec<(i64, String)> = conn
            .prepare("SELECT device_seq, envelope FROM events ORDER BY device_seq")
            .expect("select")
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("read");

        assert_eq!(migrate(&mut conn).expect("migrate"), 3);

        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .expect("version");
        assert_eq!(version, CURRENT_VERSION);
        let after: Vec<(i64, String, i64, i64)> = conn
            .prepare(
                "SELECT device_seq, envelope, hlc_wall_ms, hlc_logical FROM events
                 ORDER BY device_seq",
            )
            .expect("select")
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("read");
        assert_eq!(after.len(), before.len());
        for ((seq, env), (seq2, env2, wall, logical)) in before.iter().zip(&after) {
            assert_eq!((seq, env), (seq2, env2), "event {seq} changed");
            assert_eq!(
                (*wall, *logical),
                (1_000 * seq, seq % 2),
                "event {seq} stamp"
            );
        }
        // The server's outcome still points at its event, and keys are enforced again.
        let settled: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM outcomes JOIN events USING (device_seq)",
                [],
                |r| r.get(0),
            )
            .expect("join");
        assert_eq!(settled, 1);
        let enforced: bool = conn
            .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
            .expect("fk");
        assert!(enforced, "foreign keys were left off");
        let orphan = conn.execute(
            "INSERT INTO outcomes (device_seq, status, settled_at_ms) VALUES (99, 'applied', 5)",
            [],
        );
        assert!(
            orphan.is_err(),
            "an outcome for a missing event was accepted"
        );
        // Still append-only; intent dedupe still unique; no index on event_id any more.
        assert!(
            conn.execute("DELETE FROM events WHERE device_seq = 3", [])
                .is_err()
        );
        assert!(
            conn.execute("UPDATE events SET kind = 'x' WHERE device_seq = 3", [])
                .is_err()
        );
        let dup = conn.execute(
            "INSERT INTO events (device_seq, event_id, intent_key, kind, created_at_ms,
                                 hlc_wall_ms, hlc_logical, envelope)
             VALUES (4, 'evt-4', 'intent-1', 'note_added', 0, 0, 0, '{}')",
            [],
        );
        assert!(
            dup.is_err(),
            "a second event with a taken intent was accepted"
        );
        let indexes: Vec<String> = conn
            .prepare("SELECT name FROM pragma_index_list('events') ORDER BY name")
            .expect("indexes")
            .query_map([], |r| r.get(0))
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("read");
        assert_eq!(indexes, ["events_stop", "sqlite_autoindex_events_1"]);
        let unique_on: String = conn
            .query_row(
                "SELECT name FROM pragma_index_info('sqlite_autoindex_events_1')",
                [],
                |r| r.get(0),
            )
            .expect("index column");
        assert_eq!(unique_on, "intent_key");
    }

    #[test]
    fn a_file_already_current_is_left_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut conn = v3_file(&dir);
        migrate(&mut conn).expect("first");
        assert_eq!(migrate(&mut conn).expect("second"), CURRENT_VERSION);
    }
}
