// Pure formatting helpers (no DOM).
import type { DeliveryMethod, FailureReason, StopStatus, TimeWindow } from "./types";

export function hhmm(ms: number): string {
  const d = new Date(ms);
  return `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`;
}

export function windowText(w: TimeWindow): string {
  return `${hhmm(w.start_ms)}–${hhmm(w.end_ms)}`;
}

export function age(ms: number | null): string {
  if (ms === null) return "—";
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m`;
  return `${Math.floor(m / 60)}h ${m % 60}m`;
}

export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

/** Label and tone (a CSS class) of a status chip. */
export function statusChip(s: StopStatus): { label: string; tone: string } {
  switch (s.status) {
    case "planned":
      return { label: "Planned", tone: "neutral" };
    case "loaded":
      return { label: "Loaded", tone: "info" };
    case "out_for_delivery":
      return { label: "Out", tone: "info" };
    case "arrived":
      return { label: "Arrived", tone: "info" };
    case "attempt_failed":
      return { label: `Failed ×${s.failed_attempts}`, tone: "warn" };
    case "cancelled":
      return { label: "Cancelled", tone: "neutral" };
    case "attempts_exhausted":
      return { label: "Needs dispatch", tone: "bad" };
    case "failed_terminal":
      return { label: "Failed – final", tone: "bad" };
    case "returned":
      return { label: "Returned", tone: "neutral" };
    case "delivered":
      return { label: "Delivered", tone: "good" };
  }
}

export function isTerminal(s: StopStatus): boolean {
  return ["cancelled", "attempts_exhausted", "failed_terminal", "returned", "delivered"].includes(s.status);
}

export const METHODS: ReadonlyArray<[DeliveryMethod, string]> = [
  ["handed_to_recipient", "To recipient"],
  ["handed_to_neighbour", "To neighbour"],
  ["left_at_safe_place", "Safe place"],
  ["parcel_locker", "Parcel locker"],
  ["concierge", "Concierge"],
];

/** The classified reasons, grouped as doorstep-shared's `FailureReason::class` groups them. */
export const REASONS: ReadonlyArray<[string, ReadonlyArray<[FailureReason, string]>]> = [
  [
    "Try again later",
    [
      ["obstacle_en_route", "Obstacle en route"],
      ["out_of_time", "Out of time"],
    ],
  ],
  [
    "Reattempt / reschedule",
    [
      ["customer_absent", "Customer absent"],
      ["no_access", "No access"],
      ["locker_full", "Locker full"],
      ["customer_requested_reschedule", "Customer asked for another day"],
    ],
  ],
  [
    "Final – dispatcher decides",
    [
      ["address_invalid", "Address invalid"],
      ["banned_destination", "Banned destination"],
      ["compliance_hold", "Compliance hold"],
      ["refused_by_recipient", "Refused by recipient"],
      ["parcel_damaged", "Parcel damaged"],
    ],
  ],
];

export function kindLabel(kind: string): string {
  return kind.replaceAll("_", " ");
}
