//! The live stream across servers. Each server keeps what it announced in an [`Outbox`]; a
//! relay task ([`relay_to_peers`]) sends it every [`RELAY_INTERVAL`] as a few messages through
//! the store ([`Store::publish_to_peers`]), so a burst of pushes costs one message, not one per
//! push, and no push waits for it. Every server hands what its peers sent to its own
//! subscribers. A message that cannot be delivered whole (too large, a gap, a full outbox)
//! becomes [`LiveEvent::Resync`]: subscribers reload rather than miss something silently.

use crate::service::App;
use crate::store::{MAX_PEER_MESSAGE_BYTES, PeerSink, Store};
use doorstep_shared::dashboard::LiveEvent;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::broadcast;
use uuid::Uuid;

/// How often a server sends what it announced to its peers.
pub const RELAY_INTERVAL: Duration = Duration::from_millis(50);
/// Announcements kept between two relays; beyond it peers are told to resync.
const OUTBOX_CAPACITY: usize = 4_096;

/// One message between servers.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub struct PeerMessage {
    /// The sending server (a server ignores its own messages).
    pub origin: Uuid,
    pub events: Vec<LiveEvent>,
}

#[derive(Default)]
struct Pending {
    /// Set once a relay runs: a server without peers keeps nothing.
    enabled: bool,
    events: Vec<LiveEvent>,
    /// Announcements were dropped (outbox full, a failed send): peers must resync.
    lost: bool,
}

/// What this server announced since the last relay.
pub struct Outbox {
    origin: Uuid,
    pending: Mutex<Pending>,
}

impl Outbox {
    pub fn new(origin: Uuid) -> Self {
        Self {
            origin,
            pending: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn keep(&self, event: &LiveEvent) {
        let mut p = self.lock();
        if !p.enabled {
            return;
        }
        if p.events.len() >= OUTBOX_CAPACITY {
            p.lost = true;
        } else {
            p.events.push(event.clone());
        }
    }

    fn enable(&self) {
        self.lock().enabled = true;
    }

    /// Takes what is pending, as messages of at most `max_bytes`.
    fn take_messages(&self, max_bytes: usize) -> Vec<String> {
        let (mut events, lost) = {
            let mut p = self.lock();
            (std::mem::take(&mut p.events), std::mem::take(&mut p.lost))
        };
        if lost {
            events.insert(0, LiveEvent::Resync);
        }
        encode(self.origin, events, max_bytes)
    }

    fn mark_lost(&self) {
        self.lock().lost = true;
    }
}

/// Packs `events` greedily into messages of at most `max_bytes` (each event encoded once); an
/// event that does not fit a message on its own is sent as [`LiveEvent::Resync`].
pub fn encode(origin: Uuid, events: Vec<LiveEvent>, max_bytes: usize) -> Vec<String> {
    let head = format!(r#"{{"origin":"{origin}","events":["#);
    let tail = "]}";
    let room = max_bytes.saturating_sub(head.len() + tail.len());
    let mut out = Vec::new();
    let mut body = String::new();
    let flush = |body: &mut String, out: &mut Vec<String>| {
        if !body.is_empty() {
            out.push(format!("{head}{body}{tail}"));
            body.clear();
        }
    };
    for event in events {
        let mut json = serde_json::to_string(&event).unwrap_or_default();
        if json.len() > room {
            json = serde_json::to_string(&LiveEvent::Resync).unwrap_or_default();
        }
        let separator = usize::from(!body.is_empty());
        if body.len() + separator + json.len() > room {
            flush(&mut body, &mut out);
        }
        if !body.is_empty() {
            body.push(',');
        }
        body.push_str(&json);
    }
    flush(&mut body, &mut out);
    out
}

/// What a server does with a message from the store: its peers' events go to its subscribers,
/// its own are ignored, and a gap or an unreadable message becomes a resync.
pub fn sink(origin: Uuid, tx: broadcast::Sender<LiveEvent>) -> PeerSink {
    Arc::new(move |message: Option<&str>| {
        let Some(message) = message else {
            let _ = tx.send(LiveEvent::Resync);
            return;
        };
        match serde_json::from_str::<PeerMessage>(message) {
            Ok(m) if m.origin == origin => {}
            Ok(m) => {
                for event in m.events {
                    let _ = tx.send(event);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "unreadable message from another server");
                let _ = tx.send(LiveEvent::Resync);
            }
        }
    })
}

impl super::LiveHub {
    /// The sink a store calls with its peers' messages.
    pub fn peer_sink(&self) -> PeerSink {
        sink(self.outbox.origin, self.tx.clone())
    }
}

/// Sends what this server announces to the other servers on the same database, every
/// [`RELAY_INTERVAL`], for as long as the server runs. Returns at once when the store has no
/// peers.
pub async fn relay_to_peers<S: Store>(app: Arc<App<S>>) {
    if !app.store.has_peers() {
        return;
    }
    app.live.outbox.enable();
    let mut tick = tokio::time::interval(RELAY_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        for m in app.live.outbox.take_messages(MAX_PEER_MESSAGE_BYTES) {
            if let Err(e) = app.with_store(move |s| s.publish_to_peers(&m)).await {
                tracing::warn!(code = %e.code, "cannot reach the other servers; they will resync");
                app.live.outbox.mark_lost();
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use doorstep_shared::StopId;

    fn office(n: usize) -> LiveEvent {
        LiveEvent::Office {
            kind: "x".repeat(n),
            stop_id: Some(StopId(Uuid::nil())),
            server_time_ms: 7,
        }
    }

    fn decode(messages: &[String]) -> Vec<LiveEvent> {
        messages
            .iter()
            .flat_map(|m| {
                serde_json::from_str::<PeerMessage>(m)
                    .expect("decodes")
                    .events
            })
            .collect()
    }

    #[test]
    fn events_are_packed_into_messages_under_the_limit_in_order() {
        let events: Vec<LiveEvent> = (0..200).map(|i| office(i % 40)).collect();
        let messages = encode(Uuid::nil(), events.clone(), 1_000);
        assert!(messages.len() > 1, "200 events do not fit one 1 kB message");
        assert!(messages.iter().all(|m| m.len() <= 1_000));
        assert_eq!(decode(&messages), events);
    }

    #[test]
    fn an_event_too_large_for_any_message_becomes_a_resync() {
        let events = vec![office(1), office(5_000), office(2)];
        let messages = encode(Uuid::nil(), events, 1_000);
        assert_eq!(
            decode(&messages),
            vec![office(1), LiveEvent::Resync, office(2)]
        );
    }

    #[test]
    fn nothing_pending_sends_nothing() {
        assert!(encode(Uuid::nil(), Vec::new(), 1_000).is_empty());
    }

    #[test]
    fn an_outbox_keeps_nothing_until_a_relay_runs_and_reports_overflow_as_a_resync() {
        let outbox = Outbox::new(Uuid::nil());
        outbox.keep(&office(1));
        assert!(outbox.take_messages(7_000).is_empty(), "no peers, no copy");
        outbox.enable();
        for _ in 0..OUTBOX_CAPACITY + 3 {
            outbox.keep(&office(1));
        }
        let events = decode(&outbox.take_messages(7_000));
        assert_eq!(events.len(), OUTBOX_CAPACITY + 1);
        assert_eq!(events[0], LiveEvent::Resync);
        assert!(outbox.take_messages(7_000).is_empty(), "taken once");
    }

    #[tokio::test]
    async fn a_server_relays_its_peers_events_and_ignores_its_own() {
        let (tx, mut rx) = broadcast::channel(16);
        let me = Uuid::now_v7();
        let other = Uuid::now_v7();
        let sink = sink(me, tx);
        sink(Some(&encode(me, vec![office(1)], 7_000)[0]));
        sink(Some(&encode(other, vec![office(2)], 7_000)[0]));
        sink(Some("not json"));
        sink(None);
        assert_eq!(rx.recv().await.ok(), Some(office(2)));
        assert_eq!(rx.recv().await.ok(), Some(LiveEvent::Resync));
        assert_eq!(rx.recv().await.ok(), Some(LiveEvent::Resync));
        assert!(rx.try_recv().is_err(), "its own message was not replayed");
    }
}
