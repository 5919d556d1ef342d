//! Liveness, readiness and metrics.

use super::AppState;
use crate::store::Store;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

pub async fn healthz() -> &'static str {
    "ok"
}

pub async fn readyz<S: Store>(axum::extract::State(app): AppState<S>) -> impl IntoResponse {
    let store = app.store.clone();
    match tokio::task::spawn_blocking(move || store.ping()).await {
        Ok(Ok(())) => (StatusCode::OK, "ready"),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "database unreachable"),
    }
}

pub async fn metrics<S: Store>(axum::extract::State(app): AppState<S>) -> impl IntoResponse {
    let store = app.store.clone();
    let stats = tokio::task::spawn_blocking(move || store.first_attempt_stats())
        .await
        .ok()
        .and_then(Result::ok);
    let stats = stats.unwrap_or_default();
    let body = app.metrics.render(&[
        (
            "doorstep_first_attempt_success_ratio",
            "Share of first delivery attempts that delivered, among those that really happened \
             (a \"customer absent\" without presence evidence is left out).",
            stats.success_rate().unwrap_or(0.0),
        ),
        (
            "doorstep_first_attempts_recorded",
            "First delivery attempts applied (all time, from the log).",
            stats.first_attempts as f64,
        ),
        (
            "doorstep_first_attempts_no_real",
            "First attempts recorded as \"customer absent\" with no presence evidence at the door.",
            stats.no_real as f64,
        ),
    ]);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}
