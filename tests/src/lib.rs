//! # doorstep-tests — end-to-end tests across server, devices and simulator
//!
//! The tests live in `tests/`; this library holds what they share: a real server on a real
//! listener (port 0) and a real SQLite file, started in process through
//! `doorstep_server::startup` (the same path `doorstep-server serve` takes), seeded with a demo
//! world.

use doorstep_server::clock::{Clock, SystemClock};
use doorstep_server::seed::{DemoSeed, SeedOptions, seed_demo};
use doorstep_sim::clock::civil_day;
use doorstep_sim::fleet::DEMO_DEPOT;
use std::sync::Arc;
use tokio::sync::oneshot;

/// A running server; stopped (gracefully) on drop of the shutdown sender or by [`stop`].
///
/// [`stop`]: TestServer::stop
pub struct TestServer {
    pub url: String,
    pub seed: DemoSeed,
    pub dir: tempfile::TempDir,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    /// Starts a server on `127.0.0.1:0` over a fresh SQLite file and seeds `couriers` couriers
    /// with `stops` stops each (world seed `seed`).
    pub async fn start(couriers: usize, stops: usize, seed: u64) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let url = format!("sqlite://{}", dir.path().join("server.db").display());
        let clock = Arc::new(SystemClock);
        let app = doorstep_server::startup::build_app(&url, clock.clone())?;
        let (day, day_start_ms) = civil_day(clock.now_ms());
        let seed = seed_demo(
            &app,
            &SeedOptions {
                couriers,
                stops_per_route: stops,
                seed,
                day,
                day_start_ms,
                depot: DEMO_DEPOT,
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("seeding failed: {e}"))?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(doorstep_server::startup::serve(listener, app, async {
            rx.await.ok();
        }));
        Ok(Self {
            url: format!("http://{addr}"),
            seed,
            dir,
            shutdown: Some(tx),
            task: Some(task),
        })
    }

    /// Stops the server and waits for it.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await??;
        }
        Ok(())
    }
}
