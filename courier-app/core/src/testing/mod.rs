//! Test support shared by this crate's tests, the simulator and field-test mode: an in-process
//! fake of the sync server's device API that implements the push semantics of the brief.

mod fake_server;

pub use fake_server::{FakeMode, FakeServer, FakeStats, StoredFact};
