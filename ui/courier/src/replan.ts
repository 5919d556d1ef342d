// The route screen's re-plan panel: the proposed order next to the current one, and why
// (expected successful deliveries, windows kept, driving time, the model or why it is not in
// use). The Proposal type is generated from courier-core (ui/src/generated/core/Proposal.ts).
import { h } from "./dom";
import type { Proposal, RouteView, StopId, StopSummary } from "./types";

export interface ReplanActions {
  accept: () => void;
  dismiss: () => void;
}

/** "12.4 → 13.1 (+0.7)": before → after with the signed change. */
export function beforeAfter(before: number, after: number, digits: number, unit = ""): string {
  const diff = after - before;
  const sign = diff > 0 ? "+" : diff < 0 ? "−" : "±";
  const f = (x: number) => x.toFixed(digits);
  return `${f(before)} → ${f(after)}${unit} (${sign}${f(Math.abs(diff))}${unit})`;
}

export function minutes(seconds: number): number {
  return Math.round(seconds / 60);
}

/** Whether accepting would change anything. */
export function changesOrder(p: Proposal): boolean {
  return p.order.some((id, i) => p.order_before[i] !== id);
}

function reasons(p: Proposal): HTMLElement {
  const rows: Array<[string, string, string]> = [];
  if (p.expected_successes !== null && p.expected_successes_before !== null) {
    rows.push(["Expected deliveries", beforeAfter(p.expected_successes_before, p.expected_successes, 1), "reason-expected"]);
  } else {
    rows.push(["Expected deliveries", "not estimated (no model)", "reason-expected"]);
  }
  rows.push(["Windows kept", `${p.windows_kept_before} → ${p.windows_kept} of ${p.stops}`, "reason-windows"]);
  rows.push(["Driving", beforeAfter(minutes(p.travel_s_before), minutes(p.travel_s), 0, " min"), "reason-travel"]);
  if (p.model_version) rows.push(["Model", p.model_version, "reason-model"]);
  return h(
    "table",
    { class: "kv", testid: "proposal-reasons" },
    ...rows.map(([k, v, id]) => h("tr", {}, h("th", { scope: "row" }, k), h("td", { testid: id }, v))),
  );
}

function orderList(title: string, ids: StopId[], byId: Map<StopId, StopSummary>, other: StopId[], testid: string): HTMLElement {
  return h(
    "div",
    { class: "order-col" },
    h("h3", {}, title),
    h(
      "ol",
      { class: "order", testid },
      ...ids.map((id, i) => {
        const s = byId.get(id);
        const moved = other[i] !== id;
        return h("li", { "data-stop-id": id, class: moved ? "moved" : null }, s ? s.address : id);
      }),
    ),
  );
}

export function replanPanel(route: RouteView, p: Proposal, actions: ReplanActions): HTMLElement {
  const byId = new Map(route.stops.map((s) => [s.stop_id, s]));
  const changes = changesOrder(p);
  return h(
    "section",
    { class: "card proposal", testid: "proposal", "data-digest": p.inputs_digest },
    h("h2", {}, changes ? "Proposed order" : "No better order found"),
    p.notice ? h("p", { class: "warn-text", testid: "proposal-notice", role: "status" }, p.notice.message) : null,
    reasons(p),
    changes
      ? h(
          "div",
          { class: "order-compare" },
          orderList("Now", p.order_before, byId, p.order, "proposal-current"),
          orderList("Proposed", p.order, byId, p.order_before, "proposal-new"),
        )
      : h("p", { class: "muted", testid: "proposal-same" }, "The current order is already the best one found."),
    h(
      "div",
      { class: "actions" },
      changes ? h("button", { class: "primary", testid: "accept-replan", onclick: actions.accept }, "Use this order") : null,
      h("button", { class: "secondary", testid: "dismiss-replan", onclick: actions.dismiss }, changes ? "Keep current order" : "Close"),
    ),
  );
}

export function acceptedBanner(p: Proposal, undo: () => void): HTMLElement {
  return h(
    "div",
    { class: "card replanned", testid: "replan-accepted", role: "status" },
    h("span", {}, `Route re-planned${p.model_version ? ` with ${p.model_version}` : ""}.`),
    h("button", { class: "secondary", testid: "undo-replan", onclick: undo }, "Undo"),
  );
}
