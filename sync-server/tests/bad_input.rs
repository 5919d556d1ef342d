//! The bad-input catalogue: each bad request gets its documented HTTP status and problem code
//! (`application/problem+json`), per-event problems get their per-event code, and nothing that
//! was accepted before is lost.
#![allow(clippy::unwrap_used)]

mod harness;

use doorstep_shared::event::ScanPhase;
use doorstep_shared::protocol::{
    EscalationKind, MAX_EVENTS_PER_PUSH, MAX_PUSH_BODY_BYTES, MAX_PUSH_DECODED_BYTES, PushStatus,
    RouteSnapshot,
};
use doorstep_shared::{ProblemCode, StopStatus};
use harness::{Encoding, World};
use std::io::Write;

const JSON: Option<&str> = Some("application/json");
const THREE_DAYS_MS: i64 = 3 * 24 * 3_600_000;

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_get_their_documented_status_and_code_and_lose_nothing() {
    let w = World::new();
    let api = &w.api;
    let mut a = w.device(0, 7).await;
    let mut b = w.device(1, 8).await;
    let stops = w.stops(0);
    let tok_a = a.token.clone();

    // Accepted before anything bad happens.
    let accepted = vec![
        a.scan(stops[0], "PKG-0", ScanPhase::Loaded),
        a.scan(stops[0], "PKG-0", ScanPhase::OutForDelivery),
        a.arrive(stops[0], 1),
        a.note(stops[1], "side entrance"),
        a.scan(stops[1], "PKG-1", ScanPhase::Loaded),
    ];
    let r = api
        .push(&a.token, &a.request(accepted.clone()), Encoding::Gzip)
        .await;
    assert_eq!(r.last_applied_seq, 5);
    let good_json = |d: &mut harness::Device| {
        let ev = d.event_at(
            d.next_seq,
            harness::scan(stops[2], "PKG-2", ScanPhase::Loaded),
        );
        serde_json::to_vec(&d.request(vec![ev])).unwrap()
    };

    // Malformed JSON.
    api.push_raw(Some(&tok_a), b"{\"device_id\": ".to_vec(), JSON, None)
        .await
        .unwrap()
        .problem(400, "malformed_request");
    // Valid JSON of the wrong shape.
    api.push_raw(Some(&tok_a), b"{\"events\": 3}".to_vec(), JSON, None)
        .await
        .unwrap()
        .problem(400, "malformed_request");

    // Wrong content type.
    api.push_raw(Some(&tok_a), good_json(&mut a), Some("text/plain"), None)
        .await
        .unwrap()
        .problem(415, "unsupported_media_type");
    api.push_raw(Some(&tok_a), good_json(&mut a), None, None)
        .await
        .unwrap()
        .problem(415, "unsupported_media_type");

    // Unknown schema version: the whole request is refused, nothing advances.
    let mut future = a.event_at(
        a.next_seq,
        harness::scan(stops[2], "PKG-2", ScanPhase::Loaded),
    );
    future.schema_version = 99;
    let body = serde_json::to_vec(&a.request(vec![future])).unwrap();
    api.push_raw(Some(&tok_a), body, JSON, None)
        .await
        .unwrap()
        .problem(422, "unsupported_schema_version");

    // Oversized on the wire (> MAX_PUSH_BODY_BYTES), declared by Content-Length.
    let big = vec![b' '; MAX_PUSH_BODY_BYTES + 1];
    api.push_raw(Some(&tok_a), big, JSON, None)
        .await
        .unwrap()
        .problem(413, "payload_too_large");

    // A gzip bomb: a few KiB that inflate past MAX_PUSH_DECODED_BYTES.
    let bomb = gzip(&vec![b' '; MAX_PUSH_DECODED_BYTES + 1024]);
    assert!(bomb.len() < 64 * 1024, "the bomb is small on the wire");
    api.push_raw(Some(&tok_a), bomb, JSON, Some("gzip"))
        .await
        .unwrap()
        .problem(413, "payload_too_large");
    // The same through zstd.
    let zbomb = zstd::encode_all(&vec![b' '; MAX_PUSH_DECODED_BYTES + 1024][..], 19).unwrap();
    api.push_raw(Some(&tok_a), zbomb, JSON, Some("zstd"))
        .await
        .unwrap()
        .problem(413, "payload_too_large");

    // Too many events in one batch.
    let many: Vec<_> = (0..=MAX_EVENTS_PER_PUSH as u64)
        .map(|i| {
            a.event_at(
                a.next_seq + i,
                harness::scan(stops[2], "PKG-2", ScanPhase::Loaded),
            )
        })
        .collect();
    let body = serde_json::to_vec(&a.request(many)).unwrap();
    api.push_raw(
        Some(&tok_a),
        Encoding::Gzip.encode(&body),
        JSON,
        Some("gzip"),
    )
    .await
    .unwrap()
    .problem(413, "payload_too_large");

    // Corrupt gzip, truncated gzip and an unknown encoding.
    api.push_raw(
        Some(&tok_a),
        b"this is not gzip".to_vec(),
        JSON,
        Some("gzip"),
    )
    .await
    .unwrap()
    .problem(400, "bad_content_encoding");
    let mut truncated = gzip(&good_json(&mut a));
    truncated.truncate(truncated.len() / 2);
    api.push_raw(Some(&tok_a), truncated, JSON, Some("gzip"))
        .await
        .unwrap()
        .problem(400, "bad_content_encoding");
    api.push_raw(Some(&tok_a), good_json(&mut a), JSON, Some("br"))
        .await
        .unwrap()
        .problem(400, "bad_content_encoding");

    // Missing and forged tokens.
    api.push_raw(None, good_json(&mut a), JSON, None)
        .await
        .unwrap()
        .problem(401, "unauthorized");
    let forged = format!("{}x", a.token);
    api.push_raw(Some(&forged), good_json(&mut a), JSON, None)
        .await
        .unwrap()
        .problem(401, "unauthorized");
    api.get(None, &format!("/v1/routes/{}", w.route(0)))
        .await
        .problem(401, "unauthorized");
    // A device token is not a dispatcher token.
    api.get(Some(&tok_a), "/v1/dispatch/devices")
        .await
        .problem(401, "unauthorized");

    // Device A pushing as device B, wholly or for one event.
    let b_event = b.event_at(1, harness::scan(w.stops(1)[0], "PKG-B0", ScanPhase::Loaded));
    let as_b = serde_json::to_vec(&b.request(vec![b_event])).unwrap();
    api.push_raw(Some(&tok_a), as_b, JSON, None)
        .await
        .unwrap()
        .problem(403, "device_mismatch");
    let mut smuggled = a.event_at(
        a.next_seq,
        harness::scan(stops[2], "PKG-2", ScanPhase::Loaded),
    );
    smuggled.device_id = b.id;
    let body = serde_json::to_vec(&a.request(vec![smuggled])).unwrap();
    api.push_raw(Some(&tok_a), body, JSON, None)
        .await
        .unwrap()
        .problem(403, "device_mismatch");

    // Routes: another courier's is forbidden, one's own is readable.
    api.get(Some(&tok_a), &format!("/v1/routes/{}", w.route(1)))
        .await
        .problem(403, "forbidden");
    let own = api
        .get(Some(&tok_a), &format!("/v1/routes/{}", w.route(0)))
        .await;
    assert_eq!(own.status, 200);
    let plan: RouteSnapshot = own.json();
    assert_eq!(plan.route_id, w.route(0));
    assert_eq!(plan.courier_id, a.courier);
    assert_eq!(plan.stops.len(), 6);
    api.get(
        Some(&tok_a),
        &format!(
            "/v1/routes/{}",
            doorstep_shared::RouteId(uuid::Uuid::now_v7())
        ),
    )
    .await
    .problem(404, "not_found");

    // Nothing above advanced the device or touched state.
    let h = api.device(a.id).await;
    assert_eq!(h.last_applied_seq, 5);
    assert_eq!(h.events_rejected, 0);

    // Per-event problems answer 200: an illegal transition (attempt on a planned stop), and a
    // stop on another courier's route.
    let illegal = a.delivered(stops[5], 1);
    let foreign = a.scan(w.stops(1)[0], "PKG-F", ScanPhase::Loaded);
    let r = api
        .push(
            &a.token,
            &a.request(vec![illegal.clone(), foreign.clone()]),
            Encoding::Identity,
        )
        .await;
    let got: Vec<_> = r.results.iter().map(|x| (x.status, x.code)).collect();
    assert_eq!(
        got,
        [
            (PushStatus::Rejected, Some(ProblemCode::IllegalTransition)),
            (PushStatus::Rejected, Some(ProblemCode::Forbidden)),
        ]
    );
    assert_eq!(r.last_applied_seq, 7);
    assert_eq!(api.stop(stops[5]).await.view.status, StopStatus::Planned);
    assert_eq!(
        api.stop(w.stops(1)[0]).await.view.status,
        StopStatus::Planned
    );
    let esc = api.escalations(false).await;
    assert!(
        esc.iter().any(
            |e| e.kind == EscalationKind::RejectedEvent && e.event_id == Some(illegal.event_id)
        )
    );

    // Device B's clock is three days ahead: applied, flagged, escalated.
    b.clock_offset_ms = THREE_DAYS_MS;
    let skewed = vec![
        b.scan(w.stops(1)[1], "PKG-B1", ScanPhase::Loaded),
        b.note(w.stops(1)[1], "clock is wrong"),
    ];
    let r = api.push(&b.token, &b.request(skewed), Encoding::Zstd).await;
    assert_eq!(r.last_applied_seq, 2);
    for x in &r.results {
        assert_eq!(
            (x.status, x.code),
            (PushStatus::Applied, Some(ProblemCode::ClockSkew)),
            "{r:?}"
        );
    }
    assert!(
        (r.clock_offset_ms - THREE_DAYS_MS).abs() < 60_000,
        "offset measured: {}",
        r.clock_offset_ms
    );
    let hb = api.device(b.id).await;
    assert!(hb.clock_skew_flagged, "{hb:?}");
    assert!((hb.clock_offset_ms.unwrap() - THREE_DAYS_MS).abs() < 60_000);
    let esc = api.escalations(false).await;
    assert!(
        esc.iter()
            .any(|e| e.kind == EscalationKind::ClockSkew && e.device_id == Some(b.id)),
        "{esc:?}"
    );
    assert!(!api.device(a.id).await.clock_skew_flagged);

    // Nothing already accepted was lost, and the device carries on where it was.
    let h = api.device(a.id).await;
    assert_eq!(h.last_applied_seq, 7);
    assert_eq!(h.events_rejected, 2);
    let mut logged = api.stop(stops[0]).await.events;
    logged.extend(api.stop(stops[1]).await.events);
    for ev in &accepted {
        let e = logged
            .iter()
            .find(|e| e.event_id == ev.event_id)
            .unwrap_or_else(|| panic!("accepted event {} lost", ev.device_seq));
        assert_eq!(e.status, PushStatus::Applied);
    }
    assert_eq!(logged.len(), accepted.len(), "no extra rows");
    assert_eq!(api.stop(stops[0]).await.view.status, StopStatus::Arrived);
    let next = a.delivered(stops[0], 1);
    let r = api
        .push(&a.token, &a.request(vec![next]), Encoding::Identity)
        .await;
    assert_eq!(r.results[0].status, PushStatus::Applied);
    assert_eq!(r.last_applied_seq, 8);
    assert_eq!(api.stop(stops[0]).await.view.status, StopStatus::Delivered);
}
