/* libFuzzer harness for the OTLP encoder (daemon/tphd/otlp/otlp_enc.c): the
 * text a traced program controls (argument and return reprs, exception
 * messages, the label, the config's "otel_parent") goes out to a receiver
 * that rejects a whole request over one malformed string.
 *
 * The input is split at NUL bytes into a label, a config object, two
 * argument texts, a return text and an exception message; its first byte
 * picks the span selection and the cap. Besides the sanitizers, these
 * properties are checked, and a violation aborts:
 *  - the protobuf form is well formed: every length fits its message, every
 *    string field is UTF-8, and the request holds exactly as many spans as
 *    the encoder counted;
 *  - the JSON form parses (jansson) with the same number of spans;
 *  - span ids are unique, and every parent is a span of the request but the
 *    trace span's (the request's span of a traceparent).
 *
 * Build and run like fuzz_json (see tests/fuzz/meson.build):
 *   ninja -C build-fuzz tests/fuzz/fuzz_otlp
 *   ./build-fuzz/tests/fuzz/fuzz_otlp -max_total_time=300 -artifact_prefix=build-fuzz/ \
 *       tests/fuzz/corpus_otlp
 * (copy the seed directory first: libFuzzer adds what it finds to it). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "otlp.h"
#include "tree.h"

static void die(const char *what)
{
    fprintf(stderr, "fuzz_otlp: %s\n", what);
    abort();
}

static bool varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; *p < end && shift < 64; shift += 7) {
        uint8_t c = *(*p)++;
        *v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80))
            return true;
    }
    return false;
}

static bool utf8(const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t l = tp_json_utf8_decode(s + i, n - i, &cp);
        if (!l)
            return false;
        i += l;
    }
    return true;
}

/* The request's schema, as far as tracepatch writes it: what each
 * length-delimited field of each message holds. */
enum { REQ, RSPANS, RES, SSPANS, SCOPE, SPAN, EVENT, STATUS, KV, ANY, STR, BYTES, BAD };

static int child(int msg, int f)
{
    switch (msg) {
    case REQ:
        return f == 1 ? RSPANS : BAD;
    case RSPANS:
        return f == 1 ? RES : f == 2 ? SSPANS : BAD;
    case RES:
        return f == 1 ? KV : BAD;
    case SSPANS:
        return f == 1 ? SCOPE : f == 2 ? SPAN : BAD;
    case SCOPE:
        return f == 1 || f == 2 ? STR : BAD;
    case SPAN:
        return f == 1 || f == 2 || f == 4 ? BYTES
               : f == 5                   ? STR
               : f == 9                   ? KV
               : f == 11                  ? EVENT
               : f == 15                  ? STATUS
                                          : BAD;
    case EVENT:
        return f == 2 ? STR : f == 3 ? KV : BAD;
    case STATUS:
        return f == 2 ? STR : BAD;
    case KV:
        return f == 1 ? STR : f == 2 ? ANY : BAD;
    case ANY:
        return f == 1 ? STR : BAD;
    }
    return BAD;
}

typedef struct walk {
    size_t spans;
    uint8_t ids[64][8]; /* span ids (a trace here has at most 6 spans) */
    size_t nids;
    uint8_t parents[64][8];
    size_t nparents;
} walk;

/* Walk one message of type msg; false when the bytes do not follow the
 * schema (a length past its message, a field tracepatch never writes). */
static bool message(walk *w, int msg, const uint8_t *p, const uint8_t *end)
{
    while (p < end) {
        uint64_t tag, v;
        if (!varint(&p, end, &tag))
            return false;
        int wt = (int)(tag & 7), f = (int)(tag >> 3);
        if (wt == 0) {
            if (!varint(&p, end, &v))
                return false;
            continue;
        }
        if (wt == 1 || wt == 5) {
            if (end - p < (wt == 1 ? 8 : 4))
                return false;
            p += wt == 1 ? 8 : 4;
            continue;
        }
        if (wt != 2 || !varint(&p, end, &v) || v > (uint64_t)(end - p))
            return false;
        int kind = child(msg, f);
        if (kind == BAD)
            return false;
        if (kind == STR && !utf8(p, (size_t)v))
            die("a protobuf string is not UTF-8");
        if (kind == BYTES && msg == SPAN && f == 4) {
            if (v != 8 || w->nparents == 64)
                die("a parent span id is not 8 bytes");
            memcpy(w->parents[w->nparents++], p, 8);
        }
        if (kind == BYTES && msg == SPAN && f == 2) {
            if (v != 8 || w->nids == 64)
                die("a span id is not 8 bytes");
            memcpy(w->ids[w->nids++], p, 8);
        }
        if (kind == SPAN)
            w->spans++;
        if (kind < STR && !message(w, kind, p, p + v))
            return false;
        p += v;
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *part[6] = {"", "", "", "", "", ""};
    char *copy = malloc(size + 1);
    if (!copy || size < 1) {
        free(copy);
        return 0;
    }
    memcpy(copy, data, size);
    copy[size] = '\0';
    char *s = copy + 1;
    for (int i = 0; i < 6 && s <= copy + size; i++) {
        part[i] = s;
        s += strlen(s) + 1;
    }
    tp_tree *t = NULL;
    if (tp_tree_new(&t) < 0)
        die("no memory");
    tp_tree_def_func(t, 0, "app", part[0], "/a.py", 1);
    tp_tree_call(t, 0, 10, false, part[2], strlen(part[2]));
    tp_tree_call(t, 0, 20, false, part[3], strlen(part[3]));
    tp_tree_unwind(t, 30, "E", 1, part[5], strlen(part[5]));
    tp_tree_call(t, 0, 40, false, NULL, 0);
    tp_tree_return(t, 50, part[4], strlen(part[4]));
    tp_tree_return(t, 60, part[4], strlen(part[4]));
    tp_tree_finish(t, 70);
    memcpy(t->meta.trace_id, "0123456789abcdef0123456789abcdef", 33);
    tp_tree_set_label(t, part[0]);
    tp_tree_set_config_json(t, part[1]);
    tp_otlp_opts o = {.calls = data[0] % 3, .slow_ns = 15, .max_spans = 1 + (data[0] >> 2) % 4};
    tp_otlp_trace tr = {.tree = t, .host = part[0], .python = part[4], .url = part[2]};
    for (int format = 0; format < 2; format++) {
        tp_otlp_body b;
        tp_otlp_counts c;
        tp_otlp_body_init(&b, format);
        if (tp_otlp_body_add(&b, &tr, &o, &c) < 0 || tp_otlp_body_finish(&b) < 0)
            die("encoding failed");
        if (format == TP_OTLP_PROTOBUF) {
            walk *w = calloc(1, sizeof(*w));
            const uint8_t *p = (const uint8_t *)b.buf.data;
            if (!message(w, REQ, p, p + b.buf.len))
                die("the protobuf form is not protobuf");
            if (w->spans != c.spans || w->nids != c.spans)
                die("the protobuf form has another number of spans");
            for (size_t i = 0; i < w->nids; i++)
                for (size_t j = i + 1; j < w->nids; j++)
                    if (memcmp(w->ids[i], w->ids[j], 8) == 0)
                        die("two spans share an id");
            size_t foreign = 0;
            for (size_t i = 0; i < w->nparents; i++) {
                bool known = false;
                for (size_t j = 0; j < w->nids; j++)
                    known |= memcmp(w->parents[i], w->ids[j], 8) == 0;
                foreign += !known;
            }
            if (foreign > 1 || w->nparents + 1 < w->nids)
                die("a span's parent is not in the request");
            free(w);
        } else {
            json_error_t e;
            json_t *j = json_loadb(b.buf.data, b.buf.len, 0, &e);
            json_t *spans = json_object_get(
                json_array_get(
                    json_object_get(json_array_get(json_object_get(j, "resourceSpans"), 0),
                                    "scopeSpans"),
                    0),
                "spans");
            if (!j || json_array_size(spans) != c.spans)
                die("the JSON form does not parse, or has another number of spans");
            json_decref(j);
        }
        tp_otlp_body_free(&b);
    }
    tp_tree_free(t);
    free(copy);
    return 0;
}
