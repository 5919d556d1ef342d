//! The one error type that crosses the IPC boundary: `{"code": "...", "message": "..."}`.
//! Codes are stable (the UI branches on them); messages are for people.

use courier_core::outbox::Refusal;
use courier_core::reroute::day::DayError;
use courier_core::reroute::{RerouteError, ReviewError};
use courier_core::sync::EnrollError;
use courier_core::{DeviceError, TransportError};
use serde::Serialize;

#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export_to = "app/"))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The device has no identity yet: show enrollment.
    NotEnrolled,
    /// An argument the UI sent is malformed (bad barcode, bad URL, empty code).
    InvalidInput,
    /// The stop or parcel is not on this device's routes.
    NotFound,
    /// The state machine refused the command (e.g. delivering a cancelled stop).
    Refused,
    /// Enrollment could not reach the server; trying again may work.
    Unreachable,
    /// The server refused the enrollment (bad or used code).
    EnrollmentRefused,
    /// The local outbox failed (disk full, corrupt file): nothing was recorded.
    Storage,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export_to = "app/"))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct IpcError {
    pub code: ErrorCode,
    pub message: String,
}

impl IpcError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl From<DeviceError> for IpcError {
    fn from(e: DeviceError) -> Self {
        Self::new(ErrorCode::Storage, e.to_string())
    }
}

impl From<Refusal> for IpcError {
    fn from(r: Refusal) -> Self {
        let code = match r {
            Refusal::NotEnrolled => ErrorCode::NotEnrolled,
            Refusal::UnknownStop { .. } | Refusal::UnknownParcel { .. } => ErrorCode::NotFound,
            _ => ErrorCode::Refused,
        };
        Self::new(code, r.to_string())
    }
}

impl From<EnrollError> for IpcError {
    fn from(e: EnrollError) -> Self {
        let code = match e {
            EnrollError::Transient(_) => ErrorCode::Unreachable,
            EnrollError::Refused(_) => ErrorCode::EnrollmentRefused,
            EnrollError::Device(_) => ErrorCode::Storage,
        };
        Self::new(code, e.to_string())
    }
}

impl From<TransportError> for IpcError {
    fn from(e: TransportError) -> Self {
        Self::new(ErrorCode::InvalidInput, e.to_string())
    }
}

impl From<RerouteError> for IpcError {
    fn from(e: RerouteError) -> Self {
        let code = match e {
            RerouteError::NothingToPlan => ErrorCode::Refused,
            RerouteError::Invalid(_) => ErrorCode::InvalidInput,
        };
        Self::new(code, e.to_string())
    }
}

impl From<ReviewError> for IpcError {
    fn from(e: ReviewError) -> Self {
        match e {
            ReviewError::Device(d) => d.into(),
            other => Self::new(ErrorCode::NotFound, other.to_string()),
        }
    }
}

impl From<DayError> for IpcError {
    fn from(e: DayError) -> Self {
        Self::new(ErrorCode::InvalidInput, e.to_string())
    }
}

pub type IpcResult<T> = Result<T, IpcError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wire_shape_is_pinned() {
        let e = IpcError::new(ErrorCode::NotEnrolled, "enroll first");
        assert_eq!(
            serde_json::to_string(&e).expect("serialise"),
            r#"{"code":"not_enrolled","message":"enroll first"}"#
        );
        let e: IpcError = Refusal::UnknownParcel {
            parcel: "PX-1".into(),
        }
        .into();
        assert_eq!(e.code, ErrorCode::NotFound);
        assert_eq!(
            serde_json::to_value(ErrorCode::EnrollmentRefused).expect("serialise"),
            "enrollment_refused"
        );
    }

    #[test]
    fn rerouting_failures_map_to_stable_codes() {
        assert_eq!(
            IpcError::from(RerouteError::NothingToPlan).code,
            ErrorCode::Refused
        );
        let stale = IpcError::from(ReviewError::NotOnScreen {
            digest: "ab12".into(),
        });
        assert_eq!(stale.code, ErrorCode::NotFound);
        assert!(stale.message.contains("new re-plan"), "{}", stale.message);
        let bad_offset = IpcError::from(DayError::BadOffset { minutes: 5000 });
        assert_eq!(bad_offset.code, ErrorCode::InvalidInput);
    }
}
