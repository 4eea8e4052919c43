// list.js: the trace list. Filters by label (glob) and text, pages with
// "more", picks two traces to compare, and polls every 2 s (while the tab is
// visible) so new traces appear without a reload.

const LIST_PAGE = 50;
const LIST_POLL_MS = 2000;

function listView(app, src, nav) {
  const url = new URLSearchParams(location.search);
  const state = {
    label: url.get('label') || '',
    q: url.get('q') || '',
    limited: url.get('limited') === '1',
    traces: [],
    total: 0,
    want: LIST_PAGE,
    checked: new Set(),
    seen: null, // ids shown so far; new ones flash
    timer: 0,
    busy: false,
    dead: false,
  };

  const labelIn = el('input', {type: 'search', className: 'filter', id: 'filter-label', placeholder: 'label (glob, e.g. api-*)', value: state.label, attrs: {'aria-label': 'Filter by label'}});
  const textIn = el('input', {type: 'search', className: 'filter', id: 'filter-text', placeholder: 'text in label, id, command…', value: state.q, attrs: {'aria-label': 'Filter by text'}});
  const limitedIn = el('input', {type: 'checkbox', id: 'filter-limited', checked: state.limited});
  const compareBtn = el('button', {type: 'button', className: 'primary', id: 'compare', text: 'Compare', disabled: true, title: 'Tick two traces to compare them'});
  const count = el('span', {className: 'muted', id: 'list-count'});
  const tbody = el('tbody', {id: 'trace-rows'});
  const moreBtn = el('button', {type: 'button', id: 'list-more', text: 'Show more', hidden: true});
  const empty = el('p', {className: 'placeholder', id: 'list-empty', hidden: true});

  const table = el('table', {className: 'traces'},
    el('thead', null, el('tr', null,
      el('th', {className: 'pick', title: 'Compare two traces'}, ''),
      el('th', {text: 'Label'}), el('th', {text: 'Started'}), el('th', {className: 'num', text: 'Duration'}),
      el('th', {className: 'num', text: 'Calls'}), el('th', {text: 'Process'}), el('th', {text: ''}))),
    tbody);

  clear(app);
  append(app, [
    el('div', {className: 'toolbar'},
      labelIn, textIn,
      el('label', {className: 'check'}, limitedIn, ' limited only'),
      el('span', {className: 'grow'}), count,
      el('a', {href: '/frames', id: 'frames-link', className: 'btn', dataset: {nav: '1'}, text: 'Frames', title: 'Frame-time graphs per frame name'}),
      compareBtn),
    el('div', {className: 'table-wrap'}, table, empty),
    el('div', {className: 'center'}, moreBtn),
  ]);
  setCrumbs([]);

  function syncUrl() {
    const q = query({label: state.label, q: state.q, limited: state.limited});
    history.replaceState(history.state, '', '/' + q);
  }

  function updateCompare() {
    compareBtn.disabled = state.checked.size !== 2;
    compareBtn.textContent = state.checked.size === 2 ? 'Compare 2 traces' : 'Compare';
  }

  function row(t, fresh) {
    const box = el('input', {type: 'checkbox', className: 'pick-box', checked: state.checked.has(t.id),
      attrs: {'aria-label': 'Select ' + shortId(t.id) + ' to compare'}});
    box.addEventListener('change', () => {
      if (box.checked) state.checked.add(t.id); else state.checked.delete(t.id);
      if (state.checked.size > 2) {
        const first = state.checked.values().next().value;
        state.checked.delete(first);
        render();
      }
      updateCompare();
    });
    const argv = Array.isArray(t.argv) ? t.argv.join(' ') : '';
    const prog = Array.isArray(t.argv) && t.argv.length ? String(t.argv[0]).split('/').pop() : '';
    const proc = [t.pid ? 'pid ' + t.pid : '', prog, t.host || ''].filter(Boolean).join(' · ');
    const link = el('a', {href: '/t/' + t.id, className: 'trace-link', dataset: {nav: '1'}},
      t.label ? el('span', {className: 'label', text: t.label}) : el('span', {className: 'label none', text: '(no label)'}),
      el('span', {className: 'id mono', text: shortId(t.id)}));
    const tr = el('tr', {className: fresh ? 'fresh' : '', dataset: {id: t.id}},
      el('td', {className: 'pick'}, box),
      el('td', {className: 'label-cell'}, link),
      el('td', {title: fmtAgo(t.start)}, fmtTime(t.start)),
      el('td', {className: 'num mono ' + heat(t.duration_ms), text: fmtMs(t.duration_ms)}),
      el('td', {className: 'num mono', text: fmtCount(t.calls)}),
      el('td', {className: 'proc', title: argv || proc, text: proc}),
      el('td', {className: 'badges'}, traceBadges(t)));
    tr.addEventListener('click', (e) => {
      if (e.target.closest('a, input')) return;
      nav('/t/' + t.id);
    });
    return tr;
  }

  function render() {
    clear(tbody);
    const fresh = state.seen;
    for (const t of state.traces) tbody.appendChild(row(t, fresh && !fresh.has(t.id)));
    state.seen = new Set(state.traces.map((t) => t.id));
    count.textContent = state.total ? plural(state.total, 'trace') : '';
    moreBtn.hidden = state.traces.length >= state.total;
    empty.hidden = state.traces.length > 0;
    empty.textContent = state.label || state.q || state.limited
      ? 'No trace matches these filters.'
      : 'No traces yet. Trace something: with tracepatch.trace(label="…"): …';
    updateCompare();
  }

  async function load() {
    if (state.busy || state.dead) return;
    state.busy = true;
    try {
      // A label without a glob character matches anywhere in the label.
      const label = state.label && !/[*?[]/.test(state.label) ? '*' + state.label + '*' : state.label;
      const r = await src.list({label, q: state.q, limited: state.limited, limit: Math.min(state.want, 1000)});
      if (state.dead) return;
      const changed = r.total !== state.total || r.traces.length !== state.traces.length ||
        r.traces.some((t, i) => {
          const o = state.traces[i];
          return !o || o.id !== t.id || o.calls !== t.calls || o.status !== t.status || o.duration_ms !== t.duration_ms;
        });
      state.traces = r.traces;
      state.total = r.total;
      if (changed) render();
      setLive(true);
    } catch (e) {
      if (!state.dead) {
        setLive(false);
        if (!state.traces.length) {
          clear(tbody);
          empty.hidden = false;
          empty.textContent = '';
          empty.appendChild(errorBox(e, 'Cannot list traces'));
        }
      }
    } finally {
      state.busy = false;
    }
  }

  function schedule() {
    clearTimeout(state.timer);
    if (state.dead || src.mode !== 'server') return;
    state.timer = setTimeout(async () => {
      if (document.visibilityState === 'visible') await load();
      schedule();
    }, LIST_POLL_MS);
  }

  const refilter = debounce(() => {
    state.label = labelIn.value.trim();
    state.q = textIn.value.trim();
    state.limited = limitedIn.checked;
    state.want = LIST_PAGE;
    state.seen = null;
    state.total = -1;
    syncUrl();
    load();
  }, 200);
  labelIn.addEventListener('input', refilter);
  textIn.addEventListener('input', refilter);
  limitedIn.addEventListener('change', refilter);
  moreBtn.addEventListener('click', () => {
    state.want += LIST_PAGE;
    load();
  });
  compareBtn.addEventListener('click', () => {
    const [a, b] = Array.from(state.checked);
    // Older first, so the diff reads "before -> after".
    const ta = state.traces.find((t) => t.id === a), tb = state.traces.find((t) => t.id === b);
    const swap = ta && tb && ta.start > tb.start;
    nav('/diff/' + (swap ? b : a) + '/' + (swap ? a : b));
  });

  load().then(schedule);
  return {
    destroy() {
      state.dead = true;
      clearTimeout(state.timer);
      setLive(false);
    },
    onKey(e) {
      if (e.key === '/') {
        e.preventDefault();
        textIn.focus();
        return true;
      }
      return false;
    },
  };
}
