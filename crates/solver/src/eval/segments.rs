//! A route segment summarised by the data needed to evaluate any concatenation of segments
//! in O(1): duration, time warp, earliest/latest start, distance and load.
//!
//! Time warp is the amount of "travelling back in time" needed to meet the latest times of a
//! sequence that is late; a route is time-feasible iff its time warp is 0. Penalising it
//! (instead of forbidding late arrivals) lets the search cross infeasible regions, which tight
//! TSPTW instances need. Waiting is free, so leaving the depot later never hurts: only the
//! window of each node and the depot's closing time bind.

use crate::instance::Instance;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seg {
    pub first: u32,
    pub last: u32,
    /// Minimal duration from the start of service at `first` to the end of service at `last`.
    pub duration: i64,
    pub time_warp: i64,
    /// Earliest and latest start times at `first` that achieve `duration`/`time_warp`.
    pub earliest: i64,
    pub latest: i64,
    pub distance: i64,
    pub load: i64,
}

impl Seg {
    #[inline]
    pub fn single(inst: &Instance, v: usize) -> Self {
        Self {
            first: v as u32,
            last: v as u32,
            duration: inst.service[v],
            time_warp: 0,
            earliest: inst.earliest[v],
            latest: inst.latest[v],
            distance: 0,
            load: inst.demand[v],
        }
    }

    /// `self` followed by `next`.
    #[inline]
    pub fn then(&self, inst: &Instance, next: &Seg) -> Self {
        let travel = inst.travel(self.last as usize, next.first as usize);
        // Time from the (warp-adjusted) start of `self` to arrival at `next.first`.
        let delta = self.duration - self.time_warp + travel;
        let wait = (next.earliest - delta - self.latest).max(0);
        let warp = (self.earliest + delta - next.latest).max(0);
        Self {
            first: self.first,
            last: next.last,
            duration: self.duration + next.duration + travel + wait,
            time_warp: self.time_warp + next.time_warp + warp,
            earliest: (next.earliest - delta).max(self.earliest) - wait,
            latest: (next.latest - delta).min(self.latest) + warp,
            distance: self.distance + next.distance + travel,
            load: self.load + next.load,
        }
    }

    /// Segment of a whole node sequence (O(len)); for tests and rebuilding routes.
    pub fn of(inst: &Instance, nodes: &[u32]) -> Option<Self> {
        let (first, rest) = nodes.split_first()?;
        Some(
            rest.iter()
                .fold(Self::single(inst, *first as usize), |acc, &v| {
                    acc.then(inst, &Self::single(inst, v as usize))
                }),
        )
    }
}

/// Weights that turn infeasibility into cost. The search adapts `time_warp`/`load` so that
/// it spends part of its time on each side of the feasibility border.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Penalty {
    pub time_warp: i64,
    pub load: i64,
    pub capacity: Option<i64>,
}

impl Penalty {
    /// Penalised cost of a complete route segment (depot to depot).
    #[inline]
    pub fn cost(&self, seg: &Seg) -> i64 {
        let excess = match self.capacity {
            Some(cap) => (seg.load - cap).max(0),
            None => 0,
        };
        seg.distance
            .saturating_add(self.time_warp.saturating_mul(seg.time_warp))
            .saturating_add(self.load.saturating_mul(excess))
    }

    /// A lower bound on the penalised cost of any route that contains `seg`: warp, load and
    /// distance only grow under concatenation (travel times are non-negative).
    #[inline]
    pub fn lower_bound(&self, seg: &Seg) -> i64 {
        self.cost(seg)
    }
}
