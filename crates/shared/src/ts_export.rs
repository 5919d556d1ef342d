//! Writes the TypeScript copies of the wire types the dashboard uses (`--features ts`). The
//! files are committed under `ui/src/generated/`; `tests/ts_bindings.rs` fails when they are
//! stale, and `cargo run -p doorstep-shared --features ts --example export_ts` rewrites them.

use crate::dashboard::{
    ContactCustomerCommand, DashboardMetrics, FleetSnapshot, LiveEvent, LiveTicket, PresenceReport,
    ProofReport, ReturnToDepotCommand, RouteDetail, StopContext,
};
use crate::problem::Problem;
use crate::protocol::{
    CancelStopCommand, CommandReceipt, CourierSummary, EnrollRequest, EnrollResponse, Escalation,
    MetricsSummary, PullResponse, PushRequest, PushResponse, ReassignStopCommand,
    RescheduleStopCommand, ResolveEscalationCommand, RouteSummary, StopDetail,
};
use crate::reason::FailureClass;
use std::path::Path;
use ts_rs::{Config, ExportError, TS};

/// Where the generated files live, relative to the workspace root.
pub const GENERATED_DIR: &str = "ui/src/generated";

/// Writes every exported type, and the types they depend on, into `dir` (one file per type).
/// Integers are `number`: every integer on the wire (Unix ms, counters) is below 2^53.
pub fn export_all(dir: &Path) -> Result<(), ExportError> {
    let cfg = Config::new().with_large_int("number").with_out_dir(dir);
    FleetSnapshot::export_all(&cfg)?;
    RouteDetail::export_all(&cfg)?;
    StopContext::export_all(&cfg)?;
    LiveEvent::export_all(&cfg)?;
    LiveTicket::export_all(&cfg)?;
    ReturnToDepotCommand::export_all(&cfg)?;
    ContactCustomerCommand::export_all(&cfg)?;
    DashboardMetrics::export_all(&cfg)?;
    StopDetail::export_all(&cfg)?;
    ProofReport::export_all(&cfg)?;
    PresenceReport::export_all(&cfg)?;
    Escalation::export_all(&cfg)?;
    CommandReceipt::export_all(&cfg)?;
    CancelStopCommand::export_all(&cfg)?;
    RescheduleStopCommand::export_all(&cfg)?;
    ReassignStopCommand::export_all(&cfg)?;
    ResolveEscalationCommand::export_all(&cfg)?;
    MetricsSummary::export_all(&cfg)?;
    CourierSummary::export_all(&cfg)?;
    RouteSummary::export_all(&cfg)?;
    Problem::export_all(&cfg)?;
    // Not on a dashboard wire type, but in the courier's sync status (courier-core's export).
    FailureClass::export_all(&cfg)?;
    PushRequest::export_all(&cfg)?;
    PushResponse::export_all(&cfg)?;
    PullResponse::export_all(&cfg)?;
    EnrollRequest::export_all(&cfg)?;
    EnrollResponse::export_all(&cfg)?;
    Ok(())
}
