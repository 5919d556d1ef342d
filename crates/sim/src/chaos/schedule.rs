//! The deterministic mode's plan and scheduler. Pure: the seed decides every fault up front,
//! and the agenda orders all jobs by simulated time, ties broken by insertion order, so one seed
//! always gives one interleaving.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

const HOUR: u64 = 3_600_000;

/// Something the scheduler runs at a simulated time (milliseconds from the start of the day).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Job {
    /// The courier performs step `step` of its planned day.
    Act { courier: usize, step: usize },
    /// The courier's sync engine runs one round.
    Sync { courier: usize },
    /// The app is killed and restarted from its outbox file: right away, or (`mid_sync`) the
    /// next time one of its requests reaches the server, before the answer is read.
    Kill { courier: usize, mid_sync: bool },
    /// An old push that already reached the server arrives again, late.
    Redeliver,
}

/// Jobs by time. A courier has at most one pending sync: asking again keeps the earlier one.
#[derive(Debug)]
pub struct Agenda {
    heap: BinaryHeap<Reverse<(u64, u64)>>,
    jobs: BTreeMap<u64, Job>,
    seq: u64,
    next_sync: Vec<Option<u64>>,
}

impl Agenda {
    pub fn new(couriers: usize) -> Self {
        Self {
            heap: BinaryHeap::new(),
            jobs: BTreeMap::new(),
            seq: 0,
            next_sync: vec![None; couriers],
        }
    }

    pub fn push(&mut self, at_ms: u64, job: Job) {
        self.seq += 1;
        self.heap.push(Reverse((at_ms, self.seq)));
        self.jobs.insert(self.seq, job);
    }

    /// Schedules a sync round for `courier` at `at_ms` unless one is due earlier.
    pub fn sync(&mut self, courier: usize, at_ms: u64) {
        if self.next_sync[courier].is_some_and(|t| t <= at_ms) {
            return;
        }
        self.next_sync[courier] = Some(at_ms);
        self.push(at_ms, Job::Sync { courier });
    }

    /// The next job and its time.
    pub fn pop(&mut self) -> Option<(u64, Job)> {
        while let Some(Reverse((at, seq))) = self.heap.pop() {
            let job = self.jobs.remove(&seq)?;
            if let Job::Sync { courier } = job {
                if self.next_sync[courier] != Some(at) {
                    continue; // superseded by an earlier sync
                }
                self.next_sync[courier] = None;
            }
            return Some((at, job));
        }
        None
    }
}

/// One courier's bad luck, drawn from the seed.
#[derive(Clone, Debug, PartialEq)]
pub struct CourierFaults {
    pub request_loss: f64,
    pub response_loss: f64,
    pub duplicate: f64,
    /// No network in `[start, end)` (simulated ms from the start of the day).
    pub outage: Option<(u64, u64)>,
    pub max_batch_events: usize,
    pub kills: Vec<(u64, bool)>,
}

/// Everything that goes wrong in one chaos run.
#[derive(Clone, Debug, PartialEq)]
pub struct ChaosFaults {
    pub couriers: Vec<CourierFaults>,
    pub redeliveries: Vec<u64>,
}

pub fn plan_faults(seed: u64, couriers: usize, shift_ms: u64) -> ChaosFaults {
    let mut rng = StdRng::seed_from_u64(seed ^ 0xc4a0_5eed);
    let shift = shift_ms.max(HOUR + 1);
    let couriers = (0..couriers)
        .map(|_| {
            let outage = rng.random_bool(0.5).then(|| {
                // While the courier is working (a short route ends well before the shift).
                let start = rng.random_range(0..(shift - HOUR).min(3 * HOUR));
                (start, start + rng.random_range(HOUR / 2..3 * HOUR))
            });
            let kills = (0..rng.random_range(0..=3))
                .map(|_| (rng.random_range(0..shift), rng.random_bool(0.6)))
                .collect();
            CourierFaults {
                request_loss: rng.random_range(0.0..0.25),
                response_loss: rng.random_range(0.0..0.25),
                duplicate: rng.random_range(0.0..0.2),
                outage,
                max_batch_events: [1, 3, 10, 50, 500][rng.random_range(0..5)],
                kills,
            }
        })
        .collect();
    let redeliveries = (0..rng.random_range(5..25))
        .map(|_| rng.random_range(0..shift))
        .collect();
    ChaosFaults {
        couriers,
        redeliveries,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_agenda_orders_by_time_then_insertion() {
        let mut a = Agenda::new(2);
        a.push(5, Job::Redeliver);
        a.push(
            1,
            Job::Act {
                courier: 0,
                step: 0,
            },
        );
        a.push(
            5,
            Job::Act {
                courier: 1,
                step: 0,
            },
        );
        assert_eq!(a.pop().map(|j| j.0), Some(1));
        assert_eq!(a.pop(), Some((5, Job::Redeliver)));
        assert_eq!(
            a.pop(),
            Some((
                5,
                Job::Act {
                    courier: 1,
                    step: 0
                }
            ))
        );
        assert_eq!(a.pop(), None);
    }

    #[test]
    fn a_courier_has_one_pending_sync_the_earliest() {
        let mut a = Agenda::new(1);
        a.sync(0, 10);
        a.sync(0, 20); // later: ignored
        a.sync(0, 5); // earlier: replaces
        assert_eq!(a.pop(), Some((5, Job::Sync { courier: 0 })));
        assert_eq!(a.pop(), None);
        a.sync(0, 30);
        assert_eq!(a.pop(), Some((30, Job::Sync { courier: 0 })));
    }

    #[test]
    fn faults_come_from_the_seed() {
        let a = plan_faults(3, 4, 8 * HOUR);
        assert_eq!(a, plan_faults(3, 4, 8 * HOUR));
        assert_ne!(a, plan_faults(4, 4, 8 * HOUR));
        assert_eq!(a.couriers.len(), 4);
        for c in &a.couriers {
            if let Some((s, e)) = c.outage {
                assert!(e > s);
            }
        }
    }
}
