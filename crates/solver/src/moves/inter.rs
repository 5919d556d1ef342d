//! Moves between two routes, restricted to a granular neighbourhood: for customer `u` and
//! each of its nearest neighbours `v` (by a time-aware distance, see
//! [`crate::construct::neighbours`]) in another route, try putting a chain starting at `u`
//! right after or right before `v`, swapping `u` and `v`, and a tail exchange (2-opt*) that
//! creates the arc `u → v`; also moving `u` into an empty route.

use super::{Best, Move};
use crate::eval::Seg;
use crate::state::State;

const MAX_CHAIN: usize = 3;

pub fn best_for(
    st: &State<'_>,
    u: usize,
    neighbours: &[u32],
    empty: Option<usize>,
    best: &mut Best<'_>,
) {
    let inst = st.inst;
    let (ra, iu) = (st.pos[u].0 as usize, st.pos[u].1 as usize);
    let a = &st.routes[ra];
    let ma = a.nodes.len();
    let old_a = st.pen.cost(a.whole());
    // Chains starting at u and the route left behind, for each chain length.
    let mut chains: [(Seg, Seg); MAX_CHAIN] = [(Seg::single(inst, u), *a.whole()); MAX_CHAIN];
    let mut n_chains = 0;
    let mut chain = Seg::single(inst, u);
    for len in 1..=MAX_CHAIN {
        if iu + len - 1 > ma - 2 {
            break;
        }
        if len > 1 {
            chain = chain.then(inst, &Seg::single(inst, a.nodes[iu + len - 1] as usize));
        }
        chains[len - 1] = (chain, a.prefix[iu - 1].then(inst, &a.suffix[iu + len]));
        n_chains = len;
    }
    let u_seg = chains[0].0;

    for &v in neighbours {
        if best.stopped {
            return;
        }
        let (rb, iv) = (st.pos[v as usize].0 as usize, st.pos[v as usize].1 as usize);
        if rb == ra {
            continue;
        }
        let b = &st.routes[rb];
        let old = old_a + st.pen.cost(b.whole());
        for (k, (ch, rest_a)) in chains[..n_chains].iter().enumerate() {
            let cost_a = st.pen.cost(rest_a);
            if cost_a >= old + best.delta && st.hook.is_none() {
                continue;
            }
            let len = k + 1;
            for after in [iv, iv - 1] {
                let nb = b.prefix[after]
                    .then(inst, ch)
                    .then(inst, &b.suffix[after + 1]);
                let delta = cost_a + st.pen.cost(&nb) - old;
                if delta < best.delta || st.hook.is_some() {
                    let mv = Move::Relocate {
                        from: ra,
                        i: iu,
                        len,
                        to: rb,
                        after,
                    };
                    best.offer(st, delta, mv);
                }
            }
        }
        // Swap u and v.
        let v_seg = Seg::single(inst, v as usize);
        let na = a.prefix[iu - 1]
            .then(inst, &v_seg)
            .then(inst, &a.suffix[iu + 1]);
        let nb = b.prefix[iv - 1]
            .then(inst, &u_seg)
            .then(inst, &b.suffix[iv + 1]);
        let delta = st.pen.cost(&na) + st.pen.cost(&nb) - old;
        if delta < best.delta || st.hook.is_some() {
            best.offer(
                st,
                delta,
                Move::Swap {
                    a: ra,
                    i: iu,
                    b: rb,
                    j: iv,
                },
            );
        }
        // 2-opt*: a[..=iu] + b[iv..] and b[..iv] + a[iu+1..].
        let na = a.prefix[iu].then(inst, &b.suffix[iv]);
        let nb = b.prefix[iv - 1].then(inst, &a.suffix[iu + 1]);
        let delta = st.pen.cost(&na) + st.pen.cost(&nb) - old;
        if delta < best.delta || st.hook.is_some() {
            best.offer(
                st,
                delta,
                Move::TwoOptStar {
                    a: ra,
                    i: iu,
                    b: rb,
                    j: iv,
                },
            );
        }
    }

    // A route of its own, when a vehicle is free and u's route has others.
    if let Some(e) = empty
        && e != ra
        && ma > 3
    {
        let ne = st.routes[e].prefix[0]
            .then(inst, &u_seg)
            .then(inst, &st.routes[e].suffix[1]);
        let delta = st.pen.cost(&chains[0].1) + st.pen.cost(&ne)
            - old_a
            - st.pen.cost(st.routes[e].whole());
        let mv = Move::Relocate {
            from: ra,
            i: iu,
            len: 1,
            to: e,
            after: 0,
        };
        best.offer(st, delta, mv);
    }
}
