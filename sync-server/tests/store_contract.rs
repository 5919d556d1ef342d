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

#[test]
fn a_push_that_meets_a_locked_stop_is_deferred_whole_and_applies_when_sent_again() {
    use contract::{T0, enroll, office, push, route};
    use doorstep_server::store::Store;
    use doorstep_shared::event::{EventPayload, ScanPhase};
    use doorstep_shared::protocol::PushStatus;
    use doorstep_shared::{CourierId, ProblemCode};

    let url = doorstep_test_postgres::TestCluster::shared().fresh_database();
    let sep = if url.contains('?') { '&' } else { '?' };
    // Every connection of this store gives up waiting for a row lock after 200 ms.
    let store = PgStore::connect(&format!("{url}{sep}options=-c%20lock_timeout%3D200ms"))
        .expect("PostgreSQL");
    let ada = CourierId(uuid::Uuid::from_u128(0xA));
    store
        .create_courier(ada, "Ada Novak", "north")
        .expect("ada");
    let plan = route(1, ada, 0x100, 2, 1);
    let (s1, s2) = (plan.stops[0].stop_id, plan.stops[1].stop_id);
    office(&store, EventPayload::RouteAssigned(plan), T0);
    let mut dev = enroll(&store, ada, 1);
    let loaded = dev.scan(s1, "PKG-256", ScanPhase::Loaded);
    let first = push(&store, &dev, vec![loaded]);
    assert_eq!(first.results[0].status, PushStatus::Applied);

    // Another session holds the second stop's row.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let holder = rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .expect("connect directly");
        tokio::spawn(conn);
        client
            .batch_execute(&format!(
                "BEGIN; SELECT 1 FROM stops WHERE stop_id = '{s2}' FOR UPDATE"
            ))
            .await
            .expect("lock the stop");
        client
    });
    let batch = vec![
        dev.delivered(s1, 1),
        dev.scan(s2, "PKG-257", ScanPhase::Loaded),
    ];
    let blocked = push(&store, &dev, batch.clone());
    assert_eq!(blocked.last_applied_seq, 1, "{blocked:?}");
    assert_eq!(blocked.results.len(), 1, "{blocked:?}");
    assert_eq!(blocked.results[0].status, PushStatus::Deferred);
    assert_eq!(blocked.results[0].code, Some(ProblemCode::StorageBusy));
    rt.block_on(async { holder.batch_execute("ROLLBACK").await })
        .expect("release the stop");

    // Nothing of the deferred request was kept: both events apply now, neither is a duplicate.
    let again = push(&store, &dev, batch);
    let statuses: Vec<PushStatus> = again.results.iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![PushStatus::Applied; 2], "{again:?}");
    assert_eq!(again.last_applied_seq, 3);
}
