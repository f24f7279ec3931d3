// kiroku's web UI: the shell (navigation, theme, settings, keyboard shortcuts) and the
// router that mounts one view at a time. Start reading from `explore.ts` (the log
// explorer), `kube.ts` (the Kubernetes view) and `api.ts` (the Loki API client).

import './style.css';
import { setTenant, tenant } from './api';
import { h, clear } from './dom';
import { explore } from './explore';
import { kubeView } from './kube';
import { labelsView } from './labels';
import { current, href, initBase, navigate, onRoute, type Page } from './route';
import { setUtc, utc } from './time';
import type { View } from './view';

const THEME_KEY = 'kiroku.theme';

function applyTheme(t: string | null): void {
  const dark = t ? t === 'dark' : matchMedia('(prefers-color-scheme: dark)').matches;
  document.documentElement.dataset.theme = dark ? 'dark' : 'light';
}

function toggleTheme(): void {
  const next = document.documentElement.dataset.theme === 'dark' ? 'light' : 'dark';
  localStorage.setItem(THEME_KEY, next);
  applyTheme(next);
  // Charts read their colours when drawn: draw them again.
  render();
}

initBase();
applyTheme(localStorage.getItem(THEME_KEY));

function logo(): SVGElement {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 32 32');
  svg.setAttribute('class', 'logo');
  svg.setAttribute('aria-hidden', 'true');
  const rect = document.createElementNS(ns, 'rect');
  for (const [k, v] of Object.entries({ width: '32', height: '32', rx: '6', fill: 'var(--accent)' })) rect.setAttribute(k, v);
  const path = document.createElementNS(ns, 'path');
  for (const [k, v] of Object.entries({ d: 'M8 9h16M8 14h11M8 19h14M8 24h8', stroke: '#fff', 'stroke-width': '2.6', 'stroke-linecap': 'round' })) path.setAttribute(k, v);
  svg.append(rect, path);
  return svg;
}

const NAV: { page: Page; label: string; key: string }[] = [
  { page: 'explore', label: 'Explore', key: '1' },
  { page: 'kubernetes', label: 'Kubernetes', key: '2' },
  { page: 'labels', label: 'Labels', key: '3' },
];

const navLinks = NAV.map((n) =>
  h(
    'a',
    {
      href: href(n.page),
      class: 'nav-link',
      'data-page': n.page,
      title: `${n.label} (${n.key})`,
      onclick: (e: Event) => {
        const me = e as MouseEvent;
        if (me.ctrlKey || me.metaKey || me.shiftKey || me.button !== 0) return;
        e.preventDefault();
        navigate(n.page);
      },
    },
    n.label,
  ),
);

const main = h('main', { class: 'main' });
const header = h(
  'header',
  { class: 'topbar' },
  h('a', { class: 'brand', href: href('explore'), title: 'kiroku 記録' }, logo(), 'kiroku'),
  h('nav', { class: 'nav' }, navLinks),
  h('span', { class: 'spacer' }),
  h('button', { class: 'ghost', title: 'Keyboard shortcuts (?)', onclick: () => showHelp() }, '?'),
  h('button', { class: 'ghost', title: 'Settings', 'data-testid': 'settings-button', onclick: () => showSettings() }, 'Settings'),
  h('button', { class: 'ghost', title: 'Light or dark theme (d)', 'data-testid': 'theme-toggle', onclick: toggleTheme }, '◐'),
);
const app = document.getElementById('app')!;
app.appendChild(header);
app.appendChild(main);

let view: View | null = null;

function render(): void {
  view?.destroy();
  clear(main);
  const r = current();
  for (const a of navLinks) a.classList.toggle('active', a.dataset.page === r.page);
  document.title = `${NAV.find((n) => n.page === r.page)?.label ?? ''} · kiroku`;
  view = r.page === 'kubernetes' ? kubeView(main, r.params) : r.page === 'labels' ? labelsView(main, r.params) : explore(main, r.params);
}

onRoute(render);
render();

function modal(title: string, body: HTMLElement): () => void {
  const close = () => overlay.remove();
  const overlay = h(
    'div',
    { class: 'overlay', onclick: (e: Event) => e.target === overlay && close() },
    h('div', { class: 'panel small-panel', role: 'dialog', 'aria-label': title }, h('div', { class: 'panel-head' }, h('strong', null, title), h('span', { class: 'spacer' }), h('button', { onclick: () => close(), 'aria-label': 'Close' }, '✕')), body),
  );
  document.body.appendChild(overlay);
  return close;
}

function showHelp(): void {
  const rows: [string, string][] = [
    ['Enter / Ctrl+Enter', 'run the query (Shift+Enter: new line)'],
    ['/', 'focus the query editor'],
    ['t', 'time range'],
    ['l', 'live tail on/off'],
    ['h', 'query history'],
    ['j / k', 'scroll the lines'],
    ['Esc', 'close a panel'],
    ['1 / 2 / 3', 'Explore, Kubernetes, Labels'],
    ['d', 'light or dark theme'],
    ['?', 'this help'],
  ];
  modal('Keyboard shortcuts', h('table', { class: 'fields' }, rows.map(([k, v]) => h('tr', null, h('td', null, h('kbd', null, k)), h('td', null, v)))));
}

function showSettings(): void {
  const input = h('input', { type: 'text', value: tenant(), placeholder: 'empty: single-tenant mode', 'aria-label': 'Tenant', spellcheck: 'false' });
  const utcBox = h('input', { type: 'checkbox', checked: utc(), 'data-testid': 'utc-setting' });
  let close = () => {};
  const save = () => {
    setTenant(input.value);
    setUtc(utcBox.checked);
    close();
    render();
  };
  input.addEventListener('keydown', (e) => e.key === 'Enter' && save());
  close = modal(
    'Settings',
    h(
      'div',
      { class: 'settings' },
      h('label', null, 'Tenant (X-Scope-OrgID)', input),
      h('p', { class: 'muted' }, 'Only needed when the server runs with --auth header. Several tenants read together as a|b. Kept in this browser.'),
      h('label', { class: 'checkbox' }, utcBox, 'Show and type times in UTC (otherwise in this browser’s time zone)'),
      h('button', { class: 'primary', onclick: save, 'data-testid': 'settings-save' }, 'Save'),
    ),
  );
  input.focus();
}

document.addEventListener('keydown', (e) => {
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  const t = e.target as HTMLElement;
  if (t.closest('input, textarea, select, .cm-editor, [contenteditable="true"]')) {
    // Escape leaves a field for the shortcuts, unless the field used it (closing completions).
    if (e.key === 'Escape' && !e.defaultPrevented) (document.activeElement as HTMLElement | null)?.blur?.();
    return;
  }
  if (view?.key?.(e)) {
    e.preventDefault();
    return;
  }
  const nav = NAV.find((n) => n.key === e.key);
  if (nav) navigate(nav.page);
  else if (e.key === 'd') toggleTheme();
  else if (e.key === '?') showHelp();
  else if (e.key === 'Escape') document.querySelectorAll('.overlay').forEach((o) => o.remove());
  else return;
  e.preventDefault();
});
