// Formatting of times, durations and codes for display.

export function clock(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return "—";
  const d = new Date(ms);
  return d.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

export function dateTime(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return "—";
  const d = new Date(ms);
  return `${d.toLocaleDateString(undefined, { month: "short", day: "numeric" })} ${clock(ms)}`;
}

export function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${s % 60}s`;
  const hr = Math.floor(m / 60);
  return `${hr}h ${m % 60}m`;
}

export function signedDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return "—";
  if (Math.abs(ms) < 1000) return `${ms >= 0 ? "+" : "−"}${Math.abs(ms)} ms`;
  return `${ms >= 0 ? "+" : "−"}${duration(Math.abs(ms))}`;
}

/** "attempts_exhausted" → "Attempts exhausted" */
export function label(code: string): string {
  const t = code.replace(/_/g, " ");
  return t.charAt(0).toUpperCase() + t.slice(1);
}

export function percent(x: number | null | undefined): string {
  return x === null || x === undefined || Number.isNaN(x) ? "—" : `${(x * 100).toFixed(1)}%`;
}

export function windowText(w: { start_ms: number; end_ms: number } | null | undefined): string {
  if (!w) return "—";
  const f = (ms: number) => new Date(ms).toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
  return `${f(w.start_ms)}–${f(w.end_ms)}`;
}
