//! The store contract story on every backend: `cargo test -p doorstep-server --test store_contract`.

mod contract;
mod harness;

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
