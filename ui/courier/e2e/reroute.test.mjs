// Re-planning the route in the real app window: ask for a re-plan, see the proposed order next
// to the current one with its reasons, accept it (the list shows the new order), kill and
// restart the app (Undo is still offered), undo it (the old order comes back), and check
// through the dispatcher API that the two RouteReplanned facts (accept, undo) each arrived
// exactly once, carrying the orders the driver saw.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { killAndRestart, newSession, startDriver, startServer, tempDir, waitFor } from "./harness.mjs";

const cleanups = [];
after(() => {
  for (const c of cleanups.reverse()) c();
});

async function stopIds(s, css) {
  return s.exec(`return [...document.querySelectorAll(${JSON.stringify(css)})].map((e) => e.dataset.stopId)`);
}

const sameList = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

test("re-plan: proposal with reasons, accept, undo, both facts synced once", async () => {
  const server = await startServer({ couriers: 1, stops: 8 });
  cleanups.push(() => server.stop());
  const driver = await startDriver(tempDir("courier-app-reroute-e2e-"));
  cleanups.push(() => driver.kill());

  let s = await newSession(driver);
  await s.waitScreen("enroll");
  await s.type('[data-testid="server-url"]', server.url);
  await s.type('[data-testid="enroll-code"]', server.seed.couriers[0].enrollment_code);
  await s.click('[data-testid="enroll-btn"]');
  await s.waitScreen("route");
  await s.waitVisible('[data-testid="stop-row"]');
  const planned = await stopIds(s, '[data-testid="stop-row"]');
  assert.equal(planned.length, 8, "the pulled route is on screen");

  // ---- ask for a re-plan: the proposal shows both orders and why
  await s.click('[data-testid="replan-btn"]');
  await s.waitVisible('[data-testid="proposal"]', 30_000);
  const current = await stopIds(s, '[data-testid="proposal-current"] li');
  const proposed = await stopIds(s, '[data-testid="proposal-new"] li');
  assert.deepEqual(current, planned, "'Now' is the order on screen");
  assert.deepEqual([...proposed].sort(), [...planned].sort(), "the proposal orders the same stops");
  assert.notDeepEqual(proposed, planned, "the seeded order is random: the solver improves on it");
  const reason = async (id) => s.text(await s.find(`[data-testid="${id}"]`));
  assert.match(await reason("reason-windows"), /^\d+ → \d+ of 8$/);
  assert.match(await reason("reason-travel"), /^\d+ → \d+ min \([+−±]\d+ min\)$/);
  const notices = await s.findAll('[data-testid="proposal-notice"]');
  if (notices.length === 0) {
    // The model ran: its version and the expected deliveries before → after are shown.
    assert.match(await reason("reason-model"), /^delivery_success@/);
    assert.match(await reason("reason-expected"), /^\d+\.\d → \d+\.\d \([+−±]\d+\.\d\)$/);
  } else {
    // No runtime or model here: the solver ran alone and the screen says so plainly.
    assert.match(await s.text(notices[0]), /distance and time windows only/);
    assert.equal(await reason("reason-expected"), "not estimated (no model)");
  }
  await s.screenshot("replan-proposal");

  // ---- accept: the route list takes the proposed order
  await s.click('[data-testid="accept-replan"]');
  await s.waitVisible('[data-testid="replan-accepted"]');
  await waitFor("the new order on screen", async () => sameList(await stopIds(s, '[data-testid="stop-row"]'), proposed));
  await s.exec("window.scrollTo(0, 0)");
  await s.screenshot("replan-accepted");

  // ---- kill the app (SIGKILL) and start it again: the new order stays, and so does Undo
  s = await killAndRestart(driver, s);
  await s.waitScreen("route");
  await s.waitVisible('[data-testid="replan-accepted"]');
  await waitFor("the accepted order after the restart", async () => sameList(await stopIds(s, '[data-testid="stop-row"]'), proposed));

  // ---- undo: the old order comes back
  await s.click('[data-testid="undo-replan"]');
  await waitFor("the old order on screen", async () => sameList(await stopIds(s, '[data-testid="stop-row"]'), planned));
  assert.equal((await s.findAll('[data-testid="replan-accepted"]')).length, 0, "nothing left to undo");
  assert.equal((await s.findAll('[data-testid="proposal"]')).length, 0, "no proposal left on screen");

  // ---- both facts reach the server exactly once, with the orders the driver saw
  await waitFor("the queue to drain", async () => Number(await s.text(await s.find('[data-testid="queued"]'))) === 0, 60_000);
  const me = (await s.invoke("app_state")).device_id;
  const log = await server.dispatch(`/devices/${me}/events`);
  const replans = log.filter((e) => e.kind === "route_replanned");
  assert.equal(replans.length, 2, "accept and undo: two facts");
  assert.equal(new Set(replans.map((e) => e.intent_key)).size, 2, "two intents, each once");
  for (const e of replans) assert.equal(e.status, "applied");
  assert.deepEqual(replans[0].payload.order, proposed, "the accepted order");
  assert.deepEqual(replans[1].payload.order, planned, "the undo restores the planned order");
  assert.equal(replans[0].payload.inputs_digest.length, 64);
  assert.equal(new Set(log.map((e) => e.device_seq)).size, log.length, "no device_seq twice");
  await s.close();
});
