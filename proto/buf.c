#include "buf.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vec.h"

/* A stream whose next n bytes do not fit: hand over what it holds. */
static int drain_for(tp_buf *b, size_t n)
{
    if (b->len && b->cap - b->len <= n)
        return tp_buf_flush(b);
    return 0;
}

int tp_buf_reserve(tp_buf *b, size_t n)
{
    if (b->err)
        return b->err;
    if (b->drain && drain_for(b, n) < 0)
        return b->err;
    /* One spare byte keeps the contents NUL-terminated at all times. */
    if (n > SIZE_MAX / 2 - b->len - 1) {
        b->err = -ENOMEM;
        return b->err;
    }
    size_t need = b->len + n + 1;
    if (need <= b->cap)
        return 0;
    bool was_empty = !b->data;
    /* Start at 256 bytes: most renderings are longer than a line. */
    if (!b->cap && need < 256)
        need = 256;
    if (tp_vec_reserve_array((void **)&b->data, 1, &b->cap, need) < 0) {
        b->err = -ENOMEM;
        return b->err;
    }
    if (was_empty)
        b->data[0] = '\0';
    return 0;
}

int tp__buf_append_grow(tp_buf *b, const void *p, size_t n)
{
    if (b->drain && !b->err) {
        if (drain_for(b, n) < 0)
            return b->err;
        if (n >= b->piece) {
            /* Whole pieces on their own: no need to copy them first. */
            const char *s = p;
            for (size_t off = 0; off < n;) {
                size_t k = n - off < b->piece ? n - off : b->piece;
                int r = b->drain(b->drain_ctx, s + off, k);
                if (r < 0) {
                    b->err = r;
                    return r;
                }
                b->drained += k;
                off += k;
            }
            return 0;
        }
    }
    int r = tp_buf_reserve(b, n);
    if (r)
        return r;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int tp_buf_vprintf(tp_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int r = tp_buf_reserve(b, 64);
    if (r)
        goto out;
    int n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
    if (n < 0) {
        r = -EINVAL;
        goto out;
    }
    if ((size_t)n >= b->cap - b->len) {
        r = tp_buf_reserve(b, (size_t)n);
        if (r)
            goto out;
        vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap2);
    }
    b->len += (size_t)n;
out:
    va_end(ap2);
    return r;
}

int tp_buf_printf(tp_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = tp_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return r;
}

int tp_buf_error(const tp_buf *b)
{
    return b->err;
}

const char *tp_buf_cstr(tp_buf *b)
{
    return b->data ? b->data : "";
}

void tp_buf_reset(tp_buf *b)
{
    b->len = 0;
    b->err = 0;
    b->drained = 0;
    if (b->data)
        b->data[0] = '\0';
}

void tp_buf_free(tp_buf *b)
{
    if (!b)
        return;
    free(b->data);
    *b = (tp_buf)TP_BUF_INIT;
}

char *tp_buf_steal(tp_buf *b, size_t *ret_len)
{
    if (b->err || tp_buf_reserve(b, 0))
        return NULL;
    char *p = b->data;
    if (ret_len)
        *ret_len = b->len;
    *b = (tp_buf)TP_BUF_INIT;
    return p;
}

int tp_buf_set_drain(tp_buf *b, size_t piece, tp_buf_drain_fn drain, void *ctx)
{
    if (b->len || b->err || b->drain || piece == 0 || piece > SIZE_MAX / 2 || !drain)
        return -EINVAL;
    /* Room for exactly one piece and the NUL: an append that does not fit
     * drains the buffer in tp__buf_append_grow(), so the inline fast path
     * needs no test of its own. */
    char *p = realloc(b->data, piece + 1);
    if (!p)
        return -ENOMEM;
    p[0] = '\0';
    b->data = p;
    b->cap = piece + 1;
    b->drain = drain;
    b->drain_ctx = ctx;
    b->piece = piece;
    b->drained = 0;
    return 0;
}

int tp_buf_flush(tp_buf *b)
{
    if (b->err || !b->drain || !b->len)
        return b->err;
    int r = b->drain(b->drain_ctx, b->data, b->len);
    if (r < 0) {
        b->err = r;
        return r;
    }
    b->drained += b->len;
    b->len = 0;
    b->data[0] = '\0';
    return 0;
}
