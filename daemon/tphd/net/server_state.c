/* The server's shared state that every part of daemon/tphd/net reads or
 * updates: the log, the loop clock, the published counters and the facts a
 * query reports. It depends on no other file of the folder, so conn.c,
 * dispatch.c and server.c can all use it without a circle. */
#include "server.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "render.h"
#include "server_priv.h"
#include "tp_version.h"
#include "util.h"

/* Bytes of a log line's text kept before it is cut: a client's message can
 * be as long as a frame (16 MiB), and one line of it is not worth a log. */
#define LOG_LINE_MAX 1024

void tp_server_vlog(const tp_server *s, const char *fmt, va_list ap)
{
    tp_buf raw = TP_BUF_INIT, line = TP_BUF_INIT;
    tp_buf_vprintf(&raw, fmt, ap);
    size_t n = raw.len;
    if (n > LOG_LINE_MAX) {
        /* Cut at a character's start, so the cut leaves no broken UTF-8. */
        n = LOG_LINE_MAX;
        while (n > 0 && ((unsigned char)raw.data[n] & 0xC0) == 0x80)
            n--;
    }
    tp_buf_puts(&line, "tphd: ");
    tp_render_escape(&line, raw.data ? raw.data : "", n);
    if (n < raw.len)
        tp_buf_printf(&line, "... (%zu more bytes)", raw.len - n);
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

void tp_server_publish(tp_server *s)
{
    TP_ASSERT_LOOP(s);
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
    for (size_t i = 0; i < s->uid_counts.size; i++)
        if (s->uid_counts.items[i].uid == uid)
            return &s->uid_counts.items[i];
    if (tp_vec_grow1(&s->uid_counts) < 0)
        return NULL;
    s->uid_counts.items[s->uid_counts.size] = (tp_uid_count){.uid = uid};
    return &s->uid_counts.items[s->uid_counts.size++];
}

void tp_server_count_events(tp_server *s, uint32_t uid, uint64_t n)
{
    pthread_mutex_lock(&s->snap_mu);
    tp_uid_count *e = uid_entry(s, uid);
    if (e)
        e->events += n;
    pthread_mutex_unlock(&s->snap_mu);
}

void tp_server_count_conn(tp_server *s, uint32_t uid, int delta)
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
    for (size_t i = 0; i < s->uid_counts.size; i++) {
        if (s->uid_counts.items[i].uid == uid) {
            env->clients = s->uid_counts.items[i].conns;
            env->events_total = s->uid_counts.items[i].events;
        }
    }
    pthread_mutex_unlock(&s->snap_mu);
    env->events_per_s = -1; /* the rate is kept for all users only */
}

void tp_server_set_otlp(tp_server *s, struct tp_otlp *otlp)
{
    s->otlp = otlp;
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
    env->uptime_s = (double)(tp_util_mono_ns() / 1000000 - s->start_mono_ms) / 1000.0;
    env->daemon_pid = getpid();
    env->socket_path = s->socket_path;
    env->clients = c.clients;
    env->events_total = c.events_total;
    env->events_per_s = c.events_per_s;
    env->http_url = s->http_url;
    env->trace_url = s->trace_url;
    env->trace_url_ud = s->trace_url_ud;
    env->otlp = s->otlp;
    env->whole_db = uid == 0 || uid == (uint32_t)geteuid();
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
