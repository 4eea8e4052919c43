// A trace(track_memory=True) trace in the report: the details pane of a
// measured call says its memory delta as the text tree does (a delta beyond
// 32 bits included); an unmeasured call has no Memory line.

import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';

import { reportFixture, settle, skipReason } from './lib.mjs';

const skip = skipReason();

describe('report UI: memory deltas', {skip: skip || false, timeout: 300000}, () => {
  const fx = reportFixture(['memory']);
  let d, b, ids;
  before(() => ({d, b, ids} = fx));

  async function factsOf(page, re) {
    const i = await page.$$eval('#tree .row', (rows, src) => {
      const r = rows.find((x) => new RegExp(src).test(x.textContent));
      return r ? Number(r.dataset.i) : -1;
    }, re.source);
    assert.ok(i >= 0, 'a row matches ' + re);
    await page.click(`#tree .row[data-i="${i}"]`);
    await settle(page);
    return page.$$eval('#details .facts dt', (dts) =>
      Object.fromEntries(dts.map((dt) => [dt.textContent, dt.nextElementSibling.textContent])));
  }

  test('measured calls show their delta, unmeasured ones nothing', async () => {
    const page = await b.page();
    await page.goto(`${d.url}/t/${ids.memory}`);
    await page.waitForSelector('#tree .row');
    await settle(page);
    assert.equal((await factsOf(page, /app\.keeps/)).Memory, '+976.6 KB');
    assert.equal((await factsOf(page, /app\.frees/)).Memory, '+0.0 KB');
    assert.equal((await factsOf(page, /app\.drops/)).Memory, '-3.0 GB');
    assert.equal((await factsOf(page, /app\.main/)).Memory, '-3.0 GB'); // -2.999 GiB
    assert.equal((await factsOf(page, /app\.plain/)).Memory, undefined);
  });
});
