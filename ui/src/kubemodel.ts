// What the Kubernetes view knows about pods, read from log lines: the agent's termination
// line (docs/agent.md: `kiroku_event=container_terminated reason=... exit_code=...`) and
// Kubernetes events in the eventhandler format (`type= reason= kind= name= msg=`).
// Pure functions, unit-tested in tests/unit.test.mjs.

import type { Labels } from './api';
import { parseLogfmt } from './fields';

export const TERMINATION = 'kiroku_event=container_terminated';

export interface Termination {
  ms: number;
  namespace: string;
  pod: string;
  container: string;
  reason: string;
  exitCode: number | null;
  signal: string;
  restartCount: number | null;
  message: string;
}

export interface KubeEvent {
  ms: number;
  type: string;
  reason: string;
  kind: string;
  name: string;
  msg: string;
  count: number;
}

export interface Pod {
  namespace: string;
  name: string;
  workload: string;
  containers: Set<string>;
  node: string;
  firstSeenMs: number | null;
  lastSeenMs: number | null;
  terminations: Termination[];
  events: KubeEvent[];
  restarts: number;
}

/** Kubernetes' alphabet for generated names (pod-template hashes, name suffixes): no
 *  vowels, no 0, 1 or 3, so that a word in a name is never taken for a hash. */
const H = '[bcdfghjklmnpqrstvwxz2456789]';
const DEPLOYMENT = new RegExp(`^(.+)-${H}{6,10}-${H}{5}$`);
const GENERATED = new RegExp(`^(.+)-${H}{5}$`);

/** The workload a pod belongs to, read from the name Kubernetes gave it: Deployment pods
 *  end in `-<replicaset hash>-<5>`, StatefulSet pods in `-<ordinal>`, DaemonSet and Job
 *  pods in `-<5>`. */
export function workloadOf(pod: string): string {
  return DEPLOYMENT.exec(pod)?.[1] ?? /^(.+)-\d+$/.exec(pod)?.[1] ?? GENERATED.exec(pod)?.[1] ?? pod;
}

export function parseTermination(line: string, ms: number, stream: Labels): Termination | null {
  if (!line.includes(TERMINATION)) return null;
  const f = Object.fromEntries(parseLogfmt(line));
  const exit = f.exit_code !== undefined ? Number(f.exit_code) : NaN;
  const rc = f.restart_count !== undefined ? Number(f.restart_count) : NaN;
  const finished = f.finished_at ? Date.parse(f.finished_at) : NaN;
  return {
    ms: Number.isFinite(finished) ? finished : ms,
    namespace: f.namespace ?? stream.namespace ?? '',
    pod: f.pod ?? stream.pod ?? '',
    container: f.container ?? stream.container ?? '',
    reason: f.reason || 'Unknown',
    exitCode: Number.isFinite(exit) ? exit : null,
    signal: f.signal ?? '',
    restartCount: Number.isFinite(rc) ? rc : null,
    message: f.message ?? '',
  };
}

/** A termination a person should look at: anything but a clean exit. */
export function isProblem(t: Termination): boolean {
  return !(t.reason === 'Completed' && (t.exitCode ?? 0) === 0);
}

export function parseEvent(line: string, ms: number): KubeEvent {
  const f = Object.fromEntries(parseLogfmt(line));
  return { ms, type: f.type ?? '', reason: f.reason ?? '', kind: f.kind ?? '', name: f.name ?? '', msg: f.msg ?? '', count: Number(f.count) || 1 };
}

/** When the pod last had a problem (a bad termination or a warning event), or 0. */
export function lastProblem(p: Pod): number {
  let t = 0;
  for (const x of p.terminations) if (isProblem(x)) t = Math.max(t, x.ms);
  for (const e of p.events) if (e.type === 'Warning') t = Math.max(t, e.ms);
  return t;
}

export function sortPods(pods: Pod[]): Pod[] {
  return pods.sort((a, b) => lastProblem(b) - lastProblem(a) || (b.lastSeenMs ?? 0) - (a.lastSeenMs ?? 0) || a.name.localeCompare(b.name));
}

