//! The checker on hand-made routes, and the solver's determinism and validity.

use doorstep_solver::budget::{Budget, Clock};
use doorstep_solver::checker::{Violation, check};
use doorstep_solver::construct::insert_all;
use doorstep_solver::eval::Penalty;
use doorstep_solver::formats::{self, tsptw};
use doorstep_solver::instance::{Instance, InstanceParts, Kind};
use doorstep_solver::objective::FnArrivalCost;
use doorstep_solver::state::State;
use doorstep_solver::{solve, solve_with};
use std::cell::Cell;
use std::path::PathBuf;
use std::time::Duration;

/// Depot + 3 customers on a line 10 apart; windows force the order 1, 2, 3.
const LINE: &str = "4\n0 10 20 30\n10 0 10 20\n20 10 0 10\n30 20 10 0\n0 100\n0 15\n15 25\n25 35\n";

#[test]
fn checker_accepts_a_feasible_tour() {
    let inst = tsptw::parse("line", LINE).expect("parses");
    let rep = check(&inst, &[vec![1, 2, 3]], Some(60));
    assert!(rep.valid(), "{:?}", rep.violations);
    assert_eq!(rep.cost, 60);
}

#[test]
fn checker_rejects_bad_tours() {
    let inst = tsptw::parse("line", LINE).expect("parses");
    // 3 before 1: arrive at 1 at 30+20 = 50 > 15.
    let rep = check(&inst, &[vec![3, 1, 2]], None);
    assert!(
        rep.violations
            .iter()
            .any(|v| matches!(v, Violation::Late { node: 1, .. }))
    );
    // Missing and repeated customers, a depot inside a route, too many routes.
    let rep = check(&inst, &[vec![1, 1, 2]], None);
    assert!(rep.violations.contains(&Violation::Missing { node: 3 }));
    assert!(
        rep.violations
            .contains(&Violation::Repeated { node: 1, times: 2 })
    );
    let rep = check(&inst, &[vec![1, 0, 2, 3]], None);
    assert!(
        rep.violations
            .iter()
            .any(|v| matches!(v, Violation::NotACustomer { node: 0, .. }))
    );
    let rep = check(&inst, &[vec![1], vec![2, 3]], None);
    assert!(
        rep.violations
            .contains(&Violation::TooManyRoutes { used: 2, max: 1 })
    );
    // A wrong claimed cost.
    let rep = check(&inst, &[vec![1, 2, 3]], Some(59));
    assert_eq!(
        rep.violations,
        vec![Violation::CostMismatch {
            claimed: 59,
            actual: 60
        }]
    );
    // Late back at the depot.
    let tight = LINE.replace("0 100\n0 15", "0 50\n0 15");
    let inst = tsptw::parse("line", &tight).expect("parses");
    let rep = check(&inst, &[vec![1, 2, 3]], None);
    assert!(
        rep.violations
            .iter()
            .any(|v| matches!(v, Violation::LateReturn { arrival: 60, .. }))
    );
}

#[test]
fn checker_enforces_capacity_and_service() {
    let text = "CAPACITY : 10\nVEHICLES : 2\nSERVICE_TIME : 5\nEDGE_WEIGHT_TYPE : EUC_2D\nNODE_COORD_SECTION\n1 0 0\n2 3 4\n3 6 8\nDEMAND_SECTION\n1 0\n2 6\n3 6\nTIME_WINDOW_SECTION\n1 0 100\n2 0 100\n3 0 10\nDEPOT_SECTION\n1\n-1\nEOF\n";
    let inst = formats::solomon::parse("cap", text).expect("parses");
    let rep = check(&inst, &[vec![1, 2]], None);
    assert!(
        rep.violations
            .iter()
            .any(|v| matches!(v, Violation::OverCapacity { load: 12, .. }))
    );
    // 0 -> 1 at 5, service 5, -> 2 at 15 > 10.
    assert!(
        rep.violations
            .iter()
            .any(|v| matches!(v, Violation::Late { node: 2, .. }))
    );
    let rep = check(&inst, &[vec![1], vec![2]], Some(300));
    assert!(rep.valid(), "{:?}", rep.violations);
}

/// A real benchmark instance carried in `tests/data/` (origin in its README).
fn real(rel: &str) -> doorstep_solver::Instance {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(rel);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("test instance {} not readable: {e}", path.display()));
    formats::parse_any(rel, &text).unwrap_or_else(|e| panic!("{rel} does not parse: {e}"))
}

#[test]
fn same_seed_same_routes() {
    let inst = real("tsptw/GendreauDumasExtended/n40w120.001.txt");
    let a = solve(&inst, &Budget::iterations(40), 7);
    let b = solve(&inst, &Budget::iterations(40), 7);
    assert_eq!(a, b);
    let inst = real("solomon/RC101.vrp");
    let a = solve(&inst, &Budget::iterations(10), 3);
    let b = solve(&inst, &Budget::iterations(10), 3);
    assert_eq!(a, b);
}

#[test]
fn valid_on_a_sample_of_real_instances() {
    let sample = [
        "tsptw/Dumas/n20w20.001.txt",
        "tsptw/Dumas/n100w20.001.txt",
        "tsptw/Dumas/n200w40.001.txt",
        "tsptw/GendreauDumasExtended/n60w160.002.txt",
        "tsptw/OhlmannThomas/n150w120.001.txt",
        "tsptw/AFG/rbg048a.tw",
        "solomon/R101.vrp",
        "solomon/C201.vrp",
        "tsplib/eil51.tsp",
    ];
    for rel in sample {
        let inst = real(rel);
        let sol = solve(&inst, &Budget::iterations(20), 0);
        let rep = check(&inst, &sol.routes, Some(sol.cost));
        assert!(rep.valid(), "{rel}: {:?}", rep.violations);
        assert!(sol.feasible);
    }
}

#[test]
fn arrival_hook_changes_the_plan() {
    // Wide windows: travel alone prefers 1, 2, 3; a big reward for serving 3 before time 15
    // makes 3 go first.
    let text =
        "4\n0 10 20 30\n10 0 10 20\n20 10 0 10\n30 20 10 0\n0 1000\n0 1000\n0 1000\n0 1000\n";
    let inst = tsptw::parse("hook", text).expect("parses");
    let plain = solve(&inst, &Budget::iterations(5), 0);
    assert_eq!(plain.cost, 60);
    let hook = FnArrivalCost(|node, t| if node == 3 && t <= 30 { -1000 } else { 0 });
    let sol = solve_with(&inst, &Budget::iterations(5), 0, Some(&hook));
    assert_eq!(sol.routes[0][0], 3, "{:?}", sol.routes);
    assert_eq!(sol.extra, -1000);
    assert!(check(&inst, &sol.routes, Some(sol.cost)).valid());
}

/// A clock that says the budget is long gone.
struct Expired;
impl Clock for Expired {
    fn elapsed(&self) -> Duration {
        Duration::from_secs(3600)
    }
}

/// `n - 1` customers on a ring with one all-day window: a courier's route, as the device
/// builds it.
fn courier_like(n: usize) -> Instance {
    let point = |i: usize| {
        let a = i as f64 * 2.399_963;
        let r = 300.0 + (i % 17) as f64 * 40.0;
        (r * a.cos(), r * a.sin())
    };
    let mut travel = Vec::with_capacity(n * n);
    for i in 0..n {
        for j in 0..n {
            let ((x1, y1), (x2, y2)) = (point(i), point(j));
            travel.push(((x1 - x2).hypot(y1 - y2)).round() as i64);
        }
    }
    Instance::new(InstanceParts {
        name: "courier-like".into(),
        kind: Kind::Custom,
        travel,
        earliest: vec![0; n],
        latest: vec![1_000_000; n],
        service: vec![60; n],
        demand: vec![0; n],
        capacity: None,
        max_vehicles: 1,
        cost_scale: 1,
    })
    .expect("valid instance")
}

#[test]
fn construction_with_a_hook_stops_pricing_when_the_time_is_up() {
    let inst = courier_like(61);
    let calls = Cell::new(0u64);
    let hook = FnArrivalCost(|node, t| {
        calls.set(calls.get() + 1);
        -((node as i64 * 31 + t / 60) % 50)
    });
    let pen = Penalty {
        time_warp: 10,
        load: 1,
        capacity: None,
    };
    let order: Vec<u32> = (1..61).collect();
    let build = |budget: &Budget<'_>| {
        calls.set(0);
        let mut st = State::new(&inst, &[], pen, Some(&hook));
        insert_all(&mut st, &order, budget);
        let mut seen = st.customer_routes().concat();
        seen.sort_unstable();
        assert_eq!(seen, order, "every customer once");
        calls.get()
    };
    let full = build(&Budget::iterations(0));
    let clock = Expired;
    let cheap = build(&Budget::time(Duration::from_millis(10), &clock));
    // Pricing every insertion with the hook re-simulates the route (~n³/6 hook calls); out
    // of time, customers go in by travel and windows and only the route rebuilds call it.
    assert!(
        cheap * 4 < full,
        "an expired budget still priced with the hook: {cheap} calls vs {full}"
    );
    let sol = solve_with(
        &inst,
        &Budget::time(Duration::from_millis(10), &clock),
        1,
        Some(&hook),
    );
    let mut seen: Vec<usize> = sol.routes.concat();
    seen.sort_unstable();
    assert_eq!(seen, (1..61).collect::<Vec<_>>(), "every customer once");
    assert!(check(&inst, &sol.routes, Some(sol.cost)).valid());
}

#[test]
fn with_a_hook_an_iteration_budget_is_still_deterministic() {
    let inst = courier_like(31);
    let hook = FnArrivalCost(|node, t| -((node as i64 * 17 + t / 90) % 40));
    let a = solve_with(&inst, &Budget::iterations(10), 9, Some(&hook));
    let b = solve_with(&inst, &Budget::iterations(10), 9, Some(&hook));
    assert_eq!(a, b);
}
