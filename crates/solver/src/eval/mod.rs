//! The solver's own evaluation: route segments that concatenate in O(1) (Vidal et al.,
//! "A unified solution framework for multi-attribute vehicle routing problems", 2014), and
//! the penalised objective. The feasibility checker does *not* use this module.

pub mod segments;

pub use segments::{Penalty, Seg};
