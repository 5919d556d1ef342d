//! Storage behind a domain-shaped trait. Handlers and the service are generic over [`Store`];
//! the backend is chosen once from the database URL ([`open`]). SQLite is the default; a
//! PostgreSQL implementation can be added beside it without touching handlers.
//!
//! **Invariant:** a backend applies each pushed event, its outcome and the device's
//! `last_applied_seq` atomically, and decides the outcome with [`crate::merge`] — never on its own.

pub mod postgres;
pub mod sqlite;

use crate::merge::NewEscalation;
use doorstep_shared::dashboard::{DashboardMetrics, FleetSnapshot, RouteDetail, StopContext};
use doorstep_shared::event::{EventPayload, RouteAssigned};
use doorstep_shared::protocol::{
    Change, CourierSummary, DeviceHealth, Escalation, PushRequest, PushResponse, RouteSummary,
    StopDetail, StoredEvent,
};
use doorstep_shared::{CourierId, DeviceId, EscalationId, HlcStamp, RouteId, StopId, StopState};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Busy, locked, out of disk: the caller may retry.
    #[error("storage temporarily unavailable: {0}")]
    Transient(String),
    #[error("storage failure: {0}")]
    Fatal(String),
    #[error(
        "unsupported database URL {0:?}: this build supports sqlite://PATH (a PostgreSQL backend is planned, not built)"
    )]
    UnsupportedUrl(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// An authenticated device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceAuth {
    pub device_id: DeviceId,
    pub courier_id: CourierId,
}

/// An authenticated dispatcher.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DispatcherAuth {
    pub name: String,
}

/// Facts about the push request that are not in its body.
#[derive(Clone, Copy, Debug)]
pub struct PushContext {
    pub received_at_ms: u64,
    /// `device clock - server clock`, measured on this request.
    pub clock_offset_ms: i64,
}

/// What one push did, for metrics.
#[derive(Clone, Debug, Default)]
pub struct PushEffects {
    /// `(kind, status)` of every processed event.
    pub outcomes: Vec<(&'static str, &'static str)>,
    pub late_replays: u64,
    /// First attempts applied now: `(courier, delivered, failure reason code)`.
    pub first_attempts: Vec<(CourierId, bool, Option<&'static str>)>,
    pub failed_attempts: Vec<(CourierId, &'static str)>,
    pub escalations_opened: u64,
    pub skew_flagged: bool,
}

#[derive(Clone, Debug)]
pub struct PushOutcome {
    pub response: PushResponse,
    pub effects: PushEffects,
}

/// The answer to a device asking for one route.
#[derive(Clone, Debug)]
pub enum RouteAccess {
    Ok(Box<RouteAssigned>),
    NotFound,
    Forbidden,
}

/// Where an idempotent dispatcher command stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdempotencyState {
    /// First time: the caller must do the work and then call `finish_idempotent`.
    Started,
    /// The same key is being processed right now.
    InProgress,
    /// Done before with the same request: replay this response.
    Completed { status: u16, body: String },
    /// The key was used with another request body.
    Mismatch,
}

/// A new office event: produced by a dispatcher command or by seeding.
#[derive(Clone, Debug)]
pub struct OfficeEvent {
    pub payload: EventPayload,
    pub issued_by: String,
    pub recorded_at_ms: u64,
    pub hlc: HlcStamp,
    /// Set for a contact-customer command: whether the customer was reached. The store counts
    /// the unsuccessful attempts per stop (see [`crate::merge::contact_escalation`]).
    pub contact_reached: Option<bool>,
}

/// The result of recording an office event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OfficeOutcome {
    Applied {
        cursor: u64,
    },
    /// The same intent was already recorded with the same payload.
    Duplicate,
    /// The same intent was recorded with a different payload.
    Conflict(String),
    /// The referenced stop or route does not exist.
    UnknownTarget(String),
}

/// All-time first delivery attempts (applied), with the "customer absent" ones that had no
/// presence evidence counted apart: those were no real attempt, and the success rate leaves
/// them out, as the dashboard metrics do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FirstAttemptStats {
    pub first_attempts: u64,
    pub delivered: u64,
    pub no_real: u64,
}

impl FirstAttemptStats {
    /// Delivered among first attempts that really happened; `None` before the first.
    pub fn success_rate(&self) -> Option<f64> {
        let real = self.first_attempts.saturating_sub(self.no_real);
        (real > 0).then(|| self.delivered as f64 / real as f64)
    }
}

pub trait Store:
    Send
    + Sync
    + 'static
    + crate::evidence::EvidenceLog
    + crate::presence::LocationLog
    + crate::blobs::sessions::UploadSessions
{
    /// The database answers.
    fn ping(&self) -> StoreResult<()>;

    // --- identities ---
    fn create_courier(&self, courier_id: CourierId, name: &str, region: &str) -> StoreResult<()>;
    fn create_enrollment_code(
        &self,
        courier_id: CourierId,
        code_hash: &str,
        expires_at_ms: u64,
    ) -> StoreResult<()>;
    /// Consumes an unused, unexpired code and registers the device. `None` if the code is not valid.
    fn enroll_device(
        &self,
        code_hash: &str,
        device_id: DeviceId,
        name: &str,
        token_hash: &str,
        public_key: Option<&str>,
        now_ms: u64,
    ) -> StoreResult<Option<CourierId>>;
    fn device_by_token(&self, token_hash: &str) -> StoreResult<Option<DeviceAuth>>;
    fn create_dispatcher(&self, name: &str, token_hash: &str) -> StoreResult<()>;
    fn dispatcher_by_token(&self, token_hash: &str) -> StoreResult<Option<DispatcherAuth>>;

    // --- sync ---
    /// Processes one device's batch in `device_seq` order with the brief's semantics.
    fn push(
        &self,
        device: DeviceAuth,
        req: &PushRequest,
        ctx: PushContext,
    ) -> StoreResult<PushOutcome>;
    /// Office changes for `courier` after `cursor`, oldest first, at most `limit`.
    fn pull(&self, courier: CourierId, cursor: u64, limit: u32)
    -> StoreResult<(Vec<Change>, bool)>;
    /// The newest change cursor (for long-poll wake-ups).
    fn latest_cursor(&self) -> StoreResult<u64>;
    fn route_for_courier(&self, courier: CourierId, route: RouteId) -> StoreResult<RouteAccess>;
    /// The courier a route belongs to.
    fn route_owner(&self, route: RouteId) -> StoreResult<Option<CourierId>>;

    // --- office ---
    fn record_office_event(&self, event: OfficeEvent) -> StoreResult<OfficeOutcome>;
    fn begin_idempotent(
        &self,
        key: &str,
        request_hash: &str,
        now_ms: u64,
    ) -> StoreResult<IdempotencyState>;
    fn finish_idempotent(&self, key: &str, status: u16, body: &str) -> StoreResult<()>;
    fn abandon_idempotent(&self, key: &str) -> StoreResult<()>;
    fn open_escalation(
        &self,
        esc: &NewEscalation,
        device: Option<DeviceId>,
        now_ms: u64,
    ) -> StoreResult<()>;
    fn resolve_escalation(&self, id: EscalationId) -> StoreResult<bool>;

    // --- dispatcher reads ---
    fn couriers(&self) -> StoreResult<Vec<CourierSummary>>;
    fn device_health(&self) -> StoreResult<Vec<DeviceHealth>>;
    fn routes(&self) -> StoreResult<Vec<RouteSummary>>;
    fn stop_detail(&self, stop: StopId) -> StoreResult<Option<StopDetail>>;
    /// A stop's folded state (for commands that must build on it).
    fn stop_state(&self, stop: StopId) -> StoreResult<Option<StopState>>;
    /// One device's logged events with `device_seq > after_seq`, in order, at most `limit`.
    fn device_events(
        &self,
        device: DeviceId,
        after_seq: u64,
        limit: u32,
    ) -> StoreResult<Vec<StoredEvent>>;
    fn escalations(&self, open_only: bool) -> StoreResult<Vec<Escalation>>;
    /// All-time first attempts: how many, how many delivered, how many were no real attempt.
    fn first_attempt_stats(&self) -> StoreResult<FirstAttemptStats>;

    // --- dashboard reads (lean, sized for 200 couriers and 20,000 stops) ---
    fn fleet(&self, now_ms: u64) -> StoreResult<FleetSnapshot>;
    fn route_detail(&self, route: RouteId) -> StoreResult<Option<RouteDetail>>;
    fn stop_context(&self, stop: StopId) -> StoreResult<Option<StopContext>>;
    /// Metrics from the event log over `buckets` buckets of `bucket_ms` ending at `now_ms`.
    fn dashboard_metrics(
        &self,
        now_ms: u64,
        bucket_ms: u64,
        buckets: u32,
    ) -> StoreResult<DashboardMetrics>;
}

/// Opens the backend named by `url` (`sqlite://PATH` or `sqlite::memory:`), running migrations.
pub fn open(url: &str) -> StoreResult<sqlite::SqliteStore> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        sqlite::SqliteStore::open(std::path::Path::new(path))
    } else if url == "sqlite::memory:" {
        sqlite::SqliteStore::open_in_memory()
    } else {
        Err(StoreError::UnsupportedUrl(url.to_owned()))
    }
}

#[cfg(test)]
mod first_attempt_tests {
    use super::FirstAttemptStats;

    #[test]
    fn the_success_rate_leaves_no_real_attempts_out() {
        let stats = |first_attempts, delivered, no_real| FirstAttemptStats {
            first_attempts,
            delivered,
            no_real,
        };
        assert_eq!(stats(0, 0, 0).success_rate(), None);
        assert_eq!(
            stats(2, 0, 2).success_rate(),
            None,
            "nothing really happened"
        );
        assert_eq!(stats(4, 3, 0).success_rate(), Some(0.75));
        assert_eq!(stats(4, 3, 1).success_rate(), Some(1.0));
    }
}
