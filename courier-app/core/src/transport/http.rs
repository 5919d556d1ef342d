//! The real transport: HTTP/1.1 or HTTP/2 over rustls via reqwest.

use super::{RawResponse, Request, Transport, TransportError};
use std::time::Duration;

/// Speaks the device API of a Doorstep server at `base_url` (e.g. `http://127.0.0.1:8080`).
#[derive(Clone, Debug)]
pub struct HttpTransport {
    client: reqwest::Client,
    base_url: String,
}

impl HttpTransport {
    pub fn new(base_url: &str, timeout: Duration) -> Result<Self, TransportError> {
        Ok(Self {
            client: client(timeout)?,
            base_url: base_url.trim_end_matches('/').to_owned(),
        })
    }
}

/// The HTTP client every device transport uses: a whole-request timeout and a bounded connect.
pub(crate) fn client(timeout: Duration) -> Result<reqwest::Client, TransportError> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .build()
        .map_err(|e| TransportError::Io(e.to_string()))
}

/// Classifies a client error: timeouts and refused connections are told apart from the rest.
pub(crate) fn map_error(e: reqwest::Error) -> TransportError {
    if e.is_timeout() {
        TransportError::Timeout
    } else if e.is_connect() {
        TransportError::Connect(e.to_string())
    } else {
        TransportError::Io(e.to_string())
    }
}

/// `Retry-After` in delta-seconds (the form this API sends); an HTTP date is ignored.
pub fn parse_retry_after(value: Option<&str>) -> Option<Duration> {
    value?.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[async_trait::async_trait]
impl Transport for HttpTransport {
    async fn send(&self, request: Request) -> Result<RawResponse, TransportError> {
        let builder = match request {
            Request::Enroll { body } => self
                .client
                .post(format!("{}/v1/enroll", self.base_url))
                .header("content-type", "application/json")
                .body(body),
            Request::Push {
                token,
                encoding,
                body,
            } => {
                let mut b = self
                    .client
                    .post(format!("{}/v1/sync/push", self.base_url))
                    .bearer_auth(token)
                    .header("content-type", "application/json")
                    .body(body);
                if let Some(h) = encoding.header() {
                    b = b.header("content-encoding", h);
                }
                b
            }
            Request::Pull { token, query } => {
                let mut params = vec![
                    ("cursor", query.cursor.to_string()),
                    ("wait_ms", query.wait_ms.to_string()),
                ];
                if let Some(limit) = query.limit {
                    params.push(("limit", limit.to_string()));
                }
                self.client
                    .get(format!("{}/v1/sync/pull", self.base_url))
                    .bearer_auth(token)
                    .query(&params)
            }
        };
        let resp = builder.send().await.map_err(map_error)?;
        let status = resp.status().as_u16();
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let retry_after = parse_retry_after(header("retry-after").as_deref());
        let content_type = header("content-type");
        let body = resp.bytes().await.map_err(map_error)?;
        Ok(RawResponse {
            status,
            retry_after,
            content_type,
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds_parse_and_dates_are_ignored() {
        assert_eq!(parse_retry_after(Some(" 7 ")), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after(Some("Wed, 21 Oct 2015 07:28:00 GMT")),
            None
        );
        assert_eq!(parse_retry_after(None), None);
    }

    #[tokio::test]
    async fn a_closed_port_is_a_connect_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let t = HttpTransport::new(&format!("http://{addr}"), Duration::from_secs(2)).unwrap();
        let err = t
            .send(Request::Pull {
                token: "t".into(),
                query: Default::default(),
            })
            .await
            .unwrap_err();
        assert!(matches!(err, TransportError::Connect(_)), "{err:?}");
    }
}
