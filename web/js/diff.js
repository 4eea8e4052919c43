// diff.js: two traces compared by call path: what was added or removed, and
// where call counts or times changed.

const DIFF_KINDS = [['removed', 'Removed', 'bad'], ['added', 'Added', 'good'], ['count', 'Call count', 'warn'], ['time', 'Time', 'info']];

function pct(a, b) {
  if (!a) return b ? '+∞' : '0%';
  const p = ((b - a) / a) * 100;
  return (p >= 0 ? '+' : '') + p.toFixed(p > -10 && p < 10 ? 1 : 0) + '%';
}

function diffSide(t, which) {
  return el('div', {className: 'diff-side'},
    el('div', {className: 'muted small', text: which}),
    el('a', {href: '/t/' + t.id, dataset: {nav: '1'}, className: 'trace-link'},
      el('span', {className: t.label ? 'label' : 'label none', text: t.label || '(no label)'}),
      el('span', {className: 'id mono', text: shortId(t.id)})),
    el('div', {className: 'muted small', text: fmtTime(t.start)}));
}

async function diffView(app, src, a, b) {
  clear(app).appendChild(el('p', {className: 'placeholder', text: 'Comparing…'}));
  setCrumbs([['compare ' + shortId(a) + ' → ' + shortId(b), null]]);
  document.title = 'tracepatch: compare';
  let ta, tb, d, sa, sb;
  try {
    [ta, tb, d, sa, sb] = await Promise.all([src.trace(a), src.trace(b), src.diff(a, b),
      src.stats(a).catch(() => null), src.stats(b).catch(() => null)]);
  } catch (e) {
    clear(app).appendChild(errorBox(e, 'Cannot compare these traces'));
    return {destroy() {}};
  }
  const shown = new Set(DIFF_KINDS.map(([k]) => k));
  const counts = {};
  for (const c of d.changes) counts[c.kind] = (counts[c.kind] || 0) + 1;

  const summary = el('div', {className: 'diff-head', id: 'diff-head'},
    diffSide(ta, 'Before (A)'), el('div', {className: 'diff-arrow', text: '→'}), diffSide(tb, 'After (B)'),
    el('dl', {className: 'chips'},
      el('div', {className: 'chip'}, el('dt', {text: 'Calls'}),
        el('dd', {text: fmtCount(d.calls_a) + ' → ' + fmtCount(d.calls_b) + '  (' + pct(d.calls_a, d.calls_b) + ')'})),
      el('div', {className: 'chip'}, el('dt', {text: 'Duration'}),
        el('dd', {text: fmtMs(d.duration_a_ms) + ' → ' + fmtMs(d.duration_b_ms) + '  (' + pct(d.duration_a_ms, d.duration_b_ms) + ')'})),
      el('div', {className: 'chip'}, el('dt', {text: 'Changes'}), el('dd', {text: fmtCount(d.changes.length)}))));

  const filters = el('div', {className: 'toolbar'}, DIFF_KINDS.map(([k, label, cls]) => {
    const box = el('input', {type: 'checkbox', checked: true, dataset: {kind: k}});
    box.addEventListener('change', () => {
      if (box.checked) shown.add(k); else shown.delete(k);
      renderRows();
    });
    return el('label', {className: 'check'}, box, ' ', badge(label, cls), ' ', el('span', {className: 'muted', text: String(counts[k] || 0)}));
  }));

  const tbody = el('tbody', {id: 'diff-rows'});
  const table = el('table', {className: 'data diff'},
    el('thead', null, el('tr', null, el('th', {text: 'Change'}), el('th', {text: 'Call path'}),
      el('th', {className: 'num', text: 'Calls A → B'}), el('th', {className: 'num', text: 'Time A → B'}), el('th', {className: 'num', text: 'Δ time'}))),
    tbody);
  const kindOf = Object.fromEntries(DIFF_KINDS.map(([k, label, cls]) => [k, [label, cls]]));

  function pathCell(path) {
    const parts = String(path).split(' > ');
    // The callers shrink (cut from the start) so the function that changed,
    // at the end, stays whole.
    const anc = el('span', {className: 'anc-wrap'});
    parts.slice(0, -1).forEach((p) => {
      anc.appendChild(el('span', {className: 'anc', text: p}));
      anc.appendChild(el('span', {className: 'sep', text: ' › '}));
    });
    return el('td', {className: 'path mono', title: path},
      el('span', {className: 'path-in'}, anc, el('span', {className: 'leaf', text: parts[parts.length - 1]})));
  }

  function renderRows() {
    clear(tbody);
    let n = 0;
    for (const c of d.changes) {
      if (!shown.has(c.kind)) continue;
      if (++n > 2000) break;
      const [label, cls] = kindOf[c.kind] || [c.kind, ''];
      const dt = c.total_b_ms - c.total_a_ms;
      tbody.appendChild(el('tr', {className: 'k-' + c.kind},
        el('td', null, badge(label, cls)),
        pathCell(c.path),
        el('td', {className: 'num mono', text: fmtCount(c.count_a) + ' → ' + fmtCount(c.count_b)}),
        el('td', {className: 'num mono', text: fmtMs(c.total_a_ms) + ' → ' + fmtMs(c.total_b_ms)}),
        // Red and green say a shared call got slower or faster; an added or
        // removed call is neither (its badge says what happened).
        el('td', {className: 'num mono ' + (c.kind === 'added' || c.kind === 'removed' ? '' : dt > 0 ? 'worse' : dt < 0 ? 'better' : ''),
          text: (dt > 0 ? '+' : dt < 0 ? '−' : '') + fmtMs(Math.abs(dt)) + ' ' +
            (c.kind === 'added' ? 'new' : c.kind === 'removed' ? 'gone' : pct(c.total_a_ms, c.total_b_ms))})));
    }
    if (!n) tbody.appendChild(el('tr', null, el('td', {attrs: {colspan: '5'}, className: 'placeholder',
      text: d.changes.length ? 'No change of the kinds shown.' : 'No difference in call paths, counts or times.'})));
  }
  renderRows();

  const fnList = (title, names, id) => el('section', {className: 'hot-table', id},
    el('h3', {text: title + ' (' + names.length + ')'}),
    names.length ? el('ul', {className: 'fn-list mono'}, names.map((n) => el('li', {text: n}))) : el('p', {className: 'muted', text: 'none'}));

  const trees = el('section', {className: 'hot-table', id: 'diff-trees'}, el('p', {className: 'placeholder', text: 'Loading both call trees…'}));
  diffTrees(src, a, b, d).then((t) => trees.replaceWith(t), (e) => trees.replaceWith(errorBox(e, 'Cannot load the call trees')));

  clear(app);
  append(app, [summary, diffFunctions(sa, sb), trees, filters, el('div', {className: 'table-wrap'}, table),
    el('div', {className: 'hot-grid two'},
      fnList('Functions only in B', d.functions_added || [], 'fn-added'),
      fnList('Functions only in A', d.functions_removed || [], 'fn-removed'))]);
  return {destroy() {}};
}

/** Per function: calls and self time before and after, the biggest change
 *  in calls first (an N+1 query stands out), then in self time. When every
 *  function has the same calls on both sides, only timings differ, which
 *  is often noise: the table says so. */
function diffFunctions(sa, sb) {
  if (!sa || !sb || !sa.functions || !sb.functions) return null;
  const by = new Map();
  const get = (name) => by.get(name) || by.set(name, {name, ca: 0, cb: 0, sa: 0, sb: 0}).get(name);
  for (const f of sa.functions) Object.assign(get(f.name), {ca: f.count, sa: f.self_ms});
  for (const f of sb.functions) Object.assign(get(f.name), {cb: f.count, sb: f.self_ms});
  const rows = Array.from(by.values()).sort((x, y) => Math.abs(y.cb - y.ca) - Math.abs(x.cb - x.ca) ||
    Math.abs(y.sb - y.sa) - Math.abs(x.sb - x.sa) || (x.name < y.name ? -1 : 1));
  const sameCalls = rows.every((r) => r.ca === r.cb);
  const signed = (v, fmt) => (v > 0 ? '+' : v < 0 ? '−' : '') + fmt(Math.abs(v));
  const tbody = el('tbody');
  for (const r of rows.slice(0, 500)) {
    const dc = r.cb - r.ca, ds = r.sb - r.sa;
    tbody.appendChild(el('tr', null,
      el('td', {className: 'fn mono', title: r.name, text: r.name}),
      el('td', {className: 'num mono', text: fmtCount(r.ca) + ' → ' + fmtCount(r.cb)}),
      el('td', {className: 'num mono ' + (dc > 0 ? 'worse' : dc < 0 ? 'better' : ''), text: dc ? signed(dc, fmtCount) : '0'}),
      el('td', {className: 'num mono', text: fmtMs(r.sa) + ' → ' + fmtMs(r.sb)}),
      el('td', {className: 'num mono ' + (ds > 0 ? 'worse' : ds < 0 ? 'better' : ''), text: ds ? signed(ds, fmtMs) : '0'})));
  }
  return el('section', {className: 'hot-table', id: 'diff-functions'},
    el('h3', {text: 'By function'}),
    sameCalls ? el('p', {className: 'muted', id: 'diff-noise',
      text: 'Both traces made the same calls; only timings differ, which may be noise. Compare several runs before trusting a change.'}) : null,
    el('div', {className: 'table-wrap'}, el('table', {className: 'data fns', id: 'diff-fns'},
      el('thead', null, el('tr', null, el('th', {text: 'Function'}), el('th', {className: 'num', text: 'Calls A → B'}),
        el('th', {className: 'num', text: 'Δ calls'}), el('th', {className: 'num', text: 'Self A → B'}), el('th', {className: 'num', text: 'Δ self'}))),
      tbody)));
}

const DIFF_TREE_BUDGET = 5000; // calls loaded per trace
const DIFF_TREE_ROWS = 2000;   // aligned rows drawn at most

/** Both call trees side by side, aligned by call path: one row per path
 *  (calls of one function under the same callers merged), A's calls and
 *  time on the left, B's on the right, marked with the diff's change of
 *  that path; a path only one side has is blank on the other. */
async function diffTrees(src, a, b, d) {
  const ma = new TraceModel(src, a, {}), mb = new TraceModel(src, b, {});
  await Promise.all([ma.loadDeep(null, DIFF_TREE_BUDGET), mb.loadDeep(null, DIFF_TREE_BUDGET)]);
  const kindOf = new Map(d.changes.map((c) => [c.path, c.kind]));
  const rows = [];
  let cut = false;
  const walk = (nodesA, nodesB, prefix, depth, inherited) => {
    const groups = new Map();
    const group = (n, side) => {
      let g = groups.get(n.name);
      if (!g) groups.set(n.name, (g = {name: n.name, a: [], b: []}));
      g[side].push(n);
    };
    nodesA.forEach((n) => group(n, 'a'));
    nodesB.forEach((n) => group(n, 'b'));
    for (const g of groups.values()) {
      if (rows.length >= DIFF_TREE_ROWS) {
        cut = true;
        return;
      }
      const path = prefix ? prefix + ' > ' + g.name : g.name;
      const side = (ns) => ({calls: ns.reduce((x, n) => x + n.count, 0), ms: ns.reduce((x, n) => x + n.total_ms, 0)});
      const kind = inherited || kindOf.get(path) || (!g.a.length ? 'added' : !g.b.length ? 'removed' : null);
      const row = {depth, name: g.name, path, kind, a: g.a.length ? side(g.a) : null, b: g.b.length ? side(g.b) : null};
      rows.push(row);
      const kids = (m, ns) => ns.flatMap((n) => m.kids(n.id).map((k) => m.nodes.get(k)));
      const before = rows.length;
      walk(kids(ma, g.a), kids(mb, g.b), path, depth + 1, kind === 'added' || kind === 'removed' ? kind : null);
      // A row stays in the "changed" view when it or a path below it changed.
      row.changed = !!kind || rows.slice(before).some((r) => r.changed);
    }
  };
  walk(ma.kids(null).map((k) => ma.nodes.get(k)), mb.kids(null).map((k) => mb.nodes.get(k)), '', 0, null);

  const kinds = Object.fromEntries(DIFF_KINDS.map(([k, label, cls]) => [k, [label, cls]]));
  const tbody = el('tbody', {id: 'diff-tree-rows'});
  const only = el('input', {type: 'checkbox', id: 'diff-tree-changed', checked: rows.length > 200});
  const nameCell = (r, s) => {
    const td = el('td', {className: 'fn mono', title: r.path, text: s ? r.name : ''});
    td.style.paddingLeft = 8 + r.depth * 14 + 'px';
    return td;
  };
  const sideCells = (s) => [el('td', {className: 'num mono', text: s ? fmtCount(s.calls) : ''}),
    el('td', {className: 'num mono', text: s ? fmtMs(s.ms) : ''})];
  const render = () => {
    clear(tbody);
    for (const r of rows) {
      if (only.checked && !r.changed) continue;
      const [label, cls] = r.kind ? kinds[r.kind] || [r.kind, ''] : [null, null];
      tbody.appendChild(el('tr', {className: r.kind ? 'k-' + r.kind : ''},
        nameCell(r, r.a), ...sideCells(r.a), el('td', null, label ? badge(label, cls) : null), nameCell(r, r.b), ...sideCells(r.b)));
    }
  };
  only.addEventListener('change', render);
  render();
  return el('section', {className: 'hot-table', id: 'diff-trees'},
    el('h3', {text: 'Call trees side by side'}),
    el('div', {className: 'toolbar'}, el('label', {className: 'check'}, only, ' only paths that changed'),
      cut || ma.nodes.size >= DIFF_TREE_BUDGET || mb.nodes.size >= DIFF_TREE_BUDGET
        ? el('span', {className: 'muted small', text: 'The first ' + fmtCount(DIFF_TREE_BUDGET) + ' calls of each trace.'}) : null),
    el('div', {className: 'table-wrap'}, el('table', {className: 'data diff-tree'},
      el('thead', null, el('tr', null, el('th', {text: 'A: call'}), el('th', {className: 'num', text: 'Calls'}),
        el('th', {className: 'num', text: 'Time'}), el('th', {text: 'Change'}), el('th', {text: 'B: call'}),
        el('th', {className: 'num', text: 'Calls'}), el('th', {className: 'num', text: 'Time'}))),
      tbody)));
}
