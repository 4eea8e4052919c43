// A call's source, opened from its file:line in the details pane: a real
// program traced with trace(lines=[...]) against a real tphd; its report
// served by tphd (the source from /api/traces/ID/source) and its own HTML
// file opened with the network cut off (the source inlined) show the same
// lines, the call's line highlighted, the lines= hits beside them, and the
// program's hostile text literally.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { PYTHON, launch, programEnv, settle, skipReason, startDaemon } from './lib.mjs';

const skip = skipReason();

const MOD = `import os


def work(n):
    tag = "</script><img src=x onerror=alert(9)>"  # \u202e <b>bold</b>
    total = 0
    for i in range(n):
        total += i
    return total


def quiet():
    return 1
`;

const SCRIPT = `
import os, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tracepatch
import evil

with tracepatch.trace(label="src", lines=[evil.work], cache=False) as t:
    evil.work(3)
    evil.quiet()
t._session.wait_upload(20)
t.to_html(sys.argv[1])
print(t.trace_id, t.upload_state)
`;

// The rows of the source panel: [line, hits, text], and which is highlighted.
const WORK_ROWS = [
  ['4', '', 'def work(n):'],
  ['5', '1×', '    tag = "</script><img src=x onerror=alert(9)>"  # \u202e <b>bold</b>'],
  ['6', '1×', '    total = 0'],
  ['7', '4×', '    for i in range(n):'],
  ['8', '3×', '        total += i'],
  ['9', '1×', '    return total'],
];

describe('source of a call', {skip: skip || false, timeout: 300000}, () => {
  let d, b, id, file;

  before(async () => {
    d = await startDaemon();
    fs.writeFileSync(path.join(d.dir, 'evil.py'), MOD);
    const script = path.join(d.dir, 'prog.py');
    fs.writeFileSync(script, SCRIPT);
    file = path.join(d.dir, 'report.html');
    const r = spawnSync(PYTHON, [script, file], {encoding: 'utf8', timeout: 120000, env: programEnv(d)});
    assert.equal(r.status, 0, r.stderr);
    const [tid, state] = r.stdout.trim().split(' ');
    assert.equal(state, 'acked');
    id = tid;
    b = await launch();
    const page = await b.page();
    await page.goto(`${d.url}/?token=${d.token}`);
  });

  after(async () => {
    if (b) await b.close();
    if (d) await d.stop();
  });

  async function openSource(page, name) {
    await page.waitForSelector('#tree .row');
    await settle(page);
    const expand = await page.$('#expand-all');
    if (expand) await expand.click();
    await settle(page);
    await page.click(`#tree .row:has-text("${name}(")`);
    await page.waitForSelector('#source-link');
    assert.equal(await page.textContent('#source-link'), path.join(d.dir, 'evil.py') + ':' + (name === 'evil.work' ? 4 : 12));
    await page.click('#source-link');
    await page.waitForSelector('#source');
  }

  async function rows(page) {
    return page.$$eval('#source .src-row', (trs) => trs.map((tr) =>
      Array.from(tr.children).map((td) => td.textContent)));
  }

  async function check(page) {
    await openSource(page, 'evil.work');
    assert.deepEqual(await rows(page), WORK_ROWS);
    assert.deepEqual(await page.$$eval('#source .src-row.hl', (r) => r.map((x) => x.dataset.line)), ['4'],
      "the call's line is highlighted");
    assert.equal(await page.$$eval('#source img, #source script, #source b', (e) => e.length), 0,
      'no element from the program\'s text');
    assert.equal(await page.textContent('#source p'), 'Hits: 1 recorded call (lines=).');
    // Closed by a second click; another call shows its own source, no hits.
    await page.click('#source-link');
    assert.equal(await page.$$eval('#source', (e) => e.length), 0);
    await openSource(page, 'evil.quiet');
    assert.deepEqual(await rows(page), [['12', 'def quiet():'], ['13', '    return 1']]);
    assert.deepEqual(b.problems.splice(0), [], 'no console errors, page errors or dialogs');
  }

  test('the served report opens the source tphd stored', async () => {
    const page = await b.page();
    page.setDefaultTimeout(20000);
    await page.goto(d.url + '/t/' + id);
    await check(page);
    await page.close();
  });

  test('the report file opens the source it inlines, offline', async () => {
    const page = await b.context.newPage();
    page.setDefaultTimeout(20000);
    await page.route('**', (route) => (route.request().url().startsWith('file:') ? route.continue() : route.abort()));
    await page.goto('file://' + file);
    await check(page);
    await page.close();
  });
});
