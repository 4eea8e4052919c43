// api.js: where the data comes from. In the browser against tphd, the JSON
// API (docs/API.md); in an exported report (tph export --format html), the
// data inlined in <script type="application/json" id="tp-data"> and the
// packed tree in <script type="application/octet-stream" id="tp-tree">,
// read once and answered locally with the same shapes (packed.js), so the
// views never know which.

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
  source: (id, func) => getJSON('/api/traces/' + encodeURIComponent(id) + '/source', {func}),
  diff: (a, b) => getJSON('/api/diff', {a, b}),
  profile: (id, t0, t1) => getJSON('/api/traces/' + encodeURIComponent(id) + '/profile', {t0, t1}),
  timeline: (id, t0, t1, buckets) => getJSON('/api/traces/' + encodeURIComponent(id) + '/timeline', {t0, t1, buckets}),
  flame: (id, p) => getJSON('/api/traces/' + encodeURIComponent(id) + '/flame', p),
  status: () => getJSON('/api/status'),
  frames: (p) => getJSON('/api/frames', p),
  framePoints: (name, limit) => getJSON('/api/frames/points', {name, limit}),
  exportUrl: (id, format) => '/api/traces/' + encodeURIComponent(id) + '/export' + query({format}),
};

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

/** The inlined data of an exported report (its tree decoded, packed.js),
 *  or null in the browser UI. */
async function inlineData() {
  const node = document.getElementById('tp-data');
  if (!node) return null;
  try {
    const data = JSON.parse(node.textContent);
    const tree = document.getElementById('tp-tree');
    // Marks for tests/bench/bench_report.mjs: inflating, then decoding.
    const t0 = performance.now();
    const bytes = await inflateBase64(tree ? tree.textContent : '');
    const t1 = performance.now();
    // The groups' calls are inflated and decoded only when a view asks
    // for them (packed.js decodePack).
    const calls = document.getElementById('tp-members');
    data.pack = decodePack(bytes, async () => {
      if (!calls) throw new Error('the report has no tp-members element');
      const text = calls.textContent;
      calls.remove();
      return inflateBase64(text);
    });
    performance.measure('tp-inflate', {start: t0, end: t1});
    performance.measure('tp-decode', {start: t1, end: performance.now()});
    // The base64 text is decoded: let the page drop it.
    if (tree) tree.remove();
    return data;
  } catch (e) {
    return {error: 'the report data is damaged: ' + e.message};
  }
}
