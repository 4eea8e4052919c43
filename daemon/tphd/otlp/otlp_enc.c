/* The OTLP span model and its two encodings (otlp.h). A writer with one
 * call per field takes both the field number and the JSON name, so the walk
 * over a trace is written once and cannot differ between the forms. The
 * JSON form goes through the tree's one JSON writer (json.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "json.h"
#include "otlp.h"
#include "tp_version.h"

/* ---- Field numbers (opentelemetry-proto, collector/trace/v1 and trace/v1) ---------- */

#define F_REQ_RESOURCE_SPANS 1
#define F_RS_RESOURCE        1
#define F_RS_SCOPE_SPANS     2
#define F_RES_ATTRIBUTES     1
#define F_SS_SCOPE           1
#define F_SS_SPANS           2
#define F_SCOPE_NAME         1
#define F_SCOPE_VERSION      2
#define F_SPAN_TRACE_ID      1
#define F_SPAN_SPAN_ID       2
#define F_SPAN_PARENT        4
#define F_SPAN_NAME          5
#define F_SPAN_KIND          6
#define F_SPAN_START         7
#define F_SPAN_END           8
#define F_SPAN_ATTRIBUTES    9
#define F_SPAN_EVENTS        11
#define F_SPAN_STATUS        15
#define F_EVENT_TIME         1
#define F_EVENT_NAME         2
#define F_EVENT_ATTRIBUTES   3
#define F_STATUS_MESSAGE     2
#define F_STATUS_CODE        3
#define F_KV_KEY             1
#define F_KV_VALUE           2
#define F_ANY_STRING         1
#define F_ANY_BOOL           2
#define F_ANY_INT            3

#define SPAN_KIND_INTERNAL 1
#define STATUS_ERROR       2

#define WT_VARINT  0
#define WT_FIXED64 1
#define WT_LEN     2

/* Protobuf nesting: ResourceSpans > ScopeSpans > Span > Event > KeyValue >
 * AnyValue (6 at most). */
#define MAX_DEPTH 8

/* ---- The writer --------------------------------------------------------------------- */

typedef struct writer {
    tp_buf *b;
    bool json;
    tp_json *j;              /* JSON: the body's writer (commas, keys) */
    int depth;               /* protobuf: open messages */
    size_t start[MAX_DEPTH]; /* protobuf: where each open message's body begins */
} writer;

static void put_varint(tp_buf *b, uint64_t v)
{
    char tmp[10];
    size_t n = 0;
    do {
        tmp[n++] = (char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    tp_buf_append(b, tmp, n);
}

static void put_tag(tp_buf *b, int field, int wt)
{
    put_varint(b, ((uint64_t)field << 3) | (uint64_t)wt);
}

/* JSON: the member's key (name NULL: an array element has none). */
static void json_key(writer *w, const char *name)
{
    if (name)
        tp_json_key(w->j, name);
}

/* A nested message (name NULL inside a JSON array). */
static void msg_begin(writer *w, int field, const char *name)
{
    if (w->json) {
        json_key(w, name);
        tp_json_obj(w->j);
        return;
    }
    put_tag(w->b, field, WT_LEN);
    w->depth++;
    w->start[w->depth] = w->b->len;
}

static void msg_end(writer *w)
{
    if (w->json) {
        tp_json_obj_end(w->j);
        return;
    }
    if (tp_buf_error(w->b) == 0) {
        /* The length goes before the body: move the body up by the size of
         * its varint. Messages nest at most MAX_DEPTH deep, so each byte
         * moves a bounded number of times. */
        size_t at = w->start[w->depth], len = w->b->len - at;
        char tmp[10];
        size_t n = 0;
        uint64_t v = len;
        do {
            tmp[n++] = (char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
            v >>= 7;
        } while (v);
        if (tp_buf_append(w->b, tmp, n) == 0) {
            memmove(w->b->data + at + n, w->b->data + at, len);
            memcpy(w->b->data + at, tmp, n);
        }
    }
    w->depth--;
}

/* JSON only: a repeated field's brackets (protobuf repeats the field). */
static void arr_begin(writer *w, const char *name)
{
    if (!w->json)
        return;
    json_key(w, name);
    tp_json_arr(w->j);
}

static void arr_end(writer *w)
{
    if (w->json)
        tp_json_arr_end(w->j);
}

/* Bytes that are not UTF-8 would make a receiver reject the whole request
 * (proto3 strings must be UTF-8): they become U+FFFD, by the JSON
 * escaper's rule, so both forms carry the same text. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    uint32_t cp;
    return tp_json_utf8_decode(s, n, &cp);
}

static void pb_string(tp_buf *b, int field, const char *s)
{
    size_t n = strlen(s), bad = 0;
    for (size_t i = 0; i < n;) {
        size_t l = utf8_len((const unsigned char *)s + i, n - i);
        bad += l == 0;
        i += l ? l : 1;
    }
    put_tag(b, field, WT_LEN);
    put_varint(b, n + bad * 2); /* each bad byte becomes 3 bytes */
    if (!bad) {
        tp_buf_append(b, s, n);
        return;
    }
    for (size_t i = 0; i < n;) {
        size_t l = utf8_len((const unsigned char *)s + i, n - i);
        if (l) {
            tp_buf_append(b, s + i, l);
            i += l;
        } else {
            tp_buf_append(b, "\xef\xbf\xbd", 3);
            i++;
        }
    }
}

static void w_str(writer *w, int field, const char *name, const char *s)
{
    if (w->json) {
        json_key(w, name);
        tp_json_str(w->j, s);
    } else {
        pb_string(w->b, field, s);
    }
}

static void w_id(writer *w, int field, const char *name, const uint8_t *id, size_t n)
{
    if (w->json) {
        static const char hex[] = "0123456789abcdef";
        char text[33];
        for (size_t i = 0; i < n && i < 16; i++) {
            text[2 * i] = hex[id[i] >> 4];
            text[2 * i + 1] = hex[id[i] & 15];
        }
        json_key(w, name);
        tp_json_strn(w->j, text, 2 * (n < 16 ? n : 16));
    } else {
        put_tag(w->b, field, WT_LEN);
        put_varint(w->b, n);
        tp_buf_append(w->b, id, n);
    }
}

static void w_fixed64(writer *w, int field, const char *name, uint64_t v)
{
    if (w->json) {
        char text[24];
        snprintf(text, sizeof(text), "%llu", (unsigned long long)v);
        json_key(w, name);
        tp_json_str(w->j, text);
    } else {
        unsigned char le[8];
        for (int i = 0; i < 8; i++)
            le[i] = (unsigned char)(v >> (8 * i));
        put_tag(w->b, field, WT_FIXED64);
        tp_buf_append(w->b, le, 8);
    }
}

/* int64 in protobuf (two's complement varint), a string in OTLP/JSON. */
static void w_int64(writer *w, int field, const char *name, int64_t v)
{
    if (w->json) {
        char text[24];
        snprintf(text, sizeof(text), "%lld", (long long)v);
        json_key(w, name);
        tp_json_str(w->j, text);
    } else {
        put_tag(w->b, field, WT_VARINT);
        put_varint(w->b, (uint64_t)v);
    }
}

/* An enum or int32 (a JSON number). */
static void w_enum(writer *w, int field, const char *name, int v)
{
    if (w->json) {
        json_key(w, name);
        tp_json_i64(w->j, v);
    } else {
        put_tag(w->b, field, WT_VARINT);
        put_varint(w->b, (uint64_t)(int64_t)v);
    }
}

static void w_bool(writer *w, int field, const char *name, bool v)
{
    if (w->json) {
        json_key(w, name);
        tp_json_bool(w->j, v);
    } else {
        put_tag(w->b, field, WT_VARINT);
        put_varint(w->b, v);
    }
}

/* ---- Attributes (KeyValue with an AnyValue) --------------------------------------- */

static void kv_begin(writer *w, int field, const char *key)
{
    msg_begin(w, field, NULL);
    w_str(w, F_KV_KEY, "key", key);
    msg_begin(w, F_KV_VALUE, "value");
}

static void kv_end(writer *w)
{
    msg_end(w);
    msg_end(w);
}

static void kv_str(writer *w, int field, const char *key, const char *v)
{
    if (!v)
        return;
    kv_begin(w, field, key);
    w_str(w, F_ANY_STRING, "stringValue", v);
    kv_end(w);
}

static void kv_int(writer *w, int field, const char *key, int64_t v)
{
    kv_begin(w, field, key);
    w_int64(w, F_ANY_INT, "intValue", v);
    kv_end(w);
}

static void kv_bool(writer *w, int field, const char *key, bool v)
{
    kv_begin(w, field, key);
    w_bool(w, F_ANY_BOOL, "boolValue", v);
    kv_end(w);
}

/* ---- Ids ---------------------------------------------------------------------------- */

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* n bytes from 2n lowercase hex digits; false when not hex or all zero. */
static bool parse_hex(const char *s, uint8_t *out, size_t n)
{
    uint8_t any = 0;
    for (size_t i = 0; i < n; i++) {
        int hi = hexval((unsigned char)s[2 * i]),
            lo = hi < 0 ? -1 : hexval((unsigned char)s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[i] = (uint8_t)(hi << 4 | lo);
        any |= out[i];
    }
    return any != 0;
}

int tp_otlp_parse_traceparent(const char *s, uint8_t ret_trace[16], uint8_t ret_span[8])
{
    uint8_t t[16], sp[8];
    if (!s || strlen(s) != 55 || strncmp(s, "00-", 3) != 0 || s[35] != '-' || s[52] != '-')
        return -EINVAL;
    if (!parse_hex(s + 3, t, 16) || !parse_hex(s + 36, sp, 8))
        return -EINVAL;
    /* Flags may be 00 (not sampled), which parse_hex() calls all zero. */
    if (hexval((unsigned char)s[53]) < 0 || hexval((unsigned char)s[54]) < 0)
        return -EINVAL;
    memcpy(ret_trace, t, 16);
    memcpy(ret_span, sp, 8);
    return 0;
}

/* The "otel_parent" member of a trace's config object, or NULL. */
static int config_parent(const char *config_json, uint8_t trace[16], uint8_t span[8])
{
    int r = -EINVAL;
    if (!config_json)
        return r;
    json_t *j = json_loads(config_json, 0, NULL);
    const char *tp = json_string_value(json_object_get(j, "otel_parent"));
    if (tp)
        r = tp_otlp_parse_traceparent(tp, trace, span);
    json_decref(j);
    return r;
}

int tp_otlp_trace_id_hex(const char *config_json, const char *trace_id, char ret[33])
{
    static const char hex[] = "0123456789abcdef";
    uint8_t t[16], sp[8];
    if (config_parent(config_json, t, sp) < 0 &&
        (!trace_id || strlen(trace_id) != 32 || !parse_hex(trace_id, t, 16)))
        return -EINVAL;
    for (int i = 0; i < 16; i++) {
        ret[2 * i] = hex[t[i] >> 4];
        ret[2 * i + 1] = hex[t[i] & 15];
    }
    ret[32] = '\0';
    return 0;
}

/* splitmix64: a bijection, so distinct indices give distinct span ids. */
static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* Span id of index i (0: the trace span, node n: n + 1). Zero is invalid in
 * OTLP; it maps to an id no other index of this trace can have, the seed's. */
static void span_id(uint64_t seed, uint64_t i, uint8_t out[8])
{
    uint64_t v = mix64(seed ^ (i * 0xd6e8feb86659fd93ull));
    if (v == 0)
        v = seed | 1;
    for (int k = 0; k < 8; k++)
        out[k] = (uint8_t)(v >> (56 - 8 * k));
}

/* ---- Which calls become spans ---------------------------------------------------- */

static int by_total_desc(const void *a, const void *b, void *arg)
{
    const tp_tree *t = arg;
    const tp_node *x = &t->nodes[*(const uint32_t *)a];
    const tp_node *y = &t->nodes[*(const uint32_t *)b];
    if (x->total_ns != y->total_ns)
        return x->total_ns > y->total_ns ? -1 : 1;
    return *(const uint32_t *)a < *(const uint32_t *)b ? -1 : 1;
}

static bool wanted(const tp_tree *t, const tp_otlp_opts *o, uint32_t i)
{
    const tp_node *n = &t->nodes[i];
    if (o->calls == TP_OTLP_CALLS_ROOTS)
        return n->parent == TP_NONE;
    if (o->calls == TP_OTLP_CALLS_SLOW)
        return n->total_ns >= o->slow_ns;
    return true;
}

/* Mark the exported nodes in keep[] (ancestors of an exported node are
 * exported too, so every span's parent is a span). Over the cap, the
 * slowest wanted calls go first, each with the ancestors it needs. Returns
 * the count, or -ENOMEM. */
static int64_t select_nodes(const tp_tree *t, const tp_otlp_opts *o, uint32_t cap, uint8_t *keep)
{
    size_t nwanted = 0;
    int64_t kept = 0;
    for (size_t i = 0; i < t->nnodes; i++)
        if (wanted(t, o, (uint32_t)i)) {
            nwanted++;
            for (uint32_t a = (uint32_t)i; a != TP_NONE && !keep[a]; a = t->nodes[a].parent) {
                keep[a] = 1;
                kept++;
            }
        }
    if (kept <= cap)
        return kept;
    memset(keep, 0, t->nnodes);
    uint32_t *order = malloc(nwanted * sizeof(*order));
    if (!order)
        return -ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < t->nnodes; i++)
        if (wanted(t, o, (uint32_t)i))
            order[k++] = (uint32_t)i;
    qsort_r(order, nwanted, sizeof(*order), by_total_desc, (void *)t);
    kept = 0;
    for (size_t j = 0; j < nwanted && kept < cap; j++) {
        int64_t need = 0;
        for (uint32_t a = order[j]; a != TP_NONE && !keep[a]; a = t->nodes[a].parent)
            need++;
        if (kept + need > cap)
            continue;
        for (uint32_t a = order[j]; a != TP_NONE && !keep[a]; a = t->nodes[a].parent)
            keep[a] = 1;
        kept += need;
    }
    free(order);
    return kept;
}

/* ---- Spans ------------------------------------------------------------------------ */

typedef struct trace_ctx {
    writer *w;
    const tp_tree *t;
    const tp_otlp_trace *tr;
    uint8_t trace_id[16];
    uint8_t parent[8]; /* the request's span from the traceparent */
    bool has_parent;
    uint64_t seed;
    uint64_t wall0; /* Unix ns of the trace start */
} trace_ctx;

static void span_head(trace_ctx *c, uint64_t index, const uint8_t *parent, const char *name,
                      uint64_t start, uint64_t end)
{
    uint8_t id[8];
    writer *w = c->w;
    span_id(c->seed, index, id);
    w_id(w, F_SPAN_TRACE_ID, "traceId", c->trace_id, 16);
    w_id(w, F_SPAN_SPAN_ID, "spanId", id, 8);
    if (parent)
        w_id(w, F_SPAN_PARENT, "parentSpanId", parent, 8);
    w_str(w, F_SPAN_NAME, "name", name);
    w_enum(w, F_SPAN_KIND, "kind", SPAN_KIND_INTERNAL);
    w_fixed64(w, F_SPAN_START, "startTimeUnixNano", start);
    w_fixed64(w, F_SPAN_END, "endTimeUnixNano", end);
}

static void trace_span(trace_ctx *c, int64_t kept, uint32_t cap)
{
    writer *w = c->w;
    const tp_tree *t = c->t;
    const tp_trace_meta *m = &t->meta;
    uint64_t not_exported = t->nnodes - (uint64_t)kept;
    msg_begin(w, F_SS_SPANS, NULL);
    span_head(c, 0, c->has_parent ? c->parent : NULL, m->label ? m->label : "tracepatch", c->wall0,
              c->wall0 + (uint64_t)(m->duration_ns > 0 ? m->duration_ns : 0));
    arr_begin(w, "attributes");
    kv_str(w, F_SPAN_ATTRIBUTES, "tracepatch.trace_id", m->trace_id);
    kv_str(w, F_SPAN_ATTRIBUTES, "tracepatch.label", m->label);
    kv_str(w, F_SPAN_ATTRIBUTES, "tracepatch.url", c->tr->url);
    kv_int(w, F_SPAN_ATTRIBUTES, "tracepatch.call_count", (int64_t)m->call_count);
    kv_int(w, F_SPAN_ATTRIBUTES, "tracepatch.calls_exported", kept);
    if (not_exported)
        kv_int(w, F_SPAN_ATTRIBUTES, "tracepatch.calls_not_exported", (int64_t)not_exported);
    if ((uint64_t)kept == cap && not_exported)
        kv_int(w, F_SPAN_ATTRIBUTES, "tracepatch.span_limit", cap);
    kv_str(w, F_SPAN_ATTRIBUTES, "tracepatch.limit_reason", m->limit_reason);
    if (m->dropped)
        kv_int(w, F_SPAN_ATTRIBUTES, "tracepatch.dropped_events", (int64_t)m->dropped);
    if (c->tr->truncated)
        kv_bool(w, F_SPAN_ATTRIBUTES, "tracepatch.truncated", true);
    arr_end(w);
    msg_end(w);
}

static void exception_event(trace_ctx *c, const tp_node *n, bool escaped)
{
    writer *w = c->w;
    msg_begin(w, F_SPAN_EVENTS, NULL);
    w_fixed64(w, F_EVENT_TIME, "timeUnixNano", c->wall0 + (uint64_t)n->end_ns);
    w_str(w, F_EVENT_NAME, "name", "exception");
    arr_begin(w, "attributes");
    kv_str(w, F_EVENT_ATTRIBUTES, "exception.type", n->exc_type ? n->exc_type : "");
    kv_str(w, F_EVENT_ATTRIBUTES, "exception.message", n->exc_msg ? n->exc_msg : "");
    kv_bool(w, F_EVENT_ATTRIBUTES, "exception.escaped", escaped);
    arr_end(w);
    msg_end(w);
}

/* The asyncio task a call runs in: the call number of the task's coroutine
 * (the nearest TP_NODE_SPAWNED node at or above it), TP_NONE outside tasks. */
static uint32_t task_of(const tp_tree *t, uint32_t i)
{
    for (uint32_t a = i; a != TP_NONE; a = t->nodes[a].parent)
        if (t->nodes[a].flags & TP_NODE_SPAWNED)
            return a;
    return TP_NONE;
}

static void call_span(trace_ctx *c, uint32_t i, char *name, size_t namesz)
{
    writer *w = c->w;
    const tp_tree *t = c->t;
    const tp_node *n = &t->nodes[i];
    const tp_func *f = &t->funcs[n->func];
    uint8_t parent[8];
    span_id(c->seed, n->parent == TP_NONE ? 0 : (uint64_t)n->parent + 1, parent);
    msg_begin(w, F_SS_SPANS, NULL);
    span_head(c, (uint64_t)i + 1, parent, tp_tree_func_name(t, n->func, name, namesz),
              c->wall0 + (uint64_t)n->start_ns, c->wall0 + (uint64_t)n->end_ns);
    arr_begin(w, "attributes");
    kv_str(w, F_SPAN_ATTRIBUTES, "code.function", f->qualname);
    kv_str(w, F_SPAN_ATTRIBUTES, "code.namespace", f->module);
    if (f->file[0])
        kv_str(w, F_SPAN_ATTRIBUTES, "code.filepath", f->file);
    if (f->lineno > 0)
        kv_int(w, F_SPAN_ATTRIBUTES, "code.lineno", f->lineno);
    kv_int(w, F_SPAN_ATTRIBUTES, "thread.id", n->thread);
    uint32_t task = task_of(t, i);
    if (task != TP_NONE)
        kv_int(w, F_SPAN_ATTRIBUTES, "tracepatch.task_id", task);
    kv_str(w, F_SPAN_ATTRIBUTES, "tracepatch.args", n->args);
    kv_str(w, F_SPAN_ATTRIBUTES, "tracepatch.return", n->ret);
    kv_int(w, F_SPAN_ATTRIBUTES, "tracepatch.active_ns", n->total_ns);
    kv_int(w, F_SPAN_ATTRIBUTES, "tracepatch.self_ns", n->self_ns);
    if (n->flags & TP_NODE_GEN)
        kv_int(w, F_SPAN_ATTRIBUTES, "tracepatch.suspends", n->suspends);
    if (n->flags & TP_NODE_OPEN)
        kv_bool(w, F_SPAN_ATTRIBUTES, "tracepatch.unfinished", true);
    arr_end(w);
    if (n->flags & (TP_NODE_EXC | TP_NODE_CAUGHT)) {
        arr_begin(w, "events");
        exception_event(c, n, (n->flags & TP_NODE_EXC) != 0);
        arr_end(w);
    }
    if (n->flags & TP_NODE_EXC) {
        msg_begin(w, F_SPAN_STATUS, "status");
        w_str(w, F_STATUS_MESSAGE, "message", n->exc_type ? n->exc_type : "");
        w_enum(w, F_STATUS_CODE, "code", STATUS_ERROR);
        msg_end(w);
    }
    msg_end(w);
}

static void resource(writer *w, const tp_otlp_trace *tr, const tp_otlp_opts *o)
{
    const char *label = tr->tree->meta.label;
    msg_begin(w, F_RS_RESOURCE, "resource");
    arr_begin(w, "attributes");
    kv_str(w, F_RES_ATTRIBUTES, "service.name",
           o->service_name   ? o->service_name
           : label && *label ? label
                             : "tracepatch");
    if (tr->pid > 0)
        kv_int(w, F_RES_ATTRIBUTES, "process.pid", tr->pid);
    kv_str(w, F_RES_ATTRIBUTES, "host.name", tr->host);
    kv_str(w, F_RES_ATTRIBUTES, "process.runtime.name", "cpython");
    kv_str(w, F_RES_ATTRIBUTES, "process.runtime.version", tr->python);
    kv_str(w, F_RES_ATTRIBUTES, "telemetry.sdk.name", "tracepatch");
    kv_str(w, F_RES_ATTRIBUTES, "telemetry.sdk.language", "python");
    kv_str(w, F_RES_ATTRIBUTES, "telemetry.sdk.version", TP_VERSION);
    arr_end(w);
    msg_end(w);
}

/* ---- The body --------------------------------------------------------------------- */

void tp_otlp_body_init(tp_otlp_body *b, int format)
{
    memset(b, 0, sizeof(*b));
    b->buf = (tp_buf)TP_BUF_INIT;
    b->format = format;
    tp_json_init(&b->json, &b->buf, false);
}

void tp_otlp_body_reset(tp_otlp_body *b)
{
    tp_buf_reset(&b->buf);
    tp_json_init(&b->json, &b->buf, false);
    b->traces = 0;
    b->spans = 0;
}

void tp_otlp_body_free(tp_otlp_body *b)
{
    if (!b)
        return;
    tp_buf_free(&b->buf);
    b->traces = 0;
    b->spans = 0;
}

int tp_otlp_body_add(tp_otlp_body *b, const tp_otlp_trace *tr, const tp_otlp_opts *o,
                     tp_otlp_counts *ret)
{
    const tp_tree *t = tr->tree;
    tp_otlp_opts def = {0};
    if (!o)
        o = &def;
    uint32_t cap = o->max_spans ? o->max_spans : TP_OTLP_DEFAULT_MAX_SPANS;
    uint8_t *keep = calloc(t->nnodes ? t->nnodes : 1, 1);
    if (!keep)
        return -ENOMEM;
    int64_t kept = select_nodes(t, o, cap, keep);
    if (kept < 0) {
        free(keep);
        return (int)kept;
    }
    size_t mark = b->buf.len;
    tp_json saved = b->json;
    writer w = {.b = &b->buf, .json = b->format == TP_OTLP_JSON, .j = &b->json};
    trace_ctx c = {.w = &w, .t = t, .tr = tr, .wall0 = (uint64_t)t->meta.wall_start_ns};
    if (config_parent(t->meta.config_json, c.trace_id, c.parent) == 0)
        c.has_parent = true;
    else if (!parse_hex(t->meta.trace_id, c.trace_id, 16))
        memset(c.trace_id, 0x11, sizeof(c.trace_id)); /* an id that is never all zero */
    uint8_t own[16];
    if (strlen(t->meta.trace_id) == 32 && parse_hex(t->meta.trace_id, own, 16))
        for (int k = 0; k < 8; k++)
            c.seed = c.seed << 8 | (uint64_t)(own[k] ^ own[k + 8]);
    if (w.json && b->traces == 0) {
        tp_json_obj(&b->json);
        tp_json_key(&b->json, "resourceSpans");
        tp_json_arr(&b->json);
    }
    msg_begin(&w, F_REQ_RESOURCE_SPANS, NULL);
    resource(&w, tr, o);
    arr_begin(&w, "scopeSpans");
    msg_begin(&w, F_RS_SCOPE_SPANS, NULL);
    msg_begin(&w, F_SS_SCOPE, "scope");
    w_str(&w, F_SCOPE_NAME, "name", "tracepatch");
    w_str(&w, F_SCOPE_VERSION, "version", TP_VERSION);
    msg_end(&w);
    arr_begin(&w, "spans");
    trace_span(&c, kept, cap);
    char name[512];
    for (size_t i = 0; i < t->nnodes; i++)
        if (keep[i])
            call_span(&c, (uint32_t)i, name, sizeof(name));
    arr_end(&w);
    msg_end(&w);
    arr_end(&w);
    msg_end(&w);
    free(keep);
    if (tp_buf_error(&b->buf) < 0) {
        /* tp_buf keeps failing once it failed: start over from what was
         * there, so that the caller can send the traces added before. */
        tp_buf old = b->buf;
        b->buf = (tp_buf)TP_BUF_INIT;
        tp_buf_append(&b->buf, old.data, mark);
        tp_buf_free(&old);
        b->json = saved;
        return -ENOMEM;
    }
    b->traces++;
    b->spans += (uint64_t)kept + 1;
    if (ret) {
        ret->spans = (uint32_t)kept + 1;
        ret->not_exported = t->nnodes - (uint64_t)kept;
    }
    return 0;
}

int tp_otlp_body_finish(tp_otlp_body *b)
{
    if (b->format == TP_OTLP_JSON && b->traces == 0) {
        tp_json_obj(&b->json);
        tp_json_key(&b->json, "resourceSpans");
        tp_json_arr(&b->json);
    }
    if (b->format == TP_OTLP_JSON) {
        tp_json_arr_end(&b->json);
        tp_json_obj_end(&b->json);
    }
    return tp_buf_error(&b->buf);
}
