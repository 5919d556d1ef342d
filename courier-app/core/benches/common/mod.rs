//! Shared by the bench binaries: where to write, percentiles, peak RSS.
#![allow(dead_code)]

use std::path::PathBuf;

/// The cargo target directory this bench binary was built into (`target/<profile>/deps/<bin>`).
pub fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.ancestors().nth(3).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("target"))
}

/// Prints `report` to stdout and writes it to `target/bench/<name>.json`.
pub fn publish(name: &str, report: &serde_json::Value) -> Result<(), Box<dyn std::error::Error>> {
    let text = serde_json::to_string_pretty(report)?;
    println!("{text}");
    let dir = target_dir().join("bench");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("{name}.json"));
    std::fs::write(&path, format!("{text}\n"))?;
    eprintln!("written to {}", path.display());
    Ok(())
}

/// The `q`-quantile (0..=1) of `samples` in microseconds, by nearest rank.
pub fn quantile_us(samples: &mut [u64], q: f64) -> u64 {
    if samples.is_empty() {
        return 0;
    }
    samples.sort_unstable();
    let rank = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
    samples[rank - 1]
}

/// `VmHWM` (peak resident set) of this process in kB, from `/proc/self/status` (Linux only).
pub fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Rounds to `d` decimals for readable JSON.
pub fn round(x: f64, d: i32) -> f64 {
    let f = 10f64.powi(d);
    (x * f).round() / f
}
