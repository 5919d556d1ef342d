//! Signed evidence on the device: the key is created at enrollment, proofs are signed inside
//! the outbox transaction and chained; tampering is detected.

mod common;

use common::{T0, enrolled, stop_id};
use courier_core::testing::FakeServer;
use courier_core::{AppendOutcome, ManualClock};
use doorstep_shared::event::{GeoPoint, ProofCaptured};
use doorstep_shared::evidence::{EvidenceError, check_link, verify};
use doorstep_shared::{BlobDigest, EventEnvelope, EventPayload};
use std::sync::Arc;

fn proof(stop: usize, attempt: u32) -> EventPayload {
    EventPayload::ProofCaptured(ProofCaptured {
        stop_id: stop_id(stop),
        attempt,
        photos: vec![BlobDigest::of(format!("photo {stop}").as_bytes())],
        thumbnails: vec![BlobDigest::of(format!("thumb {stop}").as_bytes())],
        recipient_name: Some("R. Cipient".into()),
        location: Some(GeoPoint {
            lat: 52.501,
            lon: 13.4,
        }),
        signature: None,
    })
}

fn recorded(o: AppendOutcome) -> EventEnvelope {
    match o {
        AppendOutcome::Recorded(e) => e,
        other => panic!("expected a recorded event, got {other:?}"),
    }
}

fn proof_of(env: &EventEnvelope) -> &ProofCaptured {
    match &env.payload {
        EventPayload::ProofCaptured(p) => p,
        other => panic!("not a proof: {other:?}"),
    }
}

#[tokio::test]
async fn proofs_are_signed_chained_and_tampering_shows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(T0));
    let server = Arc::new(FakeServer::new(clock.clone()));
    let device = enrolled(&dir, &server, clock, 3).await;
    let key = device.evidence_public_key().expect("key");

    let first = recorded(device.record_fact(proof(0, 1)).expect("record"));
    let second = recorded(device.record_fact(proof(1, 1)).expect("record"));
    let p1 = proof_of(&first);
    let p2 = proof_of(&second);
    let link1 = verify(&first.device_id, first.hlc, p1, Some(&key)).expect("first verifies");
    let link2 = verify(&second.device_id, second.hlc, p2, Some(&key)).expect("second verifies");
    check_link(p1, "").expect("first link is the chain's start");
    check_link(p2, &link1).expect("second links the first");
    assert_ne!(link1, link2);

    // A double tap is the same fact: no second event, no chain advance.
    assert!(matches!(
        device.record_fact(proof(1, 1)).expect("record"),
        AppendOutcome::Duplicate(_)
    ));

    let mut photo = p2.clone();
    photo.photos[0] = BlobDigest::of(b"swapped photo");
    assert_eq!(
        verify(&second.device_id, second.hlc, &photo, Some(&key)),
        Err(EvidenceError::DigestMismatch)
    );
    let mut link = p2.clone();
    if let Some(s) = link.signature.as_mut() {
        s.prev_link = link2.clone();
    }
    assert!(verify(&second.device_id, second.hlc, &link, Some(&key)).is_err());
}

#[tokio::test]
async fn capturing_a_proof_queues_its_blobs_and_records_a_signed_event() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(T0));
    let server = Arc::new(FakeServer::new(clock.clone()));
    let device = enrolled(&dir, &server, clock, 2).await;
    let img = image::RgbImage::from_fn(64, 48, |x, y| image::Rgb([x as u8 * 4, y as u8 * 5, 90]));
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new(&mut jpeg)
        .encode_image(&img)
        .expect("encode");
    let here = GeoPoint {
        lat: 52.5,
        lon: 13.4,
    };
    let env = recorded(
        device
            .capture_proof(stop_id(0), 1, &jpeg, Some("R. Cipient".into()), Some(here))
            .expect("capture"),
    );
    let p = proof_of(&env);
    assert_eq!((p.photos.len(), p.thumbnails.len()), (1, 1));
    let key = device.evidence_public_key().expect("key");
    assert!(verify(&env.device_id, env.hlc, p, Some(&key)).is_ok());
    let mut outbox =
        courier_core::Outbox::open(dir.path().join("outbox.db")).expect("second connection");
    assert_eq!(outbox.pending_blobs().expect("pending"), 2);
    assert_eq!(
        device.sync_status().expect("status").photos_pending,
        2,
        "the sync bar counts the queued photo and thumbnail"
    );
    let first = outbox.next_blob().expect("next").expect("queued");
    assert_eq!(first.digest, p.thumbnails[0], "the thumbnail goes first");
    // A file that is not an image is refused before anything is recorded.
    assert!(
        device
            .capture_proof(stop_id(1), 1, b"not a photo", None, None)
            .is_err()
    );
    assert_eq!(outbox.pending_blobs().expect("pending"), 2);
}
