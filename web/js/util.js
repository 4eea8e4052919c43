// util.js: DOM building and formatting shared by every view.
//
// The js/ files are fragments of one script (web/embed.py joins them inside a
// strict-mode function), so top-level names here are visible to the others.
//
// Rule of the house: trace text (names, arguments, return values, exception
// messages, labels, paths) only ever reaches the page as textContent or as
// canvas text. Nothing here or elsewhere assigns innerHTML.

/** Create an element: el('div', {className: 'x', text: 'hi', title: 't',
 *  onclick: fn, dataset: {...}, attrs: {...}}, child, 'text child', ...). */
function el(tag, props, ...children) {
  const e = document.createElement(tag);
  if (props) {
    for (const [k, v] of Object.entries(props)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'text') e.textContent = String(v);
      else if (k === 'className') e.className = v;
      else if (k === 'dataset') Object.assign(e.dataset, v);
      else if (k === 'attrs') for (const [a, av] of Object.entries(v)) e.setAttribute(a, av);
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e[k] = v;
    }
  }
  append(e, children);
  return e;
}

function append(parent, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(parent, c);
    else parent.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
  }
  return parent;
}

function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

function $(sel, root) {
  return (root || document).querySelector(sel);
}

/** Duration as tracepatch prints it everywhere (proto/render_text.c's
 *  fmt_duration): 3 significant digits in the largest unit the value
 *  reaches, "850ns", "1.23µs", "12.3ms", "123ms", "1.23s". ms is the API's
 *  milliseconds (whole nanoseconds). */
function fmtMs(ms) {
  if (ms === undefined || ms === null || !isFinite(ms)) return '–';
  const ns = Math.max(0, Math.round(ms * 1e6));
  if (ns < 1000) return ns + 'ns';
  const units = [[1e3, 'µs'], [1e6, 'ms'], [1e9, 's']];
  for (let u = 0; u < 3; u++) {
    for (let dec = 2; dec >= 0; dec--) {
      const v = Math.round(ns / (units[u][0] / 10 ** dec));
      // A value that rounds to 1000 of a unit moves to the next one.
      if (v >= 1000 && !(u === 2 && dec === 0)) continue;
      return (v / 10 ** dec).toFixed(dec) + units[u][1];
    }
  }
  return '–';
}

/** A call's span (first resume to end), which differs from its active
 *  time for generators and coroutines. */
function spanMs(n) {
  return n.span_ms !== undefined ? n.span_ms : Math.max(0, n.end_ms - n.start_ms);
}

/** Text for one row: line breaks become visible "⏎ " marks. */
function oneLine(s) {
  return String(s).replace(/\r?\n/g, '⏎ ');
}

/** A long text cut to show the first match of query near its start, so a
 *  search hit deep in a long argument is in view. */
function excerpt(text, query) {
  if (!query || text.length < 60) return text;
  const i = text.toLowerCase().indexOf(query.toLowerCase());
  if (i < 30) return text;
  return '…' + text.slice(i - 12);
}

/** Colour class of a duration, as the terminal colours it. */
function heat(ms) {
  return ms < 1 ? 'fast' : ms < 100 ? 'slow' : 'hot';
}

/** A memory delta in KiB (track_memory) as the text tree shows it: signed,
 *  one decimal, in KB, MB or GB of 1024 ("+976.6 KB", "-3.0 GB"). */
function fmtKb(kb) {
  const mag = Math.abs(kb);
  const [v, unit] = mag >= 1024 * 1024 ? [mag / (1024 * 1024), 'GB'] : mag >= 1024 ? [mag / 1024, 'MB'] : [mag, 'KB'];
  return (kb < 0 ? '-' : '+') + v.toFixed(1) + ' ' + unit;
}

function fmtCount(n) {
  if (n === undefined || n === null) return '–';
  return Number(n).toLocaleString('en-US');
}

function pad2(n) {
  return n < 10 ? '0' + n : String(n);
}

/** Unix seconds as local "2026-11-22 01:53:54". */
function fmtTime(unix) {
  if (!unix) return '–';
  const d = new Date(unix * 1000);
  return d.getFullYear() + '-' + pad2(d.getMonth() + 1) + '-' + pad2(d.getDate()) + ' ' +
    pad2(d.getHours()) + ':' + pad2(d.getMinutes()) + ':' + pad2(d.getSeconds());
}

function fmtAgo(unix) {
  if (!unix) return '';
  const s = Math.max(0, Date.now() / 1000 - unix);
  if (s < 60) return Math.floor(s) + 's ago';
  if (s < 3600) return Math.floor(s / 60) + 'm ago';
  if (s < 86400) return Math.floor(s / 3600) + 'h ago';
  return Math.floor(s / 86400) + 'd ago';
}

function shortId(id) {
  return id ? String(id).slice(0, 8) : '';
}

function plural(n, word) {
  return fmtCount(n) + ' ' + word + (n === 1 ? '' : 's');
}

/** text with every case-insensitive occurrence of query wrapped in <mark>,
 *  as a fragment of text nodes (never parsed as HTML). */
function highlight(text, query) {
  const frag = document.createDocumentFragment();
  text = String(text);
  if (!query) {
    frag.appendChild(document.createTextNode(text));
    return frag;
  }
  const lower = text.toLowerCase(), q = query.toLowerCase();
  let at = 0;
  for (;;) {
    const i = lower.indexOf(q, at);
    if (i < 0) break;
    if (i > at) frag.appendChild(document.createTextNode(text.slice(at, i)));
    frag.appendChild(el('mark', {text: text.slice(i, i + q.length)}));
    at = i + q.length;
  }
  if (at < text.length) frag.appendChild(document.createTextNode(text.slice(at)));
  return frag;
}

function debounce(fn, ms) {
  let t = 0;
  return (...args) => {
    clearTimeout(t);
    t = setTimeout(() => fn(...args), ms);
  };
}

let toastTimer = 0;
/** A short message at the bottom of the page. */
function toast(msg, isError) {
  const t = $('#toast');
  if (!t) return;
  t.textContent = msg;
  t.classList.toggle('error', !!isError);
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { t.hidden = true; }, isError ? 6000 : 2500);
}

/** A message block for a view that could not load. */
function errorBox(err, what) {
  const msg = err && err.message ? err.message : String(err);
  return el('div', {className: 'error-box', attrs: {role: 'alert'}},
    el('strong', {text: what || 'Something went wrong'}), el('p', {text: msg}));
}

/** Small coloured label: badge('limited', 'warn'). */
function badge(text, kind, title) {
  return el('span', {className: 'badge ' + (kind || ''), text, title});
}

/** Status/limit badges shared by the list and the trace header. */
function traceBadges(t) {
  const out = [];
  if (t.status === 'open') out.push(badge('recording', 'info', 'The trace is still being received'));
  if (t.status === 'truncated') out.push(badge('truncated', 'bad', 'The program went away before the trace ended'));
  if (t.limit_reason) out.push(badge('limited: ' + t.limit_reason, 'warn', 'Recording stopped at a limit (' + t.limit_reason + ')'));
  if (t.dropped) out.push(badge(fmtCount(t.dropped) + ' dropped', 'bad', 'Events lost on the way to tphd'));
  return out;
}

/** Size a canvas to width x height CSS pixels at the screen's pixel ratio
 *  and return its 2d context, cleared, scaled to CSS pixels, with the given
 *  font and vertically centred text. */
function canvasContext(canvas, width, height, font) {
  const dpr = window.devicePixelRatio || 1;
  canvas.width = Math.floor(width * dpr);
  canvas.height = Math.floor(height * dpr);
  canvas.style.width = width + 'px';
  canvas.style.height = height + 'px';
  const ctx = canvas.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, width, height);
  ctx.font = font;
  ctx.textBaseline = 'middle';
  return ctx;
}
