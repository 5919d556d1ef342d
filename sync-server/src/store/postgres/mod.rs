//! The PostgreSQL backend, for several server replicas sharing one database.
//!
//! [`Store`](crate::store::Store) is synchronous (the service calls it inside
//! `tokio::task::spawn_blocking`), so a [`PgStore`] owns a private two-thread tokio runtime that
//! drives its connections, and every call blocks on that runtime. Calling a method from inside an
//! async task panics (tokio forbids blocking a runtime thread): call it from a blocking thread.
//!
//! **Connection budget:** each `PgStore` keeps at most `pool_size` connections (default
//! [`DEFAULT_POOL_SIZE`]). With N replicas, `N × pool_size` plus the operators' own sessions must
//! stay within the server's `max_connections` (PostgreSQL's default is 100).
//!
//! **Errors:** lock conflicts, serialization failures, server shutdowns, lost connections, no
//! writable host, exhausted server resources and pool timeouts are [`StoreError::Transient`];
//! everything else is [`StoreError::Fatal`]. A pooled connection found closed when it is taken
//! from the pool is dropped and replaced (deadpool's `RecyclingMethod::Fast` checks
//! `is_closed`), so after a failover the pool refills on whichever host now accepts writes.
//!
//! Connections are made without TLS: `sslmode=require` in the URL fails to connect.

mod dashboard;
mod evidence;
mod identity;
mod listen;
mod migrate;
mod office;
mod orders;
mod presence;
mod push_unit;
mod reads;
mod store_impl;
mod units;
mod uploads;

use super::{StoreError, StoreResult};
use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod};
use std::future::Future;
use std::str::FromStr;
use std::time::Duration;
use tokio_postgres::error::SqlState;

pub use migrate::SCHEMA_VERSION;

/// Takes transaction-scoped advisory locks on the hashes of the text keys in `$1`, in hash
/// order, so two transactions locking overlapping keys cannot deadlock (a hash collision only
/// serialises two unrelated transactions).
const LOCK_KEYS: &str = "WITH k AS MATERIALIZED (
         SELECT DISTINCT hashtextextended(key, 0) AS h FROM unnest($1::text[]) AS key ORDER BY 1)
     SELECT pg_advisory_xact_lock(h) FROM k";

/// Connections per store when the caller does not say.
pub const DEFAULT_POOL_SIZE: usize = 8;
/// How long a call waits for a free pooled connection before it is a transient failure.
const POOL_WAIT: Duration = Duration::from_secs(10);
/// How long opening one connection may take, unless the URL sets `connect_timeout`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A failure inside the PostgreSQL backend, before it becomes a [`StoreError`].
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error("postgres: {}", describe(.0))]
    Db(#[from] tokio_postgres::Error),
    #[error("postgres connection pool: {}", with_causes(.0))]
    Pool(#[from] PoolError),
    /// The URL could not be used (the message never repeats the URL: it may hold a password).
    #[error("bad PostgreSQL URL: {0}")]
    Config(String),
    /// The database holds a schema this server does not know.
    #[error("database schema version {found} is newer than this server ({known})")]
    SchemaTooNew { found: i64, known: i64 },
    /// A stored value could not be decoded.
    #[error("bad stored value: {0}")]
    Data(String),
    /// A row kept changing under a retried operation: retrying later may succeed.
    #[error("contended: {0}")]
    Contended(String),
    #[error("{0}")]
    Runtime(String),
}

/// `e` with its causes, and the SQLSTATE when the server answered.
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", with_causes(e), db.code().code()),
        None => with_causes(e),
    }
}

/// `e` and the errors that caused it, so a log says why a connection failed (refused, reset,
/// no host accepting writes) and not only that it did.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}

impl PgError {
    /// Whether retrying the same call later may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            PgError::Db(e) => db_transient(e),
            PgError::Pool(PoolError::Backend(e)) => db_transient(e),
            PgError::Pool(PoolError::Timeout(_) | PoolError::Closed) => true,
            PgError::Pool(_) => false,
            PgError::Contended(_) => true,
            PgError::Config(_)
            | PgError::SchemaTooNew { .. }
            | PgError::Data(_)
            | PgError::Runtime(_) => false,
        }
    }
}

/// Deadlock, serialization failure, lock not available, shutdowns, class 08 (connection
/// exception), class 53 (insufficient resources: too many connections, disk full, out of
/// memory), a closed connection, or an I/O error with no SQLSTATE (refused, reset, timed out,
/// and no host of a multi-host URL accepting writes).
fn db_transient(e: &tokio_postgres::Error) -> bool {
    if let Some(code) = e.code() {
        return *code == SqlState::T_R_DEADLOCK_DETECTED
            || *code == SqlState::T_R_SERIALIZATION_FAILURE
            || *code == SqlState::LOCK_NOT_AVAILABLE
            || *code == SqlState::ADMIN_SHUTDOWN
            || *code == SqlState::CRASH_SHUTDOWN
            || *code == SqlState::CANNOT_CONNECT_NOW
            || code.code().starts_with("08")
            || code.code().starts_with("53");
    }
    e.is_closed()
        || std::error::Error::source(e)
            .is_some_and(|s| s.downcast_ref::<std::io::Error>().is_some())
}

impl From<PgError> for StoreError {
    fn from(e: PgError) -> Self {
        if e.is_transient() {
            StoreError::Transient(e.to_string())
        } else {
            StoreError::Fatal(e.to_string())
        }
    }
}

type PgResult<T> = Result<T, PgError>;

/// A [`Store`](crate::store::Store) on PostgreSQL: a connection pool and the private runtime
/// that drives it. Dropping it stops the runtime without waiting for its tasks.
pub struct PgStore {
    /// `Some` until drop; taken there to shut it down in the background.
    runtime: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
    pool: Pool,
    /// For the listener's own connection (see `listen.rs`).
    config: tokio_postgres::Config,
    watchers: std::sync::Arc<listen::Watchers>,
}

impl Drop for PgStore {
    fn drop(&mut self) {
        // Dropping a runtime inside an async context panics; this never blocks.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("pool", &self.pool.status())
            .finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects with [`DEFAULT_POOL_SIZE`] connections and brings the schema up to date.
    /// `url` is a libpq-style URL, multi-host included
    /// (`postgres://u@h1:5432,h2:5432/db?target_session_attrs=read-write`).
    pub fn connect(url: &str) -> StoreResult<Self> {
        Self::connect_with(url, DEFAULT_POOL_SIZE)
    }

    /// Connects with at most `pool_size` connections (at least one) and brings the schema up to
    /// date. Two servers starting together on a fresh database both succeed: migrations run
    /// under a transaction-scoped advisory lock.
    pub fn connect_with(url: &str, pool_size: usize) -> StoreResult<Self> {
        let mut config =
            tokio_postgres::Config::from_str(url).map_err(|e| PgError::Config(e.to_string()))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("doorstep-server");
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("doorstep-pg")
            .enable_all()
            .build()
            .map_err(|e| PgError::Runtime(format!("cannot start the PostgreSQL runtime: {e}")))?;
        let manager = Manager::from_config(
            config.clone(),
            tokio_postgres::NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(pool_size.max(1))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(POOL_WAIT))
            .build()
            .map_err(|e| PgError::Runtime(format!("cannot build the connection pool: {e}")))?;
        let store = Self {
            handle: runtime.handle().clone(),
            runtime: Some(runtime),
            pool,
            config,
            watchers: Default::default(),
        };
        store.run(async |c| migrate::migrate(c).await)?;
        tracing::info!(
            pool_size = pool_size.max(1),
            schema_version = SCHEMA_VERSION,
            "connected to PostgreSQL"
        );
        Ok(store)
    }

    /// Runs `f` with a pooled connection on the store's runtime and waits for it.
    fn run<T>(
        &self,
        f: impl AsyncFnOnce(&mut deadpool_postgres::Client) -> PgResult<T>,
    ) -> StoreResult<T> {
        self.block_on(async {
            let mut client = self.pool.get().await?;
            f(&mut client).await
        })
    }

    fn block_on<T>(&self, fut: impl Future<Output = PgResult<T>>) -> StoreResult<T> {
        self.handle.block_on(fut).map_err(|e| {
            tracing::debug!(error = %e, transient = e.is_transient(), "postgres call failed");
            StoreError::from(e)
        })
    }
}

/// Parses a UUID-backed id column.
fn id<T: FromStr>(s: &str) -> PgResult<T> {
    s.parse()
        .map_err(|_| PgError::Data(format!("bad id {s:?}")))
}

fn opt_id<T: FromStr>(s: Option<String>) -> PgResult<Option<T>> {
    s.as_deref().map(id).transpose()
}

fn json<T: serde::de::DeserializeOwned>(s: &str) -> PgResult<T> {
    serde_json::from_str(s).map_err(|e| PgError::Data(e.to_string()))
}

fn enum_str<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn enum_from<T: serde::de::DeserializeOwned>(s: &str) -> Option<T> {
    serde_json::from_value(serde_json::Value::String(s.to_owned())).ok()
}

/// A stored non-negative integer as `u64` (negative values are corrupt data).
fn unsigned(v: i64) -> PgResult<u64> {
    u64::try_from(v).map_err(|_| PgError::Data(format!("negative value {v}")))
}

/// A `u64` for a BIGINT parameter (values past `i64::MAX` are refused, never wrapped).
fn signed(v: u64) -> PgResult<i64> {
    i64::try_from(v).map_err(|_| PgError::Data(format!("value {v} does not fit a BIGINT")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_timeouts_and_closed_pools_are_transient_bad_data_is_not() {
        let t = PgError::Pool(PoolError::Timeout(deadpool_postgres::TimeoutType::Wait));
        assert!(t.is_transient());
        assert!(matches!(StoreError::from(t), StoreError::Transient(_)));
        assert!(PgError::Pool(PoolError::Closed).is_transient());
        assert!(matches!(
            StoreError::from(PgError::Data("x".into())),
            StoreError::Fatal(_)
        ));
        assert!(matches!(
            StoreError::from(PgError::SchemaTooNew { found: 9, known: 1 }),
            StoreError::Fatal(m) if m.contains("newer than this server")
        ));
    }

    #[test]
    fn a_bad_url_is_fatal_and_does_not_echo_the_password() {
        let err = PgStore::connect("postgres://u:s3cret@h:notaport/db").expect_err("bad port");
        let StoreError::Fatal(msg) = err else {
            panic!("expected Fatal, got {err:?}")
        };
        assert!(!msg.contains("s3cret"), "{msg}");
    }
}
