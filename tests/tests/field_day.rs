//! The field day (issue 3, must show): 50 couriers through a simulated 8-hour day against the
//! real server over real HTTP — 30 % of them offline for at least 2 hours, 10 % request loss
//! (half of it timeouts after the server committed), duplicated requests, a few app kills.
//! Lost = duplicated effects = unexpected = 0, and every outbox drains once the network returns.

use doorstep_sim::fleet::{self, DEMO_DEPOT, FleetOptions, RunConfig};
use doorstep_tests::TestServer;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn field_day_50_couriers_8_hours_nothing_lost_nothing_twice() -> anyhow::Result<()> {
    let seed: u64 = std::env::var("DOORSTEP_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let couriers = 50;
    let server = TestServer::start(couriers, 12, seed).await?;
    let data = server.dir.path().join("devices");
    let cfg = RunConfig {
        server_url: server.url.clone(),
        fleet: FleetOptions {
            couriers,
            seed,
            speedup: 1_200.0,
            offline_share: 0.3,
            offline_hours: 2.0,
            perfect_share: 0.0,
            loss: 0.1,
            duplicate: 0.05,
            kill_share: 0.06,
            ..FleetOptions::default()
        },
        seed: server.seed.clone(),
        data_dir: data,
        depot: DEMO_DEPOT,
        progress_every: None,
        drain_timeout: Duration::from_secs(60),
    };
    let report = fleet::run(cfg).await?;
    eprintln!("{}", report.summary());
    let refusals: Vec<_> = report
        .per_courier
        .iter()
        .filter_map(|c| c.first_refusal.clone())
        .collect();
    let ctx = format!("seed {seed}: {:#?} {refusals:#?}", report.anomalies);
    assert_eq!(report.lost, 0, "{ctx}");
    assert_eq!(report.duplicated_effects, 0, "{ctx}");
    assert_eq!(report.unexpected, 0, "{ctx}");
    assert!(report.outboxes_drained, "{ctx}: {:?}", report.per_courier);
    assert!(report.valid, "{ctx}");
    assert_eq!(report.events_acknowledged, report.events_created, "{ctx}");
    // The day really was hostile and really happened.
    let offline = report
        .per_courier
        .iter()
        .filter(|c| c.network.contains("offline"))
        .count();
    assert_eq!(offline, 15, "{ctx}");
    assert!(report.events_created > 50 * 12 * 4, "{ctx}");
    assert!(report.faults.lost_responses > 0, "{ctx}");
    assert!(report.faults.lost_requests > 0, "{ctx}");
    assert!(report.faults.duplicated_requests > 0, "{ctx}");
    assert!(report.faults.refused_offline > 0, "{ctx}");
    assert!(report.faults.app_kills >= 3, "{ctx}");
    assert!(
        report.sync_lag_ms.p99 >= 3_600_000,
        "{ctx}: offline events wait"
    );
    assert_eq!(report.refused_commands, 0, "{ctx}");
    server.stop().await
}
