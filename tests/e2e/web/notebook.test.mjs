// The report a notebook shows for %%tracepatch (tracepatch._ipython's
// TraceView, text/html): a sandboxed srcdoc iframe inside a notebook-like
// page renders the trace from its inlined data with the network cut off,
// runs no trace text, and reports no console or page errors.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { BUILD, XSS_ARG, launch, rowTexts, skipReason } from './lib.mjs';

const skip = skipReason();

const SCRIPT = `
import sys
from tracepatch import trace
from tracepatch._ipython import TraceView

def render(text):
    return text.upper()

def cell():
    return render(sys.argv[1])

with trace(label="notebook-cell", daemon="off", cache=False) as t:
    cell()
sys.stdout.write(TraceView(t)._repr_html_())
`;

describe('notebook report', {skip: skip || false, timeout: 120000}, () => {
  let b, dir, file;

  before(async () => {
    const r = spawnSync('/usr/bin/python3', ['-c', SCRIPT, XSS_ARG], {encoding: 'utf8',
      env: {...process.env, PYTHONPATH: `${path.join(BUILD, 'client_ext')}:/usr/lib/python3/dist-packages`}});
    assert.equal(r.status, 0, r.stderr);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tp-nb-'));
    file = path.join(dir, 'notebook.html');
    // What a notebook does with a text/html output: put it in the cell's output area.
    fs.writeFileSync(file, `<!DOCTYPE html><html><body><div class="output_html">${r.stdout}</div></body></html>`);
    b = await launch();
  });

  after(async () => {
    if (b) await b.close();
    if (dir) fs.rmSync(dir, {recursive: true, force: true});
  });

  test('the inline report renders offline in its sandboxed frame', async () => {
    const page = await b.context.newPage();
    const attempted = [];
    await page.route('**', (route) => {
      const url = route.request().url();
      if (url.startsWith('file:') || url.startsWith('about:')) return route.continue();
      attempted.push(url);
      return route.abort();
    });
    await page.goto('file://' + file);
    const handle = await page.waitForSelector('iframe[sandbox="allow-scripts"]');
    const frame = await handle.contentFrame();
    await frame.waitForSelector('#tree .row');
    const rows = await rowTexts(frame);
    assert.equal(rows.length, 2);
    assert.match(rows[0], /__main__\.cell\(\)/);
    assert.ok(rows[1].includes('__main__.render(text=' + "'" + XSS_ARG + "'"), rows[1]);
    assert.equal(await frame.textContent('#trace-label'), 'notebook-cell');
    // The trace text stayed text: no script of it ran, no element of it exists.
    assert.equal(await frame.$$eval('#tree script', (s) => s.length), 0);
    assert.deepEqual(attempted, []);
    assert.deepEqual(b.problems, []);
    // The notebook page is untouched by the report's styles and scripts.
    assert.equal(await page.evaluate(() => document.body.children.length), 1);
  });
});
