//! The sync engine: plan pure ([`plan`]), classify every answer ([`classify`]), pace retries
//! with [`backoff`], a retry [`budget`] and a circuit [`breaker`], then execute ([`engine`]).

pub mod backoff;
pub mod breaker;
pub mod budget;
pub mod classify;
pub mod engine;
pub mod enroll;
pub mod plan;
pub mod status;

pub use engine::{EngineStats, RoundOutcome, SyncConfig, SyncEngine};
pub use enroll::{EnrollError, enroll};
pub use status::{Connectivity, SyncStatus};
