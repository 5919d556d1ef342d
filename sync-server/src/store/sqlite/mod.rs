//! The embedded SQLite backend: WAL, `synchronous=FULL`, one writer connection (pushes are
//! serialised, which is what makes concurrent uploads of the same batch apply once) and a few
//! reader connections for the dispatcher API and pulls.

mod dashboard;
mod evidence;
mod identity;
#[cfg(test)]
mod migration_v3_tests;
mod office;
mod orders;
mod presence;
mod push;
mod reads;
mod uploads;

use super::StoreError;
use rusqlite::{Connection, OpenFlags};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

const MIGRATIONS: &[&str] = &[
    include_str!("schema.sql"),
    include_str!("schema_v2.sql"),
    include_str!("schema_v3.sql"),
    include_str!("schema_v4.sql"),
    include_str!("schema_v5.sql"),
    include_str!("schema_v6.sql"),
];
const READERS: usize = 3;

pub struct SqliteStore {
    writer: Mutex<Connection>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
}

/// What a call fails with inside this backend: an SQLite error, classified into a
/// [`StoreError`] at the trait boundary ([`db`]), or a store error raised here.
#[derive(Debug)]
pub(crate) enum SqlError {
    Sql(rusqlite::Error),
    Store(StoreError),
}

pub(crate) type SqlResult<T> = Result<T, SqlError>;

impl From<rusqlite::Error> for SqlError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Sql(e)
    }
}

impl From<StoreError> for SqlError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl From<SqlError> for StoreError {
    fn from(e: SqlError) -> Self {
        use rusqlite::ErrorCode::*;
        match e {
            SqlError::Store(e) => e,
            SqlError::Sql(e) => match e.sqlite_error_code() {
                Some(DatabaseBusy | DatabaseLocked | DiskFull | SystemIoFailure | OutOfMemory) => {
                    StoreError::Transient(e.to_string())
                }
                _ => StoreError::Fatal(e.to_string()),
            },
        }
    }
}

/// Runs backend code and classifies its failure for the caller of the trait.
pub(crate) fn db<T>(f: impl FnOnce() -> SqlResult<T>) -> crate::store::StoreResult<T> {
    f().map_err(StoreError::from)
}

fn lock(m: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    // A panic while holding the lock cannot leave SQLite inconsistent (transactions roll back on
    // drop), so a poisoned lock is safe to reuse.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

fn configure(conn: &Connection) -> SqlResult<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    enable_wal(conn)?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Savepoint sub-journals (one savepoint per pushed event) stay in memory instead of a temp
    // file. They only serve ROLLBACK TO inside an open transaction, never crash recovery (the WAL
    // does that), so durability is unchanged; the file writes were a third of push CPU.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    Ok(())
}

/// Switches the file to WAL. Connections switching a fresh (rollback-journal) file at the same
/// moment each hold a read lock and need the exclusive one; SQLite answers all but one of them
/// `SQLITE_BUSY` at once, without calling the busy handler (waiting could deadlock), so this
/// retries for as long as the busy timeout would have waited.
fn enable_wal(conn: &Connection) -> SqlResult<()> {
    let deadline = Instant::now() + BUSY_TIMEOUT;
    loop {
        match conn.pragma_update(None, "journal_mode", "WAL") {
            Ok(()) => return Ok(()),
            Err(e)
                if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy)
                    && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Brings the schema up to date, one migration per transaction. Each step takes the write
/// lock (`BEGIN IMMEDIATE`, waiting out the busy timeout) *before* it reads `user_version`, so
/// servers starting together on one file serialise here: the first runs a step, the others
/// then read the version it wrote and skip it.
fn migrate(conn: &mut Connection) -> SqlResult<()> {
    loop {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let version: usize = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version > MIGRATIONS.len() {
            return Err(StoreError::Fatal(format!(
                "database schema version {version} is newer than this server ({})",
                MIGRATIONS.len()
            ))
            .into());
        }
        let Some(sql) = MIGRATIONS.get(version) else {
            return Ok(());
        };
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", version + 1)?;
        tx.commit()?;
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and brings its schema up to date.
    pub fn open(path: &Path) -> crate::store::StoreResult<Self> {
        db(|| Self::open_sql(path))
    }

    fn open_sql(path: &Path) -> SqlResult<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Fatal(format!("cannot create {}: {e}", dir.display())))?;
        }
        let mut writer = Connection::open(path)?;
        configure(&writer)?;
        migrate(&mut writer)?;
        let readers = (0..READERS)
            .map(|_| {
                let c = Connection::open_with_flags(
                    path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                c.busy_timeout(BUSY_TIMEOUT)?;
                Ok(Mutex::new(c))
            })
            .collect::<SqlResult<Vec<_>>>()?;
        Ok(Self {
            writer: Mutex::new(writer),
            readers,
            next_reader: AtomicUsize::new(0),
        })
    }

    /// A private in-memory database (tests and the deterministic simulator).
    pub fn open_in_memory() -> crate::store::StoreResult<Self> {
        db(Self::open_in_memory_sql)
    }

    fn open_in_memory_sql() -> SqlResult<Self> {
        let mut writer = Connection::open_in_memory()?;
        writer.pragma_update(None, "foreign_keys", "ON")?;
        migrate(&mut writer)?;
        Ok(Self {
            writer: Mutex::new(writer),
            readers: Vec::new(),
            next_reader: AtomicUsize::new(0),
        })
    }

    fn write(&self) -> MutexGuard<'_, Connection> {
        lock(&self.writer)
    }

    fn read(&self) -> MutexGuard<'_, Connection> {
        if self.readers.is_empty() {
            return self.write();
        }
        let i = self.next_reader.fetch_add(1, Ordering::Relaxed) % self.readers.len();
        lock(&self.readers[i])
    }
}

/// Reads a UUID-backed id column.
fn id<T: std::str::FromStr>(s: String) -> rusqlite::Result<T> {
    s.parse().map_err(|_| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Text,
            format!("bad id {s}").into(),
        )
    })
}

fn json<T: serde::de::DeserializeOwned>(s: &str) -> rusqlite::Result<T> {
    serde_json::from_str(s).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn to_json<T: serde::Serialize>(v: &T) -> SqlResult<String> {
    serde_json::to_string(v).map_err(|e| SqlError::Store(StoreError::Fatal(e.to_string())))
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

impl super::Store for SqliteStore {
    fn ping(&self) -> crate::store::StoreResult<()> {
        db(|| self.ping_impl())
    }
    fn create_courier(
        &self,
        courier_id: doorstep_shared::CourierId,
        name: &str,
        region: &str,
    ) -> crate::store::StoreResult<()> {
        db(|| self.create_courier_impl(courier_id, name, region))
    }
    fn create_enrollment_code(
        &self,
        courier_id: doorstep_shared::CourierId,
        code_hash: &str,
        expires_at_ms: u64,
    ) -> crate::store::StoreResult<()> {
        db(|| self.create_enrollment_code_impl(courier_id, code_hash, expires_at_ms))
    }
    fn enroll_device(
        &self,
        code_hash: &str,
        device_id: doorstep_shared::DeviceId,
        name: &str,
        token_hash: &str,
        public_key: Option<&str>,
        now_ms: u64,
    ) -> crate::store::StoreResult<Option<doorstep_shared::CourierId>> {
        db(|| self.enroll_device_impl(code_hash, device_id, name, token_hash, public_key, now_ms))
    }
    fn device_by_token(
        &self,
        token_hash: &str,
    ) -> crate::store::StoreResult<Option<super::DeviceAuth>> {
        db(|| self.device_by_token_impl(token_hash))
    }
    fn create_dispatcher(&self, name: &str, token_hash: &str) -> crate::store::StoreResult<()> {
        db(|| self.create_dispatcher_impl(name, token_hash))
    }
    fn dispatcher_by_token(
        &self,
        token_hash: &str,
    ) -> crate::store::StoreResult<Option<super::DispatcherAuth>> {
        db(|| self.dispatcher_by_token_impl(token_hash))
    }
    fn create_integration(
        &self,
        id: super::ShipperId,
        name: &str,
        token_hash: &str,
    ) -> crate::store::StoreResult<super::ShipperId> {
        db(|| self.create_integration_impl(id, name, token_hash))
    }
    fn integration_by_token(
        &self,
        token_hash: &str,
    ) -> crate::store::StoreResult<Option<super::IntegrationAuth>> {
        db(|| self.integration_by_token_impl(token_hash))
    }
    fn order_unit(
        &self,
        shipper: super::ShipperId,
        work: &mut crate::intake::OrderWork<'_>,
    ) -> crate::store::StoreResult<()> {
        db(|| self.order_unit_impl(shipper, work))
    }
    fn order(
        &self,
        shipper: super::ShipperId,
        external_id: &str,
    ) -> crate::store::StoreResult<Option<(u32, doorstep_shared::order::Order)>> {
        db(|| self.order_impl(shipper, external_id))
    }
    fn push_unit(
        &self,
        device: doorstep_shared::DeviceId,
        work: &mut super::PushWork<'_>,
    ) -> crate::store::StoreResult<()> {
        db(|| self.push_unit_impl(device, work))
    }
    fn pull(
        &self,
        courier: doorstep_shared::CourierId,
        cursor: u64,
        limit: u32,
    ) -> crate::store::StoreResult<(Vec<doorstep_shared::protocol::Change>, bool)> {
        db(|| self.pull_impl(courier, cursor, limit))
    }
    fn latest_cursor(&self) -> crate::store::StoreResult<u64> {
        db(|| self.latest_cursor_impl())
    }
    fn route_for_courier(
        &self,
        courier: doorstep_shared::CourierId,
        route: doorstep_shared::RouteId,
    ) -> crate::store::StoreResult<super::RouteAccess> {
        db(|| self.route_for_courier_impl(courier, route))
    }
    fn route_owner(
        &self,
        route: doorstep_shared::RouteId,
    ) -> crate::store::StoreResult<Option<doorstep_shared::CourierId>> {
        db(|| {
            let conn = self.read();
            office::route_courier(&conn, route)
        })
    }
    fn office_unit(&self, work: &mut super::OfficeWork<'_>) -> crate::store::StoreResult<()> {
        db(|| self.office_unit_impl(work))
    }
    fn begin_idempotent(
        &self,
        key: &str,
        request_hash: &str,
        now_ms: u64,
        lease_ms: u64,
    ) -> crate::store::StoreResult<super::IdempotencyState> {
        db(|| self.begin_idempotent_impl(key, request_hash, now_ms, lease_ms))
    }
    fn finish_idempotent(
        &self,
        key: &str,
        status: u16,
        body: &str,
    ) -> crate::store::StoreResult<()> {
        db(|| self.finish_idempotent_impl(key, status, body))
    }
    fn abandon_idempotent(&self, key: &str) -> crate::store::StoreResult<()> {
        db(|| self.abandon_idempotent_impl(key))
    }
    fn open_escalation(&self, esc: &super::EscalationRecord<'_>) -> crate::store::StoreResult<()> {
        db(|| self.open_escalation_impl(esc))
    }
    fn issue_live_ticket(
        &self,
        ticket_hash: &str,
        dispatcher: &str,
        expires_at_ms: u64,
        now_ms: u64,
    ) -> crate::store::StoreResult<()> {
        db(|| self.issue_live_ticket_impl(ticket_hash, dispatcher, expires_at_ms, now_ms))
    }
    fn redeem_live_ticket(
        &self,
        ticket_hash: &str,
        now_ms: u64,
    ) -> crate::store::StoreResult<Option<String>> {
        db(|| self.redeem_live_ticket_impl(ticket_hash, now_ms))
    }
    fn resolve_escalation(
        &self,
        id: doorstep_shared::EscalationId,
    ) -> crate::store::StoreResult<bool> {
        db(|| self.resolve_escalation_impl(id))
    }
    fn couriers(
        &self,
    ) -> crate::store::StoreResult<Vec<doorstep_shared::protocol::CourierSummary>> {
        db(|| self.couriers_impl())
    }
    fn device_health(
        &self,
    ) -> crate::store::StoreResult<Vec<doorstep_shared::protocol::DeviceHealth>> {
        db(|| self.device_health_impl())
    }
    fn routes(&self) -> crate::store::StoreResult<Vec<doorstep_shared::protocol::RouteSummary>> {
        db(|| self.routes_impl())
    }
    fn stop_state(
        &self,
        stop: doorstep_shared::StopId,
    ) -> crate::store::StoreResult<Option<doorstep_shared::StopState>> {
        db(|| self.stop_state_impl(stop))
    }
    fn stop_detail(
        &self,
        stop: doorstep_shared::StopId,
    ) -> crate::store::StoreResult<Option<doorstep_shared::protocol::StopDetail>> {
        db(|| self.stop_detail_impl(stop))
    }
    fn device_events(
        &self,
        device: doorstep_shared::DeviceId,
        after_seq: u64,
        limit: u32,
    ) -> crate::store::StoreResult<Vec<doorstep_shared::protocol::StoredEvent>> {
        db(|| self.device_events_impl(device, after_seq, limit))
    }
    fn escalations(
        &self,
        open_only: bool,
    ) -> crate::store::StoreResult<Vec<doorstep_shared::protocol::Escalation>> {
        db(|| self.escalations_impl(open_only))
    }
    fn first_attempt_stats(&self) -> crate::store::StoreResult<super::FirstAttemptStats> {
        db(|| self.first_attempt_stats_impl())
    }
    fn fleet(
        &self,
        now_ms: u64,
    ) -> crate::store::StoreResult<doorstep_shared::dashboard::FleetSnapshot> {
        db(|| self.fleet_impl(now_ms))
    }
    fn route_detail(
        &self,
        route: doorstep_shared::RouteId,
    ) -> crate::store::StoreResult<Option<doorstep_shared::dashboard::RouteDetail>> {
        db(|| self.route_detail_impl(route))
    }
    fn stop_context(
        &self,
        stop: doorstep_shared::StopId,
    ) -> crate::store::StoreResult<Option<doorstep_shared::dashboard::StopContext>> {
        db(|| self.stop_context_impl(stop))
    }
    fn dashboard_metrics(
        &self,
        now_ms: u64,
        bucket_ms: u64,
        buckets: u32,
    ) -> crate::store::StoreResult<doorstep_shared::dashboard::DashboardMetrics> {
        db(|| self.dashboard_metrics_impl(now_ms, bucket_ms, buckets))
    }
}
