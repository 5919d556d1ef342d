//! The device's upload queue against the real server's blob routes over HTTP: thumbnails go
//! first, uploads cut mid-chunk resume at the server's offset, a stale session restarts.

use courier_core::blobs::http::HttpBlobTransport;
use courier_core::blobs::{BlobRequest, BlobResponse, BlobTransport, Uploader};
use courier_core::outbox::{BlobKind, Outbox};
use courier_core::transport::TransportError;
use courier_core::{Device, Identity, SystemClock};
use doorstep_server::blobs::FsBlobStore;
use doorstep_server::blobs::uploads::Uploads;
use doorstep_server::seed::{SeedOptions, seed_demo};
use doorstep_shared::BlobDigest;
use doorstep_shared::event::GeoPoint;
use doorstep_shared::protocol::EnrollRequest;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sha2::{Digest, Sha256};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Cuts some `PATCH`es after a random prefix reached the server, and records request order.
struct Cutting {
    inner: HttpBlobTransport,
    rng: Mutex<StdRng>,
    created: Mutex<Vec<String>>,
    cuts: Mutex<u32>,
}

#[async_trait::async_trait]
impl BlobTransport for Cutting {
    async fn send(&self, request: BlobRequest) -> Result<BlobResponse, TransportError> {
        match request {
            BlobRequest::Create { ref digest, .. } => {
                self.created.lock().expect("lock").push(digest.clone());
                self.inner.send(request).await
            }
            BlobRequest::Append {
                token,
                location,
                offset,
                chunk,
                ..
            } => {
                let cut = {
                    let mut rng = self.rng.lock().expect("lock");
                    (rng.random_bool(0.3) && chunk.len() > 1)
                        .then(|| rng.random_range(1..chunk.len()))
                };
                let Some(at) = cut else {
                    let checksum = hex::encode(Sha256::digest(&chunk));
                    return self
                        .inner
                        .send(BlobRequest::Append {
                            token,
                            location,
                            offset,
                            checksum,
                            chunk,
                        })
                        .await;
                };
                let part = chunk.slice(..at);
                let checksum = hex::encode(Sha256::digest(&part));
                self.inner
                    .send(BlobRequest::Append {
                        token,
                        location,
                        offset,
                        checksum,
                        chunk: part,
                    })
                    .await?;
                *self.cuts.lock().expect("lock") += 1;
                Err(TransportError::Io("connection reset mid-chunk".into()))
            }
            other => self.inner.send(other).await,
        }
    }
}

#[tokio::test]
async fn queued_blobs_upload_thumbnails_first_and_resume_after_cuts() {
    let seed: u64 = std::env::var("DOORSTEP_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let clock = Arc::new(doorstep_server::clock::SystemClock);
    let app = doorstep_server::startup::build_app("sqlite::memory:", clock).expect("app");
    let world = seed_demo(
        &app,
        &SeedOptions {
            couriers: 1,
            stops_per_route: 2,
            seed,
            day: "2026-06-01".into(),
            day_start_ms: 1_780_000_000_000,
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
            code: world.couriers[0].enrollment_code.clone(),
            device_name: "uploader".into(),
            public_key: None,
        })
        .await
        .expect("enroll");
    let blob_dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(FsBlobStore::new(blob_dir.path()));
    let uploads = Arc::new(Uploads::new(store.clone(), 60_000));
    let router = doorstep_server::http::blobs::router(app.clone(), uploads);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(async move { axum::serve(listener, router).await });

    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("outbox.db");
    let device = Device::open(&path, Arc::new(SystemClock), seed).expect("device");
    device
        .set_identity(&Identity {
            device_id: enrolled.device_id,
            courier_id: enrolled.courier_id,
            token: enrolled.token,
        })
        .expect("identity");
    let mut rng = StdRng::seed_from_u64(seed);
    let mut queue = Outbox::open(&path).expect("second connection");
    let mut digests = Vec::new();
    for i in 0..6u64 {
        let size = rng.random_range(10_000..120_000);
        let bytes: Vec<u8> = (0..size).map(|_| rng.random()).collect();
        let digest = BlobDigest::of(&bytes);
        // Full photos queued before their thumbnails: the queue still sends thumbnails first.
        let kind = if i % 2 == 0 {
            BlobKind::Photo
        } else {
            BlobKind::Thumbnail
        };
        queue
            .enqueue_blob(&digest, &bytes, kind, None, i)
            .expect("enqueue");
        digests.push((digest, kind));
    }
    // A stale session from before a server restart restarts cleanly.
    queue
        .set_blob_session(&digests[1].0, Some("/v1/uploads/gone"))
        .expect("session");
    let transport = Arc::new(Cutting {
        inner: HttpBlobTransport::new(&format!("http://{addr}"), Duration::from_secs(10))
            .expect("http"),
        rng: Mutex::new(StdRng::seed_from_u64(seed)),
        created: Mutex::new(Vec::new()),
        cuts: Mutex::new(0),
    });
    let uploader = Uploader::new(device.clone(), transport.clone()).with_chunk(16 * 1024);
    let mut rounds = 0;
    while queue.pending_blobs().expect("pending") > 0 {
        rounds += 1;
        assert!(rounds < 500, "seed {seed}: no progress");
        let _ = uploader.drain().await;
    }
    assert!(*transport.cuts.lock().expect("lock") > 0, "seed {seed}");
    for (d, _) in &digests {
        assert!(
            doorstep_server::blobs::BlobStore::contains(store.as_ref(), d),
            "seed {seed}: {d} missing"
        );
    }
    let created = transport.created.lock().expect("lock").clone();
    let first_photo = created
        .iter()
        .position(|c| {
            digests
                .iter()
                .any(|(d, k)| d.as_str() == c && *k == BlobKind::Photo)
        })
        .expect("a photo was created");
    let last_thumb = created
        .iter()
        .rposition(|c| {
            digests
                .iter()
                .any(|(d, k)| d.as_str() == c && *k == BlobKind::Thumbnail)
        })
        .expect("a thumbnail was created");
    assert!(last_thumb < first_photo, "seed {seed}: {created:?}");
    server.abort();
}
