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
    let (delivered, total) = stats.unwrap_or((0, 0));
    let ratio = if total == 0 {
        0.0
    } else {
        delivered as f64 / total as f64
    };
    let body = app.metrics.render(&[
        (
            "doorstep_first_attempt_success_ratio",
            "Share of first delivery attempts that delivered.",
            ratio,
        ),
        (
            "doorstep_first_attempts_recorded",
            "First delivery attempts applied (all time, from the log).",
            total as f64,
        ),
    ]);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}
