//! A dashboard's view of `GET /v1/dispatch/live`: the Server-Sent Events stream read message by
//! message, as a browser's `EventSource` would.

use doorstep_shared::dashboard::LiveEvent;
use std::time::Duration;

pub struct LiveStream {
    response: reqwest::Response,
    buffer: String,
}

impl LiveStream {
    /// Opens the stream on `base` with the dispatcher's bearer token.
    pub async fn open(base: &str, dispatcher_token: &str) -> Self {
        let response = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client")
            .get(format!("{base}/v1/dispatch/live"))
            .bearer_auth(dispatcher_token)
            .send()
            .await
            .expect("open the live stream");
        assert_eq!(response.status(), 200, "live stream on {base}");
        Self {
            response,
            buffer: String::new(),
        }
    }

    /// The next message, or `None` when the stream ends.
    pub async fn next(&mut self) -> Option<LiveEvent> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let frame: String = self.buffer.drain(..end + 2).collect();
                let data: String = frame
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(str::trim_start)
                    .collect();
                if data.is_empty() {
                    continue; // a keep-alive comment
                }
                return Some(serde_json::from_str(&data).expect("a live event"));
            }
            let chunk = self.response.chunk().await.expect("read the stream")?;
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// Reads messages until one satisfies `wanted` (returned), failing after `within`.
    pub async fn wait_for(
        &mut self,
        within: Duration,
        wanted: impl Fn(&LiveEvent) -> bool,
    ) -> LiveEvent {
        let found = tokio::time::timeout(within, async {
            while let Some(event) = self.next().await {
                if wanted(&event) {
                    return Some(event);
                }
            }
            None
        })
        .await;
        match found {
            Ok(Some(event)) => event,
            Ok(None) => panic!("the live stream ended before the awaited message"),
            Err(_) => panic!("no awaited live message within {within:?}"),
        }
    }
}
