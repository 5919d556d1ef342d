//! One virtual courier of `doorstep-sim run`: a real device with its own outbox file, enrolled
//! with a one-time code, syncing over real HTTP through a fault injector while it works through
//! its planned day on a compressed clock.

use super::plan::{CourierSetup, FleetOptions, TimeScale};
use super::{FleetError, Progress};
use crate::act::{Taken, perform};
use crate::courier_day::{DayParams, PlannedStop, plan_day};
use courier_core::sync::EngineStats;
use courier_core::sync::enroll::EnrollError;
use courier_core::transport::faulty::{FaultProfile, FaultStats};
use courier_core::{
    Clock, Device, FaultyTransport, HttpTransport, RoundOutcome, SyncEngine, SystemClock,
};
use doorstep_server::seed::SeededCourier;
use doorstep_shared::DeviceId;
use doorstep_shared::event::GeoPoint;
use doorstep_shared::protocol::EnrollRequest;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, sleep_until};

type Link = Arc<FaultyTransport<HttpTransport>>;
type Engine = SyncEngine<Link>;

pub(super) struct Ctx {
    pub setup: CourierSetup,
    pub seeded: SeededCourier,
    pub server_url: String,
    pub outbox: PathBuf,
    pub fleet: FleetOptions,
    pub depot: GeoPoint,
    pub real_origin: Instant,
    pub wall_origin_ms: u64,
    pub drain_timeout: Duration,
    pub progress: Arc<Progress>,
}

/// What one courier did, for the report.
#[derive(Debug)]
pub(super) struct Done {
    pub index: usize,
    pub name: String,
    pub network: String,
    pub device_id: DeviceId,
    pub outbox: PathBuf,
    pub requests: u64,
    pub bytes_pushed: u64,
    pub faults: FaultStats,
    pub kills: u64,
    pub refused: u64,
    pub first_refusal: Option<String>,
    pub drained: bool,
}

fn err(courier: usize, e: impl std::fmt::Display) -> FleetError {
    FleetError::Courier {
        courier,
        message: e.to_string(),
    }
}

/// Syncs until told to stop (an app kill drops it mid-request), like `SyncEngine::run` but
/// handing the engine back so its counters survive.
fn spawn_driver(mut engine: Engine, idle: Duration) -> (watch::Sender<bool>, JoinHandle<Engine>) {
    let (tx, mut stop) = watch::channel(false);
    let handle = tokio::spawn(async move {
        let mut status = engine.device().subscribe_status();
        loop {
            let outcome = tokio::select! {
                o = engine.sync_once() => o,
                _ = stop.changed() => break,
            };
            let (wait, wake_on_event) = match outcome {
                RoundOutcome::Synced { .. } => (idle, true),
                RoundOutcome::RetryIn { wait, .. } => (wait, false),
                RoundOutcome::NeedsEnrollment | RoundOutcome::Blocked(_) => (idle, false),
            };
            status.borrow_and_update();
            tokio::select! {
                _ = sleep(wait) => {}
                r = status.changed(), if wake_on_event => if r.is_err() { break },
                _ = stop.changed() => break,
            }
        }
        engine
    });
    (tx, handle)
}

async fn stop_driver(
    courier: usize,
    tx: watch::Sender<bool>,
    handle: JoinHandle<Engine>,
) -> Result<EngineStats, FleetError> {
    let _ = tx.send(true);
    let engine = handle.await.map_err(|e| err(courier, e))?;
    Ok(engine.stats().clone())
}

async fn enroll(ctx: &Ctx, device: &Device, http: &HttpTransport) -> Result<DeviceId, FleetError> {
    let i = ctx.setup.index;
    if let Some(identity) = device.identity().map_err(|e| err(i, e))? {
        return Ok(identity.device_id);
    }
    let request = EnrollRequest {
        code: ctx.seeded.enrollment_code.clone(),
        device_name: format!("sim handheld {i}"),
        public_key: None,
    };
    let mut tries = 0;
    loop {
        match courier_core::sync::enroll(device, http, &request).await {
            Ok(identity) => return Ok(identity.device_id),
            Err(EnrollError::Transient(e)) if tries < 10 => {
                tries += 1;
                tracing::warn!(courier = i, error = %e, "enrollment failed, retrying");
                sleep(Duration::from_millis(200)).await;
            }
            Err(EnrollError::Refused(why)) => {
                return Err(err(
                    i,
                    format!(
                        "enrollment refused ({why}); codes are one-time: seed a fresh world \
                         (doorstep-server demo-seed) or reuse the same --data-dir"
                    ),
                ));
            }
            Err(e) => return Err(err(i, e)),
        }
    }
}

/// The morning at the depot: sync until the route is on the device.
async fn fetch_route(courier: usize, engine: &mut Engine) -> Result<Vec<PlannedStop>, FleetError> {
    for _ in 0..2_000 {
        let outcome = engine.sync_once().await;
        if let Some(route) = engine.device().route(None).map_err(|e| err(courier, e))? {
            return Ok(route
                .stops
                .into_iter()
                .map(|s| PlannedStop {
                    stop_id: s.stop_id,
                    location: s.location,
                    parcels: s.parcels,
                })
                .collect());
        }
        match outcome {
            RoundOutcome::RetryIn { wait, .. } => sleep(wait).await,
            RoundOutcome::Synced { .. } => sleep(Duration::from_millis(20)).await,
            other => return Err(err(courier, format!("cannot fetch the route: {other:?}"))),
        }
    }
    Err(err(courier, "no route assigned to this courier"))
}

pub(super) async fn run(ctx: Ctx) -> Result<Done, FleetError> {
    let i = ctx.setup.index;
    let scale = TimeScale {
        speedup: ctx.fleet.speedup,
    };
    let config = scale.sync_config();
    let idle = Duration::from_millis(config.idle_interval_ms);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let seed = ctx.setup.seed;
    let mut device = Device::open(&ctx.outbox, clock.clone(), seed).map_err(|e| err(i, e))?;
    let http = HttpTransport::new(
        &ctx.server_url,
        Duration::from_millis(config.request_timeout_ms),
    )
    .map_err(|e| err(i, e))?;
    let device_id = enroll(&ctx, &device, &http).await?;
    let profile = scale.fault_profile(&ctx.setup.network, &ctx.fleet, ctx.wall_origin_ms);
    let link: Link = Arc::new(FaultyTransport::new(http, profile, seed, clock.clone()));
    let mut engine = SyncEngine::new(device.clone(), link.clone(), config.clone(), seed);
    let stops = fetch_route(i, &mut engine).await?;
    let params = DayParams {
        shift_ms: ctx.fleet.shift_ms,
        ..DayParams::default()
    };
    let plan = plan_day(&stops, ctx.depot, ctx.fleet.seed, seed, &params);

    let mut stats = vec![];
    let (mut tx, mut driver) = spawn_driver(engine, idle);
    let mut kills = ctx.setup.kills_at.iter().copied().peekable();
    let mut refused = 0;
    let mut first_refusal = None;
    let mut killed = 0;
    let day_end = ctx.fleet.shift_ms;
    let mut steps = plan.into_iter().peekable();
    loop {
        let next_at = steps.peek().map_or(day_end, |s| s.at_ms);
        while let Some(at) = kills.next_if(|k| *k <= next_at) {
            sleep_until(ctx.real_origin + scale.real(at)).await;
            tracing::info!(courier = i, "app killed; reopening from the outbox file");
            stats.push(stop_driver(i, tx, driver).await?);
            drop(device);
            killed += 1;
            device = Device::open(&ctx.outbox, clock.clone(), seed ^ (killed << 32))
                .map_err(|e| err(i, e))?;
            let engine =
                SyncEngine::new(device.clone(), link.clone(), config.clone(), seed + killed);
            (tx, driver) = spawn_driver(engine, idle);
        }
        let Some(step) = steps.next() else { break };
        sleep_until(ctx.real_origin + scale.real(step.at_ms)).await;
        let planned = ctx.wall_origin_ms + scale.real(step.at_ms).as_millis() as u64;
        match perform(&device, &step.action, planned).map_err(|e| err(i, e))? {
            Taken::Recorded => {
                ctx.progress.recorded.fetch_add(1, Ordering::Relaxed);
            }
            Taken::Duplicate => {}
            Taken::Refused(why) => {
                refused += 1;
                first_refusal.get_or_insert(format!("{:?}: {why}", step.action));
            }
        }
        let queued = device.subscribe_status().borrow().queued;
        ctx.progress.queued[i].store(queued, Ordering::Relaxed);
    }
    // The shift ends (outages run their course), then the network comes back for good.
    sleep_until(ctx.real_origin + scale.real(ctx.fleet.shift_ms)).await;
    link.set_profile(FaultProfile::perfect());
    let mut status = device.subscribe_status();
    let drained = tokio::time::timeout(ctx.drain_timeout, status.wait_for(|s| s.queued == 0))
        .await
        .is_ok_and(|r| r.is_ok());
    stats.push(stop_driver(i, tx, driver).await?);
    let queued = device.sync_status().map_err(|e| err(i, e))?.queued;
    ctx.progress.queued[i].store(queued, Ordering::Relaxed);
    ctx.progress.finished.fetch_add(1, Ordering::Relaxed);
    Ok(Done {
        index: i,
        name: ctx.seeded.name.clone(),
        network: ctx.setup.network.label(),
        device_id,
        outbox: ctx.outbox.clone(),
        requests: stats.iter().map(|s| s.requests).sum(),
        bytes_pushed: stats.iter().map(|s| s.encoded_bytes_pushed).sum(),
        faults: link.stats(),
        kills: killed,
        refused,
        first_refusal,
        drained: drained && queued == 0,
    })
}
