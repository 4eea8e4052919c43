/* The text tree in tracepatch 1.0.0's grammar (its stats header and the
 * `tph stats` and `tph diff` reports are in render_report.c).
 *
 * A call is one line:
 *
 *   <prefix><connector><module.qualname>(<args>)<result><markers>  [<time>]  (<file>:<line>)
 *
 *   connector  "├── " / "└── " (unicode), "|-- " / "`-- " (ascii); the prefix
 *              repeats "│   " / "|   " under a parent with later siblings and
 *              "    " under a last child.
 *   args       "()" when arguments are hidden or were not captured.
 *   result     " -> <repr>" for a return value; " !! Type: message" for an
 *              exception that propagated out (it takes the place of "->").
 *              Both are hidden when return values are.
 *   markers    "  (caught Type)"     an exception was raised and handled inside
 *              "  (resumed N×)"      a generator or coroutine that suspended N
 *                                    times ("Nx" in ascii)
 *   time       "[1.23ms]"; "[1.23ms / self: 0.10ms]" with self time (on every
 *              call, as tracepatch's docs show it); "[1.23ms, unfinished]" for
 *              a call still open when the trace stopped.
 *   source     "  (file.py:12)" when asked for and known.
 *
 * A folded group of N consecutive calls of one function:
 *
 *   <name>(<args>)[ -> <repr>][ !! K raised]<markers>  [×N]  [<times>]
 *
 * where times reads "5.00ms total, avg 0.01ms, min 0.01ms, max 0.02ms",
 * args read "(...)" and the return value is left out when they differ within
 * the group, and self time comes as " / self: X" after the total.
 *
 * A node whose children fall past the depth limit gets one child line
 * "[N nested calls...]" (N counts calls, a folded group as its size). After
 * the tree: "(trace limited: <reason>; N calls recorded)" when a capture
 * limit stopped the trace, "(trace incomplete: N events dropped)" when
 * events were lost, and "(trace still running: N calls so far)" for a trace
 * tphd is still receiving (its calls that have not returned read
 * "unfinished"). An empty tree prints "No calls captured in this trace."
 * and a tree the filters hide entirely "No calls match the filter criteria."
 *
 * Colour (opts->color) only ever wraps whole tokens and resets after each:
 * names bold, exceptions bold red, the time bracket green (< 1 ms), yellow
 * (< 100 ms) or red. Without colour the output holds no escape byte at all:
 * untrusted text goes through tp__render_text().
 *
 * Every walk is iterative over the index links: deep traces must not
 * overflow the C stack. */
#include <errno.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hmap.h"
#include "json.h"
#include "render.h"
#include "render_priv.h"
#include "tp_err.h"
#include "tree_priv.h"

#define NS_PER_MS INT64_C(1000000)

/* ---- Escaping and small formatters -------------------------------------- */

static bool needs_unicode_escape(uint32_t cp)
{
    return (cp >= 0x80 && cp <= 0x9f) ||     /* C1 controls (0x9b is CSI) */
           cp == 0x2028 || cp == 0x2029 ||   /* line/paragraph separators */
           (cp >= 0x200e && cp <= 0x200f) || /* LRM, RLM */
           (cp >= 0x202a && cp <= 0x202e) || /* bidi embeddings/overrides */
           (cp >= 0x2066 && cp <= 0x2069);   /* bidi isolates */
}

static void put_control(tp_buf *b, unsigned char c)
{
    switch (c) {
    case '\n':
        tp_buf_append(b, "\\n", 2);
        break;
    case '\r':
        tp_buf_append(b, "\\r", 2);
        break;
    case '\t':
        tp_buf_append(b, "\\t", 2);
        break;
    default:
        tp_buf_printf(b, "\\x%02x", c);
        break;
    }
}

void tp__render_text(tp_buf *b, const char *s, size_t n, bool ascii)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        size_t run = i;
        while (run < n && p[run] >= 0x20 && p[run] < 0x7f)
            run++;
        if (run > i) {
            tp_buf_append(b, p + i, run - i);
            i = run;
            continue;
        }
        if (p[i] < 0x80) {
            put_control(b, p[i++]);
            continue;
        }
        uint32_t cp;
        size_t len = tp_json_utf8_decode(p + i, n - i, &cp);
        if (!len) {
            tp_buf_printf(b, "\\x%02x", p[i++]);
        } else if (ascii || needs_unicode_escape(cp)) {
            if (cp > 0xffff)
                tp_buf_printf(b, "\\U%08" PRIx32, cp);
            else
                tp_buf_printf(b, "\\u%04" PRIx32, cp);
            i += len;
        } else {
            tp_buf_append(b, p + i, len);
            i += len;
        }
    }
}

size_t tp__render_width(const char *s, size_t n)
{
    size_t w = 0;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xc0) != 0x80)
            w++;
    return w;
}

void tp_render_escape(tp_buf *b, const char *s, size_t n)
{
    tp__render_text(b, s, n, false);
}

static void put_str(tp_buf *b, const char *s, bool ascii)
{
    tp__render_text(b, s, strlen(s), ascii);
}

void tp__render_name(tp_buf *b, const tp_tree *t, uint32_t func, bool ascii)
{
    if (func >= t->nfuncs) {
        tp_buf_putc(b, '?');
        return;
    }
    const tp_func *f = &t->funcs[func];
    if (f->module[0]) {
        put_str(b, f->module, ascii);
        tp_buf_putc(b, '.');
    }
    put_str(b, f->qualname, ascii);
}

void tp__render_ms(tp_buf *b, int64_t ns, int decimals)
{
    if (ns < 0)
        ns = 0;
    int64_t unit = decimals >= 6 ? 1 : decimals == 4 ? 100 : 1000; /* ns per last digit */
    int64_t scale = NS_PER_MS / unit;                              /* digits per ms */
    int64_t v = ns / unit + (ns % unit >= unit / 2 && unit > 1 ? 1 : 0);
    tp_json_put_fixed(b, v / scale, v % scale, decimals >= 6 ? 6 : decimals);
}

/* 3 significant digits in the largest unit the value reaches: "850ns",
 * "1.23\u00b5s", "12.3ms", "123ms", "1.23s", "1234s". A value that rounds up
 * to 1000 of a unit moves to the next one ("999.6\u00b5s" is "1.00ms").
 * TP_DUR_MS gives tracepatch 1.0.0's fixed hundredths of a millisecond
 * instead ("0.05ms", switching to "1.23s" at 1000 ms); TP_DUR_ASCII spells
 * the microsecond "us". Integers only. Returns the length written (buf holds DUR_MAX). */
/* Room for any duration: 19 digits, a point, 2 decimals, "\u00b5s", NUL. */
#define DUR_MAX 32

/* "<whole>[.<frac with dec digits>]<unit>" at o; returns its length. No
 * printf: a tree prints one to four durations per call. */
static int put_dur(char *o, int64_t v, int64_t p, int dec, const char *unit)
{
    char d[24];
    size_t i = sizeof(d), n = 0;
    uint64_t whole = (uint64_t)(v / p);
    do {
        d[--i] = (char)('0' + whole % 10);
        whole /= 10;
    } while (whole);
    memcpy(o, d + i, sizeof(d) - i);
    n = sizeof(d) - i;
    if (dec) {
        int64_t frac = v % p;
        o[n++] = '.';
        for (int k = dec; k > 0; k--, frac /= 10)
            o[n + (size_t)k - 1] = (char)('0' + frac % 10);
        n += (size_t)dec;
    }
    size_t ul = strlen(unit);
    memcpy(o + n, unit, ul + 1);
    return (int)(n + ul);
}

static int fmt_duration(char *buf, int64_t ns, unsigned how)
{
    if (ns < 0)
        ns = 0;
    if (how & TP_DUR_MS) {
        int64_t cms = ns / 10000 + (ns % 10000 >= 5000);
        if (cms < 100000)
            return put_dur(buf, cms, 100, 2, "ms");
        int64_t cs = ns / 10000000 + (ns % 10000000 >= 5000000);
        return put_dur(buf, cs, 100, 2, "s");
    }
    if (ns < 1000)
        return put_dur(buf, ns, 1, 0, "ns");
    static const int64_t units[] = {1000, 1000000, 1000000000};
    const char *names[] = {(how & TP_DUR_ASCII) ? "us" : "\u00b5s", "ms", "s"};
    /* The most decimals (2, 1, 0) that keep the rounded value under 1000,
     * that is 3 significant digits, in the smallest unit where one fits. */
    for (int u = 0; u < 3; u++) {
        for (int dec = 2; dec >= 0; dec--) {
            int64_t p = dec == 2 ? 100 : dec == 1 ? 10 : 1;
            int64_t step = units[u] / p;
            int64_t v = ns / step + (ns % step >= step / 2 && step > 1);
            if (v >= 1000 && !(u == 2 && dec == 0))
                continue;
            return put_dur(buf, v, p, dec, names[u]);
        }
    }
    return 0; /* not reached: seconds take any value */
}

const char *tp_render_format_duration(int64_t ns, char *buf, size_t size)
{
    char d[DUR_MAX];
    fmt_duration(d, ns, 0);
    if (buf && size)
        snprintf(buf, size, "%s", d);
    return buf;
}

void tp_render_opts_init(tp_render_opts *o)
{
    *o = (tp_render_opts){
        .style = TP_STYLE_UNICODE,
        .args = true,
        .returns = true,
        .header = true,
        .fold = true,
        .max_depth = -1,
    };
}

void tp__render_duration(tp_buf *b, int64_t ns, unsigned how)
{
    char d[DUR_MAX];
    int n = fmt_duration(d, ns, how);
    tp_buf_append(b, d, (size_t)n);
}

static const char *duration_sgr(int64_t ns)
{
    return ns < NS_PER_MS ? SGR_FAST : ns < 100 * NS_PER_MS ? SGR_SLOW : SGR_HOT;
}

/* ---- The shown tree ----------------------------------------------------- */

/* Per node of the tree being shown: its place in the view (the tree after
 * filters and the depth limit). parent is the nearest visible ancestor for
 * every visited node, shown or not. Entries past the tree's nodes are the
 * lines that stand for no call (vsyn): a thread's roots, a sequence's
 * groups. */
typedef struct vnode {
    uint32_t first, last, next, parent;
    uint32_t depth; /* in the view: roots are 0 */
    uint32_t level; /* calls above this node's children: the depth limit counts calls, not the
                       lines that only group them */
    uint32_t cut;   /* calls below this node hidden by the depth limit */
    uint32_t grp;   /* the grouping line this node hangs under, TP_NONE when none */
    uint8_t shown;
} vnode;

/* A grouping line: the roots of one thread, or the groups of one folded
 * sequence (head and its next head->seq - 1 siblings). */
typedef struct vsyn {
    uint32_t head;                 /* the first node it groups */
    uint32_t parent;               /* the visible entry it hangs under, TP_NONE at the top */
    const tp_thread_group *thread; /* NULL for a sequence */
} vsyn;

typedef struct view {
    const tp_tree *s;
    vnode *v; /* s->nnodes + the grouping lines */
    vsyn *syn;
    size_t nsyn, syn_cap;
    tp_thread_group *groups;
    size_t ngroups;
    uint32_t first_root, last_root;
    uint32_t root_cut; /* max_depth 0: every top-level call is cut */
    uint32_t maxdepth; /* deepest shown node */
    size_t shown;
} view;

static bool match_func(const tp_func *f, const char *pat, const char *full)
{
    return fnmatch(pat, full, FNM_NOESCAPE) == 0 || fnmatch(pat, f->module, FNM_NOESCAPE) == 0;
}

/* Which functions pass the filters: kept by any "glob" (or when there is no
 * keep pattern) and dropped by no "!glob". Decided once per function. */
static int filter_funcs(const tp_tree *s, const char *const *filters, uint8_t **ret)
{
    uint8_t *ok = malloc(s->nfuncs ? s->nfuncs : 1);
    if (!ok)
        return -ENOMEM;
    bool any_keep = false;
    for (size_t k = 0; filters && filters[k]; k++)
        if (filters[k][0] != '!')
            any_keep = true;
    tp_buf full = TP_BUF_INIT;
    for (size_t f = 0; f < s->nfuncs; f++) {
        const tp_func *fn = &s->funcs[f];
        tp_buf_reset(&full);
        if (fn->module[0])
            tp_buf_printf(&full, "%s.", fn->module);
        tp_buf_puts(&full, fn->qualname);
        const char *name = tp_buf_cstr(&full);
        bool keep = !any_keep, drop = false;
        for (size_t k = 0; filters && filters[k]; k++) {
            const char *p = filters[k];
            if (p[0] == '!')
                drop = drop || match_func(fn, p + 1, name);
            else
                keep = keep || match_func(fn, p, name);
        }
        ok[f] = keep && !drop;
    }
    int r = tp_buf_error(&full);
    tp_buf_free(&full);
    if (r) {
        free(ok);
        return r;
    }
    *ret = ok;
    return 0;
}

static bool is_syn(const view *w, uint32_t i)
{
    return i != TP_NONE && i >= w->s->nnodes;
}

/* Links i under parent. A grouping line is linked when its first line is,
 * so one whose calls are all hidden never shows. */
static void view_link(view *w, uint32_t i, uint32_t parent)
{
    vnode *v = w->v;
    if (is_syn(w, parent) && !v[parent].shown)
        view_link(w, parent, w->syn[parent - w->s->nnodes].parent);
    v[i].shown = 1;
    v[i].first = v[i].last = v[i].next = TP_NONE;
    v[i].cut = 0;
    v[i].depth = parent == TP_NONE ? 0 : v[parent].depth + 1;
    if (!is_syn(w, i))
        v[i].level = (parent == TP_NONE ? 0 : v[parent].level) + 1;
    if (v[i].depth > w->maxdepth)
        w->maxdepth = v[i].depth;
    uint32_t *first = parent == TP_NONE ? &w->first_root : &v[parent].first;
    uint32_t *last = parent == TP_NONE ? &w->last_root : &v[parent].last;
    if (*last == TP_NONE)
        *first = i;
    else
        v[*last].next = i;
    *last = i;
    w->shown++;
}

static uint32_t add_sat(uint32_t a, uint32_t b)
{
    return a > UINT32_MAX - b ? UINT32_MAX : a + b;
}

/* A new grouping line under parent (not linked yet); its index in v. */
static uint32_t add_syn(view *w, uint32_t head, uint32_t parent, const tp_thread_group *g)
{
    size_t k = w->nsyn++;
    uint32_t idx = (uint32_t)(w->s->nnodes + k);
    w->syn[k] = (vsyn){.head = head, .parent = parent, .thread = g};
    w->v[idx] = (vnode){.first = TP_NONE,
                        .last = TP_NONE,
                        .next = TP_NONE,
                        .parent = parent,
                        .grp = TP_NONE,
                        .level = parent == TP_NONE ? 0 : w->v[parent].level};
    return idx;
}

/* The entry a node whose parent (or grouping line) is p hangs under. */
static uint32_t visible(const view *w, uint32_t p)
{
    if (p == TP_NONE || is_syn(w, p) || w->v[p].shown)
        return p;
    return w->v[p].parent;
}

/* The lines that stand for no call: one per grouped thread, made before the
 * walk (every root of the thread points at it), and at most one per folded
 * sequence, made when the walk meets its first group. */
static int plan_groups(view *w, const tp_tree *s)
{
    int r = tp_tree_thread_groups(s, &w->groups, &w->ngroups);
    if (r)
        return r;
    size_t nseq = 0;
    for (size_t i = 0; i < s->nnodes; i++)
        nseq += s->nodes[i].seq >= 2;
    w->syn_cap = w->ngroups + nseq;
    w->v = malloc((s->nnodes + w->syn_cap ? s->nnodes + w->syn_cap : 1) * sizeof(vnode));
    w->syn = malloc((w->syn_cap ? w->syn_cap : 1) * sizeof(vsyn));
    if (!w->v || !w->syn)
        return -ENOMEM;
    for (size_t i = 0; i < s->nnodes; i++)
        w->v[i].grp = TP_NONE;
    if (!w->ngroups)
        return 0;
    tp_hmap at = {0};
    for (size_t k = 0; k < w->ngroups; k++) {
        add_syn(w, w->groups[k].first_root, TP_NONE, &w->groups[k]);
        if (tp_hmap_put(&at, w->groups[k].thread, s->nnodes + k) < 0) {
            tp_hmap_free(&at);
            return -ENOMEM;
        }
    }
    for (uint32_t i = s->first_root; i != TP_NONE; i = s->nodes[i].next) {
        uint64_t g;
        if (s->nodes[i].thread && tp_hmap_get(&at, s->nodes[i].thread, &g))
            w->v[i].grp = (uint32_t)g;
    }
    tp_hmap_free(&at);
    return 0;
}

/* One pre-order walk: a visible node links under its nearest visible
 * ancestor, so a hidden node's visible descendants move up in order. */
static int build_view(view *w, const tp_tree *s, const tp_render_opts *o)
{
    uint8_t *ok = NULL;
    *w = (view){.s = s, .first_root = TP_NONE, .last_root = TP_NONE};
    int r = filter_funcs(s, o->filters, &ok);
    if (!r)
        r = plan_groups(w, s);
    if (r) {
        free(ok);
        return r;
    }
    vnode *v = w->v;
    uint32_t i = s->first_root;
    while (i != TP_NONE) {
        const tp_node *n = &s->nodes[i];
        uint32_t ep = v[i].grp != TP_NONE ? v[i].grp : n->parent;
        if (n->seq >= 2 && w->nsyn < w->syn_cap) {
            uint32_t g = add_syn(w, i, visible(w, ep), NULL);
            uint32_t j = i;
            for (uint32_t k = 0; k < n->seq && j != TP_NONE; k++, j = s->nodes[j].next)
                v[j].grp = g;
            ep = g;
        }
        uint32_t va = visible(w, ep);
        bool descend = true;
        v[i].shown = 0;
        v[i].parent = va;
        if (n->func < s->nfuncs && ok[n->func]) {
            uint32_t d = va == TP_NONE ? 0 : v[va].level;
            if (o->max_depth >= 0 && d >= (uint32_t)o->max_depth) {
                /* A cut shows under a call, never under a grouping line. */
                uint32_t c = va;
                while (is_syn(w, c))
                    c = w->syn[c - s->nnodes].parent;
                uint32_t *cut = c == TP_NONE ? &w->root_cut : &v[c].cut;
                *cut = add_sat(*cut, n->count);
                descend = false; /* everything below is deeper still */
            } else {
                view_link(w, i, va);
            }
        }
        i = descend && n->first_child != TP_NONE ? n->first_child : tp__tree_after(s, i);
    }
    free(ok);
    return 0;
}

/* ---- One line ----------------------------------------------------------- */

static void put_exception(tp_buf *b, const tp_node *n, bool ascii)
{
    put_str(b, n->exc_type ? n->exc_type : "", ascii);
    if (n->exc_msg && n->exc_msg[0]) {
        tp_buf_puts(b, ": ");
        put_str(b, n->exc_msg, ascii);
    }
}

static void put_result(tp_buf *b, const tp_node *n, const tp_render_opts *o, bool ascii)
{
    bool folded = (n->flags & TP_NODE_FOLDED) != 0;
    if (!o->returns)
        return;
    if (!folded && (n->flags & TP_NODE_EXC)) {
        tp_buf_puts(b, " ");
        if (o->color)
            tp_buf_puts(b, SGR_EXC);
        tp_buf_puts(b, "!! ");
        put_exception(b, n, ascii);
        if (o->color)
            tp_buf_puts(b, SGR_RESET);
        return;
    }
    if (n->ret && !(folded && (n->flags & TP_NODE_RET_MIXED))) {
        tp_buf_puts(b, " -> ");
        put_str(b, n->ret, ascii);
    }
    if (folded && n->nexc) {
        tp_buf_puts(b, " ");
        if (o->color)
            tp_buf_puts(b, SGR_EXC);
        tp_buf_printf(b, "!! %" PRIu32 " raised", n->nexc);
        if (o->color)
            tp_buf_puts(b, SGR_RESET);
    }
}

static void put_markers(tp_buf *b, const tp_node *n, bool ascii)
{
    if ((n->flags & TP_NODE_CAUGHT) && n->exc_type &&
        !(n->flags & TP_NODE_EXC && !(n->flags & TP_NODE_FOLDED))) {
        tp_buf_puts(b, "  (caught ");
        put_str(b, n->exc_type, ascii);
        tp_buf_putc(b, ')');
    }
    /* A single generator says it in its time bracket (put_timing). */
    if ((n->flags & TP_NODE_GEN) && n->suspends && (n->flags & TP_NODE_FOLDED))
        tp_buf_printf(b, "  (resumed %" PRIu32 "%s)", n->suspends, ascii ? "x" : "\u00d7");
    if (n->flags & TP_NODE_SPAWNED)
        tp_buf_puts(b, "  (task)");
    if (n->flags & TP_NODE_SHAPE_MIXED)
        tp_buf_puts(b, "  (calls differ)");
    if (n->flags & TP_NODE_FOLDED)
        tp_buf_printf(b, "  [%s%" PRIu32 "]", ascii ? "x" : "\u00d7", n->count);
}

unsigned tp__render_dur_how(const tp_render_opts *o)
{
    return (o->ms_units ? TP_DUR_MS : 0) | (o->style == TP_STYLE_ASCII ? TP_DUR_ASCII : 0);
}

/* track_memory: ", +976.6 KB" inside the timing bracket, as 1.0.0 writes it
 * ("[12.3ms, +976.6 KB]"): the traced memory the call left behind (a folded
 * group: its calls' sum), in KB, MB or GB of 1024, one decimal. */
static void put_memory(tp_buf *b, const tp_node *n)
{
    int64_t d = n->mem_delta;
    uint64_t u = d < 0 ? 0 - (uint64_t)d : (uint64_t)d;
    uint64_t unit = 1024;
    const char *name = "KB";
    if (u >= (uint64_t)1 << 30) {
        unit = (uint64_t)1 << 30;
        name = "GB";
    } else if (u >= (uint64_t)1 << 20) {
        unit = (uint64_t)1 << 20;
        name = "MB";
    }
    uint64_t whole = u / unit, tenth = (u % unit * 10 + unit / 2) / unit;
    if (tenth == 10) {
        whole++;
        tenth = 0;
    }
    tp_buf_printf(b, ", %c%" PRIu64 ".%" PRIu64 " %s", d < 0 ? '-' : '+', whole, tenth, name);
}

/* "[1.23ms]", "[1.23ms / self: 0.10ms]"; a generator or coroutine that
 * suspended: "[0.21ms active, 80.1ms span, resumed 4×]" (its time is what it
 * ran, the span is first resume to end); a folded group: "[5.00ms total, avg
 * ..., min ..., max ...]"; a measured call adds its memory: "[1.23ms, +976.6 KB]". */
static void put_timing(tp_buf *b, const tp_node *n, const tp_render_opts *o)
{
    bool folded = (n->flags & TP_NODE_FOLDED) != 0;
    bool gen = !folded && (n->flags & TP_NODE_GEN) && n->suspends;
    unsigned how = tp__render_dur_how(o);
    tp_buf_puts(b, "  ");
    if (o->color)
        tp_buf_puts(b, duration_sgr(n->total_ns));
    tp_buf_putc(b, '[');
    tp__render_duration(b, n->total_ns, how);
    if (folded)
        tp_buf_puts(b, " total");
    if (gen)
        tp_buf_puts(b, " active");
    if (o->self_time) {
        tp_buf_puts(b, " / self: ");
        tp__render_duration(b, n->self_ns, how);
    }
    if (gen) {
        tp_buf_puts(b, ", ");
        tp__render_duration(b, n->end_ns - n->start_ns, how);
        tp_buf_printf(b, " span, resumed %" PRIu32 "%s", n->suspends,
                      o->style == TP_STYLE_ASCII ? "x" : "\u00d7");
    }
    if (folded) {
        tp_buf_puts(b, ", avg ");
        tp__render_duration(b, n->count ? n->total_ns / n->count : 0, how);
        tp_buf_puts(b, ", min ");
        tp__render_duration(b, n->min_ns, how);
        tp_buf_puts(b, ", max ");
        tp__render_duration(b, n->max_ns, how);
    }
    if (n->flags & TP_NODE_MEM)
        put_memory(b, n);
    if (n->flags & TP_NODE_OPEN)
        tp_buf_puts(b, ", unfinished");
    tp_buf_putc(b, ']');
    if (o->color)
        tp_buf_puts(b, SGR_RESET);
}

static void put_node(tp_buf *b, const tp_tree *s, const tp_node *n, const tp_render_opts *o)
{
    bool ascii = o->style == TP_STYLE_ASCII;
    const tp_func *f = n->func < s->nfuncs ? &s->funcs[n->func] : NULL;
    if (o->color)
        tp_buf_puts(b, SGR_BOLD);
    tp__render_name(b, s, n->func, ascii);
    if (o->color)
        tp_buf_puts(b, SGR_RESET);
    tp_buf_putc(b, '(');
    if (o->args && n->args) {
        if ((n->flags & TP_NODE_FOLDED) && (n->flags & TP_NODE_ARGS_MIXED))
            tp_buf_puts(b, "...");
        else
            put_str(b, n->args, ascii);
    }
    tp_buf_putc(b, ')');
    put_result(b, n, o, ascii);
    put_markers(b, n, ascii);
    put_timing(b, n, o);
    if (o->source && f && f->file[0]) {
        tp_buf_puts(b, "  (");
        put_str(b, f->file, ascii);
        if (f->lineno > 0)
            tp_buf_printf(b, ":%" PRId32, f->lineno);
        tp_buf_putc(b, ')');
    }
    tp_buf_putc(b, '\n');
}

/* "thread Thread-3 (worker)  [5 calls, 1.23ms]": a thread's top-level
 * calls hang under it; the time is theirs, summed. */
static void put_thread_line(tp_buf *b, const tp_thread_group *g, const tp_render_opts *o)
{
    bool ascii = o->style == TP_STYLE_ASCII;
    if (o->color)
        tp_buf_puts(b, SGR_BOLD);
    tp_buf_puts(b, "thread ");
    if (g->name)
        put_str(b, g->name, ascii);
    else
        tp_buf_printf(b, "%" PRIu32, g->thread);
    if (o->color)
        tp_buf_puts(b, SGR_RESET);
    tp_buf_printf(b, "  [%" PRIu64 " call%s, ", g->calls, g->calls == 1 ? "" : "s");
    tp__render_duration(b, g->total_ns, tp__render_dur_how(o));
    tp_buf_puts(b, "]\n");
}

/* "[app.parse, app.price]  [×N]  [1.50ms total, avg 0.50ms]": the groups of
 * one folded sequence, head first; the time is all their calls', the
 * average one repetition's. */
static void put_seq_line(tp_buf *b, const tp_tree *s, uint32_t head, const tp_render_opts *o)
{
    bool ascii = o->style == TP_STYLE_ASCII;
    const tp_node *h = &s->nodes[head];
    int64_t total = 0, self = 0;
    uint64_t nexc = 0;
    uint32_t flags = 0;
    tp_buf_putc(b, '[');
    uint32_t j = head;
    for (uint32_t k = 0; k < h->seq && j != TP_NONE; k++, j = s->nodes[j].next) {
        const tp_node *n = &s->nodes[j];
        if (k)
            tp_buf_puts(b, ", ");
        if (o->color)
            tp_buf_puts(b, SGR_BOLD);
        tp__render_name(b, s, n->func, ascii);
        if (o->color)
            tp_buf_puts(b, SGR_RESET);
        total += n->total_ns;
        self += n->self_ns;
        nexc += n->nexc;
        flags |= n->flags;
    }
    tp_buf_putc(b, ']');
    if (o->returns && nexc) {
        tp_buf_puts(b, " ");
        if (o->color)
            tp_buf_puts(b, SGR_EXC);
        tp_buf_printf(b, "!! %" PRIu64 " raised", nexc);
        if (o->color)
            tp_buf_puts(b, SGR_RESET);
    }
    if (flags & TP_NODE_SHAPE_MIXED)
        tp_buf_puts(b, "  (calls differ)");
    tp_buf_printf(b, "  [%s%" PRIu32 "]", ascii ? "x" : "\u00d7", h->count);
    unsigned how = tp__render_dur_how(o);
    tp_buf_puts(b, "  ");
    if (o->color)
        tp_buf_puts(b, duration_sgr(total));
    tp_buf_putc(b, '[');
    tp__render_duration(b, total, how);
    tp_buf_puts(b, " total");
    if (o->self_time) {
        tp_buf_puts(b, " / self: ");
        tp__render_duration(b, self, how);
    }
    tp_buf_puts(b, ", avg ");
    tp__render_duration(b, h->count ? total / h->count : 0, how);
    if (flags & TP_NODE_OPEN)
        tp_buf_puts(b, ", unfinished");
    tp_buf_putc(b, ']');
    if (o->color)
        tp_buf_puts(b, SGR_RESET);
    tp_buf_putc(b, '\n');
}

static void put_line(tp_buf *b, const view *w, uint32_t i, const tp_render_opts *o)
{
    if (!is_syn(w, i)) {
        put_node(b, w->s, &w->s->nodes[i], o);
        return;
    }
    const vsyn *g = &w->syn[i - w->s->nnodes];
    if (g->thread)
        put_thread_line(b, g->thread, o);
    else
        put_seq_line(b, w->s, g->head, o);
}

/* ---- The tree ----------------------------------------------------------- */

typedef struct glyphs {
    const char *mid, *last, *cont, *space;
} glyphs;

static const glyphs unicode_glyphs = {"\u251c\u2500\u2500 ", "\u2514\u2500\u2500 ", "\u2502   ",
                                      "    "};
static const glyphs ascii_glyphs = {"|-- ", "`-- ", "|   ", "    "};

/* Levels of indentation a line shows at most: deeper lines show their last
 * TP_TEXT_MAX_INDENT levels behind a "[+N] " marker (N levels left out), so
 * a line's length, and the output, stays linear in the calls however deep
 * the trace (a 200k-deep recursion would otherwise print ~80 GB). */
#define TP_TEXT_MAX_INDENT 64

static void put_prefix(tp_buf *b, const char *prefix, const size_t *plen, uint32_t d)
{
    if (d <= TP_TEXT_MAX_INDENT) {
        tp_buf_append(b, prefix, plen[d]);
        return;
    }
    uint32_t from = d - TP_TEXT_MAX_INDENT;
    tp_buf_printf(b, "[+%" PRIu32 "] ", from);
    tp_buf_append(b, prefix + plen[from], plen[d] - plen[from]);
}

static void put_cut(tp_buf *b, const char *prefix, const size_t *plen, uint32_t d, const glyphs *g,
                    uint32_t n)
{
    put_prefix(b, prefix, plen, d);
    tp_buf_puts(b, g->last);
    tp_buf_printf(b, "[%" PRIu32 " nested calls...]\n", n);
}

/* Pre-order over the view. prefix holds one segment per level; plen[d] is
 * where level d's connector starts. */
static int print_view(const view *w, const tp_render_opts *o, tp_buf *out)
{
    const glyphs *g = o->style == TP_STYLE_ASCII ? &ascii_glyphs : &unicode_glyphs;
    size_t seg = strlen(g->cont) > strlen(g->space) ? strlen(g->cont) : strlen(g->space);
    size_t levels = (size_t)w->maxdepth + 2;
    char *prefix = malloc(levels * seg + 1);
    size_t *plen = malloc(levels * sizeof(*plen));
    if (!prefix || !plen) {
        free(prefix);
        free(plen);
        return -ENOMEM;
    }
    const vnode *v = w->v;
    plen[0] = 0;
    if (w->first_root == TP_NONE && w->root_cut)
        put_cut(out, prefix, plen, 0, g, w->root_cut);
    uint32_t i = w->first_root;
    while (i != TP_NONE && !tp_buf_error(out)) {
        uint32_t d = v[i].depth;
        bool last = v[i].next == TP_NONE;
        put_prefix(out, prefix, plen, d);
        tp_buf_puts(out, last ? g->last : g->mid);
        put_line(out, w, i, o);
        const char *ext = last ? g->space : g->cont;
        if (v[i].first != TP_NONE || v[i].cut) {
            memcpy(prefix + plen[d], ext, strlen(ext));
            plen[d + 1] = plen[d] + strlen(ext);
        }
        if (v[i].first != TP_NONE) {
            i = v[i].first;
            continue;
        }
        if (v[i].cut)
            put_cut(out, prefix, plen, d + 1, g, v[i].cut);
        while (i != TP_NONE && v[i].next == TP_NONE)
            i = v[i].parent;
        if (i != TP_NONE)
            i = v[i].next;
    }
    free(prefix);
    free(plen);
    return tp_buf_error(out);
}

static void put_trailer(tp_buf *out, const tp_tree *t, bool ascii)
{
    if (t->meta.limit_reason) {
        tp_buf_puts(out, "(trace limited: ");
        put_str(out, t->meta.limit_reason, ascii);
        tp_buf_printf(out, "; %" PRIu64 " calls recorded)\n", t->meta.call_count);
    }
    if (t->meta.dropped)
        tp_buf_printf(out, "(trace incomplete: %" PRIu64 " events dropped)\n", t->meta.dropped);
    if (t->meta.running)
        tp_buf_printf(out, "(trace still running: %" PRIu64 " calls so far)\n", t->meta.call_count);
}

int tp_render_text(const tp_tree *t, const tp_render_opts *opts, tp_buf *out)
{
    if (!t || !out)
        return -EINVAL;
    tp_render_opts defaults;
    tp_render_opts_init(&defaults);
    const tp_render_opts *o = opts ? opts : &defaults;
    if (o->style != TP_STYLE_UNICODE && o->style != TP_STYLE_ASCII)
        return -EINVAL;
    bool ascii = o->style == TP_STYLE_ASCII;
    tp_tree *folded = NULL;
    tp_stats *st = NULL;
    view w = {0};
    int r = 0;
    if (o->header) {
        r = tp_tree_stats(t, &st);
        if (!r)
            r = tp__render_header(t, st, ascii, o->color, tp__render_dur_how(o), out);
        if (r)
            goto cleanup;
        tp_buf_putc(out, '\n');
    }
    const tp_tree *s = t;
    if (o->fold && !t->folded && t->nnodes) {
        tp_fold_opts fo = {.threshold = o->fold_threshold ? o->fold_threshold : 2};
        r = tp_tree_fold(t, &fo, &folded);
        if (r)
            goto cleanup;
        s = folded;
    }
    r = build_view(&w, s, o);
    if (r)
        goto cleanup;
    if (!s->nnodes)
        tp_buf_puts(out, "No calls captured in this trace.\n");
    else if (!w.shown && !w.root_cut)
        tp_buf_puts(out, "No calls match the filter criteria.\n");
    else
        r = print_view(&w, o, out);
    if (r)
        goto cleanup;
    put_trailer(out, t, ascii);
    r = tp_buf_error(out);
cleanup:
    free(w.v);
    free(w.syn);
    free(w.groups);
    tp_tree_stats_free(st);
    tp_tree_free(folded);
    return r;
}
