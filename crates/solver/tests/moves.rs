//! Move evaluation by segment concatenation must equal re-evaluating the built routes from
//! scratch, and the segment evaluation must agree with the independent checker.

use doorstep_solver::checker;
use doorstep_solver::eval::{Penalty, Seg};
use doorstep_solver::instance::{Instance, InstanceParts, Kind};
use doorstep_solver::moves::{Best, inter, intra};
use doorstep_solver::state::State;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A random instance with windows loose enough that some routes are feasible and some not.
fn random_instance(seed: u64, n: usize, vehicles: usize) -> Instance {
    let mut rng = StdRng::seed_from_u64(seed);
    let xy: Vec<(i64, i64)> = (0..n)
        .map(|_| (rng.random_range(0..100), rng.random_range(0..100)))
        .collect();
    let mut travel = Vec::with_capacity(n * n);
    for a in &xy {
        for b in &xy {
            // Asymmetric on purpose: 2-opt must get reversed arcs right.
            travel.push((a.0 - b.0).abs() + (a.1 - b.1).abs() + i64::from(a.0 > b.0));
        }
    }
    let mut earliest = vec![0];
    let mut latest = vec![2000];
    for _ in 1..n {
        let e = rng.random_range(0..600);
        earliest.push(e);
        latest.push(e + rng.random_range(0..400));
    }
    Instance::new(InstanceParts {
        name: "random".into(),
        kind: Kind::Custom,
        travel,
        earliest,
        latest,
        service: (0..n)
            .map(|i| if i == 0 { 0 } else { rng.random_range(0..10) })
            .collect(),
        demand: (0..n)
            .map(|i| if i == 0 { 0 } else { rng.random_range(1..10) })
            .collect(),
        capacity: Some(30),
        max_vehicles: vehicles,
        cost_scale: 1,
    })
    .expect("valid instance")
}

fn random_routes(seed: u64, n: usize, vehicles: usize) -> Vec<Vec<u32>> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x9e37);
    let mut routes = vec![Vec::new(); vehicles];
    for v in 1..n as u32 {
        let r = rng.random_range(0..vehicles);
        let len = routes[r].len();
        routes[r].insert(rng.random_range(0..=len), v);
    }
    routes
}

fn full_cost(st: &State<'_>, nodes: &[u32]) -> i64 {
    st.pen.cost(&Seg::of(st.inst, nodes).expect("non-empty"))
}

/// Every move the sweeps propose must have the delta they claim.
fn check_deltas(seed: u64, n: usize, vehicles: usize) {
    let inst = random_instance(seed, n, vehicles);
    let pen = Penalty {
        time_warp: 3,
        load: 7,
        capacity: inst.capacity,
    };
    let st = State::new(&inst, &random_routes(seed, n, vehicles), pen, None);
    let neigh = doorstep_solver::construct::neighbours(&inst, 8);
    let mut checked = 0;
    for r in 0..st.routes.len() {
        for i in 1..st.routes[r].nodes.len().saturating_sub(1) {
            let mut best = Best::new();
            intra::best_at(&st, r, i, &mut best);
            if let Some(mv) = best.mv {
                let built = mv.build(&st);
                let delta: i64 = built
                    .iter()
                    .map(|(r, nodes)| full_cost(&st, nodes) - st.route_cost(*r))
                    .sum();
                assert_eq!(delta, best.delta, "{mv:?}");
                checked += 1;
            }
        }
    }
    for (u, near) in neigh.iter().enumerate().skip(1) {
        let empty = st.routes.iter().position(|r| r.is_empty());
        let mut best = Best::new();
        inter::best_for(&st, u, near, empty, &mut best);
        if let Some(mv) = best.mv {
            let built = mv.build(&st);
            let delta: i64 = built
                .iter()
                .map(|(r, nodes)| full_cost(&st, nodes) - st.route_cost(*r))
                .sum();
            assert_eq!(delta, best.delta, "{mv:?}");
            checked += 1;
        }
    }
    assert!(checked > 0 || n < 4);
}

#[test]
fn sweep_deltas_equal_full_recomputation() {
    let mut runner = TestRunner::new_with_rng(
        Config {
            cases: 64,
            ..Config::default()
        },
        TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]),
    );
    runner
        .run(&(any::<u64>(), 3usize..40, 1usize..5), |(seed, n, v)| {
            check_deltas(seed, n, v);
            Ok(())
        })
        .expect("property holds");
}

/// Segments say "feasible" and give the cost exactly when the checker does.
#[test]
fn segments_agree_with_checker() {
    for seed in 0..200 {
        let n = 3 + (seed as usize % 25);
        let inst = random_instance(seed, n, 3);
        let routes = random_routes(seed, n, 3);
        let pen = Penalty {
            time_warp: 1,
            load: 1,
            capacity: inst.capacity,
        };
        let st = State::new(&inst, &routes, pen, None);
        let as_usize: Vec<Vec<usize>> = routes
            .iter()
            .map(|r| r.iter().map(|&v| v as usize).collect())
            .collect();
        let rep = checker::check(&inst, &as_usize, None);
        assert_eq!(rep.cost, st.distance());
        assert_eq!(
            rep.valid(),
            st.is_feasible(),
            "seed {seed}: {:?}",
            rep.violations
        );
    }
}

/// Every intra-route move, priced from its first changed position, has the hook delta of
/// its built route re-simulated from scratch (waits in the random windows exercise the
/// early exit where the old schedule is met again).
#[test]
fn hook_pricing_of_intra_moves_equals_resimulating_the_built_route() {
    use doorstep_solver::moves::Move;
    use doorstep_solver::objective::FnArrivalCost;
    use doorstep_solver::state::hook_cost;
    let hook = FnArrivalCost(|node: usize, t: i64| (t * node as i64) % 97 - 40);
    let pen = Penalty {
        time_warp: 3,
        load: 7,
        capacity: None,
    };
    let mut checked = 0;
    for seed in 0..12u64 {
        let n = 4 + seed as usize * 2;
        let inst = random_instance(seed, n, 1);
        let st = State::new(&inst, &random_routes(seed, n, 1), pen, Some(&hook));
        let m = st.routes[0].nodes.len();
        let mut moves = Vec::new();
        for i in 1..m - 1 {
            for j in i + 1..m - 1 {
                moves.push(Move::TwoOpt { route: 0, i, j });
                moves.push(Move::Swap { a: 0, i, b: 0, j });
            }
            for len in 1..=3.min(m - 1 - i) {
                for after in (0..m - 1).filter(|&p| p + 1 < i || p >= i + len) {
                    moves.push(Move::Relocate {
                        from: 0,
                        i,
                        len,
                        to: 0,
                        after,
                    });
                }
            }
        }
        for mv in moves {
            let built: i64 = mv
                .build(&st)
                .iter()
                .map(|(r, nodes)| hook_cost(&inst, &hook, nodes) - st.routes[*r].extra)
                .sum();
            assert_eq!(mv.hook_delta(&st), built, "seed {seed}: {mv:?}");
            checked += 1;
        }
    }
    assert!(checked > 1000, "only {checked} moves checked");
}

/// Out of time, a hook-priced sweep ends after a few priced moves instead of the thousands
/// a position of a long route offers, and says so.
#[test]
fn an_expired_budget_stops_a_hook_sweep() {
    use doorstep_solver::budget::{Budget, Clock};
    use doorstep_solver::objective::FnArrivalCost;
    use std::cell::Cell;
    use std::time::Duration;
    struct Expired;
    impl Clock for Expired {
        fn elapsed(&self) -> Duration {
            Duration::from_secs(3600)
        }
    }
    let calls = Cell::new(0u64);
    let hook = FnArrivalCost(|node: usize, t: i64| {
        calls.set(calls.get() + 1);
        (t * node as i64) % 97 - 40
    });
    let pen = Penalty {
        time_warp: 3,
        load: 7,
        capacity: None,
    };
    let n = 120;
    let inst = random_instance(5, n, 1);
    let st = State::new(&inst, &random_routes(5, n, 1), pen, Some(&hook));
    let sweep = |best: &mut Best<'_>| {
        calls.set(0);
        intra::best_at(&st, 0, 1, best);
        calls.get()
    };
    let mut free = Best::new();
    let full = sweep(&mut free);
    assert!(!free.stopped);
    let clock = Expired;
    let budget = Budget::time(Duration::from_millis(10), &clock);
    let mut timed = Best::within(&budget);
    let cut = sweep(&mut timed);
    assert!(timed.stopped);
    assert!(cut * 20 < full, "{cut} hook calls out of time vs {full}");
}
