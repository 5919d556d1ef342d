//! Turns a planned [`Action`] into the device command a driver's tap would issue.

use crate::courier_day::Action;
use courier_core::{AppendOutcome, Device, DeviceError};

/// How the device took one action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Taken {
    Recorded,
    /// Same intent as an earlier event: nothing new (a double tap).
    Duplicate,
    /// The device's state machine refused it (the driver would see why).
    Refused(String),
}

fn taken(o: &AppendOutcome) -> Taken {
    match o {
        AppendOutcome::Recorded(_) => Taken::Recorded,
        AppendOutcome::Duplicate(_) => Taken::Duplicate,
        AppendOutcome::Refused(r) => {
            tracing::info!(refusal = %r, "command refused");
            Taken::Refused(r.to_string())
        }
    }
}

/// Performs `action` on `device` now. `planned_at_ms` is the action's planned time on the
/// device clock: a location fix carries it as its fix time (the fix's identity).
pub fn perform(device: &Device, action: &Action, planned_at_ms: u64) -> Result<Taken, DeviceError> {
    let outcome = match action {
        Action::Scan { parcel, phase } => device.scan_parcel(parcel, *phase)?,
        Action::Arrive { stop, location } => device.arrive(*stop, Some(*location))?,
        Action::Attempt { stop, outcome } => {
            let Some(detail) = device.stop(*stop)? else {
                return Ok(Taken::Refused(format!("stop {stop} is not on the route")));
            };
            device.record_attempt(*stop, detail.summary.next_attempt, outcome.clone())?
        }
        Action::Note { stop, text } => device.add_note(*stop, device.new_note_id(), text)?,
        Action::Location { point, accuracy_m } => {
            device.record_location(*point, *accuracy_m, planned_at_ms)?
        }
    };
    Ok(taken(&outcome))
}
