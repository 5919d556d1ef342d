//! Cross-replica signals over `LISTEN`/`NOTIFY`.
//!
//! - [`CHANGES`]: every office command that gives a courier something to pull sends `NOTIFY`
//!   inside its transaction (delivered at commit, folded per transaction); each notification
//!   becomes a local wake-up. It carries no payload anyone depends on: woken long-polls re-read
//!   the store.
//! - [`PEERS`]: messages a server publishes for the others (the dashboard's live stream),
//!   sent outside any transaction, already coalesced by the sender.
//!
//! Every server keeps one connection that listens on both. After a lost connection it
//! reconnects with full-jitter backoff and tells both watchers once, because notifications
//! sent while it was away are gone.

use super::PgStore;
use crate::store::{ChangeSignal, PeerSink};
use futures::StreamExt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio_postgres::AsyncMessage;

/// The change channel.
pub(super) const CHANGES: &str = "doorstep_changes";
/// The channel of messages between servers.
pub(super) const PEERS: &str = "doorstep_peers";
const FIRST_RETRY: Duration = Duration::from_millis(100);
const LAST_RETRY: Duration = Duration::from_secs(5);

/// Who hears what the listener receives; set once each, read at every notification.
#[derive(Default)]
pub(super) struct Watchers {
    changes: OnceLock<ChangeSignal>,
    peers: OnceLock<PeerSink>,
    started: OnceLock<()>,
}

impl Watchers {
    fn changed(&self) {
        if let Some(signal) = self.changes.get() {
            signal();
        }
    }
    fn peer_message(&self, message: Option<&str>) {
        if let Some(sink) = self.peers.get() {
            sink(message);
        }
    }
}

impl PgStore {
    pub(super) fn watch_changes_impl(&self, signal: ChangeSignal) {
        if self.watchers.changes.set(signal).is_err() {
            tracing::warn!("a change watcher was already set; the new one is ignored");
        }
        self.start_listener();
    }

    pub(super) fn watch_peers_impl(&self, sink: PeerSink) {
        if self.watchers.peers.set(sink).is_err() {
            tracing::warn!("a peer watcher was already set; the new one is ignored");
        }
        self.start_listener();
    }

    pub(super) fn publish_to_peers_impl(&self, message: &str) -> crate::store::StoreResult<()> {
        self.run(async |c| {
            c.execute("SELECT pg_notify($1, $2)", &[&PEERS, &message])
                .await?;
            Ok(())
        })
    }

    /// Starts the listener on the store's runtime, once; it lives as long as the store.
    fn start_listener(&self) {
        let (config, watchers) = (self.config.clone(), self.watchers.clone());
        let handle = self.handle.clone();
        self.watchers.started.get_or_init(move || {
            handle.spawn(listen(config, watchers));
        });
    }
}

async fn listen(config: tokio_postgres::Config, watchers: Arc<Watchers>) {
    let mut retry = FIRST_RETRY;
    loop {
        match config.connect(tokio_postgres::NoTls).await {
            Ok((client, mut connection)) => {
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
                let driver = tokio::spawn(async move {
                    let mut messages =
                        futures::stream::poll_fn(move |cx| connection.poll_message(cx));
                    while let Some(Ok(message)) = messages.next().await {
                        if let AsyncMessage::Notification(n) = message
                            && tx.send(n).is_err()
                        {
                            break;
                        }
                    }
                });
                match client
                    .batch_execute(&format!("LISTEN {CHANGES}; LISTEN {PEERS}"))
                    .await
                {
                    Ok(()) => {
                        tracing::debug!("listening for changes and messages of other servers");
                        retry = FIRST_RETRY;
                        // Whatever was committed or said while nobody listened.
                        watchers.changed();
                        watchers.peer_message(None);
                        while let Some(n) = rx.recv().await {
                            if n.channel() == PEERS {
                                watchers.peer_message(Some(n.payload()));
                            } else {
                                watchers.changed();
                            }
                        }
                        tracing::warn!("listener lost its connection; reconnecting");
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot LISTEN for changes"),
                }
                driver.abort();
            }
            Err(e) => tracing::warn!(error = %e, "listener cannot connect"),
        }
        // Full jitter, so servers that lost the database together do not reconnect in step.
        let wait = retry.mul_f64(rand::random::<f64>());
        tokio::time::sleep(wait).await;
        retry = (retry * 2).min(LAST_RETRY);
    }
}
