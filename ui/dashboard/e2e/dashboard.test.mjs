// @ts-check
// Browser tests: the built dashboard, served by the real doorstep-server binary, against a
// simulated fleet pushing real events over HTTP. Waits are on the DOM or on events, never sleeps.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { join, dirname } from "node:path";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { startServer, enrollFleet, Heartbeats, dispatch, delivered, absent, sha256, uuidv7 } from "./fleet.mjs";
import { launch, signedInPage, shots } from "./browser.mjs";

/** @type {any} */ let server;
/** @type {any[]} */ let devices;
/** @type {Heartbeats} */ let beats;
/** @type {import("playwright-core").Browser} */ let browser;
/** @type {import("playwright-core").Page} */ let page;

before(async () => {
  server = await startServer({ couriers: 6, stops: 8, env: { DOORSTEP_OFFLINE_AFTER_MS: "3000" } });
  devices = await enrollFleet(server, 6);
  for (const d of devices) await d.push([]);
  beats = new Heartbeats(devices, 700);
  browser = await launch();
});

after(async () => {
  beats?.stop();
  await browser?.close();
  await server?.stop();
});

const row = (courierId) => `[data-courier-id="${courierId}"]`;

test("sign in with a dispatcher token", async () => {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  page = await ctx.newPage();
  await page.goto(server.url + "/");
  await page.fill("#token", "dsp_wrong");
  await page.click("button[type=submit]");
  await page.getByText("That token was not accepted.").waitFor();
  await page.fill("#token", server.seed.dispatcher_token);
  await page.click("button[type=submit]");
  await page.waitForSelector("[data-fleet-ready]");
  await page.waitForSelector('[data-testid="live"][data-state="live"]');
  await page.waitForSelector(`${row(devices[0].courierId)} [data-status="online"]`);
  await page.screenshot({ path: join(shots, "fleet-desktop.png"), fullPage: true });
});

test("a courier goes offline and comes back", async () => {
  const d = devices[1];
  beats.pause(d);
  await page.waitForSelector(`${row(d.courierId)} [data-status="offline"]`, { timeout: 15_000 });
  await page.screenshot({ path: join(shots, "fleet-courier-offline.png") });
  // Back with 4 events queued on the device, 90 s old.
  await d.push([], { queued_events: 4, oldest_unsynced_ms: 90_000, photos_pending: 1, rejected_events: 0 });
  await page.waitForSelector(`${row(d.courierId)} [data-status="online"]`, { timeout: 15_000 });
  await page.waitForSelector(`${row(d.courierId)} [data-queue="4"]`);
  beats.resume(d);
});

test("a stop's timeline shows every event and its evidence", async () => {
  const d = devices[0];
  const [a, b] = d.plan.stops;
  const thumb = sha256("thumbnail of the parcel at the door");
  await d.push([...d.visit(a.stop_id, a.parcels, 1, delivered), d.proof(a.stop_id, 1, [thumb])]);
  await d.push(d.visit(b.stop_id, b.parcels, 1, absent));
  await page.click(`${row(d.courierId)} a.courier-link`);
  await page.click(`[data-stop-id="${a.stop_id}"]`);
  const tl = page.locator(`[data-testid="stop-timeline"][data-stop-id="${a.stop_id}"]`);
  await tl.waitFor();
  await tl.getByText("Attempt 1: delivered").waitFor();
  await tl.getByText(/Photo pending upload/).waitFor();
  await tl.locator('[data-attempt="1"] [data-signature="unsigned"]').waitFor();
  const rows = await tl.locator("tbody tr").count();
  assert.equal(rows, 2 * a.parcels.length + 3, "scans (loaded, out), arrive, attempt, proof");
  await page.screenshot({ path: join(shots, "stop-timeline.png"), fullPage: true });
  // A "customer absent" with no beacon sighting and no arrival fix is flagged.
  await page.goto(`${server.url}/#/stops/${b.stop_id}`);
  const absentEv = page.locator(`[data-testid="stop-timeline"][data-stop-id="${b.stop_id}"] [data-attempt="1"]`);
  await absentEv.locator('[data-presence="none"]').getByText(/customer absent” unverified/).waitFor();
  const none = absentEv.locator('[data-presence-class="no_real_attempt"]');
  assert.equal(await none.getAttribute("data-presence-score"), "0.00");
  await none.getByText("Presence 0.00 — no evidence").waitFor();
});

test("an attempt with beacon sightings scores at or above the presence threshold", async () => {
  const d = devices[0];
  const s = d.plan.stops[3];
  const beaconId = "f7826da64fa24e988024bc5b71e0893e:1:2";
  // At the door: the stop's beacon heard at about 1.3 m and a fix on the doorstep, then "customer
  // absent" (built in device order: sequence numbers and times follow creation).
  const scans = [...s.parcels.map((p) => d.scan(s.stop_id, p, "loaded")), ...s.parcels.map((p) => d.scan(s.stop_id, p, "out_for_delivery"))];
  const atDoor = [d.beacon(s.stop_id, beaconId, -62, -59), d.fix(s.location), d.arrive(s.stop_id, 1), d.attempt(s.stop_id, 1, absent)];
  const res = await d.push([...scans, ...atDoor]);
  assert.ok(res.results.every((r) => r.status === "applied"), JSON.stringify(res.results));
  const report = JSON.parse((await dispatch(server, `/v1/dispatch/stops/${s.stop_id}/presence`)).text);
  await page.goto(`${server.url}/#/stops/${s.stop_id}`);
  const ev = page.locator(`[data-testid="stop-timeline"][data-stop-id="${s.stop_id}"] [data-attempt="1"] [data-presence-score]`);
  await ev.waitFor();
  const score = Number(await ev.getAttribute("data-presence-score"));
  assert.ok(score >= report.threshold, `score ${score} below the threshold ${report.threshold}`);
  assert.equal(await ev.getAttribute("data-presence-class"), "real_failure");
  await ev.getByText(/^Presence \d\.\d\d — beacon 1\.\d m/).waitFor();
  assert.equal(await ev.getByText(/unverified/).count(), 0, "a customer absent at the door is a real attempt");
  await page.screenshot({ path: join(shots, "stop-timeline-presence.png"), fullPage: true });
});

const fixture = (name) => readFileSync(join(dirname(fileURLToPath(import.meta.url)), name));

test("a stop's timeline shows the proof photo, a valid signature and presence", async () => {
  const d = devices[0];
  const s = d.plan.stops[2];
  const photo = await d.upload(fixture("proof-photo.jpg"));
  const thumbBytes = fixture("proof-thumb.jpg");
  const thumb = sha256(thumbBytes);
  const visit = d.visit(s.stop_id, s.parcels, 1, delivered);
  visit.find((e) => e.kind === "arrived_at_stop").payload.location = s.location;
  // The proof syncs before its thumbnail: "photo pending" until the blob lands.
  const res = await d.push([...visit, d.signedProof(s.stop_id, 1, [photo], [thumb])]);
  assert.ok(res.results.every((r) => r.status === "applied"), JSON.stringify(res.results));
  await page.goto(`${server.url}/#/stops/${s.stop_id}`);
  const ev = page.locator(`[data-testid="stop-timeline"][data-stop-id="${s.stop_id}"] [data-attempt="1"]`);
  await ev.locator('[data-signature="valid"][data-chain="intact"]').waitFor();
  await ev.locator(`[data-photo="pending"][data-digest="${thumb}"]`).waitFor();
  // The thumbnail lands: the open timeline shows it without a reload.
  assert.equal(await d.upload(thumbBytes), thumb);
  await ev.locator('[data-photo="shown"]').waitFor({ timeout: 5_000 });
  await page.waitForFunction(
    (digest) => {
      const img = /** @type {HTMLImageElement|null} */ (document.querySelector(`img[data-digest="${digest}"]`));
      return !!img && img.complete && img.naturalWidth > 0;
    },
    thumb,
  );
  const width = await ev.locator("img.proof-photo").evaluate((i) => /** @type {HTMLImageElement} */ (i).naturalWidth);
  assert.equal(width, 80, "the 80 px thumbnail is what loaded");
  await ev.getByText("Signature valid, chain intact").waitFor();
  await ev.locator('[data-presence="some"]').getByText(/arrival fix 0 m from the stop/).waitFor();
  await page.screenshot({ path: join(shots, "stop-timeline-photo.png"), fullPage: true });
});

test("an open stop timeline gains a pushed event without a reload", async () => {
  const d = devices[0];
  const s = d.plan.stops[2];
  await page.goto(`${server.url}/#/stops/${s.stop_id}`);
  const tl = page.locator(`[data-testid="stop-timeline"][data-stop-id="${s.stop_id}"]`);
  await tl.locator("tbody tr").first().waitFor();
  const before = await tl.locator("tbody tr").count();
  const navigations = await page.evaluate(() => performance.getEntriesByType("navigation").length);
  await page.evaluate(() => (/** @type {any} */ (window).__marker = "still the same page"));
  const note = d.event("note_added", { stop_id: s.stop_id, note_id: uuidv7(), text: "Left a card in the letterbox" }, "");
  note.intent_key = `note:${s.stop_id}:${note.payload.note_id}`;
  await d.push([note]);
  await tl.getByText("Note: Left a card in the letterbox").waitFor({ timeout: 5_000 });
  assert.equal(await tl.locator("tbody tr").count(), before + 1);
  assert.equal(await page.evaluate(() => (/** @type {any} */ (window).__marker)), "still the same page");
  assert.equal(await page.evaluate(() => performance.getEntriesByType("navigation").length), navigations);
});

test("the metrics move when a first attempt arrives", async () => {
  await page.goto(server.url + "/#/metrics");
  const tile = page.locator('[data-metric="first_attempts"] .tile-value');
  await tile.waitFor();
  const before = Number(await tile.textContent());
  const noRealBefore = Number(await page.locator('[data-metric="first_attempts_no_real"] .tile-value').textContent());
  const d = devices[2];
  const s = d.plan.stops[0];
  await d.push(d.visit(s.stop_id, s.parcels, 1, absent));
  await page.waitForFunction(
    ([sel, n]) => Number(document.querySelector(sel)?.textContent) === n,
    ['[data-metric="first_attempts"] .tile-value', before + 1],
  );
  // "Customer absent" with no beacon and no fix: counted apart as no real attempt.
  await page.waitForFunction(
    ([sel, n]) => Number(document.querySelector(sel)?.textContent) === n,
    ['[data-metric="first_attempts_no_real"] .tile-value', noRealBefore + 1],
  );
  await page.getByText("Customer absent").first().waitFor();
  await page.screenshot({ path: join(shots, "metrics.png"), fullPage: true });
});

test("resolve a conflict escalation; a double click applies once", async () => {
  const d = devices[3];
  const s = d.plan.stops[0];
  await d.push(d.visit(s.stop_id, s.parcels, 1, delivered));
  // The same intent (attempt 1) with a different outcome: a conflict, escalated.
  const res = await d.push([d.attempt(s.stop_id, 1, absent)]);
  assert.equal(res.results[0].status, "conflict");
  await page.goto(server.url + "/#/escalations");
  const card = page.locator(`[data-kind="intent_conflict"]`).first();
  await card.waitFor();
  await card.getByRole("button", { name: "Context & actions" }).click();
  const contact = card.locator('form[data-action="Log customer contact"]');
  await contact.locator('input[name="message"]').fill("Customer confirms the parcel arrived");
  await contact.locator('select[name="result"]').selectOption("reached");
  await contact.getByRole("button", { name: "Log customer contact" }).dblclick();
  await contact.getByText(/Log customer contact: (done|already done)/).waitFor();
  const detail = JSON.parse((await dispatch(server, `/v1/dispatch/stops/${s.stop_id}`)).text);
  const notes = detail.view.notes.filter((n) => n.startsWith("Dispatch ("));
  assert.equal(notes.length, 1, `one contact note, not two: ${JSON.stringify(notes)}`);
  await page.screenshot({ path: join(shots, "escalation-actions.png"), fullPage: true });
  const resolve = card.locator('form[data-action="Pick value and resolve"]');
  await resolve.locator('input[type="radio"]').first().check();
  await resolve.getByRole("button").dblclick();
  await page.locator(`[data-kind="intent_conflict"]`).first().waitFor({ state: "detached" }).catch(() => {});
  const open = JSON.parse((await dispatch(server, "/v1/dispatch/escalations")).text);
  assert.equal(open.filter((e) => e.kind === "intent_conflict" && e.stop_id === s.stop_id).length, 0);
  const all = JSON.parse((await dispatch(server, "/v1/dispatch/escalations?all=true")).text);
  assert.equal(all.filter((e) => e.stop_id === s.stop_id && e.resolved).length, 1);
});

test("the escalation queue updates live and keeps an open form", async () => {
  const d = devices[5];
  const [s1, s2] = d.plan.stops;
  await page.goto(server.url + "/#/escalations");
  await page.waitForSelector('[data-testid="escalations"]');
  await d.push(d.visit(s1.stop_id, s1.parcels, 1, delivered));
  assert.equal((await d.push([d.attempt(s1.stop_id, 1, absent)])).results[0].status, "conflict");
  const first = page.locator(`[data-kind="intent_conflict"]`, { hasText: s1.stop_id });
  await first.waitFor({ timeout: 5_000 });
  await first.getByRole("button", { name: "Context & actions" }).click();
  const message = first.locator('form[data-action="Log customer contact"] input[name="message"]');
  await message.fill("typing while the queue changes");
  // An event whose intent key is not the one its payload defines: rejected and escalated.
  const poison = d.arrive(s2.stop_id, 1);
  poison.intent_key = `arrive:${s2.stop_id}:99`;
  assert.equal((await d.push([poison])).results[0].status, "rejected");
  const second = page.locator(`[data-kind="rejected_event"]`, { hasText: "intent_key_mismatch" });
  await second.first().waitFor({ timeout: 5_000 });
  assert.equal(await message.inputValue(), "typing while the queue changes", "the open form survived the live update");
});

test("a replayed command returns the first answer and never applies twice", async () => {
  const s = devices[4].plan.stops[0];
  const body = JSON.stringify({ note_id: "0190a0a0-0000-7000-8000-000000000001", result: "no_answer", message: "" });
  const call = (key, b = body) =>
    dispatch(server, `/v1/dispatch/stops/${s.stop_id}/contact`, {
      method: "POST",
      headers: { "Content-Type": "application/json", ...(key ? { "Idempotency-Key": key } : {}) },
      body: b,
    });
  const first = await call("replay-1");
  const again = await call("replay-1");
  assert.equal(first.status, 200);
  assert.equal(again.status, 200);
  assert.equal(again.text, first.text);
  assert.equal((await call("replay-1", body.replace("no_answer", "reached"))).status, 422);
  assert.equal((await call(null)).status, 400);
  // A new key for the same note is the same business intent: nothing new is applied.
  const other = await call("replay-2");
  assert.match(other.text, /already_applied/);
  const detail = JSON.parse((await dispatch(server, `/v1/dispatch/stops/${s.stop_id}`)).text);
  assert.equal(detail.view.notes.length, 1);
});

test("usable at 360 px", async () => {
  const { ctx, page: small } = await signedInPage(browser, server, { width: 360, height: 780 });
  await small.goto(server.url + "/#/fleet");
  await small.waitForSelector("[data-fleet-ready]");
  const overflow = await small.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `no horizontal scrolling at 360 px (overflow ${overflow}px)`);
  const small_targets = await small.evaluate(() =>
    [...document.querySelectorAll("button, input:not([type=checkbox]):not([type=radio]), select, nav a")]
      .map((e) => e.getBoundingClientRect())
      .filter((r) => r.height > 0 && r.height < 48).length,
  );
  assert.equal(small_targets, 0, "every touch target is at least 48 px high");
  await small.screenshot({ path: join(shots, "fleet-360.png"), fullPage: false });
  await small.goto(server.url + "/#/escalations");
  await small.waitForSelector('[data-testid="escalations"]');
  await small.screenshot({ path: join(shots, "escalations-360.png"), fullPage: false });
  await ctx.close();
});
