// flame.js: an icicle graph on a canvas. Each call is a bar as wide as its
// total time, its callees below it, left to right in call order. Clicking a
// bar zooms into it (fetching what lies below when it was not loaded yet);
// the bars above it stay as a breadcrumb. Text is drawn on the canvas, so
// trace text never becomes markup.

const FLAME_ROW = 20;
const FLAME_BUDGET = 20000;

class FlameView {
  constructor(model, opts) {
    this.model = model;
    this.opts = opts || {};
    this.focus = null; // node id at full width, or null for the whole trace
    this.rects = [];   // per row: [{x, w, id}] sorted by x
    this.loaded = new Set();
    this.canvas = el('canvas', {className: 'flame-canvas', id: 'flame-canvas'});
    this.tip = el('div', {className: 'flame-tip', hidden: true});
    this.crumb = el('div', {className: 'flame-bar'});
    this.wrap = el('div', {className: 'flame-wrap'}, this.canvas, this.tip);
    this.root = el('div', {className: 'flame-pane'}, this.crumb, this.wrap);
    this.canvas.addEventListener('mousemove', (e) => this.onMove(e));
    this.canvas.addEventListener('mouseleave', () => { this.tip.hidden = true; });
    this.canvas.addEventListener('click', (e) => this.onClick(e));
    this.resizeObs = new ResizeObserver(() => this.draw());
    this.resizeObs.observe(this.wrap);
  }

  destroy() {
    this.resizeObs.disconnect();
  }

  async show(focus) {
    if (focus !== undefined) this.focus = focus;
    const key = this.focus === null ? 'all' : this.focus;
    if (!this.loaded.has(key)) {
      this.loaded.add(key);
      try {
        await this.model.loadDeep(this.focus, FLAME_BUDGET);
      } catch (e) {
        toast('Cannot load the flame graph: ' + e.message, true);
      }
    }
    this.draw();
  }

  colors() {
    const cs = getComputedStyle(document.documentElement);
    return {
      text: cs.getPropertyValue('--flame-text').trim() || '#111',
      dark: isDark(),
      bg: cs.getPropertyValue('--bg').trim() || '#fff',
    };
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

  layout(width) {
    const m = this.model;
    const rows = [];
    const add = (row, x, w, id, crumb) => {
      (rows[row] || (rows[row] = [])).push({x, w, id, crumb});
    };
    let start;
    if (this.focus === null) {
      const roots = m.kids(null).map((id) => m.nodes.get(id));
      const sum = roots.reduce((a, n) => a + n.total_ms, 0) || 1;
      add(0, 0, width, null, false);
      start = [];
      let x = 0;
      for (const n of roots) {
        const w = (n.total_ms / sum) * width;
        start.push([n.id, x, w, 1]);
        x += w;
      }
    } else {
      const chain = this.ancestors(this.focus);
      chain.slice(0, -1).forEach((id, i) => add(i, 0, width, id, true));
      start = [[this.focus, 0, width, chain.length - 1]];
    }
    const stack = start.reverse();
    while (stack.length) {
      const [id, x, w, row] = stack.pop();
      add(row, x, w, id, false);
      const n = m.nodes.get(id);
      if (!m.loaded(id) || w < 2) continue;
      const kids = m.kids(id).map((k) => m.nodes.get(k));
      const sum = kids.reduce((a, k) => a + k.total_ms, 0);
      const scale = n.total_ms > 0 ? Math.min(1, n.total_ms / Math.max(sum, 1e-12)) / n.total_ms : 0;
      let cx = x;
      const next = [];
      for (const k of kids) {
        const kw = scale ? k.total_ms * scale * w : w / kids.length;
        if (kw >= 0.5) next.push([k.id, cx, kw, row + 1]);
        cx += kw;
      }
      for (let i = next.length - 1; i >= 0; i--) stack.push(next[i]);
    }
    return rows;
  }

  draw() {
    const width = this.wrap.clientWidth;
    if (!width) return;
    const rows = this.layout(width);
    this.rects = rows;
    const dpr = window.devicePixelRatio || 1;
    const height = Math.max(rows.length, 1) * FLAME_ROW;
    this.canvas.width = Math.floor(width * dpr);
    this.canvas.height = Math.floor(height * dpr);
    this.canvas.style.width = width + 'px';
    this.canvas.style.height = height + 'px';
    const ctx = this.canvas.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, width, height);
    ctx.font = '12px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace';
    ctx.textBaseline = 'middle';
    const c = this.colors();
    const m = this.model;
    rows.forEach((row, r) => {
      for (const b of row) {
        const n = b.id === null ? null : m.nodes.get(b.id);
        let fill;
        if (!n) fill = 'hsl(220, 12%, 62%)';
        else if (n.exc && !n.exc.caught) fill = 'hsl(2, 75%, ' + (c.dark ? 42 : 62) + '%)';
        else fill = 'hsl(' + FlameView.hue(n.module || n.name) + ', 62%, ' + (c.dark ? 38 : 72) + '%)';
        ctx.globalAlpha = b.crumb ? 0.45 : 1;
        ctx.fillStyle = fill;
        ctx.fillRect(b.x + 0.5, r * FLAME_ROW + 0.5, Math.max(b.w - 1, 0.5), FLAME_ROW - 1);
        if (n && n.children && !m.loaded(n.id) && b.w > 6) {
          ctx.fillStyle = c.text;
          ctx.fillRect(b.x + b.w - 4, r * FLAME_ROW + 4, 2, FLAME_ROW - 8);
        }
        if (b.w > 28) {
          const label = n ? n.name + (n.count > 1 ? ' ×' + n.count : '') : 'all (' + fmtMs(m.summary.duration_ms) + ')';
          ctx.fillStyle = c.text;
          ctx.save();
          ctx.beginPath();
          ctx.rect(b.x + 3, r * FLAME_ROW, b.w - 6, FLAME_ROW);
          ctx.clip();
          ctx.fillText(label, b.x + 4, r * FLAME_ROW + FLAME_ROW / 2 + 1);
          ctx.restore();
        }
      }
    });
    ctx.globalAlpha = 1;
    this.drawCrumb();
  }

  drawCrumb() {
    const c = clear(this.crumb);
    const reset = el('button', {type: 'button', id: 'flame-reset', text: 'Whole trace', disabled: this.focus === null,
      onclick: () => this.show(null)});
    const n = this.focus === null ? null : this.model.nodes.get(this.focus);
    append(c, [reset, el('span', {className: 'muted', text: n
      ? 'Zoomed into ' + n.name + ' (' + fmtMs(n.total_ms) + '). Click a bar to zoom, the faded bars above to go back.'
      : 'Width is total time. Click a bar to zoom in; a dark tick marks calls not loaded yet.'})]);
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
    if (!b || b.id === null) {
      this.tip.hidden = true;
      return;
    }
    const n = this.model.nodes.get(b.id);
    const t = clear(this.tip);
    append(t, [el('strong', {className: 'mono', text: n.name}),
      el('div', {text: fmtMs(n.total_ms) + ' total · ' + fmtMs(n.self_ms) + ' self' + (n.count > 1 ? ' · ×' + fmtCount(n.count) : '')}),
      n.args ? el('div', {className: 'mono muted', text: '(' + (n.args.length > 200 ? n.args.slice(0, 200) + '…' : n.args) + ')'}) : null,
      n.exc ? el('div', {className: 'ex', text: n.exc.type + (n.exc.msg ? ': ' + n.exc.msg : '')}) : null]);
    const r = this.wrap.getBoundingClientRect();
    t.hidden = false;
    const left = Math.min(e.clientX - r.left + 12, r.width - t.offsetWidth - 4);
    t.style.left = Math.max(0, left) + 'px';
    t.style.top = e.clientY - r.top + this.wrap.scrollTop + 14 + 'px';
  }

  onClick(e) {
    const b = this.hit(e);
    if (!b) return;
    if (b.id === null) this.show(null);
    else if (b.id === this.focus && this.opts.onSelect) this.opts.onSelect(b.id);
    else this.show(b.id);
  }
}
