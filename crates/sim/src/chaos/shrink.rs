//! Failing chaos runs made small and kept.
//!
//! [`shrink`] replays a failing run's seed with fewer couriers, fewer stops and a shorter shift
//! for as long as it still fails, so the command a developer gets is as small as the bug allows.
//! [`FailureLog`] appends every failing run (one JSON line each) to a file that later runs
//! replay first, the way a property-test regression file works.

use super::{ChaosOptions, HOUR};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

/// The smallest failing options found and how many runs it took.
#[derive(Clone, Debug, PartialEq)]
pub struct Shrunk {
    pub options: ChaosOptions,
    pub runs: usize,
}

/// Smaller variants of `o`, biggest steps first; the seed never changes.
fn candidates(o: &ChaosOptions) -> Vec<ChaosOptions> {
    let mut out = Vec::new();
    let mut push = |c: ChaosOptions| {
        if c != *o && !out.contains(&c) {
            out.push(c);
        }
    };
    for couriers in [o.couriers / 2, o.couriers.saturating_sub(1)] {
        push(ChaosOptions {
            couriers: couriers.max(1),
            ..o.clone()
        });
    }
    for stops in [o.stops / 2, o.stops.saturating_sub(1)] {
        push(ChaosOptions {
            stops: stops.max(1),
            ..o.clone()
        });
    }
    for shift_ms in [o.shift_ms / 2, o.shift_ms.saturating_sub(HOUR)] {
        push(ChaosOptions {
            shift_ms: shift_ms.max(HOUR),
            ..o.clone()
        });
    }
    out
}

/// Greedy shrinking: take the first smaller variant that still fails, repeat until none does
/// or `max_runs` runs were spent. `fails` runs one chaos run and says whether it failed.
pub async fn shrink(
    failing: &ChaosOptions,
    mut fails: impl AsyncFnMut(&ChaosOptions) -> bool,
    max_runs: usize,
) -> Shrunk {
    let mut best = failing.clone();
    let mut runs = 0;
    'outer: while runs < max_runs {
        for candidate in candidates(&best) {
            if runs >= max_runs {
                break 'outer;
            }
            runs += 1;
            if fails(&candidate).await {
                best = candidate;
                continue 'outer;
            }
        }
        break;
    }
    Shrunk {
        options: best,
        runs,
    }
}

/// One saved failure: the options to replay.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Saved {
    seed: u64,
    couriers: usize,
    stops: usize,
    shift_ms: u64,
}

/// The file of saved failing runs, one JSON object per line.
#[derive(Clone, Debug)]
pub struct FailureLog {
    path: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum FailureLogError {
    #[error("cannot use the failure log {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} line {line} is not a saved chaos run: {detail}")]
    Line {
        path: PathBuf,
        line: usize,
        detail: String,
    },
}

impl FailureLog {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io(&self, source: std::io::Error) -> FailureLogError {
        FailureLogError::Io {
            path: self.path.clone(),
            source,
        }
    }

    /// The saved runs, oldest first; a missing file is an empty log.
    pub fn load(&self) -> Result<Vec<ChaosOptions>, FailureLogError> {
        let file = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.io(e)),
        };
        let mut out: Vec<ChaosOptions> = Vec::new();
        for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
            let line = line.map_err(|e| self.io(e))?;
            if line.trim().is_empty() {
                continue;
            }
            let s: Saved = serde_json::from_str(&line).map_err(|e| FailureLogError::Line {
                path: self.path.clone(),
                line: i + 1,
                detail: e.to_string(),
            })?;
            let o = ChaosOptions {
                seed: s.seed,
                couriers: s.couriers,
                stops: s.stops,
                shift_ms: s.shift_ms,
            };
            if !out.contains(&o) {
                out.push(o);
            }
        }
        Ok(out)
    }

    /// Appends one failing run (skipped if already saved).
    pub fn save(&self, o: &ChaosOptions) -> Result<(), FailureLogError> {
        if self.load()?.contains(o) {
            return Ok(());
        }
        let line = serde_json::to_string(&Saved {
            seed: o.seed,
            couriers: o.couriers,
            stops: o.stops,
            shift_ms: o.shift_ms,
        })
        .map_err(|e| self.io(e.into()))?;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| self.io(e))?;
        writeln!(f, "{line}").map_err(|e| self.io(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(couriers: usize, stops: usize, hours: u64) -> ChaosOptions {
        ChaosOptions {
            seed: 7,
            couriers,
            stops,
            shift_ms: hours * HOUR,
        }
    }

    #[tokio::test]
    async fn shrinking_finds_the_smallest_run_that_still_fails() {
        // A bug that needs two couriers, three stops and a shift of at least 2 h.
        let mut tried = Vec::new();
        let shrunk = shrink(
            &opts(8, 20, 8),
            async |o: &ChaosOptions| {
                tried.push(o.clone());
                o.couriers >= 2 && o.stops >= 3 && o.shift_ms >= 2 * HOUR
            },
            200,
        )
        .await;
        assert_eq!(shrunk.options, opts(2, 3, 2));
        assert_eq!(shrunk.runs, tried.len());
        assert!(tried.iter().all(|o| o.seed == 7), "the seed never changes");
    }

    #[tokio::test]
    async fn shrinking_stops_at_the_run_budget() {
        let shrunk = shrink(&opts(8, 20, 8), async |_: &ChaosOptions| true, 3).await;
        assert_eq!(shrunk.runs, 3);
        assert_eq!(
            shrunk.options,
            opts(1, 20, 8),
            "8 → 4 → 2 → 1 couriers in three runs"
        );
    }

    #[tokio::test]
    async fn a_run_that_passes_when_smaller_stays_as_it_was() {
        let shrunk = shrink(&opts(1, 1, 1), async |_: &ChaosOptions| false, 50).await;
        assert_eq!(shrunk.options, opts(1, 1, 1));
        assert_eq!(shrunk.runs, 0, "nothing smaller to try");
    }

    #[test]
    fn the_failure_log_keeps_each_run_once_and_reads_back() -> Result<(), Box<dyn std::error::Error>>
    {
        let dir = tempfile::tempdir()?;
        let log = FailureLog::new(dir.path().join("chaos-failures.jsonl"));
        assert!(log.load()?.is_empty(), "a missing file is an empty log");
        log.save(&opts(2, 3, 2))?;
        log.save(&opts(4, 8, 8))?;
        log.save(&opts(2, 3, 2))?;
        assert_eq!(log.load()?, vec![opts(2, 3, 2), opts(4, 8, 8)]);
        Ok(())
    }

    #[test]
    fn a_damaged_failure_log_names_the_line() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("chaos-failures.jsonl");
        std::fs::write(
            &path,
            "{\"seed\":1,\"couriers\":1,\"stops\":1,\"shift_ms\":3600000}\nnot json\n",
        )?;
        let err = FailureLog::new(&path)
            .load()
            .err()
            .ok_or("accepted garbage")?;
        assert!(err.to_string().contains("line 2"), "{err}");
        Ok(())
    }
}
