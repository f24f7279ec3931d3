// Charts with uPlot: the log volume histogram (stacked by level, drag to zoom, markers for
// container terminations) and time series for metric queries.

import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { Series } from './api';
import { LEVELS, type Level, normalizeLevel } from './fields';
import { h } from './dom';
import { utc } from './time';

export const LEVEL_COLORS: Record<Level, string> = {
  critical: '#a21caf',
  error: '#e5484d',
  warn: '#f5a524',
  info: '#2f9e6e',
  debug: '#3b82f6',
  trace: '#8b93a7',
  unknown: '#9aa4b2',
};

const PALETTE = ['#3b82f6', '#e5484d', '#2f9e6e', '#f5a524', '#a21caf', '#0ea5e9', '#f97316', '#14b8a6', '#8b5cf6', '#db2777'];

export interface Marker {
  ms: number;
  label: string;
}

interface ChartHost {
  destroy(): void;
}

/** uPlot's dates in the zone the rest of the page shows. */
function tzDate(ts: number): Date {
  return utc() ? uPlot.tzDate(new Date(ts * 1e3), 'Etc/UTC') : new Date(ts * 1e3);
}

function axisColor(): string {
  return getComputedStyle(document.documentElement).getPropertyValue('--muted').trim() || '#888';
}

function gridColor(): string {
  return getComputedStyle(document.documentElement).getPropertyValue('--grid').trim() || 'rgba(128,128,128,0.15)';
}

/** Keeps the chart as wide as its box. */
function fit(el: HTMLElement, plot: uPlot, height: number): () => void {
  const ro = new ResizeObserver(() => {
    const w = el.clientWidth;
    if (w > 0 && Math.abs(w - plot.width) > 1) plot.setSize({ width: w, height });
  });
  ro.observe(el);
  return () => ro.disconnect();
}

function markersPlugin(markers: Marker[]): uPlot.Plugin {
  return {
    hooks: {
      draw: (u) => {
        const ctx = u.ctx;
        ctx.save();
        ctx.strokeStyle = '#e5484d';
        ctx.fillStyle = '#e5484d';
        ctx.lineWidth = 2 * devicePixelRatio;
        ctx.setLineDash([4 * devicePixelRatio, 3 * devicePixelRatio]);
        ctx.font = `${11 * devicePixelRatio}px system-ui, sans-serif`;
        // uPlot leaves the axis labels' alignment in the context.
        ctx.textAlign = 'left';
        ctx.textBaseline = 'alphabetic';
        for (const m of markers) {
          const x = Math.round(u.valToPos(m.ms / 1000, 'x', true));
          if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) continue;
          ctx.beginPath();
          ctx.moveTo(x, u.bbox.top);
          ctx.lineTo(x, u.bbox.top + u.bbox.height);
          ctx.stroke();
          ctx.fillText(`✕ ${m.label}`, x + 4 * devicePixelRatio, u.bbox.top + 12 * devicePixelRatio);
        }
        ctx.restore();
      },
    },
  };
}

export interface Histogram extends ChartHost {
  totals: Record<string, number>;
}

/** The volume histogram. `series` is the matrix of the level query; `onZoom` gets the
 *  dragged range in milliseconds. */
export function histogram(el: HTMLElement, series: Series[], startMs: number, endMs: number, stepS: number, markers: Marker[], onZoom: (fromMs: number, toMs: number) => void): Histogram {
  const n = Math.max(1, Math.floor((endMs - startMs) / 1000 / stepS) + 1);
  const t0 = Math.ceil(startMs / 1000 / stepS) * stepS;
  const xs = Array.from({ length: n }, (_, i) => t0 + i * stepS);
  const byLevel = new Map<Level, number[]>();
  const totals: Record<string, number> = {};
  for (const s of series) {
    const lv = normalizeLevel(s.metric.detected_level || s.metric.level);
    let arr = byLevel.get(lv);
    if (!arr) byLevel.set(lv, (arr = new Array<number>(n).fill(0)));
    for (const [ts, v] of s.values) {
      const i = Math.round((ts - t0) / stepS);
      const num = Number(v);
      if (i >= 0 && i < n && Number.isFinite(num)) {
        arr[i] += num;
        totals[lv] = (totals[lv] ?? 0) + num;
      }
    }
  }
  const levels = LEVELS.filter((l) => byLevel.has(l));
  // Stack: cumulative sums, drawn largest first so each level paints its own band.
  const cumulative: number[][] = [];
  let acc = new Array<number>(n).fill(0);
  for (const l of levels) {
    const src = byLevel.get(l)!;
    acc = acc.map((v, i) => v + src[i]);
    cumulative.push(acc);
  }
  const order = levels.map((_, i) => i).reverse();
  const bars = uPlot.paths.bars!({ size: [0.9, 40], align: 0 });
  const height = 120;
  const opts: uPlot.Options = {
    width: Math.max(300, el.clientWidth),
    height,
    legend: { show: false },
    tzDate,
    cursor: { drag: { x: true, y: false, setScale: false }, points: { show: false } },
    select: { show: true, left: 0, top: 0, width: 0, height: 0 },
    scales: { x: { time: true, range: [startMs / 1000, endMs / 1000] }, y: { range: (_u, _min, max) => [0, Math.max(1, max * 1.1)] } },
    axes: [
      { stroke: axisColor, grid: { stroke: gridColor, width: 1 }, ticks: { show: false }, size: 36 },
      { stroke: axisColor, grid: { stroke: gridColor, width: 1 }, ticks: { show: false }, size: 44, values: (_u, v) => v.map((x) => (x >= 1000 ? `${+(x / 1000).toFixed(1)}k` : String(x))) },
    ],
    series: [{}, ...order.map((i) => ({ label: levels[i], fill: LEVEL_COLORS[levels[i]], stroke: LEVEL_COLORS[levels[i]], width: 0, paths: bars, points: { show: false } }))],
    hooks: {
      setSelect: [
        (u) => {
          if (u.select.width < 4) return;
          const from = u.posToVal(u.select.left, 'x') * 1000;
          const to = u.posToVal(u.select.left + u.select.width, 'x') * 1000;
          u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
          onZoom(Math.floor(from), Math.ceil(to));
        },
      ],
    },
    plugins: [markersPlugin(markers)],
  };
  const data: uPlot.AlignedData = [xs, ...order.map((i) => cumulative[i])];
  const plot = new uPlot(opts, data, el);
  const unfit = fit(el, plot, height);
  return {
    totals,
    destroy: () => {
      unfit();
      plot.destroy();
    },
  };
}

export function seriesName(metric: Record<string, string>): string {
  const keys = Object.keys(metric);
  if (!keys.length) return '{}';
  return `{${keys.map((k) => `${k}="${metric[k]}"`).join(', ')}}`;
}

/** A time series chart of a metric query's matrix. */
export function timeseries(el: HTMLElement, series: Series[], startMs: number, endMs: number, onZoom: (fromMs: number, toMs: number) => void): ChartHost {
  const stamps = new Set<number>();
  for (const s of series) for (const [t] of s.values) stamps.add(t);
  const xs = [...stamps].sort((a, b) => a - b);
  const index = new Map(xs.map((x, i) => [x, i]));
  const ys = series.map((s) => {
    const arr: (number | null)[] = new Array(xs.length).fill(null);
    for (const [t, v] of s.values) arr[index.get(t)!] = Number(v);
    return arr;
  });
  const height = 260;
  const opts: uPlot.Options = {
    width: Math.max(300, el.clientWidth),
    height,
    cursor: { drag: { x: true, y: false, setScale: false } },
    scales: { x: { time: true, range: [startMs / 1000, endMs / 1000] } },
    axes: [
      { stroke: axisColor, grid: { stroke: gridColor, width: 1 } },
      { stroke: axisColor, grid: { stroke: gridColor, width: 1 }, size: 60 },
    ],
    legend: { show: false },
    tzDate,
    series: [{}, ...series.map((s, i) => ({ label: seriesName(s.metric), stroke: PALETTE[i % PALETTE.length], width: 1.5, spanGaps: false, points: { show: xs.length < 60 } }))],
    hooks: {
      setSelect: [
        (u) => {
          if (u.select.width < 4) return;
          const from = u.posToVal(u.select.left, 'x') * 1000;
          const to = u.posToVal(u.select.left + u.select.width, 'x') * 1000;
          u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
          onZoom(Math.floor(from), Math.ceil(to));
        },
      ],
    },
  };
  const plot = new uPlot(opts, [xs, ...ys] as uPlot.AlignedData, el);
  const unfit = fit(el, plot, height);
  return {
    destroy: () => {
      unfit();
      plot.destroy();
    },
  };
}

/** The levels under the histogram with their counts; clicking one keeps only that level. */
export function levelLegend(totals: Record<string, number>, onPick: (level: Level) => void): HTMLElement {
  return h(
    'div',
    { class: 'legend' },
    LEVELS.filter((l) => totals[l]).map((l) =>
      l === 'unknown'
        ? h('span', { class: 'legend-item' }, h('i', { class: 'swatch', style: `background:${LEVEL_COLORS[l]}` }), `${l} ${totals[l].toLocaleString()}`)
        : h(
            'button',
            { class: 'legend-item legend-button', title: `Show only ${l} lines`, 'data-level': l, onclick: () => onPick(l) },
            h('i', { class: 'swatch', style: `background:${LEVEL_COLORS[l]}` }),
            `${l} ${totals[l].toLocaleString()}`,
          ),
    ),
  );
}

/** Each series' labels with its last, maximum and mean value, under a metric chart. */
export function seriesTable(series: Series[]): HTMLElement {
  const fmt = (v: number) => (Number.isInteger(v) ? v.toLocaleString() : v.toPrecision(4));
  const rows = series.map((s, i) => {
    const vals = s.values.map(([, v]) => Number(v)).filter(Number.isFinite);
    const last = vals.length ? vals[vals.length - 1] : NaN;
    const max = vals.length ? Math.max(...vals) : NaN;
    const mean = vals.length ? vals.reduce((a, b) => a + b, 0) / vals.length : NaN;
    return h(
      'tr',
      null,
      h('td', null, h('i', { class: 'swatch', style: `background:${PALETTE[i % PALETTE.length]}` })),
      h('td', { class: 'field-name' }, seriesName(s.metric)),
      h('td', { class: 'num' }, Number.isNaN(last) ? '—' : fmt(last)),
      h('td', { class: 'num' }, Number.isNaN(max) ? '—' : fmt(max)),
      h('td', { class: 'num' }, Number.isNaN(mean) ? '—' : fmt(mean)),
    );
  });
  return h('table', { class: 'series-table', 'data-testid': 'series-table' }, h('thead', null, h('tr', null, h('th'), h('th', null, 'Series'), h('th', { class: 'num' }, 'Last'), h('th', { class: 'num' }, 'Max'), h('th', { class: 'num' }, 'Mean'))), h('tbody', null, rows));
}
