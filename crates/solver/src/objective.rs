//! The caller's hook into the objective. The device adds expected-success terms (for example
//! a penalty that grows with the predicted chance that nobody is home at the arrival time);
//! the benchmarks use none.

/// An extra cost for starting service at `node` at time `start` (instance units; negative
/// values are rewards). `start` is the earliest-schedule service start: the vehicle leaves
/// the depot at the depot's earliest time and never waits longer than a window requires,
/// and a late arrival is clamped to the window's end (that lateness is already penalised).
///
/// The solver adds the sum over visited customers to the travel cost it minimises. With a
/// hook, each move is evaluated by re-simulating the changed routes (O(route length); a move
/// inside one route from its first changed position on) instead of O(1), which is fine for
/// a courier's ≤ 200 stops but slower than no hook.
pub trait ArrivalCost {
    fn cost(&self, node: usize, start: i64) -> i64;
}

/// Travel distance only: the benchmark objective.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoExtraCost;

impl ArrivalCost for NoExtraCost {
    fn cost(&self, _node: usize, _start: i64) -> i64 {
        0
    }
}

/// A closure as a hook: `FnArrivalCost(|node, t| ...)`.
pub struct FnArrivalCost<F: Fn(usize, i64) -> i64>(pub F);

impl<F: Fn(usize, i64) -> i64> ArrivalCost for FnArrivalCost<F> {
    fn cost(&self, node: usize, start: i64) -> i64 {
        (self.0)(node, start)
    }
}
