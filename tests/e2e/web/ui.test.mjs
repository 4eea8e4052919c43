// The report UI in headless Chromium against a real tphd: access, the trace
// list, a trace (tree, keyboard, details, search, flame graph, hotspots), the
// diff page, themes, and trace text that tries to be HTML.

import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';

import { XSS_ARG, XSS_ATTR, launch, rowTexts, screenshot, seed, selectedRow, skipReason, startDaemon } from './lib.mjs';

const skip = skipReason();

describe('report UI', {skip: skip || false, timeout: 300000}, () => {
  let d, b, ids;

  before(async () => {
    d = await startDaemon();
    ids = seed(d, ['checkout-a', 'checkout-b', 'xss', 'deep']);
    b = await launch();
  });

  after(async () => {
    if (b) await b.close();
    if (d) await d.stop();
  });

  afterEach(() => {
    const problems = b.problems.splice(0);
    assert.deepEqual(problems, [], 'no console errors, page errors or dialogs');
  });

  async function open(path) {
    const page = await b.page();
    await page.goto(d.url + path);
    return page;
  }

  // The tests below start from the first call selected (?node=0), as a
  // link to it gives; without one the report opens the hot path.
  async function openTrace(id, query) {
    const page = await open('/t/' + id + (query || ''));
    await page.waitForSelector('#tree .row');
    return page;
  }

  test('without the token: 401 and a page that says how to get the link', async () => {
    const page = await b.context.newPage();
    const res = await page.goto(d.url + '/t/' + ids.deep);
    assert.equal(res.status(), 401);
    assert.match(await page.textContent('body'), /tph open/);
    await page.close();
    // Chrome reports the 401 itself on the console; nothing else may appear.
    const i = b.problems.findIndex((p) => /status of 401/.test(p));
    assert.ok(i >= 0);
    b.problems.splice(i, 1);
  });

  test('the token link sets an HttpOnly SameSite=Strict cookie and leaves the URL', async () => {
    const page = await b.page();
    const res = await page.goto(`${d.url}/?token=${d.token}&label=check*`);
    assert.equal(res.status(), 200);
    assert.equal(page.url(), d.url + '/?label=check*', 'the token is gone from the address bar');
    const cookies = await b.context.cookies(d.url);
    const c = cookies.find((x) => x.name === `tp_token_${d.port}`);
    assert.ok(c, 'the cookie is set');
    assert.equal(c.value, d.token);
    assert.equal(c.httpOnly, true);
    assert.equal(c.sameSite, 'Strict');
    assert.equal(c.path, '/');
    assert.equal(await page.evaluate(() => document.cookie), '', 'scripts cannot read it');
    await page.waitForSelector('#trace-rows tr');
    assert.equal(await page.inputValue('#filter-label'), 'check*', 'other parameters stay');
  });

  test('trace list: newest first, labels as text, badges, live updates', async () => {
    const page = await open('/');
    await page.waitForFunction(() => document.querySelectorAll('#trace-rows tr').length === 4);
    const labels = await page.$$eval('#trace-rows .label', (els) => els.map((e) => e.textContent));
    assert.deepEqual(labels, ['deep-and-wide', "<script>alert('label')</script>", 'checkout', 'checkout']);
    assert.equal(await page.$$eval('#trace-rows script, #trace-rows img', (e) => e.length), 0);
    assert.match(await page.textContent('#list-count'), /^4 traces$/);
    const calls = await page.$eval(`tr[data-id="${ids.deep}"] td:nth-child(5)`, (e) => e.textContent);
    assert.equal(calls, '1,216');
    await screenshot(page, 'list');

    // A trace sent now appears without a reload, flagged as new.
    const more = seed(d, ['live-trace']);
    await page.waitForSelector(`tr[data-id="${more['live-trace']}"].fresh`, {timeout: 15000});
    assert.equal(await page.$eval('#trace-rows tr:first-child .label', (e) => e.textContent), 'live-trace');
    assert.match(await page.textContent('#list-count'), /^5 traces$/);
  });

  test('trace list: filters by label glob and by text', async () => {
    const page = await open('/');
    await page.waitForSelector('#trace-rows tr');
    await page.fill('#filter-label', 'check*');
    await page.waitForFunction(() => document.querySelectorAll('#trace-rows tr').length === 2);
    assert.equal(new URL(page.url()).searchParams.get('label'), 'check*');
    await page.fill('#filter-label', '');
    await page.fill('#filter-text', 'deep-and');
    await page.waitForFunction(() => document.querySelectorAll('#trace-rows tr').length === 1);
    assert.equal(await page.textContent('#trace-rows .label'), 'deep-and-wide');
    await page.fill('#filter-text', 'no such trace anywhere');
    await page.waitForSelector('#list-empty:not([hidden])');
    assert.match(await page.textContent('#list-empty'), /No trace matches/);
  });

  test('trace page: stats header, tree, expand and collapse by keyboard and mouse', async () => {
    const page = await openTrace(ids['checkout-b'], '?node=0');
    assert.equal(await page.textContent('#trace-label'), 'checkout');
    await page.waitForFunction(() => /Functions\s*5/.test(document.querySelector('#trace-head').textContent));
    const chips = await page.textContent('#trace-head .chips');
    assert.match(chips, /Calls\s*7/);
    assert.match(chips, /Duration\s*2\.98ms/);

    // Small trees open fully: checkout > [Cart.total > query x3 folded, charge, send_receipt].
    let rows = await rowTexts(page);
    assert.equal(rows.length, 5);
    assert.match(rows[0], /^▾\s*shop\.views\.checkout\(request=<Request POST \/checkout>, user_id=42\) → <Response 200>/);
    assert.match(rows[2], /shop\.db\.query\(sql='SELECT price FROM items WHERE id=\?', params=\(0,\)\) → \[\(9\.99,\)\]\s*×3/);

    await page.focus('#tree');
    await page.keyboard.press('ArrowDown');
    assert.match(await selectedRow(page), /Cart\.total/);
    await page.keyboard.press('ArrowLeft'); // collapse Cart.total
    rows = await rowTexts(page);
    assert.equal(rows.length, 4);
    assert.match(rows[1], /^▸/);
    await page.keyboard.press('ArrowRight'); // expand again
    await page.waitForFunction(() => document.querySelectorAll('#tree .row').length === 5);
    await page.keyboard.press('ArrowRight'); // to the first child
    assert.match(await selectedRow(page), /shop\.db\.query/);
    await page.keyboard.press('ArrowLeft'); // a leaf: to its parent
    assert.match(await selectedRow(page), /Cart\.total/);
    await page.keyboard.press('Enter'); // toggle
    assert.equal((await rowTexts(page)).length, 4);
    await page.click('#tree .row[data-i="1"] .tw'); // the mouse opens it again
    await page.waitForFunction(() => document.querySelectorAll('#tree .row').length === 5);

    // Details of the folded query: counts, min/avg/max, location, full args.
    await page.click('#tree .row[data-i="2"]');
    const details = await page.textContent('#details');
    assert.match(details, /Calls3 \(folded\)/);
    assert.match(details, /\/srv\/shop\/db\.py:88/);
    assert.match(details, /Min \/ avg \/ max300µs \/ 300µs \/ 300µs/);
    assert.match(details, /different arguments/);
    await page.click('#collapse-all');
    assert.equal((await rowTexts(page)).length, 1);
    await screenshot(page, 'trace');
  });

  test('arguments, values, names and exceptions that look like HTML stay text', async () => {
    const page = await openTrace(ids.xss);
    assert.equal(await page.textContent('#trace-label'), "<script>alert('label')</script>");
    const rows = await rowTexts(page);
    assert.equal(rows.length, 3);
    assert.ok(rows[0].includes(`(x='${XSS_ARG}')`), rows[0]);
    assert.ok(rows[1].includes(`(s='\\'"><img src=x onerror=alert(2)>')`) || rows[1].includes(XSS_ATTR), rows[1]);
    assert.ok(rows[2].includes('<img src=x onerror=alert(3)>.<b>bold</b>'), rows[2]);
    assert.ok(rows[2].includes('!! <svg onload=alert(6)>: <iframe src=javascript:alert(7)>'), rows[2]);
    await page.focus('#tree');
    await page.keyboard.press('End');
    const pre = await page.$$eval('#details pre', (els) => els.map((e) => e.textContent));
    assert.deepEqual(pre, ["a='</script><!--<script>alert(5)</script>'", '<svg onload=alert(6)>: <iframe src=javascript:alert(7)>']);
    assert.equal(await page.textContent('#details .loc'), '</script><script>alert(4)</script>.py:9');
    const injected = await page.$$eval('img, iframe, svg, b, main script, object, embed', (e) => e.length);
    assert.equal(injected, 0, 'no element came from trace text');
    await screenshot(page, 'xss');
  });

  test('search (/ to focus) reveals a match deep in a lazily loaded subtree', async () => {
    const page = await openTrace(ids.deep, '?node=0');
    // main has 1,201 children: the first page is shown, the rest behind a "more" row.
    await page.focus('#tree');
    await page.keyboard.press('End');
    assert.match(await selectedRow(page), /^\+701 more calls — load$/);
    await page.keyboard.press('/');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'search');
    await page.keyboard.type('FOUND-me');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => document.querySelector('#hit-info').textContent === '1 of 1');
    // The revealed row is drawn on the scroll that follows the selection:
    // on a loaded machine after the hit count is shown.
    await page.waitForSelector('#tree .row.sel');
    const sel = await selectedRow(page);
    assert.match(sel, /deep\.chain\.needle\(secret='found-me-deep'\) → 'needle'/);
    assert.equal(await page.$eval('#tree .row.sel mark', (m) => m.textContent), 'found-me');
    const level = await page.$eval('#tree .row.sel', (r) => r.getAttribute('aria-level'));
    assert.equal(level, '16', 'the needle is 15 calls below main');
    await screenshot(page, 'search');

    // Escape returns to the tree; n/N step through matches of a wider search.
    await page.fill('#search', 'deep.b');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => /^1 of 600$/.test(document.querySelector('#hit-info').textContent));
    await page.keyboard.press('Escape');
    await page.keyboard.press('n');
    await page.waitForFunction(() => document.querySelector('#hit-info').textContent === '2 of 600');
    assert.match(await selectedRow(page), /deep\.b\(i=3\)/);
  });

  test('a "more" row loads the next page of children', async () => {
    const page = await openTrace(ids.deep, '?node=0');
    const height = () => page.evaluate(() => document.querySelector('.tree-spacer').style.height);
    assert.equal(await height(), (1 + 500 + 1) * 22 + 'px', 'main, 500 children, a "more" row');
    await page.focus('#tree');
    await page.keyboard.press('End');
    await page.click('#tree .row.more'); // the mouse
    await page.waitForFunction(() => document.querySelector('.tree-spacer').style.height === (1 + 1000 + 1) * 22 + 'px');
    await page.keyboard.press('End');
    await page.keyboard.press('Enter'); // the keyboard
    await page.waitForFunction(() => document.querySelector('.tree-spacer').style.height === (1 + 1201) * 22 + 'px');
    assert.equal(await height(), (1 + 1201) * 22 + 'px', 'main and its 1,201 children');
  });

  test('flame graph draws bars and zooms into one', async () => {
    const page = await openTrace(ids['checkout-b']);
    await page.click('#tab-flame');
    await page.waitForSelector('#flame-canvas');
    const box = await page.$eval('#flame-canvas', (c) => ({w: c.width, h: c.height}));
    assert.ok(box.w > 500 && box.h >= 4 * 20, JSON.stringify(box));
    const painted = await page.$eval('#flame-canvas', (c) => {
      const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 3; i < px.length; i += 4) if (px[i]) n++;
      return n / (c.width * c.height);
    });
    assert.ok(painted > 0.3, 'bars cover the rows: ' + painted);
    assert.equal(await page.isDisabled('#flame-reset'), true);
    const r = await page.$eval('#flame-canvas', (c) => c.getBoundingClientRect().toJSON());
    await page.mouse.click(r.x + 40, r.y + 2 * 20 + 10); // the Cart.total bar, third row
    await page.waitForFunction(() => !document.querySelector('#flame-reset').disabled);
    assert.match(await page.textContent('.flame-bar'), /Zoomed into shop\.cart\.Cart\.total/);
    await screenshot(page, 'flame');
    await page.click('#flame-reset');
    await page.waitForFunction(() => document.querySelector('#flame-reset').disabled);
  });

  test('hotspots: slowest, most self time, most called, modules', async () => {
    const page = await openTrace(ids['checkout-b']);
    await page.click('#tab-hot');
    await page.waitForSelector('#fn-table tbody tr');
    // One table, by total time first; its headers sort by self time and calls.
    const first = await page.$eval('#fn-table tbody tr', (r) => r.textContent);
    assert.match(first, /^shop\.views\.checkout1/);
    await page.click('#fn-table thead th:nth-child(4)');
    const self = await page.$eval('#fn-table tbody tr', (r) => r.textContent);
    assert.match(self, /^shop\.pay\.charge12\.00ms2\.00ms/);
    await page.click('#fn-table thead th:nth-child(2)');
    const called = await page.$eval('#fn-table tbody tr', (r) => r.textContent);
    assert.match(called, /^shop\.db\.query3/);
    assert.equal(await page.$$eval('#hot-modules tbody tr', (r) => r.length), 5);
    await screenshot(page, 'hotspots');
    // A function name leads to it in the tree.
    await page.click('#card-most-called .link');
    await page.waitForFunction(() => /^1 of 1$/.test(document.querySelector('#hit-info').textContent));
    assert.match(await selectedRow(page), /shop\.db\.query/);
  });

  test('compare: tick two traces, open the diff', async () => {
    const page = await open('/?label=checkout');
    await page.waitForFunction(() => document.querySelectorAll('#trace-rows tr').length === 2);
    assert.equal(await page.isDisabled('#compare'), true);
    await page.check(`tr[data-id="${ids['checkout-a']}"] .pick-box`);
    await page.check(`tr[data-id="${ids['checkout-b']}"] .pick-box`);
    await page.click('#compare');
    await page.waitForSelector('#diff-rows tr');
    assert.equal(new URL(page.url()).pathname, `/diff/${ids['checkout-a']}/${ids['checkout-b']}`);
    const head = await page.textContent('#diff-head');
    assert.match(head, /Calls6 → 7/);
    const rows = await page.$$eval('#diff-rows tr', (trs) => trs.map((t) => t.textContent));
    assert.ok(rows.some((r) => /^Added.*shop\.views\.checkout › shop\.mail\.send_receipt/.test(r)), rows.join('\n'));
    assert.ok(rows.some((r) => /^Time.*shop\.pay\.charge/.test(r)), rows.join('\n'));
    assert.deepEqual(await page.$$eval('#fn-added li', (l) => l.map((x) => x.textContent)), ['shop.mail.send_receipt']);
    await screenshot(page, 'diff');
    await page.uncheck('input[data-kind="time"]');
    const kinds = await page.$$eval('#diff-rows tr', (trs) => trs.map((t) => t.className));
    assert.ok(!kinds.includes('k-time'));
  });

  test('themes: follows the system, and the toggle cycles auto, light, dark', async () => {
    const page = await openTrace(ids['checkout-a']);
    const bg = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    await page.emulateMedia({colorScheme: 'light'});
    assert.equal(await bg(), 'rgb(255, 255, 255)');
    await page.emulateMedia({colorScheme: 'dark'});
    assert.equal(await bg(), 'rgb(20, 23, 28)');
    await screenshot(page, 'dark');
    await page.click('#theme'); // auto -> light
    assert.equal(await page.getAttribute('html', 'data-theme'), 'light');
    assert.equal(await bg(), 'rgb(255, 255, 255)');
    await page.click('#theme'); // light -> dark
    await page.emulateMedia({colorScheme: 'light'});
    assert.equal(await bg(), 'rgb(20, 23, 28)');
    await page.reload();
    await page.waitForSelector('#tree .row');
    assert.equal(await page.getAttribute('html', 'data-theme'), 'dark', 'the choice is remembered');
    await page.click('#theme'); // back to auto
  });
});
