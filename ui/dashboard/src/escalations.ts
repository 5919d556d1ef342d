// The escalation queue: open cases by priority, each with its context and the actions a
// dispatcher can take. Every action is an idempotent command whose key is chosen once per user
// action (see Action in api.ts): a double click or a retry applies once.

import { Action, ApiProblem, get } from "./api";
import { h, replace } from "./dom";
import { dateTime, label, windowText } from "./format";
import { fleet } from "./state";
import { describe } from "./stop";
import { statusChip } from "./stopstatus";
import type { Escalation } from "../../src/generated/Escalation";
import type { StopContext } from "../../src/generated/StopContext";
import type { StopDetail } from "../../src/generated/StopDetail";
import type { ContactResult } from "../../src/generated/ContactResult";

const HINT: Record<Escalation["kind"], string> = {
  intent_conflict: "The same action arrived twice with different facts. Pick the value that is true.",
  rejected_event: "A device sent an event the server could not apply.",
  delivered_after_cancel: "The courier delivered a stop the office had cancelled. The delivery stands.",
  delivered_after_reassign: "The courier delivered a stop the office had moved to another route. The delivery stands.",
  access_notes_diverged: "Concurrent edits of the access notes: pick the one to keep.",
  attempts_exhausted: "The attempt budget is spent: reschedule, return to depot or contact the customer.",
  terminal_failure: "The attempt failed for a reason automation must not retry.",
  clock_skew: "A device clock is off by more than the bound.",
  customer_unreachable: "Two contact attempts failed: reschedule, return to depot or try again.",
  no_access_instructions: "The courier could not get in and there are no access instructions: ask the customer for a door code or gate instructions.",
  parcel_mis_sorted: "A courier scanned a parcel that belongs to another stop: get it to the right courier. The right courier's own scan is not blocked.",
};

/** A form whose submissions share one Action while the request body is unchanged. */
function actionForm(
  name: string,
  fields: HTMLElement[],
  build: () => { path: string; body: unknown } | string,
  done: (msg: string) => void,
): HTMLElement {
  let action: Action | null = null;
  let bodyJson = "";
  const status = h("p", { class: "form-status", role: "status" });
  const button = h("button", { type: "submit", class: "primary" }, name);
  const form = h(
    "form",
    {
      class: "action-form",
      "data-action": name,
      onsubmit: (ev: Event) => {
        ev.preventDefault();
        const req = build();
        if (typeof req === "string") {
          status.textContent = req;
          return;
        }
        const json = JSON.stringify([req.path, req.body]);
        if (!action || json !== bodyJson) {
          action = new Action(req.path, req.body);
          bodyJson = json;
        }
        status.textContent = "Sending…";
        action.send().then(
          (r) => {
            const msg = r.outcome === "applied" ? `${name}: done.` : `${name}: already done before (nothing changed).`;
            status.textContent = msg;
            done(msg);
          },
          (e: unknown) => {
            status.textContent =
              e instanceof ApiProblem && e.status === 409 && e.problem?.code === "idempotency_key_in_progress"
                ? "Still being processed…"
                : `Failed: ${e instanceof Error ? e.message : String(e)}`;
          },
        );
      },
    },
    ...fields,
    button,
    status,
  );
  return form;
}

function field(labelText: string, input: HTMLElement): HTMLElement {
  return h("label", { class: "field" }, h("span", {}, labelText), input);
}

function tomorrowAt(hours: number): string {
  const d = new Date(Date.now() + 86_400_000);
  d.setHours(hours, 0, 0, 0);
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:00`;
}

function actions(esc: Escalation, detail: StopDetail | null, ctx: StopContext | null, reload: (msg: string) => void): HTMLElement[] {
  const out: HTMLElement[] = [];
  const stop = esc.stop_id;
  // Pick one of conflicting values (and resolve).
  const candidates: string[] = [];
  if (detail) {
    if (esc.kind === "access_notes_diverged") candidates.push(...detail.view.access_notes);
    if (esc.kind === "intent_conflict" && esc.event_id) {
      const bad = detail.events.find((e) => e.event_id === esc.event_id);
      if (bad) {
        for (const e of detail.events)
          if (e.intent_key === bad.intent_key && (e.status === "applied" || e.event_id === bad.event_id)) candidates.push(describe(e));
      }
    }
  }
  const resolution = h("input", { type: "text", name: "resolution", value: "Checked with the courier", required: true });
  const choices = Array.from(new Set(candidates));
  const choiceInputs = choices.map((c, i) =>
    h("label", { class: "check choice" }, h("input", { type: "radio", name: `pick-${esc.escalation_id}`, value: c, checked: i === 0 }), c),
  );
  out.push(
    actionForm(
      choices.length > 1 ? "Pick value and resolve" : "Resolve",
      [
        choices.length > 1 ? h("fieldset", {}, h("legend", {}, "Which value is true?"), choiceInputs) : h("span"),
        field("Resolution", resolution),
      ],
      () => {
        const picked = choiceInputs.map((l) => l.querySelector("input")).find((i) => i?.checked)?.value ?? null;
        const text = (resolution as HTMLInputElement).value.trim();
        if (!text) return "Write what was decided.";
        return {
          path: `/v1/dispatch/escalations/${esc.escalation_id}/resolve`,
          body: { resolution: text, chosen_value: choices.length > 1 ? picked : null },
        };
      },
      reload,
    ),
  );
  if (!stop) return out;
  // Contact customer.
  const result = h(
    "select",
    { name: "result" },
    (["no_answer", "reached", "left_message", "wrong_number"] as ContactResult[]).map((r) => h("option", { value: r }, label(r))),
  );
  const message = h("input", { type: "text", name: "message", placeholder: "What was agreed" });
  let noteId = crypto.randomUUID();
  out.push(
    actionForm(
      "Log customer contact",
      [field("Result", result), field("Message", message)],
      () => ({
        path: `/v1/dispatch/stops/${stop}/contact`,
        body: { note_id: noteId, result: (result as HTMLSelectElement).value, message: (message as HTMLInputElement).value },
      }),
      (m) => {
        noteId = crypto.randomUUID();
        reload(m);
      },
    ),
  );
  // Reschedule.
  const from = h("input", { type: "datetime-local", name: "from", value: tomorrowAt(9) });
  const to = h("input", { type: "datetime-local", name: "to", value: tomorrowAt(12) });
  out.push(
    actionForm(
      "Reschedule",
      [field("From", from), field("To", to)],
      () => {
        const s = new Date((from as HTMLInputElement).value).getTime();
        const e = new Date((to as HTMLInputElement).value).getTime();
        if (!(s < e)) return "The window must end after it starts.";
        return { path: `/v1/dispatch/stops/${stop}/reschedule`, body: { window: { start_ms: s, end_ms: e } } };
      },
      reload,
    ),
  );
  // Reassign.
  const routes = (fleet.snapshot?.couriers ?? []).filter((c) => c.route_id && c.courier_id !== ctx?.courier_id);
  const to_route = h("select", { name: "to_route" }, routes.map((c) => h("option", { value: c.route_id ?? "" }, `${c.name} (${c.region})`)));
  out.push(
    actionForm(
      "Reassign",
      [field("To courier", to_route)],
      () => ({ path: `/v1/dispatch/stops/${stop}/reassign`, body: { to_route: (to_route as HTMLSelectElement).value } }),
      reload,
    ),
  );
  // Return to depot.
  const reason = h("input", { type: "text", name: "reason", value: "Attempts exhausted" });
  out.push(
    actionForm(
      "Return to depot",
      [field("Reason", reason)],
      () => ({ path: `/v1/dispatch/stops/${stop}/return-to-depot`, body: { reason: (reason as HTMLInputElement).value } }),
      reload,
    ),
  );
  return out;
}

async function context(esc: Escalation, reload: (msg: string) => void): Promise<HTMLElement> {
  let detail: StopDetail | null = null;
  let ctx: StopContext | null = null;
  if (esc.stop_id) {
    [detail, ctx] = await Promise.all([
      get<StopDetail>(`/v1/dispatch/stops/${esc.stop_id}`).catch(() => null),
      get<StopContext>(`/v1/dispatch/stops/${esc.stop_id}/context`).catch(() => null),
    ]);
  }
  const contacts = detail?.view.notes.filter((n) => n.startsWith("Dispatch (")) ?? [];
  const attempts = detail?.events.filter((e) => e.kind === "delivery_attempted" || e.kind === "arrived_at_stop") ?? [];
  return h(
    "div",
    { class: "context" },
    ctx
      ? h(
          "p",
          {},
          statusChip(detail?.view.status ?? ctx.stop.status),
          ` ${ctx.stop.address} · ${ctx.stop.customer_name} · window ${windowText(detail?.view.window ?? ctx.stop.window)} · courier ${ctx.courier_name}`,
        )
      : null,
    h(
      "p",
      {},
      "Access notes: ",
      detail && detail.view.access_notes.length
        ? detail.view.access_notes.map((n) => `“${n}”`).join(" vs ")
        : ctx?.stop.access_notes ?? h("span", { class: "missing" }, "none on file"),
    ),
    h("p", {}, `Contact attempts: ${contacts.length}`, contacts.length ? h("ul", {}, contacts.map((c) => h("li", {}, c))) : null),
    attempts.length
      ? h("details", {}, h("summary", {}, `Route history (${attempts.length})`), h("ul", {}, attempts.map((e) => h("li", {}, describe(e)))))
      : h("p", { class: "muted" }, "No attempts recorded yet."),
    esc.stop_id ? h("p", {}, h("a", { href: `#/stops/${esc.stop_id}` }, "Open the stop timeline and evidence →")) : null,
    h("div", { class: "actions" }, actions(esc, detail, ctx, reload)),
  );
}

function card(esc: Escalation, flash: HTMLElement, onChange: () => void): HTMLElement {
  const body = h("div", { class: "esc-body" });
  const open = h(
    "button",
    {
      type: "button",
      class: "secondary",
      "aria-expanded": "false",
      onclick: async () => {
        if (open.getAttribute("aria-expanded") === "true") {
          open.setAttribute("aria-expanded", "false");
          replace(body);
          return;
        }
        open.setAttribute("aria-expanded", "true");
        replace(body, h("p", {}, "Loading context…"));
        replace(
          body,
          await context(esc, (msg) => {
            flash.textContent = msg;
            onChange();
          }),
        );
      },
    },
    "Context & actions",
  );
  return h(
    "li",
    { class: `card esc p${esc.priority}`, "data-escalation-id": esc.escalation_id, "data-kind": esc.kind },
    h(
      "div",
      { class: "esc-head" },
      h("span", { class: `prio prio-${esc.priority}` }, `P${esc.priority}`),
      h("strong", {}, label(esc.kind)),
      h("span", { class: "muted" }, `opened ${dateTime(esc.opened_at_ms)}`),
    ),
    h("p", {}, esc.detail),
    h("p", { class: "muted" }, HINT[esc.kind]),
    open,
    body,
  );
}

/**
 * The queue screen. `refresh()` reconciles the list in place: new escalations are inserted in
 * priority order and resolved ones removed, while the cards that stay keep their DOM (an open
 * form and what was typed into it survive a live update).
 */
export class EscalationQueue {
  readonly el = h("section", { class: "escalations", "data-testid": "escalations" });
  private readonly title = h("h1", {}, "Escalations");
  private readonly flash = h("p", { role: "status", class: "flash" });
  private readonly list = h("ol", { class: "esc-list" });
  private readonly empty = h("p", { "data-testid": "no-escalations" }, "Nothing needs a human right now.");
  private readonly cards = new Map<string, HTMLElement>();
  private inflight: Promise<void> | null = null;
  private again = false;

  constructor(private readonly onChange: () => void) {
    replace(this.el, this.title, this.flash, this.list);
  }

  /** Fetches the open escalations; calls made while one is in flight coalesce into one more. */
  refresh(): Promise<void> {
    if (this.inflight) {
      this.again = true;
      return this.inflight;
    }
    this.inflight = this.load().finally(() => {
      this.inflight = null;
      if (this.again) {
        this.again = false;
        void this.refresh();
      }
    });
    return this.inflight;
  }

  private async load(): Promise<void> {
    const open = await get<Escalation[]>("/v1/dispatch/escalations");
    const keep = new Set(open.map((e) => e.escalation_id));
    for (const [id, el] of this.cards) {
      if (!keep.has(id)) {
        el.remove();
        this.cards.delete(id);
      }
    }
    let cursor = this.list.firstElementChild;
    for (const esc of open) {
      let el = this.cards.get(esc.escalation_id);
      if (!el) {
        el = card(esc, this.flash, this.onChange);
        this.cards.set(esc.escalation_id, el);
      }
      if (el === cursor) cursor = cursor.nextElementSibling;
      else this.list.insertBefore(el, cursor);
    }
    this.title.textContent = `Escalations (${open.length} open)`;
    if (open.length) this.empty.remove();
    else this.el.append(this.empty);
  }
}

export async function escalationsView(onChange: () => void): Promise<EscalationQueue> {
  const queue = new EscalationQueue(onChange);
  await queue.refresh();
  return queue;
}
