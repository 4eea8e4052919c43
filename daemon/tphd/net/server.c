#include "server.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "conn.h"
#include "dispatch.h"
#include "server_priv.h"
#include "tp_err.h"
#include "tp_version.h"
#include "util.h"

#define CLOSE_GRACE_MS 5000 /* to flush replies to a closing connection */

static void check_shutdown(tp_server *s);

/* Connections stop below the descriptor limit, so that accept() never
 * meets EMFILE: libuv then closes pending connections unseen (no callback,
 * no log line), and SQLite, HTTP and the log need descriptors too. */
static int64_t default_max_conns(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
        return 65536;
    int64_t n = (int64_t)rl.rlim_cur - TP_SERVER_FD_RESERVE;
    return n < 16 ? 16 : n;
}

int tp_server_new(uv_loop_t *loop, const tp_server_opts *opts, tp_server **ret)
{
    tp_server *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->loop = loop;
    s->loop_thread = uv_thread_self();
    s->opts = *opts;
    if (!s->opts.max_queue)
        s->opts.max_queue = TP_SERVER_DEFAULT_MAX_QUEUE;
    if (s->opts.frame_timeout_s <= 0)
        s->opts.frame_timeout_s = TP_SERVER_DEFAULT_FRAME_TIMEOUT;
    if (s->opts.idle_timeout_s <= 0)
        s->opts.idle_timeout_s = TP_SERVER_DEFAULT_IDLE_TIMEOUT;
    if (!s->opts.max_buffered)
        s->opts.max_buffered = TP_SERVER_DEFAULT_MAX_BUFFERED;
    if (!s->opts.max_query_mem)
        s->opts.max_query_mem = TP_SERVER_DEFAULT_MAX_QUERY_MEM;
    if (s->opts.max_conns <= 0)
        s->opts.max_conns = default_max_conns();
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
    s->query_wait_tail = &s->query_wait;
    s->on_frame = tp_dispatch_frame;
    s->check_shutdown = check_shutdown;
    s->start_ms = uv_now(loop);
    s->start_mono_ms = tp_util_mono_ns() / 1000000;
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

/* ---- Reading and framing ------------------------------------------------------- */

/* ---- Accepting ------------------------------------------------------------------- */

static void on_connection(uv_stream_t *listener, int status)
{
    tp_server *s = listener->data;
    if (status < 0) {
        tp_server_log(s, "accept: %s", uv_strerror(status));
        return;
    }
    tp_conn_accept(s, listener);
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
            tp_conn_close_now(c);
    }
    /* A stalled reply is closed during a shutdown too, and sooner: its
     * query's worker waits for the client, and the shutdown for the worker. */
    uint64_t stall = s->shutting_down ? CLOSE_GRACE_MS : TP_CONN_REPLY_STALL_MS;
    for (tp_conn *c = s->conns, *next; c; c = next) {
        next = c->next;
        if (!c->closing && c->reply_wait_ms && now - c->reply_wait_ms > stall) {
            tp_server_log(s, "client %llu: took no reply bytes for %llu s; closing",
                          (unsigned long long)c->serial, (unsigned long long)stall / 1000);
            /* Off the list of connections first (tp_conn_close), then the
             * handle at once: its unwritten replies are dropped. */
            tp_conn_close(c);
            tp_conn_close_now(c);
        }
    }
    tp__clientlog_flush(s);
    if (s->shutting_down) {
        check_shutdown(s);
        return;
    }
    for (tp_conn *c = s->conns, *next; c; c = next) {
        next = c->next;
        if (c->closing)
            continue;
        if (c->closing || c->throttled || c->query_busy)
            continue;
        uint64_t since = !c->hello ? c->accept_ms : c->frame_start_ms;
        char msg[160];
        if (since && now - since > limit) {
            snprintf(msg, sizeof(msg), "%s within %.0f s",
                     c->hello ? "no complete frame" : "no HELLO", s->opts.frame_timeout_s);
            tp_conn_fail(c, -ETIMEDOUT, msg);
        } else if (c->qasm_active && now - c->last_frame_ms > limit) {
            /* A query body in several frames (an import): each part must
             * follow the last within the frame timeout too. */
            snprintf(msg, sizeof(msg), "no part of the query body within %.0f s",
                     s->opts.frame_timeout_s);
            tp_conn_fail(c, -ETIMEDOUT, msg);
        } else if (c->hello && !c->rlen && !c->inflight && !c->reply_wait_ms &&
                   now - c->last_frame_ms > (uint64_t)(s->opts.idle_timeout_s * 1000)) {
            snprintf(msg, sizeof(msg), "idle: no frame for %.0f s (--idle-timeout)",
                     s->opts.idle_timeout_s);
            tp__connlog(c, "client %llu (uid %u pid %lld): closed: %s",
                        (unsigned long long)c->serial, c->peer.uid, (long long)c->peer.pid, msg);
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

static void check_shutdown(tp_server *s)
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
    tp__clientlog_flush(s); /* the closes above may have dropped lines too */
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
        tp_conn_truncate_open(c);
    }
    check_shutdown(s);
}

void tp_server_free(tp_server *s)
{
    if (!s)
        return;
    tp_vec_free(&s->fin_pending);
    pthread_mutex_destroy(&s->done_mu);
    pthread_mutex_destroy(&s->snap_mu);
    free(s->socket_path);
    free(s->http_url);
    tp_vec_free(&s->uid_counts);
    free(s);
}
