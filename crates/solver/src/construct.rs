//! Building routes: the granular neighbour lists, best-position insertion (used both to
//! build the first solution and to recreate after a ruin), and the initial solution.

use crate::budget::Budget;
use crate::eval::Seg;
use crate::instance::Instance;
use crate::objective::ArrivalCost;
use crate::state::{State, schedule, start_at};

/// For each customer, up to `k` other customers ordered by a time-aware closeness: travel
/// time plus the wait or lateness that visiting them in that order would force (after
/// Vidal et al. 2013's correlation measure). Pure distance would pair customers whose windows
/// cannot follow each other.
pub fn neighbours(inst: &Instance, k: usize) -> Vec<Vec<u32>> {
    let n = inst.len();
    let mut out = vec![Vec::new(); n];
    for (u, list) in out.iter_mut().enumerate().skip(1) {
        let mut scored: Vec<(i64, u32)> = inst
            .customers()
            .filter(|&v| v != u)
            .map(|v| {
                let dir = |a: usize, b: usize| {
                    let t = inst.travel(a, b);
                    let arrive = inst.earliest[a] + inst.service[a] + t;
                    let wait = (inst.earliest[b] - inst.latest[a] - inst.service[a] - t).max(0);
                    let late = (arrive - inst.latest[b]).max(0);
                    t.saturating_add(wait / 5).saturating_add(late)
                };
                (dir(u, v).min(dir(v, u)), v as u32)
            })
            .collect();
        // Keys are distinct (customer ids break ties), so selecting the k smallest and
        // sorting them gives exactly the first k of a full sort.
        if scored.len() > k {
            scored.select_nth_unstable(k);
            scored.truncate(k);
        }
        scored.sort_unstable();
        list.extend(scored.iter().map(|s| s.1));
    }
    out
}

/// Inserts each customer of `order` at its cheapest position (penalised cost) over all
/// routes. A free vehicle is used when the best insertion elsewhere would be infeasible,
/// which keeps VRPTW constructions feasible without knowing the fleet size in advance.
///
/// Anytime: with a hook, pricing one customer re-simulates the route after every candidate
/// position (O(n²) for a route of n), so the clock is read before each customer; once the
/// time is up, the remaining customers are inserted by travel and windows alone (O(n) each
/// with segment evaluation). An iteration budget never runs out of time, so a seed still
/// gives the same routes.
pub fn insert_all(st: &mut State<'_>, order: &[u32], budget: &Budget<'_>) {
    let inst = st.inst;
    let mut schedule = Schedule::default();
    for &v in order {
        let hook = st.hook.filter(|_| !budget.out_of_time());
        let vs = Seg::single(inst, v as usize);
        let mut best: Option<(i64, bool, usize, usize)> = None;
        let mut empty: Option<usize> = None;
        for (r, route) in st.routes.iter().enumerate() {
            if route.is_empty() {
                // One empty route stands for all of them.
                if empty.is_some() {
                    continue;
                }
                empty = Some(r);
            }
            if let Some(h) = hook {
                schedule.of(inst, h, &route.nodes);
            }
            let old = st.pen.cost(route.whole());
            for p in 0..route.nodes.len() - 1 {
                let seg = route.prefix[p]
                    .then(inst, &vs)
                    .then(inst, &route.suffix[p + 1]);
                let feasible = seg.time_warp == 0 && st.pen.capacity.is_none_or(|c| seg.load <= c);
                let mut delta = st.pen.cost(&seg) - old;
                if let Some(h) = hook {
                    delta += schedule.hook_with(inst, h, &route.nodes, p, v) - route.extra;
                }
                // A new route only when nothing feasible exists in a used one.
                let opens = route.is_empty();
                let key = (delta, feasible, r, p);
                let better = match best {
                    None => true,
                    Some((bd, bf, br, _)) => {
                        let b_opens = st.routes[br].is_empty();
                        match (feasible && !opens, bf && !b_opens) {
                            (true, false) => true,
                            (false, true) => false,
                            _ => match (feasible, bf) {
                                (true, false) => true,
                                (false, true) => false,
                                _ => delta < bd,
                            },
                        }
                    }
                };
                if better {
                    best = Some(key);
                }
            }
        }
        if let Some((_, _, r, p)) = best {
            let mut nodes = st.routes[r].nodes.clone();
            nodes.insert(p + 1, v);
            st.set_route(r, nodes);
        }
    }
}

/// One route's earliest schedule and running hook cost, so that the hook cost of the route
/// with one more customer is priced without building the new route: the part before the
/// insertion point is unchanged, and once a later stop starts at its old time again (a wait
/// absorbed the delay) the rest is unchanged too. Equals [`crate::state::hook_cost`] of the
/// built route, by construction and by test.
#[derive(Debug, Default)]
struct Schedule {
    /// Service start at each position of the node list (the depot at its earliest time).
    start: Vec<i64>,
    /// Hook cost of the customers at positions `1..=k`.
    hook_upto: Vec<i64>,
}

impl Schedule {
    fn of(&mut self, inst: &Instance, hook: &dyn ArrivalCost, nodes: &[u32]) {
        schedule(inst, hook, nodes, &mut self.start, &mut self.hook_upto);
    }

    /// Hook cost of `nodes` with `v` inserted after position `p`.
    fn hook_with(
        &self,
        inst: &Instance,
        hook: &dyn ArrivalCost,
        nodes: &[u32],
        p: usize,
        v: u32,
    ) -> i64 {
        let total = self.hook_upto[self.hook_upto.len() - 1];
        let prev = if p == 0 { 0 } else { nodes[p] as usize };
        let mut t = start_at(inst, prev, self.start[p], v as usize);
        let mut cost = self.hook_upto[p].saturating_add(hook.cost(v as usize, t));
        let mut prev = v as usize;
        for (k, &w) in nodes.iter().enumerate().skip(p + 1) {
            let w = w as usize;
            if w == 0 {
                break;
            }
            t = start_at(inst, prev, t, w);
            if t == self.start[k] {
                return cost.saturating_add(total - self.hook_upto[k - 1]);
            }
            cost = cost.saturating_add(hook.cost(w, t));
            prev = w;
        }
        cost
    }
}

/// Customers by closing time (then opening time): the order tight windows dictate, and an
/// insertion order that keeps the first routes feasible.
pub fn by_deadline(inst: &Instance) -> Vec<u32> {
    let mut order: Vec<u32> = inst.customers().map(|v| v as u32).collect();
    order.sort_by_key(|&v| (inst.latest[v as usize], inst.earliest[v as usize], v));
    order
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instance::{InstanceParts, Kind};
    use crate::objective::FnArrivalCost;
    use crate::state::hook_cost;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// Random travel, windows from wide to tight, so that waits absorb some delays.
    fn instance(seed: u64, n: usize) -> Instance {
        let mut rng = StdRng::seed_from_u64(seed);
        let travel = (0..n * n)
            .map(|k| {
                if k % (n + 1) == 0 {
                    0
                } else {
                    rng.random_range(1..60)
                }
            })
            .collect();
        let mut earliest = vec![0];
        let mut latest = vec![100_000];
        for _ in 1..n {
            let e = rng.random_range(0..900);
            earliest.push(e);
            latest.push(e + rng.random_range(0..600));
        }
        Instance::new(InstanceParts {
            name: "schedule".into(),
            kind: Kind::Custom,
            travel,
            earliest,
            latest,
            service: (0..n).map(|i| if i == 0 { 0 } else { 5 }).collect(),
            demand: vec![0; n],
            capacity: None,
            max_vehicles: 1,
            cost_scale: 1,
        })
        .expect("valid instance")
    }

    #[test]
    fn pricing_an_insertion_equals_simulating_the_built_route() {
        let hook = FnArrivalCost(|node: usize, t: i64| (t * node as i64) % 97 - 40);
        for seed in 0..20u64 {
            let inst = instance(seed, 12);
            let mut nodes: Vec<u32> = vec![0];
            nodes.extend((1..11u32).filter(|v| !(v + seed as u32).is_multiple_of(3)));
            nodes.push(0);
            let v = 11u32;
            let mut schedule = Schedule::default();
            schedule.of(&inst, &hook, &nodes);
            for p in 0..nodes.len() - 1 {
                let mut built = nodes.clone();
                built.insert(p + 1, v);
                assert_eq!(
                    schedule.hook_with(&inst, &hook, &nodes, p, v),
                    hook_cost(&inst, &hook, &built),
                    "seed {seed}, insert after position {p}"
                );
            }
        }
    }
}
