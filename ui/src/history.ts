// Queries a person ran, newest first, kept in this browser only (localStorage).

const KEY = 'kiroku.history';
const MAX = 100;

export interface HistoryEntry {
  query: string;
  at: number;
}

export function load(): HistoryEntry[] {
  try {
    const v = JSON.parse(localStorage.getItem(KEY) ?? '[]') as unknown;
    return Array.isArray(v) ? (v as HistoryEntry[]).filter((e) => typeof e?.query === 'string') : [];
  } catch {
    return [];
  }
}

export function remember(query: string): void {
  const q = query.trim();
  if (!q) return;
  const list = load().filter((e) => e.query !== q);
  list.unshift({ query: q, at: Date.now() });
  localStorage.setItem(KEY, JSON.stringify(list.slice(0, MAX)));
}

export function forget(): void {
  localStorage.removeItem(KEY);
}
