//! Black box, proof of delivery on the real binary: the evidence hash chain is checked at push
//! (a proof off the device's chain is rejected with `evidence_chain_broken`, escalated and
//! quarantined, and nothing else is lost, across a restart), and upload sessions live in the
//! database (a SIGKILLed server still knows the offset and the upload resumes).

mod harness;

use doorstep_shared::event::{EventEnvelope, EventPayload, ProofCaptured, ScanPhase};
use doorstep_shared::evidence::sign;
use doorstep_shared::protocol::{EscalationKind, PushStatus};
use doorstep_shared::{BlobDigest, ProblemCode, StopId};
use harness::{Device, Encoding, Resp, World};
use sha2::{Digest, Sha256};

const SECRET: [u8; 32] = [5; 32];

/// A proof signed like the device's outbox signs it, linked to `prev`.
fn proof(d: &mut Device, stop: StopId, prev: &str) -> EventEnvelope {
    let mut env = d.event(EventPayload::ProofCaptured(ProofCaptured {
        stop_id: stop,
        attempt: 1,
        photos: vec![BlobDigest::of(stop.to_string().as_bytes())],
        thumbnails: vec![],
        recipient_name: Some("Recipient".into()),
        location: None,
        signature: None,
    }));
    let (id, hlc) = (env.device_id, env.hlc);
    if let EventPayload::ProofCaptured(p) = &mut env.payload {
        p.signature = Some(sign(&SECRET, &id, hlc, p, prev));
    }
    env
}

fn link(env: &EventEnvelope) -> String {
    env.payload.evidence_link().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn a_proof_off_the_device_chain_is_rejected_escalated_and_blocks_nothing() {
    let mut w = World::new();
    let mut d = w.device(0, 1).await;
    let stops = w.stops(0);
    let first = proof(&mut d, stops[0], "");
    // The device lost a statement between the first and this one.
    let forged_link = "0f".repeat(32);
    let skipped = proof(&mut d, stops[1], &forged_link);
    let scan = d.scan(stops[2], "PKG-CHAIN-1", ScanPhase::Loaded);
    let res = w
        .api
        .push(
            &d.token,
            &d.request(vec![first.clone(), skipped.clone(), scan]),
            Encoding::Identity,
        )
        .await;
    let got: Vec<_> = res.results.iter().map(|r| (r.status, r.code)).collect();
    assert_eq!(
        got,
        vec![
            (PushStatus::Applied, None),
            (PushStatus::Rejected, Some(ProblemCode::EvidenceChainBroken)),
            (PushStatus::Applied, None),
        ]
    );
    assert_eq!(res.last_applied_seq, 3, "the broken proof blocks nothing");

    // Escalated with context: which link was expected and which one came.
    let esc = w.api.escalations(false).await;
    let e = esc
        .iter()
        .find(|e| e.kind == EscalationKind::RejectedEvent && e.stop_id == Some(stops[1]))
        .expect("the broken chain is escalated");
    assert!(
        e.detail.starts_with("evidence_chain_broken"),
        "{}",
        e.detail
    );
    assert!(
        e.detail.contains(&link(&first)) && e.detail.contains(&forged_link),
        "{}",
        e.detail
    );
    assert_eq!(e.event_id, Some(skipped.event_id));
    // Quarantined: logged with its outcome, and the stop did not take the proof.
    let detail = w.api.stop(stops[1]).await;
    let logged = detail
        .events
        .iter()
        .find(|ev| ev.event_id == skipped.event_id)
        .expect("the rejected proof is kept in the log");
    assert_eq!(logged.status, PushStatus::Rejected);
    assert!(detail.view.proof_attempts.is_empty());

    // The chain goes on from the signed statement the device really made, also after a restart
    // (the head is in the database); a replay answers the stored outcome.
    w.restart();
    let next = proof(&mut d, stops[2], &link(&skipped));
    let res = w
        .api
        .push(&d.token, &d.request(vec![next]), Encoding::Identity)
        .await;
    assert_eq!(res.results[0].status, PushStatus::Applied, "{res:?}");
    let replay = w
        .api
        .push(&d.token, &d.request(vec![skipped]), Encoding::Identity)
        .await;
    assert_eq!(replay.results[0].status, PushStatus::Duplicate);
    assert_eq!(replay.results[0].first_status, Some(PushStatus::Rejected));
    assert_eq!(
        replay.results[0].code,
        Some(ProblemCode::EvidenceChainBroken)
    );
}

struct Upload<'a> {
    w: &'a World,
    token: String,
}

impl Upload<'_> {
    async fn send(&self, req: reqwest::RequestBuilder) -> (Resp, Option<u64>) {
        let r = req.bearer_auth(&self.token).send().await.expect("request");
        let offset = r
            .headers()
            .get("upload-offset")
            .and_then(|v| v.to_str().ok())
            .and_then(|s| s.parse().ok());
        let status = r.status().as_u16();
        let content_type = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let body = r.bytes().await.expect("body").to_vec();
        (
            Resp {
                status,
                content_type,
                body,
            },
            offset,
        )
    }

    async fn create(&self, data: &[u8], size: usize) -> (Resp, Option<u64>) {
        let http = &self.w.api.http;
        let body = serde_json::json!({"digest": BlobDigest::of(data), "size": size});
        self.send(http.post(self.w.api.url("/v1/uploads")).json(&body))
            .await
    }

    async fn head(&self, loc: &str) -> (Resp, Option<u64>) {
        self.send(self.w.api.http.head(self.w.api.url(loc))).await
    }

    async fn patch(
        &self,
        loc: &str,
        offset: usize,
        chunk: &[u8],
        sum: Option<&str>,
    ) -> (Resp, Option<u64>) {
        let sum = sum.map_or_else(|| hex::encode(Sha256::digest(chunk)), str::to_owned);
        let req = self
            .w
            .api
            .http
            .patch(self.w.api.url(loc))
            .header("upload-offset", offset.to_string())
            .header("upload-checksum", format!("sha256 {sum}"))
            .header("content-type", "application/offset+octet-stream")
            .body(chunk.to_vec());
        self.send(req).await
    }
}

fn location(r: &Resp) -> String {
    let v: serde_json::Value = r.json();
    v["location"].as_str().expect("location").to_owned()
}

#[tokio::test]
async fn an_upload_resumes_after_the_server_is_killed_and_errors_have_stable_codes() {
    let mut w = World::with_blob_dir(true);
    let d = w.device(0, 2).await;
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 31 % 251) as u8).collect();
    let up = Upload {
        w: &w,
        token: d.token.clone(),
    };
    let (created, _) = up.create(&data, data.len()).await;
    assert_eq!(created.status, 201);
    let loc = location(&created);
    assert_eq!(
        up.patch(&loc, 0, &data[..100_000], None).await.0.status,
        204
    );

    // Each upload error is a problem document with its stable code.
    let (bad_sum, _) = up
        .patch(
            &loc,
            100_000,
            &data[100_000..150_000],
            Some(&"0".repeat(64)),
        )
        .await;
    bad_sum.problem(460, "checksum_mismatch");
    let (wrong, right) = up.patch(&loc, 5, &data[5..10], None).await;
    wrong.problem(409, "upload_offset_mismatch");
    assert_eq!(right, Some(100_000), "409 tells the right offset");
    let (too_long, _) = up.patch(&loc, 100_000, &vec![1u8; 250_000], None).await;
    too_long.problem(413, "payload_too_large");
    let (huge, _) = up.create(b"huge", 64 * 1024 * 1024).await;
    huge.problem(413, "payload_too_large");
    let (unknown, _) = up
        .patch("/v1/uploads/0123456789abcdef", 0, b"x", None)
        .await;
    unknown.problem(404, "upload_not_found");
    drop(up);

    // SIGKILL: the session is in the database, the bytes in the staging file.
    w.restart();
    let up = Upload {
        w: &w,
        token: d.token.clone(),
    };
    let (head, offset) = up.head(&loc).await;
    assert_eq!(head.status, 204);
    assert_eq!(offset, Some(100_000), "the offset survived the restart");
    let (done, end) = up.patch(&loc, 100_000, &data[100_000..], None).await;
    assert_eq!(done.status, 204, "{}", String::from_utf8_lossy(&done.body));
    assert_eq!(end, Some(data.len() as u64));
    let got = w
        .api
        .get(
            Some(&w.api.dispatcher_token),
            &format!("/v1/blobs/{}", BlobDigest::of(&data)),
        )
        .await;
    assert_eq!(got.status, 200);
    assert_eq!(
        got.body, data,
        "the resumed blob is byte for byte the original"
    );
    assert_eq!(
        up.head(&loc).await.0.status,
        404,
        "a completed session is gone"
    );

    // A whole that does not hash to its digest is refused at completion.
    let lie = vec![9u8; 1_000];
    let (created, _) = up.create(&data[..1_000], 1_000).await;
    let loc = location(&created);
    up.patch(&loc, 0, &lie, None)
        .await
        .0
        .problem(422, "digest_mismatch");
}
