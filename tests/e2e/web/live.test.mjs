// Issue #13 in the report UI: the page of a trace that is still recording
// follows it. A real program traced with the real extension streams to a
// real tphd (stream_after); its page shows the calls that arrived, picks up
// the next ones without a reload, and turns complete when the trace ends.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { PYTHON, launch, programEnv, settle, skipReason, startDaemon } from './lib.mjs';

const skip = skipReason();

const PROGRAM = `
import os, sys, time
from tracepatch import trace
HERE = sys.argv[1]
def step(i):
    return i * 2
AT_MORE, MORE = os.path.join(HERE, "at-more"), os.path.join(HERE, "more")
AT_END, END = os.path.join(HERE, "at-end"), os.path.join(HERE, "end")
def wait_for(at, go):
    # Only C functions while waiting: no call is recorded meanwhile, and
    # the extension's idle thread publishes this call too.
    os.close(os.open(at, os.O_CREAT | os.O_WRONLY))
    while not os.access(go, os.F_OK):
        time.sleep(0.01)
def run():
    for i in range(3):
        step(i)
    time.sleep(0.08)
    wait_for(AT_MORE, MORE)   # run(), three steps and this call are published
    for i in range(3, 7):
        step(i)
    time.sleep(0.08)
    wait_for(AT_END, END)     # and this one wait_for and the next four steps
with trace(label="live-page", stream_after=0.05) as t:
    run()
t.url
`;

async function until(fn, what, ms = 30000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error('timed out waiting for ' + what);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('report UI: a trace that is still recording', {skip: skip || false, timeout: 300000}, () => {
  let d, b, dir, proc;
  before(async () => {
    d = await startDaemon();
    b = await launch();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tp-live-'));
    fs.writeFileSync(path.join(dir, 'app.py'), PROGRAM);
    const env = programEnv(d);
    proc = spawn(PYTHON, [path.join(dir, 'app.py'), dir], {cwd: dir, env, stdio: ['ignore', 'ignore', 'pipe']});
    proc.stderr.on('data', (c) => process.stderr.write(c));
  });
  after(async () => {
    if (proc && proc.exitCode === null) proc.kill('SIGKILL');
    if (b) await b.close();
    if (d) await d.stop();
    fs.rmSync(dir, {recursive: true, force: true});
  });

  const api = async (p) => (await fetch(d.url + p, {headers: {Cookie: `tp_token_${d.port}=${d.token}`}})).json();
  const calls = (page) => page.$eval('#trace-head', (h) => {
    const chip = [...h.querySelectorAll('.chip')].find((c) => c.querySelector('dt').textContent === 'Calls');
    return chip.querySelector('dd').textContent;
  });

  test('new calls appear without a reload, and the end turns it complete', async () => {
    await until(() => fs.existsSync(path.join(dir, 'at-more')), 'the program to reach its first wait');
    const listed = await until(async () => {
      const r = await api('/api/traces?limit=5');
      return r.traces && r.traces.length === 1 && r.traces[0].calls === 5 && r.traces[0];
    }, 'tphd to list the first four calls');
    assert.equal(listed.status, 'open');
    const page = await b.page();
    await page.goto(`${d.url}/t/${listed.id}?token=${d.token}`);
    await page.waitForSelector('#tree .row');
    await page.evaluate(() => {
      window.tpSamePage = true;
      // A redraw keeps the old view until the new one is ready: the header
      // is never gone (no "Loading" placeholder in between).
      window.tpHeadGone = 0;
      new MutationObserver(() => { if (!document.querySelector('#trace-head')) window.tpHeadGone++; })
        .observe(document.querySelector('#app'), {childList: true, subtree: true});
    });
    assert.equal(await calls(page), '5');
    assert.doesNotMatch(await page.$$eval('#tree .row', (r) => r.map((x) => x.textContent).join('\n')), /step\(i=3\)/);
    assert.match(await page.$eval('#trace-head', (h) => h.textContent), /recording/);
    assert.match(await page.$eval('#trace-head', (h) => h.textContent), /Running for/);

    fs.writeFileSync(path.join(dir, 'more'), '');
    await until(() => fs.existsSync(path.join(dir, 'at-end')), 'the program to reach its second wait');
    // run, three steps, the first wait, four steps: 9 calls at least (the
    // second wait's own call may be there too).
    await until(async () => (await api('/api/traces?limit=5')).traces[0].calls >= 9, 'tphd to list the next calls');
    await page.waitForFunction(() => {
      const chip = [...document.querySelectorAll('#trace-head .chip')].find((c) => c.querySelector('dt').textContent === 'Calls');
      return chip && Number(chip.querySelector('dd').textContent) >= 9;
    });
    assert.equal(await page.evaluate(() => window.tpSamePage), true, 'the page was not reloaded');
    await settle(page);
    const rows = await page.$$eval('#tree .row', (r) => r.map((x) => x.textContent).join('\n'));
    assert.match(rows, /__main__\.step\(i=3\)/, rows); // the first of the four new steps

    fs.writeFileSync(path.join(dir, 'end'), '');
    await new Promise((resolve) => proc.on('exit', resolve));
    assert.equal(proc.exitCode, 0);
    await page.waitForFunction(() => !/recording/.test(document.querySelector('#trace-head').textContent));
    const final = (await api('/api/traces?limit=5')).traces[0];
    assert.equal(final.status, 'complete');
    assert.equal(await calls(page), String(final.calls));
    assert.equal(await page.evaluate(() => window.tpSamePage), true);
    assert.equal(await page.evaluate(() => window.tpHeadGone), 0);
    assert.deepEqual(b.problems.splice(0), []);
  });
});
