//! What the push benches share: the server process, bench devices and their load, statistics.
#![allow(dead_code)] // each bench binary uses a different part

pub mod devices;
pub mod server;
pub mod stats;
