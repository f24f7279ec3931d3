// Small edits of LogQL text that the UI makes for a person: add a matcher to the selector,
// add a label filter after the pipeline, tell a metric query from a log query. These work
// on the text (strings skipped), not a full parse: the server is the one that parses.

/** Index of the `}` closing the first stream selector, or -1. */
export function selectorEnd(q: string): number {
  let inString: string | null = null;
  let depth = 0;
  for (let i = 0; i < q.length; i++) {
    const c = q[i];
    if (inString) {
      if (c === '\\' && inString === '"') i++;
      else if (c === inString) inString = null;
      continue;
    }
    if (c === '"' || c === '`') inString = c;
    else if (c === '{') depth++;
    else if (c === '}' && depth > 0 && --depth === 0) return i;
  }
  return -1;
}

export function firstSelector(q: string): string | null {
  const end = selectorEnd(q);
  if (end < 0) return null;
  const start = q.lastIndexOf('{', end);
  return q.slice(start, end + 1);
}

const METRIC = /^\s*(\(|sum|avg|min|max|count|stddev|stdvar|topk|bottomk|sort|sort_desc|approx_topk|rate|rate_counter|count_over_time|bytes_over_time|bytes_rate|avg_over_time|sum_over_time|min_over_time|max_over_time|stddev_over_time|stdvar_over_time|quantile_over_time|first_over_time|last_over_time|absent_over_time|label_replace|vector|\d)/;

export function isMetricQuery(q: string): boolean {
  return METRIC.test(stripComments(q));
}

function stripComments(q: string): string {
  return q.replace(/^\s*#.*$/gm, '');
}

export function quote(v: string): string {
  return `"${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
}

/** Adds `name="value"` to the first selector, replacing a matcher on the same label (a
 *  switch from one pod to another); `name!="value"` is added beside the others, since a
 *  selector may exclude several values and needs its positive matchers to stay valid. */
export function addMatcher(q: string, name: string, value: string, negate: boolean): string {
  const end = selectorEnd(q);
  const m = `${name}${negate ? '!=' : '='}${quote(value)}`;
  if (end < 0) return `{${m}}`;
  const start = q.lastIndexOf('{', end);
  const inner = q.slice(start + 1, end);
  const existing = new RegExp(`(^|,)\\s*${name}\\s*(=|!=)\\s*"(?:[^"\\\\]|\\\\.)*"\\s*(?=,|$)`);
  const replaced = !negate && existing.test(inner) ? inner.replace(existing, (_all, lead: string) => `${lead}${lead ? ' ' : ''}${m}`) : `${inner.trim() ? `${inner.trimEnd()}, ` : ''}${m}`;
  return `${q.slice(0, start + 1)}${replaced}${q.slice(end)}`;
}

/** Appends `| name="value"` (or `!=`) to a log query, with the parser first when the field
 *  came from one the query does not run yet. */
export function addLabelFilter(q: string, name: string, value: string, negate: boolean, parser?: 'json' | 'logfmt' | null): string {
  let out = q.trimEnd();
  if (parser && !new RegExp(`\\|\\s*${parser}\\b`).test(out)) out += ` | ${parser}`;
  return `${out} | ${name}${negate ? '!=' : '='}${quote(value)}`;
}

/** The query for lines of the same stream around one line: just its selector. */
export function contextQuery(stream: Record<string, string>): string {
  const keys = Object.keys(stream).sort();
  return `{${keys.map((k) => `${k}=${quote(stream[k])}`).join(', ')}}`;
}

/** The log volume query Grafana draws: lines per level per step. */
export function volumeQuery(q: string, step: string): string | null {
  const sel = firstSelector(q);
  if (!sel) return null;
  const end = selectorEnd(q);
  // The line filters and parsers of a log query narrow the histogram as they narrow the list.
  const pipeline = isMetricQuery(q) ? '' : q.slice(end + 1).trim();
  return `sum by (level, detected_level) (count_over_time(${sel}${pipeline ? ` ${pipeline}` : ''} | drop __error__ [${step}]))`;
}
