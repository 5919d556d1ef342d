//! The total-queue checker (after Jepsen's `total-queue`): the union of every device outbox is
//! the truth of what was created; the server's log is what arrived. Pure.
//!
//! Properties, each must be zero for a valid run:
//! - **lost**: created (or acknowledged to the device) but not on the server under the same
//!   `(device, device_seq, event_id)`.
//! - **duplicated effects**: a business intent applied more than once on the server, or one
//!   event id stored in more than one row.
//! - **unexpected**: on the server but never created by any device.

use doorstep_shared::EventId;
use doorstep_shared::protocol::PushStatus;
use std::collections::{BTreeMap, BTreeSet};

/// An event as a device's outbox holds it.
#[derive(Clone, Debug, PartialEq)]
pub struct CreatedEvent {
    /// The courier's index in the fleet (stable across runs, unlike device ids).
    pub courier: usize,
    pub device_seq: u64,
    pub event_id: EventId,
    pub intent_key: String,
    pub kind: String,
    /// Device clock when the event was recorded.
    pub created_at_ms: u64,
    /// The server settled it (the device got an answer for it).
    pub acknowledged: bool,
    /// For an outcome of attempt 1: whether it delivered.
    pub first_attempt: Option<bool>,
}

/// An event as the server's log holds it.
#[derive(Clone, Debug, PartialEq)]
pub struct LoggedEvent {
    pub courier: usize,
    pub device_seq: u64,
    pub event_id: EventId,
    pub intent_key: String,
    pub status: PushStatus,
    pub received_at_ms: u64,
}

/// What the checker found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Verdict {
    pub events_created: u64,
    pub events_acknowledged: u64,
    pub lost: u64,
    /// Of the lost, how many the device had been told were settled.
    pub lost_acknowledged: u64,
    pub duplicated_effects: u64,
    pub unexpected: u64,
    pub rejected: u64,
    pub conflicts: u64,
    /// Server receive time minus creation time of every created event found on the server.
    pub lag_ms: Vec<u64>,
    pub first_attempts: u64,
    pub first_attempts_delivered: u64,
    /// The first few violations, described.
    pub anomalies: Vec<String>,
}

impl Verdict {
    pub fn valid(&self) -> bool {
        self.lost == 0 && self.duplicated_effects == 0 && self.unexpected == 0
    }

    fn note(&mut self, what: String) {
        if self.anomalies.len() < 20 {
            self.anomalies.push(what);
        }
    }
}

/// Compares what devices created with what the server logged.
pub fn check(created: &[CreatedEvent], logged: &[LoggedEvent]) -> Verdict {
    let mut v = Verdict::default();
    let mut by_slot: BTreeMap<(usize, u64), Vec<&LoggedEvent>> = BTreeMap::new();
    for l in logged {
        by_slot
            .entry((l.courier, l.device_seq))
            .or_default()
            .push(l);
    }
    let mut truth: BTreeSet<(usize, u64, EventId)> = BTreeSet::new();
    for c in created {
        v.events_created += 1;
        v.events_acknowledged += u64::from(c.acknowledged);
        if let Some(delivered) = c.first_attempt {
            v.first_attempts += 1;
            v.first_attempts_delivered += u64::from(delivered);
        }
        truth.insert((c.courier, c.device_seq, c.event_id));
        let found = by_slot
            .get(&(c.courier, c.device_seq))
            .and_then(|rows| rows.iter().find(|l| l.event_id == c.event_id));
        match found {
            Some(l) => v
                .lag_ms
                .push(l.received_at_ms.saturating_sub(c.created_at_ms)),
            None => {
                v.lost += 1;
                v.lost_acknowledged += u64::from(c.acknowledged);
                v.note(format!(
                    "lost: courier {} seq {} {} ({})",
                    c.courier, c.device_seq, c.kind, c.intent_key
                ));
            }
        }
    }
    let mut applied: BTreeMap<&str, u64> = BTreeMap::new();
    let mut rows_per_event: BTreeMap<EventId, u64> = BTreeMap::new();
    for l in logged {
        match l.status {
            PushStatus::Applied => *applied.entry(l.intent_key.as_str()).or_default() += 1,
            PushStatus::Rejected => v.rejected += 1,
            PushStatus::Conflict => v.conflicts += 1,
            _ => {}
        }
        *rows_per_event.entry(l.event_id).or_default() += 1;
        if !truth.contains(&(l.courier, l.device_seq, l.event_id)) {
            v.unexpected += 1;
            v.note(format!(
                "unexpected: courier {} seq {} ({}) was never created",
                l.courier, l.device_seq, l.intent_key
            ));
        }
    }
    for (slot, rows) in &by_slot {
        if rows.len() > 1 {
            v.duplicated_effects += rows.len() as u64 - 1;
            v.note(format!(
                "courier {} seq {} has {} rows",
                slot.0,
                slot.1,
                rows.len()
            ));
        }
    }
    for (intent, n) in applied {
        if n > 1 {
            v.duplicated_effects += n - 1;
            v.note(format!("intent {intent} applied {n} times"));
        }
    }
    for (event, n) in rows_per_event {
        if n > 1 {
            v.duplicated_effects += n - 1;
            v.note(format!("event {event} stored {n} times"));
        }
    }
    v.lag_ms.sort_unstable();
    v
}

/// The `q`-quantile (0–1) of sorted samples, nearest rank; 0 when empty.
pub fn quantile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> EventId {
        EventId(uuid::Uuid::from_u128(n))
    }

    fn created(courier: usize, seq: u64, intent: &str) -> CreatedEvent {
        CreatedEvent {
            courier,
            device_seq: seq,
            event_id: id((courier as u128) << 32 | seq as u128),
            intent_key: intent.into(),
            kind: "note_added".into(),
            created_at_ms: 1_000,
            acknowledged: true,
            first_attempt: None,
        }
    }

    fn logged(c: &CreatedEvent, status: PushStatus) -> LoggedEvent {
        LoggedEvent {
            courier: c.courier,
            device_seq: c.device_seq,
            event_id: c.event_id,
            intent_key: c.intent_key.clone(),
            status,
            received_at_ms: 1_500,
        }
    }

    #[test]
    fn a_clean_run_is_valid() {
        let c = vec![created(0, 1, "a"), created(0, 2, "b"), created(1, 1, "c")];
        let l: Vec<_> = c.iter().map(|c| logged(c, PushStatus::Applied)).collect();
        let v = check(&c, &l);
        assert!(v.valid(), "{v:?}");
        assert_eq!((v.events_created, v.events_acknowledged), (3, 3));
        assert_eq!(v.lag_ms, vec![500, 500, 500]);
    }

    #[test]
    fn lost_unexpected_and_duplicates_are_counted() {
        let c = vec![created(0, 1, "a"), created(0, 2, "b"), created(0, 3, "a")];
        let mut l = vec![
            logged(&c[0], PushStatus::Applied),
            logged(&c[2], PushStatus::Applied), // same intent applied twice
        ];
        let mut stranger = logged(&c[1], PushStatus::Applied);
        stranger.device_seq = 9;
        stranger.event_id = id(999);
        l.push(stranger);
        let v = check(&c, &l);
        assert_eq!(v.lost, 1);
        assert_eq!(v.lost_acknowledged, 1);
        assert_eq!(v.unexpected, 1);
        assert_eq!(v.duplicated_effects, 1);
        assert!(!v.valid());
        assert_eq!(v.anomalies.len(), 3);
    }

    #[test]
    fn a_duplicate_outcome_is_not_a_duplicated_effect_but_rejections_are_counted() {
        let c = vec![created(0, 1, "a"), created(0, 2, "a"), created(0, 3, "x")];
        let l = vec![
            logged(&c[0], PushStatus::Applied),
            logged(&c[1], PushStatus::Duplicate),
            logged(&c[2], PushStatus::Rejected),
        ];
        let v = check(&c, &l);
        assert!(v.valid());
        assert_eq!(v.rejected, 1);
    }

    #[test]
    fn one_event_in_two_rows_is_a_duplicated_effect() {
        let c = vec![created(0, 1, "a")];
        let l = vec![
            logged(&c[0], PushStatus::Applied),
            logged(&c[0], PushStatus::Duplicate),
        ];
        let v = check(&c, &l);
        // Two rows for one (device, seq) and for one event id.
        assert_eq!(v.duplicated_effects, 2);
    }

    #[test]
    fn quantiles_use_the_nearest_rank() {
        let s: Vec<u64> = (1..=100).collect();
        assert_eq!(quantile(&s, 0.5), 50);
        assert_eq!(quantile(&s, 0.99), 99);
        assert_eq!(quantile(&s, 1.0), 100);
        assert_eq!(quantile(&[], 0.5), 0);
    }
}
