/* The packed tree of the standalone HTML report (render_web.h,
 * docs/API.md "The packed report tree"): the folded tree as columns of
 * varints in pre-order, its texts in one deduplicated string table, then
 * deflated and written as base64. A 1M-call trace as JSON node objects
 * took 209 bytes a call and its page 2 GB to parse; the columns of equal
 * fields (mostly zero deltas) deflate to a few bytes a call and the page
 * decodes them into typed arrays. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "hmap.h"
#include "render_web.h"
#include "tp_err.h"
#include "tree_priv.h"

/* Bit k of the flags column is the flag pack_flags[k]; the page names them
 * in the same order (web/js/packed.js PACK_FLAGS). */
static const uint32_t pack_flags[] = {
    TP_NODE_EXC,         TP_NODE_CAUGHT,     TP_NODE_OPEN,      TP_NODE_GEN,
    TP_NODE_FOLDED,      TP_NODE_ARGS_MIXED, TP_NODE_RET_MIXED, TP_NODE_SPAWNED,
    TP_NODE_SHAPE_MIXED, TP_NODE_SEQ,        TP_NODE_MEM,
};

typedef struct packer {
    tp_buf strs;       /* the string table's entries: length, bytes */
    tp_hmap_bytes ids; /* string -> its index (1-based; 0 is "none") */
    uint32_t nstr;
    tp_buf cols; /* the functions and the columns, after the strings */
    int err;
} packer;

static void put_uv(tp_buf *b, uint64_t v)
{
    uint8_t tmp[10];
    size_t n = 0;
    do {
        uint8_t c = v & 0x7f;
        v >>= 7;
        tmp[n++] = (uint8_t)(c | (v ? 0x80 : 0));
    } while (v);
    tp_buf_append(b, tmp, n);
}

/* Zigzag: 0, -1, 1, -2 ... become 0, 1, 2, 3 ... so small deltas of either
 * sign take one byte. */
static void put_sv(tp_buf *b, int64_t v)
{
    uint64_t u = (uint64_t)v << 1;
    put_uv(b, v < 0 ? ~u : u);
}

/* The index of s in the string table, adding it when new; 0 for NULL. */
static uint32_t intern(packer *p, const char *s)
{
    if (!s)
        return 0;
    size_t n = strlen(s);
    uint64_t id;
    if (tp_hmap_bytes_get(&p->ids, s, n, &id))
        return (uint32_t)id;
    if (p->nstr == UINT32_MAX || tp_hmap_bytes_put(&p->ids, s, n, (uint64_t)p->nstr + 1)) {
        p->err = -ENOMEM;
        return 0;
    }
    put_uv(&p->strs, n);
    tp_buf_append(&p->strs, s, n);
    return ++p->nstr;
}

/* A string column's value: 0 for NULL, 1 for a string new to the table
 * (the table is in the order first used, so a reader knows which), k + 1
 * for the earlier string k. A column of unique texts (arguments that differ
 * call by call) is then a run of 1s instead of growing indices that deflate
 * does not compress. */
static uint64_t str_ref(packer *p, const char *s)
{
    uint32_t before = p->nstr;
    uint32_t k = intern(p, s);
    return !k ? 0 : k > before ? 1 : (uint64_t)k + 1;
}

static uint64_t pack_bits(uint32_t flags)
{
    uint64_t bits = 0;
    for (size_t k = 0; k < sizeof(pack_flags) / sizeof(pack_flags[0]); k++)
        if (flags & pack_flags[k])
            bits |= 1u << k;
    return bits;
}

/* The exception a node shows (the web node's "exc"), or NULL. */
static const char *exc_type(const tp_node *n)
{
    return n->exc_type && (n->flags & (TP_NODE_EXC | TP_NODE_CAUGHT)) ? n->exc_type : NULL;
}

/* The columns: one field of every node in pre-order, then (the member
 * columns) of every call of the packed groups. */
enum {
    COL_UP,
    COL_FUNC,
    COL_DEPTH,
    COL_THREAD,
    COL_COUNT,
    COL_FLAGS,
    COL_START,
    COL_SPAN,
    COL_TOTAL,
    COL_SELF,
    COL_MIN,
    COL_MAX,
    COL_ARGS,
    COL_RET,
    COL_EXC_TYPE,
    COL_EXC_MSG,
    COL_NEXC,
    COL_SUSPENDS,
    COL_SEQ,
    COL_MEM,
    COL_CALL,    /* the raw call number (the first call of a group) */
    COL_RPARENT, /* the raw parent's call number + 1 (0: a root) */
    NCOLS,
    COL_KIDS, /* members only: the raw call's child count */
};

/* The member columns, in order: a call of a group has no up, func or seq
 * (they are its node's) but its raw child count. */
static const int member_cols[] = {
    COL_CALL,  COL_RPARENT,  COL_KIDS,    COL_DEPTH, COL_THREAD,   COL_COUNT, COL_FLAGS,
    COL_START, COL_SPAN,     COL_TOTAL,   COL_SELF,  COL_MIN,      COL_MAX,   COL_ARGS,
    COL_RET,   COL_EXC_TYPE, COL_EXC_MSG, COL_NEXC,  COL_SUSPENDS, COL_MEM,
};

/* Where the raw calls are: the tree t was folded from, or t itself. */
typedef struct raw_view {
    const tp_tree *src;
    const uint32_t *members;
    const tp_fold_group *groups;
} raw_view;

/* The raw call node id stands for first. */
static uint32_t first_call(const raw_view *rv, uint32_t id)
{
    return rv->groups ? rv->members[rv->groups[id].off] : id;
}

/* A raw call's parent's call number + 1, 0 for a root. */
static int64_t raw_parent1(const raw_view *rv, uint32_t call)
{
    uint32_t p = call < rv->src->nnodes ? rv->src->nodes[call].parent : TP_NONE;
    return p == TP_NONE ? 0 : (int64_t)p + 1;
}

/* One item of a column: the node or call whose fields are written, and
 * what its deltas are taken from. */
typedef struct item {
    const tp_node *nd;
    int64_t level;     /* a node's level (what depth is written from) */
    int64_t ref_start; /* what start is written from */
    int64_t ref_call;  /* what the call number is written from */
    int64_t ref_rp;    /* what the raw parent + 1 is written from */
    int64_t call, rp;  /* the call number and raw parent + 1 */
    uint64_t kids;     /* a call's raw child count */
} item;

static void put_field(packer *p, int col, const item *it)
{
    tp_buf *b = &p->cols;
    const tp_node *nd = it->nd;
    const int64_t span = nd->end_ns - nd->start_ns;
    switch (col) {
    case COL_FUNC:
        put_uv(b, nd->func);
        break;
    case COL_DEPTH:
        put_sv(b, (int64_t)nd->depth - it->level);
        break;
    case COL_THREAD:
        put_uv(b, nd->thread);
        break;
    case COL_COUNT:
        put_uv(b, nd->count);
        break;
    case COL_FLAGS:
        put_uv(b, pack_bits(nd->flags));
        break;
    case COL_START:
        put_sv(b, nd->start_ns - it->ref_start);
        break;
    case COL_SPAN:
        put_sv(b, span);
        break;
    case COL_TOTAL:
        put_sv(b, nd->total_ns - span);
        break;
    case COL_SELF:
        put_sv(b, nd->total_ns - nd->self_ns);
        break;
    case COL_MIN:
        put_sv(b, nd->total_ns - nd->min_ns);
        break;
    case COL_MAX:
        put_sv(b, nd->max_ns - nd->min_ns);
        break;
    case COL_ARGS:
        put_uv(b, str_ref(p, nd->args));
        break;
    case COL_RET:
        put_uv(b, str_ref(p, nd->ret));
        break;
    case COL_EXC_TYPE:
        put_uv(b, str_ref(p, exc_type(nd)));
        break;
    case COL_EXC_MSG:
        put_uv(b, exc_type(nd) ? str_ref(p, nd->exc_msg) : 0);
        break;
    case COL_NEXC:
        put_uv(b, nd->nexc);
        break;
    case COL_SUSPENDS:
        put_uv(b, nd->suspends);
        break;
    case COL_SEQ:
        put_uv(b, nd->seq);
        break;
    case COL_MEM:
        put_sv(b, nd->flags & TP_NODE_MEM ? nd->mem_delta : 0);
        break;
    case COL_CALL:
        put_sv(b, it->call - it->ref_call);
        break;
    case COL_RPARENT:
        put_sv(b, it->rp - it->ref_rp);
        break;
    default: /* COL_KIDS */
        put_uv(b, it->kids);
    }
}

/* The node columns: node order[k] of t for each k < n. */
static void put_node_columns(packer *p, const tp_tree *t, const raw_view *rv, const uint32_t *order,
                             size_t n, const uint32_t *level, const int64_t *ref,
                             const int64_t *rpref)
{
    for (int col = 0; col < NCOLS; col++) {
        int64_t prev_level = -1, prev_call = -1;
        for (size_t k = 0; k < n; k++) {
            const uint32_t id = order[k];
            const tp_node *nd = &t->nodes[id];
            if (col ==
                COL_UP) { /* 0: first child of the previous node, 1: its sibling, 2+: climbs */
                put_uv(&p->cols, (uint64_t)(prev_level + 1 - level[id]));
                prev_level = level[id];
                continue;
            }
            item it = {.nd = nd, .level = level[id], .ref_start = ref[id]};
            it.call = first_call(rv, id);
            it.ref_call = prev_call + 1;
            prev_call = it.call;
            if (col == COL_RPARENT) {
                it.rp = raw_parent1(rv, (uint32_t)it.call);
                it.ref_rp = rpref[id];
            }
            put_field(p, col, &it);
        }
    }
}

/* The groups section: the bound, the groups that fit (node, calls) and
 * the member columns of their calls. */
static int put_members(packer *p, const tp_tree *t, const raw_view *rv, const uint32_t *order,
                       size_t n, size_t max_members)
{
    tp_buf *b = &p->cols;
    put_uv(b, max_members);
    uint32_t *gs = malloc((n ? n : 1) * sizeof(*gs));
    if (!gs)
        return -ENOMEM;
    size_t ng = 0, used = 0;
    for (size_t k = 0; k < n && rv->groups; k++) {
        const tp_node *nd = &t->nodes[order[k]];
        const tp_fold_group g = rv->groups[order[k]];
        if (!(nd->flags & TP_NODE_FOLDED) || g.len > max_members - used)
            continue;
        used += g.len;
        gs[ng++] = (uint32_t)k;
    }
    put_uv(b, ng);
    for (size_t j = 0; j < ng; j++) {
        put_uv(b, gs[j] - (j ? gs[j - 1] : 0));
        put_uv(b, rv->groups[order[gs[j]]].len);
    }
    for (size_t c = 0; c < sizeof(member_cols) / sizeof(member_cols[0]); c++) {
        for (size_t j = 0; j < ng; j++) {
            const uint32_t id = order[gs[j]];
            const tp_node *node = &t->nodes[id];
            const tp_fold_group g = rv->groups[id];
            item it = {.level = node->depth,
                       .ref_start = node->start_ns,
                       .ref_call = first_call(rv, id),
                       .ref_rp = raw_parent1(rv, first_call(rv, id))};
            for (uint32_t m = 0; m < g.len; m++) {
                uint32_t call = rv->members[g.off + m];
                if (call >= rv->src->nnodes) {
                    free(gs);
                    return -EINVAL;
                }
                const tp_node *nd = &rv->src->nodes[call];
                it.nd = nd;
                it.call = call;
                it.rp = raw_parent1(rv, call);
                it.kids = 0;
                if (member_cols[c] == COL_KIDS)
                    for (uint32_t ch = nd->first_child; ch != TP_NONE; ch = rv->src->nodes[ch].next)
                        it.kids++;
                put_field(p, member_cols[c], &it);
                it.ref_start = nd->end_ns;
                it.ref_call = call;
                it.ref_rp = it.rp;
            }
        }
    }
    free(gs);
    return 0;
}

int tp_render_web_pack(const tp_tree *t, size_t max_members, tp_buf *out, uint32_t **ret_ids,
                       size_t *ret_members_at)
{
    if (!t || !out)
        return -EINVAL;
    const size_t nn = t->nnodes;
    int r = -ENOMEM;
    packer p = {.strs = TP_BUF_INIT, .cols = TP_BUF_INIT};
    uint32_t *order = malloc((nn ? nn : 1) * sizeof(*order));
    uint32_t *level = malloc((nn ? nn : 1) * sizeof(*level));
    uint32_t *ids = malloc((nn ? nn : 1) * sizeof(*ids));
    int64_t *ref = malloc((nn ? nn : 1) * sizeof(*ref));
    int64_t *rpref = malloc((nn ? nn : 1) * sizeof(*rpref));
    if (!order || !level || !ids || !ref || !rpref)
        goto cleanup;
    /* The raw calls: a folded tree's source, else the tree itself (each
     * node its own call). */
    raw_view rv = {t, NULL, NULL};
    if (t->fold_src && t->fold_groups && t->fold_members)
        rv = (raw_view){t->fold_src, t->fold_members, t->fold_groups};
    /* Pre-order, with each node's level, the time its start is written
     * from (its previous sibling's end, else its parent's start, 0 for the
     * first root) and the raw parent its raw parent is written from (its
     * previous sibling's, else its parent's first call). */
    size_t n = 0;
    for (size_t i = 0; i < nn; i++)
        ids[i] = TP_NONE;
    if (t->first_root != TP_NONE)
        ref[t->first_root] = rpref[t->first_root] = 0;
    for (uint32_t cur = t->first_root; cur != TP_NONE && n < nn; cur = tp__tree_next(t, cur)) {
        const tp_node *nd = &t->nodes[cur];
        order[n] = cur;
        ids[cur] = (uint32_t)n++;
        level[cur] = nd->parent == TP_NONE ? 0 : level[nd->parent] + 1;
        if (nd->first_child != TP_NONE) {
            ref[nd->first_child] = nd->start_ns;
            rpref[nd->first_child] = (int64_t)first_call(&rv, cur) + 1;
        }
        if (nd->next != TP_NONE) {
            ref[nd->next] = nd->end_ns;
            rpref[nd->next] = raw_parent1(&rv, first_call(&rv, cur));
        }
    }

    put_uv(&p.cols, t->nfuncs);
    for (size_t f = 0; f < t->nfuncs; f++) {
        const tp_func *fn = &t->funcs[f];
        put_uv(&p.cols, intern(&p, fn->module));
        put_uv(&p.cols, intern(&p, fn->qualname));
        put_uv(&p.cols, intern(&p, fn->file));
        put_sv(&p.cols, fn->lineno);
    }
    put_uv(&p.cols, n);
    put_node_columns(&p, t, &rv, order, n, level, ref, rpref);
    /* The strings are numbered in the order first used and the nodes'
     * columns come first, so the groups' calls only add to the table: those
     * strings go with the calls, which a page decodes only when asked. */
    const size_t node_end = p.cols.len, node_strs = p.strs.len;
    const uint32_t node_nstr = p.nstr;
    if ((r = put_members(&p, t, &rv, order, n, max_members)))
        goto cleanup;
    if ((r = p.err) || (r = tp_buf_error(&p.strs)) || (r = tp_buf_error(&p.cols)))
        goto cleanup;
    const size_t base = out->len;
    tp_buf_append(out, TP_WEB_PACK_MAGIC, 4);
    put_uv(out, node_nstr);
    tp_buf_append(out, p.strs.data, node_strs);
    tp_buf_append(out, p.cols.data, node_end);
    const size_t members_at = out->len - base;
    put_uv(out, p.nstr - node_nstr);
    tp_buf_append(out, p.strs.data + node_strs, p.strs.len - node_strs);
    tp_buf_append(out, p.cols.data + node_end, p.cols.len - node_end);
    if ((r = tp_buf_error(out)))
        goto cleanup;
    if (ret_members_at)
        *ret_members_at = members_at;
    if (ret_ids) {
        *ret_ids = ids;
        ids = NULL;
    }
cleanup:
    tp_buf_free(&p.strs);
    tp_buf_free(&p.cols);
    tp_hmap_bytes_free(&p.ids);
    free(order);
    free(level);
    free(ids);
    free(ref);
    free(rpref);
    return r;
}

static const char b64_digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int tp_render_web_deflate_b64(const void *p, size_t n, int level, tp_buf *out)
{
    if ((!p && n) || !out || level < 0 || level > 9 || n > ULONG_MAX)
        return -EINVAL;
    uLongf zn = compressBound((uLong)n);
    uint8_t *z = malloc(zn);
    if (!z)
        return -ENOMEM;
    int zr = compress2(z, &zn, p ? p : (const void *)"", (uLong)n, level);
    int r = zr == Z_OK ? 0 : zr == Z_MEM_ERROR ? -ENOMEM : -EINVAL;
    if (r)
        goto cleanup;
    if ((r = tp_buf_reserve(out, (zn + 2) / 3 * 4)))
        goto cleanup;
    for (size_t i = 0; i < zn; i += 3) {
        uint32_t v = (uint32_t)z[i] << 16;
        if (i + 1 < zn)
            v |= (uint32_t)z[i + 1] << 8;
        if (i + 2 < zn)
            v |= z[i + 2];
        char q[4] = {b64_digits[v >> 18], b64_digits[(v >> 12) & 63],
                     i + 1 < zn ? b64_digits[(v >> 6) & 63] : '=',
                     i + 2 < zn ? b64_digits[v & 63] : '='};
        tp_buf_append(out, q, 4);
    }
    r = tp_buf_error(out);
cleanup:
    free(z);
    return r;
}
