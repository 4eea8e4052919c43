// api.js: where the data comes from. In the browser against tphd, the JSON
// API (docs/API.md); in an exported report (tph export --format html), the
// data inlined in <script type="application/json" id="tp-data">, read once
// and answered locally with the same shapes, so the views never know which.

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v === undefined || v === null || v === '' || v === false) continue;
    q.set(k, v === true ? '1' : String(v));
  }
  const s = q.toString();
  return s ? '?' + s : '';
}

async function getJSON(path, params) {
  let res;
  try {
    res = await fetch(path + query(params), {credentials: 'same-origin', headers: {Accept: 'application/json'}});
  } catch (e) {
    throw new ApiError(0, 'network', 'tphd cannot be reached (' + e.message + ')');
  }
  let body = null;
  try {
    body = await res.json();
  } catch (e) {
    body = null;
  }
  if (!res.ok) {
    const msg = body && body.message ? body.message : res.status + ' ' + res.statusText;
    throw new ApiError(res.status, body && body.error ? body.error : 'http', msg);
  }
  return body;
}

const serverSource = {
  mode: 'server',
  list: (p) => getJSON('/api/traces', p),
  trace: (id) => getJSON('/api/traces/' + encodeURIComponent(id)),
  tree: (id, p) => getJSON('/api/traces/' + encodeURIComponent(id) + '/tree', p),
  search: (id, q, limit) => getJSON('/api/traces/' + encodeURIComponent(id) + '/search', {q, limit}),
  members: (id, node, offset, limit) => getJSON('/api/traces/' + encodeURIComponent(id) + '/members', {node, offset, limit}),
  stats: (id) => getJSON('/api/traces/' + encodeURIComponent(id) + '/stats'),
  lines: (id) => getJSON('/api/traces/' + encodeURIComponent(id) + '/lines'),
  diff: (a, b) => getJSON('/api/diff', {a, b}),
  profile: (id, t0, t1) => getJSON('/api/traces/' + encodeURIComponent(id) + '/profile', {t0, t1}),
  timeline: (id, t0, t1, buckets) => getJSON('/api/traces/' + encodeURIComponent(id) + '/timeline', {t0, t1, buckets}),
  flame: (id, p) => getJSON('/api/traces/' + encodeURIComponent(id) + '/flame', p),
  status: () => getJSON('/api/status'),
  exportUrl: (id, format) => '/api/traces/' + encodeURIComponent(id) + '/export' + query({format}),
};

/** The inlined report: one trace with its whole folded tree. */
function fileSource(data) {
  const byId = new Map();
  const stack = (data.tree.nodes || []).slice();
  while (stack.length) {
    const n = stack.pop();
    byId.set(n.id, n);
    if (n.kids) for (const k of n.kids) stack.push(k);
  }
  const id = data.trace.id || '';
  const strip = (n) => Object.assign({}, n, {kids: undefined, has_more: n.children > 0});
  return {
    mode: 'file',
    traceId: id,
    list: async () => ({total: 1, traces: [data.trace]}),
    trace: async () => data.trace,
    stats: async () => data.stats,
    lines: async () => data.lines || null,
    tree: async (_id, p) => {
      if (p && p.node !== undefined && p.node !== null) {
        const n = byId.get(Number(p.node));
        if (!n) throw new ApiError(404, 'not_found', 'no node ' + p.node);
        return {node: n.id, total: n.children, offset: 0, self: strip(n), nodes: n.kids || []};
      }
      return data.tree;
    },
    search: async (_id, q, limit) => {
      limit = limit || 1000;
      const needle = String(q).toLowerCase();
      const matches = [];
      let total = 0;
      const has = (s) => s !== null && s !== undefined && String(s).toLowerCase().includes(needle);
      // Pre-order walk with the path kept on the stack.
      const walk = [[data.tree.nodes || [], 0, []]];
      while (walk.length && needle) {
        const top = walk[walk.length - 1];
        const [list, i, path] = top;
        if (i >= list.length) {
          walk.pop();
          continue;
        }
        top[1]++;
        const n = list[i];
        const p = path.concat([n.id]);
        if (has(n.name) || has(n.file) || has(n.args) || has(n.ret) ||
            (n.exc && (has(n.exc.type) || has(n.exc.msg)))) {
          if (total < limit) matches.push({id: n.id, path: p});
          total++;
        }
        if (n.kids && n.kids.length) walk.push([n.kids, 0, p]);
      }
      return {query: q, total, truncated: total > limit, matches};
    },
    diff: async () => {
      throw new ApiError(400, 'unsupported', 'a saved report holds one trace');
    },
    // The function table of a range, from the folded nodes that started in
    // it (tphd counts the raw calls; a folded group counts as its calls).
    profile: async (_id, t0, t1) => {
      const by = new Map();
      let calls = 0;
      for (const n of byId.values()) {
        if (n.start_ms < t0 || n.start_ms >= t1) continue;
        let f = by.get(n.name);
        if (!f) by.set(n.name, (f = {name: n.name, module: n.module, qualname: n.qualname, file: n.file, lineno: n.line,
          count: 0, total_ms: 0, self_ms: 0, min_ms: Infinity, max_ms: 0, exceptions: 0}));
        f.count += n.count;
        f.total_ms += n.total_ms;
        f.self_ms += n.self_ms;
        f.min_ms = Math.min(f.min_ms, n.min_ms);
        f.max_ms = Math.max(f.max_ms, n.max_ms);
        f.exceptions += n.flags.includes('exc') ? n.nexc || 1 : 0;
        calls += n.count;
      }
      const functions = Array.from(by.values()).map((f) => Object.assign(f, {avg_ms: f.total_ms / f.count}))
        .sort((a, b) => b.total_ms - a.total_ms);
      return {t0_ms: t0, t1_ms: t1, calls, unique_functions: functions.length, functions};
    },
    status: async () => null,
    exportUrl: () => null,
  };
}

/** The views name a function by its dotted full name ("module.qualname"),
 *  while the API's "name" is the qualname with "module" beside it
 *  (docs/API.md). This turns each function record a source returns into the
 *  views' shape once, in place: name becomes the full name and qualname keeps
 *  the qualname. A record that has a qualname is done already (the file
 *  source hands out the same objects more than once). */
function displayName(rec) {
  if (!rec || typeof rec.name !== 'string' || rec.qualname !== undefined) return;
  rec.qualname = rec.name;
  if (rec.module) rec.name = rec.module + '.' + rec.name;
}

function displayNodes(list) {
  const stack = (list || []).slice();
  while (stack.length) {
    const n = stack.pop();
    displayName(n);
    if (n && n.kids) for (const k of n.kids) stack.push(k);
  }
}

function displayStats(st) {
  if (!st) return st;
  displayName(st.slowest);
  displayName(st.most_called);
  for (const f of st.functions || []) displayName(f);
  return st;
}

/** source, with every result it returns in the views' naming. */
function withDisplayNames(source) {
  const then = (p, fix) => p.then((r) => {
    if (r) fix(r);
    return r;
  });
  return Object.assign({}, source, {
    list: (...a) => then(source.list(...a), (r) => (r.traces || []).forEach((t) => displayStats(t.stats))),
    trace: (...a) => then(source.trace(...a), (r) => displayStats(r.stats)),
    stats: (...a) => then(source.stats(...a), displayStats),
    profile: (...a) => then(source.profile(...a), displayStats),
    members: source.members && ((...a) => then(source.members(...a), (r) => displayNodes(r.calls))),
    tree: (...a) => then(source.tree(...a), (r) => {
      displayNodes(r.self ? [r.self] : []);
      displayNodes(r.nodes);
    }),
  });
}

/** The inlined data of an exported report, or null in the browser UI. */
function inlineData() {
  const node = document.getElementById('tp-data');
  if (!node) return null;
  try {
    return JSON.parse(node.textContent);
  } catch (e) {
    return {error: 'the report data is damaged: ' + e.message};
  }
}
