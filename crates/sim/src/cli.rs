//! The command line.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "doorstep-sim",
    version,
    about = "Fleet simulator and field-test tool for Doorstep",
    long_about = "Fleet simulator and field-test tool for Doorstep.\n\n\
        Real courier-core devices (each with its own SQLite outbox) work through a synthetic \
        delivery day — scans, arrivals, attempts that succeed or fail like real doorsteps do, \
        notes, location fixes — while the network misbehaves and apps get killed. Afterwards \
        every outbox must drain and a Jepsen-style checker compares the outboxes with the \
        server's log: lost, duplicated effects and unexpected events must all be zero.\n\n\
        Exit status: 0 valid run, 1 a property was violated, 2 the run could not be done."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a fleet of devices against a running server over HTTP.
    #[command(
        long_about = "Run a fleet of devices against a running server over HTTP.\n\n\
        The world comes from the server's demo seed. Either seed it yourself and pass the JSON:\n\
        \n    doorstep-server demo-seed --database sqlite://data/d.db --couriers 12 > seed.json\
        \n    doorstep-server serve --database sqlite://data/d.db &\
        \n    doorstep-sim run --server http://127.0.0.1:8080 --seed-file seed.json --couriers 12\n\n\
        or let the simulator seed the server's database file directly with --database (the \
        server must serve that same file). Enrollment codes are one-time: a second run needs a \
        fresh seed, or the same --data-dir (devices already enrolled are reused).\n\n\
        Simulated time runs --speedup times faster than the wall clock (480 turns an 8-hour \
        day into one minute); device clocks stay real so the server sees no clock skew."
    )]
    Run(RunArgs),
    /// Run a deterministic in-process scenario: the same seed gives the same report.
    #[command(long_about = "Run a deterministic in-process scenario.\n\n\
        The server's router and service run in process on an in-memory store with a manual \
        clock; devices reach it through the fault injector (loss before and after commit, \
        duplicates, outages), apps are killed (also right after the server committed a request) \
        and restarted from their outbox files, and old pushes are redelivered late. One seeded \
        scheduler picks every step, so nothing races. On a violated property the seed and the \
        command that reproduces it are printed.")]
    Chaos(ChaosArgs),
    /// Solve one routing benchmark instance and print the solution as JSON.
    #[command(
        long_about = "Solve one routing benchmark instance and print the solution as JSON.\n\n\
        Reads the TSPTW, Solomon (VRPTW) and TSPLIB formats of the public routing benchmark \
        set and prints one JSON object: instance, cost, routes (node indices, depot excluded), \
        elapsed_ms, plus valid/violations from an independent feasibility checker. The same \
        solver re-plans stops on the device."
    )]
    Solve(SolveArgs),
}

#[derive(Args, Debug)]
pub struct SolveArgs {
    /// Instance file (TSPTW, Solomon .vrp/.txt or TSPLIB .tsp).
    #[arg(long)]
    pub instance: PathBuf,
    /// Wall-clock budget for the search, in milliseconds.
    #[arg(long, default_value_t = 100)]
    pub budget_ms: u64,
    /// Seed for the search; the same seed and budget give reproducible work.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Base URL of the running server; several comma-separated URLs (replicas of one
    /// service) spread the couriers over them, courier i on URL i mod n.
    #[arg(long, env = "DOORSTEP_SERVER", default_value = "http://127.0.0.1:8080")]
    pub server: String,
    /// JSON printed by `doorstep-server demo-seed` (enrollment codes, dispatcher token).
    #[arg(
        long,
        conflicts_with = "database",
        required_unless_present = "database"
    )]
    pub seed_file: Option<PathBuf>,
    /// Seed the world into this database (the one the server serves) instead of --seed-file.
    #[arg(long)]
    pub database: Option<String>,
    /// Number of couriers (one device each).
    #[arg(long, default_value_t = 12)]
    pub couriers: usize,
    /// Stops per route, when seeding with --database.
    #[arg(long, default_value_t = 20)]
    pub stops: usize,
    /// Seed for the world (customers), the networks and the faults.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Simulated time per wall-clock time.
    #[arg(long, default_value_t = 480.0)]
    pub speedup: f64,
    /// Length of the simulated shift, in hours.
    #[arg(long, default_value_t = 8.0)]
    pub shift_hours: f64,
    /// Share of couriers with a scripted outage.
    #[arg(long, default_value_t = 0.3)]
    pub offline_share: f64,
    /// Minimum length of a scripted outage, in simulated hours.
    #[arg(long, default_value_t = 2.0)]
    pub offline_hours: f64,
    /// Share of couriers on a perfect link (the rest are flaky).
    #[arg(long, default_value_t = 0.2)]
    pub perfect_share: f64,
    /// Request loss on flaky links; half of it happens after the server committed.
    #[arg(long, default_value_t = 0.1)]
    pub loss: f64,
    /// Share of requests a flaky link delivers twice.
    #[arg(long, default_value_t = 0.05)]
    pub duplicate: f64,
    /// Share of couriers whose app is killed once during the day and restarted from its outbox.
    #[arg(long, default_value_t = 0.05)]
    pub kill_share: f64,
    /// Write the JSON report here.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Where the devices' outbox files live.
    #[arg(long, default_value = "data/sim")]
    pub data_dir: PathBuf,
    /// Dispatcher token for the checks (default: the one in --seed-file).
    #[arg(long, env = "DOORSTEP_DISPATCHER_TOKEN")]
    pub dispatcher_token: Option<String>,
    /// Wall-clock seconds the outboxes may take to drain once the network is back.
    #[arg(long, default_value_t = 120)]
    pub drain_timeout_secs: u64,
    /// Progress on stderr: a bar over the shift on a terminal; otherwise a line every this
    /// many wall-clock seconds. 0: no progress output.
    #[arg(long, default_value_t = 5)]
    pub progress_secs: u64,
}

#[derive(Args, Debug)]
pub struct ChaosArgs {
    /// The seed; the same seed replays the same run.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Run this many consecutive seeds, starting at --seed.
    #[arg(long, default_value_t = 1)]
    pub seeds: u64,
    #[arg(long, default_value_t = 4)]
    pub couriers: usize,
    /// Stops per route.
    #[arg(long, default_value_t = 8)]
    pub stops: usize,
    /// Length of the simulated shift, in hours.
    #[arg(long, default_value_t = 8.0)]
    pub shift_hours: f64,
    /// Write the JSON report (of the last seed) here.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Failing runs are saved here (one JSON line each) and replayed first on every later run.
    #[arg(long, default_value = "chaos-failures.jsonl")]
    pub failures: PathBuf,
    /// Runs spent shrinking a failure to fewer couriers, stops and hours (0: don't shrink).
    #[arg(long, default_value_t = 40)]
    pub shrink_runs: usize,
}
