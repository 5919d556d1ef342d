//! The app's rerouting API: load once, propose on demand, accept as a `RouteReplanned` fact.

use std::path::Path;
use std::time::Duration;

use doorstep_shared::event::RouteReplanned;
use doorstep_shared::{EventPayload, RouteId, StopId};
use doorstep_solver::{ArrivalCost, Budget, Instance, WallClock, solve_with};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use super::error::{ModelError, RerouteNotice};
use super::onnx::OnnxModel;
use super::plan::{self, Grid, PlanInput, SuccessGrid, SuccessHook};
use crate::device::{Device, DeviceError};
use crate::outbox::AppendOutcome;

#[derive(Debug, Error)]
pub enum RerouteError {
    #[error("no remaining stops to plan")]
    NothingToPlan,
    #[error("invalid route: {0}")]
    Invalid(#[from] doorstep_solver::instance::InstanceError),
}

/// A proposed order and why: the route screen shows it; the driver accepts or keeps the old one.
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export_to = "core/"))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Proposal {
    pub route_id: RouteId,
    pub order: Vec<StopId>,
    /// The remaining stops in their current order (what undo restores).
    pub order_before: Vec<StopId>,
    /// `None` when the solver ran without the model.
    pub model_version: Option<String>,
    /// Hex SHA-256 of the canonical inputs (stops, signals, time, model version, seed).
    pub inputs_digest: String,
    /// Expected successful deliveries, proposed order and current order (model only).
    pub expected_successes: Option<f32>,
    pub expected_successes_before: Option<f32>,
    /// `expected_successes - expected_successes_before`.
    pub expected_gain: Option<f32>,
    pub windows_kept: usize,
    pub windows_kept_before: usize,
    pub stops: usize,
    pub travel_s: i64,
    pub travel_s_before: i64,
    pub notice: Option<RerouteNotice>,
}

/// Rerouting with the model when it loaded, the solver alone otherwise.
#[derive(Debug)]
pub struct Rerouter {
    model: Option<OnnxModel>,
    notice: Option<RerouteNotice>,
}

/// The order (indices into `input.stops`) the solver picks, never worse by its own objective
/// than the current order. `grid` = None plans for distance and windows only.
pub fn plan_order(
    input: &PlanInput,
    inst: &Instance,
    grid: Option<&SuccessGrid>,
    budget: &Budget<'_>,
    seed: u64,
) -> Vec<usize> {
    let hook = grid.map(SuccessHook);
    let dyn_hook = hook.as_ref().map(|h| h as &dyn ArrivalCost);
    let sol = solve_with(inst, budget, seed, dyn_hook);
    let proposed: Vec<usize> = sol
        .routes
        .into_iter()
        .flatten()
        .map(|node| node - 1)
        .collect();
    let current: Vec<usize> = (0..input.stops.len()).collect();
    if proposed.len() != current.len() {
        return current;
    }
    let score = |order: &[usize]| objective(inst, order, hook.as_ref());
    if score(&proposed) <= score(&current) {
        proposed
    } else {
        current
    }
}

/// Travel + hook + a heavy penalty per second of lateness: the solver's objective, re-checked.
fn objective(inst: &Instance, order: &[usize], hook: Option<&SuccessHook<'_>>) -> i64 {
    let starts = plan::schedule(inst, order);
    let mut cost = travel(inst, order);
    for (&s, &t) in order.iter().zip(&starts) {
        cost += 1000 * (t - inst.latest[s + 1]).max(0);
        cost += hook.map_or(0, |h| h.cost(s + 1, t));
    }
    cost
}

fn travel(inst: &Instance, order: &[usize]) -> i64 {
    let mut at = 0;
    order
        .iter()
        .map(|&s| {
            let t = inst.travel(at, s + 1);
            at = s + 1;
            t
        })
        .sum()
}

fn digest(input: &PlanInput, model_version: Option<&str>, seed: u64) -> String {
    let canonical = serde_json::json!({
        "input": input,
        "model_version": model_version,
        "seed": seed,
    });
    hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
}

impl Rerouter {
    /// Loads the model from `models_dir` with the runtime at `runtime`. Never fails: a missing
    /// or broken runtime or model gives a solver-only rerouter and the notice to show.
    pub fn load(models_dir: &Path, runtime: &Path) -> (Self, Option<RerouteNotice>) {
        match OnnxModel::load(models_dir, runtime) {
            Ok(model) => (
                Self {
                    model: Some(model),
                    notice: None,
                },
                None,
            ),
            Err(cause) => {
                let notice = RerouteNotice::solver_only(cause);
                (Self::solver_only(Some(notice.clone())), Some(notice))
            }
        }
    }

    pub fn solver_only(notice: Option<RerouteNotice>) -> Self {
        Self {
            model: None,
            notice,
        }
    }

    pub fn model_version(&self) -> Option<String> {
        self.model.as_ref().map(OnnxModel::version)
    }

    pub fn notice(&self) -> Option<&RerouteNotice> {
        self.notice.as_ref()
    }

    /// P(success) for raw feature rows (one batch); `None` without a model.
    pub fn predict(&mut self, rows: &[f32]) -> Option<Result<Vec<f32>, ModelError>> {
        self.model.as_mut().map(|m| m.predict(rows))
    }

    /// P(success) of every stop at every grid time it can be served at, in one inference
    /// call (slots before a stop's window opens are not scored; see [`Grid::first_slots`]).
    pub fn score(&mut self, input: &PlanInput) -> Option<Result<SuccessGrid, ModelError>> {
        let model = self.model.as_mut()?;
        let grid = Grid::for_input(input);
        let first = grid.first_slots(input);
        let rows = grid.rows_from(input, &first);
        Some(
            model
                .predict(&rows)
                .map(|p| SuccessGrid::from_first_slots(grid, &first, &p)),
        )
    }

    /// [`Rerouter::propose`] with a wall-clock solver budget of `limit`, counted from this call
    /// (so scoring the grid is inside it).
    pub fn propose_within(
        &mut self,
        input: &PlanInput,
        limit: Duration,
        seed: u64,
    ) -> Result<Proposal, RerouteError> {
        let clock = WallClock::start();
        self.propose(input, &Budget::time(limit, &clock), seed)
    }

    /// Proposes an order for the remaining stops of `input` within `budget`.
    #[tracing::instrument(skip_all, fields(route_id = %input.route_id, stops = input.stops.len()))]
    pub fn propose(
        &mut self,
        input: &PlanInput,
        budget: &Budget<'_>,
        seed: u64,
    ) -> Result<Proposal, RerouteError> {
        if input.stops.is_empty() {
            return Err(RerouteError::NothingToPlan);
        }
        let inst = plan::instance(input)?;
        let mut notice = self.notice.clone();
        let grid = match self.score(input) {
            Some(Ok(g)) => Some(g),
            Some(Err(cause)) => {
                notice = Some(RerouteNotice::solver_only(cause));
                None
            }
            None => None,
        };
        let model_version = grid.as_ref().and(self.model_version());
        let order = plan_order(input, &inst, grid.as_ref(), budget, seed);
        let current: Vec<usize> = (0..input.stops.len()).collect();
        let (starts, starts_before) = (
            plan::schedule(&inst, &order),
            plan::schedule(&inst, &current),
        );
        let expected = grid.as_ref().map(|g| g.expected(&order, &starts));
        let expected_before = grid.as_ref().map(|g| g.expected(&current, &starts_before));
        Ok(Proposal {
            route_id: input.route_id,
            order: order.iter().map(|&i| input.stops[i].stop_id).collect(),
            order_before: input.stops.iter().map(|s| s.stop_id).collect(),
            inputs_digest: digest(input, model_version.as_deref(), seed),
            model_version,
            expected_successes: expected,
            expected_successes_before: expected_before,
            expected_gain: expected.zip(expected_before).map(|(a, b)| a - b),
            windows_kept: plan::windows_kept(input, &order, &starts),
            windows_kept_before: plan::windows_kept(input, &current, &starts_before),
            stops: order.len(),
            travel_s: travel(&inst, &order),
            travel_s_before: travel(&inst, &current),
            notice,
        })
    }
}

/// The driver accepted `proposal`: record it as a `RouteReplanned` fact in the outbox so the
/// server can replay the decision (model version + inputs digest). The local route takes the
/// new order in the same transaction.
#[tracing::instrument(skip_all, fields(route_id = %proposal.route_id, digest = %proposal.inputs_digest))]
pub fn accept_replan(device: &Device, proposal: &Proposal) -> Result<AppendOutcome, DeviceError> {
    device.record_fact(EventPayload::RouteReplanned(RouteReplanned {
        route_id: proposal.route_id,
        model_version: proposal.model_version.clone(),
        inputs_digest: proposal.inputs_digest.clone(),
        order: proposal.order.clone(),
    }))
}

/// The digest an undo of `proposal` carries: derived from the accepted proposal's digest and
/// the order it restores, so the undo is its own intent (`replan:{route}:{digest}`) and a
/// retried undo is the same intent.
pub fn undo_digest(proposal: &Proposal) -> String {
    let canonical = serde_json::json!({
        "undo_of": proposal.inputs_digest,
        "order": proposal.order_before,
    });
    hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
}

/// The driver undid an accepted `proposal`: facts are immutable, so the old order comes back as
/// another `RouteReplanned` fact (same model version as the decision it reverts).
#[tracing::instrument(skip_all, fields(route_id = %proposal.route_id, undo_of = %proposal.inputs_digest))]
pub fn undo_replan(device: &Device, proposal: &Proposal) -> Result<AppendOutcome, DeviceError> {
    device.record_fact(EventPayload::RouteReplanned(RouteReplanned {
        route_id: proposal.route_id,
        model_version: proposal.model_version.clone(),
        inputs_digest: undo_digest(proposal),
        order: proposal.order_before.clone(),
    }))
}
