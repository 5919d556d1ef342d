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
