//! The push-time evidence rules: a signed proof must verify against its recomputed statement,
//! and must link the device's chain head. Pure; [`crate::merge`] calls them, and stores use
//! [`chain_link`] to find a proof's previous statement.

use doorstep_shared::event::{EventEnvelope, EventPayload};
use doorstep_shared::evidence;
use doorstep_shared::{DeviceId, HlcStamp, ProblemCode};

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
