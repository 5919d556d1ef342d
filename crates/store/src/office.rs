//! Office events (what dispatcher commands and seeding produce), written once above every
//! backend. They go through the same log, intents and fold as street events: the rules here
//! decide the plan edits, the stops' new states, the escalations and who must pull the change;
//! the backend's [`OfficeUnit`] only performs them, in one transaction.

use crate::error::{StoreError, StoreResult};
use crate::merge::{contact_escalation, state_escalations};
use crate::model::{EscalationRecord, OfficeEvent, OfficeOutcome};
use crate::store::{OfficeEventRow, OfficeUnit, OfficeWrite, Store};
use doorstep_shared::event::{EventPayload, RouteAssigned};
use doorstep_shared::intent::{fingerprint, intent_key};
use doorstep_shared::{CourierId, DeviceId, EventId, HlcStamp, StopId, StopState};

/// Records `ev` with the new id `event_id` on `store`.
pub fn record_office_event<S: Store + ?Sized>(
    store: &S,
    ev: &OfficeEvent,
    event_id: EventId,
) -> StoreResult<OfficeOutcome> {
    let mut outcome = None;
    store.office_unit(&mut |unit| {
        outcome = Some(record_in(unit, ev, event_id)?);
        Ok(())
    })?;
    let outcome = outcome
        .ok_or_else(|| StoreError::Fatal("office unit committed without running".to_owned()))?;
    if matches!(outcome, OfficeOutcome::Applied { .. }) {
        tracing::info!(kind = ev.payload.kind(), stop_id = ?ev.payload.stop_id(), issued_by = %ev.issued_by, "office event recorded");
    }
    Ok(outcome)
}

/// The stops an office event may change, sorted: the lock order shared with push.
pub fn stops_touched(payload: &EventPayload) -> Vec<StopId> {
    let mut stops: Vec<StopId> = match payload {
        EventPayload::RouteAssigned(plan) => plan.stops.iter().map(|s| s.stop_id).collect(),
        other => other.stop_id().into_iter().collect(),
    };
    stops.sort();
    stops.dedup();
    stops
}

/// `proposed`, or just after `last` when `proposed` is not later than it.
pub fn stamp_after(proposed: HlcStamp, last: Option<HlcStamp>) -> HlcStamp {
    match last {
        Some(last) if proposed <= last => HlcStamp {
            wall_ms: last.wall_ms,
            logical: last.logical.saturating_add(1),
        },
        _ => proposed,
    }
}

/// What an office event does, decided from what the unit read.
#[derive(Clone, Debug, Default)]
struct Plan {
    writes: Vec<OfficeWrite>,
    /// `(before, after)` of every stop the event folds into.
    touched: Vec<(StopState, StopState)>,
    audience: Vec<CourierId>,
}

/// The algorithm inside one office transaction. An outcome other than `Applied` writes nothing
/// (the transaction still commits, empty).
pub fn record_in(
    unit: &mut dyn OfficeUnit,
    ev: &OfficeEvent,
    event_id: EventId,
) -> StoreResult<OfficeOutcome> {
    // The clock is read (and locked) first: office commands are serialised from here on, so the
    // intent check below cannot race another server recording the same intent. Office events
    // are ordered across every server that records them: a stamp never goes back behind one
    // already recorded, whichever replica's clock is behind.
    let last = unit.office_clock()?;
    let key = intent_key(&ev.payload, &DeviceId(uuid::Uuid::nil()));
    let fp = fingerprint(&ev.payload);
    if let Some(known) = unit.known_intent(&key)? {
        return Ok(if known.fingerprint == fp {
            OfficeOutcome::Duplicate
        } else {
            OfficeOutcome::Conflict(format!("{key} was already recorded with another payload"))
        });
    }
    let hlc = stamp_after(ev.hlc, last);
    unit.set_office_clock(hlc)?;
    let ev = &OfficeEvent { hlc, ..ev.clone() };
    unit.lock_stops(&stops_touched(&ev.payload))?;
    let mut plan = match &ev.payload {
        EventPayload::RouteAssigned(route) => assign_route(unit, route, ev, event_id)?,
        EventPayload::EscalationResolved(e) => Plan {
            writes: vec![OfficeWrite::ResolveEscalation(e.escalation_id)],
            ..Plan::default()
        },
        other => match stop_command(unit, other, ev, event_id)? {
            Ok(plan) => plan,
            Err(unknown) => return Ok(OfficeOutcome::UnknownTarget(unknown)),
        },
    };
    let mut escalations = Vec::new();
    if let (Some(reached), Some(stop)) = (ev.contact_reached, ev.payload.stop_id()) {
        let before = unit.failed_contacts(stop)?;
        let after = before.saturating_add(u32::from(!reached));
        plan.writes.push(OfficeWrite::Contact {
            intent_key: key.clone(),
            stop,
            reached,
        });
        escalations.extend(contact_escalation(stop, before, after));
    }
    for (before, after) in &plan.touched {
        escalations.extend(state_escalations(before, after));
    }

    for write in &plan.writes {
        unit.write(write)?;
    }
    let log_position = unit.log_event(&OfficeEventRow {
        event_id,
        intent_key: &key,
        fingerprint: &fp,
        payload: &ev.payload,
        hlc: ev.hlc,
        recorded_at_ms: ev.recorded_at_ms,
    })?;
    for (_, after) in &plan.touched {
        unit.save_stop(after)?;
    }
    for esc in &escalations {
        unit.open_escalation(&EscalationRecord {
            escalation: esc,
            device: None,
            event: Some(event_id),
            opened_at_ms: ev.recorded_at_ms,
        })?;
    }
    plan.audience.sort();
    plan.audience.dedup();
    let mut cursor = 0;
    for courier in plan.audience {
        cursor = unit.append_feed(courier, log_position)?;
    }
    Ok(OfficeOutcome::Applied { cursor })
}

/// A route plan: the plan is saved, every stop placed on the route and assigned to its
/// courier, and folded (a new stop starts from a fresh state).
fn assign_route(
    unit: &mut dyn OfficeUnit,
    route: &RouteAssigned,
    ev: &OfficeEvent,
    event_id: EventId,
) -> StoreResult<Plan> {
    let mut plan = Plan {
        writes: vec![OfficeWrite::SavePlan(route.clone())],
        audience: vec![route.courier_id],
        ..Plan::default()
    };
    for s in &route.stops {
        plan.writes.push(OfficeWrite::PlaceStop {
            stop: s.stop_id,
            route: route.route_id,
        });
        plan.writes.push(OfficeWrite::Assign {
            stop: s.stop_id,
            courier: route.courier_id,
        });
        let before = match unit.stop(s.stop_id)? {
            Some(rec) => rec.state,
            None => StopState::new(s.stop_id),
        };
        let mut after = before.clone();
        after.apply(event_id, ev.hlc, &ev.payload);
        plan.touched.push((before, after));
    }
    Ok(plan)
}

/// A command on one stop (cancel, reassign, reschedule, edit notes, contact …). `Err` names a
/// target that does not exist.
fn stop_command(
    unit: &mut dyn OfficeUnit,
    payload: &EventPayload,
    ev: &OfficeEvent,
    event_id: EventId,
) -> StoreResult<Result<Plan, String>> {
    let Some(stop_id) = payload.stop_id() else {
        return Ok(Err("event names no stop".to_owned()));
    };
    let Some(rec) = unit.stop(stop_id)? else {
        return Ok(Err(format!("stop {stop_id} does not exist")));
    };
    let mut plan = Plan::default();
    let current_route = rec.state.route();
    if let Some(route) = current_route
        && let Some(courier) = unit.route_courier(route)?
    {
        plan.audience.push(courier);
    }
    if let EventPayload::StopReassigned(e) = payload {
        let Some(mut to_plan) = unit.plan(e.to_route)? else {
            return Ok(Err(format!("route {} does not exist", e.to_route)));
        };
        if let Some(mut from_plan) = unit.plan(e.from_route)? {
            if let Some(pos) = from_plan.stops.iter().position(|s| s.stop_id == stop_id) {
                let moved = from_plan.stops.remove(pos);
                to_plan.stops.push(moved);
            }
            plan.writes.push(OfficeWrite::SavePlan(from_plan));
        }
        plan.writes.push(OfficeWrite::SavePlan(to_plan));
        plan.writes.push(OfficeWrite::PlaceStop {
            stop: stop_id,
            route: e.to_route,
        });
        plan.writes.push(OfficeWrite::Assign {
            stop: stop_id,
            courier: e.to_courier,
        });
        plan.audience.push(e.to_courier);
    }
    if let EventPayload::StopRescheduled(e) = payload
        && let Some(route) = current_route
        && let Some(mut route_plan) = unit.plan(route)?
    {
        for s in route_plan.stops.iter_mut().filter(|s| s.stop_id == stop_id) {
            s.window = e.window;
        }
        plan.writes.push(OfficeWrite::SavePlan(route_plan));
    }
    let mut after = rec.state.clone();
    after.apply(event_id, ev.hlc, payload);
    plan.touched.push((rec.state, after));
    Ok(Ok(plan))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(wall_ms: u64, logical: u32) -> HlcStamp {
        HlcStamp { wall_ms, logical }
    }

    #[test]
    fn an_office_stamp_never_goes_back_behind_the_last_recorded_one() {
        assert_eq!(stamp_after(at(10, 0), None), at(10, 0));
        assert_eq!(stamp_after(at(10, 0), Some(at(9, 5))), at(10, 0));
        assert_eq!(stamp_after(at(10, 0), Some(at(10, 0))), at(10, 1));
        assert_eq!(
            stamp_after(at(7, 3), Some(at(10, 2))),
            at(10, 3),
            "a replica whose clock is behind"
        );
    }
}
