//! Proof-of-delivery evidence on the server: the push-time signature check (pure, called by
//! [`crate::merge`]) and the dispute re-verification behind `doorstep-server verify-proof` and
//! `GET /v1/dispatch/stops/{id}/proof`.
//!
//! At push, a proof whose signature does not verify against its recomputed statement is
//! rejected with `invalid_signature` (quarantined and escalated like every rejection). The
//! re-verification also checks that the signing key is the device's registered key and that
//! each proof links the previous evidence statement of the same device (the hash chain).

use doorstep_shared::event::{EventEnvelope, EventPayload, ProofCaptured};
use doorstep_shared::evidence::{self, EvidenceError};
use doorstep_shared::{BlobDigest, DeviceId, EventId, HlcStamp, ProblemCode, StopId};
use serde::Serialize;

/// The push-time check: `Some` when the event must be rejected.
pub fn push_check(env: &EventEnvelope) -> Option<(ProblemCode, String)> {
    let EventPayload::ProofCaptured(proof) = &env.payload else {
        return None;
    };
    proof.signature.as_ref()?;
    match evidence::verify(&env.device_id, env.hlc, proof, None) {
        Ok(_) => None,
        Err(e) => {
            tracing::warn!(stop_id = %proof.stop_id, error = %e, "proof signature rejected");
            Some((ProblemCode::InvalidSignature, e.to_string()))
        }
    }
}

/// One logged proof event with what the store knows around it.
#[derive(Clone, Debug)]
pub struct LoggedProof {
    pub event_id: EventId,
    pub device_id: DeviceId,
    pub device_seq: u64,
    pub hlc: HlcStamp,
    /// The push outcome recorded for the event (`applied`, `rejected`, …).
    pub status: String,
    pub proof: ProofCaptured,
    /// The device's public key registered at enrollment.
    pub registered_key: Option<String>,
    /// The statement digest of the device's previous logged proof, empty for its first.
    pub previous_statement: String,
}

/// The verdict on one proof.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProofVerdict {
    pub event_id: EventId,
    pub device_id: DeviceId,
    pub device_seq: u64,
    pub attempt: u32,
    pub status: String,
    /// `valid`, `unsigned`, or why it failed.
    pub signature: String,
    /// `intact`, `not_signed`, or where it broke.
    pub chain: String,
    pub photos: Vec<BlobDigest>,
    pub thumbnails: Vec<BlobDigest>,
    /// Digests whose blob has not reached the server yet ("photo pending").
    pub pending_blobs: Vec<BlobDigest>,
}

/// The evidence of one stop, re-verified.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProofReport {
    pub stop_id: StopId,
    /// True when there is at least one proof and every one verifies with an intact chain.
    pub verified: bool,
    pub proofs: Vec<ProofVerdict>,
}

/// Re-verifies every proof of a stop. `stored` tells whether a blob is on the server.
pub fn verify_stop(
    stop_id: StopId,
    logged: &[LoggedProof],
    stored: &dyn Fn(&BlobDigest) -> bool,
) -> ProofReport {
    let proofs: Vec<ProofVerdict> = logged.iter().map(|l| verdict(l, stored)).collect();
    let verified = !proofs.is_empty()
        && proofs
            .iter()
            .all(|p| p.signature == "valid" && p.chain == "intact");
    ProofReport {
        stop_id,
        verified,
        proofs,
    }
}

fn verdict(l: &LoggedProof, stored: &dyn Fn(&BlobDigest) -> bool) -> ProofVerdict {
    let signature = match l.registered_key.as_deref() {
        None if l.proof.signature.is_some() => "invalid: the device registered no key".to_owned(),
        reg => match evidence::verify(&l.device_id, l.hlc, &l.proof, reg) {
            Ok(_) => "valid".to_owned(),
            Err(EvidenceError::Unsigned) => "unsigned".to_owned(),
            Err(e) => format!("invalid: {e}"),
        },
    };
    let chain = if l.proof.signature.is_none() {
        "not_signed".to_owned()
    } else {
        match evidence::check_link(&l.proof, &l.previous_statement) {
            Ok(()) => "intact".to_owned(),
            Err(e) => format!("broken: {e}"),
        }
    };
    let pending_blobs = l
        .proof
        .thumbnails
        .iter()
        .chain(&l.proof.photos)
        .filter(|d| !stored(d))
        .cloned()
        .collect();
    ProofVerdict {
        event_id: l.event_id,
        device_id: l.device_id,
        device_seq: l.device_seq,
        attempt: l.proof.attempt,
        status: l.status.clone(),
        signature,
        chain,
        photos: l.proof.photos.clone(),
        thumbnails: l.proof.thumbnails.clone(),
        pending_blobs,
    }
}

/// Storage backends expose the proof events of a stop for re-verification.
pub trait EvidenceLog {
    /// Every logged proof event of `stop_id` (any outcome), in receive order.
    fn logged_proofs(&self, stop_id: StopId) -> crate::store::StoreResult<Vec<LoggedProof>>;
}
