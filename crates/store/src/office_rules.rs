//! Office command rules that need no storage: what event a dispatcher's command becomes.
//! The service reads the facts a rule needs (a stop's state, a route's owner) and records the
//! event the rule returns.

use doorstep_shared::StopState;
use doorstep_shared::dashboard::ContactResult;
use doorstep_shared::event::AccessNotesEdited;

/// The actor name office edits of the access notes carry in their version vectors.
pub const OFFICE_ACTOR: &str = "office";

/// The office edit that makes `chosen` the stop's only access notes: its version is the
/// register's merged clock with the office's counter bumped, so it dominates every concurrent
/// value. `None` when nothing diverges any more (already settled by an earlier edit).
pub fn collapse_access_notes(
    state: &StopState,
    chosen: &str,
) -> Result<Option<AccessNotesEdited>, String> {
    let values = state.view().access_notes;
    if values.len() < 2 {
        return Ok(None);
    }
    if !values.iter().any(|v| v == chosen) {
        return Err(format!(
            "{chosen:?} is not one of the conflicting values {values:?}"
        ));
    }
    let mut version = state.access_notes_clock();
    *version.entry(OFFICE_ACTOR.to_owned()).or_insert(0) += 1;
    Ok(Some(AccessNotesEdited {
        stop_id: state.stop_id,
        actor: OFFICE_ACTOR.to_owned(),
        version,
        text: chosen.to_owned(),
    }))
}

/// The stop note a contact attempt leaves (the courier sees it too).
pub fn contact_note(dispatcher: &str, result: ContactResult, message: &str) -> String {
    let label = match result {
        ContactResult::Reached => "reached the customer",
        ContactResult::NoAnswer => "no answer",
        ContactResult::LeftMessage => "left a message",
        ContactResult::WrongNumber => "wrong number",
    };
    let mut text = format!("Dispatch ({dispatcher}) contacted the customer: {label}");
    if !message.trim().is_empty() {
        text.push_str(" — ");
        text.push_str(message.trim());
    }
    text
}

/// The cancellation reason that asks for a stop's parcels to come back to the depot.
pub fn return_to_depot_reason(reason: &str) -> String {
    format!("return_to_depot: {}", reason.trim())
}

#[cfg(test)]
mod tests {
    use super::*;
    use doorstep_shared::event::EventPayload;
    use doorstep_shared::{HlcStamp, StopId};
    use std::collections::BTreeMap;

    fn edited(state: &mut StopState, n: u128, actor: &str, version: &[(&str, u64)], text: &str) {
        let payload = EventPayload::AccessNotesEdited(AccessNotesEdited {
            stop_id: state.stop_id,
            actor: actor.to_owned(),
            version: version.iter().map(|(a, c)| ((*a).to_owned(), *c)).collect(),
            text: text.to_owned(),
        });
        let hlc = HlcStamp {
            wall_ms: n as u64,
            logical: 0,
        };
        state.apply(
            doorstep_shared::EventId(uuid::Uuid::from_u128(n)),
            hlc,
            &payload,
        );
    }

    #[test]
    fn the_chosen_value_dominates_every_concurrent_edit() {
        let mut s = StopState::new(StopId(uuid::Uuid::from_u128(3)));
        edited(&mut s, 1, "a", &[("a", 1)], "side door");
        edited(&mut s, 2, "b", &[("b", 1), (OFFICE_ACTOR, 1)], "front door");
        let edit = collapse_access_notes(&s, "front door")
            .expect("a conflicting value")
            .expect("an edit");
        assert_eq!(
            edit.version,
            BTreeMap::from([
                ("a".to_owned(), 1),
                ("b".to_owned(), 1),
                (OFFICE_ACTOR.to_owned(), 2)
            ])
        );
        assert!(
            EventPayload::AccessNotesEdited(edit.clone())
                .validate()
                .is_ok()
        );
        s.apply(
            doorstep_shared::EventId(uuid::Uuid::from_u128(9)),
            HlcStamp {
                wall_ms: 9,
                logical: 0,
            },
            &EventPayload::AccessNotesEdited(edit),
        );
        assert_eq!(s.view().access_notes, vec!["front door".to_owned()]);
        // Settled: nothing more to write; a value that was never in conflict is refused.
        assert!(
            collapse_access_notes(&s, "front door")
                .expect("ok")
                .is_none()
        );
        edited(&mut s, 10, "a", &[("a", 2)], "back door");
        assert!(collapse_access_notes(&s, "garage").is_err());
    }

    #[test]
    fn a_contact_note_says_who_called_how_it_went_and_what_was_said() {
        assert_eq!(
            contact_note("Ana", ContactResult::NoAnswer, "  "),
            "Dispatch (Ana) contacted the customer: no answer"
        );
        assert_eq!(
            contact_note("Ana", ContactResult::LeftMessage, " call back after 5 "),
            "Dispatch (Ana) contacted the customer: left a message — call back after 5"
        );
        assert_eq!(
            return_to_depot_reason(" damaged "),
            "return_to_depot: damaged"
        );
    }
}
