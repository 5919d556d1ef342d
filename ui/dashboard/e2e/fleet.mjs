// @ts-check
// A simulated fleet for the browser tests: the real doorstep-server binary, a demo world from
// `demo-seed`, and devices that enroll with real codes and push real event envelopes over HTTP.

import { spawn, execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { randomBytes, createHash, generateKeyPairSync, sign as edSign } from "node:crypto";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const here = dirname(fileURLToPath(import.meta.url));
export const repoRoot = resolve(here, "../../..");
export const serverBin = process.env.DOORSTEP_SERVER_BIN ?? join(repoRoot, "target/debug/doorstep-server");
export const uiDir = resolve(here, "../dist");

/** A UUIDv7 (RFC 9562): 48-bit Unix ms, version 7, variant 10, random rest. */
export function uuidv7(ms = Date.now()) {
  const b = randomBytes(16);
  const t = BigInt(ms);
  for (let i = 0; i < 6; i++) b[i] = Number((t >> BigInt(8 * (5 - i))) & 0xffn);
  b[6] = (b[6] & 0x0f) | 0x70;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = b.toString("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** JSON with object keys sorted and no whitespace, as `doorstep_shared::intent::canonical_json`. */
export function canonicalJson(v) {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(",")}]`;
  if (v !== null && typeof v === "object") {
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(v[k])}`)
      .join(",")}}`;
  }
  return JSON.stringify(v);
}

/** @param {string | Buffer} text */
export function sha256(text) {
  return createHash("sha256").update(text).digest("hex");
}

/**
 * Seeds a world and starts the server on a free port.
 * @param {{couriers: number, stops: number, env?: Record<string,string>}} opts
 */
export async function startServer(opts) {
  const dir = mkdtempSync(join(tmpdir(), "doorstep-e2e-"));
  const db = `sqlite://${join(dir, "doorstep.db")}`;
  const { stdout } = await promisify(execFile)(
    serverBin,
    ["demo-seed", "--database", db, "--couriers", String(opts.couriers), "--stops", String(opts.stops)],
    { maxBuffer: 64 * 1024 * 1024, env: { ...process.env, RUST_LOG: "warn" } },
  );
  const seed = JSON.parse(stdout);
  const child = spawn(serverBin, ["serve", "--listen", "127.0.0.1:0", "--database", db, "--ui-dir", uiDir], {
    env: { ...process.env, RUST_LOG: "warn", DOORSTEP_BLOB_DIR: join(dir, "blobs"), ...(opts.env ?? {}) },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const url = await new Promise((ok, fail) => {
    let buf = "";
    child.stdout.on("data", (d) => {
      buf += d;
      const m = buf.match(/listening on (http:\/\/\S+)/);
      if (m) ok(m[1]);
    });
    child.on("exit", (code) => fail(new Error(`doorstep-server exited with ${code} before listening`)));
  });
  return {
    url: /** @type {string} */ (url),
    seed,
    async stop() {
      child.kill("SIGINT");
      await new Promise((r) => child.once("exit", r));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** One courier's handheld, speaking the device API. */
export class Device {
  /** @param {string} base */
  constructor(base) {
    this.base = base;
    this.seq = 0;
    this.logical = 0;
    /** @type {string|null} */ this.token = null;
    /** @type {string|null} */ this.deviceId = null;
    /** @type {any[]} */ this.outbox = [];
  }

  /** Enrolls; with `signing`, the device gets an ed25519 key and registers its public half. */
  async enroll(code, name, signing = false) {
    let publicKey = null;
    if (signing) {
      this.keys = generateKeyPairSync("ed25519");
      publicKey = Buffer.from(/** @type {string} */ (this.keys.publicKey.export({ format: "jwk" }).x), "base64url").toString("hex");
      /** Statement digest of this device's previous signed proof: the evidence chain. */
      this.evidenceHead = "";
    }
    const r = await fetch(`${this.base}/v1/enroll`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ code, device_name: name, public_key: publicKey }),
    });
    if (!r.ok) throw new Error(`enroll: ${r.status} ${await r.text()}`);
    const j = await r.json();
    this.token = j.token;
    this.deviceId = j.device_id;
    this.courierId = j.courier_id;
    return j;
  }

  async route(routeId) {
    const r = await fetch(`${this.base}/v1/routes/${routeId}`, { headers: { Authorization: `Bearer ${this.token}` } });
    if (!r.ok) throw new Error(`route: ${r.status}`);
    return r.json();
  }

  /** Builds an envelope exactly as the device would (intent keys as doorstep_shared::intent). */
  event(kind, payload, intentKey) {
    const now = Date.now();
    this.seq += 1;
    this.logical += 1;
    return {
      event_id: uuidv7(now),
      device_id: this.deviceId,
      device_seq: this.seq,
      intent_key: intentKey,
      schema_version: 1,
      device_time_ms: now,
      hlc: { wall_ms: now, logical: this.logical },
      blob_digests: kind === "proof_captured" ? [...payload.photos, ...payload.thumbnails] : [],
      kind,
      payload,
    };
  }

  scan(stop, parcel, phase) {
    return this.event("parcel_scanned", { stop_id: stop, parcel, phase }, `scan:${parcel}:${phase}`);
  }
  arrive(stop, attempt) {
    return this.event("arrived_at_stop", { stop_id: stop, attempt, location: null }, `arrive:${stop}:${attempt}`);
  }
  /** A debounced beacon sighting tagged with `stop` (as the device's registry tags it). */
  beacon(stop, beaconId, rssi, txPower) {
    const windowStart = Date.now();
    return this.event(
      "beacon_sighted",
      { stop_id: stop, protocol: "i_beacon", beacon_id: beaconId, window_start_ms: windowStart, sightings: 4, rssi_dbm: rssi, tx_power_dbm: txPower },
      `beacon:${this.deviceId}:ibeacon:${beaconId}:${windowStart}`,
    );
  }
  /** A location fix taken now at `location`. */
  fix(location) {
    const at = Date.now();
    return this.event("location_fixed", { location, accuracy_m: 5, fix_time_ms: at }, `location:${this.deviceId}:${at}`);
  }
  attempt(stop, n, outcome) {
    return this.event("delivery_attempted", { stop_id: stop, attempt: n, outcome }, `attempt:${stop}:${n}`);
  }
  proof(stop, n, thumbnails) {
    return this.event(
      "proof_captured",
      { stop_id: stop, attempt: n, photos: [], thumbnails, recipient_name: "A. Recipient", location: null, signature: null },
      `proof:${stop}:${n}`,
    );
  }

  /**
   * A signed proof of delivery, built like the device's outbox does: the canonical statement of
   * `doorstep_shared::evidence` (device, stop, attempt, digests, recipient, location, HLC stamp,
   * link to the previous statement), its SHA-256, and an ed25519 signature of that hex digest.
   * `prevLink` overrides the chain link (to forge a broken chain).
   * @param {string} stop @param {number} n @param {string[]} photos @param {string[]} thumbnails
   * @param {string} [prevLink]
   */
  signedProof(stop, n, photos, thumbnails, prevLink) {
    if (!this.keys) throw new Error("enroll with signing = true first");
    const payload = { stop_id: stop, attempt: n, photos, thumbnails, recipient_name: "A. Recipient", location: null, signature: null };
    const ev = this.event("proof_captured", payload, `proof:${stop}:${n}`);
    const link = prevLink ?? this.evidenceHead;
    const statement = {
      v: 1,
      device_id: this.deviceId,
      stop_id: stop,
      attempt: n,
      photos,
      thumbnails,
      recipient_name: payload.recipient_name,
      location: null,
      hlc: ev.hlc,
      prev_link: link,
    };
    const digest = sha256(canonicalJson(statement));
    const pub = Buffer.from(/** @type {string} */ (this.keys.publicKey.export({ format: "jwk" }).x), "base64url").toString("hex");
    ev.payload.signature = {
      public_key: pub,
      statement_digest: digest,
      prev_link: link,
      signature: edSign(null, Buffer.from(digest), this.keys.privateKey).toString("hex"),
    };
    this.evidenceHead = digest;
    return ev;
  }

  /**
   * Uploads a blob through the resumable upload API in one chunk. Returns its digest.
   * @param {Buffer} bytes
   */
  async upload(bytes) {
    const digest = sha256(bytes);
    const auth = { Authorization: `Bearer ${this.token}` };
    const r = await fetch(`${this.base}/v1/uploads`, {
      method: "POST",
      headers: { ...auth, "Content-Type": "application/json" },
      body: JSON.stringify({ digest, size: bytes.length }),
    });
    if (r.status === 200) return digest;
    if (r.status !== 201) throw new Error(`upload create: ${r.status} ${await r.text()}`);
    const location = /** @type {string} */ (r.headers.get("location"));
    const p = await fetch(`${this.base}${location}`, {
      method: "PATCH",
      headers: { ...auth, "Upload-Offset": "0", "Upload-Checksum": `sha256 ${digest}`, "Content-Type": "application/offset+octet-stream" },
      body: bytes,
    });
    if (p.status !== 204 || p.headers.get("upload-complete") !== "true") throw new Error(`upload: ${p.status} ${await p.text()}`);
    return digest;
  }

  /**
   * Pushes `events` (and reports its queue). Returns the parsed response.
   * @param {any[]} events
   * @param {{queued_events:number, oldest_unsynced_ms:number|null, photos_pending:number, rejected_events:number}|null} queue
   */
  async push(events, queue = { queued_events: 0, oldest_unsynced_ms: null, photos_pending: 0, rejected_events: 0 }) {
    const body = JSON.stringify({ device_id: this.deviceId, sent_at_ms: Date.now(), events, queue });
    const r = await fetch(`${this.base}/v1/sync/push`, {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${this.token}` },
      body,
    });
    if (!r.ok) throw new Error(`push: ${r.status} ${await r.text()}`);
    return r.json();
  }

  /** Loads, takes out and delivers (or fails) one stop: the events a real app would send. */
  visit(stop, parcels, n, outcome) {
    const evs = [];
    if (n === 1) {
      for (const p of parcels) evs.push(this.scan(stop, p, "loaded"));
      for (const p of parcels) evs.push(this.scan(stop, p, "out_for_delivery"));
    }
    evs.push(this.arrive(stop, n));
    evs.push(this.attempt(stop, n, outcome));
    return evs;
  }
}

export const delivered = { result: "delivered", method: "handed_to_recipient", recipient: "A. Recipient" };
export const absent = { result: "failed", reason: "customer_absent", detail: null };

/** Enrolls a device for each of the first `n` seeded couriers (each with a signing key). */
export async function enrollFleet(server, n) {
  const out = [];
  for (const c of server.seed.couriers.slice(0, n)) {
    const d = new Device(server.url);
    await d.enroll(c.enrollment_code, `${c.name}'s handheld`, true);
    d.plan = await d.route(c.route_id);
    d.courier = c;
    out.push(d);
  }
  return out;
}

/** Heartbeats: every device pushes an empty batch every `ms` until stopped (per device). */
export class Heartbeats {
  constructor(devices, ms) {
    this.paused = new Set();
    this.timer = setInterval(() => {
      for (const d of devices) if (!this.paused.has(d)) d.push([]).catch(() => {});
    }, ms);
  }
  pause(d) { this.paused.add(d); }
  resume(d) { this.paused.delete(d); }
  stop() { clearInterval(this.timer); }
}

/** Dispatcher API call (tests use it to check what the UI did). */
export async function dispatch(server, path, init = {}) {
  const r = await fetch(`${server.url}${path}`, {
    ...init,
    headers: { Authorization: `Bearer ${server.seed.dispatcher_token}`, ...(init.headers ?? {}) },
  });
  return { status: r.status, text: await r.text() };
}
