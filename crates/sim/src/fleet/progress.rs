//! Progress of a fleet run on stderr: a bar over the simulated shift when stderr is a terminal,
//! a plain line every few seconds otherwise (logs and CI keep a readable record).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

/// Live counters the courier tasks update.
#[derive(Debug)]
pub(crate) struct Progress {
    pub recorded: AtomicU64,
    pub finished: AtomicUsize,
    pub queued: Vec<AtomicU64>,
}

impl Progress {
    pub fn new(couriers: usize) -> Self {
        Self {
            recorded: AtomicU64::new(0),
            finished: AtomicUsize::new(0),
            queued: (0..couriers).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn snapshot(&self, sim_ms: u64) -> Snapshot {
        Snapshot {
            sim_ms,
            recorded: self.recorded.load(Ordering::Relaxed),
            queued: self.queued.iter().map(|q| q.load(Ordering::Relaxed)).sum(),
            finished: self.finished.load(Ordering::Relaxed),
            couriers: self.queued.len(),
        }
    }
}

/// One reading of the counters at a simulated time (from the start of the shift, 08:00).
#[derive(Clone, Copy, Debug, PartialEq)]
struct Snapshot {
    sim_ms: u64,
    recorded: u64,
    queued: u64,
    finished: usize,
    couriers: usize,
}

impl Snapshot {
    fn clock(&self) -> String {
        let minutes = 8 * 60 + self.sim_ms / 60_000;
        format!("{:02}:{:02}", minutes / 60, minutes % 60)
    }

    fn counters(&self) -> String {
        format!(
            "{} events recorded · {} queued on devices · {}/{} couriers done",
            self.recorded, self.queued, self.finished, self.couriers
        )
    }

    fn line(&self) -> String {
        format!("[sim {}] {}", self.clock(), self.counters())
    }
}

/// Simulated minutes into the shift, capped at its end (the bar's position).
fn position(sim_ms: u64, shift_ms: u64) -> u64 {
    sim_ms.min(shift_ms) / 60_000
}

/// Where and how often to report.
pub(crate) struct Reporter {
    pub every: Duration,
    pub shift_ms: u64,
    pub speedup: f64,
    pub origin: tokio::time::Instant,
}

impl Reporter {
    fn sim_ms(&self) -> u64 {
        (self.origin.elapsed().as_secs_f64() * 1_000.0 * self.speedup) as u64
    }

    /// Reports until the returned task is aborted.
    pub fn spawn(self, progress: Arc<Progress>) -> tokio::task::JoinHandle<()> {
        let bar = ProgressBar::with_draw_target(
            Some(self.shift_ms / 60_000),
            ProgressDrawTarget::stderr(),
        );
        tokio::spawn(async move {
            if bar.is_hidden() {
                self.lines(&progress).await;
            } else {
                self.bar(&progress, bar).await;
            }
        })
    }

    async fn lines(&self, progress: &Progress) {
        let mut tick = tokio::time::interval(self.every);
        tick.tick().await;
        loop {
            tick.tick().await;
            eprintln!("{}", progress.snapshot(self.sim_ms()).line());
        }
    }

    async fn bar(&self, progress: &Progress, bar: ProgressBar) {
        let style = ProgressStyle::with_template(
            "{spinner} sim {prefix} [{bar:32}] {percent:>3}% of the shift · {msg}",
        )
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        loop {
            tick.tick().await;
            let sim_ms = self.sim_ms();
            let snap = progress.snapshot(sim_ms);
            bar.set_position(position(sim_ms, self.shift_ms));
            bar.set_prefix(snap.clock());
            let phase = if sim_ms >= self.shift_ms {
                "shift over, draining outboxes · "
            } else {
                ""
            };
            bar.set_message(format!("{phase}{}", snap.counters()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_progress_line_shows_the_simulated_time_of_day() {
        let p = Progress::new(2);
        p.recorded.store(42, Ordering::Relaxed);
        p.finished.store(1, Ordering::Relaxed);
        p.queued[0].store(3, Ordering::Relaxed);
        p.queued[1].store(4, Ordering::Relaxed);
        assert_eq!(
            p.snapshot(150 * 60_000).line(),
            "[sim 10:30] 42 events recorded · 7 queued on devices · 1/2 couriers done"
        );
    }

    #[test]
    fn the_bar_stops_at_the_end_of_the_shift() {
        let shift = 8 * 3_600_000;
        assert_eq!(position(0, shift), 0);
        assert_eq!(position(90 * 60_000 + 59_999, shift), 90);
        assert_eq!(position(shift + 5 * 60_000, shift), 480);
    }
}
