/* tph's wire client; see tph_client.h. */
#include "tph_client.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "buf.h"
#include "peer.h"
#include "tp_err.h"
#include "tp_version.h"
#include "wire.h"

#define RECV_CHUNK 65536u

struct tph_client {
    int fd;
    int timeout_ms;
    uint32_t next_id;
    tp_buf in;     /* received bytes not yet consumed */
    size_t in_off; /* consumed prefix of in */
};

static int timeout_err(const tph_client *c, char *err, size_t errsz)
{
    return tp_err_set(err, errsz, -ETIMEDOUT, "no answer within %g s", c->timeout_ms / 1000.0);
}

/* Wait until fd is ready for events; -ETIMEDOUT after timeout_ms of silence. */
static int wait_fd(const tph_client *c, short events)
{
    struct pollfd p = {.fd = c->fd, .events = events};
    int r;

    do
        r = poll(&p, 1, c->timeout_ms);
    while (r < 0 && errno == EINTR);
    if (r < 0)
        return -errno;
    return r == 0 ? -ETIMEDOUT : 0;
}

static int send_all(tph_client *c, const char *p, size_t len, char *err, size_t errsz)
{
    ssize_t n;
    int r;

    while (len > 0) {
        n = send(c->fd, p, len, MSG_NOSIGNAL);
        if (n >= 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (errno == EINTR)
            continue;
        if (errno == EPIPE || errno == ECONNRESET)
            return tp_err_set(err, errsz, -EPIPE, "tphd closed the connection");
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return tp_err_set(err, errsz, -errno, "cannot send to tphd: %s", strerror(errno));
        r = wait_fd(c, POLLOUT);
        if (r == -ETIMEDOUT)
            return timeout_err(c, err, errsz);
        if (r < 0)
            return tp_err_set(err, errsz, r, "cannot send to tphd: %s", strerror(-r));
    }
    return 0;
}

/* Append what the socket has (waiting for at least one byte) to c->in. */
static int recv_some(tph_client *c, char *err, size_t errsz)
{
    static char chunk[RECV_CHUNK];
    ssize_t n;
    int r;

    if (c->in_off > 0 && c->in_off == c->in.len) {
        tp_buf_reset(&c->in);
        c->in_off = 0;
    }
    for (;;) {
        n = recv(c->fd, chunk, sizeof chunk, 0);
        if (n > 0)
            break;
        if (n == 0 || errno == ECONNRESET)
            return tp_err_set(err, errsz, -EPIPE, "tphd closed the connection");
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return tp_err_set(err, errsz, -errno, "cannot read from tphd: %s", strerror(errno));
        r = wait_fd(c, POLLIN);
        if (r == -ETIMEDOUT)
            return timeout_err(c, err, errsz);
        if (r < 0)
            return tp_err_set(err, errsz, r, "cannot read from tphd: %s", strerror(-r));
    }
    if (tp_buf_append(&c->in, chunk, (size_t)n) < 0)
        return tp_err_set(err, errsz, -ENOMEM, "out of memory");
    return 0;
}

/* Read and decode the next whole frame. */
static int read_msg(tph_client *c, tp_msg *ret, char *err, size_t errsz)
{
    uint32_t plen;
    const uint8_t *p;
    char derr[256] = "";
    int r;

    for (;;) {
        p = c->in.len > c->in_off ? (const uint8_t *)c->in.data + c->in_off : (const uint8_t *)"";
        r = tp_wire_frame(p, c->in.len - c->in_off, 0, &plen);
        if (r == 0)
            break;
        if (r != -EAGAIN)
            return tp_err_set(err, errsz, r, "bad frame from tphd: %s", tp_strerror(r));
        r = recv_some(c, err, errsz);
        if (r < 0)
            return r;
    }
    r = tp_wire_decode(p + TP_WIRE_HEADER_SIZE, plen, ret, derr, sizeof derr);
    c->in_off += TP_WIRE_HEADER_SIZE + (size_t)plen;
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
    r = send_all(c, out.data, out.len, err, errsz);
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

static int open_socket(const char *path, int timeout_ms, int *ret_fd, char *err, size_t errsz)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    int fd, r;

    if (strlen(path) >= sizeof sa.sun_path)
        return tp_err_set(err, errsz, -ENAMETOOLONG, "socket path too long (max %zu bytes)",
                          sizeof sa.sun_path - 1);
    memcpy(sa.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return tp_err_set(err, errsz, -errno, "socket: %s", strerror(errno));
    /* A Unix-socket connect waits on the send timeout when the backlog is full. */
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        r = (errno == EAGAIN || errno == EINPROGRESS) ? -ETIMEDOUT : -errno;
        close(fd);
        return tp_err_set(err, errsz, r, "%s", strerror(-r));
    }
    /* A query names the user's traces and its answers are printed as
     * trusted: only our own tphd (or root's, or the service's) may get one. */
    r = tp_peer_check(fd, path, err, errsz);
    if (r < 0) {
        close(fd);
        return r;
    }
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
        r = -errno;
        close(fd);
        return tp_err_set(err, errsz, r, "fcntl: %s", strerror(-r));
    }
    *ret_fd = fd;
    return 0;
}

static int hello(tph_client *c, char *err, size_t errsz)
{
    char host[256] = "";
    tp_msg m = {.type = TP_MSG_HELLO};
    tp_msg w;
    int r;

    (void)gethostname(host, sizeof host - 1);
    m.version = TP_WIRE_VERSION;
    m.caps = TP_CAP_QUERY;
    m.pid = (int64_t)getpid();
    m.hostname = host;
    m.client = "tph/" TP_VERSION;
    r = send_msg(c, &m, err, errsz);
    if (r < 0)
        return r;
    r = read_msg(c, &w, err, errsz);
    if (r < 0)
        return r;
    if (w.type == TP_MSG_ERROR)
        r = peer_error(&w, err, errsz);
    else if (w.type != TP_MSG_WELCOME)
        r = tp_err_set(err, errsz, TP_ERR_SEQUENCE, "tphd answered HELLO with message type %d",
                       w.type);
    tp_msg_free(&w);
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
    c->fd = -1;
    c->next_id = 1;
    c->timeout_ms = timeout_s >= 2e6 ? 2000000000 : (int)(timeout_s * 1000.0 + 0.999);
    if (c->timeout_ms <= 0)
        c->timeout_ms = 1;
    r = open_socket(path, c->timeout_ms, &c->fd, err, errsz);
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
        tp_msg_free(&m);
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
    if (c->fd >= 0)
        close(c->fd);
    tp_buf_free(&c->in);
    free(c);
}
