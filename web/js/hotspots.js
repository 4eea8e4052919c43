// hotspots.js: where the time went. The slowest call, the most called
// function, functions by total time, self time and calls, and modules.
// Clicking a function searches for it in the call tree.

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
  }));
  const slowMs = stats.slowest ? (stats.slowest.ms !== undefined ? stats.slowest.ms : stats.slowest.total_ms) : 0;
  const find = (name) => el('button', {type: 'button', className: 'link mono', text: name, title: 'Find in the call tree',
    onclick: () => opts.onFind && opts.onFind(name)});

  const cards = el('div', {className: 'cards'});
  if (stats.slowest) {
    cards.appendChild(el('div', {className: 'card'},
      el('div', {className: 'card-k', text: 'Slowest call'}),
      el('div', {className: 'card-v'}, find(stats.slowest.name)),
      el('div', {className: 'card-n ' + heat(slowMs), text: fmtMs(slowMs)}),
      stats.slowest.args ? el('div', {className: 'card-s mono', text: '(' + stats.slowest.args + ')'}) : null));
  }
  if (stats.most_called) {
    cards.appendChild(el('div', {className: 'card'},
      el('div', {className: 'card-k', text: 'Most called'}),
      el('div', {className: 'card-v'}, find(stats.most_called.name)),
      el('div', {className: 'card-n', text: plural(stats.most_called.count, 'call')})));
  }
  cards.appendChild(el('div', {className: 'card'},
    el('div', {className: 'card-k', text: 'Exceptions raised'}),
    el('div', {className: 'card-n' + (stats.exceptions ? ' hot' : ''), text: fmtCount(stats.exceptions)})));
  root.appendChild(cards);

  const maxTotal = fns.reduce((a, f) => Math.max(a, f.total_ms), 0) || 1;
  const table = (title, id, rows, cols) => {
    const body = el('tbody');
    for (const f of rows) body.appendChild(el('tr', null, cols.map((c) => c.cell(f))));
    return el('section', {className: 'hot-table', id},
      el('h3', {text: title}),
      el('table', {className: 'data'}, el('thead', null, el('tr', null, cols.map((c) => el('th', {className: c.num ? 'num' : '', text: c.title})))), body));
  };
  const nameCol = {title: 'Function', cell: (f) => el('td', {className: 'fn', title: f.file ? f.file + ':' + f.line : ''}, find(f.name))};
  const ms = (key, title) => ({title, num: true, cell: (f) => el('td', {className: 'num mono ' + heat(f[key]), text: fmtMs(f[key])})});
  const calls = {title: 'Calls', num: true, cell: (f) => el('td', {className: 'num mono', text: fmtCount(f.count)})};
  const share = {title: 'Share', cell: (f) => {
    const bar = el('span', {className: 'bar'}, el('i'));
    bar.firstChild.style.width = ((f.total_ms / maxTotal) * 100).toFixed(1) + '%';
    return el('td', null, bar);
  }};
  const top = (key) => fns.slice().sort((a, b) => b[key] - a[key] || (a.name < b.name ? -1 : 1)).slice(0, 15);

  const grid = el('div', {className: 'hot-grid'},
    table('Slowest functions (total time)', 'hot-total', top('total_ms'), [nameCol, calls, ms('total_ms', 'Total'), ms('avg_ms', 'Avg'), ms('max_ms', 'Max'), share]),
    table('Most self time', 'hot-self', top('self_ms'), [nameCol, calls, ms('self_ms', 'Self'), ms('total_ms', 'Total')]),
    table('Most called', 'hot-calls', top('count'), [nameCol, calls, ms('avg_ms', 'Avg'), ms('total_ms', 'Total')]));
  root.appendChild(grid);

  const mods = stats.by_module || [];
  if (mods.length) {
    const body = el('tbody');
    const maxSelf = mods.reduce((a, m) => Math.max(a, m.self_ms), 0) || 1;
    for (const m of mods) {
      const bar = el('span', {className: 'bar wide'}, el('i'));
      bar.firstChild.style.width = ((m.self_ms / maxSelf) * 100).toFixed(1) + '%';
      body.appendChild(el('tr', null,
        el('td', {className: 'mono', text: m.module || '(unknown)'}),
        el('td', {className: 'num mono', text: fmtCount(m.calls)}),
        el('td', {className: 'num mono', text: fmtCount(m.functions)}),
        el('td', {className: 'num mono ' + heat(m.self_ms), text: fmtMs(m.self_ms)}),
        el('td', null, bar)));
    }
    root.appendChild(el('section', {className: 'hot-table', id: 'hot-modules'},
      el('h3', {text: 'By module'}),
      el('table', {className: 'data'},
        el('thead', null, el('tr', null, el('th', {text: 'Module'}), el('th', {className: 'num', text: 'Calls'}),
          el('th', {className: 'num', text: 'Functions'}), el('th', {className: 'num', text: 'Self time'}), el('th', {text: 'Share of self time'}))),
        body)));
  }
  return root;
}
