//! Versioned schema migrations, applied at connect.
//!
//! **Invariants:** migration `i` (1-based) of [`MIGRATIONS`] is applied at most once and is
//! recorded as row `version = i` of `schema_migrations` in the same transaction. All pending
//! migrations run in one transaction that first takes [`MIGRATION_LOCK`] as a transaction-scoped
//! advisory lock, so servers starting at the same moment apply them one after the other: the
//! first does the work, the others find nothing left to do. A database whose version is newer than
//! [`SCHEMA_VERSION`] is refused.

use super::{PgError, PgResult};

/// The migrations in order; never edit one that has shipped, append a new one.
pub(super) const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_initial.sql"),
    include_str!("migrations/0002_stop_parcels.sql"),
    include_str!("migrations/0003_orders.sql"),
];

/// The schema version this server writes and understands.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The advisory lock key held while migrating (an arbitrary constant: "doorstep" in ASCII).
pub(super) const MIGRATION_LOCK: i64 = 0x646f_6f72_7374_6570;

/// Brings the schema up to [`SCHEMA_VERSION`].
pub(super) async fn migrate(client: &mut tokio_postgres::Client) -> PgResult<()> {
    apply(client, MIGRATIONS).await
}

/// Applies the `migrations` the database does not have yet; returns how many it applied.
pub(super) async fn apply(
    client: &mut tokio_postgres::Client,
    migrations: &[&str],
) -> PgResult<()> {
    let known = migrations.len() as i64;
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    BIGINT PRIMARY KEY,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
         )",
    )
    .await?;
    let found: i64 = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            &[],
        )
        .await?
        .try_get(0)?;
    if found > known {
        return Err(PgError::SchemaTooNew { found, known });
    }
    for (version, sql) in (1_i64..).zip(migrations.iter()).skip(found as usize) {
        tracing::info!(version, "applying PostgreSQL schema migration");
        tx.batch_execute(sql).await?;
        tx.execute(
            "INSERT INTO schema_migrations (version) VALUES ($1)",
            &[&version],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}
