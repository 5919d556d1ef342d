//! Several servers starting at the same moment on one fresh SQLite file: each opens and
//! migrates it, none fails, and the schema ends at the current version exactly once.

mod harness;

use doorstep_server::store::sqlite::SqliteStore;
use harness::BIN;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier};

const OPENERS: usize = 6;
const ROUNDS: usize = 5;

fn schema_version(db: &Path) -> i64 {
    let conn = rusqlite::Connection::open(db).expect("open db");
    conn.pragma_query_value(None, "user_version", |r| r.get(0))
        .expect("user_version")
}

fn tables(db: &Path) -> i64 {
    let conn = rusqlite::Connection::open(db).expect("open db");
    conn.query_row(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'couriers'",
        [],
        |r| r.get(0),
    )
    .expect("count tables")
}

/// The version a single, uncontended open migrates a fresh file to.
fn current_version() -> i64 {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("alone.db");
    SqliteStore::open(&db).expect("open alone");
    schema_version(&db)
}

#[test]
fn concurrent_opens_of_a_fresh_file_all_migrate_it_once() {
    let expected = current_version();
    assert!(expected >= 3, "schema version {expected}");
    for round in 0..ROUNDS {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Arc::new(dir.path().join("doorstep.db"));
        let start = Arc::new(Barrier::new(OPENERS));
        let openers: Vec<_> = (0..OPENERS)
            .map(|_| {
                let (db, start) = (db.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    SqliteStore::open(&db)
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                })
            })
            .collect();
        for (i, t) in openers.into_iter().enumerate() {
            let result = t.join().expect("opener thread");
            assert!(result.is_ok(), "round {round}, opener {i}: {result:?}");
        }
        assert_eq!(schema_version(&db), expected, "round {round}");
        assert_eq!(tables(&db), 1, "round {round}");
    }
}

#[test]
fn server_processes_started_together_on_a_fresh_file_all_start() {
    let expected = current_version();
    for round in 0..ROUNDS {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("doorstep.db");
        let url = format!("sqlite://{}", db.display());
        let children: Vec<_> = (0..OPENERS)
            .map(|i| {
                Command::new(BIN)
                    .args(["admin", "dispatcher-token", "--database", &url])
                    .args(["--name", &format!("starter {i}")])
                    .env("RUST_LOG", "error")
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("spawn doorstep-server")
            })
            .collect();
        for (i, c) in children.into_iter().enumerate() {
            let out = c.wait_with_output().expect("wait for doorstep-server");
            assert!(
                out.status.success(),
                "round {round}, process {i}: {:?} {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert_eq!(schema_version(&db), expected, "round {round}");
        let conn = rusqlite::Connection::open(&db).expect("open db");
        let tokens: i64 = conn
            .query_row("SELECT COUNT(*) FROM dispatchers", [], |r| r.get(0))
            .expect("count dispatchers");
        assert_eq!(tokens, OPENERS as i64, "round {round}");
    }
}
