/* Frame encoding with msgpack-c's packer. Every msgpack_pack_* function used
 * here is a static inline in msgpack/pack_template.h, so tpproto (and the
 * extension that links it) needs msgpack-c's headers only, never
 * libmsgpackc. Do not call msgpack_pack_object() or anything else that lives
 * in the library; `nm libtpproto.a | grep ' U msgpack'` must stay empty.
 *
 * Fields are validated before anything is written, so what this encoder
 * produces always passes tp_wire_check() and tp_wire_decode(). Keys are
 * written in the order PROTOCOL.md lists them and optional fields at their
 * default are omitted, which makes the bytes of a message deterministic. */
#include <msgpack/pack.h>
#include <string.h>

#include "tp_err.h"
#include "wire.h"

typedef struct enc {
    msgpack_packer pk;
    tp_buf *out;
} enc;

static int buf_write(void *data, const char *p, size_t n)
{
    return tp_buf_append(data, p, n) ? -1 : 0;
}

static void put_key(enc *e, const char *k)
{
    size_t n = strlen(k);
    msgpack_pack_str(&e->pk, n);
    msgpack_pack_str_body(&e->pk, k, n);
}

static void put_str(enc *e, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(&e->pk, n);
    msgpack_pack_str_body(&e->pk, s, n);
}

static void kv_str(enc *e, const char *k, const char *s)
{
    put_key(e, k);
    put_str(e, s);
}

static void kv_u64(enc *e, const char *k, uint64_t v)
{
    put_key(e, k);
    msgpack_pack_uint64(&e->pk, v);
}

static void kv_i64(enc *e, const char *k, int64_t v)
{
    put_key(e, k);
    msgpack_pack_int64(&e->pk, v);
}

static void kv_bin(enc *e, const char *k, const void *p, size_t n)
{
    put_key(e, k);
    msgpack_pack_bin(&e->pk, n);
    if (n)
        msgpack_pack_bin_body(&e->pk, p, n);
}

static void kv_bool(enc *e, const char *k, bool v)
{
    put_key(e, k);
    if (v)
        msgpack_pack_true(&e->pk);
    else
        msgpack_pack_false(&e->pk);
}

/* A string field: required ones must be set, none may exceed the limit. */
static int check_str(const char *s, bool required)
{
    if (!s)
        return required ? -EINVAL : 0;
    return strnlen(s, TP_WIRE_MAX_STRING + 1) > TP_WIRE_MAX_STRING ? TP_ERR_LIMIT : 0;
}

static int check_trace(const char *s, bool required)
{
    if (!s)
        return required ? -EINVAL : 0;
    return tp_wire_trace_id_valid(s, strnlen(s, 33)) ? 0 : -EINVAL;
}

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        int r_ = (x);                                                                              \
        if (r_)                                                                                    \
            return r_;                                                                             \
    } while (0)

static size_t argv_count(const tp_msg *m)
{
    size_t n = m->argc;
    if (n == 0 && m->argv)
        while (m->argv[n])
            n++;
    return n;
}

static int enc_hello(enc *e, const tp_msg *m)
{
    size_t argc = argv_count(m);
    CHECK(check_str(m->client, true));
    CHECK(check_str(m->python, false));
    CHECK(check_str(m->hostname, false));
    CHECK(check_str(m->platform, false));
    CHECK(check_str(m->cwd, false));
    if (argc > TP_WIRE_MAX_ITEMS)
        return TP_ERR_LIMIT;
    for (size_t i = 0; i < argc; i++)
        CHECK(check_str(m->argv[i], true));

    msgpack_pack_map(&e->pk, 5 + !!m->python + !!m->hostname + !!m->platform + !!m->cwd + !!argc);
    kv_str(e, "magic", TP_WIRE_MAGIC);
    kv_u64(e, "v", m->version ? m->version : TP_WIRE_VERSION);
    kv_u64(e, "caps", m->caps);
    kv_i64(e, "pid", m->pid);
    kv_str(e, "client", m->client);
    if (m->python)
        kv_str(e, "py", m->python);
    if (m->hostname)
        kv_str(e, "host", m->hostname);
    if (m->platform)
        kv_str(e, "platform", m->platform);
    if (m->cwd)
        kv_str(e, "cwd", m->cwd);
    if (argc) {
        put_key(e, "argv");
        msgpack_pack_array(&e->pk, argc);
        for (size_t i = 0; i < argc; i++)
            put_str(e, m->argv[i]);
    }
    return 0;
}

static int enc_welcome(enc *e, const tp_msg *m)
{
    CHECK(check_str(m->client, true));
    msgpack_pack_map(&e->pk, 4);
    kv_u64(e, "v", m->version ? m->version : TP_WIRE_VERSION);
    kv_u64(e, "caps", m->caps);
    kv_str(e, "client", m->client);
    kv_i64(e, "pid", m->pid);
    return 0;
}

static int enc_funcs(enc *e, const tp_msg *m)
{
    if (m->nfuncs > TP_WIRE_MAX_ITEMS)
        return TP_ERR_LIMIT;
    if (m->nfuncs && !m->funcs)
        return -EINVAL;
    for (size_t i = 0; i < m->nfuncs; i++) {
        const tp_wire_func *f = &m->funcs[i];
        if (f->id > TP_WIRE_MAX_FUNC_ID)
            return TP_ERR_LIMIT;
        CHECK(check_str(f->module, true));
        CHECK(check_str(f->qualname, true));
        CHECK(check_str(f->file, false));
    }
    msgpack_pack_map(&e->pk, 1);
    put_key(e, "f");
    msgpack_pack_array(&e->pk, m->nfuncs);
    for (size_t i = 0; i < m->nfuncs; i++) {
        const tp_wire_func *f = &m->funcs[i];
        msgpack_pack_array(&e->pk, 5);
        msgpack_pack_uint32(&e->pk, f->id);
        put_str(e, f->module);
        put_str(e, f->qualname);
        if (f->file)
            put_str(e, f->file);
        else
            msgpack_pack_nil(&e->pk);
        msgpack_pack_int32(&e->pk, f->lineno);
    }
    return 0;
}

static int enc_begin(enc *e, const tp_msg *m)
{
    CHECK(check_trace(m->trace, true));
    CHECK(check_str(m->label, false));
    CHECK(check_str(m->config_json, false));
    msgpack_pack_map(&e->pk, 2 + !!m->label + !!m->config_json);
    kv_str(e, "trace", m->trace);
    if (m->label)
        kv_str(e, "label", m->label);
    kv_i64(e, "t0", m->wall_start_ns);
    if (m->config_json)
        kv_str(e, "config", m->config_json);
    return 0;
}

static int enc_events(enc *e, const tp_msg *m)
{
    CHECK(check_trace(m->trace, true));
    if ((m->nrecords && !m->records) || (m->text_len && !m->text))
        return -EINVAL;
    /* Refuse before copying megabytes that could never be sent. */
    if (m->nrecords > TP_WIRE_MAX_FRAME / sizeof(tp_event) || m->text_len > TP_WIRE_MAX_FRAME ||
        m->nrecords * sizeof(tp_event) + m->text_len > TP_WIRE_MAX_FRAME)
        return TP_ERR_FRAME_TOO_LARGE;
    msgpack_pack_map(&e->pk, 3 + !!m->text_len);
    kv_str(e, "trace", m->trace);
    kv_u64(e, "seq", m->seq);
    kv_bin(e, "ev", m->records, m->nrecords * sizeof(tp_event));
    if (m->text_len)
        kv_bin(e, "tx", m->text, m->text_len);
    return 0;
}

static int enc_end(enc *e, const tp_msg *m)
{
    CHECK(check_trace(m->trace, true));
    CHECK(check_str(m->limit_reason, false));
    CHECK(check_str(m->drop_reason, false));
    msgpack_pack_map(&e->pk, 3 + !!m->limit_reason + !!m->dropped + !!m->drop_reason);
    kv_str(e, "trace", m->trace);
    kv_u64(e, "end", m->end_ns);
    kv_u64(e, "calls", m->call_count);
    if (m->limit_reason)
        kv_str(e, "limit", m->limit_reason);
    if (m->dropped)
        kv_u64(e, "dropped", m->dropped);
    if (m->drop_reason)
        kv_str(e, "drop", m->drop_reason);
    return 0;
}

static int enc_lines(enc *e, const tp_msg *m)
{
    CHECK(check_trace(m->trace, true));
    if (!m->lines_json || m->lines_len == 0)
        return -EINVAL;
    if (m->lines_len > TP_WIRE_MAX_LINES)
        return TP_ERR_LIMIT;
    msgpack_pack_map(&e->pk, 2);
    kv_str(e, "trace", m->trace);
    kv_bin(e, "json", m->lines_json, m->lines_len);
    return 0;
}

static int enc_source(enc *e, const tp_msg *m)
{
    CHECK(check_trace(m->trace, true));
    if (!m->source_json || m->source_len == 0)
        return -EINVAL;
    if (m->source_len > TP_WIRE_MAX_SOURCE)
        return TP_ERR_LIMIT;
    msgpack_pack_map(&e->pk, 2);
    kv_str(e, "trace", m->trace);
    kv_bin(e, "json", m->source_json, m->source_len);
    return 0;
}

static int enc_ack(enc *e, const tp_msg *m)
{
    CHECK(check_trace(m->trace, true));
    CHECK(check_str(m->url, false));
    msgpack_pack_map(&e->pk, 1 + !!m->url);
    kv_str(e, "trace", m->trace);
    if (m->url)
        kv_str(e, "url", m->url);
    return 0;
}

static int enc_stored(enc *e, const tp_msg *m)
{
    CHECK(check_trace(m->trace, true));
    msgpack_pack_map(&e->pk, 2);
    kv_str(e, "trace", m->trace);
    kv_u64(e, "seq", m->seq);
    return 0;
}

/* The code/name/msg triple of ERROR and failed REPLYs; msg defaults to the
 * code's description. */
static void put_error(enc *e, const tp_msg *m)
{
    kv_i64(e, "code", m->code);
    kv_str(e, "name", tp_errname(m->code));
    kv_str(e, "msg", m->message ? m->message : tp_strerror(m->code));
}

static int enc_error(enc *e, const tp_msg *m)
{
    CHECK(check_str(m->message, false));
    CHECK(check_trace(m->trace, false));
    msgpack_pack_map(&e->pk, 3 + !!m->trace);
    put_error(e, m);
    if (m->trace)
        kv_str(e, "trace", m->trace);
    return 0;
}

static int enc_query(enc *e, const tp_msg *m)
{
    CHECK(check_str(m->op, true));
    CHECK(check_str(m->args_json, false));
    if (m->body_len && !m->body)
        return -EINVAL;
    if (m->body_len > TP_WIRE_MAX_FRAME)
        return TP_ERR_FRAME_TOO_LARGE;
    msgpack_pack_map(&e->pk, 2 + !!m->args_json + !!m->body_len + m->more);
    kv_u64(e, "id", m->id);
    kv_str(e, "op", m->op);
    if (m->args_json)
        kv_str(e, "args", m->args_json);
    if (m->body_len)
        kv_bin(e, "body", m->body, m->body_len);
    if (m->more)
        kv_bool(e, "more", true);
    return 0;
}

static int enc_reply(enc *e, const tp_msg *m)
{
    if (!m->ok) {
        CHECK(check_str(m->message, false));
        msgpack_pack_map(&e->pk, 5);
        kv_u64(e, "id", m->id);
        kv_bool(e, "ok", false);
        put_error(e, m);
        return 0;
    }
    CHECK(check_str(m->content_type, true));
    if (m->body_len && !m->body)
        return -EINVAL;
    if (m->body_len > TP_WIRE_MAX_FRAME)
        return TP_ERR_FRAME_TOO_LARGE;
    msgpack_pack_map(&e->pk, 3 + !!m->body_len + m->more);
    kv_u64(e, "id", m->id);
    kv_bool(e, "ok", true);
    kv_str(e, "ct", m->content_type);
    if (m->body_len)
        kv_bin(e, "body", m->body, m->body_len);
    if (m->more)
        kv_bool(e, "more", true);
    return 0;
}

static int enc_body(enc *e, const tp_msg *m)
{
    switch (m->type) {
    case TP_MSG_HELLO:
        return enc_hello(e, m);
    case TP_MSG_WELCOME:
        return enc_welcome(e, m);
    case TP_MSG_FUNCS:
        return enc_funcs(e, m);
    case TP_MSG_BEGIN:
        return enc_begin(e, m);
    case TP_MSG_EVENTS:
        return enc_events(e, m);
    case TP_MSG_END:
        return enc_end(e, m);
    case TP_MSG_LINES:
        return enc_lines(e, m);
    case TP_MSG_SOURCE:
        return enc_source(e, m);
    case TP_MSG_ACK:
        return enc_ack(e, m);
    case TP_MSG_STORED:
        return enc_stored(e, m);
    case TP_MSG_ERROR:
        return enc_error(e, m);
    case TP_MSG_QUERY:
        return enc_query(e, m);
    case TP_MSG_REPLY:
        return enc_reply(e, m);
    default:
        return -EINVAL;
    }
}

int tp_wire_encode(const tp_msg *m, tp_buf *out)
{
    static const uint8_t zero[TP_WIRE_HEADER_SIZE];
    enc e;
    int r;

    if (!m || !out)
        return -EINVAL;
    if ((r = tp_buf_error(out)))
        return r;
    size_t start = out->len;
    if ((r = tp_buf_append(out, zero, sizeof(zero))))
        return r;
    e.out = out;
    msgpack_packer_init(&e.pk, out, buf_write);
    msgpack_pack_array(&e.pk, 2);
    msgpack_pack_uint8(&e.pk, (uint8_t)m->type);
    if ((r = enc_body(&e, m)))
        goto fail;
    if ((r = tp_buf_error(out)))
        goto fail;
    size_t plen = out->len - start - TP_WIRE_HEADER_SIZE;
    if (plen > TP_WIRE_MAX_FRAME) {
        r = TP_ERR_FRAME_TOO_LARGE;
        goto fail;
    }
    uint8_t *h = (uint8_t *)out->data + start;
    h[0] = (uint8_t)(plen >> 24);
    h[1] = (uint8_t)(plen >> 16);
    h[2] = (uint8_t)(plen >> 8);
    h[3] = (uint8_t)plen;
    return 0;

fail:
    /* Drop the partial frame so a sender never ships half a message. tp_buf
     * has no truncate call; shrinking len within the same allocation is the
     * one write this module makes to its fields. An allocation failure stays
     * sticky in out, as tp_buf promises. */
    if (out->data && start <= out->len) {
        out->len = start;
        out->data[start] = '\0';
    }
    return r;
}

int tp_wire_frame(const uint8_t *buf, size_t len, uint32_t max_frame, uint32_t *ret_payload_len)
{
    if (!buf && len)
        return -EINVAL;
    if (len < TP_WIRE_HEADER_SIZE)
        return -EAGAIN;
    uint32_t n = (uint32_t)buf[0] << 24 | (uint32_t)buf[1] << 16 | (uint32_t)buf[2] << 8 | buf[3];
    if (n > (max_frame ? max_frame : TP_WIRE_MAX_FRAME))
        return TP_ERR_FRAME_TOO_LARGE;
    if (len - TP_WIRE_HEADER_SIZE < n)
        return -EAGAIN;
    if (ret_payload_len)
        *ret_payload_len = n;
    return 0;
}
