// timeline.js: calls at their real start and span on a canvas, one lane per
// thread and one per asyncio task (a task's coroutine and what it calls),
// nested by depth within a lane. The wheel zooms around the pointer, a
// drag pans, shift+drag selects a range (its length and the calls that
// started in it are shown), and a ruler gives the time. Calls narrower than
// a pixel are merged into one block per run, so a wide trace draws as
// blocks at low zoom. A trace of more calls than it loads (TL_BUDGET) is
// drawn from summaries of the whole trace by time bucket: tphd's /timeline,
// or in a saved report the same buckets computed from its packed tree.
//
// Keys as in Perfetto: W/S zoom in/out around the pointer (or the middle),
// A/D pan left/right, and the arrows do the same (Up/Down zoom, Left/Right
// pan); Escape clears the selected range. A selected range is handed to
// opts.onRange, which filters the tree, the flame graph and the function
// table to it; the search (opts.query) is highlighted here too.

const TL_ROW = 16;
const TL_RULER = 22;
const TL_LANE_HEAD = 18;
const TL_BUDGET = 20000;

class TimelineView {
  constructor(model, opts) {
    this.model = model;
    this.opts = opts || {};
    this.view = {t0: 0, t1: Math.max(model.traceMs, 1e-6)};
    this.range = this.opts.range || null;
    this.pointer = null; // the pointer's time while it is over the canvas
    this.canvas = el('canvas', {className: 'tl-canvas', id: 'timeline-canvas', tabIndex: 0,
      attrs: {'aria-label': 'Timeline: W/S zoom, A/D pan, shift+drag selects a range'}});
    this.info = el('span', {className: 'muted small', id: 'tl-info'});
    this.reset = el('button', {type: 'button', id: 'tl-reset', text: 'Whole trace', onclick: () => {
      this.view = {t0: 0, t1: Math.max(this.model.traceMs, 1e-6)};
      this.setRange(null);
    }});
    this.wrap = el('div', {className: 'tl-wrap'}, this.canvas);
    this.root = el('div', {className: 'flame-pane'},
      el('div', {className: 'flame-bar'}, this.reset, this.info), this.wrap);
    this.canvas.addEventListener('wheel', (e) => this.onWheel(e), {passive: false});
    this.canvas.addEventListener('mousedown', (e) => this.onDown(e));
    this.canvas.addEventListener('mousemove', (e) => { this.pointer = this.timeAt(e.clientX); });
    this.canvas.addEventListener('mouseleave', () => { this.pointer = null; });
    this.canvas.addEventListener('keydown', (e) => {
      if (!e.ctrlKey && !e.metaKey && !e.altKey && this.onKey(e)) {
        e.preventDefault();
        e.stopPropagation();
      }
    });
    this.resizeObs = new ResizeObserver(() => this.draw());
    this.resizeObs.observe(this.wrap);
    window.tpTimelineLanes = () => (this.lanes || []).map((l) => l.name);
    window.tpTimelineView = () => Object.assign({}, this.view);
    window.tpTimelineRange = () => this.range && Object.assign({}, this.range);
    window.tpTimelineLit = () => this.lit;
    window.tpTimelineSummarised = () => !!(this.summarised && this.buckets);
    window.tpTimelineBuckets = () => this.buckets || null;
  }

  destroy() {
    this.resizeObs.disconnect();
    clearTimeout(this.refetchTimer);
  }

  /** Ask for the buckets of the view once zooming or panning pauses. */
  refetch() {
    clearTimeout(this.refetchTimer);
    this.refetchTimer = setTimeout(() => this.fetchBuckets(), 120);
  }

  /** Select [t0, t1] ms (null: none) and tell the other views. */
  setRange(r) {
    this.range = r && r.t1 > r.t0 ? r : null;
    this.draw();
    if (this.opts.onRange) this.opts.onRange(this.range);
  }

  /** Zoom by factor (< 1 zooms in) around time at, keeping at in place. */
  zoom(factor, at) {
    const total = Math.max(this.model.traceMs, 1e-6);
    const {t0, t1} = this.view;
    if (at === undefined || at === null) at = (t0 + t1) / 2;
    const span = Math.min(total, Math.max(1e-6, (t1 - t0) * factor));
    const f = (at - t0) / (t1 - t0);
    const n0 = Math.max(0, Math.min(total - span, at - f * span));
    this.view = {t0: n0, t1: n0 + span};
    this.draw();
  }

  /** Pan by frac of the visible span (negative: to the left). */
  pan(frac) {
    const total = Math.max(this.model.traceMs, 1e-6);
    const span = this.view.t1 - this.view.t0;
    const t0 = Math.max(0, Math.min(total - span, this.view.t0 + frac * span));
    this.view = {t0, t1: t0 + span};
    this.draw();
  }

  /** Keys of the timeline; true when the key was one of them. */
  onKey(e) {
    const k = e.key.length === 1 ? e.key.toLowerCase() : e.key;
    if (k === 'w' || k === 'ArrowUp') this.zoom(0.8, this.pointer);
    else if (k === 's' || k === 'ArrowDown') this.zoom(1.25, this.pointer);
    else if (k === 'a' || k === 'ArrowLeft') this.pan(-0.1);
    else if (k === 'd' || k === 'ArrowRight') this.pan(0.1);
    else if (k === 'Escape' && this.range) this.setRange(null);
    else return false;
    return true;
  }

  async show() {
    const s = this.opts.src;
    // A trace larger than the budget is drawn from the source's summaries
    // by time bucket (fetched again for each view), not from loaded calls.
    this.summarised = !!(s && s.timeline && (this.model.summary.calls || 0) > TL_BUDGET);
    if (this.summarised) {
      await this.fetchBuckets();
      return;
    }
    if (!this.loaded) {
      this.loaded = true;
      try {
        await this.model.loadDeep(null, TL_BUDGET);
      } catch (e) {
        toast('Cannot load the timeline: ' + e.message, true);
      }
    }
    this.buildLanes();
    this.draw();
  }

  /** tphd's buckets for the view (about one per 2 px), then a redraw. */
  async fetchBuckets() {
    const width = this.wrap.clientWidth || 1000;
    const n = Math.max(1, Math.min(4000, Math.ceil(width / 2)));
    const {t0, t1} = this.view;
    const seq = (this.bseq = (this.bseq || 0) + 1);
    try {
      const b = await this.opts.src.timeline(this.model.id, +t0.toFixed(6), +t1.toFixed(6), n);
      if (seq !== this.bseq) return;
      this.buckets = b;
      this.bview = {t0, t1};
      this.lanes = b.lanes.map((l) => ({name: l.name, rows: l.rows}));
      this.draw();
    } catch (e) {
      toast('Cannot load the timeline: ' + e.message, true);
    }
  }

  /** Draw tphd's buckets (already fetched, maybe for another view: they
   *  are scaled to this one until the next answer). */
  drawBuckets(ctx, width, X, px, dark, q) {
    const b = this.buckets;
    let y = TL_RULER, drawn = 0, lit = 0;
    const fg = dark ? '#e2e6ec' : '#1c2128';
    for (const l of b.lanes) {
      ctx.fillStyle = fg;
      ctx.fillText(l.name, 4, y + TL_LANE_HEAD / 2);
      y += TL_LANE_HEAD;
      l.rows.forEach((row, r) => {
        const ry = y + r * TL_ROW;
        for (const [k, busy, fn] of row) {
          const x0 = X(b.t0_ms + k * b.bucket_ms), w = Math.max(1, b.bucket_ms * px);
          if (x0 + w < 0 || x0 > width) continue;
          const name = b.funcs[fn] || '';
          const fill = hslRgb(FlameView.hue(name.slice(0, Math.max(0, name.lastIndexOf('.'))) || name), 55, dark ? 28 : 74);
          const hit = q && name.toLowerCase().includes(q);
          // A bucket's opacity is how much of it the row was busy.
          ctx.globalAlpha = Math.max(0.25, Math.min(1, busy / b.bucket_ms)) * (q && !hit ? 0.35 : 1);
          ctx.fillStyle = 'rgb(' + fill.join(',') + ')';
          ctx.fillRect(x0, ry + 1, w, TL_ROW - 2);
          ctx.globalAlpha = 1;
          drawn++;
          if (hit) {
            lit++;
            ctx.strokeStyle = dark ? '#ffd84d' : '#8a5a00';
            ctx.lineWidth = 2;
            ctx.strokeRect(x0 + 1, ry + 2, Math.max(1, w - 2), TL_ROW - 4);
          }
        }
      });
      y += Math.max(1, l.rows.length) * TL_ROW + 6;
    }
    this.drawn = drawn;
    this.lit = lit;
  }

  /** Lanes: per thread, and per spawned task, each a list of rows of
   *  nodes sorted by start. */
  buildLanes() {
    const m = this.model;
    const lanes = new Map();
    const laneOf = (key, name) => lanes.get(key) || lanes.set(key, {name, rows: []}).get(key);
    const walk = [];
    for (const id of m.kids(null)) walk.push([id, null, 0]);
    while (walk.length) {
      const [id, lane, d] = walk.pop();
      const n = m.nodes.get(id);
      let l = lane, depth = d;
      if (n.flags.includes('spawned')) {
        l = laneOf('task:' + id, 'task ' + n.name);
        l.thread = n.thread; // what the task's coroutine calls stays in its lane
        depth = 0;
      } else if (!l || n.thread !== l.thread) {
        l = laneOf('thread:' + n.thread, 'thread ' + n.thread);
        l.thread = n.thread;
        if (lane) depth = 0;
      }
      (l.rows[depth] || (l.rows[depth] = [])).push(n);
      for (const k of m.kids(id)) walk.push([k, l, depth + 1]);
    }
    this.lanes = Array.from(lanes.values()).sort((a, b) => (a.name < b.name ? -1 : 1));
    for (const l of this.lanes) for (let r = 0; r < l.rows.length; r++) (l.rows[r] = l.rows[r] || []).sort((a, b) => a.start_ms - b.start_ms);
  }

  draw() {
    const width = this.wrap.clientWidth;
    if (!width || !this.lanes) return;
    const dark = isDark();
    let height = TL_RULER;
    for (const l of this.lanes) height += TL_LANE_HEAD + Math.max(1, l.rows.length) * TL_ROW + 6;
    height = Math.max(height, TL_RULER + 40);
    const ctx = canvasContext(this.canvas, width, height, '11px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace');
    const {t0, t1} = this.view;
    const px = width / (t1 - t0);
    const X = (ms) => (ms - t0) * px;
    const fg = dark ? '#e2e6ec' : '#1c2128', muted = dark ? '#939cab' : '#5c6570';
    // Ruler: about one tick per 100 px at a round step.
    const raw = (t1 - t0) / Math.max(1, width / 100);
    const p10 = 10 ** Math.floor(Math.log10(raw));
    const step = [1, 2, 5, 10].map((k) => k * p10).find((s) => s >= raw) || raw;
    ctx.fillStyle = muted;
    ctx.strokeStyle = dark ? '#323944' : '#d9dde3';
    for (let t = Math.ceil(t0 / step) * step; t <= t1; t += step) {
      const x = Math.round(X(t)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(x, TL_RULER - 6);
      ctx.lineTo(x, height);
      ctx.stroke();
      ctx.fillText(fmtMs(t), x + 3, 9);
    }
    let y = TL_RULER;
    let drawn = 0, lit = 0;
    const q = this.opts.query ? (this.opts.query() || '').toLowerCase() : '';
    if (this.summarised) {
      if (this.buckets) this.drawBuckets(ctx, width, X, px, dark, q);
      this.finish(ctx, X, height);
      // The answer for this view follows; the scaled old one shows meanwhile.
      if (this.bview && (this.bview.t0 !== t0 || this.bview.t1 !== t1)) this.refetch();
      return;
    }
    const matches = (n) => n.name.toLowerCase().includes(q) || (n.args && n.args.toLowerCase().includes(q));
    for (const l of this.lanes) {
      ctx.fillStyle = fg;
      ctx.fillText(l.name, 4, y + TL_LANE_HEAD / 2);
      y += TL_LANE_HEAD;
      l.rows.forEach((row, r) => {
        const ry = y + r * TL_ROW;
        let aggX = -1, aggEnd = -1;
        const flushAgg = () => {
          if (aggX >= 0) {
            ctx.fillStyle = dark ? 'rgb(78,84,94)' : 'rgb(196,201,209)';
            ctx.fillRect(aggX, ry + 1, Math.max(1, aggEnd - aggX), TL_ROW - 2);
          }
          aggX = -1;
        };
        for (const n of row) {
          if (n.end_ms < t0 || n.start_ms > t1) continue;
          const x0 = X(n.start_ms), x1 = X(n.end_ms), w = x1 - x0;
          if (w < 1 && q && matches(n)) {
            // A match too narrow to see still gets a mark of its own.
            flushAgg();
            lit++;
            ctx.fillStyle = dark ? '#ffd84d' : '#8a5a00';
            ctx.fillRect(Math.round(x0) - 1, ry + 1, 3, TL_ROW - 2);
            continue;
          }
          if (w < 1) {
            // Merge with the block being drawn when it touches it.
            if (aggX >= 0 && x0 <= aggEnd + 1) aggEnd = Math.max(aggEnd, x1);
            else {
              flushAgg();
              aggX = x0;
              aggEnd = x1;
            }
            continue;
          }
          flushAgg();
          drawn++;
          const fill = n.exc && !n.exc.caught ? hslRgb(2, 70, dark ? 30 : 72) : hslRgb(FlameView.hue(n.module || n.name), 55, dark ? 28 : 74);
          const gen = n.flags.includes('gen');
          // A generator's span is drawn faded: it ran for only part of it.
          ctx.globalAlpha = gen ? 0.55 : 1;
          ctx.fillStyle = 'rgb(' + fill.join(',') + ')';
          if (q && !matches(n)) ctx.globalAlpha *= 0.35;
          ctx.fillRect(Math.max(0, x0), ry + 1, Math.min(width, x1) - Math.max(0, x0), TL_ROW - 2);
          ctx.globalAlpha = 1;
          if (q && matches(n)) {
            lit++;
            ctx.strokeStyle = dark ? '#ffd84d' : '#8a5a00';
            ctx.lineWidth = 2;
            ctx.strokeRect(Math.max(0, x0) + 1, ry + 2, Math.max(1, Math.min(width, x1) - Math.max(0, x0) - 2), TL_ROW - 4);
          }
          if (w > 30) {
            const text = contrastRatio(FLAME_DARK_TEXT, fill) >= contrastRatio(FLAME_LIGHT_TEXT, fill) ? FLAME_DARK_TEXT : FLAME_LIGHT_TEXT;
            ctx.fillStyle = 'rgb(' + text.join(',') + ')';
            ctx.save();
            ctx.beginPath();
            ctx.rect(Math.max(0, x0) + 2, ry, Math.min(width, x1) - Math.max(0, x0) - 4, TL_ROW);
            ctx.clip();
            ctx.fillText(n.name + (gen ? ' (active ' + fmtMs(n.total_ms) + ')' : ''), Math.max(0, x0) + 3, ry + TL_ROW / 2);
            ctx.restore();
          }
        }
        flushAgg();
      });
      y += Math.max(1, l.rows.length) * TL_ROW + 6;
    }
    this.drawn = drawn;
    this.lit = lit;
    this.finish(ctx, X, height);
  }

  /** The selected range and the line of text under the toolbar. */
  finish(ctx, X, height) {
    const {t0, t1} = this.view;
    if (this.range) {
      ctx.fillStyle = isDark() ? 'rgba(91,147,240,0.25)' : 'rgba(47,111,222,0.18)';
      const a = X(this.range.t0), b2 = X(this.range.t1);
      ctx.fillRect(a, 0, b2 - a, height);
    }
    let calls = 0;
    if (this.range && !this.summarised) for (const n of this.model.nodes.values()) if (n.start_ms >= this.range.t0 && n.start_ms <= this.range.t1) calls += n.count;
    this.info.textContent = (this.range
      ? 'Selected ' + fmtMs(this.range.t1 - this.range.t0) + ' (+' + fmtMs(this.range.t0) + ')' + (this.summarised ? '. ' : ': ' + plural(calls, 'call') + ' started in it. ')
      : '') + (this.summarised ? 'Summarised by tphd per ' + fmtMs(this.buckets ? this.buckets.bucket_ms : 0) + '. ' : '') + 'Showing ' + fmtMs(t1 - t0) + ' from +' + fmtMs(t0) + '. Wheel or W/S to zoom, drag or A/D to pan, shift+drag to select.';
    this.reset.disabled = t0 <= 0 && t1 >= this.model.traceMs && !this.range;
  }

  timeAt(clientX) {
    const r = this.canvas.getBoundingClientRect();
    return this.view.t0 + ((clientX - r.left) / r.width) * (this.view.t1 - this.view.t0);
  }

  onWheel(e) {
    if (!e.deltaY) return;
    e.preventDefault();
    this.zoom(e.deltaY > 0 ? 1.25 : 0.8, this.timeAt(e.clientX));
  }

  onDown(e) {
    if (e.button !== 0) return;
    e.preventDefault();
    this.canvas.focus();
    const start = this.timeAt(e.clientX), startX = e.clientX, v0 = Object.assign({}, this.view);
    const total = Math.max(this.model.traceMs, 1e-6);
    const select = e.shiftKey;
    const move = (ev) => {
      if (select) {
        const t = this.timeAt(ev.clientX);
        this.range = {t0: Math.max(0, Math.min(start, t)), t1: Math.min(total, Math.max(start, t))};
      } else {
        const r = this.canvas.getBoundingClientRect();
        const dt = ((ev.clientX - startX) / r.width) * (v0.t1 - v0.t0);
        const span = v0.t1 - v0.t0;
        const t0 = Math.max(0, Math.min(total - span, v0.t0 - dt));
        this.view = {t0, t1: t0 + span};
      }
      this.draw();
    };
    const up = () => {
      window.removeEventListener('mousemove', move);
      window.removeEventListener('mouseup', up);
      if (select) this.setRange(this.range);
    };
    window.addEventListener('mousemove', move);
    window.addEventListener('mouseup', up);
  }
}
