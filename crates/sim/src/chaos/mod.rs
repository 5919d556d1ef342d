//! `doorstep-sim chaos`: the deterministic mode.
//!
//! The server's real router and service run in process on an in-memory store; devices (real
//! outbox files in a temp directory) reach it through [`inprocess::RouterTransport`] wrapped in
//! the fault injector. One manual clock serves everyone, and one seeded [`schedule::Agenda`]
//! decides which device acts or syncs next, so nothing races: the same seed gives the same run
//! and the same report. Faults: loss before and after commit, duplicated requests, outages,
//! app kills (right away, or just after the server committed a request) with a restart from the
//! outbox file, and late redeliveries of old pushes straight to the server.

pub mod inprocess;
pub mod schedule;
pub mod shrink;

use crate::act::{Taken, perform};
use crate::check::check;
use crate::clock::{CHAOS_DAY, CHAOS_DAY_START_MS, SimClock};
use crate::courier_day::{DayParams, PlannedStop, Timed, plan_day};
use crate::fleet::DEMO_DEPOT;
use crate::report::{CourierLine, Faults, Report, Timing};
use crate::server_log::{LogError, from_store};
use crate::truth::read_outbox;
use courier_core::transport::faulty::{FaultProfile, Outage};
use courier_core::transport::{Request, Transport};
use courier_core::{
    Device, FaultyTransport, Identity, OutboxError, RoundOutcome, SyncConfig, SyncEngine,
};
use doorstep_server::auth;
use doorstep_server::seed::{SeedOptions, seed_demo};
use doorstep_server::store::Store;
use doorstep_shared::DeviceId;
use inprocess::{KillSwitch, RouterTransport, Tap, Wire};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use schedule::{Agenda, Job, plan_faults};
use std::path::PathBuf;
use std::sync::Arc;

const HOUR: u64 = 3_600_000;
/// How often an idle device looks for office changes (fewer rounds keep the mode fast).
const IDLE_MS: u64 = 5 * 60_000;

#[derive(Clone, Debug, PartialEq)]
pub struct ChaosOptions {
    pub seed: u64,
    pub couriers: usize,
    pub stops: usize,
    pub shift_ms: u64,
}

impl Default for ChaosOptions {
    fn default() -> Self {
        Self {
            seed: 1,
            couriers: 4,
            stops: 8,
            shift_ms: 8 * HOUR,
        }
    }
}

impl ChaosOptions {
    /// The command that replays this run exactly.
    pub fn reproduce_command(&self) -> String {
        format!(
            "doorstep-sim chaos --seed {} --couriers {} --stops {} --shift-hours {}",
            self.seed,
            self.couriers,
            self.stops,
            self.shift_ms as f64 / HOUR as f64
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ChaosError {
    #[error("the in-process server failed: {0}")]
    Server(String),
    #[error("courier {courier}: {message}")]
    Courier { courier: usize, message: String },
    #[error("cannot create the temporary directory: {0}")]
    TempDir(#[from] std::io::Error),
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    #[error(transparent)]
    Log(#[from] LogError),
}

type Link = Arc<FaultyTransport<Tap<RouterTransport>>>;

fn err(courier: usize, e: impl std::fmt::Display) -> ChaosError {
    ChaosError::Courier {
        courier,
        message: e.to_string(),
    }
}

/// One simulated handheld.
struct Handheld {
    index: usize,
    name: String,
    device: Device,
    engine: SyncEngine<Link>,
    link: Link,
    kill: Arc<KillSwitch>,
    clock: Arc<dyn courier_core::Clock>,
    path: PathBuf,
    seed: u64,
    config: SyncConfig,
    plan: Vec<Timed>,
    device_id: DeviceId,
    restarts: u64,
    refused: u64,
    first_refusal: Option<String>,
    requests: u64,
    bytes_pushed: u64,
    network: String,
}

impl Handheld {
    /// One sync round; `None` when the app was killed during it.
    async fn sync(&mut self) -> Option<RoundOutcome> {
        let kill = self.kill.clone();
        tokio::select! {
            biased;
            o = self.engine.sync_once() => Some(o),
            _ = kill.fired() => None,
        }
    }

    /// The app dies and starts again from its outbox file.
    fn restart(&mut self) -> Result<(), ChaosError> {
        self.restarts += 1;
        self.requests += self.engine.stats().requests;
        self.bytes_pushed += self.engine.stats().encoded_bytes_pushed;
        let seed = self.seed ^ (self.restarts << 40);
        self.device =
            Device::open(&self.path, self.clock.clone(), seed).map_err(|e| err(self.index, e))?;
        self.engine = SyncEngine::new(
            self.device.clone(),
            self.link.clone(),
            self.config.clone(),
            seed,
        );
        Ok(())
    }

    fn queued(&self) -> Result<u64, ChaosError> {
        Ok(self
            .device
            .sync_status()
            .map_err(|e| err(self.index, e))?
            .queued)
    }
}

/// Enrolls a device with its one-time code through the store, with a device id and token drawn
/// from the seed: the server's own enrollment mints them from OS randomness, which would make
/// two runs of one seed differ in every envelope (and so in compressed sizes).
fn provision(
    ctx: &Shared,
    index: usize,
    seeded: &doorstep_server::seed::SeededCourier,
    seed: u64,
) -> Result<Identity, String> {
    let mut rng = StdRng::seed_from_u64(seed);
    let device_id = DeviceId(doorstep_shared::ids::uuid_v7(
        CHAOS_DAY_START_MS,
        rng.random(),
    ));
    let token = auth::new_device_token(&mut rng);
    let code_hash = auth::hash_secret(&auth::normalise_code(&seeded.enrollment_code));
    let courier = ctx
        .store
        .enroll_device(
            &code_hash,
            device_id,
            &format!("chaos handheld {index}"),
            &token.hash,
            None,
            CHAOS_DAY_START_MS,
        )
        .map_err(|e| e.to_string())?
        .ok_or("the enrollment code was refused")?;
    Ok(Identity {
        device_id,
        courier_id: courier,
        token: token.plain,
    })
}

async fn enroll_and_load(
    opts: &ChaosOptions,
    index: usize,
    seeded: &doorstep_server::seed::SeededCourier,
    ctx: &Shared,
) -> Result<Handheld, ChaosError> {
    let seed = opts.seed.wrapping_mul(7_919).wrapping_add(index as u64);
    let path = ctx.dir.join(format!("courier-{index:03}.outbox.db"));
    let device = Device::open(&path, ctx.clock.clone(), seed).map_err(|e| err(index, e))?;
    let identity = provision(ctx, index, seeded, seed).map_err(|e| err(index, e))?;
    device.set_identity(&identity).map_err(|e| err(index, e))?;
    let faults = &ctx.faults.couriers[index];
    let kill = Arc::new(KillSwitch::default());
    let tap = Tap::new(ctx.direct.clone(), ctx.wire.clone(), kill.clone());
    let link: Link = Arc::new(FaultyTransport::new(
        tap,
        FaultProfile::perfect(),
        seed,
        ctx.clock.clone(),
    ));
    let config = SyncConfig {
        max_batch_events: faults.max_batch_events,
        idle_interval_ms: IDLE_MS,
        ..SyncConfig::default()
    };
    let mut engine = SyncEngine::new(device.clone(), link.clone(), config.clone(), seed);
    // At the depot, on the depot's network: load the route.
    let mut route = None;
    for _ in 0..20 {
        engine.sync_once().await;
        route = device.route(None).map_err(|e| err(index, e))?;
        if route.is_some() {
            break;
        }
    }
    let route = route.ok_or_else(|| err(index, "the route never arrived"))?;
    let stops: Vec<PlannedStop> = route
        .stops
        .into_iter()
        .map(|s| PlannedStop {
            stop_id: s.stop_id,
            location: s.location,
            parcels: s.parcels,
        })
        .collect();
    let params = DayParams {
        shift_ms: opts.shift_ms,
        ..DayParams::default()
    };
    let plan = plan_day(&stops, DEMO_DEPOT, opts.seed, seed, &params);
    let outages = faults
        .outage
        .map(|(s, e)| Outage {
            start_ms: CHAOS_DAY_START_MS + s,
            end_ms: CHAOS_DAY_START_MS + e,
        })
        .into_iter()
        .collect();
    link.set_profile(FaultProfile {
        request_loss: faults.request_loss,
        response_loss: faults.response_loss,
        duplicate: faults.duplicate,
        timeout_ms: 0,
        outages,
        ..FaultProfile::perfect()
    });
    let network = format!(
        "loss {:.0} %+{:.0} % after commit, dup {:.0} %{}",
        faults.request_loss * 100.0,
        faults.response_loss * 100.0,
        faults.duplicate * 100.0,
        faults.outage.map_or(String::new(), |(s, e)| format!(
            ", offline {:.1} h",
            (e - s) as f64 / HOUR as f64
        ))
    );
    Ok(Handheld {
        index,
        name: seeded.name.clone(),
        device,
        engine,
        link,
        kill,
        clock: ctx.clock.clone(),
        path,
        seed,
        config,
        plan,
        device_id: identity.device_id,
        restarts: 0,
        refused: 0,
        first_refusal: None,
        requests: 0,
        bytes_pushed: 0,
        network,
    })
}

struct Shared {
    /// The in-process server's store, whatever its backend.
    store: Arc<dyn Store>,
    clock: Arc<dyn courier_core::Clock>,
    direct: RouterTransport,
    wire: Arc<Wire>,
    faults: schedule::ChaosFaults,
    dir: PathBuf,
}

/// Runs one deterministic chaos scenario and checks it.
pub async fn run(opts: &ChaosOptions) -> Result<Report, ChaosError> {
    let wall = std::time::Instant::now();
    let sim = SimClock::new(CHAOS_DAY_START_MS);
    let app = doorstep_server::startup::build_app("sqlite::memory:", Arc::new(sim.clone()))
        .map_err(|e| ChaosError::Server(e.to_string()))?;
    let seeded = seed_demo(
        &app,
        &SeedOptions {
            couriers: opts.couriers,
            stops_per_route: opts.stops,
            seed: opts.seed,
            day: CHAOS_DAY.into(),
            day_start_ms: CHAOS_DAY_START_MS,
            depot: DEMO_DEPOT,
        },
    )
    .await
    .map_err(|e| ChaosError::Server(e.to_string()))?;
    // The chaos mode tests logic, not disks: outboxes go to RAM-backed storage when there is some.
    let ram = std::path::Path::new("/dev/shm");
    let tmp = if ram.is_dir() {
        tempfile::tempdir_in(ram)?
    } else {
        tempfile::tempdir()?
    };
    let shared = Shared {
        store: app.store.clone(),
        clock: Arc::new(sim.clone()),
        direct: RouterTransport::new(doorstep_server::http::router(app.clone())),
        wire: Arc::new(Wire::default()),
        faults: plan_faults(opts.seed, opts.couriers, opts.shift_ms),
        dir: tmp.path().to_owned(),
    };
    let mut hands = Vec::with_capacity(opts.couriers);
    for (i, c) in seeded.couriers.iter().enumerate() {
        hands.push(enroll_and_load(opts, i, c, &shared).await?);
    }

    let mut agenda = Agenda::new(hands.len());
    for h in &hands {
        if let Some(first) = h.plan.first() {
            agenda.push(
                first.at_ms,
                Job::Act {
                    courier: h.index,
                    step: 0,
                },
            );
        }
        for &(at, mid_sync) in &shared.faults.couriers[h.index].kills {
            agenda.push(
                at,
                Job::Kill {
                    courier: h.index,
                    mid_sync,
                },
            );
        }
        agenda.sync(h.index, 0);
    }
    for &at in &shared.faults.redeliveries {
        agenda.push(at, Job::Redeliver);
    }
    let mut rng = StdRng::seed_from_u64(opts.seed ^ 0x5c4e_d01e);
    let idle = IDLE_MS;
    let give_up = opts.shift_ms + 24 * HOUR;
    let mut redelivered = 0;
    while let Some((at, job)) = agenda.pop() {
        if at > give_up {
            break;
        }
        sim.advance_to(CHAOS_DAY_START_MS + at);
        match job {
            Job::Act { courier, step } => {
                let h = &mut hands[courier];
                if let Taken::Refused(why) = perform(
                    &h.device,
                    &h.plan[step].action,
                    CHAOS_DAY_START_MS + h.plan[step].at_ms,
                )
                .map_err(|e| err(courier, e))?
                {
                    h.refused += 1;
                    h.first_refusal
                        .get_or_insert(format!("{:?}: {why}", h.plan[step].action));
                }
                if let Some(next) = h.plan.get(step + 1) {
                    agenda.push(
                        next.at_ms.max(at),
                        Job::Act {
                            courier,
                            step: step + 1,
                        },
                    );
                }
                agenda.sync(courier, at + rng.random_range(0..30_000));
            }
            Job::Sync { courier } => match hands[courier].sync().await {
                None => {
                    hands[courier].restart()?;
                    agenda.sync(courier, at + 1_000);
                }
                Some(RoundOutcome::RetryIn { wait, .. }) => {
                    agenda.sync(courier, at + (wait.as_millis() as u64).max(1));
                }
                Some(RoundOutcome::Synced { .. }) if at < opts.shift_ms => {
                    agenda.sync(courier, at + idle);
                }
                Some(_) => {}
            },
            Job::Kill { courier, mid_sync } => {
                if mid_sync {
                    hands[courier].kill.arm(true);
                } else {
                    hands[courier].restart()?;
                    agenda.sync(courier, at + 1_000);
                }
            }
            Job::Redeliver => {
                let old: Option<Request> = {
                    let pushes = shared.wire.pushes.lock().unwrap_or_else(|p| p.into_inner());
                    (!pushes.is_empty()).then(|| pushes[rng.random_range(0..pushes.len())].clone())
                };
                if let Some(old) = old {
                    let _ = shared.direct.send(old).await;
                    redelivered += 1;
                }
            }
        }
    }

    // The network comes back for good: every outbox must drain.
    let mut drained = true;
    for h in &mut hands {
        h.kill.arm(false);
        h.link.set_profile(FaultProfile::perfect());
        let mut done = false;
        for _ in 0..1_000 {
            match h.sync().await {
                Some(RoundOutcome::Synced { .. }) if h.queued()? == 0 => {
                    done = true;
                    break;
                }
                Some(RoundOutcome::RetryIn { wait, .. }) => {
                    sim.advance_to(sim.now() + wait.as_millis() as u64);
                }
                Some(RoundOutcome::Synced { .. }) => {}
                None => h.restart()?,
                Some(other) => {
                    tracing::warn!(courier = h.index, ?other, "drain stopped");
                    break;
                }
            }
        }
        drained &= done;
    }

    let mut report = Report {
        mode: "chaos".into(),
        seed: opts.seed,
        couriers: hands.len(),
        outboxes_drained: drained,
        ..Report::default()
    };
    let mut created = Vec::new();
    let mut faults = Faults {
        late_redeliveries: redelivered,
        ..Faults::default()
    };
    for h in &mut hands {
        h.requests += h.engine.stats().requests;
        h.bytes_pushed += h.engine.stats().encoded_bytes_pushed;
        let truth = read_outbox(&h.path, h.index)?;
        let f = h.link.stats();
        faults.requests += f.requests;
        faults.refused_offline += f.refused_offline;
        faults.lost_requests += f.lost_requests;
        faults.lost_responses += f.lost_responses;
        faults.duplicated_requests += f.duplicated;
        faults.app_kills += h.restarts;
        report.raw_payload_bytes += truth.raw_payload_bytes;
        report.compressed_payload_bytes += truth.compressed_payload_bytes;
        report.bytes_on_wire += h.bytes_pushed;
        report.sync_requests += h.requests;
        report.refused_commands += h.refused;
        report.outboxes_drained &= truth.queued == 0;
        report.per_courier.push(CourierLine {
            courier: h.index,
            name: h.name.clone(),
            network: h.network.clone(),
            events: truth.events.len() as u64,
            queued_at_end: truth.queued,
            app_kills: h.restarts,
            refused_commands: h.refused,
            first_refusal: h.first_refusal.clone(),
        });
        created.extend(truth.events);
    }
    report.faults = faults;
    let devices: Vec<_> = hands.iter().map(|h| (h.index, h.device_id)).collect();
    let logged = from_store(&*app.store, &devices)?;
    let verdict = check(&created, &logged);
    report.timing = Timing {
        wall_ms: wall.elapsed().as_millis() as u64,
        simulated_ms: sim.now() - CHAOS_DAY_START_MS,
        speedup: 0.0,
    };
    Ok(report.with_verdict(&verdict, 1.0))
}
