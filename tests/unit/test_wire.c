/* Frame encoding and decoding: round trips of every message type, the golden
 * bytes of a HELLO, and hostile payloads (truncated, wrong types, missing and
 * duplicate fields, bad events, random bytes). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hex_fixture.h"
#include "tp_err.h"
#include "wire.h"

static const char TRACE[] = "0123456789abcdef0123456789abcdef";

static void put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* ---- Sample messages ------------------------------------------------------ */

static const char *const ARGV[] = {"app.py", "--port", "8000", "", NULL};
static const tp_wire_func FUNCS[] = {
    {0, "app", "main", "/srv/app.py", 10},
    {1, "app.db", "Store.load", NULL, 0},
    {TP_WIRE_MAX_FUNC_ID, "m", "<lambda>", "", -1},
};
/* CALL+args, CALL(gen), YIELD, RESUME, CAUGHT+2, UNWIND+2, THREAD+name, RETURN */
static uint8_t EV[8 * 16];
static uint8_t TX[256];
static size_t TX_LEN;

static void make_events(void)
{
    static const struct {
        uint8_t kind, flags;
        uint32_t arg;
    } r[8] = {{TP_EV_CALL, TP_EVF_TEXT, 0},
              {TP_EV_CALL, TP_EVF_GEN, 1},
              {TP_EV_YIELD, 0, 1},
              {TP_EV_RESUME, 0, 1},
              {TP_EV_CAUGHT, TP_EVF_TEXT, 0},
              {TP_EV_UNWIND, TP_EVF_TEXT, 0},
              {TP_EV_THREAD, TP_EVF_TEXT, 2},
              {TP_EV_RETURN, 0, 0}};
    static const char *const texts[] = {"uid=42",     "KeyError",     "'k'",
                                        "ValueError", "bad \xc3\xa9", "worker-1"};
    memset(EV, 0, sizeof(EV));
    for (int i = 0; i < 8; i++) {
        EV[i * 16] = r[i].kind;
        EV[i * 16 + 1] = r[i].flags;
        put_le32(EV + i * 16 + 4, r[i].arg);
        put_le32(EV + i * 16 + 8, 1000u * (uint32_t)i + 7);
        put_le32(EV + i * 16 + 12, i == 7 ? 1 : 0);
    }
    TX_LEN = 0;
    for (int i = 0; i < 6; i++) {
        size_t l = strlen(texts[i]);
        put_le32(TX + TX_LEN, (uint32_t)l);
        memcpy(TX + TX_LEN + 4, texts[i], l);
        TX_LEN += 4 + l;
    }
}

static const uint8_t BODY[] = {0x00, 0xff, '{', '}', 0x00};
static const char LINES[] = "[{\"call\":0,\"qualname\":\"f\",\"lines\":[{\"line\":2,\"source\":"
                            "\"x = '\\u00e9'\",\"hits\":1,\"values\":{}}]}]";
static const char SOURCE[] = "{\"max_function\":65536,\"max_trace\":1048576,\"left_out\":0,"
                             "\"functions\":[{\"module\":\"m\",\"qualname\":\"f\",\"file\":"
                             "\"/a.py\",\"line\":1,\"text\":\"def f():\\n    pass\\n\"}]}";

/* One fully populated message of kind i (0..NSAMPLES-1). */
#define NSAMPLES 13
static tp_msg sample(int i)
{
    make_events();
    switch (i) {
    case 0:
        return (tp_msg){.type = TP_MSG_HELLO,
                        .version = 1,
                        .caps = TP_CAP_ACK,
                        .pid = 31337,
                        .python = "3.12.1",
                        .hostname = "build-7",
                        .client = "tracepatch/2.0.0",
                        .argv = (const char **)ARGV,
                        .argc = 4};
    case 1:
        return (tp_msg){.type = TP_MSG_WELCOME,
                        .version = 1,
                        .caps = TP_CAP_ACK | TP_CAP_QUERY,
                        .client = "tphd/2.0.0",
                        .pid = -1};
    case 2:
        return (tp_msg){.type = TP_MSG_FUNCS, .funcs = (tp_wire_func *)FUNCS, .nfuncs = 3};
    case 3:
        return (tp_msg){.type = TP_MSG_BEGIN,
                        .trace = TRACE,
                        .label = "GET /users/42",
                        .wall_start_ns = 1700000000123456789LL,
                        .config_json = "{\"max_depth\":30}"};
    case 4:
        return (tp_msg){.type = TP_MSG_EVENTS,
                        .trace = TRACE,
                        .seq = UINT32_MAX,
                        .records = EV,
                        .nrecords = 8,
                        .text = TX,
                        .text_len = TX_LEN};
    case 5:
        return (tp_msg){.type = TP_MSG_END,
                        .trace = TRACE,
                        .end_ns = UINT64_MAX,
                        .call_count = 10000,
                        .limit_reason = "max_calls",
                        .dropped = 12,
                        .drop_reason = "daemon too slow"};
    case 6:
        return (tp_msg){
            .type = TP_MSG_ACK, .trace = TRACE, .url = "http://127.0.0.1:7777/t/0123?token=abc"};
    case 7:
        return (tp_msg){.type = TP_MSG_ERROR,
                        .code = TP_ERR_SEQUENCE,
                        .message = "batch 3 after 1",
                        .trace = TRACE};
    case 8:
        return (tp_msg){.type = TP_MSG_QUERY,
                        .id = 77,
                        .op = "import",
                        .args_json = "{\"label\":\"x\"}",
                        .body = BODY,
                        .body_len = sizeof(BODY),
                        .more = true};
    case 9:
        return (tp_msg){.type = TP_MSG_REPLY,
                        .id = 78,
                        .ok = true,
                        .content_type = "text/plain; charset=utf-8",
                        .body = BODY,
                        .body_len = sizeof(BODY),
                        .more = true};
    case 10:
        return (tp_msg){.type = TP_MSG_REPLY,
                        .id = 79,
                        .ok = false,
                        .code = TP_ERR_AMBIGUOUS,
                        .message = "0123 matches 2 traces"};
    case 11:
        return (tp_msg){.type = TP_MSG_LINES,
                        .trace = TRACE,
                        .lines_json = LINES,
                        .lines_len = sizeof(LINES) - 1};
    default:
        return (tp_msg){.type = TP_MSG_SOURCE,
                        .trace = TRACE,
                        .source_json = SOURCE,
                        .source_len = sizeof(SOURCE) - 1};
    }
}

static tp_buf encode(const tp_msg *m)
{
    tp_buf b = TP_BUF_INIT;
    int r = tp_wire_encode(m, &b);
    cr_assert_eq(r, 0, "encode type %d: %d", m->type, r);
    return b;
}

static const uint8_t *payload(const tp_buf *b)
{
    return (const uint8_t *)b->data + TP_WIRE_HEADER_SIZE;
}

static size_t payload_len(const tp_buf *b)
{
    return b->len - TP_WIRE_HEADER_SIZE;
}

static void assert_str(const char *got, const char *want, const char *name)
{
    if (!want) {
        cr_assert_null(got, "%s should be absent", name);
        return;
    }
    cr_assert_not_null(got, "%s missing", name);
    cr_assert_str_eq(got, want, "%s", name);
}

static void assert_same(const tp_msg *got, const tp_msg *want)
{
    cr_assert_eq(got->type, want->type);
    cr_assert_eq(got->version, want->version);
    cr_assert_eq(got->caps, want->caps);
    cr_assert_eq(got->pid, want->pid);
    assert_str(got->python, want->python, "python");
    assert_str(got->hostname, want->hostname, "hostname");
    assert_str(got->client, want->client, "client");
    cr_assert_eq(got->argc, want->argc);
    for (size_t i = 0; i < want->argc; i++)
        cr_assert_str_eq(got->argv[i], want->argv[i]);
    if (want->argc)
        cr_assert_null(got->argv[want->argc], "argv is NULL-terminated");
    cr_assert_eq(got->nfuncs, want->nfuncs);
    for (size_t i = 0; i < want->nfuncs; i++) {
        cr_assert_eq(got->funcs[i].id, want->funcs[i].id);
        cr_assert_str_eq(got->funcs[i].module, want->funcs[i].module);
        cr_assert_str_eq(got->funcs[i].qualname, want->funcs[i].qualname);
        cr_assert_str_eq(got->funcs[i].file, want->funcs[i].file ? want->funcs[i].file : "");
        cr_assert_eq(got->funcs[i].lineno, want->funcs[i].lineno);
    }
    assert_str(got->trace, want->trace, "trace");
    assert_str(got->label, want->label, "label");
    cr_assert_eq(got->wall_start_ns, want->wall_start_ns);
    assert_str(got->config_json, want->config_json, "config_json");
    cr_assert_eq(got->seq, want->seq);
    cr_assert_eq(got->nrecords, want->nrecords);
    if (want->nrecords)
        cr_assert_eq(memcmp(got->records, want->records, want->nrecords * 16), 0);
    cr_assert_eq(got->text_len, want->text_len);
    if (want->text_len)
        cr_assert_eq(memcmp(got->text, want->text, want->text_len), 0);
    cr_assert_eq(got->end_ns, want->end_ns);
    cr_assert_eq(got->call_count, want->call_count);
    cr_assert_eq(got->dropped, want->dropped);
    assert_str(got->limit_reason, want->limit_reason, "limit_reason");
    assert_str(got->drop_reason, want->drop_reason, "drop_reason");
    assert_str(got->url, want->url, "url");
    cr_assert_eq(got->code, want->code);
    cr_assert_eq(got->id, want->id);
    assert_str(got->op, want->op, "op");
    assert_str(got->args_json, want->args_json, "args_json");
    cr_assert_eq(got->ok, want->ok);
    assert_str(got->content_type, want->content_type, "content_type");
    cr_assert_eq(got->body_len, want->body_len);
    if (want->body_len)
        cr_assert_eq(memcmp(got->body, want->body, want->body_len), 0);
    cr_assert_eq(got->more, want->more);
    cr_assert_eq(got->lines_len, want->lines_len);
    if (want->lines_len)
        cr_assert_eq(memcmp(got->lines_json, want->lines_json, want->lines_len), 0);
    cr_assert_eq(got->source_len, want->source_len);
    if (want->source_len)
        cr_assert_eq(memcmp(got->source_json, want->source_json, want->source_len), 0);
}

/* ---- Round trips ------------------------------------------------------------ */

Test(wire, round_trip_every_message_type)
{
    for (int i = 0; i < NSAMPLES; i++) {
        tp_msg m = sample(i);
        tp_buf b = encode(&m);
        uint32_t plen = 0;
        cr_assert_eq(tp_wire_frame((uint8_t *)b.data, b.len, 0, &plen), 0);
        cr_assert_eq(plen, payload_len(&b));
        tp_msg d;
        char err[256] = "";
        cr_assert_eq(tp_wire_decode(payload(&b), plen, &d, err, sizeof(err)), 0, "type %d: %s",
                     m.type, err);
        if (m.type == TP_MSG_ERROR || (m.type == TP_MSG_REPLY && !m.ok))
            cr_assert_str_eq(err, "", "no message on success");
        assert_same(&d, &m);
        cr_assert_not_null(d.priv);
        tp_wire_msg_free(&d);
        cr_assert_null(d.priv);
        cr_assert_eq(d.type, 0);
        tp_buf_free(&b);
    }
}

Test(wire, round_trip_optional_fields_absent)
{
    tp_msg ms[] = {
        {.type = TP_MSG_HELLO, .pid = 1, .client = "tph/2.0.0"},
        {.type = TP_MSG_BEGIN, .trace = TRACE, .wall_start_ns = -5},
        {.type = TP_MSG_EVENTS, .trace = TRACE, .records = EV},
        {.type = TP_MSG_END, .trace = TRACE},
        {.type = TP_MSG_ACK, .trace = TRACE},
        {.type = TP_MSG_FUNCS},
        {.type = TP_MSG_QUERY, .op = "status"},
        {.type = TP_MSG_REPLY, .ok = true, .content_type = "application/json"},
    };
    for (size_t i = 0; i < sizeof(ms) / sizeof(ms[0]); i++) {
        tp_buf b = encode(&ms[i]);
        tp_msg d;
        char err[256];
        cr_assert_eq(tp_wire_decode(payload(&b), payload_len(&b), &d, err, sizeof(err)), 0, "%s",
                     err);
        if (ms[i].type == TP_MSG_HELLO)
            ms[i].version = TP_WIRE_VERSION; /* 0 encodes as the current version */
        if (ms[i].type == TP_MSG_EVENTS)
            ms[i].records = NULL;
        assert_same(&d, &ms[i]);
        if (ms[i].type == TP_MSG_EVENTS) {
            cr_assert_eq(d.nrecords, 0);
            cr_assert_null(d.text);
        }
        tp_wire_msg_free(&d);
        tp_buf_free(&b);
    }
}

Test(wire, decoded_message_outlives_the_payload)
{
    tp_msg m = sample(4);
    tp_buf b = encode(&m);
    tp_msg d;
    cr_assert_eq(tp_wire_decode(payload(&b), payload_len(&b), &d, NULL, 0), 0);
    memset(b.data, 0xee, b.len);
    tp_buf_free(&b);
    cr_assert_str_eq(d.trace, TRACE);
    cr_assert_eq(memcmp(d.records, EV, sizeof(EV)), 0);
    cr_assert_eq(memcmp(d.text, TX, TX_LEN), 0);
    tp_wire_msg_free(&d);
}

Test(wire, reply_decoder_agrees_with_the_full_decoder)
{
    for (int i = 0; i < NSAMPLES; i++) {
        tp_msg m = sample(i);
        tp_buf b = encode(&m);
        tp_msg d;
        char store[512];
        cr_assert_eq(tp_wire_decode_reply(payload(&b), payload_len(&b), &d, store, sizeof(store)),
                     0);
        cr_assert_eq(d.type, m.type);
        if (m.type == TP_MSG_WELCOME || m.type == TP_MSG_ACK || m.type == TP_MSG_ERROR) {
            cr_assert_eq(d.version, m.version);
            cr_assert_eq(d.caps, m.caps);
            assert_str(d.client, m.client, "client");
            assert_str(d.trace, m.trace, "trace");
            assert_str(d.url, m.url, "url");
            cr_assert_eq(d.code, m.code);
            assert_str(d.message, m.message, "message");
        } else {
            cr_assert_null(d.trace);
            cr_assert_null(d.client);
        }
        tp_buf_free(&b);
    }
}

/* ---- Exact bytes ------------------------------------------------------------ */

Test(wire, golden_hello_frame)
{
    uint8_t want[64];
    size_t n = hex("00 00 00 26 92 01 85 a5 6d 61 67 69 63 a4 54 50 48 31 a1 76 01 "
                   "a4 63 61 70 73 01 a3 70 69 64 2a a6 63 6c 69 65 6e 74 a2 74 70",
                   want);
    tp_msg m = {.type = TP_MSG_HELLO, .version = 1, .caps = TP_CAP_ACK, .pid = 42, .client = "tp"};
    tp_buf b = encode(&m);
    cr_assert_eq(b.len, n);
    cr_assert_eq(memcmp(b.data, want, n), 0);
    tp_buf_free(&b);
}

Test(wire, encode_appends_after_existing_bytes)
{
    tp_buf b = TP_BUF_INIT;
    tp_buf_puts(&b, "xyz");
    tp_msg m = {.type = TP_MSG_ACK, .trace = TRACE};
    cr_assert_eq(tp_wire_encode(&m, &b), 0);
    cr_assert_eq(tp_wire_encode(&m, &b), 0);
    uint32_t n;
    cr_assert_eq(memcmp(b.data, "xyz", 3), 0);
    cr_assert_eq(tp_wire_frame((uint8_t *)b.data + 3, b.len - 3, 0, &n), 0);
    cr_assert_eq(b.len, 3 + 2 * (4 + n));
    cr_assert_eq(memcmp(b.data + 3, b.data + 3 + 4 + n, 4 + n), 0);
    tp_buf_free(&b);
}

Test(wire, decode_accepts_wide_integer_encodings)
{
    /* HELLO with v as uint32, caps as uint64, pid as int64 -1, and keys reordered. */
    uint8_t b[128];
    size_t n = hex("92 01 85 a3 70 69 64 d3 ff ff ff ff ff ff ff ff "
                   "a6 63 6c 69 65 6e 74 a0 a4 63 61 70 73 cf 00 00 00 00 00 00 00 02 "
                   "a1 76 ce 00 00 00 01 a5 6d 61 67 69 63 a4 54 50 48 31",
                   b);
    tp_msg d;
    char err[128];
    cr_assert_eq(tp_wire_decode(b, n, &d, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(d.version, 1);
    cr_assert_eq(d.caps, 2);
    cr_assert_eq(d.pid, -1);
    cr_assert_str_eq(d.client, "");
    tp_wire_msg_free(&d);
}

/* ---- Field surgery ------------------------------------------------------------ */

/* Rewrite an encoded payload (fixmap body): drop key, replace its value with
 * val_hex, or append key: val_hex when `append`. Returns a malloc'd payload. */
static uint8_t *edit(const uint8_t *p, size_t n, const char *key, const char *val_hex, bool append,
                     size_t *ret_len)
{
    uint8_t val[256];
    size_t vl = val_hex ? hex(val_hex, val) : 0;
    uint8_t *out = malloc(n + vl + 64), *o = out + 3;
    cr_assert(p[0] == 0x92 && p[1] < 0x80 && (p[2] & 0xf0) == 0x80);
    unsigned pairs = p[2] & 0x0f, kept = 0;
    tp_mp_cursor c = {p + 3, p + n};
    for (unsigned i = 0; i < pairs; i++) {
        const uint8_t *ks = c.p;
        tp_mp_item k;
        cr_assert_eq(tp_mp_next(&c, &k), 0);
        const uint8_t *vs = c.p;
        cr_assert_eq(tp_mp_skip(&c, 8), 0);
        bool hit = !append && k.len == strlen(key) && memcmp(k.ptr, key, k.len) == 0;
        if (hit && !val_hex)
            continue;
        memcpy(o, ks, (size_t)(vs - ks));
        o += vs - ks;
        if (hit) {
            memcpy(o, val, vl);
            o += vl;
        } else {
            memcpy(o, vs, (size_t)(c.p - vs));
            o += c.p - vs;
        }
        kept++;
    }
    if (append) {
        size_t kl = strlen(key);
        *o++ = (uint8_t)(0xa0 | kl);
        memcpy(o, key, kl);
        o += kl;
        memcpy(o, val, vl);
        o += vl;
        kept++;
    }
    out[0] = 0x92;
    out[1] = p[1];
    out[2] = (uint8_t)(0x80 | kept);
    *ret_len = (size_t)(o - out);
    return out;
}

struct bad_case {
    int sample;
    const char *key;
    const char *val; /* NULL: remove the key */
    int code;
    const char *msg;
};

static const struct bad_case BAD[] = {
    /* HELLO */
    {0, "magic", "c3", TP_ERR_TYPE, "field 'magic': expected str"},
    {0, "magic", "a4 54 50 48 32", TP_ERR_VERSION, "field 'magic': expected \"TPH1\""},
    {0, "magic", NULL, TP_ERR_MISSING, "field 'magic': missing"},
    {0, "v", "a1 78", TP_ERR_TYPE, "field 'v': expected uint32"},
    {0, "v", "cf 00 00 00 01 00 00 00 00", TP_ERR_TYPE, "field 'v': expected uint32"},
    {0, "v", "ff", TP_ERR_TYPE, "field 'v': expected uint32"},
    {0, "v", NULL, TP_ERR_MISSING, "field 'v': missing"},
    {0, "v", "c0", TP_ERR_MISSING, "field 'v': missing"},
    {0, "caps", "a1 78", TP_ERR_TYPE, "field 'caps': expected uint32"},
    {0, "pid", "a1 78", TP_ERR_TYPE, "field 'pid': expected int64"},
    {0, "pid", "cf ff ff ff ff ff ff ff ff", TP_ERR_TYPE, "field 'pid': expected int64"},
    {0, "pid", NULL, TP_ERR_MISSING, "field 'pid': missing"},
    {0, "client", "01", TP_ERR_TYPE, "field 'client': expected str"},
    {0, "client", NULL, TP_ERR_MISSING, "field 'client': missing"},
    {0, "py", "c4 01 33", TP_ERR_TYPE, "field 'py': expected str"},
    {0, "host", "90", TP_ERR_TYPE, "field 'host': expected str"},
    {0, "host", "a3 61 00 62", TP_ERR_MALFORMED, "field 'host': str contains a NUL byte"},
    {0, "argv", "c3", TP_ERR_TYPE, "field 'argv': expected array"},
    {0, "argv", "92 a1 61 01", TP_ERR_TYPE, "field 'argv[1]': expected str"},
    /* WELCOME */
    {1, "v", "a1 31", TP_ERR_TYPE, "field 'v': expected uint32"},
    {1, "client", NULL, TP_ERR_MISSING, "field 'client': missing"},
    {1, "caps", "ff", TP_ERR_TYPE, "field 'caps': expected uint32"},
    {1, "pid", "ca 3f 80 00 00", TP_ERR_TYPE, "field 'pid': expected int64"},
    /* FUNCS */
    {2, "f", "c3", TP_ERR_TYPE, "field 'f': expected array"},
    {2, "f", NULL, TP_ERR_MISSING, "field 'f': missing"},
    {2, "f", "91 c3", TP_ERR_TYPE, "field 'f[0]': expected array"},
    {2, "f", "91 94 00 a1 6d a1 71 c0", TP_ERR_MISSING,
     "field 'f[0]': expected [id, module, qualname, file, line], got 4 elements"},
    {2, "f", "92 95 00 a1 6d a1 71 c0 00 95 a1 78 a1 6d a1 71 c0 00", TP_ERR_TYPE,
     "field 'f[1].id': expected uint"},
    {2, "f", "91 95 ce 01 00 00 00 a1 6d a1 71 c0 00", TP_ERR_LIMIT,
     "field 'f[0].id': 16777216 exceeds 16777215"},
    {2, "f", "91 95 00 01 a1 71 c0 00", TP_ERR_TYPE, "field 'f[0].module': expected str"},
    {2, "f", "91 95 00 a1 6d c0 c0 00", TP_ERR_TYPE, "field 'f[0].qualname': expected str"},
    {2, "f", "91 95 00 a1 6d a1 71 01 00", TP_ERR_TYPE, "field 'f[0].file': expected str"},
    {2, "f", "91 95 00 a1 6d a1 71 c0 a1 78", TP_ERR_TYPE, "field 'f[0].line': expected int32"},
    {2, "f", "91 95 00 a1 6d a1 71 c0 ce 80 00 00 00", TP_ERR_TYPE,
     "field 'f[0].line': expected int32"},
    /* BEGIN */
    {3, "trace", "01", TP_ERR_TYPE, "field 'trace': expected str"},
    {3, "trace", "a3 61 62 63", TP_ERR_MALFORMED,
     "field 'trace': expected 32 lowercase hex characters"},
    {3, "trace", NULL, TP_ERR_MISSING, "field 'trace': missing"},
    {3, "label", "01", TP_ERR_TYPE, "field 'label': expected str"},
    {3, "t0", "a1 78", TP_ERR_TYPE, "field 't0': expected int64"},
    {3, "t0", NULL, TP_ERR_MISSING, "field 't0': missing"},
    {3, "config", "80", TP_ERR_TYPE, "field 'config': expected str"},
    /* EVENTS */
    {4, "seq", "a1 78", TP_ERR_TYPE, "field 'seq': expected uint32"},
    {4, "seq", "cf 00 00 00 01 00 00 00 00", TP_ERR_TYPE, "field 'seq': expected uint32"},
    {4, "seq", NULL, TP_ERR_MISSING, "field 'seq': missing"},
    {4, "ev", "a1 78", TP_ERR_TYPE, "field 'ev': expected bin"},
    {4, "ev", NULL, TP_ERR_MISSING, "field 'ev': missing"},
    {4, "tx", "01", TP_ERR_TYPE, "field 'tx': expected bin"},
    {4, "trace", "a0", TP_ERR_MALFORMED, "field 'trace': expected 32 lowercase hex characters"},
    /* END */
    {5, "end", "a1 78", TP_ERR_TYPE, "field 'end': expected uint64"},
    {5, "end", "ff", TP_ERR_TYPE, "field 'end': expected uint64"},
    {5, "end", NULL, TP_ERR_MISSING, "field 'end': missing"},
    {5, "calls", "c2", TP_ERR_TYPE, "field 'calls': expected uint64"},
    {5, "calls", NULL, TP_ERR_MISSING, "field 'calls': missing"},
    {5, "limit", "01", TP_ERR_TYPE, "field 'limit': expected str"},
    {5, "dropped", "a1 78", TP_ERR_TYPE, "field 'dropped': expected uint64"},
    {5, "drop", "01", TP_ERR_TYPE, "field 'drop': expected str"},
    /* ACK */
    {6, "trace", NULL, TP_ERR_MISSING, "field 'trace': missing"},
    {6, "url", "01", TP_ERR_TYPE, "field 'url': expected str"},
    /* ERROR */
    {7, "code", "a1 78", TP_ERR_TYPE, "field 'code': expected int32"},
    {7, "code", "d3 ff ff ff ff 00 00 00 00", TP_ERR_TYPE, "field 'code': expected int32"},
    {7, "code", NULL, TP_ERR_MISSING, "field 'code': missing"},
    {7, "msg", "01", TP_ERR_TYPE, "field 'msg': expected str"},
    {7, "msg", NULL, TP_ERR_MISSING, "field 'msg': missing"},
    {7, "trace", "a2 41 42", TP_ERR_MALFORMED,
     "field 'trace': expected 32 lowercase hex characters"},
    /* QUERY */
    {8, "id", "a1 78", TP_ERR_TYPE, "field 'id': expected uint32"},
    {8, "id", NULL, TP_ERR_MISSING, "field 'id': missing"},
    {8, "op", "01", TP_ERR_TYPE, "field 'op': expected str"},
    {8, "op", NULL, TP_ERR_MISSING, "field 'op': missing"},
    {8, "args", "81 a1 61 01", TP_ERR_TYPE, "field 'args': expected str"},
    {8, "body", "a1 78", TP_ERR_TYPE, "field 'body': expected bin"},
    {8, "more", "01", TP_ERR_TYPE, "field 'more': expected bool"},
    /* REPLY */
    {9, "id", "c3", TP_ERR_TYPE, "field 'id': expected uint32"},
    {9, "ok", "01", TP_ERR_TYPE, "field 'ok': expected bool"},
    {9, "ok", NULL, TP_ERR_MISSING, "field 'ok': missing"},
    {9, "ct", "01", TP_ERR_TYPE, "field 'ct': expected str"},
    {9, "ct", NULL, TP_ERR_MISSING, "field 'ct': missing (required when ok)"},
    {9, "body", "a1 78", TP_ERR_TYPE, "field 'body': expected bin"},
    {10, "code", NULL, TP_ERR_MISSING, "field 'code': missing (required when not ok)"},
    {10, "code", "c3", TP_ERR_TYPE, "field 'code': expected int32"},
    {10, "msg", "c3", TP_ERR_TYPE, "field 'msg': expected str"},
    /* LINES */
    {11, "trace", NULL, TP_ERR_MISSING, "field 'trace': missing"},
    {11, "trace", "a4 61 62 63 64", TP_ERR_MALFORMED,
     "field 'trace': expected 32 lowercase hex characters"},
    {11, "json", NULL, TP_ERR_MISSING, "field 'json': missing"},
    {11, "json", "a2 5b 5d", TP_ERR_TYPE, "field 'json': expected bin"},
    {11, "json", "c4 00", TP_ERR_MALFORMED, "field 'json': empty"},
    /* SOURCE */
    {12, "trace", NULL, TP_ERR_MISSING, "field 'trace': missing"},
    {12, "trace", "a4 61 62 63 64", TP_ERR_MALFORMED,
     "field 'trace': expected 32 lowercase hex characters"},
    {12, "json", NULL, TP_ERR_MISSING, "field 'json': missing"},
    {12, "json", "a2 7b 7d", TP_ERR_TYPE, "field 'json': expected bin"},
    {12, "json", "c4 00", TP_ERR_MALFORMED, "field 'json': empty"},
};

Test(wire, decode_names_wrong_and_missing_fields)
{
    for (size_t i = 0; i < sizeof(BAD) / sizeof(BAD[0]); i++) {
        const struct bad_case *bc = &BAD[i];
        tp_msg m = sample(bc->sample);
        tp_buf b = encode(&m);
        size_t n;
        uint8_t *p = edit(payload(&b), payload_len(&b), bc->key, bc->val, false, &n);
        tp_msg d;
        memset(&d, 0x5a, sizeof(d));
        char err[256] = "";
        int r = tp_wire_decode(p, n, &d, err, sizeof(err));
        cr_assert_eq(r, bc->code, "case %zu (%s=%s): got %d %s", i, bc->key,
                     bc->val ? bc->val : "<removed>", r, err);
        cr_assert_str_eq(err, bc->msg, "case %zu", i);
        cr_assert_eq(d.type, 0x5a5a5a5a, "ret untouched on failure");
        free(p);
        tp_buf_free(&b);
    }
}

Test(wire, decode_ignores_unknown_keys_and_nil_optionals)
{
    tp_msg m = sample(3);
    tp_buf b = encode(&m);
    size_t n1, n2;
    uint8_t *p1 = edit(payload(&b), payload_len(&b), "zz", "82 a1 61 92 01 92 02 03 a1 62 c4 01 00",
                       true, &n1);
    uint8_t *p2 = edit(p1, n1, "label", "c0", false, &n2);
    tp_msg d;
    char err[256];
    cr_assert_eq(tp_wire_decode(p1, n1, &d, err, sizeof(err)), 0, "%s", err);
    assert_same(&d, &m);
    tp_wire_msg_free(&d);
    cr_assert_eq(tp_wire_decode(p2, n2, &d, err, sizeof(err)), 0, "%s", err);
    m.label = NULL;
    assert_same(&d, &m);
    tp_wire_msg_free(&d);
    free(p1);
    free(p2);
    tp_buf_free(&b);
}

Test(wire, reply_ignores_fields_of_the_other_outcome)
{
    /* {"id": 1, "ok": true, "ct": "x", "code": "junk", "msg": 5} and the failure twin. */
    uint8_t b[64];
    size_t n = hex("92 11 85 a2 69 64 01 a2 6f 6b c3 a2 63 74 a1 78 a4 63 6f 64 65 a1 6a "
                   "a3 6d 73 67 05",
                   b);
    tp_msg d;
    char err[128];
    cr_assert_eq(tp_wire_decode(b, n, &d, err, sizeof(err)), 0, "%s", err);
    cr_assert(d.ok);
    cr_assert_str_eq(d.content_type, "x");
    cr_assert_eq(d.code, 0);
    cr_assert_null(d.message);
    tp_wire_msg_free(&d);
    n = hex("92 11 86 a2 69 64 01 a2 6f 6b c2 a2 63 74 01 a4 62 6f 64 79 c4 01 00 "
            "a4 63 6f 64 65 d1 f0 60 a3 6d 73 67 a1 65",
            b);
    cr_assert_eq(tp_wire_decode(b, n, &d, err, sizeof(err)), 0, "%s", err);
    cr_assert(!d.ok);
    cr_assert_null(d.content_type);
    cr_assert_null(d.body);
    cr_assert_eq(d.body_len, 0);
    cr_assert_eq(d.code, TP_ERR_BASE);
    cr_assert_str_eq(d.message, "e");
    tp_wire_msg_free(&d);
}

Test(wire, decode_refuses_duplicate_keys)
{
    tp_msg m = sample(6);
    tp_buf b = encode(&m);
    size_t n;
    uint8_t *p = edit(payload(&b), payload_len(&b), "trace", "01", true, &n);
    tp_msg d;
    char err[256];
    cr_assert_eq(tp_wire_decode(p, n, &d, err, sizeof(err)), TP_ERR_MALFORMED);
    cr_assert_str_eq(err, "field 'trace': appears twice");
    free(p);
    tp_buf_free(&b);
}

Test(wire, decode_leaves_unknown_types_to_the_receiver)
{
    uint8_t b[32];
    size_t n = hex("92 63 82 a1 78 91 01 a5 74 72 61 63 65 01", b);
    tp_msg d;
    memset(&d, 0x11, sizeof(d));
    cr_assert_eq(tp_wire_decode(b, n, &d, NULL, 0), 0);
    cr_assert_eq(d.type, 99);
    cr_assert_null(d.trace);
    cr_assert_null(d.priv);
    tp_wire_msg_free(&d);
}

/* ---- EVENTS content ----------------------------------------------------------- */

static int decode_events(const uint8_t *ev, size_t evlen, const uint8_t *tx, size_t txlen,
                         char *err, size_t errsz)
{
    /* Build the payload by hand so the encoder cannot refuse it. */
    size_t cap = 128 + evlen + txlen;
    uint8_t *p = malloc(cap), *o = p;
    memcpy(o, "\x92\x05\x84\xa5trace\xd9\x20", 11);
    o += 11;
    memcpy(o, TRACE, 32);
    o += 32;
    memcpy(o,
           "\xa3seq\x00\xa2"
           "ev\xc6",
           9);
    o += 9;
    o[0] = (uint8_t)(evlen >> 24), o[1] = (uint8_t)(evlen >> 16), o[2] = (uint8_t)(evlen >> 8),
    o[3] = (uint8_t)evlen;
    if (evlen)
        memcpy(o + 4, ev, evlen);
    o += 4 + evlen;
    memcpy(o, "\xa2tx\xc6", 4);
    o += 4;
    o[0] = (uint8_t)(txlen >> 24), o[1] = (uint8_t)(txlen >> 16), o[2] = (uint8_t)(txlen >> 8),
    o[3] = (uint8_t)txlen;
    if (txlen)
        memcpy(o + 4, tx, txlen);
    o += 4 + txlen;
    tp_msg d;
    int r = tp_wire_decode(p, (size_t)(o - p), &d, err, errsz);
    if (r == 0) {
        cr_assert_eq(d.nrecords, evlen / 16);
        cr_assert_eq(d.text_len, txlen);
        tp_wire_msg_free(&d);
    }
    free(p);
    return r;
}

Test(wire, decode_validates_event_records)
{
    char err[256];
    uint8_t ev[sizeof(EV) + 1];
    make_events();
    cr_assert_eq(decode_events(EV, sizeof(EV), TX, TX_LEN, err, sizeof(err)), 0, "%s", err);

    cr_assert_eq(decode_events(EV, 17, TX, TX_LEN, err, sizeof(err)), TP_ERR_MALFORMED);
    cr_assert_str_eq(err, "field 'ev': 17 bytes is not a whole number of 16-byte records");

    memcpy(ev, EV, sizeof(EV));
    ev[3 * 16] = TP_EV_MAX + 1; /* 10: 9 is MEMORY */
    cr_assert_eq(decode_events(ev, sizeof(EV), TX, TX_LEN, err, sizeof(err)), TP_ERR_MALFORMED);
    cr_assert_str_eq(err, "ev[3]: unknown event kind 10");

    /* MEMORY (9) is known, and its rsv carries the delta's high bits. */
    memcpy(ev, EV, sizeof(EV));
    ev[2 * 16] = TP_EV_MEMORY;
    ev[2 * 16 + 2] = 0xff;
    ev[2 * 16 + 3] = 0xff;
    cr_assert_eq(decode_events(ev, sizeof(EV), TX, TX_LEN, err, sizeof(err)), 0, "%s", err);

    memcpy(ev, EV, sizeof(EV));
    ev[7 * 16 + 1] = 0x10;
    cr_assert_eq(decode_events(ev, sizeof(EV), TX, TX_LEN, err, sizeof(err)), TP_ERR_MALFORMED);
    cr_assert_str_eq(err, "ev[7]: unknown flags 0x10");

    memcpy(ev, EV, sizeof(EV));
    ev[7 * 16 + 1] = TP_EVF_TEXT; /* RETURN claims text that is not there */
    cr_assert_eq(decode_events(ev, sizeof(EV), TX, TX_LEN, err, sizeof(err)), TP_ERR_MALFORMED);
    cr_assert(strncmp(err, "ev[7]: text entry 0 starts at tx offset", 39) == 0, "%s", err);

    cr_assert_eq(decode_events(EV, sizeof(EV), TX, TX_LEN - 1, err, sizeof(err)), TP_ERR_MALFORMED);
    cr_assert(strncmp(err, "ev[6]: text entry of 8 bytes", 28) == 0, "%s", err);

    uint8_t tx2[sizeof(TX) + 2];
    memcpy(tx2, TX, TX_LEN);
    tx2[TX_LEN] = tx2[TX_LEN + 1] = 'z';
    cr_assert_eq(decode_events(EV, sizeof(EV), tx2, TX_LEN + 2, err, sizeof(err)),
                 TP_ERR_MALFORMED);
    cr_assert_str_eq(err, "tx: 2 bytes after the last text entry are owned by no record");

    cr_assert_eq(decode_events(EV, 0, NULL, 0, err, sizeof(err)), 0, "an empty batch is fine");
}

/* ---- Truncation, random bytes, mutations ---------------------------------- */

static bool known_error(int r)
{
    return r == TP_ERR_TRUNCATED || r == TP_ERR_MALFORMED || r == TP_ERR_TYPE ||
           r == TP_ERR_MISSING || r == TP_ERR_LIMIT || r == TP_ERR_VERSION ||
           r == TP_ERR_FRAME_TOO_LARGE;
}

Test(wire, decode_truncated_frame_fails_at_every_offset)
{
    for (int i = 0; i < NSAMPLES; i++) {
        tp_msg m = sample(i);
        tp_buf b = encode(&m);
        size_t n = payload_len(&b);
        for (size_t k = 0; k < n; k++) {
            /* A fresh copy of exactly k bytes, so ASan sees any read past it. */
            uint8_t *p = malloc(k ? k : 1);
            memcpy(p, payload(&b), k);
            tp_msg d;
            char err[256] = "";
            char store[256];
            cr_assert_eq(tp_wire_decode(p, k, &d, err, sizeof(err)), TP_ERR_TRUNCATED,
                         "type %d cut at %zu: %s", m.type, k, err);
            cr_assert_neq(err[0], '\0');
            cr_assert_eq(tp_wire_decode_reply(p, k, &d, store, sizeof(store)), TP_ERR_TRUNCATED);
            uint32_t fl;
            cr_assert_eq(tp_wire_frame((uint8_t *)b.data, k + TP_WIRE_HEADER_SIZE, 0, &fl),
                         -EAGAIN);
            free(p);
        }
        tp_buf_free(&b);
    }
}

static uint64_t rng_state;

static uint64_t rng(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

static void decode_anything(const uint8_t *p, size_t n)
{
    tp_msg d;
    char err[256] = "";
    char store[128];
    int r = tp_wire_decode(p, n, &d, err, sizeof(err));
    if (r == 0) {
        cr_assert_eq(err[0], '\0');
        tp_wire_msg_free(&d);
    } else {
        cr_assert(known_error(r), "unexpected code %d", r);
        cr_assert_neq(err[0], '\0', "code %d without a message", r);
    }
    r = tp_wire_decode_reply(p, n, &d, store, sizeof(store));
    cr_assert(r == 0 || known_error(r), "reply: unexpected code %d", r);
}

Test(wire, decode_survives_random_bytes)
{
    uint8_t buf[96];
    rng_state = 0x9e3779b97f4a7c15ull;
    for (int it = 0; it < 60000; it++) {
        size_t n = rng() % sizeof(buf);
        for (size_t i = 0; i < n; i++)
            buf[i] = (uint8_t)rng();
        /* Half of the inputs start with a plausible header to get past it. */
        if (n >= 3 && (it & 1)) {
            buf[0] = 0x92;
            buf[1] = (uint8_t)(1 + rng() % 17);
            buf[2] = (uint8_t)(0x80 | (rng() % 6));
        }
        uint8_t *p = malloc(n ? n : 1);
        memcpy(p, buf, n);
        decode_anything(p, n);
        free(p);
    }
}

Test(wire, decode_survives_mutated_frames)
{
    rng_state = 12345;
    for (int i = 0; i < NSAMPLES; i++) {
        tp_msg m = sample(i);
        tp_buf b = encode(&m);
        size_t n = payload_len(&b);
        uint8_t *p = malloc(n);
        for (int it = 0; it < 3000; it++) {
            memcpy(p, payload(&b), n);
            int flips = 1 + (int)(rng() % 3);
            for (int f = 0; f < flips; f++)
                p[rng() % n] = (uint8_t)rng();
            decode_anything(p, n);
        }
        free(p);
        tp_buf_free(&b);
    }
}

/* ---- Encoder refusals ------------------------------------------------------- */

Test(wire, encode_refuses_what_receivers_would_reject)
{
    char *big = malloc(TP_WIRE_MAX_LINES + TP_WIRE_MAX_SOURCE + 2);
    memset(big, 'x', TP_WIRE_MAX_STRING + 1);
    big[TP_WIRE_MAX_STRING + 1] = '\0';
    tp_wire_func badf = {TP_WIRE_MAX_FUNC_ID + 1, "m", "q", NULL, 0};
    tp_wire_func nomod = {1, NULL, "q", NULL, 0};
    const char *argv_big[] = {big, NULL};
    struct {
        tp_msg m;
        int code;
    } cases[] = {
        {{.type = 0}, -EINVAL},
        {{.type = 10}, -EINVAL},
        {{.type = TP_MSG_HELLO, .pid = 1}, -EINVAL},
        {{.type = TP_MSG_HELLO, .client = "c", .hostname = big}, TP_ERR_LIMIT},
        {{.type = TP_MSG_HELLO, .client = "c", .argv = argv_big}, TP_ERR_LIMIT},
        {{.type = TP_MSG_HELLO, .client = "c", .argc = TP_WIRE_MAX_ITEMS + 1, .argv = argv_big},
         TP_ERR_LIMIT},
        {{.type = TP_MSG_WELCOME}, -EINVAL},
        {{.type = TP_MSG_FUNCS, .funcs = &badf, .nfuncs = 1}, TP_ERR_LIMIT},
        {{.type = TP_MSG_FUNCS, .funcs = &nomod, .nfuncs = 1}, -EINVAL},
        {{.type = TP_MSG_FUNCS, .nfuncs = 1}, -EINVAL},
        {{.type = TP_MSG_FUNCS, .funcs = &badf, .nfuncs = TP_WIRE_MAX_ITEMS + 1}, TP_ERR_LIMIT},
        {{.type = TP_MSG_BEGIN}, -EINVAL},
        {{.type = TP_MSG_BEGIN, .trace = "0123456789ABCDEF0123456789abcdef"}, -EINVAL},
        {{.type = TP_MSG_BEGIN, .trace = "0123456789abcdef0123456789abcdef0"}, -EINVAL},
        {{.type = TP_MSG_BEGIN, .trace = TRACE, .config_json = big}, TP_ERR_LIMIT},
        {{.type = TP_MSG_EVENTS, .trace = TRACE, .nrecords = 1}, -EINVAL},
        {{.type = TP_MSG_EVENTS,
          .trace = TRACE,
          .records = EV,
          .nrecords = TP_WIRE_MAX_FRAME / 16 + 1},
         TP_ERR_FRAME_TOO_LARGE},
        {{.type = TP_MSG_EVENTS,
          .trace = TRACE,
          .records = EV,
          .nrecords = 1 << 19,
          .text = EV,
          .text_len = (1u << 23) + 1},
         TP_ERR_FRAME_TOO_LARGE},
        {{.type = TP_MSG_END, .trace = "x"}, -EINVAL},
        {{.type = TP_MSG_LINES, .lines_json = "[]", .lines_len = 2}, -EINVAL},
        {{.type = TP_MSG_LINES, .trace = "0123", .lines_json = "[]", .lines_len = 2}, -EINVAL},
        {{.type = TP_MSG_LINES, .trace = TRACE}, -EINVAL},
        {{.type = TP_MSG_LINES,
          .trace = TRACE,
          .lines_json = big,
          .lines_len = TP_WIRE_MAX_LINES + 1},
         TP_ERR_LIMIT},
        {{.type = TP_MSG_SOURCE, .source_json = "{}", .source_len = 2}, -EINVAL},
        {{.type = TP_MSG_SOURCE, .trace = TRACE}, -EINVAL},
        {{.type = TP_MSG_SOURCE,
          .trace = TRACE,
          .source_json = big,
          .source_len = TP_WIRE_MAX_SOURCE + 1},
         TP_ERR_LIMIT},
        {{.type = TP_MSG_ACK}, -EINVAL},
        {{.type = TP_MSG_ERROR, .message = big}, TP_ERR_LIMIT},
        {{.type = TP_MSG_ERROR, .trace = "nope"}, -EINVAL},
        {{.type = TP_MSG_QUERY}, -EINVAL},
        {{.type = TP_MSG_QUERY, .op = "get", .body_len = 3}, -EINVAL},
        {{.type = TP_MSG_REPLY, .ok = true}, -EINVAL},
        {{.type = TP_MSG_REPLY,
          .ok = true,
          .content_type = "x",
          .body = big,
          .body_len = TP_WIRE_MAX_FRAME + 1},
         TP_ERR_FRAME_TOO_LARGE},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tp_buf b = TP_BUF_INIT;
        tp_buf_puts(&b, "keep");
        cr_assert_eq(tp_wire_encode(&cases[i].m, &b), cases[i].code, "case %zu", i);
        cr_assert_eq(b.len, 4, "case %zu: the buffer keeps its length", i);
        cr_assert_str_eq(b.data, "keep");
        cr_assert_eq(tp_buf_error(&b), 0);
        tp_buf_free(&b);
    }
    cr_assert_eq(tp_wire_encode(NULL, NULL), -EINVAL);
    free(big);
}

Test(wire, encode_fills_a_frame_to_the_limit_and_no_further)
{
    /* A REPLY whose payload is exactly TP_WIRE_MAX_FRAME bytes, then one more. */
    size_t probe = 100000;
    uint8_t *body = calloc(1, TP_WIRE_MAX_FRAME);
    tp_msg m = {
        .type = TP_MSG_REPLY, .ok = true, .content_type = "x", .body = body, .body_len = probe};
    tp_buf b = encode(&m);
    size_t overhead = payload_len(&b) - probe;
    tp_buf_free(&b);

    m.body_len = TP_WIRE_MAX_FRAME - overhead;
    b = encode(&m);
    cr_assert_eq(payload_len(&b), TP_WIRE_MAX_FRAME);
    tp_msg d;
    cr_assert_eq(tp_wire_decode(payload(&b), payload_len(&b), &d, NULL, 0), 0);
    cr_assert_eq(d.body_len, TP_WIRE_MAX_FRAME - overhead);
    tp_wire_msg_free(&d);
    tp_buf_free(&b);

    m.body_len++;
    cr_assert_eq(tp_wire_encode(&m, &b), TP_ERR_FRAME_TOO_LARGE);
    cr_assert_eq(b.len, 0);
    tp_buf_free(&b);
    free(body);
}

/* LINES of exactly TP_WIRE_MAX_LINES bytes travel (the frame has room to
 * spare); one byte more is refused by the encoder and, sent by hand, by the
 * decoder, before the receiver parses any JSON. */
Test(wire, lines_at_the_limit_and_one_byte_over)
{
    uint8_t *json = malloc(TP_WIRE_MAX_LINES + 64);
    memset(json, ' ', TP_WIRE_MAX_LINES + 1);
    json[0] = '[';
    json[TP_WIRE_MAX_LINES - 1] = ']';
    tp_msg m = {
        .type = TP_MSG_LINES, .trace = TRACE, .lines_json = json, .lines_len = TP_WIRE_MAX_LINES};
    tp_buf b = encode(&m);
    cr_assert_lt(payload_len(&b), TP_WIRE_MAX_FRAME);
    tp_msg d;
    char err[256] = "";
    cr_assert_eq(tp_wire_decode(payload(&b), payload_len(&b), &d, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(d.lines_len, TP_WIRE_MAX_LINES);
    cr_assert_str_eq(d.trace, TRACE);
    tp_wire_msg_free(&d);
    tp_buf_free(&b);

    m.lines_len++;
    cr_assert_eq(tp_wire_encode(&m, &b), TP_ERR_LIMIT);
    cr_assert_eq(b.len, 0);

    /* By hand: [9, {"trace": T, "json": bin32 of max + 1}]. */
    size_t n = TP_WIRE_MAX_LINES + 1, off = 0;
    uint8_t *p = malloc(64 + n);
    memcpy(p, "\x92\x09\x82\xa5trace\xd9\x20", 11);
    off = 11;
    memcpy(p + off, TRACE, 32);
    off += 32;
    memcpy(p + off, "\xa4json\xc6", 6);
    off += 6;
    p[off++] = (uint8_t)(n >> 24), p[off++] = (uint8_t)(n >> 16), p[off++] = (uint8_t)(n >> 8),
    p[off++] = (uint8_t)n;
    memcpy(p + off, json, n);
    off += n;
    cr_assert_eq(tp_wire_decode(p, off, &d, err, sizeof(err)), TP_ERR_LIMIT);
    cr_assert_str_eq(err, "field 'json': 8388609 bytes exceeds 8388608");
    tp_buf_free(&b);
    free(p);
    free(json);
}

/* SOURCE of exactly TP_WIRE_MAX_SOURCE bytes travels; one byte more is
 * refused by the encoder and, sent by hand, by the decoder. */
Test(wire, source_at_the_limit_and_one_byte_over)
{
    uint8_t *json = malloc(TP_WIRE_MAX_SOURCE + 64);
    memset(json, ' ', TP_WIRE_MAX_SOURCE + 1);
    json[0] = '{';
    json[TP_WIRE_MAX_SOURCE - 1] = '}';
    tp_msg m = {.type = TP_MSG_SOURCE,
                .trace = TRACE,
                .source_json = json,
                .source_len = TP_WIRE_MAX_SOURCE};
    tp_buf b = encode(&m);
    cr_assert_lt(payload_len(&b), TP_WIRE_MAX_FRAME);
    tp_msg d;
    char err[256] = "";
    cr_assert_eq(tp_wire_decode(payload(&b), payload_len(&b), &d, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(d.type, TP_MSG_SOURCE);
    cr_assert_eq(d.source_len, TP_WIRE_MAX_SOURCE);
    cr_assert_eq(d.lines_len, 0);
    tp_wire_msg_free(&d);
    tp_buf_free(&b);

    m.source_len++;
    cr_assert_eq(tp_wire_encode(&m, &b), TP_ERR_LIMIT);
    cr_assert_eq(b.len, 0);

    /* By hand: [11, {"trace": T, "json": bin32 of max + 1}]. */
    size_t n = TP_WIRE_MAX_SOURCE + 1, off = 0;
    uint8_t *p = malloc(64 + n);
    memcpy(p, "\x92\x0b\x82\xa5trace\xd9\x20", 11);
    off = 11;
    memcpy(p + off, TRACE, 32);
    off += 32;
    memcpy(p + off, "\xa4json\xc6", 6);
    off += 6;
    p[off++] = (uint8_t)(n >> 24), p[off++] = (uint8_t)(n >> 16), p[off++] = (uint8_t)(n >> 8),
    p[off++] = (uint8_t)n;
    memcpy(p + off, json, n);
    off += n;
    cr_assert_eq(tp_wire_decode(p, off, &d, err, sizeof(err)), TP_ERR_LIMIT);
    cr_assert_str_eq(err, "field 'json': 8388609 bytes exceeds 8388608");
    tp_buf_free(&b);
    free(p);
    free(json);
}

Test(wire, error_carries_code_name_and_default_message)
{
    tp_msg m = {.type = TP_MSG_ERROR, .code = TP_ERR_VERSION};
    tp_buf b = encode(&m);
    tp_msg d;
    cr_assert_eq(tp_wire_decode(payload(&b), payload_len(&b), &d, NULL, 0), 0);
    cr_assert_eq(d.code, TP_ERR_VERSION);
    cr_assert_str_eq(d.message, tp_strerror(TP_ERR_VERSION));
    tp_wire_msg_free(&d);
    /* The informational name sits between code and msg. */
    const char *name = "\xa4name\xa7VERSION";
    cr_assert_not_null(memmem(b.data, b.len, name, strlen(name)));
    tp_buf_free(&b);
}

Test(wire, errno_codes_are_named_by_their_errno_not_error)
{
    cr_assert_str_eq(tp_errname(-ETIMEDOUT), "ETIMEDOUT");
    cr_assert_str_eq(tp_errname(-ENOSPC), "ENOSPC");
    cr_assert_str_eq(tp_errname(-ESHUTDOWN), "ESHUTDOWN");
    cr_assert_str_eq(tp_errname(-EPIPE), "EPIPE");
    cr_assert_str_eq(tp_errname(TP_ERR_PERM), "PERM");
    cr_assert_str_eq(tp_errname(1), "ERROR");
}

/* ---- Interop with an independent encoder ----------------------------------- */

static uint8_t *slurp(const char *name, size_t *ret_len)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", TP_TEST_DATA, name);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    uint8_t *p = malloc(1 << 16);
    *ret_len = fread(p, 1, 1 << 16, f);
    fclose(f);
    return p;
}

Test(wire, decode_python_msgpack_payloads)
{
    size_t n;
    tp_msg d;
    char err[256];
    uint8_t *p = slurp("wire_py_hello.bin", &n);
    cr_assert_eq(tp_wire_decode(p, n, &d, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(d.type, TP_MSG_HELLO);
    cr_assert_eq(d.version, 1);
    cr_assert_eq(d.caps, 3);
    cr_assert_eq(d.pid, 123456);
    cr_assert_str_eq(d.python, "3.13.0");
    cr_assert_str_eq(d.client, "tracepatch/2.0.0");
    cr_assert_eq(strlen(d.hostname), 40);
    cr_assert_eq(d.argc, 3);
    cr_assert_str_eq(d.argv[0], "-m");
    cr_assert_str_eq(d.argv[1], "pytest");
    cr_assert_str_eq(d.argv[2], "-x");
    cr_assert_null(d.argv[3]);
    tp_wire_msg_free(&d);
    free(p);

    p = slurp("wire_py_events.bin", &n);
    cr_assert_eq(tp_wire_decode(p, n, &d, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(d.type, TP_MSG_EVENTS);
    cr_assert_str_eq(d.trace, "a1b2c3d4e5f60718293a4b5c6d7e8f90");
    cr_assert_eq(d.seq, 70000);
    cr_assert_eq(d.nrecords, 3);
    tp_event ev[3];
    memcpy(ev, d.records, sizeof(ev));
    cr_assert(ev[0].kind == TP_EV_CALL && ev[0].flags == TP_EVF_TEXT && ev[0].arg == 5 &&
              ev[0].t_ns == 100);
    cr_assert(ev[1].kind == TP_EV_CAUGHT && ev[1].flags == TP_EVF_TEXT && ev[1].t_ns == 250);
    cr_assert(ev[2].kind == TP_EV_RETURN && ev[2].flags == 0 && ev[2].t_ns == 1ull << 40);
    cr_assert_eq(d.text_len, 4 + 302 + 4 + 7 + 4 + 15);
    const uint8_t *t = d.text;
    cr_assert_eq(t[0] | t[1] << 8, 302);
    cr_assert_eq(memcmp(t + 4, "n=999", 5), 0);
    cr_assert_eq(memcmp(t + 4 + 302 + 4, "OSError", 7), 0);
    cr_assert_eq(memcmp(t + d.text_len - 15, "[Errno 2] caf\xc3\xa9", 15), 0);

    /* Python wrote the keys in our order with the same widths, so our
     * encoding of the decoded message is byte for byte the same payload. */
    tp_buf b = encode(&d);
    cr_assert_eq(payload_len(&b), n);
    cr_assert_eq(memcmp(payload(&b), p, n), 0);
    tp_buf_free(&b);
    tp_wire_msg_free(&d);
    free(p);
}

/* ---- STORED, and REPLY through the extension's decoder ---------------------- */

Test(wire, stored_round_trips_through_both_decoders)
{
    tp_msg m = {.type = TP_MSG_STORED, .trace = TRACE, .seq = 70000};
    tp_buf b = encode(&m);
    tp_msg d;
    char err[256], store[512];
    cr_assert_eq(tp_wire_decode(payload(&b), payload_len(&b), &d, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(d.type, TP_MSG_STORED);
    cr_assert_str_eq(d.trace, TRACE);
    cr_assert_eq(d.seq, 70000);
    tp_wire_msg_free(&d);
    cr_assert_eq(tp_wire_decode_reply(payload(&b), payload_len(&b), &d, store, sizeof(store)), 0);
    cr_assert_eq(d.type, TP_MSG_STORED);
    cr_assert_str_eq(d.trace, TRACE);
    cr_assert_eq(d.seq, 70000);
    tp_buf_free(&b);
    /* Both fields are required. */
    tp_msg no_seq = {.type = TP_MSG_STORED};
    cr_assert_eq(tp_wire_encode(&no_seq, &b), -EINVAL);
    tp_buf_free(&b);
}

Test(wire, golden_stored_frame)
{
    uint8_t want[64];
    size_t n = hex("00 00 00 30 92 0a 82 a5 74 72 61 63 65 d9 20"
                   " 30 31 32 33 34 35 36 37 38 39 61 62 63 64 65 66"
                   " 30 31 32 33 34 35 36 37 38 39 61 62 63 64 65 66"
                   " a3 73 65 71 07",
                   want);
    tp_msg m = {.type = TP_MSG_STORED, .trace = "0123456789abcdef0123456789abcdef", .seq = 7};
    tp_buf b = encode(&m);
    cr_assert_eq(b.len, n);
    cr_assert_eq(memcmp(b.data, want, n), 0);
    tp_buf_free(&b);
}

Test(wire, reply_decodes_without_msgpack_c)
{
    static const uint8_t body[] = {1, 2, 0, 3};
    tp_msg m = {.type = TP_MSG_REPLY,
                .id = 9,
                .ok = true,
                .content_type = "application/x",
                .body = body,
                .body_len = sizeof(body),
                .more = true};
    tp_buf b = encode(&m);
    tp_msg d;
    char store[512];
    cr_assert_eq(tp_wire_decode_reply(payload(&b), payload_len(&b), &d, store, sizeof(store)), 0);
    cr_assert_eq(d.type, TP_MSG_REPLY);
    cr_assert_eq(d.id, 9);
    cr_assert(d.ok && d.more);
    cr_assert_str_eq(d.content_type, "application/x");
    cr_assert_eq(d.body_len, sizeof(body));
    cr_assert_eq(memcmp(d.body, body, sizeof(body)), 0);
    tp_buf_free(&b);

    tp_msg bad = {.type = TP_MSG_REPLY, .id = 3, .code = TP_ERR_NOT_FOUND, .message = "no such"};
    b = encode(&bad);
    cr_assert_eq(tp_wire_decode_reply(payload(&b), payload_len(&b), &d, store, sizeof(store)), 0);
    cr_assert(!d.ok);
    cr_assert_eq(d.code, TP_ERR_NOT_FOUND);
    cr_assert_str_eq(d.message, "no such");
    cr_assert_null(d.body);
    tp_buf_free(&b);
}
