/* One client connection: reading and framing its bytes, sending replies,
 * accounting for its queued store work (back-pressure), closing it. What a
 * frame *means* is dispatch.c's business, reached through the server's
 * on_frame hook, so this file calls nothing above it. Loop thread only. */
#include "conn.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "tp_err.h"
#include "util.h"

#define READ_CHUNK        (64u << 10) /* receive buffer growth step */
#define KEEP_BUFFER       (64u << 10) /* larger idle buffers are given back */
#define MAX_WRITE_BACKLOG (64u << 20) /* a peer that does not read its replies */

typedef struct write_req {
    uv_write_t req;
    char *data;
    tp_conn *conn;
    tp_conn_sent_cb done; /* or NULL */
    void *arg;
} write_req;

static void conn_free(tp_conn *c)
{
    free(c->qasm_op);
    free(c->qasm_args);
    tp_buf_free(&c->qasm_body);
    tp_ingest_free(c->ingest);
    c->srv->rbuf_bytes -= c->rcap;
    free(c->rbuf);
    free(c);
}

void tp_conn_unref(tp_conn *c)
{
    if (--c->refs > 0)
        return;
    tp_server *s = c->srv;
    conn_free(c);
    tp_server_poke(s);
}

static void on_conn_closed(uv_handle_t *h)
{
    tp_conn *c = h->data;
    tp_server *s = c->srv;
    /* Off the list of connections being closed. */
    if (c->prev)
        c->prev->next = c->next;
    else
        s->closing = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->nclosing--;
    c->prev = c->next = NULL;
    tp_conn_unref(c);
    tp_server_poke(s);
}

static void submit_abort(tp_store_op *op, void *ud)
{
    tp_conn *c = ud;
    op->owner = c;
    tp_conn_submit(c, op);
}

static void unlink_conn(tp_conn *c)
{
    tp_server *s = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    if (c->in_throttle_list) {
        for (tp_conn **p = &s->throttled; *p; p = &(*p)->throttle_next) {
            if (*p == c) {
                *p = c->throttle_next;
                break;
            }
        }
        c->in_throttle_list = false;
    }
    s->nconns--;
    tp_server_count_conn(s, c->peer.uid, -1);
    tp_server_publish(s);
}

/* A refused client's bytes are read and dropped after the ERROR, until it
 * hangs up (or CLOSE_GRACE_MS passes, see on_sweep): closing with its data
 * unread would reset the connection, and the client would get ECONNRESET
 * instead of reading the ERROR that says why. One loop thread: one buffer. */
static char drain_buf[64 * 1024];

static void drain_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    *buf = uv_buf_init(drain_buf, sizeof(drain_buf));
}

static void drain_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    if (nread < 0 && !uv_is_closing((uv_handle_t *)stream))
        uv_close((uv_handle_t *)stream, on_conn_closed);
}

static void on_shutdown_done(uv_shutdown_t *req, int status)
{
    tp_conn *c = req->data;
    free(req);
    if (uv_is_closing((uv_handle_t *)&c->pipe))
        return;
    if (c->drain && status == 0 &&
        uv_read_start((uv_stream_t *)&c->pipe, drain_alloc, drain_read) == 0)
        return;
    uv_close((uv_handle_t *)&c->pipe, on_conn_closed);
}

/* Close c: its open traces become truncated, pending replies are flushed
 * (shutdown) before the handle closes. Idempotent. */
void tp_conn_close(tp_conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->pipe);
        c->reading = false;
    }
    tp__connlog_flush(c);
    if (c->ingest && tp_ingest_abort_all(c->ingest, submit_abort, c) < 0)
        tp_server_log(c->srv, "client %llu: out of memory marking its traces truncated",
                      (unsigned long long)c->serial);
    unlink_conn(c);
    /* Onto the list of connections being closed, until their handle is. */
    c->closing_ms = tp_server_now_ms(c->srv);
    c->next = c->srv->closing;
    if (c->next)
        c->next->prev = c;
    c->srv->closing = c;
    c->srv->nclosing++;
    uv_shutdown_t *req = malloc(sizeof(*req));
    if (req) {
        req->data = c;
        if (uv_shutdown(req, (uv_stream_t *)&c->pipe, on_shutdown_done) == 0)
            return;
        free(req);
    }
    uv_close((uv_handle_t *)&c->pipe, on_conn_closed);
}

static void on_write(uv_write_t *req, int status)
{
    write_req *w = (write_req *)req;
    free(w->data);
    if (w->done) {
        w->conn->reply_wait_ms = 0;
        w->done(w->conn, w->arg, status);
    }
    free(w);
}

static int conn_write(tp_conn *c, const tp_msg *m, tp_conn_sent_cb done, void *arg)
{
    TP_ASSERT_LOOP(c->srv);
    if (c->closing)
        return -ESHUTDOWN;
    tp_buf b = TP_BUF_INIT;
    int r = tp_wire_encode(m, &b);
    size_t len = 0;
    char *data = r == 0 ? tp_buf_steal(&b, &len) : NULL;
    tp_buf_free(&b);
    write_req *w = data ? malloc(sizeof(*w)) : NULL;
    if (!w) {
        free(data);
        tp_server_log(c->srv, "client %llu: cannot encode a reply (%s)",
                      (unsigned long long)c->serial, tp_strerror(r < 0 ? r : -ENOMEM));
        tp_conn_close(c);
        return r < 0 ? r : -ENOMEM;
    }
    *w = (write_req){.data = data, .conn = c, .done = done, .arg = arg};
    uv_buf_t buf = uv_buf_init(data, (unsigned)len);
    if (uv_write(&w->req, (uv_stream_t *)&c->pipe, &buf, 1, on_write) < 0) {
        free(data);
        free(w);
        tp_conn_close(c);
        return -EPIPE;
    }
    if (done)
        c->reply_wait_ms = tp_server_now_ms(c->srv);
    if (uv_stream_get_write_queue_size((uv_stream_t *)&c->pipe) > MAX_WRITE_BACKLOG) {
        tp_server_log(c->srv, "client %llu: does not read its replies; closing",
                      (unsigned long long)c->serial);
        tp_conn_close(c);
    }
    return 0;
}

void tp_conn_send(tp_conn *c, const tp_msg *m)
{
    conn_write(c, m, NULL, NULL);
}

int tp_conn_send_then(tp_conn *c, const tp_msg *m, tp_conn_sent_cb done, void *arg)
{
    return conn_write(c, m, done, arg);
}

void tp_conn_fail(tp_conn *c, int code, const char *message)
{
    if (c->closing)
        return;
    c->srv->protocol_errors++;
    if (c->srv->opts.verbose)
        tp__connlog(c, "client %llu (uid %u pid %lld): %s: %s", (unsigned long long)c->serial,
                    c->peer.uid, (long long)c->peer.pid, tp_errname(code), message);
    tp_msg m;
    memset(&m, 0, sizeof(m));
    m.type = TP_MSG_ERROR;
    m.code = code;
    m.message = message;
    tp_conn_send(c, &m);
    c->drain = true;
    tp_conn_close(c);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    tp_conn *c = h->data;
    size_t want = READ_CHUNK, max = TP_WIRE_HEADER_SIZE + TP_WIRE_MAX_FRAME;
    if (c->rlen >= TP_WIRE_HEADER_SIZE) {
        /* Size the buffer to the whole frame once its header is in. */
        uint32_t plen = ((uint32_t)c->rbuf[0] << 24) | ((uint32_t)c->rbuf[1] << 16) |
                        ((uint32_t)c->rbuf[2] << 8) | c->rbuf[3];
        size_t need = TP_WIRE_HEADER_SIZE + (size_t)plen;
        if (need <= max && need > c->rlen + want)
            want = need - c->rlen;
    }
    if (c->rlen + want > max)
        want = max > c->rlen ? max - c->rlen : 0;
    if (c->rcap - c->rlen < want) {
        size_t cap = c->rlen + want;
        tp_server *s = c->srv;
        /* One budget for what every client's partial frames hold: past it
         * this connection is refused (on_read says so), not the server. */
        if (cap > READ_CHUNK && s->rbuf_bytes - c->rcap + cap > s->opts.max_buffered) {
            c->over_budget = true;
            *buf = uv_buf_init(NULL, 0);
            return;
        }
        uint8_t *nb = realloc(c->rbuf, cap);
        if (!nb) {
            *buf = uv_buf_init(NULL, 0);
            return;
        }
        c->rbuf = nb;
        s->rbuf_bytes += cap - c->rcap;
        c->rcap = cap;
    }
    *buf = uv_buf_init((char *)c->rbuf + c->rlen, (unsigned)(c->rcap - c->rlen));
}

static bool paused(const tp_conn *c)
{
    return c->closing || c->throttled || c->query_busy || c->srv->shutting_down;
}

/* Handles every whole frame in the buffer, then keeps the partial rest. */
static void process(tp_conn *c)
{
    size_t off = 0;
    while (!paused(c)) {
        uint32_t plen;
        int r = tp_wire_frame(c->rbuf + off, c->rlen - off, TP_WIRE_MAX_FRAME, &plen);
        if (r == -EAGAIN)
            break;
        if (r < 0) {
            char msg[128];
            snprintf(msg, sizeof(msg), "frame length over the limit of %u bytes",
                     TP_WIRE_MAX_FRAME);
            tp_conn_fail(c, r, msg);
            return;
        }
        const uint8_t *payload = c->rbuf + off + TP_WIRE_HEADER_SIZE;
        off += TP_WIRE_HEADER_SIZE + (size_t)plen;
        c->last_frame_ms = tp_server_now_ms(c->srv);
        c->srv->on_frame(c, payload, plen);
        if (c->closing)
            return;
    }
    if (off > 0) {
        memmove(c->rbuf, c->rbuf + off, c->rlen - off);
        c->rlen -= off;
        c->frame_start_ms = c->rlen ? tp_server_now_ms(c->srv) : 0;
    }
    if (c->rlen == 0 && c->rcap > 0 && (c->rcap > KEEP_BUFFER || !c->reading)) {
        /* Idle connections hold no buffer, so a thousand of them cost little. */
        c->srv->rbuf_bytes -= c->rcap;
        free(c->rbuf);
        c->rbuf = NULL;
        c->rcap = 0;
    }
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    tp_conn *c = stream->data;
    if (nread == 0)
        return;
    if (nread < 0) {
        if (nread == UV_ENOBUFS && c->over_budget) {
            tp_server *s = c->srv;
            char msg[200];
            snprintf(msg, sizeof(msg),
                     "tphd is holding %zu MiB of partial frames from all clients (--max-buffered "
                     "%zu MiB): this frame is refused, try again later",
                     s->rbuf_bytes >> 20, s->opts.max_buffered >> 20);
            tp__connlog(c, "client %llu (uid %u pid %lld): refused: %s",
                        (unsigned long long)c->serial, c->peer.uid, (long long)c->peer.pid, msg);
            tp_conn_fail(c, -ENOBUFS, msg);
            return;
        }
        if (nread == UV_ENOBUFS)
            tp_server_log(c->srv, "client %llu: out of memory for its receive buffer",
                          (unsigned long long)c->serial);
        else if (nread != UV_EOF && c->srv->opts.verbose)
            tp_server_log(c->srv, "client %llu: %s", (unsigned long long)c->serial,
                          uv_strerror((int)nread));
        tp_conn_close(c);
        return;
    }
    if (c->rlen == 0)
        c->frame_start_ms = tp_server_now_ms(c->srv);
    c->rlen += (size_t)nread;
    process(c);
    if (!c->closing)
        tp_conn_update(c);
}

void tp_conn_update(tp_conn *c)
{
    if (c->closing)
        return;
    bool want = !paused(c);
    if (want && c->rlen > 0) {
        /* Frames that arrived while paused. The timeout restarts: the wait
         * was ours, not the client's. */
        c->frame_start_ms = tp_server_now_ms(c->srv);
        process(c);
        if (c->closing)
            return;
        want = !paused(c);
    }
    if (want && !c->reading) {
        if (uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read) == 0)
            c->reading = true;
    } else if (!want && c->reading) {
        uv_read_stop((uv_stream_t *)&c->pipe);
        c->reading = false;
    }
}

static void peer_of(tp_conn *c)
{
    uv_os_fd_t fd;
    struct ucred cred;
    socklen_t len = sizeof(cred);
    c->peer.uid = UINT32_MAX; /* nobody's: sees nothing if SO_PEERCRED fails */
    if (uv_fileno((uv_handle_t *)&c->pipe, &fd) == 0 &&
        getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
        c->peer.uid = cred.uid;
        c->peer.pid = cred.pid;
        uint64_t start = 0;
        if (cred.pid > 0 && tp_util_proc_start_time(cred.pid, &start) == 0)
            c->peer.pstart = start;
    }
}

void tp_conn_submit(tp_conn *c, tp_store_op *op)
{
    TP_ASSERT_LOOP(c->srv);
    tp_server *s = c->srv;
    op->owner = c;
    if (tp_store_submit(s->store, op) < 0) {
        tp_ingest_op_free(op);
        tp_conn_fail(c, -ESHUTDOWN, "tphd is shutting down");
        return;
    }
    c->refs++;
    c->inflight += op->bytes;
    s->ops_inflight++;
    if (!c->throttled && (c->inflight > TP_SERVER_CONN_HIGH_WATER ||
                          tp_store_queued_bytes(s->store) > s->opts.max_queue)) {
        /* Back-pressure: the client's socket buffer fills and its sender
         * waits (or counts drops), instead of tphd's memory growing. */
        c->throttled = true;
        if (!c->in_throttle_list) {
            c->in_throttle_list = true;
            c->throttle_next = s->throttled;
            s->throttled = c;
        }
    }
}

void tp_conn_close_now(tp_conn *c)
{
    if (!uv_is_closing((uv_handle_t *)&c->pipe))
        uv_close((uv_handle_t *)&c->pipe, on_conn_closed);
}

void tp_conn_truncate_open(tp_conn *c)
{
    if (c->ingest && tp_ingest_abort_all(c->ingest, submit_abort, c) < 0)
        tp_server_log(c->srv, "client %llu: out of memory marking its traces truncated",
                      (unsigned long long)c->serial);
}

/* ---- Accepting ------------------------------------------------------------------- */

void tp_conn_accept(tp_server *s, uv_stream_t *listener)
{
    tp_conn *c = calloc(1, sizeof(*c));
    if (!c) {
        tp_server_log(s, "accept: out of memory");
        return;
    }
    c->srv = s;
    c->refs = 1;
    c->serial = ++s->next_serial;
    uv_pipe_init(s->loop, &c->pipe, 0);
    c->pipe.data = c;
    if (uv_accept(listener, (uv_stream_t *)&c->pipe) < 0) {
        c->closing = true;
        c->next = s->closing;
        if (c->next)
            c->next->prev = c;
        s->closing = c;
        s->nclosing++;
        uv_close((uv_handle_t *)&c->pipe, on_conn_closed);
        return;
    }
    peer_of(c);
    c->accept_ms = c->last_frame_ms = tp_server_now_ms(s);
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    tp_server_count_conn(s, c->peer.uid, +1);
    tp_server_publish(s);
    if (s->nconns > s->opts.max_conns) {
        char msg[160];
        snprintf(msg, sizeof(msg),
                 "tphd serves at most %lld connections at once (its descriptor limit): try again "
                 "later",
                 (long long)s->opts.max_conns);
        /* Once per 1000 refusals after the first few: a flood must not flood the log. */
        if (++s->refused_conns <= 10 || s->refused_conns % 1000 == 0)
            tp_server_log(s, "client %llu (uid %u pid %lld) refused (%llu so far): %s",
                          (unsigned long long)c->serial, c->peer.uid, (long long)c->peer.pid,
                          (unsigned long long)s->refused_conns, msg);
        tp_conn_fail(c, -EMFILE, msg);
        /* The ERROR is written already (libuv writes at once to an empty
         * socket). A refused client keeps its descriptor until it hangs up;
         * past TP_SERVER_MAX_DRAINING of those, closing at once keeps
         * tphd's reserve for its files, HTTP and the next client's ERROR. */
        if (s->nclosing > TP_SERVER_MAX_DRAINING) {
            if (++s->closed_at_once <= 10 || s->closed_at_once % 1000 == 0)
                tp_server_log(s,
                              "client %llu: %lld refused connections are waiting for their "
                              "clients to hang up; closed at once (%llu so far)",
                              (unsigned long long)c->serial, (long long)s->nclosing - 1,
                              (unsigned long long)s->closed_at_once);
            tp_conn_close_now(c);
        }
        return;
    }
    if (c->peer.uid == UINT32_MAX || tp_ingest_new(&c->peer, &c->ingest) < 0) {
        tp_conn_fail(c, c->peer.uid == UINT32_MAX ? TP_ERR_PERM : -ENOMEM,
                     "cannot identify the peer (SO_PEERCRED)");
        return;
    }
    if (s->opts.verbose)
        tp_server_log(s, "client %llu connected: uid %u pid %lld", (unsigned long long)c->serial,
                      c->peer.uid, (long long)c->peer.pid);
    tp_conn_update(c);
}
