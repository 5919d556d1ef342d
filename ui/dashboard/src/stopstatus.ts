import { h } from "./dom";
import { label } from "./format";
import type { StopStatus } from "../../src/generated/StopStatus";

const TONE: Record<StopStatus["status"], string> = {
  planned: "neutral",
  loaded: "neutral",
  out_for_delivery: "info",
  arrived: "info",
  attempt_failed: "warn",
  cancelled: "closed",
  attempts_exhausted: "bad",
  failed_terminal: "bad",
  returned: "closed",
  delivered: "good",
};

export function statusText(s: StopStatus): string {
  switch (s.status) {
    case "attempt_failed":
      return `Attempt failed (${s.failed_attempts})`;
    case "failed_terminal":
      return `Failed: ${label(s.reason)}`;
    default:
      return label(s.status);
  }
}

export function statusChip(s: StopStatus): HTMLElement {
  return h("span", { class: `chip tone-${TONE[s.status]}`, "data-stop-status": s.status }, statusText(s));
}
