// The Loki HTTP API, as kiroku (and Loki) serve it. Every request goes to paths relative
// to the page, so the UI works behind a reverse proxy that adds a prefix. The tenant
// (`X-Scope-OrgID`) is optional: kiroku's default single-tenant mode ignores it.

export type Labels = Record<string, string>;

/** One log line as the UI holds it: nanosecond timestamp kept as a string (it does not fit
 *  in a double), plus the three kinds of labels Loki's categorize-labels flag tells apart. */
export interface LogLine {
  ts: string;
  ms: number;
  line: string;
  stream: Labels;
  metadata: Labels;
  parsed: Labels;
  /** A stable key: stream, timestamp and position among equal timestamps. */
  key: string;
}

export interface Series {
  metric: Labels;
  values: [number, string][];
}

export type QueryResult =
  | { kind: 'streams'; lines: LogLine[] }
  | { kind: 'matrix'; series: Series[] }
  | { kind: 'vector'; series: Series[] }
  | { kind: 'scalar'; value: [number, string] };

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

const TENANT_KEY = 'kiroku.tenant';

export function tenant(): string {
  return localStorage.getItem(TENANT_KEY) ?? '';
}

export function setTenant(t: string): void {
  if (t.trim()) localStorage.setItem(TENANT_KEY, t.trim());
  else localStorage.removeItem(TENANT_KEY);
}

/** The page's base ("/" or "/prefix/"): client routes are one segment deep. */
export function basePath(): string {
  const p = location.pathname;
  return p.slice(0, p.lastIndexOf('/') + 1);
}

function headers(extra?: Record<string, string>): Headers {
  const h = new Headers(extra);
  const t = tenant();
  if (t) h.set('X-Scope-OrgID', t);
  return h;
}

async function get(path: string, params: Record<string, string | string[] | undefined>, signal?: AbortSignal, extra?: Record<string, string>): Promise<unknown> {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined) continue;
    for (const one of Array.isArray(v) ? v : [v]) q.append(k, one);
  }
  const url = `${basePath()}loki/api/v1/${path}?${q}`;
  let resp: Response;
  try {
    resp = await fetch(url, { headers: headers(extra), signal });
  } catch (e) {
    if ((e as Error).name === 'AbortError') throw e;
    throw new ApiError(`cannot reach the kiroku server: ${(e as Error).message}`, 0);
  }
  const text = await resp.text();
  if (!resp.ok) {
    let msg = text.trim();
    try {
      const j = JSON.parse(text) as { message?: string; error?: string };
      msg = j.message ?? j.error ?? msg;
    } catch {
      // Loki answers most errors as plain text.
    }
    if (resp.status === 401) msg += ' — set a tenant (X-Scope-OrgID) in the settings';
    throw new ApiError(msg || `${resp.status} ${resp.statusText}`, resp.status);
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new ApiError(`the server answered ${path} with something that is not JSON`, resp.status);
  }
}

export interface RangeParams {
  query: string;
  start: bigint;
  end: bigint;
  limit?: number;
  step?: number;
  direction?: 'forward' | 'backward';
}

export async function queryRange(p: RangeParams, signal?: AbortSignal): Promise<QueryResult> {
  const body = await get(
    'query_range',
    {
      query: p.query,
      start: p.start.toString(),
      end: p.end.toString(),
      limit: p.limit?.toString(),
      step: p.step !== undefined ? `${p.step}s` : undefined,
      direction: p.direction,
    },
    signal,
    { 'X-Loki-Response-Encoding-Flags': 'categorize-labels' },
  );
  return decodeResult(body);
}

function data(body: unknown): unknown {
  return (body as { data?: unknown }).data;
}

export async function labelNames(start: bigint, end: bigint, query?: string, signal?: AbortSignal): Promise<string[]> {
  const d = data(await get('labels', { start: start.toString(), end: end.toString(), query }, signal));
  return Array.isArray(d) ? (d as string[]) : [];
}

export async function labelValues(name: string, start: bigint, end: bigint, query?: string, signal?: AbortSignal): Promise<string[]> {
  const d = data(await get(`label/${encodeURIComponent(name)}/values`, { start: start.toString(), end: end.toString(), query }, signal));
  return Array.isArray(d) ? (d as string[]) : [];
}

export async function series(match: string, start: bigint, end: bigint, signal?: AbortSignal): Promise<Labels[]> {
  const d = data(await get('series', { 'match[]': match, start: start.toString(), end: end.toString() }, signal));
  return Array.isArray(d) ? (d as Labels[]) : [];
}

export interface DetectedField {
  label: string;
  type: string;
  cardinality: number;
  parsers: string[] | null;
}

export async function detectedFields(query: string, start: bigint, end: bigint, signal?: AbortSignal): Promise<DetectedField[]> {
  const b = (await get('detected_fields', { query, start: start.toString(), end: end.toString() }, signal)) as { fields?: DetectedField[] };
  return b.fields ?? [];
}

type RawValue = [string, string] | [string, string, { structuredMetadata?: Labels; parsed?: Labels }];

/** Turns Loki's response into the UI's shapes. Streams are merged into one list, newest
 *  first, because that is how a person reads them. */
export function decodeResult(body: unknown): QueryResult {
  const d = data(body) as { resultType?: string; result?: unknown; encodingFlags?: string[] } | undefined;
  if (!d || typeof d !== 'object') throw new ApiError('the server answered without data', 200);
  switch (d.resultType) {
    case 'streams': {
      const lines: LogLine[] = [];
      for (const s of (d.result as { stream: Labels; values: RawValue[] }[]) ?? []) {
        lines.push(...streamLines(s.stream, s.values));
      }
      sortNewestFirst(lines);
      return { kind: 'streams', lines };
    }
    case 'matrix':
      return { kind: 'matrix', series: ((d.result as { metric: Labels; values: [number, string][] }[]) ?? []).map((r) => ({ metric: r.metric, values: r.values })) };
    case 'vector':
      return { kind: 'vector', series: ((d.result as { metric: Labels; value: [number, string] }[]) ?? []).map((r) => ({ metric: r.metric, values: [r.value] })) };
    case 'scalar':
      return { kind: 'scalar', value: d.result as [number, string] };
    default:
      throw new ApiError(`unknown result type ${String(d.resultType)}`, 200);
  }
}

export function streamLines(stream: Labels, values: RawValue[]): LogLine[] {
  const id = streamId(stream);
  const out: LogLine[] = [];
  let prev = '';
  let dup = 0;
  for (const v of values) {
    const ts = v[0];
    dup = ts === prev ? dup + 1 : 0;
    prev = ts;
    const extra = v.length > 2 ? (v[2] as { structuredMetadata?: Labels; parsed?: Labels }) : undefined;
    out.push({
      ts,
      ms: nsToMs(ts),
      line: v[1],
      stream,
      metadata: extra?.structuredMetadata ?? {},
      parsed: extra?.parsed ?? {},
      key: `${id}/${ts}/${dup}`,
    });
  }
  return out;
}

export function sortNewestFirst(lines: LogLine[]): void {
  lines.sort((a, b) => (a.ts.length !== b.ts.length ? b.ts.length - a.ts.length : a.ts < b.ts ? 1 : a.ts > b.ts ? -1 : 0));
}

export function nsToMs(ts: string): number {
  return ts.length > 6 ? Number(ts.slice(0, -6)) + Number(ts.slice(-6)) / 1e6 : Number(ts) / 1e6;
}

export function streamId(l: Labels): string {
  return Object.keys(l)
    .sort()
    .map((k) => `${k}=${JSON.stringify(l[k])}`)
    .join(',');
}

/** `{a="b", c="d"}` with Go's quoting of values (JSON quoting agrees for what labels hold). */
export function selectorOf(l: Labels): string {
  return `{${Object.keys(l)
    .sort()
    .map((k) => `${k}=${JSON.stringify(l[k])}`)
    .join(', ')}}`;
}

/** Opens Loki's live tail over a WebSocket. `onLines` gets each frame's lines. */
export function tail(query: string, startNs: bigint, onLines: (lines: LogLine[], dropped: number) => void, onState: (state: 'open' | 'closed', reason?: string) => void): () => void {
  const loc = new URL(`${basePath()}loki/api/v1/tail`, location.href);
  loc.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  loc.searchParams.set('query', query);
  loc.searchParams.set('start', startNs.toString());
  loc.searchParams.set('limit', '100');
  const t = tenant();
  if (t) loc.searchParams.set('orgId', t);
  let closedByUs = false;
  const ws = new WebSocket(loc.toString());
  ws.onopen = () => onState('open');
  ws.onmessage = (ev) => {
    try {
      const frame = JSON.parse(String(ev.data)) as { streams?: { stream: Labels; values: RawValue[] }[]; dropped_entries?: unknown[] | null };
      const lines: LogLine[] = [];
      for (const s of frame.streams ?? []) lines.push(...streamLines(s.stream, s.values));
      sortNewestFirst(lines);
      onLines(lines, frame.dropped_entries?.length ?? 0);
    } catch {
      // A frame we cannot read is skipped; the next one may be fine.
    }
  };
  ws.onerror = () => {
    if (!closedByUs) onState('closed', 'the live tail connection failed');
  };
  ws.onclose = (ev) => {
    if (!closedByUs) onState('closed', ev.reason || (ev.code === 1000 ? 'the server ended the tail' : `connection closed (${ev.code})`));
  };
  return () => {
    closedByUs = true;
    ws.close();
  };
}
