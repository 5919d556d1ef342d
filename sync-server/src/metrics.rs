//! Prometheus counters and histograms, rendered as text at `GET /metrics`. Small on purpose:
//! a map of labelled counters and two fixed-bucket histograms.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];
const LAG_BUCKETS: [f64; 10] = [
    1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 7200.0, 14400.0, 86400.0,
];

#[derive(Default)]
struct Histogram {
    buckets: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, bounds: &[f64], v: f64) {
        if self.buckets.is_empty() {
            self.buckets = vec![0; bounds.len()];
        }
        for (i, b) in bounds.iter().enumerate() {
            if v <= *b {
                self.buckets[i] += 1;
            }
        }
        self.sum += v;
        self.count += 1;
    }

    fn render(&self, out: &mut String, name: &str, bounds: &[f64]) {
        for (i, b) in bounds.iter().enumerate() {
            let n = self.buckets.get(i).copied().unwrap_or(0);
            let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {n}");
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum {}", self.sum);
        let _ = writeln!(out, "{name}_count {}", self.count);
    }
}

#[derive(Default)]
struct Inner {
    /// (metric name, rendered labels) → value
    counters: BTreeMap<(&'static str, String), u64>,
    push_latency: Histogram,
    sync_lag: Histogram,
}

#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

fn render_labels(labels: &[(&str, &str)]) -> String {
    let parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect();
    parts.join(",")
}

const HELP: &[(&str, &str)] = &[
    (
        "doorstep_events_total",
        "Pushed events by kind and outcome status.",
    ),
    (
        "doorstep_device_events_total",
        "Pushed events by device and outcome status.",
    ),
    (
        "doorstep_late_replays_total",
        "Events applied more than an hour after they happened.",
    ),
    (
        "doorstep_first_attempts_total",
        "First delivery attempts by courier and outcome.",
    ),
    (
        "doorstep_failed_attempts_total",
        "Failed delivery attempts by courier and reason.",
    ),
    (
        "doorstep_escalations_opened_total",
        "Escalations opened for a human.",
    ),
    (
        "doorstep_clock_skew_pushes_total",
        "Pushes from devices whose clock is beyond the skew bound.",
    ),
    (
        "doorstep_http_problems_total",
        "Whole-request errors by problem code.",
    ),
];

impl Metrics {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn inc(&self, name: &'static str, labels: &[(&str, &str)], by: u64) {
        *self
            .lock()
            .counters
            .entry((name, render_labels(labels)))
            .or_insert(0) += by;
    }

    pub fn observe_push_latency(&self, seconds: f64) {
        self.lock().push_latency.observe(&LATENCY_BUCKETS, seconds);
    }

    pub fn observe_sync_lag(&self, seconds: f64) {
        self.lock().sync_lag.observe(&LAG_BUCKETS, seconds);
    }

    /// Many sync-lag observations under one lock.
    pub fn observe_sync_lags(&self, seconds: impl IntoIterator<Item = f64>) {
        let mut inner = self.lock();
        for s in seconds {
            inner.sync_lag.observe(&LAG_BUCKETS, s);
        }
    }

    /// A counter's current value (tests and the dashboard).
    pub fn get(&self, name: &'static str, labels: &[(&str, &str)]) -> u64 {
        self.lock()
            .counters
            .get(&(name, render_labels(labels)))
            .copied()
            .unwrap_or(0)
    }

    /// Prometheus text exposition, with `gauges` computed by the caller at scrape time.
    pub fn render(&self, gauges: &[(&str, &str, f64)]) -> String {
        let inner = self.lock();
        let mut out = String::new();
        let mut last = "";
        for ((name, labels), v) in &inner.counters {
            if *name != last {
                let help = HELP.iter().find(|(n, _)| n == name).map_or("", |(_, h)| h);
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
                last = name;
            }
            let _ = writeln!(out, "{name}{{{labels}}} {v}");
        }
        let _ = writeln!(
            out,
            "# HELP doorstep_push_latency_seconds Time to process one push request."
        );
        let _ = writeln!(out, "# TYPE doorstep_push_latency_seconds histogram");
        inner
            .push_latency
            .render(&mut out, "doorstep_push_latency_seconds", &LATENCY_BUCKETS);
        let _ = writeln!(
            out,
            "# HELP doorstep_sync_lag_seconds Time from an event happening to the server applying it."
        );
        let _ = writeln!(out, "# TYPE doorstep_sync_lag_seconds histogram");
        inner
            .sync_lag
            .render(&mut out, "doorstep_sync_lag_seconds", &LAG_BUCKETS);
        for (name, help, v) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histograms_and_gauges() {
        let m = Metrics::default();
        m.inc(
            "doorstep_events_total",
            &[("kind", "note_added"), ("status", "applied")],
            2,
        );
        m.observe_push_latency(0.004);
        let text = m.render(&[("doorstep_first_attempt_success_ratio", "x", 0.5)]);
        assert!(text.contains("doorstep_events_total{kind=\"note_added\",status=\"applied\"} 2"));
        assert!(text.contains("doorstep_push_latency_seconds_bucket{le=\"0.005\"} 1"));
        assert!(text.contains("doorstep_push_latency_seconds_bucket{le=\"0.0025\"} 0"));
        assert!(text.contains("doorstep_first_attempt_success_ratio 0.5"));
    }

    #[test]
    fn label_values_are_escaped() {
        let m = Metrics::default();
        m.inc("doorstep_http_problems_total", &[("code", "a\"b")], 1);
        assert!(m.render(&[]).contains("code=\"a\\\"b\""));
    }
}
