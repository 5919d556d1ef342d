//! The anytime search: construction, local search to a local optimum, then iterated
//! ruin-and-recreate + local search until the budget ends. Time-window and capacity
//! violations are penalised with weights that adapt to how often local optima are feasible;
//! the best *feasible* solution seen is returned.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use crate::budget::Budget;
use crate::construct::{by_deadline, insert_all, neighbours};
use crate::eval::Penalty;
use crate::instance::Instance;
use crate::moves::{Best, inter, intra};
use crate::objective::ArrivalCost;
use crate::state::State;

/// Granular neighbourhood size for inter-route moves and related removal.
const NEIGHBOURS: usize = 30;
/// Start temperature as a fraction of the current mean arc cost.
const TEMPERATURE: f64 = 0.5;

/// What [`solve`] returns. `routes` are customer lists (depot excluded); `cost` is the travel
/// cost in instance units (see [`Instance::published_cost`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Solution {
    pub routes: Vec<Vec<usize>>,
    pub cost: i64,
    /// The hook's part of the objective (0 without a hook).
    pub extra: i64,
    /// Whether the solver believes every window and capacity holds (the checker decides).
    pub feasible: bool,
    pub iterations: u64,
}

/// Solves for travel cost only. Deterministic for a seed under an iteration budget.
pub fn solve(inst: &Instance, budget: &Budget<'_>, seed: u64) -> Solution {
    solve_with(inst, budget, seed, None)
}

/// Solves for travel cost plus the caller's arrival-time cost (see [`ArrivalCost`]).
pub fn solve_with(
    inst: &Instance,
    budget: &Budget<'_>,
    seed: u64,
    hook: Option<&dyn ArrivalCost>,
) -> Solution {
    let mut rng = StdRng::seed_from_u64(seed);
    let scale = typical_arc(inst);
    let mut pen = Penalty {
        time_warp: 10,
        load: scale.max(1) * 4,
        capacity: inst.capacity,
    };
    let multi = inst.max_vehicles > 1;
    let neigh = neighbours(inst, NEIGHBOURS);

    let mut st = State::new(inst, &[], pen, hook);
    insert_all(&mut st, &by_deadline(inst), budget);
    local_search(&mut st, &neigh, multi, budget, &mut rng);

    let mut best: Option<(i64, Vec<Vec<u32>>)> = None;
    let mut fallback = (st.total_cost(), st.customer_routes());
    record(&st, &mut best);
    let mut current = st.customer_routes();
    let mut current_cost = st.total_cost();
    let mut iterations = 0u64;
    let mut since_best = 0u64;

    while !budget.exhausted(iterations) {
        iterations += 1;
        since_best += 1;
        let mut cand = State::new(inst, &current, pen, hook);
        ruin_recreate(&mut cand, &neigh, budget, &mut rng);
        local_search(&mut cand, &neigh, multi, budget, &mut rng);

        let feasible = cand.is_feasible();
        if record(&cand, &mut best) {
            since_best = 0;
        }
        if cand.total_cost() < fallback.0 {
            fallback = (cand.total_cost(), cand.customer_routes());
        }
        // Simulated-annealing acceptance: a worse local optimum is taken with probability
        // exp(-delta / T); T starts near a fraction of a typical arc of the current tour and
        // cools to 0 with the budget, so the search ends as a pure descent.
        let progress = budget.progress(iterations);
        let cand_cost = cand.total_cost();
        let temp = TEMPERATURE * current_cost as f64 / inst.len() as f64 * (1.0 - progress);
        let delta = (cand_cost - current_cost) as f64;
        let u: f64 = rng.random_range(f64::EPSILON..1.0);
        if delta < 0.0 || (temp > 0.0 && delta < -temp * u.ln()) {
            current = cand.customer_routes();
            current_cost = cand_cost;
        }
        // Restart from the best known solution after a long drought.
        if since_best > 200 + inst.len() as u64
            && let Some((_, routes)) = &best
        {
            current = routes.clone();
            since_best = 0;
        }

        // Steer towards ~half of the local optima being feasible.
        let old = pen;
        let tw_bad = cand.routes.iter().any(|r| r.whole().time_warp > 0);
        pen.time_warp = if tw_bad {
            (pen.time_warp * 13 / 10 + 1).min(1_000_000)
        } else {
            (pen.time_warp * 9 / 10).max(1)
        };
        let load_bad = !feasible && !tw_bad;
        if load_bad {
            pen.load = (pen.load * 13 / 10 + 1).min(1_000_000 * scale.max(1));
        } else if feasible {
            pen.load = (pen.load * 9 / 10).max(1);
        }
        if pen != old {
            current_cost = State::new(inst, &current, pen, hook).total_cost();
        }
    }

    let (routes, feasible) = match best {
        Some((_, r)) => (r, true),
        None => (fallback.1, false),
    };
    let st = State::new(inst, &routes, pen, hook);
    Solution {
        routes: st
            .customer_routes()
            .into_iter()
            .map(|r| r.into_iter().map(|v| v as usize).collect())
            .collect(),
        cost: st.distance(),
        extra: st.extra(),
        feasible,
        iterations,
    }
}

/// Keeps the best feasible solution by true objective (travel + hook).
fn record(st: &State<'_>, best: &mut Option<(i64, Vec<Vec<u32>>)>) -> bool {
    if !st.is_feasible() {
        return false;
    }
    let obj = st.distance() + st.extra();
    if best.as_ref().is_none_or(|(b, _)| obj < *b) {
        *best = Some((obj, st.customer_routes()));
        return true;
    }
    false
}

/// Mean travel time of the arcs from the depot: a scale for penalty weights.
fn typical_arc(inst: &Instance) -> i64 {
    let n = inst.len() as i64;
    let sum: i64 = inst.customers().map(|v| inst.travel(0, v)).sum();
    sum / (n - 1).max(1)
}

/// First-improvement descent over intra-route sweeps and granular inter-route moves until no
/// move improves or the time is up.
pub fn local_search(
    st: &mut State<'_>,
    neigh: &[Vec<u32>],
    multi: bool,
    budget: &Budget<'_>,
    rng: &mut StdRng,
) {
    let mut customers: Vec<usize> = st.inst.customers().collect();
    loop {
        let mut improved = false;
        for r in 0..st.routes.len() {
            let mut i = 1;
            while i + 1 < st.routes[r].nodes.len() {
                let mut best = Best::within(budget);
                intra::best_at(st, r, i, &mut best);
                if let Some(mv) = best.mv {
                    mv.apply(st);
                    improved = true;
                }
                i += 1;
                // With a hook, the sweep itself reads the clock every few priced moves; the
                // clock is also read after every position.
                if best.stopped || budget.out_of_time() {
                    return;
                }
            }
        }
        if multi {
            customers.shuffle(rng);
            for &u in &customers {
                let empty = st.routes.iter().position(|r| r.is_empty());
                let mut best = Best::within(budget);
                inter::best_for(st, u, &neigh[u], empty, &mut best);
                if let Some(mv) = best.mv {
                    mv.apply(st);
                    improved = true;
                }
                if budget.out_of_time() {
                    return;
                }
            }
        }
        if !improved || budget.out_of_time() {
            return;
        }
    }
}

/// Removes a few customers (random, neighbours of a random customer, or a string of
/// consecutive stops) and reinserts them at their cheapest positions.
fn ruin_recreate(st: &mut State<'_>, neigh: &[Vec<u32>], budget: &Budget<'_>, rng: &mut StdRng) {
    let n = st.inst.len() - 1;
    // Small instances need proportionally larger ruins: re-inserting one or two stops
    // mostly puts them back where they were.
    let max_q = (n / 4).clamp(4, 30).min(n);
    let q = rng.random_range(1..=max_q);
    let mut removed: Vec<u32> = Vec::with_capacity(q);
    match rng.random_range(0..3) {
        0 => {
            let mut all: Vec<u32> = (1..=n as u32).collect();
            all.shuffle(rng);
            removed.extend_from_slice(&all[..q]);
        }
        1 => {
            let seed = rng.random_range(1..=n);
            removed.push(seed as u32);
            removed.extend(neigh[seed].iter().take(q - 1));
        }
        _ => {
            let seed = rng.random_range(1..=n);
            let (r, i) = st.pos[seed];
            let nodes = &st.routes[r as usize].nodes;
            let end = (i as usize + q).min(nodes.len() - 1);
            removed.extend_from_slice(&nodes[i as usize..end]);
        }
    }
    for r in 0..st.routes.len() {
        if st.routes[r].nodes.iter().any(|v| removed.contains(v)) {
            let kept: Vec<u32> = st.routes[r]
                .nodes
                .iter()
                .copied()
                .filter(|v| !removed.contains(v))
                .collect();
            st.set_route(r, kept);
        }
    }
    if rng.random_bool(0.5) {
        removed.shuffle(rng);
    } else {
        removed.sort_by_key(|&v| st.inst.latest[v as usize]);
    }
    insert_all(st, &removed, budget);
}
