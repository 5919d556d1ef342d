//! The sync plan: a pure function from the outbox's state to the next requests. No I/O, no
//! clock: the engine gathers the inputs, calls [`plan`], executes the first action and plans
//! again, so every answer (a gap, a smaller batch cap) is reflected in the next plan.

use crate::outbox::PendingEvent;
use doorstep_shared::protocol::MAX_PUSH_DECODED_BYTES;

/// Bytes of a push request besides its events (ids, times, the queue report).
pub const REQUEST_OVERHEAD_BYTES: usize = 512;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchLimits {
    pub max_events: usize,
    /// Bound on the compressed body.
    pub max_bytes: usize,
    /// Estimated compressed size / raw size, learned from earlier batches.
    pub compression_ratio: f64,
}

/// Consecutive events `first_seq..=last_seq`, pushed in one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Batch {
    pub first_seq: u64,
    pub last_seq: u64,
    pub events: usize,
    pub raw_bytes: usize,
    pub estimated_bytes: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncAction {
    Push(Batch),
    Pull { cursor: u64, limit: u32 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PullPlan {
    pub cursor: u64,
    pub limit: u32,
}

fn estimate(raw: usize, ratio: f64) -> usize {
    ((raw + REQUEST_OVERHEAD_BYTES) as f64 * ratio.clamp(0.01, 2.0)).ceil() as usize
}

/// Pushes first (events in `device_seq` order, cut into batches that respect every limit;
/// a single event larger than the limits still gets its own batch), then one pull.
pub fn plan(
    pending: &[PendingEvent],
    limits: BatchLimits,
    pull: Option<PullPlan>,
) -> Vec<SyncAction> {
    let max_events = limits.max_events.max(1);
    let mut out = Vec::new();
    let mut current: Option<Batch> = None;
    for ev in pending {
        let raw = ev.raw_bytes + 1;
        if let Some(b) = current.as_mut() {
            let contiguous = ev.device_seq == b.last_seq + 1;
            let raw_after = b.raw_bytes + raw;
            let fits = b.events < max_events
                && estimate(raw_after, limits.compression_ratio) <= limits.max_bytes
                && raw_after + REQUEST_OVERHEAD_BYTES <= MAX_PUSH_DECODED_BYTES;
            if contiguous && fits {
                b.last_seq = ev.device_seq;
                b.events += 1;
                b.raw_bytes = raw_after;
                b.estimated_bytes = estimate(raw_after, limits.compression_ratio);
                continue;
            }
            out.push(SyncAction::Push(*b));
        }
        current = Some(Batch {
            first_seq: ev.device_seq,
            last_seq: ev.device_seq,
            events: 1,
            raw_bytes: raw,
            estimated_bytes: estimate(raw, limits.compression_ratio),
        });
    }
    if let Some(b) = current {
        out.push(SyncAction::Push(b));
    }
    if let Some(p) = pull {
        out.push(SyncAction::Pull {
            cursor: p.cursor,
            limit: p.limit,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pending(sizes: &[usize], first: u64) -> Vec<PendingEvent> {
        sizes
            .iter()
            .enumerate()
            .map(|(i, s)| PendingEvent {
                device_seq: first + i as u64,
                raw_bytes: *s,
            })
            .collect()
    }

    #[test]
    fn nothing_pending_plans_only_the_pull() {
        let limits = BatchLimits {
            max_events: 10,
            max_bytes: 1_000,
            compression_ratio: 1.0,
        };
        assert_eq!(plan(&[], limits, None), vec![]);
        assert_eq!(
            plan(
                &[],
                limits,
                Some(PullPlan {
                    cursor: 4,
                    limit: 9
                })
            ),
            vec![SyncAction::Pull {
                cursor: 4,
                limit: 9
            }]
        );
    }

    #[test]
    fn count_limit_cuts_batches() {
        let limits = BatchLimits {
            max_events: 2,
            max_bytes: usize::MAX,
            compression_ratio: 0.2,
        };
        let got: Vec<_> = plan(&pending(&[10; 5], 7), limits, None)
            .into_iter()
            .map(|a| match a {
                SyncAction::Push(b) => (b.first_seq, b.last_seq),
                SyncAction::Pull { .. } => (0, 0),
            })
            .collect();
        assert_eq!(got, [(7, 8), (9, 10), (11, 11)]);
    }

    #[test]
    fn an_oversized_event_goes_alone() {
        let limits = BatchLimits {
            max_events: 100,
            max_bytes: 1_000,
            compression_ratio: 1.0,
        };
        let actions = plan(&pending(&[100, 5_000, 100], 1), limits, None);
        assert_eq!(actions.len(), 3);
    }

    proptest! {
        /// Batches cover the pending events exactly once, in order, each within the limits
        /// unless it holds a single event; the pull comes last.
        #[test]
        fn batches_partition_pending_and_respect_limits(
            sizes in proptest::collection::vec(1usize..5_000, 0..300),
            max_events in 1usize..50,
            max_bytes in 100usize..50_000,
            ratio in 0.05f64..1.0,
        ) {
            let p = pending(&sizes, 1);
            let limits = BatchLimits { max_events, max_bytes, compression_ratio: ratio };
            let actions = plan(&p, limits, Some(PullPlan { cursor: 0, limit: 10 }));
            let pull_last = matches!(actions.last(), Some(SyncAction::Pull { .. }));
            prop_assert!(pull_last);
            let mut next = 1u64;
            for a in &actions[..actions.len() - 1] {
                let SyncAction::Push(b) = a else { panic!("pull before pushes") };
                prop_assert_eq!(b.first_seq, next);
                prop_assert_eq!(b.events as u64, b.last_seq - b.first_seq + 1);
                prop_assert!(b.events <= max_events);
                if b.events > 1 { prop_assert!(b.estimated_bytes <= max_bytes); }
                next = b.last_seq + 1;
            }
            prop_assert_eq!(next, p.len() as u64 + 1);
        }
    }
}
