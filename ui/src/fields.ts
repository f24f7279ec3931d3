// What a line says about itself: its level, and its fields when it is JSON or logfmt.
// The server's `parsed` labels win when the query had a parser; otherwise the UI detects
// the format itself, as Grafana does, so expanding any line shows its fields.

import type { LogLine } from './api';
import { stripAnsi } from './ansi';

export type Level = 'critical' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'unknown';

export const LEVELS: Level[] = ['critical', 'error', 'warn', 'info', 'debug', 'trace', 'unknown'];

const ALIASES: Record<string, Level> = {
  critical: 'critical', crit: 'critical', fatal: 'critical', panic: 'critical', emerg: 'critical', alert: 'critical',
  error: 'error', err: 'error', eror: 'error', e: 'error', severe: 'error',
  warn: 'warn', warning: 'warn', wrn: 'warn', w: 'warn',
  info: 'info', inf: 'info', information: 'info', notice: 'info', i: 'info', normal: 'info',
  debug: 'debug', dbg: 'debug', d: 'debug',
  trace: 'trace', trc: 'trace', t: 'trace',
};

export function normalizeLevel(v: string | undefined): Level {
  if (!v) return 'unknown';
  return ALIASES[v.toLowerCase()] ?? 'unknown';
}

const WORD = /\b(CRITICAL|FATAL|PANIC|ERROR|ERR|WARN|WARNING|INFO|DEBUG|TRACE)\b/i;

/** The level: the server's `detected_level`/`level` label, else a word in the line. */
export function levelOf(l: LogLine): Level {
  const v = l.stream.detected_level ?? l.metadata.detected_level ?? l.parsed.detected_level ?? l.stream.level ?? l.parsed.level;
  const lv = normalizeLevel(v);
  if (lv !== 'unknown') return lv;
  const m = WORD.exec(l.line.length > 300 ? l.line.slice(0, 300) : l.line);
  return m ? normalizeLevel(m[1]) : 'unknown';
}

export type Format = 'json' | 'logfmt' | null;

export function detectFormat(line: string): Format {
  const t = line.trimStart();
  if (t.startsWith('{') && t.trimEnd().endsWith('}')) {
    try {
      JSON.parse(t);
      return 'json';
    } catch {
      return null;
    }
  }
  return parseLogfmt(t).length >= 2 ? 'logfmt' : null;
}

/** Flattens JSON as Loki's `| json` does: nested keys joined with `_`. */
export function flattenJson(v: unknown, prefix = '', out: [string, string][] = []): [string, string][] {
  if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      const key = (prefix ? `${prefix}_${k}` : k).replace(/[^A-Za-z0-9_]/g, '_');
      flattenJson(x, key, out);
    }
  } else if (prefix) {
    out.push([prefix, typeof v === 'string' ? v : JSON.stringify(v)]);
  }
  return out;
}

/** logfmt pairs `k=v`, `k="quoted \" value"`; bare words are skipped. */
export function parseLogfmt(s: string): [string, string][] {
  const out: [string, string][] = [];
  let i = 0;
  const n = s.length;
  while (i < n) {
    while (i < n && s[i] === ' ') i++;
    const ks = i;
    while (i < n && s[i] !== '=' && s[i] !== ' ') i++;
    const key = s.slice(ks, i);
    if (i >= n || s[i] !== '=') continue;
    i++;
    let val = '';
    if (s[i] === '"') {
      i++;
      while (i < n && s[i] !== '"') {
        if (s[i] === '\\' && i + 1 < n) {
          i++;
          val += s[i] === 'n' ? '\n' : s[i] === 't' ? '\t' : s[i];
        } else val += s[i];
        i++;
      }
      i++;
    } else {
      const vs = i;
      while (i < n && s[i] !== ' ') i++;
      val = s.slice(vs, i);
    }
    if (key && /^[A-Za-z_][A-Za-z0-9_.\-]*$/.test(key)) out.push([key.replace(/[.\-]/g, '_'), val]);
  }
  return out;
}

export interface LineFields {
  format: Format;
  fields: [string, string][];
}

export function fieldsOf(l: LogLine): LineFields {
  const parsed = Object.entries(l.parsed);
  if (parsed.length) return { format: null, fields: parsed };
  const text = stripAnsi(l.line);
  const format = detectFormat(text);
  if (format === 'json') {
    try {
      return { format, fields: flattenJson(JSON.parse(text)) };
    } catch {
      return { format: null, fields: [] };
    }
  }
  if (format === 'logfmt') return { format, fields: parseLogfmt(text) };
  return { format: null, fields: [] };
}
