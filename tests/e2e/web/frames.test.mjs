// Issue #13 in the report UI: the frame-time graphs. A real program times
// its requests with tracepatch.frame() (one of them raises, so its call tree
// is kept: frame(trace=True)) against a real tphd; /frames shows one graph
// per frame name with tphd's exact statistics, hostile names stay text, and
// clicking the kept frame's ring opens its trace.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { PYTHON, launch, programEnv, rowTexts, screenshot, settle, skipReason, startDaemon } from './lib.mjs';

const skip = skipReason();

const PROGRAM = `
import time, tracepatch
def handle(i):
    time.sleep(0.002)
    if i == 20:
        raise ValueError("no item 20")
for i in range(30):
    # Kept: the request that raised (none is slower than a minute).
    try:
        with tracepatch.frame("GET /items/<id>", trace=True, keep_slower_than=60):
            handle(i)
    except ValueError:
        pass
for i in range(12):
    with tracepatch.frame("<b>tick</b>"):
        pass
assert tracepatch.frames_flush(10.0)
`;

describe('report UI: frames', {skip: skip || false, timeout: 300000}, () => {
  let d, b, dir;
  before(async () => {
    d = await startDaemon();
    b = await launch();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tp-frames-'));
    fs.writeFileSync(path.join(dir, 'app.py'), PROGRAM);
    const env = programEnv(d);
    const r = spawnSync(PYTHON, [path.join(dir, 'app.py')], {cwd: dir, env, encoding: 'utf8', timeout: 120000});
    assert.equal(r.status, 0, r.stderr);
  });
  after(async () => {
    if (b) await b.close();
    if (d) await d.stop();
    if (dir) fs.rmSync(dir, {recursive: true, force: true});
  });

  const api = async (p) => (await fetch(d.url + p, {headers: {Cookie: `tp_token_${d.port}=${d.token}`}})).json();

  test('one graph per name with exact statistics; the kept frame opens its trace', async () => {
    const points = await api('/api/frames/points?name=' + encodeURIComponent('GET /items/<id>'));
    const kept = points.points.filter((p) => p[2]);
    assert.equal(points.total, 30);
    assert.equal(kept.length, 1, JSON.stringify(points));
    assert.equal(kept[0][0], points.points[20][0], 'the kept frame is the one that raised');
    const stats = (await api('/api/frames')).frames;

    const page = await b.page();
    await page.goto(`${d.url}/?token=${d.token}`);
    await page.click('#frames-link');
    await page.waitForSelector('.frame-card canvas');
    await page.waitForFunction(() => window.tpFrameGraphs && window.tpFrameGraphs().length === 2 &&
      window.tpFrameGraphs().every((g) => g.points > 0));
    assert.equal(new URL(page.url()).pathname, '/frames');
    assert.equal(await page.title(), 'Frames · tracepatch');
    // By name, as tphd lists them; the hostile name is text, not markup.
    assert.deepEqual(await page.$$eval('.frame-name', (h) => h.map((x) => x.textContent)), ['<b>tick</b>', 'GET /items/<id>']);
    assert.equal(await page.$$eval('.frame-card b', (x) => x.length), 0);
    const get = stats.find((s) => s.name === 'GET /items/<id>');
    const head = await page.$eval('.frame-card[data-name="GET /items/<id>"] .frame-head', (h) => h.textContent);
    assert.match(head, /frames 30/);
    const note = await page.$eval('.frame-card[data-name="GET /items/<id>"] .frame-note', (n) => n.textContent);
    assert.equal(note, '30 frames · 1 kept call tree (rings: click to open)');
    assert.equal(await page.$eval('.frame-card[data-name="<b>tick</b>"] .frame-note', (n) => n.textContent), '12 frames');
    assert.match(head, /p50 \d[\d.]*(ns|µs|ms|s)p95 \d[\d.]*(ns|µs|ms|s)p99 \d[\d.]*(ns|µs|ms|s)max /);
    assert.ok(get.p50_ms <= get.p95_ms && get.p95_ms <= get.p99_ms && get.p99_ms <= get.max_ms);
    await settle(page);
    await screenshot(page, 'frames');

    // Hovering the ring names the trace; clicking it opens it.
    const ring = await page.evaluate(() => window.tpFrameGraphs().find((g) => g.name === 'GET /items/<id>').kept);
    assert.equal(ring.length, 1);
    assert.equal(ring[0].id, kept[0][2]);
    const box = await page.$eval('.frame-card[data-name="GET /items/<id>"] canvas', (c) => {
      const r = c.getBoundingClientRect();
      return {x: r.left, y: r.top};
    });
    await page.mouse.move(box.x + ring[0].x, box.y + ring[0].y);
    await page.waitForSelector('.frame-card[data-name="GET /items/<id>"] .frame-tip:not([hidden])');
    assert.match(await page.$eval('.frame-card[data-name="GET /items/<id>"] .frame-tip', (t) => t.textContent), new RegExp('call tree ' + kept[0][2].slice(0, 8)));
    await page.mouse.click(box.x + ring[0].x, box.y + ring[0].y);
    await page.waitForFunction((id) => location.pathname === '/t/' + id, kept[0][2]);
    await page.waitForSelector('#tree .row');
    await screenshot(page, 'frames-kept');
    const rows = (await rowTexts(page)).join('\n');
    // The failed request's call tree, structure only (keep="slow" records no
    // arguments), with its exception.
    assert.match(rows, /^__main__\.handle !! ValueError: no item 20\d/, rows);

    // /frames is a page of its own too (a reload, a bookmark).
    await page.goto(`${d.url}/frames`);
    await page.waitForFunction(() => window.tpFrameGraphs && window.tpFrameGraphs().length === 2);
    assert.deepEqual(b.problems.splice(0), [], 'no console errors, page errors or dialogs');
  });
});
