/* The OTLP encoder: the spans a finished tree becomes, in protobuf (read
 * back with a minimal wire-format walker) and in OTLP/JSON (jansson); and
 * the exporter's configuration checks. */
#include <criterion/criterion.h>
#include <errno.h>
#include <jansson.h>
#include <string.h>

#include "otlp.h"
#include "otlp_export.h"
#include "tree.h"

#define WALL   1700000000000000000ll
#define TID    "0123456789abcdef0123456789abcdef"
#define PARENT "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

/* app.handle(x=1) [1000, 9000] calls app.load(k='a') [2000, 5000] -> 42 and
 * app.fail() [6000, 7000], which raises ValueError('bad'). */
static tp_tree *sample(const char *config_json, const char *args_of_load)
{
    tp_tree *t = NULL;
    cr_assert_eq(tp_tree_new(&t), 0);
    cr_assert_eq(tp_tree_def_func(t, 0, "app", "handle", "/srv/app.py", 10), 0);
    cr_assert_eq(tp_tree_def_func(t, 1, "app", "load", "/srv/app.py", 20), 0);
    cr_assert_eq(tp_tree_def_func(t, 2, "app", "fail", "/srv/app.py", 30), 0);
    cr_assert_eq(tp_tree_call(t, 0, 1000, false, "x=1", 3), 0);
    cr_assert_eq(tp_tree_call(t, 1, 2000, false, args_of_load, strlen(args_of_load)), 0);
    cr_assert_eq(tp_tree_return(t, 5000, "42", 2), 0);
    cr_assert_eq(tp_tree_call(t, 2, 6000, false, NULL, 0), 0);
    cr_assert_eq(tp_tree_unwind(t, 7000, "ValueError", 10, "bad", 3), 0);
    cr_assert_eq(tp_tree_return(t, 9000, "None", 4), 0);
    cr_assert_eq(tp_tree_finish(t, 10000), 0);
    memcpy(t->meta.trace_id, TID, 33);
    t->meta.wall_start_ns = WALL;
    t->meta.call_count = 3;
    cr_assert_eq(tp_tree_set_label(t, "req"), 0);
    if (config_json)
        cr_assert_eq(tp_tree_set_config_json(t, config_json), 0);
    return t;
}

static void encode(const tp_tree *t, const tp_otlp_opts *o, int format, tp_otlp_body *b,
                   tp_otlp_counts *c)
{
    tp_otlp_trace tr = {.tree = t,
                        .pid = 4242,
                        .host = "box",
                        .python = "3.11.2",
                        .url = "http://127.0.0.1:7345/t/" TID};
    tp_otlp_body_init(b, format);
    cr_assert_eq(tp_otlp_body_add(b, &tr, o, c), 0);
    cr_assert_eq(tp_otlp_body_finish(b), 0);
}

/* ---- A protobuf walker -------------------------------------------------------------- */

typedef struct pb {
    const uint8_t *p;
    size_t n;
} pb;

static uint64_t varint(const uint8_t **p, const uint8_t *end)
{
    uint64_t v = 0;
    for (int shift = 0; *p < end; shift += 7) {
        uint8_t c = *(*p)++;
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80))
            return v;
    }
    cr_assert_fail("truncated varint");
    return 0;
}

/* The k-th occurrence of field (any wire type): its payload as a slice (LEN),
 * or *ret_v (VARINT, FIXED64, FIXED32). Returns false when absent. */
static bool field(pb m, int f, int k, pb *ret, uint64_t *ret_v)
{
    const uint8_t *p = m.p, *end = m.p + m.n;
    while (p < end) {
        uint64_t tag = varint(&p, end);
        int wt = (int)(tag & 7), num = (int)(tag >> 3);
        pb s = {0};
        uint64_t v = 0;
        if (wt == 0) {
            v = varint(&p, end);
        } else if (wt == 1) {
            cr_assert_leq(p + 8, end);
            for (int i = 7; i >= 0; i--)
                v = v << 8 | p[i];
            p += 8;
        } else if (wt == 5) {
            cr_assert_leq(p + 4, end);
            for (int i = 3; i >= 0; i--)
                v = v << 8 | p[i];
            p += 4;
        } else {
            cr_assert_eq(wt, 2, "unexpected wire type %d", wt);
            uint64_t len = varint(&p, end);
            cr_assert_leq(p + len, end);
            s.p = p;
            s.n = len;
            p += len;
        }
        if (num == f && k-- == 0) {
            if (ret)
                *ret = s;
            if (ret_v)
                *ret_v = v;
            return true;
        }
    }
    return false;
}

static pb sub(pb m, int f, int k)
{
    pb s;
    cr_assert(field(m, f, k, &s, NULL), "field %d #%d missing", f, k);
    return s;
}

static int count(pb m, int f)
{
    int n = 0;
    while (field(m, f, n, NULL, NULL))
        n++;
    return n;
}

static bool eq(pb s, const char *text)
{
    return s.n == strlen(text) && memcmp(s.p, text, s.n) == 0;
}

/* Span k of the single ResourceSpans / ScopeSpans. */
static pb span(pb req, int k)
{
    return sub(sub(sub(req, 1, 0), 2, 0), 2, k);
}

/* The value slice of attribute key in a repeated KeyValue field. */
static bool attr(pb m, int f, const char *key, pb *ret_any)
{
    pb kv;
    for (int i = 0; field(m, f, i, &kv, NULL); i++)
        if (eq(sub(kv, 1, 0), key)) {
            *ret_any = sub(kv, 2, 0);
            return true;
        }
    return false;
}

static void assert_str_attr(pb m, int f, const char *key, const char *want)
{
    pb any;
    cr_assert(attr(m, f, key, &any), "attribute %s missing", key);
    pb s = sub(any, 1, 0);
    cr_assert(eq(s, want), "%s is '%.*s', not '%s'", key, (int)s.n, s.p, want);
}

static int64_t int_attr(pb m, int f, const char *key)
{
    pb any;
    uint64_t v;
    cr_assert(attr(m, f, key, &any), "attribute %s missing", key);
    cr_assert(field(any, 3, 0, NULL, &v));
    return (int64_t)v;
}

static uint64_t u64(pb m, int f)
{
    uint64_t v = 0;
    cr_assert(field(m, f, 0, NULL, &v), "field %d missing", f);
    return v;
}

static pb as_pb(const tp_otlp_body *b)
{
    return (pb){(const uint8_t *)b->buf.data, b->buf.len};
}

/* ---- Protobuf --------------------------------------------------------------------- */

Test(otlp, protobuf_has_a_trace_span_and_one_span_per_call)
{
    tp_tree *t = sample(NULL, "k='a'");
    tp_otlp_body b;
    tp_otlp_counts c;
    encode(t, NULL, TP_OTLP_PROTOBUF, &b, &c);
    pb req = as_pb(&b);
    cr_assert_eq(count(req, 1), 1);
    cr_assert_eq(count(sub(sub(req, 1, 0), 2, 0), 2), 4);
    cr_assert_eq(c.spans, 4);
    cr_assert_eq(c.not_exported, 0);
    cr_assert_eq(b.spans, 4);

    pb root = span(req, 0), handle = span(req, 1), load = span(req, 2), fail = span(req, 3);
    cr_assert(eq(sub(root, 5, 0), "req"));
    cr_assert_eq(count(root, 4), 0, "the trace span has no parent without a traceparent");
    cr_assert_eq(u64(root, 7), (uint64_t)WALL);
    cr_assert_eq(u64(root, 8), (uint64_t)WALL + 10000);
    assert_str_attr(root, 9, "tracepatch.trace_id", TID);
    assert_str_attr(root, 9, "tracepatch.url", "http://127.0.0.1:7345/t/" TID);
    cr_assert_eq(int_attr(root, 9, "tracepatch.call_count"), 3);

    static const uint8_t tid[16] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
                                    0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef};
    for (int i = 0; i < 4; i++) {
        pb s = span(req, i);
        pb id = sub(s, 1, 0);
        cr_assert_eq(id.n, 16);
        cr_assert_eq(memcmp(id.p, tid, 16), 0);
        cr_assert_eq(sub(s, 2, 0).n, 8);
        cr_assert_eq(u64(s, 6), 1, "kind INTERNAL");
    }
    pb rid = sub(root, 2, 0), hid = sub(handle, 2, 0);
    cr_assert_eq(memcmp(sub(handle, 4, 0).p, rid.p, 8), 0, "handle hangs under the trace span");
    cr_assert_eq(memcmp(sub(load, 4, 0).p, hid.p, 8), 0, "load hangs under handle");
    cr_assert_eq(memcmp(sub(fail, 4, 0).p, hid.p, 8), 0, "fail hangs under handle");

    cr_assert(eq(sub(handle, 5, 0), "app.handle"));
    cr_assert_eq(u64(handle, 7), (uint64_t)WALL + 1000);
    cr_assert_eq(u64(handle, 8), (uint64_t)WALL + 9000);
    assert_str_attr(handle, 9, "code.function", "handle");
    assert_str_attr(handle, 9, "code.namespace", "app");
    assert_str_attr(handle, 9, "code.filepath", "/srv/app.py");
    cr_assert_eq(int_attr(handle, 9, "code.lineno"), 10);
    cr_assert_eq(int_attr(handle, 9, "thread.id"), 0);
    assert_str_attr(handle, 9, "tracepatch.args", "x=1");
    assert_str_attr(handle, 9, "tracepatch.return", "None");
    cr_assert_eq(int_attr(handle, 9, "tracepatch.active_ns"), 8000);
    cr_assert_eq(int_attr(handle, 9, "tracepatch.self_ns"), 4000);
    cr_assert_eq(count(handle, 11), 0);
    cr_assert_eq(count(handle, 15), 0, "no status on a call that returned");
    assert_str_attr(load, 9, "tracepatch.return", "42");

    cr_assert_eq(count(fail, 11), 1);
    pb ev = sub(fail, 11, 0);
    cr_assert(eq(sub(ev, 2, 0), "exception"));
    cr_assert_eq(u64(ev, 1), (uint64_t)WALL + 7000);
    assert_str_attr(ev, 3, "exception.type", "ValueError");
    assert_str_attr(ev, 3, "exception.message", "bad");
    pb status = sub(fail, 15, 0);
    cr_assert_eq(u64(status, 3), 2, "STATUS_CODE_ERROR");
    cr_assert(eq(sub(status, 2, 0), "ValueError"));
    pb any;
    cr_assert_not(attr(fail, 9, "tracepatch.args", &any), "args not captured: no attribute");

    pb res = sub(sub(req, 1, 0), 1, 0);
    assert_str_attr(res, 1, "service.name", "req");
    cr_assert_eq(int_attr(res, 1, "process.pid"), 4242);
    assert_str_attr(res, 1, "host.name", "box");
    assert_str_attr(res, 1, "process.runtime.name", "cpython");
    assert_str_attr(res, 1, "process.runtime.version", "3.11.2");
    tp_otlp_body_free(&b);
    tp_tree_free(t);
}

Test(otlp, service_name_option_overrides_the_label)
{
    tp_tree *t = sample(NULL, "k='a'");
    tp_otlp_body b;
    tp_otlp_opts o = {.service_name = "shop"};
    encode(t, &o, TP_OTLP_PROTOBUF, &b, NULL);
    assert_str_attr(sub(sub(as_pb(&b), 1, 0), 1, 0), 1, "service.name", "shop");
    tp_otlp_body_free(&b);
    tp_tree_free(t);
}

Test(otlp, span_ids_are_distinct_and_stable_across_encodings)
{
    tp_tree *t = sample(NULL, "k='a'");
    tp_otlp_body a, b;
    encode(t, NULL, TP_OTLP_PROTOBUF, &a, NULL);
    encode(t, NULL, TP_OTLP_PROTOBUF, &b, NULL);
    cr_assert_eq(a.buf.len, b.buf.len);
    cr_assert_eq(memcmp(a.buf.data, b.buf.data, a.buf.len), 0, "a retry sends the same bytes");
    for (int i = 0; i < 4; i++)
        for (int j = i + 1; j < 4; j++)
            cr_assert_neq(
                memcmp(sub(span(as_pb(&a), i), 2, 0).p, sub(span(as_pb(&a), j), 2, 0).p, 8), 0);
    tp_otlp_body_free(&a);
    tp_otlp_body_free(&b);
    tp_tree_free(t);
}

Test(otlp, traceparent_in_config_gives_trace_id_and_parent_span)
{
    tp_tree *t = sample("{\"max_depth\": 30, \"otel_parent\": \"" PARENT "\"}", "k='a'");
    tp_otlp_body b;
    encode(t, NULL, TP_OTLP_PROTOBUF, &b, NULL);
    static const uint8_t want_tid[16] = {0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6,
                                         0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36};
    static const uint8_t want_parent[8] = {0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7};
    pb root = span(as_pb(&b), 0);
    cr_assert_eq(memcmp(sub(root, 1, 0).p, want_tid, 16), 0);
    cr_assert_eq(memcmp(sub(root, 4, 0).p, want_parent, 8), 0);
    cr_assert_eq(memcmp(sub(span(as_pb(&b), 3), 1, 0).p, want_tid, 16), 0);
    assert_str_attr(root, 9, "tracepatch.trace_id", TID);
    char hex[33];
    cr_assert_eq(tp_otlp_trace_id_hex(t->meta.config_json, TID, hex), 0);
    cr_assert_str_eq(hex, "4bf92f3577b34da6a3ce929d0e0e4736");
    cr_assert_eq(tp_otlp_trace_id_hex("{\"max_depth\": 3}", TID, hex), 0);
    cr_assert_str_eq(hex, TID);
    tp_otlp_body_free(&b);
    tp_tree_free(t);
}

Test(otlp, parse_traceparent_rejects_malformed_values)
{
    uint8_t tid[16], sid[8];
    cr_assert_eq(tp_otlp_parse_traceparent(PARENT, tid, sid), 0);
    cr_assert_eq(tid[0], 0x4b);
    cr_assert_eq(sid[7], 0xb7);
    cr_assert_eq(tp_otlp_parse_traceparent(
                     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", tid, sid),
                 0, "flags 00 (not sampled) is valid");
    static const char *const bad[] = {
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  /* version */
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",  /* uppercase */
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  /* zero trace id */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  /* zero span id */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",   /* short */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-", /* long */
        "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",  /* separators */
        "",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(tp_otlp_parse_traceparent(bad[i], tid, sid), -EINVAL, "%s", bad[i]);
    cr_assert_eq(tp_otlp_parse_traceparent(NULL, tid, sid), -EINVAL);
}

Test(otlp, calls_inside_an_asyncio_task_carry_the_task_id)
{
    tp_tree *t = NULL;
    cr_assert_eq(tp_tree_new(&t), 0);
    cr_assert_eq(tp_tree_def_func(t, 0, "app", "main", "", 0), 0);
    cr_assert_eq(tp_tree_def_func(t, 1, "app", "job", "", 0), 0);
    cr_assert_eq(tp_tree_def_func(t, 2, "app", "leaf", "", 0), 0);
    cr_assert_eq(tp_tree_call(t, 0, 1000, false, NULL, 0), 0); /* call 0 creates the task */
    cr_assert_eq(tp_tree_return(t, 2000, NULL, 0), 0);
    cr_assert_eq(tp_tree_spawn(t, 0), 0);
    cr_assert_eq(tp_tree_call(t, 1, 3000, true, NULL, 0), 0); /* call 1: the task's coroutine */
    cr_assert_eq(tp_tree_call(t, 2, 4000, false, NULL, 0), 0);
    cr_assert_eq(tp_tree_return(t, 5000, NULL, 0), 0);
    cr_assert_eq(tp_tree_return(t, 6000, NULL, 0), 0);
    cr_assert_eq(tp_tree_finish(t, 7000), 0);
    memcpy(t->meta.trace_id, TID, 33);
    cr_assert(t->nodes[1].flags & TP_NODE_SPAWNED);
    tp_otlp_body b;
    encode(t, NULL, TP_OTLP_PROTOBUF, &b, NULL);
    pb main = span(as_pb(&b), 1), job = span(as_pb(&b), 2), leaf = span(as_pb(&b), 3), any;
    cr_assert_not(attr(main, 9, "tracepatch.task_id", &any), "main runs in no task");
    cr_assert_eq(int_attr(job, 9, "tracepatch.task_id"), 1);
    cr_assert_eq(int_attr(leaf, 9, "tracepatch.task_id"), 1);
    cr_assert_eq(memcmp(sub(job, 4, 0).p, sub(main, 2, 0).p, 8), 0, "the task hangs under main");
    tp_otlp_body_free(&b);
    tp_tree_free(t);
}

/* ---- Selection ------------------------------------------------------------------- */

Test(otlp, over_the_cap_the_slowest_subtree_is_kept_with_its_ancestors)
{
    tp_tree *t = sample(NULL, "k='a'");
    tp_otlp_body b;
    tp_otlp_counts c;
    tp_otlp_opts o = {.max_spans = 2};
    encode(t, &o, TP_OTLP_PROTOBUF, &b, &c);
    pb ss = sub(sub(as_pb(&b), 1, 0), 2, 0);
    cr_assert_eq(count(ss, 2), 3);
    cr_assert_eq(c.spans, 3);
    cr_assert_eq(c.not_exported, 1);
    cr_assert(eq(sub(span(as_pb(&b), 1), 5, 0), "app.handle"));
    cr_assert(eq(sub(span(as_pb(&b), 2), 5, 0), "app.load"), "load (3 us) beats fail (1 us)");
    pb root = span(as_pb(&b), 0);
    cr_assert_eq(int_attr(root, 9, "tracepatch.calls_not_exported"), 1);
    cr_assert_eq(int_attr(root, 9, "tracepatch.span_limit"), 2);
    tp_otlp_body_free(&b);
    tp_tree_free(t);
}

Test(otlp, at_the_cap_nothing_is_left_out)
{
    tp_tree *t = sample(NULL, "k='a'");
    tp_otlp_body b;
    tp_otlp_counts c;
    tp_otlp_opts o = {.max_spans = 3};
    encode(t, &o, TP_OTLP_PROTOBUF, &b, &c);
    cr_assert_eq(c.spans, 4);
    pb any;
    cr_assert_not(attr(span(as_pb(&b), 0), 9, "tracepatch.span_limit", &any));
    cr_assert_not(attr(span(as_pb(&b), 0), 9, "tracepatch.calls_not_exported", &any));
    tp_otlp_body_free(&b);
    tp_tree_free(t);
}

Test(otlp, calls_roots_exports_top_level_calls_only)
{
    tp_tree *t = sample(NULL, "k='a'");
    tp_otlp_body b;
    tp_otlp_counts c;
    tp_otlp_opts o = {.calls = TP_OTLP_CALLS_ROOTS};
    encode(t, &o, TP_OTLP_PROTOBUF, &b, &c);
    cr_assert_eq(c.spans, 2);
    cr_assert_eq(c.not_exported, 2);
    cr_assert(eq(sub(span(as_pb(&b), 1), 5, 0), "app.handle"));
    tp_otlp_body_free(&b);
    tp_tree_free(t);
}

Test(otlp, calls_slow_keeps_calls_at_the_threshold_and_their_callers)
{
    tp_tree *t = sample(NULL, "k='a'");
    tp_otlp_body b;
    tp_otlp_counts c;
    tp_otlp_opts o = {.calls = TP_OTLP_CALLS_SLOW, .slow_ns = 3000};
    encode(t, &o, TP_OTLP_PROTOBUF, &b, &c);
    cr_assert_eq(c.spans, 3, "handle and load (exactly 3 us); fail (1 us) is left out");
    cr_assert(eq(sub(span(as_pb(&b), 2), 5, 0), "app.load"));
    tp_otlp_body_free(&b);
    o.slow_ns = 3001;
    encode(t, &o, TP_OTLP_PROTOBUF, &b, &c);
    cr_assert_eq(c.spans, 2, "only handle is 3001 ns or longer");
    tp_otlp_body_free(&b);
    tp_tree_free(t);
}

Test(otlp, text_that_is_not_utf8_becomes_replacement_characters)
{
    tp_tree *t = sample(NULL, "k='\xff\xc3\xa9'");
    tp_otlp_body b;
    encode(t, NULL, TP_OTLP_PROTOBUF, &b, NULL);
    assert_str_attr(span(as_pb(&b), 2), 9, "tracepatch.args", "k='\xef\xbf\xbd\xc3\xa9'");
    tp_otlp_body_free(&b);
    tp_tree_free(t);
}

/* ---- JSON ------------------------------------------------------------------------- */

static const char *jattr(json_t *attrs, const char *key, const char *type)
{
    size_t i;
    json_t *kv;
    json_array_foreach(attrs, i, kv)
    {
        if (strcmp(json_string_value(json_object_get(kv, "key")), key) == 0) {
            json_t *v = json_object_get(json_object_get(kv, "value"), type);
            return v && json_is_string(v) ? json_string_value(v) : v ? "<not a string>" : NULL;
        }
    }
    return NULL;
}

Test(otlp, json_form_carries_the_same_spans_as_protobuf)
{
    tp_tree *t = sample(NULL, "k='a'");
    tp_otlp_body pbb, jb;
    encode(t, NULL, TP_OTLP_PROTOBUF, &pbb, NULL);
    encode(t, NULL, TP_OTLP_JSON, &jb, NULL);
    json_error_t e;
    json_t *j = json_loads(jb.buf.data, 0, &e);
    cr_assert_not_null(j, "JSON: %s", e.text);
    json_t *rs = json_array_get(json_object_get(j, "resourceSpans"), 0);
    json_t *spans = json_object_get(json_array_get(json_object_get(rs, "scopeSpans"), 0), "spans");
    cr_assert_eq(json_array_size(spans), 4);
    for (size_t i = 0; i < 4; i++) {
        json_t *s = json_array_get(spans, i);
        pb p = span(as_pb(&pbb), (int)i);
        char hex[17];
        pb id = sub(p, 2, 0);
        for (int k = 0; k < 8; k++)
            snprintf(hex + 2 * k, 3, "%02x", id.p[k]);
        cr_assert_str_eq(json_string_value(json_object_get(s, "spanId")), hex);
        cr_assert_str_eq(json_string_value(json_object_get(s, "traceId")), TID);
        char start[24];
        snprintf(start, sizeof(start), "%llu", (unsigned long long)u64(p, 7));
        cr_assert_str_eq(json_string_value(json_object_get(s, "startTimeUnixNano")), start);
        cr_assert_eq(json_integer_value(json_object_get(s, "kind")), 1);
    }
    json_t *handle = json_array_get(spans, 1), *fail = json_array_get(spans, 3);
    cr_assert_str_eq(json_string_value(json_object_get(handle, "parentSpanId")),
                     json_string_value(json_object_get(json_array_get(spans, 0), "spanId")));
    cr_assert_str_eq(json_string_value(json_object_get(handle, "name")), "app.handle");
    cr_assert_str_eq(jattr(json_object_get(handle, "attributes"), "code.lineno", "intValue"), "10");
    cr_assert_str_eq(jattr(json_object_get(handle, "attributes"), "tracepatch.args", "stringValue"),
                     "x=1");
    json_t *ev = json_array_get(json_object_get(fail, "events"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(ev, "name")), "exception");
    cr_assert_str_eq(jattr(json_object_get(ev, "attributes"), "exception.type", "stringValue"),
                     "ValueError");
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(fail, "status"), "code")), 2);
    cr_assert_str_eq(jattr(json_object_get(json_object_get(rs, "resource"), "attributes"),
                           "process.pid", "intValue"),
                     "4242");
    json_decref(j);
    tp_otlp_body_free(&pbb);
    tp_otlp_body_free(&jb);
    tp_tree_free(t);
}

Test(otlp, body_with_two_traces_has_two_resource_spans)
{
    tp_tree *t = sample(NULL, "k='a'");
    tp_otlp_trace tr = {.tree = t};
    for (int format = 0; format < 2; format++) {
        tp_otlp_body b;
        tp_otlp_body_init(&b, format);
        cr_assert_eq(tp_otlp_body_add(&b, &tr, NULL, NULL), 0);
        cr_assert_eq(tp_otlp_body_add(&b, &tr, NULL, NULL), 0);
        cr_assert_eq(tp_otlp_body_finish(&b), 0);
        cr_assert_eq(b.traces, 2);
        cr_assert_eq(b.spans, 8);
        if (format == TP_OTLP_PROTOBUF) {
            cr_assert_eq(count(as_pb(&b), 1), 2);
        } else {
            json_t *j = json_loads(b.buf.data, 0, NULL);
            cr_assert_not_null(j);
            cr_assert_eq(json_array_size(json_object_get(j, "resourceSpans")), 2);
            json_decref(j);
        }
        tp_otlp_body_free(&b);
    }
    tp_tree_free(t);
}

Test(otlp, empty_json_body_is_a_valid_request)
{
    tp_otlp_body b;
    tp_otlp_body_init(&b, TP_OTLP_JSON);
    cr_assert_eq(tp_otlp_body_finish(&b), 0);
    cr_assert_str_eq(b.buf.data, "{\"resourceSpans\":[]}");
    tp_otlp_body_free(&b);
}

/* ---- Exporter configuration ---------------------------------------------------------- */

Test(otlp, config_check_refuses_other_schemes_and_forged_headers)
{
    char err[200];
    const char *good[] = {"Authorization=Bearer a:b", "X-Scope-OrgID=team=a"};
    tp_otlp_config c = {.endpoint = "https://collector:4318", .headers = good, .nheaders = 2};
    cr_assert_eq(tp_otlp_export_check(&c, err, sizeof(err)), 0, "%s", err);
    c.endpoint = "grpc://collector:4317";
    cr_assert_eq(tp_otlp_export_check(&c, err, sizeof(err)), -EINVAL);
    cr_assert_str_eq(err, "--otlp-endpoint must be an http:// or https:// URL");
    c.endpoint = "http://collector:4318/v1/traces?api_key=k";
    cr_assert_eq(tp_otlp_export_check(&c, err, sizeof(err)), -EINVAL);
    c.endpoint = "http://collector:4318";
    static const char *const bad[] = {"=value", "NoValue", "a:b=c", "A=b\r\nX-Evil: 1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        c.headers = &bad[i];
        c.nheaders = 1;
        cr_assert_eq(tp_otlp_export_check(&c, err, sizeof(err)), -EINVAL, "%s", bad[i]);
        cr_assert(strstr(err, "must be KEY=VALUE on one line") != NULL, "%s", err);
    }
}

Test(otlp, report_link_carries_no_token)
{
    char buf[128];
    cr_assert_eq(tp_otlp_export_report_link("http://127.0.0.1:7345", TID, buf, sizeof(buf)), 0);
    cr_assert_str_eq(buf, "http://127.0.0.1:7345/t/" TID);
    cr_assert_eq(tp_otlp_export_report_link("http://127.0.0.1:7345", TID, buf, 40), -ENOSPC);
}
