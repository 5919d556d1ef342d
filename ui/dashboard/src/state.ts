// Shared client state: the latest fleet snapshot, patched in place by live pushes, and the
// server clock (so "offline for 3m" is measured against the server, not this browser).

import { get } from "./api";
import type { FleetSnapshot } from "../../src/generated/FleetSnapshot";
import type { DeviceHealth } from "../../src/generated/DeviceHealth";
import type { FleetCourier } from "../../src/generated/FleetCourier";
import type { LiveEvent } from "../../src/generated/LiveEvent";

export type Listener = () => void;

export type CourierStatus = "online" | "offline" | "never";

class FleetState {
  snapshot: FleetSnapshot | null = null;
  /** serverTime - Date.now(), measured at the last snapshot. */
  skewMs = 0;
  /** Last time (Date.now()) a live message touched each courier, for the perf harness. */
  private listeners = new Set<Listener>();
  private loading: Promise<void> | null = null;
  private again = false;

  subscribe(f: Listener): () => void {
    this.listeners.add(f);
    return () => this.listeners.delete(f);
  }

  private emit(): void {
    for (const f of this.listeners) f();
  }

  serverNow(): number {
    return Date.now() + this.skewMs;
  }

  /** Reloads the snapshot; concurrent calls coalesce into at most one more load. */
  reload(): Promise<void> {
    if (this.loading) {
      this.again = true;
      return this.loading;
    }
    this.loading = (async () => {
      do {
        this.again = false;
        const s = await get<FleetSnapshot>("/v1/dispatch/fleet");
        this.snapshot = s;
        this.skewMs = s.server_time_ms - Date.now();
        this.emit();
      } while (this.again);
    })().finally(() => {
      this.loading = null;
    });
    return this.loading;
  }

  courier(id: string): FleetCourier | undefined {
    return this.snapshot?.couriers.find((c) => c.courier_id === id);
  }

  /** Applies a live push to the device it came from, without a round trip. */
  applyLive(e: LiveEvent): "patched" | "reload" | "ignored" {
    if (e.type === "resync") return "reload";
    if (e.type === "office") return "reload";
    if (e.type === "blob_stored") return "ignored";
    const c = this.courier(e.courier_id);
    if (!c) return "reload";
    let d: DeviceHealth | undefined = c.devices.find((x) => x.device_id === e.device_id);
    if (!d) return "reload";
    d.last_contact_ms = e.server_time_ms;
    d.last_applied_seq = e.last_applied_seq;
    if (e.queue) d.queue = e.queue;
    this.skewMs = e.server_time_ms - Date.now();
    // A snapshot read still in flight may predate this push and would undo the patch when it
    // lands: read once more after it (the push was committed before it was announced).
    if (this.loading) this.again = true;
    this.emit();
    return e.applied > 0 ? "reload" : "patched";
  }

  status(c: FleetCourier): { status: CourierStatus; since: number | null; device: DeviceHealth | null } {
    const now = this.serverNow();
    const after = this.snapshot?.offline_after_ms ?? 60_000;
    let best: DeviceHealth | null = null;
    for (const d of c.devices) {
      if (d.last_contact_ms !== null && (best === null || (best.last_contact_ms ?? 0) < d.last_contact_ms)) best = d;
    }
    if (!best || best.last_contact_ms === null) return { status: "never", since: null, device: c.devices[0] ?? null };
    const online = now - best.last_contact_ms <= after;
    return { status: online ? "online" : "offline", since: best.last_contact_ms, device: best };
  }
}

export const fleet = new FleetState();
