// The dashboard shell: sign-in, navigation (hash routes), the live feed, and the screens.

import "./style.css";
import { ApiProblem, get, setToken, setUnauthorizedHandler, token } from "./api";
import { h, replace } from "./dom";
import { escalationsView, type EscalationQueue } from "./escalations";
import { FleetView } from "./fleet";
import { LiveFeed, type LiveState } from "./live";
import { metricsView, type MetricsWindow } from "./metrics";
import { fleet } from "./state";
import { stopView } from "./stop";
import type { MetricsSummary } from "../../src/generated/MetricsSummary";
import type { LiveEvent } from "../../src/generated/LiveEvent";

declare global {
  interface Window {
    /** Read by the browser tests: when the first fleet render finished (performance.now()). */
    __doorstep?: { fleetReadyAt?: number; lastLiveAt?: number };
  }
}

const app = document.getElementById("app") as HTMLElement;
const main = h("main", { id: "main", tabindex: "-1" });
const liveBadge = h("span", { class: "live live-connecting", "data-testid": "live", "data-state": "connecting" }, "Connecting…");
const escCount = h("span", { class: "badge", "data-testid": "esc-count" }, "");
let feed: LiveFeed | null = null;
let fleetView: FleetView | null = null;
let metricsWindow: MetricsWindow = "hour";
let rerender: (() => Promise<void>) | null = null;
let queue: EscalationQueue | null = null;
/** The stop whose timeline is open, if any. */
let openStop: string | null = null;
let pending = false;
window.__doorstep = {};

function signIn(message = ""): void {
  setUnauthorizedHandler(() => {});
  feed?.stop();
  feed = null;
  const input = h("input", { type: "password", id: "token", name: "token", autocomplete: "off", required: true, "aria-describedby": "token-help" });
  const err = h("p", { class: "error", role: "alert" }, message);
  replace(
    app,
    h(
      "main",
      { class: "signin" },
      h("h1", {}, "Doorstep dispatch"),
      h(
        "form",
        {
          onsubmit: async (e: Event) => {
            e.preventDefault();
            const t = (input as HTMLInputElement).value.trim();
            setToken(t);
            try {
              await get<MetricsSummary>("/v1/dispatch/metrics");
              start();
            } catch (x) {
              setToken(null);
              err.textContent = x instanceof ApiProblem && x.status === 401 ? "That token was not accepted." : `Cannot reach the server: ${String(x)}`;
            }
          },
        },
        h("label", { for: "token" }, "Dispatcher token"),
        input,
        h("p", { id: "token-help", class: "muted" }, "Paste the token from `doorstep-server admin dispatcher-token` or `demo-seed`. It is kept for this tab only."),
        h("button", { type: "submit", class: "primary" }, "Sign in"),
        err,
      ),
    ),
  );
  (input as HTMLInputElement).focus();
}

function nav(): HTMLElement {
  const route = location.hash.split("/")[1] ?? "fleet";
  const link = (href: string, text: string, key: string, extra?: HTMLElement) =>
    h("a", { href, "aria-current": route === key ? "page" : null }, text, extra ?? null);
  return h(
    "header",
    { class: "top" },
    h("a", { href: "#/fleet", class: "brand" }, "Doorstep"),
    h("nav", { "aria-label": "Screens" }, link("#/fleet", "Fleet", "fleet"), link("#/escalations", "Escalations", "escalations", escCount), link("#/metrics", "Metrics", "metrics")),
    liveBadge,
    h(
      "button",
      {
        type: "button",
        class: "secondary",
        onclick: () => {
          setToken(null);
          signIn();
        },
      },
      "Sign out",
    ),
  );
}

function setLive(s: LiveState): void {
  liveBadge.className = `live live-${s}`;
  liveBadge.dataset["state"] = s;
  liveBadge.textContent = s === "live" ? "Live" : s === "connecting" ? "Connecting…" : "Reconnecting…";
}

function schedule(): void {
  if (pending) return;
  pending = true;
  requestAnimationFrame(() => {
    pending = false;
    escCount.textContent = fleet.snapshot && fleet.snapshot.open_escalations > 0 ? String(fleet.snapshot.open_escalations) : "";
    fleetView?.render();
    const d = window.__doorstep;
    if (d && d.fleetReadyAt === undefined && fleet.snapshot && fleetView) d.fleetReadyAt = performance.now();
  });
}

/** Re-renders the metrics screen after live changes, at most once a second. */
let slowTimer: number | undefined;
function slowRefresh(): void {
  if (slowTimer !== undefined) return;
  slowTimer = window.setTimeout(() => {
    slowTimer = undefined;
    void rerender?.();
  }, 1000);
}

/** Re-renders the open stop timeline now; changes during a render coalesce into one more. */
let stopRendering: Promise<void> | null = null;
let stopAgain = false;
function refreshStop(): void {
  if (stopRendering) {
    stopAgain = true;
    return;
  }
  const r = rerender;
  if (!r) return;
  stopRendering = r()
    .catch(() => {})
    .finally(() => {
      stopRendering = null;
      if (stopAgain) {
        stopAgain = false;
        refreshStop();
      }
    });
}

/** Which open screen a live message concerns. */
function onLive(e: LiveEvent): void {
  if (location.hash.startsWith("#/metrics")) slowRefresh();
  const touchesStop =
    openStop !== null &&
    (e.type === "resync" ||
      (e.type === "push" && e.stops.includes(openStop)) ||
      (e.type === "office" && (e.stop_id === openStop || e.stop_id === null)) ||
      (e.type === "blob_stored" && main.querySelector(`[data-photo="pending"][data-digest="${e.digest}"]`) !== null));
  if (touchesStop) refreshStop();
  if (queue && (e.type === "office" || e.type === "resync" || (e.type === "push" && e.escalations_opened > 0)))
    void queue.refresh().catch(() => {});
}

async function show(): Promise<void> {
  const parts = location.hash.replace(/^#\/?/, "").split("/");
  const screen = parts[0] || "fleet";
  replace(app, h("a", { href: "#main", class: "skip" }, "Skip to content"), nav(), main);
  fleetView = null;
  rerender = null;
  queue = null;
  openStop = null;
  try {
    if (screen === "fleet") {
      fleetView = new FleetView(parts[1] ?? null);
      replace(main, fleetView.el);
      fleetView.render();
      if (fleet.snapshot && fleetView.wantsRoute) fleetView.refreshRoute();
    } else if (screen === "stops" && parts[1]) {
      const id = parts[1];
      openStop = id;
      rerender = async () => {
        const view = await stopView(id);
        if (openStop === id) replace(main, view);
      };
      replace(main, h("p", {}, "Loading the stop…"));
      await rerender();
    } else if (screen === "escalations") {
      replace(main, h("p", {}, "Loading escalations…"));
      const q = await escalationsView(() => {
        void fleet.reload();
        void q.refresh().catch(() => {});
      });
      queue = q;
      rerender = () => q.refresh();
      replace(main, q.el);
    } else if (screen === "metrics") {
      rerender = async () =>
        replace(
          main,
          await metricsView(metricsWindow, (w) => {
            metricsWindow = w;
            void rerender?.();
          }),
        );
      replace(main, h("p", {}, "Loading metrics…"));
      await rerender();
    } else {
      location.hash = "#/fleet";
    }
  } catch (e) {
    replace(main, h("p", { class: "error", role: "alert" }, `Could not load: ${e instanceof Error ? e.message : String(e)}`));
  }
}

let started = false;
function start(): void {
  setUnauthorizedHandler(() => signIn("Your session ended: sign in again."));
  if (!started) {
    started = true;
    fleet.subscribe(schedule);
    // Online/offline is a function of time: re-evaluate it every second.
    window.setInterval(schedule, 1000);
  }
  if (!location.hash) location.hash = "#/fleet";
  void show();
  void fleet.reload().then(() => fleetView?.refreshRoute());
  feed = new LiveFeed(
    (e) => {
      if (window.__doorstep) window.__doorstep.lastLiveAt = Date.now();
      const r = fleet.applyLive(e);
      if (r === "reload") void fleet.reload();
      onLive(e);
    },
    setLive,
    () => {
      void fleet.reload();
      // The stream (re)opened: anything may have been missed while it was down.
      onLive({ type: "resync" });
    },
  );
  feed.start();
}

window.addEventListener("hashchange", () => {
  if (token()) void show();
});
if (token()) start();
else signIn();
