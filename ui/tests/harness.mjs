// Starts what the browser tests run against: the real `kiroku server` on a free loopback
// port with an empty data directory, fed the fixtures through its push API, and a
// headless Debian Chromium driven by playwright-core.
//
// When kiroku's embedded UI is not the one on disk (UI_FROM_DIST=1), the tests put a
// small front in between that serves ui/dist and passes every other request,
// WebSocket upgrades included, to kiroku unchanged. By default kiroku serves the page.

import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, existsSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { extname, join, resolve } from 'node:path';
import { chromium } from 'playwright-core';
import { fixtureStreams, push } from './fixtures.mjs';

const root = resolve(new URL('../..', import.meta.url).pathname);
export const outDir = join(root, 'test-output', 'ui');

export async function freePort() {
  return new Promise((ok, fail) => {
    const s = net.createServer();
    s.once('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

/** Polls `check` until it returns a truthy value or the deadline passes. */
export async function until(what, check, ms = 20_000) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    try {
      const v = await check();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}`);
}

/** A `kiroku server` on a free port with an empty data directory; its log is kept as
 *  test-output/ui/kiroku-<name>.log. */
export async function startKiroku(name = 'server') {
  const bin = process.env.KIROKU_BIN ?? join(root, 'target', 'debug', 'kiroku');
  if (!existsSync(bin)) throw new Error(`no kiroku binary at ${bin}: run cargo build -p kiroku`);
  const dataDir = mkdtempSync(join(tmpdir(), 'kiroku-ui-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const logPath = join(outDir, `kiroku-${name}.log`);
  mkdirSync(outDir, { recursive: true });
  const child = spawn(bin, ['server', '--listen', `127.0.0.1:${port}`, '--data-dir', dataDir, '--retention', '0', '--retention-max-disk', '0%'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const log = [];
  child.stdout.on('data', (d) => log.push(d));
  child.stderr.on('data', (d) => log.push(d));
  let exited = null;
  child.on('exit', (code, signal) => (exited = { code, signal }));
  await until('kiroku to be ready', async () => {
    if (exited) throw new Error(`kiroku exited (${JSON.stringify(exited)}):\n${Buffer.concat(log)}`);
    const r = await fetch(`${url}/ready`);
    return r.ok;
  });
  return {
    url,
    log: () => Buffer.concat(log).toString(),
    async stop() {
      if (!exited) {
        child.kill('SIGTERM');
        await until('kiroku to stop', () => exited !== null, 15_000).catch(() => child.kill('SIGKILL'));
      }
      const { writeFileSync } = await import('node:fs');
      writeFileSync(logPath, Buffer.concat(log));
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css', '.svg': 'image/svg+xml' };
const PAGES = new Set(['/', '/explore', '/kubernetes', '/labels']);

/** The front described at the top of this file. */
async function startFront(upstream) {
  const dist = join(root, 'ui', 'dist');
  const target = new URL(upstream);
  const server = http.createServer((req, res) => {
    const path = new URL(req.url, 'http://x').pathname;
    if (PAGES.has(path) || path.startsWith('/assets/') || path === '/favicon.svg') {
      const file = join(dist, PAGES.has(path) ? 'index.html' : path);
      if (!existsSync(file)) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' });
      res.end(readFileSync(file));
      return;
    }
    const up = http.request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (ur) => {
      res.writeHead(ur.statusCode, ur.headers);
      ur.pipe(res);
    });
    up.on('error', (e) => res.writeHead(502).end(String(e)));
    req.pipe(up);
  });
  server.on('upgrade', (req, socket, head) => {
    const up = net.connect(Number(target.port), target.hostname, () => {
      up.write(`${req.method} ${req.url} HTTP/1.1\r\n${Object.entries(req.headers).map(([k, v]) => `${k}: ${v}`).join('\r\n')}\r\n\r\n`);
      if (head.length) up.write(head);
      up.pipe(socket);
      socket.pipe(up);
    });
    up.on('error', () => socket.destroy());
    socket.on('error', () => up.destroy());
  });
  const port = await freePort();
  await new Promise((ok) => server.listen(port, '127.0.0.1', ok));
  return { url: `http://127.0.0.1:${port}`, stop: () => new Promise((ok) => (server.closeAllConnections?.(), server.close(() => ok()))) };
}

/** Where the browser opens the UI of `kiroku`: kiroku itself, or a front serving
 *  ui/dist beside it (UI_FROM_DIST=1, or a kiroku that does not serve the page). */
export async function uiFor(kiroku) {
  const index = await fetch(`${kiroku.url}/`).then((r) => (r.ok ? r.text() : ''));
  if (index.includes('<div id="app">') && !process.env.UI_FROM_DIST) return { url: kiroku.url, servesUi: true, stop: async () => {} };
  const front = await startFront(kiroku.url);
  return { url: front.url, servesUi: false, stop: front.stop };
}

/** Everything the tests need, started once. */
export async function startAll() {
  const kiroku = await startKiroku();
  const now = Date.now();
  try {
    await push(kiroku.url, fixtureStreams(now));
  } catch (e) {
    await kiroku.stop();
    throw e;
  }
  const ui = await uiFor(kiroku);
  let browser;
  try {
    // Playwright gives each launch a fresh, empty profile directory of its own.
    browser = await chromium.launch({
      executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-quic', '--disable-sync'],
    });
  } catch (e) {
    await ui.stop();
    await kiroku.stop();
    throw e;
  }
  return {
    kiroku,
    servesUi: ui.servesUi,
    pushedAt: now,
    baseUrl: ui.url,
    browser,
    async stop() {
      await browser.close().catch(() => {});
      await ui.stop();
      await kiroku.stop();
    },
  };
}

/** A fresh page that records console errors and page errors. */
export async function openPage(env, path, { width = 1440, height = 900, colorScheme = 'light', baseUrl = env.baseUrl, timezoneId } = {}) {
  const context = await env.browser.newContext({ viewport: { width, height }, colorScheme, timezoneId });
  const page = await context.newPage();
  const errors = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${baseUrl}${path}`);
  return { page, errors, close: () => context.close() };
}

export async function screenshot(page, name) {
  mkdirSync(outDir, { recursive: true });
  await page.screenshot({ path: join(outDir, `${name}.png`) });
}
