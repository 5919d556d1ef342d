//! The server's side of the story: every event it logged for the simulated devices, read through
//! the dispatcher API (`GET /v1/dispatch/devices/{id}/events`) or, in process, from the store.

use crate::check::LoggedEvent;
use doorstep_server::store::{Store, StoreError};
use doorstep_shared::DeviceId;
use doorstep_shared::protocol::StoredEvent;
use std::time::Duration;

const PAGE: u32 = 2_000;

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("reading the server's log failed: {0}")]
    Http(#[from] reqwest::Error),
    #[error("the dispatcher API answered {status} for {url}: {body}")]
    Status {
        status: u16,
        url: String,
        body: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn logged(courier: usize, e: StoredEvent) -> Option<LoggedEvent> {
    Some(LoggedEvent {
        courier,
        device_seq: e.device_seq?,
        event_id: e.event_id,
        intent_key: e.intent_key,
        status: e.status,
        received_at_ms: e.received_at_ms,
    })
}

/// Reads the log of each `(courier, device)` from an in-process store.
pub fn from_store<S: Store>(
    store: &S,
    devices: &[(usize, DeviceId)],
) -> Result<Vec<LoggedEvent>, LogError> {
    let mut out = Vec::new();
    for &(courier, device) in devices {
        let mut after = 0;
        loop {
            let page = store.device_events(device, after, PAGE)?;
            let n = page.len();
            for e in page {
                after = after.max(e.device_seq.unwrap_or(after));
                out.extend(logged(courier, e));
            }
            if n < PAGE as usize {
                break;
            }
        }
    }
    Ok(out)
}

/// A dispatcher client for the checks of `doorstep-sim run`.
#[derive(Clone, Debug)]
pub struct DispatchClient {
    http: reqwest::Client,
    base_url: String,
    token: String,
}

impl DispatchClient {
    pub fn new(base_url: &str, token: &str) -> Result<Self, LogError> {
        Ok(Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()?,
            base_url: base_url.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
        })
    }

    async fn page(&self, device: DeviceId, after: u64) -> Result<Vec<StoredEvent>, LogError> {
        let url = format!("{}/v1/dispatch/devices/{device}/events", self.base_url);
        let resp = self
            .http
            .get(&url)
            .bearer_auth(&self.token)
            .query(&[("after_seq", after), ("limit", u64::from(PAGE))])
            .send()
            .await?;
        let status = resp.status();
        if !status.is_success() {
            return Err(LogError::Status {
                status: status.as_u16(),
                url,
                body: resp.text().await.unwrap_or_default(),
            });
        }
        Ok(resp.json().await?)
    }

    /// Reads the log of each `(courier, device)` over HTTP, page by page.
    pub async fn log(&self, devices: &[(usize, DeviceId)]) -> Result<Vec<LoggedEvent>, LogError> {
        let mut out = Vec::new();
        for &(courier, device) in devices {
            let mut after = 0;
            loop {
                let page = self.page(device, after).await?;
                let n = page.len();
                for e in page {
                    after = after.max(e.device_seq.unwrap_or(after));
                    out.extend(logged(courier, e));
                }
                if n < PAGE as usize {
                    break;
                }
            }
        }
        Ok(out)
    }
}
