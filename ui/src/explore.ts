// Explore: the LogQL editor, time range, volume histogram or metric chart, the log list,
// line context and live tail. Everything a link needs is in the URL:
// `?q=<logql>&from=now-1h&to=now&limit=1000&live=1`.

import * as api from './api';
import type { LogLine } from './api';
import { histogram, levelLegend, seriesTable, timeseries, type Marker } from './chart';
import { h, clear } from './dom';
import { createEditor, type Editor, type Suggestions } from './editor';
import { parseLogfmt } from './fields';
import * as hist from './history';
import { LogList, TERMINATION, type FieldKind } from './loglist';
import { addLabelFilter, addMatcher, contextQuery, firstSelector, isMetricQuery, volumeQuery } from './logql';
import { record } from './route';
import { durationOf, msToNs, resolve, stepFor, type TimeRange } from './time';
import { TimePicker } from './timepicker';
import type { View } from './view';

/** With no query, the newest lines of every stream: every stream has a service_name. */
export const DEFAULT_QUERY = '{service_name=~".+"}';
const LIMITS = [100, 500, 1000, 2000, 5000];
const LIVE_MAX = 10_000;

export function explore(root: HTMLElement, params: URLSearchParams): View {
  let range: TimeRange = { from: params.get('from') || 'now-1h', to: params.get('to') || 'now' };
  let limit = Number(params.get('limit')) || 1000;
  let live = params.get('live') === '1';
  let running: AbortController | null = null;
  let stopTail: (() => void) | null = null;
  let charts: { destroy(): void }[] = [];
  let labelCache: { key: string; names: Promise<string[]> } | null = null;
  const valueCache = new Map<string, Promise<string[]>>();
  const fieldCache = new Map<string, Promise<string[]>>();

  const rangeNs = () => {
    const r = resolve(range);
    return { ...r, start: msToNs(r.startMs), end: msToNs(r.endMs) };
  };

  const suggestions: Suggestions = {
    labelNames() {
      const r = rangeNs();
      const key = `${range.from}|${range.to}`;
      if (!labelCache || labelCache.key !== key) {
        labelCache = { key, names: api.labelNames(r.start, r.end) };
        valueCache.clear();
      }
      return labelCache.names;
    },
    labelValues(name) {
      let v = valueCache.get(name);
      if (!v) {
        const r = rangeNs();
        v = api.labelValues(name, r.start, r.end);
        valueCache.set(name, v);
        v.catch(() => valueCache.delete(name));
      }
      return v;
    },
    fieldNames(selector) {
      let v = fieldCache.get(selector);
      if (!v) {
        const r = rangeNs();
        v = api.detectedFields(selector, r.start, r.end).then((fs) => fs.map((f) => f.label));
        fieldCache.set(selector, v);
      }
      return v;
    },
  };

  const editorBox = h('div', { class: 'editor' });
  const status = h('div', { class: 'status', 'data-testid': 'status', role: 'status' });
  const chartBox = h('div', { class: 'chart', 'data-testid': 'chart' });
  const legendBox = h('div', { class: 'chart-legend' });
  const list = new LogList({
    filter: (kind, name, value, negate, format) => applyFilter(kind, name, value, negate, format),
    context: (line) => showContext(line),
  });
  const liveButton = h('button', { class: 'live-button', 'data-testid': 'live-button', title: 'Live tail (l)', onclick: () => toggleLive() }, 'Live');
  const limitSelect = h(
    'select',
    { 'aria-label': 'Line limit', title: 'Lines to fetch', onchange: () => ((limit = Number(limitSelect.value)), run()) },
    LIMITS.map((n) => h('option', { value: n, selected: n === limit }, `${n.toLocaleString()} lines`)),
  );
  const picker = new TimePicker(range, (r) => {
    range = r;
    labelCache = null;
    run();
  });
  const historyBox = h('div', { class: 'history-wrap' });
  const historyButton = h('button', { title: 'Query history', 'data-testid': 'history-button', onclick: () => toggleHistory() }, 'History');
  historyBox.appendChild(historyButton);

  const editor: Editor = createEditor(editorBox, params.get('q') ?? '', suggestions, () => run());

  root.appendChild(
    h(
      'div',
      { class: 'explore' },
      h(
        'div',
        { class: 'toolbar' },
        editorBox,
        h('div', { class: 'toolbar-buttons' }, picker.el, limitSelect, historyBox, liveButton, h('button', { class: 'primary', 'data-testid': 'run-query', title: 'Run query (Enter)', onclick: () => run() }, 'Run query')),
      ),
      status,
      h('div', { class: 'chart-wrap' }, chartBox, legendBox),
      list.el,
    ),
  );

  function query(): string {
    return editor.get().trim() || DEFAULT_QUERY;
  }

  function saveUrl(push: boolean) {
    record('explore', { q: editor.get().trim() || undefined, from: range.from === 'now-1h' ? undefined : range.from, to: range.to === 'now' ? undefined : range.to, limit: limit === 1000 ? undefined : String(limit), live: live ? '1' : undefined }, push);
  }

  function destroyCharts() {
    for (const c of charts) c.destroy();
    charts = [];
    clear(chartBox);
    clear(legendBox);
  }

  function showError(e: unknown) {
    if ((e as Error).name === 'AbortError') return;
    status.className = 'status error';
    status.textContent = (e as Error).message;
  }

  function zoom(fromMs: number, toMs: number) {
    range = { from: String(Math.floor(fromMs)), to: String(Math.ceil(toMs)) };
    picker.set(range);
    run();
  }

  async function run(push = true) {
    running?.abort();
    const ctl = new AbortController();
    running = ctl;
    const q = query();
    if (editor.get().trim()) hist.remember(q);
    saveUrl(push);
    if (live) {
      // Live: the tail alone fills the list; a histogram of the past would sit still.
      destroyCharts();
      startTail();
      return;
    }
    const r = rangeNs();
    const step = stepFor(r);
    status.className = 'status';
    status.textContent = 'Running…';
    const started = performance.now();
    try {
      if (isMetricQuery(q)) {
        list.el.hidden = true;
        const res = await api.queryRange({ query: q, start: r.start, end: r.end, step, limit }, ctl.signal);
        if (ctl.signal.aborted) return;
        destroyCharts();
        const series = res.kind === 'matrix' || res.kind === 'vector' ? res.series : [];
        if (series.length) {
          charts.push(timeseries(chartBox, series, r.startMs, r.endMs, zoom));
          legendBox.appendChild(seriesTable(series));
        }
        else chartBox.appendChild(h('div', { class: 'empty' }, 'No data in this time range.'));
        status.textContent = `${series.length} series · ${Math.round(performance.now() - started)} ms`;
        return;
      }
      list.el.hidden = false;
      const vq = volumeQuery(q, durationOf(step));
      const sel = firstSelector(q);
      const logs = api.queryRange({ query: q, start: r.start, end: r.end, limit, direction: 'backward' }, ctl.signal);
      const vol = vq ? api.queryRange({ query: vq, start: r.start, end: r.end, step }, ctl.signal).catch((e: unknown) => e as Error) : Promise.resolve(null);
      const marks = sel && /\bpod\s*=/.test(sel) ? terminationMarkers(sel, r.start, r.end, ctl.signal) : Promise.resolve([] as Marker[]);
      const res = await logs;
      if (ctl.signal.aborted) return;
      const lines = res.kind === 'streams' ? res.lines : [];
      if (!live) {
        if (lines.length) list.set(lines);
        else list.message(q === DEFAULT_QUERY ? firstSteps() : 'No lines in this time range. Widen the time range or loosen the query.');
        // A full page means there may be older lines: fetch them when the reader gets there.
        older = lines.length >= limit ? { query: q, start: r.start, loading: false } : null;
      }
      const took = Math.round(performance.now() - started);
      if (!live) status.textContent = `${lines.length.toLocaleString()} lines${lines.length >= limit ? ' (scroll down for older)' : ''} · ${took} ms`;
      const [v, m] = await Promise.all([vol, marks]);
      if (ctl.signal.aborted) return;
      destroyCharts();
      if (v instanceof Error) legendBox.appendChild(h('span', { class: 'error-text' }, `Histogram: ${v.message}`));
      else if (v && (v.kind === 'matrix' || v.kind === 'vector') && v.series.length) {
        const hg = histogram(chartBox, v.series, r.startMs, r.endMs, step, m, zoom);
        charts.push(hg);
        legendBox.appendChild(levelLegend(hg.totals, (level) => applyFilter('metadata', 'detected_level', level, false, null)));
        if (m.length) legendBox.appendChild(h('span', { class: 'legend-item termination-legend' }, `✕ ${m.length} container termination${m.length > 1 ? 's' : ''}`));
      }
    } catch (e) {
      showError(e);
      if (!live) list.message('The query failed: see the message above.');
    }
  }

  // Paging back: the next page ends where the oldest line shown is (end is exclusive).
  let older: { query: string; start: bigint; loading: boolean } | null = null;
  list.onNearEnd = () => {
    const o = older;
    if (!o || o.loading || live) return;
    const oldest = list.all[list.size - 1];
    if (!oldest) return;
    o.loading = true;
    const signal = running?.signal;
    api
      .queryRange({ query: o.query, start: o.start, end: BigInt(oldest.ts), limit, direction: 'backward' }, signal)
      .then((res) => {
        if (older !== o || signal?.aborted) return;
        const lines = res.kind === 'streams' ? res.lines : [];
        list.append(lines);
        o.loading = false;
        if (lines.length < limit) older = null;
        status.className = 'status';
        status.textContent = `${list.size.toLocaleString()} lines${older ? ' (scroll for older)' : ', all in this time range'}`;
      })
      .catch((e: unknown) => {
        if (older === o) older = null;
        showError(e);
      });
  };

  function applyFilter(kind: FieldKind, name: string, value: string, negate: boolean, format: 'json' | 'logfmt' | null) {
    const q = editor.get().trim() || DEFAULT_QUERY;
    editor.set(kind === 'label' ? addMatcher(q, name, value, negate) : addLabelFilter(q, name, value, negate, kind === 'parsed' ? format : null));
    run();
  }

  // Context: the lines just before and after one line, in its own stream.
  let contextPanel: HTMLElement | null = null;
  function closeContext() {
    contextPanel?.remove();
    contextPanel = null;
  }
  async function showContext(line: LogLine) {
    closeContext();
    const sel = contextQuery(line.stream);
    const ctxList = new LogList({ filter: () => undefined, context: (l) => showContext(l) });
    const head = h('div', { class: 'panel-head' }, h('strong', null, 'Context'), h('code', null, sel), h('span', { class: 'spacer' }), h('button', { onclick: () => openInExplore() }, 'Open in Explore'), h('button', { onclick: closeContext, 'aria-label': 'Close context' }, '✕'));
    contextPanel = h('div', { class: 'overlay', 'data-testid': 'context-panel', onclick: (e: Event) => e.target === contextPanel && closeContext() }, h('div', { class: 'panel' }, head, ctxList.el));
    document.body.appendChild(contextPanel);
    ctxList.message('Loading…');
    const ts = BigInt(line.ts);
    const openInExplore = () => {
      closeContext();
      editor.set(sel);
      range = { from: String(Math.floor(line.ms - 5 * 60e3)), to: String(Math.ceil(line.ms + 5 * 60e3)) };
      picker.set(range);
      run();
    };
    try {
      const day = 86_400_000_000_000n;
      const [before, after] = await Promise.all([
        api.queryRange({ query: sel, start: ts - day, end: ts + 1n, limit: 50, direction: 'backward' }),
        api.queryRange({ query: sel, start: ts, end: ts + day, limit: 51, direction: 'forward' }),
      ]);
      const seen = new Set<string>();
      const all: LogLine[] = [];
      for (const r of [after, before]) if (r.kind === 'streams') for (const l of r.lines) if (!seen.has(l.key)) (seen.add(l.key), all.push(l));
      api.sortNewestFirst(all);
      ctxList.set(all, line.key);
    } catch (e) {
      ctxList.message(`Cannot load the context: ${(e as Error).message}`);
    }
  }

  // History popover.
  let historyPanel: HTMLElement | null = null;
  function toggleHistory() {
    if (historyPanel) {
      historyPanel.remove();
      historyPanel = null;
      return;
    }
    const entries = hist.load();
    historyPanel = h(
      'div',
      { class: 'popover history-popover', 'data-testid': 'history' },
      entries.length
        ? entries.slice(0, 30).map((e) =>
            h(
              'button',
              {
                class: 'history-item',
                title: new Date(e.at).toLocaleString(),
                onclick: () => {
                  editor.set(e.query);
                  toggleHistory();
                  run();
                },
              },
              e.query,
            ),
          )
        : h('div', { class: 'muted' }, 'Queries you run appear here (kept in this browser).'),
      entries.length ? h('button', { class: 'link', onclick: () => (hist.forget(), toggleHistory()) }, 'Clear history') : null,
    );
    historyBox.appendChild(historyPanel);
  }

  // Live tail.
  let received = 0;
  function startTail() {
    stopTail?.();
    const q = query();
    if (isMetricQuery(q)) {
      status.textContent = 'Live tail works on log queries, not metric queries.';
      return;
    }
    received = 0;
    liveButton.classList.add('on');
    liveButton.textContent = 'Stop live';
    list.set([]);
    list.message('Waiting for new lines…');
    stopTail = api.tail(
      q,
      msToNs(Date.now() - 2000),
      (lines, dropped) => {
        received += lines.length;
        if (list.size === 0) list.set(lines);
        else list.prepend(lines, LIVE_MAX);
        status.className = 'status';
        status.textContent = `Live · ${received.toLocaleString()} line${received === 1 ? '' : 's'} received${dropped ? ` · ${dropped} dropped by the server` : ''}`;
      },
      (state, reason) => {
        if (state === 'open') {
          status.className = 'status';
          status.textContent = 'Live · connected, waiting for new lines';
        } else {
          status.className = 'status error';
          status.textContent = `Live tail stopped: ${reason ?? 'closed'}`;
          liveButton.classList.remove('on');
          liveButton.textContent = 'Live';
          live = false;
          saveUrl(false);
        }
      },
    );
  }
  function stopLive() {
    stopTail?.();
    stopTail = null;
    liveButton.classList.remove('on');
    liveButton.textContent = 'Live';
  }
  function toggleLive() {
    live = !live;
    if (live) run();
    else {
      stopLive();
      saveUrl(true);
      run();
    }
  }

  run(false);

  return {
    destroy() {
      running?.abort();
      stopLive();
      destroyCharts();
      closeContext();
    },
    key(e: KeyboardEvent) {
      if (e.key === '/') {
        editor.focus();
        return true;
      }
      if (e.key === 'l') return toggleLive(), true;
      if (e.key === 't') return picker.toggle(), true;
      if (e.key === 'h') return toggleHistory(), true;
      if (e.key === 'j') return list.scrollBy(3), true;
      if (e.key === 'k') return list.scrollBy(-3), true;
      if (e.key === 'Escape') {
        closeContext();
        picker.close();
        if (historyPanel) toggleHistory();
        return true;
      }
      return false;
    },
  };
}

/** What an empty server shows: how to send it logs. */
function firstSteps(): HTMLElement {
  const base = `${location.origin}${api.basePath()}`;
  const ts = `$(date +%s)000000000`;
  const curl = `curl -H 'Content-Type: application/json' ${base}loki/api/v1/push \\\n  -d '{"streams":[{"stream":{"app":"hello"},"values":[["'${ts}'","hello, kiroku"]]}]}'`;
  return h(
    'div',
    { class: 'first-steps', 'data-testid': 'first-steps' },
    h('h3', null, 'No logs in the last hour'),
    h('p', null, 'kiroku speaks the Loki push API: point Promtail, Grafana Alloy, Fluent Bit, Vector or the OpenTelemetry Collector at ', h('code', null, `${base}loki/api/v1/push`), ', run ', h('code', null, 'kiroku agent'), ' in a Kubernetes cluster, or try:'),
    h('pre', null, curl),
    h('p', { class: 'muted' }, 'Older logs? Widen the time range (t).'),
  );
}

/** Container terminations in the selected streams, for markers on the histogram. */
async function terminationMarkers(selector: string, start: bigint, end: bigint, signal: AbortSignal): Promise<Marker[]> {
  try {
    const r = await api.queryRange({ query: `${selector} |= "${TERMINATION}"`, start, end, limit: 200, direction: 'backward' }, signal);
    if (r.kind !== 'streams') return [];
    return r.lines.map((l) => {
      const f = Object.fromEntries(parseLogfmt(l.line));
      return { ms: l.ms, label: `${f.container ?? ''} ${f.reason ?? 'terminated'}${f.exit_code ? ` (${f.exit_code})` : ''}`.trim() };
    });
  } catch {
    return [];
  }
}
