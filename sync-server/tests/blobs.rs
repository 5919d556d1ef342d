//! Resumable blob uploads and proof re-verification, in process (router + real SQLite store +
//! a temporary blob directory, manual clock for session expiry).

use axum::body::Body;
use axum::http::{Request, Response};
use doorstep_server::blobs::FsBlobStore;
use doorstep_server::blobs::uploads::Uploads;
use doorstep_server::clock::ManualClock;
use doorstep_server::seed::{DemoSeed, SeedOptions, seed_demo};
use doorstep_server::service::App;
use doorstep_server::store::sqlite::SqliteStore;
use doorstep_shared::BlobDigest;
use doorstep_shared::dashboard::LiveEvent;
use doorstep_shared::event::GeoPoint;
use doorstep_shared::protocol::EnrollRequest;
use http_body_util::BodyExt;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use tower::ServiceExt;

const T0: u64 = 1_780_000_000_000;
const TTL_MS: u64 = 60_000;

struct World {
    app: Arc<App<SqliteStore>>,
    clock: Arc<ManualClock>,
    router: axum::Router,
    seed: DemoSeed,
    device_token: String,
    blob_dir: tempfile::TempDir,
}

async fn world() -> World {
    let clock = Arc::new(ManualClock::new(T0));
    let store = SqliteStore::open_in_memory().expect("store");
    let app = Arc::new(App::new(Arc::new(store), clock.clone()));
    let seed = seed_demo(
        &app,
        &SeedOptions {
            couriers: 1,
            stops_per_route: 3,
            seed: 1,
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
            device_name: "blob tester".into(),
            public_key: None,
        })
        .await
        .expect("enroll");
    let blob_dir = tempfile::tempdir().expect("tempdir");
    // Sessions in the database, as the server keeps them.
    let uploads = Arc::new(Uploads::with_sessions(
        Arc::new(FsBlobStore::new(blob_dir.path())),
        TTL_MS,
        app.store.clone(),
    ));
    let router = doorstep_server::http::blobs::router(app.clone(), uploads);
    World {
        app,
        clock,
        router,
        seed,
        device_token: enrolled.token,
        blob_dir,
    }
}

struct Answer {
    status: u16,
    offset: Option<u64>,
    location: Option<String>,
    body: Vec<u8>,
}

async fn call(router: &axum::Router, req: Request<Body>) -> Answer {
    let res: Response<Body> = router.clone().oneshot(req).await.expect("router answers");
    let h = |n: &str| {
        res.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let offset = h("upload-offset").and_then(|s| s.parse().ok());
    let location = h("location");
    let status = res.status().as_u16();
    let body = res
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
        .to_vec();
    Answer {
        status,
        offset,
        location,
        body,
    }
}

/// The stable `code` of a problem+json answer.
fn code(a: &Answer) -> String {
    let v: serde_json::Value = serde_json::from_slice(&a.body).expect("problem+json body");
    v["code"].as_str().unwrap_or_default().to_owned()
}

impl World {
    async fn create(&self, data: &[u8]) -> Answer {
        let body = serde_json::json!({"digest": BlobDigest::of(data), "size": data.len()});
        call(
            &self.router,
            Request::post("/v1/uploads")
                .header("authorization", format!("Bearer {}", self.device_token))
                .header("content-type", "application/json")
                .body(Body::from(body.to_string()))
                .expect("request"),
        )
        .await
    }

    async fn head(&self, loc: &str) -> Answer {
        call(
            &self.router,
            Request::head(loc)
                .header("authorization", format!("Bearer {}", self.device_token))
                .body(Body::empty())
                .expect("request"),
        )
        .await
    }

    async fn patch(&self, loc: &str, offset: u64, chunk: &[u8], checksum: Option<&str>) -> Answer {
        let sum = checksum
            .map(str::to_owned)
            .unwrap_or_else(|| hex::encode(Sha256::digest(chunk)));
        call(
            &self.router,
            Request::patch(loc)
                .header("authorization", format!("Bearer {}", self.device_token))
                .header("upload-offset", offset.to_string())
                .header("upload-checksum", format!("sha256 {sum}"))
                .body(Body::from(chunk.to_vec()))
                .expect("request"),
        )
        .await
    }

    async fn get_blob(&self, digest: &BlobDigest) -> Answer {
        call(
            &self.router,
            Request::get(format!("/v1/blobs/{digest}"))
                .header(
                    "authorization",
                    format!("Bearer {}", self.seed.dispatcher_token),
                )
                .body(Body::empty())
                .expect("request"),
        )
        .await
    }

    fn stored_files(&self) -> usize {
        walk(&self.blob_dir.path().join("sha256"))
    }
}

fn walk(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| {
                    let p = e.path();
                    if p.is_dir() { walk(&p) } else { 1 }
                })
                .sum()
        })
        .unwrap_or(0)
}

fn seed() -> u64 {
    std::env::var("DOORSTEP_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_261_123)
}

#[tokio::test]
async fn uploads_cut_at_random_offsets_resume_and_match_the_digest() {
    let seed = seed();
    let w = world().await;
    let mut rng = StdRng::seed_from_u64(seed);
    for round in 0..100 {
        let size = rng.random_range(1..64 * 1024);
        let data: Vec<u8> = (0..size).map(|_| rng.random()).collect();
        let created = w.create(&data).await;
        assert_eq!(created.status, 201, "seed {seed} round {round}");
        let loc = created.location.expect("location");
        // The connection drops after a random prefix of a chunk reached the server: the
        // client asks for the offset and resumes from there.
        let mut sent = 0usize;
        while sent < data.len() {
            let end = rng.random_range(sent + 1..=data.len());
            let cut = rng.random_range(sent + 1..=end);
            let a = w.patch(&loc, sent as u64, &data[sent..cut], None).await;
            assert_eq!(a.status, 204, "seed {seed} round {round}");
            let head = w.head(&loc).await;
            if cut < data.len() {
                assert_eq!(head.status, 204, "seed {seed} round {round}");
                sent = head.offset.expect("offset") as usize;
                assert_eq!(sent, cut, "seed {seed} round {round}");
            } else {
                assert_eq!(head.status, 404, "a completed session is gone");
                sent = cut;
            }
        }
        let digest = BlobDigest::of(&data);
        let got = w.get_blob(&digest).await;
        assert_eq!(got.status, 200, "seed {seed} round {round}");
        assert_eq!(
            BlobDigest::of(&got.body),
            digest,
            "seed {seed} round {round}"
        );
        assert_eq!(
            w.create(&data).await.status,
            200,
            "stored digests are not re-uploaded"
        );
    }
    assert_eq!(w.stored_files(), 100);
}

#[tokio::test]
async fn concurrent_uploads_of_one_digest_store_one_copy() {
    let w = world().await;
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let a = w.create(&data).await.location.expect("session a");
    let b = w.create(&data).await.location.expect("session b");
    let half = data.len() / 2;
    let (ra, rb) = tokio::join!(
        w.patch(&a, 0, &data[..half], None),
        w.patch(&b, 0, &data[..half], None)
    );
    assert_eq!((ra.status, rb.status), (204, 204));
    let (ra, rb) = tokio::join!(
        w.patch(&a, half as u64, &data[half..], None),
        w.patch(&b, half as u64, &data[half..], None)
    );
    assert_eq!((ra.status, rb.status), (204, 204));
    assert_eq!(w.stored_files(), 1);
    let staged = walk(&w.blob_dir.path().join("staging"));
    assert_eq!(staged, 0, "no partial file left behind");
    assert_eq!(w.get_blob(&BlobDigest::of(&data)).await.status, 200);
}

#[tokio::test]
async fn a_chunk_with_a_wrong_checksum_or_offset_is_rejected() {
    let w = world().await;
    let data = vec![7u8; 10_000];
    let loc = w.create(&data).await.location.expect("session");
    let bad = w
        .patch(&loc, 0, &data[..5_000], Some(&"0".repeat(64)))
        .await;
    assert_eq!(
        (bad.status, code(&bad).as_str()),
        (460, "checksum_mismatch")
    );
    assert_eq!(w.head(&loc).await.offset, Some(0), "nothing was appended");
    let wrong = w.patch(&loc, 4_000, &data[..1_000], None).await;
    assert_eq!(
        (wrong.status, code(&wrong).as_str()),
        (409, "upload_offset_mismatch")
    );
    assert_eq!(wrong.offset, Some(0), "409 tells the right offset");
    // A whole that does not hash to the declared digest is refused at completion.
    let lie = vec![8u8; 10_000];
    let a = w.patch(&loc, 0, &lie, None).await;
    assert_eq!((a.status, code(&a).as_str()), (422, "digest_mismatch"));
    assert_eq!(w.stored_files(), 0);
    assert_eq!(w.get_blob(&BlobDigest::of(&data)).await.status, 404);
}

#[tokio::test]
async fn an_expired_session_restarts_cleanly() {
    let w = world().await;
    let data: Vec<u8> = (0..50_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let loc = w.create(&data).await.location.expect("session");
    assert_eq!(w.patch(&loc, 0, &data[..20_000], None).await.status, 204);
    w.clock.advance(TTL_MS + 1);
    let expired = w.patch(&loc, 20_000, &data[20_000..], None).await;
    assert_eq!(
        (expired.status, code(&expired).as_str()),
        (410, "upload_expired")
    );
    // An expired session is discarded: afterwards it is unknown.
    assert_eq!(w.head(&loc).await.status, 404);
    let gone = w.patch(&loc, 20_000, &data[20_000..], None).await;
    assert_eq!(
        (gone.status, code(&gone).as_str()),
        (404, "upload_not_found")
    );
    assert_eq!(
        walk(&w.blob_dir.path().join("staging")),
        0,
        "the expired partial file is gone"
    );
    let fresh = w.create(&data).await;
    assert_eq!(fresh.offset, Some(0));
    let loc = fresh.location.expect("new session");
    let mut live = w.app.live.subscribe();
    assert_eq!(w.patch(&loc, 0, &data, None).await.status, 204);
    let got = w.get_blob(&BlobDigest::of(&data)).await;
    assert_eq!(BlobDigest::of(&got.body), BlobDigest::of(&data));
    // The dashboard hears that the photo is no longer pending.
    match live.try_recv() {
        Ok(LiveEvent::BlobStored { digest, .. }) => assert_eq!(digest, BlobDigest::of(&data)),
        other => panic!("expected blob_stored, got {other:?}"),
    }
}
