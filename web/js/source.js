// source.js: a call's source, opened from its file:line in the details
// pane. The traced process took each function's text when the trace ended
// (the trace's "source", docs/API.md); tphd answers one function at a time
// at /api/traces/ID/source?func=N, a report file inlines them all. The
// call's line is highlighted and, for a trace recorded with
// trace(lines=[...]), each line shows how often it ran.

/** Bytes of one function's text shown at most (tphd's TP_QUERY_SOURCE_MAX). */
const SOURCE_MAX = 65536;

/** The text cut to SOURCE_MAX bytes of UTF-8 at a line's end, as tphd cuts
 *  it: [text, lines left out]. */
function boundedSource(text) {
  const bytes = new TextEncoder().encode(text);
  if (bytes.length <= SOURCE_MAX) return [text, 0];
  let keep = SOURCE_MAX;
  while (keep > 0 && bytes[keep - 1] !== 10) keep--;
  if (keep === 0) {
    keep = SOURCE_MAX;
    while (keep > 0 && (bytes[keep] & 0xc0) === 0x80) keep--;
  }
  let cut = bytes[bytes.length - 1] !== 10 ? 1 : 0;
  for (let i = keep; i < bytes.length; i++) if (bytes[i] === 10) cut++;
  return [new TextDecoder().decode(bytes.subarray(0, keep)), cut];
}

/** The source query's answer (docs/QUERY.md "source") for function f
 *  ({module, qualname, file, line}) of a report file's "source" value. */
function sourceOf(source, func, f) {
  const ans = {func, module: f.module, qualname: f.qualname, file: f.file, line: f.line,
    text: null, truncated: 0, missing: 'not in the trace'};
  const fns = source && Array.isArray(source.functions) ? source.functions : [];
  const e = fns.find((x) => x && x.module === f.module && x.qualname === f.qualname &&
    x.file === f.file && x.line === f.line);
  if (!e) return ans;
  ans.missing = typeof e.missing === 'string' ? e.missing : null;
  ans.truncated = Number.isInteger(e.truncated) ? e.truncated : 0;
  if (typeof e.text === 'string') {
    const [text, cut] = boundedSource(e.text);
    ans.text = text;
    ans.truncated += cut;
  }
  return ans;
}

/** Hits per line number of the lines= records of function rec (summed over
 *  its recorded calls), and how many calls they are; null without any. */
function lineHits(records, rec) {
  const mine = (records || []).filter((r) => r.module === rec.module && r.qualname === rec.qualname &&
    (!r.file || r.file === rec.file));
  if (!mine.length) return null;
  const hits = new Map();
  for (const r of mine) {
    for (const li of r.lines || []) hits.set(li.line, (hits.get(li.line) || 0) + (li.hits || 0));
  }
  return {hits, calls: mine.length};
}

/** The source panel of answer rec with line `line` highlighted. */
function sourceView(rec, line, records) {
  const root = el('div', {className: 'source-view', id: 'source'});
  const where = rec.file + ':' + rec.line;
  if (rec.text === null || rec.text === undefined) {
    root.appendChild(el('p', {className: 'muted small', id: 'source-missing',
      text: 'No source for ' + where + (rec.missing ? ': ' + rec.missing : '') + '.'}));
    return root;
  }
  const lh = lineHits(records, rec);
  const lines = rec.text.split('\n');
  if (lines.length && lines[lines.length - 1] === '') lines.pop();
  const rows = lines.map((text, k) => {
    const no = rec.line + k;
    return el('tr', {className: 'src-row' + (no === line ? ' hl' : ''), dataset: {line: no}},
      el('td', {className: 'mono muted num', text: no}),
      lh ? el('td', {className: 'mono num hits', text: lh.hits.has(no) ? fmtCount(lh.hits.get(no)) + '×' : ''}) : null,
      el('td', {className: 'mono src', text}));
  });
  append(root, [
    lh ? el('p', {className: 'muted small', text: 'Hits: ' + plural(lh.calls, 'recorded call') + ' (lines=).'}) : null,
    el('div', {className: 'scroll-x'}, el('table', {className: 'source'}, el('tbody', null, rows))),
    rec.truncated ? el('p', {className: 'muted small', id: 'source-cut', text: plural(rec.truncated, 'more line') + ' not kept.'}) : null,
  ]);
  return root;
}
