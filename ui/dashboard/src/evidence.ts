// The evidence card of a stop timeline: per attempt, the proof photo (fetched with the bearer
// token, "pending" until the blob lands), the server's re-verification of the signed statement
// and its hash chain, and the server's presence score of the attempt with the facts behind it.

import { blobUrl } from "./api";
import { h } from "./dom";
import { duration, label } from "./format";
import type { StopDetail } from "../../src/generated/StopDetail";
import type { StopContext } from "../../src/generated/StopContext";
import type { StoredEvent } from "../../src/generated/StoredEvent";
import type { ProofReport } from "../../src/generated/ProofReport";
import type { ProofVerdict } from "../../src/generated/ProofVerdict";
import type { GeoPoint } from "../../src/generated/GeoPoint";
import type { PresenceReport } from "../../src/generated/PresenceReport";
import type { AttemptPresence } from "../../src/generated/AttemptPresence";

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

/** The raw facts behind the score: sightings, strongest RSSI and range, the arrival fix. */
function rawPresence(events: StoredEvent[], n: number, ctx: StopContext | null): string[] {
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
  return parts;
}

/** "beacon 3.1 m, at the door 2m 0s" from what the server's score rests on. */
function scoreBasis(p: AttemptPresence): string {
  const basis: string[] = [];
  if (p.closest_beacon_m !== null) basis.push(`beacon ${p.closest_beacon_m.toFixed(1)} m`);
  if (p.gps_dwell_ms && p.gps_closest_m !== null && p.gps_closest_m <= 80) basis.push(`at the door ${duration(p.gps_dwell_ms)}`);
  else if (p.gps_closest_m !== null) basis.push(`GPS ${Math.round(p.gps_closest_m)} m from the stop`);
  return basis.length ? basis.join(", ") : "no evidence";
}

function isAbsent(events: StoredEvent[], n: number): boolean {
  const attempt = attemptSpan(events, n).find((e) => e.kind === "delivery_attempted" && e.payload.attempt === n);
  return attempt?.kind === "delivery_attempted" && attempt.payload.outcome.result === "failed" && attempt.payload.outcome.reason === "customer_absent";
}

/**
 * The server's presence score of attempt `n` (the device's scorer, the same threshold), then the
 * raw facts. A "customer absent" the server classifies as no real attempt is flagged.
 */
function presence(events: StoredEvent[], n: number, ctx: StopContext | null, report: PresenceReport | null): HTMLElement {
  const parts = rawPresence(events, n, ctx);
  const p = report?.attempts.find((a) => a.attempt === n);
  const unverified = p ? p.class === "no_real_attempt" : !parts.length && isAbsent(events, n);
  const attrs: Record<string, string> = { "data-presence": parts.length ? "some" : "none" };
  if (p) {
    attrs["data-presence-score"] = p.score.toFixed(2);
    attrs["data-presence-class"] = p.class;
    attrs["title"] = `Presence evidence from ${report?.threshold.toFixed(2)}; beacon ${p.beacon_component.toFixed(2)}, GPS ${p.gps_component.toFixed(2)}`;
  }
  const score = p ? `Presence ${p.score.toFixed(2)} — ${scoreBasis(p)}` : null;
  const raw = parts.length ? `Presence: ${parts.join("; ")}` : "No presence evidence (no beacon sighting, no arrival fix)";
  return h(
    "span",
    { ...attrs, class: unverified || !parts.length ? "warn" : p && !p.present ? "missing" : "" },
    score ? h("strong", { class: "presence-score" }, score) : null,
    score ? h("span", { class: "muted small" }, ` (${raw})`) : raw,
    unverified ? " — “customer absent” unverified" : "",
  );
}

export function evidenceCard(
  detail: StopDetail,
  report: ProofReport | null,
  ctx: StopContext | null,
  scores: PresenceReport | null,
): HTMLElement {
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
      presence(detail.events, n, ctx, scores),
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
