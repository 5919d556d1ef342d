//! Transport-agnostic operations: enrollment, authentication, push, pull and office commands.
//! HTTP handlers are thin wrappers over these; the in-process simulator calls them directly.

use crate::auth;
use crate::clock::Clock;
use crate::metrics::Metrics;
use crate::store::{
    DeviceAuth, DispatcherAuth, IdempotencyState, IntegrationAuth, OfficeEvent, OfficeOutcome,
    PushContext, RouteAccess, Store, StoreError,
};
use doorstep_shared::event::{EventPayload, SUPPORTED_SCHEMA_VERSIONS};
use doorstep_shared::order::{MAX_ORDERS_PER_REQUEST, Order, OrderBatch, OrderBatchResponse};
use doorstep_shared::protocol::{
    EnrollRequest, EnrollResponse, MAX_EVENTS_PER_PUSH, MAX_PULL_WAIT_MS, PullQuery, PullResponse,
    PushRequest, PushResponse, RouteSnapshot,
};
use doorstep_shared::{DeviceId, HybridClock, ProblemCode, RouteId};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::watch;

/// An error that answers a whole request: a stable code, a detail safe to show, and for
/// transient failures how long to wait.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {detail:?}")]
pub struct ApiError {
    pub code: ProblemCode,
    pub detail: Option<String>,
    pub retry_after_s: Option<u64>,
}

impl ApiError {
    pub fn new(code: ProblemCode, detail: impl Into<String>) -> Self {
        Self {
            code,
            detail: Some(detail.into()),
            retry_after_s: None,
        }
    }
    pub fn bare(code: ProblemCode) -> Self {
        Self {
            code,
            detail: None,
            retry_after_s: None,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Transient(why) => {
                tracing::warn!(%why, "storage busy");
                Self {
                    code: ProblemCode::Unavailable,
                    detail: None,
                    retry_after_s: Some(1),
                }
            }
            other => {
                tracing::error!(error = %other, "storage failure");
                Self::bare(ProblemCode::Internal)
            }
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// Everything a request handler needs. Cheap to clone (all shared).
pub struct App<S: Store> {
    pub store: Arc<S>,
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<Metrics>,
    hlc: Mutex<HybridClock>,
    /// Moves (a generation counter) whenever a change devices must pull may have been committed,
    /// here or by another server on the same database; long-polls wake on it and re-read.
    feed: watch::Sender<u64>,
    /// Announces pushes and office events to the dashboard's live stream.
    pub live: crate::live::LiveHub,
    /// What this server runs with (read once by the binary).
    pub settings: crate::settings::Settings,
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> ApiResult<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(ApiError::from),
        Err(e) => {
            tracing::error!(error = %e, "blocking task failed");
            Err(ApiError::bare(ProblemCode::Internal))
        }
    }
}

impl<S: Store> App<S> {
    /// An app over `store` with the default settings. Touches no storage (it may run on an
    /// async thread); long-polls re-read the store whenever the feed signal moves.
    pub fn new(store: Arc<S>, clock: Arc<dyn Clock>) -> Self {
        Self::with_settings(store, clock, crate::settings::Settings::default())
    }

    /// An app over `store` with `settings`.
    pub fn with_settings(
        store: Arc<S>,
        clock: Arc<dyn Clock>,
        settings: crate::settings::Settings,
    ) -> Self {
        let feed = watch::channel(0u64).0;
        let remote = feed.clone();
        store.watch_changes(Arc::new(move || {
            remote.send_modify(|generation: &mut u64| *generation = generation.wrapping_add(1));
        }));
        let live = crate::live::LiveHub::default();
        store.watch_peers(live.peer_sink());
        Self {
            store,
            clock,
            metrics: Arc::new(Metrics::default()),
            hlc: Mutex::new(HybridClock::new(
                doorstep_shared::protocol::CLOCK_SKEW_BOUND_MS as u64,
            )),
            feed,
            live,
            settings,
        }
    }

    /// Runs storage work off the async threads (a backend may block, or drive its own runtime).
    pub async fn with_store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&S) -> Result<T, StoreError> + Send + 'static,
    ) -> ApiResult<T> {
        let store = self.store.clone();
        blocking(move || f(&store)).await
    }

    fn tick(&self) -> doorstep_shared::HlcStamp {
        let now = self.clock.now_ms();
        self.hlc.lock().unwrap_or_else(|p| p.into_inner()).tick(now)
    }

    pub async fn enroll(&self, req: EnrollRequest) -> ApiResult<EnrollResponse> {
        let name = req.device_name.trim().to_owned();
        if name.is_empty() || name.len() > 100 {
            return Err(ApiError::new(
                ProblemCode::MalformedRequest,
                "device_name must be 1..=100 characters",
            ));
        }
        let code_hash = auth::hash_secret(&auth::normalise_code(&req.code));
        let token = auth::new_device_token(&mut rand::rng());
        let now = self.clock.now_ms();
        let device_id = DeviceId(uuid::Uuid::now_v7());
        let store = self.store.clone();
        let token_hash = token.hash.clone();
        let pk = req.public_key.clone();
        let courier = blocking(move || {
            store.enroll_device(
                &code_hash,
                device_id,
                &name,
                &token_hash,
                pk.as_deref(),
                now,
            )
        })
        .await?;
        let Some(courier_id) = courier else {
            return Err(ApiError::bare(ProblemCode::EnrollmentCodeInvalid));
        };
        tracing::info!(%device_id, %courier_id, "device enrolled");
        Ok(EnrollResponse {
            device_id,
            courier_id,
            token: token.plain,
            server_time_ms: now,
        })
    }

    pub async fn device_for_token(&self, token: Option<&str>) -> ApiResult<DeviceAuth> {
        let Some(token) = token else {
            return Err(ApiError::bare(ProblemCode::Unauthorized));
        };
        let hash = auth::hash_secret(token);
        let store = self.store.clone();
        blocking(move || store.device_by_token(&hash))
            .await?
            .ok_or(ApiError::bare(ProblemCode::Unauthorized))
    }

    pub async fn dispatcher_for_token(&self, token: Option<&str>) -> ApiResult<DispatcherAuth> {
        let Some(token) = token else {
            return Err(ApiError::bare(ProblemCode::Unauthorized));
        };
        let hash = auth::hash_secret(token);
        let store = self.store.clone();
        blocking(move || store.dispatcher_by_token(&hash))
            .await?
            .ok_or(ApiError::bare(ProblemCode::Unauthorized))
    }

    pub async fn integration_for_token(&self, token: Option<&str>) -> ApiResult<IntegrationAuth> {
        let Some(token) = token else {
            return Err(ApiError::bare(ProblemCode::Unauthorized));
        };
        let hash = auth::hash_secret(token);
        let store = self.store.clone();
        blocking(move || store.integration_by_token(&hash))
            .await?
            .ok_or(ApiError::bare(ProblemCode::Unauthorized))
    }

    /// A batch of the integration's shipper's orders; one result per order.
    pub async fn record_orders(
        &self,
        who: IntegrationAuth,
        batch: OrderBatch,
    ) -> ApiResult<OrderBatchResponse> {
        if batch.orders.len() > MAX_ORDERS_PER_REQUEST {
            return Err(ApiError::new(
                ProblemCode::PayloadTooLarge,
                format!(
                    "{} orders in one request; at most {MAX_ORDERS_PER_REQUEST}",
                    batch.orders.len()
                ),
            ));
        }
        let now = self.clock.now_ms();
        let store = self.store.clone();
        let results = blocking(move || {
            crate::intake::record_orders(&*store, who.shipper, &batch.orders, now)
        })
        .await?;
        for r in &results {
            let status = serde_json::to_value(r.status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            self.metrics
                .inc("doorstep_orders_total", &[("status", status.as_str())], 1);
        }
        Ok(OrderBatchResponse { results })
    }

    /// One of the integration's shipper's orders, as its current version holds it.
    pub async fn order(
        &self,
        who: IntegrationAuth,
        external_id: String,
    ) -> ApiResult<(u32, Order)> {
        let store = self.store.clone();
        let id = external_id.clone();
        blocking(move || store.order(who.shipper, &id))
            .await?
            .ok_or_else(|| {
                ApiError::new(ProblemCode::NotFound, format!("no order {external_id:?}"))
            })
    }

    /// Whole-request checks, then the store's per-event processing.
    pub async fn push(&self, device: DeviceAuth, req: PushRequest) -> ApiResult<PushResponse> {
        let started = Instant::now();
        if req.device_id != device.device_id
            || req.events.iter().any(|e| e.device_id != device.device_id)
        {
            return Err(ApiError::new(
                ProblemCode::DeviceMismatch,
                "events must carry the authenticated device's id",
            ));
        }
        if req.events.len() > MAX_EVENTS_PER_PUSH {
            return Err(ApiError::new(
                ProblemCode::PayloadTooLarge,
                format!(
                    "at most {MAX_EVENTS_PER_PUSH} events per push, got {}",
                    req.events.len()
                ),
            ));
        }
        if let Some(e) = req
            .events
            .iter()
            .find(|e| !SUPPORTED_SCHEMA_VERSIONS.contains(&e.schema_version))
        {
            return Err(ApiError::new(
                ProblemCode::UnsupportedSchemaVersion,
                format!(
                    "schema_version {} (device_seq {}) is not supported; this server reads {:?}",
                    e.schema_version, e.device_seq, SUPPORTED_SCHEMA_VERSIONS
                ),
            ));
        }
        let now = self.clock.now_ms();
        let ctx = PushContext {
            received_at_ms: now,
            clock_offset_ms: crate::store::clock_offset_ms(req.sent_at_ms, now),
        };
        let store = self.store.clone();
        let outcome =
            blocking(move || crate::push::push(&*store, device, &req, ctx).map(|o| (o, req)))
                .await?;
        let (outcome, req) = outcome;
        self.record_push_metrics(device, &req, &outcome, ctx);
        self.live.notify(crate::live::push_event(
            device,
            &req,
            &outcome.response,
            outcome.queue.clone(),
            outcome.effects.escalations_opened,
        ));
        self.metrics
            .observe_push_latency(started.elapsed().as_secs_f64());
        Ok(outcome.response)
    }

    fn record_push_metrics(
        &self,
        device: DeviceAuth,
        req: &PushRequest,
        outcome: &crate::store::PushOutcome,
        ctx: PushContext,
    ) {
        let m = &self.metrics;
        let dev = device.device_id.to_string();
        let courier = device.courier_id.to_string();
        // Aggregated per request: one counter update per label set, not per event.
        let mut by_kind: BTreeMap<(&str, &str), u64> = BTreeMap::new();
        let mut by_status: BTreeMap<&str, u64> = BTreeMap::new();
        for (kind, status) in &outcome.effects.outcomes {
            *by_kind.entry((kind, status)).or_default() += 1;
            *by_status.entry(status).or_default() += 1;
        }
        for ((kind, status), n) in by_kind {
            m.inc(
                "doorstep_events_total",
                &[("kind", kind), ("status", status)],
                n,
            );
        }
        for (status, n) in by_status {
            m.inc(
                "doorstep_device_events_total",
                &[("device", &dev), ("courier", &courier), ("status", status)],
                n,
            );
        }
        let device_time: HashMap<u64, u64> = req
            .events
            .iter()
            .map(|e| (e.device_seq, e.device_time_ms))
            .collect();
        m.observe_sync_lags(outcome.response.results.iter().filter_map(|r| {
            if r.status != doorstep_shared::protocol::PushStatus::Applied {
                return None;
            }
            let age = crate::push::age_on_arrival_ms(*device_time.get(&r.device_seq)?, ctx);
            Some((age.max(0) as f64) / 1000.0)
        }));
        if outcome.effects.late_replays > 0 {
            m.inc(
                "doorstep_late_replays_total",
                &[("courier", &courier)],
                outcome.effects.late_replays,
            );
        }
        for (c, delivered, reason) in &outcome.effects.first_attempts {
            let outcome = if *delivered { "delivered" } else { "failed" };
            m.inc(
                "doorstep_first_attempts_total",
                &[
                    ("courier", &c.to_string()),
                    ("outcome", outcome),
                    ("reason", reason.unwrap_or("")),
                ],
                1,
            );
        }
        for (c, reason) in &outcome.effects.failed_attempts {
            m.inc(
                "doorstep_failed_attempts_total",
                &[("courier", &c.to_string()), ("reason", reason)],
                1,
            );
        }
        if outcome.effects.escalations_opened > 0 {
            m.inc(
                "doorstep_escalations_opened_total",
                &[],
                outcome.effects.escalations_opened,
            );
        }
        if outcome.effects.skew_flagged {
            m.inc("doorstep_clock_skew_pushes_total", &[("device", &dev)], 1);
        }
    }

    /// Office changes for the device's courier; waits up to `wait_ms` when there are none yet.
    pub async fn pull(&self, device: DeviceAuth, q: PullQuery) -> ApiResult<PullResponse> {
        let limit = q.limit.unwrap_or(500).clamp(1, 1_000);
        let wait = std::time::Duration::from_millis(q.wait_ms.min(MAX_PULL_WAIT_MS));
        let mut rx = self.feed.subscribe();
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            rx.borrow_and_update();
            let store = self.store.clone();
            let (changes, has_more) =
                blocking(move || store.pull(device.courier_id, q.cursor, limit)).await?;
            if !changes.is_empty() || tokio::time::Instant::now() >= deadline {
                let cursor = changes.last().map_or(q.cursor, |c| c.cursor);
                return Ok(PullResponse {
                    cursor,
                    server_time_ms: self.clock.now_ms(),
                    changes,
                    has_more,
                });
            }
            if tokio::time::timeout_at(deadline, rx.changed())
                .await
                .is_err()
            {
                continue; // timed out: one last read, then answer (possibly empty)
            }
        }
    }

    pub async fn route(&self, device: DeviceAuth, route: RouteId) -> ApiResult<RouteSnapshot> {
        let store = self.store.clone();
        match blocking(move || store.route_for_courier(device.courier_id, route)).await? {
            RouteAccess::Ok(plan) => Ok(*plan),
            RouteAccess::NotFound => Err(ApiError::new(
                ProblemCode::NotFound,
                format!("route {route} does not exist"),
            )),
            RouteAccess::Forbidden => Err(ApiError::new(
                ProblemCode::Forbidden,
                "this route belongs to another courier",
            )),
        }
    }

    /// Records an office event (dispatcher command or seeding) and wakes long-polls.
    pub async fn record_office(
        &self,
        payload: EventPayload,
        issued_by: &str,
    ) -> ApiResult<OfficeOutcome> {
        self.record_office_contact(payload, issued_by, None).await
    }

    /// [`Self::record_office`] for a contact-customer command, which also tells the store
    /// whether the customer was reached (`contact_reached`).
    pub async fn record_office_contact(
        &self,
        payload: EventPayload,
        issued_by: &str,
        contact_reached: Option<bool>,
    ) -> ApiResult<OfficeOutcome> {
        if let Err(e) = payload.validate() {
            return Err(ApiError::new(ProblemCode::InvalidEvent, e.to_string()));
        }
        let ev = OfficeEvent {
            payload,
            issued_by: issued_by.to_owned(),
            recorded_at_ms: self.clock.now_ms(),
            hlc: self.tick(),
            contact_reached,
        };
        let store = self.store.clone();
        let (kind, stop_id) = (ev.payload.kind(), ev.payload.stop_id());
        let event_id = doorstep_shared::EventId(uuid::Uuid::now_v7());
        let outcome =
            blocking(move || crate::office::record_office_event(&*store, &ev, event_id)).await?;
        if matches!(outcome, OfficeOutcome::Applied { .. }) {
            self.live.notify(crate::live::office_event(
                kind,
                stop_id,
                self.clock.now_ms(),
            ));
            self.feed
                .send_modify(|generation| *generation = generation.wrapping_add(1));
        }
        Ok(outcome)
    }

    /// Runs `work` at most once per `key`; replays the stored answer for the same request and
    /// refuses a reused key with another request.
    pub async fn idempotent<F, Fut>(
        &self,
        key: Option<&str>,
        request_body: &[u8],
        work: F,
    ) -> ApiResult<(u16, String)>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = ApiResult<(u16, String)>>,
    {
        let Some(key) = key
            .map(str::trim)
            .filter(|k| !k.is_empty() && k.len() <= 200)
        else {
            return Err(ApiError::bare(ProblemCode::IdempotencyKeyMissing));
        };
        let hash = auth::hash_secret(&String::from_utf8_lossy(request_body));
        let (store, k, h, now) = (
            self.store.clone(),
            key.to_owned(),
            hash,
            self.clock.now_ms(),
        );
        let lease = self.settings.idempotency_lease_ms;
        match blocking(move || store.begin_idempotent(&k, &h, now, lease)).await? {
            IdempotencyState::InProgress => {
                Err(ApiError::bare(ProblemCode::IdempotencyKeyInProgress))
            }
            IdempotencyState::Mismatch => Err(ApiError::bare(ProblemCode::IdempotencyKeyReused)),
            IdempotencyState::Completed { status, body } => Ok((status, body)),
            IdempotencyState::Started => {
                let result = work().await;
                let store = self.store.clone();
                let k = key.to_owned();
                match &result {
                    Ok((status, body)) => {
                        let (status, body) = (*status, body.clone());
                        blocking(move || store.finish_idempotent(&k, status, &body)).await?;
                    }
                    Err(_) => blocking(move || store.abandon_idempotent(&k)).await?,
                }
                result
            }
        }
    }
}
