// The labels browser: every label name, its values (narrowed by what is already chosen),
// and a selector built by clicking, which opens in Explore. For a person who does not
// know LogQL, this is the way in.

import * as api from './api';
import { h, clear } from './dom';
import { quote } from './logql';
import { navigate, record } from './route';
import { msToNs, resolve, type TimeRange } from './time';
import { TimePicker } from './timepicker';
import type { View } from './view';

export function labelsView(root: HTMLElement, params: URLSearchParams): View {
  let range: TimeRange = { from: params.get('from') || 'now-1h', to: params.get('to') || 'now' };
  const chosen = new Map<string, Set<string>>();
  for (const [k, v] of params) if (k.startsWith('l.')) chosen.set(k.slice(2), new Set(v.split('|').filter(Boolean)));
  let active = params.get('label') ?? '';
  let ctl: AbortController | null = null;

  const namesBox = h('div', { class: 'label-names', 'data-testid': 'label-names' });
  const valuesBox = h('div', { class: 'label-values', 'data-testid': 'label-values' });
  const filterInput = h('input', { type: 'search', placeholder: 'Filter values', 'aria-label': 'Filter values', oninput: () => drawValues() });
  const selectorBox = h('code', { class: 'selector', 'data-testid': 'built-selector' });
  const status = h('div', { class: 'status' });
  let values: string[] = [];
  const picker = new TimePicker(range, (r) => {
    range = r;
    load();
  });

  root.appendChild(
    h(
      'div',
      { class: 'labels-page' },
      h('div', { class: 'toolbar' }, h('h2', null, 'Labels'), h('span', { class: 'spacer' }), picker.el),
      status,
      h('div', { class: 'labels-columns' }, namesBox, h('div', { class: 'values-column' }, filterInput, valuesBox)),
      h(
        'div',
        { class: 'selector-bar' },
        h('span', { class: 'muted' }, 'Selector'),
        selectorBox,
        h('span', { class: 'spacer' }),
        h('button', { onclick: () => (chosen.clear(), update()) }, 'Clear'),
        h('button', { onclick: () => openExplore(false) }, 'Show log rate'),
        h('button', { class: 'primary', 'data-testid': 'show-logs', onclick: () => openExplore(true) }, 'Show logs'),
      ),
    ),
  );

  function selector(except?: string): string {
    const parts: string[] = [];
    for (const [k, vs] of [...chosen].sort(([a], [b]) => a.localeCompare(b))) {
      if (k === except || vs.size === 0) continue;
      const list = [...vs];
      parts.push(list.length === 1 ? `${k}=${quote(list[0])}` : `${k}=~${quote(list.map((v) => v.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'))}`);
    }
    return parts.length ? `{${parts.join(', ')}}` : '';
  }

  function openExplore(logs: boolean) {
    const sel = selector() || '{service_name=~".+"}';
    navigate('explore', { q: logs ? sel : `sum by (service_name) (rate(${sel} [1m]))`, from: range.from, to: range.to });
  }

  function saveUrl() {
    const p: Record<string, string | undefined> = { from: range.from === 'now-1h' ? undefined : range.from, to: range.to === 'now' ? undefined : range.to, label: active || undefined };
    for (const [k, vs] of chosen) if (vs.size) p[`l.${k}`] = [...vs].join('|');
    record('labels', p, false);
  }

  function update() {
    selectorBox.textContent = selector() || '(choose label values)';
    saveUrl();
    drawNames(lastNames);
    if (active) loadValues(active);
  }

  let lastNames: string[] = [];
  function drawNames(names: string[]) {
    clear(namesBox);
    for (const n of names) {
      const count = chosen.get(n)?.size ?? 0;
      namesBox.appendChild(h('button', { class: `label-name${n === active ? ' active' : ''}${count ? ' chosen' : ''}`, onclick: () => ((active = n), update()) }, n, count ? h('span', { class: 'badge' }, String(count)) : null));
    }
  }

  function drawValues() {
    clear(valuesBox);
    const f = filterInput.value.toLowerCase();
    const set = chosen.get(active) ?? new Set<string>();
    const shown = values.filter((v) => v.toLowerCase().includes(f));
    if (!active) valuesBox.appendChild(h('div', { class: 'empty' }, 'Choose a label on the left to see its values.'));
    else if (!shown.length) valuesBox.appendChild(h('div', { class: 'empty' }, 'No values.'));
    for (const v of shown.slice(0, 2000)) {
      valuesBox.appendChild(
        h(
          'button',
          {
            class: `label-value${set.has(v) ? ' active' : ''}`,
            onclick: () => {
              const s = chosen.get(active) ?? new Set<string>();
              if (s.has(v)) s.delete(v);
              else s.add(v);
              chosen.set(active, s);
              update();
            },
          },
          v,
        ),
      );
    }
  }

  async function loadValues(name: string) {
    ctl?.abort();
    ctl = new AbortController();
    const r = resolve(range);
    try {
      values = await api.labelValues(name, msToNs(r.startMs), msToNs(r.endMs), selector(name) || undefined, ctl.signal);
      drawValues();
    } catch (e) {
      if ((e as Error).name !== 'AbortError') status.textContent = (e as Error).message;
    }
  }

  async function load() {
    const r = resolve(range);
    status.className = 'status';
    status.textContent = 'Loading…';
    try {
      lastNames = (await api.labelNames(msToNs(r.startMs), msToNs(r.endMs))).filter((n) => n !== '__name__');
      status.textContent = lastNames.length ? `${lastNames.length} labels in ${picker.el.textContent}` : 'No labels in this time range: has anything been pushed yet?';
      if (!active && lastNames.length) active = lastNames.includes('service_name') ? 'service_name' : lastNames[0];
      update();
    } catch (e) {
      status.className = 'status error';
      status.textContent = (e as Error).message;
    }
  }

  load();
  return {
    destroy: () => ctl?.abort(),
    key: (e) => (e.key === 't' ? (picker.toggle(), true) : false),
  };
}
