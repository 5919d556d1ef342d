//! Blob upload throughput over loopback HTTP (create + 1 MiB `PATCH` chunks with SHA-256
//! checksums, digest verified at completion, atomic rename) against a raw file copy of the same
//! bytes on the same disk. As in production, the server runs on an SQLite file and keeps each
//! upload session's offset there (one row write per chunk). Run:
//! `cargo bench -p doorstep-server --bench upload`; writes `target/bench/upload.json`.

use doorstep_server::blobs::FsBlobStore;
use doorstep_server::blobs::uploads::Uploads;
use doorstep_server::clock::SystemClock;
use doorstep_server::seed::{SeedOptions, seed_demo};
use doorstep_shared::BlobDigest;
use doorstep_shared::event::GeoPoint;
use doorstep_shared::protocol::EnrollRequest;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Instant;

const SIZE: usize = 32 * 1024 * 1024;
const CHUNK: usize = 1024 * 1024;

fn fail(what: &str, e: impl std::fmt::Display) -> ! {
    eprintln!("upload bench: {what}: {e}");
    std::process::exit(1)
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| fail("tempdir", e));
    let db = format!("sqlite://{}", dir.path().join("doorstep.db").display());
    let app = doorstep_server::startup::build_app(&db, Arc::new(SystemClock))
        .unwrap_or_else(|e| fail("app", e));
    let world = seed_demo(
        &app,
        &SeedOptions {
            couriers: 1,
            stops_per_route: 1,
            seed: 1,
            day: "2026-06-01".into(),
            day_start_ms: 1_780_000_000_000,
            depot: GeoPoint {
                lat: 52.5,
                lon: 13.4,
            },
        },
    )
    .await
    .unwrap_or_else(|e| fail("seed", e));
    let token = app
        .enroll(EnrollRequest {
            code: world.couriers[0].enrollment_code.clone(),
            device_name: "bench".into(),
            public_key: None,
        })
        .await
        .unwrap_or_else(|e| fail("enroll", e))
        .token;
    let uploads = Arc::new(Uploads::with_sessions(
        Arc::new(FsBlobStore::new(dir.path().join("blobs"))),
        3_600_000,
        app.store.clone(),
    ));
    let router = doorstep_server::http::blobs::router(app.clone(), uploads);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| fail("bind", e));
    let addr = listener.local_addr().unwrap_or_else(|e| fail("addr", e));
    tokio::spawn(async move { axum::serve(listener, router).await });

    let data: Vec<u8> = (0..SIZE).map(|i| (i * 31 % 251) as u8).collect();
    let digest = BlobDigest::of(&data);
    let client = reqwest::Client::new();
    let base = format!("http://{addr}");
    let started = Instant::now();
    let created = client
        .post(format!("{base}/v1/uploads"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"digest": digest, "size": SIZE}))
        .send()
        .await
        .unwrap_or_else(|e| fail("create", e));
    let location = created
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .unwrap_or_else(|| fail("create", "no Location"));
    let mut offset = 0usize;
    while offset < SIZE {
        let chunk = data[offset..(offset + CHUNK).min(SIZE)].to_vec();
        let sum = hex::encode(Sha256::digest(&chunk));
        let n = chunk.len();
        let res = client
            .patch(format!("{base}{location}"))
            .bearer_auth(&token)
            .header("upload-offset", offset)
            .header("upload-checksum", format!("sha256 {sum}"))
            .body(chunk)
            .send()
            .await
            .unwrap_or_else(|e| fail("patch", e));
        if res.status().as_u16() != 204 {
            fail("patch", res.status());
        }
        offset += n;
    }
    let upload_s = started.elapsed().as_secs_f64();

    let src = dir.path().join("src.bin");
    std::fs::write(&src, &data).unwrap_or_else(|e| fail("write", e));
    let started = Instant::now();
    std::fs::copy(&src, dir.path().join("copy.bin")).unwrap_or_else(|e| fail("copy", e));
    std::fs::File::open(dir.path().join("copy.bin"))
        .and_then(|f| f.sync_all())
        .unwrap_or_else(|e| fail("sync", e));
    let copy_s = started.elapsed().as_secs_f64();
    let mib = SIZE as f64 / (1024.0 * 1024.0);
    let report = serde_json::json!({
        "bench": "blob_upload_loopback",
        "sessions": "SQLite file (as in production)",
        "bytes": SIZE,
        "chunk_bytes": CHUNK,
        "upload_s": upload_s,
        "upload_mib_s": mib / upload_s,
        "raw_copy_s": copy_s,
        "raw_copy_mib_s": mib / copy_s,
        "upload_vs_copy": copy_s / upload_s,
    });
    println!("{report:#}");
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench");
    if let Err(e) = std::fs::create_dir_all(&out)
        .and_then(|()| std::fs::write(out.join("upload.json"), format!("{report:#}\n")))
    {
        eprintln!("cannot write target/bench/upload.json: {e}");
    }
}
