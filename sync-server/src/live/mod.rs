//! The dashboard's live feed: every push and office event is announced on a broadcast channel
//! that `GET /v1/dispatch/live` streams as Server-Sent Events, and the single-use tickets that
//! let a browser `EventSource` (which cannot send an `Authorization` header) open that stream.
//! With several servers on one database, what each announces also reaches the others'
//! subscribers ([`peers`]).

pub mod peers;

use crate::store::DeviceAuth;
use doorstep_shared::StopId;
use doorstep_shared::dashboard::LiveEvent;
use doorstep_shared::protocol::{DeviceQueueReport, PushRequest, PushResponse, PushStatus};
use tokio::sync::broadcast;

/// How long a live-stream ticket stays valid.
pub const TICKET_TTL_MS: u64 = 30_000;
/// Messages a slow subscriber may fall behind by before it is told to resync.
const CHANNEL_CAPACITY: usize = 1_024;

/// The broadcast channel of this server (tickets are in the database: any server redeems them).
pub struct LiveHub {
    tx: broadcast::Sender<LiveEvent>,
    /// What this server announced that its peers have not been sent yet.
    outbox: peers::Outbox,
}

impl Default for LiveHub {
    fn default() -> Self {
        Self {
            tx: broadcast::channel(CHANNEL_CAPACITY).0,
            outbox: peers::Outbox::new(uuid::Uuid::now_v7()),
        }
    }
}

impl LiveHub {
    /// Announces `event` to every subscriber of this server and, when the store has peers, of
    /// the others; a no-op when nobody listens.
    pub fn notify(&self, event: LiveEvent) {
        self.outbox.keep(&event);
        let _ = self.tx.send(event);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<LiveEvent> {
        self.tx.subscribe()
    }
}

/// The announcement of one processed push (no extra store read: all from the request/response).
pub fn push_event(
    device: DeviceAuth,
    req: &PushRequest,
    res: &PushResponse,
    queue: Option<DeviceQueueReport>,
    escalations_opened: u64,
) -> LiveEvent {
    let mut stops: Vec<StopId> = req
        .events
        .iter()
        .filter_map(|e| e.payload.stop_id())
        .collect();
    stops.sort_unstable();
    stops.dedup();
    LiveEvent::Push {
        device_id: device.device_id,
        courier_id: device.courier_id,
        server_time_ms: res.server_time_ms,
        last_applied_seq: res.last_applied_seq,
        applied: res
            .results
            .iter()
            .filter(|r| r.status == PushStatus::Applied)
            .count() as u32,
        queue,
        stops,
        escalations_opened: u32::try_from(escalations_opened).unwrap_or(u32::MAX),
    }
}

/// The announcement of one recorded office event.
pub fn office_event(kind: &str, stop_id: Option<StopId>, now_ms: u64) -> LiveEvent {
    LiveEvent::Office {
        kind: kind.to_owned(),
        stop_id,
        server_time_ms: now_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn subscribers_receive_what_is_announced() {
        let hub = LiveHub::default();
        let mut rx = hub.subscribe();
        hub.notify(LiveEvent::Resync);
        assert_eq!(rx.recv().await.ok(), Some(LiveEvent::Resync));
    }
}
