//! Dispatcher commands, transport-agnostic: a command (the office's intent) is checked, turned
//! into an office event by the rules of `doorstep_store::office_rules` over the facts it needs,
//! recorded once per `Idempotency-Key`, and answered with a receipt. HTTP handlers only parse
//! a command and render the answer.

use crate::service::{ApiError, ApiResult, App};
use crate::store::{DispatcherAuth, OfficeOutcome, Store};
use doorstep_shared::dashboard::{ContactCustomerCommand, ContactResult};
use doorstep_shared::event::{
    EscalationResolved, EventPayload, MAX_TEXT_LEN, NoteAdded, StopCancelled, StopReassigned,
    StopRescheduled, TimeWindow,
};
use doorstep_shared::intent::intent_key;
use doorstep_shared::protocol::{
    CommandOutcome, CommandReceipt, EscalationKind, ResolveEscalationCommand,
};
use doorstep_shared::{DeviceId, EscalationId, ProblemCode, RouteId, StopId};
use doorstep_store::office_rules::{collapse_access_notes, contact_note, return_to_depot_reason};

/// What a dispatcher asks for.
#[derive(Clone, Debug)]
pub enum OfficeCommand {
    Cancel {
        stop_id: StopId,
        reason: String,
    },
    Reschedule {
        stop_id: StopId,
        window: TimeWindow,
    },
    Reassign {
        stop_id: StopId,
        to_route: RouteId,
    },
    Resolve {
        escalation_id: EscalationId,
        command: ResolveEscalationCommand,
    },
    /// The parcels come back to the depot: an office cancellation whose reason says so. The
    /// stop turns `returned` only when the driver's return scan arrives.
    ReturnToDepot {
        stop_id: StopId,
        reason: String,
    },
    /// A contact attempt, recorded as a stop note; any result but `reached` is unsuccessful,
    /// and the second one opens `customer_unreachable`.
    ContactCustomer {
        stop_id: StopId,
        command: ContactCustomerCommand,
    },
}

fn check_text(name: &str, text: &str) -> ApiResult<()> {
    if text.len() > MAX_TEXT_LEN {
        return Err(ApiError::new(
            ProblemCode::MalformedRequest,
            format!("{name} is longer than {MAX_TEXT_LEN} bytes"),
        ));
    }
    Ok(())
}

fn not_found(why: impl Into<String>) -> ApiError {
    ApiError::new(ProblemCode::NotFound, why)
}

impl<S: Store> App<S> {
    /// Runs `command` at most once per `key` (`body` is the request as sent, for the
    /// key's fingerprint) and answers `(status, receipt JSON)`; a replay answers the first
    /// answer byte for byte.
    pub async fn office_command(
        &self,
        who: &DispatcherAuth,
        key: Option<&str>,
        body: &[u8],
        command: OfficeCommand,
    ) -> ApiResult<(u16, String)> {
        match &command {
            OfficeCommand::ReturnToDepot { reason, .. } => check_text("reason", reason)?,
            OfficeCommand::ContactCustomer { command, .. } => {
                check_text("message", &command.message)?;
            }
            _ => {}
        }
        self.idempotent(key, body, || async move {
            let contact_reached = match &command {
                OfficeCommand::ContactCustomer { command, .. } => {
                    Some(command.result == ContactResult::Reached)
                }
                _ => None,
            };
            let payload = self.event_for(who, command).await?;
            let key = intent_key(&payload, &DeviceId(uuid::Uuid::nil()));
            let outcome = match self
                .record_office_contact(payload, &who.name, contact_reached)
                .await?
            {
                OfficeOutcome::Applied { .. } => CommandOutcome::Applied,
                OfficeOutcome::Duplicate => CommandOutcome::AlreadyApplied,
                OfficeOutcome::Conflict(why) => {
                    return Err(ApiError::new(ProblemCode::IntentConflict, why));
                }
                OfficeOutcome::UnknownTarget(why) => return Err(not_found(why)),
            };
            let receipt = CommandReceipt {
                outcome,
                intent_key: key,
            };
            Ok((200, serde_json::to_string(&receipt).unwrap_or_default()))
        })
        .await
    }

    /// The office event `command` becomes, reading the facts its rule needs.
    async fn event_for(
        &self,
        who: &DispatcherAuth,
        command: OfficeCommand,
    ) -> ApiResult<EventPayload> {
        Ok(match command {
            OfficeCommand::Cancel { stop_id, reason } => {
                EventPayload::StopCancelled(StopCancelled { stop_id, reason })
            }
            OfficeCommand::ReturnToDepot { stop_id, reason } => {
                EventPayload::StopCancelled(StopCancelled {
                    stop_id,
                    reason: return_to_depot_reason(&reason),
                })
            }
            OfficeCommand::Reschedule { stop_id, window } => {
                EventPayload::StopRescheduled(StopRescheduled { stop_id, window })
            }
            OfficeCommand::Reassign { stop_id, to_route } => {
                let (state, owner) = self
                    .with_store(move |s| Ok((s.stop_state(stop_id)?, s.route_owner(to_route)?)))
                    .await?;
                let state =
                    state.ok_or_else(|| not_found(format!("stop {stop_id} does not exist")))?;
                let to_courier =
                    owner.ok_or_else(|| not_found(format!("route {to_route} does not exist")))?;
                let from_route = state
                    .view()
                    .route
                    .ok_or_else(|| not_found("stop has no route"))?;
                EventPayload::StopReassigned(StopReassigned {
                    stop_id,
                    from_route,
                    to_route,
                    to_courier,
                })
            }
            OfficeCommand::ContactCustomer { stop_id, command } => {
                EventPayload::NoteAdded(NoteAdded {
                    stop_id,
                    note_id: command.note_id,
                    text: contact_note(&who.name, command.result, &command.message),
                })
            }
            OfficeCommand::Resolve {
                escalation_id,
                command,
            } => {
                if let Some(chosen) = &command.chosen_value {
                    self.apply_chosen_access_notes(escalation_id, chosen, &who.name)
                        .await?;
                }
                EventPayload::EscalationResolved(EscalationResolved {
                    escalation_id,
                    resolution: command.resolution,
                    chosen_value: command.chosen_value,
                })
            }
        })
    }

    /// Resolving an `access_notes_diverged` escalation with a chosen value rewrites the stop's
    /// access notes through the normal office-event path.
    async fn apply_chosen_access_notes(
        &self,
        escalation_id: EscalationId,
        chosen: &str,
        issued_by: &str,
    ) -> ApiResult<()> {
        let esc = self
            .with_store(move |s| {
                Ok(s.escalations(false)?
                    .into_iter()
                    .find(|e| e.escalation_id == escalation_id))
            })
            .await?;
        let Some(esc) = esc else { return Ok(()) };
        let (EscalationKind::AccessNotesDiverged, Some(stop_id)) = (esc.kind, esc.stop_id) else {
            return Ok(());
        };
        let Some(state) = self.with_store(move |s| s.stop_state(stop_id)).await? else {
            return Ok(());
        };
        let edit = collapse_access_notes(&state, chosen)
            .map_err(|why| ApiError::new(ProblemCode::MalformedRequest, why))?;
        let Some(edit) = edit else { return Ok(()) };
        match self
            .record_office(EventPayload::AccessNotesEdited(edit), issued_by)
            .await?
        {
            OfficeOutcome::Applied { .. } | OfficeOutcome::Duplicate => Ok(()),
            OfficeOutcome::Conflict(why) => Err(ApiError::new(ProblemCode::IntentConflict, why)),
            OfficeOutcome::UnknownTarget(why) => Err(not_found(why)),
        }
    }
}
