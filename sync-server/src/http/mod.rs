//! The HTTP surface: routes, authentication extractors and handlers. Handlers parse, authorise
//! and delegate to [`crate::service::App`]; they hold no business logic.

mod assets;
pub mod blobs;
mod body;
mod dashboard;
mod device;
mod device_log;
mod dispatch;
mod live;
mod ops;
mod orders;
pub mod problem;

use crate::service::{ApiError, App};
use crate::store::{DeviceAuth, DispatcherAuth, IntegrationAuth, Store};
use axum::Router;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::routing::{get, post};
use std::sync::Arc;

/// Builds the full router over `app`, serving the dashboard from its settings' `ui_dir`.
pub fn router<S: Store>(app: Arc<App<S>>) -> Router {
    let ui_dir = app.settings.ui_dir.clone();
    router_with_ui(app, ui_dir)
}

/// Builds the full router over `app`, serving the dashboard's built files from `ui_dir`.
pub fn router_with_ui<S: Store>(app: Arc<App<S>>, ui_dir: std::path::PathBuf) -> Router {
    let index_dir = ui_dir.clone();
    Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz::<S>))
        .route("/metrics", get(ops::metrics::<S>))
        .route("/", get(move || assets::index(index_dir.clone())))
        .nest_service(
            "/assets",
            tower_http::services::ServeDir::new(ui_dir.join("assets")),
        )
        .route("/v1/enroll", post(device::enroll::<S>))
        .route("/v1/sync/push", post(device::push::<S>))
        .route("/v1/sync/pull", get(device::pull::<S>))
        .route("/v1/routes/{route_id}", get(device::route::<S>))
        .route("/v1/orders", post(orders::record::<S>))
        .route("/v1/orders/{external_id}", get(orders::get::<S>))
        .route("/v1/dispatch/couriers", get(dispatch::couriers::<S>))
        .route("/v1/dispatch/devices", get(dispatch::devices::<S>))
        .route(
            "/v1/dispatch/devices/{device_id}/events",
            get(device_log::events::<S>),
        )
        .route("/v1/dispatch/routes", get(dispatch::routes::<S>))
        .route("/v1/dispatch/stops/{stop_id}", get(dispatch::stop::<S>))
        .route(
            "/v1/dispatch/stops/{stop_id}/cancel",
            post(dispatch::cancel::<S>),
        )
        .route(
            "/v1/dispatch/stops/{stop_id}/reschedule",
            post(dispatch::reschedule::<S>),
        )
        .route(
            "/v1/dispatch/stops/{stop_id}/reassign",
            post(dispatch::reassign::<S>),
        )
        .route("/v1/dispatch/escalations", get(dispatch::escalations::<S>))
        .route(
            "/v1/dispatch/escalations/{escalation_id}/resolve",
            post(dispatch::resolve::<S>),
        )
        .route("/v1/dispatch/metrics", get(dispatch::metrics_summary::<S>))
        .route("/v1/dispatch/fleet", get(dashboard::fleet::<S>))
        .route("/v1/dispatch/routes/{route_id}", get(dashboard::route::<S>))
        .route(
            "/v1/dispatch/stops/{stop_id}/context",
            get(dashboard::stop_context::<S>),
        )
        .route(
            "/v1/dispatch/stops/{stop_id}/presence",
            get(dashboard::stop_presence::<S>),
        )
        .route(
            "/v1/dispatch/stops/{stop_id}/return-to-depot",
            post(dashboard::return_to_depot::<S>),
        )
        .route(
            "/v1/dispatch/stops/{stop_id}/contact",
            post(dashboard::contact_customer::<S>),
        )
        .route(
            "/v1/dispatch/metrics/dashboard",
            get(dashboard::metrics::<S>),
        )
        .route("/v1/dispatch/live/ticket", post(live::ticket::<S>))
        .route("/v1/dispatch/live", get(live::stream::<S>))
        .fallback(|| async { ApiError::bare(doorstep_shared::ProblemCode::NotFound) })
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(app.clone())
        .merge(blobs::router(
            app.clone(),
            blobs::uploads_for(&app.settings, app.store.clone()),
        ))
        .layer(axum::middleware::map_response(
            problem::problem_for_bare_refusals,
        ))
}

fn bearer(parts: &Parts) -> Option<&str> {
    crate::auth::bearer(
        parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok()),
    )
}

/// An authenticated device (bearer device token).
pub struct Device(pub DeviceAuth);

impl<S: Store> FromRequestParts<Arc<App<S>>> for Device {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, app: &Arc<App<S>>) -> Result<Self, ApiError> {
        let auth = app.device_for_token(bearer(parts)).await;
        if auth.is_err() {
            app.metrics.inc(
                "doorstep_http_problems_total",
                &[("code", "unauthorized")],
                1,
            );
        }
        auth.map(Device)
    }
}

/// An authenticated dispatcher (bearer dispatcher token).
pub struct Dispatcher(pub DispatcherAuth);

impl<S: Store> FromRequestParts<Arc<App<S>>> for Dispatcher {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, app: &Arc<App<S>>) -> Result<Self, ApiError> {
        app.dispatcher_for_token(bearer(parts))
            .await
            .map(Dispatcher)
    }
}

/// An authenticated integration (bearer integration token): one shipper's systems.
pub struct Integration(pub IntegrationAuth);

impl<S: Store> FromRequestParts<Arc<App<S>>> for Integration {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, app: &Arc<App<S>>) -> Result<Self, ApiError> {
        app.integration_for_token(bearer(parts))
            .await
            .map(Integration)
    }
}

type AppState<S> = State<Arc<App<S>>>;
