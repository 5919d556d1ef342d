//! The search's working solution: routes as node lists with the depot at both ends, plus
//! the prefix/suffix segments that make every move's evaluation O(1).

use crate::eval::{Penalty, Seg};
use crate::instance::Instance;
use crate::objective::ArrivalCost;

#[derive(Debug, Clone)]
pub struct Route {
    /// `[0, c1, ..., ck, 0]`.
    pub nodes: Vec<u32>,
    /// `prefix[k]` = segment of `nodes[..=k]`.
    pub prefix: Vec<Seg>,
    /// `suffix[k]` = segment of `nodes[k..]`.
    pub suffix: Vec<Seg>,
    /// The hook's cost of this route (0 without a hook).
    pub extra: i64,
    /// With a hook: service start at each position on the earliest schedule (the depot at
    /// its earliest time), so a move is priced from its first changed position on.
    pub start: Vec<i64>,
    /// With a hook: hook cost of the customers at positions `1..=k`.
    pub hook_upto: Vec<i64>,
}

impl Route {
    fn build(inst: &Instance, nodes: Vec<u32>, hook: Option<&dyn ArrivalCost>) -> Self {
        let m = nodes.len();
        let mut prefix = Vec::with_capacity(m);
        let mut suffix = vec![Seg::single(inst, 0); m];
        let mut acc = Seg::single(inst, nodes[0] as usize);
        prefix.push(acc);
        for &v in &nodes[1..] {
            acc = acc.then(inst, &Seg::single(inst, v as usize));
            prefix.push(acc);
        }
        let mut acc = Seg::single(inst, nodes[m - 1] as usize);
        suffix[m - 1] = acc;
        for k in (0..m - 1).rev() {
            acc = Seg::single(inst, nodes[k] as usize).then(inst, &acc);
            suffix[k] = acc;
        }
        let (mut start, mut hook_upto) = (Vec::new(), Vec::new());
        if let Some(h) = hook {
            schedule(inst, h, &nodes, &mut start, &mut hook_upto);
        }
        Self {
            extra: hook_upto.last().copied().unwrap_or(0),
            nodes,
            prefix,
            suffix,
            start,
            hook_upto,
        }
    }

    #[inline]
    pub fn whole(&self) -> &Seg {
        &self.prefix[self.prefix.len() - 1]
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.len() <= 2
    }
}

/// The hook's cost of a depot-to-depot node list on the earliest schedule.
pub fn hook_cost(inst: &Instance, hook: &dyn ArrivalCost, nodes: &[u32]) -> i64 {
    let mut t = inst.earliest[0];
    let mut prev = 0usize;
    let mut total = 0i64;
    for &v in nodes.iter().skip(1) {
        let v = v as usize;
        if v == 0 {
            break;
        }
        t = start_at(inst, prev, t, v);
        total = total.saturating_add(hook.cost(v, t));
        prev = v;
    }
    total
}

/// Service start at `v` after serving `prev` from `t`: the earliest schedule, a late arrival
/// clamped to the window's end (its lateness is penalised elsewhere).
#[inline]
pub fn start_at(inst: &Instance, prev: usize, t: i64, v: usize) -> i64 {
    let arrive = t + inst.service[prev] + inst.travel(prev, v);
    arrive.max(inst.earliest[v]).min(inst.latest[v])
}

/// Fills `start` and `hook_upto` (one entry per position of `nodes`) as [`hook_cost`] walks.
pub fn schedule(
    inst: &Instance,
    hook: &dyn ArrivalCost,
    nodes: &[u32],
    start: &mut Vec<i64>,
    hook_upto: &mut Vec<i64>,
) {
    start.clear();
    hook_upto.clear();
    let (mut t, mut total, mut prev) = (inst.earliest[0], 0i64, 0usize);
    start.push(t);
    hook_upto.push(0);
    for &v in &nodes[1..] {
        let v = v as usize;
        if v != 0 {
            t = start_at(inst, prev, t, v);
            total = total.saturating_add(hook.cost(v, t));
            prev = v;
        }
        start.push(t);
        hook_upto.push(total);
    }
}

pub struct State<'a> {
    pub inst: &'a Instance,
    pub routes: Vec<Route>,
    /// `pos[v]` = (route, index in its node list) of customer `v`.
    pub pos: Vec<(u32, u32)>,
    pub pen: Penalty,
    pub hook: Option<&'a dyn ArrivalCost>,
}

impl<'a> State<'a> {
    pub fn new(
        inst: &'a Instance,
        routes: &[Vec<u32>],
        pen: Penalty,
        hook: Option<&'a dyn ArrivalCost>,
    ) -> Self {
        let mut st = Self {
            inst,
            routes: Vec::with_capacity(inst.max_vehicles),
            pos: vec![(0, 0); inst.len()],
            pen,
            hook,
        };
        for r in 0..inst.max_vehicles {
            let customers = routes.get(r).map_or(&[][..], |c| &c[..]);
            let mut nodes = Vec::with_capacity(customers.len() + 2);
            nodes.push(0);
            nodes.extend_from_slice(customers);
            nodes.push(0);
            st.routes.push(Route::build(inst, vec![0, 0], hook));
            st.set_route(r, nodes);
        }
        st
    }

    /// Replaces route `r` by a depot-to-depot node list and refreshes its data.
    pub fn set_route(&mut self, r: usize, nodes: Vec<u32>) {
        for (k, &v) in nodes.iter().enumerate() {
            self.pos[v as usize] = (r as u32, k as u32);
        }
        self.routes[r] = Route::build(self.inst, nodes, self.hook);
    }

    /// Penalised cost of route `r` including the hook.
    #[inline]
    pub fn route_cost(&self, r: usize) -> i64 {
        self.pen.cost(self.routes[r].whole()) + self.routes[r].extra
    }

    pub fn total_cost(&self) -> i64 {
        (0..self.routes.len()).map(|r| self.route_cost(r)).sum()
    }

    pub fn distance(&self) -> i64 {
        self.routes.iter().map(|r| r.whole().distance).sum()
    }

    pub fn extra(&self) -> i64 {
        self.routes.iter().map(|r| r.extra).sum()
    }

    pub fn is_feasible(&self) -> bool {
        self.routes.iter().all(|r| {
            let s = r.whole();
            s.time_warp == 0 && self.pen.capacity.is_none_or(|c| s.load <= c)
        })
    }

    /// Hook cost of a candidate route (0 without a hook).
    pub fn hook_of(&self, nodes: &[u32]) -> i64 {
        self.hook.map_or(0, |h| hook_cost(self.inst, h, nodes))
    }

    /// Customer lists, depot excluded, empty routes dropped.
    pub fn customer_routes(&self) -> Vec<Vec<u32>> {
        self.routes
            .iter()
            .filter(|r| !r.is_empty())
            .map(|r| r.nodes[1..r.nodes.len() - 1].to_vec())
            .collect()
    }

    pub fn set_penalty(&mut self, pen: Penalty) {
        self.pen = pen;
    }
}
