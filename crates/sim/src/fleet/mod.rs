//! `doorstep-sim run`: a fleet of real devices against a running server over HTTP.
//!
//! Every courier is a concurrent task with its own outbox file, enrolled with a code from the
//! server's demo seed, syncing through a fault injector (perfect, flaky, or flaky with a
//! scripted outage) while it works through its day. Simulated time is compressed onto the wall
//! clock by the speed-up factor; device clocks stay real so the server sees no skew. After the
//! shift the network returns, every outbox must drain, and the checker compares the outboxes
//! with the server's log read through the dispatcher API.

mod courier;
pub mod plan;
mod progress;

pub use plan::{CourierSetup, FleetOptions, Network, TimeScale, plan_fleet};

use crate::check::check;
use crate::report::{CourierLine, Faults, Report, Timing};
use crate::server_log::{DispatchClient, LogError};
use crate::truth::read_outbox;
use courier_core::{Clock, OutboxError, SystemClock};
use doorstep_server::seed::DemoSeed;
use doorstep_shared::event::GeoPoint;
use progress::{Progress, Reporter};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The depot of `doorstep-server demo-seed`.
pub const DEMO_DEPOT: GeoPoint = GeoPoint {
    lat: 52.5200,
    lon: 13.4050,
};

#[derive(Clone, Debug)]
pub struct RunConfig {
    pub server_url: String,
    pub fleet: FleetOptions,
    /// Couriers, enrollment codes and the dispatcher token.
    pub seed: DemoSeed,
    pub data_dir: PathBuf,
    pub depot: GeoPoint,
    /// Progress on stderr: a bar on a terminal, else a line this often (wall time); `None`: quiet.
    pub progress_every: Option<Duration>,
    /// How long (wall time) the outboxes may take to drain once the network is back.
    pub drain_timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error(
        "the seed has {have} couriers but {want} were asked for; seed more with \
         `doorstep-server demo-seed --couriers {want}`"
    )]
    NotEnoughCouriers { have: usize, want: usize },
    #[error("courier {courier}: {message}")]
    Courier { courier: usize, message: String },
    #[error("cannot use the data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Log(#[from] LogError),
    #[error(transparent)]
    Outbox(#[from] OutboxError),
}

/// Runs the fleet and checks the server. The report says whether the run was valid.
pub async fn run(cfg: RunConfig) -> Result<Report, FleetError> {
    let wall = std::time::Instant::now();
    let n = cfg.fleet.couriers;
    if cfg.seed.couriers.len() < n {
        return Err(FleetError::NotEnoughCouriers {
            have: cfg.seed.couriers.len(),
            want: n,
        });
    }
    std::fs::create_dir_all(&cfg.data_dir).map_err(|source| FleetError::DataDir {
        path: cfg.data_dir.clone(),
        source,
    })?;
    let setups = plan_fleet(&cfg.fleet);
    let progress = Arc::new(Progress::new(n));
    let real_origin = tokio::time::Instant::now();
    let wall_origin_ms = SystemClock.now_ms();
    let scale = TimeScale {
        speedup: cfg.fleet.speedup,
    };
    let reporter = cfg.progress_every.map(|every| {
        Reporter {
            every,
            shift_ms: cfg.fleet.shift_ms,
            speedup: scale.speedup,
            origin: real_origin,
        }
        .spawn(progress.clone())
    });
    let servers = server_urls(&cfg.server_url);
    let mut tasks = tokio::task::JoinSet::new();
    for (setup, seeded) in setups.into_iter().zip(cfg.seed.couriers.iter().cloned()) {
        let server_url = servers[setup.index % servers.len()].to_owned();
        let ctx = courier::Ctx {
            outbox: cfg
                .data_dir
                .join(format!("courier-{:03}.outbox.db", setup.index)),
            setup,
            seeded,
            server_url,
            fleet: cfg.fleet.clone(),
            depot: cfg.depot,
            real_origin,
            wall_origin_ms,
            drain_timeout: cfg.drain_timeout,
            progress: progress.clone(),
        };
        tasks.spawn(courier::run(ctx));
    }
    let mut done = Vec::with_capacity(n);
    let mut first_error = None;
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(d)) => done.push(d),
            Ok(Err(e)) => {
                tracing::error!(error = %e, "courier failed");
                first_error.get_or_insert(e);
            }
            Err(e) => {
                first_error.get_or_insert(FleetError::Courier {
                    courier: usize::MAX,
                    message: e.to_string(),
                });
            }
        }
    }
    if let Some(r) = reporter {
        r.abort();
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    done.sort_by_key(|d| d.index);
    let simulated_ms = (real_origin.elapsed().as_secs_f64() * 1_000.0 * scale.speedup) as u64;

    let mut created = Vec::new();
    let mut report = Report {
        mode: "run".into(),
        seed: cfg.fleet.seed,
        couriers: n,
        outboxes_drained: true,
        ..Report::default()
    };
    let mut faults = Faults::default();
    for d in &done {
        let truth = read_outbox(&d.outbox, d.index)?;
        report.raw_payload_bytes += truth.raw_payload_bytes;
        report.compressed_payload_bytes += truth.compressed_payload_bytes;
        report.bytes_on_wire += d.bytes_pushed;
        report.sync_requests += d.requests;
        report.refused_commands += d.refused;
        report.outboxes_drained &= d.drained && truth.queued == 0;
        faults.requests += d.faults.requests;
        faults.refused_offline += d.faults.refused_offline;
        faults.lost_requests += d.faults.lost_requests;
        faults.lost_responses += d.faults.lost_responses;
        faults.duplicated_requests += d.faults.duplicated;
        faults.app_kills += d.kills;
        report.per_courier.push(CourierLine {
            courier: d.index,
            name: d.name.clone(),
            network: d.network.clone(),
            events: truth.events.len() as u64,
            queued_at_end: truth.queued,
            app_kills: d.kills,
            refused_commands: d.refused,
            first_refusal: d.first_refusal.clone(),
        });
        created.extend(truth.events);
    }
    report.faults = faults;
    let devices: Vec<_> = done.iter().map(|d| (d.index, d.device_id)).collect();
    let client = DispatchClient::new(server_urls(&cfg.server_url)[0], &cfg.seed.dispatcher_token)?;
    let logged = client.log(&devices).await?;
    let verdict = check(&created, &logged);
    report.timing = Timing {
        wall_ms: wall.elapsed().as_millis() as u64,
        simulated_ms,
        speedup: cfg.fleet.speedup,
    };
    Ok(report.with_verdict(&verdict, cfg.fleet.speedup))
}

/// The servers in a comma-separated list (replicas of one service); never empty.
fn server_urls(list: &str) -> Vec<&str> {
    let urls: Vec<&str> = list
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .collect();
    if urls.is_empty() { vec![list] } else { urls }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_list_of_servers_is_split_and_trimmed() {
        assert_eq!(
            super::server_urls("http://a:1, http://b:2,"),
            vec!["http://a:1", "http://b:2"]
        );
        assert_eq!(super::server_urls("http://a:1"), vec!["http://a:1"]);
    }
}
