// packed.js: the call tree of an exported report, as proto/render_pack.c
// packs it (docs/API.md "The packed report tree"): deflated columns of
// varints, decoded once into typed arrays. The texts stay UTF-8 bytes until
// a row shows them, and node objects exist only for what a view asked for,
// so a 1M-call report opens in a fraction of the memory its JSON took. The
// source answers with the shapes of tphd's JSON API (api.js serverSource).

// Bit k of the flags column (render_pack.c pack_flags); 'mem' is not a flag
// the API lists, it says memory_delta_kb was measured.
const PACK_FLAGS = ['exc', 'caught', 'open', 'gen', 'folded', 'args_mixed', 'ret_mixed', 'spawned', 'calls_mixed', 'seq', 'mem'];
const PACK_MEM = 1 << 10;
// Everything is local, so a file lists more per answer than tphd does:
// at least this many children of a node, and of nodes in all.
const FILE_PAGE = 5000;
const FILE_BUDGET = 20000;

/** The bytes of a base64 text, inflated (zlib format). */
async function inflateBase64(text) {
  let bytes;
  if (typeof Uint8Array.fromBase64 === 'function') {
    bytes = Uint8Array.fromBase64(text.trim());
  } else {
    const bin = atob(text.trim());
    bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  }
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('deflate'));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** LEB128 varints from buf at p (the reader's p moves on): uv() an
 *  unsigned one, sv() a zigzag signed one. */
function packReader(buf, p) {
  const r = {p};
  r.uv = () => {
    let x = 0, m = 1, b, q = r.p;
    do {
      if (q >= buf.length) throw new Error('the packed tree ends early');
      b = buf[q++];
      x += (b & 127) * m;
      m *= 128;
    } while (b & 128);
    r.p = q;
    return x;
  };
  r.sv = () => {
    const u = r.uv();
    return u % 2 ? -(u + 1) / 2 : u / 2;
  };
  return r;
}

/** The packed tree in typed arrays (one entry per node, in pre-order).
 *  The calls of the folded groups (render_pack.c put_members) follow the
 *  nodes in buf, or with more (a report, whose tp-members element holds
 *  them apart) come from await more(); either way they are decoded only
 *  when first asked for (pk.loadMembers()), so a page opens on the nodes
 *  alone. */
function decodePack(buf, more) {
  const rd = packReader(buf, 0);
  const uv = rd.uv, sv = rd.sv;
  if (String.fromCharCode(buf[0], buf[1], buf[2], buf[3]) !== 'TPK2') throw new Error('not a packed tree (TPK2)');
  rd.p = 4;
  const nstr = uv();
  const soff = new Uint32Array(nstr + 1), slen = new Uint32Array(nstr + 1);
  for (let k = 1; k <= nstr; k++) {
    slen[k] = uv();
    soff[k] = rd.p;
    rd.p += slen[k];
  }
  const strEnd = rd.p;
  const utf8 = new TextDecoder();
  const rawStr = (k) => utf8.decode(buf.subarray(soff[k], soff[k] + slen[k]));
  // A string column's value: 0 none, 1 the next string not used yet (the
  // table is in the order first used), k + 1 the earlier string k.
  let seen = 0;
  const sref = () => {
    const v = uv();
    const k = v === 0 ? 0 : v === 1 ? ++seen : v - 1;
    if (k > nstr || k > seen) throw new Error('the packed tree is damaged');
    return k;
  };
  const scol = (len) => {
    const a = new Uint32Array(len);
    for (let i = 0; i < len; i++) a[i] = sref();
    return a;
  };
  const nfunc = uv();
  const funcs = [];
  for (let f = 0; f < nfunc; f++) {
    const module = uv(), qualname = uv(), file = uv();
    seen = Math.max(seen, module, qualname, file);
    funcs.push({module: rawStr(module), qualname: rawStr(qualname), file: rawStr(file), line: sv()});
  }
  const n = uv();
  const col = (T, signed) => {
    const a = new T(n);
    for (let i = 0; i < n; i++) a[i] = signed ? sv() : uv();
    return a;
  };
  // A column that is all zero (no generators, no exceptions, ...) is kept as null.
  const opt = (a) => (a.some((x) => x !== 0) ? a : null);

  // The tree from the levels: each node's parent, previous sibling and
  // position among its siblings.
  const parent = new Int32Array(n), prev = new Int32Array(n), pos = new Uint32Array(n);
  const depth = new Uint32Array(n);
  const nkids = new Uint32Array(n + 1); // index n counts the roots
  {
    const at = []; // at[l]: the last node seen at level l on the current path
    let level = -1;
    for (let i = 0; i < n; i++) {
      const up = uv();
      const lv = level + 1 - up;
      if (lv < 0) throw new Error('the packed tree is damaged');
      // Climbing or staying, the last node at this level is the previous sibling.
      prev[i] = up > 0 ? at[lv] : -1;
      const par = lv ? at[lv - 1] : -1;
      parent[i] = par;
      depth[i] = lv;
      pos[i] = nkids[par < 0 ? n : par]++;
      at[lv] = i;
      at.length = lv + 1;
      level = lv;
    }
  }
  const kidOff = new Uint32Array(n + 2);
  for (let i = 0; i <= n; i++) kidOff[i + 1] = kidOff[i] + nkids[i];
  const kids = new Uint32Array(n);
  for (let i = 0; i < n; i++) kids[kidOff[parent[i] < 0 ? n : parent[i]] + pos[i]] = i;

  const func = col(Uint32Array, false);
  for (let i = 0; i < n; i++) depth[i] += sv();
  const thread = opt(col(Uint32Array, false));
  const count = col(Uint32Array, false);
  const flags = col(Uint16Array, false);
  const start = col(Float64Array, true);
  const end = col(Float64Array, true);
  for (let i = 0; i < n; i++) {
    const ref = prev[i] >= 0 ? end[prev[i]] : parent[i] >= 0 ? start[parent[i]] : 0;
    start[i] += ref;
    end[i] += start[i];
  }
  const dTotal = opt(col(Float64Array, true));
  const dSelf = opt(col(Float64Array, true));
  const dMin = opt(col(Float64Array, true));
  const dMax = opt(col(Float64Array, true));
  const args = scol(n);
  const ret = scol(n);
  const excType = opt(scol(n));
  const excMsg = opt(scol(n));
  const nexc = opt(col(Uint32Array, false));
  const suspends = opt(col(Uint32Array, false));
  const seq = opt(col(Uint32Array, false));
  const mem = opt(col(Float64Array, true));
  // The raw call each node stands for first, and its raw parent + 1 (0: a
  // root), each from the node before / the previous sibling or parent.
  const call = new Uint32Array(n), rp = new Uint32Array(n);
  for (let i = 0, last = -1; i < n; i++) last = call[i] = last + 1 + sv();
  for (let i = 0; i < n; i++) {
    const ref = prev[i] >= 0 ? rp[prev[i]] : parent[i] >= 0 ? call[parent[i]] + 1 : 0;
    rp[i] = ref + sv();
  }
  // Keep the string table only (the columns are decoded), as a copy so the
  // inflated buffer can go; and the groups' calls as bytes until asked for.
  const strings = buf.slice(0, strEnd);
  const nodeSeen = seen;
  let rest = null, members = null;
  if (!more) rest = buf.slice(rd.p);
  else if (rd.p !== buf.length) throw new Error('the packed tree has ' + (buf.length - rd.p) + ' bytes too many');
  const pk = {n, nstr, soff, slen, strings, funcs, parent, pos, kidOff, kids, nroots: nkids[n],
    func, depth, thread, count, flags, start, end, dTotal, dSelf, dMin, dMax,
    args, ret, excType, excMsg, nexc, suspends, seq, mem, call, rp, lower: null};
  /** The groups' calls, decoded once (a promise; the same one each time). */
  pk.loadMembers = () => members || (members = (async () => {
    // After the next paint (the details of the hot path's node ask for its
    // calls as the page opens), or 100 ms in a page that does not paint.
    await new Promise((resolve) => {
      requestAnimationFrame(() => setTimeout(resolve, 0));
      setTimeout(resolve, 100);
    });
    const bytes = rest || (await more());
    rest = null;
    return decodeMembers(pk, bytes, nodeSeen);
  })());
  return pk;
}

/** The calls of the folded groups the file holds (render_pack.c
 *  put_members), from their bytes: the strings only they use (added to
 *  pk's table), then group g is node gNode[g], its calls gOff[g] to
 *  gOff[g + 1]. seen: the strings the nodes' columns used. */
function decodeMembers(pk, buf, seen) {
  const rd = packReader(buf, 0);
  const uv = rd.uv, sv = rd.sv;
  const n = pk.n;
  const nmore = uv();
  const nstr = pk.nstr + nmore;
  const soff = new Uint32Array(nstr + 1), slen = new Uint32Array(nstr + 1);
  soff.set(pk.soff);
  slen.set(pk.slen);
  const from = rd.p, base = pk.strings.length;
  for (let k = pk.nstr + 1; k <= nstr; k++) {
    slen[k] = uv();
    soff[k] = base + rd.p - from;
    rd.p += slen[k];
  }
  if (rd.p > buf.length) throw new Error('the packed tree ends early');
  const strings = new Uint8Array(base + rd.p - from);
  strings.set(pk.strings);
  strings.set(buf.subarray(from, rd.p), base);
  const opt = (a) => (a.some((x) => x !== 0) ? a : null);
  const sref = () => {
    const v = uv();
    const k = v === 0 ? 0 : v === 1 ? ++seen : v - 1;
    if (k > nstr || k > seen) throw new Error('the packed tree is damaged');
    return k;
  };
  const maxMembers = uv();
  const ng = uv();
  const gNode = new Uint32Array(ng), gOff = new Uint32Array(ng + 1);
  for (let g = 0, node = 0; g < ng; g++) {
    node += uv();
    if (node >= n || (g && node <= gNode[g - 1])) throw new Error('the packed tree is damaged');
    gNode[g] = node;
    gOff[g + 1] = gOff[g] + uv();
  }
  const nm = gOff[ng];
  const mcol = (T, signed) => {
    const a = new T(nm);
    for (let k = 0; k < nm; k++) a[k] = signed ? sv() : uv();
    return a;
  };
  const scol = () => {
    const a = new Uint32Array(nm);
    for (let k = 0; k < nm; k++) a[k] = sref();
    return a;
  };
  // A call's number and raw parent are written from the call before it in
  // its group, the first's from its node; its depth from its node's.
  const fromPrev = (first) => {
    const a = new Uint32Array(nm);
    for (let g = 0; g < ng; g++) {
      for (let k = gOff[g], v = first[gNode[g]]; k < gOff[g + 1]; k++) a[k] = v += sv();
    }
    return a;
  };
  const mCall = fromPrev(pk.call);
  const mRp = fromPrev(pk.rp);
  const mKids = mcol(Uint32Array, false);
  const mDepth = new Uint32Array(nm);
  for (let g = 0; g < ng; g++) for (let k = gOff[g]; k < gOff[g + 1]; k++) mDepth[k] = pk.depth[gNode[g]] + sv();
  const mThread = opt(mcol(Uint32Array, false));
  const mCount = mcol(Uint32Array, false);
  const mFlags = mcol(Uint16Array, false);
  const mStart = mcol(Float64Array, true);
  const mEnd = mcol(Float64Array, true);
  for (let g = 0; g < ng; g++) {
    for (let k = gOff[g]; k < gOff[g + 1]; k++) {
      mStart[k] += k === gOff[g] ? pk.start[gNode[g]] : mEnd[k - 1];
      mEnd[k] += mStart[k];
    }
  }
  const members = {maxMembers, ng, gNode, gOff, call: mCall, rp: mRp, kids: mKids, depth: mDepth, thread: mThread,
    count: mCount, flags: mFlags, start: mStart, end: mEnd,
    dTotal: opt(mcol(Float64Array, true)), dSelf: opt(mcol(Float64Array, true)),
    dMin: opt(mcol(Float64Array, true)), dMax: opt(mcol(Float64Array, true)),
    args: scol(), ret: scol(), excType: opt(scol()), excMsg: opt(scol()),
    nexc: opt(mcol(Uint32Array, false)), suspends: opt(mcol(Uint32Array, false)), mem: opt(mcol(Float64Array, true))};
  if (rd.p !== buf.length) throw new Error('the packed tree has ' + (buf.length - rd.p) + ' bytes too many');
  Object.assign(pk, {nstr, soff, slen, strings, lower: null});
  return members;
}

/** The report's source (api.js serverSource's shapes) over a decoded pack. */
function fileSource(data) {
  const pk = data.pack;
  const utf8 = new TextDecoder();
  const str = (k) => (k ? utf8.decode(pk.strings.subarray(pk.soff[k], pk.soff[k] + pk.slen[k])) : null);
  const total = (i) => pk.end[i] - pk.start[i] + (pk.dTotal ? pk.dTotal[i] : 0);
  const kidsOf = (id) => (id === null ? pk.kids.subarray(pk.kidOff[pk.n], pk.kidOff[pk.n + 1])
    : pk.kids.subarray(pk.kidOff[id], pk.kidOff[id + 1]));
  const nChildren = (i) => pk.kidOff[i + 1] - pk.kidOff[i];
  const ms = (ns) => ns / 1e6;
  // KiB with 3 decimals, the magnitude rounded half up (json.c tp_json_kib).
  const kib = (b) => {
    const u = Math.abs(b);
    const v = (Math.floor(u / 1024) * 1000 + Math.floor(((u % 1024) * 1000 + 512) / 1024)) / 1000;
    return b < 0 ? -v : v;
  };

  /** Row k of the columns c (the nodes', pk, or the groups' calls', mb) as
   *  the API's node object, of function f (func its id), total time tot:
   *  the fields both have. */
  function callObj(c, k, f, func, id, parent, tot) {
    const mn = tot - (c.dMin ? c.dMin[k] : 0);
    const fl = c.flags[k];
    const o = {id, name: f.qualname, module: f.module, file: f.file, line: f.line, func,
      depth: c.depth[k], parent, thread: c.thread ? c.thread[k] : 0, count: c.count[k],
      start_ms: ms(c.start[k]), end_ms: ms(c.end[k]), total_ms: ms(tot), span_ms: ms(c.end[k] - c.start[k]),
      self_ms: ms(tot - (c.dSelf ? c.dSelf[k] : 0)), min_ms: ms(mn), max_ms: ms(mn + (c.dMax ? c.dMax[k] : 0)),
      args: str(c.args[k]), ret: str(c.ret[k]), exc: null,
      nexc: c.nexc ? c.nexc[k] : 0, suspends: c.suspends ? c.suspends[k] : 0};
    const et = c.excType ? c.excType[k] : 0;
    if (et) o.exc = {type: str(et), msg: str(c.excMsg ? c.excMsg[k] : 0) || '', caught: !(fl & 1)};
    if (fl & PACK_MEM) o.memory_delta_kb = kib(c.mem ? c.mem[k] : 0);
    o.flags = PACK_FLAGS.filter((name, b) => b < 10 && fl & (1 << b));
    o.cut = false;
    return o;
  }

  /** Node i as the API's node object (render_web.c put_node_open), without kids. */
  function nodeObj(i) {
    const o = callObj(pk, i, pk.funcs[pk.func[i]], pk.func[i], i, pk.parent[i] < 0 ? null : pk.parent[i],
      total(i));
    o.children = nChildren(i);
    if (pk.seq && pk.seq[i]) o.seq = pk.seq[i];
    return o;
  }

  // The groups' calls, once a request needs them (members, search, the
  // timeline and the profile; the tree and the flame graph do not).
  let mb = null;
  const withMembers = (f) => async (...a) => {
    if (!mb) mb = await pk.loadMembers();
    return f(...a);
  };
  /** The group of node i among the packed ones, or -1 (binary search). */
  function groupOf(i) {
    let lo = 0, hi = mb.ng - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (mb.gNode[mid] === i) return mid;
      if (mb.gNode[mid] < i) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  /** Call k of the packed groups (of node i) as the API's node object of
   *  the unfolded tree (render_web.c tp_render_web_members). */
  function memberObj(i, k) {
    const tot = mb.end[k] - mb.start[k] + (mb.dTotal ? mb.dTotal[k] : 0);
    const o = callObj(mb, k, pk.funcs[pk.func[i]], pk.func[i], mb.call[k], mb.rp[k] ? mb.rp[k] - 1 : null, tot);
    o.children = mb.kids[k];
    o.has_more = false;
    return o;
  }

  /** The calls a folded node stands for (tphd's /members): its packed
   *  calls, a node of one call itself, and for a group the file left out
   *  (over TP_WEB_PACK_MAX_MEMBERS) no calls and "left_out". */
  function members(p) {
    if (p.node === undefined || p.node === null || p.node === '') throw new ApiError(400, 'bad_request', 'argument "node" is required');
    const i = Number(p.node);
    if (!(Number.isInteger(i) && i >= 0 && i < pk.n)) throw new ApiError(404, 'not_found', 'no node ' + p.node);
    const offset = Math.max(0, Number(p.offset || 0));
    const limit = Math.min(Number(p.limit) > 0 ? Number(p.limit) : 1000, 100000);
    const g = groupOf(i);
    const r = {node: i, total: 1, offset, calls: []};
    if (g >= 0) {
      r.total = mb.gOff[g + 1] - mb.gOff[g];
      for (let k = offset; k < r.total && k < offset + limit; k++) r.calls.push(memberObj(i, mb.gOff[g] + k));
    } else if (pk.flags[i] & (1 << 4)) {
      r.total = pk.count[i];
      r.left_out = true;
      r.max_members = mb.maxMembers;
    } else if (offset < 1 && limit > 0) {
      // A node of one call: the call, with its raw number, parent and children.
      const o = nodeObj(i);
      o.id = pk.call[i];
      o.parent = pk.rp[i] ? pk.rp[i] - 1 : null;
      let kids = 0;
      for (const c of kidsOf(i)) kids += pk.count[c];
      o.children = kids;
      delete o.seq;
      o.has_more = false;
      r.calls.push(o);
    }
    return r;
  }

  /** The hot path (render_web.c put_hot_path): the heaviest root, then its
   *  heaviest child, down to a leaf; ties go to the first. */
  function hotPath() {
    const path = [], hpos = [];
    for (let level = kidsOf(null); level.length && path.length < 64;) {
      let best = 0;
      for (let k = 1; k < level.length; k++) if (total(level[k]) > total(level[best])) best = k;
      path.push(level[best]);
      hpos.push(best);
      level = kidsOf(level[best]);
    }
    return {path, hpos};
  }

  /** A subtree, breadth-first within a node budget (render_web.c
   *  tp_render_web_tree). */
  function subtree(p) {
    const node = p && p.node !== undefined && p.node !== null ? Number(p.node) : null;
    if (node !== null && !(Number.isInteger(node) && node >= 0 && node < pk.n)) throw new ApiError(404, 'not_found', 'no node ' + p.node);
    const depth = p && p.depth !== undefined ? Number(p.depth) : 1;
    const offset = Math.max(0, Number((p && p.offset) || 0));
    const limit = Math.max(Number((p && p.limit) || 1000), FILE_PAGE);
    const budget = Math.max(Number((p && p.max_nodes) || 5000), FILE_BUDGET);
    const top = kidsOf(node);
    const out = [];
    const objs = new Map();
    let listed = 0;
    const queue = [];
    const listLevel = (ids, from, level, into) => {
      for (let k = from; k < ids.length && k < from + limit; k++) {
        if (listed >= budget) return false;
        const o = nodeObj(ids[k]);
        o.has_more = o.children > 0;
        objs.set(ids[k], o);
        into.push(o);
        queue.push([ids[k], level]);
        listed++;
      }
      return true;
    };
    if (depth !== 0 && listLevel(top, offset, 1, out)) {
      for (let q = 0; q < queue.length; q++) {
        const [id, level] = queue[q];
        if (depth > 0 && level >= depth) continue;
        const ks = kidsOf(id);
        if (!ks.length) continue;
        const o = objs.get(id);
        o.kids = [];
        const ok = listLevel(ks, 0, level + 1, o.kids);
        o.has_more = o.kids.length < ks.length;
        if (!o.kids.length) delete o.kids;
        if (!ok) break;
      }
    }
    const r = {node, total: top.length, offset, self: null, nodes: out};
    if (node !== null) r.self = Object.assign(nodeObj(node), {has_more: top.length > 0});
    if (node === null && offset === 0) {
      const hp = hotPath();
      r.hot_path = hp.path;
      r.hot_pos = hp.hpos;
    }
    if (node === null && data.threads) r.threads = data.threads;
    return r;
  }

  /** ASCII lowercase UTF-8 bytes, as tphd's search compares them. */
  const lowerBytes = (b) => {
    const o = new Uint8Array(b.length);
    for (let i = 0; i < b.length; i++) o[i] = b[i] >= 65 && b[i] <= 90 ? b[i] + 32 : b[i];
    return o;
  };
  const asciiLower = (s) => s.replace(/[A-Z]+/g, (c) => c.toLowerCase());

  /** Search (render_web.c tp_render_web_search): a function's dotted name
   *  or file, or a call's args, return value or exception, contain the
   *  query (ASCII case-insensitive), in tree order. */
  function search(q, limit) {
    limit = limit || 1000;
    const needle = lowerBytes(new TextEncoder().encode(String(q)));
    const m = needle.length;
    const matches = [];
    if (!m) return {query: q, total: 0, truncated: false, matches};
    if (!pk.lower) pk.lower = lowerBytes(pk.strings);
    const low = pk.lower;
    const hit = new Uint8Array(pk.nstr + 1);
    const n0 = needle[0];
    for (let k = 1; k <= pk.nstr; k++) {
      const e = pk.soff[k] + pk.slen[k] - m;
      for (let i = pk.soff[k]; i <= e; i++) {
        if (low[i] !== n0) continue;
        let j = 1;
        while (j < m && low[i + j] === needle[j]) j++;
        if (j === m) {
          hit[k] = 1;
          break;
        }
      }
    }
    const qs = asciiLower(String(q));
    const fm = pk.funcs.map((f) => asciiLower(f.module + '.' + f.qualname).includes(qs) || asciiLower(f.file).includes(qs));
    let count = 0;
    const textHit = (a, k) => hit[a.args[k]] || hit[a.ret[k]] || (a.excType && (hit[a.excType[k]] || hit[a.excMsg ? a.excMsg[k] : 0]));
    for (let i = 0, g = 0; i < pk.n; i++) {
      // A folded group the file holds is searched call by call, as tphd
      // does: the text of any of them finds it ("calls": the first 100).
      while (g < mb.ng && mb.gNode[g] < i) g++;
      const group = g < mb.ng && mb.gNode[g] === i;
      let calls = null, nhits = 0;
      if (group) {
        calls = [];
        for (let k = mb.gOff[g]; k < mb.gOff[g + 1]; k++) {
          if (!textHit(mb, k)) continue;
          if (nhits < 100) calls.push(k - mb.gOff[g]);
          nhits++;
        }
      }
      if (!(fm[pk.func[i]] || (group ? nhits > 0 : textHit(pk, i)))) continue;
      if (count < limit) {
        const path = [], pos = [];
        for (let c = i; c >= 0; c = pk.parent[c]) {
          path.unshift(c);
          pos.unshift(pk.pos[c]);
        }
        const m = {id: i, path, pos};
        if (group) Object.assign(m, {calls, calls_total: nhits});
        matches.push(m);
      }
      count++;
    }
    return {query: q, total: count, truncated: count > limit, matches};
  }

  /** The function table of the calls that started in [t0, t1) ms: tphd's
   *  /profile (render_web_agg.c tp_render_web_profile, on the raw calls):
   *  a group the file holds counts call by call, one it left out as its
   *  node. Sums in ns, as tphd's. */
  function profile(t0ms, t1ms) {
    const nsOf = (v, def) => (v === undefined || v === null || v === '' ? def : Math.floor(Number(v) * 1e6 + 0.5));
    const t0 = nsOf(t0ms, 0), t1 = nsOf(t1ms, 9e17);
    if (!(t0 >= 0 && t1 >= t0)) throw new ApiError(400, 'bad_request', 'argument "t1_ms" is before "t0_ms"');
    const nf = pk.funcs.length;
    const count = new Float64Array(nf), tot = new Float64Array(nf), slf = new Float64Array(nf);
    const mn = new Float64Array(nf), mx = new Float64Array(nf), exc = new Float64Array(nf);
    let calls = 0;
    const add = (f, s, cnt, total, self, min, max, fl, nexc) => {
      if (s < t0 || s >= t1) return;
      if (!count[f] || min < mn[f]) mn[f] = min;
      if (max > mx[f]) mx[f] = max;
      count[f] += cnt;
      tot[f] += total;
      slf[f] += self;
      exc[f] += fl & 1 ? nexc || 1 : 0;
      calls += cnt;
    };
    for (let i = 0, g = 0; i < pk.n; i++) {
      while (g < mb.ng && mb.gNode[g] < i) g++;
      const f = pk.func[i];
      if (g < mb.ng && mb.gNode[g] === i) {
        for (let k = mb.gOff[g]; k < mb.gOff[g + 1]; k++) {
          const t = mb.end[k] - mb.start[k] + (mb.dTotal ? mb.dTotal[k] : 0), m = t - (mb.dMin ? mb.dMin[k] : 0);
          add(f, mb.start[k], mb.count[k], t, t - (mb.dSelf ? mb.dSelf[k] : 0), m, m + (mb.dMax ? mb.dMax[k] : 0),
            mb.flags[k], mb.nexc ? mb.nexc[k] : 0);
        }
        continue;
      }
      const t = total(i), m = t - (pk.dMin ? pk.dMin[i] : 0);
      add(f, pk.start[i], pk.count[i], t, t - (pk.dSelf ? pk.dSelf[i] : 0), m, m + (pk.dMax ? pk.dMax[i] : 0),
        pk.flags[i], pk.nexc ? pk.nexc[i] : 0);
    }
    const order = [];
    for (let f = 0; f < nf; f++) if (count[f]) order.push(f);
    order.sort((a, b) => (tot[a] !== tot[b] ? tot[b] - tot[a] : a - b));
    const functions = order.map((f) => {
      const fn = pk.funcs[f];
      return {name: fn.qualname, module: fn.module, file: fn.file, lineno: fn.line, count: count[f],
        total_ms: ms(tot[f]), self_ms: ms(slf[f]), min_ms: ms(mn[f]), max_ms: ms(mx[f]),
        avg_ms: ms(Math.trunc(tot[f] / count[f])), exceptions: exc[f]};
    });
    return {t0_ms: ms(t0), t1_ms: ms(t1), calls, unique_functions: functions.length, functions};
  }

  /** The raw calls (render_web_agg.c reads tphd's raw tree), indexed by
   *  call number: every one-call node, and every call of a group the file
   *  holds; a group the bound left out stands in as its node (one call
   *  from its first start to its last end). With each call's lane and row
   *  as tp_render_web_timeline assigns them, which no window changes.
   *  Built once, on the first timeline. */
  let raw = null;
  function rawCalls() {
    if (raw) return raw;
    let nr = 0;
    for (let i = 0; i < pk.n; i++) nr = Math.max(nr, pk.call[i] + 1);
    for (let k = 0; k < mb.call.length; k++) nr = Math.max(nr, mb.call[k] + 1);
    const func = new Int32Array(nr).fill(-1), thread = new Uint32Array(nr), rp = new Uint32Array(nr);
    const start = new Float64Array(nr), end = new Float64Array(nr), spawned = new Uint8Array(nr);
    const SPAWNED = 1 << 7;
    for (let i = 0, g = 0; i < pk.n; i++) {
      while (g < mb.ng && mb.gNode[g] < i) g++;
      if (g < mb.ng && mb.gNode[g] === i) {
        for (let k = mb.gOff[g]; k < mb.gOff[g + 1]; k++) {
          const c = mb.call[k];
          func[c] = pk.func[i];
          thread[c] = mb.thread ? mb.thread[k] : 0;
          rp[c] = mb.rp[k];
          start[c] = mb.start[k];
          end[c] = mb.end[k];
          spawned[c] = mb.flags[k] & SPAWNED ? 1 : 0;
        }
        continue;
      }
      const c = pk.call[i];
      func[c] = pk.func[i];
      thread[c] = pk.thread ? pk.thread[i] : 0;
      rp[c] = pk.rp[i];
      start[c] = pk.start[i];
      end[c] = pk.end[i];
      spawned[c] = pk.flags[i] & SPAWNED ? 1 : 0;
    }
    // Lanes in order of first use: one per thread, one per task's
    // coroutine (63 at most, then one more they share), a call in its
    // parent's lane a row below, unless it is a task or changes thread.
    const lane = new Int32Array(nr).fill(-1), row = new Int32Array(nr);
    const lanes = [], threadLane = new Map();
    let ntasks = 0, more = -1;
    const dotted = (f) => (pk.funcs[f].module ? pk.funcs[f].module + '.' : '') + pk.funcs[f].qualname;
    for (let i = 0; i < nr; i++) {
      if (func[i] < 0) continue;
      const p = rp[i] - 1;
      let l, d = 0;
      if (spawned[i]) {
        if (more >= 0) {
          l = more;
        } else {
          l = lanes.length;
          if (ntasks >= 63) {
            more = l;
            lanes.push({name: 'tasks (more)', thread: thread[i]});
          } else {
            lanes.push({name: 'task ' + dotted(func[i]), thread: thread[i]});
          }
          ntasks++;
        }
      } else if (p < 0 || p >= i || lane[p] < 0 || lanes[lane[p]].thread !== thread[i]) {
        l = threadLane.get(thread[i]);
        if (l === undefined) {
          threadLane.set(thread[i], (l = lanes.length));
          lanes.push({name: 'thread ' + thread[i], thread: thread[i]});
        }
      } else {
        l = lane[p];
        d = row[p] + 1;
      }
      lane[i] = l;
      row[i] = d;
    }
    raw = {nr, func, start, end, lane, row, lanes};
    return raw;
  }

  /** Calls per lane, row and time bucket of [t0, t1) ms: tphd's /timeline
   *  (render_web_agg.c tp_render_web_timeline) over the same calls. */
  function timeline(t0ms, t1ms, buckets) {
    const nsOf = (v, what) => {
      const x = Number(v);
      if (!(x >= 0 && x < 9e12)) throw new ApiError(400, 'bad_request', 'argument "' + what + '" must be milliseconds from 0');
      return Math.floor(x * 1e6 + 0.5);
    };
    const nb = buckets === undefined || buckets === null || buckets === '' ? 1000 : Number(buckets);
    if (!(Number.isInteger(nb) && nb >= 1 && nb <= 4000)) throw new ApiError(400, 'bad_request', 'argument "buckets" must be from 1 to 4000');
    const t0 = t0ms === undefined || t0ms === null ? 0 : nsOf(t0ms, 't0_ms');
    const dur = Math.round(Number(data.trace.duration_ms || 0) * 1e6);
    const t1 = t1ms === undefined || t1ms === null ? nsOf((dur > t0 ? dur : t0 + 1) / 1e6, 't1_ms') : nsOf(t1ms, 't1_ms');
    if (t1 <= t0) throw new ApiError(400, 'bad_request', 'argument "t1_ms" must be after "t0_ms"');
    const w = Math.max(1, Math.ceil((t1 - t0) / nb)), tEnd = t0 + w * nb;
    const rc = rawCalls();
    // Per lane, its rows' cells: busy ns, the longest overlap and its
    // function, the calls started.
    const rows = rc.lanes.map(() => []);
    for (let i = 0; i < rc.nr; i++) {
      if (rc.func[i] < 0) continue;
      const d = rc.row[i];
      const s = rc.start[i], e = Math.max(rc.end[i], s);
      if (e < t0 || s >= tEnd || d >= 64) continue;
      const lr = rows[rc.lane[i]];
      let cells = lr[d];
      if (!cells) {
        cells = lr[d] = {busy: new Float64Array(nb), best: new Float64Array(nb), func: new Int32Array(nb).fill(-1), started: new Uint32Array(nb)};
      }
      const cs = Math.max(s, t0), ce = Math.min(e, tEnd);
      const b0 = Math.floor((cs - t0) / w), b1 = Math.min(Math.floor((ce - t0) / w), nb - 1);
      for (let b = b0; b <= b1; b++) {
        const bs = t0 + b * w, be = bs + w;
        const ov = Math.max(0, Math.min(ce, be) - Math.max(cs, bs));
        cells.busy[b] += ov;
        if (cells.func[b] < 0 || ov > cells.best[b]) {
          cells.best[b] = ov;
          cells.func[b] = rc.func[i];
        }
        if (b === b0 && s >= t0) cells.started[b]++;
      }
    }
    const lanes = rc.lanes.map((l, k) => ({name: l.name, thread: l.thread, rows: Array.from(rows[k], (cells) => {
      const out = [];
      if (!cells) return out;
      for (let b = 0; b < nb; b++) {
        if (!cells.busy[b] && !cells.started[b]) continue;
        out.push([b, ms(cells.busy[b]), cells.func[b], cells.started[b]]);
      }
      return out;
    })}));
    const funcs = pk.funcs.map((f) => (f.module ? f.module + '.' : '') + f.qualname);
    return {t0_ms: ms(t0), t1_ms: ms(tEnd), bucket_ms: ms(w), buckets: nb, lanes, funcs};
  }

  /** The merged ("left heavy") flame graph of the whole tree, or with p.fn
   *  the sandwich of that function: render_web_agg.c tp_render_web_flame,
   *  on the same folded tree, so a file draws what tphd serves. A level is
   *  two columns: cur, the node whose function groups an item, and org, the
   *  call whose count and time it carries (cur itself below a call, the
   *  call of fn for its callers). Typed arrays, since a wide node makes a
   *  level of a million items. */
  function flame(p) {
    const fn = p && p.fn ? String(p.fn) : null;
    const minNs = p && p.min_ms ? Math.round(Number(p.min_ms) * 1e6) : 0;
    let budget = p && Number(p.max_nodes) > 0 ? Number(p.max_nodes) : 5000;
    let cut = false;
    const dotted = (fi) => (pk.funcs[fi].module ? pk.funcs[fi].module + '.' : '') + pk.funcs[fi].qualname;
    const self = (i) => total(i) - (pk.dSelf ? pk.dSelf[i] : 0);
    const slot = new Int32Array(pk.funcs.length).fill(-1);
    /** The children of every cur, each its own org. */
    const below = (cur, from, to) => {
      let m = 0;
      for (let k = from; k < to; k++) m += nChildren(cur[k]);
      const out = new Int32Array(m);
      for (let k = from, j = 0; k < to; k++) for (let c = pk.kidOff[cur[k]]; c < pk.kidOff[cur[k] + 1]; c++) out[j++] = pk.kids[c];
      return out;
    };
    /** The parent of every cur that has one, org kept. */
    const above = (cur, org, from, to) => {
      let m = 0;
      for (let k = from; k < to; k++) m += pk.parent[cur[k]] >= 0;
      const nc = new Int32Array(m), no = new Int32Array(m);
      for (let k = from, j = 0; k < to; k++) {
        if (pk.parent[cur[k]] < 0) continue;
        nc[j] = pk.parent[cur[k]];
        no[j++] = org[k];
      }
      return [nc, no];
    };
    const level = (cur, org, depth, up) => {
      const n = cur.length, gOf = new Int32Array(n), groups = [];
      for (let k = 0; k < n; k++) {
        const f = pk.func[cur[k]], o = org[k];
        if (slot[f] < 0) {
          slot[f] = groups.length;
          groups.push({f, count: 0, total: 0, self: 0, n: 0, off: 0});
        }
        const g = groups[(gOf[k] = slot[f])];
        g.count += pk.count[o];
        g.total += total(o);
        g.self += self(o);
        g.n++;
      }
      for (const g of groups) slot[g.f] = -1;
      // Each group's items together, in the order they came.
      const gc = new Int32Array(n), go = new Int32Array(n), fill = new Int32Array(groups.length);
      for (let g = 0, off = 0; g < groups.length; off += groups[g++].n) fill[g] = groups[g].off = off;
      for (let k = 0; k < n; k++) {
        const j = fill[gOf[k]]++;
        gc[j] = cur[k];
        go[j] = org[k];
      }
      groups.sort((a, b) => (a.total !== b.total ? b.total - a.total : a.f - b.f));
      const out = [];
      for (const g of groups) {
        if (g.total < minNs) break;
        if (!budget) {
          cut = true;
          break;
        }
        budget--;
        const o = {function: dotted(g.f), module: pk.funcs[g.f].module, count: g.count, total_ms: ms(g.total), self_ms: ms(g.self)};
        let nc, no;
        if (up) [nc, no] = above(gc, go, g.off, g.off + g.n);
        else nc = no = below(gc, g.off, g.off + g.n);
        if (nc.length && depth + 1 < 256) o.kids = level(nc, no, depth + 1, up);
        else if (nc.length) cut = true;
        out.push(o);
      }
      return out;
    };
    const match = fn ? pk.funcs.map((f, k) => dotted(k) === fn) : null;
    // A recursive call inside another of fn's is counted in the outer one.
    // Nodes are in pre-order (a parent before its children), so one pass
    // marks them: walking each call's ancestors cost depth^2 on a deep
    // trace (render_web_agg.c does the same).
    const inner = fn ? new Uint8Array(pk.n) : null;
    if (fn) {
      for (let i = 0; i < pk.n; i++) {
        const p = pk.parent[i];
        inner[i] = p >= 0 && (match[pk.func[p]] || inner[p]) ? 1 : 0;
      }
    }
    const occ = [];
    let tot = 0, slf = 0, count = 0;
    for (let i = 0; i < pk.n; i++) {
      if (!fn) {
        if (pk.parent[i] >= 0) continue;
      } else if (!match[pk.func[i]] || inner[i]) {
        continue;
      }
      occ.push(i);
      tot += total(i);
      slf += self(i);
      count += pk.count[i];
    }
    const oc = Int32Array.from(occ);
    const r = {mode: fn ? 'sandwich' : 'merged'};
    if (fn) r.fn = fn;
    Object.assign(r, {count, total_ms: ms(tot), self_ms: ms(slf)});
    if (!fn) {
      r.nodes = level(oc, oc, 0, false);
    } else {
      const kc = below(oc, 0, oc.length);
      r.callees = level(kc, kc, 0, false);
      r.callers = level(...above(oc, oc, 0, oc.length), 0, true);
    }
    r.cut = cut;
    return r;
  }

  return {
    mode: 'file',
    traceId: data.trace.id || '',
    list: async () => ({total: 1, traces: [data.trace]}),
    trace: async () => data.trace,
    stats: async () => data.stats,
    lines: async () => data.lines || null,
    source: async (_id, func) => {
      const f = pk.funcs[func];
      if (!f) throw new ApiError(404, 'not_found', 'trace has no function ' + func);
      return sourceOf(data.source, func, f);
    },
    tree: async (_id, p) => subtree(p),
    members: withMembers((_id, node, offset, limit) => members({node, offset, limit})),
    /** Whether the groups' calls are decoded already: until then a folded
     *  node's details offer them on a click (decoding them all costs the
     *  page memory, tree.js groupCalls). */
    membersLoaded: () => mb !== null,
    search: withMembers((_id, q, limit) => search(q, limit)),
    diff: async () => {
      throw new ApiError(400, 'unsupported', 'a saved report holds one trace');
    },
    profile: withMembers((_id, t0, t1) => profile(t0, t1)),
    timeline: withMembers((_id, t0, t1, buckets) => timeline(t0, t1, buckets)),
    flame: async (_id, p) => flame(p),
    status: async () => null,
    exportUrl: () => null,
  };
}
