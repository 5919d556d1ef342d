//! Proof-of-delivery evidence on the server: the push-time signature check (pure, called by
//! [`crate::merge`]) and the dispute re-verification behind `doorstep-server verify-proof` and
//! `GET /v1/dispatch/stops/{id}/proof`.
//!
//! At push, a proof whose signature does not verify against its recomputed statement is
//! rejected with `invalid_signature` (quarantined and escalated like every rejection). The
//! re-verification also checks that the signing key is the device's registered key and that
//! each proof links the previous evidence statement of the same device (the hash chain).

use doorstep_shared::dashboard::{ProofReport, ProofVerdict};
use doorstep_shared::event::{EventEnvelope, EventPayload, ProofCaptured};
use doorstep_shared::evidence::{self, EvidenceError};
use doorstep_shared::{BlobDigest, DeviceId, EventId, HlcStamp, ProblemCode, StopId};

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

/// The push-time chain check: `Some(detail)` when a signed proof does not link to `head`, the
/// statement digest of the device's previous logged proof (`None`: not asked for, skip).
pub fn chain_check(env: &EventEnvelope, head: Option<&str>) -> Option<String> {
    let EventPayload::ProofCaptured(proof) = &env.payload else {
        return None;
    };
    proof.signature.as_ref()?;
    let head = head?;
    let e = evidence::check_link(proof, head).err()?;
    tracing::warn!(stop_id = %proof.stop_id, device_seq = env.device_seq, error = %e, "proof chain rejected");
    Some(format!(
        "{e} (proof for attempt {} at device_seq {}: evidence of this device is missing or reordered)",
        proof.attempt, env.device_seq
    ))
}

/// The link a logged proof adds to its device's chain: its statement digest when it is signed
/// and the signature verifies — the rule push applies (see `merge`), so a statement with a bad
/// signature, or an unsigned proof, never becomes the head the next proof must link to. Stores
/// use it to find a proof's `previous_statement`.
pub fn chain_link(device: &DeviceId, hlc: HlcStamp, payload: &EventPayload) -> Option<String> {
    let EventPayload::ProofCaptured(proof) = payload else {
        return None;
    };
    proof.signature.as_ref()?;
    evidence::verify(device, hlc, proof, None).ok()?;
    payload.evidence_link().map(str::to_owned)
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
    /// The chain head this proof had to link: the [`chain_link`] of the device's latest earlier
    /// proof that has one, empty for its first.
    pub previous_statement: String,
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
