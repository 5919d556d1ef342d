// The live feed: a single-use ticket (EventSource cannot send an Authorization header), then
// Server-Sent Events. Reconnects with a fresh ticket after an error, with a capped backoff.

import { post } from "./api";
import type { LiveEvent } from "../../src/generated/LiveEvent";
import type { LiveTicket } from "../../src/generated/LiveTicket";

export type LiveState = "connecting" | "live" | "reconnecting";

export class LiveFeed {
  private source: EventSource | null = null;
  private stopped = false;
  private failures = 0;
  private timer: number | undefined;

  constructor(
    private readonly onEvent: (e: LiveEvent) => void,
    private readonly onState: (s: LiveState) => void,
    /** Called when the stream (re)opens: anything may have been missed, reload. */
    private readonly onOpen: () => void,
  ) {}

  start(): void {
    this.stopped = false;
    void this.connect();
  }

  stop(): void {
    this.stopped = true;
    window.clearTimeout(this.timer);
    this.source?.close();
    this.source = null;
  }

  private async connect(): Promise<void> {
    this.onState(this.failures === 0 ? "connecting" : "reconnecting");
    let ticket: LiveTicket;
    try {
      ticket = await post<LiveTicket>("/v1/dispatch/live/ticket", {});
    } catch {
      this.retry();
      return;
    }
    if (this.stopped) return;
    const es = new EventSource(`/v1/dispatch/live?ticket=${encodeURIComponent(ticket.ticket)}`);
    this.source = es;
    es.onopen = () => {
      this.failures = 0;
      this.onState("live");
      this.onOpen();
    };
    es.onmessage = (m: MessageEvent<string>) => {
      try {
        this.onEvent(JSON.parse(m.data) as LiveEvent);
      } catch {
        // A message we cannot read is ignored; the next reload corrects the view.
      }
    };
    es.onerror = () => {
      es.close();
      if (this.source === es) this.source = null;
      this.retry();
    };
  }

  private retry(): void {
    if (this.stopped) return;
    this.failures += 1;
    this.onState("reconnecting");
    const delay = Math.min(10_000, 500 * 2 ** Math.min(this.failures, 5)) * (0.5 + Math.random() / 2);
    this.timer = window.setTimeout(() => void this.connect(), delay);
  }
}
