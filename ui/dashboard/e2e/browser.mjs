// @ts-check
// Debian's chromium driven by playwright-core (no browser download).
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { repoRoot } from "./fleet.mjs";

export const shots = join(repoRoot, "artifacts/screenshots");
mkdirSync(shots, { recursive: true });

export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/** A page already signed in (token in sessionStorage before any script runs). */
export async function signedInPage(browser, server, viewport = { width: 1280, height: 900 }) {
  const ctx = await browser.newContext({ viewport });
  await ctx.addInitScript((t) => sessionStorage.setItem("doorstep.dispatcher_token", t), server.seed.dispatcher_token);
  const page = await ctx.newPage();
  return { ctx, page };
}
