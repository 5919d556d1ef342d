// The courier app's UI: one screen at a time, a sync bar always on top, tabs at the bottom.
// Every fact goes to the device's outbox through the shell; the screen only shows what the
// outbox confirmed. Where the driver was is saved on each navigation and restored at start.
import { api, errorText } from "./ipc";
import { cameraAvailable, scanWithCamera } from "./camera";
import { h, mount } from "./dom";
import { acceptedBanner, replanPanel } from "./replan";
import {
  METHODS,
  REASONS,
  age,
  bytes,
  hhmm,
  isTerminal,
  kindLabel,
  statusChip,
  windowText,
} from "./format";
import type {
  DeliveryMethod,
  FailureReason,
  FieldTest,
  NetworkMode,
  Proposal,
  RouteView,
  ScanPhase,
  ScreenName,
  StatusView,
  StopDetail,
  StopId,
  StopSummary,
  UiScreen,
} from "./types";
import { isScreenName } from "./types";

const $bar = document.getElementById("sync-bar") as HTMLElement;
const $screen = document.getElementById("screen") as HTMLElement;
const $tabs = document.getElementById("tabs") as HTMLElement;

const app = {
  enrolled: false,
  deviceId: null as string | null,
  serverUrl: null as string | null,
  screen: { name: "route", stop_id: null } as UiScreen,
  status: null as StatusView | null,
  barOpen: false,
  method: "handed_to_recipient" as DeliveryMethod,
  scanPhase: "loaded" as ScanPhase,
  recentScans: [] as string[],
  noteId: null as string | null,
  hasCamera: false,
  // The re-plan on screen, and the last accepted one (what Undo reverts).
  proposal: null as Proposal | null,
  accepted: null as Proposal | null,
};

// ------------------------------------------------------------------------------ navigation

async function go(name: ScreenName, stopId: StopId | null = null): Promise<void> {
  app.screen = { name, stop_id: stopId };
  try {
    await api.saveScreen(name, stopId);
  } catch (e) {
    toast(errorText(e));
  }
  await render();
}

function toast(text: string): void {
  const el = document.getElementById("toast") ?? document.body.appendChild(h("div", { id: "toast", role: "alert" }));
  el.textContent = text;
  el.classList.add("show");
  window.setTimeout(() => el.classList.remove("show"), 4000);
}

function chip(s: StopSummary["status"]): HTMLElement {
  const c = statusChip(s);
  return h("span", { class: `chip ${c.tone}`, testid: "status-chip" }, c.label);
}

function header(title: string, back?: () => void): HTMLElement {
  return h(
    "div",
    { class: "screen-head" },
    back ? h("button", { class: "back", "aria-label": "Back", testid: "back", onclick: back }, "‹") : null,
    h("h1", {}, title),
  );
}

// ------------------------------------------------------------------------------ sync bar

function renderBar(): void {
  const s = app.status;
  if (!app.enrolled || !s) {
    mount($bar);
    $bar.hidden = true;
    return;
  }
  $bar.hidden = false;
  const fieldTest = s.network !== "normal";
  const online = s.connectivity === "online" && !(s.network === "offline");
  const conn = online ? "Online" : s.connectivity === "unknown" && !fieldTest ? "Connecting" : "Offline";
  const rejected = s.rejected.length;
  const summary = h(
    "button",
    {
      class: "bar-summary",
      "aria-expanded": String(app.barOpen),
      testid: "sync-summary",
      onclick: () => {
        app.barOpen = !app.barOpen;
        renderBar();
      },
    },
    h("span", { class: `dot ${online ? "on" : "off"}`, "aria-hidden": "true" }),
    h("span", { class: "conn", testid: "conn" }, conn + (fieldTest ? " · test" : "")),
    h("span", { class: "stat" }, "Queued ", h("b", { testid: "queued" }, String(s.queued))),
    h("span", { class: "stat" }, "Oldest ", h("b", { testid: "oldest" }, age(s.oldest_unsynced_age_ms))),
    h("span", { class: "stat" }, "Photos ", h("b", { testid: "photos" }, String(s.photos_pending))),
    rejected > 0 ? h("span", { class: "stat bad", testid: "rejected-count" }, `⚠ ${rejected}`) : null,
  );
  const details = app.barOpen
    ? h(
        "div",
        { class: "bar-details" },
        h("p", {}, `${s.total_events} events on this device · last sync ${s.last_success_ms ? hhmm(s.last_success_ms) : "never"}`),
        s.last_error ? h("p", {}, `Last problem: ${s.last_error}`) : null,
        s.next_attempt_at_ms ? h("p", {}, `Next try ${hhmm(s.next_attempt_at_ms)}`) : null,
        s.blocked ? h("p", { class: "bad" }, `Sync stopped: ${s.blocked}`) : null,
        s.needs_reenroll ? h("p", { class: "bad" }, "The server no longer knows this device: enroll again.") : null,
        rejectedList(s),
      )
    : null;
  mount($bar, summary, details);
}

function rejectedList(s: StatusView): HTMLElement | null {
  if (s.rejected.length === 0) return null;
  return h(
    "ul",
    { class: "rejected", testid: "rejected-list" },
    ...s.rejected.map((r) =>
      h("li", {}, `#${r.device_seq} ${kindLabel(r.kind)}: ${r.status}${r.code ? ` (${r.code})` : ""}${r.detail ? ` — ${r.detail}` : ""}`),
    ),
  );
}

async function refreshStatus(): Promise<void> {
  if (!app.enrolled) return;
  try {
    app.status = await api.status();
    renderBar();
  } catch {
    // The next tick tries again; the bar keeps the last known state.
  }
}

function renderTabs(): void {
  if (!app.enrolled) {
    mount($tabs);
    $tabs.hidden = true;
    return;
  }
  $tabs.hidden = false;
  const tab = (name: ScreenName, label: string) =>
    h(
      "button",
      {
        class: "tab",
        testid: `tab-${name}`,
        "aria-current": app.screen.name === name ? "page" : null,
        onclick: () => void go(name, name === "scan" ? app.screen.stop_id : null),
      },
      label,
    );
  mount($tabs, tab("route", "Route"), tab("scan", "Scan"), tab("settings", "Settings"));
}

// ------------------------------------------------------------------------------ screens

function enrollmentScreen(): HTMLElement {
  const url = h("input", { id: "server-url", testid: "server-url", type: "url", inputmode: "url", autocomplete: "off", placeholder: "https://sync.example.org", value: app.serverUrl ?? "" });
  const code = h("input", { id: "enroll-code", testid: "enroll-code", autocomplete: "one-time-code", autocapitalize: "characters", placeholder: "Enrollment code" });
  const name = h("input", { id: "device-name", testid: "device-name", value: "Handheld" });
  const err = h("p", { class: "error", testid: "enroll-error", role: "alert" });
  const btn = h("button", { class: "primary", type: "submit", testid: "enroll-btn" }, "Enroll this device");
  const form = h(
    "form",
    {
      class: "card",
      onsubmit: async (ev: Event) => {
        ev.preventDefault();
        btn.disabled = true;
        btn.textContent = "Enrolling…";
        err.textContent = "";
        try {
          const snap = await api.enroll(url.value, code.value, name.value);
          app.enrolled = snap.enrolled;
          app.deviceId = snap.device_id;
          app.serverUrl = snap.server_url;
          await refreshStatus();
          await go("route");
        } catch (e) {
          err.textContent = errorText(e);
          btn.disabled = false;
          btn.textContent = "Enroll this device";
        }
      },
    },
    h("label", { for: "server-url" }, "Server URL"),
    url,
    h("label", { for: "enroll-code" }, "Enrollment code"),
    code,
    h("label", { for: "device-name" }, "Device name"),
    name,
    err,
    btn,
  );
  return h(
    "section",
    { testid: "screen-enroll" },
    h("div", { class: "brand" }, h("span", { class: "logo", "aria-hidden": "true" }), "Doorstep Courier"),
    h("p", { class: "muted" }, "Enroll once with the code from your dispatcher. After that the app works without any network; everything syncs when it can."),
    form,
  );
}

/** Expected arrival at each open stop: the route's order, ~6 min a stop, never before the window. */
function etas(route: RouteView, now: number): Map<StopId, number> {
  const out = new Map<StopId, number>();
  let t = now;
  for (const s of route.stops) {
    if (isTerminal(s.status) || s.moved_away) continue;
    t = Math.max(t + 6 * 60_000, s.window.start_ms);
    out.set(s.stop_id, t);
  }
  return out;
}

async function routeScreen(): Promise<HTMLElement> {
  const route = await api.route();
  if (!route) {
    return h(
      "section",
      { testid: "screen-route" },
      header("Today's route"),
      h("p", { class: "muted", testid: "route-empty" }, "No route on this device yet. It arrives with the next sync."),
    );
  }
  const done = route.stops.filter((s) => isTerminal(s.status)).length;
  const eta = etas(route, Date.now());
  const rows = route.stops.map((s) => {
    const e = eta.get(s.stop_id);
    return h(
      "li",
      {},
      h(
        "button",
        { class: "stop-row", testid: "stop-row", "data-stop-id": s.stop_id, onclick: () => void go("stop", s.stop_id) },
        h("span", { class: "seq" }, String(s.sequence)),
        h(
          "span",
          { class: "stop-main" },
          h("span", { class: "addr" }, s.address),
          h("span", { class: "sub" }, s.customer_name),
          h("span", { class: "sub" }, `Window ${windowText(s.window)}`, e ? ` · ETA ${hhmm(e)}` : "", s.moved_away ? " · moved away" : ""),
        ),
        h("span", { class: "stop-side" }, chip(s.status), s.unsynced_events > 0 ? h("span", { class: "unsynced", title: "not yet synced" }, `${s.unsynced_events} queued`) : null),
      ),
    );
  });
  const open = route.stops.some((s) => !isTerminal(s.status) && !s.moved_away);
  return h(
    "section",
    { testid: "screen-route" },
    header(`Today · ${route.day}`),
    h("p", { class: "progress", testid: "route-progress" }, `${done} of ${route.stops.length} stops done`),
    app.accepted ? acceptedBanner(app.accepted, () => void undoReplan()) : null,
    app.proposal
      ? replanPanel(route, app.proposal, { accept: () => void acceptReplan(), dismiss: () => void dismissReplan() })
      : open
        ? h("button", { class: "secondary replan", testid: "replan-btn", onclick: (ev: Event) => void askReplan(ev.currentTarget as HTMLButtonElement) }, "Re-plan remaining stops")
        : null,
    h("ol", { class: "stops", testid: "stop-list" }, ...rows),
  );
}

// ------------------------------------------------------------------------------ re-plan

async function askReplan(btn: HTMLButtonElement): Promise<void> {
  btn.disabled = true;
  btn.textContent = "Planning…";
  try {
    app.proposal = await api.proposeReroute();
  } catch (e) {
    toast(errorText(e));
  }
  await render();
}

async function acceptReplan(): Promise<void> {
  const p = app.proposal;
  if (!p) return;
  try {
    await api.acceptReroute(p.inputs_digest);
    app.accepted = p;
    app.proposal = null;
    void refreshStatus();
  } catch (e) {
    toast(errorText(e));
  }
  await render();
}

async function dismissReplan(): Promise<void> {
  const p = app.proposal;
  app.proposal = null;
  if (p) await api.dismissReroute(p.inputs_digest).catch(() => undefined);
  await render();
}

async function undoReplan(): Promise<void> {
  const p = app.accepted;
  if (!p) return;
  try {
    await api.undoReroute(p.inputs_digest);
    app.accepted = null;
    app.proposal = null;
    void refreshStatus();
  } catch (e) {
    toast(errorText(e));
  }
  await render();
}

async function loadStop(): Promise<StopDetail | null> {
  const id = app.screen.stop_id;
  if (!id) return null;
  try {
    return await api.stop(id);
  } catch (e) {
    toast(errorText(e));
    return null;
  }
}

function canArrive(d: StopDetail): boolean {
  return ["loaded", "out_for_delivery", "attempt_failed"].includes(d.summary.status.status);
}

async function stopScreen(): Promise<HTMLElement> {
  const d = await loadStop();
  if (!d) return routeScreen();
  const s = d.summary;
  const arrived = s.status.status === "arrived";
  const actions = h(
    "div",
    { class: "actions" },
    canArrive(d)
      ? h(
          "button",
          {
            class: "primary",
            testid: "arrive-btn",
            onclick: async () => {
              try {
                await api.arrive(s.stop_id);
                await render();
              } catch (e) {
                toast(errorText(e));
              }
            },
          },
          "I've arrived",
        )
      : null,
    arrived ? h("button", { class: "primary", testid: "attempt-btn", onclick: () => void go("attempt", s.stop_id) }, "Record attempt") : null,
    h("button", { class: "secondary", testid: "scan-stop-btn", onclick: () => void go("scan", s.stop_id) }, "Scan parcels"),
    h("button", { class: "secondary", testid: "notes-btn", onclick: () => void go("notes", s.stop_id) }, "Notes"),
  );
  const phases = new Map(d.view.parcels.map(([p, ph]) => [p, ph]));
  return h(
    "section",
    { testid: "screen-stop", "data-stop-id": s.stop_id },
    header(`${s.sequence}. ${s.address}`, () => void go("route")),
    h("div", { class: "card" }, h("p", { class: "big" }, s.customer_name), h("p", {}, `Window ${windowText(s.window)} · attempt ${s.next_attempt}`), chip(s.status)),
    actions,
    d.instructions ? section("Instructions", h("p", { testid: "instructions" }, d.instructions)) : null,
    section(
      "Access notes",
      d.view.access_notes.length === 0
        ? h("p", { class: "muted" }, "None")
        : h("ul", {}, ...d.view.access_notes.map((n) => h("li", {}, n))),
      d.view.access_notes.length > 1 ? h("p", { class: "warn-text" }, "Several versions: dispatch will pick one.") : null,
    ),
    section(
      "Parcels",
      h(
        "ul",
        { class: "parcels", testid: "parcels" },
        ...s.parcels.map((p) => h("li", {}, h("code", { testid: "parcel" }, p), h("span", { class: "sub" }, phases.get(p)?.replaceAll("_", " ") ?? "not scanned"))),
      ),
    ),
    d.view.notes.length > 0 ? section("Notes", h("ul", {}, ...d.view.notes.map((n) => h("li", {}, n)))) : null,
    section(
      "History",
      d.events.length === 0
        ? h("p", { class: "muted" }, "Nothing recorded yet")
        : h(
            "ul",
            { class: "history", testid: "history" },
            ...d.events.map((e) =>
              h(
                "li",
                {},
                h("span", {}, `${hhmm(e.created_at_ms)} ${kindLabel(e.kind)}`),
                h("span", { class: `sync ${e.server_status ?? "queued"}` }, e.server_status ?? "queued", e.code ? ` (${e.code})` : ""),
              ),
            ),
          ),
    ),
  );
}

function section(title: string, ...children: (Node | null)[]): HTMLElement {
  return h("section", { class: "block" }, h("h2", {}, title), ...children);
}

function scanScreen(): HTMLElement {
  const input = h("input", { id: "barcode", testid: "barcode-input", autocomplete: "off", autocapitalize: "characters", spellcheck: "false", placeholder: "Type or scan a barcode" });
  const phase = h(
    "select",
    { id: "phase", testid: "phase-select" },
    ...(["loaded", "out_for_delivery", "at_door", "returned"] as ScanPhase[]).map((p) =>
      h("option", { value: p, selected: p === app.scanPhase }, p.replaceAll("_", " ")),
    ),
  );
  const result = h("p", { class: "scan-result", testid: "scan-result", role: "status" });
  const recent = h("ul", { class: "recent", testid: "recent-scans" }, ...app.recentScans.map((r) => h("li", {}, r)));
  const submit = async (code: string) => {
    app.scanPhase = phase.value as ScanPhase;
    try {
      const r = await api.scan(code, app.scanPhase);
      const line = r.outcome === "recorded" ? `✓ ${code} ${app.scanPhase.replaceAll("_", " ")} (#${r.device_seq})` : `= ${code} already scanned, nothing new`;
      result.textContent = line;
      result.className = `scan-result ${r.outcome}`;
      result.dataset["outcome"] = r.outcome;
      result.dataset["barcode"] = code;
      app.recentScans = [line, ...app.recentScans].slice(0, 8);
      recent.prepend(h("li", {}, line));
      input.value = "";
      void refreshStatus();
    } catch (e) {
      result.textContent = `✗ ${errorText(e)}`;
      result.className = "scan-result error";
      result.dataset["outcome"] = "error";
      result.dataset["barcode"] = code;
    }
    input.focus();
  };
  const video = h("video", { class: "camera", playsinline: true, muted: true, hidden: true });
  const camera = app.hasCamera
    ? h(
        "button",
        {
          class: "secondary",
          type: "button",
          testid: "camera-btn",
          onclick: async () => {
            video.hidden = false;
            const { result: found } = scanWithCamera(video);
            const code = await found.catch(() => null);
            video.hidden = true;
            if (code) await submit(code);
          },
        },
        "Scan with camera",
      )
    : null;
  const form = h(
    "form",
    {
      class: "card",
      onsubmit: (ev: Event) => {
        ev.preventDefault();
        const code = input.value.trim();
        if (code) void submit(code);
      },
    },
    h("label", { for: "barcode" }, "Barcode"),
    input,
    h("label", { for: "phase" }, "Scan as"),
    phase,
    h("button", { class: "primary", type: "submit", testid: "scan-btn" }, "Record scan"),
    camera,
    video,
  );
  queueMicrotask(() => input.focus());
  return h(
    "section",
    { testid: "screen-scan" },
    header("Scan parcels", app.screen.stop_id ? () => void go("stop", app.screen.stop_id) : undefined),
    form,
    result,
    h("h2", {}, "This session"),
    recent,
  );
}

async function attemptScreen(): Promise<HTMLElement> {
  const d = await loadStop();
  if (!d) return routeScreen();
  const s = d.summary;
  const attempt = s.next_attempt;
  const confirm = h("div", { class: "confirm", testid: "attempt-confirm", role: "status", hidden: true });
  const recipient = h("input", { id: "recipient", testid: "recipient", placeholder: "Name (optional)" });
  const detail = h("input", { id: "fail-detail", testid: "fail-detail", placeholder: "Detail (optional)" });
  const methodButtons = METHODS.map(([m, label]) =>
    h(
      "button",
      {
        type: "button",
        class: "choice",
        "aria-pressed": String(app.method === m),
        "data-method": m,
        testid: `method-${m}`,
        onclick: (ev: Event) => {
          app.method = m;
          for (const b of methodButtons) b.setAttribute("aria-pressed", String(b === ev.currentTarget));
        },
      },
      label,
    ),
  );
  const reason = h(
    "select",
    { id: "reason", testid: "reason-select" },
    ...REASONS.map(([group, items]) => {
      const g = h("optgroup", { label: group }, ...items.map(([r, label]) => h("option", { value: r }, label)));
      return g;
    }),
  );
  const done = async (run: () => Promise<{ device_seq: number; outcome: string }>, text: string, t0: number) => {
    try {
      const r = await run();
      confirm.hidden = false;
      confirm.className = "confirm ok";
      confirm.textContent = `${text} — saved on this device (#${r.device_seq})${r.outcome === "duplicate" ? ", already recorded" : ""}`;
      confirm.dataset["ms"] = (performance.now() - t0).toFixed(2);
      confirm.dataset["seq"] = String(r.device_seq);
      for (const b of [deliver, fail]) b.disabled = true;
      next.hidden = false;
      confirm.scrollIntoView({ block: "center" });
      void refreshStatus();
    } catch (e) {
      confirm.hidden = false;
      confirm.className = "confirm error";
      confirm.textContent = errorText(e);
    }
  };
  const deliver = h(
    "button",
    {
      class: "primary big-btn",
      testid: "deliver-btn",
      onclick: () => {
        const t0 = performance.now();
        void done(() => api.deliver(s.stop_id, attempt, app.method, recipient.value || null), "Delivered", t0);
      },
    },
    "Delivered",
  );
  const fail = h(
    "button",
    {
      class: "danger big-btn",
      testid: "fail-btn",
      onclick: () => {
        const t0 = performance.now();
        const r = reason.value as FailureReason;
        void done(() => api.fail(s.stop_id, attempt, r, detail.value || null), "Failed attempt", t0);
      },
    },
    "Failed attempt",
  );
  const next = h("button", { class: "secondary", testid: "back-to-route", hidden: true, onclick: () => void go("route") }, "Back to route");
  return h(
    "section",
    { testid: "screen-attempt", "data-stop-id": s.stop_id },
    header(`Attempt ${attempt}`, () => void go("stop", s.stop_id)),
    h("p", { class: "big" }, `${s.sequence}. ${s.address}`),
    h("div", { class: "card" }, h("h2", {}, "Delivered"), h("div", { class: "choices", role: "group", "aria-label": "Delivery method" }, ...methodButtons), h("label", { for: "recipient" }, "Received by"), recipient, deliver),
    h("div", { class: "card" }, h("h2", {}, "Not delivered"), h("label", { for: "reason" }, "Reason"), reason, h("label", { for: "fail-detail" }, "Detail"), detail, fail),
    confirm,
    next,
  );
}

async function notesScreen(): Promise<HTMLElement> {
  const d = await loadStop();
  if (!d) return routeScreen();
  const s = d.summary;
  app.noteId ??= await api.newNoteId();
  const text = h("textarea", { id: "note", testid: "note-text", rows: 4, placeholder: "What should the next driver know?" });
  const status = h("p", { testid: "note-status", role: "status" });
  const save = h(
    "button",
    {
      class: "primary",
      testid: "note-save",
      onclick: async () => {
        const id = app.noteId;
        if (!id) return;
        try {
          const r = await api.addNote(s.stop_id, id, text.value);
          status.textContent = r.outcome === "recorded" ? `Saved (#${r.device_seq})` : "Already saved";
          app.noteId = await api.newNoteId();
          await render();
        } catch (e) {
          status.textContent = errorText(e);
        }
      },
    },
    "Save note",
  );
  return h(
    "section",
    { testid: "screen-notes" },
    header("Notes", () => void go("stop", s.stop_id)),
    h("p", { class: "big" }, `${s.sequence}. ${s.address}`),
    h("div", { class: "card" }, h("label", { for: "note" }, "New note"), text, save, status),
    section("On this stop", d.view.notes.length === 0 ? h("p", { class: "muted" }, "No notes yet") : h("ul", { testid: "notes-list" }, ...d.view.notes.map((n) => h("li", {}, n)))),
  );
}

const MODES: ReadonlyArray<[NetworkMode, string, string]> = [
  ["normal", "Normal", "the real network"],
  ["offline", "Offline", "no network at all"],
  ["flaky", "Flaky", "loss, lost answers, duplicates, 50–400 ms, 2 Mbit/s"],
  ["outage", "Outage", "no network for the next N seconds"],
];

function fieldTestPanel(ft: FieldTest): HTMLElement {
  const st = ft.stats;
  const rows: Array<[string, string]> = [
    ["Mode", ft.mode + (ft.outage ? ` until ${hhmm(ft.outage.end_ms)}` : "")],
    ["Loss (req / answer)", `${Math.round(ft.profile.request_loss * 100)} % / ${Math.round(ft.profile.response_loss * 100)} %`],
    ["Duplicates", `${Math.round(ft.profile.duplicate * 100)} %`],
    ["Latency", `${ft.profile.latency_min_ms}–${ft.profile.latency_max_ms} ms`],
    ["Bandwidth", ft.profile.bandwidth_bps ? `${(ft.profile.bandwidth_bps / 1e6).toFixed(1)} Mbit/s` : "unlimited"],
  ];
  if (st) {
    rows.push(
      ["Requests", String(st.requests)],
      ["Refused (offline)", String(st.refused_offline)],
      ["Lost requests", String(st.lost_requests)],
      ["Lost answers", String(st.lost_responses)],
      ["Duplicated", String(st.duplicated)],
      ["Sent / received", `${bytes(st.bytes_up)} / ${bytes(st.bytes_down)}`],
    );
  }
  const s = app.status;
  if (s) {
    rows.push(
      ["Circuit breaker", s.breaker.state.replace("_", " ")],
      ["Next try", s.next_attempt_at_ms ? hhmm(s.next_attempt_at_ms) : "—"],
      ["Last problem", s.last_error ?? "—"],
    );
  }
  return h("table", { class: "kv", testid: "net-activity" }, ...rows.map(([k, v]) => h("tr", {}, h("th", { scope: "row" }, k), h("td", {}, v))));
}

async function settingsScreen(): Promise<HTMLElement> {
  const ft = await api.fieldTest();
  const outageS = h("input", { id: "outage-s", testid: "outage-seconds", type: "number", min: 1, max: 86400, value: 60, inputmode: "numeric" });
  const modeButtons = MODES.map(([m, label, hint]) =>
    h(
      "button",
      {
        class: "choice mode",
        "aria-pressed": String(ft.mode === m),
        testid: `mode-${m}`,
        onclick: async () => {
          try {
            await api.setNetwork(m, m === "outage" ? Number(outageS.value) || 60 : null);
            await refreshStatus();
            await render();
          } catch (e) {
            toast(errorText(e));
          }
        },
      },
      h("b", {}, label),
      h("span", { class: "sub" }, hint),
    ),
  );
  const panel = h("div", { testid: "field-test-panel" }, fieldTestPanel(ft));
  const s = app.status;
  return h(
    "section",
    { testid: "screen-settings" },
    header("Settings"),
    section("Field-test mode: network", h("div", { class: "choices modes", testid: "network-modes" }, ...modeButtons), h("label", { for: "outage-s" }, "Outage length (s)"), outageS),
    section("What the network layer is doing", panel),
    section(
      "Sync",
      h("button", { class: "secondary", testid: "sync-now", onclick: async () => { try { await api.syncNow(); } catch (e) { toast(errorText(e)); } } }, "Sync now"),
      s ? (rejectedList(s) ?? h("p", { class: "muted" }, "No rejected items")) : null,
    ),
    section("Device", h("p", { class: "sub", testid: "device-id" }, `Device ${app.deviceId ?? "—"}`), h("p", { class: "sub" }, `Server ${app.serverUrl ?? "—"}`)),
  );
}

// ------------------------------------------------------------------------------ render loop

let renderSeq = 0;

async function render(): Promise<void> {
  const mine = ++renderSeq;
  let el: HTMLElement;
  if (!app.enrolled) {
    el = enrollmentScreen();
  } else {
    switch (app.screen.name) {
      case "route":
        el = await routeScreen();
        break;
      case "stop":
        el = await stopScreen();
        break;
      case "scan":
        el = scanScreen();
        break;
      case "attempt":
        el = await attemptScreen();
        break;
      case "notes":
        el = await notesScreen();
        break;
      case "settings":
        el = await settingsScreen();
        break;
    }
  }
  if (mine !== renderSeq) return; // a newer navigation won
  mount($screen, el);
  document.body.dataset["screen"] = app.enrolled ? app.screen.name : "enroll";
  renderTabs();
  renderBar();
}

async function refreshFieldTest(): Promise<void> {
  if (app.screen.name !== "settings" || !app.enrolled) return;
  const panel = document.querySelector<HTMLElement>('[data-testid="field-test-panel"]');
  if (!panel) return;
  try {
    mount(panel, fieldTestPanel(await api.fieldTest()));
  } catch {
    // keep the last picture
  }
}

async function start(): Promise<void> {
  try {
    const snap = await api.appState();
    app.enrolled = snap.enrolled;
    app.deviceId = snap.device_id;
    app.serverUrl = snap.server_url;
    // A screen this UI does not have (saved by another version) opens the route.
    const name = snap.screen.name;
    app.screen = isScreenName(name) ? { name, stop_id: snap.screen.stop_id } : { name: "route", stop_id: null };
    app.accepted = await api.acceptedReroute();
  } catch (e) {
    toast(errorText(e));
  }
  app.hasCamera = await cameraAvailable();
  await refreshStatus();
  await render();
  window.setInterval(() => {
    void refreshStatus();
    void refreshFieldTest();
  }, 1000);
}

void start();
