//! `doorstep-sim`: see `doorstep-sim --help`.

use anyhow::Context;
use clap::Parser;
use doorstep_server::seed::{DemoSeed, SeedOptions, seed_demo};
use doorstep_sim::chaos::shrink::{FailureLog, shrink};
use doorstep_sim::chaos::{self, ChaosOptions};
use doorstep_sim::cli::{ChaosArgs, Cli, Command, RunArgs, SolveArgs};
use doorstep_sim::clock::civil_day;
use doorstep_sim::fleet::{self, DEMO_DEPOT, FleetOptions, RunConfig};
use doorstep_sim::report::Report;
use std::process::ExitCode;
use std::time::Duration;

const HOUR: f64 = 3_600_000.0;

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn write_report(report: &Report, path: Option<&std::path::Path>) -> anyhow::Result<()> {
    if let Some(path) = path {
        let json = serde_json::to_string_pretty(report)?;
        std::fs::write(path, json).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

async fn load_seed(args: &RunArgs) -> anyhow::Result<DemoSeed> {
    if let Some(path) = &args.seed_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the seed file {}", path.display()))?;
        return serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is not the JSON printed by `doorstep-server demo-seed`",
                path.display()
            )
        });
    }
    let url = args
        .database
        .as_deref()
        .context("give --seed-file or --database")?;
    let clock = std::sync::Arc::new(doorstep_server::clock::SystemClock);
    let app = doorstep_server::startup::build_app(url, clock.clone())?;
    let (day, day_start_ms) = civil_day(doorstep_server::clock::Clock::now_ms(&*clock));
    let seeded = seed_demo(
        &app,
        &SeedOptions {
            couriers: args.couriers,
            stops_per_route: args.stops,
            seed: args.seed,
            day,
            day_start_ms,
            depot: DEMO_DEPOT,
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("seeding {url} failed: {e}"))?;
    std::fs::create_dir_all(&args.data_dir)?;
    let path = args.data_dir.join("seed.json");
    std::fs::write(&path, serde_json::to_string_pretty(&seeded)?)?;
    eprintln!(
        "seeded {url}; codes and dispatcher token in {}",
        path.display()
    );
    Ok(seeded)
}

async fn run(args: RunArgs) -> anyhow::Result<Report> {
    let mut seed = load_seed(&args).await?;
    if let Some(t) = &args.dispatcher_token {
        seed.dispatcher_token = t.clone();
    }
    let cfg = RunConfig {
        server_url: args.server.clone(),
        fleet: FleetOptions {
            couriers: args.couriers,
            seed: args.seed,
            speedup: args.speedup.max(1.0),
            offline_share: args.offline_share,
            offline_hours: args.offline_hours,
            perfect_share: args.perfect_share,
            loss: args.loss,
            duplicate: args.duplicate,
            kill_share: args.kill_share,
            shift_ms: (args.shift_hours * HOUR) as u64,
        },
        seed,
        data_dir: args.data_dir.clone(),
        depot: DEMO_DEPOT,
        progress_every: (args.progress_secs > 0).then(|| Duration::from_secs(args.progress_secs)),
        drain_timeout: Duration::from_secs(args.drain_timeout_secs),
    };
    eprintln!(
        "doorstep-sim: {} couriers against {}, {:.1} h shift at {}x ({:.0} s wall)",
        cfg.fleet.couriers,
        cfg.server_url,
        args.shift_hours,
        cfg.fleet.speedup,
        args.shift_hours * 3_600.0 / cfg.fleet.speedup
    );
    let report = fleet::run(cfg).await?;
    write_report(&report, args.report.as_deref())?;
    Ok(report)
}

async fn chaos(args: ChaosArgs) -> anyhow::Result<Report> {
    let log = FailureLog::new(&args.failures);
    let saved = log.load()?;
    if !saved.is_empty() {
        eprintln!(
            "chaos: replaying {} saved failing run(s) from {} first",
            saved.len(),
            log.path().display()
        );
    }
    let shift_ms = (args.shift_hours * HOUR) as u64;
    let fresh = (args.seed..args.seed.saturating_add(args.seeds.max(1))).map(|seed| ChaosOptions {
        seed,
        couriers: args.couriers,
        stops: args.stops,
        shift_ms,
    });
    let mut last = None;
    for opts in saved.into_iter().chain(fresh) {
        let report = chaos::run(&opts).await?;
        if !report.valid {
            eprintln!(
                "chaos: a property was violated with seed {}\n  reproduce: {}",
                opts.seed,
                opts.reproduce_command()
            );
            let smallest = shrink(
                &opts,
                async |o: &ChaosOptions| chaos::run(o).await.is_ok_and(|r| !r.valid),
                args.shrink_runs,
            )
            .await;
            if smallest.options != opts {
                eprintln!(
                    "  smallest failing run found in {} more runs: {}",
                    smallest.runs,
                    smallest.options.reproduce_command()
                );
            }
            log.save(&smallest.options)?;
            eprintln!(
                "  saved to {} (replayed first next time)",
                log.path().display()
            );
            write_report(&report, args.report.as_deref())?;
            return Ok(report);
        }
        eprintln!("seed {}: ok ({} events)", opts.seed, report.events_created);
        last = Some(report);
    }
    let report = last.context("no seed ran")?;
    write_report(&report, args.report.as_deref())?;
    Ok(report)
}

/// `doorstep-sim solve`: one instance, one JSON object on stdout.
fn solve(args: &SolveArgs) -> ExitCode {
    match doorstep_solver::cli::run_solve(&args.instance, args.budget_ms, args.seed) {
        Ok(out) => match serde_json::to_string(&out) {
            Ok(json) => {
                println!("{json}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("doorstep-sim: cannot encode the solution: {e}");
                ExitCode::from(2)
            }
        },
        Err(e) => {
            eprintln!("doorstep-sim: {e}");
            ExitCode::from(2)
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    init_tracing();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Solve(args) => return solve(&args),
        Command::Run(args) => run(args).await,
        Command::Chaos(args) => chaos(args).await,
    };
    match result {
        Ok(report) => {
            println!("{}", report.summary());
            if report.valid {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("doorstep-sim: {e:#}");
            ExitCode::from(2)
        }
    }
}
