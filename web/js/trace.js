// trace.js: one trace. A header with its facts and exports, then three tabs:
// the call tree (with search), the flame graph and the hotspots, and the
// lines of trace(lines=...) functions when the data has them.

// How often the page of an open trace (one tphd is still receiving) asks
// for its summary; when calls arrived it redraws the view from its URL,
// which holds the tab, the selected call and the search.
const LIVE_POLL_MS = 100;

const TABS = [['tree', 'Call tree'], ['flame', 'Flame graph'], ['timeline', 'Timeline'], ['hot', 'Functions']];

/** Set (or, for '' / null, remove) parameters of the page's URL, so the
 *  view a user sees is the link they share. */
function setUrlParams(src, params) {
  if (src.mode !== 'server') return;
  const u = new URL(location.href);
  for (const [k, v] of Object.entries(params)) {
    if (v === null || v === undefined || v === '') u.searchParams.delete(k);
    else u.searchParams.set(k, String(v));
  }
  history.replaceState(history.state, '', u.pathname + u.search);
}

function traceHeader(summary, stats, src) {
  const facts = [
    ['Started', fmtTime(summary.start), fmtAgo(summary.start)],
    summary.status === 'open' && typeof summary.age_ms === 'number'
      ? ['Running for', fmtMs(summary.age_ms), 'Still being recorded: the page follows it']
      : ['Duration', fmtMs(summary.duration_ms)],
    ['Calls', fmtCount(summary.calls)],
  ];
  if (stats) {
    facts.push(['Max depth', fmtCount(stats.max_depth)], ['Functions', fmtCount(stats.unique_functions)],
      ['Modules', fmtCount(stats.modules)], ['Exceptions', fmtCount(stats.exceptions)]);
  }
  const proc = [summary.pid ? 'pid ' + summary.pid : '', summary.host, summary.python ? 'Python ' + summary.python : ''].filter(Boolean).join(' · ');
  if (proc) facts.push(['Process', proc, Array.isArray(summary.argv) ? summary.argv.join(' ') : '']);
  const exportLinks = [];
  if (src.mode === 'server') {
    for (const [fmt, label, title] of [['html', 'HTML', 'This report as one file that works offline'],
      ['json', 'JSON', 'tracepatch JSON (tph tree FILE reads it)'], ['csv', 'CSV', 'One row per call'],
      ['chrome', 'Chrome', 'Chrome trace events: open in Perfetto or chrome://tracing'],
      ['folded', 'Folded', 'Folded stacks for flamegraph.pl and speedscope']]) {
      exportLinks.push(el('a', {className: 'btn', href: src.exportUrl(summary.id, fmt), text: label, title, attrs: {download: ''}}));
    }
  }
  return el('section', {className: 'trace-head', id: 'trace-head'},
    el('div', {className: 'title-row'},
      el('h1', {className: summary.label ? '' : 'none', id: 'trace-label', text: summary.label || '(no label)'}),
      el('span', {className: 'mono muted id', text: summary.id || '', title: 'Trace ID'}),
      traceBadges(summary)),
    el('dl', {className: 'chips'}, facts.map(([k, v, t]) => el('div', {className: 'chip', title: t || ''}, el('dt', {text: k}), el('dd', {text: v})))),
    exportLinks.length ? el('div', {className: 'exports'}, el('span', {className: 'muted', text: 'Export'}), exportLinks) : null);
}

// Set while an open trace's page redraws itself: the old view stays on
// screen until the new one is ready, instead of a "Loading" placeholder.
let liveRedraw = false;

async function traceView(app, src, id, nav) {
  if (!liveRedraw) clear(app).appendChild(el('p', {className: 'placeholder', text: 'Loading trace…'}));
  setCrumbs([[shortId(id), null]]);
  // The first levels of the tree load while the summary arrives and the
  // header is drawn; statistics only when the hotspots ask for them.
  let summary;
  const model = new TraceModel(src, id, {});
  const topP = model.loadTop();
  topP.catch(() => {});
  try {
    summary = await src.trace(id);
  } catch (e) {
    clear(app).appendChild(errorBox(e, e.status === 404 ? 'No such trace' : 'Cannot load trace ' + shortId(id)));
    return {destroy() {}};
  }
  model.summary = summary;
  model.id = id = summary.id || id;
  setCrumbs([[summary.label || shortId(id), null]]);
  document.title = 'tracepatch: ' + (summary.label || shortId(id));
  let statsP = null;
  const getStats = () => statsP || (statsP = summary.stats && summary.stats.functions
    ? Promise.resolve(summary.stats) : src.stats(id).catch(() => null));
  const stats = summary.stats && summary.stats.calls !== undefined ? summary.stats : null;

  const lines = src.lines ? await src.lines(id).catch(() => null) : null;
  const tabList = lines && lines.length ? TABS.concat([['lines', 'Lines']]) : TABS;
  const head = el('div', {id: 'head-slot'}, traceHeader(summary, stats, src));
  const tabBtns = {};
  const tabs = el('div', {className: 'tabs', attrs: {role: 'tablist'}}, tabList.map(([k, label]) => {
    tabBtns[k] = el('button', {type: 'button', className: 'tab', id: 'tab-' + k, text: label, attrs: {role: 'tab'}, onclick: () => show(k)});
    return tabBtns[k];
  }));
  const searchIn = el('input', {type: 'search', id: 'search', className: 'filter', placeholder: 'Search calls and values ( / )',
    attrs: {'aria-label': 'Search in this trace'}});
  const hitInfo = el('span', {className: 'muted', id: 'hit-info'});
  const prev = el('button', {type: 'button', id: 'hit-prev', text: '↑', title: 'Previous match (N)', disabled: true});
  const next = el('button', {type: 'button', id: 'hit-next', text: '↓', title: 'Next match (n)', disabled: true});
  const collapse = el('button', {type: 'button', id: 'collapse-all', text: 'Collapse all'});
  const expandAll = el('button', {type: 'button', id: 'expand-all', text: 'Expand all', title: 'Expand every call (up to 20,000 loaded)'});
  const depthSel = el('select', {id: 'expand-depth', title: 'Expand to depth', attrs: {'aria-label': 'Expand to depth'}},
    el('option', {value: '', text: 'Depth…'}), [1, 2, 3, 4, 5, 8, 12].map((k) => el('option', {value: String(k), text: 'to depth ' + k})));
  const sortSel = el('select', {id: 'sort-kids', attrs: {'aria-label': 'Order of children'}},
    el('option', {value: 'start', text: 'by start'}), el('option', {value: 'time', text: 'by time'}));
  const hideIn = el('input', {type: 'text', id: 'hide-fast', className: 'filter narrow', placeholder: 'hide < ms',
    attrs: {'aria-label': 'Hide calls faster than (ms)', inputmode: 'decimal'}});
  const modIn = el('input', {type: 'search', id: 'module-filter', className: 'filter narrow', placeholder: 'module',
    attrs: {'aria-label': 'Only calls of this module'}});
  const treeBar = el('div', {className: 'toolbar'}, searchIn, prev, next, hitInfo, el('span', {className: 'grow'}),
    el('span', {className: 'muted small keys', text: '↑↓ move · ← → fold · / search'}));
  const treeTools = el('div', {className: 'toolbar tools scroll-x'}, expandAll, collapse, depthSel, sortSel, hideIn, modIn);
  const body = el('div', {className: 'tab-body'});

  let flame = null, timeline = null, hot = null, current = null, treeReady = false, treeError = null;
  // The range selected in the timeline ({t0, t1} ms since the trace start),
  // which the tree, the flame graph and the function table are narrowed to.
  let range = null;
  const rangeQ = /^(\d+(?:\.\d+)?),(\d+(?:\.\d+)?)$/.exec(new URLSearchParams(location.search).get('range') || '');
  if (rangeQ && Number(rangeQ[2]) > Number(rangeQ[1])) range = {t0: Number(rangeQ[1]), t1: Number(rangeQ[2])};
  const rangeNote = el('div', {className: 'toolbar range-note', id: 'range-note', hidden: true},
    el('span', {id: 'range-text'}), el('button', {type: 'button', id: 'range-clear', text: 'Clear range', onclick: () => setRange(null)}));
  clear(app);
  append(app, [head, tabs, rangeNote, treeBar, treeTools, body]);
  function setRange(r) {
    range = r;
    tree.range = r;
    setUrlParams(src, {range: r ? +r.t0.toFixed(6) + ',' + +r.t1.toFixed(6) : null});
    rangeNote.hidden = !r;
    if (r) $('#range-text', rangeNote).textContent = 'Range ' + fmtMs(r.t0) + ' – ' + fmtMs(r.t1) + ' (' + fmtMs(r.t1 - r.t0) + ') selected in the timeline: the views show what ran in it.';
    if (timeline && !!timeline.range !== !!r) {
      timeline.range = r;
      timeline.draw();
    }
    tree.flatten();
    hot = null;
    if (current === 'flame' && flame) flame.draw();
    else if (current === 'hot') show('hot');
  }
  const tree = new TreeView(model, {
    onHit: (i, n) => { hitInfo.textContent = (i + 1) + ' of ' + fmtCount(n); },
    onSelect: (nid) => { if (treeReady) setUrlParams(src, {node: nid}); },
    onFocusFlame: (nid) => { show('flame'); flame.show(nid); },
    onSource: src.source ? async (n) => sourceView(await src.source(id, n.func), n.line, lines) : null,
  });

  async function show(k) {
    current = k;
    for (const [key] of tabList) {
      tabBtns[key].classList.toggle('active', key === k);
      tabBtns[key].setAttribute('aria-selected', String(key === k));
    }
    treeBar.hidden = treeTools.hidden = k !== 'tree';
    clear(body);
    setUrlParams(src, {view: k === 'tree' ? null : k});
    if (k === 'lines') {
      body.appendChild(linesView(lines));
      return;
    }
    if (k !== 'hot' && !treeReady) {
      body.appendChild(treeError ? errorBox(treeError, 'Cannot load the call tree')
        : el('p', {className: 'placeholder', id: 'tree-loading', text: 'Loading the call tree…'}));
      return;
    }
    if (k === 'tree') {
      body.appendChild(tree.root);
      tree.flatten();
      // A selection made while the tree was not on the page (the hot path,
      // a link) could not scroll it: bring it into view now.
      tree.centerSel();
      tree.focus();
    } else if (k === 'flame') {
      if (!flame) {
        const q = new URLSearchParams(location.search);
        flame = new FlameView(model, {
          onSelect: (nid) => { show('tree'); tree.reveal(pathOf(nid)); },
          onState: (st) => setUrlParams(src, st),
          mode: q.get('flame') || 'time', fn: q.get('fn') || '', colorBy: q.get('color') || 'module',
          query: () => tree.query,
          range: () => range,
        });
        body.appendChild(flame.root);
        const z = q.get('zoom');
        flame.show(z !== null && z !== '' ? Number(z) : null);
      } else {
        body.appendChild(flame.root);
        flame.show();
      }
    } else if (k === 'timeline') {
      if (!timeline) timeline = new TimelineView(model, {query: () => tree.query, range, src, onRange: (r) => setRange(r)});
      body.appendChild(timeline.root);
      timeline.show();
    } else {
      if (!hot) hot = el('div', null, el('p', {className: 'placeholder', text: 'Computing statistics…'}));
      body.appendChild(hot);
      const s = range ? await src.profile(id, range.t0, range.t1).then((p) => Object.assign(p, {
        exceptions: p.functions.reduce((a, f) => a + f.exceptions, 0)})).catch(() => null) : await getStats();
      if (current !== 'hot') return;
      const view = hotspotsView(s, {model, onFind: (name) => {
        show('tree');
        searchIn.value = name;
        if (tree.query === name && tree.hits.length) tree.gotoHit(0); else runSearch();
      }});
      hot.replaceWith(view);
      hot = view;
    }
  }

  function pathOf(nid) {
    const out = [];
    for (let n = model.nodes.get(nid); n; n = n.parent === null ? null : model.nodes.get(n.parent)) out.unshift(n.id);
    return out;
  }

  async function runSearch() {
    const q = searchIn.value.trim();
    if (q && q === tree.query) return; // already shown (typing ended after Enter)
    hitInfo.textContent = q ? 'searching…' : '';
    setUrlParams(src, {q});
    try {
      const r = await tree.search(q);
      if (q !== searchIn.value.trim()) return;
      prev.disabled = next.disabled = !r.total;
      if (!q) hitInfo.textContent = '';
      else if (!r.total) hitInfo.textContent = 'no match';
      else if (r.truncated) hitInfo.textContent = hitInfo.textContent + ' (first ' + fmtCount(r.matches.length) + ' of ' + fmtCount(r.total) + ')';
    } catch (e) {
      hitInfo.textContent = '';
      toast('Search failed: ' + e.message, true);
    }
  }
  const searchSoon = debounce(runSearch, 300);
  searchIn.addEventListener('input', searchSoon);
  searchIn.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') {
      e.preventDefault();
      if (tree.query === searchIn.value.trim() && tree.hits.length) tree.nextHit(e.shiftKey ? -1 : 1);
      else runSearch();
    } else if (e.key === 'Escape') {
      tree.focus();
    }
  });
  prev.addEventListener('click', () => tree.nextHit(-1));
  next.addEventListener('click', () => tree.nextHit(1));
  collapse.addEventListener('click', () => {
    tree.expanded.clear();
    tree.flatten();
    tree.select(0);
  });
  expandAll.addEventListener('click', () => tree.expandAll());
  depthSel.addEventListener('change', () => {
    if (depthSel.value) tree.expandTo(Number(depthSel.value));
  });
  sortSel.addEventListener('change', () => {
    tree.sortBy = sortSel.value;
    tree.flatten();
  });
  const applyFilters = () => {
    const v = parseFloat(hideIn.value);
    tree.hideMs = isFinite(v) && v > 0 ? v : 0;
    tree.module = modIn.value.trim();
    tree.flatten();
  };
  for (const i of [hideIn, modIn]) {
    i.addEventListener('keydown', (e) => { if (e.key === 'Enter') applyFilters(); });
    i.addEventListener('change', applyFilters);
  }

  if (!stats) {
    getStats().then((st) => {
      if (st) clear(head).appendChild(traceHeader(summary, st, src));
    });
  }

  if (range) setRange(range);
  const view = new URLSearchParams(location.search).get('view');
  show(tabList.some(([k]) => k === view) ? view : 'tree');
  topP.then(async () => {
    tree.autoExpand();
    // What the link names comes back: a search, else a selected call,
    // else the hot path.
    const q = new URLSearchParams(location.search);
    const wantQ = q.get('q'), wantNode = q.get('node');
    let done = false;
    try {
      if (wantQ) {
        searchIn.value = wantQ;
        const r = await tree.search(wantQ);
        prev.disabled = next.disabled = !r.total;
        if (!r.total) hitInfo.textContent = 'no match';
        done = r.total > 0;
      } else if (wantNode !== null && wantNode !== '') {
        await tree.reveal(await model.pathTo(Number(wantNode)));
        done = true;
      } else {
        done = await tree.openHotPath();
      }
    } catch (e) {
      done = false;
    }
    if (!done && tree.rows.length) tree.select(0, false);
    treeReady = true;
  }, (e) => {
    treeError = e;
  }).then(() => {
    if (current !== 'hot') show(current);
  });
  let liveTimer = null, dead = false;
  if (summary.status === 'open' && src.mode === 'server') {
    const poll = async () => {
      liveTimer = null;
      const s = await src.trace(id).catch(() => null);
      if (dead) return;
      if (s && (s.calls !== summary.calls || s.status !== summary.status)) {
        const y = window.scrollY;
        liveRedraw = true;
        try {
          await route();
        } finally {
          liveRedraw = false;
        }
        window.scrollTo(0, y);
        return;
      }
      liveTimer = setTimeout(poll, LIVE_POLL_MS);
    };
    liveTimer = setTimeout(poll, LIVE_POLL_MS);
  }
  return {
    destroy() {
      dead = true;
      clearTimeout(liveTimer);
      tree.destroy();
      if (flame) flame.destroy();
      if (timeline) timeline.destroy();
    },
    onTheme() {
      if (flame && current === 'flame') flame.draw();
      if (timeline && current === 'timeline') timeline.draw();
    },
    onKey(e) {
      if (current === 'timeline' && timeline && timeline.onKey(e)) {
        e.preventDefault();
        return true;
      }
      if (e.key === '/') {
        e.preventDefault();
        show('tree');
        searchIn.focus();
        searchIn.select();
        return true;
      }
      return false;
    },
  };
}
