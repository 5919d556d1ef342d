//! Neighbourhood moves. Each move is described by a [`Move`] value whose [`Move::build`] is
//! the single source of truth for what the move does; the sweeps in [`intra`] and [`inter`]
//! evaluate moves in O(1) with segment concatenation, and a property test checks that this
//! evaluation equals re-evaluating the built routes from scratch.

pub mod inter;
pub mod intra;
pub mod price;

use crate::budget::Budget;
use crate::state::State;

/// With a hook, the clock is read every this many priced moves: one pricing re-simulates at
/// most a route (~1 µs at 200 stops), so a sweep overruns its budget by well under 0.5 ms.
const CLOCK_EVERY: u32 = 16;

/// Indices are positions in a route's node list (`0` and `len-1` are the depot).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Move {
    /// Take `from[i..i+len]` out and put it, in order, right after position `after` of
    /// route `to` (a position of `to` before the removal).
    Relocate {
        from: usize,
        i: usize,
        len: usize,
        to: usize,
        after: usize,
    },
    /// Reverse `route[i..=j]` (2-opt).
    TwoOpt { route: usize, i: usize, j: usize },
    /// Exchange the customer at `a[i]` with the one at `b[j]`.
    Swap {
        a: usize,
        i: usize,
        b: usize,
        j: usize,
    },
    /// Exchange tails (2-opt*): `a' = a[..=i] + b[j..]`, `b' = b[..j] + a[i+1..]`.
    TwoOptStar {
        a: usize,
        i: usize,
        b: usize,
        j: usize,
    },
}

impl Move {
    /// The routes this move changes and their new node lists.
    pub fn build(&self, st: &State<'_>) -> Vec<(usize, Vec<u32>)> {
        let nodes = |r: usize| &st.routes[r].nodes;
        match *self {
            Move::Relocate {
                from,
                i,
                len,
                to,
                after,
            } => {
                let seg = &nodes(from)[i..i + len];
                if from == to {
                    let r = nodes(from);
                    let mut out = Vec::with_capacity(r.len());
                    for (k, &v) in r.iter().enumerate() {
                        if k >= i && k < i + len {
                            continue;
                        }
                        out.push(v);
                        if k == after {
                            out.extend_from_slice(seg);
                        }
                    }
                    vec![(from, out)]
                } else {
                    let a = nodes(from);
                    let mut a2 = a[..i].to_vec();
                    a2.extend_from_slice(&a[i + len..]);
                    let b = nodes(to);
                    let mut b2 = b[..=after].to_vec();
                    b2.extend_from_slice(seg);
                    b2.extend_from_slice(&b[after + 1..]);
                    vec![(from, a2), (to, b2)]
                }
            }
            Move::TwoOpt { route, i, j } => {
                let mut r = nodes(route).clone();
                r[i..=j].reverse();
                vec![(route, r)]
            }
            Move::Swap { a, i, b, j } => {
                if a == b {
                    let mut r = nodes(a).clone();
                    r.swap(i, j);
                    vec![(a, r)]
                } else {
                    let mut ra = nodes(a).clone();
                    let mut rb = nodes(b).clone();
                    std::mem::swap(&mut ra[i], &mut rb[j]);
                    vec![(a, ra), (b, rb)]
                }
            }
            Move::TwoOptStar { a, i, b, j } => {
                let (ra, rb) = (nodes(a), nodes(b));
                let mut na = ra[..=i].to_vec();
                na.extend_from_slice(&rb[j..]);
                let mut nb = rb[..j].to_vec();
                nb.extend_from_slice(&ra[i + 1..]);
                vec![(a, na), (b, nb)]
            }
        }
    }

    pub fn apply(&self, st: &mut State<'_>) {
        for (r, nodes) in self.build(st) {
            st.set_route(r, nodes);
        }
    }

    /// Hook part of the move's delta (0 without a hook): re-simulates the changed part of a
    /// route for moves inside one route, the changed routes for the others.
    pub fn hook_delta(&self, st: &State<'_>) -> i64 {
        if st.hook.is_none() {
            return 0;
        }
        if let Some(d) = price::intra_delta(st, self) {
            return d;
        }
        self.build(st)
            .iter()
            .map(|(r, nodes)| st.hook_of(nodes) - st.routes[*r].extra)
            .sum()
    }
}

/// The best move found so far in a sweep: improving only (`delta < 0`). With a time budget,
/// hook pricing reads the clock every [`CLOCK_EVERY`] moves and, once out of time, sets
/// [`Best::stopped`]; the sweeps then end and the best move found so far stands.
#[derive(Debug, Clone, Copy)]
pub struct Best<'b> {
    pub delta: i64,
    pub mv: Option<Move>,
    pub stopped: bool,
    budget: Option<Budget<'b>>,
    priced: u32,
}

impl<'b> Best<'b> {
    /// No clock: the sweep always runs to its end.
    pub fn new() -> Self {
        Self {
            delta: 0,
            mv: None,
            stopped: false,
            budget: None,
            priced: 0,
        }
    }

    /// A sweep that stops within a few priced moves of the end of `budget`.
    pub fn within(budget: &Budget<'b>) -> Self {
        Self {
            budget: Some(*budget),
            ..Self::new()
        }
    }

    /// Offers a move whose travel+penalty delta is `delta`; adds the hook part only for
    /// moves that could win, so that hook-less solves never build routes.
    #[inline]
    pub fn offer(&mut self, st: &State<'_>, delta: i64, mv: Move) {
        if st.hook.is_some() {
            if self.stopped {
                return;
            }
            let total = delta + mv.hook_delta(st);
            if total < self.delta {
                self.delta = total;
                self.mv = Some(mv);
            }
            self.priced += 1;
            if self.priced.is_multiple_of(CLOCK_EVERY)
                && self.budget.is_some_and(|b| b.out_of_time())
            {
                self.stopped = true;
            }
        } else if delta < self.delta {
            self.delta = delta;
            self.mv = Some(mv);
        }
    }

    /// The bound under which a candidate's travel+penalty cost must stay to improve. With
    /// a hook the bound is off (a reward could make up for anything).
    #[inline]
    pub fn threshold(&self, st: &State<'_>, old: i64) -> i64 {
        if st.hook.is_some() {
            i64::MAX
        } else {
            old + self.delta
        }
    }
}

impl Default for Best<'_> {
    fn default() -> Self {
        Self::new()
    }
}
