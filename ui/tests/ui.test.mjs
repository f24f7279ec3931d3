// The web UI in a real browser against the real kiroku server (see harness.mjs): what a
// person sees when they open the page, run a query, expand a line, tail, and look for a
// dead pod. Screenshots go to test-output/ui/.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { TERMINATION_POD, push } from './fixtures.mjs';
import { openPage, screenshot, startAll, startKiroku, uiFor, until } from './harness.mjs';

let env;

before(async () => {
  env = await startAll();
  console.log(`# kiroku at ${env.kiroku.url}; UI ${env.servesUi ? 'served by kiroku itself' : `served from ui/dist by the test front at ${env.baseUrl}`}`);
});

after(async () => {
  await env?.stop();
});

const q = (s) => encodeURIComponent(s);

async function waitForLines(page) {
  await page.waitForSelector('[data-testid=log-row]', { timeout: 20_000 });
}

async function statusText(page) {
  return page.textContent('[data-testid=status]');
}

test('the first visit shows the newest lines of all streams and the histogram, with no console errors', async () => {
  const { page, errors, close } = await openPage(env, '/');
  await waitForLines(page);
  await page.waitForSelector('[data-testid=chart] canvas');
  const status = await statusText(page);
  assert.match(status, /lines/);
  const sources = await page.$$eval('[data-testid=log-row]', (rows) => rows.length);
  assert.ok(sources > 10, `only ${sources} rows drawn`);
  await screenshot(page, 'explore-default');
  assert.deepEqual(errors, []);
  await close();
});

test('an empty server says how to send it logs, and shows them once sent', async () => {
  const empty = await startKiroku('empty');
  const ui = await uiFor(empty);
  try {
    const { page, errors, close } = await openPage(env, '/', { baseUrl: ui.url });
    await page.waitForSelector('[data-testid=first-steps]');
    assert.match(await page.textContent('[data-testid=first-steps]'), /loki\/api\/v1\/push/);
    await screenshot(page, 'first-visit-empty');
    await push(empty.url, [{ stream: { app: 'hello' }, values: [[`${BigInt(Date.now()) * 1_000_000n}`, 'hello, kiroku']] }]);
    await page.reload();
    await waitForLines(page);
    assert.equal(await page.textContent('[data-testid=log-row] .log-text'), 'hello, kiroku');
    assert.deepEqual(errors, []);
    await close();
  } finally {
    await ui.stop();
    await empty.stop();
  }
});

test('a query typed in the editor shows its lines, the level histogram and the URL that reproduces it', async () => {
  const { page, errors, close } = await openPage(env, '/');
  await waitForLines(page);
  await page.click('.cm-content');
  await page.keyboard.type('{namespace="batch", app="worker"');
  await page.keyboard.press('Escape');
  await page.keyboard.press('End');
  await page.keyboard.press('Enter');
  await until('the worker query to run', async () => /app=.worker/.test(decodeURIComponent(page.url())));
  await until('worker lines', async () => {
    const texts = await page.$$eval('[data-testid=log-row] .log-text', (els) => els.slice(0, 20).map((e) => e.textContent));
    return texts.length > 0 && texts.every((t) => t.includes('caller=worker.go'));
  });
  await page.waitForSelector('[data-testid=chart] canvas');
  const legend = await page.textContent('.chart-legend');
  assert.match(legend, /error/);
  assert.match(legend, /info/);
  // Dragging across the histogram zooms into that range.
  const box = await page.$eval('[data-testid=chart] .u-over', (e) => {
    const r = e.getBoundingClientRect();
    return { x: r.x, y: r.y, w: r.width, h: r.height };
  });
  await page.mouse.move(box.x + box.w * 0.3, box.y + box.h / 2);
  await page.mouse.down();
  await page.mouse.move(box.x + box.w * 0.6, box.y + box.h / 2, { steps: 5 });
  await page.mouse.up();
  await until('the zoomed range in the URL', async () => /from=\d{13}&to=\d{13}/.test(page.url()));
  assert.match(await page.textContent('[data-testid=time-picker]'), /→/);
  await waitForLines(page);
  // The link alone reproduces the view.
  const link = page.url();
  const again = await openPage(env, link.slice(env.baseUrl.length));
  await waitForLines(again.page);
  assert.match(await again.page.textContent('.cm-content'), /app="worker"/);
  await again.close();
  assert.deepEqual(errors, []);
  await close();
});

test('5,000 lines stay a handful of DOM rows; scrolling down fetches the older ones', async () => {
  const { page, close } = await openPage(env, `/?q=${q('{app="api"}')}&limit=5000`);
  await waitForLines(page);
  await until('5,000 lines', async () => /5,000 lines/.test(await statusText(page)));
  const rows = await page.$$eval('[data-testid=log-row]', (r) => r.length);
  assert.ok(rows < 200, `${rows} rows in the DOM`);
  await page.$eval('[data-testid=log-list]', (el) => (el.scrollTop = el.scrollHeight));
  await until('the bottom rows to be drawn', async () => {
    const keys = await page.$$eval('[data-testid=log-row]', (r) => r.map((e) => e.getBoundingClientRect().top));
    return keys.some((t) => t > 0 && t < 900);
  });
  // The api pods wrote 6,000 lines in the hour: the next page arrives at the bottom.
  await until('the older page', async () => /6,000 lines, all in this time range/.test(await statusText(page)));
  await close();
});

test('expanding a line shows labels, structured metadata and JSON fields; filter for narrows the query', async () => {
  const { page, errors, close } = await openPage(env, `/?q=${q('{app="api"}')}`);
  await waitForLines(page);
  await page.click('[data-testid=log-row] .log-head');
  await page.waitForSelector('[data-testid=log-details]');
  const labels = await page.textContent('[data-testid=fields-label]');
  assert.match(labels, /namespace\s*shop/);
  const meta = await page.textContent('[data-testid=fields-metadata]');
  assert.match(meta, /pod_uid\s*uid-api-/);
  const fields = await page.textContent('[data-testid=fields-parsed]');
  assert.match(fields, /status\s*\d{3}/);
  await screenshot(page, 'explore-expanded');
  const pod = await page.$eval('[data-testid=fields-label] tr:has(td.field-name:text-is("pod")) td.field-value', (e) => e.textContent);
  await page.click('[data-testid=fields-label] tr:has(td.field-name:text-is("pod")) button[aria-label="filter out pod"]');
  await until('the excluding matcher', async () => (await page.textContent('.cm-content')) === `{app="api", pod!="${pod}"}`);
  await until('lines of the other pod only', async () => {
    const sources = await page.$$eval('[data-testid=log-row] .log-head', (els) => els.slice(0, 30).map((e) => e.textContent));
    return sources.length > 0 && sources.every((t) => !t.includes(pod));
  });
  await page.click('[data-testid=log-row] .log-head');
  await page.waitForSelector('[data-testid=fields-parsed]');
  const otherPod = await page.$eval('[data-testid=fields-label] tr:has(td.field-name:text-is("pod")) td.field-value', (e) => e.textContent);
  assert.notEqual(otherPod, pod);
  const status = await page.$eval('[data-testid=fields-parsed] tr:has(td.field-name:text-is("status")) td.field-value', (e) => e.textContent);
  await page.click('[data-testid=fields-parsed] tr:has(td.field-name:text-is("status")) button[aria-label="filter for status"]');
  await until('the filtered query', async () => (await page.textContent('.cm-content')).includes(`| json | status="${status}"`));
  await until('only matching lines', async () => {
    const texts = await page.$$eval('[data-testid=log-row] .log-text', (els) => els.slice(0, 30).map((e) => e.textContent));
    return texts.length > 0 && texts.every((t) => t.includes(`"status":${status}`));
  });
  assert.deepEqual(errors, []);
  await close();
});

test('clicking a level under the histogram keeps only that level', async () => {
  const { page, errors, close } = await openPage(env, `/?q=${q('{app="api"}')}`);
  await waitForLines(page);
  await page.click('.legend-button[data-level=error]');
  await until('the level filter in the query', async () => (await page.textContent('.cm-content')) === '{app="api"} | detected_level="error"');
  await until('only error lines', async () => {
    const rows = await page.$$eval('[data-testid=log-row]', (els) => els.slice(0, 30).map((e) => e.className));
    return rows.length > 0 && rows.every((c) => c.includes('lvl-error'));
  });
  await until('a histogram of errors only', async () => {
    const legend = await page.textContent('.chart-legend');
    return /error/.test(legend) && !/info/.test(legend);
  });
  assert.deepEqual(errors, []);
  await close();
});

test('ANSI colours are drawn as colours, not escape codes', async () => {
  const { page, close } = await openPage(env, `/?q=${q('{app="legacy"}')}`);
  await waitForLines(page);
  const first = await page.$eval('[data-testid=log-row] .log-text', (e) => ({ text: e.textContent, colored: [...e.querySelectorAll('span')].map((s) => s.style.color) }));
  assert.ok(!first.text.includes('\u001b'), first.text);
  assert.ok(first.colored.length >= 2, JSON.stringify(first));
  await close();
});

test('show context opens the lines around a line of its stream, the line marked', async () => {
  const { page, close } = await openPage(env, `/?q=${q('{app="worker"} |= "job failed"')}`);
  await waitForLines(page);
  const rows = await page.$$('[data-testid=log-row] .log-head');
  await rows[3].click();
  await page.click('[data-testid=show-context]');
  await page.waitForSelector('[data-testid=context-panel] .log-row.highlight');
  const n = await page.$$eval('[data-testid=context-panel] [data-testid=log-row]', (r) => r.length);
  assert.ok(n > 10, `${n} context rows`);
  const others = await page.$$eval('[data-testid=context-panel] [data-testid=log-row] .log-text', (els) => els.map((e) => e.textContent));
  assert.ok(others.some((t) => !t.includes('job failed')), 'context shows unfiltered neighbours');
  await screenshot(page, 'context');
  await close();
});

test('autocompletion offers label names, then values', async () => {
  const { page, close } = await openPage(env, '/');
  await waitForLines(page);
  await page.click('.cm-content');
  await page.keyboard.press('Control+a');
  await page.keyboard.type('{');
  await page.waitForSelector('.cm-tooltip-autocomplete li:has-text("namespace")');
  await page.keyboard.type('names');
  await page.keyboard.press('Enter');
  await page.waitForSelector('.cm-tooltip-autocomplete li:has-text("batch")');
  await page.keyboard.type('bat');
  await page.keyboard.press('Enter');
  assert.equal(await page.textContent('.cm-content'), '{namespace="batch"}');
  await page.keyboard.press('Enter');
  await until('the completed query to run', async () => decodeURIComponent(page.url()).includes('namespace="batch"'));
  await close();
});

test('a metric query is drawn as a time series chart', async () => {
  const { page, errors, close } = await openPage(env, `/?q=${q('sum by (app) (count_over_time({namespace="shop"} [5m]))')}`);
  await page.waitForSelector('[data-testid=chart] canvas');
  await until('series in the table', async () => /app="api"/.test(await page.textContent('[data-testid=series-table]')));
  assert.match(await statusText(page), /series/);
  assert.equal(await page.$('[data-testid=log-list]:not([hidden])'), null);
  await screenshot(page, 'metric');
  assert.deepEqual(errors, []);
  await close();
});

test('the Kubernetes view lists the OOMKilled pod, newest problem first, and opens its logs across restarts', async () => {
  const { page, errors, close } = await openPage(env, '/kubernetes');
  await page.waitForSelector('[data-testid=namespace][data-ns=shop]');
  const first = await page.getAttribute('[data-testid=namespace]', 'data-ns');
  assert.equal(first, 'shop', 'the namespace with terminations comes first');
  await page.click('[data-testid=namespace][data-ns=shop]');
  await page.waitForSelector('[data-testid=pod-row]');
  const firstPod = await page.getAttribute('[data-testid=pod-row]', 'data-pod');
  assert.equal(firstPod, TERMINATION_POD);
  const row = `[data-testid=pod-row][data-pod="${TERMINATION_POD}"]`;
  assert.match(await page.textContent(`${row} [data-testid=termination-reason]`), /OOMKilled · exit 137/);
  assert.match(await page.textContent(row), /gone/);
  assert.equal(await page.textContent(`${row} [data-testid=restarts]`), '3');
  assert.match(await page.textContent('.pod-notes'), /BackOff/);
  // The last lines before the newest termination say why, without another click.
  await until('the last lines', async () => /allocation failed: out of memory/.test(await page.textContent(`[data-testid=last-lines]`)));
  assert.doesNotMatch(await page.textContent('[data-testid=last-lines]'), /kiroku_event/);
  assert.match(await page.textContent('[data-testid=namespace-warnings]'), /ReplicaSet\/payments-5f6d7c8b9 FailedCreate ×12: Error creating: pods "payments-5f6d7c8b9-" is forbidden/);
  await screenshot(page, 'kubernetes');
  await page.fill('[data-testid=pod-filter]', 'api-');
  await until('only the api pods', async () => (await page.$$eval('[data-testid=pod-row]:not([hidden])', (r) => r.map((e) => e.dataset.pod))).join() === 'api-7c9d8b5f4-m6t8z,api-7c9d8b5f4-x2k9p');
  assert.ok(page.url().includes('pod=api-'), page.url());
  await page.fill('[data-testid=pod-filter]', '');
  await page.click(row);
  await until('the pod query in Explore', async () => decodeURIComponent(page.url()).includes(`pod="${TERMINATION_POD}"`));
  await waitForLines(page);
  await until('the termination lines and markers', async () => {
    const n = await page.$$eval('[data-testid=log-row].termination', (r) => r.length);
    const legend = await page.textContent('.chart-legend');
    return n >= 1 && /3 container terminations/.test(legend);
  });
  await screenshot(page, 'kubernetes-pod-logs');
  assert.deepEqual(errors, []);
  await close();
});

test('the labels browser builds a selector and opens it', async () => {
  const { page, close } = await openPage(env, '/labels');
  await page.waitForSelector('[data-testid=label-names] button');
  await page.click('[data-testid=label-names] button:text-is("app")');
  await page.click('[data-testid=label-values] button:text-is("worker")');
  assert.equal(await page.textContent('[data-testid=built-selector]'), '{app="worker"}');
  await page.click('[data-testid=show-logs]');
  await waitForLines(page);
  assert.match(await page.textContent('.cm-content'), /\{app="worker"\}/);
  await close();
});

test('queries run are kept in the history', async () => {
  const { page, close } = await openPage(env, `/?q=${q('{app="legacy"} |= "WARN"')}`);
  await waitForLines(page);
  await page.click('[data-testid=history-button]');
  await page.waitForSelector('[data-testid=history] .history-item');
  assert.match(await page.textContent('[data-testid=history]'), /\{app="legacy"\} \|= "WARN"/);
  await close();
});

test('the dark theme', async () => {
  const { page, errors, close } = await openPage(env, `/?q=${q('{namespace="shop"}')}`, { colorScheme: 'dark' });
  await waitForLines(page);
  assert.equal(await page.getAttribute('html', 'data-theme'), 'dark');
  await page.waitForSelector('[data-testid=chart] canvas');
  await screenshot(page, 'explore-dark');
  await page.click('[data-testid=theme-toggle]');
  assert.equal(await page.getAttribute('html', 'data-theme'), 'light');
  assert.deepEqual(errors, []);
  await close();
});

test('the time picker takes relative and absolute ranges; keyboard shortcuts move around', async () => {
  const { page, errors, close } = await openPage(env, `/?q=${q('{app="worker"}')}`);
  await waitForLines(page);
  await page.keyboard.press('t');
  await page.click('.presets button:text-is("Last 15 minutes")');
  await until('the relative range in the URL', async () => page.url().includes('from=now-15m'));
  await page.click('[data-testid=time-picker]');
  const from = new Date(env.pushedAt - 30 * 60e3);
  const to = new Date(env.pushedAt - 20 * 60e3);
  const local = (d) => `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')} ${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}:${String(d.getSeconds()).padStart(2, '0')}`;
  await page.fill('[data-testid=time-from]', local(from));
  await page.fill('[data-testid=time-to]', local(to));
  await page.keyboard.press('Enter');
  await until('the absolute range applied', async () => (await page.textContent('[data-testid=time-picker]')).includes('→'));
  await until('lines of that range only', async () => {
    const times = await page.$$eval('[data-testid=log-row] .log-time', (els) => els.map((e) => e.textContent));
    return times.length > 0 && times.every((t) => Date.parse(t.replace(' ', 'T')) <= to.getTime() + 1000 && Date.parse(t.replace(' ', 'T')) >= from.getTime() - 1000);
  });
  await page.click('body');
  await page.keyboard.press('2');
  await page.waitForSelector('[data-testid=namespaces]');
  await page.keyboard.press('?');
  await page.waitForSelector('[role=dialog][aria-label="Keyboard shortcuts"]');
  await page.keyboard.press('Escape');
  await page.keyboard.press('1');
  await page.waitForSelector('.cm-content');
  assert.deepEqual(errors, []);
  await close();
});

test('times show in the browser zone, or in UTC when set', async () => {
  const { page, errors, close } = await openPage(env, `/?q=${q('{app="cart-db"}')}`, { timezoneId: 'Asia/Tokyo' });
  await waitForLines(page);
  const shown = async () => page.textContent('[data-testid=log-row] .log-time');
  const tokyo = await shown();
  await page.click('[data-testid=settings-button]');
  await page.check('[data-testid=utc-setting]');
  await page.click('[data-testid=settings-save]');
  await until('times in UTC', async () => (await shown()) !== tokyo);
  const inUtc = await shown();
  assert.equal(Date.parse(`${tokyo.replace(' ', 'T')}+09:00`), Date.parse(`${inUtc.replace(' ', 'T')}Z`), `${tokyo} (Tokyo) and ${inUtc} (UTC) are one instant`);
  assert.deepEqual(errors, []);
  await close();
});

test('live tail shows a line pushed while the page watches', async (t) => {
  const probe = await fetch(`${env.kiroku.url}/loki/api/v1/tail?query=${q('{app="tail"}')}`);
  if (probe.status === 404) {
    t.skip('kiroku does not serve /loki/api/v1/tail yet');
    return;
  }
  const { page, close } = await openPage(env, `/?q=${q('{app="tail-test"}')}&live=1`);
  await until('the tail to connect', async () => /Live · connected/.test(await statusText(page)));
  const marker = `tail line ${Date.now()}`;
  await push(env.kiroku.url, [{ stream: { app: 'tail-test', namespace: 'shop', service_name: 'tail-test' }, values: [[`${BigInt(Date.now()) * 1_000_000n}`, marker]] }]);
  await until('the pushed line on screen', async () => (await page.$$eval('[data-testid=log-row] .log-text', (e) => e.map((x) => x.textContent))).includes(marker));
  await screenshot(page, 'live-tail');
  await close();
});
