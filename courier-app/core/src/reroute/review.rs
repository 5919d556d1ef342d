//! The driver's review of a replan: the proposal on screen, and the last accepted one (what
//! "Undo" reverts). Accepting and undoing are both `RouteReplanned` facts in the outbox; this
//! only remembers which proposal the screen shows, so a stale or forged digest is refused.
//!
//! The accepted proposal is also kept in the outbox (best effort, after its fact is durable),
//! so [`Review::restore`] offers Undo again after the app restarts — as long as that replan is
//! still the route's latest and the server has not refused it.

use thiserror::Error;

use super::rerouter::{Proposal, accept_replan, undo_replan};
use crate::device::{Device, DeviceError};
use crate::outbox::AppendOutcome;

/// Where the accepted proposal is kept between runs (`meta`; empty: none).
const ACCEPTED_KEY: &str = "replan_accepted";

#[derive(Debug, Error)]
pub enum ReviewError {
    #[error("proposal {digest} is not the one on screen; ask for a new re-plan")]
    NotOnScreen { digest: String },
    #[error("there is no accepted re-plan {digest} to undo")]
    NothingToUndo { digest: String },
    #[error(transparent)]
    Device(#[from] DeviceError),
}

/// What the route screen is reviewing. The proposal on screen lives as long as the app; the
/// accepted one survives a restart (see [`Review::restore`]).
#[derive(Debug, Default)]
pub struct Review {
    pending: Option<Proposal>,
    accepted: Option<Proposal>,
}

fn short(digest: &str) -> String {
    digest.chars().take(12).collect()
}

fn kept(outcome: &AppendOutcome) -> bool {
    matches!(
        outcome,
        AppendOutcome::Recorded(_) | AppendOutcome::Duplicate(_)
    )
}

/// Keeps (or, with `None`, forgets) the accepted proposal in the outbox. A failure only costs
/// Undo after a restart, so it is logged, not returned: the fact itself is already durable.
fn remember(device: &Device, accepted: Option<&Proposal>) {
    let value = accepted.map_or(Ok(String::new()), serde_json::to_string);
    let stored = value.map_err(|e| e.to_string()).and_then(|v| {
        device
            .with_outbox(|o| o.set_meta(ACCEPTED_KEY, &v))
            .map_err(|e| e.to_string())
    });
    if let Err(e) = stored {
        tracing::warn!(error = %e, "the accepted re-plan was not kept; Undo ends with this run");
    }
}

/// Whether `proposal` is still the latest replan of its route on this device, and the server
/// has not refused it.
fn still_latest(device: &Device, proposal: &Proposal) -> Result<bool, DeviceError> {
    let latest = device.with_outbox(|o| o.latest_replan(proposal.route_id))?;
    Ok(latest.is_some_and(|(r, refused)| r.inputs_digest == proposal.inputs_digest && !refused))
}

impl Review {
    /// The review after a restart: nothing on screen, and the accepted proposal kept by the last
    /// run, if it is still the route's latest replan and the server has not refused it.
    pub fn restore(device: &Device) -> Result<Self, DeviceError> {
        let kept = device.with_outbox(|o| o.meta(ACCEPTED_KEY))?;
        let proposal = kept
            .filter(|json| !json.is_empty())
            .and_then(|json| serde_json::from_str::<Proposal>(&json).ok());
        let accepted = match proposal {
            Some(p) if still_latest(device, &p)? => Some(p),
            _ => None,
        };
        Ok(Self {
            pending: None,
            accepted,
        })
    }

    /// Puts `proposal` on screen (replacing any other proposal); the accepted one stays undoable.
    pub fn show(&mut self, proposal: Proposal) -> &Proposal {
        self.pending.insert(proposal)
    }

    pub fn pending(&self) -> Option<&Proposal> {
        self.pending.as_ref()
    }

    pub fn accepted(&self) -> Option<&Proposal> {
        self.accepted.as_ref()
    }

    /// Takes the proposal on screen off it, if its digest is `digest`.
    pub fn dismiss(&mut self, digest: &str) -> bool {
        let on_screen = self
            .pending
            .as_ref()
            .is_some_and(|p| p.inputs_digest == digest);
        if on_screen {
            self.pending = None;
        }
        on_screen
    }

    /// Records the proposal on screen as accepted. A refusal leaves it on screen.
    pub fn accept(&mut self, device: &Device, digest: &str) -> Result<AppendOutcome, ReviewError> {
        let Some(proposal) = self.pending.take_if(|p| p.inputs_digest == digest) else {
            return Err(ReviewError::NotOnScreen {
                digest: short(digest),
            });
        };
        let outcome = accept_replan(device, &proposal)?;
        if kept(&outcome) {
            remember(device, Some(&proposal));
            self.accepted = Some(proposal);
        } else {
            self.pending = Some(proposal);
        }
        Ok(outcome)
    }

    /// Restores the order the accepted proposal replaced. Any proposal on screen was computed
    /// against the accepted order, so it goes too.
    pub fn undo(&mut self, device: &Device, digest: &str) -> Result<AppendOutcome, ReviewError> {
        let Some(proposal) = self.accepted.take_if(|p| p.inputs_digest == digest) else {
            return Err(ReviewError::NothingToUndo {
                digest: short(digest),
            });
        };
        let outcome = undo_replan(device, &proposal)?;
        if kept(&outcome) {
            remember(device, None);
            self.pending = None;
        } else {
            self.accepted = Some(proposal);
        }
        Ok(outcome)
    }
}
