//! The store contract story on every backend: `cargo test -p doorstep-server --test store_contract`.

mod contract;
mod harness;

use doorstep_server::store::postgres::PgStore;
use doorstep_server::store::sqlite::SqliteStore;

#[test]
fn the_story_holds_on_sqlite_in_memory() {
    contract::story(SqliteStore::open_in_memory().expect("in-memory SQLite"));
}

#[test]
fn the_story_holds_on_an_sqlite_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    contract::story(SqliteStore::open(&dir.path().join("contract.db")).expect("SQLite file"));
}

#[test]
fn the_same_random_history_gives_the_same_results_on_sqlite_in_memory_and_on_a_file() {
    let seed = harness::test_seed("differential sqlite");
    let dir = tempfile::tempdir().expect("temp dir");
    let file = SqliteStore::open(&dir.path().join("differential.db")).expect("SQLite file");
    let memory = SqliteStore::open_in_memory().expect("in-memory SQLite");
    contract::differential::compare(&memory, &file, seed, 200);
}

#[test]
fn the_story_holds_on_postgresql() {
    let url = doorstep_test_postgres::TestCluster::shared().fresh_database();
    contract::story(PgStore::connect(&url).expect("PostgreSQL"));
}

#[test]
fn the_same_random_history_gives_the_same_results_on_sqlite_and_postgresql() {
    let seed = harness::test_seed("differential sqlite/postgres");
    let url = doorstep_test_postgres::TestCluster::shared().fresh_database();
    let pg = PgStore::connect(&url).expect("PostgreSQL");
    let sqlite = SqliteStore::open_in_memory().expect("in-memory SQLite");
    contract::differential::compare(&sqlite, &pg, seed, 200);
}
