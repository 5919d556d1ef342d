//! The network seam. The sync engine speaks to the server only through [`Transport`]: raw HTTP
//! semantics (status, `Retry-After`, body bytes) without any interpretation, so a real client
//! ([`http::HttpTransport`]), a fault injector ([`faulty::FaultyTransport`]) and an in-process
//! fake server ([`crate::testing::FakeServer`]) are interchangeable.
//!
//! **Architecture invariant:** a transport never parses protocol bodies and never retries;
//! classifying answers and deciding to retry is the engine's job.

pub mod codec;
pub mod faulty;
pub mod http;

pub use codec::Encoding;

use bytes::Bytes;
use doorstep_shared::protocol::PullQuery;
use std::time::Duration;

/// One request of the device API.
#[derive(Clone, Debug, PartialEq)]
pub enum Request {
    /// `POST /v1/enroll` with a JSON `EnrollRequest`.
    Enroll { body: Bytes },
    /// `POST /v1/sync/push` with a JSON `PushRequest`, encoded as `encoding`.
    Push {
        token: String,
        encoding: Encoding,
        body: Bytes,
    },
    /// `GET /v1/sync/pull`.
    Pull { token: String, query: PullQuery },
}

impl Request {
    /// Bytes this request puts on the wire as body.
    pub fn body_len(&self) -> usize {
        match self {
            Self::Enroll { body } | Self::Push { body, .. } => body.len(),
            Self::Pull { .. } => 0,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::Enroll { .. } => "enroll",
            Self::Push { .. } => "push",
            Self::Pull { .. } => "pull",
        }
    }
}

/// An HTTP answer, uninterpreted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawResponse {
    pub status: u16,
    /// `Retry-After`, when the server sent one in seconds.
    pub retry_after: Option<Duration>,
    pub content_type: Option<String>,
    pub body: Bytes,
}

impl RawResponse {
    pub fn json(status: u16, body: impl Into<Bytes>) -> Self {
        Self {
            status,
            retry_after: None,
            content_type: Some("application/json".to_owned()),
            body: body.into(),
        }
    }
}

/// The request got no HTTP answer. Whether the server acted on it is unknown.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    #[error("the device is offline")]
    Offline,
    #[error("the request timed out")]
    Timeout,
    #[error("could not connect: {0}")]
    Connect(String),
    #[error("the connection failed: {0}")]
    Io(String),
}

/// Sends one request and returns the server's raw answer.
#[async_trait::async_trait]
pub trait Transport: Send + Sync {
    async fn send(&self, request: Request) -> Result<RawResponse, TransportError>;
}

#[async_trait::async_trait]
impl<T: Transport + ?Sized> Transport for std::sync::Arc<T> {
    async fn send(&self, request: Request) -> Result<RawResponse, TransportError> {
        (**self).send(request).await
    }
}
