/* JSON for the report UI: lazily expanded subtrees, search, and the
 * self-contained HTML report that inlines the UI and the data (see
 * render_web.h and docs/API.md). Written through the one JSON writer
 * (json.h); statistics and diffs come from render_json.c. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "render_priv.h"
#include "render_web.h"
#include "tp_err.h"
#include "tree_priv.h"

void tp_render_web_tree_opts_init(tp_web_tree_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->node = TP_NONE;
    o->depth = 1;
    o->max_text = 1000;
}

/* ---- Nodes -------------------------------------------------------------- */

static const struct {
    uint32_t bit;
    const char *name;
} flag_names[] = {
    {TP_NODE_EXC, "exc"},
    {TP_NODE_CAUGHT, "caught"},
    {TP_NODE_OPEN, "open"},
    {TP_NODE_GEN, "gen"},
    {TP_NODE_FOLDED, "folded"},
    {TP_NODE_ARGS_MIXED, "args_mixed"},
    {TP_NODE_RET_MIXED, "ret_mixed"},
    {TP_NODE_SPAWNED, "spawned"},
    {TP_NODE_SHAPE_MIXED, "calls_mixed"},
    {TP_NODE_SEQ, "seq"},
};

static uint32_t count_children(const tp_tree *t, uint32_t id)
{
    uint32_t n = 0;
    for (uint32_t c = t->nodes[id].first_child; c != TP_NONE; c = t->nodes[c].next)
        n++;
    return n;
}

/* Every field of node id, leaving the object open (kids may follow). */
static void put_node_open(tp_json *w, const tp_tree *t, uint32_t id, uint32_t max_text)
{
    const tp_node *n = &t->nodes[id];
    const tp_func *f = &t->funcs[n->func];
    bool cut = false;
    tp_json_obj(w);
    tp_json_ku64(w, "id", id);
    tp__render_json_func(w, f);
    tp_json_ki64(w, "line", f->lineno);
    /* The function's id in the trace's table: the source query takes it. */
    tp_json_ku64(w, "func", n->func);
    tp_json_ku64(w, "depth", n->depth);
    tp_json_key(w, "parent");
    if (n->parent == TP_NONE)
        tp_json_null(w);
    else
        tp_json_u64(w, n->parent);
    tp_json_ku64(w, "thread", n->thread);
    tp_json_ku64(w, "count", n->count);
    tp_json_kms(w, "start_ms", n->start_ns);
    tp_json_kms(w, "end_ms", n->end_ns);
    tp_json_kms(w, "total_ms", n->total_ns);
    /* The span (first resume to end) differs from the active time only for
     * generators and coroutines; the UI shows both. */
    tp_json_kms(w, "span_ms", n->end_ns - n->start_ns);
    tp_json_kms(w, "self_ms", n->self_ns);
    tp_json_kms(w, "min_ms", n->min_ns);
    tp_json_kms(w, "max_ms", n->max_ns);
    tp_json_key(w, "args");
    tp__render_json_text(w, n->args, max_text, &cut);
    tp_json_key(w, "ret");
    tp__render_json_text(w, n->ret, max_text, &cut);
    tp_json_key(w, "exc");
    if (n->exc_type && (n->flags & (TP_NODE_EXC | TP_NODE_CAUGHT))) {
        tp_json_obj(w);
        tp_json_key(w, "type");
        tp__render_json_text(w, n->exc_type, max_text, &cut);
        tp_json_key(w, "msg");
        tp__render_json_text(w, n->exc_msg ? n->exc_msg : "", max_text, &cut);
        tp_json_kbool(w, "caught", !(n->flags & TP_NODE_EXC));
        tp_json_obj_end(w);
    } else {
        tp_json_null(w);
    }
    tp_json_ku64(w, "nexc", n->nexc);
    tp_json_ku64(w, "suspends", n->suspends);
    if (n->flags & TP_NODE_MEM) { /* track_memory: only measured calls have it */
        tp_json_key(w, "memory_delta_kb");
        tp_json_kib(w, n->mem_delta);
    }
    tp_json_key(w, "flags");
    tp_json_arr(w);
    for (size_t i = 0; i < sizeof(flag_names) / sizeof(flag_names[0]); i++)
        if (n->flags & flag_names[i].bit)
            tp_json_str(w, flag_names[i].name);
    tp_json_arr_end(w);
    tp_json_kbool(w, "cut", cut);
    tp_json_ku64(w, "children", count_children(t, id));
    /* The first group of a folded sequence: it and its next seq - 1
     * siblings are drawn under one "[a, b] xN" row. */
    if (n->seq)
        tp_json_ku64(w, "seq", n->seq);
}

/* "threads": the per-thread roots (tp_tree_thread_groups()), which the UI
 * draws under one row each: [{"thread","name" (null when unnamed),
 * "first_root","roots","calls","total_ms"}]; only when there are any. */
static int put_thread_groups(tp_json *w, const tp_tree *t, const uint32_t *ids)
{
    tp_thread_group *g = NULL;
    size_t ng = 0;
    int r = tp_tree_thread_groups(t, &g, &ng);
    if (r || !ng)
        return r;
    tp_json_key(w, "threads");
    tp_json_arr(w);
    for (size_t i = 0; i < ng; i++) {
        tp_json_obj(w);
        tp_json_ku64(w, "thread", g[i].thread);
        tp_json_kstr(w, "name", g[i].name);
        tp_json_ku64(w, "first_root", ids ? ids[g[i].first_root] : g[i].first_root);
        tp_json_ku64(w, "roots", g[i].nroots);
        tp_json_ku64(w, "calls", g[i].calls);
        tp_json_kms(w, "total_ms", g[i].total_ns);
        tp_json_obj_end(w);
    }
    tp_json_arr_end(w);
    free(g);
    return 0;
}

/* "has_more" and the end of a node object. */
static void put_node_close(tp_json *w, bool has_more)
{
    tp_json_kbool(w, "has_more", has_more);
    tp_json_obj_end(w);
}

/* ---- Subtrees ----------------------------------------------------------- */

typedef struct sel {
    uint8_t *inc;    /* bitmap: node listed */
    uint32_t *queue; /* breadth-first order of listed nodes */
    uint32_t *level; /* per queue entry: 1 for the first listed level */
    size_t nqueue;
} sel;

static bool is_inc(const sel *s, uint32_t id)
{
    return id != TP_NONE && (s->inc[id >> 3] >> (id & 7)) & 1;
}

/* List up to limit children from first (budget permitting); returns false
 * when the budget ran out. */
static bool list_level(const tp_tree *t, sel *s, uint32_t first, uint32_t limit, uint32_t level,
                       size_t budget)
{
    uint32_t k = 0;
    for (uint32_t c = first; c != TP_NONE && k < limit; c = t->nodes[c].next, k++) {
        if (s->nqueue >= budget)
            return false;
        s->inc[c >> 3] |= (uint8_t)(1u << (c & 7));
        s->queue[s->nqueue] = c;
        s->level[s->nqueue++] = level;
    }
    return true;
}

static void select_nodes(const tp_tree *t, const tp_web_tree_opts *o, uint32_t first, size_t budget,
                         sel *s)
{
    uint32_t limit = o->limit ? o->limit : TP_WEB_LIMIT_DEFAULT;
    if (o->depth == 0)
        return;
    if (!list_level(t, s, first, limit, 1, budget))
        return;
    for (size_t i = 0; i < s->nqueue; i++) {
        if (o->depth > 0 && s->level[i] >= (uint32_t)o->depth)
            continue;
        uint32_t fc = t->nodes[s->queue[i]].first_child;
        if (!list_level(t, s, fc, limit, s->level[i] + 1, budget))
            return;
    }
}

/* Emit the listed nodes from first on, nested, without recursion: after a
 * node's fields come its listed kids; a node is closed when it has none or
 * when its last listed kid is closed. */
static void emit_nodes(tp_json *w, const tp_tree *t, const sel *s, uint32_t first,
                       uint32_t max_text)
{
    uint32_t cur = is_inc(s, first) ? first : TP_NONE;
    uint32_t top_parent = cur == TP_NONE ? TP_NONE : t->nodes[cur].parent;
    while (cur != TP_NONE) {
        put_node_open(w, t, cur, max_text);
        uint32_t fc = t->nodes[cur].first_child;
        if (is_inc(s, fc)) {
            tp_json_key(w, "kids");
            tp_json_arr(w);
            cur = fc;
            continue;
        }
        put_node_close(w, fc != TP_NONE);
        /* Next listed sibling, or climb, closing kid lists, until one exists. */
        for (;;) {
            uint32_t nx = t->nodes[cur].next;
            if (is_inc(s, nx)) {
                cur = nx;
                break;
            }
            uint32_t parent = t->nodes[cur].parent;
            if (parent == top_parent) {
                cur = TP_NONE;
                break;
            }
            /* The parent's kid list ends here; more children exist when the
             * last listed one is not the last child. */
            tp_json_arr_end(w);
            put_node_close(w, nx != TP_NONE);
            cur = parent;
        }
    }
}

/* The hot path: from the root holding most time, down through the child
 * holding most time, to a leaf. The report opens it first, and a wide node
 * may hold its hottest child far past the first page, so it is found here
 * rather than among the children a client has loaded. Written as "hot_path"
 * (node ids) and "hot_pos" (each one's position among its siblings). */
static void put_hot_path(tp_json *w, const tp_tree *t)
{
    tp_json_key(w, "hot_path");
    tp_json_arr(w);
    uint32_t first = t->first_root;
    uint32_t path_len = 0;
    uint32_t best_pos[64];
    while (first != TP_NONE && path_len < 64) {
        uint32_t best = first, pos = 0, k = 0;
        for (uint32_t c = first; c != TP_NONE; c = t->nodes[c].next, k++) {
            if (t->nodes[c].total_ns > t->nodes[best].total_ns) {
                best = c;
                pos = k;
            }
        }
        tp_json_u64(w, best);
        best_pos[path_len++] = pos;
        first = t->nodes[best].first_child;
    }
    tp_json_arr_end(w);
    tp_json_key(w, "hot_pos");
    tp_json_arr(w);
    for (uint32_t i = 0; i < path_len; i++)
        tp_json_u64(w, best_pos[i]);
    tp_json_arr_end(w);
}

int tp_render_web_tree(const tp_tree *t, const tp_web_tree_opts *o, tp_buf *out)
{
    if (!t || !o || !out)
        return -EINVAL;
    if (o->node != TP_NONE && o->node >= t->nnodes)
        return -EINVAL;
    int r = -ENOMEM;
    sel s = {0};
    uint32_t first = o->node == TP_NONE ? t->first_root : t->nodes[o->node].first_child;
    uint32_t total = 0;
    for (uint32_t c = first; c != TP_NONE; c = t->nodes[c].next)
        total++;
    for (uint32_t k = 0; k < o->offset && first != TP_NONE; k++)
        first = t->nodes[first].next;

    size_t budget = o->max_nodes ? o->max_nodes : TP_WEB_MAX_NODES_DEFAULT;
    if (budget > t->nnodes)
        budget = t->nnodes;
    s.inc = calloc(t->nnodes / 8 + 1, 1);
    s.queue = malloc((budget ? budget : 1) * sizeof(*s.queue));
    s.level = malloc((budget ? budget : 1) * sizeof(*s.level));
    if (!s.inc || !s.queue || !s.level)
        goto cleanup;
    select_nodes(t, o, first, budget, &s);

    tp_json w;
    tp_json_init(&w, out, false);
    tp_json_obj(&w);
    tp_json_key(&w, "node");
    if (o->node == TP_NONE)
        tp_json_null(&w);
    else
        tp_json_u64(&w, o->node);
    tp_json_ku64(&w, "total", total);
    tp_json_ku64(&w, "offset", o->offset);
    tp_json_key(&w, "self");
    if (o->node == TP_NONE) {
        tp_json_null(&w);
    } else {
        put_node_open(&w, t, o->node, o->max_text);
        put_node_close(&w, total != 0);
    }
    tp_json_key(&w, "nodes");
    tp_json_arr(&w);
    emit_nodes(&w, t, &s, first, o->max_text);
    tp_json_arr_end(&w);
    if (o->node == TP_NONE && o->offset == 0)
        put_hot_path(&w, t);
    r = o->node == TP_NONE ? put_thread_groups(&w, t, NULL) : 0;
    tp_json_obj_end(&w);
    if (!r)
        r = tp_json_error(&w);
cleanup:
    free(s.inc);
    free(s.queue);
    free(s.level);
    return r;
}

/* ---- A folded group's calls ----------------------------------------------- */

int tp_render_web_members(const tp_tree *t, uint32_t node, uint32_t offset, uint32_t limit,
                          uint32_t max_text, tp_buf *out)
{
    if (!t || !out || node >= t->nnodes)
        return -EINVAL;
    /* In a tree that was not folded a call stands for itself. */
    const uint32_t self = node;
    const tp_tree *src = t;
    const uint32_t *members = &self;
    tp_fold_group g = {0, 1};
    if (t->fold_groups) {
        src = t->fold_src;
        members = t->fold_members;
        g = t->fold_groups[node];
    }
    if (!limit)
        limit = TP_WEB_LIMIT_DEFAULT;
    tp_json w;
    tp_json_init(&w, out, false);
    tp_json_obj(&w);
    tp_json_ku64(&w, "node", node);
    tp_json_ku64(&w, "total", g.len);
    tp_json_ku64(&w, "offset", offset);
    tp_json_key(&w, "calls");
    tp_json_arr(&w);
    for (uint64_t k = offset; k < g.len && k < (uint64_t)offset + limit; k++) {
        uint32_t m = members[g.off + k];
        if (m >= src->nnodes)
            continue;
        put_node_open(&w, src, m, max_text);
        put_node_close(&w, false);
    }
    tp_json_arr_end(&w);
    tp_json_obj_end(&w);
    return tp_json_error(&w);
}

/* ---- Search ------------------------------------------------------------- */

/* The text searched for, lowercased, with its Knuth-Morris-Pratt table:
 * border[j] is the length of the longest proper prefix of s[0..j] that also
 * ends it, where a search resumes after a mismatch at j + 1. */
typedef struct needle {
    const char *s;
    size_t n;
    size_t *border;
} needle;

static void needle_borders(needle *nd)
{
    size_t k = 0;
    nd->border[0] = 0;
    for (size_t j = 1; j < nd->n; j++) {
        while (k && nd->s[j] != nd->s[k])
            k = nd->border[k - 1];
        if (nd->s[j] == nd->s[k])
            k++;
        nd->border[j] = k;
    }
}

/* Whether hay holds the needle, ignoring ASCII case. Never steps back over
 * hay: comparing the needle afresh at each offset costs hn * nd->n, and both
 * are a client's to choose. */
static bool contains_ci(const char *hay, size_t hn, const needle *nd)
{
    if (!hay || nd->n == 0 || hn < nd->n)
        return false;
    size_t j = 0;
    for (size_t i = 0; i < hn; i++) {
        char c = (char)tolower((unsigned char)hay[i]);
        while (j && c != nd->s[j])
            j = nd->border[j - 1];
        if (c == nd->s[j] && ++j == nd->n)
            return true;
    }
    return false;
}

static bool contains_str(const char *hay, const needle *nd)
{
    return hay && contains_ci(hay, strlen(hay), nd);
}

static bool func_matches(const tp_func *f, const needle *nd)
{
    size_t ml = strlen(f->module), ql = strlen(f->qualname);
    char *name = malloc(ml + ql + 2);
    if (!name)
        return false;
    memcpy(name, f->module, ml);
    name[ml] = '.';
    memcpy(name + ml + 1, f->qualname, ql + 1);
    bool m = contains_ci(name, ml + ql + 1, nd) || contains_str(f->file, nd);
    free(name);
    return m;
}

/* Each node's position among its siblings (roots among the roots). */
static uint32_t *sibling_positions(const tp_tree *t)
{
    uint32_t *pos = malloc((t->nnodes ? t->nnodes : 1) * sizeof(*pos));
    if (!pos)
        return NULL;
    uint32_t k = 0;
    for (uint32_t c = t->first_root; c != TP_NONE; c = t->nodes[c].next)
        pos[c] = k++;
    for (size_t i = 0; i < t->nnodes; i++) {
        k = 0;
        for (uint32_t c = t->nodes[i].first_child; c != TP_NONE; c = t->nodes[c].next)
            pos[c] = k++;
    }
    return pos;
}

/* Most calls of one folded group a match lists ("calls"). */
#define MAX_GROUP_HITS 100

static bool text_hit(const tp_node *n, const needle *nd)
{
    return contains_str(n->args, nd) || contains_str(n->ret, nd) || contains_str(n->exc_type, nd) ||
           contains_str(n->exc_msg, nd);
}

/* A folded group's calls whose text matches, as positions in the group
 * (at most MAX_GROUP_HITS listed; *ret_n counts all). */
static void group_hits(const tp_tree *t, uint32_t id, const needle *nd, uint32_t *hits,
                       uint32_t *ret_n)
{
    const tp_fold_group g = t->fold_groups[id];
    uint32_t n = 0;
    for (uint32_t k = 0; k < g.len; k++) {
        uint32_t m = t->fold_members[g.off + k];
        if (m < t->fold_src->nnodes && text_hit(&t->fold_src->nodes[m], nd)) {
            if (n < MAX_GROUP_HITS)
                hits[n] = k;
            n++;
        }
    }
    *ret_n = n;
}

static void put_path(tp_json *w, const tp_tree *t, uint32_t id, uint32_t *stack,
                     const uint32_t *pos, const uint32_t *hits, uint32_t nhits)
{
    size_t n = 0;
    for (uint32_t p = id; p != TP_NONE; p = t->nodes[p].parent)
        stack[n++] = p;
    tp_json_obj(w);
    tp_json_ku64(w, "id", id);
    tp_json_key(w, "path");
    tp_json_arr(w);
    for (size_t i = n; i--;)
        tp_json_u64(w, stack[i]);
    tp_json_arr_end(w);
    tp_json_key(w, "pos");
    tp_json_arr(w);
    for (size_t i = n; i--;)
        tp_json_u64(w, pos[stack[i]]);
    tp_json_arr_end(w);
    if (hits) {
        tp_json_key(w, "calls");
        tp_json_arr(w);
        for (uint32_t k = 0; k < nhits && k < MAX_GROUP_HITS; k++)
            tp_json_u64(w, hits[k]);
        tp_json_arr_end(w);
        tp_json_ku64(w, "calls_total", nhits);
    }
    tp_json_obj_end(w);
}

int tp_render_web_search(const tp_tree *t, const char *query, uint32_t limit, tp_buf *out)
{
    if (!t || !query || !out)
        return -EINVAL;
    int r = -ENOMEM;
    size_t qn = strlen(query);
    char *q = malloc(qn + 1);
    needle nd = {q, qn, malloc((qn ? qn : 1) * sizeof(size_t))};
    bool *fm = calloc(t->nfuncs ? t->nfuncs : 1, sizeof(*fm));
    uint32_t *stack = malloc((t->nnodes ? t->nnodes : 1) * sizeof(*stack));
    uint32_t *pos = NULL;
    if (!q || !nd.border || !fm || !stack)
        goto cleanup;
    for (size_t i = 0; i <= qn; i++)
        q[i] = (char)tolower((unsigned char)query[i]);
    if (qn)
        needle_borders(&nd);
    for (size_t f = 0; f < t->nfuncs && qn; f++)
        fm[f] = func_matches(&t->funcs[f], &nd);
    if (!limit)
        limit = 1000;

    tp_json w;
    tp_json_init(&w, out, false);
    tp_json_obj(&w);
    tp_json_kstr(&w, "query", query);
    tp_json_key(&w, "matches");
    tp_json_arr(&w);
    uint64_t total = 0, listed = 0, ids = 0;
    bool full = false; /* a path passed TP_WEB_MAX_PATH_IDS: no more are listed */
    /* Pre-order walk: first child, else next sibling, else an ancestor's next. */
    uint32_t cur = qn ? t->first_root : TP_NONE;
    uint32_t hits[MAX_GROUP_HITS];
    while (cur != TP_NONE) {
        const tp_node *n = &t->nodes[cur];
        /* A folded group is searched call by call: the text of any of them
         * (not only the first's, which the node shows) finds the group. */
        bool group = (n->flags & TP_NODE_FOLDED) && t->fold_src;
        uint32_t nhits = 0;
        if (group)
            group_hits(t, cur, &nd, hits, &nhits);
        if (fm[n->func] || (group ? nhits > 0 : text_hit(n, &nd))) {
            full = full || ids + n->depth + 1 > TP_WEB_MAX_PATH_IDS;
            if (listed < limit && !full) {
                if (!pos && !(pos = sibling_positions(t)))
                    goto cleanup;
                put_path(&w, t, cur, stack, pos, group ? hits : NULL, nhits);
                ids += n->depth + 1;
                listed++;
            }
            total++;
        }
        cur = tp__tree_next(t, cur);
    }
    tp_json_arr_end(&w);
    tp_json_ku64(&w, "total", total);
    tp_json_kbool(&w, "truncated", total > listed);
    tp_json_obj_end(&w);
    r = tp_json_error(&w);
cleanup:
    free(q);
    free(nd.border);
    free(fm);
    free(stack);
    free(pos);
    return r;
}

/* ---- The self-contained report ----------------------------------------- */

/* Append JSON text for a <script type="application/json"> element: "</"
 * becomes "<\/" and "<!--" becomes "<\u0021--" (both only occur inside JSON
 * strings, where these escapes mean the same), so no value can close the
 * element or switch the parser into its escaped states. */
static void put_script_data(tp_buf *b, const char *s, size_t n)
{
    size_t run = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        if (s[i] != '<')
            continue;
        if (s[i + 1] == '/') {
            tp_buf_append(b, s + run, i + 1 - run);
            tp_buf_putc(b, '\\');
            run = i + 1;
        } else if (s[i + 1] == '!' && i + 3 < n && s[i + 2] == '-' && s[i + 3] == '-') {
            tp_buf_append(b, s + run, i + 1 - run);
            tp_buf_puts(b, "\\u0021");
            run = i + 2;
        }
    }
    tp_buf_append(b, s + run, n - run);
}

void tp__render_markup(tp_buf *b, const char *s, size_t n)
{
    for (size_t i = 0; s && i < n; i++) {
        switch (s[i]) {
        case '&':
            tp_buf_puts(b, "&amp;");
            break;
        case '<':
            tp_buf_puts(b, "&lt;");
            break;
        case '>':
            tp_buf_puts(b, "&gt;");
            break;
        case '"':
            tp_buf_puts(b, "&quot;");
            break;
        case '\'':
            tp_buf_puts(b, "&#39;");
            break;
        default:
            tp_buf_putc(b, s[i]);
        }
    }
}

static void put_html_text(tp_buf *b, const char *s)
{
    if (s)
        tp__render_markup(b, s, strlen(s));
}

/* The summary the daemon's "get" answer would give, from the tree alone. */
static void put_meta_summary(tp_json *w, const tp_tree *t)
{
    const tp_trace_meta *m = &t->meta;
    tp_json_obj(w);
    tp_json_kstr(w, "id", m->trace_id);
    tp_json_kstr(w, "label", m->label);
    int64_t ws = m->wall_start_ns > 0 ? m->wall_start_ns : 0;
    tp_json_key(w, "start");
    tp_json_fixed(w, ws / 1000000000, ws % 1000000000, 9);
    tp_json_kms(w, "duration_ms", m->duration_ns);
    tp_json_ku64(w, "calls", m->call_count);
    tp_json_ku64(w, "dropped", m->dropped);
    tp_json_kstr(w, "limit_reason", m->limit_reason);
    tp_json_kstr(w, "status", "complete");
    tp_json_key(w, "config");
    /* The config text comes from a client: checked, null unless an object. */
    const char *cfg = m->config_json;
    if (!cfg || tp_json_copy(w, cfg, strlen(cfg), false))
        tp_json_null(w);
    tp_json_obj_end(w);
}

/* The report's data: the JSON of the summary, the statistics, the thread
 * groups and the lines= data into data, and the folded tree packed,
 * deflated and in base64 into tree (up to the groups' calls) and members
 * (the calls), so a page opens without inflating the calls. */
static int html_data(const tp_tree *t, const char *summary_json, const tp_render_section *sec,
                     size_t nsec, tp_buf *data, tp_buf *tree, tp_buf *members)
{
    tp_tree *folded = NULL;
    tp_stats *st = NULL;
    uint32_t *ids = NULL;
    tp_buf packed = TP_BUF_INIT;
    int r = t->folded ? 0 : tp_tree_fold(t, NULL, &folded);
    if (r)
        goto cleanup;
    const tp_tree *ft = folded ? folded : t;
    r = tp_tree_stats(t, &st);
    if (r)
        goto cleanup;
    size_t at = 0;
    if ((r = tp_render_web_pack(ft, TP_WEB_PACK_MAX_MEMBERS, &packed, &ids, &at)))
        goto cleanup;
    if ((r = tp_render_web_deflate_b64(packed.data, at, TP_WEB_PACK_LEVEL, tree)) ||
        (r = tp_render_web_deflate_b64(packed.data + at, packed.len - at, TP_WEB_PACK_LEVEL,
                                       members)))
        goto cleanup;
    tp_buf_free(&packed);
    tp_json w;
    tp_json_init(&w, data, false);
    tp_json_obj(&w);
    tp_json_key(&w, "trace");
    if (summary_json && *summary_json)
        tp_json_raw(&w, summary_json, strlen(summary_json));
    else
        put_meta_summary(&w, t);
    /* The stats are a whole document of their own writer, appended in place. */
    tp_json_key(&w, "stats");
    tp_json_external(&w);
    r = tp_render_web_stats(t, st, 500, data);
    if (r)
        goto cleanup;
    if ((r = put_thread_groups(&w, ft, ids)))
        goto cleanup;
    for (size_t i = 0; i < nsec; i++) {
        /* The lines= data and the source, as t.to_html() inlines them: text
         * from a client, so copied through the checking writer; a text that
         * is not JSON becomes null. */
        if (!sec[i].len)
            continue;
        tp_json_key(&w, sec[i].key);
        if (tp_json_copy(&w, sec[i].json, sec[i].len, true) < 0)
            tp_json_null(&w);
    }
    tp_json_obj_end(&w);
    r = tp_json_error(&w);
cleanup:
    tp_buf_free(&packed);
    free(ids);
    tp_tree_stats_free(st);
    tp_tree_free(folded);
    return r;
}

/* The tags of web/index.html the report replaces, in document order. */
enum { TAG_CHARSET, TAG_TITLE, TAG_ICON, TAG_STYLE, TAG_SCRIPT, NTAGS };
static const char *const report_tags[NTAGS] = {
    "<meta charset=\"utf-8\">",
    "<title>tracepatch</title>",
    "<link rel=\"icon\" href=\"/assets/favicon.svg\">",
    "<link rel=\"stylesheet\" href=\"/assets/style.css\">",
    "<script src=\"/assets/app.js\"></script>",
};

static void put_replacement(tp_buf *out, int tag, const tp_tree *t, const tp_web_assets *a,
                            const tp_buf *data, const tp_buf *tree, const tp_buf *members)
{
    switch (tag) {
    case TAG_CHARSET:
        tp_buf_puts(out, report_tags[TAG_CHARSET]);
        if (a->js_sha256 && a->css_sha256)
            tp_buf_printf(out,
                          "\n<meta http-equiv=\"Content-Security-Policy\" content=\"default-src "
                          "'none'; script-src 'sha256-%s'; style-src 'sha256-%s'; img-src data:\">",
                          a->js_sha256, a->css_sha256);
        break;
    case TAG_TITLE:
        tp_buf_puts(out, "<title>tracepatch");
        if (t->meta.label && *t->meta.label) {
            tp_buf_puts(out, ": ");
            put_html_text(out, t->meta.label);
        }
        tp_buf_puts(out, "</title>");
        break;
    case TAG_ICON:
        tp_buf_puts(out, "<link rel=\"icon\" href=\"data:,\">");
        break;
    case TAG_STYLE:
        tp_buf_puts(out, "<style>");
        tp_buf_append(out, a->css, a->css_len);
        tp_buf_puts(out, "</style>");
        break;
    default:
        tp_buf_puts(out, "<script type=\"application/json\" id=\"tp-data\">");
        put_script_data(out, data->data, data->len);
        tp_buf_puts(out, "</script>\n<script type=\"application/octet-stream\" id=\"tp-tree\">");
        tp_buf_append(out, tree->data, tree->len);
        tp_buf_puts(out, "</script>\n<script type=\"application/octet-stream\" id=\"tp-members\">");
        tp_buf_append(out, members->data, members->len);
        tp_buf_puts(out, "</script>\n<script>");
        tp_buf_append(out, a->js, a->js_len);
        tp_buf_puts(out, "</script>");
    }
}

int tp_render_html(const tp_tree *t, const char *summary_json, const tp_web_assets *a, tp_buf *out)
{
    return tp_render_html_sections(t, summary_json, NULL, 0, a, out);
}

int tp_render_html_sections(const tp_tree *t, const char *summary_json,
                            const tp_render_section *sec, size_t nsec, const tp_web_assets *a,
                            tp_buf *out)
{
    if (!t || !a || !out || !a->html || !a->js || !a->css)
        return -EINVAL;
    if (memmem(a->js, a->js_len, "</script", 8) || memmem(a->css, a->css_len, "</style", 7))
        return -EINVAL;
    const char *pos[NTAGS];
    const char *from = a->html, *end = a->html + a->html_len;
    for (int i = 0; i < NTAGS; i++) {
        pos[i] = memmem(from, (size_t)(end - from), report_tags[i], strlen(report_tags[i]));
        if (!pos[i])
            return -EINVAL;
        from = pos[i] + strlen(report_tags[i]);
    }
    tp_buf data = TP_BUF_INIT, tree = TP_BUF_INIT, members = TP_BUF_INIT;
    int r = html_data(t, summary_json, sec, nsec, &data, &tree, &members);
    if (r)
        goto cleanup;
    from = a->html;
    for (int i = 0; i < NTAGS; i++) {
        tp_buf_append(out, from, (size_t)(pos[i] - from));
        put_replacement(out, i, t, a, &data, &tree, &members);
        from = pos[i] + strlen(report_tags[i]);
    }
    tp_buf_append(out, from, (size_t)(end - from));
    r = tp_buf_error(out);
cleanup:
    tp_buf_free(&data);
    tp_buf_free(&tree);
    tp_buf_free(&members);
    return r;
}
