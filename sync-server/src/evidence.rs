//! Proof-of-delivery evidence on the server: the push-time signature check (pure, called by
//! [`crate::merge`]) and the dispute re-verification behind `doorstep-server verify-proof` and
//! `GET /v1/dispatch/stops/{id}/proof`.
//!
//! At push, a proof whose signature does not verify against its recomputed statement is
//! rejected with `invalid_signature` (quarantined and escalated like every rejection). The
//! re-verification also checks that the signing key is the device's registered key and that
//! each proof links the previous evidence statement of the same device (the hash chain).

use doorstep_shared::dashboard::{ProofReport, ProofVerdict};
use doorstep_shared::evidence::{self, EvidenceError};
use doorstep_shared::{BlobDigest, StopId};
pub use doorstep_store::evidence::{chain_check, chain_link, push_check};
pub use doorstep_store::{EvidenceLog, LoggedProof};

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
