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

/* One column: field f of every node, in pre-order. */
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
    NCOLS
};

static void put_column(packer *p, const tp_tree *t, int col, const uint32_t *order, size_t n,
                       const uint32_t *level, const int64_t *ref)
{
    tp_buf *b = &p->cols;
    int64_t prev_level = -1;
    for (size_t k = 0; k < n; k++) {
        const uint32_t id = order[k];
        const tp_node *nd = &t->nodes[id];
        const int64_t span = nd->end_ns - nd->start_ns;
        switch (col) {
        case COL_UP: /* 0: first child of the previous node, 1: its sibling, 2+: climbs */
            put_uv(b, (uint64_t)(prev_level + 1 - level[id]));
            prev_level = level[id];
            break;
        case COL_FUNC:
            put_uv(b, nd->func);
            break;
        case COL_DEPTH:
            put_sv(b, (int64_t)nd->depth - level[id]);
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
            put_sv(b, nd->start_ns - ref[id]);
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
            put_uv(b, intern(p, nd->args));
            break;
        case COL_RET:
            put_uv(b, intern(p, nd->ret));
            break;
        case COL_EXC_TYPE:
            put_uv(b, intern(p, exc_type(nd)));
            break;
        case COL_EXC_MSG:
            put_uv(b, exc_type(nd) ? intern(p, nd->exc_msg) : 0);
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
        default:
            put_sv(b, nd->flags & TP_NODE_MEM ? nd->mem_delta : 0);
        }
    }
}

int tp_render_web_pack(const tp_tree *t, size_t max_members, tp_buf *out, uint32_t **ret_ids)
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
    if (!order || !level || !ids || !ref)
        goto cleanup;
    /* Pre-order, with each node's level and the time its start is written
     * from: its previous sibling's end, else its parent's start (0 for the
     * first root). */
    size_t n = 0;
    for (size_t i = 0; i < nn; i++)
        ids[i] = TP_NONE;
    if (t->first_root != TP_NONE)
        ref[t->first_root] = 0;
    for (uint32_t cur = t->first_root; cur != TP_NONE && n < nn; cur = tp__tree_next(t, cur)) {
        const tp_node *nd = &t->nodes[cur];
        order[n] = cur;
        ids[cur] = (uint32_t)n++;
        level[cur] = nd->parent == TP_NONE ? 0 : level[nd->parent] + 1;
        if (nd->first_child != TP_NONE)
            ref[nd->first_child] = nd->start_ns;
        if (nd->next != TP_NONE)
            ref[nd->next] = nd->end_ns;
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
    for (int col = 0; col < NCOLS; col++)
        put_column(&p, t, col, order, n, level, ref);
    if ((r = p.err) || (r = tp_buf_error(&p.strs)) || (r = tp_buf_error(&p.cols)))
        goto cleanup;
    tp_buf_append(out, TP_WEB_PACK_MAGIC, 4);
    put_uv(out, p.nstr);
    tp_buf_append(out, p.strs.data, p.strs.len);
    tp_buf_append(out, p.cols.data, p.cols.len);
    if ((r = tp_buf_error(out)))
        goto cleanup;
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
