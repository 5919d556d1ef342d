//! The sync status the UI shows at a glance, published on a `tokio::sync::watch` channel.

use super::breaker::BreakerState;
use crate::outbox::SettledProblem;
use doorstep_shared::FailureClass;
use serde::{Deserialize, Serialize};

#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export_to = "core/"))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Connectivity {
    /// No request made yet.
    #[default]
    Unknown,
    /// The last request got an HTTP answer.
    Online,
    /// The last request got no answer.
    Offline,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export_to = "core/"))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SyncStatus {
    pub connectivity: Connectivity,
    /// Events not yet settled by the server.
    pub queued: u64,
    pub oldest_unsynced_age_ms: Option<u64>,
    pub total_events: u64,
    pub last_success_ms: Option<u64>,
    pub last_attempt_ms: Option<u64>,
    pub last_error: Option<String>,
    pub last_failure_class: Option<FailureClass>,
    /// Rejected and conflicting events, newest first, with the server's code.
    pub rejected: Vec<SettledProblem>,
    pub breaker: BreakerState,
    /// When the engine will try again after a failure (device clock, Unix ms).
    pub next_attempt_at_ms: Option<u64>,
    /// `device clock - server clock`, as last measured.
    pub clock_offset_ms: Option<i64>,
    /// The server no longer knows this device's token: enroll again.
    pub needs_reenroll: bool,
    /// A terminal problem that stops automatic sync until someone acts.
    pub blocked: Option<String>,
    pub pull_cursor: u64,
    /// Proof-of-delivery blobs (photos, signatures) queued but not yet on the server.
    pub photos_pending: u64,
}

impl Default for SyncStatus {
    fn default() -> Self {
        Self {
            connectivity: Connectivity::Unknown,
            queued: 0,
            oldest_unsynced_age_ms: None,
            total_events: 0,
            last_success_ms: None,
            last_attempt_ms: None,
            last_error: None,
            last_failure_class: None,
            rejected: Vec::new(),
            breaker: BreakerState::Closed {
                consecutive_failures: 0,
            },
            next_attempt_at_ms: None,
            clock_offset_ms: None,
            needs_reenroll: false,
            blocked: None,
            pull_cursor: 0,
            photos_pending: 0,
        }
    }
}
