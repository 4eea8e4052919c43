// The self-contained HTML report (export format=html) opened from a file
// with every network request blocked: it shows the trace from its inlined
// data, asks for nothing, runs no trace text, and its CSP allows only its
// own script and style.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { ARTIFACTS, XSS_ARG, launch, rowTexts, screenshot, seed, selectedRow, settle, skipReason, startDaemon } from './lib.mjs';

const skip = skipReason();

describe('exported HTML report', {skip: skip || false, timeout: 300000}, () => {
  let d, b, ids, large;
  const files = {};

  before(async () => {
    d = await startDaemon();
    ids = seed(d, ['checkout-b', 'xss', 'deep', 'ui', 'memory', 'threads']);
    // process_item x33 (each item=N), its 1,999 helpers (seed.py big).
    Object.assign(ids, seed(d, ['big'], ['--calls', '2000']));
    // More calls than the views load (20,000): the timeline and the merged
    // flame graph come from summaries of the whole trace, tphd's or the file's.
    large = seed(d, ['big'], ['--calls', '30000', '--suffix=-large']).big;
    fs.mkdirSync(ARTIFACTS, {recursive: true});
    for (const name of [...Object.keys(ids), 'large']) {
      if (name === 'large') ids.large = large;
      const res = await fetch(`${d.url}/api/traces/${ids[name]}/export?format=html`,
        {headers: {Cookie: `tp_token_${d.port}=${d.token}`}});
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), 'text/html; charset=utf-8');
      assert.equal(res.headers.get('content-disposition'), `attachment; filename="trace-${ids[name]}.html"`);
      files[name] = path.join(ARTIFACTS, `report-${name}.html`);
      fs.writeFileSync(files[name], Buffer.from(await res.arrayBuffer()));
    }
    delete ids.large;
    b = await launch();
  });

  after(async () => {
    if (b) await b.close();
    if (d) await d.stop();
  });

  /** Open a report with the network cut off; returns the page and the
   *  list of requests that were attempted (and aborted). */
  async function openOffline(file) {
    const page = await b.context.newPage();
    const attempted = [];
    await page.route('**', (route) => {
      const url = route.request().url();
      if (url.startsWith('file:')) return route.continue();
      attempted.push(url);
      return route.abort();
    });
    await page.goto('file://' + file);
    await page.waitForSelector('#tree .row');
    return {page, attempted};
  }

  test('the file carries everything: no request leaves it', async () => {
    const html = fs.readFileSync(files['checkout-b'], 'utf8');
    assert.doesNotMatch(html, /\/assets\//);
    assert.match(html, /<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'sha256-[A-Za-z0-9+/]+=*'; style-src 'sha256-[A-Za-z0-9+/]+=*'; img-src data:">/);
    const {page, attempted} = await openOffline(files['checkout-b']);
    const rows = await rowTexts(page);
    assert.equal(rows.length, 5);
    assert.match(rows[0], /shop\.views\.checkout\(request=<Request POST \/checkout>, user_id=42\)/);
    assert.equal(await page.textContent('#trace-label'), 'checkout');
    assert.equal(await page.$$eval('.exports', (e) => e.length), 0, 'no export links in a file');
    // Hotspots and the flame graph work from the inlined data too.
    await page.click('#tab-hot');
    await page.waitForSelector('#fn-table tbody tr');
    await page.click('#fn-table thead th:nth-child(2)'); // by calls
    assert.match(await page.$eval('#fn-table tbody tr', (r) => r.textContent), /^shop\.db\.query3/);
    await page.click('#tab-flame');
    await page.waitForSelector('#flame-canvas');
    await page.click('#tab-tree');
    await page.waitForSelector('#tree .row');
    await screenshot(page, 'report-offline');
    assert.deepEqual(attempted, []);
    assert.deepEqual(b.problems.splice(0), [], 'no console errors (a CSP violation would be one)');
    await page.close();
  });

  test('trace text cannot end the data element or run', async () => {
    const html = fs.readFileSync(files.xss, 'utf8');
    assert.equal(html.split('</script').length - 1, 4, 'only the four real </script> tags (data, tree, calls, app)');
    // The call texts are in the packed tree (base64, which has no "<"); the
    // label in the JSON data is escaped.
    assert.ok(!html.includes('alert(5)'), 'no call text in the clear');
    assert.match(html, /<script type="application\/octet-stream" id="tp-tree">[A-Za-z0-9+/]+=*<\/script>/);
    assert.ok(html.includes("<\\/script>"), 'the label escaped in the data');
    const {page, attempted} = await openOffline(files.xss);
    const rows = await rowTexts(page);
    assert.ok(rows[0].includes(`(x='${XSS_ARG}')`), rows[0]);
    await page.focus('#tree');
    await page.keyboard.press('End');
    assert.ok((await selectedRow(page)).includes("(a='</script><!--<script>alert(5)</script>')"));
    assert.equal(await page.$$eval('img, iframe, svg, b, object, embed', (e) => e.length), 0);
    assert.equal(await page.title(), "tracepatch: <script>alert('label')</script>");
    assert.deepEqual(attempted, []);
    assert.deepEqual(b.problems.splice(0), [], 'no dialog, no error');
    await page.close();
  });

  test('search works offline on the whole inlined tree', async () => {
    const {page} = await openOffline(files.deep);
    await page.focus('#tree');
    await page.keyboard.press('/');
    await page.keyboard.type('found-me');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => document.querySelector('#hit-info').textContent === '1 of 1');
    assert.match(await selectedRow(page), /deep\.chain\.needle\(secret='found-me-deep'\)/);
    // Everything is inlined: main lists all its 1,201 children, no "more" row.
    await page.keyboard.press('Escape');
    await page.keyboard.press('Home');
    const height = await page.evaluate(() => document.querySelector('.tree-spacer').style.height);
    assert.ok(parseInt(height, 10) >= (1 + 1201) * 22, height);
    assert.equal(await page.$$eval('#tree .row.more', (e) => e.length), 0);
    assert.deepEqual(b.problems.splice(0), []);
    await page.close();
  });

  /** Expand every call and walk the rows top to bottom: each row's text
   *  and, when the details have come, the details panel's (with a folded
   *  group's list of its calls, which the file holds too). */
  async function walkRows(page, want) {
    await page.click('#expand-all');
    await settle(page);
    await page.focus('#tree');
    await page.keyboard.press('Home');
    const out = [];
    for (let k = 0; k < 60; k++) {
      const row = await selectedRow(page);
      if (want) {
        // tphd's details fill in when the call's full record arrives.
        await page.waitForFunction((w) => document.querySelector('#details').textContent === w,
          want[k][1], {timeout: 20000}).catch(() => {});
      } else {
        // A report file offers a folded group's calls on a click until it
        // has decoded them (then they come a moment after the details).
        const offer = await page.$('#group-more:not([hidden])');
        if (offer && /^Show the /.test(await offer.textContent())) {
          await offer.click();
          await page.focus('#tree'); // the walk goes on by keys
        }
        await page.waitForFunction(() => !document.querySelector('#details .group') ||
          document.querySelector('#group-calls li, #group-left-out'));
      }
      out.push([row, await page.textContent('#details')]);
      await page.keyboard.press('ArrowDown');
      await settle(page);
      if ((await selectedRow(page)) === row && k > 0) break;
    }
    return out;
  }

  test('the file shows the rows and details tphd shows, field by field', async () => {
    const served = await b.context.newPage();
    await served.goto(`${d.url}/?token=${d.token}`);
    for (const name of ['checkout-b', 'ui', 'memory', 'threads', 'big']) {
      const {page} = await openOffline(files[name]);
      const fromFile = await walkRows(page);
      if (name === 'big') assert.match(fromFile[1][1], /The 33 calls.*\(item=0\) → None.*\(item=32\) → None/, 'the group lists its calls');
      await page.close();
      await served.goto(`${d.url}/t/${ids[name]}`);
      await served.waitForSelector('#tree .row.sel');
      const fromServer = await walkRows(served, fromFile);
      assert.ok(fromFile.length > 3, name + ': ' + fromFile.length + ' rows');
      assert.deepEqual(fromFile, fromServer, name);
    }
    await served.close();
    assert.deepEqual(b.problems.splice(0), []);
  });

  /** tphd's JSON answer to an API path. */
  const api = async (p) => {
    const res = await fetch(`${d.url}/api/traces/${p}`, {headers: {Cookie: `tp_token_${d.port}=${d.token}`}});
    assert.equal(res.status, 200, p);
    return res.json();
  };

  /** Every node's calls, from tphd and from the file: [file id -> tphd id,
   *  tphd's answers by file id]. A node is known on both sides by its first
   *  call's number (the ids of the folded trees differ: tphd's is built
   *  level by level, the file's is in pre-order). */
  async function membersBoth(page, name) {
    const fromFile = await page.evaluate(async () => {
      const out = [];
      for (let i = 0; ; i++) {
        try {
          out.push(await window.tpSource().members('', i, 0, 100000));
        } catch (e) {
          if (e.status === 404) return out;
          throw e;
        }
      }
    });
    const byCall = new Map();
    const fromServer = [];
    for (let s = 0; s < fromFile.length; s++) {
      const m = await api(`${ids[name]}/members?node=${s}&limit=100000`);
      assert.ok(m.calls.length > 0, name + ' ' + s);
      // The views' names, which the page's source gives (api.js displayName).
      for (const c of m.calls) Object.assign(c, {qualname: c.name, name: c.module ? c.module + '.' + c.name : c.name});
      byCall.set(m.calls[0].id, m);
    }
    assert.equal(byCall.size, fromFile.length, name + ': every node once');
    const toServer = fromFile.map((m) => {
      const want = byCall.get(m.calls[0] && m.calls[0].id);
      assert.ok(want, name + ': node ' + m.node + ' on the server');
      fromServer[m.node] = want;
      return want.node;
    });
    return {fromFile, fromServer, toServer};
  }

  test('the file lists every folded group\'s calls as tphd does, and its search finds what tphd finds', async () => {
    const queries = {big: ['item=16', 'item=3', 'store', 'None', 'batch.util', 'item=32)'],
      ui: ['handle', 'i=19', 'ValueError', 'x'], 'checkout-b': ['query', 'sql', '42'], memory: ['a', 'alloc'],
      threads: ['work', 'Thread'], deep: ['found-me', 'chain'], xss: ['<script', 'alert(5)']};
    for (const name of Object.keys(ids)) {
      const {page} = await openOffline(files[name]);
      const {fromFile, fromServer, toServer} = await membersBoth(page, name);
      let groups = 0;
      for (let i = 0; i < fromFile.length; i++) {
        assert.deepEqual(fromFile[i], Object.assign({}, fromServer[i], {node: i}), name + ' node ' + i);
        groups += fromFile[i].total > 1;
      }
      if (['big', 'ui', 'checkout-b'].includes(name)) assert.ok(groups > 0, name + ': has folded groups');
      for (const q of queries[name]) {
        const want = await api(`${ids[name]}/search?q=${encodeURIComponent(q)}&limit=2000`);
        const got = await page.evaluate((x) => window.tpSource().search('', x, 2000), q);
        const mapped = Object.assign({}, got, {matches: got.matches.map((m) => Object.assign({}, m,
          {id: toServer[m.id], path: m.path.map((x) => toServer[x])}))});
        assert.deepEqual(mapped, want, name + ' ' + q);
      }
      await page.close();
    }
    // The group of item=0 to 32 is found by item=16, its 17th call, as on
    // the server (the group, then the helpers of item 16).
    const {page} = await openOffline(files.big);
    await page.fill('#search', 'item=16');
    await page.press('#search', 'Enter');
    await page.waitForFunction(() => /^1 of 61$/.test(document.querySelector('#hit-info').textContent));
    assert.match(await selectedRow(page), /batch\.process_item\(item=0\)/);
    await page.close();
    assert.deepEqual(b.problems.splice(0), []);
  });

  test('the file computes tphd\'s timeline buckets and range function tables from its whole tree, and draws the timeline and merged flame graph tphd draws', async () => {
    for (const name of [...Object.keys(ids), 'large']) {
      const id = name === 'large' ? large : ids[name];
      const {page} = await openOffline(files[name]);
      const dur = (await api(id)).duration_ms;
      assert.ok(dur > 0, name);
      for (const [t0, t1] of [[0, dur], [dur / 3, dur / 2], [dur / 7, dur * 2]]) {
        for (const nb of [1, 7, 1000, 4000]) {
          const q = `t0=${+t0.toFixed(6)}&t1=${+t1.toFixed(6)}&buckets=${nb}`;
          const want = await api(`${id}/timeline?${q}`);
          const got = await page.evaluate(([a, z, n]) => window.tpSource().timeline('', a, z, n), [+t0.toFixed(6), +t1.toFixed(6), nb]);
          assert.deepEqual(got, want, name + ' ' + q);
        }
        // The function table of the range, as tphd's (in the views' names).
        const want = await api(`${id}/profile?t0=${+t0.toFixed(6)}&t1=${+t1.toFixed(6)}`);
        for (const f of want.functions) Object.assign(f, {qualname: f.name, name: f.module ? f.module + '.' + f.name : f.name});
        const got = await page.evaluate(([a, z]) => window.tpSource().profile('', a, z), [+t0.toFixed(6), +t1.toFixed(6)]);
        assert.deepEqual(got, want, name + ' profile ' + t0 + ' ' + t1);
      }
      await page.close();
    }
    // In the views: the large trace's timeline is drawn from the source's
    // buckets on both sides, and its merged flame graph from the source's
    // groups; the file's are tphd's.
    const seen = async (page) => {
      await page.click('#tab-timeline');
      await page.waitForFunction(() => window.tpTimelineSummarised && window.tpTimelineSummarised());
      const tl = await page.evaluate(() => [window.tpTimelineLanes(), window.tpTimelineBuckets()]);
      await page.click('#tab-flame');
      await page.waitForFunction(() => window.tpFlameDrawn && window.tpFlameDrawn() === 'time');
      await page.click('#flame-mode-merged');
      await page.waitForFunction(() => window.tpFlameDrawn() === 'merged' && window.tpFlameLabels(2).length > 0);
      return {tl, flame: await page.evaluate(() => [1, 2, 3, 4].map((r) => window.tpFlameLabels(r)))};
    };
    const {page} = await openOffline(files.large);
    const fromFile = await seen(page);
    await page.close();
    const served = await b.context.newPage();
    await served.goto(`${d.url}/t/${large}?token=${d.token}`);
    await served.waitForSelector('#tree .row.sel');
    const fromServer = await seen(served);
    await served.close();
    assert.ok(fromFile.tl[1].lanes[0].rows.length === 3, 'main, process_item, the helpers');
    assert.deepEqual(fromFile.tl[0], ['thread 0']);
    assert.deepEqual(fromFile, fromServer);
    assert.match(fromFile.flame[1][0], /^batch\.process_item ×492/);
    assert.deepEqual(b.problems.splice(0), []);
  });

  /** test_render_pack.c's grouped() tree packed with a bound of 3 group
   *  calls (the group of g x3 held) or 2 (left out): f(a=1) calls g(x=1),
   *  g(x=2) (which calls h) and g(x=3). */
  function groupedPack(held) {
    const s = (t) => [t.length, ...Array.from(t, (c) => c.charCodeAt(0))];
    const strings = [...s('m'), ...s('f'), ...s('m.py'), ...s('g'), ...s('h'), ...s('a=1'), ...s('x=1'), ...s('None'), ...s('1')];
    const more = held ? [...s('x=2'), ...s('x=3'), ...s('2'), ...s('3')] : [];
    const nodes = [3, 1, 2, 3, 2, 1, 4, 3, 10, 1, 5, 3, 18, 3, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 0, 0, 1, 3, 1,
      0, 0xf0, 0x02, 0, 0, 20, 44, 0xc8, 0x01, 100, 8, 0, 39, 0, 60, 8, 0, 0, 40, 0, 0, 0, 0,
      1, 1, 0, 1, 1, 9, ...Array(18).fill(0), 0, 0, 2, 0, 0, 2];
    const members = held ? [3, 1, 1, 3, 0, 2, 4, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0,
      0, 20, 20, 20, 20, 20, 0, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 8, 1, 1, 10, 1, 1,
      0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0] : [2, 0];
    return ['T', 'P', 'K', '2'].map((c) => c.charCodeAt(0)).concat([9], strings, nodes, [held ? 4 : 0], more, members);
  }

  test('a file answers for a group it holds, and says when the bound left one out', async () => {
    const {page} = await openOffline(files['checkout-b']);
    const ask = (bytes) => page.evaluate(async (b) => {
      const src = window.tpPackSource(b, {trace: {id: 'x', duration_ms: 0.0001}, stats: {}});
      const err = await src.members('', 9, 0, 10).catch((e) => e.status);
      return {g: await src.members('', 1, 0, 10), h: await src.members('', 2, 0, 10), err,
        x2: await src.search('', 'x=2'), x1: await src.search('', 'x=1'),
        tl: await src.timeline('', 0, 0.0001, 10), prof: await src.profile('', 0.00003, 0.0001)};
    }, bytes);
    const held = await ask(groupedPack(true));
    assert.deepEqual(held.g.calls.map((c) => [c.id, c.parent, c.args, c.ret, c.children, c.start_ms, c.total_ms]),
      [[1, 0, 'x=1', '1', 0, 0.00001, 0.00001], [2, 0, 'x=2', '2', 1, 0.00003, 0.00001], [4, 0, 'x=3', '3', 0, 0.00005, 0.00001]]);
    assert.equal(held.g.total, 3);
    assert.deepEqual(held.h.calls.map((c) => [c.id, c.parent, c.children]), [[3, 2, 0]], 'h: one call, under g 2');
    assert.equal(held.err, 404);
    assert.deepEqual(held.x2, {query: 'x=2', total: 1, truncated: false, matches: [{id: 1, path: [0, 1], pos: [0, 0], calls: [1], calls_total: 1}]});
    // Three rows: f, the g calls one by one, h; bucket k is [10k, 10k + 10)
    // ns, and one a call only touches at its end is not listed.
    assert.deepEqual(held.tl.lanes, [{name: 'thread 0', thread: 0, rows: [
      [[0, 0.00001, 0, 1], [1, 0.00001, 0, 0], [2, 0.00001, 0, 0], [3, 0.00001, 0, 0], [4, 0.00001, 0, 0], [5, 0.00001, 0, 0],
        [6, 0.00001, 0, 0], [7, 0.00001, 0, 0], [8, 0.00001, 0, 0], [9, 0.00001, 0, 0]],
      [[1, 0.00001, 1, 1], [3, 0.00001, 1, 1], [5, 0.00001, 1, 1]],
      [[3, 0.000004, 2, 1]]]}]);
    assert.deepEqual(held.prof.functions.map((f) => [f.name, f.count]), [['g', 2], ['h', 1]], 'the calls from 30 ns on');

    const out = await ask(groupedPack(false));
    assert.deepEqual(out.g, {node: 1, total: 3, offset: 0, calls: [], left_out: true, max_members: 2});
    assert.deepEqual(out.h.calls.map((c) => [c.id, c.parent]), [[3, 2]], 'a one-call node keeps its raw parent');
    assert.deepEqual(out.x2.total, 0, 'a left-out group is found by its node\'s text only');
    assert.deepEqual(out.x1.matches, [{id: 1, path: [0, 1], pos: [0, 0]}]);
    assert.deepEqual(out.tl.lanes[0].rows[1], [[1, 0.00001, 1, 1], [2, 0.00001, 1, 0], [3, 0.00001, 1, 0], [4, 0.00001, 1, 0],
      [5, 0.00001, 1, 0]], 'the group as one call from 10 to 60 ns');
    assert.deepEqual(out.prof.functions.map((f) => [f.name, f.count]), [['h', 1]], 'the group counted at its first start');
    await page.close();
    assert.deepEqual(b.problems.splice(0), []);
  });

  test('the file merges the whole tree into the flame graph tphd serves: merged and every sandwich', async () => {
    const flame = async (name, q) => {
      const res = await fetch(`${d.url}/api/traces/${ids[name]}/flame${q ? '?fn=' + encodeURIComponent(q) : ''}`,
        {headers: {Cookie: `tp_token_${d.port}=${d.token}`}});
      assert.equal(res.status, 200);
      return res.json();
    };
    for (const name of Object.keys(ids)) {
      const {page} = await openOffline(files[name]);
      const merged = await flame(name, null);
      assert.deepEqual(await page.evaluate(() => window.tpSource().flame('', {})), merged, name);
      const fns = new Set();
      const walk = (gs) => (gs || []).forEach((g) => {
        fns.add(g.function);
        walk(g.kids);
      });
      walk(merged.nodes);
      assert.ok(fns.size > 1, name + ': ' + [...fns]);
      for (const fn of fns) {
        const want = await flame(name, fn);
        assert.equal(want.mode, 'sandwich');
        assert.deepEqual(await page.evaluate((f) => window.tpSource().flame('', {fn: f}), fn), want, name + ' ' + fn);
      }
      await page.close();
    }
    assert.deepEqual(b.problems.splice(0), []);
  });
});
