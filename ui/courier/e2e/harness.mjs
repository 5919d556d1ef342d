// A small W3C WebDriver client (Node's fetch, no dependencies) plus the processes an end-to-end
// run needs: the real doorstep-server (seeded, port 0) and tauri-driver, which starts the real
// courier-app binary in a real WebKitGTK window through WebKitWebDriver.
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, readdirSync, readlinkSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export const repoRoot = resolve(import.meta.dirname, "../../..");
export const serverBin = process.env.DOORSTEP_SERVER_BIN ?? join(repoRoot, "target/debug/doorstep-server");
export const appBin = process.env.COURIER_APP_BIN ?? join(repoRoot, "target/debug/courier-app");
export const shotsDir = join(repoRoot, "artifacts/screenshots");

export function tempDir(prefix) {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Polls `fn` until it returns a truthy value (returned) or `timeoutMs` passes (throws). */
export async function waitFor(what, fn, timeoutMs = 20_000, everyMs = 40) {
  const end = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ""}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

async function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once("error", rej);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

// ------------------------------------------------------------------------------ server

/** Seeds a fresh database and serves it on a free port. */
export async function startServer({ couriers = 2, stops = 12 } = {}) {
  const dir = tempDir("doorstep-e2e-server-");
  const db = `sqlite://${join(dir, "doorstep.db")}`;
  const seed = JSON.parse(
    execFileSync(serverBin, ["demo-seed", "--database", db, "--couriers", String(couriers), "--stops", String(stops)], {
      encoding: "utf8",
      env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? "warn" },
    }),
  );
  const child = spawn(serverBin, ["serve", "--listen", "127.0.0.1:0", "--database", db], {
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? "warn" },
  });
  const url = await new Promise((res, rej) => {
    let out = "";
    child.stdout.on("data", (b) => {
      out += b;
      const m = out.match(/listening on (http:\/\/\S+)/);
      if (m) res(m[1]);
    });
    child.once("exit", (code) => rej(new Error(`doorstep-server exited with ${code}`)));
  });
  child.stdout.resume();
  return {
    url,
    seed,
    async dispatch(path) {
      const r = await fetch(`${url}/v1/dispatch${path}`, { headers: { authorization: `Bearer ${seed.dispatcher_token}` } });
      if (!r.ok) throw new Error(`GET ${path}: ${r.status} ${await r.text()}`);
      return r.json();
    },
    stop() {
      child.kill("SIGTERM");
    },
  };
}

// ------------------------------------------------------------------------------ tauri-driver

function tauriDriverBin() {
  const home = process.env.CARGO_HOME ?? join(process.env.HOME ?? "/root", ".cargo");
  return process.env.TAURI_DRIVER_BIN ?? join(home, "bin/tauri-driver");
}

/** Starts tauri-driver in its own process group; the app it launches uses `dataDir`. */
export async function startDriver(dataDir) {
  const port = await freePort();
  const nativePort = await freePort();
  const child = spawn(tauriDriverBin(), ["--port", String(port), "--native-port", String(nativePort)], {
    detached: true,
    stdio: ["ignore", "ignore", "inherit"],
    env: { ...process.env, DOORSTEP_APP_DATA: dataDir, RUST_LOG: process.env.RUST_LOG ?? "warn" },
  });
  const base = `http://127.0.0.1:${port}`;
  await waitFor("tauri-driver to listen", async () => (await fetch(`${base}/status`)).ok, 20_000, 50);
  return {
    base,
    pid: child.pid,
    /** Kills tauri-driver and everything it started (WebKitWebDriver, the app). */
    kill() {
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {
        // already gone
      }
    },
  };
}

/**
 * Kills the running app with SIGKILL (no goodbye), closes `session`, and opens a new one: the
 * driver starts the app again on the same data directory.
 */
export async function killAndRestart(driver, session) {
  const pids = appPids(driver.pid);
  if (pids.length === 0) throw new Error("no running app process to kill");
  for (const pid of pids) process.kill(pid, "SIGKILL");
  await session.close();
  return newSession(driver);
}

/** Pids of `appBin` processes descending from `rootPid` (Linux /proc). */
export function appPids(rootPid) {
  const parent = new Map();
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      parent.set(Number(d), ppid);
    } catch {
      // exited meanwhile
    }
  }
  const descends = (pid) => {
    for (let p = parent.get(pid); p; p = parent.get(p)) if (p === rootPid) return true;
    return false;
  };
  const out = [];
  for (const pid of parent.keys()) {
    if (!descends(pid)) continue;
    try {
      if (readlinkSync(`/proc/${pid}/exe`) === appBin) out.push(pid);
    } catch {
      // not ours to read or exited
    }
  }
  return out;
}

// ------------------------------------------------------------------------------ WebDriver

const ELEMENT = "element-6066-11e4-a52e-4f735466cecf";

async function wd(base, method, path, body) {
  const r = await fetch(`${base}${path}`, {
    method,
    headers: { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await r.json().catch(() => ({}));
  if (!r.ok) {
    const err = new Error(`${method} ${path}: ${json.value?.error ?? r.status} ${json.value?.message ?? ""}`);
    err.wdError = json.value?.error;
    throw err;
  }
  return json.value;
}

export async function newSession(driver) {
  const value = await wd(driver.base, "POST", "/session", {
    capabilities: { alwaysMatch: { "tauri:options": { application: appBin } } },
  });
  return new Session(driver.base, value.sessionId);
}

export class Session {
  constructor(base, id) {
    this.base = base;
    this.id = id;
  }
  cmd(method, path, body) {
    return wd(this.base, method, `/session/${this.id}${path}`, body);
  }
  async find(css) {
    const v = await this.cmd("POST", "/element", { using: "css selector", value: css });
    return v[ELEMENT];
  }
  async findAll(css) {
    const v = await this.cmd("POST", "/elements", { using: "css selector", value: css });
    return v.map((e) => e[ELEMENT]);
  }
  /** Waits until `css` matches a displayed element and returns it. */
  async waitVisible(css, timeoutMs = 20_000, everyMs = 40) {
    return waitFor(`${css} to be visible`, async () => {
      const el = await this.find(css);
      return (await this.cmd("GET", `/element/${el}/displayed`)) ? el : null;
    }, timeoutMs, everyMs);
  }
  async text(el) {
    return this.cmd("GET", `/element/${el}/text`);
  }
  async attr(el, name) {
    return this.cmd("GET", `/element/${el}/attribute/${name}`);
  }
  async click(css) {
    const el = await this.waitVisible(css);
    try {
      await this.cmd("POST", `/element/${el}/click`, {});
    } catch (e) {
      if (e.wdError !== "element click intercepted") throw e;
      // A fixed bar covers it: centre it and click again.
      await this.exec("arguments[0].scrollIntoView({block: 'center'})", [{ [ELEMENT]: el }]);
      await this.cmd("POST", `/element/${el}/click`, {});
    }
    return el;
  }
  async type(css, text) {
    const el = await this.waitVisible(css);
    await this.cmd("POST", `/element/${el}/clear`, {});
    await this.cmd("POST", `/element/${el}/value`, { text });
    return el;
  }
  exec(script, args = []) {
    return this.cmd("POST", "/execute/sync", { script, args });
  }
  /** Calls a courier-app command the way the UI does (for reading, e.g. the pulled route). */
  invoke(command, args = {}) {
    return this.cmd("POST", "/execute/async", {
      script: "const done = arguments[arguments.length - 1]; window.__TAURI__.core.invoke(arguments[0], arguments[1]).then((v) => done({ ok: v }), (e) => done({ err: e }));",
      args: [command, args],
    }).then((r) => {
      if (r.err) throw new Error(`${command}: ${JSON.stringify(r.err)}`);
      return r.ok;
    });
  }
  async screen() {
    return this.exec("return document.body.dataset.screen || ''");
  }
  async waitScreen(name, timeoutMs = 20_000) {
    await waitFor(`screen ${name}`, async () => (await this.screen()) === name, timeoutMs);
  }
  async screenshot(name) {
    mkdirSync(shotsDir, { recursive: true });
    const b64 = await this.cmd("GET", "/screenshot");
    const path = join(shotsDir, `app-${name}.png`);
    writeFileSync(path, Buffer.from(b64, "base64"));
    return path;
  }
  async close() {
    try {
      await wd(this.base, "DELETE", `/session/${this.id}`);
    } catch {
      // the app may already be gone
    }
  }
}
