//! The values that cross the storage boundary: who is calling, what a push or an office
//! command did, and the records the dispatcher reads are built from.

use crate::merge::NewEscalation;
pub use doorstep_shared::ShipperId;
use doorstep_shared::event::{EventPayload, ProofCaptured, RouteAssigned};
use doorstep_shared::protocol::{DeviceQueueReport, PushResponse};
use doorstep_shared::{BlobDigest, CourierId, DeviceId, EventId, HlcStamp};

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

/// An authenticated integration: one shipper's systems.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IntegrationAuth {
    pub shipper: ShipperId,
    pub name: String,
}

/// Facts about the push request that are not in its body.
#[derive(Clone, Copy, Debug)]
pub struct PushContext {
    pub received_at_ms: u64,
    /// `device clock - server clock`, measured on this request (see [`crate::clock_offset_ms`]).
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
    /// The device's queue as the server stored it: the reported one, less what the answer
    /// settled (`None` when nothing was reported or nothing was stored).
    pub queue: Option<DeviceQueueReport>,
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
    /// The same key is being processed right now (its lease has not expired).
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
    /// Set for a contact-customer command: whether the customer was reached. Unsuccessful
    /// attempts are counted per stop (see [`crate::merge::contact_escalation`]).
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

/// One open upload session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRecord {
    pub id: String,
    pub digest: BlobDigest,
    pub size: u64,
    /// Bytes received and verified chunk by chunk.
    pub offset: u64,
    pub expires_at_ms: u64,
}

/// One logged proof event with what the store knows around it.
#[derive(Clone, Debug)]
pub struct LoggedProof {
    pub event_id: EventId,
    pub device_id: DeviceId,
    pub device_seq: u64,
    pub hlc: HlcStamp,
    /// The push outcome recorded for the event (`applied`, `rejected`, …).
    pub status: String,
    pub proof: ProofCaptured,
    /// The device's public key registered at enrollment.
    pub registered_key: Option<String>,
    /// The chain head this proof had to link: the [`crate::evidence::chain_link`] of the
    /// device's latest earlier proof that has one, empty for its first.
    pub previous_statement: String,
}

/// An escalation to open, with where it came from.
#[derive(Clone, Debug)]
pub struct EscalationRecord<'a> {
    pub escalation: &'a NewEscalation,
    pub device: Option<DeviceId>,
    pub event: Option<EventId>,
    pub opened_at_ms: u64,
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
