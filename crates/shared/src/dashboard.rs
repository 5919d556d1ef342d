//! Wire types of the dispatcher dashboard: a lean fleet snapshot (sized for hundreds of couriers
//! and tens of thousands of stops), one route's stops on demand, the live-update feed and the
//! metrics the dashboard charts. The TypeScript client's copies are generated from these.

use crate::event::{GeoPoint, TimeWindow};
use crate::ids::{BlobDigest, CourierId, DeviceId, EventId, RouteId, StopId};
use crate::presence::AttemptClass;
use crate::protocol::{DeviceHealth, DeviceQueueReport};
use crate::stop::StopStatus;
use serde::{Deserialize, Serialize};

/// A device with no contact for longer than this is shown as offline.
pub const OFFLINE_AFTER_MS: u64 = 60_000;

/// A stop's status folded into the few colours the fleet map uses.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MapStatus {
    /// Planned or loaded, not yet on its way.
    Pending,
    /// Out for delivery or the courier is at the door.
    EnRoute,
    /// A failed attempt that can still be reattempted.
    Retry,
    /// A human must decide (attempt budget spent or a terminal failure).
    NeedsHuman,
    Delivered,
    /// Cancelled or returned to the depot.
    Closed,
}

impl MapStatus {
    pub fn of(status: StopStatus) -> Self {
        match status {
            StopStatus::Planned | StopStatus::Loaded => Self::Pending,
            StopStatus::OutForDelivery | StopStatus::Arrived => Self::EnRoute,
            StopStatus::AttemptFailed { .. } => Self::Retry,
            StopStatus::AttemptsExhausted | StopStatus::FailedTerminal { .. } => Self::NeedsHuman,
            StopStatus::Delivered => Self::Delivered,
            StopStatus::Cancelled | StopStatus::Returned => Self::Closed,
        }
    }
}

/// One stop on the fleet map: `[lat, lon, status]`, compact because there can be 20,000.
pub type MapPoint = (f64, f64, MapStatus);

/// How many of a route's stops are in each map status.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StopCounts {
    pub total: u32,
    pub pending: u32,
    pub en_route: u32,
    pub retry: u32,
    pub needs_human: u32,
    pub delivered: u32,
    pub closed: u32,
}

impl StopCounts {
    pub fn add(&mut self, s: MapStatus) {
        self.total += 1;
        let slot = match s {
            MapStatus::Pending => &mut self.pending,
            MapStatus::EnRoute => &mut self.en_route,
            MapStatus::Retry => &mut self.retry,
            MapStatus::NeedsHuman => &mut self.needs_human,
            MapStatus::Delivered => &mut self.delivered,
            MapStatus::Closed => &mut self.closed,
        };
        *slot += 1;
    }
}

/// One courier on the fleet screen.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FleetCourier {
    pub courier_id: CourierId,
    pub name: String,
    pub region: String,
    pub route_id: Option<RouteId>,
    pub counts: StopCounts,
    pub devices: Vec<DeviceHealth>,
    /// The route's stops in plan order, for the map.
    pub points: Vec<MapPoint>,
}

/// `GET /v1/dispatch/fleet`: everything the fleet screen draws, in one read.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FleetSnapshot {
    pub server_time_ms: u64,
    pub offline_after_ms: u64,
    pub depot: Option<GeoPoint>,
    pub couriers: Vec<FleetCourier>,
    pub open_escalations: u64,
}

/// One stop of a route, with its plan and its current status.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RouteStop {
    pub stop_id: StopId,
    pub sequence: u32,
    pub address: String,
    pub customer_name: String,
    pub location: GeoPoint,
    pub window: TimeWindow,
    pub access_notes: Option<String>,
    pub status: StopStatus,
}

/// `GET /v1/dispatch/routes/{route_id}`: one route's stops, fetched when a courier is opened.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RouteDetail {
    pub route_id: RouteId,
    pub courier_id: CourierId,
    pub courier_name: String,
    pub day: String,
    pub version: u32,
    pub depot: GeoPoint,
    pub stops: Vec<RouteStop>,
}

/// Where a stop is planned, for the stop timeline and the escalation context.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StopContext {
    pub stop: RouteStop,
    pub route_id: RouteId,
    pub courier_id: CourierId,
    pub courier_name: String,
}

/// One message on `GET /v1/dispatch/live` (Server-Sent Events, `data:` is this JSON).
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LiveEvent {
    /// A device pushed (even an empty batch: it is online).
    Push {
        device_id: DeviceId,
        courier_id: CourierId,
        server_time_ms: u64,
        last_applied_seq: u64,
        /// Events in the batch that were applied now.
        applied: u32,
        queue: Option<DeviceQueueReport>,
        /// Stops the batch's events refer to (whatever their outcome).
        stops: Vec<StopId>,
        /// Escalations the batch opened (conflicts, rejections, rules): the queue changed.
        escalations_opened: u32,
    },
    /// An office event was recorded (a dispatcher command, seeding).
    Office {
        kind: String,
        stop_id: Option<StopId>,
        server_time_ms: u64,
    },
    /// A blob (a proof photo or thumbnail) finished uploading and was verified: a "photo
    /// pending" for this digest is over.
    BlobStored {
        digest: BlobDigest,
        server_time_ms: u64,
    },
    /// The subscriber fell behind and missed messages: reload everything.
    Resync,
}

/// `POST /v1/dispatch/live/ticket`: a single-use ticket for opening the event stream, because a
/// browser `EventSource` cannot send an `Authorization` header.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveTicket {
    pub ticket: String,
    pub expires_in_ms: u64,
}

/// `POST /v1/dispatch/stops/{stop_id}/return-to-depot`: the office asks for the parcels to come
/// back. Recorded as a cancellation with the reason `return_to_depot: …`; the stop becomes
/// `returned` only when the driver's return scan arrives.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReturnToDepotCommand {
    pub reason: String,
}

/// How a contact attempt with the customer went.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContactResult {
    Reached,
    NoAnswer,
    LeftMessage,
    WrongNumber,
}

/// `POST /v1/dispatch/stops/{stop_id}/contact`: the dispatcher contacted (or tried to contact)
/// the customer. Recorded as a note on the stop, which the courier's device also receives.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactCustomerCommand {
    /// Chosen once per user action, so a retried request is the same note.
    pub note_id: uuid::Uuid,
    pub result: ContactResult,
    pub message: String,
}

/// A labelled count.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Count {
    pub label: String,
    pub count: u64,
}

/// First attempts and their successes in one group (a courier, a region, a time bucket).
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttemptGroup {
    pub label: String,
    pub first_attempts: u64,
    pub first_attempts_delivered: u64,
    /// First attempts that were "customer absent" with a presence score below
    /// [`crate::presence::PRESENCE_THRESHOLD`]: no real attempt, reported apart from real failures
    /// and left out of the first-attempt success rate.
    pub first_attempts_no_real: u64,
    pub failed_attempts: u64,
    pub duplicates: u64,
    pub late_replays: u64,
    /// Mean time from when an event happened (device clock corrected by the measured offset)
    /// to when the server received it, ms.
    pub mean_sync_lag_ms: Option<f64>,
}

/// `GET /v1/dispatch/metrics/dashboard?bucket_ms=N`: everything the metrics screen charts,
/// computed from the event log (so it survives restarts).
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DashboardMetrics {
    pub server_time_ms: u64,
    pub bucket_ms: u64,
    pub totals: AttemptGroup,
    /// Oldest first; `label` is the bucket start (Unix ms) as text.
    pub over_time: Vec<AttemptGroup>,
    pub by_courier: Vec<AttemptGroup>,
    pub by_region: Vec<AttemptGroup>,
    pub failed_by_reason: Vec<Count>,
    /// Intent duplicates stored in the log plus sequence replays answered since the server
    /// started (those are not logged twice).
    pub duplicates_caught: u64,
    pub replays_since_start: u64,
    pub open_escalations: u64,
}

/// The verdict on one logged proof of delivery, re-verified by the server.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofVerdict {
    pub event_id: EventId,
    pub device_id: DeviceId,
    pub device_seq: u64,
    pub attempt: u32,
    /// The push outcome recorded for the event (`applied`, `rejected`, …).
    pub status: String,
    /// `valid`, `unsigned`, or `invalid: <why>`.
    pub signature: String,
    /// `intact`, `not_signed`, or `broken: <where>`.
    pub chain: String,
    pub photos: Vec<BlobDigest>,
    pub thumbnails: Vec<BlobDigest>,
    /// Digests whose blob has not reached the server yet ("photo pending").
    pub pending_blobs: Vec<BlobDigest>,
}

/// `GET /v1/dispatch/stops/{stop_id}/proof`: the evidence of one stop, re-verified.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofReport {
    pub stop_id: StopId,
    /// True when there is at least one proof and every one verifies with an intact chain.
    pub verified: bool,
    pub proofs: Vec<ProofVerdict>,
}

/// The presence score of one attempt, computed by the server from the synced facts with the
/// device's scorer ([`crate::presence::score`]).
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttemptPresence {
    pub attempt: u32,
    /// 0..=1; at or above [`PresenceReport::threshold`] counts as presence evidence.
    pub score: f64,
    pub present: bool,
    /// `no_real_attempt` for a "customer absent" without presence evidence.
    pub class: AttemptClass,
    pub beacon_component: f64,
    pub gps_component: f64,
    /// Beacon sightings of the stop counted for this attempt.
    pub beacon_sightings: u32,
    pub closest_beacon_m: Option<f64>,
    /// Location fixes (arrival, proof and periodic fixes) counted for this attempt.
    pub gps_fixes: u32,
    pub gps_closest_m: Option<f64>,
    /// Time between the first and last fix near the stop, ms.
    pub gps_dwell_ms: Option<u64>,
}

/// `GET /v1/dispatch/stops/{stop_id}/presence`: a presence score per attempt of the stop.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PresenceReport {
    pub stop_id: StopId,
    pub threshold: f64,
    pub attempts: Vec<AttemptPresence>,
}
