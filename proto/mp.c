/* A bounds-checked msgpack cursor (mp.h): what the structural check of every
 * received payload (wire_check.c) and the extension's reply decoder are
 * built on.
 *
 * Nothing here allocates or recurses: nesting is walked with a fixed stack,
 * so hostile input costs at most one pass over its bytes. */
#include "mp.h"

#include <string.h>

#include "tp_err.h"

#define SKIP_MAX_DEPTH 64u

static uint32_t be16(const uint8_t *p)
{
    return (uint32_t)p[0] << 8 | p[1];
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t be64(const uint8_t *p)
{
    return (uint64_t)be32(p) << 32 | be32(p + 4);
}

static void set_int(tp_mp_item *it, int64_t v)
{
    if (v >= 0) {
        it->kind = TP_MP_UINT;
        it->u = (uint64_t)v;
    } else {
        it->kind = TP_MP_INT;
    }
    it->i = v;
}

/* Sizes of the length field (or fixed payload) for type bytes 0xc4..0xdf. */
static int read_sized(const uint8_t *p, size_t left, unsigned n, uint64_t *ret)
{
    if (left < n)
        return TP_ERR_TRUNCATED;
    *ret = n == 1 ? p[0] : n == 2 ? be16(p) : n == 4 ? be32(p) : be64(p);
    return 0;
}

int tp_mp_read(tp_mp_cursor *c, tp_mp_item *it, tp_mp_why *why)
{
    const uint8_t *p = c->p;
    size_t left = (size_t)(c->end - p);
    uint64_t n = 0, v = 0;
    unsigned lenw = 0; /* width of a length field, for str/bin/ext/array/map */
    int ext_fixed = -1;

    memset(it, 0, sizeof(*it));
    memset(why, 0, sizeof(*why));
    if (left == 0) {
        why->what = "value";
        return TP_ERR_TRUNCATED;
    }
    uint8_t b = *p++;
    left--;
    why->byte = b;
    if (b <= 0x7f) {
        set_int(it, b);
        goto done;
    }
    if (b >= 0xe0) {
        set_int(it, (int8_t)b);
        goto done;
    }
    if (b <= 0x8f) {
        it->kind = TP_MP_MAP;
        n = b & 0x0f;
        goto container;
    }
    if (b <= 0x9f) {
        it->kind = TP_MP_ARRAY;
        n = b & 0x0f;
        goto container;
    }
    if (b <= 0xbf) {
        it->kind = TP_MP_STR;
        n = b & 0x1f;
        goto data;
    }
    switch (b) {
    case 0xc0:
        it->kind = TP_MP_NIL;
        goto done;
    case 0xc2:
    case 0xc3:
        it->kind = TP_MP_BOOL;
        it->b = b == 0xc3;
        goto done;
    case 0xc4:
    case 0xc5:
    case 0xc6:
        it->kind = TP_MP_BIN;
        lenw = 1u << (b - 0xc4);
        break;
    case 0xc7:
    case 0xc8:
    case 0xc9:
        it->kind = TP_MP_EXT;
        lenw = 1u << (b - 0xc7);
        break;
    case 0xca:
    case 0xcb:
        it->kind = TP_MP_FLOAT;
        lenw = b == 0xca ? 4 : 8;
        break;
    case 0xcc:
    case 0xcd:
    case 0xce:
    case 0xcf:
        it->kind = TP_MP_UINT;
        lenw = 1u << (b - 0xcc);
        break;
    case 0xd0:
    case 0xd1:
    case 0xd2:
    case 0xd3:
        it->kind = TP_MP_INT;
        lenw = 1u << (b - 0xd0);
        break;
    case 0xd4:
    case 0xd5:
    case 0xd6:
    case 0xd7:
    case 0xd8:
        it->kind = TP_MP_EXT;
        ext_fixed = 1 << (b - 0xd4);
        break;
    case 0xd9:
    case 0xda:
    case 0xdb:
        it->kind = TP_MP_STR;
        lenw = 1u << (b - 0xd9);
        break;
    case 0xdc:
    case 0xdd:
        it->kind = TP_MP_ARRAY;
        lenw = b == 0xdc ? 2 : 4;
        break;
    case 0xde:
    case 0xdf:
        it->kind = TP_MP_MAP;
        lenw = b == 0xde ? 2 : 4;
        break;
    default: /* 0xc1 */
        why->what = "byte 0xc1";
        return TP_ERR_MALFORMED;
    }
    if (ext_fixed >= 0) {
        if (left < 1)
            goto cut;
        it->i = (int8_t)*p++;
        left--;
        n = (uint64_t)ext_fixed;
        goto data;
    }
    if (read_sized(p, left, lenw, &v))
        goto cut;
    p += lenw;
    left -= lenw;
    switch (it->kind) {
    case TP_MP_FLOAT:
        if (lenw == 4) {
            float f;
            uint32_t w = (uint32_t)v;
            memcpy(&f, &w, 4);
            it->f = f;
        } else {
            memcpy(&it->f, &v, 8);
        }
        goto done;
    case TP_MP_UINT:
        it->u = v;
        it->i = v <= INT64_MAX ? (int64_t)v : 0;
        goto done;
    case TP_MP_INT:
        set_int(it, lenw == 1   ? (int8_t)v
                    : lenw == 2 ? (int16_t)v
                    : lenw == 4 ? (int32_t)v
                                : (int64_t)v);
        goto done;
    case TP_MP_EXT:
        if (left < 1)
            goto cut;
        it->i = (int8_t)*p++;
        left--;
        n = v;
        goto data;
    case TP_MP_ARRAY:
    case TP_MP_MAP:
        n = v;
        goto container;
    default:
        n = v;
        goto data;
    }

data:
    if (n > left) {
        why->what = it->kind == TP_MP_STR ? "str" : it->kind == TP_MP_BIN ? "bin" : "ext";
        why->unit = "bytes";
        goto too_big;
    }
    it->ptr = p;
    it->len = (uint32_t)n;
    p += n;
    goto done;

container:
    /* Every element takes at least one byte, so a count larger than the
     * bytes left cannot be honest; refusing it here keeps any consumer from
     * reserving memory for it. */
    if ((it->kind == TP_MP_MAP ? n * 2 : n) > left) {
        why->what = it->kind == TP_MP_MAP ? "map" : "array";
        why->unit = it->kind == TP_MP_MAP ? "pairs" : "elements";
        goto too_big;
    }
    it->len = (uint32_t)n;
    goto done;

too_big:
    why->declared = n;
    why->left = left;
    return TP_ERR_TRUNCATED;
cut:
    why->what = "header";
    why->left = left;
    return TP_ERR_TRUNCATED;
done:
    c->p = p;
    return 0;
}

int tp_mp_next(tp_mp_cursor *c, tp_mp_item *ret)
{
    tp_mp_cursor cur = *c;
    tp_mp_item it;
    tp_mp_why why;
    int r = tp_mp_read(&cur, &it, &why);
    if (r)
        return r;
    *c = cur;
    *ret = it;
    return 0;
}

int tp_mp_skip(tp_mp_cursor *c, unsigned max_depth)
{
    uint64_t pend[SKIP_MAX_DEPTH];
    unsigned limit = max_depth > SKIP_MAX_DEPTH ? SKIP_MAX_DEPTH : max_depth;
    unsigned sp = 0;
    uint64_t left = 1;
    tp_mp_cursor cur = *c;

    for (;;) {
        while (left == 0) {
            if (sp == 0) {
                *c = cur;
                return 0;
            }
            left = pend[--sp];
        }
        tp_mp_item it;
        tp_mp_why why;
        int r = tp_mp_read(&cur, &it, &why);
        if (r)
            return r;
        left--;
        if (it.kind == TP_MP_ARRAY || it.kind == TP_MP_MAP) {
            if (sp + 1 > limit)
                return TP_ERR_LIMIT;
            pend[sp++] = left;
            left = it.kind == TP_MP_MAP ? (uint64_t)it.len * 2 : it.len;
        }
    }
}
