//! Proof of presence: beacons registered per stop, locker and depot; a presence score per
//! attempt from debounced sightings (and GPS dwell where present); and the classification of
//! "failed — customer absent" attempts without presence evidence as no real attempt, kept
//! apart from real failed attempts in first-attempt metrics.
//!
//! The scorer lives in [`doorstep_shared::presence`] so the server computes the same score from
//! the synced sightings; these are the device's paths to it.

pub use doorstep_shared::presence::{
    AttemptClass, BeaconRegistry, FirstAttemptMetrics, GpsDwell, PRESENCE_THRESHOLD, PresenceScore,
    Site, classify, score,
};
