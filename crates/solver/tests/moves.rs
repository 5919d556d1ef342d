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
