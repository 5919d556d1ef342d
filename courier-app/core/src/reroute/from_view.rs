//! From the driver's route screen to a [`PlanInput`]: the stops still to visit, in their
//! current order, with windows in seconds since local midnight.

use doorstep_shared::event::GeoPoint;
use doorstep_shared::{StopId, StopStatus};

use super::day::{self, DayError};
use super::plan::{PlanInput, PlanStop};
use super::world::StopSignals;
use crate::outbox::RouteView;

/// Default time at the door, seconds.
pub const SERVICE_S: i64 = 180;
/// The courier's day ends at 21:00 local time, or later when a remaining window does.
pub const DAY_END_S: i64 = 21 * 3600;

/// Where and when the courier is, for a replan.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Now {
    pub unix_ms: u64,
    /// Unix ms of local midnight of the route's day.
    pub day_start_ms: u64,
    /// Seconds since local midnight when the courier's day ends.
    pub day_end_s: i64,
    pub position: GeoPoint,
    pub weekend: bool,
}

/// Where and when the courier is for a replan of `view` at `now_ms`, on a device `utc_offset_min`
/// east of UTC. Without a location fix the courier is taken to be at the last stop (in route
/// order) already visited, or at the depot before the first.
pub fn now_for(
    view: &RouteView,
    now_ms: u64,
    utc_offset_min: i32,
    depot: GeoPoint,
) -> Result<Now, DayError> {
    let day_start_ms = day::local_midnight_ms(&view.day, utc_offset_min)?;
    let mut stops: Vec<_> = view.stops.iter().collect();
    stops.sort_by_key(|s| s.sequence);
    let position = stops
        .iter()
        .rev()
        .find(|s| visited(&s.status))
        .map_or(depot, |s| s.location);
    let latest_end = stops
        .iter()
        .filter(|s| !s.moved_away && remaining(&s.status))
        .map(|s| (s.window.end_ms.saturating_sub(day_start_ms) / 1000) as i64)
        .max()
        .unwrap_or(0);
    Ok(Now {
        unix_ms: now_ms,
        day_start_ms,
        day_end_s: DAY_END_S.max(latest_end),
        position,
        weekend: day::is_weekend(&view.day)?,
    })
}

fn visited(status: &StopStatus) -> bool {
    matches!(
        status,
        StopStatus::Arrived
            | StopStatus::AttemptFailed { .. }
            | StopStatus::AttemptsExhausted
            | StopStatus::FailedTerminal { .. }
            | StopStatus::Delivered
    )
}

fn remaining(status: &StopStatus) -> bool {
    matches!(
        status,
        StopStatus::Planned
            | StopStatus::Loaded
            | StopStatus::OutForDelivery
            | StopStatus::Arrived
            | StopStatus::AttemptFailed { .. }
    )
}

/// The stops still to visit. `signals` supplies what is known about a stop (building type,
/// reachability, presence history); unknown stops get [`StopSignals::unknown`].
pub fn plan_input(
    view: &RouteView,
    now: &Now,
    signals: impl Fn(StopId) -> Option<StopSignals>,
) -> PlanInput {
    let secs = |ms: u64| (ms.saturating_sub(now.day_start_ms) / 1000) as i64;
    let mut stops: Vec<_> = view
        .stops
        .iter()
        .filter(|s| !s.moved_away && remaining(&s.status))
        .collect();
    stops.sort_by_key(|s| s.sequence);
    PlanInput {
        route_id: view.route_id,
        now_s: secs(now.unix_ms),
        day_end_s: now.day_end_s,
        weekend: now.weekend,
        start: now.position,
        stops: stops
            .into_iter()
            .map(|s| PlanStop {
                stop_id: s.stop_id,
                location: s.location,
                window: (secs(s.window.start_ms), secs(s.window.end_ms)),
                service_s: SERVICE_S,
                prior_attempts: s.next_attempt.saturating_sub(1),
                signals: signals(s.stop_id).unwrap_or_else(StopSignals::unknown),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::StopSummary;
    use doorstep_shared::RouteId;
    use doorstep_shared::event::TimeWindow;

    fn stop(n: u128, sequence: u32, status: StopStatus, next_attempt: u32) -> StopSummary {
        StopSummary {
            stop_id: StopId(uuid::Uuid::from_u128(n)),
            sequence,
            address: String::new(),
            customer_name: String::new(),
            location: GeoPoint {
                lat: 52.0,
                lon: 4.0,
            },
            window: TimeWindow {
                start_ms: 1_000 + 9 * 3_600_000,
                end_ms: 1_000 + 12 * 3_600_000,
            },
            status,
            next_attempt,
            parcels: Vec::new(),
            moved_away: false,
            unsynced_events: 0,
        }
    }

    #[test]
    fn keeps_remaining_stops_in_sequence_order() {
        let view = RouteView {
            route_id: RouteId(uuid::Uuid::from_u128(9)),
            day: "2026-11-23".into(),
            version: 1,
            stops: vec![
                stop(1, 2, StopStatus::AttemptFailed { failed_attempts: 1 }, 2),
                stop(2, 1, StopStatus::Delivered, 2),
                stop(3, 0, StopStatus::Loaded, 1),
            ],
        };
        let now = Now {
            unix_ms: 1_000 + 8 * 3_600_000,
            day_start_ms: 1_000,
            day_end_s: 21 * 3600,
            position: GeoPoint {
                lat: 52.0,
                lon: 4.0,
            },
            weekend: false,
        };
        let input = plan_input(&view, &now, |_| None);
        let ids: Vec<u128> = input.stops.iter().map(|s| s.stop_id.0.as_u128()).collect();
        assert_eq!(ids, vec![3, 1]);
        assert_eq!(input.now_s, 8 * 3600);
        assert_eq!(input.stops[0].window, (9 * 3600, 12 * 3600));
        assert_eq!(input.stops[1].prior_attempts, 1);
    }

    #[test]
    fn now_starts_at_the_last_visited_stop_on_the_routes_local_day() {
        let day_start = 20_780 * 86_400_000 - 3_600_000; // 2026-11-23 at UTC+1
        let mut visited = stop(1, 0, StopStatus::Delivered, 2);
        visited.location = GeoPoint { lat: 1.0, lon: 2.0 };
        let mut late = stop(2, 1, StopStatus::Loaded, 1);
        late.window.end_ms = day_start + 22 * 3_600_000;
        let view = RouteView {
            route_id: RouteId(uuid::Uuid::from_u128(9)),
            day: "2026-11-23".into(),
            version: 1,
            stops: vec![late, visited],
        };
        let depot = GeoPoint { lat: 5.0, lon: 6.0 };
        let now = now_for(&view, day_start + 10 * 3_600_000, 60, depot).expect("valid day");
        assert_eq!(now.day_start_ms, day_start);
        assert_eq!(now.position, GeoPoint { lat: 1.0, lon: 2.0 });
        assert_eq!(
            now.day_end_s,
            22 * 3600,
            "a window ending after 21:00 extends the day"
        );
        assert!(!now.weekend);
        let input = plan_input(&view, &now, |_| None);
        assert_eq!(input.now_s, 10 * 3600);

        let fresh = RouteView {
            stops: vec![stop(3, 0, StopStatus::Loaded, 1)],
            ..view.clone()
        };
        let now = now_for(&fresh, day_start, 60, depot).expect("valid day");
        assert_eq!(now.position, depot, "nothing visited yet: the depot");
        assert_eq!(now.day_end_s, DAY_END_S);

        let bad = RouteView {
            day: "23/11/2026".into(),
            ..view
        };
        assert!(now_for(&bad, day_start, 60, depot).is_err());
    }
}
