/* Folding: consecutive sibling calls of one function become one node, and
 * repetitions of a sequence of sibling functions one group per position.
 *
 * Every node of the folded tree stands for a group of source nodes, and every
 * source node belongs to exactly one group. Groups are contiguous slices of a
 * single "members" array of source indices: when a folded node is expanded,
 * the children of all its members are appended to that array in order (the
 * concatenation the fold rule asks for) and the new slice is cut into runs.
 * Folded nodes are expanded in creation order, a breadth-first walk, so
 * nothing recurses and the members array never holds more than the source's
 * node count. */
#include <stdlib.h>
#include <string.h>

#include "tp_err.h"
#include "tree.h"
#include "tree_priv.h"
#include "vec.h"

typedef struct fold_ctx {
    const tp_tree *src;
    tp_tree *dst;
    uint32_t threshold;
    uint32_t *members; /* source node indices; a group is a slice */
    size_t nmembers;
    size_t members_cap;
    TP_VEC(tp_fold_group) groups; /* per folded node: its slice of members */
    TP_VEC(uint32_t) scratch;     /* a sequence's members while they are reordered */
} fold_ctx;

static bool same_text(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

/* Whether every call of a group made the same sequence of direct calls
 * (functions in order): otherwise the group says its calls differ. */
static bool same_children(const fold_ctx *c, size_t off, size_t len)
{
    const tp_node *sn = c->src->nodes;
    uint32_t first = sn[c->members[off]].first_child;
    for (size_t k = off + 1; k < off + len; k++) {
        uint32_t a = first, b = sn[c->members[k]].first_child;
        for (; a != TP_NONE && b != TP_NONE; a = sn[a].next, b = sn[b].next)
            if (sn[a].func != sn[b].func || sn[a].count != sn[b].count)
                return false;
        if (a != b)
            return false;
    }
    return true;
}

/* Client-supplied deltas: a sum that would overflow stops at the limit. */
static int64_t add_sat(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_add_overflow(a, b, &r))
        return b > 0 ? INT64_MAX : INT64_MIN;
    return r;
}

/* Sums a group of source nodes into one node (not yet linked, strings still
 * the source's). */
static tp_node aggregate(const fold_ctx *c, size_t off, size_t len)
{
    const tp_node *sn = c->src->nodes;
    const tp_node *first = &sn[c->members[off]];
    const tp_node *last = &sn[c->members[off + len - 1]];
    tp_node a = *first;
    a.count = 0;
    a.suspends = 0;
    a.nexc = 0;
    a.total_ns = a.self_ns = 0;
    a.mem_delta = 0;
    a.flags &= ~(uint32_t)(TP_NODE_ARGS_MIXED | TP_NODE_RET_MIXED | TP_NODE_SEQ);
    a.seq = 0;
    a.end_ns = last->end_ns;
    for (size_t k = off; k < off + len; k++) {
        const tp_node *m = &sn[c->members[k]];
        a.count += m->count;
        a.suspends += m->suspends;
        /* A raw node that raised counts once; a folded input brings its own. */
        a.nexc += (m->flags & TP_NODE_FOLDED) ? m->nexc : (m->flags & TP_NODE_EXC) ? 1 : 0;
        a.total_ns += m->total_ns;
        a.self_ns += m->self_ns;
        a.mem_delta = add_sat(a.mem_delta, m->mem_delta); /* 0 when not measured */
        if (m->min_ns < a.min_ns)
            a.min_ns = m->min_ns;
        if (m->max_ns > a.max_ns)
            a.max_ns = m->max_ns;
        a.flags |= m->flags & (TP_NODE_EXC | TP_NODE_CAUGHT | TP_NODE_OPEN | TP_NODE_GEN |
                               TP_NODE_ARGS_MIXED | TP_NODE_RET_MIXED | TP_NODE_MEM);
        /* (The first call is its own reference: most groups are one call.) */
        if (m != first && !same_text(m->args, first->args))
            a.flags |= TP_NODE_ARGS_MIXED;
        if (m != first && !same_text(m->ret, first->ret))
            a.flags |= TP_NODE_RET_MIXED;
        if (!a.exc_type && m->exc_type) {
            a.exc_type = m->exc_type;
            a.exc_msg = m->exc_msg;
        }
    }
    if (a.count > 1)
        a.flags |= TP_NODE_FOLDED;
    else
        a.nexc = 0;
    if (len > 1 && !same_children(c, off, len))
        a.flags |= TP_NODE_SHAPE_MIXED;
    return a;
}

static int new_group(fold_ctx *c, uint32_t parent, size_t off, size_t len)
{
    tp_tree *d = c->dst;
    uint32_t idx;
    int r = tp__tree_add_node(d, &idx);
    if (!r)
        r = tp_vec_reserve(&c->groups, d->nnodes);
    if (r)
        return r;
    tp_node a = aggregate(c, off, len);
    a.args = tp__tree_dup(d, a.args, a.args ? strlen(a.args) : 0, &r);
    a.ret = tp__tree_dup(d, a.ret, a.ret ? strlen(a.ret) : 0, &r);
    a.exc_type = tp__tree_dup(d, a.exc_type, a.exc_type ? strlen(a.exc_type) : 0, &r);
    a.exc_msg = tp__tree_dup(d, a.exc_msg, a.exc_msg ? strlen(a.exc_msg) : 0, &r);
    if (r)
        return r;
    a.first_child = a.last_child = a.next = TP_NONE;
    d->nodes[idx] = a;
    tp__tree_link(d, parent, idx);
    c->groups.items[idx] = (tp_fold_group){(uint32_t)off, (uint32_t)len};
    c->groups.size = d->nnodes;
    return 0;
}

/* Whether members a and b are calls of one function on one thread. */
static bool same_call(const fold_ctx *c, size_t a, size_t b)
{
    const tp_node *x = &c->src->nodes[c->members[a]], *y = &c->src->nodes[c->members[b]];
    return x->func == y->func && x->thread == y->thread;
}

/* Folds the reps repetitions of a sequence of len calls at members[i...]:
 * the slice is reordered position by position (each position's calls, in
 * order, become one group) and the first group says how many follow. */
static int new_sequence(fold_ctx *c, uint32_t parent, size_t i, size_t len, size_t reps)
{
    size_t n = len * reps;
    int r = tp_vec_reserve(&c->scratch, n);
    if (r)
        return r;
    for (size_t k = 0; k < len; k++)
        for (size_t rep = 0; rep < reps; rep++)
            c->scratch.items[k * reps + rep] = c->members[i + rep * len + k];
    memcpy(c->members + i, c->scratch.items, n * sizeof(*c->members));
    for (size_t k = 0; k < len; k++) {
        if ((r = new_group(c, parent, i + k * reps, reps)))
            return r;
        tp_node *g = &c->dst->nodes[c->dst->nnodes - 1];
        g->flags |= TP_NODE_SEQ;
        if (!k)
            g->seq = (uint32_t)len;
    }
    return 0;
}

/* Cuts members[off, end) into folds: at each call, the run of one function
 * or the repetitions of a sequence of 2..TP_FOLD_SEQ_MAX calls that covers
 * the most calls (the shorter sequence on a tie, so runs of one function
 * fold as they always did) becomes groups when it repeats at least
 * threshold times; otherwise the call is a group of its own.
 *
 * Linear: ext[L] remembers where the last scan for period L stopped, the
 * first x with members[x] != members[x + L] (for L = 1, the end of the run
 * of one function). Every start before it shares that end, so each period
 * scans each call about once, whatever the threshold. */
static int emit_runs(fold_ctx *c, uint32_t parent, size_t off, size_t end)
{
    size_t ext[TP_FOLD_SEQ_MAX + 1];
    for (size_t L = 0; L <= TP_FOLD_SEQ_MAX; L++)
        ext[L] = off;
    size_t i = off;
    while (i < end) {
        if (ext[1] <= i) {
            size_t j = i + 1;
            while (j < end && same_call(c, j, i))
                j++;
            ext[1] = j; /* the end of the run of one function i is in */
        }
        size_t best = 1, cover = ext[1] - i, reps = cover;
        for (size_t L = 2; L <= TP_FOLD_SEQ_MAX && i + L * c->threshold <= end; L++) {
            if (ext[L] <= i) {
                size_t e = i;
                while (e + L < end && same_call(c, e, e + L))
                    e++;
                ext[L] = e;
            }
            size_t n = (ext[L] - i) / L + 1;
            if (n >= c->threshold && n * L > cover) {
                best = L;
                cover = n * L;
                reps = n;
            }
        }
        int r = 0;
        if (reps < c->threshold) {
            r = new_group(c, parent, i, 1);
            i++;
        } else if (best == 1) {
            r = new_group(c, parent, i, reps);
            i += reps;
        } else {
            r = new_sequence(c, parent, i, best, reps);
            i += cover;
        }
        if (r)
            return r;
    }
    return 0;
}

/* Appends a chain of source siblings to members. */
static int push_chain(fold_ctx *c, uint32_t first)
{
    for (uint32_t i = first; i != TP_NONE; i = c->src->nodes[i].next) {
        if (c->nmembers >= c->members_cap || i >= c->src->nnodes)
            return -EINVAL; /* a cycle or bad link: not a tree */
        c->members[c->nmembers++] = i;
    }
    return 0;
}

static int fold_all(fold_ctx *c)
{
    int r = push_chain(c, c->src->first_root);
    if (!r)
        r = emit_runs(c, TP_NONE, 0, c->nmembers);
    for (size_t d = 0; !r && d < c->dst->nnodes; d++) {
        size_t start = c->nmembers;
        size_t off = c->groups.items[d].off, len = c->groups.items[d].len;
        for (size_t k = off; !r && k < off + len; k++)
            r = push_chain(c, c->src->nodes[c->members[k]].first_child);
        if (!r)
            r = emit_runs(c, (uint32_t)d, start, c->nmembers);
    }
    return r;
}

int tp_tree_fold(const tp_tree *t, const tp_fold_opts *opts, tp_tree **ret)
{
    if (!t || !ret)
        return -EINVAL;
    if (!tp__tree_is_finished(t))
        return TP_ERR_SEQUENCE;
    fold_ctx c = {.src = t, .threshold = opts && opts->threshold ? opts->threshold : 2};
    if (c.threshold < 2)
        c.threshold = 2; /* a group of one is an ordinary node anyway */
    tp_tree *d = NULL;
    int r = tp_tree_new(&d);
    if (r)
        return r;
    tp__tree_set_finished(d);
    c.dst = d;
    c.members_cap = t->nnodes;
    c.members = malloc((t->nnodes ? t->nnodes : 1) * sizeof(*c.members));
    if (!c.members) {
        r = -ENOMEM;
        goto cleanup;
    }
    r = tp__tree_copy_funcs(d, t);
    if (!r)
        r = tp__tree_copy_meta(d, t);
    if (!r)
        r = fold_all(&c);
    if (r)
        goto cleanup;
    d->folded = true;
    d->fold_src = t;
    d->fold_members = c.members;
    d->fold_groups = c.groups.items;
    c.members = NULL;
    c.groups.items = NULL;
    *ret = d;
    d = NULL;
cleanup:
    free(c.members);
    tp_vec_free(&c.groups);
    tp_vec_free(&c.scratch);
    tp_tree_free(d);
    return r;
}
