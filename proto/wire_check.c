/* The wire's checks on the msgpack cursor (mp.h): the structural check
 * every received payload passes before anything is allocated for it
 * (tp_wire_check), the EVENTS batch check, trace id validation, and the
 * small reply decoder the extension uses instead of msgpack-c's runtime
 * (tp_wire_decode_reply). Nothing here allocates or recurses. */
#include <endian.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "mp.h"
#include "tp_err.h"
#include "wire.h"

/* ---- The structural check --------------------------------------------- */

typedef struct chk {
    const uint8_t *base;
    char *err;
    size_t errsz;
    const uint8_t *field; /* the body key being walked, or NULL */
    uint32_t field_len;
    const char *where; /* what is being read when field is NULL */
    size_t values;
} chk;

static const char *kind_name(int kind)
{
    static const char *const names[] = {"nil", "bool", "uint",  "int", "float",
                                        "str", "bin",  "array", "map", "ext"};
    return kind >= 0 && kind <= TP_MP_EXT ? names[kind] : "?";
}

__attribute__((format(printf, 4, 5))) static int fail(chk *k, const uint8_t *at, int code,
                                                      const char *fmt, ...)
{
    if (!k->err || k->errsz == 0)
        return code;
    size_t off = (size_t)(at - k->base);
    int n;
    if (k->field) {
        char name[41];
        uint32_t len = k->field_len < 40 ? k->field_len : 40;
        for (uint32_t i = 0; i < len; i++) {
            uint8_t ch = k->field[i];
            name[i] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
        }
        name[len] = '\0';
        n = snprintf(k->err, k->errsz, "field '%s' at offset %zu: ", name, off);
    } else {
        n = snprintf(k->err, k->errsz, "%s at offset %zu: ", k->where, off);
    }
    if (n >= 0 && (size_t)n < k->errsz) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(k->err + n, k->errsz - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return code;
}

static int fail_read(chk *k, const uint8_t *at, int code, const tp_mp_why *w)
{
    if (code == TP_ERR_MALFORMED)
        return fail(k, at, code, "%s is never used in msgpack", w->what);
    if (w->unit)
        return fail(k, at, code, "%s declares %llu %s but only %zu bytes are left", w->what,
                    (unsigned long long)w->declared, w->unit, w->left);
    if (w->byte)
        return fail(k, at, code, "value 0x%02x cut short (%zu bytes left)", w->byte, w->left);
    return fail(k, at, code, "input ends where a value should start");
}

/* Walk one value whose container (if it is one) sits at nesting level
 * `level`, counting values and enforcing the limits. */
static int walk_value(chk *k, tp_mp_cursor *c, unsigned level)
{
    uint64_t pend[TP_WIRE_MAX_DEPTH + 1];
    unsigned sp = 0;
    uint64_t left = 1;

    for (;;) {
        while (left == 0) {
            if (sp == 0)
                return 0;
            left = pend[--sp];
            level--;
        }
        const uint8_t *at = c->p;
        tp_mp_item it;
        tp_mp_why why;
        int r = tp_mp_read(c, &it, &why);
        if (r)
            return fail_read(k, at, r, &why);
        left--;
        if (++k->values > TP_WIRE_MAX_VALUES)
            return fail(k, at, TP_ERR_LIMIT, "more than %u values in one payload",
                        TP_WIRE_MAX_VALUES);
        if (it.kind == TP_MP_STR && it.len > TP_WIRE_MAX_STRING)
            return fail(k, at, TP_ERR_LIMIT, "str of %u bytes exceeds the limit of %u", it.len,
                        TP_WIRE_MAX_STRING);
        if (it.kind != TP_MP_ARRAY && it.kind != TP_MP_MAP)
            continue;
        if (level > TP_WIRE_MAX_DEPTH)
            return fail(k, at, TP_ERR_LIMIT, "nesting deeper than %u levels", TP_WIRE_MAX_DEPTH);
        if (it.len > TP_WIRE_MAX_ITEMS)
            return fail(k, at, TP_ERR_LIMIT, "%s of %u %s exceeds the limit of %u",
                        kind_name(it.kind), it.len, it.kind == TP_MP_MAP ? "pairs" : "elements",
                        TP_WIRE_MAX_ITEMS);
        pend[sp++] = left;
        left = it.kind == TP_MP_MAP ? (uint64_t)it.len * 2 : it.len;
        level++;
    }
}

/* Read one scalar-or-header item of the fixed payload shape. */
static int read_shape(chk *k, tp_mp_cursor *c, tp_mp_item *it, const char *where)
{
    const uint8_t *at = c->p;
    tp_mp_why why;
    k->where = where;
    int r = tp_mp_read(c, it, &why);
    if (r)
        return fail_read(k, at, r, &why);
    k->values++;
    return 0;
}

int tp_wire_check_values(const uint8_t *payload, size_t len, size_t *ret_values, char *err,
                         size_t errsz)
{
    chk k = {payload, err, errsz, NULL, 0, "payload", 0};
    tp_mp_cursor c = {payload, payload + len};
    tp_mp_item it;
    int r;

    if (err && errsz)
        err[0] = '\0';
    if (!payload && len)
        return -EINVAL;
    if (len > TP_WIRE_MAX_FRAME)
        return fail(&k, payload, TP_ERR_FRAME_TOO_LARGE,
                    "payload of %zu bytes exceeds the frame limit of %u", len, TP_WIRE_MAX_FRAME);
    if (len == 0)
        return fail(&k, payload, TP_ERR_TRUNCATED, "empty payload");

    if ((r = read_shape(&k, &c, &it, "payload")))
        return r;
    if (it.kind != TP_MP_ARRAY || it.len != 2)
        return fail(&k, payload, TP_ERR_TYPE, "expected an array [type, body], got %s%s",
                    it.kind == TP_MP_ARRAY ? "an array of " : "",
                    it.kind == TP_MP_ARRAY ? (it.len < 2 ? "fewer than 2" : "more than 2")
                                           : kind_name(it.kind));
    const uint8_t *at = c.p;
    if ((r = read_shape(&k, &c, &it, "type")))
        return r;
    if (it.kind != TP_MP_UINT)
        return fail(&k, at, TP_ERR_TYPE, "expected uint, got %s", kind_name(it.kind));
    if (it.u < 1 || it.u > 127)
        return fail(&k, at, TP_ERR_MALFORMED, "message type %llu is outside 1..127",
                    (unsigned long long)it.u);
    at = c.p;
    if ((r = read_shape(&k, &c, &it, "body")))
        return r;
    if (it.kind != TP_MP_MAP)
        return fail(&k, at, TP_ERR_TYPE, "expected map, got %s", kind_name(it.kind));
    if (it.len > TP_WIRE_MAX_ITEMS)
        return fail(&k, at, TP_ERR_LIMIT, "map of %u pairs exceeds the limit of %u", it.len,
                    TP_WIRE_MAX_ITEMS);

    for (uint32_t i = 0, npairs = it.len; i < npairs; i++) {
        tp_mp_item key;
        k.field = NULL;
        at = c.p;
        if ((r = read_shape(&k, &c, &key, "body key")))
            return r;
        if (key.kind != TP_MP_STR)
            return fail(&k, at, TP_ERR_TYPE, "expected str, got %s", kind_name(key.kind));
        if (key.len > TP_WIRE_MAX_STRING)
            return fail(&k, at, TP_ERR_LIMIT, "key of %u bytes exceeds the limit of %u", key.len,
                        TP_WIRE_MAX_STRING);
        k.field = key.ptr;
        k.field_len = key.len;
        if ((r = walk_value(&k, &c, 3)))
            return r;
    }
    k.field = NULL;
    k.where = "payload";
    if (c.p != c.end)
        return fail(&k, c.p, TP_ERR_MALFORMED, "%zu trailing bytes after the [type, body] value",
                    (size_t)(c.end - c.p));
    if (ret_values)
        *ret_values = k.values;
    return 0;
}

int tp_wire_check(const uint8_t *payload, size_t len, char *err, size_t errsz)
{
    return tp_wire_check_values(payload, len, NULL, err, errsz);
}

/* ---- EVENTS batches ------------------------------------------------------ */

int tp_wire_check_events(const void *records, size_t nrecords, const void *text, size_t text_len,
                         char *err, size_t errsz)
{
    const uint8_t *r = records;
    const uint8_t *tx = text;
    size_t off = 0;

    if (err && errsz)
        err[0] = '\0';
    if ((nrecords && !records) || (text_len && !text))
        return -EINVAL;
    for (size_t i = 0; i < nrecords; i++, r += sizeof(tp_event)) {
        uint8_t kind = r[0], flags = r[1];
        /* One compare per record on the common path: kind in 1..MAX, no unknown flag. */
        if ((unsigned)(kind - 1) >= TP_EV_MAX || (flags & ~TP_EVF_ALL)) {
            if (kind == 0 || kind > TP_EV_MAX)
                return tp_err_set(err, errsz, TP_ERR_MALFORMED, "ev[%zu]: unknown event kind %u", i,
                                  kind);
            return tp_err_set(err, errsz, TP_ERR_MALFORMED, "ev[%zu]: unknown flags 0x%02x", i,
                              flags & ~TP_EVF_ALL);
        }
        if (!(flags & TP_EVF_TEXT))
            continue;
        for (unsigned e = 0, ne = tp_event_text_entries(kind); e < ne; e++) {
            if (text_len - off < 4)
                return tp_err_set(err, errsz, TP_ERR_MALFORMED,
                                  "ev[%zu]: text entry %u starts at tx offset %zu, past the end "
                                  "of tx (%zu bytes)",
                                  i, e, off, text_len);
            uint32_t l;
            memcpy(&l, tx + off, 4);
            l = le32toh(l);
            off += 4;
            if (l > TP_WIRE_MAX_STRING)
                return tp_err_set(err, errsz, TP_ERR_LIMIT,
                                  "ev[%zu]: text entry of %u bytes exceeds the limit of %u", i, l,
                                  TP_WIRE_MAX_STRING);
            if (l > text_len - off)
                return tp_err_set(err, errsz, TP_ERR_MALFORMED,
                                  "ev[%zu]: text entry of %u bytes at tx offset %zu runs past the "
                                  "end of tx (%zu bytes)",
                                  i, l, off - 4, text_len);
            off += l;
        }
    }
    if (off != text_len)
        return tp_err_set(err, errsz, TP_ERR_MALFORMED,
                          "tx: %zu bytes after the last text entry are owned by no record",
                          text_len - off);
    return 0;
}

bool tp_wire_trace_id_valid(const char *s, size_t len)
{
    if (!s || len != 32)
        return false;
    for (size_t i = 0; i < 32; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

/* ---- Replies for the extension ------------------------------------------ */

typedef struct reply_store {
    char *p;
    size_t size, used;
} reply_store;

static int store_str(reply_store *s, const tp_mp_item *it, const char **ret)
{
    if (it->kind != TP_MP_STR)
        return TP_ERR_TYPE;
    if (memchr(it->ptr, 0, it->len))
        return TP_ERR_MALFORMED;
    if (s->size - s->used < (size_t)it->len + 1)
        return TP_ERR_LIMIT;
    char *d = s->p + s->used;
    memcpy(d, it->ptr, it->len);
    d[it->len] = '\0';
    s->used += (size_t)it->len + 1;
    *ret = d;
    return 0;
}

static bool key_is(const tp_mp_item *k, const char *name)
{
    size_t n = strlen(name);
    return k->len == n && memcmp(k->ptr, name, n) == 0;
}

/* Apply one body field of a WELCOME/ACK/STORED/ERROR/REPLY to m. *seen
 * tracks duplicates. A REPLY's body points into the payload. */
#define T(type) (1u << (type))
static int reply_value(tp_msg *m, unsigned f, const tp_mp_item *v, reply_store *s);

static int reply_field(tp_msg *m, const tp_mp_item *k, const tp_mp_item *v, unsigned *seen,
                       unsigned *present, reply_store *s, tp_mp_item *deferred)
{
    static const char *const keys[] = {"v",   "caps", "client", "pid", "trace", "url",  "code",
                                       "msg", "seq",  "id",     "ok",  "ct",    "body", "more"};
    static const unsigned owner[] = {
        T(TP_MSG_WELCOME),
        T(TP_MSG_WELCOME),
        T(TP_MSG_WELCOME),
        T(TP_MSG_WELCOME),
        T(TP_MSG_ACK) | T(TP_MSG_STORED) | T(TP_MSG_ERROR),
        T(TP_MSG_ACK),
        T(TP_MSG_ERROR) | T(TP_MSG_REPLY),
        T(TP_MSG_ERROR) | T(TP_MSG_REPLY),
        T(TP_MSG_STORED),
        T(TP_MSG_REPLY),
        T(TP_MSG_REPLY),
        T(TP_MSG_REPLY),
        T(TP_MSG_REPLY),
        T(TP_MSG_REPLY),
    };
    unsigned f;
    for (f = 0; f < sizeof(keys) / sizeof(keys[0]); f++)
        if (key_is(k, keys[f]))
            break;
    if (f == sizeof(keys) / sizeof(keys[0]) || !(owner[f] & T(m->type)))
        return 0;
    if (*seen & (1u << f))
        return TP_ERR_MALFORMED;
    *seen |= 1u << f;
    if (v->kind == TP_MP_NIL) /* nil is the same as absent */
        return 0;
    *present |= 1u << f;
    if (m->type == TP_MSG_REPLY && f != 9 && f != 10) {
        /* A success's ct/body/more or a failure's code/msg: which of them
         * counts depends on ok, which may come later (as tp_wire_decode). */
        deferred[f] = *v;
        return 0;
    }
    return reply_value(m, f, v, s);
}

static int reply_value(tp_msg *m, unsigned f, const tp_mp_item *v, reply_store *s)
{
    switch (f) {
    case 0:
    case 1:
    case 8:
    case 9:
        if (v->kind != TP_MP_UINT || v->u > UINT32_MAX)
            return TP_ERR_TYPE;
        *(f == 0 ? &m->version : f == 1 ? &m->caps : f == 8 ? &m->seq : &m->id) = (uint32_t)v->u;
        return 0;
    case 2:
        return store_str(s, v, &m->client);
    case 3:
        if (v->kind == TP_MP_UINT && v->u > INT64_MAX)
            return TP_ERR_TYPE;
        if (v->kind != TP_MP_UINT && v->kind != TP_MP_INT)
            return TP_ERR_TYPE;
        m->pid = v->i;
        return 0;
    case 4:
        if (v->kind == TP_MP_STR && !tp_wire_trace_id_valid((const char *)v->ptr, v->len))
            return TP_ERR_MALFORMED;
        return store_str(s, v, &m->trace);
    case 5:
        return store_str(s, v, &m->url);
    case 6:
        if ((v->kind != TP_MP_UINT && v->kind != TP_MP_INT) || v->i < INT32_MIN ||
            v->i > INT32_MAX || (v->kind == TP_MP_UINT && v->u > INT32_MAX))
            return TP_ERR_TYPE;
        m->code = (int32_t)v->i;
        return 0;
    case 10:
    case 13:
        if (v->kind != TP_MP_BOOL)
            return TP_ERR_TYPE;
        *(f == 10 ? &m->ok : &m->more) = v->b;
        return 0;
    case 11:
        return store_str(s, v, &m->content_type);
    case 12:
        if (v->kind != TP_MP_BIN)
            return TP_ERR_TYPE;
        m->body = v->ptr;
        m->body_len = v->len;
        return 0;
    default:
        return store_str(s, v, &m->message);
    }
}
#undef T

int tp_wire_decode_reply(const uint8_t *payload, size_t len, tp_msg *ret, char *store,
                         size_t storesz)
{
    tp_msg m;
    tp_mp_cursor c = {payload, payload + len};
    tp_mp_item it, key, val;
    reply_store s = {store, store ? storesz : 0, 0};
    unsigned seen = 0, present = 0, need = 0;
    tp_mp_item deferred[14];
    int r = tp_wire_check(payload, len, NULL, 0);
    if (r)
        return r;

    memset(&m, 0, sizeof(m));
    /* The check guarantees the shape [uint type, map body] with str keys;
     * the cursor's results are still checked rather than assumed. */
    if ((r = tp_mp_next(&c, &it)) || (r = tp_mp_next(&c, &it)))
        return r;
    m.type = (int)it.u;
    if ((r = tp_mp_next(&c, &it)))
        return r;
    if (m.type == TP_MSG_WELCOME)
        need = 1u << 0 | 1u << 2;
    else if (m.type == TP_MSG_ACK)
        need = 1u << 4;
    else if (m.type == TP_MSG_STORED)
        need = 1u << 4 | 1u << 8;
    else if (m.type == TP_MSG_REPLY)
        need = 1u << 9 | 1u << 10;
    else if (m.type == TP_MSG_ERROR)
        need = 1u << 6 | 1u << 7;
    else
        goto done;
    for (uint32_t i = 0, n = it.len; i < n; i++) {
        if ((r = tp_mp_next(&c, &key)))
            return r;
        tp_mp_cursor vc = c;
        if ((r = tp_mp_next(&vc, &val)))
            return r;
        if (val.kind == TP_MP_ARRAY || val.kind == TP_MP_MAP) {
            if ((r = tp_mp_skip(&c, TP_WIRE_MAX_DEPTH)))
                return r;
        } else {
            c = vc;
        }
        if ((r = reply_field(&m, &key, &val, &seen, &present, &s, deferred)))
            return r;
    }
    if (m.type == TP_MSG_REPLY && (present & 1u << 10)) {
        /* ok decides: ct, body, more (11-13) belong to a success, code and
         * msg (6, 7) to a failure; the others are ignored like unknown keys. */
        unsigned counts = m.ok ? 1u << 11 | 1u << 12 | 1u << 13 : 1u << 6 | 1u << 7;
        unsigned ignored = (1u << 6 | 1u << 7 | 1u << 11 | 1u << 12 | 1u << 13) & ~counts;
        present &= ~ignored;
        for (unsigned f = 0; f < 14; f++)
            if ((present & counts & 1u << f) && (r = reply_value(&m, f, &deferred[f], &s)))
                return r;
    }
    if ((present & need) != need)
        return TP_ERR_MISSING;
    if (m.type == TP_MSG_REPLY && !(present & (m.ok ? 1u << 11 : 1u << 6)))
        return TP_ERR_MISSING; /* ct when ok, code when not */
done:
    *ret = m;
    return 0;
}
