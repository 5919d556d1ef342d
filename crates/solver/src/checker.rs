//! The independent feasibility checker. It shares nothing with the solver's evaluation (no
//! segments, no penalties): it walks each route from the depot with the instance's plain
//! rules and recomputes the cost. A benchmark run counts only if this says it is valid.

use crate::instance::Instance;
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Violation {
    #[error("route {route}: node {node} is not a customer")]
    NotACustomer { route: usize, node: usize },
    #[error("customer {node} is visited {times} times")]
    Repeated { node: usize, times: usize },
    #[error("customer {node} is never visited")]
    Missing { node: usize },
    #[error("{used} routes used, at most {max} vehicles")]
    TooManyRoutes { used: usize, max: usize },
    #[error(
        "route {route}: service at {node} starts at {start}, after its window closes at {latest}"
    )]
    Late {
        route: usize,
        node: usize,
        start: i64,
        latest: i64,
    },
    #[error("route {route}: back at the depot at {arrival}, after it closes at {latest}")]
    LateReturn {
        route: usize,
        arrival: i64,
        latest: i64,
    },
    #[error("route {route}: load {load} exceeds capacity {capacity}")]
    OverCapacity {
        route: usize,
        load: i64,
        capacity: i64,
    },
    #[error("claimed cost {claimed} but the routes cost {actual}")]
    CostMismatch { claimed: i64, actual: i64 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Recomputed travel cost in instance units.
    pub cost: i64,
    pub violations: Vec<Violation>,
}

impl Report {
    pub fn valid(&self) -> bool {
        self.violations.is_empty()
    }
}

/// Checks customer routes (depot excluded; empty routes allowed and ignored) against the
/// instance. `claimed` is the cost the solver reported, in instance units.
pub fn check(inst: &Instance, routes: &[Vec<usize>], claimed: Option<i64>) -> Report {
    let n = inst.len();
    let mut violations = Vec::new();
    let mut seen = vec![0usize; n];
    let used = routes.iter().filter(|r| !r.is_empty()).count();
    if used > inst.max_vehicles {
        violations.push(Violation::TooManyRoutes {
            used,
            max: inst.max_vehicles,
        });
    }
    let mut total = 0i64;
    for (ri, route) in routes.iter().enumerate() {
        if route.is_empty() {
            continue;
        }
        let mut time = inst.earliest[0];
        let mut load = 0i64;
        let mut at = 0usize;
        for &v in route {
            if v == 0 || v >= n {
                violations.push(Violation::NotACustomer { route: ri, node: v });
                continue;
            }
            seen[v] += 1;
            total += inst.travel(at, v);
            let arrival = time + inst.service[at] + inst.travel(at, v);
            // Arriving early waits for the window to open; waiting costs nothing.
            let start = arrival.max(inst.earliest[v]);
            if start > inst.latest[v] {
                violations.push(Violation::Late {
                    route: ri,
                    node: v,
                    start,
                    latest: inst.latest[v],
                });
            }
            time = start;
            load += inst.demand[v];
            at = v;
        }
        total += inst.travel(at, 0);
        let back = time + inst.service[at] + inst.travel(at, 0);
        if back > inst.latest[0] {
            violations.push(Violation::LateReturn {
                route: ri,
                arrival: back,
                latest: inst.latest[0],
            });
        }
        if let Some(capacity) = inst.capacity
            && load > capacity
        {
            violations.push(Violation::OverCapacity {
                route: ri,
                load,
                capacity,
            });
        }
    }
    for (node, &times) in seen.iter().enumerate().skip(1) {
        match times {
            0 => violations.push(Violation::Missing { node }),
            1 => {}
            _ => violations.push(Violation::Repeated { node, times }),
        }
    }
    if let Some(claimed) = claimed
        && claimed != total
    {
        violations.push(Violation::CostMismatch {
            claimed,
            actual: total,
        });
    }
    Report {
        cost: total,
        violations,
    }
}
