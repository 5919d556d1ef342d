//! Moves inside one route, swept from an anchor position `i`: or-opt (relocate a chain of
//! 1–3 customers forwards or backwards), 2-opt (reverse `i..=j`) and swap. Each sweep grows
//! one segment by one node per step, so every candidate costs O(1) concatenations, and stops
//! early once a growing segment alone already costs more than the best candidate could
//! (time warp, distance and load only grow under concatenation).

use super::{Best, Move};
use crate::eval::Seg;
use crate::state::State;

/// Longest chain or-opt moves.
const MAX_CHAIN: usize = 3;
/// Swaps look this many positions ahead; longer swaps rarely pay and cannot be pruned.
const SWAP_REACH: usize = 24;

/// Best improving intra-route move anchored at position `i` of route `r`.
pub fn best_at(st: &State<'_>, r: usize, i: usize, best: &mut Best<'_>) {
    let route = &st.routes[r];
    let m = route.nodes.len();
    if i == 0 || i >= m - 1 {
        return;
    }
    or_opt(st, r, i, best);
    two_opt(st, r, i, best);
    swap(st, r, i, best);
    debug_assert!(m >= 3);
}

fn single(st: &State<'_>, v: u32) -> Seg {
    Seg::single(st.inst, v as usize)
}

fn or_opt(st: &State<'_>, r: usize, i: usize, best: &mut Best<'_>) {
    let inst = st.inst;
    let route = &st.routes[r];
    let (nodes, pre, suf) = (&route.nodes, &route.prefix, &route.suffix);
    let m = nodes.len();
    let old = st.pen.cost(route.whole());
    let mut chain = single(st, nodes[i]);
    for len in 1..=MAX_CHAIN {
        if len > 1 {
            if i + len - 1 > m - 2 {
                break;
            }
            chain = chain.then(inst, &single(st, nodes[i + len - 1]));
        }
        // Forwards: pre[i-1] + nodes[i+len..=p] + chain + suf[p+1].
        let mut head = pre[i - 1];
        for p in i + len..m - 1 {
            if best.stopped {
                return;
            }
            head = head.then(inst, &single(st, nodes[p]));
            let with_chain = head.then(inst, &chain);
            if st.pen.lower_bound(&with_chain) >= best.threshold(st, old) {
                break;
            }
            let cost = st.pen.cost(&with_chain.then(inst, &suf[p + 1]));
            if cost - old < best.delta || st.hook.is_some() {
                let mv = Move::Relocate {
                    from: r,
                    i,
                    len,
                    to: r,
                    after: p,
                };
                best.offer(st, cost - old, mv);
            }
        }
        // Backwards: pre[p] + chain + nodes[p+1..=i-1] + suf[i+len].
        let mut tail = suf[i + len];
        for p in (0..i.saturating_sub(1)).rev() {
            if best.stopped {
                return;
            }
            tail = single(st, nodes[p + 1]).then(inst, &tail);
            let chain_tail = chain.then(inst, &tail);
            if st.pen.lower_bound(&chain_tail) >= best.threshold(st, old) {
                break;
            }
            let cost = st.pen.cost(&pre[p].then(inst, &chain_tail));
            if cost - old < best.delta || st.hook.is_some() {
                let mv = Move::Relocate {
                    from: r,
                    i,
                    len,
                    to: r,
                    after: p,
                };
                best.offer(st, cost - old, mv);
            }
        }
    }
}

fn two_opt(st: &State<'_>, r: usize, i: usize, best: &mut Best<'_>) {
    let inst = st.inst;
    let route = &st.routes[r];
    let (nodes, pre, suf) = (&route.nodes, &route.prefix, &route.suffix);
    let m = nodes.len();
    let old = st.pen.cost(route.whole());
    // head = pre[i-1] + reverse(nodes[i..=j]), grown by prepending nodes[j] to the reversal.
    let mut rev = single(st, nodes[i]);
    for j in i + 1..m - 1 {
        if best.stopped {
            return;
        }
        rev = single(st, nodes[j]).then(inst, &rev);
        let head = pre[i - 1].then(inst, &rev);
        if st.pen.lower_bound(&head) >= best.threshold(st, old) {
            break;
        }
        let cost = st.pen.cost(&head.then(inst, &suf[j + 1]));
        if cost - old < best.delta || st.hook.is_some() {
            best.offer(st, cost - old, Move::TwoOpt { route: r, i, j });
        }
    }
}

fn swap(st: &State<'_>, r: usize, i: usize, best: &mut Best<'_>) {
    let inst = st.inst;
    let route = &st.routes[r];
    let (nodes, pre, suf) = (&route.nodes, &route.prefix, &route.suffix);
    let m = nodes.len();
    let old = st.pen.cost(route.whole());
    let at_i = single(st, nodes[i]);
    // pre[i-1] + nodes[j] + nodes[i+1..j] + nodes[i] + suf[j+1]
    let mut middle: Option<Seg> = None;
    for j in i + 1..(m - 1).min(i + 1 + SWAP_REACH) {
        if best.stopped {
            return;
        }
        let head = pre[i - 1].then(inst, &single(st, nodes[j]));
        let mid_tail = match &middle {
            Some(mid) => mid.then(inst, &at_i),
            None => at_i,
        };
        let cost = st
            .pen
            .cost(&head.then(inst, &mid_tail).then(inst, &suf[j + 1]));
        if cost - old < best.delta || st.hook.is_some() {
            best.offer(st, cost - old, Move::Swap { a: r, i, b: r, j });
        }
        let at_j = single(st, nodes[j]);
        middle = Some(match middle {
            Some(mid) => mid.then(inst, &at_j),
            None => at_j,
        });
    }
}
