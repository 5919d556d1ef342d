// Shapes of the courier app's IPC answers. The contract types (stops, events, reasons) and
// courier-core's read models (route, stop detail, sync status, re-plan proposal) are generated
// from Rust by ts-rs (ui/src/generated, ui/src/generated/core); the shell's small DTOs below
// mirror courier-app/src/*.rs.
import type { AttemptOutcome } from "../../src/generated/AttemptOutcome";
import type { DeliveryMethod } from "../../src/generated/DeliveryMethod";
import type { FailureReason } from "../../src/generated/FailureReason";
import type { ScanPhase } from "../../src/generated/ScanPhase";
import type { StopId } from "../../src/generated/StopId";
import type { StopStatus } from "../../src/generated/StopStatus";
import type { TimeWindow } from "../../src/generated/TimeWindow";
import type { LocalEvent } from "../../src/generated/core/LocalEvent";
import type { Proposal } from "../../src/generated/core/Proposal";
import type { RouteView } from "../../src/generated/core/RouteView";
import type { SettledProblem } from "../../src/generated/core/SettledProblem";
import type { StopDetail } from "../../src/generated/core/StopDetail";
import type { StopSummary } from "../../src/generated/core/StopSummary";
import type { SyncStatus } from "../../src/generated/core/SyncStatus";

export type { AttemptOutcome, DeliveryMethod, FailureReason, ScanPhase, StopId, StopStatus, TimeWindow };

export type { LocalEvent, Proposal, RouteView, SettledProblem, StopDetail, StopSummary };

export type NetworkMode = "normal" | "offline" | "flaky" | "outage";

// courier-app/src/sync.rs: courier-core's SyncStatus, flattened, plus the shell's own fields.
export type StatusView = SyncStatus & {
  network: NetworkMode;
  now_ms: number;
};

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
