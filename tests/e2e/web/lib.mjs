// Shared by the browser tests: a real tphd with HTTP on a free port and a
// temporary socket and database, traces sent over the wire by seed.py, and
// headless Chromium (playwright-core) that records console errors, page
// errors and dialogs so every test can assert there were none.

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, afterEach, before } from 'node:test';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(here, '../../..');
export const BUILD = path.resolve(process.env.TRACEPATCH_BUILD || path.join(ROOT, 'build'));
export const TPHD = path.join(BUILD, 'daemon', 'tphd', 'tphd');
export const TPH = path.join(BUILD, 'daemon', 'tph', 'tph');
export const ARTIFACTS = path.join(ROOT, 'tests', 'e2e', 'artifacts');
export const PYTHON = fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

export const XSS_ARG = '<script>alert(1)</script>';
export const XSS_ATTR = '\'"><img src=x onerror=alert(2)>';

/** Why the browser tests cannot run here, or null. */
export function skipReason() {
  if (!fs.existsSync(TPHD)) return `${TPHD} is not built`;
  const help = spawnSync(TPHD, ['--help'], {encoding: 'utf8'});
  if (!/--http/.test(help.stdout || '')) return 'this tphd has no HTTP server';
  if (!fs.existsSync('/usr/bin/chromium')) return '/usr/bin/chromium is missing';
  return null;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const {port} = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function waitFor(fn, timeoutMs, what) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      // not yet
    }
    if (Date.now() > end) throw new Error('timed out waiting for ' + what);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Start tphd; returns {url, port, token, socket, dir, stop(), log()}. */
export async function startDaemon() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tp-web-'));
  const port = await freePort();
  const socket = path.join(dir, 'run', 'tphd.sock');
  const db = path.join(dir, 'state', 'traces.db');
  const logPath = path.join(dir, 'tphd.log');
  const logFd = fs.openSync(logPath, 'a');
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('TRACEPATCH_') && k !== 'NOTIFY_SOCKET' && k !== 'LISTEN_FDS'));
  env.XDG_RUNTIME_DIR = path.join(dir, 'xdg-run');
  env.XDG_STATE_HOME = path.join(dir, 'xdg-state');
  const proc = spawn(TPHD, ['--socket', socket, '--db', db, '--http', `127.0.0.1:${port}`],
    {stdio: ['ignore', logFd, logFd], env});
  fs.closeSync(logFd);
  const log = () => fs.readFileSync(logPath, 'utf8');
  let exited = null;
  proc.on('exit', (code) => { exited = code; });
  const url = `http://127.0.0.1:${port}`;
  await waitFor(async () => {
    if (exited !== null) throw new Error('tphd exited: ' + log());
    const r = await fetch(url + '/assets/favicon.svg');
    return r.ok;
  }, 20000, 'tphd to serve HTTP').catch((e) => {
    if (exited !== null) throw new Error('tphd exited with ' + exited + ': ' + log());
    throw e;
  });
  await waitFor(() => fs.existsSync(socket), 5000, 'the socket');
  const token = fs.readFileSync(path.join(dir, 'state', 'token'), 'utf8').trim();
  return {
    url, port, token, socket, dir, log,
    /** SIGTERM; throws (with its log) unless tphd stopped cleanly, so a
     *  sanitizer report or a crash fails the suite. */
    async stop() {
      if (exited === null) {
        proc.kill('SIGTERM');
        await waitFor(() => exited !== null, 60000, 'tphd to stop').catch(() => proc.kill('SIGKILL'));
      }
      const text = log();
      fs.rmSync(dir, {recursive: true, force: true});
      if (exited !== 0) throw new Error(`tphd exited with ${exited}:\n${text}`);
      return exited;
    },
  };
}

/** The environment of a traced Python program that talks to daemon: this
 *  build's extension, Debian's packages, and no TRACEPATCH_* of the caller's
 *  but the daemon's socket. */
export function programEnv(daemon) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('TRACEPATCH_')));
  env.TRACEPATCH_SOCKET = daemon.socket;
  env.PYTHONPATH = path.join(BUILD, 'client_ext') + ':/usr/lib/python3/dist-packages';
  return env;
}

/** Send traces (seed.py names) to the daemon; returns {name: id}. */
export function seed(daemon, names, extra = []) {
  const r = spawnSync(PYTHON, [path.join(here, 'seed.py'), daemon.socket, ...names, ...extra],
    {encoding: 'utf8', timeout: 600000, maxBuffer: 1 << 20});
  if (r.status !== 0) throw new Error('seed.py failed: ' + r.stderr + r.stdout);
  return JSON.parse(r.stdout);
}

/** Headless Chromium with a fresh profile; every page it opens records its
 *  console errors, page errors and dialogs in `problems`. */
export async function launch() {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'tp-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync'],
    viewport: {width: 1400, height: 900},
    acceptDownloads: true,
  });
  // A loaded two-core machine can take longer than Playwright's 30 s to
  // reach a state; every wait still asks for an exact state.
  context.setDefaultTimeout(90000);
  const problems = [];
  const watch = (page) => {
    page.on('console', (m) => { if (m.type() === 'error') problems.push('console: ' + m.text()); });
    page.on('pageerror', (e) => problems.push('page error: ' + e.message));
    page.on('dialog', (d) => { problems.push('dialog: ' + d.message()); d.dismiss().catch(() => {}); });
  };
  context.pages().forEach(watch);
  context.on('page', watch);
  return {
    context,
    problems,
    async page() {
      return context.pages().find((p) => p.url() === 'about:blank') || context.newPage();
    },
    async close() {
      await context.close();
      fs.rmSync(profile, {recursive: true, force: true});
    },
  };
}

export async function screenshot(page, name) {
  fs.mkdirSync(ARTIFACTS, {recursive: true});
  await page.screenshot({path: path.join(ARTIFACTS, `web-${name}.png`)});
}

/** Wait until the page has painted twice (the tree renders on animation frames). */
export async function settle(page) {
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
}

/** The visible tree rows' text, top to bottom. */
export async function rowTexts(page) {
  await settle(page);
  return page.$$eval('#tree .row', (rows) => rows
    .sort((a, b) => Number(a.dataset.i) - Number(b.dataset.i))
    .map((r) => r.textContent));
}

export async function selectedRow(page) {
  await settle(page);
  return page.$eval('#tree .row.sel', (r) => r.textContent);
}

/** Inside a describe(): a real tphd seeded with names and Chromium logged in
 *  to it, both stopped after the tests, and no console errors, page errors
 *  or dialogs allowed in any test. Returns {d, b, ids}, filled before the
 *  first test runs. */
export function reportFixture(names) {
  const fx = {d: null, b: null, ids: null};
  before(async () => {
    fx.d = await startDaemon();
    fx.ids = seed(fx.d, names);
    fx.b = await launch();
    const page = await fx.b.page();
    await page.goto(`${fx.d.url}/?token=${fx.d.token}`);
  });
  after(async () => {
    if (fx.b) await fx.b.close();
    if (fx.d) await fx.d.stop();
  });
  afterEach(() => {
    assert.deepEqual(fx.b.problems.splice(0), [], 'no console errors, page errors or dialogs');
  });
  return fx;
}
