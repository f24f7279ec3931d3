// The log list: virtualised so tens of thousands of lines scroll smoothly. Collapsed rows
// have one fixed height; an expanded row is measured once drawn. Only the rows in view
// (plus a margin) exist in the DOM; a prefix sum of heights finds them by binary search.

import * as api from './api';
import type { LogLine } from './api';
import { renderAnsi } from './ansi';
import { h, clear, toast } from './dom';
import { fieldsOf, levelOf, type Format } from './fields';
import { indentJson } from './json';
import { TERMINATION } from './kubemodel';
import { formatLineTime } from './time';

export const ROW_HEIGHT = 22;
const OVERSCAN = 12;

export type FieldKind = 'label' | 'metadata' | 'parsed';

export interface ListActions {
  filter(kind: FieldKind, name: string, value: string, negate: boolean, format: Format): void;
  context(line: LogLine): void;
}

export { TERMINATION };

/** Where a line came from, in a few characters: the pod, else the service. */
function sourceOf(l: LogLine): string {
  return l.stream.pod ?? l.stream.service_name ?? l.stream.job ?? '';
}

export class LogList {
  readonly el: HTMLElement;
  private readonly spacer: HTMLElement;
  private lines: LogLine[] = [];
  private readonly expanded = new Map<string, number>();
  private offsets = new Float64Array(1);
  private highlightKey: string | null = null;
  private showSource = false;
  private frame = 0;
  private readonly rendered = new Map<string, HTMLElement>();

  /** Called when the reader scrolls near the oldest line drawn (to fetch older ones). */
  onNearEnd: (() => void) | null = null;

  constructor(private readonly actions: ListActions) {
    this.spacer = h('div', { class: 'loglist-spacer' });
    this.el = h('div', { class: 'loglist', tabindex: 0, role: 'log', 'data-testid': 'log-list' }, this.spacer);
    this.el.addEventListener('scroll', () => this.schedule());
    new ResizeObserver(() => this.schedule()).observe(this.el);
  }

  get size(): number {
    return this.lines.length;
  }

  get all(): readonly LogLine[] {
    return this.lines;
  }

  set(lines: LogLine[], highlight: string | null = null): void {
    this.lines = lines;
    // A column naming the pod (or service) when the lines come from more than one stream.
    const first = lines[0]?.stream;
    this.showSource = lines.some((l) => l.stream !== first && api.streamId(l.stream) !== api.streamId(first!));
    this.expanded.clear();
    this.highlightKey = highlight;
    this.reflow();
    this.el.scrollTop = 0;
    if (highlight) {
      const i = lines.findIndex((l) => l.key === highlight);
      if (i >= 0) this.el.scrollTop = Math.max(0, this.offsets[i] - this.el.clientHeight / 2);
    }
    this.render();
  }

  /** New lines (newest first) on top, for live tail; the view keeps its place when the
   *  reader has scrolled away from the top. */
  prepend(lines: LogLine[], max: number): void {
    if (!lines.length) return;
    const atTop = this.el.scrollTop < ROW_HEIGHT;
    this.lines = lines.concat(this.lines);
    if (this.lines.length > max) this.lines.length = max;
    this.reflow();
    if (!atTop) this.el.scrollTop += lines.length * ROW_HEIGHT;
    this.render();
  }

  private reflow(): void {
    const n = this.lines.length;
    const off = new Float64Array(n + 1);
    for (let i = 0; i < n; i++) off[i + 1] = off[i] + (this.expanded.get(this.lines[i].key) ?? ROW_HEIGHT);
    this.offsets = off;
    this.spacer.querySelector(':scope > .empty')?.remove();
    this.spacer.style.height = `${off[n]}px`;
    for (const el of this.rendered.values()) el.remove();
    this.rendered.clear();
  }

  private schedule(): void {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.render();
    });
  }

  private indexAt(y: number): number {
    let lo = 0;
    let hi = this.lines.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.offsets[mid + 1] <= y) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Older lines (newest first) below the ones shown. */
  append(lines: LogLine[]): void {
    if (!lines.length) return;
    const seen = new Set(this.lines.slice(-lines.length * 2).map((l) => l.key));
    this.lines = this.lines.concat(lines.filter((l) => !seen.has(l.key)));
    this.reflow();
    this.render();
  }

  private render(): void {
    const top = this.el.scrollTop;
    const bottom = top + (this.el.clientHeight || 600);
    if (this.onNearEnd && this.lines.length && bottom > this.offsets[this.lines.length] - 40 * ROW_HEIGHT) this.onNearEnd();
    const first = Math.max(0, this.indexAt(top) - OVERSCAN);
    const last = Math.min(this.lines.length, this.indexAt(bottom) + OVERSCAN + 1);
    const want = new Set<string>();
    for (let i = first; i < last; i++) want.add(this.lines[i].key);
    for (const [k, el] of this.rendered) {
      if (!want.has(k)) {
        el.remove();
        this.rendered.delete(k);
      }
    }
    let remeasure = false;
    for (let i = first; i < last; i++) {
      const line = this.lines[i];
      let el = this.rendered.get(line.key);
      if (!el) {
        el = this.row(line);
        this.rendered.set(line.key, el);
        this.spacer.appendChild(el);
        if (this.expanded.has(line.key) && this.expanded.get(line.key) === -1) remeasure = true;
      }
      el.style.transform = `translateY(${this.offsets[i]}px)`;
    }
    if (remeasure) this.measure();
  }

  /** Heights of expanded rows drawn for the first time. */
  private measure(): void {
    let changed = false;
    for (const [k, el] of this.rendered) {
      if (this.expanded.get(k) === -1) {
        this.expanded.set(k, Math.ceil(el.getBoundingClientRect().height));
        changed = true;
      }
    }
    if (changed) {
      this.reflow();
      this.render();
    }
  }

  toggle(line: LogLine): void {
    if (this.expanded.has(line.key)) this.expanded.delete(line.key);
    else this.expanded.set(line.key, -1);
    this.reflow();
    this.render();
  }

  private row(line: LogLine): HTMLElement {
    const level = levelOf(line);
    const isOpen = this.expanded.has(line.key);
    const text = h('span', { class: 'log-text' });
    renderAnsi(text, line.line);
    const cls = ['log-row', `lvl-${level}`, isOpen ? 'open' : '', line.key === this.highlightKey ? 'highlight' : '', line.line.includes(TERMINATION) ? 'termination' : ''].filter(Boolean).join(' ');
    const head = h(
      'div',
      { class: 'log-head', onclick: () => this.toggle(line), title: 'Click to show labels and fields' },
      h('span', { class: 'log-level', title: level }),
      h('span', { class: 'log-time' }, formatLineTime(line.ms)),
      this.showSource ? h('span', { class: 'log-source', title: api.selectorOf(line.stream) }, sourceOf(line)) : null,
      text,
    );
    const el = h('div', { class: cls, 'data-key': line.key, 'data-testid': 'log-row' }, head);
    if (isOpen) el.appendChild(this.details(line));
    return el;
  }

  private details(line: LogLine): HTMLElement {
    const { format, fields } = fieldsOf(line);
    const parsedFromServer = Object.keys(line.parsed).length > 0;
    const table = (title: string, kind: FieldKind, pairs: [string, string][], fmt: Format) =>
      pairs.length
        ? h(
            'div',
            { class: 'field-group' },
            h('div', { class: 'field-title' }, title),
            h(
              'table',
              { class: 'fields', 'data-testid': `fields-${kind}` },
              pairs.map(([k, v]) =>
                h(
                  'tr',
                  null,
                  h(
                    'td',
                    { class: 'field-actions' },
                    h('button', { class: 'icon', title: `Filter for ${k}="${v}"`, 'aria-label': `filter for ${k}`, onclick: () => this.actions.filter(kind, k, v, false, fmt) }, '+'),
                    h('button', { class: 'icon', title: `Filter out ${k}="${v}"`, 'aria-label': `filter out ${k}`, onclick: () => this.actions.filter(kind, k, v, true, fmt) }, '−'),
                  ),
                  h('td', { class: 'field-name' }, k),
                  h('td', { class: 'field-value' }, v),
                ),
              ),
            ),
          )
        : null;
    const labels = Object.entries(line.stream).sort(([a], [b]) => a.localeCompare(b));
    const meta = Object.entries(line.metadata).sort(([a], [b]) => a.localeCompare(b));
    const full = h('pre', { class: 'log-full' });
    renderAnsi(full, format === 'json' ? indentJson(line.line) : line.line);
    const box = h(
      'div',
      { class: 'log-details', 'data-testid': 'log-details' },
      full,
      h(
        'div',
        { class: 'detail-actions' },
        h('button', { onclick: () => this.actions.context(line), 'data-testid': 'show-context' }, 'Show context'),
        h(
          'button',
          {
            onclick: () => {
              navigator.clipboard?.writeText(line.line).then(
                () => toast('Line copied'),
                () => toast('Copying needs a secure (https or localhost) page'),
              );
            },
          },
          'Copy line',
        ),
        h('span', { class: 'muted' }, `${line.ts} ns`),
      ),
      h(
        'div',
        { class: 'field-groups' },
        table('Labels', 'label', labels, null),
        table('Structured metadata', 'metadata', meta, null),
        table(parsedFromServer ? 'Parsed fields' : format ? `Fields (${format})` : 'Fields', 'parsed', fields, parsedFromServer ? null : format),
      ),
    );
    box.addEventListener('click', (e) => e.stopPropagation());
    return box;
  }

  /** Empties the list and says why. */
  message(text: string | Node): void {
    this.lines = [];
    this.expanded.clear();
    this.reflow();
    clear(this.spacer);
    this.spacer.style.height = 'auto';
    this.spacer.appendChild(h('div', { class: 'empty' }, text));
  }

  scrollBy(rows: number): void {
    this.el.scrollTop += rows * ROW_HEIGHT;
  }
}
