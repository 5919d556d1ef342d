//! Signed evidence: the canonical statement a device signs for a proof of delivery, and its
//! verification.
//!
//! The statement binds the device, the stop and attempt, every photo and thumbnail digest, the
//! recipient, the app's own location fix, the event's hybrid-logical-clock stamp and the
//! previous statement of the same device (`prev_link`), so the evidence of one device forms a
//! hash chain: a changed photo digest, field or link changes the digest and breaks the
//! signature or the chain. Pure: the caller passes keys in; nothing here draws randomness.

use crate::event::{EvidenceSignature, GeoPoint, ProofCaptured};
use crate::hlc::HlcStamp;
use crate::ids::{BlobDigest, DeviceId, StopId};
use crate::intent::canonical_json;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// Version of the statement layout; part of the signed bytes.
pub const STATEMENT_VERSION: u32 = 1;

/// What a device signs for a proof of delivery.
#[derive(Serialize)]
struct Statement<'a> {
    v: u32,
    device_id: &'a DeviceId,
    stop_id: StopId,
    attempt: u32,
    photos: &'a [BlobDigest],
    thumbnails: &'a [BlobDigest],
    recipient_name: Option<&'a str>,
    location: Option<&'a GeoPoint>,
    hlc: HlcStamp,
    prev_link: &'a str,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EvidenceError {
    #[error("the proof carries no signature")]
    Unsigned,
    #[error("the statement digest does not match the proof's content (altered after signing)")]
    DigestMismatch,
    #[error("the public key is malformed")]
    BadKey,
    #[error("the signature does not verify")]
    BadSignature,
    #[error("the proof was signed with a key that is not the device's registered key")]
    KeyNotRegistered,
    #[error("evidence chain broken: expected link {expected:?}, found {found:?}")]
    ChainBroken { expected: String, found: String },
}

/// Hex SHA-256 of the canonical statement of `proof` (its signature field excluded).
pub fn statement_digest(
    device: &DeviceId,
    hlc: HlcStamp,
    proof: &ProofCaptured,
    prev_link: &str,
) -> String {
    let st = Statement {
        v: STATEMENT_VERSION,
        device_id: device,
        stop_id: proof.stop_id,
        attempt: proof.attempt,
        photos: &proof.photos,
        thumbnails: &proof.thumbnails,
        recipient_name: proof.recipient_name.as_deref(),
        location: proof.location.as_ref(),
        hlc,
        prev_link,
    };
    hex::encode(Sha256::digest(canonical_json(&st)))
}

/// Hex public key of a 32-byte ed25519 secret.
pub fn public_key_hex(secret: &[u8; 32]) -> String {
    hex::encode(SigningKey::from_bytes(secret).verifying_key().to_bytes())
}

/// Signs `proof` as evidence of `device` at `hlc`, linked to `prev_link`.
pub fn sign(
    secret: &[u8; 32],
    device: &DeviceId,
    hlc: HlcStamp,
    proof: &ProofCaptured,
    prev_link: &str,
) -> EvidenceSignature {
    let key = SigningKey::from_bytes(secret);
    let digest = statement_digest(device, hlc, proof, prev_link);
    let sig = key.sign(digest.as_bytes());
    EvidenceSignature {
        public_key: hex::encode(key.verifying_key().to_bytes()),
        statement_digest: digest,
        prev_link: prev_link.to_owned(),
        signature: hex::encode(sig.to_bytes()),
    }
}

/// Verifies the signature of `proof` against its recomputed statement. With `registered`, the
/// signing key must also be the device's registered key. Returns the statement digest (the
/// next link of the chain).
pub fn verify(
    device: &DeviceId,
    hlc: HlcStamp,
    proof: &ProofCaptured,
    registered: Option<&str>,
) -> Result<String, EvidenceError> {
    let sig = proof.signature.as_ref().ok_or(EvidenceError::Unsigned)?;
    if let Some(reg) = registered
        && !reg.eq_ignore_ascii_case(&sig.public_key)
    {
        return Err(EvidenceError::KeyNotRegistered);
    }
    let digest = statement_digest(device, hlc, proof, &sig.prev_link);
    if digest != sig.statement_digest {
        return Err(EvidenceError::DigestMismatch);
    }
    let key_bytes: [u8; 32] = hex::decode(&sig.public_key)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or(EvidenceError::BadKey)?;
    let key = VerifyingKey::from_bytes(&key_bytes).map_err(|_| EvidenceError::BadKey)?;
    let sig_bytes: [u8; 64] = hex::decode(&sig.signature)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or(EvidenceError::BadSignature)?;
    key.verify(digest.as_bytes(), &Signature::from_bytes(&sig_bytes))
        .map_err(|_| EvidenceError::BadSignature)?;
    Ok(digest)
}

/// Checks that `proof` links to `expected_prev` (the previous statement digest of the same
/// device, empty for its first evidence).
pub fn check_link(proof: &ProofCaptured, expected_prev: &str) -> Result<(), EvidenceError> {
    let found = proof
        .signature
        .as_ref()
        .map(|s| s.prev_link.clone())
        .unwrap_or_default();
    if found == expected_prev {
        Ok(())
    } else {
        Err(EvidenceError::ChainBroken {
            expected: expected_prev.to_owned(),
            found,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proof() -> ProofCaptured {
        ProofCaptured {
            stop_id: StopId::from_parts(1_700_000_000_000, [7; 10]),
            attempt: 1,
            photos: vec![BlobDigest::of(b"photo")],
            thumbnails: vec![BlobDigest::of(b"thumb")],
            recipient_name: Some("A. Neighbour".into()),
            location: Some(GeoPoint {
                lat: 52.52,
                lon: 13.405,
            }),
            signature: None,
        }
    }

    fn signed(prev: &str) -> (DeviceId, HlcStamp, ProofCaptured) {
        let dev = DeviceId::from_parts(1_700_000_000_000, [1; 10]);
        let hlc = HlcStamp {
            wall_ms: 1_700_000_000_500,
            logical: 2,
        };
        let mut p = proof();
        p.signature = Some(sign(&[9; 32], &dev, hlc, &p, prev));
        (dev, hlc, p)
    }

    #[test]
    fn a_signed_proof_verifies_with_its_registered_key() {
        let (dev, hlc, p) = signed("");
        let reg = public_key_hex(&[9; 32]);
        assert!(verify(&dev, hlc, &p, Some(&reg)).is_ok());
        assert_eq!(
            verify(&dev, hlc, &p, Some(&public_key_hex(&[8; 32]))),
            Err(EvidenceError::KeyNotRegistered)
        );
    }

    #[test]
    fn a_changed_photo_digest_is_detected() {
        let (dev, hlc, mut p) = signed("");
        p.photos[0] = BlobDigest::of(b"another photo");
        assert_eq!(
            verify(&dev, hlc, &p, None),
            Err(EvidenceError::DigestMismatch)
        );
    }

    #[test]
    fn a_changed_statement_with_a_recomputed_digest_fails_the_signature() {
        let (dev, hlc, mut p) = signed("");
        p.recipient_name = Some("Someone Else".into());
        let d = statement_digest(&dev, hlc, &p, "");
        if let Some(s) = p.signature.as_mut() {
            s.statement_digest = d;
        }
        assert_eq!(
            verify(&dev, hlc, &p, None),
            Err(EvidenceError::BadSignature)
        );
        let (dev, _, p) = signed("");
        let later = HlcStamp {
            wall_ms: 1_700_000_009_000,
            logical: 0,
        };
        assert_eq!(
            verify(&dev, later, &p, None),
            Err(EvidenceError::DigestMismatch)
        );
    }

    #[test]
    fn a_changed_chain_link_is_detected() {
        let (dev, hlc, first) = signed("");
        let link = verify(&dev, hlc, &first, None).unwrap_or_default();
        let (_, _, second) = signed(&link);
        assert!(check_link(&second, &link).is_ok());
        let mut forged = second.clone();
        if let Some(s) = forged.signature.as_mut() {
            s.prev_link = "00".repeat(32);
        }
        assert_eq!(
            verify(&dev, hlc, &forged, None),
            Err(EvidenceError::DigestMismatch)
        );
        assert!(matches!(
            check_link(&forged, &link),
            Err(EvidenceError::ChainBroken { .. })
        ));
        assert!(check_link(&second, "").is_err());
    }
}
