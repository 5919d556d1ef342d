//! # doorstep-server
//!
//! The sync server. Devices push batches of immutable events; the server applies each exactly
//! once, keyed on business intent, folds them into convergent stop states, escalates what needs
//! a human, and feeds office changes back through a long-poll pull. Dispatchers read the synced
//! state through `/v1/dispatch/*`.
//!
//! Layers: [`http`] (axum routes, extractors, problem+json) → [`service`] (transport-agnostic
//! push/pull/commands over any [`store::Store`]) → [`store`] (SQLite today) with the pure
//! decision logic in [`merge`].

pub mod auth;
pub mod blobs;
pub mod clock;
pub mod evidence;
pub mod http;
pub mod live;
pub mod merge;
pub mod metrics;
pub mod presence;
pub mod seed;
pub mod service;
pub mod startup;
pub mod store;
