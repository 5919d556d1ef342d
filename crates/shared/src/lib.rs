//! # doorstep-shared — the contract every other part depends on
//!
//! A delivery outcome is a state transition recorded as an immutable, versioned event. This crate
//! defines those events ([`event`]), the keys that make their processing idempotent on business
//! intent ([`intent`]), the stop state machine and its convergent fold ([`stop`]), the hybrid
//! logical clock ([`hlc`]), the wire protocol between devices, dispatchers and the server
//! ([`protocol`]), the stable problem codes ([`problem`]) and the proof-of-presence score the
//! device and the server both compute ([`presence`]).
//!
//! **Architecture invariant:** nothing here performs I/O, reads a clock or draws randomness.
//! Time and ids are passed in by the caller, so every function is deterministic and testable.

pub mod dashboard;
pub mod event;
pub mod evidence;
pub mod hlc;
pub mod ids;
pub mod intent;
pub mod order;
pub mod presence;
pub mod problem;
pub mod protocol;
pub mod reason;
pub mod stop;
#[cfg(feature = "ts")]
pub mod ts_export;

pub use event::{EventEnvelope, EventPayload, SCHEMA_VERSION};
pub use hlc::{HlcStamp, HybridClock};
pub use ids::*;
pub use problem::{Problem, ProblemCode};
pub use reason::{FailureClass, FailureReason};
pub use stop::{StopState, StopStatus};
