//! Business-intent keys and payload fingerprints.
//!
//! Idempotency keys on *what the event means*, never on transport ids: a retried upload, a double
//! tap and a re-encoded event all carry the same intent key. The fingerprint is a SHA-256 over a
//! canonical encoding of the business payload (object keys sorted, no whitespace), so "same
//! intent, same payload" is a duplicate and "same intent, different payload" is a conflict.

use crate::event::EventPayload;
use crate::ids::DeviceId;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The intent key of a payload. Device-local observations (beacons, location fixes) include the
/// device, because two devices seeing the same beacon are two facts.
pub fn intent_key(payload: &EventPayload, device: &DeviceId) -> String {
    use EventPayload::*;
    match payload {
        ParcelScanned(e) => format!("scan:{}:{}", e.parcel, e.phase.code()),
        BeaconSighted(e) => format!(
            "beacon:{device}:{}:{}:{}",
            match e.protocol {
                crate::event::BeaconProtocol::IBeacon => "ibeacon",
                crate::event::BeaconProtocol::EddystoneUid => "eddystone_uid",
            },
            e.beacon_id,
            e.window_start_ms
        ),
        ArrivedAtStop(e) => format!("arrive:{}:{}", e.stop_id, e.attempt),
        DeliveryAttempted(e) => format!("attempt:{}:{}", e.stop_id, e.attempt),
        ProofCaptured(e) => format!("proof:{}:{}", e.stop_id, e.attempt),
        LocationFixed(e) => format!("location:{device}:{}", e.fix_time_ms),
        RouteReplanned(e) => format!("replan:{}:{}", e.route_id, e.inputs_digest),
        NoteAdded(e) => format!("note:{}:{}", e.stop_id, e.note_id),
        AccessNotesEdited(e) => format!(
            "access_notes:{}:{}:{}",
            e.stop_id,
            e.actor,
            e.version.get(&e.actor).copied().unwrap_or(0)
        ),
        RouteAssigned(e) => format!("assign:{}:{}", e.route_id, e.version),
        StopReassigned(e) => format!("reassign:{}:{}", e.stop_id, e.to_route),
        StopRescheduled(e) => {
            format!(
                "reschedule:{}:{}:{}",
                e.stop_id, e.window.start_ms, e.window.end_ms
            )
        }
        StopCancelled(e) => format!("cancel:{}", e.stop_id),
        EscalationResolved(e) => format!("resolve:{}", e.escalation_id),
    }
}

/// Canonical bytes of any serialisable value: JSON with object keys sorted and no whitespace.
pub fn canonical_json<T: serde::Serialize>(value: &T) -> Vec<u8> {
    // Serialising our own types to a Value cannot fail (no non-string map keys, no I/O).
    let v = serde_json::to_value(value).unwrap_or(Value::Null);
    let mut out = Vec::with_capacity(256);
    write_canonical(&v, &mut out);
    out
}

fn write_canonical(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (k, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json(k, out);
                out.push(b':');
                write_canonical(item, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        scalar => write_json(scalar, out),
    }
}

/// A string or scalar as compact JSON (the same bytes as its `Display`), appended in place.
fn write_json<T: serde::Serialize + ?Sized>(v: &T, out: &mut Vec<u8>) {
    // Writing a string or a JSON scalar into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, v);
}

/// Hex SHA-256 of the canonical business payload (kind and payload; never ids, times or seqs).
pub fn fingerprint(payload: &EventPayload) -> String {
    hex::encode(Sha256::digest(canonical_json(payload)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::*;
    use crate::ids::*;

    fn stop() -> StopId {
        StopId::from_parts(1, [1; 10])
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_depth() {
        let v: Value =
            serde_json::from_str(r#"{"b":1,"a":{"z":[{"y":1,"x":2}],"c":null}}"#).unwrap();
        assert_eq!(
            String::from_utf8(canonical_json(&v)).unwrap(),
            r#"{"a":{"c":null,"z":[{"x":2,"y":1}]},"b":1}"#
        );
    }

    /// The first, allocation-heavy encoder: the bytes every stored fingerprint was made from.
    fn reference_canonical(v: &Value, out: &mut Vec<u8>) {
        match v {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                out.push(b'{');
                for (i, k) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    out.extend_from_slice(Value::String(k.clone()).to_string().as_bytes());
                    out.push(b':');
                    reference_canonical(&map[k], out);
                }
                out.push(b'}');
            }
            Value::Array(items) => {
                out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    reference_canonical(item, out);
                }
                out.push(b']');
            }
            scalar => out.extend_from_slice(scalar.to_string().as_bytes()),
        }
    }

    #[test]
    fn canonical_json_is_byte_for_byte_the_reference_encoding() {
        let samples = [
            r#"{"q\"k":"a\u0001\n\u00e9\ud83d\ude00","n":-0.1,"i":18446744073709551615,"t":true,"e":[],"z":null}"#,
            r#"{"b":[{"y":1.5e300,"x":-7}],"a":{"\u00e9":"</script>","A":""}}"#,
            r#"[1,"two",{"c":3,"b":[false,{}]}]"#,
        ];
        for s in samples {
            let v: Value = serde_json::from_str(s).unwrap();
            let mut want = Vec::new();
            reference_canonical(&v, &mut want);
            assert_eq!(canonical_json(&v), want, "{s}");
        }
        let p = EventPayload::NoteAdded(NoteAdded {
            stop_id: stop(),
            note_id: uuid::Uuid::from_u128(7),
            text: "Hund im Hof, \"Klingel\" defekt \u{1F415}".to_owned(),
        });
        let mut want = Vec::new();
        reference_canonical(&serde_json::to_value(&p).unwrap(), &mut want);
        assert_eq!(canonical_json(&p), want);
    }

    #[test]
    fn attempt_key_names_stop_and_number_only() {
        let p = EventPayload::DeliveryAttempted(DeliveryAttempted {
            stop_id: stop(),
            attempt: 2,
            outcome: AttemptOutcome::Failed {
                reason: crate::FailureReason::NoAccess,
                detail: None,
            },
        });
        let d = DeviceId::from_parts(1, [2; 10]);
        assert_eq!(intent_key(&p, &d), format!("attempt:{}:2", stop()));
    }

    #[test]
    fn different_outcome_same_intent_has_different_fingerprint() {
        let mk = |outcome| {
            EventPayload::DeliveryAttempted(DeliveryAttempted {
                stop_id: stop(),
                attempt: 1,
                outcome,
            })
        };
        let a = mk(AttemptOutcome::Delivered {
            method: DeliveryMethod::ParcelLocker,
            recipient: None,
        });
        let b = mk(AttemptOutcome::Failed {
            reason: crate::FailureReason::LockerFull,
            detail: None,
        });
        let d = DeviceId::from_parts(1, [2; 10]);
        assert_eq!(intent_key(&a, &d), intent_key(&b, &d));
        assert_ne!(fingerprint(&a), fingerprint(&b));
    }
}
