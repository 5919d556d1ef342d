//! # doorstep-server
//!
//! The sync server. Devices push batches of immutable events; the server applies each exactly
//! once, keyed on business intent, folds them into convergent stop states, escalates what needs
//! a human, and feeds office changes back through a long-poll pull. Dispatchers read the synced
//! state through `/v1/dispatch/*`.
//!
//! Layers: [`http`] (axum routes, extractors, problem+json) → [`service`] (transport-agnostic
//! push/pull/commands over any [`store::Store`]) → the push and office algorithms and the pure
//! decisions of `doorstep-store` ([`push`], [`office`], [`merge`]) → a backend in [`store`]
//! that only stores.

pub mod auth;
pub mod blobs;
pub mod clock;
pub mod commands;
pub mod evidence;
pub mod http;
pub mod live;
pub mod metrics;
pub use doorstep_store::{intake, merge, office, push};
pub mod presence;
pub mod seed;
pub mod service;
pub mod settings;
pub mod startup;
pub mod store;
