//! On-device rerouting: a delivery-success model (ONNX, run with `ort` from a dynamically
//! loaded ONNX Runtime) scores every remaining stop at every candidate arrival time in one
//! batch, and the route solver orders the stops to maximise expected successful deliveries
//! against driving time, keeping windows. Without the runtime or the model the solver runs
//! alone and the proposal carries a [`RerouteNotice`] the app shows.
//!
//! - [`world`] — the synthetic world's ground truth (training data, simulation, tests);
//!   [`scenario`] — synthetic courier days drawn from it.
//! - [`features`] — the model's input schema; [`plan`] — pure instance/grid/hook/schedule.
//! - [`manifest`] and [`onnx`] — the model file, checked against its manifest at load.
//! - [`rerouter`] — the app's API: load, propose, accept and undo (`RouteReplanned` facts).
//! - [`from_view`] and [`day`] — the driver's route screen to a planning input.
//! - [`review`] — the proposal on screen and the accepted one: accept, dismiss, undo.
//!
//! ```no_run
//! use courier_core::reroute::{Rerouter, onnx};
//! use doorstep_solver::{Budget, WallClock};
//! # fn demo(input: courier_core::reroute::plan::PlanInput, device: &courier_core::Device) {
//! let root = std::path::Path::new(".");
//! let (mut rerouter, notice) = Rerouter::load(&root.join("models"), &onnx::locate_runtime(root));
//! let clock = WallClock::start();
//! let budget = Budget::time(std::time::Duration::from_millis(10), &clock);
//! if let Ok(proposal) = rerouter.propose(&input, &budget, 0) {
//!     let _ = courier_core::reroute::accept_replan(device, &proposal);
//! }
//! # }
//! ```

pub mod day;
mod error;
pub mod features;
pub mod from_view;
pub mod manifest;
pub mod onnx;
pub mod plan;
pub mod rerouter;
pub mod review;
pub mod scenario;
pub mod world;

pub use error::{ModelError, RerouteNotice};
pub use rerouter::{
    Proposal, RerouteError, Rerouter, accept_replan, plan_order, undo_digest, undo_replan,
};
pub use review::{Review, ReviewError};
