/* libFuzzer harness for the wire decoders.
 *
 * Each input is used twice: as one payload (tp_wire_check, tp_wire_decode,
 * tp_wire_decode_reply) and as a stream of length-prefixed frames
 * (tp_wire_frame, then the same on every whole frame). Besides the
 * sanitizers, these properties are checked, and a violation aborts:
 *  - a decode failure always comes with a known error code and a message;
 *  - msgpack-c parses every payload tp_wire_check passes;
 *  - a decoded message re-encodes, and the re-encoded frame decodes to the
 *    same message (for the fields that survive a round trip);
 *  - for WELCOME, ACK, STORED, ERROR and REPLY the extension's cursor decoder accepts
 *    exactly what the msgpack-c decoder accepts.
 *
 * Build and run (see tests/fuzz/meson.build):
 *   CC=clang-14 meson setup build-fuzz -Dfuzz=true -Db_sanitize=address,undefined \
 *       -Db_lundef=false -Dextension=false -Ddaemon=false
 *   ninja -C build-fuzz tests/fuzz/fuzz_wire
 *   mkdir -p build-fuzz/corpus
 *   ./build-fuzz/tests/fuzz/fuzz_wire -max_total_time=300 -dict=tests/fuzz/wire.dict \
 *       -artifact_prefix=build-fuzz/ build-fuzz/corpus tests/fuzz/corpus */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tp_err.h"
#include "wire.h"

static void die(const char *what, int code, const char *err)
{
    fprintf(stderr, "fuzz_wire: %s (code %d %s: %s)\n", what, code, tp_errname(code),
            err ? err : "");
    abort();
}

static bool known_error(int r)
{
    return r == TP_ERR_TRUNCATED || r == TP_ERR_MALFORMED || r == TP_ERR_TYPE ||
           r == TP_ERR_MISSING || r == TP_ERR_LIMIT || r == TP_ERR_VERSION ||
           r == TP_ERR_FRAME_TOO_LARGE;
}

static bool same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static bool same_bytes(const void *a, const void *b, size_t n)
{
    return n == 0 || memcmp(a, b, n) == 0;
}

/* The fields a round trip must preserve. ERROR/failed REPLY gain a default
 * message when they had none, so message is compared only when set. */
static bool same_msg(const tp_msg *a, const tp_msg *b)
{
    if (a->type != b->type || a->version != b->version || a->caps != b->caps || a->pid != b->pid ||
        a->argc != b->argc || a->nfuncs != b->nfuncs || a->wall_start_ns != b->wall_start_ns ||
        a->seq != b->seq || a->nrecords != b->nrecords || a->text_len != b->text_len ||
        a->end_ns != b->end_ns || a->call_count != b->call_count || a->dropped != b->dropped ||
        a->code != b->code || a->id != b->id || a->ok != b->ok || a->body_len != b->body_len ||
        a->more != b->more)
        return false;
    if (!same_str(a->python, b->python) || !same_str(a->hostname, b->hostname) ||
        !same_str(a->client, b->client) || !same_str(a->trace, b->trace) ||
        !same_str(a->label, b->label) || !same_str(a->config_json, b->config_json) ||
        !same_str(a->limit_reason, b->limit_reason) || !same_str(a->drop_reason, b->drop_reason) ||
        !same_str(a->url, b->url) || !same_str(a->op, b->op) ||
        !same_str(a->args_json, b->args_json) || !same_str(a->content_type, b->content_type))
        return false;
    if (a->message && !same_str(a->message, b->message))
        return false;
    for (size_t i = 0; i < a->argc; i++)
        if (!same_str(a->argv[i], b->argv[i]))
            return false;
    for (size_t i = 0; i < a->nfuncs; i++) {
        const tp_wire_func *f = &a->funcs[i], *g = &b->funcs[i];
        if (f->id != g->id || f->lineno != g->lineno || !same_str(f->module, g->module) ||
            !same_str(f->qualname, g->qualname) || !same_str(f->file, g->file))
            return false;
    }
    return same_bytes(a->records, b->records, a->nrecords * sizeof(tp_event)) &&
           same_bytes(a->text, b->text, a->text_len) && same_bytes(a->body, b->body, a->body_len) &&
           a->lines_len == b->lines_len && same_bytes(a->lines_json, b->lines_json, a->lines_len) &&
           a->source_len == b->source_len &&
           same_bytes(a->source_json, b->source_json, a->source_len);
}

static bool reply_type(int type)
{
    return type == TP_MSG_WELCOME || type == TP_MSG_ACK || type == TP_MSG_STORED ||
           type == TP_MSG_ERROR || type == TP_MSG_REPLY;
}

static bool known_type(int type)
{
    return (type >= TP_MSG_HELLO && type <= TP_MSG_LINES) || type == TP_MSG_SOURCE ||
           type == TP_MSG_QUERY || type == TP_MSG_REPLY;
}

static void round_trip(const tp_msg *m)
{
    if (!known_type(m->type))
        return; /* decoded to its type alone; nothing to encode */
    tp_buf b = TP_BUF_INIT;
    char err[256] = "";
    int r = tp_wire_encode(m, &b);
    if (r)
        die("a decoded message does not re-encode", r, NULL);
    tp_msg d;
    r = tp_wire_decode((const uint8_t *)b.data + TP_WIRE_HEADER_SIZE, b.len - TP_WIRE_HEADER_SIZE,
                       &d, err, sizeof(err));
    if (r)
        die("a re-encoded message does not decode", r, err);
    tp_msg want = *m;
    /* The encoder sends version 0 as the current version. */
    if ((m->type == TP_MSG_HELLO || m->type == TP_MSG_WELCOME) && !want.version)
        want.version = TP_WIRE_VERSION;
    if (!same_msg(&want, &d))
        die("the round trip changed the message", 0, NULL);
    tp_wire_msg_free(&d);
    tp_buf_free(&b);
}

static void one_payload(const uint8_t *p, size_t n)
{
    tp_msg m;
    char err[256] = "";
    size_t values = 0;
    int rc = tp_wire_check_values(p, n, &values, err, sizeof(err));
    if (rc && (!known_error(rc) || !err[0]))
        die("check failed without a known code and message", rc, err);

    err[0] = '\0';
    int rd = tp_wire_decode(p, n, &m, err, sizeof(err));
    if (rd && (!known_error(rd) || !err[0]))
        die("decode failed without a known code and message", rd, err);
    if (rc && !rd)
        die("decode accepted what check refused", rc, NULL);
    /* msgpack-c must accept everything the check passes. */
    if (!rc && rd == TP_ERR_MALFORMED && strncmp(err, "msgpack-c rejected", 18) == 0)
        die("the check passed a payload msgpack-c cannot parse", rd, err);

    size_t storesz = 2 * n + 64;
    char *store = malloc(storesz);
    tp_msg mr;
    int rr = tp_wire_decode_reply(p, n, &mr, store, storesz);
    if (rr && !known_error(rr))
        die("decode_reply failed with an unknown code", rr, NULL);
    if (!rd && !rr && mr.type != m.type)
        die("the two decoders disagree on the type", 0, NULL);
    if (!rd && reply_type(m.type) && rr)
        die("decode_reply refused a reply decode accepted", rr, NULL);
    if (rd && !rc && !rr && reply_type(mr.type))
        die("decode_reply accepted a reply decode refused", rd, err);
    free(store);

    if (!rd) {
        round_trip(&m);
        tp_wire_msg_free(&m);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    one_payload(data, size);

    size_t off = 0;
    while (off < size) {
        uint32_t plen;
        int r = tp_wire_frame(data + off, size - off, 0, &plen);
        if (r == -EAGAIN || r == TP_ERR_FRAME_TOO_LARGE)
            break;
        if (r)
            die("tp_wire_frame failed with an unknown code", r, NULL);
        /* A private copy of exactly the payload, so ASan catches any read past it. */
        uint8_t *p = malloc(plen ? plen : 1);
        memcpy(p, data + off + TP_WIRE_HEADER_SIZE, plen);
        one_payload(p, plen);
        free(p);
        off += TP_WIRE_HEADER_SIZE + plen;
    }
    return 0;
}
