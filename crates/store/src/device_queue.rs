//! What a device's queue holds once the server has answered its push.
//!
//! A device reports its queue as it was when it sent the request: the request's own events
//! are still in it. Stored as reported, a device that drained its outbox with its last push
//! would show its last batch as queued until it next pushed (and a drained device does not
//! push again). So the server stores the queue as the answer leaves it: the events it settled
//! (applied, duplicate, conflict, rejected) are gone from it, and those that came back rejected or
//! conflicted are now held by the device as such.

use doorstep_shared::protocol::{DeviceQueueReport, PushStatus};

/// The queue `reported` with a request, once the request's answers reached the device.
/// `answered` holds each answered event's status and its age on arrival, in `device_seq`
/// order (events the answer left out stay queued and are newer than every answered one).
pub fn queue_after(
    reported: &DeviceQueueReport,
    answered: &[(PushStatus, u64)],
) -> DeviceQueueReport {
    let settled = answered.iter().filter(|(s, _)| settles(*s)).count() as u64;
    let refused = answered
        .iter()
        .filter(|(s, _)| matches!(s, PushStatus::Rejected | PushStatus::Conflict))
        .count() as u64;
    let queued_events = reported.queued_events.saturating_sub(settled);
    let oldest_unsynced_ms = if queued_events == 0 {
        None
    } else if let Some((_, age)) = answered.iter().find(|(s, _)| !settles(*s)) {
        // The first event the server did not settle is the oldest one still queued.
        Some(*age)
    } else if let Some((_, age)) = answered.last() {
        // Everything answered was settled: what is left is newer than the newest of it.
        Some(reported.oldest_unsynced_ms.map_or(*age, |r| r.min(*age)))
    } else {
        reported.oldest_unsynced_ms
    };
    DeviceQueueReport {
        queued_events,
        oldest_unsynced_ms,
        photos_pending: reported.photos_pending,
        rejected_events: reported.rejected_events.saturating_add(refused),
    }
}

/// Whether the device drops the event from its queue on this answer.
fn settles(status: PushStatus) -> bool {
    match status {
        PushStatus::Applied
        | PushStatus::Duplicate
        | PushStatus::Conflict
        | PushStatus::Rejected => true,
        PushStatus::Deferred | PushStatus::Gap => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reported(queued: u64, oldest: Option<u64>) -> DeviceQueueReport {
        DeviceQueueReport {
            queued_events: queued,
            oldest_unsynced_ms: oldest,
            photos_pending: 2,
            rejected_events: 1,
        }
    }

    #[test]
    fn a_device_whose_last_batch_applied_has_an_empty_queue() {
        let after = queue_after(&reported(1, Some(4_000)), &[(PushStatus::Applied, 4_000)]);
        assert_eq!(after.queued_events, 0);
        assert_eq!(after.oldest_unsynced_ms, None);
        assert_eq!(after.photos_pending, 2, "photos travel on their own");
        assert_eq!(after.rejected_events, 1);
    }

    #[test]
    fn duplicates_settle_and_refusals_move_to_the_rejected_count() {
        let answered = [
            (PushStatus::Duplicate, 60_000),
            (PushStatus::Rejected, 30_000),
            (PushStatus::Conflict, 20_000),
            (PushStatus::Applied, 9_000),
        ];
        let after = queue_after(&reported(10, Some(60_000)), &answered);
        assert_eq!(after.queued_events, 6);
        assert_eq!(after.rejected_events, 3);
        assert_eq!(
            after.oldest_unsynced_ms,
            Some(9_000),
            "what is left is newer than the newest settled event"
        );
    }

    #[test]
    fn a_deferred_event_is_the_oldest_one_still_queued() {
        let answered = [
            (PushStatus::Applied, 60_000),
            (PushStatus::Deferred, 45_000),
        ];
        let after = queue_after(&reported(5, Some(60_000)), &answered);
        assert_eq!(after.queued_events, 4);
        assert_eq!(after.oldest_unsynced_ms, Some(45_000));
        assert_eq!(after.rejected_events, 1);
    }

    #[test]
    fn a_report_smaller_than_the_batch_never_goes_below_zero() {
        let answered = [(PushStatus::Applied, 10), (PushStatus::Applied, 5)];
        let after = queue_after(&reported(1, None), &answered);
        assert_eq!(after.queued_events, 0);
        assert_eq!(after.oldest_unsynced_ms, None);
    }
}
