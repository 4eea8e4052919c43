// frames.js: the frame-time graphs (issue #13). One graph per frame name:
// every frame's duration over time (time on x, duration on y, as Tracy's
// frame graph), the running p50-p95 band, and the name's
// exact statistics from tphd. A frame whose call tree was kept
// (frame(name, trace=True)) is drawn as a ring; clicking it opens that trace.
// The page polls every 5 s while visible, like the list.

const FRAME_POINTS = 5000;
const FRAME_POLL_MS = 5000;
const FRAME_H = 170;
const FRAME_PAD = {l: 58, r: 10, t: 10, b: 22};
const FRAME_HIT_PX = 8;

/** Nearest rank over sorted durations (as tphd's frames statistics). */
function frameRank(sorted, p) {
  const k = Math.ceil((p * sorted.length) / 100);
  return sorted[Math.max(0, k - 1)];
}

/** The running p50 and p95 over the last k frames at each frame (k grows
 *  with the count: 8 to 200), as [{t, p50, p95}] in start order. */
function frameBand(points) {
  const k = Math.max(8, Math.min(200, Math.ceil(points.length / 40)));
  const win = [], out = [];
  points.forEach(([start, dur], i) => {
    // win stays sorted: insert the new duration, drop the one leaving.
    win.splice(frameInsertAt(win, dur), 0, dur);
    if (i >= k) win.splice(frameInsertAt(win, points[i - k][1]), 1);
    out.push({t: start, p50: frameRank(win, 50), p95: frameRank(win, 95)});
  });
  return out;
}

/** The first index of sorted whose value is not below v. */
function frameInsertAt(sorted, v) {
  let lo = 0, hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid] < v) lo = mid + 1; else hi = mid;
  }
  return lo;
}

class FrameGraph {
  constructor(stats, src, nav) {
    this.stats = stats;
    this.src = src;
    this.nav = nav;
    this.points = [];
    this.total = 0;
    this.kept = []; // [{x, y, id, dur, start}] of the last draw
    this.canvas = el('canvas', {className: 'frame-canvas', attrs: {role: 'img', 'aria-label': 'Frame durations of ' + stats.name}});
    this.tip = el('div', {className: 'frame-tip', hidden: true});
    this.head = el('div', {className: 'frame-head'});
    this.note = el('span', {className: 'muted frame-note'});
    this.node = el('section', {className: 'frame-card', dataset: {name: stats.name}},
      this.head, el('div', {className: 'frame-plot'}, this.canvas, this.tip), this.note);
    this.renderHead();
    this.canvas.addEventListener('mousemove', (e) => this.hover(e));
    this.canvas.addEventListener('mouseleave', () => { this.tip.hidden = true; this.canvas.style.cursor = ''; });
    this.canvas.addEventListener('click', (e) => {
      const k = this.hit(e);
      if (k) this.nav('/t/' + k.id);
    });
  }

  renderHead() {
    const s = this.stats;
    const chip = (k, v) => el('span', {className: 'frame-stat'}, el('span', {className: 'card-k', text: k + ' '}), el('span', {className: 'mono', text: v}));
    clear(this.head);
    append(this.head, [
      el('h3', {className: 'frame-name', text: s.name}),
      chip('frames', fmtCount(s.count)), chip('p50', fmtMs(s.p50_ms)), chip('p95', fmtMs(s.p95_ms)),
      chip('p99', fmtMs(s.p99_ms)), chip('max', fmtMs(s.max_ms)),
      chip('per s', s.frames_per_s === null || s.frames_per_s === undefined ? '–' : s.frames_per_s.toPrecision(3)),
    ]);
  }

  async load() {
    const r = await this.src.framePoints(this.stats.name, FRAME_POINTS);
    this.points = r.points;
    this.total = r.total;
    const kept = r.points.filter((p) => p[2]).length;
    this.note.textContent = (r.total > r.points.length
      ? 'the newest ' + fmtCount(r.points.length) + ' of ' + plural(r.total, 'frame')
      : plural(r.total, 'frame')) + (kept ? ' · ' + plural(kept, 'kept call tree') + ' (rings: click to open)' : '');
    this.draw();
  }

  draw() {
    const width = Math.max(200, this.canvas.parentNode.clientWidth || 600);
    const ctx = canvasContext(this.canvas, width, FRAME_H, '11px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace');
    const dark = isDark();
    const fg = dark ? '#e2e6ec' : '#1c2128', muted = dark ? '#939cab' : '#5c6570';
    const grid = dark ? '#323944' : '#d9dde3', accent = dark ? '#5b93f0' : '#2f6fde', hot = dark ? '#ff6b6b' : '#cf222e';
    const P = FRAME_PAD, w = width - P.l - P.r, h = FRAME_H - P.t - P.b;
    this.kept = [];
    const pts = this.points;
    if (!pts.length) {
      ctx.fillStyle = muted;
      ctx.fillText('no frames', P.l, P.t + h / 2);
      return;
    }
    const t0 = pts[0][0], t1 = Math.max(pts[pts.length - 1][0], t0 + 1e-6);
    const sorted = pts.map((p) => p[1]).sort((a, b) => a - b);
    const p99 = frameRank(sorted, 99), max = sorted[sorted.length - 1];
    // A few outliers would flatten everything else: beyond 2x the p99 the
    // scale stops and those frames sit on the top edge, in red.
    const ymax = Math.max(max > 2 * p99 ? 2 * p99 : max, 1e-6) * 1.05;
    const X = (t) => P.l + ((t - t0) / (t1 - t0)) * w;
    const Y = (ms) => P.t + h - (Math.min(ms, ymax) / ymax) * h;
    // Axes: 0, half and the top of the scale; the first and last start.
    ctx.strokeStyle = grid;
    ctx.fillStyle = muted;
    ctx.textAlign = 'right';
    for (const v of [0, ymax / 2, ymax]) {
      const y = Math.round(Y(v)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(P.l, y);
      ctx.lineTo(P.l + w, y);
      ctx.stroke();
      ctx.fillText(fmtMs(v), P.l - 6, y);
    }
    ctx.textAlign = 'left';
    ctx.fillText(fmtTime(t0), P.l, FRAME_H - P.b / 2);
    ctx.textAlign = 'right';
    ctx.fillText('+' + fmtMs((t1 - t0) * 1000), P.l + w, FRAME_H - P.b / 2);
    ctx.textAlign = 'left';
    // The band: the running p50 to p95, as steps from frame to frame, and
    // its p50 line.
    const band = frameBand(pts);
    const xEnd = (i) => (i + 1 < band.length ? X(band[i + 1].t) : P.l + w);
    ctx.fillStyle = dark ? 'rgba(91,147,240,0.22)' : 'rgba(47,111,222,0.16)';
    ctx.beginPath();
    band.forEach((p, i) => {
      if (i === 0) ctx.moveTo(X(p.t), Y(p.p95)); else ctx.lineTo(X(p.t), Y(p.p95));
      ctx.lineTo(xEnd(i), Y(p.p95));
    });
    for (let i = band.length - 1; i >= 0; i--) {
      ctx.lineTo(xEnd(i), Y(band[i].p50));
      ctx.lineTo(X(band[i].t), Y(band[i].p50));
    }
    ctx.closePath();
    ctx.fill();
    ctx.strokeStyle = accent;
    ctx.beginPath();
    band.forEach((p, i) => {
      if (i === 0) ctx.moveTo(X(p.t), Y(p.p50)); else ctx.lineTo(X(p.t), Y(p.p50));
      ctx.lineTo(xEnd(i), Y(p.p50));
    });
    ctx.stroke();
    // The frames: a dot each, clipped ones red on the top edge.
    for (const [start, dur] of pts) {
      ctx.fillStyle = dur > ymax ? hot : fg;
      ctx.fillRect(Math.round(X(start)) - 1, Math.round(Y(dur)) - 1, 2, 2);
    }
    ctx.strokeStyle = hot;
    ctx.lineWidth = 1.5;
    for (const [start, dur, id] of pts) {
      if (!id) continue;
      const x = X(start), y = Y(dur);
      ctx.beginPath();
      ctx.arc(x, y, 4, 0, 2 * Math.PI);
      ctx.stroke();
      this.kept.push({x, y, id, dur, start});
    }
    ctx.lineWidth = 1;
  }

  /** The kept frame nearest the pointer, within FRAME_HIT_PX. */
  hit(e) {
    const r = this.canvas.getBoundingClientRect();
    const x = e.clientX - r.left, y = e.clientY - r.top;
    let best = null, bd = FRAME_HIT_PX * FRAME_HIT_PX;
    for (const k of this.kept) {
      const d = (k.x - x) ** 2 + (k.y - y) ** 2;
      if (d <= bd) {
        bd = d;
        best = k;
      }
    }
    return best;
  }

  hover(e) {
    const k = this.hit(e);
    this.canvas.style.cursor = k ? 'pointer' : '';
    if (!k) {
      this.tip.hidden = true;
      return;
    }
    this.tip.textContent = fmtMs(k.dur) + ' at ' + fmtTime(k.start) + ' · call tree ' + shortId(k.id) + ' (click to open)';
    this.tip.style.left = Math.round(k.x + 8) + 'px';
    this.tip.style.top = Math.round(k.y + 8) + 'px';
    this.tip.hidden = false;
  }
}

function framesView(root, src, nav) {
  const state = {graphs: new Map(), timer: 0, dead: false, busy: false};
  const body = el('div', {className: 'frames', id: 'frames'});
  const empty = el('p', {className: 'placeholder', id: 'frames-empty', hidden: true});
  clear(root);
  append(root, [
    el('div', {className: 'toolbar'}, el('h2', {className: 'frames-title', text: 'Frames'}), el('span', {className: 'grow'}),
      el('span', {className: 'muted', text: 'each dot a frame · band: running p50 to p95 · rings: kept call trees'})),
    empty, body,
  ]);
  setCrumbs([['frames', null]]);
  document.title = 'Frames · tracepatch';

  async function load() {
    if (state.busy || state.dead) return;
    state.busy = true;
    try {
      const r = await src.frames();
      if (state.dead) return;
      const names = r.frames.map((f) => f.name);
      for (const [name, g] of state.graphs) {
        if (!names.includes(name)) {
          g.node.remove();
          state.graphs.delete(name);
        }
      }
      for (const f of r.frames) {
        let g = state.graphs.get(f.name);
        if (!g) {
          g = new FrameGraph(f, src, nav);
          state.graphs.set(f.name, g);
        } else if (g.stats.count === f.count && g.stats.max_ms === f.max_ms) {
          continue; // nothing new for this name
        }
        g.stats = f;
        g.renderHead();
        body.appendChild(g.node); // in the API's order (by name)
        await g.load();
        if (state.dead) return;
      }
      empty.hidden = r.frames.length > 0;
      empty.textContent = 'No frames yet. Time a unit of work: with tracepatch.frame("request"): …';
      setLive(true);
    } catch (e) {
      if (!state.dead) {
        setLive(false);
        empty.hidden = false;
        clear(empty).appendChild(errorBox(e, 'Cannot load the frames'));
      }
    } finally {
      state.busy = false;
    }
  }

  function schedule() {
    clearTimeout(state.timer);
    if (state.dead) return;
    state.timer = setTimeout(async () => {
      if (document.visibilityState === 'visible') await load();
      schedule();
    }, FRAME_POLL_MS);
  }

  const redraw = () => { for (const g of state.graphs.values()) g.draw(); };
  window.addEventListener('resize', redraw);
  // For the browser tests: where the kept frames were drawn.
  window.tpFrameGraphs = () => Array.from(state.graphs.values()).map((g) => ({name: g.stats.name, points: g.points.length, total: g.total, kept: g.kept}));
  load().then(schedule);
  return {
    destroy() {
      state.dead = true;
      clearTimeout(state.timer);
      window.removeEventListener('resize', redraw);
      setLive(false);
    },
    onTheme: redraw,
  };
}
