//! The v1 event envelope and every event kind. Events are immutable facts: a correction is a new
//! event, never an edit. Device events describe what happened in the street; office events are
//! what dispatcher commands produced. Both travel in the same envelope shape.

use crate::hlc::HlcStamp;
use crate::ids::{
    BlobDigest, CourierId, DeviceId, EscalationId, EventId, ParcelBarcode, RouteId, StopId,
};
use crate::reason::FailureReason;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The schema version this build writes. Readers accept every version in [`SUPPORTED_SCHEMA_VERSIONS`].
pub const SCHEMA_VERSION: u32 = 1;
pub const SUPPORTED_SCHEMA_VERSIONS: std::ops::RangeInclusive<u32> = 1..=1;
/// Longest free text accepted in a note, a recipient name or an access instruction.
pub const MAX_TEXT_LEN: usize = 2_000;
/// Highest attempt number a stop can carry.
pub const MAX_ATTEMPT: u32 = 10;

/// One event as it travels from a device to the server.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventEnvelope {
    pub event_id: EventId,
    pub device_id: DeviceId,
    /// Gap-free per device, starting at 1, assigned in the transaction that stored the event.
    pub device_seq: u64,
    /// What the event means to the business, e.g. `attempt:{stop}:{n}`. See [`crate::intent`].
    pub intent_key: String,
    pub schema_version: u32,
    /// The device's wall clock when the event happened. Informational: never used to order.
    pub device_time_ms: u64,
    pub hlc: HlcStamp,
    /// Digests of blobs (photos, thumbnails) the event refers to; they upload separately.
    #[serde(default)]
    pub blob_digests: Vec<BlobDigest>,
    #[serde(flatten)]
    pub payload: EventPayload,
}

/// What happened. Serialised as `"kind": "...", "payload": {...}`.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "payload", rename_all = "snake_case")]
pub enum EventPayload {
    // --- from the street (device events) ---
    ParcelScanned(ParcelScanned),
    BeaconSighted(BeaconSighted),
    ArrivedAtStop(ArrivedAtStop),
    DeliveryAttempted(DeliveryAttempted),
    ProofCaptured(ProofCaptured),
    LocationFixed(LocationFixed),
    RouteReplanned(RouteReplanned),
    NoteAdded(NoteAdded),
    AccessNotesEdited(AccessNotesEdited),
    // --- from the office (produced by dispatcher commands) ---
    RouteAssigned(RouteAssigned),
    StopReassigned(StopReassigned),
    StopRescheduled(StopRescheduled),
    StopCancelled(StopCancelled),
    EscalationResolved(EscalationResolved),
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScanPhase {
    Loaded,
    OutForDelivery,
    AtDoor,
    Returned,
}

impl ScanPhase {
    pub fn code(self) -> &'static str {
        match self {
            Self::Loaded => "loaded",
            Self::OutForDelivery => "out_for_delivery",
            Self::AtDoor => "at_door",
            Self::Returned => "returned",
        }
    }
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct GeoPoint {
    pub lat: f64,
    pub lon: f64,
}

impl GeoPoint {
    pub fn is_valid(&self) -> bool {
        (-90.0..=90.0).contains(&self.lat) && (-180.0..=180.0).contains(&self.lon)
    }
}

/// A delivery window, Unix ms, `start_ms < end_ms`.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TimeWindow {
    pub start_ms: u64,
    pub end_ms: u64,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ParcelScanned {
    pub stop_id: StopId,
    pub parcel: ParcelBarcode,
    pub phase: ScanPhase,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BeaconProtocol {
    IBeacon,
    EddystoneUid,
}

/// One beacon heard during a debounce window (many advertisements, one event).
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BeaconSighted {
    pub stop_id: Option<StopId>,
    pub protocol: BeaconProtocol,
    /// iBeacon `uuid:major:minor` or Eddystone `namespace:instance`, lower-case hex.
    pub beacon_id: String,
    pub window_start_ms: u64,
    pub sightings: u32,
    pub rssi_dbm: i16,
    pub tx_power_dbm: Option<i16>,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ArrivedAtStop {
    pub stop_id: StopId,
    pub attempt: u32,
    pub location: Option<GeoPoint>,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryMethod {
    HandedToRecipient,
    HandedToNeighbour,
    LeftAtSafePlace,
    ParcelLocker,
    Concierge,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum AttemptOutcome {
    Delivered {
        method: DeliveryMethod,
        recipient: Option<String>,
    },
    Failed {
        reason: FailureReason,
        detail: Option<String>,
    },
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryAttempted {
    pub stop_id: StopId,
    /// 1 for the first attempt at this stop.
    pub attempt: u32,
    pub outcome: AttemptOutcome,
}

/// A signature over the canonical evidence statement, linked into the device's evidence chain.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceSignature {
    /// Hex ed25519 public key registered at enrollment.
    pub public_key: String,
    /// Hex SHA-256 of the canonical statement.
    pub statement_digest: String,
    /// Hex digest of the previous evidence statement of this device (chain link), or empty.
    pub prev_link: String,
    /// Hex ed25519 signature of `statement_digest`.
    pub signature: String,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProofCaptured {
    pub stop_id: StopId,
    pub attempt: u32,
    #[serde(default)]
    pub photos: Vec<BlobDigest>,
    #[serde(default)]
    pub thumbnails: Vec<BlobDigest>,
    pub recipient_name: Option<String>,
    pub location: Option<GeoPoint>,
    pub signature: Option<EvidenceSignature>,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LocationFixed {
    pub location: GeoPoint,
    pub accuracy_m: f32,
    pub fix_time_ms: u64,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RouteReplanned {
    pub route_id: RouteId,
    /// `None` when the solver ran without the model.
    pub model_version: Option<String>,
    /// Hex SHA-256 of the solver inputs, so the decision can be replayed.
    pub inputs_digest: String,
    pub order: Vec<StopId>,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoteAdded {
    pub stop_id: StopId,
    /// Chosen once when the driver starts the note, so a double tap is the same intent.
    pub note_id: uuid::Uuid,
    pub text: String,
}

/// A free-text edit of a stop's access instructions. `version` is the causal context of the edit
/// (every actor's counter the editor had seen, including this edit's own): edits that do not
/// dominate each other are concurrent and all kept until a human picks one.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessNotesEdited {
    pub stop_id: StopId,
    pub actor: String,
    pub version: BTreeMap<String, u64>,
    pub text: String,
}

/// One stop as planned by the office.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StopPlan {
    pub stop_id: StopId,
    pub sequence: u32,
    pub address: String,
    pub location: GeoPoint,
    pub window: TimeWindow,
    pub parcels: Vec<ParcelBarcode>,
    pub customer_name: String,
    pub access_notes: Option<String>,
    pub instructions: Option<String>,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RouteAssigned {
    pub route_id: RouteId,
    pub courier_id: CourierId,
    /// Service day, `YYYY-MM-DD`.
    pub day: String,
    pub version: u32,
    pub depot: GeoPoint,
    pub stops: Vec<StopPlan>,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StopReassigned {
    pub stop_id: StopId,
    pub from_route: RouteId,
    pub to_route: RouteId,
    pub to_courier: CourierId,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StopRescheduled {
    pub stop_id: StopId,
    pub window: TimeWindow,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StopCancelled {
    pub stop_id: StopId,
    pub reason: String,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EscalationResolved {
    pub escalation_id: EscalationId,
    pub resolution: String,
    /// For a conflict between values, the one the human picked.
    pub chosen_value: Option<String>,
}

/// Why an event can never be applied, whatever the state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidEvent {
    #[error("schema version {0} is not supported")]
    UnsupportedSchema(u32),
    #[error("kind `{0}` can only be produced by a dispatcher command")]
    OfficeKindFromDevice(&'static str),
    #[error("intent key {got:?} does not match the payload (expected {expected:?})")]
    IntentKeyMismatch { expected: String, got: String },
    #[error("field `{field}` is invalid: {why}")]
    Field { field: &'static str, why: String },
}

fn field(field: &'static str, why: impl Into<String>) -> InvalidEvent {
    InvalidEvent::Field {
        field,
        why: why.into(),
    }
}

fn check_text(name: &'static str, text: &str) -> Result<(), InvalidEvent> {
    if text.len() > MAX_TEXT_LEN {
        return Err(field(name, format!("longer than {MAX_TEXT_LEN} bytes")));
    }
    Ok(())
}

fn check_attempt(attempt: u32) -> Result<(), InvalidEvent> {
    if attempt == 0 || attempt > MAX_ATTEMPT {
        return Err(field(
            "attempt",
            format!("must be 1..={MAX_ATTEMPT}, got {attempt}"),
        ));
    }
    Ok(())
}

fn check_point(name: &'static str, p: &Option<GeoPoint>) -> Result<(), InvalidEvent> {
    match p {
        Some(p) if !p.is_valid() => Err(field(name, "latitude or longitude out of range")),
        _ => Ok(()),
    }
}

impl EventPayload {
    /// The stable `kind` string.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::ParcelScanned(_) => "parcel_scanned",
            Self::BeaconSighted(_) => "beacon_sighted",
            Self::ArrivedAtStop(_) => "arrived_at_stop",
            Self::DeliveryAttempted(_) => "delivery_attempted",
            Self::ProofCaptured(_) => "proof_captured",
            Self::LocationFixed(_) => "location_fixed",
            Self::RouteReplanned(_) => "route_replanned",
            Self::NoteAdded(_) => "note_added",
            Self::AccessNotesEdited(_) => "access_notes_edited",
            Self::RouteAssigned(_) => "route_assigned",
            Self::StopReassigned(_) => "stop_reassigned",
            Self::StopRescheduled(_) => "stop_rescheduled",
            Self::StopCancelled(_) => "stop_cancelled",
            Self::EscalationResolved(_) => "escalation_resolved",
        }
    }

    /// True for facts from the street; false for what dispatcher commands produce.
    pub fn is_device_kind(&self) -> bool {
        !matches!(
            self,
            Self::RouteAssigned(_)
                | Self::StopReassigned(_)
                | Self::StopRescheduled(_)
                | Self::StopCancelled(_)
                | Self::EscalationResolved(_)
        )
    }

    /// The statement digest of a signed proof: the link the device's next proof must carry.
    pub fn evidence_link(&self) -> Option<&str> {
        match self {
            Self::ProofCaptured(p) => p.signature.as_ref().map(|s| s.statement_digest.as_str()),
            _ => None,
        }
    }

    /// The stop this event is about, the correlation id for tracing.
    pub fn stop_id(&self) -> Option<StopId> {
        match self {
            Self::ParcelScanned(e) => Some(e.stop_id),
            Self::BeaconSighted(e) => e.stop_id,
            Self::ArrivedAtStop(e) => Some(e.stop_id),
            Self::DeliveryAttempted(e) => Some(e.stop_id),
            Self::ProofCaptured(e) => Some(e.stop_id),
            Self::NoteAdded(e) => Some(e.stop_id),
            Self::AccessNotesEdited(e) => Some(e.stop_id),
            Self::StopReassigned(e) => Some(e.stop_id),
            Self::StopRescheduled(e) => Some(e.stop_id),
            Self::StopCancelled(e) => Some(e.stop_id),
            Self::LocationFixed(_)
            | Self::RouteReplanned(_)
            | Self::RouteAssigned(_)
            | Self::EscalationResolved(_) => None,
        }
    }

    /// Checks what can be checked without any state: ranges, lengths, shapes.
    pub fn validate(&self) -> Result<(), InvalidEvent> {
        match self {
            Self::ParcelScanned(_) => Ok(()),
            Self::BeaconSighted(e) => {
                if e.beacon_id.is_empty() || e.beacon_id.len() > 80 {
                    return Err(field("beacon_id", "must be 1..=80 characters"));
                }
                if e.sightings == 0 {
                    return Err(field("sightings", "must be at least 1"));
                }
                Ok(())
            }
            Self::ArrivedAtStop(e) => {
                check_attempt(e.attempt)?;
                check_point("location", &e.location)
            }
            Self::DeliveryAttempted(e) => {
                check_attempt(e.attempt)?;
                match &e.outcome {
                    AttemptOutcome::Delivered { recipient, .. } => {
                        check_text("recipient", recipient.as_deref().unwrap_or(""))
                    }
                    AttemptOutcome::Failed { detail, .. } => {
                        check_text("detail", detail.as_deref().unwrap_or(""))
                    }
                }
            }
            Self::ProofCaptured(e) => {
                check_attempt(e.attempt)?;
                check_point("location", &e.location)?;
                check_text("recipient_name", e.recipient_name.as_deref().unwrap_or(""))
            }
            Self::LocationFixed(e) => check_point("location", &Some(e.location)),
            Self::RouteReplanned(e) => {
                if e.order.is_empty() {
                    return Err(field("order", "must list at least one stop"));
                }
                Ok(())
            }
            Self::NoteAdded(e) => {
                if e.text.trim().is_empty() {
                    return Err(field("text", "must not be empty"));
                }
                check_text("text", &e.text)
            }
            Self::AccessNotesEdited(e) => {
                check_text("text", &e.text)?;
                if e.version.get(&e.actor).copied().unwrap_or(0) == 0 {
                    return Err(field("version", "must contain the editing actor's counter"));
                }
                Ok(())
            }
            Self::RouteAssigned(e) => {
                if e.stops.iter().any(|s| s.window.start_ms >= s.window.end_ms) {
                    return Err(field("window", "start must be before end"));
                }
                Ok(())
            }
            Self::StopRescheduled(e) if e.window.start_ms >= e.window.end_ms => {
                Err(field("window", "start must be before end"))
            }
            Self::StopReassigned(_)
            | Self::StopRescheduled(_)
            | Self::StopCancelled(_)
            | Self::EscalationResolved(_) => Ok(()),
        }
    }
}

impl EventEnvelope {
    /// Every check that does not need server state: schema, kind, intent key, fields.
    pub fn validate_from_device(&self) -> Result<(), InvalidEvent> {
        if !SUPPORTED_SCHEMA_VERSIONS.contains(&self.schema_version) {
            return Err(InvalidEvent::UnsupportedSchema(self.schema_version));
        }
        if !self.payload.is_device_kind() {
            return Err(InvalidEvent::OfficeKindFromDevice(self.payload.kind()));
        }
        self.payload.validate()?;
        let expected = crate::intent::intent_key(&self.payload, &self.device_id);
        if expected != self.intent_key {
            return Err(InvalidEvent::IntentKeyMismatch {
                expected,
                got: self.intent_key.clone(),
            });
        }
        Ok(())
    }
}
