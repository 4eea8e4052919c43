/* Statistics of a finished tree: totals, per function, per module.
 *
 * Meant for the raw tree: tracepatch 1.0.0 computed them on the folded tree,
 * which made "most called" and the per-function minimum and maximum wrong. A
 * folded tree still works (counts are expanded, min/max are the groups'). */
#include <stdlib.h>
#include <string.h>

#include "hmap.h"
#include "tp_err.h"
#include "tree.h"
#include "tree_priv.h"
#include "vec.h"

/* Compares "module.qualname" of two functions as tp_tree_func_name() prints them,
 * without building the strings. */
static int name_cmp(const tp_func *a, const tp_func *b)
{
    const char *pa[3] = {a->module, a->module[0] ? "." : "", a->qualname};
    const char *pb[3] = {b->module, b->module[0] ? "." : "", b->qualname};
    int ia = 0, ib = 0;
    const char *sa = pa[0], *sb = pb[0];
    for (;;) {
        while (!*sa && ia < 2)
            sa = pa[++ia];
        while (!*sb && ib < 2)
            sb = pb[++ib];
        unsigned char ca = (unsigned char)*sa, cb = (unsigned char)*sb;
        if (ca != cb || !ca)
            return (ca > cb) - (ca < cb);
        sa++;
        sb++;
    }
}

static int cmp_func_stats(const void *pa, const void *pb, void *arg)
{
    const tp_tree *t = arg;
    const tp_func_stats *a = pa, *b = pb;
    if (a->total_ns != b->total_ns)
        return a->total_ns > b->total_ns ? -1 : 1;
    int c = name_cmp(&t->funcs[a->func], &t->funcs[b->func]);
    if (c)
        return c;
    return (a->func > b->func) - (a->func < b->func);
}

static int cmp_mod_stats(const void *pa, const void *pb)
{
    const tp_module_stats *a = pa, *b = pb;
    if (a->calls != b->calls)
        return a->calls > b->calls ? -1 : 1;
    return strcmp(a->module, b->module);
}

static int cmp_by_module(const void *pa, const void *pb, void *arg)
{
    const tp_tree *t = arg;
    const tp_func_stats *a = pa, *b = pb;
    return strcmp(t->funcs[a->func].module, t->funcs[b->func].module);
}

/* Depth-first walk over links (no recursion, no stack): count every node,
 * and add its total to its function's cumulative total only when no ancestor
 * runs the same function, so recursion is not counted twice. */
static void walk(const tp_tree *t, tp_func_stats *fs, uint32_t *active, tp_stats *s)
{
    const tp_node *nodes = t->nodes;
    uint32_t i = t->first_root;
    while (i != TP_NONE) {
        const tp_node *n = &nodes[i];
        tp_func_stats *f = &fs[n->func];
        int64_t mn = n->count > 1 ? n->min_ns : n->total_ns;
        int64_t mx = n->count > 1 ? n->max_ns : n->total_ns;
        if (!f->count || mn < f->min_ns)
            f->min_ns = mn;
        if (!f->count || mx > f->max_ns)
            f->max_ns = mx;
        f->count += n->count;
        f->self_ns += n->self_ns;
        uint64_t exc = (n->flags & TP_NODE_FOLDED) ? n->nexc : (n->flags & TP_NODE_EXC) ? 1 : 0;
        f->nexc += exc;
        s->exceptions += exc;
        s->calls += n->count;
        if (n->depth > s->max_depth)
            s->max_depth = n->depth;
        if (s->slowest == TP_NONE || n->total_ns > nodes[s->slowest].total_ns)
            s->slowest = i;
        if (!active[n->func]++)
            f->total_ns += n->total_ns;
        if (n->first_child != TP_NONE) {
            i = n->first_child;
            continue;
        }
        /* Leave i and every ancestor whose children are done. */
        while (i != TP_NONE) {
            active[nodes[i].func]--;
            if (nodes[i].next != TP_NONE) {
                i = nodes[i].next;
                break;
            }
            i = nodes[i].parent;
        }
    }
}

/* Per-module rows from the (compacted) per-function rows. */
static int modules(const tp_tree *t, tp_stats *s)
{
    if (!s->nfuncs)
        return 0;
    tp_func_stats *byname = malloc(s->nfuncs * sizeof(*byname));
    tp_module_stats *mods = calloc(s->nfuncs, sizeof(*mods));
    if (!byname || !mods) {
        free(byname);
        free(mods);
        return -ENOMEM;
    }
    memcpy(byname, s->funcs, s->nfuncs * sizeof(*byname));
    qsort_r(byname, s->nfuncs, sizeof(*byname), cmp_by_module, (void *)t);
    size_t nm = 0;
    for (size_t i = 0; i < s->nfuncs; i++) {
        const char *m = t->funcs[byname[i].func].module;
        if (!nm || strcmp(mods[nm - 1].module, m) != 0)
            mods[nm++].module = m;
        mods[nm - 1].calls += byname[i].count;
        mods[nm - 1].functions++;
        mods[nm - 1].self_ns += byname[i].self_ns;
    }
    free(byname);
    qsort(mods, nm, sizeof(*mods), cmp_mod_stats);
    s->mods = mods;
    s->nmods = nm;
    s->modules = (uint32_t)nm;
    return 0;
}

static int64_t roots_span(const tp_tree *t)
{
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    for (uint32_t i = t->first_root; i != TP_NONE; i = t->nodes[i].next) {
        if (t->nodes[i].start_ns < lo)
            lo = t->nodes[i].start_ns;
        if (t->nodes[i].end_ns > hi)
            hi = t->nodes[i].end_ns;
    }
    return hi > lo ? hi - lo : 0;
}

int tp_tree_stats(const tp_tree *t, tp_stats **ret)
{
    if (!t || !ret)
        return -EINVAL;
    if (!tp__tree_is_finished(t))
        return TP_ERR_SEQUENCE;
    int r = -ENOMEM;
    uint32_t *active = NULL;
    tp_stats *s = calloc(1, sizeof(*s));
    if (!s)
        goto cleanup;
    s->slowest = s->most_called = TP_NONE;
    size_t nf = t->nfuncs ? t->nfuncs : 1;
    s->funcs = calloc(nf, sizeof(*s->funcs));
    active = calloc(nf, sizeof(*active));
    if (!s->funcs || !active)
        goto cleanup;
    walk(t, s->funcs, active, s);

    /* Keep the functions that ran, then sort them. */
    size_t n = 0;
    for (size_t f = 0; f < t->nfuncs; f++) {
        if (!s->funcs[f].count)
            continue;
        s->funcs[n] = s->funcs[f];
        s->funcs[n++].func = (uint32_t)f;
    }
    s->nfuncs = n;
    s->unique_functions = (uint32_t)n;
    qsort_r(s->funcs, n, sizeof(*s->funcs), cmp_func_stats, (void *)t);
    /* The sort order breaks ties: most calls, then most time, then name. */
    for (size_t i = 0; i < n; i++)
        if (s->most_called == TP_NONE || s->funcs[i].count > s->funcs[s->most_called].count)
            s->most_called = (uint32_t)i;
    if (s->most_called != TP_NONE)
        s->most_called = s->funcs[s->most_called].func;
    s->duration_ns = t->meta.duration_ns ? t->meta.duration_ns : roots_span(t);
    r = modules(t, s);
    if (r)
        goto cleanup;
    *ret = s;
    s = NULL;
cleanup:
    free(active);
    tp_tree_stats_free(s);
    return r;
}

void tp_tree_stats_free(tp_stats *s)
{
    if (!s)
        return;
    free(s->funcs);
    free(s->mods);
    free(s);
}

/* ---- Per-thread roots ---------------------------------------------------- */

int tp_tree_thread_groups(const tp_tree *t, tp_thread_group **ret, size_t *ret_n)
{
    *ret = NULL;
    *ret_n = 0;
    if (!t || t->first_root == TP_NONE)
        return 0;
    uint32_t one = t->nodes[t->first_root].thread;
    bool many = false;
    for (uint32_t i = t->first_root; i != TP_NONE && !many; i = t->nodes[i].next)
        many = t->nodes[i].thread != one;
    if (!many)
        return 0;
    /* A thread's group is found through a map of thread -> group: a trace
     * may have as many threads as roots. */
    tp_hmap at = {0};
    TP_VEC(tp_thread_group) g = TP_VEC_INIT;
    int r = 0;
    for (uint32_t i = t->first_root; i != TP_NONE; i = t->nodes[i].next) {
        const tp_node *n = &t->nodes[i];
        if (n->thread == 0)
            continue;
        uint64_t k;
        if (!tp_hmap_get(&at, n->thread, &k)) {
            if ((r = tp_vec_grow1(&g)) < 0 || (r = tp_hmap_put(&at, n->thread, g.size)) < 0)
                goto fail;
            k = g.size++;
            g.items[k] = (tp_thread_group){
                .thread = n->thread, .name = tp_tree_thread_name(t, n->thread), .first_root = i};
        }
        tp_thread_group *gr = &g.items[k];
        gr->nroots++;
        gr->total_ns += n->total_ns;
        uint32_t end = tp__tree_after(t, i);
        for (uint32_t j = i; j != end; j = tp__tree_next(t, j))
            gr->calls += t->nodes[j].count;
    }
    tp_hmap_free(&at);
    *ret = g.items;
    *ret_n = g.size;
    return 0;
fail:
    tp_hmap_free(&at);
    tp_vec_free(&g);
    return -ENOMEM;
}
