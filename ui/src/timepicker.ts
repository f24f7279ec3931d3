// The time range picker: relative presets, or an absolute from/to typed as
// `YYYY-MM-DD hh:mm:ss` or `now-3h`.

import { h } from './dom';
import { PRESETS, describe, formatAbsolute, parseTime, resolve, type TimeRange } from './time';

export class TimePicker {
  readonly el: HTMLElement;
  private readonly button: HTMLButtonElement;
  private popover: HTMLElement | null = null;

  constructor(
    private range: TimeRange,
    private readonly onChange: (r: TimeRange) => void,
  ) {
    this.button = h('button', { class: 'timepicker-button', 'data-testid': 'time-picker', title: 'Time range (t)', onclick: () => this.toggle() }, describe(range));
    this.el = h('div', { class: 'timepicker' }, this.button);
    document.addEventListener('mousedown', (e) => {
      if (this.popover && !this.el.contains(e.target as Node)) this.close();
    });
  }

  set(r: TimeRange): void {
    this.range = r;
    this.button.textContent = describe(r);
  }

  toggle(): void {
    if (this.popover) this.close();
    else this.open();
  }

  close(): void {
    this.popover?.remove();
    this.popover = null;
  }

  private open(): void {
    const now = resolve(this.range);
    const abs = (v: string, ms: number) => (v.startsWith('now') ? v : formatAbsolute(ms));
    const from = h('input', { type: 'text', value: abs(this.range.from, now.startMs), 'aria-label': 'From', 'data-testid': 'time-from', spellcheck: 'false' });
    const to = h('input', { type: 'text', value: abs(this.range.to, now.endMs), 'aria-label': 'To', 'data-testid': 'time-to', spellcheck: 'false' });
    const err = h('div', { class: 'error-text' });
    const apply = () => {
      const f = from.value.trim();
      const t = to.value.trim();
      const fm = parseTime(f);
      const tm = parseTime(t);
      if (fm === null || tm === null) {
        err.textContent = 'Use now, now-15m, now-2d or 2026-11-20 10:00:00';
        return;
      }
      if (fm >= tm) {
        err.textContent = '"From" must be before "To"';
        return;
      }
      this.commit({ from: f, to: t });
    };
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Enter') apply();
      if (e.key === 'Escape') this.close();
    };
    from.addEventListener('keydown', onKey);
    to.addEventListener('keydown', onKey);
    this.popover = h(
      'div',
      { class: 'popover timepicker-popover' },
      h(
        'div',
        { class: 'presets' },
        PRESETS.map((p) => h('button', { class: p.from === this.range.from && this.range.to === 'now' ? 'active' : '', onclick: () => this.commit({ from: p.from, to: 'now' }) }, p.label)),
      ),
      h(
        'div',
        { class: 'absolute' },
        h('label', null, 'From', from),
        h('label', null, 'To', to),
        err,
        h('button', { class: 'primary', onclick: apply }, 'Apply time range'),
      ),
    );
    this.el.appendChild(this.popover);
    from.focus();
  }

  private commit(r: TimeRange): void {
    this.set(r);
    this.close();
    this.onChange(r);
  }
}
