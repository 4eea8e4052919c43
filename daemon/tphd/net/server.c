#include "server.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "render.h"
#include "server_priv.h"
#include "tp_err.h"
#include "tp_version.h"
#include "util.h"

#define READ_CHUNK        (64u << 10) /* receive buffer growth step */
#define KEEP_BUFFER       (64u << 10) /* larger idle buffers are given back */
#define MAX_WRITE_BACKLOG (64u << 20) /* a peer that does not read its replies */
#define CLOSE_GRACE_MS    5000        /* to flush replies to a closing connection */

typedef struct write_req {
    uv_write_t req;
    char *data;
} write_req;

static void count_conn(tp_server *s, uint32_t uid, int delta);

void tp_server_vlog(const tp_server *s, const char *fmt, va_list ap)
{
    tp_buf raw = TP_BUF_INIT, line = TP_BUF_INIT;
    tp_buf_vprintf(&raw, fmt, ap);
    tp_buf_puts(&line, "tphd: ");
    tp_render_escape(&line, raw.data ? raw.data : "", raw.len);
    tp_buf_putc(&line, '\n');
    /* One write per line: lines of two threads never interleave. */
    if (!tp_buf_error(&line))
        fwrite(line.data, 1, line.len, stderr);
    else
        fputs("tphd: (out of memory for a log line)\n", stderr);
    tp_buf_free(&raw);
    tp_buf_free(&line);
    (void)s;
}

void tp_server_log(const tp_server *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    tp_server_vlog(s, fmt, ap);
    va_end(ap);
}

uint64_t tp_server_now_ms(const tp_server *s)
{
    return uv_now(s->loop);
}

int tp_server_new(uv_loop_t *loop, const tp_server_opts *opts, tp_server **ret)
{
    tp_server *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->loop = loop;
    s->opts = *opts;
    if (!s->opts.max_queue)
        s->opts.max_queue = TP_SERVER_DEFAULT_MAX_QUEUE;
    if (s->opts.frame_timeout_s <= 0)
        s->opts.frame_timeout_s = TP_SERVER_DEFAULT_FRAME_TIMEOUT;
    if (s->opts.retention_interval_s <= 0)
        s->opts.retention_interval_s = 60;
    s->socket_path = opts->socket_path ? strdup(opts->socket_path) : NULL;
    if (opts->socket_path && !s->socket_path) {
        free(s);
        return -ENOMEM;
    }
    s->opts.socket_path = s->socket_path;
    pthread_mutex_init(&s->done_mu, NULL);
    pthread_mutex_init(&s->snap_mu, NULL);
    s->done_tail = &s->done_head;
    s->start_ms = uv_now(loop);
    s->start_mono_ms = tp_mono_ns() / 1000000;
    uv_async_init(loop, &s->async, tp_dispatch_completions);
    s->async.data = s;
    uv_async_init(loop, &s->fin_async, tp_dispatch_finalized);
    s->fin_async.data = s;
    uv_timer_init(loop, &s->sweep);
    s->sweep.data = s;
    uv_timer_init(loop, &s->retention);
    s->retention.data = s;
    *ret = s;
    return 0;
}

void tp_server_set_store(tp_server *s, tp_store *store)
{
    s->store = store;
}

int tp_server_set_http_url(tp_server *s, const char *url)
{
    char *u = url ? strdup(url) : NULL;
    if (url && !u)
        return -ENOMEM;
    free(s->http_url);
    s->http_url = u;
    return 0;
}

void tp_server_store_done(tp_store_op *op, void *server)
{
    tp_server *s = server;
    pthread_mutex_lock(&s->done_mu);
    *s->done_tail = op;
    s->done_tail = &op->next;
    pthread_mutex_unlock(&s->done_mu);
    uv_async_send(&s->async);
}

/* ---- Connections ----------------------------------------------------------------- */

static void conn_free(tp_conn *c)
{
    free(c->qasm_op);
    free(c->qasm_args);
    tp_buf_free(&c->qasm_body);
    tp_ingest_free(c->ingest);
    free(c->rbuf);
    free(c);
}

void tp_conn_unref(tp_conn *c)
{
    if (--c->refs > 0)
        return;
    tp_server *s = c->srv;
    conn_free(c);
    tp_server_check_shutdown(s);
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
    c->prev = c->next = NULL;
    tp_conn_unref(c);
    tp_server_check_shutdown(s);
}

static void submit_abort(tp_store_op *op, void *ud)
{
    tp_conn *c = ud;
    op->owner = c;
    tp_dispatch_submit(c, op);
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
    count_conn(s, c->peer.uid, -1);
    tp_server_publish(s);
}

static void on_shutdown_done(uv_shutdown_t *req, int status)
{
    tp_conn *c = req->data;
    free(req);
    if (!uv_is_closing((uv_handle_t *)&c->pipe))
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
    tp_conn_log_flush(c);
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
    free(w);
}

void tp_conn_send(tp_conn *c, const tp_msg *m)
{
    if (c->closing)
        return;
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
        return;
    }
    w->data = data;
    uv_buf_t buf = uv_buf_init(data, (unsigned)len);
    if (uv_write(&w->req, (uv_stream_t *)&c->pipe, &buf, 1, on_write) < 0) {
        free(data);
        free(w);
        tp_conn_close(c);
        return;
    }
    if (uv_stream_get_write_queue_size((uv_stream_t *)&c->pipe) > MAX_WRITE_BACKLOG) {
        tp_server_log(c->srv, "client %llu: does not read its replies; closing",
                      (unsigned long long)c->serial);
        tp_conn_close(c);
    }
}

void tp_conn_fail(tp_conn *c, int code, const char *message)
{
    if (c->closing)
        return;
    c->srv->protocol_errors++;
    if (c->srv->opts.verbose)
        tp_conn_log(c, "client %llu (uid %u pid %lld): %s: %s", (unsigned long long)c->serial,
                    c->peer.uid, (long long)c->peer.pid, tp_errname(code), message);
    tp_msg m;
    memset(&m, 0, sizeof(m));
    m.type = TP_MSG_ERROR;
    m.code = code;
    m.message = message;
    tp_conn_send(c, &m);
    tp_conn_close(c);
}

/* ---- Reading and framing ------------------------------------------------------- */

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
        uint8_t *nb = realloc(c->rbuf, cap);
        if (!nb) {
            *buf = uv_buf_init(NULL, 0);
            return;
        }
        c->rbuf = nb;
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
        tp_dispatch_frame(c, payload, plen);
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

/* ---- Accepting ------------------------------------------------------------------- */

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
        if (cred.pid > 0 && tp_proc_start_time(cred.pid, &start) == 0)
            c->peer.pstart = start;
    }
}

static void on_connection(uv_stream_t *listener, int status)
{
    tp_server *s = listener->data;
    if (status < 0) {
        tp_server_log(s, "accept: %s", uv_strerror(status));
        return;
    }
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
        uv_close((uv_handle_t *)&c->pipe, on_conn_closed);
        return;
    }
    peer_of(c);
    c->accept_ms = tp_server_now_ms(s);
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    count_conn(s, c->peer.uid, +1);
    tp_server_publish(s);
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

/* ---- Timers ---------------------------------------------------------------------- */

static void on_sweep(uv_timer_t *t)
{
    tp_server *s = t->data;
    uint64_t now = tp_server_now_ms(s);
    uint64_t limit = (uint64_t)(s->opts.frame_timeout_s * 1000);
    /* Events per second: close the current one-second bucket. */
    s->rate_buckets[s->rate_pos] = s->rate_current;
    s->rate_current = 0;
    s->rate_pos = (s->rate_pos + 1) % TP_RATE_WINDOW;
    if (s->rate_filled < TP_RATE_WINDOW)
        s->rate_filled++;
    /* A peer that reads nothing keeps a graceful close (shutdown) waiting for
     * its replies to drain: give it CLOSE_GRACE_MS, then close hard. */
    for (tp_conn *c = s->closing; c; c = c->next) {
        if (!uv_is_closing((uv_handle_t *)&c->pipe) && now - c->closing_ms > CLOSE_GRACE_MS)
            uv_close((uv_handle_t *)&c->pipe, on_conn_closed);
    }
    if (s->shutting_down) {
        tp_server_check_shutdown(s);
        return;
    }
    for (tp_conn *c = s->conns, *next; c; c = next) {
        next = c->next;
        if (c->closing || c->throttled || c->query_busy)
            continue;
        uint64_t since = !c->hello ? c->accept_ms : c->frame_start_ms;
        if (since && now - since > limit && !c->qasm_active) {
            char msg[128];
            snprintf(msg, sizeof(msg), "%s within %.0f s",
                     c->hello ? "no complete frame" : "no HELLO", s->opts.frame_timeout_s);
            tp_conn_fail(c, -ETIMEDOUT, msg);
        }
    }
    tp_server_publish(s);
    if (++s->sweeps % 10 == 0) {
        /* systemctl status shows this line (a no-op outside systemd). */
        tp_server_counters c;
        tp_server_counters_get(s, &c);
        sd_notifyf(0, "STATUS=%lld clients, %.0f events/s, %llu events and %llu traces since start",
                   (long long)c.clients, c.events_per_s, (unsigned long long)c.events_total,
                   (unsigned long long)c.traces_acked);
    }
}

void tp_server_publish(tp_server *s)
{
    tp_server_counters c;
    tp_server_counters_get(s, &c);
    pthread_mutex_lock(&s->snap_mu);
    s->snap = c;
    pthread_mutex_unlock(&s->snap_mu);
}

void tp_server_set_trace_url(tp_server *s,
                             int (*fn)(void *ud, uint32_t uid, const char *trace_id, char *buf,
                                       size_t size),
                             void *ud)
{
    s->trace_url = fn;
    s->trace_url_ud = ud;
}

/* uid's entry, added when missing; NULL when out of memory (the counts of
 * a non-root status are then low). One entry per uid that ever connected:
 * a handful, so a linear scan. Under snap_mu. */
static tp_uid_count *uid_entry(tp_server *s, uint32_t uid)
{
    for (size_t i = 0; i < s->nuid_counts; i++)
        if (s->uid_counts[i].uid == uid)
            return &s->uid_counts[i];
    if (s->nuid_counts == s->uid_counts_cap) {
        size_t cap = s->uid_counts_cap ? s->uid_counts_cap * 2 : 8;
        tp_uid_count *a = realloc(s->uid_counts, cap * sizeof(*a));
        if (!a)
            return NULL;
        s->uid_counts = a;
        s->uid_counts_cap = cap;
    }
    s->uid_counts[s->nuid_counts] = (tp_uid_count){.uid = uid};
    return &s->uid_counts[s->nuid_counts++];
}

void tp_server_count_events(tp_server *s, uint32_t uid, uint64_t n)
{
    pthread_mutex_lock(&s->snap_mu);
    tp_uid_count *e = uid_entry(s, uid);
    if (e)
        e->events += n;
    pthread_mutex_unlock(&s->snap_mu);
}

/* A connection of uid opened (+1) or closed (-1). Loop thread. */
static void count_conn(tp_server *s, uint32_t uid, int delta)
{
    pthread_mutex_lock(&s->snap_mu);
    tp_uid_count *e = uid_entry(s, uid);
    if (e)
        e->conns += delta;
    pthread_mutex_unlock(&s->snap_mu);
}

/* What "status" may tell a non-root uid: its own connections and events,
 * not how busy other users are. Any thread. */
static void own_counts(tp_server *s, uint32_t uid, tp_query_env *env)
{
    env->clients = 0;
    env->events_total = 0;
    pthread_mutex_lock(&s->snap_mu);
    for (size_t i = 0; i < s->nuid_counts; i++) {
        if (s->uid_counts[i].uid == uid) {
            env->clients = s->uid_counts[i].conns;
            env->events_total = s->uid_counts[i].events;
        }
    }
    pthread_mutex_unlock(&s->snap_mu);
    env->events_per_s = -1; /* the rate is kept for all users only */
}

void tp_server_query_env(tp_server *s, uint32_t uid, tp_query_env *env)
{
    tp_server_counters c;
    pthread_mutex_lock(&s->snap_mu);
    c = s->snap;
    pthread_mutex_unlock(&s->snap_mu);
    memset(env, 0, sizeof(*env));
    env->store = s->store;
    env->uid = uid;
    env->version = TP_VERSION;
    env->uptime_s = (double)(tp_mono_ns() / 1000000 - s->start_mono_ms) / 1000.0;
    env->daemon_pid = getpid();
    env->socket_path = s->socket_path;
    env->clients = c.clients;
    env->events_total = c.events_total;
    env->events_per_s = c.events_per_s;
    env->http_url = s->http_url;
    env->trace_url = s->trace_url;
    env->trace_url_ud = s->trace_url_ud;
    if (uid != 0)
        own_counts(s, uid, env);
}

void tp_server_counters_get(const tp_server *s, tp_server_counters *ret)
{
    uint64_t sum = 0;
    for (unsigned i = 0; i < TP_RATE_WINDOW; i++)
        sum += s->rate_buckets[i];
    ret->clients = s->nconns;
    ret->events_total = s->events_total;
    ret->events_per_s = s->rate_filled ? (double)sum / s->rate_filled : 0;
    ret->traces_acked = s->traces_acked;
    ret->protocol_errors = s->protocol_errors;
}

/* ---- Listening --------------------------------------------------------------------- */

/* A socket file left by a tphd that died is replaced; one that answers
 * belongs to a running tphd and is an error. */
static int claim_path(const char *path, char *err, size_t errsz)
{
    struct stat st;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path)) {
        snprintf(err, errsz, "socket path too long (%zu bytes, at most %zu): %s", strlen(path),
                 sizeof(sa.sun_path) - 1, path);
        return -ENAMETOOLONG;
    }
    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : -errno;
    if (!S_ISSOCK(st.st_mode)) {
        snprintf(err, errsz, "%s exists and is not a socket; remove it or choose another --socket",
                 path);
        return -EEXIST;
    }
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
    int e = errno;
    close(fd);
    if (r == 0) {
        snprintf(err, errsz, "another tphd is already listening on %s", path);
        return -EADDRINUSE;
    }
    if (e != ECONNREFUSED && e != ENOENT) {
        snprintf(err, errsz, "cannot check %s: %s", path, strerror(e));
        return -e;
    }
    if (unlink(path) < 0 && errno != ENOENT) {
        e = errno;
        snprintf(err, errsz, "cannot remove the stale socket %s: %s", path, strerror(e));
        return -e;
    }
    return 0;
}

int tp_server_listen(tp_server *s, char *err, size_t errsz)
{
    int r = uv_pipe_init(s->loop, &s->listener, 0);
    if (r < 0)
        goto uverr;
    s->listener.data = s;
    s->listening = true;
    if (s->opts.listen_fd >= 0) {
        r = uv_pipe_open(&s->listener, s->opts.listen_fd);
        if (r < 0)
            goto uverr;
    } else {
        r = claim_path(s->socket_path, err, errsz);
        if (r < 0)
            return r;
        mode_t old = umask(0117);
        r = uv_pipe_bind(&s->listener, s->socket_path);
        umask(old);
        if (r < 0)
            goto uverr;
        s->bound_path = true;
        /* Access is the directory's business (0700 per user, 0770 for the
         * tracepatch group); the socket itself is read-write for owner and
         * group. */
        (void)chmod(s->socket_path, 0660);
    }
    r = uv_listen((uv_stream_t *)&s->listener, 511, on_connection);
    if (r < 0)
        goto uverr;
    uv_timer_start(&s->sweep, on_sweep, 1000, 1000);
    uint64_t every = (uint64_t)(s->opts.retention_interval_s * 1000);
    uv_timer_start(&s->retention, tp_dispatch_retention_tick, every, every);
    tp_dispatch_start_background(s);
    return 0;
uverr:
    snprintf(err, errsz, "cannot listen on %s: %s",
             s->opts.listen_fd >= 0 ? "the socket from systemd" : s->socket_path, uv_strerror(r));
    return r;
}

/* ---- Shutdown ---------------------------------------------------------------------- */

static void on_closed_noop(uv_handle_t *h)
{
}

void tp_server_check_shutdown(tp_server *s)
{
    if (!s->shutting_down || s->shutdown_done)
        return;
    if (s->ops_inflight > 0 || s->works > 0)
        return;
    /* Everything queued is committed and acknowledged: close the rest. */
    for (tp_conn *c = s->conns, *next; c; c = next) {
        next = c->next;
        tp_conn_close(c);
    }
    if (s->nconns > 0 || s->ops_inflight > 0 || s->closing)
        return; /* the aborts just submitted complete first; handles close */
    s->shutdown_done = true;
    uv_close((uv_handle_t *)&s->async, on_closed_noop);
    uv_close((uv_handle_t *)&s->fin_async, on_closed_noop);
    uv_close((uv_handle_t *)&s->sweep, on_closed_noop);
    uv_close((uv_handle_t *)&s->retention, on_closed_noop);
    if (s->shutdown_cb)
        s->shutdown_cb(s->shutdown_ud);
}

void tp_server_shutdown(tp_server *s, void (*cb)(void *ud), void *ud)
{
    if (s->shutting_down)
        return;
    s->shutting_down = true;
    atomic_store(&s->fin_cancel, true);
    s->shutdown_cb = cb;
    s->shutdown_ud = ud;
    uv_timer_stop(&s->retention);
    if (s->listening) {
        uv_close((uv_handle_t *)&s->listener, on_closed_noop);
        s->listening = false;
        if (s->bound_path)
            unlink(s->socket_path);
    }
    /* Stop reading everywhere; traces still open will never end. */
    for (tp_conn *c = s->conns; c; c = c->next) {
        tp_conn_update(c);
        if (c->ingest)
            tp_ingest_abort_all(c->ingest, submit_abort, c);
    }
    tp_server_check_shutdown(s);
}

void tp_server_free(tp_server *s)
{
    if (!s)
        return;
    free(s->fin_pending);
    pthread_mutex_destroy(&s->done_mu);
    pthread_mutex_destroy(&s->snap_mu);
    free(s->socket_path);
    free(s->http_url);
    free(s->uid_counts);
    free(s);
}
