// The Kubernetes view: namespaces → workloads → pods, built only from LogQL over what the
// agent writes: pod log streams (labels namespace, pod, container, node, app), one logfmt
// termination line per container exit (docs/agent.md), and Kubernetes events as the
// stream {job="integrations/kubernetes/eventhandler"}. Pods that no longer exist are still
// here: their logs are. Newest problems first.

import * as api from './api';
import { h, clear } from './dom';
import { quote } from './logql';
import { renderAnsi } from './ansi';
import { TERMINATION, isProblem, lastProblem, parseEvent, parseTermination, sortPods, workloadOf, type KubeEvent, type Pod, type Termination } from './kubemodel';
import { navigate, record } from './route';
import { ago, formatLineTime, msToNs, resolve, stepFor, type TimeRange } from './time';
import { TimePicker } from './timepicker';
import type { View } from './view';

const EVENTS_JOB = 'integrations/kubernetes/eventhandler';
/** Lines shown before a termination, for this many problem pods (the first ones). */
const LAST_LINES = 5;
const LAST_LINES_PODS = 8;
/** A pod with no line for this long before the range's end is shown as gone. */
const GONE_AFTER_MS = 5 * 60e3;

export function kubeView(root: HTMLElement, params: URLSearchParams): View {
  let range: TimeRange = { from: params.get('from') || 'now-24h', to: params.get('to') || 'now' };
  let ns = params.get('ns') ?? '';
  let ctl: AbortController | null = null;
  let lastLinesLoaded = 0;

  const nsBox = h('nav', { class: 'ns-list', 'data-testid': 'namespaces', 'aria-label': 'Namespaces' });
  const main = h('div', { class: 'kube-main', 'data-testid': 'kube-main' });
  const podFilter = h('input', { type: 'search', placeholder: 'Filter pods', 'aria-label': 'Filter pods', 'data-testid': 'pod-filter', value: params.get('pod') ?? '', oninput: () => applyPodFilter() });
  const status = h('div', { class: 'status', role: 'status' });
  const picker = new TimePicker(range, (r) => {
    range = r;
    saveUrl();
    loadNamespaces();
    if (ns) loadNamespace(ns);
  });

  root.appendChild(
    h(
      'div',
      { class: 'kube-page' },
      h('div', { class: 'toolbar' }, h('h2', null, 'Kubernetes'), h('span', { class: 'muted' }, 'pods from their logs, including pods that no longer exist'), h('span', { class: 'spacer' }), podFilter, picker.el),
      status,
      h('div', { class: 'kube-columns' }, nsBox, main),
    ),
  );

  /** Hides the pods (and workloads) whose name does not contain the filter text. */
  function applyPodFilter() {
    const f = podFilter.value.trim().toLowerCase();
    for (const section of main.querySelectorAll<HTMLElement>('.workload')) {
      let shown = 0;
      for (const row of section.querySelectorAll<HTMLElement>('.pod-row')) {
        const hide = f !== '' && !(row.dataset.pod ?? '').toLowerCase().includes(f);
        row.hidden = hide;
        const notes = row.nextElementSibling as HTMLElement | null;
        if (notes?.classList.contains('pod-notes')) notes.hidden = hide;
        if (!hide) shown++;
      }
      section.hidden = shown === 0;
    }
    saveUrl();
  }

  function saveUrl() {
    record('kubernetes', { ns: ns || undefined, pod: podFilter.value.trim() || undefined, from: range.from === 'now-24h' ? undefined : range.from, to: range.to === 'now' ? undefined : range.to }, false);
  }

  function ns_range() {
    const r = resolve(range);
    return { ...r, start: msToNs(r.startMs), end: msToNs(r.endMs) };
  }

  async function loadNamespaces() {
    const r = ns_range();
    status.className = 'status';
    status.textContent = 'Loading namespaces…';
    try {
      const [names, terms] = await Promise.all([
        api.labelValues('namespace', r.start, r.end),
        api.queryRange({ query: `{namespace=~".+"} |= ${quote(TERMINATION)}`, start: r.start, end: r.end, limit: 2000, direction: 'backward' }).catch(() => null),
      ]);
      const problems = new Map<string, { count: number; newest: number }>();
      if (terms?.kind === 'streams') {
        for (const l of terms.lines) {
          const t = parseTermination(l.line, l.ms, l.stream);
          if (!t || !isProblem(t)) continue;
          const p = problems.get(t.namespace) ?? { count: 0, newest: 0 };
          p.count++;
          p.newest = Math.max(p.newest, t.ms);
          problems.set(t.namespace, p);
        }
      }
      const sorted = [...names].sort((a, b) => (problems.get(b)?.newest ?? 0) - (problems.get(a)?.newest ?? 0) || a.localeCompare(b));
      clear(nsBox);
      if (!sorted.length) {
        nsBox.appendChild(h('div', { class: 'empty' }, 'No namespaces in this time range. Run `kiroku agent` in the cluster, or widen the range.'));
        status.textContent = '';
        return;
      }
      for (const n of sorted) {
        const p = problems.get(n);
        nsBox.appendChild(
          h(
            'button',
            { class: `ns${n === ns ? ' active' : ''}`, 'data-testid': 'namespace', 'data-ns': n, onclick: () => select(n) },
            h('span', { class: 'ns-name' }, n),
            p ? h('span', { class: 'badge danger', title: `${p.count} container terminations, the last ${ago(p.newest)}` }, `${p.count}✕`) : null,
          ),
        );
      }
      status.textContent = ns ? '' : 'Choose a namespace.';
      if (!ns) {
        clear(main);
        main.appendChild(h('div', { class: 'empty' }, 'Choose a namespace on the left: its workloads and pods appear here, the ones with problems first.'));
      }
    } catch (e) {
      status.className = 'status error';
      status.textContent = (e as Error).message;
    }
  }

  function select(n: string) {
    ns = n;
    if (status.textContent === 'Choose a namespace.') status.textContent = '';
    for (const b of nsBox.querySelectorAll<HTMLElement>('.ns')) b.classList.toggle('active', b.dataset.ns === n);
    saveUrl();
    loadNamespace(n);
  }

  async function loadNamespace(n: string) {
    ctl?.abort();
    const c = new AbortController();
    ctl = c;
    const r = ns_range();
    const step = stepFor(r, 240);
    const nsq = quote(n);
    clear(main);
    main.appendChild(h('div', { class: 'empty' }, `Loading ${n}…`));
    try {
      const [streams, seen, terms, events] = await Promise.all([
        api.series(`{namespace=${nsq}, pod=~".+"}`, r.start, r.end, c.signal),
        api.queryRange({ query: `sum by (pod) (count_over_time({namespace=${nsq}, pod=~".+"} [${step}s]))`, start: r.start, end: r.end, step }, c.signal),
        // Reasons and events enrich the tree; without them it still lists every pod.
        api.queryRange({ query: `{namespace=${nsq}} |= ${quote(TERMINATION)}`, start: r.start, end: r.end, limit: 2000, direction: 'backward' }, c.signal).catch((e: unknown) => e as Error),
        api.queryRange({ query: `{job=${quote(EVENTS_JOB)}, namespace=${nsq}}`, start: r.start, end: r.end, limit: 2000, direction: 'backward' }, c.signal).catch((e: unknown) => e as Error),
      ]);
      if (c.signal.aborted) return;
      const pods = new Map<string, Pod>();
      const pod = (name: string): Pod => {
        let p = pods.get(name);
        if (!p) pods.set(name, (p = { namespace: n, name, workload: workloadOf(name), containers: new Set(), node: '', firstSeenMs: null, lastSeenMs: null, terminations: [], events: [], restarts: 0 }));
        return p;
      };
      for (const s of streams) {
        if (!s.pod) continue;
        const p = pod(s.pod);
        if (s.container) p.containers.add(s.container);
        if (s.node) p.node = s.node;
      }
      if (seen.kind === 'matrix') {
        for (const s of seen.series) {
          if (!s.metric.pod) continue;
          const p = pod(s.metric.pod);
          for (const [t, v] of s.values) {
            if (Number(v) <= 0) continue;
            const ms = Math.min(t * 1000, r.endMs);
            p.firstSeenMs = p.firstSeenMs === null ? Math.max(r.startMs, ms - step * 1000) : Math.min(p.firstSeenMs, ms - step * 1000);
            p.lastSeenMs = Math.max(p.lastSeenMs ?? 0, ms);
          }
        }
      }
      const warnings: string[] = [];
      // Warnings about the namespace's other objects: a ReplicaSet that cannot create
      // pods, a volume that will not mount.
      const other: KubeEvent[] = [];
      if (terms instanceof Error) warnings.push(`Termination reasons are missing: ${terms.message}`);
      else if (terms.kind === 'streams') {
        for (const l of terms.lines) {
          const t = parseTermination(l.line, l.ms, l.stream);
          if (!t || !t.pod) continue;
          const p = pod(t.pod);
          p.terminations.push(t);
          if (t.container) p.containers.add(t.container);
          p.restarts = Math.max(p.restarts, t.restartCount ?? 0);
          p.lastSeenMs = Math.max(p.lastSeenMs ?? 0, l.ms);
        }
      }
      if (events instanceof Error) warnings.push(`Kubernetes events are missing: ${events.message}`);
      else if (events.kind === 'streams') {
        for (const l of events.lines) {
          const e = parseEvent(l.line, l.ms);
          if (e.kind !== 'Pod' && e.type === 'Warning') other.push(e);
          // Pods that never logged (unschedulable, image pull failures) exist only here.
          if (e.kind !== 'Pod' || !e.name) continue;
          const p = pod(e.name);
          p.events.push(e);
          if (p.lastSeenMs === null) p.lastSeenMs = e.ms;
        }
      }
      draw(sortPods([...pods.values()]), r.endMs);
      applyPodFilter();
      if (other.length) {
        main.prepend(
          h(
            'section',
            { class: 'ns-warnings', 'data-testid': 'namespace-warnings' },
            h('h3', null, 'Warnings', h('span', { class: 'muted' }, ` ${other.length} about other objects`)),
            other.slice(0, 5).map((e) => h('div', { class: 'note event-note' }, `⚠ ${formatLineTime(e.ms)} ${e.kind}/${e.name} ${e.reason}${e.count > 1 ? ` ×${e.count}` : ''}: ${e.msg}`)),
          ),
        );
      }
      for (const w of warnings) main.prepend(h('div', { class: 'status error' }, w));
    } catch (e) {
      if ((e as Error).name === 'AbortError') return;
      clear(main);
      main.appendChild(h('div', { class: 'status error' }, (e as Error).message));
    }
  }

  function draw(pods: Pod[], endMs: number) {
    clear(main);
    lastLinesLoaded = 0;
    if (!pods.length) {
      main.appendChild(h('div', { class: 'empty' }, `No pod logs in ${ns} in this time range.`));
      return;
    }
    const workloads = new Map<string, Pod[]>();
    for (const p of pods) {
      const w = workloads.get(p.workload) ?? [];
      w.push(p);
      workloads.set(p.workload, w);
    }
    // Pods are already in problem order, so a workload's first pod says how it ranks.
    for (const [w, list] of workloads) {
      const problems = list.filter((p) => lastProblem(p) > 0).length;
      main.appendChild(
        h(
          'section',
          { class: 'workload', 'data-testid': 'workload', 'data-workload': w },
          h('h3', null, w, h('span', { class: 'muted' }, ` ${list.length} pod${list.length > 1 ? 's' : ''}`), problems ? h('span', { class: 'badge danger' }, `${problems} with problems`) : null),
          h(
            'table',
            { class: 'pods' },
            h('thead', null, h('tr', null, h('th', null, 'Pod'), h('th', null, 'Status'), h('th', null, 'Restarts'), h('th', null, 'Last seen'), h('th', null, 'Containers'))),
            h(
              'tbody',
              null,
              list.flatMap((p) => podRow(p, endMs)),
            ),
          ),
        ),
      );
    }
  }

  function podRow(p: Pod, endMs: number): HTMLElement[] {
    const last = p.terminations[0];
    const gone = p.lastSeenMs !== null && endMs - p.lastSeenMs > GONE_AFTER_MS;
    const stateBadge = last && isProblem(last) ? h('span', { class: 'badge danger', 'data-testid': 'termination-reason' }, `${last.reason}${last.exitCode !== null ? ` · exit ${last.exitCode}` : ''}${last.signal ? ` · signal ${last.signal}` : ''}`) : last ? h('span', { class: 'badge' }, last.reason) : null;
    const liveness = gone ? h('span', { class: 'badge muted-badge', title: 'No log line in the last 5 minutes of the range' }, 'gone') : h('span', { class: 'badge ok' }, 'logging');
    const open = () => openPod(p);
    const rows: HTMLElement[] = [
      h(
        'tr',
        { class: `pod-row${lastProblem(p) ? ' problem' : ''}`, 'data-testid': 'pod-row', 'data-pod': p.name, tabindex: 0, onclick: open, onkeydown: (e: Event) => (e as KeyboardEvent).key === 'Enter' && open(), title: 'Show this pod’s logs across all its restarts' },
        h('td', { class: 'pod-name' }, h('a', { href: '#', onclick: (e: Event) => e.preventDefault() }, p.name), p.node ? h('div', { class: 'muted small' }, p.node) : null),
        h('td', null, stateBadge, ' ', liveness),
        h('td', { 'data-testid': 'restarts' }, String(p.restarts || p.terminations.length || 0)),
        h('td', { title: p.lastSeenMs ? formatLineTime(p.lastSeenMs) : '' }, p.lastSeenMs ? ago(p.lastSeenMs) : '—'),
        h('td', null, [...p.containers].sort().join(', ')),
      ),
    ];
    const notes: HTMLElement[] = [];
    for (const t of p.terminations.slice(0, 3)) {
      notes.push(h('div', { class: 'note termination-note' }, `✕ ${formatLineTime(t.ms)} ${t.container}: ${t.reason}${t.exitCode !== null ? ` (exit ${t.exitCode})` : ''}${t.message ? ` — ${t.message}` : ''}`));
    }
    if (p.terminations.length > 3) notes.push(h('div', { class: 'note muted' }, `… and ${p.terminations.length - 3} earlier terminations`));
    const warnings = p.events.filter((e) => e.type === 'Warning');
    for (const e of warnings.slice(0, 2)) notes.push(h('div', { class: 'note event-note' }, `⚠ ${formatLineTime(e.ms)} ${e.reason}${e.count > 1 ? ` ×${e.count}` : ''}: ${e.msg}`));
    if (last && isProblem(last) && lastLinesLoaded < LAST_LINES_PODS) {
      lastLinesLoaded++;
      const box = h('div', { class: 'last-lines', 'data-testid': 'last-lines' });
      notes.push(box);
      loadLastLines(p, last, box);
    }
    if (notes.length) rows.push(h('tr', { class: 'pod-notes', onclick: open }, h('td', { colspan: 5 }, notes)));
    return rows;
  }

  /** The container's last lines before its newest termination: usually the why. */
  async function loadLastLines(p: Pod, t: Termination, box: HTMLElement) {
    const signal = ctl?.signal;
    const end = msToNs(t.ms) + 1_000_000n;
    try {
      const res = await api.queryRange(
        {
          query: `{namespace=${quote(p.namespace)}, pod=${quote(p.name)}${t.container ? `, container=${quote(t.container)}` : ''}} != ${quote(TERMINATION)}`,
          start: end - 3_600_000_000_000n,
          end,
          limit: LAST_LINES,
          direction: 'backward',
        },
        signal,
      );
      if (signal?.aborted || res.kind !== 'streams' || !res.lines.length) return;
      box.appendChild(h('div', { class: 'muted small' }, `Last lines of ${t.container || 'the container'} before it ended:`));
      for (const l of res.lines.slice().reverse()) {
        const line = h('div', { class: 'note last-line' }, h('span', { class: 'muted' }, `${formatLineTime(l.ms)} `));
        renderAnsi(line, l.line.length > 400 ? `${l.line.slice(0, 400)}…` : l.line);
        box.appendChild(line);
      }
    } catch {
      // The lines are a convenience: the pod's logs are one click away.
    }
  }

  function openPod(p: Pod) {
    const pad = 5 * 60e3;
    const r = resolve(range);
    const first = Math.max(r.startMs, (p.firstSeenMs ?? r.startMs) - pad);
    const lastMs = Math.max(p.lastSeenMs ?? r.endMs, ...p.terminations.map((t) => t.ms));
    const to = lastMs + pad >= Date.now() ? 'now' : String(Math.ceil(lastMs + pad));
    navigate('explore', { q: `{namespace=${quote(p.namespace)}, pod=${quote(p.name)}}`, from: String(Math.floor(first)), to });
  }

  saveUrl();
  loadNamespaces();
  if (ns) loadNamespace(ns);
  return {
    destroy: () => ctl?.abort(),
    key: (e) => (e.key === 't' ? (picker.toggle(), true) : false),
  };
}
