//! # doorstep-store
//!
//! The server's core without a database. It holds the storage trait ([`Store`]) with the two
//! narrow units of work a backend implements ([`PushUnit`], [`OfficeUnit`]), the values that
//! cross it ([`model`]), and the algorithms written once above every backend: push
//! ([`push::push`]), office commands ([`office::record_office_event`]) and the pure decisions
//! they call ([`merge`], [`evidence`]).
//!
//! **Invariant:** this crate knows no database driver. A backend stores and reads what it is
//! told; it never decides an outcome, so SQLite and PostgreSQL cannot drift apart.

pub mod dashboard;
pub mod device_queue;
pub mod error;
pub mod evidence;
pub mod intake;
pub mod merge;
pub mod model;
pub mod office;
pub mod office_rules;
pub mod push;
pub mod store;

pub use error::{StoreError, StoreResult};
pub use model::{
    DeviceAuth, DispatcherAuth, EscalationRecord, FirstAttemptStats, IdempotencyState,
    IntegrationAuth, LoggedProof, OfficeEvent, OfficeOutcome, PushContext, PushEffects,
    PushOutcome, RouteAccess, SessionRecord, ShipperId,
};
pub use push::clock_offset_ms;
pub use store::{
    ChangeSignal, DeviceEventRow, DeviceSyncUpdate, EvidenceLog, LocationLog,
    MAX_PEER_MESSAGE_BYTES, OfficeEventRow, OfficeUnit, OfficeWork, OfficeWrite, PeerSink,
    PushFacts, PushScope, PushUnit, PushWork, Store, StoredOutcome, UploadSessions,
};
