// tree.js: the call tree. TraceModel holds the nodes fetched so far (a 1M-call
// trace arrives a subtree at a time); TreeView shows the expanded part as
// virtualised rows (only the rows in view exist in the DOM), with keyboard
// navigation, search hits and a details panel.

const ROW_H = 22;
const KIDS_PAGE = 500;
const GROUP_PAGE = 100; // calls of a folded node listed at a time

/* The children of a node (or the roots) are loaded in pages, anywhere in the
 * list (search jumps into the middle of a 1M-wide node): a level keeps its
 * child count and the loaded ranges, sorted and merged. */
function addRange(h, start, ids) {
  if (!ids.length) return;
  const all = (h.ranges || []).concat([{start, ids}]).sort((a, b) => a.start - b.start);
  const out = [];
  for (const r of all) {
    const last = out[out.length - 1];
    if (last && r.start <= last.start + last.ids.length) {
      const over = last.start + last.ids.length - r.start;
      if (r.ids.length > over) last.ids = last.ids.concat(r.ids.slice(over));
    } else {
      out.push({start: r.start, ids: r.ids.slice()});
    }
  }
  h.ranges = out;
}

/** Every loaded child id of a level, in order (gaps left out). */
function loadedKids(h) {
  if (!h || !h.ranges) return [];
  return h.ranges.length === 1 ? h.ranges[0].ids : [].concat(...h.ranges.map((r) => r.ids));
}

class TraceModel {
  constructor(src, id, summary) {
    this.src = src;
    this.id = id;
    this.summary = summary;
    this.nodes = new Map();
    this.roots = {children: 0, ranges: []};
    this.pending = new Map(); // "parent:offset" -> promise of a page being fetched
  }

  get traceMs() {
    return Math.max(this.summary.duration_ms || 0, 1e-6);
  }

  /** Store a node object of the API and the kids it lists (from child 0). */
  ingest(o) {
    let n = this.nodes.get(o.id);
    if (!n) {
      n = {ranges: null};
      this.nodes.set(o.id, n);
    }
    const ranges = n.ranges;
    Object.assign(n, o);
    delete n.kids;
    n.ranges = ranges;
    if (o.kids) addRange(n, 0, o.kids.map((k) => this.ingest(k).id));
    return n;
  }

  /** The holder of a level: a node, or the roots for null. */
  level(id) {
    return id === null ? this.roots : this.nodes.get(id);
  }

  /** Loaded children of id (null: the roots), in order. */
  kids(id) {
    return loadedKids(this.level(id));
  }

  loaded(id) {
    const h = this.level(id);
    return !!(h && h.ranges && h.ranges.length);
  }

  /** Runs of loaded children and the gaps between them:
   *  [{ids}|{gap: [start, end]}], covering 0..children. */
  runs(id) {
    const h = this.level(id);
    const out = [];
    let at = 0;
    for (const r of h.ranges || []) {
      if (r.start > at) out.push({gap: [at, r.start]});
      out.push({ids: r.ids});
      at = r.start + r.ids.length;
    }
    if (at < h.children) out.push({gap: [at, h.children]});
    return out;
  }

  /** The first answer: roots and a few levels below them. */
  async loadTop() {
    const r = await this.src.tree(this.id, {depth: 4, max_nodes: 3000, limit: KIDS_PAGE});
    this.ingestLevel(null, r);
    this.hotPath = r.hot_path ? {path: r.hot_path, pos: r.hot_pos} : null;
  }

  /** The chain of node ids from a root down to id, asking tphd for the
   *  parents it has not sent yet. */
  async pathTo(id) {
    const out = [];
    for (let cur = id, guard = 0; cur !== null && cur !== undefined && guard < 10000; guard++) {
      let n = this.nodes.get(cur);
      if (!n) n = await this.full(cur);
      out.unshift(cur);
      cur = n.parent;
    }
    return out;
  }

  ingestLevel(id, r) {
    // The roots name the threads drawn under a row of their own.
    if (id === null && r.threads) this.threadGroups = new Map(r.threads.map((g) => [g.thread, g]));
    if (r.self) this.ingest(r.self);
    const ids = r.nodes.map((o) => this.ingest(o).id);
    const h = this.level(id);
    h.children = r.total;
    addRange(h, r.offset || 0, ids);
  }

  /** Fetch count children of id (null: roots) from offset on, two levels deep. */
  loadPage(id, offset, count) {
    const key = (id === null ? 'roots' : id) + ':' + offset;
    if (this.pending.has(key)) return this.pending.get(key);
    const p = this.src.tree(this.id, {node: id === null ? undefined : id, depth: 2, offset,
      limit: count || KIDS_PAGE, max_nodes: 3000})
      .then((r) => this.ingestLevel(id, r))
      .finally(() => this.pending.delete(key));
    this.pending.set(key, p);
    return p;
  }

  isPending(id) {
    const prefix = (id === null ? 'roots' : id) + ':';
    for (const k of this.pending.keys()) if (k.startsWith(prefix)) return true;
    return false;
  }

  /** Everything below id (null: the whole tree), breadth first, up to a
   *  budget: what the flame graph draws. */
  async loadDeep(id, maxNodes) {
    const r = await this.src.tree(this.id, {node: id === null ? undefined : id, depth: -1,
      max_nodes: maxNodes, limit: 5000});
    this.ingestLevel(id, r);
  }

  /** Make sure kid (at position pos among its siblings, when known) is a
   *  loaded child of id (null: the roots). */
  async ensureKid(id, kid, pos) {
    for (let tries = 0; tries < 1000; tries++) {
      if (this.kids(id).includes(kid)) return true;
      const h = this.level(id);
      if (pos !== undefined && pos !== null) {
        if (tries > 0) return false;
        await this.loadPage(id, Math.max(0, pos - 100), KIDS_PAGE);
        continue;
      }
      const gap = this.runs(id).find((r) => r.gap);
      if (!gap || !h) return false;
      await this.loadPage(id, gap.gap[0], 5000);
    }
    return false;
  }

  /** The node with its full text (args, return value, exception). */
  async full(id) {
    const r = await this.src.tree(this.id, {node: id, depth: 0, full: true});
    if (!r.self) throw new ApiError(404, 'not_found', 'no node ' + id);
    this.ingest(r.self);
    return this.nodes.get(id);
  }
}

class TreeView {
  constructor(model, opts) {
    this.model = model;
    this.opts = opts || {};
    this.expanded = new Set();
    this.collapsed = new Set(); // grouping rows (threads, sequences) closed by the user
    this.rows = [];
    this.sel = 0;
    this.query = '';
    this.hits = [];
    this.hitSet = new Set();
    this.hitIdx = -1;
    this.frame = 0;
    // View options (the toolbar): children by 'start' or 'time', calls
    // faster than hideMs hidden, only calls of modules starting with module
    // (and their callers) shown.
    this.sortBy = 'start';
    this.hideMs = 0;
    this.module = '';
    // A range selected in the timeline ({t0, t1} ms): only calls that ran
    // in it (and so their callers) are shown.
    this.range = null;

    this.spacer = el('div', {className: 'tree-spacer'});
    this.scroller = el('div', {className: 'tree-scroll', id: 'tree', tabIndex: 0,
      attrs: {role: 'tree', 'aria-label': 'Call tree'}}, this.spacer);
    this.details = el('aside', {className: 'details', id: 'details', attrs: {'aria-live': 'polite'}});
    // Under 900 px the details are a sheet over the tree, opened by a tap.
    this.sheetClose = el('button', {type: 'button', id: 'details-close', className: 'sheet-close', text: '✕ Close',
      onclick: () => this.root.classList.remove('sheet-open')});
    this.root = el('div', {className: 'tree-pane'}, this.scroller, this.details);

    this.scroller.addEventListener('scroll', () => {
      this.schedule();
      this.scrollLoad();
    });
    this.scrollLoad = debounce(() => this.loadOnScroll(), 120);
    this.scroller.addEventListener('keydown', (e) => this.onKey(e));
    this.scroller.addEventListener('click', (e) => this.onClick(e));
    this.resizeObs = new ResizeObserver(() => this.schedule());
    this.resizeObs.observe(this.scroller);
  }

  destroy() {
    this.resizeObs.disconnect();
    cancelAnimationFrame(this.frame);
  }

  /** Expand the first levels while the tree stays short. */
  autoExpand() {
    const m = this.model;
    let level = m.kids(null).slice();
    let rows = level.length;
    for (let d = 0; d < 4 && level.length; d++) {
      const next = [];
      for (const id of level) {
        const kids = m.kids(id);
        if (!kids.length) continue;
        if (rows + kids.length > 120 && d > 0) continue;
        this.expanded.add(id);
        rows += kids.length;
        next.push(...kids);
      }
      level = next;
    }
    this.flatten();
  }

  /** Open the hot path (the child holding most time, recursively, as tphd
   *  found it) and select its end. */
  async openHotPath() {
    const hp = this.model.hotPath;
    if (!hp || hp.path.length < 2) return false;
    await this.reveal(hp.path, hp.pos);
    return true;
  }

  /** Expand every loaded node (after loading up to budget nodes). */
  async expandAll(budget) {
    try {
      await this.model.loadDeep(null, budget || 20000);
    } catch (e) {
      toast('Cannot load calls: ' + e.message, true);
    }
    for (const [id, n] of this.model.nodes) if (n.children && this.model.loaded(id)) this.expanded.add(id);
    this.flatten();
  }

  /** Expand the loaded nodes above depth (roots are depth 0), close the rest. */
  expandTo(depth) {
    this.expanded.clear();
    for (const [id, n] of this.model.nodes) if (n.children && n.depth < depth && this.model.loaded(id)) this.expanded.add(id);
    this.flatten();
  }

  /** Whether node id passes the view options. */
  visible(id) {
    const n = this.model.nodes.get(id);
    if (this.hideMs && n.total_ms < this.hideMs) return false;
    if (this.range && (n.end_ms < this.range.t0 || n.start_ms > this.range.t1)) return false;
    if (this.module) return this.moduleHit(id);
    return true;
  }

  /** Whether id or a loaded call below it belongs to the module filter. */
  moduleHit(id) {
    if (!this.modMemo) this.modMemo = new Map();
    if (this.modMemo.has(id)) return this.modMemo.get(id);
    const n = this.model.nodes.get(id);
    const m = this.module;
    let hit = n.module === m || n.module.startsWith(m + '.') || n.name.startsWith(m);
    if (!hit) for (const k of this.model.kids(id)) if (this.moduleHit(k)) { hit = true; break; }
    this.modMemo.set(id, hit);
    return hit;
  }

  /** Rows of the expanded tree: nodes, and "more" rows for unloaded runs. */
  flatten() {
    const m = this.model;
    this.modMemo = null;
    const rows = [];
    const stack = [];
    const pushLevel = (parent, depth) => {
      const runs = m.runs(parent);
      for (let k = runs.length - 1; k >= 0; k--) {
        const r = runs[k];
        if (r.gap) {
          stack.push({t: 'more', pid: parent, d: depth, start: r.gap[0], left: r.gap[1] - r.gap[0], last: k === runs.length - 1});
        } else {
          let ids = r.ids;
          if (this.hideMs || this.module || this.range) ids = ids.filter((id) => this.visible(id));
          if (this.sortBy === 'time') ids = ids.slice().sort((a, b) => m.nodes.get(b).total_ms - m.nodes.get(a).total_ms);
          const out = this.groupRows(parent, ids, depth);
          for (let i = out.length - 1; i >= 0; i--) stack.push(out[i]);
        }
      }
    };
    pushLevel(null, 0);
    while (stack.length) {
      const r = stack.pop();
      rows.push(r);
      if (r.t === 'n' && this.expanded.has(r.id) && m.loaded(r.id)) pushLevel(r.id, r.d + 1);
    }
    const selRow = this.rows[this.sel];
    this.rows = rows;
    if (selRow && selRow.t === 'n') {
      const i = rows.findIndex((x) => x.t === 'n' && x.id === selRow.id);
      if (i >= 0) this.sel = i;
    }
    if (this.sel >= rows.length) this.sel = Math.max(0, rows.length - 1);
    this.spacer.style.height = rows.length * ROW_H + 'px';
    this.schedule();
  }

  /** The rows of one run of a level: each id a row, but the roots of a
   *  thread drawn under one row naming it (tphd's "threads"), and the
   *  groups of a folded sequence (a node with seq = L and its next L - 1
   *  siblings) under one "[a, b] ×N" row, one level deeper; a collapsed
   *  grouping row hides them. */
  groupRows(parent, ids, depth) {
    const m = this.model;
    const out = [];
    const threads = parent === null && m.threadGroups ? m.threadGroups : null;
    const byThread = new Map();
    for (let i = 0; i < ids.length; i++) {
      const n = m.nodes.get(ids[i]);
      const g = threads && threads.get(n.thread);
      if (g) {
        let rows = byThread.get(g.thread);
        if (!rows) {
          const key = 't' + g.thread;
          out.push({t: 'grp', kind: 'thread', key, g, d: depth});
          byThread.set(g.thread, rows = []);
          rows.hidden = this.collapsed.has(key);
          out.push(rows);
        }
        if (!rows.hidden) rows.push(ids[i]);
        continue;
      }
      let seq = [];
      if (n.seq && this.sortBy === 'start') {
        for (let k = i + 1; k < ids.length && seq.length < n.seq - 1; k++) {
          const s = m.nodes.get(ids[k]);
          if (s.seq || !s.flags.includes('seq')) break;
          seq.push(ids[k]);
        }
      }
      if (!seq.length) {
        out.push({t: 'n', id: ids[i], d: depth});
        continue;
      }
      const key = 's' + n.id;
      out.push({t: 'grp', kind: 'seq', key, ids: [ids[i]].concat(seq), d: depth});
      if (!this.collapsed.has(key)) for (const id of [ids[i]].concat(seq)) out.push({t: 'n', id, d: depth + 1});
      i += seq.length;
    }
    // A thread's roots follow its row, at the next depth (its sequences
    // grouped in turn).
    const flat = [];
    for (const o of out) {
      if (Array.isArray(o)) flat.push(...this.groupRows(undefined, o, depth + 1));
      else flat.push(o);
    }
    return flat;
  }

  toggleGroup(key) {
    if (this.collapsed.has(key)) this.collapsed.delete(key);
    else this.collapsed.add(key);
    this.flatten();
  }

  /** A grouping row: a thread, or a folded sequence. */
  groupEl(r, row) {
    const m = this.model;
    const tw = el('span', {className: 'tw', text: this.collapsed.has(r.key) ? '▸' : '▾'});
    if (r.kind === 'thread') {
      const g = r.g;
      row.classList.add('grp', 'thread-row');
      append(row, [tw, el('span', {className: 'nm'}, el('span', {className: 'qn', text: 'thread ' + (g.name === null ? String(g.thread) : oneLine(g.name))})),
        el('span', {className: 'cnt', text: plural(g.calls, 'call'), title: 'calls on this thread'}),
        el('span', {className: 'grow'}),
        el('span', {className: 'tm ' + heat(g.total_ms), text: fmtMs(g.total_ms), title: 'its top-level calls, summed'})]);
      return row;
    }
    const ns = r.ids.map((id) => m.nodes.get(id));
    const total = ns.reduce((a, n) => a + n.total_ms, 0);
    const reps = ns[0].count;
    row.classList.add('grp', 'seq-row');
    const names = el('span', {className: 'nm'}, '[');
    ns.forEach((n, k) => {
      if (k) names.appendChild(document.createTextNode(', '));
      names.appendChild(el('span', {className: 'qn'}, highlight(n.name, this.query)));
    });
    names.appendChild(document.createTextNode(']'));
    const parts = [tw, names, el('span', {className: 'cnt', text: '×' + fmtCount(reps), title: reps + ' repetitions of this sequence folded'})];
    if (ns.some((n) => n.flags.includes('calls_mixed'))) parts.push(badge('calls differ', 'warn', 'the repetitions did not all make the same calls'));
    parts.push(el('span', {className: 'grow'}),
      el('span', {className: 'tm ' + heat(total), text: fmtMs(total), title: 'all repetitions; avg ' + fmtMs(total / reps)}));
    append(row, parts);
    return row;
  }

  schedule() {
    cancelAnimationFrame(this.frame);
    this.frame = requestAnimationFrame(() => this.render());
  }

  render() {
    const top = this.scroller.scrollTop, h = this.scroller.clientHeight || 600;
    const first = Math.max(0, Math.floor(top / ROW_H) - 10);
    const last = Math.min(this.rows.length, Math.ceil((top + h) / ROW_H) + 10);
    const frag = document.createDocumentFragment();
    for (let i = first; i < last; i++) frag.appendChild(this.rowEl(this.rows[i], i));
    clear(this.spacer).appendChild(frag);
  }

  rowEl(r, i) {
    const m = this.model;
    const row = el('div', {className: 'row' + (i === this.sel ? ' sel' : ''), dataset: {i: String(i)},
      attrs: {role: 'treeitem', 'aria-level': String(r.d + 1)}});
    row.style.top = i * ROW_H + 'px';
    row.style.paddingLeft = 6 + r.d * 16 + 'px';
    if (r.t === 'grp') return this.groupEl(r, row);
    if (r.t === 'more') {
      row.classList.add('more');
      const calls = fmtCount(r.left) + ' ' + (r.left === 1 ? 'call' : 'calls');
      append(row, [el('span', {className: 'tw', text: m.isPending(r.pid) ? '…' : '+'}),
        el('span', {className: 'more-text', text: (r.last ? calls.replace(' ', ' more ') : calls + ' not loaded') + ' — load'})]);
      return row;
    }
    const n = m.nodes.get(r.id);
    const open = this.expanded.has(r.id);
    if (open) row.setAttribute('aria-expanded', 'true');
    else if (n.children) row.setAttribute('aria-expanded', 'false');
    if (this.hitSet.has(r.id)) row.classList.add('hit');
    if (this.hits[this.hitIdx] && this.hits[this.hitIdx].id === r.id) row.classList.add('cur-hit');
    if (n.exc && !n.exc.caught) row.classList.add('raised');
    const q = this.query;
    const tw = n.children ? (m.isPending(r.id) ? '…' : open ? '▾' : '▸') : '';
    const dot = n.module ? n.name.length - n.qualname.length : 0;
    const name = el('span', {className: 'nm'});
    if (dot > 1) name.appendChild(el('span', {className: 'mod'}, highlight(n.name.slice(0, dot), q)));
    name.appendChild(el('span', {className: 'qn'}, highlight(n.qualname, q)));
    const parts = [el('span', {className: 'tw', text: tw}), name];
    if (n.args !== null && n.args !== undefined)
      parts.push(el('span', {className: 'ar', title: n.args.length > 60 ? oneLine(n.args).slice(0, 500) : ''}, '(', highlight(excerpt(oneLine(n.args), q), q), ')'));
    if (n.ret !== null && n.ret !== undefined)
      parts.push(el('span', {className: 'rt'}, ' → ', highlight(excerpt(oneLine(n.ret), q), q)));
    if (n.exc)
      parts.push(el('span', {className: n.exc.caught ? 'ex caught' : 'ex'},
        n.exc.caught ? ' caught ' : ' !! ', highlight(oneLine(n.exc.type + (n.exc.msg ? ': ' + n.exc.msg : '')), q)));
    if (n.count > 1) parts.push(el('span', {className: 'cnt', text: '×' + fmtCount(n.count), title: n.count + ' consecutive calls folded'}));
    if (n.flags.includes('calls_mixed')) parts.push(badge('calls differ', 'warn', 'the folded calls did not all make the same calls'));
    if (n.flags.includes('spawned')) parts.push(el('span', {className: 'task', text: '(task)', title: 'an asyncio task, shown under the call that created it'}));
    if (n.flags.includes('gen')) parts.push(badge('gen', 'info', 'generator or coroutine: the time is its active time; span ' + fmtMs(spanMs(n))));
    if (n.flags.includes('open')) parts.push(badge('open', 'warn', 'still running when the trace stopped'));
    const share = Math.min(100, (n.total_ms / m.traceMs) * 100);
    const bar = el('span', {className: 'bar', title: share.toFixed(1) + '% of the trace'}, el('i'));
    bar.firstChild.style.width = share.toFixed(2) + '%';
    parts.push(el('span', {className: 'grow'}), bar,
      el('span', {className: 'tm ' + heat(n.total_ms), text: fmtMs(n.total_ms)}),
      el('span', {className: 'sf', text: 'self ' + fmtMs(n.self_ms)}));
    append(row, parts);
    return row;
  }

  async toggle(id, want) {
    const m = this.model;
    const n = m.nodes.get(id);
    if (!n || !n.children) return;
    const open = want === undefined ? !this.expanded.has(id) : want;
    if (!open) {
      this.expanded.delete(id);
      this.flatten();
      return;
    }
    this.expanded.add(id);
    if (!m.loaded(id)) {
      this.schedule();
      try {
        await m.loadPage(id, 0);
      } catch (e) {
        this.expanded.delete(id);
        toast('Cannot load calls: ' + e.message, true);
      }
    }
    this.flatten();
  }

  async loadMoreRow(r) {
    try {
      this.schedule();
      await this.model.loadPage(r.pid, r.start, Math.min(KIDS_PAGE, r.left));
    } catch (e) {
      toast('Cannot load calls: ' + e.message, true);
    }
    this.flatten();
    // The selected "more" row became the first call it loaded: show that one.
    const now = this.rows[this.sel];
    if (now && now.t === 'n' && now.id !== this.detailId) this.showDetails(now.id);
  }

  /** Load more when the last rows come into view (scroll instead of a click). */
  loadOnScroll() {
    const top = this.scroller.scrollTop, h = this.scroller.clientHeight || 600;
    const last = Math.min(this.rows.length, Math.ceil((top + h) / ROW_H) + 1);
    for (let i = Math.max(0, last - 40); i < last; i++) {
      const r = this.rows[i];
      if (r && r.t === 'more' && r.last && !this.model.isPending(r.pid)) {
        this.loadMoreRow(r);
        return;
      }
    }
  }

  selectId(id, scroll) {
    const i = this.rows.findIndex((r) => r.t === 'n' && r.id === id);
    if (i >= 0) this.select(i, scroll);
    return i >= 0;
  }

  select(i, scroll) {
    if (!this.rows.length) return;
    this.sel = Math.max(0, Math.min(this.rows.length - 1, i));
    if (scroll !== false) this.scrollTo(this.sel);
    this.schedule();
    const r = this.rows[this.sel];
    if (r && r.t === 'n') {
      this.showDetails(r.id);
      if (this.opts.onSelect) this.opts.onSelect(r.id);
    }
  }

  scrollTo(i) {
    const top = i * ROW_H, h = this.scroller.clientHeight || 600;
    if (top < this.scroller.scrollTop) this.scroller.scrollTop = top;
    else if (top + ROW_H > this.scroller.scrollTop + h) this.scroller.scrollTop = top + ROW_H - h + ROW_H;
  }

  parentRow(i) {
    const d = this.rows[i].d;
    for (let k = i - 1; k >= 0; k--) if (this.rows[k].d < d) return k;
    return -1;
  }

  onClick(e) {
    const rowNode = e.target.closest('.row');
    if (!rowNode) return;
    const i = Number(rowNode.dataset.i);
    const r = this.rows[i];
    this.select(i, false);
    if (r.t === 'n') this.root.classList.add('sheet-open');
    if (r.t === 'more') this.loadMoreRow(r);
    else if (r.t === 'grp') this.toggleGroup(r.key);
    else if (e.target.classList.contains('tw') || e.detail === 2) this.toggle(r.id);
  }

  onKey(e) {
    if (e.altKey || e.ctrlKey || e.metaKey) return;
    const r = this.rows[this.sel];
    const page = Math.max(1, Math.floor((this.scroller.clientHeight || 600) / ROW_H) - 1);
    let handled = true;
    switch (e.key) {
      case 'ArrowDown': this.select(this.sel + 1); break;
      case 'ArrowUp': this.select(this.sel - 1); break;
      case 'PageDown': this.select(this.sel + page); break;
      case 'PageUp': this.select(this.sel - page); break;
      case 'Home': this.select(0); break;
      case 'End': this.select(this.rows.length - 1); break;
      case 'ArrowRight':
        if (r && r.t === 'n') {
          const n = this.model.nodes.get(r.id);
          if (n.children && !this.expanded.has(r.id)) this.toggle(r.id, true);
          else if (n.children) this.select(this.sel + 1);
        }
        break;
      case 'ArrowLeft':
        if (r && r.t === 'n' && this.expanded.has(r.id)) this.toggle(r.id, false);
        else {
          const p = this.parentRow(this.sel);
          if (p >= 0) this.select(p);
        }
        break;
      case 'Enter':
      case ' ':
        if (r && r.t === 'more') this.loadMoreRow(r);
        else if (r && r.t === 'grp') this.toggleGroup(r.key);
        else if (r) this.toggle(r.id);
        break;
      case 'n': this.nextHit(1); break;
      case 'N': this.nextHit(-1); break;
      default: handled = false;
    }
    if (handled) e.preventDefault();
  }

  // ---- Details ----------------------------------------------------------

  async showDetails(id) {
    const n = this.model.nodes.get(id);
    this.detailId = id;
    this.fillDetails(n);
    if (n.cut) {
      try {
        const full = await this.model.full(id);
        if (this.detailId === id) this.fillDetails(full);
      } catch (e) {
        // Keep the cut text; the row already says what it can.
      }
    }
  }

  fillDetails(n) {
    const d = clear(this.details);
    const loc = n.file ? n.file + (n.line ? ':' + n.line : '') : 'unknown location';
    const gen = n.flags.includes('gen');
    const facts = [
      ['Calls', n.count > 1 ? fmtCount(n.count) + ' (folded)' : '1'],
      // A generator's or coroutine's time is the time it ran; its span
      // (first resume to end) also counts the time it waited.
      gen ? ['Active', fmtMs(n.total_ms)] : ['Total', fmtMs(n.total_ms)],
    ];
    if (gen) facts.push(['Span', fmtMs(spanMs(n))]);
    facts.push(['Self', fmtMs(n.self_ms)]);
    if (n.count > 1) facts.push(['Min / avg / max', fmtMs(n.min_ms) + ' / ' + fmtMs(n.total_ms / n.count) + ' / ' + fmtMs(n.max_ms)]);
    facts.push(['Started at', '+' + fmtMs(n.start_ms)], ['Depth', String(n.depth)], ['Children', fmtCount(n.children)]);
    if (n.thread) facts.push(['Thread', String(n.thread)]);
    if (n.nexc) facts.push(['Raised', fmtCount(n.nexc) + ' of ' + fmtCount(n.count)]);
    if (n.suspends) facts.push(['Suspended', plural(n.suspends, 'time')]);
    // track_memory: traced memory at the end less at the start (a folded
    // group's calls summed); absent when not measured.
    if (typeof n.memory_delta_kb === 'number') facts.push(['Memory', fmtKb(n.memory_delta_kb) + (n.count > 1 ? ' (sum)' : '')]);
    if (n.flags.includes('spawned')) facts.push(['Kind', 'asyncio task (under its creator)']);
    append(d, [
      this.sheetClose,
      el('h3', {className: 'mono', text: n.name}),
      this.locLine(n, loc),
      el('dl', {className: 'facts'}, facts.map(([k, v]) => [el('dt', {text: k}), el('dd', {text: v})])),
    ]);
    const block = (title, text, cls, note) => {
      if (text === null || text === undefined || text === '') return;
      append(d, [el('h4', {text: title}), el('pre', {className: 'text ' + (cls || ''), text}), note ? el('p', {className: 'muted small', text: note}) : null]);
    };
    const cutNote = n.cut ? 'Shortened; loading the full text…' : null;
    block('Arguments', n.args, 'args', n.flags.includes('args_mixed') ? 'The folded calls had different arguments; these are the first call\'s.' : cutNote);
    block('Return value', n.ret, 'ret', n.flags.includes('ret_mixed') ? 'The folded calls returned different values; this is the first\'s.' : null);
    if (n.exc) block(n.exc.caught ? 'Exception (caught inside)' : 'Exception', n.exc.type + (n.exc.msg ? ': ' + n.exc.msg : ''), 'exc');
    if (n.count > 1 && this.model.src.members) d.appendChild(this.groupCalls(n));
    if (this.opts.onFocusFlame) {
      d.appendChild(el('button', {type: 'button', className: 'link', text: 'Show in flame graph',
        onclick: () => this.opts.onFocusFlame(n.id)}));
    }
  }

  /** The call's file:line; a button that opens (and closes) its source
   *  below it when the trace can have some (opts.onSource). */
  locLine(n, loc) {
    if (!this.opts.onSource || n.func === undefined || !n.file) {
      return el('div', {className: 'loc mono', text: loc, title: 'Source location'});
    }
    const box = el('div', {className: 'source-box'});
    const btn = el('button', {type: 'button', className: 'link loc mono', id: 'source-link', text: loc,
      title: 'Show the source', attrs: {'aria-expanded': 'false'}});
    btn.addEventListener('click', async () => {
      if (box.firstChild) {
        clear(box);
        btn.setAttribute('aria-expanded', 'false');
        return;
      }
      btn.setAttribute('aria-expanded', 'true');
      box.appendChild(el('p', {className: 'muted small', text: 'Loading the source…'}));
      let view;
      try {
        view = await this.opts.onSource(n);
      } catch (e) {
        view = errorBox(e, 'Cannot load the source');
      }
      if (this.detailId === n.id && btn.getAttribute('aria-expanded') === 'true') clear(box).appendChild(view);
    });
    return el('div', null, btn, box);
  }

  /** A folded node unfolded into its calls, a page at a time: each call's
   *  arguments, return value or exception and time; those the search
   *  matches are marked. */
  groupCalls(n) {
    const list = el('ol', {className: 'group-calls mono', id: 'group-calls'});
    const more = el('button', {type: 'button', className: 'link', id: 'group-more', hidden: true});
    const q = (this.query || '').toLowerCase();
    let offset = 0;
    const page = async () => {
      more.disabled = true;
      try {
        const r = await this.model.src.members(this.model.id, n.id, offset, GROUP_PAGE);
        if (this.detailId !== n.id) return;
        if (r.left_out) {
          list.replaceWith(el('p', {className: 'muted small', id: 'group-left-out',
            text: 'This file does not hold these calls: a saved report holds the calls of folded groups up to ' +
              fmtCount(r.max_members) + ' in all (tphd lists them all).'}));
        }
        for (const c of r.calls) {
          const outcome = c.exc ? (c.exc.caught ? ' (caught ' : ' !! ') + c.exc.type + (c.exc.msg ? ': ' + oneLine(c.exc.msg) : '') + (c.exc.caught ? ')' : '')
            : c.ret !== null ? ' → ' + c.ret : '';
          const text = '(' + (c.args || '') + ')' + outcome;
          const hit = q && text.toLowerCase().includes(q);
          list.appendChild(el('li', {className: hit ? 'hit' : ''},
            el('span', {className: 'gc-text', text, title: text}), el('span', {className: 'gc-time', text: fmtMs(c.total_ms)})));
        }
        offset += r.calls.length;
        more.hidden = offset >= r.total;
        more.textContent = 'Show ' + fmtCount(Math.min(GROUP_PAGE, r.total - offset)) + ' more of ' + fmtCount(r.total - offset);
      } catch (e) {
        toast('Cannot load the calls: ' + e.message, true);
      }
      more.disabled = false;
    };
    more.addEventListener('click', page);
    const src = this.model.src;
    if (src.membersLoaded && !src.membersLoaded()) {
      // A report file: its groups' calls are decoded when first asked for.
      more.hidden = false;
      more.textContent = 'Show the ' + fmtCount(n.count) + ' calls';
    } else {
      page();
    }
    return el('section', {className: 'group'}, el('h4', {text: 'The ' + fmtCount(n.count) + ' calls'}), list, more);
  }

  // ---- Search -----------------------------------------------------------

  async search(q) {
    this.query = q;
    this.hits = [];
    this.hitSet = new Set();
    this.hitIdx = -1;
    if (!q) {
      this.schedule();
      return {total: 0};
    }
    const r = await this.model.src.search(this.model.id, q, 2000);
    if (this.query !== q) return r;
    this.hits = r.matches;
    this.hitSet = new Set(r.matches.map((m) => m.id));
    if (this.hits.length) await this.gotoHit(0);
    else this.schedule();
    return r;
  }

  async nextHit(step) {
    if (!this.hits.length) return;
    const n = this.hits.length;
    await this.gotoHit(((this.hitIdx + step) % n + n) % n);
  }

  async gotoHit(i) {
    this.hitIdx = i;
    await this.reveal(this.hits[i].path, this.hits[i].pos);
    if (this.opts.onHit) this.opts.onHit(i, this.hits.length);
  }

  /** Load and expand the ancestors of path's last node, then select it.
   *  pos[k], when given, is path[k]'s position among its siblings. */
  async reveal(path, pos) {
    const m = this.model;
    let parent = null;
    for (let k = 0; k < path.length; k++) {
      const id = path[k];
      if (!(await m.ensureKid(parent, id, pos ? pos[k] : undefined))) break;
      if (parent !== null) this.expanded.add(parent);
      parent = id;
    }
    this.flatten();
    this.selectId(path[path.length - 1], true);
    const i = this.sel;
    const h = this.scroller.clientHeight || 600;
    this.scroller.scrollTop = Math.max(0, i * ROW_H - h / 3);
  }

  centerSel() {
    const h = this.scroller.clientHeight || 600;
    const top = this.sel * ROW_H;
    if (top < this.scroller.scrollTop || top + ROW_H > this.scroller.scrollTop + h) this.scroller.scrollTop = Math.max(0, top - h / 3);
  }

  focus() {
    this.scroller.focus({preventScroll: true});
  }
}
