//! The local projection: what the driver sees. Per stop, the office plan plus a [`StopState`]
//! folded from the office changes pulled from the server and this device's own events. Because
//! the fold is order-insensitive and idempotent, the projection can be updated incrementally in
//! the transaction that stores an event, and rebuilt from scratch when the server rejects one.

use super::OutboxError;
use super::route_order::{office_reordered, resequence};
use doorstep_shared::event::{EventPayload, RouteAssigned, RouteReplanned, StopPlan};
use doorstep_shared::protocol::Change;
use doorstep_shared::{EventEnvelope, EventId, HlcStamp, RouteId, StopId, StopState};
use rusqlite::{Connection, OptionalExtension, params};

/// One stop as stored in the projection.
pub(crate) struct StoredStop {
    pub route_id: RouteId,
    pub sequence: u32,
    pub plan: StopPlan,
    pub state: StopState,
}

fn parse<T: std::str::FromStr>(s: &str, what: &'static str) -> Result<T, OutboxError> {
    s.parse().map_err(|_| OutboxError::Decode {
        what,
        detail: format!("{s:?} does not parse"),
    })
}

pub(crate) fn load_stop(
    conn: &Connection,
    stop: StopId,
) -> Result<Option<StoredStop>, OutboxError> {
    let row = conn
        .prepare_cached("SELECT route_id, sequence, plan, state FROM stops WHERE stop_id = ?1")?
        .query_row([stop.to_string()], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, u32>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Vec<u8>>(3)?,
            ))
        })
        .optional()?;
    row.map(|(route, sequence, plan, state)| {
        Ok(StoredStop {
            route_id: parse(&route, "route_id")?,
            sequence,
            plan: super::from_json(&plan, "stop plan")?,
            state: decode_state(&state)?,
        })
    })
    .transpose()
}

/// Only the folded state of one stop: what checking and folding an event needs (the capture
/// hot path skips parsing the plan).
pub(crate) fn load_state(
    conn: &Connection,
    stop: StopId,
) -> Result<Option<StopState>, OutboxError> {
    conn.prepare_cached("SELECT state FROM stops WHERE stop_id = ?1")?
        .query_row([stop.to_string()], |r| r.get::<_, Vec<u8>>(0))
        .optional()?
        .map(|bytes| decode_state(&bytes))
        .transpose()
}

fn decode_state(bytes: &[u8]) -> Result<StopState, OutboxError> {
    StopState::from_bytes(bytes).map_err(|e| OutboxError::Decode {
        what: "stop state",
        detail: e.to_string(),
    })
}

pub(crate) fn save_state(conn: &Connection, state: &StopState) -> Result<(), OutboxError> {
    conn.prepare_cached("UPDATE stops SET state = ?2 WHERE stop_id = ?1")?
        .execute(params![state.stop_id.to_string(), state.to_bytes()])?;
    Ok(())
}

/// Folds one of this device's events into its stop, if the stop is known; a replan reorders
/// its route.
pub(crate) fn apply_own(conn: &Connection, env: &EventEnvelope) -> Result<(), OutboxError> {
    if let EventPayload::RouteReplanned(replan) = &env.payload {
        return reorder_route(conn, replan);
    }
    let Some(stop) = env.payload.stop_id() else {
        return Ok(());
    };
    match load_state(conn, stop)? {
        Some(state) => fold_into(conn, state, env),
        None => Ok(()),
    }
}

/// Folds one of this device's events into `stop`, already loaded in this transaction.
pub(crate) fn fold_into(
    conn: &Connection,
    mut state: StopState,
    env: &EventEnvelope,
) -> Result<(), OutboxError> {
    state.apply(env.event_id, env.hlc, &env.payload);
    save_state(conn, &state)
}

/// Recomputes one stop from every office change and every own event the server did not refuse.
pub(crate) fn rebuild_stop(conn: &Connection, stop: StopId) -> Result<(), OutboxError> {
    if load_stop(conn, stop)?.is_none() {
        return Ok(());
    }
    let mut state = StopState::new(stop);
    let mut q = conn.prepare("SELECT change FROM office_events ORDER BY cursor")?;
    for json in q.query_map([], |r| r.get::<_, String>(0))? {
        let change: Change = super::from_json(&json?, "office change")?;
        state.apply(change.event_id, change.hlc, &change.payload);
    }
    let mut q = conn.prepare(
        "SELECT e.envelope FROM events e LEFT JOIN outcomes o USING (device_seq)
         WHERE e.stop_id = ?1 AND (o.status IS NULL OR o.status NOT IN ('rejected', 'conflict'))
         ORDER BY e.device_seq",
    )?;
    for json in q.query_map([stop.to_string()], |r| r.get::<_, String>(0))? {
        let env: EventEnvelope = super::from_json(&json?, "event envelope")?;
        state.apply(env.event_id, env.hlc, &env.payload);
    }
    save_state(conn, &state)
}

/// Stores one office change and folds it into the projection. Idempotent per event id.
pub(crate) fn apply_change(conn: &Connection, change: &Change) -> Result<(), OutboxError> {
    let inserted = conn.execute(
        "INSERT OR IGNORE INTO office_events (cursor, event_id, kind, stop_id, change)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            change.cursor as i64,
            change.event_id.to_string(),
            change.payload.kind(),
            change.payload.stop_id().map(|s| s.to_string()),
            super::to_json(change)?,
        ],
    )?;
    if inserted == 0 {
        return Ok(());
    }
    match &change.payload {
        EventPayload::RouteAssigned(route) => {
            assign_route(conn, route, change.event_id, change.hlc)
        }
        other => {
            if let Some(stop) = other.stop_id()
                && let Some(mut state) = load_state(conn, stop)?
            {
                state.apply(change.event_id, change.hlc, other);
                save_state(conn, &state)?;
            }
            Ok(())
        }
    }
}

fn assign_route(
    conn: &Connection,
    route: &RouteAssigned,
    event_id: EventId,
    hlc: HlcStamp,
) -> Result<(), OutboxError> {
    let current: Option<(u32, String)> = conn
        .query_row(
            "SELECT version, plan FROM routes WHERE route_id = ?1",
            [route.route_id.to_string()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    if current.as_ref().is_some_and(|(v, _)| *v > route.version) {
        return Ok(());
    }
    let previous: Option<RouteAssigned> = current
        .map(|(_, plan)| super::from_json(&plan, "route plan"))
        .transpose()?;
    let sequences = |r: &RouteAssigned| -> Vec<(StopId, u32)> {
        r.stops.iter().map(|s| (s.stop_id, s.sequence)).collect()
    };
    // The office's new order wins when it reordered stops; otherwise (stops added, dropped or
    // re-timed) the driver's replans made since the previous version are applied on top again.
    let keep_driver_order = previous
        .as_ref()
        .is_some_and(|old| !office_reordered(&sequences(old), &sequences(route)));
    conn.execute(
        "INSERT INTO routes (route_id, version, day, plan) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (route_id) DO UPDATE SET version = ?2, day = ?3, plan = ?4",
        params![
            route.route_id.to_string(),
            route.version,
            route.day,
            super::to_json(route)?
        ],
    )?;
    if !keep_driver_order {
        // The driver's replans recorded so far were made against an order this version
        // replaces; a rebuild of the order re-applies only later ones.
        super::meta_set(
            conn,
            &route_base_key(route.route_id),
            &super::last_event(conn)?
                .map_or(0, |(seq, _)| seq)
                .to_string(),
        )?;
    }
    let payload = EventPayload::RouteAssigned(route.clone());
    for plan in &route.stops {
        let existing = load_stop(conn, plan.stop_id)?;
        conn.execute(
            "INSERT INTO stops (stop_id, route_id, sequence, plan, state) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (stop_id) DO UPDATE SET route_id = ?2, sequence = ?3, plan = ?4",
            params![
                plan.stop_id.to_string(),
                route.route_id.to_string(),
                plan.sequence,
                super::to_json(plan)?,
                StopState::new(plan.stop_id).to_bytes(),
            ],
        )?;
        match existing {
            Some(mut s) => {
                s.state.apply(event_id, hlc, &payload);
                save_state(conn, &s.state)?;
            }
            // A stop seen for the first time may already have events (captured before the
            // route arrived, or carried over by an upgrade): fold everything.
            None => rebuild_stop(conn, plan.stop_id)?,
        }
    }
    if keep_driver_order {
        rebuild_route_order(conn, route.route_id)?;
    }
    Ok(())
}

/// Applies the driver's order to the route's sequence numbers (see [`resequence`]).
fn reorder_route(conn: &Connection, replan: &RouteReplanned) -> Result<(), OutboxError> {
    let mut q = conn.prepare("SELECT stop_id, sequence FROM stops WHERE route_id = ?1")?;
    let rows = q
        .query_map([replan.route_id.to_string()], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, u32>(1)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let current = rows
        .iter()
        .map(|(s, seq)| Ok((parse(s, "stop_id")?, *seq)))
        .collect::<Result<Vec<(StopId, u32)>, OutboxError>>()?;
    for (stop, sequence) in resequence(&current, &replan.order) {
        conn.execute(
            "UPDATE stops SET sequence = ?2 WHERE stop_id = ?1",
            params![stop.to_string(), sequence],
        )?;
    }
    tracing::debug!(route_id = %replan.route_id, stops = replan.order.len(), "route reordered");
    Ok(())
}

fn route_base_key(route: RouteId) -> String {
    format!("route_base_seq:{route}")
}

/// Recomputes one route's order from scratch: the office plan's sequence numbers, then every
/// replan of this device for the route that was recorded after that plan arrived and that the
/// server did not refuse, in `device_seq` order. Runs when the server refuses a replan, so the
/// driver's screen never keeps an order the server turned down.
pub(crate) fn rebuild_route_order(conn: &Connection, route: RouteId) -> Result<(), OutboxError> {
    let mut q = conn.prepare("SELECT stop_id, plan FROM stops WHERE route_id = ?1")?;
    let planned = q
        .query_map([route.to_string()], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    for (stop, plan) in planned {
        let plan: StopPlan = super::from_json(&plan, "stop plan")?;
        conn.execute(
            "UPDATE stops SET sequence = ?2 WHERE stop_id = ?1",
            params![stop, plan.sequence],
        )?;
    }
    let base: u64 = super::meta_get(conn, &route_base_key(route))?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut q = conn.prepare(
        "SELECT e.envelope FROM events e LEFT JOIN outcomes o USING (device_seq)
         WHERE e.kind = 'route_replanned' AND e.device_seq > ?1
           AND (o.status IS NULL OR o.status NOT IN ('rejected', 'conflict'))
         ORDER BY e.device_seq",
    )?;
    for json in q.query_map([base], |r| r.get::<_, String>(0))? {
        let env: EventEnvelope = super::from_json(&json?, "event envelope")?;
        if let EventPayload::RouteReplanned(replan) = &env.payload
            && replan.route_id == route
        {
            reorder_route(conn, replan)?;
        }
    }
    Ok(())
}

/// Every stored stop of one route, ordered by the planned sequence.
pub(crate) fn stops_of_route(
    conn: &Connection,
    route: RouteId,
) -> Result<Vec<StopId>, OutboxError> {
    let mut q = conn.prepare("SELECT stop_id FROM stops WHERE route_id = ?1 ORDER BY sequence")?;
    let ids = q
        .query_map([route.to_string()], |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    ids.iter().map(|s| parse(s, "stop_id")).collect()
}

/// The route to show: the given day's, or the latest day's.
pub(crate) fn pick_route(
    conn: &Connection,
    day: Option<&str>,
) -> Result<Option<RouteAssigned>, OutboxError> {
    let plan: Option<String> = match day {
        Some(d) => conn
            .query_row(
                "SELECT plan FROM routes WHERE day = ?1 ORDER BY version DESC LIMIT 1",
                [d],
                |r| r.get(0),
            )
            .optional()?,
        None => conn
            .query_row(
                "SELECT plan FROM routes ORDER BY day DESC, version DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()?,
    };
    plan.map(|p| super::from_json(&p, "route plan")).transpose()
}
