//! The device's evidence key and hash chain, kept in the outbox.
//!
//! **Invariants:** the ed25519 secret is created once (at enrollment) and never leaves the
//! outbox file; a proof event is signed inside the same transaction that assigns its
//! `device_seq` and HLC stamp and advances the chain link, so two concurrent captures can never
//! fork the chain and the signed time is the event's own.

use super::{Outbox, OutboxError, meta_get, meta_set};
use doorstep_shared::event::{EventPayload, ProofCaptured};
use doorstep_shared::{DeviceId, HlcStamp, evidence};
use rand::RngCore;
use rusqlite::Connection;

const SECRET_KEY: &str = "evidence_secret";
const LINK_KEY: &str = "evidence_link";

fn secret(conn: &Connection) -> Result<Option<[u8; 32]>, OutboxError> {
    let Some(hex_secret) = meta_get(conn, SECRET_KEY)? else {
        return Ok(None);
    };
    hex::decode(hex_secret)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .map(Some)
        .ok_or(OutboxError::Decode {
            what: "evidence key",
            detail: "not 32 hex bytes".into(),
        })
}

impl Outbox {
    /// The device's evidence public key (hex), created on first use.
    pub fn evidence_public_key(&mut self) -> Result<String, OutboxError> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let key = match secret(&tx)? {
            Some(k) => k,
            None => {
                let mut k = [0u8; 32];
                rand::rng().fill_bytes(&mut k);
                meta_set(&tx, SECRET_KEY, &hex::encode(k))?;
                k
            }
        };
        tx.commit()?;
        Ok(evidence::public_key_hex(&key))
    }

    /// The digest of the device's last signed statement (empty before the first).
    pub fn evidence_link(&self) -> Result<String, OutboxError> {
        Ok(meta_get(&self.conn, LINK_KEY)?.unwrap_or_default())
    }
}

/// Signs an unsigned proof with the device key and advances the chain, inside `tx`. Other
/// payloads, already-signed proofs and devices without a key pass through unchanged.
pub(crate) fn seal(
    tx: &Connection,
    device: &DeviceId,
    hlc: HlcStamp,
    payload: EventPayload,
) -> Result<EventPayload, OutboxError> {
    let EventPayload::ProofCaptured(mut proof) = payload else {
        return Ok(payload);
    };
    if proof.signature.is_none()
        && let Some(key) = secret(tx)?
    {
        let prev = meta_get(tx, LINK_KEY)?.unwrap_or_default();
        let sig = evidence::sign(&key, device, hlc, &proof, &prev);
        meta_set(tx, LINK_KEY, &sig.statement_digest)?;
        proof.signature = Some(sig);
    }
    Ok(EventPayload::ProofCaptured(proof))
}

/// The payload without its evidence signature: what intent dedupe compares (a double tap signs
/// at another HLC time but is the same fact).
pub(crate) fn unsigned(payload: &EventPayload) -> EventPayload {
    match payload {
        EventPayload::ProofCaptured(p) => EventPayload::ProofCaptured(ProofCaptured {
            signature: None,
            ..p.clone()
        }),
        other => other.clone(),
    }
}

impl crate::device::Device {
    /// The device's evidence public key (hex), created on first use; sent at enrollment.
    pub fn evidence_public_key(&self) -> Result<String, crate::device::DeviceError> {
        self.with_outbox(|o| o.evidence_public_key())
    }
}
