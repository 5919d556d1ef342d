// Typed calls into the Tauri shell. `app.withGlobalTauri` exposes `window.__TAURI__`, so the
// UI needs no npm runtime dependency; every command returns a value or an IpcError.
import type {
  AppSnapshot,
  DeliveryMethod,
  FailureReason,
  FieldTest,
  IpcError,
  NetworkMode,
  Proposal,
  Receipt,
  RouteView,
  ScanPhase,
  ScreenName,
  StatusView,
  StopDetail,
  StopId,
} from "./types";

interface TauriGlobal {
  core: { invoke<T>(cmd: string, args?: Record<string, unknown>): Promise<T> };
}

declare global {
  interface Window {
    __TAURI__?: TauriGlobal;
  }
}

export function isIpcError(e: unknown): e is IpcError {
  return typeof e === "object" && e !== null && "code" in e && "message" in e;
}

export function errorText(e: unknown): string {
  if (isIpcError(e)) return e.message;
  return e instanceof Error ? e.message : String(e);
}

async function call<T>(cmd: string, args?: Record<string, unknown>): Promise<T> {
  const tauri = window.__TAURI__;
  if (!tauri) throw { code: "storage", message: "not running inside the courier app" } satisfies IpcError;
  return tauri.core.invoke<T>(cmd, args);
}

export const api = {
  appState: () => call<AppSnapshot>("app_state"),
  enroll: (serverUrl: string, code: string, deviceName: string) =>
    call<AppSnapshot>("enroll", { serverUrl, code, deviceName }),
  route: () => call<RouteView | null>("get_route", { day: null }),
  // The device's offset east of UTC: the model reasons in local time.
  proposeReroute: () => call<Proposal>("propose_reroute", { utcOffsetMin: -new Date().getTimezoneOffset() }),
  acceptReroute: (inputsDigest: string) => call<Receipt>("accept_reroute", { inputsDigest }),
  undoReroute: (inputsDigest: string) => call<Receipt>("undo_reroute", { inputsDigest }),
  // The accepted re-plan Undo would revert; it survives a restart of the app.
  acceptedReroute: () => call<Proposal | null>("accepted_reroute"),
  dismissReroute: (inputsDigest: string) => call<null>("dismiss_reroute", { inputsDigest }),
  stop: (stopId: StopId) => call<StopDetail>("get_stop", { stopId }),
  arrive: (stopId: StopId) => call<Receipt>("arrive", { stopId }),
  scan: (barcode: string, phase: ScanPhase) => call<Receipt>("scan_parcel", { barcode, phase }),
  deliver: (stopId: StopId, attempt: number, method: DeliveryMethod, recipient: string | null) =>
    call<Receipt>("record_delivery", { stopId, attempt, method, recipient }),
  fail: (stopId: StopId, attempt: number, reason: FailureReason, detail: string | null) =>
    call<Receipt>("record_failure", { stopId, attempt, reason, detail }),
  newNoteId: () => call<string>("new_note_id"),
  addNote: (stopId: StopId, noteId: string, text: string) =>
    call<Receipt>("add_note", { stopId, noteId, text }),
  status: () => call<StatusView>("sync_status"),
  syncNow: () => call<null>("sync_now"),
  saveScreen: (name: ScreenName, stopId: StopId | null) => call<null>("save_screen", { name, stopId }),
  fieldTest: () => call<FieldTest>("field_test"),
  setNetwork: (mode: NetworkMode, outageS: number | null) =>
    call<FieldTest>("set_network_profile", { mode, outageS }),
};
