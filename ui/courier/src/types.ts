// Shapes of the courier app's IPC answers, all generated from Rust by ts-rs: the contract types
// (stops, events, reasons) in ui/src/generated, courier-core's read models (route, stop detail,
// sync status, re-plan proposal, fault injector) in ui/src/generated/core, and the shell's own
// answers (start-up snapshot, receipt, error, status view, field-test view) in
// ui/src/generated/app. Only ScreenName below is the UI's own: the screens it can show.
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

import type { AppSnapshot } from "../../src/generated/app/AppSnapshot";
import type { ErrorCode } from "../../src/generated/app/ErrorCode";
import type { FieldTest } from "../../src/generated/app/FieldTest";
import type { IpcError } from "../../src/generated/app/IpcError";
import type { NetworkMode } from "../../src/generated/app/NetworkMode";
import type { Receipt } from "../../src/generated/app/Receipt";
import type { Screen } from "../../src/generated/app/Screen";
import type { StatusView } from "../../src/generated/app/StatusView";
import type { FaultStats } from "../../src/generated/core/FaultStats";

export type { AppSnapshot, ErrorCode, FaultStats, FieldTest, IpcError, NetworkMode, Receipt, Screen, StatusView };

/** The screens the UI can show (courier-app/src/settings.rs checks the same list). */
export const SCREEN_NAMES = ["route", "stop", "scan", "attempt", "notes", "settings"] as const;
export type ScreenName = (typeof SCREEN_NAMES)[number];

/** Where the UI is: the saved `Screen`, with its name narrowed to a screen this UI has. */
export interface UiScreen {
  name: ScreenName;
  stop_id: StopId | null;
}

export function isScreenName(name: string): name is ScreenName {
  return (SCREEN_NAMES as readonly string[]).includes(name);
}
