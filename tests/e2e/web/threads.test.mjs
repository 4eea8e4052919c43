// Issue #9 in the report UI: a worker thread's calls under a row naming the
// thread, and a repeated (parse, price) sequence under one "[parse, price]
// ×5" row, both collapsible; search still finds a call inside the sequence.

import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';

import { spawnSync } from 'node:child_process';

import { TPH, reportFixture, screenshot, selectedRow, settle, skipReason } from './lib.mjs';

const skip = skipReason();

describe('report UI: threads and sequences', {skip: skip || false, timeout: 300000}, () => {
  const fx = reportFixture(['threads']);
  let d, b, ids;
  before(() => ({d, b, ids} = fx));

  async function openTree() {
    const page = await b.page();
    page.setDefaultTimeout(10000);
    await page.goto(d.url + '/t/' + ids.threads + '?node=0');
    await page.waitForSelector('#tree .row');
    await settle(page);
    return page;
  }

  // Each row's text without its times: name, args, value, count, badges.
  async function shape(page) {
    await settle(page);
    return page.$$eval('#tree .row', (rows) => rows
      .sort((a, c) => Number(a.dataset.i) - Number(c.dataset.i))
      .map((r) => [...r.children].filter((c) => !c.matches('.tm, .sf, .bar')).map((c) => c.textContent).join('')));
  }

  test('a thread row holds its calls and a sequence row its positions', async () => {
    // The same tree as tph prints it.
    const r = spawnSync(TPH, ['--socket', d.socket, 'tree', ids.threads], {encoding: 'utf8'});
    assert.equal(r.status, 0, r.stderr);
    const tree = r.stdout.split('\n\n')[1].replace(/  \[[^\]×x]*\]$/gm, '').split('\n');
    assert.deepEqual(tree.slice(0, 3), ['├── app.setup() -> None', '├── thread Thread-1 (worker)', '│   ├── app.worker(n=1) -> 1']);
    const page = await openTree();
    const levels = await page.$$eval('#tree .row', (rows) => rows
      .sort((a, c) => Number(a.dataset.i) - Number(c.dataset.i))
      .map((r) => r.getAttribute('aria-level')));
    assert.deepEqual(await shape(page), [
      'app.setup() → None',
      '▾thread Thread-1 (worker)15 calls',
      '▾app.worker(n=1) → 1',
      '▾[app.parse, app.price]×5',
      'app.parse(line=0) → 0×5',
      'app.price(x=0) → 0×5',
      '▾[app.parse, app.price]×2',
      'app.parse(line=9) → 9×2',
      'app.price(x=9) → 18×2',
      'app.report() → None',
    ]);
    assert.deepEqual(levels, ['1', '1', '2', '3', '4', '4', '2', '3', '3', '1']);
    await screenshot(page, 'threads');

    // Collapsing the sequence row hides its positions; the thread row its calls.
    await page.click('#tree .row.seq-row');
    assert.deepEqual((await shape(page)).slice(3, 5), ['▸[app.parse, app.price]×5', '▾[app.parse, app.price]×2']);
    await page.click('#tree .row.thread-row');
    assert.deepEqual(await shape(page), [
      'app.setup() → None',
      '▸thread Thread-1 (worker)15 calls',
      'app.report() → None',
    ]);
  });

  test('search finds a call inside the folded sequence', async () => {
    const page = await openTree();
    await page.fill('#search', 'x=3');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => /^1 of 1$/.test(document.querySelector('#hit-info').textContent));
    assert.match(await selectedRow(page), /app\.price\(x=0\)/);
  });
});
