// The fleet screen: headline tiles, an SVG map of every route and stop drawn from coordinates
// (no tiles), and the courier list with live status and sync health. Selecting a courier loads
// that route's stops on demand.

import { get } from "./api";
import { h, replace, svg } from "./dom";
import { duration, label, windowText } from "./format";
import { fleet, type CourierStatus } from "./state";
import type { FleetCourier } from "../../src/generated/FleetCourier";
import type { MapStatus } from "../../src/generated/MapStatus";
import type { RouteDetail } from "../../src/generated/RouteDetail";
import { statusChip } from "./stopstatus";

const MAP_COLOURS: Record<MapStatus, string> = {
  pending: "#6b7280",
  en_route: "#1d4ed8",
  retry: "#b45309",
  needs_human: "#b91c1c",
  delivered: "#15803d",
  closed: "#7c3aed",
};
const MAP_ORDER: MapStatus[] = ["pending", "closed", "en_route", "delivered", "retry", "needs_human"];

export function courierChip(status: CourierStatus, since: number | null): HTMLElement {
  const now = fleet.serverNow();
  const text =
    status === "online" ? "Online" : status === "offline" ? `Offline ${duration(now - (since ?? now))}` : "Never synced";
  return h("span", { class: `chip chip-${status}`, "data-testid": "courier-status", "data-status": status }, text);
}

function syncHealth(c: FleetCourier): HTMLElement {
  const { device } = fleet.status(c);
  const q = device?.queue ?? null;
  if (!device) return h("span", { class: "muted" }, "No device enrolled");
  const parts: (string | HTMLElement)[] = [];
  if (q) {
    const sinceContact = device.last_contact_ms === null ? 0 : fleet.serverNow() - device.last_contact_ms;
    parts.push(h("span", { "data-testid": "queue", "data-queue": q.queued_events }, `${q.queued_events} queued`));
    if (q.oldest_unsynced_ms !== null && q.queued_events > 0) {
      parts.push(` · oldest ${duration(q.oldest_unsynced_ms + Math.max(0, sinceContact))}`);
    }
    if (q.photos_pending > 0) parts.push(` · ${q.photos_pending} photos pending`);
    if (q.rejected_events > 0) parts.push(` · ${q.rejected_events} rejected`);
  } else {
    parts.push(h("span", { "data-testid": "queue", "data-queue": "unknown" }, "queue not reported"));
  }
  if (device.clock_skew_flagged) parts.push(h("span", { class: "warn" }, " · clock skew"));
  return h("span", { class: "health" }, ...parts);
}

function progress(c: FleetCourier): HTMLElement {
  const done = c.counts.delivered + c.counts.closed;
  const pct = c.counts.total === 0 ? 0 : Math.round((done / c.counts.total) * 100);
  return h(
    "div",
    { class: "progress-wrap" },
    h(
      "div",
      {
        class: "progress",
        role: "progressbar",
        "aria-valuemin": 0,
        "aria-valuemax": c.counts.total,
        "aria-valuenow": done,
        "aria-label": `${c.name}: ${done} of ${c.counts.total} stops done`,
      },
      h("div", { class: "progress-bar", style: `width:${pct}%` }),
    ),
    h(
      "span",
      { class: "progress-text" },
      `${done}/${c.counts.total} done`,
      c.counts.needs_human > 0 ? h("span", { class: "warn" }, ` · ${c.counts.needs_human} need a human`) : null,
      c.counts.retry > 0 ? ` · ${c.counts.retry} to retry` : null,
    ),
  );
}

interface Projection {
  x: (lon: number) => number;
  y: (lat: number) => number;
}

function project(couriers: FleetCourier[], width: number, height: number): Projection | null {
  let minLat = Infinity, maxLat = -Infinity, minLon = Infinity, maxLon = -Infinity;
  for (const c of couriers)
    for (const [lat, lon] of c.points) {
      if (lat < minLat) minLat = lat;
      if (lat > maxLat) maxLat = lat;
      if (lon < minLon) minLon = lon;
      if (lon > maxLon) maxLon = lon;
    }
  if (!Number.isFinite(minLat)) return null;
  const k = Math.cos(((minLat + maxLat) / 2) * (Math.PI / 180));
  const spanX = Math.max((maxLon - minLon) * k, 1e-6);
  const spanY = Math.max(maxLat - minLat, 1e-6);
  const pad = 12;
  const scale = Math.min((width - 2 * pad) / spanX, (height - 2 * pad) / spanY);
  const ox = (width - spanX * scale) / 2;
  const oy = (height - spanY * scale) / 2;
  return {
    x: (lon) => ox + (lon - minLon) * k * scale,
    y: (lat) => height - oy - (lat - minLat) * scale,
  };
}

/** One path per status: "M x y h0" segments with round caps draw thousands of dots cheaply. */
function drawMap(couriers: FleetCourier[], selected: string | null): SVGElement {
  const W = 600, H = 420;
  const root = svg("svg", {
    viewBox: `0 0 ${W} ${H}`,
    class: "map",
    role: "img",
    "aria-label": `Map of ${couriers.length} routes and ${couriers.reduce((n, c) => n + c.points.length, 0)} stops`,
  });
  root.appendChild(svg("rect", { x: 0, y: 0, width: W, height: H, fill: "#f8fafc" }));
  const p = project(couriers, W, H);
  if (!p) return root;
  const paths = new Map<MapStatus, string[]>();
  for (const c of couriers)
    for (const [lat, lon, st] of c.points) {
      let a = paths.get(st);
      if (!a) paths.set(st, (a = []));
      a.push(`M${p.x(lon).toFixed(1)} ${p.y(lat).toFixed(1)}h0`);
    }
  for (const st of MAP_ORDER) {
    const d = paths.get(st);
    if (!d) continue;
    root.appendChild(
      svg("path", { d: d.join(""), stroke: MAP_COLOURS[st], "stroke-width": 6, "stroke-linecap": "round", fill: "none" }),
    );
  }
  const depot = fleet.snapshot?.depot;
  if (depot) {
    const x = p.x(depot.lon), y = p.y(depot.lat);
    root.appendChild(svg("rect", { x: x - 7, y: y - 7, width: 14, height: 14, fill: "#111827", stroke: "#fff", "stroke-width": 2 }));
  }
  const sel = couriers.find((c) => c.courier_id === selected);
  if (sel && sel.points.length > 0) {
    const d = sel.points.map(([lat, lon], i) => `${i === 0 ? "M" : "L"}${p.x(lon).toFixed(1)} ${p.y(lat).toFixed(1)}`).join("");
    const start = depot ? `M${p.x(depot.lon).toFixed(1)} ${p.y(depot.lat).toFixed(1)}L` : "M";
    root.appendChild(svg("path", { d: start + d.slice(1), stroke: "#111827", "stroke-width": 2, fill: "none", "stroke-dasharray": "5 3" }));
    root.appendChild(
      svg("path", {
        d: sel.points.map(([lat, lon]) => `M${p.x(lon).toFixed(1)} ${p.y(lat).toFixed(1)}h0`).join(""),
        stroke: "#111827",
        "stroke-width": 8,
        "stroke-linecap": "round",
        fill: "none",
        opacity: 0.35,
      }),
    );
  }
  return root;
}

function legend(): HTMLElement {
  return h(
    "ul",
    { class: "legend", "aria-label": "Map legend" },
    MAP_ORDER.map((s) => h("li", {}, h("span", { class: "dot", style: `background:${MAP_COLOURS[s]}` }), label(s))),
    h("li", {}, h("span", { class: "dot depot" }), "Depot"),
  );
}

export class FleetView {
  readonly el = h("section", { class: "fleet", "aria-labelledby": "fleet-h" });
  private filter = "";
  private onlyOffline = false;
  private mapFor: unknown = null;
  private mapBox = h("div", { class: "map-box" });
  private listBox = h("ul", { class: "couriers", "data-testid": "courier-list" });
  private tiles = h("div", { class: "tiles" });
  private detail = h("div", { class: "route-detail", "aria-live": "polite" });
  private routeCache: RouteDetail | null = null;

  constructor(private selected: string | null) {
    const search = h("input", {
      type: "search",
      placeholder: "Find a courier or region",
      "aria-label": "Find a courier or region",
      oninput: (e: Event) => {
        this.filter = (e.target as HTMLInputElement).value.toLowerCase();
        this.renderList();
      },
    });
    const offline = h("input", {
      type: "checkbox",
      id: "only-offline",
      onchange: (e: Event) => {
        this.onlyOffline = (e.target as HTMLInputElement).checked;
        this.renderList();
      },
    });
    replace(
      this.el,
      h("h1", { id: "fleet-h" }, "Fleet"),
      this.tiles,
      h(
        "div",
        { class: "fleet-grid" },
        h("div", { class: "map-col" }, this.mapBox, legend(), this.detail),
        h(
          "div",
          { class: "list-col" },
          h("div", { class: "filters" }, search, h("label", { class: "check" }, offline, "Offline only")),
          this.listBox,
        ),
      ),
    );
    if (selected) void this.loadRoute();
  }

  render(): void {
    const s = fleet.snapshot;
    if (!s) {
      replace(this.tiles, h("p", {}, "Loading the fleet…"));
      return;
    }
    let online = 0, offline = 0, never = 0, total = 0, done = 0, queued = 0;
    for (const c of s.couriers) {
      const st = fleet.status(c).status;
      if (st === "online") online++;
      else if (st === "offline") offline++;
      else never++;
      total += c.counts.total;
      done += c.counts.delivered + c.counts.closed;
      for (const d of c.devices) queued += d.queue?.queued_events ?? 0;
    }
    replace(
      this.tiles,
      tile("Online", String(online), "tile-online"),
      tile("Offline", String(offline), offline > 0 ? "tile-warn" : ""),
      tile("Never synced", String(never), ""),
      tile("Stops done", `${done} / ${total}`, ""),
      tile("Queued on devices", String(queued), ""),
      tile("Open escalations", String(s.open_escalations), s.open_escalations > 0 ? "tile-warn" : ""),
    );
    if (this.mapFor !== s) {
      this.mapFor = s;
      replace(this.mapBox, drawMap(s.couriers, this.selected));
    }
    this.renderList();
    this.el.setAttribute("data-fleet-ready", "1");
  }

  private renderList(): void {
    const s = fleet.snapshot;
    if (!s) return;
    const rows: HTMLElement[] = [];
    for (const c of s.couriers) {
      const st = fleet.status(c);
      if (this.onlyOffline && st.status === "online") continue;
      if (this.filter && !`${c.name} ${c.region}`.toLowerCase().includes(this.filter)) continue;
      rows.push(
        h(
          "li",
          {
            class: `courier${c.courier_id === this.selected ? " selected" : ""}`,
            "data-courier-id": c.courier_id,
            "data-updated-at": Date.now(),
          },
          h(
            "a",
            { href: `#/fleet/${c.courier_id}`, class: "courier-link", "aria-current": c.courier_id === this.selected ? "true" : null },
            h("span", { class: "courier-name" }, c.name),
            h("span", { class: "muted region" }, c.region || "no region"),
          ),
          courierChip(st.status, st.since),
          syncHealth(c),
          progress(c),
        ),
      );
    }
    replace(this.listBox, rows.length ? rows : [h("li", { class: "muted" }, "No courier matches.")]);
  }

  private async loadRoute(): Promise<void> {
    const c = this.selected ? fleet.courier(this.selected) : undefined;
    if (!c) {
      // The snapshot may not be loaded yet; render() calls back once it is.
      return;
    }
    if (!c.route_id) {
      replace(this.detail, h("p", {}, `${c.name} has no route.`));
      return;
    }
    try {
      this.routeCache = await get<RouteDetail>(`/v1/dispatch/routes/${c.route_id}`);
      this.renderRoute();
    } catch (e) {
      replace(this.detail, h("p", { class: "error" }, `Could not load the route: ${String(e)}`));
    }
  }

  private renderRoute(): void {
    const r = this.routeCache;
    if (!r) return;
    replace(
      this.detail,
      h("h2", {}, `${r.courier_name} — route of ${r.day} (v${r.version})`),
      h(
        "ol",
        { class: "stops", "data-testid": "route-stops" },
        r.stops.map((s) =>
          h(
            "li",
            {},
            h(
              "a",
              { href: `#/stops/${s.stop_id}`, class: "stop-link", "data-stop-id": s.stop_id },
              h("span", { class: "seq" }, String(s.sequence)),
              h("span", { class: "addr" }, s.address, h("br"), h("span", { class: "muted" }, `${s.customer_name} · ${windowText(s.window)}`)),
              statusChip(s.status),
            ),
          ),
        ),
      ),
    );
  }

  /** After a reload: refresh the open route too (its stops may have moved). */
  refreshRoute(): void {
    if (this.selected) void this.loadRoute();
  }

  get wantsRoute(): boolean {
    return this.selected !== null && this.routeCache === null;
  }
}

function tile(name: string, value: string, cls: string): HTMLElement {
  return h("div", { class: `tile ${cls}` }, h("div", { class: "tile-value" }, value), h("div", { class: "tile-name" }, name));
}
