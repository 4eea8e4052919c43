// A 1M-call trace (TP_BIG_CALLS to change) in the browser: the tree arrives a
// subtree at a time and only the rows in view exist in the page, however
// many calls are expanded. Times are reported as diagnostics, never asserted.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';

import { launch, rowTexts, screenshot, seed, selectedRow, settle, skipReason, startDaemon } from './lib.mjs';

const skip = skipReason();

/** The merged flame graph's labels of levels 1 to 3 (helpers sorted) as
 *  seed.py makes the trace, and the wide node's label. */
function expectedFlame() {
  const items = Math.ceil((CALLS - 1) / 61);
  const itemsLabel = 'batch.process_item ×' + items.toLocaleString('en-US');
  // The helpers' calls, counted as seed.py makes them: all 983k of them,
  // not the first 20,000 the page loads.
  const helpers = [0, 0, 0];
  const odd = (x) => {
    let c = 0;
    for (; x; x &= x - 1) c++;
    return c & 1;
  };
  for (let n = 1, i = 0; n < CALLS; i++) {
    n++;
    for (let j = 0; j < 60 && n < CALLS; j++, n++) helpers[odd(i * 60 + j + 1) - odd(i * 60 + j) + 1]++;
  }
  const helperLabels = ['parse', 'validate', 'store'].map((f, k) => 'batch.util.' + f + ' ×' + helpers[k].toLocaleString('en-US')).sort();
  return {itemsLabel, levels: [['batch.main'], [itemsLabel], helperLabels]};
}

/** Frames per second of the page while the user zooms and pans the
 *  timeline with real input (CDP wheel and drag events, one every 16 ms for
 *  about 2 s each): requestAnimationFrame callbacks counted in the page over
 *  each gesture, with the longest gap between two of them. A figure, never
 *  asserted. */
async function timelineFps(page) {
  const c = await page.$('#timeline-canvas');
  const r = await c.boundingBox();
  const x = r.x + r.width / 3, y = r.y + Math.min(50, r.height / 2);
  const count = () => page.evaluate(() => {
    window.tpFrames = [];
    window.tpCounting = true;
    const tick = (ts) => {
      window.tpFrames.push(ts);
      if (window.tpCounting) requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  });
  const stop = () => page.evaluate(() => {
    window.tpCounting = false;
    const f = window.tpFrames;
    let worst = 0;
    for (let i = 1; i < f.length; i++) worst = Math.max(worst, f[i] - f[i - 1]);
    return {fps: ((f.length - 1) * 1000) / (f[f.length - 1] - f[0]), worst};
  });
  const out = [];
  await page.mouse.move(x, y);
  await count();
  for (let k = 0; k < 120; k++) {
    await page.mouse.wheel(0, k < 60 ? -100 : 100);
    await new Promise((res) => setTimeout(res, 16));
  }
  const zoom = await stop();
  out.push(`zoom ${zoom.fps.toFixed(1)} fps (longest frame ${zoom.worst.toFixed(1)} ms)`);
  for (let k = 0; k < 12; k++) await page.mouse.wheel(0, -100);
  await count();
  await page.mouse.down();
  for (let k = 0; k < 120; k++) {
    await page.mouse.move(x + 200 * Math.sin(k / 10), y);
    await new Promise((res) => setTimeout(res, 16));
  }
  await page.mouse.up();
  const pan = await stop();
  out.push(`pan ${pan.fps.toFixed(1)} fps (longest frame ${pan.worst.toFixed(1)} ms)`);
  return out.join(', ');
}
const CALLS = Number(process.env.TP_BIG_CALLS || 1000000);

describe(`a ${CALLS.toLocaleString('en-US')}-call trace`, {skip: skip || false, timeout: 600000}, () => {
  let d, b, id;

  before(async () => {
    d = await startDaemon();
    id = seed(d, ['big', 'checkout-a'], ['--calls', String(CALLS)]).big;
    b = await launch();
  });

  after(async () => {
    if (b) await b.close();
    if (d) await d.stop();
  });

  test('opens lazily, stays virtualised, pages the widest node', async (t) => {
    const page = await b.page();
    await page.goto(`${d.url}/?token=${d.token}`);
    await page.waitForSelector('#trace-rows tr');
    const t0 = Date.now();
    await page.click(`tr[data-id="${id}"] .trace-link`);
    await page.waitForSelector('#trace-head');
    t.diagnostic(`trace header ${Date.now() - t0} ms after the click`);
    await page.waitForSelector('#tree .row');
    t.diagnostic(`first rows of the tree ${Date.now() - t0} ms after the click`);
    const requested = await page.evaluate(() => performance.getEntriesByType('resource')
      .filter((e) => e.name.includes('/tree')).map((e) => [new URL(e.name).search, e.transferSize]));
    t.diagnostic('tree requests so far: ' + JSON.stringify(requested));
    assert.ok(requested.every(([q]) => /max_nodes=\d+/.test(q)), 'every tree request is budgeted');
    // The report opens the hot path: the heaviest call, deep in the wide node.
    await page.waitForSelector('#tree .row.sel');
    t.diagnostic(`hot path open ${Date.now() - t0} ms after the click: ${await selectedRow(page)}`);
    // From here on, from a link to the first call, as before the hot path.
    await page.goto(`${d.url}/t/${id}?node=0`);
    await page.waitForSelector('#tree .row.sel');

    const counts = async () => {
      await settle(page);
      return page.evaluate(() => ({
        dom: document.querySelectorAll('#tree .row').length,
        rows: parseInt(document.querySelector('.tree-spacer').style.height, 10) / 22,
      }));
    };
    // process_item folds 16k calls whose 983k children stay separate.
    await page.focus('#tree');
    await page.keyboard.press('ArrowDown');
    assert.match(await selectedRow(page), /batch\.process_item\(item=0\) → None\s*×[\d,]+/);
    const t1 = Date.now();
    await page.keyboard.press('ArrowRight');
    await page.waitForFunction(() => document.querySelectorAll('#tree .row').length > 10);
    t.diagnostic(`expanding a node with ${(CALLS - 1 - Math.ceil((CALLS - 1) / 61)).toLocaleString('en-US')} children: ${Date.now() - t1} ms`);
    let c = await counts();
    assert.equal(c.rows, 2 + 500 + 1, 'main, process_item, one page of children, a "more" row');
    assert.ok(c.dom < 80, `only the rows in view are in the page (${c.dom})`);

    // Load two more pages from the end of the list; still a window of rows.
    for (let k = 0; k < 2; k++) {
      await page.keyboard.press('End');
      assert.match(await selectedRow(page), /more calls — load$/);
      const before = c.rows;
      await page.keyboard.press('Enter');
      await page.waitForFunction((n) => parseInt(document.querySelector('.tree-spacer').style.height, 10) / 22 > n, before);
      c = await counts();
    }
    assert.equal(c.rows, 2 + 1500 + 1);
    assert.ok(c.dom < 80, `still a window (${c.dom})`);
    await page.keyboard.press('PageUp');
    await page.keyboard.press('PageUp');
    assert.match(await selectedRow(page), /batch\.util\.(parse|validate|store)\(item=\d+\)/);

    // Search runs on the server; the match is revealed inside the wide node.
    // The first match is the folded process_item group (one of its calls has
    // item=16000, though the row shows the first's), then its 60 helpers.
    await page.fill('#search', 'item=16000');
    const t2 = Date.now();
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => /^1 of 61/.test(document.querySelector('#hit-info').textContent), null, {timeout: 120000});
    t.diagnostic(`search and reveal: ${Date.now() - t2} ms`);
    assert.match(await selectedRow(page), /batch\.process_item\(/);
    // The next match is the helper inside the wide node.
    await page.focus('#tree');
    await page.keyboard.press('n');
    await page.waitForFunction(() => /^2 of 61/.test(document.querySelector('#hit-info').textContent), null, {timeout: 120000});
    assert.match(await selectedRow(page), /batch\.util\.(parse|validate|store)\(item=16000\)/);
    c = await counts();
    assert.ok(c.dom < 80, `still a window after revealing (${c.dom} of ${c.rows} rows)`);
    await screenshot(page, 'big');

    // The merged flame graph and the full function table.
    const t4 = Date.now();
    await page.click('#tab-flame');
    await page.waitForFunction(() => window.tpFlameDrawn && window.tpFlameDrawn() === 'time', null, {timeout: 120000});
    t.diagnostic(`flame graph (time order) drawn ${Date.now() - t4} ms after the click`);
    const t5 = Date.now();
    await page.click('#flame-mode-merged');
    await page.waitForFunction(() => window.tpFlameDrawn() === 'merged', null, {timeout: 120000});
    t.diagnostic(`merged flame graph drawn ${Date.now() - t5} ms after the click`);
    // tphd merges the whole trace, not only the calls the page loaded.
    const {itemsLabel, levels} = expectedFlame();
    await page.waitForFunction((l) => window.tpFlameLabels(2).includes(l), itemsLabel, {timeout: 120000});
    assert.deepEqual(await page.evaluate(() => [window.tpFlameLabels(1), window.tpFlameLabels(2), window.tpFlameLabels(3).sort()]), levels);
    await page.click('#flame-mode-sandwich');
    await page.fill('#flame-fn', 'batch.process_item');
    await page.press('#flame-fn', 'Enter');
    await page.waitForFunction(() => window.tpFlameSandwich().callees.length === 3, null, {timeout: 120000});
    const sw = await page.evaluate(() => window.tpFlameSandwich());
    assert.deepEqual([sw.callers, [...sw.callees].sort()],
      [['batch.main'], ['batch.util.parse', 'batch.util.store', 'batch.util.validate']]);
    assert.deepEqual(await page.evaluate(() => [window.tpFlameLabels(1), window.tpFlameLabels(2).sort()]), levels.slice(1));
    const t7 = Date.now();
    await page.click('#tab-timeline');
    await page.waitForFunction(() => window.tpTimelineLanes && window.tpTimelineLanes().length > 0, null, {timeout: 120000});
    t.diagnostic(`timeline first paint ${Date.now() - t7} ms after the click`);
    const frames = await page.evaluate(() => {
      const c = document.querySelector('#timeline-canvas');
      const r = c.getBoundingClientRect();
      const out = [];
      for (let k = 0; k < 10; k++) {
        const t = performance.now();
        c.dispatchEvent(new WheelEvent('wheel', {deltaY: -100, clientX: r.left + r.width / 3, clientY: r.top + 50, bubbles: true, cancelable: true}));
        out.push(performance.now() - t);
      }
      return out;
    });
    t.diagnostic(`timeline zoom frame: ${Math.max(...frames).toFixed(1)} ms worst, ${(frames.reduce((a, x) => a + x, 0) / frames.length).toFixed(1)} ms mean`);
    t.diagnostic('timeline ' + await timelineFps(page));
    const t6 = Date.now();
    await page.click('#tab-hot');
    await page.waitForSelector('#fn-table tbody tr', {timeout: 120000});
    t.diagnostic(`function table ${Date.now() - t6} ms after the click (${await page.$$eval('#fn-table tbody tr', (r) => r.length)} functions)`);
    const mem = await page.evaluate(() => (performance.memory ? performance.memory.usedJSHeapSize : 0));
    t.diagnostic(`page JS heap ${(mem / 1048576).toFixed(0)} MiB`);

    // Once more from the list: tphd has the trace in memory now.
    await page.click('#brand');
    await page.waitForSelector(`tr[data-id="${id}"] .trace-link`);
    const t3 = Date.now();
    await page.click(`tr[data-id="${id}"] .trace-link`);
    await page.waitForSelector('#tree .row');
    t.diagnostic(`reopened: first rows of the tree ${Date.now() - t3} ms after the click`);
    assert.deepEqual(b.problems.splice(0), []);
  });

  test('the export buttons download every format; the HTML opens from file://', async (t) => {
    const page = await b.page();
    await page.goto(`${d.url}/t/${id}?token=${d.token}`);
    await page.waitForSelector('.exports a.btn');
    const links = await page.$$eval('.exports a.btn', (as) => as.map((a) => a.textContent));
    assert.deepEqual(links, ['HTML', 'JSON', 'CSV', 'Chrome', 'Folded']);
    const sizes = {};
    let html = null;
    for (const label of links) {
      const t0 = Date.now();
      const [dl] = await Promise.all([page.waitForEvent('download', {timeout: 600000}),
        page.click(`.exports a.btn:text-is("${label}")`)]);
      const file = await dl.path();
      assert.equal(await dl.failure(), null, label);
      sizes[label] = fs.statSync(file).size;
      assert.ok(sizes[label] > 0, label);
      t.diagnostic(`${label} export: ${sizes[label].toLocaleString('en-US')} bytes (${(sizes[label] / CALLS).toFixed(2)} B/call) in ${Date.now() - t0} ms`);
      if (label === 'HTML') {
        html = file + '.html';
        fs.copyFileSync(file, html);
      }
    }
    assert.match(fs.readFileSync(html, 'latin1').slice(-200), /<\/html>\s*$/, 'the HTML download is whole');
    const report = await b.context.newPage();
    const t1 = Date.now();
    await report.goto('file://' + html);
    await report.waitForSelector('#tree .row');
    t.diagnostic(`standalone HTML: first row ${Date.now() - t1} ms after opening it from file://`);
    // The report opens the hot path, as the served one does.
    await report.waitForSelector('#tree .row.sel');
    const items = Math.ceil((CALLS - 1) / 61);
    const rows = await rowTexts(report);
    t.diagnostic('first rows: ' + JSON.stringify(rows.slice(0, 3)));
    assert.match(rows[0], /^▾batch\.main\(argv=\['batch', '--all'\]\) → 0/);
    assert.match(rows[1], new RegExp('^▾batch\\.process_item\\(item=0\\) → None\\s*×' + items.toLocaleString('en-US')));
    assert.match(rows[2], /^batch\.util\.(parse|validate|store)\(item=0\) → None/);
    // One page of the wide node's children is listed, the rest on demand.
    const height = await report.evaluate(() => parseInt(document.querySelector('.tree-spacer').style.height, 10) / 22);
    assert.equal(height, 2 + 5000 + 1, 'main, process_item, 5,000 children, a "more" row');
    // Search finds what tphd finds: the group through its call of item 16000
    // (the file holds the group's calls), then that item's 60 helpers.
    await report.fill('#search', 'item=16000');
    await report.press('#search', 'Enter');
    await report.waitForFunction(() => /^1 of 61/.test(document.querySelector('#hit-info').textContent), null, {timeout: 120000});
    assert.match(await selectedRow(report), /batch\.process_item\(/);
    // The file merges its whole packed tree, as tphd does (not the calls loaded).
    const want = expectedFlame();
    await report.click('#tab-flame');
    await report.waitForFunction(() => window.tpFlameDrawn && window.tpFlameDrawn() === 'time', null, {timeout: 120000});
    const tm = Date.now();
    await report.click('#flame-mode-merged');
    await report.waitForFunction((l) => window.tpFlameDrawn() === 'merged' && window.tpFlameLabels(2).includes(l), want.itemsLabel, {timeout: 120000});
    t.diagnostic(`standalone HTML: merged flame graph drawn ${Date.now() - tm} ms after the click`);
    assert.deepEqual(await report.evaluate(() => [window.tpFlameLabels(1), window.tpFlameLabels(2), window.tpFlameLabels(3).sort()]), want.levels);
    await report.click('#tab-timeline');
    await report.waitForFunction(() => window.tpTimelineLanes && window.tpTimelineLanes().length > 0, null, {timeout: 120000});
    // Drawn from the buckets of the whole trace, as the served timeline is.
    await report.waitForFunction(() => window.tpTimelineSummarised(), null, {timeout: 120000});
    t.diagnostic('standalone HTML: timeline ' + await timelineFps(report));
    const mem = await report.evaluate(() => (performance.memory ? performance.memory.usedJSHeapSize : 0));
    t.diagnostic(`standalone HTML: page JS heap ${(mem / 1048576).toFixed(0)} MiB`);
    await report.close();
    fs.rmSync(html, {force: true});
    assert.deepEqual(b.problems.splice(0), []);
  });
});
