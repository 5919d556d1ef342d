//! The one problem model every format maps to: a depot (node 0), customers, an integer
//! travel matrix, time windows, service times, demands and a fleet.
//!
//! Everything is an integer in the instance's own unit so that evaluation is exact and
//! deterministic; `cost_scale` says how to turn that unit back into the published one
//! (Solomon distances are kept in tenths, so its scale is 10).

use thiserror::Error;

/// "No deadline" for formats without windows. Far below `i64::MAX` so that sums of a few
/// of these (a route's schedule) cannot overflow.
pub const OPEN_LATEST: i64 = i64::MAX / 1024;

/// Which published convention the instance follows; only used for reporting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Tsptw,
    Solomon,
    Tsplib,
    /// Built in code (tests, the device's rerouting).
    Custom,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum InstanceError {
    #[error("an instance needs a depot and at least one customer, got {0} nodes")]
    TooSmall(usize),
    #[error("{what} has {got} entries, expected {expected}")]
    Length {
        what: &'static str,
        got: usize,
        expected: usize,
    },
    #[error("node {node}: time window [{earliest}, {latest}] is empty")]
    EmptyWindow {
        node: usize,
        earliest: i64,
        latest: i64,
    },
    #[error("negative {what} at node {node}")]
    Negative { what: &'static str, node: usize },
    #[error("the fleet must have at least one vehicle")]
    NoVehicle,
}

/// A routing instance. Node 0 is the depot; nodes `1..n` are customers.
///
/// Time of service start at `j` after `i`: `max(start_i + service_i + travel(i, j), earliest_j)`,
/// which must be `<= latest_j`; every route must be back at the depot by `latest_0`.
/// The objective is the sum of `travel` over the routes' arcs (waiting is free).
#[derive(Debug, Clone)]
pub struct Instance {
    pub name: String,
    pub kind: Kind,
    n: usize,
    travel: Vec<i64>,
    pub earliest: Vec<i64>,
    pub latest: Vec<i64>,
    pub service: Vec<i64>,
    pub demand: Vec<i64>,
    /// Capacity of each vehicle; `None` = uncapacitated.
    pub capacity: Option<i64>,
    pub max_vehicles: usize,
    /// Published objective = internal cost / `cost_scale`.
    pub cost_scale: i64,
}

/// Everything needed to build an [`Instance`]; validated by [`Instance::new`].
#[derive(Debug, Clone)]
pub struct InstanceParts {
    pub name: String,
    pub kind: Kind,
    /// Row-major `n × n` travel times (= distances, the objective).
    pub travel: Vec<i64>,
    pub earliest: Vec<i64>,
    pub latest: Vec<i64>,
    pub service: Vec<i64>,
    pub demand: Vec<i64>,
    pub capacity: Option<i64>,
    pub max_vehicles: usize,
    pub cost_scale: i64,
}

impl Instance {
    pub fn new(p: InstanceParts) -> Result<Self, InstanceError> {
        let n = p.earliest.len();
        if n < 2 {
            return Err(InstanceError::TooSmall(n));
        }
        let checks: [(&'static str, usize, usize); 5] = [
            ("travel matrix", p.travel.len(), n * n),
            ("latest", p.latest.len(), n),
            ("service", p.service.len(), n),
            ("demand", p.demand.len(), n),
            ("earliest", n, n),
        ];
        for (what, got, expected) in checks {
            if got != expected {
                return Err(InstanceError::Length {
                    what,
                    got,
                    expected,
                });
            }
        }
        for node in 0..n {
            if p.earliest[node] > p.latest[node] {
                return Err(InstanceError::EmptyWindow {
                    node,
                    earliest: p.earliest[node],
                    latest: p.latest[node],
                });
            }
            if p.service[node] < 0 {
                return Err(InstanceError::Negative {
                    what: "service time",
                    node,
                });
            }
            if p.demand[node] < 0 {
                return Err(InstanceError::Negative {
                    what: "demand",
                    node,
                });
            }
            if p.travel[node * n..(node + 1) * n].iter().any(|&t| t < 0) {
                return Err(InstanceError::Negative {
                    what: "travel time",
                    node,
                });
            }
        }
        if p.max_vehicles == 0 {
            return Err(InstanceError::NoVehicle);
        }
        Ok(Self {
            name: p.name,
            kind: p.kind,
            n,
            travel: p.travel,
            earliest: p.earliest,
            latest: p.latest,
            service: p.service,
            demand: p.demand,
            capacity: p.capacity,
            max_vehicles: p.max_vehicles,
            cost_scale: p.cost_scale.max(1),
        })
    }

    /// Number of nodes including the depot.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Always false: an instance has a depot and a customer (checked in `new`).
    pub fn is_empty(&self) -> bool {
        false
    }

    pub fn customers(&self) -> std::ops::Range<usize> {
        1..self.n
    }

    /// Travel time (and distance) from `i` to `j`.
    #[inline]
    pub fn travel(&self, i: usize, j: usize) -> i64 {
        self.travel[i * self.n + j]
    }

    /// Internal cost in the published unit.
    pub fn published_cost(&self, cost: i64) -> f64 {
        cost as f64 / self.cost_scale as f64
    }
}
