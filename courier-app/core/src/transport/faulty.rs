//! Fault injection around any transport: offline, loss, latency, bandwidth cap, timeouts that
//! fire *after* the server committed, duplicated requests and scripted outages. Switchable at
//! run time; every random decision comes from one seeded RNG, so a seed replays a run.
//!
//! Shared by the tests, the simulator and the app's field-test mode: the profile is plain data
//! (serde) so it can come from a file or a settings screen.

use super::{RawResponse, Request, Transport, TransportError};
use crate::clock::Clock;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// A window of wall-clock time (the injected clock's Unix ms) with no network at all.
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export_to = "core/"))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outage {
    pub start_ms: u64,
    pub end_ms: u64,
}

/// How the network misbehaves. Probabilities are per request, in `0.0..=1.0`.
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export_to = "core/"))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FaultProfile {
    /// No network: every request fails at once with [`TransportError::Offline`].
    pub offline: bool,
    /// The request is lost before the server sees it; the device times out.
    pub request_loss: f64,
    /// The server processes the request, then the answer is lost: a timeout after the commit.
    pub response_loss: f64,
    /// The request reaches the server twice; the device sees the second answer.
    pub duplicate: f64,
    pub latency_min_ms: u64,
    pub latency_max_ms: u64,
    /// Link speed in bits per second, each direction; `None` is unlimited.
    pub bandwidth_bps: Option<u64>,
    /// How long a lost request or answer takes to fail.
    pub timeout_ms: u64,
    /// Scripted outages.
    pub outages: Vec<Outage>,
}

impl Default for FaultProfile {
    fn default() -> Self {
        Self::perfect()
    }
}

impl FaultProfile {
    pub fn perfect() -> Self {
        Self {
            offline: false,
            request_loss: 0.0,
            response_loss: 0.0,
            duplicate: 0.0,
            latency_min_ms: 0,
            latency_max_ms: 0,
            bandwidth_bps: None,
            timeout_ms: 10_000,
            outages: Vec::new(),
        }
    }

    pub fn offline() -> Self {
        Self {
            offline: true,
            ..Self::perfect()
        }
    }

    /// A bad mobile link: 10 % of requests lost, half of them after the server committed,
    /// 5 % duplicated, 50–400 ms latency, 2 Mbit/s.
    pub fn flaky() -> Self {
        Self {
            request_loss: 0.05,
            response_loss: 0.05,
            duplicate: 0.05,
            latency_min_ms: 50,
            latency_max_ms: 400,
            bandwidth_bps: Some(2_000_000),
            ..Self::perfect()
        }
    }

    fn in_outage(&self, now_ms: u64) -> bool {
        self.offline
            || self
                .outages
                .iter()
                .any(|o| (o.start_ms..o.end_ms).contains(&now_ms))
    }

    fn transfer(&self, bytes: usize) -> Duration {
        match self.bandwidth_bps {
            Some(bps) if bps > 0 => {
                Duration::from_micros((bytes as u64 * 8).saturating_mul(1_000_000) / bps)
            }
            _ => Duration::ZERO,
        }
    }
}

/// What the fault injector did, for reports.
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export_to = "core/"))]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultStats {
    pub requests: u64,
    pub refused_offline: u64,
    pub lost_requests: u64,
    pub lost_responses: u64,
    pub duplicated: u64,
    /// Request bodies that reached the server (duplicates counted twice).
    pub bytes_up: u64,
    pub bytes_down: u64,
}

#[derive(Debug)]
struct State {
    profile: FaultProfile,
    rng: StdRng,
    stats: FaultStats,
}

/// Wraps a transport and injects faults according to a switchable [`FaultProfile`].
#[derive(Debug)]
pub struct FaultyTransport<T> {
    inner: T,
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
}

struct Plan {
    lose_request: bool,
    lose_response: bool,
    duplicate: bool,
    latency: Duration,
    profile: FaultProfile,
}

impl<T: Transport> FaultyTransport<T> {
    pub fn new(inner: T, profile: FaultProfile, seed: u64, clock: Arc<dyn Clock>) -> Self {
        Self {
            inner,
            clock,
            state: Mutex::new(State {
                profile,
                rng: StdRng::seed_from_u64(seed),
                stats: FaultStats::default(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn set_profile(&self, profile: FaultProfile) {
        self.lock().profile = profile;
    }

    pub fn set_offline(&self, offline: bool) {
        self.lock().profile.offline = offline;
    }

    pub fn profile(&self) -> FaultProfile {
        self.lock().profile.clone()
    }

    pub fn stats(&self) -> FaultStats {
        self.lock().stats.clone()
    }

    pub fn inner(&self) -> &T {
        &self.inner
    }

    /// Draws every decision for one request up front, in a fixed order (determinism).
    fn plan(&self) -> Option<Plan> {
        let now = self.clock.now_ms();
        let mut s = self.lock();
        s.stats.requests += 1;
        if s.profile.in_outage(now) {
            s.stats.refused_offline += 1;
            return None;
        }
        let p = s.profile.clone();
        let lose_request = s.rng.random_bool(p.request_loss.clamp(0.0, 1.0));
        let lose_response = s.rng.random_bool(p.response_loss.clamp(0.0, 1.0));
        let duplicate = s.rng.random_bool(p.duplicate.clamp(0.0, 1.0));
        let hi = p.latency_max_ms.max(p.latency_min_ms);
        let latency = Duration::from_millis(s.rng.random_range(p.latency_min_ms..=hi));
        Some(Plan {
            lose_request,
            lose_response,
            duplicate,
            latency,
            profile: p,
        })
    }
}

#[async_trait::async_trait]
impl<T: Transport> Transport for FaultyTransport<T> {
    async fn send(&self, request: Request) -> Result<RawResponse, TransportError> {
        let Some(plan) = self.plan() else {
            return Err(TransportError::Offline);
        };
        let timeout = Duration::from_millis(plan.profile.timeout_ms);
        let up = plan.latency / 2 + plan.profile.transfer(request.body_len());
        // Counted before the wait: a caller's own timeout may cancel this future during it.
        if plan.lose_request {
            self.lock().stats.lost_requests += 1;
            tokio::time::sleep(timeout.max(up)).await;
            return Err(TransportError::Timeout);
        }
        tokio::time::sleep(up).await;
        let body_len = request.body_len() as u64;
        let mut answer = if plan.duplicate {
            let first = self.inner.send(request.clone()).await;
            {
                let mut s = self.lock();
                s.stats.duplicated += 1;
                s.stats.bytes_up += body_len;
            }
            if let Ok(r) = &first {
                tracing::debug!(
                    status = r.status,
                    "first copy of a duplicated request answered"
                );
            }
            self.inner.send(request).await
        } else {
            self.inner.send(request).await
        };
        self.lock().stats.bytes_up += body_len;
        let down = match &answer {
            Ok(r) => plan.latency / 2 + plan.profile.transfer(r.body.len()),
            Err(_) => plan.latency / 2,
        };
        if plan.lose_response {
            self.lock().stats.lost_responses += 1;
            tokio::time::sleep(timeout.max(up + down)).await;
            answer = Err(TransportError::Timeout);
        } else {
            tokio::time::sleep(down).await;
            if let Ok(r) = &answer {
                self.lock().stats.bytes_down += r.body.len() as u64;
            }
        }
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// Counts what reaches the "server".
    #[derive(Debug, Default)]
    struct Counter(AtomicU64);

    #[async_trait::async_trait]
    impl Transport for Counter {
        async fn send(&self, _: Request) -> Result<RawResponse, TransportError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(RawResponse::json(200, "{}"))
        }
    }

    fn req() -> Request {
        Request::Push {
            token: "t".into(),
            encoding: crate::transport::Encoding::Identity,
            body: bytes::Bytes::from(vec![b'x'; 250_000]),
        }
    }

    async fn run(seed: u64, profile: FaultProfile, n: usize) -> (Vec<bool>, FaultStats, u64) {
        let clock = Arc::new(ManualClock::new(0));
        let t = FaultyTransport::new(Counter::default(), profile, seed, clock);
        let mut seen = Vec::new();
        for _ in 0..n {
            seen.push(t.send(req()).await.is_ok());
        }
        let delivered = t.inner().0.load(Ordering::SeqCst);
        (seen, t.stats(), delivered)
    }

    #[tokio::test(start_paused = true)]
    async fn same_seed_same_faults() {
        let profile = FaultProfile {
            request_loss: 0.2,
            response_loss: 0.2,
            duplicate: 0.2,
            ..FaultProfile::perfect()
        };
        let a = run(7, profile.clone(), 200).await;
        let b = run(7, profile.clone(), 200).await;
        assert_eq!(a, b);
        let (_, stats, delivered) = a;
        assert!(stats.lost_requests > 10 && stats.lost_responses > 10 && stats.duplicated > 10);
        // Lost answers were delivered; duplicates were delivered twice.
        assert_eq!(delivered, 200 - stats.lost_requests + stats.duplicated);
    }

    #[tokio::test(start_paused = true)]
    async fn offline_and_outages_refuse_without_reaching_the_server() {
        let clock = Arc::new(ManualClock::new(1_000));
        let profile = FaultProfile {
            outages: vec![Outage {
                start_ms: 2_000,
                end_ms: 3_000,
            }],
            ..FaultProfile::perfect()
        };
        let t = FaultyTransport::new(Counter::default(), profile, 1, clock.clone());
        assert!(t.send(req()).await.is_ok());
        clock.set(2_500);
        assert_eq!(t.send(req()).await, Err(TransportError::Offline));
        clock.set(3_000);
        assert!(t.send(req()).await.is_ok());
        t.set_offline(true);
        assert_eq!(t.send(req()).await, Err(TransportError::Offline));
        t.set_offline(false);
        assert!(t.send(req()).await.is_ok());
        assert_eq!(t.inner().0.load(Ordering::SeqCst), 3);
        assert_eq!(t.stats().refused_offline, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn bandwidth_cap_takes_virtual_time() {
        let clock = Arc::new(ManualClock::new(0));
        let profile = FaultProfile {
            bandwidth_bps: Some(2_000_000),
            ..FaultProfile::perfect()
        };
        let t = FaultyTransport::new(Counter::default(), profile, 1, clock);
        let start = tokio::time::Instant::now();
        t.send(req()).await.unwrap();
        // 250 kB at 2 Mbit/s is one second (plus the tiny answer, rounded up to a tick).
        let ms = start.elapsed().as_millis();
        assert!((1_000..=1_002).contains(&ms), "{ms}");
    }

    #[test]
    fn profile_is_plain_data() {
        let json = serde_json::to_string(&FaultProfile::flaky()).unwrap();
        let back: FaultProfile = serde_json::from_str(&json).unwrap();
        assert_eq!(back, FaultProfile::flaky());
        let partial: FaultProfile = serde_json::from_str(r#"{"offline":true}"#).unwrap();
        assert_eq!(partial, FaultProfile::offline());
    }
}
