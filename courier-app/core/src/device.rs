//! The device API the app calls: commands validated against the local projection and turned
//! into events, and queries for the driver's screens. Every command is synchronous and durable
//! on return; syncing happens elsewhere ([`crate::sync::SyncEngine`]).
//!
//! A `Device` is a cheap handle (clone it freely); all clones share one outbox connection.

use crate::clock::Clock;
use crate::outbox::{
    AppendOutcome, Check, Checkpointer, Draft, Identity, Outbox, OutboxError, Refusal, RouteView,
    StopDetail, stop_of_parcel_in,
};
use crate::sync::SyncStatus;
use doorstep_shared::event::{
    AccessNotesEdited, ArrivedAtStop, AttemptOutcome, DeliveryAttempted, GeoPoint, LocationFixed,
    NoteAdded, ParcelScanned, ScanPhase,
};
use doorstep_shared::stop::Transition;
use doorstep_shared::{EventEnvelope, EventPayload, ParcelBarcode, RouteId, StopId};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rusqlite::Connection;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::{Notify, watch};
use tracing::field::Empty;

#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error(transparent)]
    Outbox(#[from] OutboxError),
}

#[derive(Debug)]
struct Inner {
    outbox: Mutex<Outbox>,
    /// `None` if its thread could not start; SQLite's inline backstop then bounds the log.
    checkpoints: Option<Checkpointer>,
    clock: Arc<dyn Clock>,
    rng: Mutex<StdRng>,
    status: watch::Sender<SyncStatus>,
    new_events: Notify,
}

#[derive(Clone, Debug)]
pub struct Device {
    inner: Arc<Inner>,
}

impl Device {
    /// Opens the outbox at `path` (created if missing). `seed` drives event ids.
    pub fn open(
        path: impl AsRef<Path>,
        clock: Arc<dyn Clock>,
        seed: u64,
    ) -> Result<Self, DeviceError> {
        let outbox = Outbox::open(path.as_ref())?;
        let checkpoints = Checkpointer::start(path.as_ref())
            .inspect_err(|e| tracing::warn!(error = %e, "background checkpoints unavailable"))
            .ok();
        let device = Self {
            inner: Arc::new(Inner {
                outbox: Mutex::new(outbox),
                checkpoints,
                clock,
                rng: Mutex::new(StdRng::seed_from_u64(seed)),
                status: watch::channel(SyncStatus::default()).0,
                new_events: Notify::new(),
            }),
        };
        device.refresh_status()?;
        Ok(device)
    }

    fn outbox(&self) -> MutexGuard<'_, Outbox> {
        self.inner.outbox.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn with_outbox<R>(
        &self,
        f: impl FnOnce(&mut Outbox) -> Result<R, OutboxError>,
    ) -> Result<R, DeviceError> {
        Ok(f(&mut self.outbox())?)
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    pub fn now_ms(&self) -> u64 {
        self.inner.clock.now_ms()
    }

    fn random(&self) -> [u8; 10] {
        let mut r = [0u8; 10];
        self.inner
            .rng
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .fill(&mut r[..]);
        r
    }

    /// Asks for a background WAL checkpoint (after a sync round wrote its outcomes).
    pub(crate) fn request_checkpoint(&self) {
        if let Some(c) = &self.inner.checkpoints {
            c.request();
        }
    }

    pub(crate) fn new_events(&self) -> &Notify {
        &self.inner.new_events
    }

    pub fn identity(&self) -> Result<Option<Identity>, DeviceError> {
        self.with_outbox(|o| o.identity())
    }

    pub fn set_identity(&self, identity: &Identity) -> Result<(), DeviceError> {
        self.with_outbox(|o| o.set_identity(identity))?;
        self.update_status(|s| s.needs_reenroll = false);
        Ok(())
    }

    // ------------------------------------------------------------------ commands

    fn record(&self, payload: EventPayload, check: Check) -> Result<AppendOutcome, DeviceError> {
        self.record_with(check, move |_| Ok(Ok(payload)))
    }

    /// Records the event whose payload `resolve` derives from the outbox, inside the write
    /// transaction that stores it (see [`Outbox::append_with`]).
    fn record_with(
        &self,
        check: Check,
        resolve: impl FnOnce(&Connection) -> Result<Result<EventPayload, Refusal>, OutboxError>,
    ) -> Result<AppendOutcome, DeviceError> {
        let span = tracing::info_span!("command", kind = Empty, stop_id = Empty);
        let _entered = span.enter();
        let now_ms = self.now_ms();
        let random = self.random();
        let outcome = self.with_outbox(|o| {
            o.append_with(|conn| {
                Ok(resolve(conn)?.map(|payload| {
                    span.record("kind", payload.kind());
                    if let Some(stop) = payload.stop_id() {
                        span.record("stop_id", tracing::field::display(stop));
                    }
                    Draft {
                        payload,
                        check,
                        now_ms,
                        random,
                        blob_digests: Vec::new(),
                    }
                }))
            })
        })?;
        match &outcome {
            AppendOutcome::Recorded(e) => {
                tracing::info!(seq = e.device_seq, "event recorded");
                if let Some(c) = &self.inner.checkpoints {
                    c.recorded();
                }
                self.inner.new_events.notify_one();
                // One more queued event: no need to rescan the whole outbox on the hot path
                // (the sync engine and `sync_status()` recompute everything from the file).
                let at = e.device_time_ms;
                let now = self.now_ms();
                self.inner.status.send_modify(|s| {
                    s.queued += 1;
                    s.total_events += 1;
                    if s.oldest_unsynced_age_ms.is_none() {
                        s.oldest_unsynced_age_ms = Some(now.saturating_sub(at));
                    }
                });
            }
            AppendOutcome::Duplicate(e) => {
                tracing::info!(seq = e.device_seq, "same intent, no new event")
            }
            AppendOutcome::Refused(r) => tracing::info!(refusal = %r, "command refused"),
        }
        Ok(outcome)
    }

    /// A parcel barcode scanned in a phase; the stop is found from the barcode.
    pub fn scan_parcel(
        &self,
        parcel: &ParcelBarcode,
        phase: ScanPhase,
    ) -> Result<AppendOutcome, DeviceError> {
        // The parcel is resolved to its stop in the same transaction that records the scan.
        self.record_with(Check::Transition(Transition::Scan { phase }), |conn| {
            Ok(match stop_of_parcel_in(conn, parcel)? {
                Some(stop_id) => Ok(EventPayload::ParcelScanned(ParcelScanned {
                    stop_id,
                    parcel: parcel.clone(),
                    phase,
                })),
                None => Err(Refusal::UnknownParcel {
                    parcel: parcel.to_string(),
                }),
            })
        })
    }

    /// Arrival at a stop, for the stop's next attempt. A double tap is the same intent.
    pub fn arrive(
        &self,
        stop_id: StopId,
        location: Option<GeoPoint>,
    ) -> Result<AppendOutcome, DeviceError> {
        // Two racing taps derive the same attempt number, hence the same intent: one event.
        let Some(attempt) = self.with_outbox(|o| o.next_attempt(stop_id))? else {
            return Ok(AppendOutcome::Refused(Refusal::UnknownStop { stop_id }));
        };
        let payload = EventPayload::ArrivedAtStop(ArrivedAtStop {
            stop_id,
            attempt,
            location,
        });
        self.record(payload, Check::Transition(Transition::Arrive))
    }

    /// The outcome of attempt `attempt` (the `next_attempt` the screen showed).
    pub fn record_attempt(
        &self,
        stop_id: StopId,
        attempt: u32,
        outcome: AttemptOutcome,
    ) -> Result<AppendOutcome, DeviceError> {
        let transition = match &outcome {
            AttemptOutcome::Delivered { .. } => Transition::Deliver,
            AttemptOutcome::Failed { reason, .. } => Transition::Fail { reason: *reason },
        };
        let payload = EventPayload::DeliveryAttempted(DeliveryAttempted {
            stop_id,
            attempt,
            outcome,
        });
        self.record(
            payload,
            Check::Attempt {
                transition,
                attempt,
            },
        )
    }

    /// A fresh id for a note the driver starts typing (a double tap of "save" reuses it).
    pub fn new_note_id(&self) -> uuid::Uuid {
        doorstep_shared::ids::uuid_v7(self.now_ms(), self.random())
    }

    pub fn add_note(
        &self,
        stop_id: StopId,
        note_id: uuid::Uuid,
        text: &str,
    ) -> Result<AppendOutcome, DeviceError> {
        let payload = EventPayload::NoteAdded(NoteAdded {
            stop_id,
            note_id,
            text: text.to_owned(),
        });
        self.record(payload, Check::StopKnown)
    }

    /// A new version of the stop's access instructions, by this device.
    pub fn edit_access_notes(
        &self,
        stop_id: StopId,
        text: &str,
    ) -> Result<AppendOutcome, DeviceError> {
        let Some(identity) = self.identity()? else {
            return Ok(AppendOutcome::Refused(Refusal::NotEnrolled));
        };
        let actor = identity.device_id.to_string();
        let (count, last) = self.with_outbox(|o| o.own_edits(stop_id))?;
        if let Some(last) = last
            && let EventPayload::AccessNotesEdited(e) = &last.payload
            && e.text == text
        {
            return Ok(AppendOutcome::Duplicate(last));
        }
        let mut version = std::collections::BTreeMap::new();
        version.insert(actor.clone(), count + 1);
        let payload = EventPayload::AccessNotesEdited(AccessNotesEdited {
            stop_id,
            actor,
            version,
            text: text.to_owned(),
        });
        self.record(payload, Check::StopKnown)
    }

    pub fn record_location(
        &self,
        location: GeoPoint,
        accuracy_m: f32,
        fix_time_ms: u64,
    ) -> Result<AppendOutcome, DeviceError> {
        let payload = EventPayload::LocationFixed(LocationFixed {
            location,
            accuracy_m,
            fix_time_ms,
        });
        self.record(payload, Check::None)
    }

    /// Any other street fact (a beacon sighting, a proof of delivery, a replanned route). Office
    /// kinds are refused: only dispatcher commands produce them.
    pub fn record_fact(&self, payload: EventPayload) -> Result<AppendOutcome, DeviceError> {
        if !payload.is_device_kind() {
            return Ok(AppendOutcome::Refused(Refusal::Invalid {
                message: format!("{} comes only from the office", payload.kind()),
            }));
        }
        let check = if payload.stop_id().is_some() {
            Check::StopKnown
        } else {
            Check::None
        };
        self.record(payload, check)
    }

    // ------------------------------------------------------------------ queries

    /// Today's route (`day` = `YYYY-MM-DD`), or the latest day's when `None`.
    pub fn route(&self, day: Option<&str>) -> Result<Option<RouteView>, DeviceError> {
        self.with_outbox(|o| o.route_view(day))
    }

    /// The depot the route of `route_id` starts from, if the route is known.
    pub fn route_depot(&self, route_id: RouteId) -> Result<Option<GeoPoint>, DeviceError> {
        self.with_outbox(|o| o.route_depot(route_id))
    }

    pub fn stop(&self, stop_id: StopId) -> Result<Option<StopDetail>, DeviceError> {
        self.with_outbox(|o| o.stop_detail(stop_id))
    }

    /// Every event recorded on this device, in `device_seq` order.
    pub fn events(&self) -> Result<Vec<EventEnvelope>, DeviceError> {
        self.with_outbox(|o| o.all_events())
    }

    pub fn integrity_ok(&self) -> Result<bool, DeviceError> {
        self.with_outbox(|o| o.integrity_ok())
    }

    /// The current sync status, recomputed from the outbox.
    pub fn sync_status(&self) -> Result<SyncStatus, DeviceError> {
        self.refresh_status()?;
        Ok(self.inner.status.borrow().clone())
    }

    /// A stream of sync status changes for the UI.
    pub fn subscribe_status(&self) -> watch::Receiver<SyncStatus> {
        self.inner.status.subscribe()
    }

    pub(crate) fn update_status(&self, f: impl FnOnce(&mut SyncStatus)) {
        self.inner.status.send_modify(f);
    }

    /// Recomputes the outbox-derived fields of the status and publishes it.
    pub fn refresh_status(&self) -> Result<(), DeviceError> {
        let now = self.now_ms();
        let (stats, problems, cursor, offset, photos) = self.with_outbox(|o| {
            Ok((
                o.queue_stats()?,
                o.problems()?,
                o.pull_cursor()?,
                o.clock_offset_ms()?,
                o.pending_blobs()?,
            ))
        })?;
        self.inner.status.send_modify(|s| {
            s.queued = stats.queued;
            s.total_events = stats.total_events;
            s.oldest_unsynced_age_ms = stats.oldest_unsynced_at_ms.map(|t| now.saturating_sub(t));
            s.rejected = problems;
            s.pull_cursor = cursor;
            s.clock_offset_ms = offset;
            s.photos_pending = photos;
        });
        Ok(())
    }
}
