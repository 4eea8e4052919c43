/* tph's wire client; see tph_client.h. */
#include "tph_client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "client.h"
#include "tp_err.h"
#include "tp_version.h"
#include "wire.h"

/* How often a connect is tried again while the daemon's backlog is full. */
#define BACKLOG_RETRY_MS 10

struct tph_client {
    tp_client conn;
    int64_t timeout_ns; /* the longest silence of any step */
    double timeout_s;
    uint32_t next_id;
};

static int timeout_err(const tph_client *c, char *err, size_t errsz)
{
    return tp_err_set(err, errsz, -ETIMEDOUT, "no answer within %g s", c->timeout_s);
}

/* Words an error of tp_client_write() or tp_client_read_frame(). */
static int io_err(const tph_client *c, int r, const char *what, char *err, size_t errsz)
{
    if (r == -ETIMEDOUT)
        return timeout_err(c, err, errsz);
    if (r == -EPIPE || r == -ECONNRESET)
        return tp_err_set(err, errsz, -EPIPE, "tphd closed the connection");
    if (r == TP_ERR_FRAME_TOO_LARGE || r == TP_ERR_MALFORMED)
        return tp_err_set(err, errsz, r, "bad frame from tphd: %s", tp_strerror(r));
    if (r <= TP_ERR_BASE) /* a reply that does not decode */
        return tp_err_set(err, errsz, r, "bad message from tphd: %s", tp_strerror(r));
    return tp_err_set(err, errsz, r, "cannot %s tphd: %s", what, strerror(-r));
}

/* Read and decode the next whole frame. */
static int read_msg(tph_client *c, tp_msg *ret, char *err, size_t errsz)
{
    const uint8_t *p;
    uint32_t plen;
    char derr[256] = "";
    int r;

    r = tp_client_read_frame(&c->conn, TP_CLIENT_NEVER, c->timeout_ns, &p, &plen);
    if (r < 0)
        return io_err(c, r, "read from", err, errsz);
    r = tp_wire_decode(p, plen, ret, derr, sizeof derr);
    if (r < 0)
        return tp_err_set(err, errsz, r, "bad message from tphd: %s", derr);
    return 0;
}

static int send_msg(tph_client *c, const tp_msg *m, char *err, size_t errsz)
{
    tp_buf out = TP_BUF_INIT;
    int r;

    r = tp_wire_encode(m, &out);
    if (r < 0) {
        r = tp_err_set(err, errsz, r, "cannot encode the request: %s", tp_strerror(r));
        goto done;
    }
    r = tp_client_write(&c->conn, out.data, out.len, c->timeout_ns);
    if (r < 0)
        r = io_err(c, r, "send to", err, errsz);
done:
    tp_buf_free(&out);
    return r;
}

/* An ERROR message where another was expected becomes the call's error. */
static int peer_error(const tp_msg *m, char *err, size_t errsz)
{
    int code = m->code < 0 ? m->code : TP_ERR_SEQUENCE;

    return tp_err_set(err, errsz, code, "tphd: %s", m->message ? m->message : tp_strerror(code));
}

/* Connect, waiting up to the timeout while the daemon's backlog is full. */
static int open_socket(tph_client *c, const char *path, char *err, size_t errsz)
{
    struct sockaddr_un sa;
    int64_t deadline = tp_client_now() + c->timeout_ns;
    int r;

    if (strlen(path) >= sizeof sa.sun_path)
        return tp_err_set(err, errsz, -ENAMETOOLONG, "socket path too long (max %zu bytes)",
                          sizeof sa.sun_path - 1);
    for (;;) {
        r = tp_client_open(&c->conn, path, NULL, 0, NULL);
        if (r != -EAGAIN)
            break;
        tp_client_close(&c->conn);
        if (tp_client_now() >= deadline) {
            r = -ETIMEDOUT;
            break;
        }
        struct timespec ts = {0, BACKLOG_RETRY_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
    /* A query names the user's traces and its answers are printed as
     * trusted: tp_client_open() lets only our own tphd (or root's, or the
     * service's) get one, and says why it refused in conn.why. */
    if (r < 0)
        return tp_err_set(err, errsz, r, "%s", c->conn.why[0] ? c->conn.why : strerror(-r));
    return 0;
}

static int hello(tph_client *c, char *err, size_t errsz)
{
    char host[256] = "";
    tp_msg m = {.type = TP_MSG_HELLO};
    tp_msg w;
    tp_buf out = TP_BUF_INIT;
    bool sent;
    int r;

    (void)gethostname(host, sizeof host - 1);
    m.version = TP_WIRE_VERSION;
    m.caps = TP_CAP_QUERY;
    m.pid = (int64_t)getpid();
    m.hostname = host;
    m.client = "tph/" TP_VERSION;
    r = tp_wire_encode(&m, &out);
    if (r < 0) {
        r = tp_err_set(err, errsz, r, "cannot encode the request: %s", tp_strerror(r));
        goto done;
    }
    r = tp_client_handshake(&c->conn, out.data, out.len, c->timeout_ns, &w, &sent);
    if (r < 0)
        r = io_err(c, r, sent ? "read from" : "send to", err, errsz);
    else if (w.type == TP_MSG_ERROR)
        r = peer_error(&w, err, errsz);
done:
    tp_buf_free(&out);
    return r;
}

int tph_client_connect(const char *path, double timeout_s, tph_client **ret, char *err,
                       size_t errsz)
{
    tph_client *c;
    int r;

    c = calloc(1, sizeof *c);
    if (!c)
        return tp_err_set(err, errsz, -ENOMEM, "out of memory");
    c->conn.fd = -1;
    c->next_id = 1;
    /* Whole milliseconds, at least one, as poll() counted them before. */
    int timeout_ms = timeout_s >= 2e6 ? 2000000000 : (int)(timeout_s * 1000.0 + 0.999);
    if (timeout_ms <= 0)
        timeout_ms = 1;
    c->timeout_s = timeout_ms / 1000.0;
    c->timeout_ns = (int64_t)timeout_ms * 1000000;
    r = open_socket(c, path, err, errsz);
    if (r < 0)
        goto fail;
    r = hello(c, err, errsz);
    if (r < 0)
        goto fail;
    *ret = c;
    return 0;
fail:
    tph_client_free(c);
    return r;
}

/* Bytes of body per QUERY frame: well under TP_WIRE_MAX_FRAME so the other
 * fields always fit beside it. */
#define BODY_CHUNK (TP_WIRE_MAX_FRAME - 65536u)

static int send_query(tph_client *c, const tp_msg *q0, const char *body, size_t body_len, char *err,
                      size_t errsz)
{
    tp_msg q = *q0;
    size_t off = 0, n;
    int r;

    do {
        n = body_len - off < BODY_CHUNK ? body_len - off : BODY_CHUNK;
        q.body = n ? body + off : NULL;
        q.body_len = n;
        off += n;
        q.more = off < body_len;
        r = send_msg(c, &q, err, errsz);
        if (r < 0)
            return r;
    } while (off < body_len);
    return 0;
}

/* Fold one REPLY frame into the reply being assembled. Returns 1 when more
 * frames follow, 0 when complete, or a negative code. */
static int add_reply(const tp_msg *m, tph_reply *r, tp_buf *body)
{
    if (!m->ok) {
        r->ok = false;
        r->code = m->code < 0 ? m->code : TP_ERR_SEQUENCE;
        r->message = strdup(m->message ? m->message : tp_strerror(r->code));
        return r->message ? 0 : -ENOMEM;
    }
    r->ok = true;
    if (!r->content_type) {
        r->content_type = strdup(m->content_type ? m->content_type : "application/octet-stream");
        if (!r->content_type)
            return -ENOMEM;
    }
    if (m->body_len && tp_buf_append(body, m->body, m->body_len) < 0)
        return -ENOMEM;
    return m->more ? 1 : 0;
}

/* Read REPLY frames for request id until the last one. */
static int read_reply(tph_client *c, uint32_t id, tph_reply *ret, char *err, size_t errsz)
{
    tph_reply r = {0};
    tp_buf body = TP_BUF_INIT;
    tp_msg m;
    int more = 1, rc = 0;

    while (more > 0 && rc == 0) {
        rc = read_msg(c, &m, err, errsz);
        if (rc < 0)
            break;
        if (m.type == TP_MSG_ERROR)
            rc = peer_error(&m, err, errsz);
        else if (m.type != TP_MSG_REPLY || m.id != id)
            rc =
                tp_err_set(err, errsz, TP_ERR_SEQUENCE,
                           "tphd answered query %u with message type %d (id %u)", id, m.type, m.id);
        else if ((more = add_reply(&m, &r, &body)) < 0)
            rc = tp_err_set(err, errsz, -ENOMEM, "out of memory");
        tp_wire_msg_free(&m);
    }
    if (rc == 0 && r.ok) {
        r.body = tp_buf_steal(&body, &r.body_len);
        if (!r.body)
            rc = tp_err_set(err, errsz, -ENOMEM, "out of memory");
        else if (r.body_len == 0)
            r.body[0] = '\0';
    }
    tp_buf_free(&body);
    if (rc < 0)
        tph_reply_free(&r);
    else
        *ret = r;
    return rc;
}

int tph_client_query(tph_client *c, const char *op, const char *args_json, const void *body,
                     size_t body_len, tph_reply *ret, char *err, size_t errsz)
{
    tp_msg q = {.type = TP_MSG_QUERY};
    int r;

    q.id = c->next_id++;
    q.op = op;
    q.args_json = args_json ? args_json : "{}";
    r = send_query(c, &q, body, body_len, err, errsz);
    if (r < 0)
        return r;
    return read_reply(c, q.id, ret, err, errsz);
}

void tph_reply_free(tph_reply *r)
{
    if (!r)
        return;
    free(r->message);
    free(r->content_type);
    free(r->body);
    memset(r, 0, sizeof *r);
}

void tph_client_free(tph_client *c)
{
    if (!c)
        return;
    tp_client_close(&c->conn);
    free(c);
}
