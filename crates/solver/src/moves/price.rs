//! Hook pricing of a move without building its routes: the new route is the old one with
//! `nodes[from..tail]` replaced by a few nodes, so the earliest schedule is re-simulated from
//! position `from` only, and once a node of the kept tail starts at its old time again (a
//! wait absorbed the change) the rest of the route is unchanged and its cost is read off.

use super::Move;
use crate::state::{Route, State, start_at};

/// Hook cost of `route` with `nodes[from..tail]` replaced by `middle` (`1 <= from <= tail`).
/// Equals [`crate::state::hook_cost`] of the built node list (tested).
pub fn spliced(
    st: &State<'_>,
    route: &Route,
    from: usize,
    middle: impl Iterator<Item = u32>,
    tail: usize,
) -> i64 {
    let Some(hook) = st.hook else {
        return 0;
    };
    let inst = st.inst;
    let mut prev = route.nodes[from - 1] as usize;
    let mut t = route.start[from - 1];
    let mut cost = route.hook_upto[from - 1];
    for v in middle {
        let v = v as usize;
        t = start_at(inst, prev, t, v);
        cost = cost.saturating_add(hook.cost(v, t));
        prev = v;
    }
    for k in tail..route.nodes.len() {
        let w = route.nodes[k] as usize;
        if w == 0 {
            break;
        }
        t = start_at(inst, prev, t, w);
        if t == route.start[k] {
            return cost.saturating_add(route.extra - route.hook_upto[k - 1]);
        }
        cost = cost.saturating_add(hook.cost(w, t));
        prev = w;
    }
    cost
}

/// The hook part of a move inside one route, priced by [`spliced`]; `None` for moves
/// between routes (those are built and re-simulated).
pub fn intra_delta(st: &State<'_>, mv: &Move) -> Option<i64> {
    let (r, new) = match *mv {
        Move::TwoOpt { route, i, j } => {
            let nodes = &st.routes[route].nodes;
            let mid = nodes[i..=j].iter().rev().copied();
            (route, spliced(st, &st.routes[route], i, mid, j + 1))
        }
        Move::Relocate {
            from,
            i,
            len,
            to,
            after,
        } if from == to => {
            let route = &st.routes[from];
            let nodes = &route.nodes;
            let chain = nodes[i..i + len].iter().copied();
            let cost = if after >= i + len {
                let mid = nodes[i + len..=after].iter().copied().chain(chain);
                spliced(st, route, i, mid, after + 1)
            } else {
                let mid = chain.chain(nodes[after + 1..i].iter().copied());
                spliced(st, route, after + 1, mid, i + len)
            };
            (from, cost)
        }
        Move::Swap { a, i, b, j } if a == b => {
            let (i, j) = (i.min(j), i.max(j));
            let nodes = &st.routes[a].nodes;
            let mid = std::iter::once(nodes[j])
                .chain(nodes[i + 1..j].iter().copied())
                .chain(std::iter::once(nodes[i]));
            (a, spliced(st, &st.routes[a], i, mid, j + 1))
        }
        _ => return None,
    };
    Some(new - st.routes[r].extra)
}
