//! The `solve` command behind `doorstep-sim solve` and `doorstep-solve`: read one benchmark
//! file, solve it within a wall-clock budget, check the answer, and report it as JSON.

use std::path::Path;
use std::time::Duration;

use serde::Serialize;
use thiserror::Error;

use crate::budget::{Budget, WallClock};
use crate::checker;
use crate::formats::{self, FormatError};
use crate::{Clock, solve};

#[derive(Debug, Error)]
pub enum CliError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Format { path: String, source: FormatError },
}

/// The JSON printed by the CLI. `cost` is in the published unit (Solomon: one decimal).
#[derive(Debug, Clone, Serialize)]
pub struct SolveOutput {
    pub instance: String,
    pub cost: serde_json::Number,
    /// Node indices as in the file, 0-based, depot (node 0) excluded.
    pub routes: Vec<Vec<usize>>,
    pub elapsed_ms: f64,
    /// Verdict of the independent checker.
    pub valid: bool,
    pub violations: Vec<String>,
    pub iterations: u64,
}

/// Reads, solves and checks one instance. `elapsed_ms` covers parsing and solving.
pub fn run_solve(instance_path: &Path, budget_ms: u64, seed: u64) -> Result<SolveOutput, CliError> {
    let clock = WallClock::start();
    let path = instance_path.display().to_string();
    let text = std::fs::read_to_string(instance_path).map_err(|source| CliError::Read {
        path: path.clone(),
        source,
    })?;
    let name = instance_path
        .file_stem()
        .map_or_else(|| path.clone(), |s| s.to_string_lossy().into_owned());
    let inst = formats::parse_any(&name, &text).map_err(|source| CliError::Format {
        path: path.clone(),
        source,
    })?;
    let budget = Budget::time(Duration::from_millis(budget_ms), &clock);
    let sol = solve(&inst, &budget, seed);
    let elapsed_ms = clock.elapsed().as_secs_f64() * 1e3;
    let report = checker::check(&inst, &sol.routes, Some(sol.cost));
    Ok(SolveOutput {
        instance: name,
        cost: published(sol.cost, inst.cost_scale),
        routes: sol.routes,
        elapsed_ms,
        valid: report.valid(),
        violations: report.violations.iter().map(ToString::to_string).collect(),
        iterations: sol.iterations,
    })
}

/// An integer when the scale is 1, so TSPTW costs print as `671`, not `671.0`.
pub fn published(cost: i64, scale: i64) -> serde_json::Number {
    if scale == 1 {
        serde_json::Number::from(cost)
    } else {
        serde_json::Number::from_f64(cost as f64 / scale as f64)
            .unwrap_or_else(|| serde_json::Number::from(cost))
    }
}
