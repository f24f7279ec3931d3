// The UI's pure logic, without a browser: LogQL edits, completion context, line format
// detection, ANSI-free text, the Kubernetes model, time parsing, Loki response decoding.
// Run with `node --import ./tests/ts-register.mjs --test tests/unit.test.mjs`.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeResult, nsToMs, selectorOf } from '../src/api.ts';
import { stripAnsi } from '../src/ansi.ts';
import { cursorContext } from '../src/cursor.ts';
import { detectFormat, fieldsOf, levelOf, parseLogfmt } from '../src/fields.ts';
import { indentJson, jsonFields } from '../src/json.ts';
import { isProblem, lastProblem, parseEvent, parseTermination, sortPods, workloadOf } from '../src/kubemodel.ts';
import { addLabelFilter, addMatcher, firstSelector, isMetricQuery, selectorEnd, volumeQuery } from '../src/logql.ts';
import { durationOf, parseTime, resolve, stepFor } from '../src/time.ts';

test('addMatcher adds to the first selector, replaces the same matcher, skips braces in strings', () => {
  assert.equal(addMatcher('{app="api"}', 'pod', 'p-1', false), '{app="api", pod="p-1"}');
  assert.equal(addMatcher('{app="api", pod="x"} |= "a"', 'pod', 'y', false), '{app="api", pod="y"} |= "a"');
  assert.equal(addMatcher('{app="api", pod!="x"}', 'pod', 'y', true), '{app="api", pod!="x", pod!="y"}');
  assert.equal(addMatcher('{app="api"}', 'app', 'api', true), '{app="api", app!="api"}');
  assert.equal(addMatcher('{app="}"} |= "{"', 'ns', 'a"b', false), '{app="}", ns="a\\"b"} |= "{"');
  assert.equal(addMatcher('', 'app', 'x', false), '{app="x"}');
  assert.equal(selectorEnd('{a="\\"}"}'), 8);
});

test('addLabelFilter adds the parser the field came from, once', () => {
  assert.equal(addLabelFilter('{app="api"}', 'status', '500', false, 'json'), '{app="api"} | json | status="500"');
  assert.equal(addLabelFilter('{app="api"} | json', 'status', '500', true, 'json'), '{app="api"} | json | status!="500"');
  assert.equal(addLabelFilter('{app="api"}', 'trace_id', 'ab', false, null), '{app="api"} | trace_id="ab"');
});

test('metric queries are told from log queries; the volume query keeps the pipeline', () => {
  assert.ok(isMetricQuery('sum by (app) (rate({a="b"}[1m]))'));
  assert.ok(isMetricQuery('  count_over_time({a="b"}[1m])'));
  assert.ok(!isMetricQuery('{a="b"} |= "sum("'));
  assert.equal(firstSelector('rate({a="b"} |= "x" [1m])'), '{a="b"}');
  assert.equal(volumeQuery('{a="b"} |= "x" | json', '1m'), 'sum by (level, detected_level) (count_over_time({a="b"} |= "x" | json | drop __error__ [1m]))');
  assert.equal(volumeQuery('no selector', '1m'), null);
});

test('cursorContext knows where completion applies', () => {
  assert.deepEqual(cursorContext('{'), { kind: 'labelName', from: 1 });
  assert.deepEqual(cursorContext('{app="api", na'), { kind: 'labelName', from: 12 });
  assert.deepEqual(cursorContext('{app="a'), { kind: 'labelValue', name: 'app', from: 6 });
  assert.deepEqual(cursorContext('{app=~"a'), { kind: 'labelValue', name: 'app', from: 7 });
  assert.deepEqual(cursorContext('{app="a"} | js'), { kind: 'stage', from: 12 });
  assert.deepEqual(cursorContext('{app="a"} |= "x | y'), null, 'inside a filter string');
  assert.deepEqual(cursorContext('sum by (ap'), { kind: 'grouping', from: 8 });
  assert.deepEqual(cursorContext('{app="a"} '), { kind: 'afterSelector', from: 10 });
  assert.deepEqual(cursorContext('cou'), { kind: 'function', from: 0 });
});

test('logfmt and JSON lines are detected and split into fields as Loki names them', () => {
  assert.deepEqual(parseLogfmt('level=info msg="job \\"x\\" failed" dur=1.5s bare k.e-y=v'), [
    ['level', 'info'],
    ['msg', 'job "x" failed'],
    ['dur', '1.5s'],
    ['k_e_y', 'v'],
  ]);
  assert.equal(detectFormat('{"a":1}'), 'json');
  assert.equal(detectFormat('{not json}'), null);
  assert.equal(detectFormat('a=1 b=2'), 'logfmt');
  assert.equal(detectFormat('GET /index.html 200'), null);
  assert.deepEqual(jsonFields('{"a": {"b": 1, "c-d": "x\\"y"}, "e": [1, {"g": 2}], "f": null, "id": 12345678901234567890, "ok": true, "u": "\\u00e9"}'), [
    ['a_b', '1'],
    ['a_c_d', 'x"y'],
    ['id', '12345678901234567890'],
    ['ok', 'true'],
    ['u', 'é'],
  ]);
  assert.equal(jsonFields('{"a": 1'), null);
  assert.equal(jsonFields('[1]'), null);
  assert.equal(jsonFields('{"a": 1} trailing'), null);
  assert.equal(indentJson('{"a":{"b":[1,2],"c":{}},"d":"x, {y}","n":12345678901234567890}'), '{\n  "a": {\n    "b": [\n      1,\n      2\n    ],\n    "c": {}\n  },\n  "d": "x, {y}",\n  "n": 12345678901234567890\n}');
  const line = (l, extra = {}) => ({ ts: '1', ms: 0, line: l, stream: {}, metadata: {}, parsed: {}, key: 'k', ...extra });
  assert.deepEqual(fieldsOf(line('{"status":500}')), { format: 'json', fields: [['status', '500']] });
  assert.deepEqual(fieldsOf(line('level=info app=x', { stream: { app: 'api' } })), { format: 'logfmt', fields: [['level', 'info'], ['app_extracted', 'x']] });
  assert.deepEqual(fieldsOf(line('x', { parsed: { a: 'b' } })), { format: null, fields: [['a', 'b']] });
  assert.equal(levelOf(line('boom', { metadata: { detected_level: 'ERROR' } })), 'error');
  assert.equal(levelOf(line('2026 WARN disk almost full')), 'warn');
  assert.equal(levelOf(line('nothing here')), 'unknown');
});

test('ANSI escape codes are removed for field parsing', () => {
  assert.equal(stripAnsi('\u001b[31mERROR\u001b[0m done'), 'ERROR done');
});

test('the termination line of docs/agent.md is read, with finished_at as its time', () => {
  const t = parseTermination(
    'kiroku_event=container_terminated reason=OOMKilled exit_code=137 signal=9 restart_count=3 started_at=2024-05-01T10:00:00Z finished_at=2024-05-01T10:05:00Z container=app pod=web-1 namespace=shop container_id=containerd://abc message="out of memory"',
    1,
    {},
  );
  assert.deepEqual(t, { ms: Date.parse('2024-05-01T10:05:00Z'), namespace: 'shop', pod: 'web-1', container: 'app', reason: 'OOMKilled', exitCode: 137, signal: '9', restartCount: 3, message: 'out of memory' });
  assert.ok(isProblem(t));
  assert.ok(!isProblem({ ...t, reason: 'Completed', exitCode: 0 }));
  assert.equal(parseTermination('just a line', 1, {}), null);
  const minimal = parseTermination('kiroku_event=container_terminated', 7, { pod: 'p', namespace: 'n', container: 'c' });
  assert.equal(minimal.reason, 'Unknown');
  assert.equal(minimal.ms, 7);
  assert.equal(minimal.pod, 'p');
});

test('workloads come from pod names; problem pods sort first, newest problem first', () => {
  assert.equal(workloadOf('api-7c9d8b5f4-x2k9p'), 'api');
  assert.equal(workloadOf('api-server-7c9d8b5f4-x2k9p'), 'api-server');
  assert.equal(workloadOf('cart-db-0'), 'cart-db');
  assert.equal(workloadOf('node-exporter-x7k2p'), 'node-exporter');
  assert.equal(workloadOf('prometheus-node-exporter'), 'prometheus-node-exporter');
  assert.equal(workloadOf('standalone'), 'standalone');
  const ev = parseEvent('type=Warning reason=BackOff kind=Pod name=web-1 count=5 msg="Back-off restarting"', 50);
  assert.deepEqual(ev, { ms: 50, type: 'Warning', reason: 'BackOff', kind: 'Pod', name: 'web-1', msg: 'Back-off restarting', count: 5 });
  const pod = (name, lastSeenMs, terminations = [], events = []) => ({ namespace: 'n', name, workload: workloadOf(name), containers: new Set(), node: '', firstSeenMs: 0, lastSeenMs, terminations, events, restarts: 0 });
  const oom = (ms) => ({ ms, namespace: 'n', pod: 'x', container: 'c', reason: 'OOMKilled', exitCode: 137, signal: '9', restartCount: 1, message: '' });
  const pods = [pod('healthy', 100), pod('old-problem', 10, [oom(20)]), pod('new-problem', 5, [oom(30)]), pod('warned', 1, [], [ev])];
  assert.equal(lastProblem(pods[3]), 50);
  assert.deepEqual(sortPods(pods).map((p) => p.name), ['warned', 'new-problem', 'old-problem', 'healthy']);
});

test('time: relative and absolute inputs, steps and durations', () => {
  const now = Date.parse('2026-11-20T10:00:00Z');
  assert.equal(parseTime('now', now), now);
  assert.equal(parseTime('now-15m', now), now - 15 * 60e3);
  assert.equal(parseTime('now - 2d', now), now - 2 * 86400e3);
  assert.equal(parseTime('1795168800000'), 1795168800000);
  assert.equal(parseTime('2026-11-20T10:00:00Z'), now);
  assert.equal(parseTime('yesterday'), null);
  const r = resolve({ from: 'now-1h', to: 'now' }, now);
  assert.equal(r.endMs - r.startMs, 3600e3);
  assert.equal(stepFor(r), 30);
  assert.equal(durationOf(30), '30s');
  assert.equal(durationOf(300), '5m');
  assert.equal(durationOf(7200), '2h');
});

test("Loki's categorize-labels answer is decoded into lines with their three kinds of labels, newest first", () => {
  const r = decodeResult({
    status: 'success',
    data: {
      resultType: 'streams',
      encodingFlags: ['categorize-labels'],
      result: [
        { stream: { app: 'a' }, values: [['1795168800000000001', 'x', { structuredMetadata: { trace_id: 't' }, parsed: { level: 'info' } }]] },
        { stream: { app: 'b' }, values: [['1795168800000000002', 'y'], ['1795168800000000002', 'y2']] },
      ],
    },
  });
  assert.equal(r.kind, 'streams');
  assert.deepEqual(r.lines.map((l) => l.line), ['y', 'y2', 'x']);
  assert.deepEqual(r.lines[2].metadata, { trace_id: 't' });
  assert.deepEqual(r.lines[2].parsed, { level: 'info' });
  assert.notEqual(r.lines[0].key, r.lines[1].key, 'equal timestamps keep distinct keys');
  assert.equal(nsToMs('1795168800123456789'), 1795168800123.4568);
  assert.equal(selectorOf({ b: '1', a: 'x"y' }), '{a="x\\"y", b="1"}');
  const m = decodeResult({ data: { resultType: 'vector', result: [{ metric: { app: 'a' }, value: [1, '2'] }] } });
  assert.deepEqual(m, { kind: 'vector', series: [{ metric: { app: 'a' }, values: [[1, '2']] }] });
});
