//! Read models for the driver's screens: today's route and one stop.

use super::{Outbox, OutboxError, from_json, projection};
use doorstep_shared::event::{GeoPoint, RouteAssigned, RouteReplanned, TimeWindow};
use doorstep_shared::stop::StopView;
use doorstep_shared::{
    EventEnvelope, EventId, EventPayload, ParcelBarcode, RouteId, StopId, StopStatus,
};
use rusqlite::OptionalExtension;
use serde::{Deserialize, Serialize};

/// One line of the route list.
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export_to = "core/"))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StopSummary {
    pub stop_id: StopId,
    pub sequence: u32,
    pub address: String,
    pub customer_name: String,
    pub location: GeoPoint,
    /// The current window (a reschedule from the office replaces the planned one).
    pub window: TimeWindow,
    pub status: StopStatus,
    /// The attempt number the next arrival or outcome will carry.
    pub next_attempt: u32,
    pub parcels: Vec<ParcelBarcode>,
    /// The office moved this stop to another route; it stays listed for context.
    pub moved_away: bool,
    /// Events about this stop not yet settled by the server.
    pub unsynced_events: u64,
}

/// Today's route as the driver sees it: the server's plan plus everything done on the device.
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export_to = "core/"))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RouteView {
    pub route_id: RouteId,
    pub day: String,
    pub version: u32,
    pub stops: Vec<StopSummary>,
}

/// Sync state of one local event.
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export_to = "core/"))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalEvent {
    pub device_seq: u64,
    pub event_id: EventId,
    pub kind: String,
    pub intent_key: String,
    pub created_at_ms: u64,
    /// `None` while queued; the server's settled status otherwise.
    pub server_status: Option<String>,
    pub code: Option<String>,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export_to = "core/"))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StopDetail {
    pub summary: StopSummary,
    pub instructions: Option<String>,
    /// The folded state: attempts, notes, access notes (several = concurrent edits), conflicts.
    pub view: StopView,
    pub events: Vec<LocalEvent>,
}

impl Outbox {
    /// The route of `day` (`YYYY-MM-DD`), or of the latest day known when `None`.
    pub fn route_view(&self, day: Option<&str>) -> Result<Option<RouteView>, OutboxError> {
        let Some(route) = projection::pick_route(&self.conn, day)? else {
            return Ok(None);
        };
        let mut stops = Vec::new();
        for stop in projection::stops_of_route(&self.conn, route.route_id)? {
            if let Some(s) = self.summary(stop)? {
                stops.push(s);
            }
        }
        Ok(Some(RouteView {
            route_id: route.route_id,
            day: route.day,
            version: route.version,
            stops,
        }))
    }

    /// Where the route of `route_id` starts (its depot), if the route is known.
    pub fn route_depot(&self, route_id: RouteId) -> Result<Option<GeoPoint>, OutboxError> {
        let plan: Option<String> = self
            .conn
            .query_row(
                "SELECT plan FROM routes WHERE route_id = ?1",
                [route_id.to_string()],
                |r| r.get(0),
            )
            .optional()?;
        plan.map(|p| from_json::<RouteAssigned>(&p, "route plan").map(|r| r.depot))
            .transpose()
    }

    fn summary(&self, stop: StopId) -> Result<Option<StopSummary>, OutboxError> {
        let Some(s) = projection::load_stop(&self.conn, stop)? else {
            return Ok(None);
        };
        let view = s.state.view();
        let unsynced: u64 = self.conn.query_row(
            "SELECT COUNT(*) FROM events e LEFT JOIN outcomes o USING (device_seq)
             WHERE e.stop_id = ?1 AND o.device_seq IS NULL",
            [stop.to_string()],
            |r| r.get(0),
        )?;
        Ok(Some(StopSummary {
            stop_id: stop,
            sequence: s.sequence,
            address: s.plan.address.clone(),
            customer_name: s.plan.customer_name.clone(),
            location: s.plan.location,
            window: view.window.unwrap_or(s.plan.window),
            status: view.status,
            next_attempt: s.state.next_attempt(),
            parcels: s.plan.parcels.clone(),
            moved_away: s.state.route().is_some_and(|r| r != s.route_id),
            unsynced_events: unsynced,
        }))
    }

    pub fn stop_detail(&self, stop: StopId) -> Result<Option<StopDetail>, OutboxError> {
        let Some(summary) = self.summary(stop)? else {
            return Ok(None);
        };
        let Some(s) = projection::load_stop(&self.conn, stop)? else {
            return Ok(None);
        };
        let mut q = self.conn.prepare(
            "SELECT e.device_seq, e.event_id, e.kind, e.intent_key, e.created_at_ms, o.status, o.code
             FROM events e LEFT JOIN outcomes o USING (device_seq)
             WHERE e.stop_id = ?1 ORDER BY e.device_seq",
        )?;
        let rows = q.query_map([stop.to_string()], |r| {
            Ok((
                r.get::<_, u64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, u64>(4)?,
                r.get::<_, Option<String>>(5)?,
                r.get::<_, Option<String>>(6)?,
            ))
        })?;
        let mut events = Vec::new();
        for row in rows {
            let (seq, id, kind, intent_key, at, status, code) = row?;
            events.push(LocalEvent {
                device_seq: seq,
                event_id: from_json(&format!("\"{id}\""), "event id")?,
                kind,
                intent_key,
                created_at_ms: at,
                server_status: status,
                code,
            });
        }
        Ok(Some(StopDetail {
            summary,
            instructions: s.plan.instructions.clone(),
            view: s.state.view(),
            events,
        }))
    }

    /// The stop that carries `parcel` on the latest route that lists it.
    pub fn stop_of_parcel(&self, parcel: &ParcelBarcode) -> Result<Option<StopId>, OutboxError> {
        stop_of_parcel_in(&self.conn, parcel)
    }

    /// The attempt number the next arrival or outcome at `stop` carries; `None` if unknown.
    pub fn next_attempt(&self, stop: StopId) -> Result<Option<u32>, OutboxError> {
        Ok(projection::load_stop(&self.conn, stop)?.map(|s| s.state.next_attempt()))
    }

    /// This device's latest replan of `route`, and whether the server refused it (rejected or
    /// conflict). Reads only `route_replanned` rows, newest first.
    pub fn latest_replan(
        &self,
        route: RouteId,
    ) -> Result<Option<(RouteReplanned, bool)>, OutboxError> {
        let mut q = self.conn.prepare(
            "SELECT e.envelope, o.status IN ('rejected', 'conflict')
             FROM events e LEFT JOIN outcomes o USING (device_seq)
             WHERE e.kind = 'route_replanned' ORDER BY e.device_seq DESC",
        )?;
        let mut rows = q.query([])?;
        while let Some(row) = rows.next()? {
            let env: EventEnvelope = from_json(&row.get::<_, String>(0)?, "event envelope")?;
            let refused = row.get::<_, Option<bool>>(1)?.unwrap_or(false);
            if let EventPayload::RouteReplanned(replan) = env.payload
                && replan.route_id == route
            {
                return Ok(Some((replan, refused)));
            }
        }
        Ok(None)
    }

    /// How many access-note edits this device made for `stop`, and the latest one.
    pub fn own_edits(&self, stop: StopId) -> Result<(u64, Option<EventEnvelope>), OutboxError> {
        let mut q = self.conn.prepare(
            "SELECT envelope FROM events WHERE stop_id = ?1 AND kind = 'access_notes_edited'
             ORDER BY device_seq",
        )?;
        let rows = q.query_map([stop.to_string()], |r| r.get::<_, String>(0))?;
        let mut count = 0;
        let mut last = None;
        for row in rows {
            count += 1;
            last = Some(row?);
        }
        let last = last.map(|j| from_json(&j, "event envelope")).transpose()?;
        Ok((count, last))
    }
}

/// [`Outbox::stop_of_parcel`] on `conn` (inside a caller's transaction, if it has one).
pub(crate) fn stop_of_parcel_in(
    conn: &rusqlite::Connection,
    parcel: &ParcelBarcode,
) -> Result<Option<StopId>, OutboxError> {
    // Usually one row; picking the latest route here spares SQLite a sorter per scan.
    let mut q = conn.prepare_cached(
        "SELECT s.stop_id, r.day, r.version FROM stop_parcels p
         JOIN stops s USING (stop_id) JOIN routes r USING (route_id)
         WHERE p.parcel = ?1",
    )?;
    let mut latest: Option<(String, u32, String)> = None;
    let mut rows = q.query([parcel.as_str()])?;
    while let Some(row) = rows.next()? {
        let candidate = (row.get::<_, String>(1)?, row.get::<_, u32>(2)?, row.get(0)?);
        if latest.as_ref().is_none_or(|l| candidate > *l) {
            latest = Some(candidate);
        }
    }
    latest
        .map(|(_, _, id)| {
            id.parse().map_err(|_| OutboxError::Decode {
                what: "stop id",
                detail: format!("{id:?} does not parse"),
            })
        })
        .transpose()
}
