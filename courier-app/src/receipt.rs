//! What a recording command answers: the event it wrote, or the one it matched.

use courier_core::AppendOutcome;
use serde::Serialize;

use crate::error::IpcResult;

#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export_to = "app/"))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A new event, durable in the outbox.
    Recorded,
    /// The same intent was already recorded (a double tap or double scan): nothing new.
    Duplicate,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export_to = "app/"))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Receipt {
    pub outcome: Outcome,
    pub device_seq: u64,
    pub event_id: String,
    pub intent_key: String,
}

/// Refusals become errors with a stable code; recorded and duplicate are both success.
pub fn receipt(outcome: AppendOutcome) -> IpcResult<Receipt> {
    let (outcome, e) = match outcome {
        AppendOutcome::Recorded(e) => (Outcome::Recorded, e),
        AppendOutcome::Duplicate(e) => (Outcome::Duplicate, e),
        AppendOutcome::Refused(r) => return Err(r.into()),
    };
    Ok(Receipt {
        outcome,
        device_seq: e.device_seq,
        event_id: e.event_id.to_string(),
        intent_key: e.intent_key,
    })
}
