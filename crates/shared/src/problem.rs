//! Stable machine codes for everything that can go wrong, and the RFC 9457 problem document
//! that carries them. A code never changes meaning once released; clients branch on `code`.

use serde::{Deserialize, Serialize};

/// Every code the server can put in a problem document or a per-event result.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemCode {
    // --- whole-request problems ---
    /// The body is not valid JSON for this endpoint.
    MalformedRequest,
    /// `Content-Type` is not `application/json`.
    UnsupportedMediaType,
    /// `Content-Encoding` is not identity, gzip or zstd, or the body does not decode.
    BadContentEncoding,
    /// The body (compressed or decompressed) or the batch is larger than allowed.
    PayloadTooLarge,
    /// An event carries a schema version this server does not read.
    UnsupportedSchemaVersion,
    /// No bearer token, or one the server does not know.
    Unauthorized,
    /// The device pushed events claiming another device's id.
    DeviceMismatch,
    /// The caller may not read this resource (another courier's route).
    Forbidden,
    NotFound,
    /// The path exists, but not with this HTTP method (the allowed ones are in `Allow`).
    MethodNotAllowed,
    /// The enrollment code is unknown, used or expired.
    EnrollmentCodeInvalid,
    RateLimited,
    /// The server is temporarily unable to serve; retry after `Retry-After`.
    Unavailable,
    Internal,
    /// A dispatcher command came without an `Idempotency-Key` header.
    IdempotencyKeyMissing,
    /// The first request with this `Idempotency-Key` is still being processed.
    IdempotencyKeyInProgress,
    /// The `Idempotency-Key` was used before with a different request body.
    IdempotencyKeyReused,
    // --- per-event result codes ---
    /// The event's fields are invalid whatever the state (quarantined).
    InvalidEvent,
    /// The event's `intent_key` is not the one its payload defines (quarantined).
    IntentKeyMismatch,
    /// A device sent a kind only dispatcher commands produce (quarantined).
    OfficeKindFromDevice,
    /// The event would move the stop illegally (quarantined and escalated).
    IllegalTransition,
    /// Same business intent, different payload: stored as a fact and escalated.
    IntentConflict,
    /// A proof of delivery whose evidence signature does not verify (quarantined, escalated).
    InvalidSignature,
    /// `device_seq` skipped ahead; resume from `last_applied_seq + 1`.
    SequenceGap,
    /// A transient server failure; the event was not applied, retry it.
    StorageBusy,
    /// Applied, but the device clock is off by more than the bound (flagged for dispatch).
    ClockSkew,
    /// A late replay: applied, but it happened more than an hour before it arrived.
    LateReplay,
    /// A signed proof whose `prev_link` is not the statement digest of the device's previous
    /// proof: evidence is missing or was reordered (quarantined, escalated).
    EvidenceChainBroken,
    /// The event reuses the `event_id` of an already logged event with another intent: event
    /// ids must be unique (quarantined and escalated).
    EventIdReused,
    /// A scan of a parcel that is planned for another stop: a mis-sort, escalated; it does not
    /// take the parcel's scan away from the stop it belongs to.
    ParcelMisSorted,
    /// An order a shipper sent is incomplete or wrong; `detail` names the field.
    InvalidOrder,
    // --- blob upload problems (`/v1/uploads`) ---
    /// No upload session with this id; create a new one.
    UploadNotFound,
    /// The upload session expired without progress; create a new one from offset 0.
    UploadExpired,
    /// A chunk was sent at the wrong offset; the right one is in `Upload-Offset`.
    UploadOffsetMismatch,
    /// A chunk's bytes do not match its `Upload-Checksum`.
    ChecksumMismatch,
    /// The completed upload does not hash to the declared digest; the session is discarded.
    DigestMismatch,
}

impl ProblemCode {
    /// The HTTP status a whole-request problem with this code answers with.
    pub fn http_status(self) -> u16 {
        use ProblemCode::*;
        match self {
            MalformedRequest | BadContentEncoding | IdempotencyKeyMissing => 400,
            Unauthorized | EnrollmentCodeInvalid => 401,
            DeviceMismatch | Forbidden => 403,
            NotFound => 404,
            MethodNotAllowed => 405,
            IdempotencyKeyInProgress | IntentConflict => 409,
            PayloadTooLarge => 413,
            UnsupportedMediaType => 415,
            UnsupportedSchemaVersion
            | IdempotencyKeyReused
            | InvalidEvent
            | IntentKeyMismatch
            | OfficeKindFromDevice
            | IllegalTransition
            | InvalidSignature
            | EvidenceChainBroken
            | EventIdReused
            | ParcelMisSorted
            | InvalidOrder
            | DigestMismatch => 422,
            UploadNotFound => 404,
            UploadExpired => 410,
            UploadOffsetMismatch => 409,
            // tus's "checksum mismatch" status.
            ChecksumMismatch => 460,
            RateLimited => 429,
            Unavailable | StorageBusy => 503,
            SequenceGap | ClockSkew | LateReplay => 200,
            Internal => 500,
        }
    }

    pub fn as_str(self) -> &'static str {
        use ProblemCode::*;
        match self {
            MalformedRequest => "malformed_request",
            UnsupportedMediaType => "unsupported_media_type",
            BadContentEncoding => "bad_content_encoding",
            PayloadTooLarge => "payload_too_large",
            UnsupportedSchemaVersion => "unsupported_schema_version",
            Unauthorized => "unauthorized",
            DeviceMismatch => "device_mismatch",
            Forbidden => "forbidden",
            NotFound => "not_found",
            MethodNotAllowed => "method_not_allowed",
            EnrollmentCodeInvalid => "enrollment_code_invalid",
            RateLimited => "rate_limited",
            Unavailable => "unavailable",
            Internal => "internal",
            IdempotencyKeyMissing => "idempotency_key_missing",
            IdempotencyKeyInProgress => "idempotency_key_in_progress",
            IdempotencyKeyReused => "idempotency_key_reused",
            InvalidEvent => "invalid_event",
            IntentKeyMismatch => "intent_key_mismatch",
            OfficeKindFromDevice => "office_kind_from_device",
            IllegalTransition => "illegal_transition",
            InvalidSignature => "invalid_signature",
            IntentConflict => "intent_conflict",
            SequenceGap => "sequence_gap",
            StorageBusy => "storage_busy",
            ClockSkew => "clock_skew",
            LateReplay => "late_replay",
            EvidenceChainBroken => "evidence_chain_broken",
            EventIdReused => "event_id_reused",
            ParcelMisSorted => "parcel_mis_sorted",
            InvalidOrder => "invalid_order",
            UploadNotFound => "upload_not_found",
            UploadExpired => "upload_expired",
            UploadOffsetMismatch => "upload_offset_mismatch",
            ChecksumMismatch => "checksum_mismatch",
            DigestMismatch => "digest_mismatch",
        }
    }

    /// A short human title.
    pub fn title(self) -> &'static str {
        use ProblemCode::*;
        match self {
            MalformedRequest => "The request body is malformed",
            UnsupportedMediaType => "Unsupported content type",
            BadContentEncoding => "Unsupported or corrupt content encoding",
            PayloadTooLarge => "Payload too large",
            UnsupportedSchemaVersion => "Unsupported event schema version",
            Unauthorized => "Missing or invalid credentials",
            DeviceMismatch => "A device may only push its own events",
            Forbidden => "Not allowed",
            NotFound => "Not found",
            MethodNotAllowed => "Method not allowed",
            EnrollmentCodeInvalid => "Enrollment code is invalid, used or expired",
            RateLimited => "Too many requests",
            Unavailable => "Temporarily unavailable",
            Internal => "Internal server error",
            IdempotencyKeyMissing => "Idempotency-Key header is required",
            IdempotencyKeyInProgress => "A request with this Idempotency-Key is in progress",
            IdempotencyKeyReused => "Idempotency-Key was reused with a different request",
            InvalidEvent => "The event is invalid",
            IntentKeyMismatch => "The intent key does not match the payload",
            OfficeKindFromDevice => "This event kind comes only from dispatcher commands",
            IllegalTransition => "Illegal state transition",
            InvalidSignature => "Invalid evidence signature",
            IntentConflict => "Same intent, different payload",
            SequenceGap => "Device sequence gap",
            StorageBusy => "Storage temporarily busy",
            ClockSkew => "Device clock skew beyond bound",
            LateReplay => "Late replay",
            EvidenceChainBroken => "Evidence chain broken",
            EventIdReused => "Event id reused with another intent",
            ParcelMisSorted => "Parcel planned for another stop",
            InvalidOrder => "Invalid order",
            UploadNotFound => "No such upload session",
            UploadExpired => "Upload session expired",
            UploadOffsetMismatch => "Upload offset mismatch",
            ChecksumMismatch => "Chunk checksum mismatch",
            DigestMismatch => "Uploaded bytes do not match the digest",
        }
    }
}

impl std::fmt::Display for ProblemCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `application/problem+json` (RFC 9457), with the stable `code` extension member.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_uri: String,
    pub title: String,
    pub status: u16,
    pub code: ProblemCode,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Problem {
    pub fn new(code: ProblemCode, detail: impl Into<Option<String>>) -> Self {
        Self {
            type_uri: format!("urn:doorstep:problem:{}", code.as_str()),
            title: code.title().to_owned(),
            status: code.http_status(),
            code,
            detail: detail.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_str_matches_serde_name() {
        for code in [
            ProblemCode::MalformedRequest,
            ProblemCode::MethodNotAllowed,
            ProblemCode::IdempotencyKeyReused,
            ProblemCode::LateReplay,
            ProblemCode::EvidenceChainBroken,
            ProblemCode::EventIdReused,
            ProblemCode::ParcelMisSorted,
            ProblemCode::InvalidOrder,
            ProblemCode::UploadNotFound,
            ProblemCode::UploadExpired,
            ProblemCode::UploadOffsetMismatch,
            ProblemCode::ChecksumMismatch,
            ProblemCode::DigestMismatch,
        ] {
            assert_eq!(
                serde_json::to_string(&code).unwrap(),
                format!("\"{}\"", code.as_str())
            );
        }
    }

    #[test]
    fn problem_json_shape_is_pinned() {
        let p = Problem::new(ProblemCode::PayloadTooLarge, Some("limit 8 MiB".to_owned()));
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            r#"{"type":"urn:doorstep:problem:payload_too_large","title":"Payload too large","status":413,"code":"payload_too_large","detail":"limit 8 MiB"}"#
        );
    }
}
