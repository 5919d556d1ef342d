//! Executes the plan: one action at a time, re-planning after each answer, pacing failures with
//! backoff, the retry budget and the circuit breaker, and publishing the status for the UI.

use super::backoff::{Backoff, BackoffConfig};
use super::breaker::{Admission, BreakerConfig, BreakerState, CircuitBreaker};
use super::budget::{BudgetConfig, RetryBudget};
use super::classify::{Recovery, Sent, Terminal, Verdict, classify};
use super::plan::{BatchLimits, PullPlan, SyncAction, plan};
use super::status::Connectivity;
use crate::device::{Device, DeviceError};
use crate::outbox::Identity;
use crate::transport::{Encoding, Request, Transport, TransportError};
use doorstep_shared::FailureClass;
use doorstep_shared::protocol::{
    DeviceQueueReport, MAX_EVENTS_PER_PUSH, PullQuery, PullResponse, PushRequest, PushResponse,
    PushStatus,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SyncConfig {
    pub max_batch_events: usize,
    /// Bound on one compressed push body.
    pub max_batch_bytes: usize,
    pub encoding: Encoding,
    pub request_timeout_ms: u64,
    /// Pause between rounds when all is well (the periodic pull).
    pub idle_interval_ms: u64,
    /// While the device has no network, how often to look again.
    pub offline_poll_ms: u64,
    pub pull_limit: u32,
    pub backoff: BackoffConfig,
    pub budget: BudgetConfig,
    pub breaker: BreakerConfig,
}

impl Default for SyncConfig {
    fn default() -> Self {
        Self {
            max_batch_events: 500,
            max_batch_bytes: 256 * 1024,
            encoding: Encoding::Zstd,
            request_timeout_ms: 30_000,
            idle_interval_ms: 60_000,
            offline_poll_ms: 15_000,
            pull_limit: 500,
            backoff: BackoffConfig::default(),
            budget: BudgetConfig::default(),
            breaker: BreakerConfig::default(),
        }
    }
}

/// Counters for reports and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineStats {
    pub requests: u64,
    pub push_requests: u64,
    pub pull_requests: u64,
    /// Requests that followed a transient failure (each spent a budget token).
    pub retries: u64,
    pub transient_failures: u64,
    pub events_settled: u64,
    pub changes_pulled: u64,
    /// Push bodies handed to the network (not counted when offline or no connection was made),
    /// before and after encoding; retries count again.
    pub raw_bytes_pushed: u64,
    pub encoded_bytes_pushed: u64,
    pub batches_split: u64,
    /// Times the circuit breaker opened.
    pub breaker_opened: u64,
    /// Probes let through by a half-open breaker.
    pub breaker_probes: u64,
}

/// How one round ended.
#[derive(Clone, Debug, PartialEq)]
pub enum RoundOutcome {
    /// Everything sent and pulled.
    Synced { settled: u64, pulled: u64 },
    /// A transient failure; the engine will try again after `wait`.
    RetryIn { wait: Duration, reason: String },
    /// Not enrolled, or the server forgot the token.
    NeedsEnrollment,
    /// A terminal problem; no automatic retry.
    Blocked(String),
}

enum Step {
    Continue,
    PullDone,
    Stop(RoundOutcome),
}

pub struct SyncEngine<T> {
    device: Device,
    transport: T,
    config: SyncConfig,
    backoff: Backoff,
    budget: RetryBudget,
    breaker: CircuitBreaker,
    rng: StdRng,
    ratio: f64,
    batch_cap: usize,
    encoding: Encoding,
    /// The previous request failed transiently: the next one is a retry.
    retrying: bool,
    blocked: Option<String>,
    stats: EngineStats,
}

impl<T: Transport> SyncEngine<T> {
    pub fn new(device: Device, transport: T, config: SyncConfig, seed: u64) -> Self {
        let now = device.now_ms();
        Self {
            backoff: Backoff::new(config.backoff),
            budget: RetryBudget::new(config.budget, now),
            breaker: CircuitBreaker::new(config.breaker),
            rng: StdRng::seed_from_u64(seed),
            ratio: 0.25,
            batch_cap: config.max_batch_events.clamp(1, MAX_EVENTS_PER_PUSH),
            encoding: config.encoding,
            retrying: false,
            blocked: None,
            stats: EngineStats::default(),
            device,
            transport,
            config,
        }
    }

    pub fn stats(&self) -> &EngineStats {
        &self.stats
    }

    pub fn transport(&self) -> &T {
        &self.transport
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Clears a terminal block (after the driver or support acted) so sync resumes.
    pub fn unblock(&mut self) {
        self.blocked = None;
        self.device.update_status(|s| s.blocked = None);
    }

    /// Runs rounds until `shutdown` turns true: after success, waits for a new event or the
    /// idle interval; after a failure, waits out the backoff.
    pub async fn run(mut self, mut shutdown: tokio::sync::watch::Receiver<bool>) -> Self {
        loop {
            if *shutdown.borrow() {
                break;
            }
            let outcome = self.sync_once().await;
            let (wait, wake_on_event) = match &outcome {
                RoundOutcome::Synced { .. } => (self.config.idle_interval_ms, true),
                RoundOutcome::RetryIn { wait, .. } => (wait.as_millis() as u64, false),
                RoundOutcome::NeedsEnrollment | RoundOutcome::Blocked(_) => {
                    (self.config.idle_interval_ms, false)
                }
            };
            let sleep = tokio::time::sleep(Duration::from_millis(wait));
            let device = self.device.clone();
            tokio::select! {
                _ = sleep => {}
                _ = device.new_events().notified(), if wake_on_event => {}
                _ = shutdown.changed() => break,
            }
        }
        self
    }

    /// One round: push everything pending, then pull office changes, re-planning after every
    /// answer. Stops at the first failure.
    pub async fn sync_once(&mut self) -> RoundOutcome {
        let outcome = match self.round().await {
            Ok(o) => o,
            Err(e) => RoundOutcome::Blocked(format!("local storage: {e}")),
        };
        let now = self.device.now_ms();
        let next = match &outcome {
            RoundOutcome::RetryIn { wait, .. } => Some(now + wait.as_millis() as u64),
            _ => None,
        };
        let breaker = self.breaker.state();
        let blocked = self.blocked.clone();
        self.device.update_status(|s| {
            s.breaker = breaker;
            s.next_attempt_at_ms = next;
            s.blocked = blocked;
            if let RoundOutcome::NeedsEnrollment = outcome {
                s.needs_reenroll = true;
            }
        });
        if let Err(e) = self.device.refresh_status() {
            tracing::warn!(error = %e, "sync status not refreshed");
        }
        if let RoundOutcome::Synced { settled, pulled } = &outcome
            && settled + pulled > 0
        {
            self.device.request_checkpoint();
        }
        outcome
    }

    async fn round(&mut self) -> Result<RoundOutcome, DeviceError> {
        if let Some(b) = &self.blocked {
            return Ok(RoundOutcome::Blocked(b.clone()));
        }
        let Some(identity) = self.device.identity()? else {
            return Ok(RoundOutcome::NeedsEnrollment);
        };
        if self.device.sync_status()?.needs_reenroll {
            return Ok(RoundOutcome::NeedsEnrollment);
        }
        let (mut settled, mut pulled) = (0u64, 0u64);
        let mut pull_done = false;
        let mut stalls = 0;
        loop {
            let limits = BatchLimits {
                max_events: self.batch_cap,
                max_bytes: self.config.max_batch_bytes,
                compression_ratio: self.ratio,
            };
            let lookahead = self.batch_cap.saturating_mul(2);
            let (pending, cursor, from) = self.device.with_outbox(|o| {
                let from = o.send_from()?;
                let pending = match from {
                    Some(f) => o.pending(f, lookahead)?,
                    None => Vec::new(),
                };
                Ok((pending, o.pull_cursor()?, from))
            })?;
            let pull = (!pull_done).then_some(PullPlan {
                cursor,
                limit: self.config.pull_limit,
            });
            let Some(action) = plan(&pending, limits, pull).into_iter().next() else {
                break;
            };
            if let Some(wait) = self.gate() {
                return Ok(RoundOutcome::RetryIn {
                    wait,
                    reason: "waiting for the circuit breaker or the retry budget".into(),
                });
            }
            let step = match action {
                SyncAction::Push(batch) => {
                    let before = settled;
                    let step = self
                        .push(&identity, batch.first_seq, batch.last_seq, &mut settled)
                        .await?;
                    let after = self.device.with_outbox(|o| o.send_from())?;
                    if matches!(step, Step::Continue) && settled == before && after == from {
                        stalls += 1;
                    } else {
                        stalls = 0;
                    }
                    if stalls >= 3 {
                        self.transient(None, "the server makes no progress on our events".into())
                    } else {
                        step
                    }
                }
                SyncAction::Pull { cursor, limit } => {
                    self.pull(&identity, cursor, limit, &mut pulled).await?
                }
            };
            match step {
                Step::Continue => {}
                Step::PullDone => pull_done = true,
                Step::Stop(outcome) => return Ok(outcome),
            }
        }
        Ok(RoundOutcome::Synced { settled, pulled })
    }

    /// `Some(wait)` when no request may go out now.
    fn gate(&mut self) -> Option<Duration> {
        let now = self.device.now_ms();
        if self.retrying {
            let wait = self.budget.wait_for_token(now);
            if !wait.is_zero() {
                return Some(wait);
            }
        }
        match self.breaker.admit(now) {
            Admission::Rejected { retry_in_ms } => return Some(Duration::from_millis(retry_in_ms)),
            Admission::Probe => self.stats.breaker_probes += 1,
            Admission::Allowed => {}
        }
        if self.retrying {
            self.budget.try_acquire(now);
            self.stats.retries += 1;
        }
        None
    }

    async fn send(
        &mut self,
        request: Request,
    ) -> Result<crate::transport::RawResponse, TransportError> {
        self.stats.requests += 1;
        let now = self.device.now_ms();
        self.device.update_status(|s| s.last_attempt_ms = Some(now));
        let timeout = Duration::from_millis(self.config.request_timeout_ms);
        tokio::time::timeout(timeout, self.transport.send(request))
            .await
            .unwrap_or(Err(TransportError::Timeout))
    }

    fn answered(&mut self) {
        self.breaker.on_success();
        self.backoff.on_success();
        self.retrying = false;
        let now = self.device.now_ms();
        self.device.update_status(|s| {
            s.connectivity = Connectivity::Online;
            s.last_success_ms = Some(now);
            s.last_error = None;
            s.last_failure_class = None;
        });
    }

    fn transient(&mut self, retry_after: Option<Duration>, reason: String) -> Step {
        let now = self.device.now_ms();
        self.stats.transient_failures += 1;
        let was_open = matches!(self.breaker.state(), BreakerState::Open { .. });
        self.breaker.on_failure(now);
        if !was_open && matches!(self.breaker.state(), BreakerState::Open { .. }) {
            self.stats.breaker_opened += 1;
        }
        self.retrying = true;
        let wait = self
            .backoff
            .on_failure(self.rng.random::<f64>(), retry_after);
        tracing::info!(%reason, wait_ms = wait.as_millis() as u64, "sync failed, will retry");
        self.device.update_status(|s| {
            s.last_error = Some(reason.clone());
            s.last_failure_class = Some(FailureClass::Transient);
        });
        Step::Stop(RoundOutcome::RetryIn { wait, reason })
    }

    fn offline(&mut self, reason: String) -> Step {
        // The server saw nothing: no budget, no breaker; look again soon.
        let wait = Duration::from_millis(self.config.offline_poll_ms);
        self.device.update_status(|s| {
            s.connectivity = Connectivity::Offline;
            s.last_error = Some(reason.clone());
            s.last_failure_class = Some(FailureClass::Transient);
        });
        Step::Stop(RoundOutcome::RetryIn { wait, reason })
    }

    fn terminal(&mut self, t: Terminal) -> Step {
        // The server answered, so the network and the server are up.
        self.answered();
        match t {
            Terminal::Reenroll => {
                self.device.update_status(|s| {
                    s.needs_reenroll = true;
                    s.last_failure_class = Some(FailureClass::Terminal);
                });
                Step::Stop(RoundOutcome::NeedsEnrollment)
            }
            Terminal::Blocked {
                status,
                code,
                detail,
            } => {
                let reason = format!(
                    "HTTP {status} {}: {detail}",
                    code.map_or("", |c| c.as_str())
                );
                tracing::warn!(%reason, "sync blocked");
                self.blocked = Some(reason.clone());
                self.device
                    .update_status(|s| s.last_failure_class = Some(FailureClass::Terminal));
                Step::Stop(RoundOutcome::Blocked(reason))
            }
        }
    }

    fn failure<X>(&mut self, verdict: Verdict<X>, batch_events: usize, got_answer: bool) -> Step {
        match verdict {
            Verdict::Answered(_) => Step::Continue,
            Verdict::Transient {
                offline: true,
                reason,
                ..
            } => self.offline(reason),
            Verdict::Transient {
                retry_after,
                reason,
                ..
            } => {
                let c = if got_answer {
                    Connectivity::Online
                } else {
                    Connectivity::Offline
                };
                self.device.update_status(|s| s.connectivity = c);
                self.transient(retry_after, reason)
            }
            Verdict::Recoverable(Recovery::SplitBatch) => {
                self.answered();
                self.stats.batches_split += 1;
                self.batch_cap = (batch_events / 2).max(1);
                Step::Continue
            }
            Verdict::Recoverable(Recovery::IdentityEncoding) => {
                self.answered();
                self.encoding = Encoding::Identity;
                Step::Continue
            }
            Verdict::Terminal(t) => self.terminal(t),
        }
    }

    async fn push(
        &mut self,
        identity: &Identity,
        first: u64,
        last: u64,
        settled: &mut u64,
    ) -> Result<Step, DeviceError> {
        let now = self.device.now_ms();
        let (events, stats, photos) = self.device.with_outbox(|o| {
            Ok((
                o.envelopes(first, last)?,
                o.queue_stats()?,
                o.pending_blobs()?,
            ))
        })?;
        let n = events.len();
        let request = PushRequest {
            device_id: identity.device_id,
            sent_at_ms: now,
            events,
            queue: Some(DeviceQueueReport {
                queued_events: stats.queued,
                oldest_unsynced_ms: stats.oldest_unsynced_at_ms.map(|t| now.saturating_sub(t)),
                photos_pending: photos,
                rejected_events: stats.rejected + stats.conflicts,
            }),
        };
        let raw = serde_json::to_vec(&request).unwrap_or_default();
        let body = self.encoding.encode(&raw);
        if !raw.is_empty() {
            let observed = body.len() as f64 / raw.len() as f64;
            self.ratio = 0.5 * self.ratio + 0.5 * observed;
        }
        if body.len() > self.config.max_batch_bytes && n > 1 {
            // The estimate was off: plan again with the ratio just learned.
            self.batch_cap = (n / 2).max(1);
            self.stats.batches_split += 1;
            return Ok(Step::Continue);
        }
        self.stats.push_requests += 1;
        let (raw_len, body_len) = (raw.len() as u64, body.len() as u64);
        let sent = Sent {
            batch_events: n,
            encoding: self.encoding,
        };
        let answer = self
            .send(Request::Push {
                token: identity.token.clone(),
                encoding: self.encoding,
                body: body.into(),
            })
            .await;
        // Offline or unable to connect: the body never left the device.
        if !matches!(
            answer,
            Err(TransportError::Offline | TransportError::Connect(_))
        ) {
            self.stats.raw_bytes_pushed += raw_len;
            self.stats.encoded_bytes_pushed += body_len;
        }
        let resp = match classify::<PushResponse>(&answer, sent) {
            Verdict::Answered(r) => r,
            other => return Ok(self.failure(other, n, answer.is_ok())),
        };
        let now = self.device.now_ms();
        let newly = self.device.with_outbox(|o| o.record_push(&resp, now))?;
        *settled += newly;
        self.stats.events_settled += newly;
        self.answered();
        self.device
            .update_status(|s| s.clock_offset_ms = Some(resp.clock_offset_ms));
        if self.batch_cap < self.config.max_batch_events {
            self.batch_cap = (self.batch_cap * 2).min(self.config.max_batch_events);
        }
        if let Some(deferred) = resp
            .results
            .iter()
            .find(|r| r.status == PushStatus::Deferred)
        {
            let reason = format!("the server deferred event #{}", deferred.device_seq);
            return Ok(self.transient(None, reason));
        }
        Ok(Step::Continue)
    }

    async fn pull(
        &mut self,
        identity: &Identity,
        cursor: u64,
        limit: u32,
        pulled: &mut u64,
    ) -> Result<Step, DeviceError> {
        let sent_at = self.device.now_ms();
        self.stats.pull_requests += 1;
        let answer = self
            .send(Request::Pull {
                token: identity.token.clone(),
                query: PullQuery {
                    cursor,
                    wait_ms: 0,
                    limit: Some(limit),
                },
            })
            .await;
        let sent = Sent {
            batch_events: 0,
            encoding: Encoding::Identity,
        };
        let resp = match classify::<PullResponse>(&answer, sent) {
            Verdict::Answered(r) => r,
            other => return Ok(self.failure(other, 0, answer.is_ok())),
        };
        let now = self.device.now_ms();
        let offset = ((sent_at + now) / 2) as i64 - resp.server_time_ms as i64;
        self.device.with_outbox(|o| {
            o.record_pull(&resp, now)?;
            o.set_clock_offset_ms(offset)
        })?;
        self.answered();
        *pulled += resp.changes.len() as u64;
        self.stats.changes_pulled += resp.changes.len() as u64;
        let progressed = resp.cursor > cursor;
        Ok(if resp.has_more && progressed {
            Step::Continue
        } else {
            Step::PullDone
        })
    }
}
