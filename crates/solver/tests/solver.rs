//! The checker on hand-made routes, and the solver's determinism and validity.

use doorstep_solver::budget::Budget;
use doorstep_solver::checker::{Violation, check};
use doorstep_solver::formats::{self, tsptw};
use doorstep_solver::objective::FnArrivalCost;
use doorstep_solver::{solve, solve_with};
use std::path::PathBuf;

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

fn real(rel: &str) -> Option<doorstep_solver::Instance> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/bench/routing")
        .join(rel);
    let text = std::fs::read_to_string(&path).ok()?;
    formats::parse_any(rel, &text).ok()
}

#[test]
fn same_seed_same_routes() {
    let Some(inst) = real("tsptw/GendreauDumasExtended/n40w120.001.txt") else {
        return;
    };
    let a = solve(&inst, &Budget::iterations(40), 7);
    let b = solve(&inst, &Budget::iterations(40), 7);
    assert_eq!(a, b);
    let Some(inst) = real("solomon/RC101.vrp") else {
        return;
    };
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
        let Some(inst) = real(rel) else { continue };
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
