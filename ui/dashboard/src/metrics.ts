// The metrics screen: headline figures, first attempts over time, failed attempts by reason,
// and tables per courier and per region — all computed by the server from the event log.

import { get } from "./api";
import { h, svg } from "./dom";
import { duration, label, percent } from "./format";
import type { DashboardMetrics } from "../../src/generated/DashboardMetrics";
import type { AttemptGroup } from "../../src/generated/AttemptGroup";

export type MetricsWindow = "hour" | "day";

/** Success among first attempts that really happened ("customer absent" without presence is not one). */
function rate(g: AttemptGroup): number | null {
  const real = g.first_attempts - g.first_attempts_no_real;
  return real <= 0 ? null : g.first_attempts_delivered / real;
}

function lag(ms: number | null): string {
  return ms === null ? "—" : ms < 1000 ? `${Math.round(ms)} ms` : duration(ms);
}

function overTime(m: DashboardMetrics): SVGElement {
  const W = 600, H = 180, pad = 24;
  const n = m.over_time.length;
  const max = Math.max(1, ...m.over_time.map((g) => g.first_attempts + g.failed_attempts));
  const bw = (W - 2 * pad) / Math.max(n, 1);
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": "First attempts delivered and failed attempts over time" });
  root.appendChild(svg("line", { x1: pad, y1: H - pad, x2: W - pad, y2: H - pad, stroke: "#374151" }));
  m.over_time.forEach((g, i) => {
    const x = pad + i * bw;
    const ok = (g.first_attempts_delivered / max) * (H - 2 * pad);
    const bad = (g.failed_attempts / max) * (H - 2 * pad);
    root.appendChild(svg("rect", { x: x + 1, y: H - pad - ok, width: Math.max(1, bw - 2), height: ok, fill: "#15803d" }));
    root.appendChild(svg("rect", { x: x + 1, y: H - pad - ok - bad, width: Math.max(1, bw - 2), height: bad, fill: "#b45309" }));
  });
  const t0 = Number(m.over_time[0]?.label ?? 0), t1 = Number(m.over_time[n - 1]?.label ?? 0);
  const fmt = (ms: number) => new Date(ms).toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
  const a = svg("text", { x: pad, y: H - 6, "font-size": 12, fill: "#374151" });
  a.textContent = fmt(t0);
  const b = svg("text", { x: W - pad, y: H - 6, "font-size": 12, fill: "#374151", "text-anchor": "end" });
  b.textContent = fmt(t1);
  const c = svg("text", { x: pad, y: 14, "font-size": 12, fill: "#374151" });
  c.textContent = `max ${max} per ${duration(m.bucket_ms)}`;
  root.append(a, b, c);
  return root;
}

function table(title: string, groups: AttemptGroup[]): HTMLElement {
  return h(
    "section",
    { class: "card" },
    h("h2", {}, title),
    h(
      "table",
      { class: "metrics-table" },
      h("thead", {}, h("tr", {}, ["", "First-attempt success", "First attempts", "No real attempt", "Failed attempts", "Duplicates", "Late replays", "Mean sync lag"].map((t) => h("th", { scope: "col" }, t)))),
      h(
        "tbody",
        {},
        groups.map((g) =>
          h(
            "tr",
            {},
            h("th", { scope: "row" }, label(g.label)),
            h("td", { "data-label": "First-attempt success" }, percent(rate(g))),
            h("td", { "data-label": "First attempts" }, String(g.first_attempts)),
            h("td", { "data-label": "No real attempt" }, String(g.first_attempts_no_real)),
            h("td", { "data-label": "Failed attempts" }, String(g.failed_attempts)),
            h("td", { "data-label": "Duplicates" }, String(g.duplicates)),
            h("td", { "data-label": "Late replays" }, String(g.late_replays)),
            h("td", { "data-label": "Mean sync lag" }, lag(g.mean_sync_lag_ms)),
          ),
        ),
      ),
    ),
  );
}

export async function metricsView(win: MetricsWindow, setWindow: (w: MetricsWindow) => void): Promise<HTMLElement> {
  const q = win === "hour" ? "bucket_ms=60000&buckets=60" : "bucket_ms=900000&buckets=96";
  const m = await get<DashboardMetrics>(`/v1/dispatch/metrics/dashboard?${q}`);
  const t = m.totals;
  const maxReason = Math.max(1, ...m.failed_by_reason.map((r) => r.count));
  const tile = (name: string, value: string, id: string) =>
    h("div", { class: "tile", "data-metric": id }, h("div", { class: "tile-value" }, value), h("div", { class: "tile-name" }, name));
  return h(
    "section",
    { class: "metrics", "data-testid": "metrics" },
    h("h1", {}, "Metrics"),
    h(
      "div",
      { class: "segmented", role: "group", "aria-label": "Time window" },
      h("button", { type: "button", "aria-pressed": String(win === "hour"), onclick: () => setWindow("hour") }, "Last hour"),
      h("button", { type: "button", "aria-pressed": String(win === "day"), onclick: () => setWindow("day") }, "Last 24 h"),
    ),
    h(
      "div",
      { class: "tiles" },
      tile("First-attempt success", percent(rate(t)), "first_attempt_success"),
      tile("First attempts", String(t.first_attempts), "first_attempts"),
      tile("No real attempt (absent, no presence)", String(t.first_attempts_no_real), "first_attempts_no_real"),
      tile("Failed attempts", String(t.failed_attempts), "failed_attempts"),
      tile("Duplicates caught (log)", String(m.duplicates_caught), "duplicates"),
      tile("Replays answered since start", String(m.replays_since_start), "replays"),
      tile("Late replays", String(t.late_replays), "late_replays"),
      tile("Mean sync lag", lag(t.mean_sync_lag_ms), "sync_lag"),
      tile("Open escalations", String(m.open_escalations), "open_escalations"),
    ),
    h(
      "section",
      { class: "card" },
      h("h2", {}, "Over time"),
      overTime(m),
      h("p", { class: "legend-inline" }, h("span", { class: "dot", style: "background:#15803d" }), "first attempts delivered ", h("span", { class: "dot", style: "background:#b45309" }), "failed attempts"),
    ),
    h(
      "section",
      { class: "card" },
      h("h2", {}, "Failed attempts by reason"),
      m.failed_by_reason.length
        ? h(
            "ul",
            { class: "bars" },
            m.failed_by_reason.map((r) =>
              h(
                "li",
                {},
                h("span", { class: "bar-label" }, label(r.label)),
                h("span", { class: "bar", style: `width:${(r.count / maxReason) * 100}%` }),
                h("span", { class: "bar-count" }, String(r.count)),
              ),
            ),
          )
        : h("p", { class: "muted" }, "No failed attempts in this window."),
    ),
    table("By region", m.by_region),
    table("By courier", m.by_courier),
  );
}
