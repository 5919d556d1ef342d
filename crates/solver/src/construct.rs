//! Building routes: the granular neighbour lists, best-position insertion (used both to
//! build the first solution and to recreate after a ruin), and the initial solution.

use crate::eval::Seg;
use crate::instance::Instance;
use crate::state::State;

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
        scored.sort_unstable();
        list.extend(scored.iter().take(k).map(|s| s.1));
    }
    out
}

/// Inserts each customer of `order` at its cheapest position (penalised cost) over all
/// routes. A free vehicle is used when the best insertion elsewhere would be infeasible,
/// which keeps VRPTW constructions feasible without knowing the fleet size in advance.
pub fn insert_all(st: &mut State<'_>, order: &[u32]) {
    let inst = st.inst;
    for &v in order {
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
            let old = st.pen.cost(route.whole());
            for p in 0..route.nodes.len() - 1 {
                let seg = route.prefix[p]
                    .then(inst, &vs)
                    .then(inst, &route.suffix[p + 1]);
                let feasible = seg.time_warp == 0 && st.pen.capacity.is_none_or(|c| seg.load <= c);
                let mut delta = st.pen.cost(&seg) - old;
                if st.hook.is_some() {
                    let mut nodes = route.nodes.clone();
                    nodes.insert(p + 1, v);
                    delta += st.hook_of(&nodes) - route.extra;
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

/// Customers by closing time (then opening time): the order tight windows dictate, and an
/// insertion order that keeps the first routes feasible.
pub fn by_deadline(inst: &Instance) -> Vec<u32> {
    let mut order: Vec<u32> = inst.customers().map(|v| v as u32).collect();
    order.sort_by_key(|&v| (inst.latest[v as usize], inst.earliest[v as usize], v));
    order
}
