// The dispatcher API client. The token lives in sessionStorage (gone when the tab closes) and
// every call sends it as a bearer token. Commands carry an Idempotency-Key chosen once per user
// action, so a double click or a retried request is applied at most once.

import type { Problem } from "../../src/generated/Problem";
import type { CommandReceipt } from "../../src/generated/CommandReceipt";

const TOKEN_KEY = "doorstep.dispatcher_token";

export function token(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(t: string | null): void {
  if (t === null) sessionStorage.removeItem(TOKEN_KEY);
  else sessionStorage.setItem(TOKEN_KEY, t);
}

export class ApiProblem extends Error {
  constructor(
    readonly status: number,
    readonly problem: Problem | null,
  ) {
    super(problem ? `${problem.title}${problem.detail ? `: ${problem.detail}` : ""}` : `HTTP ${status}`);
  }
}

/** Called on 401 so the app can return to the sign-in screen. */
let onUnauthorized: () => void = () => {};
export function setUnauthorizedHandler(f: () => void): void {
  onUnauthorized = f;
}

async function call<T>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
  const h: Record<string, string> = { ...headers };
  const t = token();
  if (t) h["Authorization"] = `Bearer ${t}`;
  if (body !== undefined) h["Content-Type"] = "application/json";
  const res = await fetch(path, {
    method,
    headers: h,
    body: body === undefined ? null : JSON.stringify(body),
  });
  if (!res.ok) {
    let problem: Problem | null = null;
    try {
      problem = (await res.json()) as Problem;
    } catch {
      problem = null;
    }
    if (res.status === 401) onUnauthorized();
    throw new ApiProblem(res.status, problem);
  }
  return (await res.json()) as T;
}

export function get<T>(path: string): Promise<T> {
  return call<T>("GET", path);
}

/**
 * A stored blob (a proof photo) as an object URL. `<img>` cannot send the bearer token, so the
 * bytes are fetched with it; blobs are content-addressed and immutable, so each is fetched once
 * per session. Rejects with `ApiProblem` 404 while the blob has not landed.
 */
const blobUrls = new Map<string, Promise<string>>();
export function blobUrl(digest: string): Promise<string> {
  let p = blobUrls.get(digest);
  if (!p) {
    const t = token();
    p = fetch(`/v1/blobs/${encodeURIComponent(digest)}`, { headers: t ? { Authorization: `Bearer ${t}` } : {} }).then(
      async (res) => {
        if (!res.ok) throw new ApiProblem(res.status, null);
        return URL.createObjectURL(await res.blob());
      },
    );
    p.catch(() => blobUrls.delete(digest));
    blobUrls.set(digest, p);
  }
  return p;
}

export function post<T>(path: string, body: unknown): Promise<T> {
  return call<T>("POST", path, body);
}

/** One user action: its key is fixed when the action is created, not when it is sent. */
export class Action {
  readonly key = crypto.randomUUID();
  private inflight: Promise<CommandReceipt> | null = null;

  constructor(
    readonly path: string,
    readonly body: unknown,
  ) {}

  /** Sends the command; repeated calls while in flight share the one request. */
  send(): Promise<CommandReceipt> {
    if (!this.inflight) {
      this.inflight = call<CommandReceipt>("POST", this.path, this.body, { "Idempotency-Key": this.key }).catch(
        (e: unknown) => {
          this.inflight = null; // a failed attempt may be retried with the same key
          throw e;
        },
      );
    }
    return this.inflight;
  }
}
