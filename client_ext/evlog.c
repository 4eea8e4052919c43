/* The event log: blocks of fixed records plus a chunked text arena.
 *
 * Blocks and chunks come from PyMem_RawMalloc so that tracemalloc sees what
 * a trace costs; the raw allocator needs no GIL, although every caller holds
 * it. The two small tables that list them are TP_VECs (malloc). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <string.h>

#include "evlog.h"
#include "ext.h"

long tp_evlog_fail_after = -1;

/* PyMem_RawMalloc, or a simulated failure for tests. */
static void *log_alloc(size_t n)
{
    if (tp_evlog_fail_after >= 0) {
        if (tp_evlog_fail_after == 0)
            return NULL;
        tp_evlog_fail_after--;
    }
    void *p = PyMem_RawMalloc(n);
    tp_untrack_own(p);
    return p;
}

static int add_block(tp_evlog *l)
{
    size_t old_cap = l->blocks.capacity;
    int r = tp_vec_grow1(&l->blocks);
    if (r)
        return r;
    l->bytes += (l->blocks.capacity - old_cap) * sizeof(*l->blocks.items);
    tp_event *b = log_alloc(TP_EVLOG_BLOCK * sizeof(tp_event));
    if (!b)
        return -ENOMEM;
    l->bytes += TP_EVLOG_BLOCK * sizeof(tp_event);
    if (l->blocks.size)
        l->blocks.items[l->blocks.size - 1].n = l->n;
    l->blocks.items[l->blocks.size++] = (tp_evblock){b, 0};
    l->cur = b;
    l->n = 0;
    return 0;
}

static int add_chunk(tp_evlog *l, size_t need)
{
    size_t old_cap = l->chunks.capacity;
    int r = tp_vec_grow1(&l->chunks);
    if (r)
        return r;
    l->bytes += (l->chunks.capacity - old_cap) * sizeof(*l->chunks.items);
    size_t cap = need > TP_EVLOG_CHUNK ? need : TP_EVLOG_CHUNK;
    uint8_t *d = log_alloc(cap);
    if (!d)
        return -ENOMEM;
    l->bytes += cap;
    l->chunks.items[l->chunks.size++] = (tp_evchunk){d, 0, cap};
    return 0;
}

int tp_evlog_init(tp_evlog *l)
{
    memset(l, 0, sizeof(*l));
    int r = add_block(l);
    if (!r)
        r = add_chunk(l, 0);
    if (r)
        tp_evlog_free(l);
    return r;
}

void tp_evlog_free(tp_evlog *l)
{
    for (size_t i = 0; i < l->blocks.size; i++)
        PyMem_RawFree(l->blocks.items[i].ev);
    for (size_t i = 0; i < l->chunks.size; i++)
        PyMem_RawFree(l->chunks.items[i].data);
    tp_vec_free(&l->blocks);
    tp_vec_free(&l->chunks);
    memset(l, 0, sizeof(*l));
}

int tp_evlog_reserve_slow(tp_evlog *l, size_t text_bytes, unsigned text_entries)
{
    if (!l->blocks.size || !l->chunks.size)
        return -ENOMEM; /* init failed earlier */
    if (text_bytes > SIZE_MAX / 2)
        return -ENOMEM;
    size_t need = text_bytes + 4u * text_entries;
    tp_evchunk *c = &l->chunks.items[l->chunks.size - 1];
    if (c->cap - c->len < need) {
        int r = add_chunk(l, need);
        if (r)
            return r;
    }
    if (l->n + TP_EVLOG_MAX_PUT > TP_EVLOG_BLOCK) {
        /* The unused tail of a block is never read: the reader stops at
         * each block's count, kept by closing it here. */
        int r = add_block(l);
        if (r)
            return r;
    }
    return 0;
}

void tp_evlog_iter_init(tp_evlog_iter *it, const tp_evlog *l)
{
    *it = (tp_evlog_iter){l, 0, 0, 0, 0};
}

bool tp_evlog_next(tp_evlog_iter *it, const tp_event **ret)
{
    const tp_evlog *l = it->l;
    while (it->block < l->blocks.size) {
        size_t n = it->block + 1 == l->blocks.size ? l->n : l->blocks.items[it->block].n;
        if (it->idx < n) {
            *ret = &l->blocks.items[it->block].ev[it->idx++];
            return true;
        }
        it->block++;
        it->idx = 0;
    }
    return false;
}

bool tp_evlog_next_text(tp_evlog_iter *it, const char **ret_s, size_t *ret_len)
{
    const tp_evlog *l = it->l;
    while (it->chunk < l->chunks.size) {
        const tp_evchunk *c = &l->chunks.items[it->chunk];
        if (c->len - it->off >= 4) {
            const uint8_t *p = c->data + it->off;
            size_t n = (size_t)p[0] | (size_t)p[1] << 8 | (size_t)p[2] << 16 | (size_t)p[3] << 24;
            if (n > c->len - it->off - 4)
                return false; /* cannot happen with reserve/text; never read past the chunk */
            *ret_s = (const char *)p + 4;
            *ret_len = n;
            it->off += 4 + n;
            return true;
        }
        it->chunk++;
        it->off = 0;
    }
    return false;
}

uint64_t tp_evlog_mult(double ratio)
{
    return ratio == 1.0 ? 0 : (uint64_t)(ratio * 4294967296.0 + 0.5);
}

void tp_evlog_set_scale(tp_evlog *l, double ratio)
{
    l->ns_mult = tp_evlog_mult(ratio);
}

void tp_evlog_iter_init_at(tp_evlog_iter *it, const tp_evlog *l, const tp_evlog_pos *at)
{
    *it = (tp_evlog_iter){l, at->block, 0, at->chunk, at->off};
}

void tp_evlog_release(tp_evlog *l, const tp_evlog_pos *from, const tp_evlog_pos *to)
{
    /* The block being filled and the chunk being filled are never freed:
     * a release point is always behind both. */
    for (size_t i = from->block; i < to->block && i + 1 < l->blocks.size; i++) {
        if (l->blocks.items[i].ev) {
            PyMem_RawFree(l->blocks.items[i].ev);
            l->blocks.items[i].ev = NULL;
            l->bytes -= TP_EVLOG_BLOCK * sizeof(tp_event);
        }
    }
    for (size_t i = from->chunk; i < to->chunk && i + 1 < l->chunks.size; i++) {
        if (l->chunks.items[i].data) {
            PyMem_RawFree(l->chunks.items[i].data);
            l->chunks.items[i].data = NULL;
            l->bytes -= l->chunks.items[i].cap;
        }
    }
}
