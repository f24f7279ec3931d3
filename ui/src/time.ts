// Time ranges as a person writes them (`now-1h`, `now`, `2026-11-20 10:00:00`) and as the
// API wants them (nanoseconds). The URL keeps what the person wrote, so a link to
// "the last hour" stays relative and a link to an incident stays absolute.

export interface TimeRange {
  from: string;
  to: string;
}

export interface Resolved {
  startMs: number;
  endMs: number;
}

const UNITS: Record<string, number> = { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3, w: 7 * 86400e3 };

/** Parses `now`, `now-15m`, `now-2d`, epoch milliseconds, or an ISO/`YYYY-MM-DD hh:mm[:ss]`
 *  local time. Returns null for anything else, so the picker can say what is wrong. */
export function parseTime(s: string, now = Date.now()): number | null {
  const t = s.trim();
  const rel = /^now(?:\s*-\s*(\d+)\s*([smhdw]))?$/.exec(t);
  if (rel) return rel[1] ? now - Number(rel[1]) * UNITS[rel[2]] : now;
  if (/^\d{12,14}$/.test(t)) return Number(t);
  const iso = /^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)(Z|[+-]\d{2}:?\d{2})?$/.exec(t);
  if (iso) {
    const ms = Date.parse(`${iso[1]}T${iso[2]}${iso[3] ?? (utc() ? 'Z' : '')}`);
    return Number.isNaN(ms) ? null : ms;
  }
  if (/^\d{4}-\d{2}-\d{2}$/.test(t)) {
    const ms = Date.parse(`${t}T00:00${utc() ? 'Z' : ''}`);
    return Number.isNaN(ms) ? null : ms;
  }
  return null;
}

export function resolve(r: TimeRange, now = Date.now()): Resolved {
  const startMs = parseTime(r.from, now) ?? now - 3600e3;
  let endMs = parseTime(r.to, now) ?? now;
  if (endMs <= startMs) endMs = startMs + 1000;
  return { startMs, endMs };
}

export function msToNs(ms: number): bigint {
  return BigInt(Math.floor(ms)) * 1_000_000n;
}

/** A step giving about `points` buckets, rounded to a friendly size. */
export function stepFor(r: Resolved, points = 120): number {
  const raw = (r.endMs - r.startMs) / 1000 / points;
  const nice = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400];
  return nice.find((n) => n >= raw) ?? Math.ceil(raw / 86400) * 86400;
}

/** `1m`, `5m`, `2h`, the LogQL duration of a step in seconds. */
export function durationOf(seconds: number): string {
  if (seconds % 86400 === 0) return `${seconds / 86400}d`;
  if (seconds % 3600 === 0) return `${seconds / 3600}h`;
  if (seconds % 60 === 0) return `${seconds / 60}m`;
  return `${seconds}s`;
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

const UTC_KEY = 'kiroku.utc';

/** Times are shown (and typed) in UTC rather than the browser's zone: a setting, since
 *  Kubernetes and most servers stamp in UTC. */
export function utc(): boolean {
  return localStorage.getItem(UTC_KEY) === '1';
}

export function setUtc(on: boolean): void {
  if (on) localStorage.setItem(UTC_KEY, '1');
  else localStorage.removeItem(UTC_KEY);
}

function parts(ms: number): number[] {
  const d = new Date(ms);
  return utc()
    ? [d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate(), d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds(), d.getUTCMilliseconds()]
    : [d.getFullYear(), d.getMonth() + 1, d.getDate(), d.getHours(), d.getMinutes(), d.getSeconds(), d.getMilliseconds()];
}

/** `YYYY-MM-DD hh:mm:ss` in the shown zone, what the absolute picker shows and accepts. */
export function formatAbsolute(ms: number): string {
  const [y, mo, d, h, mi, s] = parts(ms);
  return `${y}-${pad(mo)}-${pad(d)} ${pad(h)}:${pad(mi)}:${pad(s)}`;
}

/** The timestamp of a log line: date, time with milliseconds, in the shown zone. */
export function formatLineTime(ms: number): string {
  return `${formatAbsolute(ms)}.${pad(parts(ms)[6], 3)}`;
}

export function ago(ms: number, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 10) return 'just now';
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m ago`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h ago`;
}

export const PRESETS: { label: string; from: string }[] = [
  { label: 'Last 5 minutes', from: 'now-5m' },
  { label: 'Last 15 minutes', from: 'now-15m' },
  { label: 'Last 1 hour', from: 'now-1h' },
  { label: 'Last 3 hours', from: 'now-3h' },
  { label: 'Last 12 hours', from: 'now-12h' },
  { label: 'Last 24 hours', from: 'now-24h' },
  { label: 'Last 2 days', from: 'now-2d' },
  { label: 'Last 7 days', from: 'now-7d' },
];

export function describe(r: TimeRange): string {
  if (r.to === 'now') {
    const p = PRESETS.find((x) => x.from === r.from);
    if (p) return p.label;
    if (r.from.startsWith('now-')) return `Last ${r.from.slice(4)}`;
  }
  const s = parseTime(r.from);
  const e = parseTime(r.to);
  return `${s !== null ? formatAbsolute(s) : r.from} → ${e !== null ? formatAbsolute(e) : r.to}`;
}
