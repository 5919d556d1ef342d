//! Wire types of the device API (`/v1/enroll`, `/v1/sync/*`, `/v1/routes/*`) and the dispatcher
//! read API (`/v1/dispatch/*`). JSON over HTTP; push bodies may be gzip or zstd encoded.

use crate::event::{EventEnvelope, EventPayload, RouteAssigned};
use crate::hlc::HlcStamp;
use crate::ids::{CourierId, DeviceId, EscalationId, EventId, RouteId, StopId};
use crate::problem::ProblemCode;
use crate::stop::StopView;
use serde::{Deserialize, Serialize};

/// Largest number of events in one push.
pub const MAX_EVENTS_PER_PUSH: usize = 1_000;
/// Largest push body on the wire (compressed), bytes.
pub const MAX_PUSH_BODY_BYTES: usize = 4 * 1024 * 1024;
/// Largest push body after decompression, bytes.
pub const MAX_PUSH_DECODED_BYTES: usize = 16 * 1024 * 1024;
/// Largest chunk of a resumable blob upload (`PATCH /v1/uploads/{id}` body), bytes. A larger
/// chunk is refused with 413 `payload_too_large`; send the blob in several chunks.
pub const MAX_UPLOAD_CHUNK_BYTES: usize = 4 * 1024 * 1024;
/// A device clock further than this from the server's is flagged as skewed.
pub const CLOCK_SKEW_BOUND_MS: i64 = 5 * 60 * 1_000;
/// An event that arrives later than this after it happened counts as a late replay.
pub const LATE_REPLAY_AFTER_MS: u64 = 60 * 60 * 1_000;
/// Longest a pull may wait for changes.
pub const MAX_PULL_WAIT_MS: u64 = 30_000;

// ---------------------------------------------------------------- enrollment

/// `POST /v1/enroll`: exchange a one-time enrollment code for a device token.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollRequest {
    pub code: String,
    pub device_name: String,
    /// Hex ed25519 public key for signed evidence, if the device has one.
    #[serde(default)]
    pub public_key: Option<String>,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollResponse {
    pub device_id: DeviceId,
    pub courier_id: CourierId,
    /// Bearer token for the device API. Shown once; the server keeps only its hash.
    pub token: String,
    pub server_time_ms: u64,
}

// ---------------------------------------------------------------- push

/// What the device reports about its own queue, so dispatch sees what is stuck on the device.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceQueueReport {
    pub queued_events: u64,
    pub oldest_unsynced_ms: Option<u64>,
    pub photos_pending: u64,
    pub rejected_events: u64,
}

/// `POST /v1/sync/push`: a batch of one device's events, in `device_seq` order.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PushRequest {
    pub device_id: DeviceId,
    /// Device wall clock when the request was sent; the server learns the clock offset from it.
    pub sent_at_ms: u64,
    pub events: Vec<EventEnvelope>,
    #[serde(default)]
    pub queue: Option<DeviceQueueReport>,
}

/// The outcome of one event.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PushStatus {
    /// Appended and folded into state, now.
    Applied,
    /// Seen before (same seq, or same intent and payload): a safe no-op.
    Duplicate,
    /// Same intent, different payload: stored as a fact and escalated; not folded.
    Conflict,
    /// Permanently invalid: quarantined and escalated; the sequence still advances.
    Rejected,
    /// Transient server failure: not applied, the sequence did not advance; retry.
    Deferred,
    /// `device_seq` is past `last_applied_seq + 1`: not processed; resume from the response.
    Gap,
}

impl PushStatus {
    /// True when the device may forget the event (the server has a final answer for it).
    pub fn is_settled(self) -> bool {
        matches!(
            self,
            Self::Applied | Self::Duplicate | Self::Conflict | Self::Rejected
        )
    }
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushResult {
    pub device_seq: u64,
    pub event_id: EventId,
    pub status: PushStatus,
    /// For `duplicate`: the status the event got when it was first processed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_status: Option<PushStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<ProblemCode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushResponse {
    /// Every event up to here has a final outcome on the server.
    pub last_applied_seq: u64,
    pub server_time_ms: u64,
    /// `device clock - server clock` as measured on this request, ms.
    pub clock_offset_ms: i64,
    pub results: Vec<PushResult>,
}

// ---------------------------------------------------------------- pull

/// `GET /v1/sync/pull?cursor=N&wait_ms=M&limit=L`.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullQuery {
    #[serde(default)]
    pub cursor: u64,
    #[serde(default)]
    pub wait_ms: u64,
    #[serde(default)]
    pub limit: Option<u32>,
}

/// One office fact the device must see (route assignment, reassignment, reschedule, ...).
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub cursor: u64,
    pub event_id: EventId,
    pub hlc: HlcStamp,
    pub recorded_at_ms: u64,
    #[serde(flatten)]
    pub payload: EventPayload,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PullResponse {
    /// Pass this back as `cursor` on the next pull.
    pub cursor: u64,
    pub server_time_ms: u64,
    pub changes: Vec<Change>,
    /// More changes are ready right now; pull again without waiting.
    pub has_more: bool,
}

/// `GET /v1/routes/{route_id}`: the current plan of one of the device's own routes.
pub type RouteSnapshot = RouteAssigned;

// ---------------------------------------------------------------- dispatcher read API

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CourierSummary {
    pub courier_id: CourierId,
    pub name: String,
    pub routes: Vec<RouteId>,
    pub devices: Vec<DeviceId>,
    pub stops_total: u64,
    pub stops_done: u64,
}

/// Sync health of one device, as the server last saw it.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceHealth {
    pub device_id: DeviceId,
    pub courier_id: CourierId,
    pub name: String,
    pub last_contact_ms: Option<u64>,
    pub last_applied_seq: u64,
    pub clock_offset_ms: Option<i64>,
    pub clock_skew_flagged: bool,
    pub events_rejected: u64,
    pub events_conflicted: u64,
    pub queue: Option<DeviceQueueReport>,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RouteSummary {
    pub route_id: RouteId,
    pub courier_id: CourierId,
    pub day: String,
    pub version: u32,
    pub stops: Vec<StopView>,
}

/// One event as the server stored it, with where and when it came from.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    pub event_id: EventId,
    pub device_id: Option<DeviceId>,
    pub device_seq: Option<u64>,
    pub intent_key: String,
    pub device_time_ms: Option<u64>,
    pub received_at_ms: u64,
    pub clock_offset_ms: Option<i64>,
    pub hlc: HlcStamp,
    pub status: PushStatus,
    pub code: Option<ProblemCode>,
    #[serde(flatten)]
    pub payload: EventPayload,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StopDetail {
    pub view: StopView,
    pub events: Vec<StoredEvent>,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EscalationKind {
    IntentConflict,
    RejectedEvent,
    DeliveredAfterCancel,
    DeliveredAfterReassign,
    AccessNotesDiverged,
    AttemptsExhausted,
    TerminalFailure,
    ClockSkew,
    /// The office's contact attempts failed twice: nobody to hand the parcel to.
    CustomerUnreachable,
    /// An attempt failed for "no access" at a stop with no access instructions on file.
    NoAccessInstructions,
    /// A courier scanned a parcel that is planned for another stop.
    ParcelMisSorted,
}

impl EscalationKind {
    /// Lower is more urgent.
    pub fn priority(self) -> u8 {
        match self {
            Self::DeliveredAfterCancel | Self::DeliveredAfterReassign | Self::IntentConflict => 1,
            Self::TerminalFailure
            | Self::AttemptsExhausted
            | Self::RejectedEvent
            | Self::CustomerUnreachable
            | Self::NoAccessInstructions
            | Self::ParcelMisSorted => 2,
            Self::AccessNotesDiverged | Self::ClockSkew => 3,
        }
    }
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Escalation {
    pub escalation_id: EscalationId,
    pub kind: EscalationKind,
    pub priority: u8,
    pub stop_id: Option<StopId>,
    pub device_id: Option<DeviceId>,
    pub event_id: Option<EventId>,
    pub opened_at_ms: u64,
    pub resolved: bool,
    pub detail: String,
}

// ---------------------------------------------------------------- dispatcher commands
// Each is sent with an `Idempotency-Key` header; a replay returns the first answer.

/// `POST /v1/dispatch/stops/{stop_id}/cancel`
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelStopCommand {
    pub reason: String,
}

/// `POST /v1/dispatch/stops/{stop_id}/reschedule`
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RescheduleStopCommand {
    pub window: crate::event::TimeWindow,
}

/// `POST /v1/dispatch/stops/{stop_id}/reassign`
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReassignStopCommand {
    pub to_route: RouteId,
}

/// `POST /v1/dispatch/escalations/{escalation_id}/resolve`
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolveEscalationCommand {
    pub resolution: String,
    #[serde(default)]
    pub chosen_value: Option<String>,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandOutcome {
    /// The command produced a new office event.
    Applied,
    /// The same intent was already recorded: nothing changed.
    AlreadyApplied,
}

/// The answer to a dispatcher command.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandReceipt {
    pub outcome: CommandOutcome,
    pub intent_key: String,
}

/// `GET /v1/dispatch/metrics`: headline figures for the dashboard.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricsSummary {
    pub first_attempts: u64,
    pub first_attempts_delivered: u64,
    /// "Customer absent" first attempts without presence evidence: no real attempt.
    pub first_attempts_no_real: u64,
    /// Delivered among first attempts that really happened (`first_attempts_no_real` left out).
    pub first_attempt_success_rate: Option<f64>,
    pub open_escalations: u64,
    pub devices: u64,
    pub devices_clock_skewed: u64,
    pub events_rejected: u64,
    pub events_conflicted: u64,
}
