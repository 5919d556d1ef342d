//! The blob API over HTTP (reqwest).

use super::{BlobRequest, BlobResponse, BlobTransport};
use crate::transport::http::map_error;
use crate::transport::http::parse_retry_after;
use crate::transport::{RawResponse, TransportError};
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct HttpBlobTransport {
    client: reqwest::Client,
    base_url: String,
}

impl HttpBlobTransport {
    pub fn new(base_url: &str, timeout: Duration) -> Result<Self, TransportError> {
        Ok(Self {
            client: crate::transport::http::client(timeout)?,
            base_url: base_url.trim_end_matches('/').to_owned(),
        })
    }
}

#[async_trait::async_trait]
impl BlobTransport for HttpBlobTransport {
    async fn send(&self, request: BlobRequest) -> Result<BlobResponse, TransportError> {
        let b = match request {
            BlobRequest::Create {
                token,
                digest,
                size,
            } => self
                .client
                .post(format!("{}/v1/uploads", self.base_url))
                .bearer_auth(token)
                .json(&serde_json::json!({"digest": digest, "size": size})),
            BlobRequest::Offset { token, location } => self
                .client
                .head(format!("{}{location}", self.base_url))
                .bearer_auth(token),
            BlobRequest::Append {
                token,
                location,
                offset,
                checksum,
                chunk,
            } => self
                .client
                .patch(format!("{}{location}", self.base_url))
                .bearer_auth(token)
                .header("upload-offset", offset)
                .header("upload-checksum", format!("sha256 {checksum}"))
                .header("content-type", "application/offset+octet-stream")
                .body(chunk),
        };
        let res = b.send().await.map_err(map_error)?;
        let h = |n: &str| {
            res.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let upload_offset = h("upload-offset").and_then(|s| s.parse().ok());
        let location = h("location");
        let retry_after = parse_retry_after(h("retry-after").as_deref());
        let content_type = h("content-type");
        let status = res.status().as_u16();
        let body = res.bytes().await.map_err(map_error)?;
        Ok(BlobResponse {
            raw: RawResponse {
                status,
                retry_after,
                content_type,
                body,
            },
            upload_offset,
            location,
        })
    }
}
