//! Rerouting must-shows: `cargo bench -p courier-core --bench reroute [-- --routes N --seed S]`.
//!
//! 1. Simulation over N synthetic routes (default 1,000; world of `reroute::world`, days the
//!    model never saw): first-attempt success of (a) the static distance-only plan, (b) the
//!    model-aware plan, (c) an oracle planning with the true success probabilities. Outcomes
//!    use common random numbers (one uniform draw per stop, shared by the three plans), so the
//!    differences are paired. 95 % bootstrap CIs over routes.
//! 2. Latency: inference for 200 stops (one batch); the full grid (200 stops × ~14 times);
//!    the grid a reroute scores (each stop from its window's opening slot); a full reroute
//!    (10 ms budget counted from the call, so grid inference is inside it) at 50, 100 and
//!    200 stops.
//!
//! Writes `target/bench/reroute.json`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use courier_core::reroute::features;
use courier_core::reroute::plan::{self, Grid, SuccessGrid};
use courier_core::reroute::scenario::Scenario;
use courier_core::reroute::{Rerouter, onnx, plan_order};
use doorstep_solver::{Budget, WallClock};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

const POLICIES: [&str; 3] = ["static", "model", "oracle"];

struct Args {
    routes: u32,
    seed: u64,
    budget_ms: u64,
}

fn args() -> Args {
    let mut a = Args {
        routes: 1000,
        seed: 2026,
        budget_ms: 10,
    };
    let v: Vec<String> = std::env::args().collect();
    for w in v.windows(2) {
        match w[0].as_str() {
            "--routes" => a.routes = w[1].parse().unwrap_or(a.routes),
            "--seed" => a.seed = w[1].parse().unwrap_or(a.seed),
            "--budget-ms" => a.budget_ms = w[1].parse().unwrap_or(a.budget_ms),
            _ => {}
        }
    }
    a
}

/// Per route: stops, realised first-attempt successes and expected successes per policy.
struct RouteResult {
    stops: f64,
    realised: [f64; 3],
    expected: [f64; 3],
}

fn truth_grid(sc: &Scenario) -> SuccessGrid {
    let grid = Grid::for_input(&sc.input);
    let mut p = Vec::with_capacity(grid.stops * grid.slots);
    for i in 0..grid.stops {
        for k in 0..grid.slots {
            p.push(sc.p_true(i, grid.time(k)));
        }
    }
    SuccessGrid { grid, p }
}

fn simulate(sc: &Scenario, rerouter: &mut Rerouter, budget_ms: u64, seed: u64) -> RouteResult {
    let inst = match plan::instance(&sc.input) {
        Ok(i) => i,
        Err(e) => panic!("seed {seed}: scenario gives an invalid instance: {e}"),
    };
    let model_grid = match rerouter.score(&sc.input) {
        Some(Ok(g)) => g,
        Some(Err(e)) => panic!("inference failed: {e}"),
        None => panic!("no model loaded"),
    };
    let truth = truth_grid(sc);
    let grids = [None, Some(&model_grid), Some(&truth)];
    let mut rng = StdRng::seed_from_u64(seed);
    let draws: Vec<f32> = (0..sc.input.stops.len()).map(|_| rng.random()).collect();
    let mut r = RouteResult {
        stops: sc.input.stops.len() as f64,
        realised: [0.0; 3],
        expected: [0.0; 3],
    };
    for (k, grid) in grids.iter().enumerate() {
        let clock = WallClock::start();
        let budget = Budget::time(Duration::from_millis(budget_ms), &clock);
        let order = plan_order(&sc.input, &inst, *grid, &budget, seed);
        let starts = plan::schedule(&inst, &order);
        for (&s, &t) in order.iter().zip(&starts) {
            let p = sc.p_true(s, t);
            r.expected[k] += f64::from(p);
            r.realised[k] += f64::from(u8::from(draws[s] < p));
        }
    }
    r
}

/// Pooled rate per policy, uplifts over static and the share of the oracle's uplift.
fn stats(rs: &[&RouteResult], pick: fn(&RouteResult) -> [f64; 3]) -> [f64; 6] {
    let n: f64 = rs.iter().map(|r| r.stops).sum();
    let mut rate = [0.0; 3];
    for r in rs {
        for (k, v) in pick(r).iter().enumerate() {
            rate[k] += v / n;
        }
    }
    let (up_m, up_o) = (rate[1] - rate[0], rate[2] - rate[0]);
    [rate[0], rate[1], rate[2], up_m, up_o, up_m / up_o]
}

fn summary(
    results: &[RouteResult],
    pick: fn(&RouteResult) -> [f64; 3],
    seed: u64,
) -> serde_json::Value {
    let all: Vec<&RouteResult> = results.iter().collect();
    let point = stats(&all, pick);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut boots: Vec<[f64; 6]> = Vec::with_capacity(2000);
    for _ in 0..2000 {
        let sample: Vec<&RouteResult> = (0..results.len())
            .map(|_| &results[rng.random_range(0..results.len())])
            .collect();
        boots.push(stats(&sample, pick));
    }
    let ci = |i: usize| {
        let mut v: Vec<f64> = boots.iter().map(|b| b[i]).collect();
        v.sort_by(f64::total_cmp);
        [v[v.len() * 25 / 1000], v[v.len() * 975 / 1000]]
    };
    let names = [
        "static_rate",
        "model_rate",
        "oracle_rate",
        "model_uplift",
        "oracle_uplift",
        "share_of_oracle_uplift",
    ];
    let mut out = serde_json::Map::new();
    for (i, name) in names.iter().enumerate() {
        out.insert(
            (*name).into(),
            json!({"value": round4(point[i]), "ci95": ci(i).map(round4)}),
        );
    }
    out.into()
}

fn round4(x: f64) -> f64 {
    (x * 1e4).round() / 1e4
}

fn percentiles(mut v: Vec<f64>) -> serde_json::Value {
    v.sort_by(f64::total_cmp);
    let p = |q: f64| round4(v[((v.len() - 1) as f64 * q).round() as usize]);
    json!({"runs": v.len(), "p50_ms": p(0.5), "p99_ms": p(0.99), "max_ms": p(1.0)})
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn latency(rerouter: &mut Rerouter, budget_ms: u64) -> serde_json::Value {
    let sc200 = Scenario::generate_sized(99, 400, 0, Some(200));
    let rows200: Vec<f32> = sc200
        .input
        .stops
        .iter()
        .enumerate()
        .flat_map(|(i, s)| features::row(&s.signals, &sc200.input.context(i), 12 * 3600))
        .collect();
    let mut model = |rows: &[f32]| {
        let mut times = Vec::new();
        for rep in 0..1100 {
            let t = Instant::now();
            let grid = Grid::for_input(&sc200.input);
            let owned;
            let rows = if rows.is_empty() {
                owned = grid.rows(&sc200.input);
                &owned[..]
            } else {
                rows
            };
            let ok = rerouter.predict(rows).is_some_and(|r| r.is_ok());
            if rep >= 100 {
                times.push(ms(t.elapsed()));
            }
            assert!(ok, "inference failed");
        }
        percentiles(times)
    };
    let infer200 = model(&rows200);
    let grid200 = model(&[]);
    // What a reroute scores: each stop from the slot its window opens in.
    let mut scored = Vec::new();
    for rep in 0..1100 {
        let t = Instant::now();
        let ok = rerouter.score(&sc200.input).is_some_and(|r| r.is_ok());
        if rep >= 100 {
            scored.push(ms(t.elapsed()));
        }
        assert!(ok, "inference failed");
    }
    let grid = Grid::for_input(&sc200.input);
    let scored_rows = grid
        .rows_from(&sc200.input, &grid.first_slots(&sc200.input))
        .len()
        / features::WIDTH;
    let mut full = serde_json::Map::new();
    for stops in [50usize, 100, 200] {
        let mut times = Vec::new();
        for rep in 0..220u32 {
            let sc = Scenario::generate_sized(99, 500 + rep, 0, Some(stops));
            let t = Instant::now();
            let clock = WallClock::start();
            let budget = Budget::time(Duration::from_millis(budget_ms), &clock);
            let proposal = rerouter.propose(&sc.input, &budget, u64::from(rep));
            let elapsed = ms(t.elapsed());
            assert!(proposal.is_ok_and(|p| p.model_version.is_some()));
            if rep >= 20 {
                times.push(elapsed);
            }
        }
        full.insert(format!("{stops}_stops"), percentiles(times));
    }
    json!({
        "inference_200_stops_one_row_each": infer200,
        "inference_200_stops_full_grid": grid200,
        "grid_rows_200_stops": Grid::for_input(&sc200.input).slots * 200,
        "inference_200_stops_scored_grid": percentiles(scored),
        "scored_rows_200_stops": scored_rows,
        "full_reroute_10ms_budget": full,
    })
}

fn main() {
    let a = args();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let runtime = onnx::locate_runtime(&root);
    let (mut rerouter, notice) = Rerouter::load(&root.join("models"), &runtime);
    if let Some(n) = notice {
        panic!("the reroute bench needs the model and runtime (scripts/setup.sh): {n:?}");
    }
    let started = Instant::now();
    let results: Vec<RouteResult> = (0..a.routes)
        .map(|r| {
            let sc = Scenario::generate(a.seed, 1000 + r / 50, r % 50);
            simulate(&sc, &mut rerouter, a.budget_ms, a.seed ^ u64::from(r))
        })
        .collect();
    let sim_s = started.elapsed().as_secs_f64();
    let stops: f64 = results.iter().map(|r| r.stops).sum();
    let report = json!({
        "model_version": rerouter.model_version(),
        "routes": a.routes,
        "stops": stops,
        "seed": a.seed,
        "solver_budget_ms": a.budget_ms,
        "policies": POLICIES,
        "first_attempt_success_realised": summary(&results, |r| r.realised, a.seed),
        "first_attempt_success_expected": summary(&results, |r| r.expected, a.seed),
        "simulation_seconds": round4(sim_s),
        "latency": latency(&mut rerouter, a.budget_ms),
    });
    let text = serde_json::to_string_pretty(&report).unwrap_or_default();
    println!("{text}");
    let out = root.join("target/bench");
    let written = std::fs::create_dir_all(&out)
        .and_then(|()| std::fs::write(out.join("reroute.json"), text + "\n"));
    if let Err(e) = written {
        eprintln!("could not write target/bench/reroute.json: {e}");
    }
}
