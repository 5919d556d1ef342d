// The evidence card of a stop timeline: per attempt, the proof photo (fetched with the bearer
// token, "pending" until the blob lands), the server's re-verification of the signed statement
// and its hash chain, and the presence evidence the server holds for the attempt.

import { blobUrl } from "./api";
import { h } from "./dom";
import { label } from "./format";
import type { StopDetail } from "../../src/generated/StopDetail";
import type { StopContext } from "../../src/generated/StopContext";
import type { StoredEvent } from "../../src/generated/StoredEvent";
import type { ProofReport } from "../../src/generated/ProofReport";
import type { ProofVerdict } from "../../src/generated/ProofVerdict";
import type { GeoPoint } from "../../src/generated/GeoPoint";

/** Log-distance path-loss exponent used to range a beacon from its RSSI (as on the device). */
const PATH_LOSS_EXPONENT = 2.5;

function metres(a: GeoPoint, b: GeoPoint): number {
  const rad = Math.PI / 180;
  const x = (b.lon - a.lon) * rad * Math.cos(((a.lat + b.lat) / 2) * rad);
  const y = (b.lat - a.lat) * rad;
  return Math.round(Math.sqrt(x * x + y * y) * 6_371_000);
}

function photo(v: ProofVerdict | undefined): HTMLElement {
  const digest = v?.thumbnails[0] ?? v?.photos[0];
  if (!v || !digest) return h("span", { class: "missing", "data-photo": "none" }, "Photo: not captured");
  if (v.pending_blobs.includes(digest)) {
    return h(
      "span",
      { class: "pending", "data-photo": "pending", "data-digest": digest, title: digest },
      h("span", { class: "thumb", "aria-hidden": "true" }, "▢"),
      "Photo pending upload",
    );
  }
  const img = h("img", { class: "proof-photo", alt: `Proof photo, attempt ${v.attempt}`, "data-digest": digest, width: 160 });
  const box = h("span", { class: "proof", "data-photo": "loading" }, img);
  blobUrl(digest).then(
    (url) => {
      (img as HTMLImageElement).src = url;
      box.dataset["photo"] = "shown";
    },
    () => {
      box.dataset["photo"] = "unavailable";
      box.append(h("span", { class: "missing" }, " Photo could not be loaded"));
    },
  );
  return box;
}

function signature(v: ProofVerdict | undefined): HTMLElement {
  if (!v) return h("span", { class: "missing", "data-signature": "none" }, "Signature: not captured");
  const sig = v.signature === "valid" ? "valid" : v.signature === "unsigned" ? "unsigned" : "invalid";
  const chain = v.chain === "intact" ? "intact" : v.chain === "not_signed" ? "not_signed" : "broken";
  const text =
    sig === "valid"
      ? `Signature valid, chain ${chain === "intact" ? "intact" : v.chain}`
      : sig === "unsigned"
        ? "Signature: unsigned"
        : `Signature ${v.signature}`;
  const bad = sig === "invalid" || chain === "broken";
  return h(
    "span",
    { class: bad ? "warn" : sig === "unsigned" ? "missing" : "ok", "data-signature": sig, "data-chain": chain, title: v.chain },
    text,
    v.status !== "applied" ? ` (${label(v.status)})` : "",
  );
}

/** The events logged between the previous attempt and attempt `n` (inclusive), in log order. */
function attemptSpan(events: StoredEvent[], n: number): StoredEvent[] {
  const end = events.findIndex((e) => e.kind === "delivery_attempted" && e.payload.attempt === n);
  const start = events.findIndex((e) => e.kind === "delivery_attempted" && e.payload.attempt === n - 1);
  return events.slice(start + 1, end < 0 ? events.length : end + 1);
}

function presence(events: StoredEvent[], n: number, ctx: StopContext | null): HTMLElement {
  const span = attemptSpan(events, n);
  const parts: string[] = [];
  const beacons = span.flatMap((e) => (e.kind === "beacon_sighted" && e.status === "applied" ? [e.payload] : []));
  if (beacons.length) {
    const best = beacons.reduce((a, b) => (b.rssi_dbm > a.rssi_dbm ? b : a));
    const tx = best.tx_power_dbm;
    const range = tx === null ? "" : `, ≈${(10 ** ((tx - best.rssi_dbm) / (10 * PATH_LOSS_EXPONENT))).toFixed(1)} m`;
    parts.push(`${beacons.length} beacon sighting(s), strongest ${best.rssi_dbm} dBm${range}`);
  }
  const arrival = span.find((e) => e.kind === "arrived_at_stop" && e.payload.attempt === n);
  const fix = arrival?.kind === "arrived_at_stop" ? arrival.payload.location : null;
  if (fix && ctx) parts.push(`arrival fix ${metres(fix, ctx.stop.location)} m from the stop`);
  else if (fix) parts.push("arrival fix recorded");
  if (!parts.length) {
    // "Customer absent" with nothing placing the courier at the door is not a real attempt.
    const attempt = span.find((e) => e.kind === "delivery_attempted" && e.payload.attempt === n);
    const absent =
      attempt?.kind === "delivery_attempted" && attempt.payload.outcome.result === "failed" && attempt.payload.outcome.reason === "customer_absent";
    return h(
      "span",
      { class: "warn", "data-presence": "none" },
      "No presence evidence (no beacon sighting, no arrival fix)",
      absent ? " — “customer absent” unverified" : "",
    );
  }
  return h("span", { "data-presence": "some" }, `Presence: ${parts.join("; ")}`);
}

export function evidenceCard(detail: StopDetail, report: ProofReport | null, ctx: StopContext | null): HTMLElement {
  const verdicts = report?.proofs ?? [];
  const numbers = Array.from(
    new Set([...detail.view.attempts.map(([n]) => n), ...detail.view.proof_attempts, ...verdicts.map((v) => v.attempt)]),
  ).sort((a, b) => a - b);
  const rows = numbers.map((n) => {
    // The applied proof of the attempt if there is one, else the latest logged one.
    const mine = verdicts.filter((v) => v.attempt === n);
    const v = mine.find((x) => x.status === "applied") ?? mine[mine.length - 1];
    return h(
      "li",
      { "data-attempt": n },
      h("strong", {}, `Attempt ${n}`),
      photo(v),
      signature(v),
      presence(detail.events, n, ctx),
    );
  });
  return h(
    "section",
    { class: "card evidence", "aria-labelledby": "ev-h", "data-testid": "evidence" },
    h("h2", { id: "ev-h" }, "Evidence"),
    report === null ? h("p", { class: "warn" }, "The proof verification could not be loaded.") : null,
    rows.length ? h("ul", {}, rows) : h("p", { class: "missing" }, "No attempt yet: no evidence captured."),
  );
}
