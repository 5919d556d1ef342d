//! Resumable photo upload from the device: the queue lives in the outbox
//! ([`crate::outbox::BlobKind`]), the [`Uploader`] drains it over a [`BlobTransport`] with
//! the server's tus-like protocol (create, `HEAD` offset, `PATCH` chunks with a SHA-256
//! checksum). It runs as its own task and never blocks event sync.

pub mod http;
mod uploader;

pub use uploader::{UploadError, Uploader};

use crate::transport::{RawResponse, TransportError};
use bytes::Bytes;

/// One blob-API request (relative path, e.g. `/v1/uploads/{id}`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BlobRequest {
    Create {
        token: String,
        digest: String,
        size: u64,
    },
    Offset {
        token: String,
        location: String,
    },
    Append {
        token: String,
        location: String,
        offset: u64,
        checksum: String,
        chunk: Bytes,
    },
}

/// The raw answer plus the headers the upload protocol uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobResponse {
    pub raw: RawResponse,
    pub upload_offset: Option<u64>,
    pub location: Option<String>,
}

#[async_trait::async_trait]
pub trait BlobTransport: Send + Sync {
    async fn send(&self, request: BlobRequest) -> Result<BlobResponse, TransportError>;
}

#[async_trait::async_trait]
impl<T: BlobTransport + ?Sized> BlobTransport for std::sync::Arc<T> {
    async fn send(&self, request: BlobRequest) -> Result<BlobResponse, TransportError> {
        (**self).send(request).await
    }
}
