// The stop timeline: every event of one stop with device time, server receive time, clock
// offset and outcome, and the evidence per attempt (photo, verified signature, presence score) — shown
// honestly when it was not captured or has not landed yet.

import { get } from "./api";
import { h, replace } from "./dom";
import { dateTime, label, signedDuration, windowText } from "./format";
import { statusChip } from "./stopstatus";
import type { StopDetail } from "../../src/generated/StopDetail";
import type { StopContext } from "../../src/generated/StopContext";
import type { StoredEvent } from "../../src/generated/StoredEvent";
import type { ProofReport } from "../../src/generated/ProofReport";
import type { PresenceReport } from "../../src/generated/PresenceReport";
import { evidenceCard } from "./evidence";

export function describe(e: StoredEvent): string {
  switch (e.kind) {
    case "parcel_scanned":
      return `Parcel ${e.payload.parcel} scanned: ${label(e.payload.phase)}`;
    case "beacon_sighted":
      return `Beacon ${e.payload.beacon_id} heard ${e.payload.sightings}× (${e.payload.rssi_dbm} dBm)`;
    case "arrived_at_stop":
      return `Arrived (attempt ${e.payload.attempt})`;
    case "delivery_attempted": {
      const o = e.payload.outcome;
      return o.result === "delivered"
        ? `Attempt ${e.payload.attempt}: delivered — ${label(o.method)}${o.recipient ? ` to ${o.recipient}` : ""}`
        : `Attempt ${e.payload.attempt}: failed — ${label(o.reason)}${o.detail ? ` (${o.detail})` : ""}`;
    }
    case "proof_captured":
      return `Proof for attempt ${e.payload.attempt}: ${e.payload.photos.length} photo(s)${e.payload.signature ? ", signed" : ""}`;
    case "location_fixed":
      return `Location fix ±${e.payload.accuracy_m} m`;
    case "route_replanned":
      return `Route replanned (${e.payload.model_version ?? "solver only"})`;
    case "note_added":
      return `Note: ${e.payload.text}`;
    case "access_notes_edited":
      return `Access notes edited by ${e.payload.actor}: “${e.payload.text}”`;
    case "route_assigned":
      return `Route assigned (v${e.payload.version})`;
    case "stop_reassigned":
      return `Reassigned to route ${e.payload.to_route.slice(0, 8)}…`;
    case "stop_rescheduled":
      return `Rescheduled to ${windowText(e.payload.window)}`;
    case "stop_cancelled":
      return e.payload.reason.startsWith("return_to_depot:")
        ? `Return to depot requested: ${e.payload.reason.slice("return_to_depot:".length).trim()}`
        : `Cancelled: ${e.payload.reason}`;
    case "escalation_resolved":
      return `Escalation resolved: ${e.payload.resolution}`;
  }
}

export async function stopView(stopId: string): Promise<HTMLElement> {
  const [detail, ctx, proofs, presence] = await Promise.all([
    get<StopDetail>(`/v1/dispatch/stops/${stopId}`),
    get<StopContext>(`/v1/dispatch/stops/${stopId}/context`).catch(() => null),
    get<ProofReport>(`/v1/dispatch/stops/${stopId}/proof`).catch(() => null),
    get<PresenceReport>(`/v1/dispatch/stops/${stopId}/presence`).catch(() => null),
  ]);
  const el = h("section", { class: "stop", "data-testid": "stop-timeline", "data-stop-id": stopId });
  const s = ctx?.stop;
  const rows = detail.events.map((e) =>
    h(
      "tr",
      { "data-event-id": e.event_id, class: e.status === "applied" ? "" : `row-${e.status}` },
      h("td", { "data-label": "Event" }, describe(e), h("div", { class: "muted small" }, e.intent_key)),
      h("td", { "data-label": "Device time" }, e.device_time_ms === null ? "office" : dateTime(e.device_time_ms)),
      h("td", { "data-label": "Received" }, dateTime(e.received_at_ms)),
      h("td", { "data-label": "Clock offset" }, signedDuration(e.clock_offset_ms)),
      h(
        "td",
        { "data-label": "Outcome" },
        h("span", { class: `chip outcome-${e.status}` }, label(e.status)),
        e.code ? h("div", { class: "muted small" }, label(e.code)) : null,
      ),
      h("td", { "data-label": "Source" }, e.device_id ? `device ${e.device_id.slice(0, 8)}… #${e.device_seq ?? "?"}` : "office"),
    ),
  );
  replace(
    el,
    h("p", {}, h("a", { href: ctx ? `#/fleet/${ctx.courier_id}` : "#/fleet", class: "back" }, "← Back to the fleet")),
    h("h1", {}, s ? s.address : `Stop ${stopId}`),
    h(
      "div",
      { class: "card stop-head" },
      statusChip(detail.view.status),
      s ? h("span", {}, `${s.customer_name} · window ${windowText(detail.view.window ?? s.window)}`) : null,
      ctx ? h("span", {}, `Courier: ${ctx.courier_name}`) : null,
      detail.view.access_notes.length > 1
        ? h("span", { class: "warn" }, `Access notes disagree: ${detail.view.access_notes.map((n) => `“${n}”`).join(" vs ")}`)
        : detail.view.access_notes.length === 1
          ? h("span", {}, `Access: ${detail.view.access_notes[0]}`)
          : s?.access_notes
            ? h("span", {}, `Access: ${s.access_notes}`)
            : h("span", { class: "missing" }, "No access instructions"),
      detail.view.conflicts.length
        ? h("span", { class: "warn" }, `Conflicts: ${detail.view.conflicts.map((c) => label(c.conflict)).join(", ")}`)
        : null,
    ),
    evidenceCard(detail, proofs, ctx, presence),
    h(
      "section",
      { class: "card", "aria-labelledby": "tl-h" },
      h("h2", { id: "tl-h" }, `Timeline (${detail.events.length} events)`),
      h(
        "table",
        { class: "timeline" },
        h(
          "thead",
          {},
          h("tr", {}, ["Event", "Device time", "Received", "Clock offset", "Outcome", "Source"].map((t) => h("th", { scope: "col" }, t))),
        ),
        h("tbody", {}, rows),
      ),
    ),
  );
  return el;
}
