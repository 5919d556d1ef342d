//! Blob endpoints: resumable uploads for devices (`/v1/uploads`), blob reads for dispatchers
//! (`/v1/blobs/{digest}`) and the proof re-verification (`/v1/dispatch/stops/{id}/proof`).
//!
//! Upload protocol (tus-like; headers as in tus 1.0, checksum as hex SHA-256):
//! - `POST /v1/uploads` `{"digest", "size"}` → `201` + `Location` + `Upload-Offset: 0`, or
//!   `200 {"status":"stored"}` when the digest is already stored.
//! - `HEAD /v1/uploads/{id}` → `204` + `Upload-Offset` + `Upload-Length`; `404` / `410` when
//!   the session is unknown / expired (start a new one; a HEAD answer has no body).
//! - `PATCH /v1/uploads/{id}` with `Upload-Offset` and `Upload-Checksum: sha256 <hex>` →
//!   `204` + the new `Upload-Offset` (and `Upload-Complete: true` when verified and stored);
//!   `409` `upload_offset_mismatch` on a wrong offset (the right one is in `Upload-Offset`),
//!   `460` `checksum_mismatch` on a chunk checksum mismatch, `422` `digest_mismatch` when the
//!   whole does not hash to the declared digest, `413` `payload_too_large` for a chunk over
//!   [`MAX_UPLOAD_CHUNK_BYTES`] (4 MiB) or past the declared size.
//! - Unknown session: `404` `upload_not_found`; expired: `410` `upload_expired`. Sessions are
//!   kept in the database, so a restart does not lose them.

use super::problem::ApiJson;
use super::{Device, Dispatcher};
use crate::blobs::sessions::UploadSessions;
use crate::blobs::uploads::{Appended, Created, UploadError, Uploads};
use crate::blobs::{BlobStore, FsBlobStore};
use crate::evidence::verify_stop;
use crate::service::{ApiError, App};
use crate::settings::Settings;
use crate::store::Store;
use axum::Router;
use axum::body::Body;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use doorstep_shared::dashboard::{LiveEvent, ProofReport};
use doorstep_shared::protocol::MAX_UPLOAD_CHUNK_BYTES;
use doorstep_shared::{BlobDigest, ProblemCode, StopId};
use std::sync::Arc;

/// The blob side of the server: the store and the upload sessions.
pub struct BlobState<S: Store> {
    pub app: Arc<App<S>>,
    pub uploads: Arc<Uploads>,
}

impl<S: Store> Clone for BlobState<S> {
    fn clone(&self) -> Self {
        Self {
            app: self.app.clone(),
            uploads: self.uploads.clone(),
        }
    }
}

/// Uploads over a file-system store in `settings.blob_dir`, with their sessions kept by
/// `sessions` (the database: they survive a restart and any server resumes them).
pub fn uploads_for(settings: &Settings, sessions: Arc<dyn UploadSessions>) -> Arc<Uploads> {
    Arc::new(Uploads::with_sessions(
        Arc::new(FsBlobStore::new(&settings.blob_dir)),
        settings.upload_ttl_ms,
        sessions,
    ))
}

/// The blob routes over `app` and `uploads`.
pub fn router<S: Store>(app: Arc<App<S>>, uploads: Arc<Uploads>) -> Router {
    Router::new()
        .route("/v1/uploads", post(create::<S>))
        .route(
            "/v1/uploads/{id}",
            axum::routing::head(offset::<S>).patch(append::<S>),
        )
        .route("/v1/blobs/{digest}", get(blob::<S>))
        .route("/v1/dispatch/stops/{stop_id}/proof", get(proof::<S>))
        .with_state(BlobState { app, uploads })
}

/// Every upload failure as `application/problem+json` with its stable [`ProblemCode`].
fn upload_problem(e: UploadError) -> Response {
    let detail = e.to_string();
    let code = match &e {
        UploadError::NotFound(_) => ProblemCode::UploadNotFound,
        UploadError::Expired(_) => ProblemCode::UploadExpired,
        UploadError::OffsetMismatch { .. } => ProblemCode::UploadOffsetMismatch,
        UploadError::ChecksumMismatch => ProblemCode::ChecksumMismatch,
        UploadError::DigestMismatch(_) => ProblemCode::DigestMismatch,
        UploadError::TooLong { .. } | UploadError::TooLarge(_) => ProblemCode::PayloadTooLarge,
        UploadError::Storage(_) | UploadError::Sessions(_) => {
            tracing::error!(error = %e, "blob storage failed");
            return ApiError::new(ProblemCode::StorageBusy, "blob storage failed; retry")
                .into_response();
        }
    };
    let mut r = ApiError::new(code, detail).into_response();
    if let UploadError::OffsetMismatch { expected, .. } = e {
        r.headers_mut()
            .insert("upload-offset", HeaderValue::from(expected));
    }
    r
}

fn bad_request(detail: &str) -> Response {
    ApiError::new(ProblemCode::MalformedRequest, detail).into_response()
}

/// The device extractor over the blob state: the first argument of every device handler here,
/// so the token is checked before the path, headers or body are looked at.
impl<S: Store> FromRequestParts<BlobState<S>> for Device {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, st: &BlobState<S>) -> Result<Self, ApiError> {
        <Device as FromRequestParts<Arc<App<S>>>>::from_request_parts(parts, &st.app).await
    }
}

/// The dispatcher extractor over the blob state, likewise first.
impl<S: Store> FromRequestParts<BlobState<S>> for Dispatcher {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, st: &BlobState<S>) -> Result<Self, ApiError> {
        <Dispatcher as FromRequestParts<Arc<App<S>>>>::from_request_parts(parts, &st.app).await
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, UploadError> + Send + 'static,
) -> Result<T, Response> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(upload_problem),
        Err(_) => Err(ApiError::bare(ProblemCode::Internal).into_response()),
    }
}

#[derive(serde::Deserialize)]
pub struct CreateUpload {
    pub digest: BlobDigest,
    pub size: u64,
}

async fn create<S: Store>(
    State(st): State<BlobState<S>>,
    _: Device,
    ApiJson(req): ApiJson<CreateUpload>,
) -> Response {
    let now = st.app.clock.now_ms();
    let id = uuid::Uuid::now_v7().simple().to_string();
    let uploads = st.uploads.clone();
    match blocking(move || uploads.create(req.digest, req.size, now, id)).await {
        Ok(Created::AlreadyStored) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"status":"stored"}"#,
        )
            .into_response(),
        Ok(Created::Session { id, offset }) => {
            let location = format!("/v1/uploads/{id}");
            let body = serde_json::json!({"id": id, "location": location, "offset": offset});
            let mut r = (StatusCode::CREATED, body.to_string()).into_response();
            let h = r.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            if let Ok(v) = HeaderValue::from_str(&location) {
                h.insert(header::LOCATION, v);
            }
            h.insert("upload-offset", HeaderValue::from(offset));
            r
        }
        Err(r) => r,
    }
}

async fn offset<S: Store>(
    State(st): State<BlobState<S>>,
    _: Device,
    Path(id): Path<String>,
) -> Response {
    let now = st.app.clock.now_ms();
    let uploads = st.uploads.clone();
    match blocking(move || uploads.offset(&id, now)).await {
        Ok((offset, size)) => {
            let mut r = StatusCode::NO_CONTENT.into_response();
            r.headers_mut()
                .insert("upload-offset", HeaderValue::from(offset));
            r.headers_mut()
                .insert("upload-length", HeaderValue::from(size));
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Err(r) => r,
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

async fn append<S: Store>(
    State(st): State<BlobState<S>>,
    _: Device,
    headers: HeaderMap,
    Path(id): Path<String>,
    raw: Body,
) -> Response {
    let Some(offset) = header_str(&headers, "upload-offset").and_then(|s| s.parse::<u64>().ok())
    else {
        return bad_request("Upload-Offset header missing");
    };
    let Some(checksum) = header_str(&headers, "upload-checksum")
        .and_then(|s| s.strip_prefix("sha256 "))
        .map(str::to_owned)
    else {
        return bad_request("Upload-Checksum: sha256 <hex> header missing");
    };
    let body = match super::body::read_limited(raw, &headers, MAX_UPLOAD_CHUNK_BYTES).await {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let now = st.app.clock.now_ms();
    let uploads = st.uploads.clone();
    match blocking(move || uploads.append(&id, offset, &checksum, &body, now)).await {
        Ok(done) => {
            let (offset, complete) = match done {
                Appended::Partial { offset } => (offset, false),
                Appended::Complete { digest, size, .. } => {
                    st.app.live.notify(LiveEvent::BlobStored {
                        digest,
                        server_time_ms: now,
                    });
                    (size, true)
                }
            };
            let mut r = StatusCode::NO_CONTENT.into_response();
            r.headers_mut()
                .insert("upload-offset", HeaderValue::from(offset));
            if complete {
                r.headers_mut()
                    .insert("upload-complete", HeaderValue::from_static("true"));
            }
            r
        }
        Err(r) => r,
    }
}

async fn blob<S: Store>(
    State(st): State<BlobState<S>>,
    _: Dispatcher,
    Path(digest): Path<String>,
) -> Response {
    let Ok(digest) = BlobDigest::parse(&digest) else {
        return ApiError::new(ProblemCode::NotFound, "not a blob digest").into_response();
    };
    let store = st.uploads.store().clone();
    let d = digest.clone();
    match tokio::task::spawn_blocking(move || store.read(&d)).await {
        Ok(Ok(Some(bytes))) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "image/jpeg"),
                (
                    header::CACHE_CONTROL,
                    "private, max-age=31536000, immutable",
                ),
            ],
            bytes,
        )
            .into_response(),
        Ok(Ok(None)) => ApiError::new(
            ProblemCode::NotFound,
            format!("blob {digest} is pending (not uploaded yet)"),
        )
        .into_response(),
        _ => ApiError::bare(ProblemCode::Internal).into_response(),
    }
}

/// Re-verifies a stop's evidence for a dispute, with which blobs are still pending.
pub fn proof_report<S: Store>(
    store: &S,
    blobs: &dyn BlobStore,
    stop: StopId,
) -> crate::store::StoreResult<ProofReport> {
    let logged = store.logged_proofs(stop)?;
    Ok(verify_stop(stop, &logged, &|d| blobs.contains(d)))
}

async fn proof<S: Store>(
    State(st): State<BlobState<S>>,
    _: Dispatcher,
    Path(stop): Path<String>,
) -> Response {
    let Ok(stop) = stop.parse::<StopId>() else {
        return ApiError::new(ProblemCode::NotFound, "not a stop id").into_response();
    };
    let store = st.app.store.clone();
    let blobs = st.uploads.store().clone();
    match tokio::task::spawn_blocking(move || proof_report(store.as_ref(), blobs.as_ref(), stop))
        .await
    {
        Ok(Ok(report)) => axum::Json(report).into_response(),
        Ok(Err(e)) => ApiError::from(e).into_response(),
        Err(_) => ApiError::bare(ProblemCode::Internal).into_response(),
    }
}
