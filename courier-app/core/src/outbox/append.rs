//! Appending one event: dedupe by intent, validate against the projection, stamp, store, fold —
//! all in one immediate transaction.

use super::{Outbox, OutboxError, from_json, projection, to_json};
use doorstep_shared::event::{EventPayload, InvalidEvent};
use doorstep_shared::intent::{fingerprint, intent_key};
use doorstep_shared::stop::{IllegalTransition, StopState, Transition};
use doorstep_shared::{BlobDigest, EventEnvelope, EventId, HybridClock, SCHEMA_VERSION, StopId};
use rusqlite::{OptionalExtension, TransactionBehavior, params};
use serde::Serialize;

/// Local clocks may not be dragged further ahead than this by a remote stamp.
pub(crate) const MAX_CLOCK_DRIFT_MS: u64 = 60 * 60 * 1_000;

/// What must hold in the projection for the event to be recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// Nothing (observations such as location fixes).
    None,
    /// The stop must be known.
    StopKnown,
    /// The stop must be known and allow the transition.
    Transition(Transition),
    /// As `Transition`, and `attempt` must be the stop's next attempt number.
    Attempt {
        transition: Transition,
        attempt: u32,
    },
}

/// An event about to be recorded. Time and randomness come from the caller.
#[derive(Clone, Debug)]
pub struct Draft {
    pub payload: EventPayload,
    pub check: Check,
    pub now_ms: u64,
    pub random: [u8; 10],
    pub blob_digests: Vec<BlobDigest>,
}

/// Why a command did not become an event. Expected outcomes, shown to the driver.
#[derive(Clone, Debug, PartialEq, thiserror::Error, Serialize)]
#[serde(tag = "refusal", rename_all = "snake_case")]
pub enum Refusal {
    #[error("this device is not enrolled yet")]
    NotEnrolled,
    #[error("stop {stop_id} is not on this device's routes")]
    UnknownStop { stop_id: StopId },
    #[error("parcel {parcel} is not on this device's routes")]
    UnknownParcel { parcel: String },
    #[error("{0}")]
    Illegal(IllegalTransition),
    #[error("invalid: {message}")]
    Invalid { message: String },
    #[error("attempt {requested} is not the next attempt ({next}) at this stop")]
    AttemptOutOfOrder { requested: u32, next: u32 },
    /// The same intent was already recorded with a different payload (e.g. "failed" then
    /// "delivered" for the same attempt). A correction needs a new intent.
    #[error("already recorded differently as event #{existing_seq}")]
    IntentTaken { existing_seq: u64 },
}

impl From<InvalidEvent> for Refusal {
    fn from(e: InvalidEvent) -> Self {
        Self::Invalid {
            message: e.to_string(),
        }
    }
}

/// The result of [`Outbox::append`].
#[derive(Clone, Debug, PartialEq)]
pub enum AppendOutcome {
    /// A new event, durable on return.
    Recorded(EventEnvelope),
    /// The same intent and payload were already recorded: nothing was written.
    Duplicate(EventEnvelope),
    Refused(Refusal),
}

impl Outbox {
    /// Records one event. See the module invariants.
    pub fn append(&mut self, draft: Draft) -> Result<AppendOutcome, OutboxError> {
        self.append_with(|_| Ok(Ok(draft)))
    }

    /// Records the event `resolve` drafts from the outbox's current state (say, the stop a
    /// scanned parcel belongs to). `resolve` runs inside the write transaction, so the draft
    /// is checked and stored against the very state it was derived from, and the command
    /// reads the file once instead of in two transactions.
    pub fn append_with(
        &mut self,
        resolve: impl FnOnce(&rusqlite::Connection) -> Result<Result<Draft, Refusal>, OutboxError>,
    ) -> Result<AppendOutcome, OutboxError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Nothing below writes before the checks pass; a refusal drops (rolls back) the
        // transaction, which costs no fsync.
        let Some(identity) = super::identity_in(&tx)? else {
            return Ok(AppendOutcome::Refused(Refusal::NotEnrolled));
        };
        let draft = match resolve(&tx)? {
            Ok(draft) => draft,
            Err(refusal) => return Ok(AppendOutcome::Refused(refusal)),
        };
        if let Err(e) = draft.payload.validate() {
            return Ok(AppendOutcome::Refused(e.into()));
        }
        let key = intent_key(&draft.payload, &identity.device_id);
        let existing: Option<(u64, String)> = tx
            .prepare_cached("SELECT device_seq, envelope FROM events WHERE intent_key = ?1")?
            .query_row([&key], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        if let Some((seq, json)) = existing {
            let env: EventEnvelope = from_json(&json, "event envelope")?;
            return Ok(
                if fingerprint(&super::evidence::unsigned(&env.payload))
                    == fingerprint(&super::evidence::unsigned(&draft.payload))
                {
                    AppendOutcome::Duplicate(env)
                } else {
                    AppendOutcome::Refused(Refusal::IntentTaken { existing_seq: seq })
                },
            );
        }
        let stop = match check(&tx, &draft)? {
            Checked::Refused(refusal) => return Ok(AppendOutcome::Refused(refusal)),
            Checked::Passed(stop) => stop,
        };
        let last_event = super::last_event(&tx)?;
        let seq = last_event.map_or(1, |(seq, _)| seq + 1);
        let last = super::newest_stamp(&tx, last_event.map(|(_, stamp)| stamp))?;
        let mut clock = HybridClock::resume(last, MAX_CLOCK_DRIFT_MS);
        let hlc = clock.tick(draft.now_ms);
        let payload = super::evidence::seal(&tx, &identity.device_id, hlc, draft.payload)?;
        let env = EventEnvelope {
            event_id: EventId::from_parts(draft.now_ms, draft.random),
            device_id: identity.device_id,
            device_seq: seq,
            intent_key: key,
            schema_version: SCHEMA_VERSION,
            device_time_ms: draft.now_ms,
            hlc,
            blob_digests: draft.blob_digests,
            payload,
        };
        tx.prepare_cached(
            "INSERT INTO events (device_seq, event_id, intent_key, kind, stop_id, created_at_ms,
                                 hlc_wall_ms, hlc_logical, envelope)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?
        .execute(params![
            seq,
            env.event_id.to_string(),
            env.intent_key,
            env.payload.kind(),
            env.payload.stop_id().map(|s| s.to_string()),
            draft.now_ms,
            hlc.wall_ms,
            hlc.logical,
            to_json(&env)?,
        ])?;
        // The stamp is kept in the event row itself (see `last_stamp`), not in `meta`.
        match stop {
            Some(state) => projection::fold_into(&tx, *state, &env)?,
            None => projection::apply_own(&tx, &env)?,
        }
        tx.commit()?;
        Ok(AppendOutcome::Recorded(env))
    }
}

/// The result of checking a draft: refused, or passed with the stop it was checked against
/// (loaded once, folded into after the insert).
enum Checked {
    Refused(Refusal),
    Passed(Option<Box<StopState>>),
}

fn check(conn: &rusqlite::Connection, draft: &Draft) -> Result<Checked, OutboxError> {
    let (transition, attempt) = match draft.check {
        Check::None => return Ok(Checked::Passed(None)),
        Check::StopKnown => (None, None),
        Check::Transition(t) => (Some(t), None),
        Check::Attempt {
            transition,
            attempt,
        } => (Some(transition), Some(attempt)),
    };
    let Some(stop_id) = draft.payload.stop_id() else {
        return Ok(Checked::Passed(None));
    };
    let Some(state) = projection::load_state(conn, stop_id)? else {
        return Ok(Checked::Refused(Refusal::UnknownStop { stop_id }));
    };
    if let Some(requested) = attempt {
        let next = state.next_attempt();
        if requested != next {
            return Ok(Checked::Refused(Refusal::AttemptOutOfOrder {
                requested,
                next,
            }));
        }
    }
    if let Some(t) = transition
        && let Err(e) = state.status().check(t)
    {
        return Ok(Checked::Refused(Refusal::Illegal(e)));
    }
    Ok(Checked::Passed(Some(Box::new(state))))
}
