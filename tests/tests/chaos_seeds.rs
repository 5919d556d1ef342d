//! The deterministic chaos mode over many seeds: every property holds, and one seed replays
//! exactly (the same report, timing aside).

use doorstep_sim::chaos::{self, ChaosOptions};

fn opts(seed: u64) -> ChaosOptions {
    ChaosOptions {
        seed,
        couriers: 3,
        stops: 5,
        shift_ms: 4 * 3_600_000,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_chaos_seeds_lose_nothing_and_apply_nothing_twice() -> anyhow::Result<()> {
    let first: u64 = std::env::var("DOORSTEP_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    for seed in first..first + 20 {
        let o = opts(seed);
        let r = chaos::run(&o).await?;
        let how = format!(
            "seed {seed} failed; reproduce with `{}`\n{}",
            o.reproduce_command(),
            r.summary()
        );
        assert!(r.valid, "{how}");
        assert_eq!(
            (r.lost, r.duplicated_effects, r.unexpected),
            (0, 0, 0),
            "{how}"
        );
        assert!(r.outboxes_drained, "{how}");
        assert!(r.events_created > 0, "{how}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_seed_replays_the_same_report() -> anyhow::Result<()> {
    let o = opts(7);
    let a = chaos::run(&o).await?;
    let b = chaos::run(&o).await?;
    assert_eq!(a.without_timing(), b.without_timing());
    assert!(a.faults.app_kills + a.faults.late_redeliveries > 0);
    Ok(())
}
