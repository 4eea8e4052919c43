// tree.js: the call tree. TraceModel holds the nodes fetched so far (a 1M-call
// trace arrives a subtree at a time); TreeView shows the expanded part as
// virtualised rows (only the rows in view exist in the DOM), with keyboard
// navigation, search hits and a details panel.

const ROW_H = 22;
const KIDS_PAGE = 500;

class TraceModel {
  constructor(src, id, summary) {
    this.src = src;
    this.id = id;
    this.summary = summary;
    this.nodes = new Map();
    this.roots = {kidIds: [], children: 0, loaded: false};
    this.pending = new Map(); // parent key -> promise of a page being fetched
  }

  get traceMs() {
    return Math.max(this.summary.duration_ms || 0, 1e-6);
  }

  /** Store a node object of the API (and its listed kids); keeps kids
   *  already loaded when the new object lists fewer. */
  ingest(o) {
    let n = this.nodes.get(o.id);
    if (!n) {
      n = {kidIds: null};
      this.nodes.set(o.id, n);
    }
    const kidIds = n.kidIds;
    Object.assign(n, o);
    delete n.kids;
    n.kidIds = kidIds;
    if (o.kids) {
      const ids = o.kids.map((k) => this.ingest(k).id);
      if (!n.kidIds || ids.length >= n.kidIds.length) n.kidIds = ids;
    }
    return n;
  }

  /** The holder of a level: a node, or the roots for null. */
  level(id) {
    return id === null ? this.roots : this.nodes.get(id);
  }

  hasMore(id) {
    const h = this.level(id);
    if (id === null) return this.roots.kidIds.length < this.roots.children;
    return h.children > 0 && (!h.kidIds || h.kidIds.length < h.children);
  }

  /** The first answer: roots and a few levels below them. */
  async loadTop() {
    const r = await this.src.tree(this.id, {depth: 4, max_nodes: 3000, limit: KIDS_PAGE});
    this.roots.kidIds = r.nodes.map((o) => this.ingest(o).id);
    this.roots.children = r.total;
    this.roots.loaded = true;
  }

  /** Fetch the next page of children of id (null: roots), two levels deep. */
  loadMore(id, pageSize) {
    const key = id === null ? 'roots' : id;
    if (this.pending.has(key)) return this.pending.get(key);
    const h = this.level(id);
    const offset = h.kidIds ? h.kidIds.length : 0;
    const p = this.src.tree(this.id, {node: id === null ? undefined : id, depth: 2, offset,
      limit: pageSize || KIDS_PAGE, max_nodes: 3000})
      .then((r) => {
        if (r.self) this.ingest(r.self);
        const ids = r.nodes.map((o) => this.ingest(o).id);
        const cur = h.kidIds || [];
        if (cur.length === offset) h.kidIds = cur.concat(ids);
        if (id === null) this.roots.children = r.total;
        else h.children = r.total;
      })
      .finally(() => this.pending.delete(key));
    this.pending.set(key, p);
    return p;
  }

  /** Everything below id (null: the whole tree), breadth first, up to a
   *  budget: what the flame graph draws. */
  async loadDeep(id, maxNodes) {
    const r = await this.src.tree(this.id, {node: id === null ? undefined : id, depth: -1,
      max_nodes: maxNodes, limit: 5000});
    if (r.self) this.ingest(r.self);
    const ids = r.nodes.map((o) => this.ingest(o).id);
    const h = this.level(id);
    if (!h.kidIds || ids.length > h.kidIds.length) h.kidIds = ids;
    if (id === null) this.roots.children = r.total;
  }

  /** Make sure kid is among the loaded children of id (null: roots). */
  async ensureKid(id, kid) {
    for (;;) {
      const h = this.level(id);
      if (h.kidIds && h.kidIds.includes(kid)) return true;
      if (!this.hasMore(id)) return false;
      await this.loadMore(id, 5000);
    }
  }

  /** The node with its full text (args, return value, exception). */
  async full(id) {
    const r = await this.src.tree(this.id, {node: id, depth: 0, full: true});
    if (r.self) this.ingest(r.self);
    return this.nodes.get(id);
  }
}

class TreeView {
  constructor(model, opts) {
    this.model = model;
    this.opts = opts || {};
    this.expanded = new Set();
    this.rows = [];
    this.sel = 0;
    this.query = '';
    this.hits = [];
    this.hitSet = new Set();
    this.hitIdx = -1;
    this.frame = 0;

    this.spacer = el('div', {className: 'tree-spacer'});
    this.scroller = el('div', {className: 'tree-scroll', id: 'tree', tabIndex: 0,
      attrs: {role: 'tree', 'aria-label': 'Call tree'}}, this.spacer);
    this.details = el('aside', {className: 'details', id: 'details', attrs: {'aria-live': 'polite'}});
    this.root = el('div', {className: 'tree-pane'}, this.scroller, this.details);

    this.scroller.addEventListener('scroll', () => this.schedule());
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
    let level = this.model.roots.kidIds.slice();
    let rows = level.length;
    for (let d = 0; d < 4 && level.length; d++) {
      const next = [];
      for (const id of level) {
        const n = this.model.nodes.get(id);
        if (!n.kidIds || !n.kidIds.length) continue;
        if (rows + n.kidIds.length > 120 && d > 0) continue;
        this.expanded.add(id);
        rows += n.kidIds.length;
        next.push(...n.kidIds);
      }
      level = next;
    }
    this.flatten();
  }

  /** Rows of the expanded tree: nodes, and "more" rows for unloaded pages. */
  flatten() {
    const m = this.model;
    const rows = [];
    const stack = [];
    const pushLevel = (parent, ids, depth) => {
      if (m.hasMore(parent)) {
        const h = m.level(parent);
        const total = parent === null ? m.roots.children : h.children;
        stack.push({t: 'more', pid: parent, d: depth, left: total - (h.kidIds ? h.kidIds.length : 0)});
      }
      for (let i = ids.length - 1; i >= 0; i--) stack.push({t: 'n', id: ids[i], d: depth});
    };
    pushLevel(null, m.roots.kidIds, 0);
    while (stack.length) {
      const r = stack.pop();
      rows.push(r);
      if (r.t === 'n' && this.expanded.has(r.id)) {
        const n = m.nodes.get(r.id);
        pushLevel(r.id, n.kidIds || [], r.d + 1);
      }
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
    if (r.t === 'more') {
      row.classList.add('more');
      append(row, [el('span', {className: 'tw', text: m.pending.has(r.pid === null ? 'roots' : r.pid) ? '…' : '+'}),
        el('span', {className: 'more-text', text: fmtCount(r.left) + ' more ' + (r.left === 1 ? 'call' : 'calls') + ' — load'})]);
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
    const tw = n.children ? (m.pending.has(r.id) ? '…' : open ? '▾' : '▸') : '';
    const dot = n.module ? n.name.length - n.qualname.length : 0;
    const name = el('span', {className: 'nm'});
    if (dot > 1) name.appendChild(el('span', {className: 'mod'}, highlight(n.name.slice(0, dot), q)));
    name.appendChild(el('span', {className: 'qn'}, highlight(n.qualname, q)));
    const parts = [el('span', {className: 'tw', text: tw}), name];
    if (n.args !== null && n.args !== undefined)
      parts.push(el('span', {className: 'ar'}, '(', highlight(n.args, q), ')'));
    if (n.ret !== null && n.ret !== undefined)
      parts.push(el('span', {className: 'rt'}, ' → ', highlight(n.ret, q)));
    if (n.exc)
      parts.push(el('span', {className: n.exc.caught ? 'ex caught' : 'ex'},
        n.exc.caught ? ' caught ' : ' !! ', highlight(n.exc.type + (n.exc.msg ? ': ' + n.exc.msg : ''), q)));
    if (n.count > 1) parts.push(el('span', {className: 'cnt', text: '×' + fmtCount(n.count), title: n.count + ' consecutive calls folded'}));
    if (n.flags.includes('gen')) parts.push(badge('gen', 'info', 'generator or coroutine'));
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
    if (!n.kidIds) {
      this.schedule();
      try {
        await m.loadMore(id);
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
      await this.model.loadMore(r.pid);
    } catch (e) {
      toast('Cannot load calls: ' + e.message, true);
    }
    this.flatten();
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
    if (r && r.t === 'n') this.showDetails(r.id);
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
    if (r.t === 'more') this.loadMoreRow(r);
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
    const facts = [
      ['Calls', n.count > 1 ? fmtCount(n.count) + ' (folded)' : '1'],
      ['Total', fmtMs(n.total_ms)],
      ['Self', fmtMs(n.self_ms)],
    ];
    if (n.count > 1) facts.push(['Min / avg / max', fmtMs(n.min_ms) + ' / ' + fmtMs(n.total_ms / n.count) + ' / ' + fmtMs(n.max_ms)]);
    facts.push(['Started at', '+' + fmtMs(n.start_ms)], ['Depth', String(n.depth)], ['Children', fmtCount(n.children)]);
    if (n.thread) facts.push(['Thread', String(n.thread)]);
    if (n.nexc) facts.push(['Raised', fmtCount(n.nexc) + ' of ' + fmtCount(n.count)]);
    if (n.suspends) facts.push(['Suspended', fmtCount(n.suspends) + ' times']);
    append(d, [
      el('h3', {className: 'mono', text: n.name}),
      el('div', {className: 'loc mono', text: loc, title: 'Source location'}),
      el('dl', {className: 'facts'}, facts.map(([k, v]) => [el('dt', {text: k}), el('dd', {text: v})])),
    ]);
    const block = (title, text, cls, note) => {
      if (text === null || text === undefined) return;
      append(d, [el('h4', {text: title}), el('pre', {className: 'text ' + (cls || ''), text}), note ? el('p', {className: 'muted small', text: note}) : null]);
    };
    const cutNote = n.cut ? 'Shortened; loading the full text…' : null;
    block('Arguments', n.args, 'args', n.flags.includes('args_mixed') ? 'The folded calls had different arguments; these are the first call\'s.' : cutNote);
    block('Return value', n.ret, 'ret', n.flags.includes('ret_mixed') ? 'The folded calls returned different values; this is the first\'s.' : null);
    if (n.exc) block(n.exc.caught ? 'Exception (caught inside)' : 'Exception', n.exc.type + (n.exc.msg ? ': ' + n.exc.msg : ''), 'exc');
    if (this.opts.onFocusFlame) {
      d.appendChild(el('button', {type: 'button', className: 'link', text: 'Show in flame graph',
        onclick: () => this.opts.onFocusFlame(n.id)}));
    }
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
    await this.reveal(this.hits[i].path);
    if (this.opts.onHit) this.opts.onHit(i, this.hits.length);
  }

  /** Load and expand the ancestors of path's last node, then select it. */
  async reveal(path) {
    const m = this.model;
    let parent = null;
    for (const id of path) {
      if (!(await m.ensureKid(parent, id))) break;
      if (parent !== null) this.expanded.add(parent);
      parent = id;
    }
    this.flatten();
    this.selectId(path[path.length - 1], true);
    const i = this.sel;
    const h = this.scroller.clientHeight || 600;
    this.scroller.scrollTop = Math.max(0, i * ROW_H - h / 3);
  }

  focus() {
    this.scroller.focus({preventScroll: true});
  }
}
