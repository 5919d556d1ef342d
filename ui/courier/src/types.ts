// Shapes of the courier app's IPC answers. The contract types (stops, events, reasons) are
// generated from Rust (ui/src/generated, ts-rs); the app-level views below mirror
// courier-core's read models (courier-app/core/src/outbox/views.rs, sync/status.rs) and the
// shell's DTOs (courier-app/src/*.rs).
import type { AttemptOutcome } from "../../src/generated/AttemptOutcome";
import type { DeliveryMethod } from "../../src/generated/DeliveryMethod";
import type { FailureReason } from "../../src/generated/FailureReason";
import type { GeoPoint } from "../../src/generated/GeoPoint";
import type { ParcelBarcode } from "../../src/generated/ParcelBarcode";
import type { PushStatus } from "../../src/generated/PushStatus";
import type { ScanPhase } from "../../src/generated/ScanPhase";
import type { StopId } from "../../src/generated/StopId";
import type { StopStatus } from "../../src/generated/StopStatus";
import type { StopView } from "../../src/generated/StopView";
import type { TimeWindow } from "../../src/generated/TimeWindow";

export type { AttemptOutcome, DeliveryMethod, FailureReason, ScanPhase, StopId, StopStatus, TimeWindow };

export interface StopSummary {
  stop_id: StopId;
  sequence: number;
  address: string;
  customer_name: string;
  location: GeoPoint;
  window: TimeWindow;
  status: StopStatus;
  next_attempt: number;
  parcels: ParcelBarcode[];
  moved_away: boolean;
  unsynced_events: number;
}

export interface RouteView {
  route_id: string;
  day: string;
  version: number;
  stops: StopSummary[];
}

export interface LocalEvent {
  device_seq: number;
  event_id: string;
  kind: string;
  intent_key: string;
  created_at_ms: number;
  server_status: string | null;
  code: string | null;
}

export interface StopDetail {
  summary: StopSummary;
  instructions: string | null;
  view: StopView;
  events: LocalEvent[];
}

export interface SettledProblem {
  device_seq: number;
  event_id: string;
  kind: string;
  stop_id: StopId | null;
  status: PushStatus;
  code: string | null;
  detail: string | null;
}

export type NetworkMode = "normal" | "offline" | "flaky" | "outage";

export interface StatusView {
  connectivity: "unknown" | "online" | "offline";
  queued: number;
  oldest_unsynced_age_ms: number | null;
  total_events: number;
  last_success_ms: number | null;
  last_attempt_ms: number | null;
  last_error: string | null;
  rejected: SettledProblem[];
  breaker: { state: "closed"; consecutive_failures: number } | { state: "open"; until_ms: number } | { state: "half_open"; probe_in_flight: boolean };
  next_attempt_at_ms: number | null;
  needs_reenroll: boolean;
  blocked: string | null;
  photos_pending: number;
  network: NetworkMode;
  now_ms: number;
}

export interface Receipt {
  outcome: "recorded" | "duplicate";
  device_seq: number;
  event_id: string;
  intent_key: string;
}

export interface Screen {
  name: ScreenName;
  stop_id: StopId | null;
}

export type ScreenName = "route" | "stop" | "scan" | "attempt" | "notes" | "settings";

export interface AppSnapshot {
  enrolled: boolean;
  device_id: string | null;
  server_url: string | null;
  screen: Screen;
  network: NetworkMode;
}

export interface FaultStats {
  requests: number;
  refused_offline: number;
  lost_requests: number;
  lost_responses: number;
  duplicated: number;
  bytes_up: number;
  bytes_down: number;
}

export interface FieldTest {
  mode: NetworkMode;
  outage: { start_ms: number; end_ms: number } | null;
  profile: {
    offline: boolean;
    request_loss: number;
    response_loss: number;
    duplicate: number;
    latency_min_ms: number;
    latency_max_ms: number;
    bandwidth_bps: number | null;
  };
  stats: FaultStats | null;
}

export type ErrorCode =
  | "not_enrolled"
  | "invalid_input"
  | "not_found"
  | "refused"
  | "unreachable"
  | "enrollment_refused"
  | "storage";

export interface IpcError {
  code: ErrorCode;
  message: string;
}
