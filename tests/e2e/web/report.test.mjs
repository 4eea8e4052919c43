// The report's harder cases (issue 14) in headless Chromium against a real
// tphd: real units and active vs span time, asyncio tasks, rows that keep
// their results visible, the full function table, the flame graph's merged
// tiny calls and views, links that last, small screens, and every page at
// 400, 1440 and 1920 px in both themes with nothing wider than its box.

import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';

import { reportFixture, rowTexts, screenshot, selectedRow, settle, skipReason } from './lib.mjs';

const skip = skipReason();

/** WCAG contrast ratio of two [r, g, b] colours. */
function contrast(a, b) {
  const lum = ([r, g, bl]) => {
    const f = (c) => {
      c /= 255;
      return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
    };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(bl);
  };
  const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p);
  return (x + 0.05) / (y + 0.05);
}

describe('report UI: issue 14', {skip: skip || false, timeout: 600000}, () => {
  const fx = reportFixture(['checkout-a', 'checkout-b', 'deep', 'ui', 'checkout-slow']);
  let d, b, ids;
  before(() => ({d, b, ids} = fx));

  async function open(path, size) {
    const page = await b.page();
    page.setDefaultTimeout(10000);
    await page.setViewportSize(size || {width: 1440, height: 900});
    await page.emulateMedia({colorScheme: 'light'});
    await page.goto(d.url + path);
    return page;
  }

  async function openTrace(id, size, query) {
    const page = await open('/t/' + id + (query || ''), size);
    await page.waitForSelector(query && query.includes('view=') ? '.tab.active' : '#tree .row');
    await settle(page);
    return page;
  }

  /** Click the row whose text matches re; returns its index. */
  async function clickRow(page, re) {
    const i = await page.$$eval('#tree .row', (rows, src) => {
      const r = rows.find((x) => new RegExp(src).test(x.textContent));
      return r ? Number(r.dataset.i) : -1;
    }, re.source);
    assert.ok(i >= 0, 'a row matches ' + re);
    await page.click(`#tree .row[data-i="${i}"]`);
    await settle(page);
    return i;
  }

  test('durations in real units with 3 significant digits; generators show active and span time', async () => {
    const page = await openTrace(ids.ui);
    const rows = await rowTexts(page);
    const gen = rows.find((r) => /app\.gen\.numbers/.test(r));
    assert.match(gen, /3\.00µs/, 'the row shows active time');
    await clickRow(page, /app\.gen\.numbers/);
    const facts = await page.textContent('#details .facts');
    assert.match(facts, /Active3\.00µs/);
    assert.match(facts, /Span1\.00ms/);
    assert.match(facts, /Suspended2 times/);
    const crunch = rows.find((r) => /app\.slow\.crunch/.test(r));
    assert.match(crunch, /100ms/);
    assert.doesNotMatch(crunch, /100\.00ms/);
  });

  test('a generator suspended once says "1 time"; an asyncio task is marked as one', async () => {
    const page = await openTrace(ids.ui);
    const rows = await rowTexts(page);
    assert.match(rows.find((r) => /app\.task\.worker/.test(r)), /\(task\)/);
    await clickRow(page, /app\.task\.worker/);
    // The details fill in once the call's full record arrives.
    await page.waitForFunction(() => /Suspended/.test(document.querySelector('#details .facts')?.textContent || ''));
    assert.match(await page.textContent('#details .facts'), /Suspended1 time(?!s)/);
  });

  test('a call without arguments has no empty Arguments box', async () => {
    const page = await openTrace(ids.ui);
    await clickRow(page, /app\.main/);
    const heads = await page.$$eval('#details h4', (h) => h.map((x) => x.textContent));
    assert.ok(!heads.includes('Arguments'), heads.join());
  });

  test('a multi-line exception stays on its row with its type first', async () => {
    const page = await openTrace(ids.ui);
    const ex = await page.$$eval('#tree .row', (rows) => {
      const r = rows.find((x) => /app\.io\.fail/.test(x.textContent));
      const e = r.querySelector('.ex');
      return {text: e.textContent, h: e.getBoundingClientRect().height, rowH: r.getBoundingClientRect().height};
    });
    assert.match(ex.text, /^ !! ValueError: line one⏎ line two⏎ line three$/);
    assert.ok(ex.h <= ex.rowH, JSON.stringify(ex));
  });

  test('long arguments leave the return value whole, and a search match in them is in view', async () => {
    const page = await openTrace(ids.ui);
    const rt = await page.$$eval('#tree .row', (rows) => {
      const r = rows.find((x) => /app\.io\.send/.test(x.textContent));
      const e = r.querySelector('.rt');
      return {text: e.textContent, sw: e.scrollWidth, cw: e.clientWidth};
    });
    assert.equal(rt.text, " → 'sent-ok'");
    assert.ok(rt.sw <= rt.cw, JSON.stringify(rt));
    await page.fill('#search', 'tail-needle');
    await page.press('#search', 'Enter');
    await page.waitForFunction(() => document.querySelector('#hit-info').textContent === '1 of 1');
    await settle(page);
    const vis = await page.$eval('#tree .row.sel', (r) => {
      const m = r.querySelector('mark').getBoundingClientRect();
      const a = r.querySelector('.ar').getBoundingClientRect();
      return {m: [m.left, m.right], a: [a.left, a.right]};
    });
    assert.ok(vis.m[0] >= vis.a[0] - 0.5 && vis.m[1] <= vis.a[1] + 0.5, JSON.stringify(vis));
  });

  test('after "load more" the details show the selected call', async () => {
    const page = await openTrace(ids.deep, null, '?node=0');
    await page.focus('#tree');
    await page.keyboard.press('End');
    // Scrolling to the end may already load the next page; if it has not,
    // click the "more" row (in the page, so the row cannot go in between).
    // (Functions, not strings: the page's CSP forbids eval.)
    const grown = () => document.querySelector('.tree-spacer').style.height === (1 + 1000 + 1) * 22 + 'px';
    await page.waitForFunction(() => document.querySelector('.tree-spacer').style.height === (1 + 1000 + 1) * 22 + 'px' ||
      document.querySelector('#tree .row.more.sel'));
    await page.evaluate(() => {
      if (document.querySelector('.tree-spacer').style.height !== (1 + 1000 + 1) * 22 + 'px') document.querySelector('#tree .row.more.sel').click();
    });
    await page.waitForFunction(grown);
    await settle(page);
    const sel = await selectedRow(page);
    const name = await page.textContent('#details h3');
    assert.match(sel, /deep\.[ab]\(i=500\)/);
    assert.equal(name, 'deep.a');
  });

  test('function table: every function, sortable by any column, searchable, callers and callees', async () => {
    const page = await openTrace(ids.ui, null, '?view=hot');
    await page.waitForSelector('#fn-table tbody tr');
    const names = () => page.$$eval('#fn-table tbody tr td:first-child', (t) => t.map((x) => x.textContent));
    assert.equal((await names()).length, 39, 'all 39 functions');
    const heads = await page.$$eval('#fn-table thead th', (t) => t.map((x) => x.textContent.replace(/[▲▼]/g, '').trim()));
    assert.deepEqual(heads, ['Function', 'Calls', 'Total', 'Self', 'Avg', 'Min', 'Max', 'Exceptions']);
    assert.equal((await names())[0], 'app.main', 'by total time first');
    await page.click('#fn-table thead th:nth-child(2)'); // calls, most first
    assert.deepEqual((await names()).slice(0, 3), ['app.web.handle', 'app.web.parse', 'app.web.store']);
    await page.click('#fn-table thead th:nth-child(2)'); // again: fewest first
    assert.equal((await names())[0], 'app.gen.numbers');
    await page.click('#fn-table thead th:nth-child(8)'); // exceptions
    assert.equal((await names())[0], 'app.io.fail');
    await page.fill('#fn-filter', 'app.web');
    await page.waitForFunction(() => document.querySelectorAll('#fn-table tbody tr').length === 3);
    await page.click('#fn-table tbody tr:has-text("app.web.parse")');
    await page.waitForSelector('#fn-rel li');
    assert.deepEqual(await page.$$eval('#fn-callers li', (l) => l.map((x) => x.textContent)), ['app.web.handle2,000 calls']);
    assert.deepEqual(await page.$$eval('#fn-callees li', (l) => l.map((x) => x.textContent)), []);
    await page.fill('#fn-filter', 'app.web.handle');
    await page.click('#fn-table tbody tr:has-text("app.web.handle")');
    await page.waitForFunction(() => document.querySelectorAll('#fn-callees li').length === 2);
    assert.deepEqual(await page.$$eval('#fn-callees li', (l) => l.map((x) => x.textContent)),
      ['app.web.parse2,000 calls', 'app.web.store2,000 calls']);
    // The table fits its box at a desktop width.
    const fit = await page.$eval('#fn-table', (t) => ({w: t.getBoundingClientRect().width, p: t.parentElement.clientWidth}));
    assert.ok(fit.w <= fit.p + 1, JSON.stringify(fit));
  });

  test('hotspot cards agree with the table on a tie, and modules sort as their bars', async () => {
    const page = await openTrace(ids.ui, null, '?view=hot');
    await page.waitForSelector('#fn-table tbody tr');
    await page.click('#fn-table thead th:nth-child(2)');
    const first = await page.$eval('#fn-table tbody tr td:first-child', (t) => t.textContent);
    const card = await page.$eval('#card-most-called .card-v', (c) => c.textContent);
    assert.equal(card, first);
    const self = await page.$$eval('#hot-modules tbody tr', (trs) => trs.map((t) => t.dataset.self));
    const sorted = self.map(Number).slice().sort((x, y) => y - x);
    assert.deepEqual(self.map(Number), sorted);
    assert.ok(self.length >= 5);
  });

  test('flame graph: a zoom into a folded node with thousands of tiny children draws them merged', async () => {
    const page = await openTrace(ids.ui, null, '?view=flame');
    await page.waitForSelector('#flame-canvas');
    await page.evaluate(() => window.tpFlameZoom('app.web.handle'));
    await page.waitForFunction(() => /Zoomed into app\.web\.handle/.test(document.querySelector('.flame-bar').textContent));
    await settle(page);
    const cover = await page.$eval('#flame-canvas', (c) => {
      const dpr = window.devicePixelRatio || 1;
      const row = 2; // main (faded, above the zoom), handle, its children
      const px = c.getContext('2d').getImageData(0, Math.floor((row * 20 + 10) * dpr), c.width, 1).data;
      let n = 0;
      for (let i = 3; i < px.length; i += 4) if (px[i]) n++;
      return n / c.width;
    });
    // parse and store take 40% of handle's time.
    assert.ok(cover > 0.35 && cover < 0.45, 'the children row is drawn: ' + cover);
  });

  test('flame graph: the tooltip goes away on a zoom, and dark labels have 4.5:1 contrast', async () => {
    const page = await openTrace(ids['checkout-b'], null, '?view=flame');
    await page.waitForSelector('#flame-canvas');
    const r = await page.$eval('#flame-canvas', (c) => c.getBoundingClientRect().toJSON());
    await page.mouse.move(r.x + 40, r.y + 2 * 20 + 10);
    await page.waitForSelector('.flame-tip:not([hidden])');
    await page.mouse.click(r.x + 40, r.y + 2 * 20 + 10);
    await page.waitForFunction(() => !document.querySelector('#flame-reset').disabled);
    assert.equal(await page.$eval('.flame-tip', (t) => t.hidden), true);

    await page.click('#flame-reset');
    await page.emulateMedia({colorScheme: 'dark'});
    await settle(page);
    const worst = await page.evaluate(() => window.tpFlameContrast());
    assert.ok(worst >= 4.5, 'worst label contrast ' + worst);
    await page.emulateMedia({colorScheme: 'light'});
    await settle(page);
    assert.ok(await page.evaluate(() => window.tpFlameContrast()) >= 4.5);
  });

  test('flame graph: merged (left heavy) and sandwich views', async () => {
    const page = await openTrace(ids.ui, null, '?view=flame');
    await page.waitForSelector('#flame-canvas');
    await page.click('#flame-mode-merged');
    await settle(page);
    // Merged: main's children by total time, largest first.
    const row2 = await page.evaluate(() => window.tpFlameRow(2));
    assert.equal(row2[0], 'app.slow.crunch');
    assert.equal(row2[1], 'app.web.handle');
    assert.equal(new URL(page.url()).searchParams.get('flame'), 'merged');
    await page.click('#flame-mode-sandwich');
    await page.fill('#flame-fn', 'app.web.parse');
    await page.press('#flame-fn', 'Enter');
    await settle(page);
    const sw = await page.evaluate(() => window.tpFlameSandwich());
    assert.deepEqual(sw, {callers: ['app.web.handle', 'app.main'], callees: []});
  });

  test('timeline: a lane per thread and per asyncio task, wheel zoom, drag pan, shift+drag range', async () => {
    const page = await openTrace(ids.ui, null, '?view=timeline');
    await page.waitForSelector('#timeline-canvas');
    await page.waitForFunction(() => window.tpTimelineLanes && window.tpTimelineLanes().length > 0);
    assert.deepEqual(await page.evaluate(() => window.tpTimelineLanes()), ['task app.task.worker', 'thread 0']);
    const full = await page.evaluate(() => window.tpTimelineView());
    assert.equal(full.t0, 0);
    const r = await page.$eval('#timeline-canvas', (c) => c.getBoundingClientRect().toJSON());
    await page.mouse.move(r.x + r.width / 2, r.y + 40);
    await page.mouse.wheel(0, -300);
    await settle(page);
    const zoomed = await page.evaluate(() => window.tpTimelineView());
    assert.ok(zoomed.t1 - zoomed.t0 < full.t1 - full.t0, JSON.stringify([full, zoomed]));
    await page.mouse.down();
    await page.mouse.move(r.x + r.width / 2 + 200, r.y + 40, {steps: 4});
    await page.mouse.up();
    const panned = await page.evaluate(() => window.tpTimelineView());
    assert.ok(panned.t0 < zoomed.t0, JSON.stringify([zoomed, panned]));
    await page.keyboard.down('Shift');
    await page.mouse.move(r.x + 100, r.y + 40);
    await page.mouse.down();
    await page.mouse.move(r.x + 300, r.y + 40, {steps: 4});
    await page.mouse.up();
    await page.keyboard.up('Shift');
    assert.ok(await page.evaluate(() => window.tpTimelineRange()));
    assert.match(await page.textContent('#tl-info'), /^Selected /);
  });

  test('timeline keys: W/S and Up/Down zoom, A/D and Left/Right pan, Escape clears the range', async () => {
    const page = await openTrace(ids.ui, null, '?view=timeline');
    await page.waitForFunction(() => window.tpTimelineLanes && window.tpTimelineLanes().length > 0);
    const full = await page.evaluate(() => window.tpTimelineView());
    const span = (v) => v.t1 - v.t0;
    await page.focus('#timeline-canvas');
    await page.keyboard.press('w');
    let v = await page.evaluate(() => window.tpTimelineView());
    assert.ok(Math.abs(span(v) - span(full) * 0.8) < 1e-9, JSON.stringify([full, v]));
    assert.ok(Math.abs(v.t0 - span(full) * 0.1) < 1e-9, 'zoomed around the middle: ' + JSON.stringify(v));
    await page.keyboard.press('d');
    const right = await page.evaluate(() => window.tpTimelineView());
    assert.ok(Math.abs(right.t0 - (v.t0 + span(v) * 0.1)) < 1e-9, JSON.stringify([v, right]));
    await page.keyboard.press('ArrowLeft');
    await page.keyboard.press('a');
    const left = await page.evaluate(() => window.tpTimelineView());
    assert.ok(Math.abs(left.t0 - (v.t0 - span(v) * 0.1)) < 1e-9, JSON.stringify([v, left]));
    await page.keyboard.press('ArrowUp');
    v = await page.evaluate(() => window.tpTimelineView());
    assert.ok(Math.abs(span(v) - span(full) * 0.64) < 1e-9);
    await page.keyboard.press('s');
    await page.keyboard.press('ArrowDown');
    await page.keyboard.press('ArrowDown');
    v = await page.evaluate(() => window.tpTimelineView());
    assert.deepEqual(v, full, 'zooming out stops at the whole trace');
    // A shift+drag selection is in the link; Escape clears it.
    const r = await page.$eval('#timeline-canvas', (c) => c.getBoundingClientRect().toJSON());
    await page.keyboard.down('Shift');
    await page.mouse.move(r.x + 10, r.y + 40);
    await page.mouse.down();
    await page.mouse.move(r.x + 200, r.y + 40, {steps: 3});
    await page.mouse.up();
    await page.keyboard.up('Shift');
    await page.waitForFunction(() => /^\d+(\.\d+)?,\d+(\.\d+)?$/.test(new URL(location.href).searchParams.get('range') || ''));
    assert.equal(await page.isVisible('#range-note'), true);
    await page.focus('#timeline-canvas');
    await page.keyboard.press('Escape');
    assert.equal(await page.evaluate(() => window.tpTimelineRange()), null);
    assert.equal(new URL(page.url()).searchParams.get('range'), null);
    assert.equal(await page.isVisible('#range-note'), false);
  });

  test('a range selected in the timeline narrows the tree, the flame graph and the function table', async () => {
    // 0 to 2 ms holds main's first calls and the handle loop, not crunch
    // (it starts at 2.33 ms).
    const page = await openTrace(ids.ui, null, '?view=timeline&range=0,2');
    await page.waitForFunction(() => window.tpTimelineRange && window.tpTimelineRange() !== null);
    assert.deepEqual(await page.evaluate(() => window.tpTimelineRange()), {t0: 0, t1: 2});
    assert.match(await page.textContent('#range-text'), /^Range 0ns – 2\.00ms \(2\.00ms\)/);
    // The search is highlighted in the timeline.
    await page.click('#tab-tree');
    await page.waitForSelector('#tree .row');
    await page.fill('#search', 'app.io.send');
    await page.press('#search', 'Enter');
    await page.waitForFunction(() => document.querySelector('#hit-info').textContent === '1 of 1');
    const rows = await rowTexts(page);
    assert.ok(rows.some((t) => /app\.io\.send/.test(t)));
    assert.ok(!rows.some((t) => /app\.slow\.crunch/.test(t)), 'crunch ran after the range: ' + rows.join('\n'));
    await page.click('#tab-timeline');
    await page.waitForFunction(() => window.tpTimelineLit && window.tpTimelineLit() === 1);
    await page.click('#tab-hot');
    await page.waitForSelector('#fn-table tbody tr');
    const names = await page.$$eval('#fn-table tbody tr', (r) => r.map((x) => x.dataset.name));
    assert.ok(names.includes('app.web.handle') && names.includes('app.io.send'), names.join(' '));
    assert.ok(!names.includes('app.slow.crunch'), 'only calls that started in the range: ' + names.join(' '));
    await page.click('#tab-flame');
    await page.waitForFunction(() => window.tpFlameDrawn && window.tpFlameDrawn() === 'time');
    assert.ok(!(await page.evaluate(() => window.tpFlameRow(2))).includes('app.slow.crunch'));
    // Clearing the range brings everything back.
    await page.click('#range-clear');
    await page.waitForFunction(() => window.tpFlameRow(2).includes('app.slow.crunch'));
    assert.equal(new URL(page.url()).searchParams.get('range'), null);
  });

  test('whole-trace summaries: timeline buckets, merged flame, sandwich, the function table of a range', async () => {
    const get = async (p) => {
      const res = await fetch(d.url + p, {headers: {Cookie: `tp_token_${d.port}=${d.token}`}});
      assert.equal(res.status, 200, p);
      return res.json();
    };
    const id = ids.ui;
    const sum = await get(`/api/traces/${id}`);
    const all = await get(`/api/traces/${id}/profile`);
    assert.equal(all.calls, sum.calls);
    const early = await get(`/api/traces/${id}/profile?t0=0&t1=2`);
    const fn = (list, m, q) => list.find((f) => f.module === m && f.name === q);
    assert.equal(fn(all.functions, 'app.web', 'handle').count, 2000);
    assert.ok(fn(early.functions, 'app.web', 'handle').count > 0);
    assert.equal(fn(early.functions, 'app.slow', 'crunch'), undefined);
    const tl = await get(`/api/traces/${id}/timeline?buckets=10`);
    assert.equal(tl.buckets, 10);
    assert.deepEqual(tl.lanes.map((l) => l.name), ['thread 0', 'task app.task.worker']);
    assert.deepEqual(tl.lanes[0].rows[0].map((c) => c[0]), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 'main is busy in every bucket');
    const merged = await get(`/api/traces/${id}/flame`);
    assert.equal(merged.mode, 'merged');
    assert.equal(merged.nodes[0].function, 'app.main');
    assert.equal(merged.nodes[0].kids[0].function, 'app.slow.crunch');
    assert.equal(merged.nodes[0].kids.find((k) => k.function === 'app.web.handle').count, 2000);
    const sw = await get(`/api/traces/${id}/flame?fn=app.web.parse`);
    assert.equal(sw.count, 2000);
    assert.deepEqual(sw.callers.map((c) => [c.function, c.count, c.kids.map((k) => k.function)]), [['app.web.handle', 2000, ['app.main']]]);
    assert.deepEqual(sw.callees, []);
    const badRes = await fetch(d.url + `/api/traces/${id}/timeline?buckets=0`, {headers: {Cookie: `tp_token_${d.port}=${d.token}`}});
    assert.equal(badRes.status, 400);
  });

  test('links that last: tab, selected call and search come back on reload', async () => {
    const page = await openTrace(ids['checkout-b']);
    await clickRow(page, /shop\.pay\.charge/);
    await page.waitForFunction(() => new URL(location.href).searchParams.has('node'));
    await page.fill('#search', 'query');
    await page.press('#search', 'Enter');
    await page.waitForFunction(() => new URL(location.href).searchParams.get('q') === 'query');
    await page.waitForFunction(() => /shop\.db\.query/.test(document.querySelector('#tree .row.sel').textContent));
    const url = page.url();
    await page.goto(url);
    await page.waitForSelector('#tree .row.sel');
    await page.waitForFunction(() => document.querySelector('#hit-info').textContent === '1 of 1');
    assert.match(await selectedRow(page), /shop\.db\.query/);
    assert.equal(await page.inputValue('#search'), 'query');
    await page.click('#tab-flame');
    assert.equal(new URL(page.url()).searchParams.get('view'), 'flame');
    await page.reload();
    await page.waitForSelector('#flame-canvas');
    assert.equal(await page.getAttribute('#tab-flame', 'aria-selected'), 'true');
  });

  test('tree tools: expand all, to depth N, sort by time, hide fast calls, filter by module', async () => {
    const page = await openTrace(ids['checkout-b']);
    await page.click('#collapse-all');
    assert.equal((await rowTexts(page)).length, 1);
    await page.click('#expand-all');
    await page.waitForFunction(() => document.querySelectorAll('#tree .row').length === 5);
    await page.selectOption('#expand-depth', '1');
    await page.waitForFunction(() => document.querySelectorAll('#tree .row').length === 4);
    await page.selectOption('#sort-kids', 'time');
    let rows = await rowTexts(page);
    assert.match(rows[1], /shop\.pay\.charge/);
    assert.match(rows[2], /shop\.cart\.Cart\.total/);
    await page.selectOption('#sort-kids', 'start');
    await page.click('#expand-all');
    await page.fill('#hide-fast', '0.1');
    await page.press('#hide-fast', 'Enter');
    rows = await rowTexts(page);
    assert.ok(!rows.some((r) => /send_receipt/.test(r)), rows.join('\n'));
    await page.fill('#hide-fast', '');
    await page.press('#hide-fast', 'Enter');
    await page.fill('#module-filter', 'shop.db');
    await page.press('#module-filter', 'Enter');
    rows = await rowTexts(page);
    assert.ok(rows.some((r) => /shop\.db\.query/.test(r)));
    assert.ok(!rows.some((r) => /shop\.pay\.charge/.test(r)), rows.join('\n'));
  });

  test('the hot path is open by default', async () => {
    const page = await openTrace(ids.deep);
    await page.waitForFunction(() => /deep\.chain\.needle/.test(document.querySelector('#tree .row.sel')?.textContent));
  });

  test('list: a label filter without a glob matches as a substring', async () => {
    const page = await open('/');
    await page.waitForSelector('#trace-rows tr');
    await page.fill('#filter-label', 'check');
    await page.waitForFunction(() => document.querySelectorAll('#trace-rows tr').length === 3); // checkout-a, -b, -slow
  });

  test('search placeholder fits its box', async () => {
    const page = await openTrace(ids.ui);
    const fit = await page.$eval('#search', (i) => {
      const c = document.createElement('canvas').getContext('2d');
      const cs = getComputedStyle(i);
      c.font = cs.font;
      return {text: c.measureText(i.placeholder).width, box: i.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight)};
    });
    assert.ok(fit.text <= fit.box, JSON.stringify(fit));
  });

  test('diff: a long path keeps its last function visible, and an added call is not red', async () => {
    const page = await open(`/diff/${ids['checkout-a']}/${ids['checkout-b']}`, {width: 520, height: 800});
    await page.waitForSelector('#diff-rows tr');
    const leaf = await page.$eval('#diff-rows tr.k-added td.path', (td) => {
      const l = td.querySelector('.leaf').getBoundingClientRect(), t = td.getBoundingClientRect();
      return {l: [l.left, l.right], t: [t.left, t.right]};
    });
    assert.ok(leaf.l[1] <= leaf.t[1] + 0.5 && leaf.l[0] >= leaf.t[0] - 0.5, JSON.stringify(leaf));
    const cls = await page.$eval('#diff-rows tr.k-added td:last-child', (td) => td.className);
    assert.doesNotMatch(cls, /worse/);
  });

  test('diff: per-function calls and self time, biggest change in calls first', async () => {
    const page = await open(`/diff/${ids['checkout-a']}/${ids['checkout-b']}`);
    await page.waitForSelector('#diff-fns tbody tr');
    const rows = await page.$$eval('#diff-fns tbody tr', (trs) => trs.map((t) => Array.from(t.cells, (c) => c.textContent)));
    assert.deepEqual(rows[0].slice(0, 3), ['shop.mail.send_receipt', '0 → 1', '+1']);
    assert.deepEqual(rows[1].slice(0, 4), ['shop.pay.charge', '1 → 1', '0', '500µs → 2.00ms']);
    assert.equal(rows.length, 5);
    assert.equal(await page.$$eval('#diff-noise', (e) => e.length), 0, 'call counts differ: no noise hint');
  });

  test('a folded call unfolds into its calls in the details, a page at a time', async () => {
    const page = await openTrace(ids['checkout-a']);
    await clickRow(page, /shop\.db\.query/);
    await page.waitForFunction(() => document.querySelectorAll('#group-calls li').length === 3);
    const calls = await page.$$eval('#group-calls li', (lis) => lis.map((li) => [li.querySelector('.gc-text').textContent, li.querySelector('.gc-time').textContent]));
    assert.deepEqual(calls, [0, 1, 2].map((i) => [`(sql='SELECT price FROM items WHERE id=?', params=(${i},)) → [(9.99,)]`, '100µs']));
    assert.equal(await page.$eval('#group-more', (b) => b.hidden), true, 'no more to load');
    // A search marks the calls it matches.
    await page.fill('#search', 'params=(1,)');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => document.querySelector('#hit-info').textContent === '1 of 1');
    await page.waitForFunction(() => document.querySelectorAll('#group-calls li').length === 3);
    assert.deepEqual(await page.$$eval('#group-calls li', (lis) => lis.map((li) => li.className)), ['', 'hit', '']);
  });

  test('diff: both call trees side by side, aligned by call path', async () => {
    // Same timings; B makes one call more.
    const page = await open(`/diff/${ids['checkout-slow']}/${ids['checkout-b']}`);
    await page.waitForSelector('#diff-tree-rows tr');
    const rows = () => page.$$eval('#diff-tree-rows tr', (trs) => trs.map((t) =>
      [t.className, ...[0, 1, 3, 4, 5].map((i) => t.cells[i].textContent)]));
    assert.deepEqual(await rows(), [
      ['', 'shop.views.checkout', '1', '', 'shop.views.checkout', '1'],
      ['', 'shop.cart.Cart.total', '1', '', 'shop.cart.Cart.total', '1'],
      ['', 'shop.db.query', '3', '', 'shop.db.query', '3'],
      ['', 'shop.pay.charge', '1', '', 'shop.pay.charge', '1'],
      ['k-added', '', '', 'Added', 'shop.mail.send_receipt', '1'],
    ]);
    // Indented by depth on both sides.
    const pad = await page.$$eval('#diff-tree-rows tr:nth-child(3) td.fn', (tds) => tds.map((td) => td.style.paddingLeft));
    assert.deepEqual(pad, ['36px', '36px']);
    await page.check('#diff-tree-changed');
    assert.deepEqual((await rows()).map((r) => r[4]), ['shop.views.checkout', 'shop.mail.send_receipt']);
  });

  test('diff: the same calls with other timings say it may be noise', async () => {
    const page = await open(`/diff/${ids['checkout-a']}/${ids['checkout-slow']}`);
    await page.waitForSelector('#diff-fns tbody tr');
    assert.match(await page.textContent('#diff-noise'), /same calls/);
  });

  test('400 px: a tapped row shows its details as a sheet, nothing off-screen', async () => {
    const page = await openTrace(ids.ui, {width: 400, height: 800});
    const top = await page.$eval('#tree', (t) => t.getBoundingClientRect().top);
    assert.ok(top < 300, 'the tree starts at ' + top);
    await clickRow(page, /app\.io\.send/);
    const sheet = await page.$eval('#details', (e) => {
      const r = e.getBoundingClientRect();
      return {vis: getComputedStyle(e).display !== 'none', l: r.left, r: r.right, t: r.top, b: r.bottom};
    });
    assert.ok(sheet.vis, 'details shown');
    assert.ok(sheet.l >= 0 && sheet.r <= 400 && sheet.b <= 800 && sheet.t >= 0, JSON.stringify(sheet));
    assert.match(await page.textContent('#details h3'), /app\.io\.send/);
    const tm = await page.$$eval('#tree .row .tm', (t) => Math.max(...t.map((x) => x.getBoundingClientRect().right)));
    assert.ok(tm <= 400, 'time column ends at ' + tm);
    await page.click('#details-close');
    assert.equal(await page.$eval('#details', (e) => getComputedStyle(e).display), 'none');
  });

  test('every view at 400, 1440 and 1920 px in both themes: nothing wider than its container', async () => {
    const views = [['/t/' + ids.ui, '#tree .row'], ['/t/' + ids.ui + '?view=flame', '#flame-canvas'], ['/t/' + ids.ui + '?view=timeline', '#timeline-canvas'],
      ['/t/' + ids.ui + '?view=hot', '#fn-table tbody tr'], ['/', '#trace-rows tr'],
      [`/diff/${ids['checkout-a']}/${ids['checkout-b']}`, '#diff-rows tr']];
    const bad = [];
    for (const width of [400, 1440, 1920]) {
      for (const scheme of ['light', 'dark']) {
        for (const [path, ready] of views) {
          const page = await b.page();
          await page.setViewportSize({width, height: 900});
          await page.emulateMedia({colorScheme: scheme});
          await page.goto(d.url + path);
          await page.waitForSelector(ready);
          await settle(page);
          const over = await page.evaluate(() => {
            const out = [];
            const vw = document.documentElement.clientWidth;
            if (document.documentElement.scrollWidth > vw + 1) out.push('page scrolls sideways: ' + document.documentElement.scrollWidth);
            for (const e of document.querySelectorAll('main *, header *')) {
              const p = e.parentElement;
              if (!p || e.closest('.tree-spacer, .flame-wrap, .table-wrap, .scroll-x, pre')) continue;
              const cs = getComputedStyle(e);
              if (cs.display === 'none' || cs.position === 'absolute' || cs.position === 'fixed') continue;
              const r = e.getBoundingClientRect(), pr = p.getBoundingClientRect();
              if (!r.width) continue;
              if (r.right > pr.right + 1 && getComputedStyle(p).overflowX === 'visible')
                out.push((e.id || e.className || e.tagName) + ' ' + Math.round(r.right - pr.right) + 'px past ' + (p.id || p.className || p.tagName));
              if (r.right > vw + 1) out.push((e.id || e.className || e.tagName) + ' off-screen by ' + Math.round(r.right - vw));
            }
            // Text contrast of the main colours against the background.
            return out.slice(0, 5);
          });
          if (over.length) bad.push(`${width} ${scheme} ${path}: ${over.join('; ')}`);
          const fg = await page.evaluate(() => {
            const cs = getComputedStyle(document.documentElement);
            const rgb = (v) => {
              const c = document.createElement('canvas').getContext('2d');
              c.fillStyle = v.trim();
              const h = c.fillStyle;
              return [1, 3, 5].map((i) => parseInt(h.slice(i, i + 2), 16));
            };
            return {bg: rgb(cs.getPropertyValue('--bg')), fg: rgb(cs.getPropertyValue('--fg')), muted: rgb(cs.getPropertyValue('--muted'))};
          });
          assert.ok(contrast(fg.fg, fg.bg) >= 4.5 && contrast(fg.muted, fg.bg) >= 4.5, `${scheme} text contrast`);
          await screenshot(page, `${path === '/' ? 'list' : path.includes('diff') ? 'diff' : path.includes('flame') ? 'flame' : path.includes('timeline') ? 'timeline' : path.includes('hot') ? 'functions' : 'tree'}-${width}-${scheme}`);
        }
      }
    }
    assert.deepEqual(bad, []);
  });
});
