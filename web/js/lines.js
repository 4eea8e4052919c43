// lines.js: the Lines tab of a trace recorded with trace(lines=[...]): for
// each call of a chosen function, its source lines that ran, how often, and
// the values the names on each line had once it ran. A report file inlines
// the data; tphd answers it at /api/traces/ID/lines.

/** The Lines view of records ([{call, module, qualname, args, file, lines:
 *  [{line, source, hits, values: {name: [repr...]}}]}]). */
function linesView(records) {
  const root = el('div', {className: 'lines-view', id: 'lines'});
  for (const rec of records) {
    const name = (rec.module ? rec.module + '.' : '') + rec.qualname;
    const rows = (rec.lines || []).map((li) => {
      const vals = Object.entries(li.values || {}).map(([k, v]) =>
        el('span', {className: 'line-var'}, el('b', {text: k}), '=' + (v || []).join(', ')));
      return el('tr', {className: 'line-row'},
        el('td', {className: 'mono muted num', text: li.line}),
        el('td', {className: 'mono num hits', text: fmtCount(li.hits) + '×'}),
        el('td', {className: 'mono src', text: li.source || ''}),
        el('td', {className: 'mono vals'}, vals));
    });
    root.appendChild(el('section', {className: 'line-call', dataset: {call: rec.call}},
      el('h3', {className: 'mono'}, name + '(' + (rec.args || '') + ')',
        el('span', {className: 'muted small', text: ' · call ' + rec.call + (rec.file ? ' · ' + rec.file : '')})),
      el('table', {className: 'source'},
        el('thead', null, el('tr', null, ['Line', 'Hits', 'Source', 'Values'].map((h) => el('th', {text: h})))),
        el('tbody', null, rows))));
  }
  return root;
}
