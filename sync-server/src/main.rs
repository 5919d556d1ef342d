//! `doorstep-server`: the sync server and its admin commands.

use anyhow::Context;
use clap::{Parser, Subcommand};
use doorstep_server::clock::{Clock, SystemClock};
use doorstep_server::seed::{SeedOptions, seed_demo};
use doorstep_server::settings::{self, Settings};
use doorstep_server::store::postgres::PgStore;
use doorstep_server::store::sqlite::SqliteStore;
use doorstep_server::store::{DatabaseUrl, Store, StoreError};
use doorstep_server::{auth, startup};
use doorstep_shared::CourierId;
use doorstep_shared::event::GeoPoint;
use std::sync::Arc;

const DEFAULT_DB: &str = "sqlite://./data/doorstep.db";

#[derive(Parser)]
#[command(
    name = "doorstep-server",
    version,
    about = "Doorstep sync server: idempotent event sync for offline-first delivery devices, and the dispatcher API."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone)]
struct DbArg {
    /// Database URL: sqlite://PATH (the embedded default) or postgres://USER@HOST:PORT/DB
    /// (several hosts allowed: postgres://u@h1:5433,h2:5433/db?target_session_attrs=read-write).
    /// The database is created (SQLite) and migrated on start.
    #[arg(long = "database", env = "DOORSTEP_DATABASE_URL", default_value = DEFAULT_DB)]
    url: String,
}

/// The serve command's settings (see [`Settings`]).
#[derive(clap::Args, Clone)]
struct ServeSettings {
    /// Directory with the built dashboard (index.html, assets/), served at `/`.
    #[arg(long, env = "DOORSTEP_UI_DIR", default_value = settings::DEFAULT_UI_DIR)]
    ui_dir: std::path::PathBuf,
    /// Blob directory for proof photos; replicas share one (e.g. a network file system).
    #[arg(long, env = "DOORSTEP_BLOB_DIR", default_value = settings::DEFAULT_BLOB_DIR)]
    blob_dir: std::path::PathBuf,
    /// Seconds an upload session lives without progress.
    #[arg(long, env = "DOORSTEP_UPLOAD_TTL_SECS", default_value_t = settings::DEFAULT_UPLOAD_TTL_MS / 1000,
          value_parser = clap::value_parser!(u64).range(1..=30 * 86_400))]
    upload_ttl_secs: u64,
    /// Milliseconds without contact after which a device shows as offline.
    #[arg(long, env = "DOORSTEP_OFFLINE_AFTER_MS", default_value_t = doorstep_shared::dashboard::OFFLINE_AFTER_MS,
          value_parser = clap::value_parser!(u64).range(1_000..=86_400_000))]
    offline_after_ms: u64,
    /// Seconds a dispatcher command's idempotency key stays claimed when its server died
    /// before answering; a retry with the key after that runs the command.
    #[arg(long, env = "DOORSTEP_IDEMPOTENCY_LEASE_SECS", default_value_t = settings::DEFAULT_IDEMPOTENCY_LEASE_MS / 1000,
          value_parser = clap::value_parser!(u64).range(1..=3_600))]
    idempotency_lease_secs: u64,
}

impl From<ServeSettings> for Settings {
    fn from(s: ServeSettings) -> Self {
        // The ranges above keep these products far from overflow.
        Self {
            ui_dir: s.ui_dir,
            blob_dir: s.blob_dir,
            upload_ttl_ms: s.upload_ttl_secs * 1000,
            offline_after_ms: s.offline_after_ms,
            idempotency_lease_ms: s.idempotency_lease_secs * 1000,
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server (device API, dispatcher API, dashboard, /metrics).
    Serve {
        /// Address to listen on; port 0 picks a free port (printed on start).
        #[arg(long, env = "DOORSTEP_LISTEN", default_value = "127.0.0.1:8080")]
        listen: String,
        #[command(flatten)]
        db: DbArg,
        #[command(flatten)]
        settings: ServeSettings,
    },
    /// Administrative commands that work on the database directly.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Re-verify a stop's proof-of-delivery evidence (signatures, registered key, hash chain,
    /// stored blobs) for a dispute. Prints JSON; exits 1 when the evidence does not verify.
    VerifyProof {
        /// The stop id.
        stop: String,
        #[command(flatten)]
        db: DbArg,
        /// Blob directory (as for `serve`).
        #[arg(long, env = "DOORSTEP_BLOB_DIR", default_value = "./data/blobs")]
        blob_dir: std::path::PathBuf,
    },
    /// Create a demo world: couriers with routes and enrollment codes, and a dispatcher token.
    /// Prints JSON with the secrets (shown once).
    DemoSeed {
        #[command(flatten)]
        db: DbArg,
        /// Number of couriers (one route each).
        #[arg(long, default_value_t = 8)]
        couriers: usize,
        /// Stops per route.
        #[arg(long, default_value_t = 25)]
        stops: usize,
        /// Seed for the generated world.
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Service day (YYYY-MM-DD); defaults to today (UTC).
        #[arg(long)]
        day: Option<String>,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create a courier (if new) and a one-time enrollment code for one of their devices.
    EnrollCode {
        #[command(flatten)]
        db: DbArg,
        /// The courier's display name, used when the courier is created; an existing courier
        /// keeps its name and region.
        #[arg(long)]
        courier_name: String,
        /// An existing courier id; a new courier is created when omitted or unknown.
        #[arg(long)]
        courier_id: Option<CourierId>,
        /// Hours until the code expires.
        #[arg(long, default_value_t = 168)]
        valid_hours: u64,
    },
    /// Create a dispatcher bearer token.
    DispatcherToken {
        #[command(flatten)]
        db: DbArg,
        /// Who the token is for (shown in the audit trail).
        #[arg(long)]
        name: String,
    },
    /// Create an integration bearer token for a shipper's systems (`POST /v1/orders`).
    ///
    /// The shipper is created with its first token; every token reaches only its shipper's
    /// orders, and no dispatcher or device endpoint.
    IntegrationToken {
        #[command(flatten)]
        db: DbArg,
        /// The shipper's name; every token made with the same name belongs to one shipper.
        #[arg(long)]
        name: String,
    },
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tower_http=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn today(now_ms: u64) -> (String, u64) {
    // Civil date from days since the Unix epoch (Howard Hinnant's algorithm).
    let days = (now_ms / 86_400_000) as i64;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        format!("{y:04}-{m:02}-{d:02}"),
        (days as u64) * 86_400_000 + 8 * 3_600_000,
    )
}

fn main() -> anyhow::Result<()> {
    init_tracing();
    let cli = Cli::parse();
    let url = cli.command.database_url().to_owned();
    // The backend is chosen here, once; everything below is generic over it. Stores are opened
    // and used for admin commands outside any async runtime.
    let opened =
        |e: StoreError| anyhow::anyhow!("cannot open database {}: {e}", DatabaseUrl::redact(&url));
    match DatabaseUrl::parse(&url).map_err(opened)? {
        DatabaseUrl::SqliteFile(path) => {
            run(cli.command, SqliteStore::open(&path).map_err(opened)?)
        }
        DatabaseUrl::SqliteMemory => {
            run(cli.command, SqliteStore::open_in_memory().map_err(opened)?)
        }
        DatabaseUrl::Postgres(pg) => run(cli.command, PgStore::connect(&pg).map_err(opened)?),
    }
}

impl Command {
    fn database_url(&self) -> &str {
        match self {
            Command::Serve { db, .. }
            | Command::VerifyProof { db, .. }
            | Command::DemoSeed { db, .. }
            | Command::Admin {
                command:
                    AdminCommand::EnrollCode { db, .. }
                    | AdminCommand::DispatcherToken { db, .. }
                    | AdminCommand::IntegrationToken { db, .. },
            } => &db.url,
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn run<S: Store>(command: Command, store: S) -> anyhow::Result<()> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    match command {
        Command::Serve {
            listen,
            db,
            settings,
        } => {
            let app = startup::app(store, clock, settings.into());
            runtime()?.block_on(async move {
                let listener = tokio::net::TcpListener::bind(&listen)
                    .await
                    .with_context(|| format!("cannot listen on {listen}"))?;
                let addr = listener.local_addr()?;
                println!("doorstep-server listening on http://{addr}");
                tracing::info!(%addr, database = %DatabaseUrl::redact(&db.url), "serving");
                let shutdown = async {
                    let _ = tokio::signal::ctrl_c().await;
                };
                startup::serve(listener, app, shutdown)
                    .await
                    .context("server failed")
            })?;
        }
        Command::Admin {
            command:
                AdminCommand::EnrollCode {
                    db: _,
                    courier_name,
                    courier_id,
                    valid_hours,
                },
        } => {
            let courier_id = courier_id.unwrap_or(CourierId(uuid::Uuid::now_v7()));
            store.create_courier(courier_id, &courier_name, "")?;
            let code = auth::new_enrollment_code(&mut rand::rng());
            let hours_ms = valid_hours
                .checked_mul(3_600_000)
                .context("--valid-hours is too large")?;
            store.create_enrollment_code(
                courier_id,
                &code.hash,
                clock.now_ms().saturating_add(hours_ms),
            )?;
            println!(
                "{}",
                serde_json::json!({ "courier_id": courier_id, "code": code.plain })
            );
        }
        Command::Admin {
            command: AdminCommand::DispatcherToken { db: _, name },
        } => {
            let token = auth::new_dispatcher_token(&mut rand::rng());
            store.create_dispatcher(&name, &token.hash)?;
            println!(
                "{}",
                serde_json::json!({ "name": name, "token": token.plain })
            );
        }
        Command::Admin {
            command: AdminCommand::IntegrationToken { db: _, name },
        } => {
            let name = name.trim().to_owned();
            anyhow::ensure!(!name.is_empty(), "--name must not be empty");
            let token = auth::new_integration_token(&mut rand::rng());
            let shipper = store.create_integration(
                doorstep_shared::ShipperId(uuid::Uuid::now_v7()),
                &name,
                &token.hash,
            )?;
            println!(
                "{}",
                serde_json::json!({ "shipper": name, "shipper_id": shipper, "token": token.plain })
            );
        }
        Command::VerifyProof {
            stop,
            db: _,
            blob_dir,
        } => {
            let stop: doorstep_shared::StopId = stop
                .parse()
                .map_err(|_| anyhow::anyhow!("{stop:?} is not a stop id"))?;
            let blobs = doorstep_server::blobs::FsBlobStore::new(blob_dir);
            let report = doorstep_server::http::blobs::proof_report(&store, &blobs, stop)
                .map_err(|e| anyhow::anyhow!("cannot read the evidence: {e}"))?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            if !report.verified {
                std::process::exit(1);
            }
        }
        Command::DemoSeed {
            db: _,
            couriers,
            stops,
            seed,
            day,
        } => {
            let app = startup::app(store, clock.clone(), Settings::default());
            let (today_str, today_start) = today(clock.now_ms());
            let opts = SeedOptions {
                couriers,
                stops_per_route: stops,
                seed,
                day: day.unwrap_or(today_str),
                day_start_ms: today_start,
                depot: GeoPoint {
                    lat: 52.5200,
                    lon: 13.4050,
                },
            };
            let seeded = runtime()?
                .block_on(seed_demo(&app, &opts))
                .map_err(|e| anyhow::anyhow!("seeding failed: {e}"))?;
            println!("{}", serde_json::to_string_pretty(&seeded)?);
        }
    }
    Ok(())
}
