//! The storage trait and the two narrow units of work the push and office algorithms run on.
//! A backend implements these; it stores and reads, it never decides an outcome.

use crate::error::StoreResult;
use crate::intake::OrderWork;
use crate::merge::{KnownIntent, StopRecord};
use crate::model::{
    DeviceAuth, DispatcherAuth, EscalationRecord, FirstAttemptStats, IdempotencyState,
    IntegrationAuth, LoggedProof, RouteAccess, SessionRecord, ShipperId,
};
use doorstep_shared::dashboard::{DashboardMetrics, FleetSnapshot, RouteDetail, StopContext};
use doorstep_shared::event::{EventEnvelope, EventPayload, RouteAssigned};
use doorstep_shared::order::Order;
use doorstep_shared::protocol::{
    Change, CourierSummary, DeviceHealth, Escalation, PushStatus, RouteSummary, StopDetail,
    StoredEvent,
};
use std::collections::HashMap;

use doorstep_shared::{
    CourierId, DeviceId, EscalationId, EventId, HlcStamp, ProblemCode, RouteId, StopId, StopState,
};

/// The outcome stored for an already processed `device_seq`.
pub type StoredOutcome = (PushStatus, Option<ProblemCode>);

/// One processed device event, as the push algorithm decided it.
#[derive(Clone, Debug)]
pub struct DeviceEventRow<'a> {
    pub envelope: &'a EventEnvelope,
    pub fingerprint: &'a str,
    /// The payload as JSON, as the log keeps it.
    pub payload_json: &'a str,
    pub received_at_ms: u64,
    pub clock_offset_ms: i64,
    pub status: PushStatus,
    pub code: Option<ProblemCode>,
    /// The intent took effect: record it so a later event with the same intent is judged
    /// against this one.
    pub record_intent: bool,
    /// The device's new evidence chain head, when the event moves it.
    pub evidence_head: Option<&'a str>,
}

/// What one push request reads once the device is locked: the keys it names, given sorted
/// and deduplicated. Everything here concerns the request's fresh events (those past the
/// device's `last_applied_seq`), except `duplicate_seqs`.
#[derive(Clone, Copy, Debug)]
pub struct PushScope<'a> {
    /// The stops the fresh events touch: locked in this order, then read.
    pub stops: &'a [StopId],
    /// The fresh events' intent keys: locked after the stops, then read.
    pub intent_keys: &'a [&'a str],
    /// The fresh events' ids.
    pub event_ids: &'a [EventId],
    /// The `device_seq`s of the request's events the device already sent.
    pub duplicate_seqs: &'a [u64],
    /// The parcels the fresh events scan.
    pub parcels: &'a [&'a str],
}

/// What the store holds, before the request, of a [`PushScope`]'s keys.
#[derive(Clone, Debug, Default)]
pub struct PushFacts {
    /// The stops the server knows (a stop missing here is unknown to it).
    pub stops: HashMap<StopId, StopRecord>,
    /// Intent key → the intent as it took effect.
    pub intents: HashMap<String, KnownIntent>,
    /// Event id → the intent key it was logged with (any one, if logged more than once).
    pub event_intents: HashMap<EventId, String>,
    /// `device_seq` → the outcome stored when it was first processed.
    pub stored: HashMap<u64, StoredOutcome>,
    /// Parcel → the stops route plans name it for (a parcel no plan names is missing).
    pub parcel_stops: HashMap<String, Vec<StopId>>,
}

/// What the device row says once a push request is done.
#[derive(Clone, Debug)]
pub struct DeviceSyncUpdate<'a> {
    pub last_applied_seq: u64,
    pub contact_ms: u64,
    pub clock_offset_ms: i64,
    pub clock_skew_flagged: bool,
    /// The queue the device reported with this request, JSON; `None` keeps the last report.
    pub queue_json: Option<&'a str>,
    /// Events of this request that were rejected / conflicted (added to the device's counters).
    pub rejected: u64,
    pub conflicted: u64,
}

/// One push request's transaction. The backend begins it in [`Store::push_unit`] and commits
/// it only if the work returns `Ok`; the request is atomic (there is no partial commit).
///
/// Writes may be buffered and sent at the commit: a backend answers its own reads
/// ([`Self::evidence_head`], [`Self::skew_escalation_open`]) as if every earlier write of the
/// unit had been applied.
pub trait PushUnit {
    /// Locks the device's row for the rest of the transaction (so pushes of one device are
    /// serialised across connections and replicas) and returns its `last_applied_seq`.
    fn lock_device(&mut self) -> StoreResult<u64>;
    /// Locks the scope's stops (in the given order) and then its intent keys, so that
    /// concurrent requests cannot deadlock and two devices recording one intent at once are
    /// serialised (no-ops for a backend with a single writer), and reads what the store holds
    /// of every key. Asked once per request, after [`Self::lock_device`], so a backend can
    /// answer in one round trip.
    fn prepare(&mut self, scope: &PushScope<'_>) -> StoreResult<PushFacts>;
    /// The device's evidence chain head (`""` before its first verified signed proof).
    fn evidence_head(&mut self) -> StoreResult<String>;
    /// The access instructions the stop's route plan carries.
    fn plan_access_notes(&mut self, stop: StopId) -> StoreResult<Option<String>>;
    /// Whether the device has an unresolved clock-skew escalation.
    fn skew_escalation_open(&mut self) -> StoreResult<bool>;
    /// Appends the event to the log (and its intent and evidence head as it says).
    fn record_event(&mut self, row: &DeviceEventRow<'_>) -> StoreResult<()>;
    fn open_escalation(&mut self, esc: &EscalationRecord<'_>) -> StoreResult<()>;
    /// Writes a stop's folded state (once per changed stop, before the commit).
    fn save_stop(&mut self, state: &StopState) -> StoreResult<()>;
    fn update_device(&mut self, update: &DeviceSyncUpdate<'_>) -> StoreResult<()>;
}

/// A write an office command decided; the backend performs it as told.
#[derive(Clone, Debug)]
pub enum OfficeWrite {
    /// Insert or replace a route's plan (its courier, day and version come with it).
    SavePlan(RouteAssigned),
    /// Create the stop on `route` with a fresh state, or move it there if it exists.
    PlaceStop {
        stop: StopId,
        route: RouteId,
    },
    /// Remember that `courier` was assigned the stop (kept forever).
    Assign {
        stop: StopId,
        courier: CourierId,
    },
    ResolveEscalation(EscalationId),
    /// One contact attempt with the stop's customer, keyed by its command's intent.
    Contact {
        intent_key: String,
        stop: StopId,
        reached: bool,
    },
}

/// An office event as it goes into the log.
#[derive(Clone, Debug)]
pub struct OfficeEventRow<'a> {
    pub event_id: EventId,
    pub intent_key: &'a str,
    pub fingerprint: &'a str,
    pub payload: &'a EventPayload,
    pub hlc: HlcStamp,
    pub recorded_at_ms: u64,
}

/// One office command's transaction, begun by [`Store::office_unit`] and committed only if the
/// work returns `Ok`.
pub trait OfficeUnit {
    /// The stamp of the last office event recorded by any server, locked so office commands are
    /// serialised (across replicas too) until the transaction ends; `None` before the first.
    fn office_clock(&mut self) -> StoreResult<Option<HlcStamp>>;
    fn set_office_clock(&mut self, stamp: HlcStamp) -> StoreResult<()>;
    fn known_intent(&mut self, intent_key: &str) -> StoreResult<Option<KnownIntent>>;
    /// Locks these stops, given sorted and deduplicated, in that order.
    fn lock_stops(&mut self, stops: &[StopId]) -> StoreResult<()>;
    fn stop(&mut self, stop: StopId) -> StoreResult<Option<StopRecord>>;
    fn plan(&mut self, route: RouteId) -> StoreResult<Option<RouteAssigned>>;
    fn route_courier(&mut self, route: RouteId) -> StoreResult<Option<CourierId>>;
    /// Unsuccessful contact attempts recorded for the stop.
    fn failed_contacts(&mut self, stop: StopId) -> StoreResult<u32>;
    fn write(&mut self, write: &OfficeWrite) -> StoreResult<()>;
    /// Appends the event to the log with its intent; returns its log position.
    fn log_event(&mut self, row: &OfficeEventRow<'_>) -> StoreResult<u64>;
    fn save_stop(&mut self, state: &StopState) -> StoreResult<()>;
    fn open_escalation(&mut self, esc: &EscalationRecord<'_>) -> StoreResult<()>;
    /// Gives `courier` a feed row for the logged event; returns its cursor. Cursors become
    /// visible in the order they are handed out.
    fn append_feed(&mut self, courier: CourierId, log_position: u64) -> StoreResult<u64>;
}

/// Called by a backend when another server may have committed a change.
pub type ChangeSignal = std::sync::Arc<dyn Fn() + Send + Sync>;

/// Receives what other servers on the same database published with
/// [`Store::publish_to_peers`]: `Some(message)`, or `None` when messages may have been missed
/// (the backend lost and regained its connection), so the receiver should resynchronise.
pub type PeerSink = std::sync::Arc<dyn Fn(Option<&str>) + Send + Sync>;

/// The largest message [`Store::publish_to_peers`] carries, in bytes.
pub const MAX_PEER_MESSAGE_BYTES: usize = 7_000;

/// A request's work inside a push transaction.
pub type PushWork<'w> = dyn FnMut(&mut dyn PushUnit) -> StoreResult<()> + 'w;
/// A command's work inside an office transaction.
pub type OfficeWork<'w> = dyn FnMut(&mut dyn OfficeUnit) -> StoreResult<()> + 'w;

/// Storage behind a domain-shaped trait. The service and the handlers are generic over it;
/// the backend is chosen once, from the database URL, by the binary.
pub trait Store: Send + Sync + 'static + EvidenceLog + LocationLog + UploadSessions {
    /// The database answers.
    fn ping(&self) -> StoreResult<()>;

    // --- identities ---
    /// Creates the courier; an existing courier is left as it is.
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
    /// Adds an integration token for the shipper called `name` (created with `id` when no
    /// shipper has that name yet); returns the shipper's id.
    fn create_integration(
        &self,
        id: ShipperId,
        name: &str,
        token_hash: &str,
    ) -> StoreResult<ShipperId>;
    fn integration_by_token(&self, token_hash: &str) -> StoreResult<Option<IntegrationAuth>>;

    // --- orders ---
    /// Runs `work` in one transaction over `shipper`'s orders; commits when it returns `Ok`.
    /// See [`crate::intake::record_orders`].
    fn order_unit(&self, shipper: ShipperId, work: &mut OrderWork<'_>) -> StoreResult<()>;
    /// The current version of one of `shipper`'s orders.
    fn order(&self, shipper: ShipperId, external_id: &str) -> StoreResult<Option<(u32, Order)>>;

    // --- sync ---
    /// Runs `work` in one transaction for `device`'s push; commits when it returns `Ok`,
    /// rolls back otherwise. See [`crate::push::push`].
    fn push_unit(&self, device: DeviceId, work: &mut PushWork<'_>) -> StoreResult<()>;
    /// Office changes for `courier` after `cursor`, oldest first, at most `limit`.
    fn pull(&self, courier: CourierId, cursor: u64, limit: u32)
    -> StoreResult<(Vec<Change>, bool)>;
    /// The newest change cursor (for long-poll wake-ups).
    fn latest_cursor(&self) -> StoreResult<u64>;
    /// Calls `signal` whenever any server sharing this database may have committed a change a
    /// device must pull (a signal, no payload: the caller re-reads). A backend only one process
    /// can write (SQLite) has nothing to add to the process's own signal and ignores it.
    fn watch_changes(&self, signal: ChangeSignal) {
        let _ = signal;
    }
    /// Whether other servers may share this database (so what one server announces must reach
    /// the others through [`Self::publish_to_peers`]).
    fn has_peers(&self) -> bool {
        false
    }
    /// Hands `message` (at most [`MAX_PEER_MESSAGE_BYTES`]) to every other server watching with
    /// [`Self::watch_peers`]; best effort, not stored. A backend without peers drops it.
    fn publish_to_peers(&self, message: &str) -> StoreResult<()> {
        let _ = message;
        Ok(())
    }
    /// Calls `sink` with every message another server publishes (and `None` after a gap).
    fn watch_peers(&self, sink: PeerSink) {
        let _ = sink;
    }
    fn route_for_courier(&self, courier: CourierId, route: RouteId) -> StoreResult<RouteAccess>;
    /// The courier a route belongs to.
    fn route_owner(&self, route: RouteId) -> StoreResult<Option<CourierId>>;

    // --- office ---
    /// Runs `work` in one transaction; commits when it returns `Ok`. See
    /// [`crate::office::record_office_event`].
    fn office_unit(&self, work: &mut OfficeWork<'_>) -> StoreResult<()>;
    /// Claims `key` for a request with `request_hash`. A key claimed but never finished is
    /// free again once `lease_ms` has passed since its claim.
    fn begin_idempotent(
        &self,
        key: &str,
        request_hash: &str,
        now_ms: u64,
        lease_ms: u64,
    ) -> StoreResult<IdempotencyState>;
    fn finish_idempotent(&self, key: &str, status: u16, body: &str) -> StoreResult<()>;
    fn abandon_idempotent(&self, key: &str) -> StoreResult<()>;
    fn open_escalation(&self, esc: &EscalationRecord<'_>) -> StoreResult<()>;
    /// Keeps a single-use live-stream ticket (by its hash) for `dispatcher` until `expires_at_ms`,
    /// and forgets expired ones; any server on the database can redeem it.
    fn issue_live_ticket(
        &self,
        ticket_hash: &str,
        dispatcher: &str,
        expires_at_ms: u64,
        now_ms: u64,
    ) -> StoreResult<()>;
    /// Consumes a ticket: the dispatcher's name when it was valid at `now_ms`, `None` otherwise.
    fn redeem_live_ticket(&self, ticket_hash: &str, now_ms: u64) -> StoreResult<Option<String>>;
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

/// Storage backends expose the proof events of a stop for re-verification.
pub trait EvidenceLog {
    /// Every logged proof event of `stop_id` (any outcome), in receive order.
    fn logged_proofs(&self, stop_id: StopId) -> StoreResult<Vec<LoggedProof>>;
}

/// Storage backends expose a device's location fixes for presence scoring.
pub trait LocationLog {
    /// The device's logged `location_fixed` events whose fix time, on the server clock, may
    /// fall in `(from_ms, to_ms]` (a superset is fine: the caller filters exactly).
    fn location_fixes(
        &self,
        device: DeviceId,
        from_ms: u64,
        to_ms: u64,
    ) -> StoreResult<Vec<StoredEvent>>;
}

/// Where upload sessions are kept between requests, so a session survives a restart and an
/// upload begun on one replica resumes on another.
pub trait UploadSessions: Send + Sync + 'static {
    fn insert_session(&self, s: &SessionRecord) -> StoreResult<()>;
    fn session(&self, id: &str) -> StoreResult<Option<SessionRecord>>;
    fn advance_session(&self, id: &str, offset: u64, expires_at_ms: u64) -> StoreResult<()>;
    fn remove_session(&self, id: &str) -> StoreResult<()>;
    /// Deletes every session expired at `now_ms` and returns their ids.
    fn remove_expired_sessions(&self, now_ms: u64) -> StoreResult<Vec<String>>;
}
