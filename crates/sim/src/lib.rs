//! # doorstep-sim — fleet simulator and field-test tool
//!
//! Field testers must be able to *prove* that nothing a driver recorded is lost or applied twice.
//! This crate runs real [`courier_core`] devices (each with its own SQLite outbox) through a
//! synthetic delivery day against a real Doorstep server, injects network and crash faults, and
//! then checks the server's log against the union of all outboxes the way Jepsen's total-queue
//! checker does: every created event must be on the server exactly once, and nothing else.
//!
//! Two modes share the world model and the checker:
//! - [`fleet`] (`doorstep-sim run`): many couriers as concurrent tasks against a server over
//!   real HTTP, simulated time compressed by a speed-up factor.
//! - [`chaos`] (`doorstep-sim chaos`): the server's service layer in process, devices talking
//!   to the real router through an in-process transport, one seeded scheduler choosing every
//!   step on a manual clock — the same seed replays the same run, byte for byte.
//!
//! **Architecture invariants:**
//! - [`world`], [`courier_day`], [`check`] and the schedulers are pure: a seed in, data out.
//!   I/O lives in [`fleet`], [`chaos`] and [`server_log`].
//! - Time and randomness are injected: the chaos mode never reads the system clock to decide
//!   anything, and every random choice comes from a seeded generator.

pub mod act;
pub mod chaos;
pub mod check;
pub mod cli;
pub mod clock;
pub mod courier_day;
pub mod fleet;
pub mod report;
pub mod server_log;
pub mod truth;
pub mod world;
