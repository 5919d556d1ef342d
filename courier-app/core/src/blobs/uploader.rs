//! Drains the outbox's upload queue with resumable uploads.

use super::{BlobRequest, BlobTransport};
use crate::device::{Device, DeviceError};
use crate::outbox::QueuedBlob;
use crate::transport::TransportError;
use bytes::Bytes;
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// Chunk size of one `PATCH` (small enough to make progress on a poor link).
pub const DEFAULT_CHUNK: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("the device is not enrolled")]
    NotEnrolled,
    #[error("network: {0}")]
    Transport(#[from] TransportError),
    #[error("the server answered {status}: {detail}")]
    Server { status: u16, detail: String },
    #[error(transparent)]
    Device(#[from] DeviceError),
}

pub struct Uploader {
    device: Device,
    transport: Arc<dyn BlobTransport>,
    chunk: usize,
}

impl Uploader {
    pub fn new(device: Device, transport: Arc<dyn BlobTransport>) -> Self {
        Self {
            device,
            transport,
            chunk: DEFAULT_CHUNK,
        }
    }

    pub fn with_chunk(mut self, chunk: usize) -> Self {
        self.chunk = chunk.max(1);
        self
    }

    /// Uploads queued blobs until the queue is empty; returns how many landed. A transport
    /// error stops the round (the session is kept: the next round resumes at the offset).
    pub async fn drain(&self) -> Result<u64, UploadError> {
        let mut done = 0;
        while let Some(blob) = self.device.with_outbox(|o| o.next_blob())? {
            self.upload(blob).await?;
            done += 1;
        }
        Ok(done)
    }

    async fn upload(&self, blob: QueuedBlob) -> Result<(), UploadError> {
        let token = self
            .device
            .identity()?
            .ok_or(UploadError::NotEnrolled)?
            .token;
        let stop = blob.stop_id.clone().unwrap_or_default();
        let _span =
            tracing::info_span!("blob_upload", stop_id = %stop, digest = %blob.digest).entered();
        let size = blob.bytes.len() as u64;
        let mut session = blob.session.clone();
        loop {
            let (location, mut offset) = match session.take() {
                Some(loc) => {
                    let a = self
                        .transport
                        .send(BlobRequest::Offset {
                            token: token.clone(),
                            location: loc.clone(),
                        })
                        .await?;
                    match a.raw.status {
                        200..=299 => (loc, a.upload_offset.unwrap_or(0)),
                        404 | 410 => {
                            // Expired or unknown: start over cleanly.
                            tracing::info!("upload session gone, restarting");
                            self.device
                                .with_outbox(|o| o.set_blob_session(&blob.digest, None))?;
                            continue;
                        }
                        s => return Err(server(s, &a.raw.body)),
                    }
                }
                None => {
                    let a = self
                        .transport
                        .send(BlobRequest::Create {
                            token: token.clone(),
                            digest: blob.digest.to_string(),
                            size,
                        })
                        .await?;
                    match (a.raw.status, a.location) {
                        (200, _) => return self.finished(&blob),
                        (201, Some(loc)) => {
                            self.device
                                .with_outbox(|o| o.set_blob_session(&blob.digest, Some(&loc)))?;
                            (loc, 0)
                        }
                        (s, _) => return Err(server(s, &a.raw.body)),
                    }
                }
            };
            loop {
                let end = (offset as usize + self.chunk).min(blob.bytes.len());
                let chunk = Bytes::copy_from_slice(&blob.bytes[offset as usize..end]);
                let a = self
                    .transport
                    .send(BlobRequest::Append {
                        token: token.clone(),
                        location: location.clone(),
                        offset,
                        checksum: hex::encode(Sha256::digest(&chunk)),
                        chunk,
                    })
                    .await?;
                match a.raw.status {
                    200..=299 => {
                        offset = a.upload_offset.unwrap_or(end as u64);
                        if offset >= size {
                            return self.finished(&blob);
                        }
                    }
                    409 => match a.upload_offset {
                        Some(o) => offset = o,
                        None => return Err(server(409, &a.raw.body)),
                    },
                    404 | 410 => {
                        self.device
                            .with_outbox(|o| o.set_blob_session(&blob.digest, None))?;
                        break;
                    }
                    s => return Err(server(s, &a.raw.body)),
                }
            }
        }
    }

    fn finished(&self, blob: &QueuedBlob) -> Result<(), UploadError> {
        tracing::info!(digest = %blob.digest, "blob on the server");
        self.device.with_outbox(|o| o.blob_uploaded(&blob.digest))?;
        Ok(())
    }
}

fn server(status: u16, body: &[u8]) -> UploadError {
    UploadError::Server {
        status,
        detail: String::from_utf8_lossy(body).chars().take(200).collect(),
    }
}
