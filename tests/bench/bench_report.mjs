// The standalone HTML report of a large trace (issue 14): exports the
// seeded 1M-call trace (TP_BIG_CALLS to change) from tphd, then opens the
// file from file:// in Chromium and prints bytes per call, the time to the
// first row of the tree and the page's JS heap. Figures only, no thresholds.
//   TRACEPATCH_BUILD=$PWD/build node tests/bench/bench_report.mjs [FILE]
// With FILE (an HTML report, e.g. from report_trace.py) it opens that one
// instead of exporting the seeded trace.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { launch, seed, skipReason, startDaemon } from '../e2e/web/lib.mjs';

/** The pids of Chromium's renderer processes. */
function renderers() {
  const out = [];
  for (const p of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      if (fs.readFileSync(`/proc/${p}/cmdline`, 'latin1').includes('--type=renderer')) out.push(p);
    } catch (e) {
      // gone meanwhile
    }
  }
  return out;
}

/** [RSS, peak RSS] of a process, MiB. */
function memOf(pid) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/status`, 'latin1');
    const kb = (k) => Number((new RegExp(k + ':\\s+(\\d+)').exec(s) || [0, 0])[1]);
    return [Math.round(kb('VmRSS') / 1024), Math.round(kb('VmHWM') / 1024)];
  } catch (e) {
    return [0, 0];
  }
}

const CALLS = Number(process.env.TP_BIG_CALLS || 1000000);
const why = skipReason();
if (why) {
  console.log('bench_report: skipped: ' + why);
  process.exit(0);
}
const given = process.argv[2];
const d = given ? null : await startDaemon();
const b = await launch();
try {
  let body, file, calls = CALLS;
  if (given) {
    file = path.resolve(given);
    body = fs.readFileSync(file);
    const m = /"calls":(\d+)/.exec(body.toString('latin1'));
    calls = m ? Number(m[1]) : CALLS;
  } else {
    const id = seed(d, ['big'], ['--calls', String(CALLS)]).big;
    const t0 = Date.now();
    const res = await fetch(`${d.url}/api/traces/${id}/export?format=html`, {headers: {Cookie: `tp_token_${d.port}=${d.token}`}});
    body = Buffer.from(await res.arrayBuffer());
    console.log(`export           ${Date.now() - t0} ms (status ${res.status})`);
    file = path.join(os.tmpdir(), `tp-bench-report-${process.pid}.html`);
    fs.writeFileSync(file, body);
  }
  const html = body.toString('latin1');
  const tree = /<script type="application\/octet-stream" id="tp-tree">([^<]*)<\/script>/.exec(html);
  console.log(`calls            ${calls}`);
  console.log(`file             ${(body.length / 1048576).toFixed(1)} MiB, ${(body.length / calls).toFixed(2)} B/call`);
  console.log(`  packed tree    ${((tree ? tree[1].length : 0) / calls).toFixed(2)} B/call (base64 of deflate)`);
  for (let run = 0; run < 2; run++) {
    const page = await b.context.newPage();
    const cdp = await b.context.newCDPSession(page);
    const s = Date.now();
    await page.goto('file://' + file);
    await page.waitForSelector('#tree .row', {timeout: 300000});
    const first = Date.now() - s;
    await page.waitForSelector('#tree .row.sel', {timeout: 300000});
    const hot = Date.now() - s;
    const marks = await page.evaluate(() => ['tp-inflate', 'tp-decode'].map((k) => {
      const e = performance.getEntriesByName(k)[0];
      return e ? Math.round(e.duration) : -1;
    }));
    const rss = renderers().map(memOf).filter(([r]) => r > 0);
    const heap = await page.evaluate(() => (performance.memory ? performance.memory.usedJSHeapSize : 0));
    await cdp.send('HeapProfiler.collectGarbage');
    const after = await page.evaluate(() => (performance.memory ? performance.memory.usedJSHeapSize : 0));
    const t3 = Date.now();
    await page.fill('#search', given ? 'alpha12345' : 'item=' + Math.floor(CALLS / 61 / 2));
    await page.press('#search', 'Enter');
    await page.waitForFunction(() => /of|no match/.test(document.querySelector('#hit-info').textContent), null, {timeout: 300000});
    const hits = await page.textContent('#hit-info');
    const searchMs = Date.now() - t3;
    console.log(`open ${run ? 'warm' : 'cold'}        first row ${first} ms, hot path selected ${hot} ms, ` +
      `JS heap ${(heap / 1048576).toFixed(0)} MiB (${(after / 1048576).toFixed(0)} after GC), search ${searchMs} ms (${hits})`);
    console.log(`  inflate ${marks[0]} ms, decode ${marks[1]} ms; renderers ${rss.map(([r, h]) => `RSS ${r} MiB (peak ${h} MiB)`).join(', ')}`);
    // The merged flame graph, which the file merges from its whole tree.
    await page.click('#tab-flame');
    await page.waitForFunction(() => window.tpFlameDrawn && window.tpFlameDrawn() === 'time', null, {timeout: 300000});
    const t4 = Date.now();
    await page.click('#flame-mode-merged');
    await page.waitForFunction(() => window.tpFlameDrawn() === 'merged' && window.tpFlameLabels(1).length > 0, null, {timeout: 300000});
    const flameMs = Date.now() - t4;
    const rss2 = renderers().map(memOf).filter(([r]) => r > 0);
    console.log(`  merged flame graph ${flameMs} ms; renderers ${rss2.map(([r, h]) => `RSS ${r} MiB (peak ${h} MiB)`).join(', ')}`);
    await page.close();
  }
  if (!given) fs.rmSync(file, {force: true});
  if (b.problems.length) console.log('page problems: ' + JSON.stringify(b.problems));
} finally {
  await b.close();
  if (d) await d.stop();
}
