//! The driver's review of a replan: the proposal on screen, and the last accepted one (what
//! "Undo" reverts). Accepting and undoing are both `RouteReplanned` facts in the outbox; this
//! only remembers which proposal the screen shows, so a stale or forged digest is refused.

use thiserror::Error;

use super::rerouter::{Proposal, accept_replan, undo_replan};
use crate::device::{Device, DeviceError};
use crate::outbox::AppendOutcome;

#[derive(Debug, Error)]
pub enum ReviewError {
    #[error("proposal {digest} is not the one on screen; ask for a new re-plan")]
    NotOnScreen { digest: String },
    #[error("there is no accepted re-plan {digest} to undo")]
    NothingToUndo { digest: String },
    #[error(transparent)]
    Device(#[from] DeviceError),
}

/// What the route screen is reviewing. Lives as long as the app; a restart forgets it (the
/// facts already recorded stay).
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

impl Review {
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
            self.pending = None;
        } else {
            self.accepted = Some(proposal);
        }
        Ok(outcome)
    }
}
