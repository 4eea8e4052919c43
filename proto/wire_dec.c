/* Frame decoding with msgpack-c, after tp_wire_check().
 *
 * msgpack-c 4.0 reserves whatever a container header declares and has no
 * limits of its own, so it only ever sees payloads the check has passed:
 * every declared size fits the bytes, nesting and counts are bounded, and the
 * number of values is known. The zone is sized from that count (msgpack-c
 * takes 24 bytes per value inside a container) and strings/bins reference the
 * payload. The conversion to tp_msg then copies what the message keeps into
 * one arena (priv), so a decoded message does not depend on the payload:
 * tphd reads frames into one reused buffer and hands batches to its writer
 * thread.
 *
 * Fields are described by a table per message type; conversion is two
 * passes over the looked-up fields: validate and size, then copy. */
#include <msgpack.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tp_err.h"
#include "wire.h"

enum {
    FK_STR,   /* str -> const char * */
    FK_TRACE, /* str, a valid trace id */
    FK_MAGIC, /* str equal to TP_WIRE_MAGIC, not stored */
    FK_U32,
    FK_I32,
    FK_I64,
    FK_U64,
    FK_BOOL,
    FK_BIN,   /* bin -> const void * at off, size_t at off2 */
    FK_ARGV,  /* array of str -> const char ** at off, size_t at off2 */
    FK_FUNCS, /* array of [id, module, qualname, file, line] */
};

typedef struct field {
    const char *key;
    uint8_t kind;
    bool required;
    uint16_t off, off2;
} field;

#define F(k, kind, req, member)                                                                    \
    {                                                                                              \
        k, kind, req, offsetof(tp_msg, member), 0                                                  \
    }
#define F2(k, kind, req, member, member2)                                                          \
    {                                                                                              \
        k, kind, req, offsetof(tp_msg, member), offsetof(tp_msg, member2)                          \
    }
#define MAX_FIELDS 16

static const field hello_f[] = {F("magic", FK_MAGIC, true, type),
                                F("v", FK_U32, true, version),
                                F("caps", FK_U32, false, caps),
                                F("pid", FK_I64, true, pid),
                                F("client", FK_STR, true, client),
                                F("py", FK_STR, false, python),
                                F("host", FK_STR, false, hostname),
                                F("platform", FK_STR, false, platform),
                                F("cwd", FK_STR, false, cwd),
                                F2("argv", FK_ARGV, false, argv, argc),
                                {NULL, 0, 0, 0, 0}};
static const field welcome_f[] = {F("v", FK_U32, true, version),
                                  F("caps", FK_U32, false, caps),
                                  F("client", FK_STR, true, client),
                                  F("pid", FK_I64, false, pid),
                                  {NULL, 0, 0, 0, 0}};
static const field funcs_f[] = {F2("f", FK_FUNCS, true, funcs, nfuncs), {NULL, 0, 0, 0, 0}};
static const field begin_f[] = {F("trace", FK_TRACE, true, trace),
                                F("label", FK_STR, false, label),
                                F("t0", FK_I64, true, wall_start_ns),
                                F("config", FK_STR, false, config_json),
                                {NULL, 0, 0, 0, 0}};
static const field events_f[] = {F("trace", FK_TRACE, true, trace),
                                 F("seq", FK_U32, true, seq),
                                 F2("ev", FK_BIN, true, records, nrecords),
                                 F2("tx", FK_BIN, false, text, text_len),
                                 {NULL, 0, 0, 0, 0}};
static const field end_f[] = {F("trace", FK_TRACE, true, trace),
                              F("end", FK_U64, true, end_ns),
                              F("calls", FK_U64, true, call_count),
                              F("limit", FK_STR, false, limit_reason),
                              F("dropped", FK_U64, false, dropped),
                              F("drop", FK_STR, false, drop_reason),
                              {NULL, 0, 0, 0, 0}};
static const field lines_f[] = {F("trace", FK_TRACE, true, trace),
                                F2("json", FK_BIN, true, lines_json, lines_len),
                                {NULL, 0, 0, 0, 0}};
static const field source_f[] = {F("trace", FK_TRACE, true, trace),
                                 F2("json", FK_BIN, true, source_json, source_len),
                                 {NULL, 0, 0, 0, 0}};
static const field ack_f[] = {
    F("trace", FK_TRACE, true, trace), F("url", FK_STR, false, url), {NULL, 0, 0, 0, 0}};
static const field stored_f[] = {
    F("trace", FK_TRACE, true, trace), F("seq", FK_U32, true, seq), {NULL, 0, 0, 0, 0}};
static const field error_f[] = {F("code", FK_I32, true, code),
                                F("msg", FK_STR, true, message),
                                F("trace", FK_TRACE, false, trace),
                                {NULL, 0, 0, 0, 0}};
static const field query_f[] = {
    F("id", FK_U32, true, id),           F("op", FK_STR, true, op),
    F("args", FK_STR, false, args_json), F2("body", FK_BIN, false, body, body_len),
    F("more", FK_BOOL, false, more),     {NULL, 0, 0, 0, 0}};
/* ct is required when ok and code when not; checked after the table. */
static const field reply_f[] = {F("id", FK_U32, true, id),
                                F("ok", FK_BOOL, true, ok),
                                F("ct", FK_STR, false, content_type),
                                F2("body", FK_BIN, false, body, body_len),
                                F("more", FK_BOOL, false, more),
                                F("code", FK_I32, false, code),
                                F("msg", FK_STR, false, message),
                                {NULL, 0, 0, 0, 0}};

static const field *fields_for(int type)
{
    switch (type) {
    case TP_MSG_HELLO:
        return hello_f;
    case TP_MSG_WELCOME:
        return welcome_f;
    case TP_MSG_FUNCS:
        return funcs_f;
    case TP_MSG_BEGIN:
        return begin_f;
    case TP_MSG_EVENTS:
        return events_f;
    case TP_MSG_END:
        return end_f;
    case TP_MSG_LINES:
        return lines_f;
    case TP_MSG_SOURCE:
        return source_f;
    case TP_MSG_ACK:
        return ack_f;
    case TP_MSG_STORED:
        return stored_f;
    case TP_MSG_ERROR:
        return error_f;
    case TP_MSG_QUERY:
        return query_f;
    case TP_MSG_REPLY:
        return reply_f;
    default:
        return NULL;
    }
}

/* Bump allocator over the message's single arena. */
typedef struct arena {
    char *p;
    size_t used;
} arena;

static size_t align8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

static void *take(arena *a, size_t n)
{
    a->used = align8(a->used);
    void *p = a->p + a->used;
    a->used += n;
    return p;
}

static const char *copy_str(arena *a, const msgpack_object_str *s)
{
    char *d = a->p + a->used;
    if (s->size)
        memcpy(d, s->ptr, s->size);
    d[s->size] = '\0';
    a->used += (size_t)s->size + 1;
    return d;
}

/* A str that becomes a C string: no NUL inside. Returns its arena size. */
static int check_cstr(const msgpack_object *o, const char *name, size_t *need, char *err,
                      size_t errsz)
{
    if (o->type != MSGPACK_OBJECT_STR)
        return tp_err_set(err, errsz, TP_ERR_TYPE, "field '%s': expected str", name);
    if (o->via.str.size && memchr(o->via.str.ptr, 0, o->via.str.size))
        return tp_err_set(err, errsz, TP_ERR_MALFORMED, "field '%s': str contains a NUL byte",
                          name);
    *need += (size_t)o->via.str.size + 1;
    return 0;
}

static bool get_int(const msgpack_object *o, int64_t lo, uint64_t hi, int64_t *ret)
{
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= hi) {
        *ret = (int64_t)o->via.u64;
        return true;
    }
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER && lo < 0 && o->via.i64 >= lo) {
        *ret = o->via.i64;
        return true;
    }
    return false;
}

static int check_funcs(const msgpack_object *o, size_t *need, char *err, size_t errsz)
{
    static const char *const names[] = {"id", "module", "qualname", "file", "line"};
    char name[48];
    if (o->type != MSGPACK_OBJECT_ARRAY)
        return tp_err_set(err, errsz, TP_ERR_TYPE, "field 'f': expected array");
    *need = align8(*need) + (size_t)o->via.array.size * sizeof(tp_wire_func);
    for (uint32_t i = 0; i < o->via.array.size; i++) {
        const msgpack_object *d = &o->via.array.ptr[i];
        int64_t v;
        int r;
        if (d->type != MSGPACK_OBJECT_ARRAY)
            return tp_err_set(err, errsz, TP_ERR_TYPE, "field 'f[%u]': expected array", i);
        if (d->via.array.size < 5)
            return tp_err_set(err, errsz, TP_ERR_MISSING,
                              "field 'f[%u]': expected [id, module, qualname, file, line], got %u "
                              "elements",
                              i, d->via.array.size);
        const msgpack_object *e = d->via.array.ptr;
        if (!get_int(&e[0], 0, UINT32_MAX, &v))
            return tp_err_set(err, errsz, TP_ERR_TYPE, "field 'f[%u].id': expected uint", i);
        if (v > (int64_t)TP_WIRE_MAX_FUNC_ID)
            return tp_err_set(err, errsz, TP_ERR_LIMIT, "field 'f[%u].id': %lld exceeds %u", i,
                              (long long)v, TP_WIRE_MAX_FUNC_ID);
        for (int k = 1; k <= 3; k++) {
            if (k == 3 && e[3].type == MSGPACK_OBJECT_NIL) {
                *need += 1;
                continue;
            }
            snprintf(name, sizeof(name), "f[%u].%s", i, names[k]);
            if ((r = check_cstr(&e[k], name, need, err, errsz)))
                return r;
        }
        if (!get_int(&e[4], INT32_MIN, INT32_MAX, &v))
            return tp_err_set(err, errsz, TP_ERR_TYPE, "field 'f[%u].line': expected int32", i);
    }
    return 0;
}

static void fill_funcs(arena *a, const msgpack_object *o, tp_msg *m)
{
    tp_wire_func *fs = take(a, (size_t)o->via.array.size * sizeof(tp_wire_func));
    for (uint32_t i = 0; i < o->via.array.size; i++) {
        const msgpack_object *e = o->via.array.ptr[i].via.array.ptr;
        fs[i].id = (uint32_t)e[0].via.u64;
        fs[i].module = copy_str(a, &e[1].via.str);
        fs[i].qualname = copy_str(a, &e[2].via.str);
        if (e[3].type == MSGPACK_OBJECT_NIL) {
            char *d = a->p + a->used++;
            *d = '\0';
            fs[i].file = d;
        } else {
            fs[i].file = copy_str(a, &e[3].via.str);
        }
        fs[i].lineno = e[4].type == MSGPACK_OBJECT_POSITIVE_INTEGER ? (int32_t)e[4].via.u64
                                                                    : (int32_t)e[4].via.i64;
    }
    m->funcs = fs;
    m->nfuncs = o->via.array.size;
}

/* Pass 1 for one field: type-check the value and add its arena size. */
static int check_field(const field *f, const msgpack_object *o, size_t *need, char *err,
                       size_t errsz)
{
    int64_t v;
    switch (f->kind) {
    case FK_STR:
        return check_cstr(o, f->key, need, err, errsz);
    case FK_TRACE:
        if (o->type == MSGPACK_OBJECT_STR &&
            !tp_wire_trace_id_valid(o->via.str.ptr, o->via.str.size))
            return tp_err_set(err, errsz, TP_ERR_MALFORMED,
                              "field '%s': expected 32 lowercase hex characters", f->key);
        return check_cstr(o, f->key, need, err, errsz);
    case FK_MAGIC:
        if (o->type != MSGPACK_OBJECT_STR)
            return tp_err_set(err, errsz, TP_ERR_TYPE, "field 'magic': expected str");
        if (o->via.str.size != 4 || memcmp(o->via.str.ptr, TP_WIRE_MAGIC, 4) != 0)
            return tp_err_set(err, errsz, TP_ERR_VERSION, "field 'magic': expected \"%s\"",
                              TP_WIRE_MAGIC);
        return 0;
    case FK_U32:
        if (!get_int(o, 0, UINT32_MAX, &v))
            return tp_err_set(err, errsz, TP_ERR_TYPE, "field '%s': expected uint32", f->key);
        return 0;
    case FK_I32:
        if (!get_int(o, INT32_MIN, INT32_MAX, &v))
            return tp_err_set(err, errsz, TP_ERR_TYPE, "field '%s': expected int32", f->key);
        return 0;
    case FK_I64:
        if (!get_int(o, INT64_MIN, INT64_MAX, &v))
            return tp_err_set(err, errsz, TP_ERR_TYPE, "field '%s': expected int64", f->key);
        return 0;
    case FK_U64:
        if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
            return tp_err_set(err, errsz, TP_ERR_TYPE, "field '%s': expected uint64", f->key);
        return 0;
    case FK_BOOL:
        if (o->type != MSGPACK_OBJECT_BOOLEAN)
            return tp_err_set(err, errsz, TP_ERR_TYPE, "field '%s': expected bool", f->key);
        return 0;
    case FK_BIN:
        if (o->type != MSGPACK_OBJECT_BIN)
            return tp_err_set(err, errsz, TP_ERR_TYPE, "field '%s': expected bin", f->key);
        *need = align8(*need) + o->via.bin.size;
        return 0;
    case FK_ARGV:
        if (o->type != MSGPACK_OBJECT_ARRAY)
            return tp_err_set(err, errsz, TP_ERR_TYPE, "field 'argv': expected array");
        *need = align8(*need) + ((size_t)o->via.array.size + 1) * sizeof(char *);
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            char name[32];
            snprintf(name, sizeof(name), "argv[%u]", i);
            int r = check_cstr(&o->via.array.ptr[i], name, need, err, errsz);
            if (r)
                return r;
        }
        return 0;
    default: /* FK_FUNCS */
        return check_funcs(o, need, err, errsz);
    }
}

/* Pass 2 for one field: store it in m (pass 1 validated it). */
static void fill_field(const field *f, const msgpack_object *o, arena *a, tp_msg *m)
{
    char *base = (char *)m;
    int64_t v = 0;
    switch (f->kind) {
    case FK_STR:
    case FK_TRACE:
        *(const char **)(base + f->off) = copy_str(a, &o->via.str);
        return;
    case FK_MAGIC:
        return;
    case FK_U32:
        *(uint32_t *)(base + f->off) = (uint32_t)o->via.u64;
        return;
    case FK_I32:
        get_int(o, INT32_MIN, INT32_MAX, &v);
        *(int32_t *)(base + f->off) = (int32_t)v;
        return;
    case FK_I64:
        get_int(o, INT64_MIN, INT64_MAX, &v);
        *(int64_t *)(base + f->off) = v;
        return;
    case FK_U64:
        *(uint64_t *)(base + f->off) = o->via.u64;
        return;
    case FK_BOOL:
        *(bool *)(base + f->off) = o->via.boolean;
        return;
    case FK_BIN: {
        void *d = take(a, o->via.bin.size);
        if (o->via.bin.size)
            memcpy(d, o->via.bin.ptr, o->via.bin.size);
        *(const void **)(base + f->off) = d;
        /* ev is counted in records; every other bin in bytes. */
        *(size_t *)(base + f->off2) = f->off == offsetof(tp_msg, records)
                                          ? o->via.bin.size / sizeof(tp_event)
                                          : o->via.bin.size;
        return;
    }
    case FK_ARGV: {
        uint32_t n = o->via.array.size;
        const char **v2 = take(a, ((size_t)n + 1) * sizeof(char *));
        for (uint32_t i = 0; i < n; i++)
            v2[i] = copy_str(a, &o->via.array.ptr[i].via.str);
        v2[n] = NULL;
        m->argv = v2;
        m->argc = n;
        return;
    }
    default:
        fill_funcs(a, o, m);
        return;
    }
}

/* Checks that need more than one field. */
static int check_message(int type, const msgpack_object **slot, char *err, size_t errsz)
{
    if (type == TP_MSG_REPLY) {
        /* reply_f: [1] ok, [2] ct, [5] code */
        bool ok = slot[1]->via.boolean;
        if (ok && !slot[2])
            return tp_err_set(err, errsz, TP_ERR_MISSING, "field 'ct': missing (required when ok)");
        if (!ok && !slot[5])
            return tp_err_set(err, errsz, TP_ERR_MISSING,
                              "field 'code': missing (required when not ok)");
    } else if (type == TP_MSG_EVENTS) {
        /* events_f: [2] ev, [3] tx */
        const msgpack_object *ev = slot[2], *tx = slot[3];
        size_t n = ev->via.bin.size;
        if (n % sizeof(tp_event))
            return tp_err_set(err, errsz, TP_ERR_MALFORMED,
                              "field 'ev': %zu bytes is not a whole number of 16-byte records", n);
        return tp_wire_check_events(ev->via.bin.ptr, n / sizeof(tp_event),
                                    tx ? tx->via.bin.ptr : NULL, tx ? tx->via.bin.size : 0, err,
                                    errsz);
    } else if (type == TP_MSG_LINES || type == TP_MSG_SOURCE) {
        /* lines_f, source_f: [1] json. Its shape (a JSON array, an object)
         * is the receiver's to check. */
        size_t n = slot[1]->via.bin.size;
        unsigned max = type == TP_MSG_LINES ? TP_WIRE_MAX_LINES : TP_WIRE_MAX_SOURCE;
        if (n == 0)
            return tp_err_set(err, errsz, TP_ERR_MALFORMED, "field 'json': empty");
        if (n > max)
            return tp_err_set(err, errsz, TP_ERR_LIMIT, "field 'json': %zu bytes exceeds %u", n,
                              max);
    }
    return 0;
}

/* Look up, validate and copy the body's fields into *ret. */
static int convert(int type, const msgpack_object_map *body, tp_msg *ret, char *err, size_t errsz)
{
    const field *fs = fields_for(type);
    const msgpack_object *slot[MAX_FIELDS] = {NULL};
    unsigned seen = 0;
    size_t need = 0, nf = 0;
    int r;

    while (fs[nf].key)
        nf++;
    if (nf > MAX_FIELDS) /* a table grew past slot[]: a bug of ours, never a client's */
        return tp_err_set(err, errsz, -EINVAL, "decoder: %zu fields, room for %d", nf, MAX_FIELDS);
    for (uint32_t i = 0; i < body->size; i++) {
        const msgpack_object_str *k = &body->ptr[i].key.via.str;
        for (size_t f = 0; f < nf; f++) {
            if (strlen(fs[f].key) != k->size || memcmp(fs[f].key, k->ptr, k->size) != 0)
                continue;
            if (seen & (1u << f))
                return tp_err_set(err, errsz, TP_ERR_MALFORMED, "field '%s': appears twice",
                                  fs[f].key);
            seen |= 1u << f;
            if (body->ptr[i].val.type != MSGPACK_OBJECT_NIL)
                slot[f] = &body->ptr[i].val;
            break;
        }
    }
    if (type == TP_MSG_REPLY && slot[1] && slot[1]->type == MSGPACK_OBJECT_BOOLEAN) {
        /* reply_f: ct, body, more (2..4) belong to a success, code and msg
         * (5, 6) to a failure; the others are ignored like unknown keys. */
        bool ok = slot[1]->via.boolean;
        for (size_t f = ok ? 5 : 2; f <= (ok ? 6u : 4u); f++)
            slot[f] = NULL;
    }
    for (size_t f = 0; f < nf; f++) {
        if (!slot[f]) {
            if (fs[f].required)
                return tp_err_set(err, errsz, TP_ERR_MISSING, "field '%s': missing", fs[f].key);
            continue;
        }
        if ((r = check_field(&fs[f], slot[f], &need, err, errsz)))
            return r;
    }
    if ((r = check_message(type, slot, err, errsz)))
        return r;

    tp_msg m;
    memset(&m, 0, sizeof(m));
    m.type = type;
    /* need was summed with the same alignment steps the fill takes; the
     * spare bytes keep the arena non-empty (and non-NULL) for messages that
     * carry no strings. */
    arena a = {malloc(need + 8), 0};
    if (!a.p)
        return tp_err_set(err, errsz, -ENOMEM, "out of memory decoding a %zu-byte message", need);
    for (size_t f = 0; f < nf; f++)
        if (slot[f])
            fill_field(&fs[f], slot[f], &a, &m);
    m.priv = a.p;
    *ret = m;
    return 0;
}

int tp_wire_decode(const uint8_t *payload, size_t len, tp_msg *ret, char *err, size_t errsz)
{
    size_t values = 0, off = 0;
    msgpack_zone zone;
    msgpack_object root;
    int r;

    if (!ret)
        return -EINVAL;
    if ((r = tp_wire_check_values(payload, len, &values, err, errsz)))
        return r;
    /* Every value msgpack-c stores lives in its container's array: 24 bytes
     * each (map pairs are two). The spare bytes cover alignment. */
    if (!msgpack_zone_init(&zone, values * sizeof(msgpack_object) + 64))
        return tp_err_set(err, errsz, -ENOMEM, "out of memory decoding a %zu-byte payload", len);
    msgpack_unpack_return ur = msgpack_unpack((const char *)payload, len, &off, &zone, &root);
    if (ur != MSGPACK_UNPACK_SUCCESS) {
        r = ur == MSGPACK_UNPACK_NOMEM_ERROR
                ? tp_err_set(err, errsz, -ENOMEM, "out of memory decoding a %zu-byte payload", len)
                : tp_err_set(err, errsz, TP_ERR_MALFORMED, "msgpack-c rejected the payload (%d)",
                             (int)ur);
        goto out;
    }
    int type = (int)root.via.array.ptr[0].via.u64;
    if (!fields_for(type)) {
        /* Unknown types are ignored by receivers (PROTOCOL.md 5.5). */
        memset(ret, 0, sizeof(*ret));
        ret->type = type;
        r = 0;
        goto out;
    }
    r = convert(type, &root.via.array.ptr[1].via.map, ret, err, errsz);
out:
    msgpack_zone_destroy(&zone);
    return r;
}

void tp_wire_msg_free(tp_msg *m)
{
    if (!m)
        return;
    free(m->priv);
    memset(m, 0, sizeof(*m));
}
