//! Doorstep's route solver: one model for TSPTW, Solomon VRPTW and TSPLIB instances, an
//! anytime solver (construction, local search with O(1) segment evaluation, iterated
//! ruin-and-recreate), and an independent feasibility checker. The core does no I/O and reads
//! no clock of its own: time comes in through [`budget::Clock`], randomness from a seed.
//!
//! ```
//! use doorstep_solver::{budget::Budget, formats, solve, checker};
//! let text = "3\n0 5 5\n5 0 5\n5 5 0\n0 100\n0 10\n0 20\n";
//! let inst = formats::tsptw::parse("tiny", text).unwrap();
//! let sol = solve(&inst, &Budget::iterations(10), 0);
//! assert!(checker::check(&inst, &sol.routes, Some(sol.cost)).valid());
//! ```

pub mod budget;
pub mod checker;
pub mod cli;
pub mod construct;
pub mod eval;
pub mod formats;
pub mod instance;
pub mod moves;
pub mod objective;
pub mod search;
pub mod state;

pub use budget::{Budget, Clock, WallClock};
pub use instance::Instance;
pub use objective::{ArrivalCost, NoExtraCost};
pub use search::{Solution, solve, solve_with};
