// flame.js: an icicle graph on a canvas, in three views. "Time order": each
// call a bar as wide as its (active) total time, its callees below it, left
// to right in call order. "Merged" (speedscope's left heavy): identical
// stacks merged into one bar, heaviest first. "Sandwich": one function, its
// callers above it and its callees below, each merged. Clicking a bar zooms
// into it (fetching what lies below when it was not loaded yet); the wheel
// zooms around the pointer. Calls too narrow to draw are merged into one
// grey block per run, so a node with thousands of tiny children never
// looks empty. Text is drawn on the canvas, so trace text never becomes
// markup.

const FLAME_ROW = 20;
const FLAME_BUDGET = 20000;
const FLAME_MIN_W = 0.5; // px: narrower bars are merged into a block

/** "hsl(h, s%, l%)" as [r, g, b] 0..255. */
function hslRgb(h, s, l) {
  s /= 100;
  l /= 100;
  const k = (n) => (n + h / 30) % 12;
  const a = s * Math.min(l, 1 - l);
  const f = (n) => l - a * Math.max(-1, Math.min(k(n) - 3, Math.min(9 - k(n), 1)));
  return [f(0), f(8), f(4)].map((v) => Math.round(v * 255));
}

function luminance([r, g, b]) {
  const f = (c) => {
    c /= 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  };
  return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
}

function contrastRatio(a, b) {
  const x = luminance(a), y = luminance(b);
  return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05);
}

const FLAME_DARK_TEXT = [17, 20, 24];
const FLAME_LIGHT_TEXT = [242, 244, 247];

class FlameView {
  constructor(model, opts) {
    this.model = model;
    this.opts = opts || {};
    this.focus = null; // node id at full width, or null for the whole trace
    this.mode = ['time', 'merged', 'sandwich'].includes(this.opts.mode) ? this.opts.mode : 'time';
    this.fn = this.opts.fn || '';
    this.colorBy = this.opts.colorBy === 'self' ? 'self' : 'module';
    this.view = {x0: 0, x1: 1}; // wheel zoom: the visible fraction
    this.rects = [];   // per row: [{x, w, id|null, crumb, agg, label, n}] sorted by x
    this.loaded = new Set();
    this.sandwichNames = {callers: [], callees: []};
    this.minContrast = Infinity;
    this.canvas = el('canvas', {className: 'flame-canvas', id: 'flame-canvas'});
    this.tip = el('div', {className: 'flame-tip', hidden: true});
    this.crumb = el('div', {className: 'flame-bar'});
    const modeBtn = (k, label) => el('button', {type: 'button', id: 'flame-mode-' + k, className: 'seg', text: label,
      onclick: () => this.setMode(k)});
    this.modeBtns = {time: modeBtn('time', 'Time order'), merged: modeBtn('merged', 'Merged'), sandwich: modeBtn('sandwich', 'Sandwich')};
    this.fnIn = el('input', {type: 'search', id: 'flame-fn', className: 'filter narrow', placeholder: 'function', value: this.fn,
      attrs: {'aria-label': 'Function for the sandwich view', list: 'flame-fns'}});
    this.fnIn.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') {
        this.fn = this.fnIn.value.trim();
        this.show();
      }
    });
    this.colorSel = el('select', {id: 'flame-color', attrs: {'aria-label': 'Colour by'}},
      el('option', {value: 'module', text: 'colour: module'}), el('option', {value: 'self', text: 'colour: self time'}));
    this.colorSel.value = this.colorBy;
    this.colorSel.addEventListener('change', () => {
      this.colorBy = this.colorSel.value;
      this.state();
      this.draw();
    });
    this.tools = el('div', {className: 'toolbar flame-tools scroll-x'}, el('span', {className: 'segs'}, Object.values(this.modeBtns)),
      this.fnIn, this.colorSel);
    this.wrap = el('div', {className: 'flame-wrap'}, this.canvas, this.tip);
    this.root = el('div', {className: 'flame-pane'}, this.tools, this.crumb, this.wrap);
    this.canvas.addEventListener('mousemove', (e) => this.onMove(e));
    this.canvas.addEventListener('mouseleave', () => { this.tip.hidden = true; });
    this.canvas.addEventListener('click', (e) => this.onClick(e));
    this.canvas.addEventListener('wheel', (e) => this.onWheel(e), {passive: false});
    this.resizeObs = new ResizeObserver(() => this.draw());
    this.resizeObs.observe(this.wrap);
    // Hooks the browser tests read the canvas through (it has no DOM).
    window.tpFlameZoom = (name) => {
      for (const n of this.model.nodes.values()) if (n.name === name) return this.show(n.id);
      return null;
    };
    window.tpFlameContrast = () => this.minContrast;
    window.tpFlameRow = (r) => (this.rects[r] || []).filter((b) => !b.agg)
      .map((b) => (b.group ? b.group.name : b.id !== null ? this.model.nodes.get(b.id).name : b.label));
    window.tpFlameLabels = (r) => (this.rects[r] || []).filter((b) => !b.agg).map((b) => b.label);
    window.tpFlameSandwich = () => this.sandwichNames;
    window.tpFlameDrawn = () => this.drawnMode;
    this.syncTools();
  }

  destroy() {
    this.resizeObs.disconnect();
  }

  state() {
    if (this.opts.onState) {
      this.opts.onState({flame: this.mode === 'time' ? null : this.mode, zoom: this.focus,
        fn: this.mode === 'sandwich' ? this.fn : null, color: this.colorBy === 'module' ? null : this.colorBy});
    }
  }

  syncTools() {
    for (const [k, btn] of Object.entries(this.modeBtns)) {
      btn.classList.toggle('on', k === this.mode);
      btn.setAttribute('aria-pressed', String(k === this.mode));
    }
    this.fnIn.hidden = this.mode !== 'sandwich';
  }

  async setMode(k) {
    this.mode = k;
    this.view = {x0: 0, x1: 1};
    if (k !== 'time') this.focus = null;
    this.syncTools();
    this.state();
    await this.show(this.focus);
  }

  async show(focus) {
    if (focus !== undefined && focus !== this.focus) {
      this.focus = focus;
      this.view = {x0: 0, x1: 1};
    }
    // What was under the pointer is not what will be: a new tooltip waits
    // for the next move.
    this.tip.hidden = true;
    const key = this.mode !== 'time' || this.focus === null ? 'all' : this.focus;
    if (this.mode !== 'time' && this.fromServer()) {
      await this.fetchMerged();
    } else if (!this.loaded.has(key)) {
      this.loaded.add(key);
      try {
        await this.model.loadDeep(key === 'all' ? null : this.focus, FLAME_BUDGET);
      } catch (e) {
        toast('Cannot load the flame graph: ' + e.message, true);
      }
    }
    this.state();
    this.draw();
  }

  /** Whether the merged and sandwich views come from the source (tphd, or
   *  a saved report's whole packed tree): the trace is larger than what the
   *  page loads, and no timeline range narrows it (the source merges the
   *  whole trace; a range is merged from loaded calls). */
  fromServer() {
    const s = this.model.src;
    return !!(s && s.flame && (this.model.summary.calls || 0) > FLAME_BUDGET && !(this.opts.range && this.opts.range()));
  }

  /** tphd's merged flame graph (or the sandwich of this.fn), kept until the
   *  view or the function changes. */
  async fetchMerged() {
    const key = this.srvKey();
    if (this.srvReady() || (this.mode === 'sandwich' && !this.fn)) return;
    const seq = (this.srvSeq = (this.srvSeq || 0) + 1);
    try {
      const data = await this.model.src.flame(this.model.id, this.mode === 'merged' ? {} : {fn: this.fn});
      if (seq === this.srvSeq) this.srv = {key, data};
    } catch (e) {
      toast('Cannot load the flame graph: ' + e.message, true);
    }
  }

  srvKey() {
    return this.mode === 'merged' ? 'merged' : 'sandwich:' + this.fn;
  }

  /** Whether tphd's answer for the current view is here. */
  srvReady() {
    return !!(this.srv && this.srv.key === this.srvKey());
  }

  /** tphd's groups as the merged layout's groups. */
  static serverGroups(list) {
    return (list || []).map((g) => ({name: g.function, module: g.module, ms: g.total_ms, self: g.self_ms, count: g.count,
      nodes: [], node: null, kids: g.kids}));
  }

  static hue(s) {
    let h = 0;
    for (let i = 0; i < s.length; i++) h = (h * 31 + s.charCodeAt(i)) >>> 0;
    return h % 360;
  }

  /** The chain from a root down to id. */
  ancestors(id) {
    const out = [];
    for (let n = this.model.nodes.get(id); n; n = n.parent === null ? null : this.model.nodes.get(n.parent)) out.unshift(n.id);
    return out;
  }

  /** Lay out kids (objects with ms) from x across w, merging runs of bars
   *  narrower than FLAME_MIN_W into one block. scale: px per ms. */
  static place(kids, x, scale, row, add, next) {
    let cx = x, aggX = -1, aggW = 0, aggN = 0, aggMs = 0;
    const flush = () => {
      if (aggN) add(row, {x: aggX, w: aggW, id: null, agg: true, n: aggN, ms: aggMs, label: fmtCount(aggN) + ' calls'});
      aggN = 0;
      aggW = 0;
      aggMs = 0;
    };
    for (const k of kids) {
      const kw = k.ms * scale;
      if (kw < FLAME_MIN_W) {
        if (!aggN) aggX = cx;
        aggN += k.count || 1;
        aggW += kw;
        aggMs += k.ms;
      } else {
        flush();
        next(k, cx, kw);
      }
      cx += kw;
    }
    flush();
  }

  layoutTime(width, rows, add) {
    const m = this.model;
    let start = [];
    if (this.focus === null) {
      const roots = m.kids(null).map((id) => m.nodes.get(id)).filter((n) => this.inRange(n));
      const sum = roots.reduce((a, n) => a + n.total_ms, 0) || 1;
      add(0, {x: 0, w: width, id: null, label: 'all (' + fmtMs(m.summary.duration_ms) + ')'});
      FlameView.place(roots.map((n) => ({n, ms: n.total_ms, count: n.count})), 0, width / sum, 1, add,
        (k, x, w) => start.push([k.n.id, x, w, 1]));
    } else {
      const chain = this.ancestors(this.focus);
      chain.slice(0, -1).forEach((id, i) => add(i, {x: 0, w: width, id, crumb: true}));
      start = [[this.focus, 0, width, chain.length - 1]];
    }
    const stack = start.reverse();
    while (stack.length) {
      const [id, x, w, row] = stack.pop();
      add(row, {x, w, id});
      const n = m.nodes.get(id);
      if (!m.loaded(id) || w < 2) continue;
      const kids = m.kids(id).map((k) => m.nodes.get(k)).filter((k) => this.inRange(k));
      const sum = kids.reduce((a, k) => a + k.total_ms, 0);
      // Children never draw wider than their parent (clock jitter).
      const scale = n.total_ms > 0 ? (w / n.total_ms) * Math.min(1, n.total_ms / Math.max(sum, 1e-12)) : w / Math.max(sum, 1e-12);
      const next = [];
      FlameView.place(kids.map((k) => ({n: k, ms: k.total_ms, count: k.count})), x, scale, row + 1, add,
        (k, kx, kw) => next.push([k.n.id, kx, kw, row + 1]));
      for (let i = next.length - 1; i >= 0; i--) stack.push(next[i]);
    }
  }

  /** Merge node lists by function name: [{name, ms, nodes}], heaviest first. */
  mergeGroups(nodes) {
    const by = new Map();
    for (const n of nodes) {
      let g = by.get(n.name);
      if (!g) by.set(n.name, (g = {name: n.name, ms: 0, self: 0, count: 0, nodes: [], node: n}));
      g.ms += n.total_ms;
      g.self += n.self_ms;
      g.count += n.count;
      g.nodes.push(n);
    }
    return Array.from(by.values()).sort((a, b) => b.ms - a.ms || (a.name < b.name ? -1 : 1));
  }

  /** Rows of merged groups from row on, downwards (step 1) or upwards
   *  (step -1); kidsOf(g) gives the next level's groups. */
  layoutMerged(groups, x, scale, row, add, kidsOf, step) {
    FlameView.place(groups, x, scale, row, add, (g, gx, gw) => {
      add(row, {x: gx, w: gw, id: g.node ? g.node.id : null, group: g, label: g.name + (g.count > 1 ? ' ×' + fmtCount(g.count) : '')});
      if (gw < 2 || row + step < 0) return;
      const kids = kidsOf(g);
      if (kids.length) this.layoutMerged(kids, gx, scale, row + step, add, kidsOf, step);
    });
  }

  kidNodes(g) {
    const out = [];
    for (const n of g.nodes) {
      for (const k of this.model.kids(n.id)) {
        const kn = this.model.nodes.get(k);
        if (this.inRange(kn)) out.push(kn);
      }
    }
    return out;
  }

  /** Whether node n ran in the range selected in the timeline (or there is none). */
  inRange(n) {
    const r = this.opts.range ? this.opts.range() : null;
    return !r || (n.end_ms >= r.t0 && n.start_ms <= r.t1);
  }

  layout(width) {
    const rows = [];
    const add = (row, b) => {
      (rows[row] || (rows[row] = [])).push(b);
    };
    const m = this.model;
    if (this.mode === 'time') {
      this.layoutTime(width, rows, add);
    } else if (this.fromServer()) {
      // Until tphd answers, a placeholder rather than a graph of the
      // loaded calls only.
      if (this.srvReady()) this.layoutServer(width, rows, add);
      else if (this.mode === 'merged' || this.fn) add(0, {x: 0, w: width, id: null, label: 'Merging the whole trace…'});
      return FlameView.trimRows(rows);
    } else if (this.mode === 'merged') {
      const roots = m.kids(null).map((id) => m.nodes.get(id)).filter((n) => this.inRange(n));
      const sum = roots.reduce((a, n) => a + n.total_ms, 0) || 1;
      add(0, {x: 0, w: width, id: null, label: 'all (' + fmtMs(m.summary.duration_ms) + ')'});
      this.layoutMerged(this.mergeGroups(roots), 0, width / sum, 1, add, (g) => this.mergeGroups(this.kidNodes(g)), 1);
    } else {
      const nodes = [];
      for (const n of m.nodes.values()) if (n.name === this.fn && this.inRange(n)) nodes.push(n);
      this.sandwichNames = {callers: [], callees: []};
      if (!nodes.length) return rows;
      // Callers: each call's parent chain, merged by name level by level.
      let depth = 0;
      for (const n of nodes) depth = Math.max(depth, n.depth);
      depth = Math.min(depth, 40);
      const total = nodes.reduce((a, n) => a + n.total_ms, 0) || 1;
      const scale = width / total;
      const parentsOf = (g) => {
        const out = [];
        for (const n of g.nodes) {
          const p = n.parent === null ? null : m.nodes.get(n.parent);
          // A caller's width is what its call to fn took, not all of it.
          if (p) out.push(Object.assign({}, p, {total_ms: n.total_ms, self_ms: n.self_ms, count: n.count, _via: n}));
        }
        return out;
      };
      const me = {name: this.fn, ms: total, self: nodes.reduce((a, n) => a + n.self_ms, 0),
        count: nodes.reduce((a, n) => a + n.count, 0), nodes, node: nodes[0]};
      const merged = (f) => (g) => this.mergeGroups(f(g));
      this.layoutSandwich(me, width, scale, depth, rows, add, merged(parentsOf), merged((g) => this.kidNodes(g)));
      return FlameView.trimRows(rows);
    }
    for (let r = 0; r < rows.length; r++) if (!rows[r]) rows[r] = [];
    return rows;
  }

  /** The sandwich of group me at row depth: its callers merged upwards, its
   *  callees downwards; notes the heaviest names for the tests. */
  layoutSandwich(me, width, scale, depth, rows, add, callersOf, calleesOf) {
    add(depth, {x: 0, w: width, id: me.node ? me.node.id : null, group: me, label: me.name + ' ×' + fmtCount(me.count), focus: true});
    const up = callersOf(me);
    if (up.length) this.layoutMerged(up, 0, scale, depth - 1, add, callersOf, -1);
    const down = calleesOf(me);
    if (down.length) this.layoutMerged(down, 0, scale, depth + 1, add, calleesOf, 1);
    for (let r = depth - 1; r >= 0 && rows[r]; r--) {
      const heavy = rows[r].filter((b) => !b.agg).sort((a, b) => b.w - a.w)[0];
      if (heavy) this.sandwichNames.callers.push(heavy.group.name);
    }
    this.sandwichNames.callees = (rows[depth + 1] || []).filter((b) => !b.agg).map((b) => b.group.name);
  }

  /** tphd's merged flame graph or sandwich (this.srv), laid out like the
   *  page's own. */
  layoutServer(width, rows, add) {
    const d = this.srv.data;
    const kidsOf = (g) => FlameView.serverGroups(g.kids);
    if (d.mode === 'merged') {
      add(0, {x: 0, w: width, id: null, label: 'all (' + fmtMs(this.model.summary.duration_ms) + ')'});
      const groups = FlameView.serverGroups(d.nodes);
      const sum = groups.reduce((a, g) => a + g.ms, 0) || 1;
      this.layoutMerged(groups, 0, width / sum, 1, add, kidsOf, 1);
      return;
    }
    this.sandwichNames = {callers: [], callees: []};
    if (!d.count) return;
    let depth = 0;
    for (let lv = d.callers; lv && lv.length && depth < 40; depth++) lv = lv.flatMap((g) => g.kids || []);
    const me = {name: d.fn, ms: d.total_ms, self: d.self_ms, count: d.count, nodes: [], node: null};
    this.layoutSandwich(me, width, width / (d.total_ms || 1), depth, rows, add, (g) => FlameView.serverGroups(g === me ? d.callers : g.kids),
      (g) => FlameView.serverGroups(g === me ? d.callees : g.kids));
  }

  /** rows with the empty ones above the first bar dropped (a sandwich's
   *  callers may stop short of the depth reserved for them). */
  static trimRows(rows) {
    let first = 0;
    while (first < rows.length && !rows[first]) first++;
    return rows.slice(first).map((r) => r || []);
  }

  fillOf(n, b, dark) {
    if (b.agg) return dark ? [78, 84, 94] : [196, 201, 209];
    if (!n) return dark ? [88, 96, 110] : [168, 176, 190];
    if (n.exc && !n.exc.caught) return hslRgb(2, 70, dark ? 30 : 72);
    if (this.colorBy === 'self') {
      const total = b.group ? b.group.ms : n.total_ms, self = b.group ? b.group.self : n.self_ms;
      const r = total > 0 ? Math.min(1, self / total) : 0;
      return hslRgb(120 - 120 * r, 60, dark ? 28 : 74);
    }
    return hslRgb(FlameView.hue(n.module || n.name), 55, dark ? 28 : 74);
  }

  draw() {
    const width = this.wrap.clientWidth;
    if (!width) return;
    const vw = width / (this.view.x1 - this.view.x0), off = this.view.x0 * vw;
    const rows = this.layout(vw).map((row) => row
      .map((b) => Object.assign(b, {x: b.x - off}))
      .filter((b) => b.x + b.w >= 0 && b.x <= width)
      .sort((a, b) => a.x - b.x));
    this.rects = rows;
    const height = Math.max(rows.length, 1) * FLAME_ROW;
    const ctx = canvasContext(this.canvas, width, height, '12px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace');
    const dark = isDark();
    const m = this.model;
    const q = this.opts.query ? (this.opts.query() || '').toLowerCase() : '';
    const matches = (n) => n && (n.name.toLowerCase().includes(q) || (n.args && n.args.toLowerCase().includes(q)));
    let minC = Infinity;
    rows.forEach((row, r) => {
      for (const b of row) {
        const node = b.id === null || b.id === undefined ? null : m.nodes.get(b.id);
        // A group merged by tphd has no loaded call: its name and module stand in.
        const n = node || (b.group && !b.group.node ? b.group : null);
        const fill = this.fillOf(n, b, dark);
        const y = r * FLAME_ROW;
        ctx.globalAlpha = b.crumb ? 0.5 : q && !b.agg && n && !matches(n) ? 0.35 : 1;
        ctx.fillStyle = 'rgb(' + fill.join(',') + ')';
        ctx.fillRect(b.x + 0.5, y + 0.5, Math.max(b.w - 1, 0.5), FLAME_ROW - 1);
        ctx.globalAlpha = 1;
        if (q && n && !b.agg && matches(n)) {
          ctx.strokeStyle = dark ? '#ffd84d' : '#8a5a00';
          ctx.lineWidth = 2;
          ctx.strokeRect(b.x + 1, y + 1, Math.max(b.w - 2, 1), FLAME_ROW - 2);
        }
        if (this.mode === 'time' && node && node.children && !m.loaded(node.id) && b.w > 6) {
          ctx.fillStyle = dark ? '#f2f4f7' : '#111418';
          ctx.fillRect(b.x + b.w - 4, y + 4, 2, FLAME_ROW - 8);
        }
        if (b.w > 28) {
          if (!b.label) b.label = n ? n.name + (n.count > 1 ? ' ×' + fmtCount(n.count) : '') : '';
          // The label colour with the better contrast on this fill.
          const shown = b.crumb ? fill.map((c, i) => Math.round(c * 0.5 + (dark ? [20, 23, 28] : [255, 255, 255])[i] * 0.5)) : fill;
          const text = contrastRatio(FLAME_DARK_TEXT, shown) >= contrastRatio(FLAME_LIGHT_TEXT, shown) ? FLAME_DARK_TEXT : FLAME_LIGHT_TEXT;
          minC = Math.min(minC, contrastRatio(text, shown));
          ctx.fillStyle = 'rgb(' + text.join(',') + ')';
          ctx.save();
          ctx.beginPath();
          ctx.rect(b.x + 3, y, b.w - 6, FLAME_ROW);
          ctx.clip();
          ctx.fillText(b.label, Math.max(b.x, 0) + 4, y + FLAME_ROW / 2 + 1);
          ctx.restore();
        } else if (!b.label && n) {
          b.label = n.name;
        }
      }
    });
    this.minContrast = minC;
    this.drawnMode = this.mode !== 'time' && this.fromServer() && !this.srvReady() ? null : this.mode;
    this.drawCrumb();
  }

  drawCrumb() {
    const c = clear(this.crumb);
    const zoomed = this.focus !== null || this.view.x0 > 0 || this.view.x1 < 1;
    const reset = el('button', {type: 'button', id: 'flame-reset', text: 'Whole trace', disabled: !zoomed,
      onclick: () => {
        this.view = {x0: 0, x1: 1};
        this.show(null);
      }});
    const n = this.focus === null ? null : this.model.nodes.get(this.focus);
    const hint = this.mode === 'sandwich'
      ? (this.fn ? 'Callers of ' + this.fn + ' above it, its callees below, each merged.' : 'Name a function to see its callers and callees.')
      : n ? 'Zoomed into ' + n.name + ' (' + fmtMs(n.total_ms) + '). The faded bars above go back.'
        : this.mode === 'merged' ? 'Identical stacks merged, heaviest first. Wheel to zoom.'
          : 'Width is total time. Click to zoom, wheel to zoom; grey blocks merge calls too small to draw.';
    append(c, [reset, el('span', {className: 'muted small', text: hint})]);
  }

  hit(e) {
    const r = this.canvas.getBoundingClientRect();
    const x = e.clientX - r.left, row = Math.floor((e.clientY - r.top) / FLAME_ROW);
    const bars = this.rects[row] || [];
    for (const b of bars) if (x >= b.x && x < b.x + b.w) return b;
    return null;
  }

  onMove(e) {
    const b = this.hit(e);
    if (!b || (b.id === null && !b.agg && !b.group)) {
      this.tip.hidden = true;
      return;
    }
    const t = clear(this.tip);
    if (b.agg) {
      append(t, [el('strong', {text: fmtCount(b.n) + ' calls merged'}),
        el('div', {text: fmtMs(b.ms) + ' in all; each too small to draw at this zoom'})]);
    } else if (b.group) {
      append(t, [el('strong', {className: 'mono', text: b.group.name}),
        el('div', {text: fmtMs(b.group.ms) + ' total · ' + fmtMs(b.group.self) + ' self · ' + plural(b.group.count, 'call')})]);
    } else {
      const n = this.model.nodes.get(b.id);
      append(t, [el('strong', {className: 'mono', text: n.name}),
        el('div', {text: fmtMs(n.total_ms) + ' total · ' + fmtMs(n.self_ms) + ' self' + (n.count > 1 ? ' · ×' + fmtCount(n.count) : '')}),
        n.flags.includes('gen') ? el('div', {className: 'muted', text: 'active time; span ' + fmtMs(spanMs(n))}) : null,
        n.args ? el('div', {className: 'mono muted', text: '(' + (n.args.length > 200 ? n.args.slice(0, 200) + '…' : n.args) + ')'}) : null,
        n.exc ? el('div', {className: 'ex', text: oneLine(n.exc.type + (n.exc.msg ? ': ' + n.exc.msg : ''))}) : null]);
    }
    const r = this.wrap.getBoundingClientRect();
    t.hidden = false;
    const left = Math.min(e.clientX - r.left + 12, r.width - t.offsetWidth - 4);
    t.style.left = Math.max(0, left) + 'px';
    t.style.top = e.clientY - r.top + this.wrap.scrollTop + 14 + 'px';
  }

  onWheel(e) {
    if (!e.deltaY) return;
    e.preventDefault();
    const r = this.canvas.getBoundingClientRect();
    const f = Math.min(1, Math.max(0, (e.clientX - r.left) / r.width));
    const span = this.view.x1 - this.view.x0;
    const at = this.view.x0 + f * span;
    const ns = Math.min(1, Math.max(1e-6, span * (e.deltaY > 0 ? 1.25 : 0.8)));
    let x0 = at - f * ns;
    x0 = Math.max(0, Math.min(1 - ns, x0));
    this.view = {x0, x1: x0 + ns};
    this.tip.hidden = true;
    this.draw();
  }

  onClick(e) {
    const b = this.hit(e);
    if (!b || b.agg) return;
    if (this.mode !== 'time') {
      if (b.group) {
        this.fn = b.group.name;
        this.fnIn.value = this.fn;
        this.setMode('sandwich');
      }
      return;
    }
    if (b.id === null) this.show(null);
    else if (b.id === this.focus && this.opts.onSelect) this.opts.onSelect(b.id);
    else this.show(b.id);
  }
}
