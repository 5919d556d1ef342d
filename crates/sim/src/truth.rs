//! The truth of what was created: read back from each device's outbox file after the run.

use crate::check::CreatedEvent;
use courier_core::transport::Encoding;
use courier_core::{Outbox, OutboxError};
use doorstep_shared::EventPayload;
use doorstep_shared::event::AttemptOutcome;
use std::path::Path;

/// What one outbox holds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OutboxTruth {
    pub events: Vec<CreatedEvent>,
    /// Events the server has not settled yet.
    pub queued: u64,
    /// Every event as JSON, once.
    pub raw_payload_bytes: u64,
    /// The same, zstd-compressed in push-sized batches: one clean upload of everything.
    pub compressed_payload_bytes: u64,
}

/// Events per batch when estimating one clean upload.
const BATCH: usize = 500;

/// Reads the outbox at `path` of the fleet's courier number `courier`.
pub fn read_outbox(path: &Path, courier: usize) -> Result<OutboxTruth, OutboxError> {
    let outbox = Outbox::open(path)?;
    let envelopes = outbox.all_events()?;
    let mut truth = OutboxTruth::default();
    for env in &envelopes {
        let acknowledged = outbox.outcome(env.device_seq)?.is_some();
        truth.queued += u64::from(!acknowledged);
        let first_attempt = match &env.payload {
            EventPayload::DeliveryAttempted(a) if a.attempt == 1 => {
                Some(matches!(a.outcome, AttemptOutcome::Delivered { .. }))
            }
            _ => None,
        };
        truth.events.push(CreatedEvent {
            courier,
            device_seq: env.device_seq,
            event_id: env.event_id,
            intent_key: env.intent_key.clone(),
            kind: env.payload.kind().to_owned(),
            created_at_ms: env.device_time_ms,
            acknowledged,
            first_attempt,
        });
    }
    for batch in envelopes.chunks(BATCH) {
        let raw = serde_json::to_vec(batch).unwrap_or_default();
        truth.raw_payload_bytes += raw.len() as u64;
        truth.compressed_payload_bytes += Encoding::Zstd.encode(&raw).len() as u64;
    }
    Ok(truth)
}
