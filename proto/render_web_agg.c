/* The report UI's summaries of a whole trace (issue 14), computed here so a
 * 1M-call trace is summarised without the browser loading every call: the
 * function table of a time range, the timeline's calls per lane and time
 * bucket, and the merged ("left heavy") and sandwich flame graphs. See
 * render_web.h for the shapes and docs/API.md for the routes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hmap.h"
#include "json.h"
#include "render_priv.h"
#include "render_web.h"
#include "tp_err.h"
#include "tree_priv.h"
#include "vec.h"

/* ---- The function table of a range ------------------------------------ */

typedef struct fn_acc {
    uint64_t count, exceptions;
    int64_t total, self, min, max;
} fn_acc;

static const fn_acc *sort_accs; /* qsort has no context argument */

static int by_total_desc(const void *a, const void *b)
{
    const fn_acc *x = &sort_accs[*(const uint32_t *)a], *y = &sort_accs[*(const uint32_t *)b];
    if (x->total != y->total)
        return x->total < y->total ? 1 : -1;
    return *(const uint32_t *)a < *(const uint32_t *)b ? -1 : 1;
}

int tp_render_web_profile(const tp_tree *t, int64_t t0_ns, int64_t t1_ns, tp_buf *out)
{
    if (!t || !out || t1_ns < t0_ns)
        return -EINVAL;
    int r = -ENOMEM;
    fn_acc *acc = calloc(t->nfuncs ? t->nfuncs : 1, sizeof(*acc));
    uint32_t *order = malloc((t->nfuncs ? t->nfuncs : 1) * sizeof(*order));
    if (!acc || !order)
        goto out;
    uint64_t calls = 0;
    for (size_t i = 0; i < t->nnodes; i++) {
        const tp_node *n = &t->nodes[i];
        /* A call belongs to the range it started in, so a range and the
         * one after it never count a call twice. */
        if (n->start_ns < t0_ns || n->start_ns >= t1_ns || n->func >= t->nfuncs)
            continue;
        fn_acc *a = &acc[n->func];
        if (!a->count || n->min_ns < a->min)
            a->min = n->min_ns;
        if (n->max_ns > a->max)
            a->max = n->max_ns;
        a->count += n->count;
        a->total += n->total_ns;
        a->self += n->self_ns;
        a->exceptions += (n->flags & TP_NODE_EXC) ? (n->nexc ? n->nexc : 1) : 0;
        calls += n->count;
    }
    size_t nf = 0;
    for (uint32_t f = 0; f < t->nfuncs; f++)
        if (acc[f].count)
            order[nf++] = f;
    sort_accs = acc;
    qsort(order, nf, sizeof(*order), by_total_desc);

    tp_json w;
    tp_json_init(&w, out, false);
    tp_json_obj(&w);
    tp_json_kms(&w, "t0_ms", t0_ns);
    tp_json_kms(&w, "t1_ms", t1_ns);
    tp_json_ku64(&w, "calls", calls);
    tp_json_ku64(&w, "unique_functions", nf);
    tp_json_key(&w, "functions");
    tp_json_arr(&w);
    for (size_t k = 0; k < nf; k++) {
        const fn_acc *a = &acc[order[k]];
        const tp_func *f = &t->funcs[order[k]];
        tp_json_obj(&w);
        tp__render_json_func(&w, f);
        tp_json_ki64(&w, "lineno", f->lineno);
        tp_json_ku64(&w, "count", a->count);
        tp_json_kms(&w, "total_ms", a->total);
        tp_json_kms(&w, "self_ms", a->self);
        tp_json_kms(&w, "min_ms", a->min);
        tp_json_kms(&w, "max_ms", a->max);
        tp_json_kms(&w, "avg_ms", a->total / (int64_t)a->count);
        tp_json_ku64(&w, "exceptions", a->exceptions);
        tp_json_obj_end(&w);
    }
    tp_json_arr_end(&w);
    tp_json_obj_end(&w);
    r = tp_json_error(&w);
out:
    free(acc);
    free(order);
    return r;
}

/* ---- Timeline buckets --------------------------------------------------- */

#define TL_MAX_ROWS  64         /* depths per lane; deeper calls are left out */
#define TL_MAX_TASKS 63         /* task lanes; the calls of later tasks share one more lane */
#define TL_MORE      UINT32_MAX /* the key of that shared lane */

typedef struct tl_cell {
    int64_t busy;     /* ns of the bucket covered by calls of this row */
    int64_t best;     /* the longest single overlap, whose function names the cell */
    uint32_t func;    /* that call's function */
    uint32_t started; /* calls of this row that started in the bucket */
    bool set;         /* func is set */
} tl_cell;

typedef struct tl_lane {
    uint32_t key;               /* a thread index, or the node of a task's coroutine */
    bool task;                  /* key is a node */
    uint32_t thread;            /* the thread its calls ran on */
    uint32_t nrows;             /* rows used */
    tl_cell *rows[TL_MAX_ROWS]; /* nbuckets cells each, allocated on first use */
} tl_lane;

/* The lanes in order of first use, and how a call finds its own. */
typedef struct tl_lanes {
    TP_VEC(tl_lane) v;
    tp_hmap threads; /* thread -> its lane: a trace may have as many threads as calls */
    size_t ntasks;   /* task lanes, the shared one included */
    uint32_t more;   /* the lane the tasks past TL_MAX_TASKS share, TP_NONE before it exists */
} tl_lanes;

static int new_lane(tl_lanes *lanes, bool task, uint32_t key, uint32_t thread, uint32_t *ret)
{
    if (tp_vec_grow1(&lanes->v) < 0)
        return -ENOMEM;
    tl_lane *l = &lanes->v.items[lanes->v.size];
    memset(l, 0, sizeof(*l));
    l->key = key;
    l->task = task;
    l->thread = thread;
    *ret = (uint32_t)lanes->v.size++;
    return 0;
}

/* Each task is its own lane (its key, a node, is unique) until there are too
 * many to draw, when the rest share one; each thread has one. */
static int lane_of(tl_lanes *lanes, bool task, uint32_t key, uint32_t thread, uint32_t *ret)
{
    if (task) {
        if (lanes->more != TP_NONE) {
            *ret = lanes->more;
            return 0;
        }
        bool more = lanes->ntasks >= TL_MAX_TASKS;
        int r = new_lane(lanes, true, more ? TL_MORE : key, thread, ret);
        if (r < 0)
            return r;
        lanes->ntasks++;
        if (more)
            lanes->more = *ret;
        return 0;
    }
    uint64_t found;
    if (tp_hmap_get(&lanes->threads, key, &found)) {
        *ret = (uint32_t)found;
        return 0;
    }
    if (tp_hmap_put(&lanes->threads, key, lanes->v.size) < 0)
        return -ENOMEM;
    return new_lane(lanes, false, key, thread, ret);
}

/* Add node n of lane l, row d, to the buckets it covers in [t0, t0 + nb * w). */
static int tl_add(tl_lane *l, uint32_t d, const tp_node *n, int64_t t0, int64_t w, uint32_t nb)
{
    int64_t s = n->start_ns, e = n->end_ns > n->start_ns ? n->end_ns : n->start_ns;
    int64_t t1 = t0 + w * nb;
    if (e < t0 || s >= t1 || d >= TL_MAX_ROWS)
        return 0;
    if (!l->rows[d] && !(l->rows[d] = calloc(nb, sizeof(tl_cell))))
        return -ENOMEM;
    if (d + 1 > l->nrows)
        l->nrows = d + 1;
    int64_t cs = s < t0 ? t0 : s, ce = e > t1 ? t1 : e;
    uint32_t b0 = (uint32_t)((cs - t0) / w), b1 = (uint32_t)((ce - t0) / w);
    if (b1 >= nb)
        b1 = nb - 1;
    for (uint32_t b = b0; b <= b1; b++) {
        int64_t bs = t0 + (int64_t)b * w, be = bs + w;
        int64_t ov = (ce < be ? ce : be) - (cs > bs ? cs : bs);
        tl_cell *c = &l->rows[d][b];
        if (ov < 0)
            ov = 0;
        c->busy += ov;
        if (!c->set || ov > c->best) {
            c->best = ov;
            c->func = n->func;
            c->set = true;
        }
        if (b == b0 && s >= t0)
            c->started++;
    }
    return 0;
}

int tp_render_web_timeline(const tp_tree *t, int64_t t0_ns, int64_t t1_ns, uint32_t nbuckets,
                           tp_buf *out)
{
    if (!t || !out || t1_ns <= t0_ns || nbuckets < 1 || nbuckets > TP_WEB_MAX_BUCKETS)
        return -EINVAL;
    int64_t w = (t1_ns - t0_ns + nbuckets - 1) / nbuckets;
    if (w < 1)
        w = 1;
    int r = -ENOMEM;
    tl_lanes lanes = {.more = TP_NONE};
    uint32_t *lane = malloc((t->nnodes ? t->nnodes : 1) * sizeof(*lane));
    uint32_t *row = malloc((t->nnodes ? t->nnodes : 1) * sizeof(*row));
    char name[512];
    if (!lane || !row)
        goto out;
    /* Lanes as the UI draws them (timeline.js): a thread's calls in its
     * lane, an asyncio task's coroutine and what it calls in one of its
     * own, each nested by depth from 0. Parents come before their children
     * in a raw tree and a folded one alike, so one pass in index order
     * knows each parent's lane and row. */
    for (uint32_t i = 0; i < t->nnodes; i++) {
        const tp_node *n = &t->nodes[i];
        uint32_t p = n->parent, l, d;
        if (n->flags & TP_NODE_SPAWNED) {
            if (lane_of(&lanes, true, i, n->thread, &l) < 0)
                goto out;
            d = 0;
        } else if (p == TP_NONE || p >= i || lanes.v.items[lane[p]].thread != n->thread) {
            if (lane_of(&lanes, false, n->thread, n->thread, &l) < 0)
                goto out;
            d = 0;
        } else {
            l = lane[p];
            d = row[p] + 1;
        }
        lane[i] = l;
        row[i] = d;
        if (tl_add(&lanes.v.items[l], d, n, t0_ns, w, nbuckets) < 0)
            goto out;
    }

    tp_json jw;
    tp_json_init(&jw, out, false);
    tp_json_obj(&jw);
    tp_json_kms(&jw, "t0_ms", t0_ns);
    tp_json_kms(&jw, "t1_ms", t0_ns + w * nbuckets);
    tp_json_kms(&jw, "bucket_ms", w);
    tp_json_ku64(&jw, "buckets", nbuckets);
    tp_json_key(&jw, "lanes");
    tp_json_arr(&jw);
    for (size_t k = 0; k < lanes.v.size; k++) {
        const tl_lane *l = &lanes.v.items[k];
        tp_json_obj(&jw);
        if (l->task && l->key == TL_MORE) {
            tp_json_kstr(&jw, "name", "tasks (more)");
        } else if (l->task) {
            size_t len =
                strlen(tp_tree_func_name(t, t->nodes[l->key].func, name + 5, sizeof(name) - 5));
            memcpy(name, "task ", 5);
            tp_json_key(&jw, "name");
            tp_json_strn(&jw, name, len + 5);
        } else {
            snprintf(name, sizeof(name), "thread %u", l->key);
            tp_json_kstr(&jw, "name", name);
        }
        tp_json_ku64(&jw, "thread", l->thread);
        tp_json_key(&jw, "rows");
        tp_json_arr(&jw);
        for (uint32_t d = 0; d < l->nrows; d++) {
            /* A row lists its non-empty buckets as [bucket, busy_ms,
             * function, calls started], so an idle stretch costs nothing. */
            tp_json_arr(&jw);
            for (uint32_t b = 0; b < nbuckets; b++) {
                const tl_cell *c = l->rows[d] ? &l->rows[d][b] : NULL;
                if (!c || (!c->busy && !c->started))
                    continue;
                tp_json_arr(&jw);
                tp_json_u64(&jw, b);
                tp_json_ms(&jw, c->busy);
                tp_json_u64(&jw, c->func);
                tp_json_u64(&jw, c->started);
                tp_json_arr_end(&jw);
            }
            tp_json_arr_end(&jw);
        }
        tp_json_arr_end(&jw);
        tp_json_obj_end(&jw);
    }
    tp_json_arr_end(&jw);
    /* Function names once, indexed by the cells. */
    tp_json_key(&jw, "funcs");
    tp_json_arr(&jw);
    for (uint32_t f = 0; f < t->nfuncs; f++)
        tp__render_json_name(&jw, &t->funcs[f]);
    tp_json_arr_end(&jw);
    tp_json_obj_end(&jw);
    r = tp_json_error(&jw);
out:
    for (size_t k = 0; k < lanes.v.size; k++)
        for (uint32_t d = 0; d < TL_MAX_ROWS; d++)
            free(lanes.v.items[k].rows[d]);
    tp_vec_free(&lanes.v);
    tp_hmap_free(&lanes.threads);
    free(lane);
    free(row);
    return r;
}

/* ---- Merged and sandwich flame graphs ----------------------------------- */

#define FL_MAX_DEPTH 256 /* levels of a merged graph; deeper stacks are cut */

/* One call standing in a merged level: cur is the node whose function the
 * level groups by; the time and count are those of the call it stands for
 * (for callers, the call of the sandwiched function, not all of cur). */
typedef struct fl_item {
    uint32_t cur;
    uint32_t count;
    int64_t total, self;
} fl_item;

typedef TP_VEC(fl_item) fl_items;

typedef struct fl_group {
    uint32_t func;
    uint64_t count;
    int64_t total, self;
    fl_items items;
} fl_group;

typedef struct fl_ctx {
    const tp_tree *t;
    tp_json *w;
    uint32_t *slot;  /* per function: its group at the level being built, or TP_NONE */
    bool up;         /* callers: the next level is each item's parent */
    int64_t min_ns;  /* groups below this are left out */
    uint32_t budget; /* groups still to emit */
    bool cut;        /* something was left out for the budget or the depth */
    int err;
} fl_ctx;

static int by_group_total(const void *a, const void *b)
{
    const fl_group *x = a, *y = b;
    if (x->total != y->total)
        return x->total < y->total ? 1 : -1;
    return x->func < y->func ? -1 : x->func > y->func;
}

/* Emit the merged groups of items (one level) and, under each, the next
 * levels. */
static void fl_level(fl_ctx *c, const fl_item *items, size_t n, int depth)
{
    TP_VEC(fl_group) groups = TP_VEC_INIT;
    for (size_t i = 0; i < n && !c->err; i++) {
        uint32_t f = c->t->nodes[items[i].cur].func;
        uint32_t g = c->slot[f];
        if (g == TP_NONE) {
            if (tp_vec_grow1(&groups) < 0) {
                c->err = -ENOMEM;
                break;
            }
            g = (uint32_t)groups.size++;
            memset(&groups.items[g], 0, sizeof(fl_group));
            groups.items[g].func = f;
            c->slot[f] = g;
        }
        fl_group *gr = &groups.items[g];
        gr->count += items[i].count;
        gr->total += items[i].total;
        gr->self += items[i].self;
        if (tp_vec_grow1(&gr->items) < 0)
            c->err = -ENOMEM;
        else
            gr->items.items[gr->items.size++] = items[i];
    }
    for (size_t g = 0; g < groups.size; g++)
        c->slot[groups.items[g].func] = TP_NONE;
    if (groups.size)
        qsort(groups.items, groups.size, sizeof(fl_group), by_group_total);
    tp_json_arr(c->w);
    for (size_t g = 0; g < groups.size && !c->err; g++) {
        fl_group *gr = &groups.items[g];
        if (gr->total < c->min_ns)
            break; /* sorted: the rest are smaller still */
        if (!c->budget) {
            c->cut = true;
            break;
        }
        c->budget--;
        tp_json_obj(c->w);
        /* "function" is the dotted name, as in diffs ("name" means the
         * qualname beside "module" in every JSON output). */
        tp_json_key(c->w, "function");
        tp__render_json_name(c->w, &c->t->funcs[gr->func]);
        tp_json_kstr(c->w, "module", c->t->funcs[gr->func].module);
        tp_json_ku64(c->w, "count", gr->count);
        tp_json_kms(c->w, "total_ms", gr->total);
        tp_json_kms(c->w, "self_ms", gr->self);
        /* The next level: callees (every child of every call) or callers
         * (each call's parent, carrying the call's own time). */
        fl_items next = TP_VEC_INIT;
        for (size_t i = 0; i < gr->items.size && !c->err; i++) {
            const fl_item *it = &gr->items.items[i];
            if (c->up) {
                uint32_t p = c->t->nodes[it->cur].parent;
                if (p == TP_NONE)
                    continue;
                if (tp_vec_grow1(&next) < 0) {
                    c->err = -ENOMEM;
                    break;
                }
                next.items[next.size] = *it;
                next.items[next.size++].cur = p;
                continue;
            }
            for (uint32_t k = c->t->nodes[it->cur].first_child; k != TP_NONE;
                 k = c->t->nodes[k].next) {
                if (tp_vec_grow1(&next) < 0) {
                    c->err = -ENOMEM;
                    break;
                }
                const tp_node *kn = &c->t->nodes[k];
                next.items[next.size++] = (fl_item){k, kn->count, kn->total_ns, kn->self_ns};
            }
        }
        if (next.size && depth + 1 < FL_MAX_DEPTH) {
            tp_json_key(c->w, "kids");
            fl_level(c, next.items, next.size, depth + 1);
        } else if (next.size) {
            c->cut = true;
        }
        tp_vec_free(&next);
        tp_json_obj_end(c->w);
    }
    tp_json_arr_end(c->w);
    for (size_t g = 0; g < groups.size; g++)
        tp_vec_free(&groups.items[g].items);
    tp_vec_free(&groups);
}

int tp_render_web_flame(const tp_tree *t, const char *fn, int64_t min_ns, uint32_t max_nodes,
                        tp_buf *out)
{
    if (!t || !out)
        return -EINVAL;
    int r = -ENOMEM;
    fl_items occ = TP_VEC_INIT;
    bool *match = NULL;
    uint8_t *inner = NULL;
    char name[512];
    fl_ctx c = {
        .t = t, .min_ns = min_ns, .budget = max_nodes ? max_nodes : TP_WEB_MAX_NODES_DEFAULT};
    c.slot = malloc((t->nfuncs ? t->nfuncs : 1) * sizeof(*c.slot));
    if (!c.slot)
        goto out;
    for (size_t f = 0; f < t->nfuncs; f++)
        c.slot[f] = TP_NONE;
    if (fn) {
        match = calloc(t->nfuncs ? t->nfuncs : 1, sizeof(*match));
        if (!match)
            goto out;
        for (uint32_t f = 0; f < t->nfuncs; f++)
            match[f] = strcmp(tp_tree_func_name(t, f, name, sizeof(name)), fn) == 0;
        /* A recursive call inside another of fn's is already counted in the
         * outer one. Whether a call has such an ancestor is decided in one
         * pre-order pass (a parent before its children): looking up each
         * call's ancestors costs depth^2 on a deep trace. */
        inner = calloc(t->nnodes ? t->nnodes : 1, 1);
        if (!inner)
            goto out;
        for (uint32_t i = t->first_root; i != TP_NONE; i = tp__tree_next(t, i)) {
            uint32_t p = t->nodes[i].parent;
            inner[i] = p != TP_NONE && (match[t->nodes[p].func] || inner[p]);
        }
    }
    int64_t total = 0, self = 0;
    uint64_t count = 0;
    for (uint32_t i = 0; i < t->nnodes; i++) {
        const tp_node *n = &t->nodes[i];
        if (!fn) {
            if (n->parent != TP_NONE)
                continue;
        } else {
            if (!match[n->func] || inner[i])
                continue;
        }
        if (tp_vec_grow1(&occ) < 0)
            goto out;
        occ.items[occ.size++] = (fl_item){i, n->count, n->total_ns, n->self_ns};
        total += n->total_ns;
        self += n->self_ns;
        count += n->count;
    }
    tp_json w;
    tp_json_init(&w, out, false);
    c.w = &w;
    tp_json_obj(&w);
    tp_json_kstr(&w, "mode", fn ? "sandwich" : "merged");
    if (fn)
        tp_json_kstr(&w, "fn", fn);
    tp_json_ku64(&w, "count", count);
    tp_json_kms(&w, "total_ms", total);
    tp_json_kms(&w, "self_ms", self);
    if (!fn) {
        tp_json_key(&w, "nodes");
        fl_level(&c, occ.items, occ.size, 0);
    } else {
        /* Callees: the merged calls below fn's calls. Callers: from each
         * call of fn up through its parents, merged level by level. */
        tp_json_key(&w, "callees");
        fl_items kids = TP_VEC_INIT;
        for (size_t i = 0; i < occ.size && !c.err; i++)
            for (uint32_t k = t->nodes[occ.items[i].cur].first_child; k != TP_NONE;
                 k = t->nodes[k].next) {
                if (tp_vec_grow1(&kids) < 0) {
                    c.err = -ENOMEM;
                    break;
                }
                const tp_node *kn = &t->nodes[k];
                kids.items[kids.size++] = (fl_item){k, kn->count, kn->total_ns, kn->self_ns};
            }
        fl_level(&c, kids.items, kids.size, 0);
        tp_vec_free(&kids);
        tp_json_key(&w, "callers");
        size_t np = 0;
        for (size_t i = 0; i < occ.size; i++) {
            uint32_t p = t->nodes[occ.items[i].cur].parent;
            if (p != TP_NONE) {
                occ.items[np] = occ.items[i];
                occ.items[np++].cur = p;
            }
        }
        c.up = true;
        fl_level(&c, occ.items, np, 0);
    }
    tp_json_kbool(&w, "cut", c.cut);
    tp_json_obj_end(&w);
    r = c.err ? c.err : tp_json_error(&w);
out:
    tp_vec_free(&occ);
    free(match);
    free(inner);
    free(c.slot);
    return r;
}
