//! Cross-replica change signals: every office command that gives a courier something to pull
//! sends `NOTIFY` on [`CHANNEL`] inside its transaction (delivered at commit, folded per
//! transaction), and every server keeps one connection that `LISTEN`s and turns each
//! notification into a local wake-up. The notification carries no payload anyone depends on:
//! woken long-polls re-read the store. After a lost connection the listener reconnects with
//! full-jitter backoff and signals once, because notifications sent while it was away are gone.

use super::PgStore;
use crate::store::ChangeSignal;
use futures::StreamExt;
use std::time::Duration;
use tokio_postgres::AsyncMessage;

/// The notification channel.
pub(super) const CHANNEL: &str = "doorstep_changes";
const FIRST_RETRY: Duration = Duration::from_millis(100);
const LAST_RETRY: Duration = Duration::from_secs(5);

impl PgStore {
    /// Starts the listener on the store's runtime; it lives as long as the store.
    pub(super) fn watch_changes_impl(&self, signal: ChangeSignal) {
        let config = self.config.clone();
        self.handle.spawn(listen(config, signal));
    }
}

async fn listen(config: tokio_postgres::Config, signal: ChangeSignal) {
    let mut retry = FIRST_RETRY;
    loop {
        match config.connect(tokio_postgres::NoTls).await {
            Ok((client, mut connection)) => {
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
                let driver = tokio::spawn(async move {
                    let mut messages =
                        futures::stream::poll_fn(move |cx| connection.poll_message(cx));
                    while let Some(Ok(message)) = messages.next().await {
                        if matches!(message, AsyncMessage::Notification(_)) && tx.send(()).is_err()
                        {
                            break;
                        }
                    }
                });
                match client.batch_execute(&format!("LISTEN {CHANNEL}")).await {
                    Ok(()) => {
                        tracing::debug!("listening for changes of other servers");
                        retry = FIRST_RETRY;
                        signal(); // whatever was committed while nobody listened
                        while rx.recv().await.is_some() {
                            signal();
                        }
                        tracing::warn!("change listener lost its connection; reconnecting");
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot LISTEN for changes"),
                }
                driver.abort();
            }
            Err(e) => tracing::warn!(error = %e, "change listener cannot connect"),
        }
        // Full jitter, so servers that lost the database together do not reconnect in step.
        let wait = retry.mul_f64(rand::random::<f64>());
        tokio::time::sleep(wait).await;
        retry = (retry * 2).min(LAST_RETRY);
    }
}
