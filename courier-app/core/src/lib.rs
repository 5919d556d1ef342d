//! # courier-core — everything a Doorstep courier device does, with no UI dependency
//!
//! Drivers work in basements and dead zones, so the device is built around one rule: **a fact
//! the driver saw confirmed is already durable**. Commands ([`device::Device`]) are validated
//! against the local projection and committed to a SQLite [`outbox`] in one transaction with
//! their gap-free `device_seq`, their hybrid-logical-clock stamp and the projection change.
//! The [`sync`] engine later pushes the outbox in batches and pulls office changes; it plans
//! with a pure function, classifies every answer, and paces retries with full-jitter backoff,
//! a retry budget and a circuit breaker. All network access goes through the [`transport`]
//! seam, which a fault injector can wrap (offline, loss, timeouts after commit, duplicates,
//! outages) for tests, the simulator and the app's field-test mode.
//!
//! **Architecture invariants:**
//! - Nothing reads the system clock or global randomness directly: a [`clock::Clock`] and seeds
//!   are injected, so every test and simulation replays exactly.
//! - Nothing is dropped: events are append-only; rejected ones stay visible with their code.
//! - Portable: no Linux-only APIs, no Tauri; the shell calls into [`device::Device`].

pub mod ble;
pub mod blobs;
pub mod clock;
pub mod device;
pub mod outbox;
pub mod proof;
pub mod reroute;
pub mod sync;
pub mod testing;
pub mod transport;
#[cfg(feature = "ts")]
pub mod ts_export;

pub use clock::{Clock, ManualClock, SystemClock, TokioClock};
pub use device::{Device, DeviceError};
pub use outbox::{AppendOutcome, Identity, Outbox, OutboxError, Refusal};
pub use sync::{RoundOutcome, SyncConfig, SyncEngine, SyncStatus};
pub use transport::faulty::{FaultProfile, FaultyTransport};
pub use transport::http::HttpTransport;
pub use transport::{Transport, TransportError};
