// main.js: theme, navigation and start-up. Against tphd the page is a small
// single-page app (/ the list, /t/ID a trace, /diff/A/B a comparison,
// /frames the frame-time graphs); in an
// exported report it shows its one trace from the inlined data.

const THEMES = ['auto', 'light', 'dark'];

function storedTheme() {
  try {
    const t = localStorage.getItem('tp-theme');
    return THEMES.includes(t) ? t : 'auto';
  } catch (e) {
    return 'auto';
  }
}

function isDark() {
  const t = document.documentElement.dataset.theme || 'auto';
  return t === 'dark' || (t === 'auto' && window.matchMedia && matchMedia('(prefers-color-scheme: dark)').matches);
}

function applyTheme(t) {
  document.documentElement.dataset.theme = t;
  const btn = $('#theme');
  if (btn) {
    btn.textContent = t === 'auto' ? '◐ auto' : t === 'light' ? '☀ light' : '☾ dark';
    btn.title = 'Theme: ' + t + ' (click to change)';
  }
  window.dispatchEvent(new Event('tp-theme'));
}

function setCrumbs(items) {
  const c = $('#crumbs');
  if (!c) return;
  clear(c);
  for (const [text, href] of items) {
    c.appendChild(el('span', {className: 'sep', text: '/'}));
    c.appendChild(href ? el('a', {href, text, dataset: {nav: '1'}}) : el('span', {text}));
  }
}

function setLive(on) {
  const l = $('#live');
  if (l) l.hidden = !on;
}

const app = {src: null, view: null, seq: 0};

function navigate(path) {
  if (app.src.mode !== 'server') return;
  history.pushState(null, '', path);
  route();
}

async function route() {
  const seq = ++app.seq;
  if (app.view && app.view.destroy) app.view.destroy();
  app.view = null;
  const root = $('#app');
  const parts = location.pathname.split('/').filter(Boolean).map(decodeURIComponent);
  document.title = 'tracepatch';
  let view;
  if (app.src.mode === 'file') view = await traceView(root, app.src, app.src.traceId, navigate);
  else if (parts[0] === 't' && parts[1]) view = await traceView(root, app.src, parts[1], navigate);
  else if (parts[0] === 'frames') view = framesView(root, app.src, navigate);
  else if (parts[0] === 'diff' && parts[1] && parts[2]) view = await diffView(root, app.src, parts[1], parts[2]);
  else if (parts[0] === 'diff') {
    const q = new URLSearchParams(location.search);
    if (q.get('a') && q.get('b')) view = await diffView(root, app.src, q.get('a'), q.get('b'));
    else view = listView(root, app.src, navigate);
  } else view = listView(root, app.src, navigate);
  if (seq !== app.seq) {
    if (view && view.destroy) view.destroy();
    return;
  }
  app.view = view;
}

async function start() {
  applyTheme(storedTheme());
  $('#theme').addEventListener('click', () => {
    const t = THEMES[(THEMES.indexOf(document.documentElement.dataset.theme) + 1) % THEMES.length];
    try {
      localStorage.setItem('tp-theme', t);
    } catch (e) {
      // A report opened from a file may have no storage; the theme still changes.
    }
    applyTheme(t);
  });
  if (window.matchMedia) matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => applyTheme(document.documentElement.dataset.theme));

  const data = await inlineData();
  if (data && data.error) {
    clear($('#app')).appendChild(errorBox(data.error, 'Cannot show this report'));
    return;
  }
  app.src = withDisplayNames(data ? fileSource(data) : serverSource);
  window.tpSource = () => app.src; // for the browser tests: the data behind the views
  // For the browser tests: a saved report's source over packed bytes given.
  window.tpPackSource = (bytes, d) => fileSource(Object.assign({}, d, {pack: decodePack(Uint8Array.from(bytes))}));
  document.body.classList.toggle('file-mode', !!data);
  if (data) {
    $('#brand').removeAttribute('href');
  }

  document.addEventListener('click', (e) => {
    const a = e.target.closest('a[data-nav]');
    if (!a || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    if (app.src.mode !== 'server') {
      e.preventDefault();
      return;
    }
    e.preventDefault();
    navigate(a.getAttribute('href'));
  });
  $('#brand').addEventListener('click', (e) => {
    if (app.src.mode !== 'server' || e.button !== 0 || e.metaKey || e.ctrlKey) return;
    e.preventDefault();
    navigate('/');
  });
  window.addEventListener('popstate', route);
  document.addEventListener('keydown', (e) => {
    const t = e.target;
    if (t && (t.tagName === 'INPUT' || t.tagName === 'TEXTAREA' || t.isContentEditable)) return;
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (app.view && app.view.onKey && app.view.onKey(e)) return;
  });
  window.addEventListener('tp-theme', () => {
    if (app.view && app.view.onTheme) app.view.onTheme();
  });
  route();
}

start();
