//! Signed evidence at the server: a bad signature is rejected with `invalid_signature` and
//! escalated, and the dispute re-verification reports key, chain and pending photos — judging
//! the chain by the same rule as push, so the two never disagree.

use doorstep_server::blobs::FsBlobStore;
use doorstep_server::clock::ManualClock;
use doorstep_server::http::blobs::proof_report;
use doorstep_server::seed::{SeedOptions, seed_demo};
use doorstep_server::service::App;
use doorstep_server::store::Store;
use doorstep_server::store::sqlite::SqliteStore;
use doorstep_shared::event::{EventEnvelope, EventPayload, GeoPoint, ProofCaptured};
use doorstep_shared::evidence::{public_key_hex, sign};
use doorstep_shared::intent::intent_key;
use doorstep_shared::protocol::{EnrollRequest, PushRequest, PushStatus};
use doorstep_shared::{BlobDigest, DeviceId, EventId, HlcStamp, ProblemCode, StopId};
use std::sync::Arc;

const T0: u64 = 1_780_000_000_000;
const SECRET: [u8; 32] = [42; 32];

fn proof_env(device: DeviceId, seq: u64, stop: StopId, prev: &str, tamper: bool) -> EventEnvelope {
    let hlc = HlcStamp {
        wall_ms: T0 + seq,
        logical: 0,
    };
    let mut proof = ProofCaptured {
        stop_id: stop,
        attempt: 1,
        photos: vec![BlobDigest::of(format!("photo {seq}").as_bytes())],
        thumbnails: vec![BlobDigest::of(format!("thumb {seq}").as_bytes())],
        recipient_name: Some("Recipient".into()),
        location: Some(GeoPoint {
            lat: 52.5,
            lon: 13.4,
        }),
        signature: None,
    };
    proof.signature = Some(sign(&SECRET, &device, hlc, &proof, prev));
    if tamper {
        proof.photos[0] = BlobDigest::of(b"a different photo");
    }
    let payload = EventPayload::ProofCaptured(proof);
    EventEnvelope {
        event_id: EventId::from_parts(T0 + seq, [seq as u8; 10]),
        device_id: device,
        device_seq: seq,
        intent_key: intent_key(&payload, &device),
        schema_version: 1,
        device_time_ms: T0 + seq,
        hlc,
        blob_digests: vec![],
        payload,
    }
}

fn link(env: &EventEnvelope) -> String {
    env.payload.evidence_link().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn bad_signatures_are_rejected_and_disputes_reverify_the_chain() {
    let clock = Arc::new(ManualClock::new(T0));
    let app = Arc::new(App::new(
        Arc::new(SqliteStore::open_in_memory().expect("store")),
        clock,
    ));
    let seed = seed_demo(
        &app,
        &SeedOptions {
            couriers: 1,
            stops_per_route: 4,
            seed: 3,
            day: "2026-06-01".into(),
            day_start_ms: T0,
            depot: GeoPoint {
                lat: 52.5,
                lon: 13.4,
            },
        },
    )
    .await
    .expect("seed");
    let enrolled = app
        .enroll(EnrollRequest {
            code: seed.couriers[0].enrollment_code.clone(),
            device_name: "signer".into(),
            public_key: Some(public_key_hex(&SECRET)),
        })
        .await
        .expect("enroll");
    let auth = app
        .device_for_token(Some(&enrolled.token))
        .await
        .expect("auth");
    let dev = enrolled.device_id;
    let stops = &seed.couriers[0].stops;
    let first = proof_env(dev, 1, stops[0], "", false);
    let first_link = link(&first);
    let tampered = proof_env(dev, 2, stops[1], &first_link, true);
    // The chain skips the tampered statement: the third links the first.
    let third = proof_env(dev, 3, stops[2], &first_link, false);
    let push = async |events| {
        let req = PushRequest {
            device_id: dev,
            sent_at_ms: T0,
            events,
            queue: None,
        };
        app.push(auth, req).await.expect("push")
    };
    let res = push(vec![first, tampered, third]).await;
    let statuses: Vec<_> = res.results.iter().map(|r| (r.status, r.code)).collect();
    assert_eq!(statuses[0], (PushStatus::Applied, None));
    assert_eq!(
        statuses[1],
        (PushStatus::Rejected, Some(ProblemCode::InvalidSignature))
    );
    assert_eq!(statuses[2], (PushStatus::Applied, None));
    assert_eq!(
        res.last_applied_seq, 3,
        "a poison proof never blocks the device"
    );
    let escalations = app.store.escalations(false).expect("escalations");
    assert!(
        escalations
            .iter()
            .any(|e| e.detail.contains("statement digest")),
        "{escalations:?}"
    );

    let blobs_dir = tempfile::tempdir().expect("tempdir");
    let blobs = FsBlobStore::new(blobs_dir.path());
    let ok = proof_report(app.store.as_ref(), &blobs, stops[0]).expect("report");
    assert!(ok.verified, "{ok:?}");
    assert_eq!(
        ok.proofs[0].pending_blobs.len(),
        2,
        "photo pending until uploaded"
    );
    let bad = proof_report(app.store.as_ref(), &blobs, stops[1]).expect("report");
    assert!(!bad.verified);
    assert!(bad.proofs[0].signature.starts_with("invalid"), "{bad:?}");
    // Push applied the third proof (it links the last valid statement); so does the re-check.
    let skipped = proof_report(app.store.as_ref(), &blobs, stops[2]).expect("report");
    assert!(skipped.verified, "{skipped:?}");
    assert_eq!(skipped.proofs[0].chain, "intact");

    // A validly signed proof off the chain (it links the first, not the third): push rejects
    // it, and the re-check reports the same break.
    let off_chain = proof_env(dev, 4, stops[3], &first_link, false);
    let res = push(vec![off_chain]).await;
    assert_eq!(
        (res.results[0].status, res.results[0].code),
        (PushStatus::Rejected, Some(ProblemCode::EvidenceChainBroken))
    );
    let broken = proof_report(app.store.as_ref(), &blobs, stops[3]).expect("report");
    assert!(!broken.verified);
    assert!(broken.proofs[0].chain.starts_with("broken"), "{broken:?}");
}
