// hotspots.js: where the time went. Cards for the slowest call, the most
// called function and the exceptions; the full function table (every
// function, sortable by any column, searchable) with the callers and
// callees of the selected one; and the modules. A function's name leads to
// it in the call tree.

const FN_COLS = [
  {key: 'name', title: 'Function', num: false},
  {key: 'count', title: 'Calls', num: true, fmt: fmtCount},
  {key: 'total_ms', title: 'Total', num: true, fmt: fmtMs},
  {key: 'self_ms', title: 'Self', num: true, fmt: fmtMs},
  {key: 'avg_ms', title: 'Avg', num: true, fmt: fmtMs},
  {key: 'min_ms', title: 'Min', num: true, fmt: fmtMs},
  {key: 'max_ms', title: 'Max', num: true, fmt: fmtMs},
  {key: 'exceptions', title: 'Exceptions', num: true, fmt: fmtCount},
];

/** Functions in one order for every view: by key (numbers largest first
 *  unless asc), ties by name, so the cards and the table agree. */
function sortFns(fns, key, asc) {
  const dir = asc ? 1 : -1;
  return fns.slice().sort((a, b) => {
    const x = a[key], y = b[key];
    if (x !== y) return (typeof x === 'string' ? (x < y ? -1 : 1) : x - y) * dir;
    return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
  });
}

/** Callers and callees of the function named name among the calls loaded
 *  in model, with how many calls each link stands for. */
function fnRelations(model, name) {
  const callers = new Map(), callees = new Map();
  const add = (m, k, c) => m.set(k, (m.get(k) || 0) + c);
  for (const n of model.nodes.values()) {
    if (n.name !== name) continue;
    const p = n.parent === null ? null : model.nodes.get(n.parent);
    if (p) add(callers, p.name, n.count);
    for (const k of model.kids(n.id)) {
      const c = model.nodes.get(k);
      add(callees, c.name, c.count);
    }
  }
  const list = (m) => Array.from(m, ([k, c]) => ({name: k, count: c}))
    .sort((a, b) => b.count - a.count || (a.name < b.name ? -1 : 1));
  return {callers: list(callers), callees: list(callees)};
}

const REL_BUDGET = 50000;

function hotspotsView(stats, opts) {
  const root = el('div', {className: 'hotspots', id: 'hotspots'});
  if (!stats) {
    root.appendChild(el('p', {className: 'placeholder', text: 'Statistics are not ready yet.'}));
    return root;
  }
  // tphd's stats answer and the exported report's differ in a few optional
  // keys (avg_ms, args): derive what is missing.
  const fns = (stats.functions || []).map((f) => Object.assign({}, f, {
    avg_ms: f.avg_ms !== undefined ? f.avg_ms : f.count ? f.total_ms / f.count : 0,
    line: f.lineno !== undefined ? f.lineno : f.line,
    exceptions: f.exceptions || 0,
  }));
  const find = (name) => el('button', {type: 'button', className: 'link mono', text: name, title: 'Find in the call tree',
    onclick: (e) => {
      e.stopPropagation();
      if (opts.onFind) opts.onFind(name);
    }});

  const cards = el('div', {className: 'cards'});
  const slowest = sortFns(fns, 'max_ms')[0];
  if (slowest) {
    cards.appendChild(el('div', {className: 'card', id: 'card-slowest'},
      el('div', {className: 'card-k', text: 'Slowest call'}),
      el('div', {className: 'card-v'}, find(slowest.name)),
      el('div', {className: 'card-n ' + heat(slowest.max_ms), text: fmtMs(slowest.max_ms)})));
  }
  const most = sortFns(fns, 'count')[0];
  if (most) {
    cards.appendChild(el('div', {className: 'card', id: 'card-most-called'},
      el('div', {className: 'card-k', text: 'Most called'}),
      el('div', {className: 'card-v'}, find(most.name)),
      el('div', {className: 'card-n', text: plural(most.count, 'call')})));
  }
  cards.appendChild(el('div', {className: 'card'},
    el('div', {className: 'card-k', text: 'Exceptions raised'}),
    el('div', {className: 'card-n' + (stats.exceptions ? ' hot' : ''), text: fmtCount(stats.exceptions)})));
  root.appendChild(cards);

  // ---- The function table ----
  const state = {key: 'total_ms', asc: false, filter: '', sel: null};
  const filterIn = el('input', {type: 'search', id: 'fn-filter', className: 'filter', placeholder: 'Filter functions',
    attrs: {'aria-label': 'Filter functions by name'}});
  const count = el('span', {className: 'muted', id: 'fn-count'});
  const head = el('tr');
  const tbody = el('tbody');
  const table = el('table', {className: 'data fns', id: 'fn-table'}, el('thead', null, head), tbody);
  const rel = el('section', {className: 'fn-rel', id: 'fn-rel', hidden: true});

  function renderHead() {
    clear(head);
    for (const c of FN_COLS) {
      const on = c.key === state.key;
      head.appendChild(el('th', {className: (c.num ? 'num ' : '') + 'sortable' + (on ? ' on' : ''),
        attrs: {'aria-sort': on ? (state.asc ? 'ascending' : 'descending') : 'none', tabindex: '0'},
        title: 'Sort by ' + c.title.toLowerCase(),
        onclick: () => sortBy(c), onkeydown: (e) => { if (e.key === 'Enter') sortBy(c); }},
      c.title, on ? el('span', {className: 'arrow', text: state.asc ? ' ▲' : ' ▼'}) : null));
    }
  }

  function sortBy(c) {
    if (state.key === c.key) state.asc = !state.asc;
    else {
      state.key = c.key;
      state.asc = !c.num;
    }
    renderHead();
    renderRows();
  }

  function renderRows() {
    const f = state.filter.toLowerCase();
    const rows = sortFns(f ? fns.filter((x) => x.name.toLowerCase().includes(f)) : fns, state.key, state.asc);
    clear(tbody);
    const frag = document.createDocumentFragment();
    for (const x of rows) {
      const tr = el('tr', {className: x.name === state.sel ? 'sel' : '', dataset: {name: x.name}},
        el('td', {className: 'fn mono', title: x.file ? x.name + '\n' + x.file + ':' + x.line : x.name, text: x.name}),
        FN_COLS.slice(1).map((c) => el('td', {className: 'num mono' + (c.fmt === fmtMs ? ' ' + heat(x[c.key]) : ''), text: c.fmt(x[c.key])})));
      frag.appendChild(tr);
    }
    tbody.appendChild(frag);
    count.textContent = rows.length === fns.length ? plural(fns.length, 'function') : fmtCount(rows.length) + ' of ' + plural(fns.length, 'function');
  }

  async function select(name) {
    state.sel = name;
    for (const tr of tbody.children) tr.classList.toggle('sel', tr.dataset.name === name);
    rel.hidden = false;
    clear(rel).appendChild(el('p', {className: 'muted', text: 'Finding callers and callees…'}));
    let partial = false;
    if (opts.model) {
      try {
        await opts.model.loadDeep(null, REL_BUDGET);
      } catch (e) {
        // Work with what is loaded.
      }
      partial = opts.model.nodes.size >= REL_BUDGET;
    }
    if (state.sel !== name) return;
    const r = opts.model ? fnRelations(opts.model, name) : {callers: [], callees: []};
    const list = (id, title, items) => el('div', {className: 'rel-col'}, el('h4', {text: title}),
      items.length ? el('ul', {className: 'rel-list', id}, items.map((x) => el('li', null, find(x.name), el('span', {className: 'muted', text: plural(x.count, 'call')}))))
        : el('ul', {className: 'rel-list', id}), items.length ? null : el('p', {className: 'muted small', text: 'none'}));
    clear(rel);
    append(rel, [el('h3', null, 'Around ', find(name)),
      partial ? el('p', {className: 'muted small', text: 'From the first ' + fmtCount(REL_BUDGET) + ' calls loaded.'}) : null,
      el('div', {className: 'rel-cols'}, list('fn-callers', 'Called by', r.callers), list('fn-callees', 'Calls', r.callees))]);
  }

  tbody.addEventListener('click', (e) => {
    const tr = e.target.closest('tr');
    if (tr && tr.dataset.name) select(tr.dataset.name);
  });
  filterIn.addEventListener('input', debounce(() => {
    state.filter = filterIn.value.trim();
    renderRows();
  }, 120));
  renderHead();
  renderRows();
  root.appendChild(el('section', {className: 'hot-table', id: 'hot-functions'},
    el('div', {className: 'toolbar'}, el('h3', {text: 'Functions'}), filterIn, count),
    el('div', {className: 'table-wrap'}, table), rel));

  // ---- Modules, by self time as their bars ----
  const mods = (stats.by_module || []).slice().sort((a, b) => b.self_ms - a.self_ms || (a.module < b.module ? -1 : 1));
  if (mods.length) {
    const body = el('tbody');
    const maxSelf = mods.reduce((a, m) => Math.max(a, m.self_ms), 0) || 1;
    for (const m of mods) {
      const bar = el('span', {className: 'bar wide'}, el('i'));
      bar.firstChild.style.width = ((m.self_ms / maxSelf) * 100).toFixed(1) + '%';
      body.appendChild(el('tr', {dataset: {self: String(m.self_ms)}},
        el('td', {className: 'mono fn', text: m.module || '(unknown)'}),
        el('td', {className: 'num mono', text: fmtCount(m.calls)}),
        el('td', {className: 'num mono', text: fmtCount(m.functions)}),
        el('td', {className: 'num mono ' + heat(m.self_ms), text: fmtMs(m.self_ms)}),
        el('td', null, bar)));
    }
    root.appendChild(el('section', {className: 'hot-table', id: 'hot-modules'},
      el('h3', {text: 'By module (self time)'}),
      el('div', {className: 'table-wrap'}, el('table', {className: 'data mods'},
        el('thead', null, el('tr', null, el('th', {text: 'Module'}), el('th', {className: 'num', text: 'Calls'}),
          el('th', {className: 'num', text: 'Functions'}), el('th', {className: 'num', text: 'Self time'}), el('th', {text: 'Share of self time'}))),
        body))));
  }
  return root;
}
