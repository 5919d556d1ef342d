//! The run report: JSON for machines (`--report FILE`), a short summary for people.

use crate::check::{Verdict, quantile};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Lag {
    pub p50: u64,
    pub p99: u64,
    pub max: u64,
}

/// What the fault injectors and the scheduler did.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Faults {
    pub requests: u64,
    pub refused_offline: u64,
    pub lost_requests: u64,
    /// Answers lost after the server committed (the device timed out).
    pub lost_responses: u64,
    pub duplicated_requests: u64,
    /// Old requests delivered to the server again, late (chaos mode).
    pub late_redeliveries: u64,
    pub app_kills: u64,
}

/// Wall-clock facts: they differ between two runs of the same seed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Timing {
    pub wall_ms: u64,
    pub simulated_ms: u64,
    pub speedup: f64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CourierLine {
    pub courier: usize,
    pub name: String,
    pub network: String,
    pub events: u64,
    pub queued_at_end: u64,
    pub app_kills: u64,
    pub refused_commands: u64,
    /// The first command the device refused, and why.
    pub first_refusal: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub mode: String,
    pub seed: u64,
    pub couriers: usize,
    /// True when lost = duplicated_effects = unexpected = 0 and every outbox drained.
    pub valid: bool,
    pub events_created: u64,
    pub events_acknowledged: u64,
    pub lost: u64,
    pub lost_acknowledged: u64,
    pub duplicated_effects: u64,
    pub unexpected: u64,
    pub rejected: u64,
    pub conflicts: u64,
    /// Commands the devices' state machines refused (should be 0 for a sane plan).
    pub refused_commands: u64,
    /// From creation on the device to receipt by the server, in simulated milliseconds.
    pub sync_lag_ms: Lag,
    /// Every push body the devices sent, retries included.
    pub bytes_on_wire: u64,
    /// All events zstd-compressed once, in push-sized batches.
    pub compressed_payload_bytes: u64,
    /// All events as JSON, once.
    pub raw_payload_bytes: u64,
    pub sync_requests: u64,
    pub faults: Faults,
    pub first_attempts: u64,
    pub first_attempt_success_rate: Option<f64>,
    pub outboxes_drained: bool,
    pub anomalies: Vec<String>,
    pub timing: Timing,
    pub per_courier: Vec<CourierLine>,
}

impl Report {
    /// Fills the checker's findings in; `time_scale` turns measured lag into simulated time.
    pub fn with_verdict(mut self, v: &Verdict, time_scale: f64) -> Self {
        let scaled = |ms: u64| (ms as f64 * time_scale).round() as u64;
        self.events_created = v.events_created;
        self.events_acknowledged = v.events_acknowledged;
        self.lost = v.lost;
        self.lost_acknowledged = v.lost_acknowledged;
        self.duplicated_effects = v.duplicated_effects;
        self.unexpected = v.unexpected;
        self.rejected = v.rejected;
        self.conflicts = v.conflicts;
        self.sync_lag_ms = Lag {
            p50: scaled(quantile(&v.lag_ms, 0.5)),
            p99: scaled(quantile(&v.lag_ms, 0.99)),
            max: scaled(v.lag_ms.last().copied().unwrap_or(0)),
        };
        self.first_attempts = v.first_attempts;
        self.first_attempt_success_rate = (v.first_attempts > 0)
            .then(|| v.first_attempts_delivered as f64 / v.first_attempts as f64);
        self.anomalies = v.anomalies.clone();
        self.valid = v.valid() && self.outboxes_drained;
        self
    }

    /// The report without its wall-clock fields: equal for two runs of one seed.
    pub fn without_timing(&self) -> Self {
        Self {
            timing: Timing::default(),
            ..self.clone()
        }
    }

    /// A few lines for a terminal.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let ok = |b: bool| if b { "ok" } else { "FAILED" };
        let pct = |x: Option<f64>| x.map_or("n/a".into(), |r| format!("{:.1} %", r * 100.0));
        let hours = |ms: u64| ms as f64 / 3_600_000.0;
        let _ = writeln!(
            s,
            "doorstep-sim {} — seed {}, {} couriers, {:.1} simulated hours in {:.1} s",
            self.mode,
            self.seed,
            self.couriers,
            hours(self.timing.simulated_ms),
            self.timing.wall_ms as f64 / 1000.0
        );
        let _ = writeln!(
            s,
            "  events: {} created, {} acknowledged, {} rejected, {} conflicts, {} commands refused",
            self.events_created,
            self.events_acknowledged,
            self.rejected,
            self.conflicts,
            self.refused_commands
        );
        let _ = writeln!(
            s,
            "  lost {} · duplicated effects {} · unexpected {} · outboxes drained: {}",
            self.lost,
            self.duplicated_effects,
            self.unexpected,
            if self.outboxes_drained { "yes" } else { "NO" }
        );
        let f = &self.faults;
        let _ = writeln!(
            s,
            "  faults: {} requests, {} offline, {} lost, {} answers lost after commit, {} duplicated, {} late redeliveries, {} app kills",
            f.requests,
            f.refused_offline,
            f.lost_requests,
            f.lost_responses,
            f.duplicated_requests,
            f.late_redeliveries,
            f.app_kills
        );
        let _ = writeln!(
            s,
            "  sync lag (simulated): p50 {:.1} min, p99 {:.1} min · bytes on wire {} vs compressed payload {} vs raw {}",
            self.sync_lag_ms.p50 as f64 / 60_000.0,
            self.sync_lag_ms.p99 as f64 / 60_000.0,
            self.bytes_on_wire,
            self.compressed_payload_bytes,
            self.raw_payload_bytes
        );
        let _ = writeln!(
            s,
            "  first-attempt success: {} of {} first attempts",
            pct(self.first_attempt_success_rate),
            self.first_attempts
        );
        for a in &self.anomalies {
            let _ = writeln!(s, "  ! {a}");
        }
        let _ = write!(s, "  verdict: {}", ok(self.valid));
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_verdict_fills_the_report_and_lag_is_scaled() {
        let v = Verdict {
            events_created: 3,
            events_acknowledged: 3,
            lag_ms: vec![10, 20, 30],
            first_attempts: 4,
            first_attempts_delivered: 3,
            ..Verdict::default()
        };
        let r = Report {
            outboxes_drained: true,
            ..Report::default()
        }
        .with_verdict(&v, 100.0);
        assert!(r.valid);
        assert_eq!(r.sync_lag_ms.p50, 2_000);
        assert_eq!(r.sync_lag_ms.max, 3_000);
        assert_eq!(r.first_attempt_success_rate, Some(0.75));
        let json = serde_json::to_value(&r).unwrap();
        for key in [
            "events_created",
            "events_acknowledged",
            "lost",
            "duplicated_effects",
            "unexpected",
        ] {
            assert!(json.get(key).is_some(), "{key}");
        }
        assert!(r.summary().contains("verdict: ok"));
    }

    #[test]
    fn an_undrained_outbox_makes_the_run_invalid() {
        let r = Report::default().with_verdict(&Verdict::default(), 1.0);
        assert!(!r.valid);
    }
}
