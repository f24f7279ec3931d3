// What a line says about itself: its level, and its fields when it is JSON or logfmt.
// The server's `parsed` labels win when the query had a parser; otherwise the UI detects
// the format itself, as Grafana does, so expanding any line shows its fields.

import type { LogLine } from './api';
import { stripAnsi } from './ansi';
import { jsonFields } from './json';

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
  if (t.startsWith('{') && t.trimEnd().endsWith('}')) return jsonFields(t) ? 'json' : null;
  return parseLogfmt(t).length >= 2 ? 'logfmt' : null;
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
  const raw = format === 'json' ? jsonFields(text.trim()) : format === 'logfmt' ? parseLogfmt(text) : null;
  if (!format || !raw) return { format: null, fields: [] };
  // A field named like one of the line's labels is `<name>_extracted` after Loki's parsers.
  const taken = (k: string) => k in l.stream || k in l.metadata;
  return { format, fields: raw.map(([k, v]) => [taken(k) ? `${k}_extracted` : k, v]) };
}
