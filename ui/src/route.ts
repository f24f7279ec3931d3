// The URL holds the whole state of a view (page, query, time range, options), so a link
// reproduces what the sender saw. Pages are one path segment deep (see vite.config.ts).

import { basePath } from './api';

export type Page = 'explore' | 'kubernetes' | 'labels';

export interface Route {
  page: Page;
  params: URLSearchParams;
}

const PAGES: Record<string, Page> = { '': 'explore', explore: 'explore', kubernetes: 'kubernetes', labels: 'labels' };

let base = '/';

export function initBase(): void {
  base = basePath();
}

export function current(): Route {
  const seg = location.pathname.slice(base.length).replace(/\/$/, '');
  return { page: PAGES[seg] ?? 'explore', params: new URLSearchParams(location.search) };
}

export function href(page: Page, params: Record<string, string | undefined> | URLSearchParams = {}): string {
  const q = params instanceof URLSearchParams ? params : new URLSearchParams(Object.entries(params).filter((e): e is [string, string] => e[1] !== undefined && e[1] !== ''));
  const s = q.toString();
  return `${base}${page === 'explore' ? '' : page}${s ? `?${s}` : ''}`;
}

type Listener = () => void;
const listeners: Listener[] = [];

export function onRoute(l: Listener): void {
  listeners.push(l);
}

window.addEventListener('popstate', () => listeners.forEach((l) => l()));

/** Goes to another view (a new history entry) and renders it. */
export function navigate(page: Page, params: Record<string, string | undefined> | URLSearchParams = {}): void {
  history.pushState(null, '', href(page, params));
  listeners.forEach((l) => l());
}

/** Records the state of the current view without re-rendering (e.g. a query just run). */
export function record(page: Page, params: Record<string, string | undefined>, push = true): void {
  const url = href(page, params);
  if (url === location.pathname + location.search) return;
  if (push) history.pushState(null, '', url);
  else history.replaceState(null, '', url);
}
