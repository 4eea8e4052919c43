// The Lines tab of a report made with trace(lines=[...]) (t.to_html()): each
// call of the chosen function, its lines with hits and values, as text, in a
// file opened with the network cut off. A trace without lines= has no tab.
// The report tphd serves has the same tab, from /api/traces/ID/lines.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { BUILD, launch, reportFixture, settle, skipReason } from './lib.mjs';

const skip = skipReason();
const PYTHON = fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

const SCRIPT = `
import sys
import tracepatch

def work(n):
    total = 0
    tag = "</script><b>x</b>"
    for i in range(n):
        total += i
    return total

with tracepatch.trace(lines=[work], cache=False, daemon="off") as t:
    work(2)
t.to_html(sys.argv[1])
with tracepatch.trace(cache=False, daemon="off") as t:
    work(2)
t.to_html(sys.argv[2])
`;

describe('Lines tab', {skip: skip || false, timeout: 300000}, () => {
  let b, dir, withLines, without;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tp-lines-'));
    const script = path.join(dir, 'work.py');
    fs.writeFileSync(script, SCRIPT);
    withLines = path.join(dir, 'lines.html');
    without = path.join(dir, 'plain.html');
    const r = spawnSync(PYTHON, [script, withLines, without], {encoding: 'utf8', timeout: 120000,
      env: {...process.env, PYTHONPATH: path.join(BUILD, 'client_ext') + ':/usr/lib/python3/dist-packages'}});
    assert.equal(r.status, 0, r.stderr);
    b = await launch();
  });

  after(async () => {
    if (b) await b.close();
    if (dir) fs.rmSync(dir, {recursive: true, force: true});
  });

  async function openOffline(file) {
    const page = await b.context.newPage();
    await page.route('**', (route) => (route.request().url().startsWith('file:') ? route.continue() : route.abort()));
    await page.goto('file://' + file);
    await page.waitForSelector('#tree .row');
    return page;
  }

  test('shows each line of the call with its hits and values', async () => {
    const html = fs.readFileSync(withLines, 'utf8');
    assert.equal(html.split('</script').length - 1, 4, 'trace text does not end the data element (data, tree, calls, app)');
    const page = await openOffline(withLines);
    await page.click('#tab-lines');
    await page.waitForSelector('#lines .line-row');
    assert.equal(await page.textContent('#lines h3'), '__main__.work(n=2) · call 0 · ' + path.join(dir, 'work.py'));
    const rows = await page.$$eval('#lines .line-row', (trs) => trs.map((tr) =>
      Array.from(tr.children).map((td) => td.textContent)));
    assert.deepEqual(rows, [
      ['6', '1×', '    total = 0', 'total=0'],
      ['7', '1×', '    tag = "</script><b>x</b>"', "tag='</script><b>x</b>'"],
      ['8', '3×', '    for i in range(n):', "i=0, 1, 1range=<class 'range'>, <class 'range'>, <class 'range'>n=2, 2, 2"],
      ['9', '2×', '        total += i', 'total=0, 1i=0, 1'],
      ['10', '1×', '    return total', 'total=1'],
    ]);
    assert.equal(await page.$$eval('#lines b', (e) => e.map((x) => x.textContent).join(' ')), 'total tag i range n total i total');
    assert.deepEqual(b.problems.splice(0), []);
    await page.close();
  });

  test('a trace without lines= has no Lines tab', async () => {
    const page = await openOffline(without);
    assert.equal(await page.$$eval('#tab-lines', (e) => e.length), 0);
    assert.deepEqual(await page.$$eval('.tab', (e) => e.map((x) => x.textContent)), ['Call tree', 'Flame graph', 'Timeline', 'Functions']);
    await page.close();
  });
});

describe('Lines tab of the served report', {skip: skip || false, timeout: 300000}, () => {
  const fx = reportFixture(['lines', 'checkout-a']);
  let d, b, ids;
  before(() => ({d, b, ids} = fx));

  async function openTrace(id) {
    const page = await b.page();
    page.setDefaultTimeout(10000);
    await page.goto(d.url + '/t/' + id);
    await page.waitForSelector('#tree .row');
    await settle(page);
    return page;
  }

  test('shows the lines tphd stored, hostile text kept literal', async () => {
    const page = await openTrace(ids.lines);
    await page.click('#tab-lines');
    await page.waitForSelector('#lines .line-row');
    assert.equal(await page.textContent('#lines h3'),
      "evil.handler(x='<script>alert(8)</script>') · call 0 · /tmp/evil.py");
    const rows = await page.$$eval('#lines .line-row', (trs) => trs.map((tr) =>
      Array.from(tr.children).map((td) => td.textContent)));
    assert.deepEqual(rows, [
      ['2', '1×', "    tag = '</script><img src=x onerror=alert(9)>'", "tag='</script><img src=x onerror=alert(9)>'"],
      ['3', '2×', '    return tag', ''],
    ]);
    assert.equal(await page.$$eval('#lines img, #lines script', (e) => e.length), 0, 'no element from trace text');
    assert.deepEqual(b.problems.splice(0), [], 'no console errors, page errors or dialogs');
  });

  test('a served trace without line data has no Lines tab', async () => {
    const page = await openTrace(ids['checkout-a']);
    assert.equal(await page.$$eval('#tab-lines', (e) => e.length), 0);
    assert.deepEqual(b.problems.splice(0), []);
  });
});
