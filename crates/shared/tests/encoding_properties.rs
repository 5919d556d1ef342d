//! Intent keys and fingerprints must not depend on how an event was encoded: a retried upload,
//! a proxy that reorders JSON object keys or pretty-prints, and a server that re-serialises the
//! event must all see the same intent and the same payload fingerprint. Otherwise a duplicate
//! would be taken for a conflict (or the other way round).

// Test code: a panic is the failure report, so helpers may unwrap.
#![allow(clippy::unwrap_used)]

mod stop_events;

use doorstep_shared::intent::{canonical_json, fingerprint, intent_key};
use doorstep_shared::{EventEnvelope, StopState};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use serde_json::Value;
use stop_events::{stop, stop_events};

fn config() -> ProptestConfig {
    ProptestConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/proptest-regressions/encoding_properties.txt"
        )))),
        ..ProptestConfig::default()
    }
}

/// Writes `v` as JSON text with every object's keys in a seed-dependent order (rotated and
/// sometimes reversed) and optional whitespace. `serde_json::Map` sorts its keys, so reordering
/// a `Value` in memory would change nothing: the reordering has to happen in the text.
fn write_reordered(v: &Value, seed: &mut u64, out: &mut String) {
    *seed = seed
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    let space = if *seed & 1 == 0 { "" } else { "\n  " };
    match v {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            if !entries.is_empty() {
                let by = (*seed >> 8) as usize % entries.len();
                entries.rotate_left(by);
            }
            if *seed & 2 == 0 {
                entries.reverse();
            }
            out.push('{');
            for (i, (k, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(space);
                out.push_str(&Value::String(k.clone()).to_string());
                out.push_str(": ");
                write_reordered(item, seed, out);
            }
            out.push_str(space);
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_reordered(item, seed, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// Asserts that `parsed` is the same event as `original` as far as idempotency is concerned.
fn same_intent(original: &EventEnvelope, parsed: &EventEnvelope) -> Result<(), TestCaseError> {
    prop_assert_eq!(parsed, original);
    prop_assert_eq!(
        intent_key(&parsed.payload, &parsed.device_id),
        original.intent_key.clone()
    );
    prop_assert_eq!(fingerprint(&parsed.payload), fingerprint(&original.payload));
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn json_round_trip_keeps_intent_and_fingerprint(events in stop_events()) {
        for e in &events {
            let text = serde_json::to_string(e).unwrap();
            let parsed: EventEnvelope = serde_json::from_str(&text).unwrap();
            same_intent(e, &parsed)?;
            prop_assert_eq!(serde_json::to_string(&parsed).unwrap(), text, "re-serialising changed the bytes");
        }
    }

    #[test]
    fn reordered_keys_and_whitespace_keep_intent_and_fingerprint(events in stop_events(), seed in any::<u64>()) {
        let mut seed = seed;
        for e in &events {
            let value = serde_json::to_value(e).unwrap();
            let mut text = String::new();
            write_reordered(&value, &mut seed, &mut text);
            let parsed: EventEnvelope = serde_json::from_str(&text)
                .map_err(|err| TestCaseError::fail(format!("{err}: {text}")))?;
            same_intent(e, &parsed)?;
            // A server that fingerprints the raw JSON instead of the typed payload agrees too.
            let reparsed: Value = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(canonical_json(&reparsed), canonical_json(&value));
        }
    }

    #[test]
    fn re_encoded_events_fold_to_the_same_view(events in stop_events()) {
        let mut original = StopState::new(stop());
        let mut decoded = StopState::new(stop());
        for e in &events {
            original.apply(e.event_id, e.hlc, &e.payload);
            let parsed: EventEnvelope = serde_json::from_slice(&serde_json::to_vec_pretty(e).unwrap()).unwrap();
            decoded.apply(parsed.event_id, parsed.hlc, &parsed.payload);
        }
        let stored = StopState::from_bytes(&decoded.to_bytes()).unwrap();
        prop_assert_eq!(stored.view(), original.view());
    }
}

#[test]
fn canonical_form_is_the_sorted_wire_json() {
    // The canonical form is the wire JSON with sorted keys, whoever wrote it.
    let payload =
        doorstep_shared::EventPayload::StopCancelled(doorstep_shared::event::StopCancelled {
            stop_id: stop(),
            reason: "customer moved".into(),
        });
    let a = serde_json::json!({"kind": "stop_cancelled", "payload": {"stop_id": stop(), "reason": "customer moved"}});
    assert_eq!(canonical_json(&payload), canonical_json(&a));
}
