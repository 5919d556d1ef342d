// The courier app, end to end, in its real window: enroll against the real server, go offline
// in field-test mode, scan three parcels, record a delivery and a failed attempt, kill the app,
// restart it (it resumes where the driver was, with the queue intact), go online, and check
// through the dispatcher API that every event arrived exactly once.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { killAndRestart, newSession, startDriver, startServer, tempDir, waitFor } from "./harness.mjs";

const cleanups = [];
after(() => {
  for (const c of cleanups.reverse()) c();
});

async function queued(s) {
  return Number(await s.text(await s.find('[data-testid="queued"]')));
}

test("offline day, app killed and restarted, every event synced exactly once", async () => {
  const server = await startServer({ couriers: 1, stops: 8 });
  cleanups.push(() => server.stop());
  const dataDir = tempDir("courier-app-e2e-");
  const driver = await startDriver(dataDir);
  cleanups.push(() => driver.kill());

  // ---- enrollment
  let s = await newSession(driver);
  await s.waitScreen("enroll");
  await s.type('[data-testid="server-url"]', server.url);
  await s.type('[data-testid="enroll-code"]', server.seed.couriers[0].enrollment_code);
  await s.screenshot("enroll");
  await s.click('[data-testid="enroll-btn"]');
  await s.waitScreen("route");
  await s.waitVisible('[data-testid="stop-row"]');
  await waitFor("the status bar", () => s.find('[data-testid="queued"]'));
  await s.screenshot("route");

  // ---- field-test mode: offline
  await s.click('[data-testid="tab-settings"]');
  await s.waitScreen("settings");
  await s.click('[data-testid="mode-offline"]');
  await waitFor("offline mode", async () => (await s.attr(await s.find('[data-testid="mode-offline"]'), "aria-pressed")) === "true");
  await waitFor("the bar to say offline", async () => (await s.text(await s.find('[data-testid="conn"]'))).startsWith("Offline"));
  await s.screenshot("settings-offline");

  // ---- three parcels, barcodes from the route the app pulled
  const route = await s.invoke("get_route", { day: null });
  assert.ok(route && route.stops.length >= 3, "the app pulled a route with at least 3 stops");
  const [a, b, c] = route.stops;
  const codes = [a.parcels[0], b.parcels[0], c.parcels[0]];
  await s.click('[data-testid="tab-scan"]');
  await s.waitScreen("scan");
  // WebKitGTK has no BarcodeDetector: the camera button is hidden, manual entry remains.
  assert.equal((await s.findAll('[data-testid="camera-btn"]')).length, 0, "no camera button without a camera");
  for (const code of codes) {
    await s.type('[data-testid="barcode-input"]', code);
    await s.click('[data-testid="scan-btn"]');
    await waitFor(`scan of ${code}`, async () => {
      const r = await s.find('[data-testid="scan-result"]');
      return (await s.attr(r, "data-barcode")) === code && (await s.attr(r, "data-outcome")) === "recorded";
    });
  }
  // A double scan is harmless: same intent, no new event.
  await s.type('[data-testid="barcode-input"]', codes[0]);
  await s.click('[data-testid="scan-btn"]');
  await waitFor("the double scan", async () => (await s.attr(await s.find('[data-testid="scan-result"]'), "data-outcome")) === "duplicate");
  await s.screenshot("scan");

  // ---- delivery at stop A
  async function openAttempt(stop) {
    await s.click('[data-testid="tab-route"]');
    await s.waitScreen("route");
    await s.click(`[data-testid="stop-row"][data-stop-id="${stop.stop_id}"]`);
    await s.waitScreen("stop");
    await s.click('[data-testid="arrive-btn"]');
    await s.click('[data-testid="attempt-btn"]');
    await s.waitScreen("attempt");
  }
  await openAttempt(a);
  await s.click('[data-testid="method-left_at_safe_place"]');
  await s.click('[data-testid="deliver-btn"]');
  await s.waitVisible('[data-testid="attempt-confirm"].ok');
  await s.screenshot("delivered");

  // ---- failed attempt at stop B (customer absent)
  await openAttempt(b);
  await s.exec("const el = document.querySelector('[data-testid=\"reason-select\"]'); el.value = 'customer_absent';");
  await s.click('[data-testid="fail-btn"]');
  await s.waitVisible('[data-testid="attempt-confirm"].ok');
  // 3 scans + 2 arrivals + 2 attempts, all queued while offline.
  await waitFor("7 queued events", async () => (await queued(s)) === 7);

  // Back to stop B's detail: the screen the driver is on when the app is killed.
  await s.click('[data-testid="back"]');
  await s.waitScreen("stop");
  await s.screenshot("stop");

  // ---- kill the app (SIGKILL, no goodbye) and start it again
  s = await killAndRestart(driver, s);
  await s.waitScreen("stop");
  const resumed = await s.exec("return document.querySelector('[data-testid=\"screen-stop\"]').dataset.stopId");
  assert.equal(resumed, b.stop_id, "resumed on the stop the driver was on");
  await waitFor("the queue to survive the kill", async () => (await queued(s)) === 7);
  assert.match(await s.text(await s.find('[data-testid="conn"]')), /^Offline/, "still offline after restart");

  // ---- back online: everything syncs
  await s.click('[data-testid="tab-settings"]');
  await s.waitScreen("settings");
  await s.click('[data-testid="mode-normal"]');
  await waitFor("the queue to drain", async () => (await queued(s)) === 0, 60_000);
  await s.click('[data-testid="tab-route"]');
  await s.waitScreen("route");
  await s.screenshot("route-synced");

  // ---- the dispatcher sees each event exactly once
  const me = (await s.invoke("app_state")).device_id;
  const expected = {
    [a.stop_id]: ["parcel_scanned", "arrived_at_stop", "delivery_attempted"],
    [b.stop_id]: ["parcel_scanned", "arrived_at_stop", "delivery_attempted"],
    [c.stop_id]: ["parcel_scanned"],
  };
  const seqs = [];
  for (const [stopId, kinds] of Object.entries(expected)) {
    const detail = await server.dispatch(`/stops/${stopId}`);
    const mine = detail.events.filter((e) => e.device_id === me);
    assert.deepEqual(mine.map((e) => e.kind).sort(), [...kinds].sort(), `events of stop ${stopId}`);
    const intents = new Set(mine.map((e) => e.intent_key));
    assert.equal(intents.size, mine.length, "no intent twice");
    for (const e of mine) assert.equal(e.status, "applied");
    seqs.push(...mine.map((e) => e.device_seq));
    if (stopId === a.stop_id) assert.equal(detail.view.status.status, "delivered");
    if (stopId === b.stop_id) assert.equal(detail.view.status.status, "attempt_failed");
  }
  assert.deepEqual(seqs.sort((x, y) => x - y), [1, 2, 3, 4, 5, 6, 7], "device_seq 1..7, each once");
  await s.close();
});
