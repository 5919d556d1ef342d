//! The pure heart of push: given one event and what the store knows about its intent and its
//! stop, decide the outcome. No I/O; every storage backend calls this same function inside its
//! per-event transaction, so the semantics cannot drift between backends.

use doorstep_shared::event::{AttemptOutcome, EventEnvelope, EventPayload, InvalidEvent};
use doorstep_shared::intent::fingerprint;
use doorstep_shared::protocol::{EscalationKind, PushStatus};
use doorstep_shared::stop::{StopConflict, Transition};
use doorstep_shared::{CourierId, EventId, ProblemCode, StopId, StopState, StopStatus};

/// An intent that was already applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KnownIntent {
    pub fingerprint: String,
    pub event_id: EventId,
}

/// What the store knows about the stop an event refers to.
#[derive(Clone, Debug)]
pub struct StopRecord {
    pub state: StopState,
    /// Every courier the stop has ever been assigned to (the current one included).
    pub assigned_to: Vec<CourierId>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEscalation {
    pub kind: EscalationKind,
    pub stop_id: Option<StopId>,
    pub detail: String,
}

/// The outcome of one event.
#[derive(Clone, Debug)]
pub struct Decision {
    pub status: PushStatus,
    pub code: Option<ProblemCode>,
    pub detail: Option<String>,
    /// The stop's new state, when the event was applied to a stop.
    pub new_state: Option<StopState>,
    /// Record the intent as applied (only for `Applied`).
    pub record_intent: bool,
    pub escalations: Vec<NewEscalation>,
}

impl Decision {
    fn settled(status: PushStatus, code: Option<ProblemCode>, detail: Option<String>) -> Self {
        Self {
            status,
            code,
            detail,
            new_state: None,
            record_intent: false,
            escalations: vec![],
        }
    }

    fn rejected(code: ProblemCode, detail: String, stop_id: Option<StopId>) -> Self {
        let esc = NewEscalation {
            kind: EscalationKind::RejectedEvent,
            stop_id,
            detail: format!("{}: {detail}", code.as_str()),
        };
        Self {
            escalations: vec![esc],
            ..Self::settled(PushStatus::Rejected, Some(code), Some(detail))
        }
    }
}

/// The move an event asks the state machine for, if it is one.
pub fn transition_of(payload: &EventPayload) -> Option<Transition> {
    match payload {
        EventPayload::ParcelScanned(e) => Some(Transition::Scan { phase: e.phase }),
        EventPayload::ArrivedAtStop(_) => Some(Transition::Arrive),
        EventPayload::DeliveryAttempted(e) => Some(match e.outcome {
            AttemptOutcome::Delivered { .. } => Transition::Deliver,
            AttemptOutcome::Failed { reason, .. } => Transition::Fail { reason },
        }),
        _ => None,
    }
}

fn invalid_code(e: &InvalidEvent) -> ProblemCode {
    match e {
        InvalidEvent::UnsupportedSchema(_) => ProblemCode::UnsupportedSchemaVersion,
        InvalidEvent::OfficeKindFromDevice(_) => ProblemCode::OfficeKindFromDevice,
        InvalidEvent::IntentKeyMismatch { .. } => ProblemCode::IntentKeyMismatch,
        InvalidEvent::Field { .. } => ProblemCode::InvalidEvent,
    }
}

/// Decides one device event whose `device_seq` is the next expected one.
///
/// Order of checks: the event's own validity; then its business intent (a duplicate or a
/// conflict never touches state); then whether the device may act on the stop; then the state
/// machine; then the fold.
pub fn decide_device_event(
    env: &EventEnvelope,
    courier: CourierId,
    known: Option<&KnownIntent>,
    stop: Option<&StopRecord>,
) -> Decision {
    let stop_id = env.payload.stop_id();
    if let Err(e) = env.validate_from_device() {
        return Decision::rejected(invalid_code(&e), e.to_string(), stop_id);
    }
    if let Some(k) = known {
        return if k.fingerprint == fingerprint(&env.payload) {
            Decision::settled(
                PushStatus::Duplicate,
                None,
                Some(format!("intent already applied by event {}", k.event_id)),
            )
        } else {
            let detail = format!(
                "intent {} was applied by event {} with a different payload",
                env.intent_key, k.event_id
            );
            Decision {
                escalations: vec![NewEscalation {
                    kind: EscalationKind::IntentConflict,
                    stop_id,
                    detail: detail.clone(),
                }],
                ..Decision::settled(
                    PushStatus::Conflict,
                    Some(ProblemCode::IntentConflict),
                    Some(detail),
                )
            }
        };
    }
    let Some(stop_id) = stop_id else {
        return Decision {
            record_intent: true,
            ..Decision::settled(PushStatus::Applied, None, None)
        };
    };
    let Some(record) = stop else {
        return Decision::rejected(
            ProblemCode::InvalidEvent,
            format!("stop {stop_id} is not known to the server"),
            Some(stop_id),
        );
    };
    if !record.assigned_to.contains(&courier) {
        return Decision::rejected(
            ProblemCode::Forbidden,
            format!("stop {stop_id} was never assigned to this device's courier"),
            Some(stop_id),
        );
    }
    let before = record.state.status();
    if let Some(t) = transition_of(&env.payload)
        && let Err(illegal) = before.check(t)
    {
        return Decision::rejected(
            ProblemCode::IllegalTransition,
            illegal.to_string(),
            Some(stop_id),
        );
    }
    let mut state = record.state.clone();
    state.apply(env.event_id, env.hlc, &env.payload);
    let escalations = state_escalations(&record.state, &state);
    Decision {
        status: PushStatus::Applied,
        code: None,
        detail: None,
        new_state: Some(state),
        record_intent: true,
        escalations,
    }
}

/// Escalations opened by a state change: new conflicts, and newly reached states that need a
/// human (attempt budget spent, terminal failure).
pub fn state_escalations(before: &StopState, after: &StopState) -> Vec<NewEscalation> {
    let stop_id = Some(after.stop_id);
    let old = before.conflicts();
    let mut out: Vec<NewEscalation> = after
        .conflicts()
        .into_iter()
        .filter(|c| {
            !old.iter()
                .any(|o| std::mem::discriminant(o) == std::mem::discriminant(c))
        })
        .map(|c| {
            let (kind, detail) = match c {
                StopConflict::DeliveredAfterCancel => (
                    EscalationKind::DeliveredAfterCancel,
                    "delivered in the street after the office cancelled the stop".to_owned(),
                ),
                StopConflict::DeliveredAfterReassign => (
                    EscalationKind::DeliveredAfterReassign,
                    "delivered by a courier after the stop was reassigned".to_owned(),
                ),
                StopConflict::AccessNotesDiverged { values } => (
                    EscalationKind::AccessNotesDiverged,
                    format!("concurrent access-note edits: {values:?}"),
                ),
            };
            NewEscalation {
                kind,
                stop_id,
                detail,
            }
        })
        .collect();
    let (b, a) = (before.status(), after.status());
    if a != b {
        match a {
            StopStatus::AttemptsExhausted => out.push(NewEscalation {
                kind: EscalationKind::AttemptsExhausted,
                stop_id,
                detail: "attempt budget spent".to_owned(),
            }),
            StopStatus::FailedTerminal { reason } => out.push(NewEscalation {
                kind: EscalationKind::TerminalFailure,
                stop_id,
                detail: format!("attempt failed for a terminal reason: {}", reason.code()),
            }),
            _ => {}
        }
    }
    out
}
