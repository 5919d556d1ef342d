//! In-process transports for the deterministic mode: the real axum router called without a
//! socket, and a tap that records what reached the server (for late redelivery) and can kill
//! the app right after the server committed a request.

use axum::body::Body;
use courier_core::transport::http::parse_retry_after;
use courier_core::transport::{RawResponse, Request, Transport, TransportError};
use http_body_util::BodyExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;
use tower::ServiceExt;

/// Calls the server's real router in process.
#[derive(Clone)]
pub struct RouterTransport {
    router: axum::Router,
}

impl RouterTransport {
    pub fn new(router: axum::Router) -> Self {
        Self { router }
    }
}

fn io(e: impl std::fmt::Display) -> TransportError {
    TransportError::Io(e.to_string())
}

fn to_http(request: Request) -> Result<axum::http::Request<Body>, TransportError> {
    let b = axum::http::Request::builder();
    let built = match request {
        Request::Enroll { body } => b
            .method("POST")
            .uri("/v1/enroll")
            .header("content-type", "application/json")
            .body(Body::from(body)),
        Request::Push {
            token,
            encoding,
            body,
        } => {
            let mut b = b
                .method("POST")
                .uri("/v1/sync/push")
                .header("authorization", format!("Bearer {token}"))
                .header("content-type", "application/json");
            if let Some(h) = encoding.header() {
                b = b.header("content-encoding", h);
            }
            b.body(Body::from(body))
        }
        Request::Pull { token, query } => {
            let mut uri = format!(
                "/v1/sync/pull?cursor={}&wait_ms={}",
                query.cursor, query.wait_ms
            );
            if let Some(limit) = query.limit {
                uri.push_str(&format!("&limit={limit}"));
            }
            b.method("GET")
                .uri(uri)
                .header("authorization", format!("Bearer {token}"))
                .body(Body::empty())
        }
    };
    built.map_err(io)
}

#[async_trait::async_trait]
impl Transport for RouterTransport {
    async fn send(&self, request: Request) -> Result<RawResponse, TransportError> {
        let response = self
            .router
            .clone()
            .oneshot(to_http(request)?)
            .await
            .map_err(io)?;
        let (parts, body) = response.into_parts();
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let status = parts.status.as_u16();
        let retry_after = parse_retry_after(header("retry-after").as_deref());
        let content_type = header("content-type");
        let body = body.collect().await.map_err(io)?.to_bytes();
        Ok(RawResponse {
            status,
            retry_after,
            content_type,
            body,
        })
    }
}

/// Shared between the taps of all devices and the scheduler.
#[derive(Debug, Default)]
pub struct Wire {
    /// Every push that reached the server, in order: candidates for a late redelivery.
    pub pushes: Mutex<Vec<Request>>,
}

/// Arms an app kill: the next request this device gets through to the server is processed,
/// then the app dies before it sees the answer.
#[derive(Debug, Default)]
pub struct KillSwitch {
    armed: AtomicBool,
    fired: Notify,
}

impl KillSwitch {
    pub fn arm(&self, on: bool) {
        self.armed.store(on, Ordering::SeqCst);
    }

    /// Completes once the switch fired.
    pub async fn fired(&self) {
        self.fired.notified().await;
    }
}

/// Records what reaches the server and fires armed kills.
pub struct Tap<T> {
    inner: T,
    wire: Arc<Wire>,
    kill: Arc<KillSwitch>,
}

impl<T> Tap<T> {
    pub fn new(inner: T, wire: Arc<Wire>, kill: Arc<KillSwitch>) -> Self {
        Self { inner, wire, kill }
    }
}

#[async_trait::async_trait]
impl<T: Transport> Transport for Tap<T> {
    async fn send(&self, request: Request) -> Result<RawResponse, TransportError> {
        if matches!(request, Request::Push { .. }) {
            self.wire
                .pushes
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(request.clone());
        }
        let answer = self.inner.send(request).await;
        if self.kill.armed.swap(false, Ordering::SeqCst) {
            self.kill.fired.notify_one();
            // The process is gone: this answer is never read.
            std::future::pending::<()>().await;
        }
        answer
    }
}
